#!/usr/bin/env python3
"""Services on nftables: netloom against `nft -f` of the same ruleset (the
floor), a no-op plan, one endpoint change among many services, and an
endpoint stopping under watch until the rules no longer lead to it.
Endpoints are E busybox containers wired to one bridge in the topology's
netns (wired before the timings, so only the services are measured).
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETLOOM = os.path.join(ROOT, "target", "release", "netloom")
IMAGE = "netloom-test-busybox:latest"


def sh(cmd, **kw):
    return subprocess.run(cmd, shell=True, check=True, capture_output=True, text=True, **kw).stdout


def timed(cmd, env=None, ok=(0,)):
    t = time.perf_counter()
    p = subprocess.run(cmd, shell=isinstance(cmd, str), env=env, capture_output=True)
    if p.returncode not in ok:
        sys.exit(f"failed: {cmd}: {p.stderr.decode()[-800:]}")
    return time.perf_counter() - t


def topology(pfx, ns, ctrs, services, names_of):
    out = [f'[topology]\nname = "{pfx}"\nnetns = "{ns}"\n[bridge.br0]\naddresses = ["10.75.0.1/16"]\n']
    for i, c in enumerate(ctrs):
        out.append(f'[container.{c}]\ninterfaces.eth1 = {{ bridge = "br0", addresses = ["10.75.1.{i + 1}/16"] }}\n')
    for s in range(services):
        eps = ", ".join(f'"{n}"' for n in names_of(s))
        out.append(f'[service.s{s}]\naddresses = ["10.76.{s // 250}.{s % 250 + 1}"]\n'
                   f'ports = [{{ port = 80, target = 8080 }}]\nnetwork = "br0"\nendpoints = [{eps}]\n')
    return "\n".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--services", type=int, default=100)
    ap.add_argument("--endpoints", type=int, default=10)
    ap.add_argument("--big", type=int, default=1000, help="services for the one-change timing")
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    pfx = f"nlbs{os.getpid() % 100000}"
    ns = pfx
    tmp = tempfile.mkdtemp(prefix="netloom-bench-svc-")
    env = dict(os.environ, NETLOOM_RUN_DIR=os.path.join(tmp, "run"))
    ctrs = [f"{pfx}c{i}" for i in range(a.endpoints)]
    topo = os.path.join(tmp, "lab.toml")
    def write(text):
        with open(topo + ".new", "w") as f:
            f.write(text)
        os.rename(topo + ".new", topo)
    for c in ctrs:
        sh(f"docker run -d --name {c} --network none {IMAGE} sleep 3600")
    table = f"netloom-{pfx}"
    r = {"nl_apply": [], "nft_f": [], "nl_plan": [], "one_change": [], "stop_to_off": []}
    try:
        write(topology(pfx, ns, ctrs, 0, None))
        timed([NETLOOM, "apply", topo], env)
        full = topology(pfx, ns, ctrs, a.services, lambda s: ctrs)
        for _ in range(a.runs):
            write(full)
            r["nl_apply"].append(timed([NETLOOM, "apply", topo], env))
            for _ in range(5):
                r["nl_plan"].append(timed([NETLOOM, "plan", "--detailed-exitcode", topo], env))
            ruleset = sh(f"ip netns exec {ns} nft list table inet {table}")
            script = os.path.join(tmp, "floor.nft")
            with open(script, "w") as f:
                f.write(f"add table inet {table}\ndelete table inet {table}\n" + ruleset)
            sh(f"ip netns exec {ns} nft delete table inet {table}")
            r["nft_f"].append(timed(f"ip netns exec {ns} nft -f {script}"))
            write(topology(pfx, ns, ctrs, 0, None))
            timed([NETLOOM, "apply", topo], env)

        # One endpoint change among many services.
        names = lambda s: ctrs[:2]
        write(topology(pfx, ns, ctrs, a.big, names))
        timed([NETLOOM, "apply", topo], env)
        for i in range(a.runs):
            changed = lambda s: ctrs[:2] if s != 7 else ctrs[:2 + (i % 2 == 0)]
            write(topology(pfx, ns, ctrs, a.big, changed))
            r["one_change"].append(timed([NETLOOM, "apply", topo], env))
            write(topology(pfx, ns, ctrs, a.big, names))
            timed([NETLOOM, "apply", topo], env)

        # Under watch: an endpoint stops → its rules are gone.
        write(full)
        timed([NETLOOM, "apply", topo], env)
        w = subprocess.Popen([NETLOOM, "watch", "--resync", "60s", topo], env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(1.5)
        victim = ctrs[-1]
        for _ in range(a.runs):
            t = time.perf_counter()
            subprocess.run(f"docker stop -t 0 {victim}", shell=True, capture_output=True)
            while victim in sh(f"ip netns exec {ns} nft list table inet {table}"):
                if time.perf_counter() - t > 10:
                    sys.exit("the stopped endpoint stayed in the rules")
                time.sleep(0.01)
            r["stop_to_off"].append(time.perf_counter() - t)
            subprocess.run(f"docker start {victim}", shell=True, capture_output=True)
            while victim not in sh(f"ip netns exec {ns} nft list table inet {table}"):
                time.sleep(0.05)
            time.sleep(0.5)
        w.terminate()
        w.wait()
    finally:
        subprocess.run([NETLOOM, "destroy", topo], env=env, capture_output=True)
        for c in ctrs:
            subprocess.run(f"docker rm -f {c}", shell=True, capture_output=True)

    med = {k: statistics.median(v) for k, v in r.items()}
    print(f"{a.services} services × {a.endpoints} endpoints on a bridge; medians of {a.runs} runs")
    print(f"{'work':52} {'time':>10} {'ratio':>8}")
    print(f"{'nft -f of the same ruleset (floor)':52} {med['nft_f'] * 1000:8.0f}ms {1:7.2f}×")
    print(f"{'netloom apply (observe, resolve, one transaction, verify)':52} {med['nl_apply'] * 1000:8.0f}ms {med['nl_apply'] / med['nft_f']:7.2f}×")
    print(f"{'netloom no-op plan':52} {med['nl_plan'] * 1000:8.0f}ms")
    print(f"{f'one endpoint changed among {a.big} services: apply':52} {med['one_change'] * 1000:8.0f}ms")
    print(f"{'under watch: docker stop → rules off the endpoint':52} {med['stop_to_off'] * 1000:8.0f}ms")
    print(json.dumps({k: round(v, 4) for k, v in med.items()}))


if __name__ == "__main__":
    main()
