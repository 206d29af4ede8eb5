//! A container stopped under `watch` takes its links down at once: watch
//! must not keep a dead container's netns (and the veths in it) alive.

mod common;

use common::*;
use std::time::{Duration, Instant};

#[test]
fn stopping_a_container_under_watch_takes_its_links_down_within_a_second() {
    ensure_image();
    let (t, ns, dir, base, o) = (
        Topo::new("nls"),
        Netns::named("nls"),
        Dir::new(),
        DockerNet::internal("nls"),
        octet(),
    );
    let (a, b) = (Ctr::run("nsa", &base), Ctr::run("nsb", &base));
    dir.write(
        "lab.toml",
        &format!(
            r#"[topology]
name = "{t}"
netns = "{ns}"

[bridge.br-m]
addresses = ["10.71.{o}.1/24"]

[container.{a}]
interfaces.mgmt0 = {{ bridge = "br-m", addresses = ["10.71.{o}.11/24"] }}

[container.{b}]

[[link]]
endpoints = ["{a}:eth1", "{b}:eth1"]
addresses = {{ "{a}:eth1" = ["10.72.{o}.1/30"], "{b}:eth1" = ["10.72.{o}.2/30"] }}
"#,
            t = t.name,
            ns = ns.name,
            a = a.name,
            b = b.name
        ),
    );
    let w = WatchProc::start(&[&dir.path], "30s");
    let b_links = || b.extra_links();
    eventually(
        "wired",
        15,
        || b_links() == ["eth1"] && ns.exists() && ns.link_names().len() == 2,
        || w.log(),
    );
    for round in 0..3 {
        must(&format!("docker stop -t 0 {} >/dev/null", a.name));
        let stopped = Instant::now();
        // The peer end goes with the pair, and the host end leaves the bridge.
        eventually(
            &format!("round {round}: links gone after the stop"),
            5,
            || b_links().is_empty() && ns.link_names() == ["br-m"],
            || w.log(),
        );
        let took = stopped.elapsed();
        assert!(
            took < Duration::from_secs(1),
            "round {round}: {took:?}\n{}",
            w.log()
        );
        eprintln!("round {round}: stop → links gone in {took:?}");
        must(&format!("docker start {} >/dev/null", a.name));
        let started = Instant::now();
        eventually(
            &format!("round {round}: re-wired after the start"),
            15,
            || b_links() == ["eth1"] && ns.link_names().len() == 2,
            || w.log(),
        );
        eprintln!("round {round}: start → re-wired in {:?}", started.elapsed());
    }
    assert!(w.stop().success());
    assert_eq!(nl(&["destroy"], &[&dir.path]).code, 0);
}
