#!/usr/bin/env python3
"""How netloom's cost grows: N bridges (with an address) + N veth pairs
enslaved, for N = 500, 2000 and 8000 by default (`-n 500 2000 8000`).

Per N, in fresh network namespaces, each figure beside its peer measured in
this run: validate; first apply vs `ip -batch`; no-op plan with its phases
(load, observe, plan, from netloom's own debug log) vs three `ip -j` dumps
and vs the observation floor (`examples/dump_floor`: the same netlink dumps
from a minimal client, no decoding); a one-line edit under watch until the
kernel shows it; destroy vs `ip -batch` deletes; netloom's peak RSS. The
kernel's asynchronous netns teardown is waited out before each timing.
"""
import argparse, json, os, re, shutil, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from bench import batch_create, batch_delete, netns_del, settle, sh, timed, topology  # noqa: E402
from watch import link, save, wait_for  # noqa: E402

NETLOOM = os.path.join(ROOT, "target", "release", "netloom")
FLOOR = os.path.join(ROOT, "target", "release", "examples", "dump_floor")
PHASE = re.compile(r"DEBUG netloom::engine: (loaded|observed|planned) elapsed=([0-9.]+)(µs|ms|s)")


def ms(value, unit):
    return float(value) * {"µs": 0.001, "ms": 1.0, "s": 1000.0}[unit]


def phases(stderr):
    out = {}
    for m in PHASE.finditer(stderr):
        out[m.group(1)] = ms(m.group(2), m.group(3))
    return out


def fresh_plan(n, runs, tmp, pid, env):
    """`netloom plan` of N new objects into a netns that does not exist yet:
    load and plan (every object a create, rendered) with next to no
    observation, so it can be timed at any N without kernel work."""
    topo = os.path.join(tmp, f"fresh{n}.toml")
    save(topo, topology(n, f"fresh{pid}n{n}", f"nls{pid}none{n}"))
    penv = dict(env, RUST_LOG="netloom=debug")
    out = {"fresh_plan": [], "fresh_load": [], "fresh_diff": [], "fresh_rss": []}
    for _ in range(runs):
        t0 = time.perf_counter()
        p = subprocess.Popen([NETLOOM, "plan", topo], env=penv, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE, text=True)
        err = p.stderr.read()
        _, status, ru = os.wait4(p.pid, 0)
        out["fresh_plan"].append(time.perf_counter() - t0)
        # Every object is a change here: the plan's own peak, at any N.
        out["fresh_rss"].append(ru.ru_maxrss)
        if status != 0:
            sys.exit(f"plan of N={n} new objects failed: {err[-2000:]}")
        ph = phases(err)
        out["fresh_load"].append(ph["loaded"] / 1000)
        out["fresh_diff"].append(ph["planned"] / 1000)
    return out


