#!/usr/bin/env python3
"""BGP: announcing N prefixes (netloom apply vs a `gobgp global rib add`
loop, what users script, and vs the same AddPath calls from a minimal
client, the floor); N routes exported by BIRD until all are in the kernel
under watch (vs `ip -batch` adding the same routes); a no-op plan with N
announcements and P peers, with netloom's peak memory. gobgpd and BIRD run
in throwaway netns; every number is measured in this run.
"""
import argparse, datetime, os, resource, statistics, subprocess, sys, tempfile, time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NETLOOM = os.path.join(ROOT, "target", "release", "netloom")
FLOOR = os.path.join(ROOT, "target", "release", "examples", "bgp_floor")


def sh(cmd, check=True):
    return subprocess.run(cmd, shell=True, check=check, capture_output=True, text=True).stdout


def timed(cmd, env=None):
    t = time.perf_counter()
    p = subprocess.run(cmd, shell=isinstance(cmd, str), env=env, capture_output=True)
    if p.returncode != 0:
        sys.exit(f"failed: {cmd}: {p.stderr.decode()[-800:]}")
    return time.perf_counter() - t


def prefixes(n):
    return [f"10.{100 + i // 250}.{i % 250}.0/24" for i in range(n)]


def wait(what, check, secs=60):
    t = time.time()
    while time.time() - t < secs:
        if check():
            return
        time.sleep(0.01)
    sys.exit(f"timeout: {what}")


