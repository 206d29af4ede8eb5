//! SIGKILL at random points of apply and destroy never leaves an object
//! netloom then refuses: ownership is recorded before every create (links
//! get their mark in a second request, the netns on its `lo` after it is
//! made), so a half-made object of this topology is recognised and finished.

mod common;

use common::*;
use std::process::{Command, Stdio};
use std::time::Duration;

/// A small deterministic generator: the seed is printed, so a failure replays.
struct Lcg(u64);

impl Lcg {
    fn below(&mut self, n: u64) -> u64 {
        self.0 = self
            .0
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (self.0 >> 33) % n
    }
}

fn body(o: u8, t: &Topo) -> String {
    let mut s = String::new();
    for i in 0..150 {
        s += &format!(
            "[bridge.cb{i}]\naddresses = [\"10.{}.{}.1/24\"]\n",
            100 + i / 100,
            i % 100
        );
    }
    for i in 0..50 {
        s += &format!("[veth.cv{i}]\npeer = \"cp{i}\"\nmaster = \"cb{i}\"\n");
    }
    for i in 0..20 {
        s += &format!(
            "[[route]]\nto = \"10.{}.{i}.0/24\"\nvia = \"10.100.{i}.9\"\n",
            150 + o % 50
        );
    }
    for i in 0..8 {
        s += &format!(
            "[network.{}n{i}]\nsubnets = [\"10.215.{}.{}/28\"]\n",
            t.name,
            o,
            i * 16
        );
    }
    s
}

/// Starts netloom, kills it after `after`, and waits for it.
fn killed(args: &[&str], path: &std::path::Path, after: Duration) {
    let mut c = Command::new(env!("CARGO_BIN_EXE_netloom"))
        .env("NETLOOM_RUN_DIR", run_dir())
        .args(args)
        .arg(path)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    std::thread::sleep(after);
    let _ = c.kill(); // SIGKILL
    let _ = c.wait();
}

/// Removes the topology's Docker networks even when the test fails half-way.
struct Networks(String);

impl Drop for Networks {
    fn drop(&mut self) {
        let _ = sh(&format!(
            "docker network ls -q --filter label=netloom.topology={} | xargs -r docker network rm >/dev/null 2>&1",
            self.0
        ));
    }
}

#[test]
fn sigkill_anywhere_in_apply_or_destroy_then_one_apply_converges_and_destroy_leaves_nothing() {
    let (t, ns, d) = (Topo::new("nlk"), Netns::named("nlk"), Dir::new());
    let _networks = Networks(t.name.clone());
    let o = octet();
    let f = d.write(
        "lab.toml",
        &format!(
            "[topology]\nname = \"{}\"\nnetns = \"{}\"\n\n{}",
            t.name,
            ns.name,
            body(o, &t)
        ),
    );
    let seed = std::process::id() as u64 * 7919;
    eprintln!("seed {seed}");
    let mut rng = Lcg(seed);
    let mut kills = 0;
    // Apply, killed at random points (each from what the last one left).
    for _ in 0..14 {
        killed(&["apply"], &f, Duration::from_millis(20 + rng.below(900)));
        kills += 1;
    }
    // Converge once, then destroys killed at random points.
    for _ in 0..8 {
        let r = nl(&["apply"], &[&f]);
        assert_eq!(r.code, 0, "apply after {kills} kills (seed {seed}): {r:?}");
        killed(&["destroy"], &f, Duration::from_millis(5 + rng.below(400)));
        kills += 1;
    }
    assert!(kills >= 20);
    let r = nl(&["apply"], &[&f]);
    assert_eq!(
        r.code, 0,
        "one apply converges after {kills} kills (seed {seed}): {r:?}"
    );
    let r = nl(&["plan", "--detailed-exitcode"], &[&f]);
    assert_eq!(r.code, 0, "and nothing is left to change: {r:?}");
    let r = nl(&["destroy"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!ns.exists(), "no netns left: {r:?}");
    let nets = must(&format!(
        "docker network ls -q --filter label=netloom.topology={}",
        t.name
    ));
    assert_eq!(nets.trim(), "", "no Docker network left");
    let run = run_dir();
    for file in [
        format!("{}.ledger.json", t.name),
        format!("{}.lock", t.name),
    ] {
        assert!(!run.join(&file).exists(), "{file} left");
    }
}
