#!/usr/bin/env python3
"""netloom vs an equivalent ip/nsenter script: N containers in a chain of
N-1 point-to-point links, plus one bridge with all N attached, each end
addressed and up. Measured in the same run, on the same containers.
"""
import argparse, datetime, json, os, re, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETLOOM = os.path.join(ROOT, "target", "release", "netloom")
IMAGE = "netloom-test-busybox:latest"


def sh(cmd):
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def timed(cmd, env=None):
    t = time.perf_counter()
    p = subprocess.run(cmd, shell=isinstance(cmd, str), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if p.returncode != 0:
        sys.exit(f"failed: {cmd}: {p.stderr.decode()[-800:]}")
    return time.perf_counter() - t


def started_at(c):
    """When Docker started the container's process (wall clock), and its pid."""
    out = subprocess.run(["docker", "inspect", "-f", "{{.State.StartedAt}} {{.State.Pid}}", c],
                         capture_output=True, text=True, check=True).stdout.split()
    stamp = re.sub(r"(\.\d{6})\d*", r"\1", out[0]).replace("Z", "+00:00")
    return datetime.datetime.fromisoformat(stamp).timestamp(), out[1]


def wired(pid, want):
    """Each wanted interface is up with its address, inside netns of `pid`."""
    p = subprocess.run(["nsenter", "-t", pid, "-n", "ip", "-j", "addr", "show"], capture_output=True, text=True)
    if p.returncode != 0:
        return False
    have = {(l["ifname"], a["local"]) for l in json.loads(p.stdout) if "UP" in l.get("flags", [])
            for a in l.get("addr_info", [])}
    return want <= have


def restarts(topo, env, ctrs, runs, tmp):
    """netloom watch wires a container again after `docker restart`."""
    timed([NETLOOM, "apply", topo], env)
    log = open(os.path.join(tmp, "watch.log"), "w")
    w = subprocess.Popen([NETLOOM, "watch", topo], env=env, stdout=log, stderr=log)
    out = []
    try:
        time.sleep(2)
        n, i = len(ctrs), len(ctrs) // 2
        want = {("eth1", f"10.70.0.{i + 1}"), ("eth2", f"10.71.{i}.1"), ("eth3", f"10.71.{i - 1}.2")}
        for _ in range(runs):
            subprocess.run(["docker", "restart", "-t", "0", ctrs[i]], check=True, capture_output=True)
            t0, pid = started_at(ctrs[i])
            deadline = time.time() + 30
            while not wired(pid, want):
                if time.time() > deadline:
                    sys.exit(f"{ctrs[i]} was not re-wired within 30 s of its restart; see {log.name}")
                time.sleep(0.002)
            out.append(time.time() - t0)
            time.sleep(1)
    finally:
        w.terminate()
        w.wait(30)
        log.close()
        subprocess.run([NETLOOM, "destroy", topo], env=env, capture_output=True)
    assert n > 2
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    n = a.n
    pid = os.getpid() % 100000
    pfx = f"nlbw{pid}"
    tmp = tempfile.mkdtemp(prefix="netloom-bench-wiring-")
    env = dict(os.environ, NETLOOM_RUN_DIR=os.path.join(tmp, "run"))
    ctrs = [f"{pfx}c{i}" for i in range(n)]
    nl_ns, ip_ns = f"{pfx}n", f"{pfx}i"

    topo = os.path.join(tmp, "lab.toml")
    with open(topo, "w") as f:
        f.write(f'[topology]\nname = "{pfx}"\nnetns = "{nl_ns}"\n\n[bridge.br-all]\naddresses = ["10.70.0.254/24"]\n\n')
        for i, c in enumerate(ctrs):
            f.write(f'[container.{c}]\ninterfaces.eth1 = {{ bridge = "br-all", addresses = ["10.70.0.{i + 1}/24"] }}\n\n')
        for i in range(n - 1):
            f.write(f'[[link]]\nendpoints = ["{ctrs[i]}:eth2", "{ctrs[i + 1]}:eth3"]\n'
                    f'addresses = {{ "{ctrs[i]}:eth2" = ["10.71.{i}.1/30"], "{ctrs[i + 1]}:eth3" = ["10.71.{i}.2/30"] }}\n\n')

    base = f"{pfx}base"
    sh(f"docker network create --internal --subnet 10.72.0.0/16 {base}")
    for c in ctrs:
        sh(f"docker run -d --name {c} --network {base} {IMAGE} sleep 3600")
    pids = [subprocess.run(["docker", "inspect", "-f", "{{.State.Pid}}", c], capture_output=True, text=True).stdout.strip() for c in ctrs]

    # The same work by hand: one ip/nsenter command line per step, as a script would.
    script = os.path.join(tmp, "wire.sh")
    with open(script, "w") as f:
        f.write("set -e\n")
        f.write(f"ip netns add {ip_ns}\nip -n {ip_ns} link add br-all type bridge\n"
                f"ip -n {ip_ns} addr add 10.70.0.254/24 dev br-all\nip -n {ip_ns} link set br-all up\n")
        for i, p in enumerate(pids):
            f.write(f"ip -n {ip_ns} link add h{i} type veth peer name eth1 netns {p}\n"
                    f"ip -n {ip_ns} link set h{i} master br-all up\n"
                    f"nsenter -t {p} -n ip addr add 10.70.0.{i + 1}/24 dev eth1\n"
                    f"nsenter -t {p} -n ip link set eth1 up\n")
        for i in range(n - 1):
            p, q = pids[i], pids[i + 1]
            f.write(f"ip link add eth2 netns {p} type veth peer name eth3 netns {q}\n"
                    f"nsenter -t {p} -n ip addr add 10.71.{i}.1/30 dev eth2\nnsenter -t {p} -n ip link set eth2 up\n"
                    f"nsenter -t {q} -n ip addr add 10.71.{i}.2/30 dev eth3\nnsenter -t {q} -n ip link set eth3 up\n")
    undo = os.path.join(tmp, "unwire.sh")
    with open(undo, "w") as f:
        f.write(f"ip netns del {ip_ns}\n")
        for p in pids:
            f.write(f"nsenter -t {p} -n ip link del eth2 2>/dev/null\n")

    r = {"nl_apply": [], "nl_plan": [], "nl_destroy": [], "script": [], "restart": []}
    try:
        for _ in range(a.runs):
            r["nl_apply"].append(timed([NETLOOM, "apply", topo], env))
            for _ in range(5):
                r["nl_plan"].append(timed([NETLOOM, "plan", "--detailed-exitcode", topo], env))
            r["nl_destroy"].append(timed([NETLOOM, "destroy", topo], env))
            time.sleep(1)
            r["script"].append(timed(f"sh {script}"))
            subprocess.run(f"sh {undo}", shell=True)
            time.sleep(1)
        r["restart"] = restarts(topo, env, ctrs, a.runs, tmp)
    finally:
        subprocess.run(f"sh {undo} >/dev/null 2>&1", shell=True)
        subprocess.run([NETLOOM, "destroy", topo], env=env, capture_output=True)
        for c in ctrs:
            subprocess.run(f"docker rm -f {c} >/dev/null 2>&1", shell=True)
        subprocess.run(f"docker network rm {base} >/dev/null 2>&1", shell=True)

    med = {k: statistics.median(v) for k, v in r.items()}
    print(f"{n} containers: chain of {n - 1} point-to-point links + one bridge with all {n} attached; medians of {a.runs} runs")
    print(f"{'work':44} {'time':>10} {'ratio':>8}")
    print(f"{'ip/nsenter script (one command per step)':44} {med['script'] * 1000:8.0f}ms {1:7.2f}×")
    print(f"{'netloom apply (observe, apply, verify)':44} {med['nl_apply'] * 1000:8.0f}ms {med['nl_apply'] / med['script']:7.2f}×")
    print(f"{'netloom no-op plan':44} {med['nl_plan'] * 1000:8.0f}ms")
    print(f"{'netloom destroy':44} {med['nl_destroy'] * 1000:8.0f}ms")
    print(f"{'watch: container restarted → re-wired':44} {med['restart'] * 1000:8.0f}ms  (from its StartedAt to eth1-3 up with their addresses)")
    print(json.dumps({k: round(v, 4) for k, v in med.items()}))


if __name__ == "__main__":
    main()
