#!/usr/bin/env python3
"""netloom vs ip -batch on N bridges (with an address) + N veth pairs enslaved.

Every figure is measured in this run, on this machine: netloom and the peer
tool do the same kernel work in fresh network namespaces. Wall times are
medians of --runs runs; peak memory is the largest max-RSS of any netloom run.
"""
import argparse, json, os, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETLOOM = os.path.join(ROOT, "target", "release", "netloom")


def sh(cmd):
    subprocess.run(cmd, shell=True, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def timed(args, env=None):
    """Wall seconds and max RSS (KiB) of one command."""
    t = time.perf_counter()
    p = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    _, status, ru = os.wait4(p.pid, 0)
    wall = time.perf_counter() - t
    if status != 0:
        sys.exit(f"failed: {' '.join(args)}: {p.stderr.read().decode()}")
    return wall, ru.ru_maxrss


def netns_del(name):
    subprocess.run(["ip", "netns", "del", name], stderr=subprocess.DEVNULL)


def settle(probe):
    """Waits until the kernel has finished tearing down deleted namespaces.

    A deleted netns is cleaned up asynchronously under the rtnl lock; any
    link operation waits for it. Returns the seconds waited."""
    # The teardown starts only once the last reference (a socket of an exiting
    # process) is gone, so one quick probe proves nothing: ask for three in a row.
    t0, quick = time.perf_counter(), 0
    while quick < 3 and time.perf_counter() - t0 < 120:
        t = time.perf_counter()
        sh(f"ip netns add {probe} && ip -n {probe} link add p0 type bridge && ip netns del {probe}")
        quick = quick + 1 if time.perf_counter() - t < 0.05 else 0
        time.sleep(0.1)
    return time.perf_counter() - t0 - 0.3  # less the three pauses


def topology(n, name, netns):
    lines = [f'[topology]\nname = "{name}"\nnetns = "{netns}"\n']
    for i in range(n):
        lines.append(f'[bridge.b{i}]\naddresses = ["10.{100 + i // 256}.{i % 256}.1/24"]\n')
        lines.append(f'[veth.va{i}]\npeer = "vb{i}"\nmaster = "b{i}"\n')
    return "\n".join(lines)


def batch_create(n):
    out = []
    for i in range(n):
        out += [f"link add b{i} type bridge", f"addr add 10.{100 + i // 256}.{i % 256}.1/24 dev b{i}", f"link set b{i} up",
                f"link add va{i} type veth peer name vb{i}", f"link set va{i} master b{i} up", f"link set vb{i} up"]
    return "\n".join(out) + "\n"


def batch_delete(n):
    return "\n".join([f"link del va{i}" for i in range(n)] + [f"link del b{i}" for i in range(n)]) + "\n"


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=500)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    n, runs = a.n, a.runs
    tmp = tempfile.mkdtemp(prefix="netloom-bench-")
    env = dict(os.environ, NETLOOM_RUN_DIR=os.path.join(tmp, "run"))
    pid = os.getpid() % 100000
    nl_ns, ip_ns, shared_ns, probe = f"nlb{pid}n", f"nlb{pid}i", f"nlb{pid}s", f"nlb{pid}p"
    topo = os.path.join(tmp, "bench.toml")
    with open(topo, "w") as f:
        f.write(topology(n, f"bench{pid}", nl_ns))
    shared_topo = os.path.join(tmp, "shared.toml")
    with open(shared_topo, "w") as f:
        f.write(topology(n, f"benchs{pid}", shared_ns))
    create, delete = os.path.join(tmp, "create.batch"), os.path.join(tmp, "delete.batch")
    with open(create, "w") as f:
        f.write(batch_create(n))
    with open(delete, "w") as f:
        f.write(batch_delete(n))

    r = {k: [] for k in ["nl_apply", "ip_apply", "nl_plan", "ip_dump", "nl_destroy", "nl_destroy_settled"]}
    rss = []
    try:
        for _ in range(runs):
            settle(probe)
            t, m = timed([NETLOOM, "apply", topo], env)
            r["nl_apply"].append(t); rss.append(m)
            sh(f"ip netns add {ip_ns}")
            settle(probe)
            t, _ = timed(["ip", "-n", ip_ns, "-batch", create])
            r["ip_apply"].append(t)
            for _ in range(5):
                t, m = timed([NETLOOM, "plan", "--detailed-exitcode", topo], env)
                r["nl_plan"].append(t); rss.append(m)
                t0 = time.perf_counter()
                for what in ("link", "addr", "route"):
                    subprocess.run(["ip", "-n", ip_ns, "-j", what, "show"], check=True, stdout=subprocess.DEVNULL)
                r["ip_dump"].append(time.perf_counter() - t0)
            settle(probe)
            t, m = timed([NETLOOM, "destroy", topo], env)
            r["nl_destroy"].append(t); rss.append(m)
            # The netns goes at once; the kernel frees its links afterwards.
            r["nl_destroy_settled"].append(t + settle(probe))
            netns_del(ip_ns)
        # Deletion one by one is slow (each unregister waits for RCU): once.
        sh(f"ip netns add {ip_ns}")
        sh(f"ip -n {ip_ns} -batch {create}")
        settle(probe)
        ip_del, _ = timed(["ip", "-n", ip_ns, "-batch", delete])
        netns_del(ip_ns)
        # destroy in a netns netloom did not create: links go in one group delete.
        sh(f"ip netns add {shared_ns}")
        settle(probe)
        timed([NETLOOM, "apply", shared_topo], env)
        settle(probe)
        shared_del, m = timed([NETLOOM, "destroy", shared_topo], env)
        rss.append(m)
        leftover = subprocess.run(["ip", "-n", shared_ns, "-o", "link"], capture_output=True, text=True).stdout.count("\n")
    finally:
        for ns in (nl_ns, ip_ns, shared_ns, probe):
            netns_del(ns)
        shutil.rmtree(tmp, ignore_errors=True)

    med = {k: statistics.median(v) for k, v in r.items()}
    rows = [
        ("first apply, with verification", med["nl_apply"], "ip -batch create", med["ip_apply"], "≤ 1.0×"),
        ("no-op plan", med["nl_plan"], "3 × ip -j dump", med["ip_dump"], "≤ 50 ms"),
        ("destroy (netns netloom created)", med["nl_destroy"], "ip -batch deletes", ip_del, "≤ 0.3×"),
        ("  … until the kernel freed its links", med["nl_destroy_settled"], "ip -batch deletes", ip_del, "≤ 0.3×"),
        ("destroy (shared netns, link group)", shared_del, "ip -batch deletes", ip_del, "≤ 0.3×"),
    ]
    print(f"N = {n} bridges with an address + {n} veth pairs enslaved, fresh netns; "
          f"medians of {runs} runs (plan/dump: {runs * 5}); kernel {os.uname().release}")
    print(f"{'work':36} {'netloom':>10}   {'peer':22} {'peer time':>10} {'ratio':>7}  target")
    for name, ours, peer, theirs, target in rows:
        print(f"{name:36} {ours * 1000:8.1f}ms   {peer:22} {theirs * 1000:8.1f}ms {ours / theirs:6.2f}×  {target}")
    print(f"{'peak memory (max RSS, any run)':36} {max(rss) / 1024:8.1f}MB{'':47}≤ 30 MB")
    if leftover != 1:
        sys.exit(f"shared-netns destroy left {leftover - 1} links behind")
    print(json.dumps({"n": n, "runs": runs, **{k: round(v, 4) for k, v in med.items()},
                      "ip_delete": round(ip_del, 4), "nl_destroy_shared": round(shared_del, 4),
                      "peak_rss_kib": max(rss)}))


if __name__ == "__main__":
    main()
