//! Shared helpers for tests against the real kernel: unique names, netns
//! guards, running the netloom binary, reading state with `ip -j`.
#![allow(dead_code)]

use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};

pub fn netloom() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_netloom"));
    c.env("NETLOOM_RUN_DIR", run_dir());
    c
}

/// Tests keep their locks and ledgers apart from a real /run/netloom.
pub fn run_dir() -> PathBuf {
    std::env::temp_dir().join("netloom-tests-run")
}

/// A name unique to this process and call, short enough for netns and
/// topology names: `nlt<pid>x<n>`.
pub fn unique(tag: &str) -> String {
    static N: AtomicUsize = AtomicUsize::new(0);
    format!(
        "{tag}{}x{}",
        std::process::id() % 100000,
        N.fetch_add(1, Ordering::SeqCst)
    )
}

pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn all(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }
}

impl std::fmt::Debug for Run {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "exit {}\n--- stdout\n{}--- stderr\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

pub fn run(mut c: Command) -> Run {
    let Output {
        status,
        stdout,
        stderr,
    } = c.output().expect("run command");
    Run {
        code: status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&stdout).into(),
        stderr: String::from_utf8_lossy(&stderr).into(),
    }
}

pub fn nl(args: &[&str], paths: &[&Path]) -> Run {
    let mut c = netloom();
    c.args(args);
    for p in paths {
        c.arg(p);
    }
    run(c)
}

pub fn sh(cmd: &str) -> Run {
    let mut c = Command::new("sh");
    c.arg("-c").arg(cmd);
    run(c)
}

/// Runs a shell command and fails the test if it fails.
pub fn must(cmd: &str) -> String {
    let r = sh(cmd);
    assert_eq!(r.code, 0, "`{cmd}` failed: {r:?}");
    r.stdout
}

/// A network namespace removed (with its topology's ledger) when dropped.
pub struct Netns {
    pub name: String,
}

impl Netns {
    /// A name for a netns netloom itself will create.
    pub fn named(tag: &str) -> Netns {
        Netns { name: unique(tag) }
    }

    /// A netns that exists before netloom runs (made with `ip netns add`).
    pub fn precreated(tag: &str) -> Netns {
        let n = Netns::named(tag);
        must(&format!("ip netns add {}", n.name));
        n
    }

    /// The netns is there and usable: its file is bound to a namespace
    /// (nsfs), not the empty file netloom makes just before the bind mount.
    pub fn exists(&self) -> bool {
        use std::os::unix::fs::MetadataExt;
        let nsfs = std::fs::metadata("/proc/self/ns/net").map(|m| m.dev());
        let here = std::fs::metadata(Path::new("/run/netns").join(&self.name)).map(|m| m.dev());
        matches!((here, nsfs), (Ok(a), Ok(b)) if a == b)
    }

    pub fn ip_json(&self, what: &str) -> Value {
        let out = must(&format!("ip -n {} -j {what}", self.name));
        if out.trim().is_empty() {
            return Value::Array(vec![]);
        }
        serde_json::from_str(&out).unwrap_or_else(|e| panic!("ip -j {what}: {e}: {out}"))
    }

    /// Link names other than lo, sorted.
    pub fn link_names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .ip_json("link show")
            .as_array()
            .unwrap()
            .iter()
            .map(|l| l["ifname"].as_str().unwrap().to_string())
            .filter(|n| n != "lo")
            .collect();
        v.sort();
        v
    }

    pub fn link(&self, name: &str) -> Value {
        self.ip_json(&format!("-d link show dev {name}"))[0].clone()
    }

    /// `ADDR/PLEN` of every global address on a link, sorted.
    pub fn addrs(&self, name: &str) -> Vec<String> {
        let mut v: Vec<String> = self.ip_json(&format!("addr show dev {name}"))[0]["addr_info"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|a| a["scope"] == "global")
            .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
            .collect();
        v.sort();
        v
    }

    /// Routes of a table, as `DST via GW dev DEV proto P` strings, sorted.
    pub fn routes(&self, table: &str) -> Vec<String> {
        let mut v: Vec<String> = [("", "-4"), ("", "-6")]
            .iter()
            .flat_map(|(_, fam)| {
                let out = must(&format!(
                    "ip -n {} {fam} -j route show table {table} 2>/dev/null || echo '[]'",
                    self.name
                ));
                let parsed: Value =
                    serde_json::from_str(if out.trim().is_empty() { "[]" } else { &out })
                        .unwrap_or(Value::Array(vec![]));
                parsed.as_array().cloned().unwrap_or_default()
            })
            .filter(|r| r["protocol"] != "kernel" && r.get("type").is_none_or(|t| t == "unicast"))
            .map(|r| {
                let mut s = r["dst"].as_str().unwrap().to_string();
                if let Some(g) = r["gateway"].as_str() {
                    s += &format!(" via {g}");
                }
                s += &format!(
                    " dev {} proto {}",
                    r["dev"].as_str().unwrap_or("?"),
                    r["protocol"]
                );
                s.replace('"', "")
            })
            .collect();
        v.sort();
        v
    }

    /// `ip rule` lines other than the kernel's defaults.
    pub fn rules(&self) -> Vec<String> {
        let out = must(&format!("ip -n {0} rule; ip -n {0} -6 rule", self.name));
        out.lines()
            .filter(|l| {
                !l.starts_with("0:") && !l.starts_with("32766:") && !l.starts_with("32767:")
            })
            .map(|l| l.split_whitespace().collect::<Vec<_>>().join(" "))
            .collect()
    }
}

