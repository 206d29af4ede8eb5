#!/usr/bin/env python3
"""First apply of a dual-stack fabric into freshly started containers:
a ring of N nodes (IPv4 /31 + IPv6 /127 on every link), R rounds, each
with new containers; then one chain of C nodes. Prints exit codes and
times (the issue's target: exit 0 every time, ≤ 500 ms for the ring).
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETLOOM = os.path.join(ROOT, "target", "release", "netloom")
IMAGE = "netloom-test-busybox:latest"


def topology(name, ctrs, ring):
    out = [f'[topology]\nname = "{name}"\n'] + [f"[container.{c}]\n" for c in ctrs]
    n = len(ctrs)
    for i in range(n if ring else n - 1):
        a, b = ctrs[i], ctrs[(i + 1) % n]
        x, y = 2 * i, 2 * i + 1
        out.append(f'[[link]]\nendpoints = ["{a}:eth1", "{b}:eth2"]\naddresses = {{ '
                   f'"{a}:eth1" = ["10.{100 + x // 65536}.{x // 256 % 256}.{x % 256}/31", "fd00:100::{x:x}/127"], '
                   f'"{b}:eth2" = ["10.{100 + y // 65536}.{y // 256 % 256}.{y % 256}/31", "fd00:100::{y:x}/127"] }}\n')
    return "".join(out)


def run(name, n, ring, env, tmp):
    ctrs = [f"{name}c{i}" for i in range(n)]
    for c in ctrs:
        subprocess.run(f"docker run -d --name {c} --network none {IMAGE} sleep 3600", shell=True, check=True,
                       capture_output=True)
    path = os.path.join(tmp, f"{name}.toml")
    with open(path, "w") as f:
        f.write(topology(name, ctrs, ring))
    try:
        t = time.perf_counter()
        p = subprocess.run([NETLOOM, "apply", path], env=env, capture_output=True, text=True)
        took = time.perf_counter() - t
        if p.returncode != 0:
            print(p.stderr[-600:], file=sys.stderr)
        return p.returncode, took
    finally:
        subprocess.run([NETLOOM, "destroy", path], env=env, capture_output=True)
        subprocess.run("docker rm -f " + " ".join(ctrs), shell=True, capture_output=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=10, help="nodes in the ring")
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--chain", type=int, default=200, help="nodes in the chain (0: skip)")
    a = ap.parse_args()
    pfx = f"nlbf{os.getpid() % 100000}"
    tmp = tempfile.mkdtemp(prefix="netloom-bench-fabric-")
    env = dict(os.environ, NETLOOM_RUN_DIR=os.path.join(tmp, "run"))
    ring = [run(f"{pfx}r{i}", a.n, True, env, tmp) for i in range(a.rounds)]
    ok = sum(1 for c, _ in ring if c == 0)
    times = [t for _, t in ring]
    print(f"dual-stack ring of {a.n} fresh containers ({a.n} links, 4 addresses each), {a.rounds} rounds")
    print(f"  first apply exit 0: {ok}/{a.rounds}; median {statistics.median(times) * 1000:.0f} ms, max {max(times) * 1000:.0f} ms")
    res = {"ring_ok": ok, "ring_rounds": a.rounds, "ring_median": round(statistics.median(times), 4),
           "ring_max": round(max(times), 4)}
    if a.chain:
        code, took = run(f"{pfx}ch", a.chain, False, env, tmp)
        print(f"dual-stack chain of {a.chain} fresh containers: first apply exit {code} in {took * 1000:.0f} ms")
        res.update(chain_code=code, chain=round(took, 4))
    print(json.dumps(res))


if __name__ == "__main__":
    main()
