#!/usr/bin/env python3
"""netloom watch on the 500-bridge topology: time from a one-line file edit
to converged, from a bridge deleted by hand to restored, and the watcher's
peak memory. Convergence is observed from outside with `ip -j`, polled.
"""
import argparse, json, os, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from bench import settle, topology  # noqa: E402

NETLOOM = os.path.join(ROOT, "target", "release", "netloom")


def link(ns, name):
    p = subprocess.run(["ip", "-n", ns, "-j", "-d", "link", "show", "dev", name], capture_output=True, text=True)
    return json.loads(p.stdout)[0] if p.returncode == 0 and p.stdout.strip() else None


def wait_for(check, timeout=30):
    t = time.perf_counter()
    while time.perf_counter() - t < timeout:
        if check():
            return time.perf_counter() - t
        time.sleep(0.002)
    sys.exit("watch did not converge in time")


def save(path, text):
    tmp = path + ".swp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=500)
    ap.add_argument("--runs", type=int, default=5)
    a = ap.parse_args()
    pid = os.getpid() % 100000
    ns = f"nlbw{pid}"
    tmp = tempfile.mkdtemp(prefix="netloom-bench-watch-")
    env = dict(os.environ, NETLOOM_RUN_DIR=os.path.join(tmp, "run"), RUST_LOG="netloom=info")
    path = os.path.join(tmp, "lab.toml")
    base = topology(a.n, f"benchw{pid}", ns)
    save(path, base)
    log = open(os.path.join(tmp, "watch.log"), "w")
    w = subprocess.Popen([NETLOOM, "watch", "--resync", "30s", path], env=env, stdout=log, stderr=log)
    edit, drift = [], []
    try:
        wait_for(lambda: link(ns, f"va{a.n - 1}") is not None, 60)
        time.sleep(1)
        # Namespaces deleted before this run are freed asynchronously under
        # the rtnl lock; measure on a settled kernel, as bench.py does.
        settle(f"{ns}p")
        target = f"b{a.n // 2}"
        for i in range(a.runs):
            mtu = 1400 - i  # a one-line edit: the MTU of one bridge
            t0 = time.perf_counter()
            save(path, base.replace(f"[bridge.{target}]\n", f"[bridge.{target}]\nmtu = {mtu}\n", 1))
            wait_for(lambda: (link(ns, target) or {}).get("mtu") == mtu)
            edit.append(time.perf_counter() - t0)
            time.sleep(0.3)
        for i in range(a.runs):
            victim = f"b{10 + i}"
            t0 = time.perf_counter()
            subprocess.run(["ip", "-n", ns, "link", "del", victim], check=True)
            # Restored: the bridge is back and its veth enslaved to it again.
            wait_for(lambda: (link(ns, f"va{10 + i}") or {}).get("master") == victim)
            drift.append(time.perf_counter() - t0)
            time.sleep(0.3)
        with open(f"/proc/{w.pid}/status") as f:
            hwm = next(int(l.split()[1]) for l in f if l.startswith("VmHWM"))
    finally:
        w.terminate()
        w.wait(10)
        subprocess.run([NETLOOM, "destroy", path], env=env, capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], stderr=subprocess.DEVNULL)
    print(f"watch on {a.n} bridges + {a.n} veth pairs; medians of {a.runs}")
    print(f"{'one-line edit → converged':34} {statistics.median(edit) * 1000:7.0f} ms   target ≤ 250 ms")
    print(f"{'bridge deleted by hand → restored':34} {statistics.median(drift) * 1000:7.0f} ms   target ≤ 500 ms")
    print(f"{'peak memory of watch (VmHWM)':34} {hwm / 1024:7.1f} MB   target ≤ 30 MB")
    print(json.dumps({"edit_ms": [round(x * 1000) for x in edit], "drift_ms": [round(x * 1000) for x in drift], "vmhwm_kib": hwm}))


if __name__ == "__main__":
    main()