class Lab:
    """netns A (speaker) and B (BIRD) with a veth; P addresses on B for P peers."""

    def __init__(self, tag, peers):
        self.a, self.b, self.dir = f"nlbg{tag}a", f"nlbg{tag}b", tempfile.mkdtemp(prefix="nlbgp")
        for n in (self.a, self.b):
            sh(f"ip netns del {n}", check=False)
            sh(f"ip netns add {n}")
        sh(f"ip link add bga netns {self.a} type veth peer name bgb netns {self.b}")
        sh(f"ip -n {self.a} addr add 10.250.0.1/16 dev bga && ip -n {self.a} link set bga up && ip -n {self.a} link set lo up")
        for p in range(peers):
            sh(f"ip -n {self.b} addr add 10.250.1.{p + 1}/16 dev bgb")
        sh(f"ip -n {self.b} link set bgb up && ip -n {self.b} link set lo up")
        self.peers = peers
        self.env = dict(os.environ, NETLOOM_RUN_DIR=os.path.join(self.dir, "run"), BENCH_PW="bench-pw")

    def bird(self, routes):
        static = "".join(f"route {p} blackhole; " for p in routes)
        peers = "".join(
            f"protocol bgp p{i} {{ local 10.250.1.{i + 1} as 65002; neighbor 10.250.0.1 as 65001; "
            f"hold time 6; keepalive time 2; connect delay time 1; connect retry time 2; error wait time 1,5; "
            f"ipv4 {{ import all; export all; }}; }}\n" for i in range(self.peers))
        conf = os.path.join(self.dir, "bird.conf")
        with open(conf, "w") as f:
            f.write(f"router id 10.250.1.1;\nprotocol device {{}}\nprotocol static statics {{ ipv4; {static} }}\n{peers}")
        sock = os.path.join(self.dir, "bird.sock")
        if os.path.exists(sock):
            sh(f"birdc -s {sock} configure")
        else:
            sh(f"ip netns exec {self.b} bird -c {conf} -s {sock} -P {self.dir}/bird.pid")

    def topology(self, announce, peers):
        ann = ", ".join(f'"{p}"' for p in announce)
        out = [f'[topology]\nname = "{self.a}"\nnetns = "{self.a}"\n[bgp]\nasn = 65001\nrouter_id = "10.250.0.1"\nannounce = [{ann}]\n']
        for i in range(peers):
            out.append(f'[bgp.peer.p{i}]\naddress = "10.250.1.{i + 1}"\nasn = 65002\nhold_time = 6\n')
        path = os.path.join(self.dir, f"t{len(announce)}-{peers}.toml")
        with open(path, "w") as f:
            f.write("\n".join(out))
        return path

    def nl(self, *args):
        return subprocess.run([NETLOOM, *args], env=self.env, capture_output=True, text=True)

    def gobgpd(self):
        sock = os.path.join(self.dir, "manual.sock")
        self.manual = subprocess.Popen(["ip", "netns", "exec", self.a, "gobgpd", "--api-hosts", f"unix://{sock}",
                                        "--pprof-disable", "-p"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait("manual gobgpd", lambda: os.path.exists(sock))
        time.sleep(0.2)
        sh(f"gobgp --target unix://{sock} global as 65001 router-id 10.250.0.1")
        return sock

    def stop_manual(self):
        self.manual.kill()
        self.manual.wait()
        sh(f"rm -f {self.dir}/manual.sock")

    def close(self, topo):
        self.nl("destroy", topo)
        sh(f"kill $(cat {self.dir}/bird.pid) 2>/dev/null", check=False)
        for n in (self.a, self.b):
            sh(f"ip netns del {n}", check=False)
        sh(f"rm -rf {self.dir}")


def announce(n, rounds):
    lab = Lab("an", 1)
    empty, full = lab.topology([], 1), lab.topology(prefixes(n), 1)
    nl, cli, floor, stream = [], [], [], []
    for _ in range(rounds):
        r = lab.nl("apply", empty)
        if r.returncode:
            sys.exit(r.stderr)
        nl.append(timed([NETLOOM, "apply", full], env=lab.env))
        got = sh(f"gobgp --target unix://{lab.env['NETLOOM_RUN_DIR']}/{lab.a}.gobgp.sock global rib summary")
        assert f"{n}" in got, got
        lab.nl("destroy", full)
        sock = lab.gobgpd()
        script = "".join(f"gobgp --target unix://{sock} global rib add -a ipv4 {p}\n" for p in prefixes(n))
        cli.append(timed(["sh", "-c", script]))
        lab.stop_manual()
        sock = lab.gobgpd()
        floor.append(timed([FLOOR, sock, str(n)]))
        lab.stop_manual()
        sock = lab.gobgpd()
        stream.append(timed([FLOOR, sock, str(n), "stream"]))
        lab.stop_manual()
    lab.close(full)
    m = statistics.median
    print(f"announce {n} prefixes (median of {rounds}):")
    print(f"  netloom apply        {m(nl) * 1000:8.0f} ms")
    print(f"  gobgp CLI loop       {m(cli) * 1000:8.0f} ms   netloom/CLI   = {m(nl) / m(cli):.3f}x  (target <= 0.1x)")
    print(f"  minimal gRPC client  {m(floor) * 1000:8.0f} ms   netloom/floor = {m(nl) / m(floor):.2f}x  (target <= 1.2x; AddPath per prefix)")
    print(f"  same, AddPathStream  {m(stream) * 1000:8.0f} ms   netloom/it    = {m(nl) / m(stream):.2f}x  (what netloom sends)")


def learned(n, rounds):
    runs = [learned_once(n) for _ in range(rounds)]
    took = statistics.median(t for t, _ in runs)
    reconciles = runs[-1][1]
    ips, bgps = [], []
    for _ in range(rounds):
        ips.append(batch_floor(n))
        bgps.append(transfer(n))
    ip, bgp = statistics.median(ips), statistics.median(bgps)
    print(f"{n} routes exported by BIRD until all are in the kernel under watch (median of {rounds}):")
    print(f"  netloom watch        {took * 1000:8.0f} ms (from `birdc configure`; rounds: {', '.join(f'{t * 1000:.0f}' for t, _ in runs)} ms)")
    for l in reconciles[-2:]:
        print("    " + l.strip()[-150:])
    print(f"  ip -batch            {ip * 1000:8.0f} ms   watch/ip = {took / ip:.1f}x  (target <= 2x)")
    print(f"  BGP alone            {bgp * 1000:8.0f} ms   (same export into a bare gobgpd until its best-path events hold all {n}; no kernel)")
    print(f"  floor = BGP + ip     {(bgp + ip) * 1000:8.0f} ms   watch/floor = {took / (bgp + ip):.2f}x;"
          f" netloom's own part (watch - BGP) = {(took - bgp) * 1000:.0f} ms = {(took - bgp) / ip:.1f}x ip -batch")


def learned_once(n):
    lab = Lab("le", 1)
    lab.bird([])
    topo = lab.topology([], 1)
    log = open(os.path.join(lab.dir, "watch.log"), "w")
    w = subprocess.Popen([NETLOOM, "watch", topo], env=lab.env, stdout=log, stderr=log)
    count = lambda: len(sh(f"ip -n {lab.a} route show proto 79").splitlines())
    wait("session", lambda: "established" in lab.nl("show", topo).stdout)
    t = time.time()
    lab.bird(prefixes(n))
    wait(f"{n} routes in the kernel", lambda: count() >= n)
    w.terminate()
    w.wait()
    log.close()
    lines = open(os.path.join(lab.dir, "watch.log")).readlines()
    reconciles = [l for l in lines if "reconcile trigger" in l]
    # Timed to watch's own line for the last learned-routes step (stamped as
    # it finishes), not to when the poll above noticed: polling `ip route`
    # every 10 ms would add its own lag to netloom's figure only.
    done = [l for l in lines if "applied ~ bgp routes" in l or "applied + bgp routes" in l][-1]
    stamp = datetime.datetime.fromisoformat(done.split()[0].replace("Z", "+00:00")).timestamp()
    took = stamp - t
    if os.environ.get("BENCH_DEBUG"):
        print("".join(l[:160] + "\n" for l in open(os.path.join(lab.dir, "watch.log")).readlines()[-12:]))
    lab.close(topo)
    return took, reconciles


def batch_floor(n):
    """The same routes with `ip -batch` into a fresh netns."""
    ns = "nlbgbatch"
    sh(f"ip netns del {ns}", check=False)
    sh(f"ip netns add {ns} && ip -n {ns} link add d0 type veth peer name d1 && ip -n {ns} link set d1 up && ip -n {ns} link set d0 up && ip -n {ns} addr add 10.250.0.1/16 dev d0")
    batch = os.path.join(tempfile.gettempdir(), "nlbg.batch")
    with open(batch, "w") as f:
        f.write("".join(f"route add {p} via 10.250.1.1 proto 79 metric 20\n" for p in prefixes(n)))
    ip = timed(f"ip -n {ns} -batch {batch}")
    sh(f"ip netns del {ns}")
    return ip


def transfer(n):
    """The same BIRD export into a gobgpd that no netloom drives, timed
    until a minimal client has seen all N best paths: what BGP itself costs
    before anything reaches the kernel."""
    lab = Lab("tr", 1)
    lab.bird([])
    sock = lab.gobgpd()
    sh(f"gobgp --target unix://{sock} neighbor add 10.250.1.1 as 65002")
    wait("session", lambda: "Establ" in sh(f"gobgp --target unix://{sock} neighbor"))
    w = subprocess.Popen([FLOOR, sock, str(n), "watch"], stdout=subprocess.PIPE, text=True)
    assert w.stdout.readline().strip() == "ready"
    t = time.perf_counter()
    lab.bird(prefixes(n))
    if w.wait(timeout=60):
        sys.exit("the watching floor client failed")
    took = time.perf_counter() - t
    lab.stop_manual()
    lab.close(lab.topology([], 1))
    return took


def noop(n, peers, rounds):
    lab = Lab("np", peers)
    lab.bird([])
    topo = lab.topology(prefixes(n), peers)
    r = lab.nl("apply", topo)
    if r.returncode:
        sys.exit(r.stderr)
    times = []
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    for _ in range(rounds):
        times.append(timed([NETLOOM, "plan", "--detailed-exitcode", topo], env=lab.env))
    peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    lab.close(topo)
    print(f"no-op plan, {n} announcements and {peers} peers (median of {rounds}):")
    print(f"  netloom plan         {statistics.median(times) * 1000:8.0f} ms  (target <= 60 ms)")
    print(f"  peak memory          {peak / 1024:8.1f} MB  (target <= 40 MB; max RSS of any child so far: {before / 1024:.1f} MB before)")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--peers", type=int, default=10)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--only", choices=["announce", "learned", "noop"])
    a = ap.parse_args()
    if not os.path.exists(FLOOR):
        sys.exit("build first: cargo build --release --examples")
    if a.only in (None, "announce"):
        announce(a.n, a.rounds)
    if a.only in (None, "learned"):
        learned(a.n, a.rounds)
    if a.only in (None, "noop"):
        noop(a.n, a.peers, a.rounds + 2)


if __name__ == "__main__":
    main()
