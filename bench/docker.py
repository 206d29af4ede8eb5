#!/usr/bin/env python3
"""netloom vs the Docker CLI, docker-compose and the daemon's own floor:
100 networks with explicit subnets and 50 running containers attached with
static addresses. All measured in this run against the same dockerd.

The floor is the same create/connect (and disconnect/remove) calls made
one after another straight over the API socket: no tool can be faster
without parallel requests, which Docker 20.10 serves slower.
"""
import shutil, argparse, http.client, json, os, socket, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETLOOM = os.path.join(ROOT, "target", "release", "netloom")
IMAGE = "netloom-test-busybox:latest"


class Api(http.client.HTTPConnection):
    """HTTP over dockerd's unix socket."""

    def __init__(self, path="/var/run/docker.sock"):
        super().__init__("localhost")
        self.path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)

    def call(self, method, url, body=None):
        self.request(method, url, body=json.dumps(body) if body is not None else None,
                     headers={"Content-Type": "application/json"})
        r = self.getresponse()
        data = r.read()
        if r.status >= 300:
            sys.exit(f"{method} {url}: {r.status} {data[:200]}")
        return json.loads(data) if data else None


def sh(cmd):
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def timed(cmd, env=None):
    t = time.perf_counter()
    p = subprocess.run(cmd, shell=isinstance(cmd, str), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if p.returncode not in (0, 2):
        sys.exit(f"failed: {cmd}: {p.stderr.decode()[-500:]}")
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--networks", type=int, default=100)
    ap.add_argument("--containers", type=int, default=50)
    ap.add_argument("--rounds", type=int, default=3)
    a = ap.parse_args()
    nn, nc = a.networks, a.containers
    pid = os.getpid() % 100000
    pfx = f"nlbd{pid}"
    tmp = tempfile.mkdtemp(prefix="netloom-bench-docker-")
    env = dict(os.environ, NETLOOM_RUN_DIR=os.path.join(tmp, "run"))
    nets = [(f"{pfx}n{i}", f"10.231.{i}.0/24") for i in range(nn)]
    ctrs = [f"{pfx}c{j}" for j in range(nc)]
    ip = lambda j: f"10.231.{j}.10"

    topo = os.path.join(tmp, "bench.toml")
    with open(topo, "w") as f:
        f.write(f'[topology]\nname = "{pfx}"\n\n')
        for name, sub in nets:
            f.write(f'[network.{name}]\nsubnets = ["{sub}"]\n\n')
        for j, c in enumerate(ctrs):
            f.write(f'[container.{c}]\nnetworks.{nets[j][0]} = {{ ipv4 = "{ip(j)}" }}\n\n')
    compose = os.path.join(tmp, "docker-compose.yml")
    with open(compose, "w") as f:
        f.write('version: "2.4"\nservices:\n')
        for j in range(nc):
            extra = [nets[j + nc][0]] if j + nc < nn else []
            f.write(f"  s{j}:\n    image: {IMAGE}\n    command: sleep 600\n    networks:\n"
                    f"      {nets[j][0]}:\n        ipv4_address: {ip(j)}\n")
            for e in extra:
                f.write(f"      {e}: {{}}\n")
        f.write("networks:\n")
        for name, sub in nets:
            f.write(f"  {name}:\n    name: {name}\n    ipam:\n      config:\n        - subnet: {sub}\n")

    base = f"{pfx}base"
    sh(f"docker network create --internal --subnet 10.232.0.0/16 {base}")
    for c in ctrs:
        sh(f"docker run -d --name {c} --network {base} {IMAGE} sleep 3600")
    api = Api()
    r = {}
    runs = {k: [] for k in ("floor_apply", "floor_destroy", "nl_apply", "nl_plan", "nl_destroy",
                            "cli_apply", "cli_destroy")}
    try:
        # Rounds interleave the tools, so a daemon that drifts slower or
        # faster over the run weighs on each alike; medians are reported.
        for _ in range(a.rounds):
            # Daemon floor: the same calls, one after another, over the API.
            t = time.perf_counter()
            ids = {}
            for name, sub in nets:
                ids[name] = api.call("POST", "/networks/create", {
                    "Name": name, "Driver": "bridge", "CheckDuplicate": True,
                    "IPAM": {"Driver": "default", "Config": [{"Subnet": sub}]}})["Id"]
            for j, c in enumerate(ctrs):
                api.call("POST", f"/networks/{ids[nets[j][0]]}/connect",
                         {"Container": c, "EndpointConfig": {"IPAMConfig": {"IPv4Address": ip(j)}}})
            runs["floor_apply"].append(time.perf_counter() - t)
            t = time.perf_counter()
            for j, c in enumerate(ctrs):
                api.call("POST", f"/networks/{ids[nets[j][0]]}/disconnect", {"Container": c, "Force": True})
            for name, _ in nets:
                api.call("DELETE", f"/networks/{ids[name]}")
            runs["floor_destroy"].append(time.perf_counter() - t)

            # netloom
            runs["nl_apply"].append(timed([NETLOOM, "apply", topo], env))
            runs["nl_plan"].append(statistics.median(
                timed([NETLOOM, "plan", "--detailed-exitcode", topo], env) for _ in range(7)))
            runs["nl_destroy"].append(timed([NETLOOM, "destroy", topo], env))

            # The Docker CLI, one command per object.
            script = os.path.join(tmp, "cli.sh")
            with open(script, "w") as f:
                for name, sub in nets:
                    f.write(f"docker network create --subnet {sub} {name} >/dev/null\n")
                for j, c in enumerate(ctrs):
                    f.write(f"docker network connect --ip {ip(j)} {nets[j][0]} {c}\n")
            runs["cli_apply"].append(timed(f"sh -e {script}"))
            with open(script, "w") as f:
                for j, c in enumerate(ctrs):
                    f.write(f"docker network disconnect {nets[j][0]} {c}\n")
                for name, _ in nets:
                    f.write(f"docker network rm {name} >/dev/null\n")
            runs["cli_destroy"].append(timed(f"sh -e {script}"))
        r = {k: statistics.median(v) for k, v in runs.items()}

        # docker-compose: it also creates and starts a container per service.
        # Not every host has it (Debian's docker-compose package): skip the row.
        if shutil.which("docker-compose"):
            r["compose_up"] = timed(f"docker-compose -p {pfx} -f {compose} up -d")
            r["compose_down"] = timed(f"docker-compose -p {pfx} -f {compose} down")
    finally:
        subprocess.run(f"docker-compose -p {pfx} -f {compose} down >/dev/null 2>&1", shell=True)
        for c in ctrs:
            subprocess.run(f"docker rm -f {c} >/dev/null 2>&1", shell=True)
        for name, _ in nets:
            subprocess.run(f"docker network rm {name} >/dev/null 2>&1", shell=True)
        subprocess.run(f"docker network rm {base} >/dev/null 2>&1", shell=True)

    print(f"{nn} networks with explicit subnets, {nc} running containers attached with static IPv4; "
          f"medians of {a.rounds} interleaved rounds (compose: one); "
          f"dockerd {subprocess.run(['docker', 'version', '-f', '{{.Server.Version}}'], capture_output=True, text=True).stdout.strip()}")
    print(f"{'work':42} {'time':>10} {'vs floor':>9} {'vs CLI':>8}  target")
    rows = [
        ("daemon floor: create + connect (API)", r["floor_apply"], ""),
        ("netloom apply (observe, apply, verify)", r["nl_apply"], "≤ 1.05× floor, ≤ 0.75× CLI"),
        ("docker CLI loop", r["cli_apply"], ""),
        ("docker-compose up (+50 new containers)", r.get("compose_up"), ""),
        ("netloom no-op plan", r["nl_plan"], "≤ 50 ms"),
        ("daemon floor: disconnect + remove (API)", r["floor_destroy"], ""),
        ("netloom destroy", r["nl_destroy"], ""),
        ("docker CLI loop, removal", r["cli_destroy"], ""),
        ("docker-compose down (+50 containers)", r.get("compose_down"), ""),
    ]
    rows = [row for row in rows if row[1] is not None]
    for name, t, target in rows:
        floor = r["floor_destroy"] if "destroy" in name or "removal" in name or "down" in name else r["floor_apply"]
        cli = r["cli_destroy"] if floor is r["floor_destroy"] else r["cli_apply"]
        vf = "" if "plan" in name else f"{t / floor:8.2f}×"
        vc = "" if "plan" in name else f"{t / cli:7.2f}×"
        print(f"{name:42} {t * 1000:8.0f}ms {vf:>9} {vc:>8}  {target}")
    print(json.dumps({k: round(v, 4) for k, v in r.items()}))
    print(json.dumps({k: [round(x, 3) for x in v] for k, v in runs.items()}))


if __name__ == "__main__":
    main()
