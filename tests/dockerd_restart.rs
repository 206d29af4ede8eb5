//! `watch` keeps converging across a dockerd restart.
//!
//! This stops the shared Docker daemon, so no other test may run beside it:
//! it is ignored in the ordinary run, and `.ci/run` runs it on its own after
//! everything else (`cargo test --test dockerd_restart -- --ignored`). It
//! always starts a daemon again.

mod common;

use common::*;
use std::time::Duration;

fn daemon_answers() -> bool {
    sh("docker version -f '{{.Server.Version}}'").code == 0
}

/// Starts dockerd detached, as `.ci/run` does, once the old one has exited.
fn start_dockerd() {
    eventually(
        "old dockerd exited",
        60,
        || sh("pgrep -x dockerd").code != 0,
        String::new,
    );
    must("setsid nohup dockerd >/tmp/netloom-test-dockerd.log 2>&1 < /dev/null &");
    eventually("dockerd answers", 90, daemon_answers, || {
        sh("tail -20 /tmp/netloom-test-dockerd.log").stdout
    });
}

/// Brings the daemon back even if the test fails halfway.
struct Restore;

impl Drop for Restore {
    fn drop(&mut self) {
        if !daemon_answers() {
            start_dockerd();
        }
    }
}

#[test]
#[ignore = "stops the shared dockerd: run alone (see .ci/run)"]
fn watch_keeps_converging_across_a_dockerd_restart() {
    assert!(daemon_answers(), "this test needs a running dockerd");
    let _restore = Restore;
    let (t, d) = (Topo::new("nlt"), Dir::new());
    let _nets = NetsOf {
        topology: t.name.clone(),
    };
    let o = octet();
    let (n1, n2) = (format!("{}a", t.name), format!("{}b", t.name));
    let net =
        |name: &str, third: u8| format!("[network.{name}]\nsubnets = [\"10.85.{third}.0/24\"]\n");
    let f = d.path.join("lab.toml");
    save_atomically(
        &f,
        &format!("[topology]\nname = \"{}\"\n{}", t.name, net(&n1, o)),
    );
    let mut w = WatchProc::start(&[&f], "30s");
    let log = |w: &WatchProc| w.log();
    eventually(
        "first network",
        20,
        || network_inspect(&n1).is_some(),
        || log(&w),
    );

    must("pkill -x dockerd");
    eventually("dockerd stopped", 60, || !daemon_answers(), String::new);
    // Edited while Docker is away: watch reports, backs off, keeps running.
    save_atomically(
        &f,
        &format!(
            "[topology]\nname = \"{}\"\n{}{}",
            t.name,
            net(&n1, o),
            net(&n2, o.wrapping_add(100))
        ),
    );
    eventually(
        "an error while dockerd is down",
        20,
        || log(&w).contains("cannot reach the Docker daemon"),
        || log(&w),
    );
    assert!(
        w.child.try_wait().unwrap().is_none(),
        "watch is still running"
    );

    start_dockerd();
    eventually(
        "converged after dockerd came back",
        40,
        || network_inspect(&n2).is_some(),
        || log(&w),
    );
    assert!(w.child.try_wait().unwrap().is_none());
    std::thread::sleep(Duration::from_millis(200));
    assert!(w.stop().success());
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
    assert!(network_inspect(&n1).is_none() && network_inspect(&n2).is_none());
}