impl Drop for Netns {
    fn drop(&mut self) {
        let _ = Command::new("ip")
            .args(["netns", "del", &self.name])
            .output();
    }
}

/// A temporary directory with topology files.
pub struct Dir {
    pub path: PathBuf,
}

impl Dir {
    pub fn new() -> Dir {
        let path = std::env::temp_dir().join(unique("netloom-test-"));
        std::fs::create_dir_all(&path).unwrap();
        Dir { path }
    }

    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let p = self.path.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.path);
    }
}

/// A topology's ledger and lock are removed when the test ends.
pub struct Topo {
    pub name: String,
}

impl Topo {
    pub fn new(tag: &str) -> Topo {
        Topo { name: unique(tag) }
    }
}

impl Drop for Topo {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(run_dir().join(format!("{}.ledger.json", self.name)));
        let _ = std::fs::remove_file(run_dir().join(format!("{}.lock", self.name)));
    }
}

// ---- Docker ----

pub const IMAGE: &str = "netloom-test-busybox:latest";

/// Builds the test image from Debian's busybox-static once (no registry).
pub fn ensure_image() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        if sh(&format!("docker image inspect {IMAGE} >/dev/null 2>&1")).code == 0 {
            return;
        }
        must(&format!(
            "set -e; d=$(mktemp -d); mkdir -p $d/bin; cp /bin/busybox $d/bin/; \
             for a in sh sleep ip ping cat ls; do ln -s busybox $d/bin/$a; done; \
             tar -C $d -c . | docker import -c 'CMD [\"/bin/sh\"]' - {IMAGE} >/dev/null; rm -rf $d"
        ));
    });
}

/// A third octet unique to this test process and call, for test subnets.
pub fn octet() -> u8 {
    static N: AtomicUsize = AtomicUsize::new(0);
    (((std::process::id() as usize % 7) * 30 + N.fetch_add(1, Ordering::SeqCst)) % 250) as u8 + 1
}

/// A Docker network made by the test itself (a decoy, or an external one).
pub struct DockerNet {
    pub name: String,
    pub subnet: String,
}

impl DockerNet {
    pub fn internal(tag: &str) -> DockerNet {
        let n = DockerNet {
            name: unique(tag),
            subnet: format!("10.214.{}.0/24", octet()),
        };
        must(&format!(
            "docker network create --internal --subnet {} {} >/dev/null",
            n.subnet, n.name
        ));
        n
    }

    /// Internal, with this exact name and subnet.
    pub fn exactly(name: &str, subnet: &str) -> DockerNet {
        must(&format!(
            "docker network create --internal --subnet {subnet} {name} >/dev/null"
        ));
        DockerNet {
            name: name.to_string(),
            subnet: subnet.to_string(),
        }
    }

    /// Internal, with a subnet Docker picks (none configured by the user).
    pub fn bare(tag: &str) -> DockerNet {
        let name = unique(tag);
        must(&format!(
            "docker network create --internal {name} >/dev/null"
        ));
        DockerNet {
            name,
            subnet: String::new(),
        }
    }
}

impl Drop for DockerNet {
    fn drop(&mut self) {
        let _ = sh(&format!("docker network rm {} >/dev/null 2>&1", self.name));
    }
}

/// A running busybox container on `net`, removed when dropped.
pub struct Ctr {
    pub name: String,
}

impl Ctr {
    pub fn run(tag: &str, net: &DockerNet) -> Ctr {
        Ctr::run_with(tag, net, "")
    }

    /// With extra `docker run` options (e.g. `--sysctl net.ipv4.ip_forward=1`).
    pub fn run_with(tag: &str, net: &DockerNet, opts: &str) -> Ctr {
        ensure_image();
        let c = Ctr { name: unique(tag) };
        must(&format!(
            "docker run -d --name {} --network {} {opts} {IMAGE} sleep 600 >/dev/null",
            c.name, net.name
        ));
        c
    }