def one(n, runs, tmp, pid, kernel_max, delete_max):
    env = dict(os.environ, NETLOOM_RUN_DIR=os.path.join(tmp, f"run{n}"))
    nl_ns, ip_ns, probe = f"nls{pid}n{n}", f"nls{pid}i{n}", f"nls{pid}p"
    topo_text = topology(n, f"scale{pid}n{n}", nl_ns)
    topo = os.path.join(tmp, f"scale{n}.toml")
    save(topo, topo_text)
    create, delete = os.path.join(tmp, f"create{n}.batch"), os.path.join(tmp, f"delete{n}.batch")
    with open(create, "w") as f:
        f.write(batch_create(n))
    with open(delete, "w") as f:
        f.write(batch_delete(n))
    r = {k: [] for k in ["validate", "apply", "ip_apply", "plan", "load", "observe", "diff",
                         "ip_dump", "floor", "floor_dumps", "edit", "destroy", "ip_delete", "ip_netns_del"]}
    rss = []
    try:
        for _ in range(runs):
            t, m = timed([NETLOOM, "validate", topo], env)
            r["validate"].append(t)
            rss.append(m)
        fresh = fresh_plan(n, runs, tmp, pid, env)
        rss.extend(fresh.pop("fresh_rss"))
        r.update(fresh)
        if n > kernel_max:
            med = {k: statistics.median(v) for k, v in r.items() if v}
            med["rss_kib"] = max(rss)
            return med
        settle(probe)
        t, m = timed([NETLOOM, "apply", topo], env)
        r["apply"].append(t)
        rss.append(m)
        sh(f"ip netns add {ip_ns}")
        settle(probe)
        t, _ = timed(["ip", "-n", ip_ns, "-batch", create])
        r["ip_apply"].append(t)
        settle(probe)
        penv = dict(env, RUST_LOG="netloom=debug")
        for _ in range(runs + 2):
            t0 = time.perf_counter()
            p = subprocess.Popen([NETLOOM, "plan", "--detailed-exitcode", topo], env=penv,
                                 stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            err = p.stderr.read()
            _, status, ru = os.wait4(p.pid, 0)
            r["plan"].append(time.perf_counter() - t0)
            rss.append(ru.ru_maxrss)
            if status != 0:
                sys.exit(f"the no-op plan of N={n} was not clean: {err[-2000:]}")
            ph = phases(err)
            r["load"].append(ph["loaded"] / 1000)
            r["observe"].append(ph["observed"] / 1000)
            r["diff"].append(ph["planned"] / 1000)
            t0 = time.perf_counter()
            for what in ("link", "addr", "route"):
                subprocess.run(["ip", "-n", ip_ns, "-j", what, "show"], check=True, stdout=subprocess.DEVNULL)
            r["ip_dump"].append(time.perf_counter() - t0)
            t0 = time.perf_counter()
            out = subprocess.run([FLOOR, nl_ns], check=True, capture_output=True, text=True).stdout.split()
            r["floor"].append(time.perf_counter() - t0)
            r["floor_dumps"].append(int(out[1]) / 1e6)
        # A one-line edit under watch (the MTU of one bridge, saved
        # atomically) until `ip -j` shows it.
        log = open(os.path.join(tmp, f"watch{n}.log"), "w")
        w = subprocess.Popen([NETLOOM, "watch", "--resync", "300s", topo], env=env, stdout=log, stderr=log)
        try:
            wait_for(lambda: "reconcile" in open(log.name).read(), 120)
            settle(probe)
            victim = f"b{n // 2}"
            for i in range(runs):
                mtu = 1400 - i
                t0 = time.perf_counter()
                save(topo, topo_text.replace(f"[bridge.{victim}]\n", f"[bridge.{victim}]\nmtu = {mtu}\n", 1))
                wait_for(lambda: (link(nl_ns, victim) or {}).get("mtu") == mtu)
                r["edit"].append(time.perf_counter() - t0)
                time.sleep(0.3)
        finally:
            w.terminate()
            w.wait(30)
            log.close()
        settle(probe)
        t, m = timed([NETLOOM, "destroy", topo], env)
        r["destroy"].append(t)
        rss.append(m)
        settle(probe)
        if n <= delete_max:
            # One by one, each unregister waits for RCU: minutes at N=2000.
            t, _ = timed(["ip", "-n", ip_ns, "-batch", delete])
            r["ip_delete"].append(t)
        else:
            t, _ = timed(["ip", "netns", "del", ip_ns])
            r["ip_netns_del"].append(t)
    finally:
        for ns in (nl_ns, ip_ns, probe):
            netns_del(ns)
    med = {k: statistics.median(v) for k, v in r.items() if v}
    med["rss_kib"] = max(rss)
    return med


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, nargs="+", default=[500, 2000, 8000])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--kernel-max", type=int, default=2000,
                    help="largest N also applied to the kernel (the kernel's own cost grows faster than linearly: "
                         "ip -batch takes ~27 s at N=2000 here); above it only validate and a fresh plan")
    ap.add_argument("--delete-max", type=int, default=500,
                    help="largest N whose peer for destroy is ip -batch deletes (else ip netns del)")
    a = ap.parse_args()
    for exe in (NETLOOM, FLOOR):
        if not os.path.exists(exe):
            sys.exit(f"build first: cargo build --release --bins --examples ({exe} is missing)")
    pid = os.getpid() % 100000
    tmp = tempfile.mkdtemp(prefix="netloom-bench-scale-")
    res = {}
    try:
        for n in a.n:
            res[n] = one(n, a.runs, tmp, pid, a.kernel_max, a.delete_max)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"N bridges with an address + N veth pairs enslaved (3N links, N addresses); medians of {a.runs} "
          f"(plan: {a.runs + 2}); kernel {os.uname().release}")
    cols = "".join(f"{'N=' + str(n):>12}" for n in a.n)
    print(f"{'':40}{cols}")

    def row(name, f, unit="ms"):
        cells = []
        for n in a.n:
            try:
                v = f(res[n], n)
            except KeyError:
                cells.append(f"{'–':>12}")
                continue
            cells.append(f"{v:>10.1f}{unit}" if unit != "x" else f"{v:>11.2f}x")
        print(f"{name:40}{''.join(cells)}")

    row("validate", lambda m, n: m["validate"] * 1000)
    row("  µs per object (2N objects)", lambda m, n: m["validate"] * 1e6 / (2 * n), "µs")
    row("plan of 2N new objects (no kernel)", lambda m, n: m["fresh_plan"] * 1000)
    row("  load", lambda m, n: m["fresh_load"] * 1000)
    row("  plan (diff)", lambda m, n: m["fresh_diff"] * 1000)
    row("  µs per object, load + plan", lambda m, n: (m["fresh_load"] + m["fresh_diff"]) * 1e6 / (2 * n), "µs")
    row("apply (with verification)", lambda m, n: m["apply"] * 1000)
    row("  ip -batch", lambda m, n: m["ip_apply"] * 1000)
    row("  apply / ip -batch", lambda m, n: m["apply"] / m["ip_apply"], "x")
    row("no-op plan, whole process", lambda m, n: m["plan"] * 1000)
    row("  load (read, validate, graph)", lambda m, n: m["load"] * 1000)
    row("  observe", lambda m, n: m["observe"] * 1000)
    row("  plan (diff)", lambda m, n: m["diff"] * 1000)
    row("  µs per object, load + plan", lambda m, n: (m["load"] + m["diff"]) * 1e6 / (2 * n), "µs")
    row("  3 × ip -j dumps", lambda m, n: m["ip_dump"] * 1000)
    row("  floor: same dumps, no decoding", lambda m, n: m["floor"] * 1000)
    row("    of which the dumps", lambda m, n: m["floor_dumps"] * 1000)
    row("  plan / (floor + load)", lambda m, n: m["plan"] / (m["floor"] + m["load"]), "x")
    row("watch: one-line edit → converged", lambda m, n: m["edit"] * 1000)
    row("destroy (netns it made)", lambda m, n: m["destroy"] * 1000)
    row("  ip -batch deletes", lambda m, n: m["ip_delete"] * 1000)
    row("  ip netns del", lambda m, n: m["ip_netns_del"] * 1000)
    row("peak RSS of netloom", lambda m, n: m["rss_kib"] / 1024, "MB")
    base, top = a.n[0], a.n[-1]
    per = lambda m, n, k: m[k] / n  # noqa: E731
    print(f"growth of time per object, N={top} vs N={base} (target ≤ 1.3×): "
          f"validate {per(res[top], top, 'validate') / per(res[base], base, 'validate'):.2f}×, "
          f"fresh load+plan {(res[top]['fresh_load'] + res[top]['fresh_diff']) / top / ((res[base]['fresh_load'] + res[base]['fresh_diff']) / base):.2f}×")
    print("targets: no-op plan at N=2000 ≤ 100 ms and ≤ 1.3× (floor + load); edit at N=2000 ≤ 200 ms; "
          "apply at N=2000 ≤ 1.1× ip -batch; peak RSS at N=8000 ≤ 60 MB")
    print(json.dumps({str(n): {k: round(v, 5) for k, v in m.items()} for n, m in res.items()}))


if __name__ == "__main__":
    main()
