#!/usr/bin/env python3
"""netloom vs an equivalent ip/nsenter script: N containers in a chain of
N-1 point-to-point links, plus one bridge with all N attached, each end
addressed and up. Measured in the same run, on the same containers.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

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

    r = {"nl_apply": [], "nl_plan": [], "nl_destroy": [], "script": []}
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
    print(json.dumps({k: round(v, 4) for k, v in med.items()}))


if __name__ == "__main__":
    main()