    /// With a network mode of its own: "none", "host", "container:NAME".
    pub fn run_mode(tag: &str, mode: &str) -> Ctr {
        ensure_image();
        let c = Ctr { name: unique(tag) };
        must(&format!(
            "docker run -d --name {} --network {mode} {IMAGE} sleep 600 >/dev/null",
            c.name
        ));
        c
    }

    /// Pings `dst` from inside the container (busybox ping): true if answered.
    pub fn pings(&self, dst: &str) -> bool {
        sh(&format!("docker exec {} ping -c 1 -W 2 {dst}", self.name)).code == 0
    }

    /// Interface names inside the container, other than lo and Docker's eth0.
    pub fn extra_links(&self) -> Vec<String> {
        let out = must(&format!("docker exec {} ip -o link", self.name));
        let mut v: Vec<String> = out
            .lines()
            .filter_map(|l| l.split(": ").nth(1))
            .map(|n| n.split('@').next().unwrap().to_string())
            .filter(|n| n != "lo" && n != "eth0")
            .collect();
        v.sort();
        v
    }

    pub fn inspect(&self) -> Value {
        serde_json::from_str::<Value>(&must(&format!("docker inspect {}", self.name))).unwrap()[0]
            .clone()
    }

    /// The endpoint on `network`, or Null.
    pub fn endpoint(&self, network: &str) -> Value {
        self.inspect()["NetworkSettings"]["Networks"][network].clone()
    }

    pub fn started_at(&self) -> String {
        self.inspect()["State"]["StartedAt"]
            .as_str()
            .unwrap()
            .to_string()
    }
}

impl Drop for Ctr {
    fn drop(&mut self) {
        let _ = sh(&format!("docker rm -f {} >/dev/null 2>&1", self.name));
    }
}

pub fn network_inspect(name: &str) -> Option<Value> {
    let r = sh(&format!("docker network inspect {name}"));
    (r.code == 0).then(|| serde_json::from_str::<Value>(&r.stdout).unwrap()[0].clone())
}

/// Removes a test topology's Docker networks even if the test failed midway.
pub struct NetsOf {
    pub topology: String,
}

impl Drop for NetsOf {
    fn drop(&mut self) {
        let _ = sh(&format!(
            "for n in $(docker network ls -q --filter label=netloom.topology={}); do \
               for c in $(docker network inspect -f '{{{{range $k, $v := .Containers}}}}{{{{$k}}}} {{{{end}}}}' $n); do docker network disconnect -f $n $c; done; \
               docker network rm $n; done >/dev/null 2>&1",
            self.topology
        ));
    }
}

// ---- watch ----

/// A running `netloom watch`, stopped (SIGKILL) if the test ends early.
pub struct WatchProc {
    pub child: std::process::Child,
    pub log: PathBuf,
}

impl WatchProc {
    pub fn start(paths: &[&Path], resync: &str) -> WatchProc {
        WatchProc::start_env(paths, resync, &[])
    }

    /// With extra environment variables (e.g. `RUST_LOG`).
    pub fn start_env(paths: &[&Path], resync: &str, env: &[(&str, &str)]) -> WatchProc {
        let log = std::env::temp_dir().join(format!("{}.watch.log", unique("nlw")));
        let mut c = Command::new(env!("CARGO_BIN_EXE_netloom"));
        c.envs(env.iter().copied());
        c.env("NETLOOM_RUN_DIR", run_dir())
            .arg("watch")
            .arg("--resync")
            .arg(resync);
        for p in paths {
            c.arg(p);
        }
        c.stdout(std::fs::File::create(log.with_extension("out")).unwrap());
        c.stderr(std::fs::File::create(&log).unwrap());
        WatchProc {
            child: c.spawn().expect("start netloom watch"),
            log,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn signal(&self, sig: &str) {
        must(&format!("kill -{sig} {}", self.child.id()));
    }

    /// SIGTERM, then the exit status (within 10 s).
    pub fn stop(mut self) -> std::process::ExitStatus {
        self.signal("TERM");
        let until = std::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                return s;
            }
            assert!(
                std::time::Instant::now() < until,
                "watch did not stop on SIGTERM:\n{}",
                self.log()
            );
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
    }
}

impl Drop for WatchProc {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Polls `check` until it holds, failing with `what` and `context()` after `secs`.
pub fn eventually(what: &str, secs: u64, check: impl Fn() -> bool, context: impl Fn() -> String) {
    let until = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while std::time::Instant::now() < until {
        if check() {
            return;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    panic!("not converged within {secs}s: {what}\n{}", context());
}

/// Replaces a file the way editors save: write a temporary file, rename it over.
pub fn save_atomically(path: &Path, text: &str) {
    let tmp = path.with_extension("toml.swp");
    std::fs::write(&tmp, text).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}
