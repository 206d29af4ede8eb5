#!/usr/bin/env python3
"""netloom vs a shell loop invoking Debian's CNI plugins directly (the floor
a user would script): N containers started --network none, each attached
through bridge + host-local. Measured in the same run, on the same
containers, with the same plugin, environment and config.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETLOOM = os.path.join(ROOT, "target", "release", "netloom")
IMAGE = "netloom-test-busybox:latest"


def sh(cmd):
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def timed(cmd, env=None, ok=(0,)):
    t = time.perf_counter()
    p = subprocess.run(cmd, shell=isinstance(cmd, str), env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if p.returncode not in ok:
        sys.exit(f"failed: {cmd}: {p.stderr.decode()[-800:]}")
    return time.perf_counter() - t


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=20)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    n = a.n
    pfx = f"nlbc{os.getpid() % 100000}"
    tmp = tempfile.mkdtemp(prefix="netloom-bench-cni-")
    env = dict(os.environ, NETLOOM_RUN_DIR=os.path.join(tmp, "run"))
    ctrs = [f"{pfx}c{i}" for i in range(n)]
    nl_ns, sh_ns = f"{pfx}n", f"{pfx}s"
    nl_net, sh_net = f"{pfx}nl", f"{pfx}sh"

    topo = os.path.join(tmp, "lab.toml")
    with open(topo, "w") as f:
        f.write(f'[topology]\nname = "{pfx}"\nnetns = "{nl_ns}"\n\n[cni.{nl_net}]\n'
                f'plugins = [{{ type = "bridge", bridge = "cbr0", isGateway = true, '
                f'ipam = {{ type = "host-local", subnet = "10.73.0.0/24" }} }}]\n\n')
        for c in ctrs:
            f.write(f'[container.{c}]\ncni.eth1 = {{ network = "{nl_net}" }}\n')

    for c in ctrs:
        sh(f"docker run -d --name {c} --network none {IMAGE} sleep 3600")
    info = [subprocess.run(["docker", "inspect", "-f", "{{.Id}} {{.NetworkSettings.SandboxKey}}", c],
                           capture_output=True, text=True).stdout.split() for c in ctrs]

    # The floor: one plugin call per container, nothing recorded.
    conf = json.dumps({"cniVersion": "1.0.0", "name": sh_net, "type": "bridge", "bridge": "cbr0",
                       "isGateway": True, "ipam": {"type": "host-local", "subnet": "10.73.0.0/24"}})
    def loop(cmd):
        lines = [f"ip netns add {sh_ns} 2>/dev/null || true"] if cmd == "ADD" else []
        for (cid, netns) in info:
            lines.append(f"echo '{conf}' | ip netns exec {sh_ns} env -i CNI_COMMAND={cmd} CNI_CONTAINERID={cid} "
                         f"CNI_NETNS={netns} CNI_IFNAME=eth1 CNI_PATH=/usr/lib/cni /usr/lib/cni/bridge >/dev/null")
        if cmd == "DEL":
            lines.append(f"ip netns del {sh_ns}")
        path = os.path.join(tmp, f"{cmd}.sh")
        with open(path, "w") as f:
            f.write("set -e\n" + "\n".join(lines) + "\n")
        return f"sh {path}"
    add, delete = loop("ADD"), loop("DEL")

    r = {"nl_apply": [], "nl_plan": [], "nl_destroy": [], "script": []}
    try:
        for _ in range(a.runs):
            r["nl_apply"].append(timed([NETLOOM, "apply", topo], env))
            for _ in range(5):
                r["nl_plan"].append(timed([NETLOOM, "plan", "--detailed-exitcode", topo], env))
            r["nl_destroy"].append(timed([NETLOOM, "destroy", topo], env))
            time.sleep(1)
            r["script"].append(timed(add))
            subprocess.run(delete, shell=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1)
    finally:
        subprocess.run(delete + " >/dev/null 2>&1", shell=True)
        subprocess.run([NETLOOM, "destroy", topo], env=env, capture_output=True)
        for c in ctrs:
            subprocess.run(f"docker rm -f {c} >/dev/null 2>&1", shell=True)
        subprocess.run(f"rm -rf /var/lib/cni/networks/{nl_net} /var/lib/cni/networks/{sh_net}", shell=True)

    med = {k: statistics.median(v) for k, v in r.items()}
    print(f"{n} containers attached through CNI bridge + host-local; medians of {a.runs} runs")
    print(f"{'work':48} {'time':>10} {'ratio':>8}")
    print(f"{'shell loop of plugin calls (no cache, no checks)':48} {med['script'] * 1000:8.0f}ms {1:7.2f}×")
    print(f"{'netloom apply (observe, ADD, cache, verify+CHECK)':48} {med['nl_apply'] * 1000:8.0f}ms {med['nl_apply'] / med['script']:7.2f}×")
    print(f"{'netloom no-op plan (CHECK on all)':48} {med['nl_plan'] * 1000:8.0f}ms")
    print(f"{'netloom destroy (DEL on all)':48} {med['nl_destroy'] * 1000:8.0f}ms")
    print(json.dumps({k: round(v, 4) for k, v in med.items()}))


if __name__ == "__main__":
    main()
