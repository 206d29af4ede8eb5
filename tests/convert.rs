//! `netloom convert clab`: containerlab files (written in containerlab's
//! documented format) become netloom topologies that validate, list what
//! they could not convert, and — for a lab of linux nodes — work when
//! applied to real containers.

mod common;

use common::*;
use std::path::Path;

fn clab(name: &str) -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/clab")
        .join(name)
}

#[test]
fn a_mixed_lab_converts_what_netloom_can_make_and_lists_the_rest() {
    let d = Dir::new();
    let out = d.write("mixed.toml", "");
    let r = nl(
        &["convert", "clab", "-o", out.to_str().unwrap()],
        &[&clab("mixed.clab.yml")],
    );
    assert_eq!(r.code, 0, "{r:?}");
    let toml = std::fs::read_to_string(&out).unwrap();
    for want in [
        "[bridge.br-mixed]\nexternal = true",
        "[network.mixed-mgmt]",
        "subnets = [\"172.31.250.0/24\"]",
        // prefix: lab → lab-<lab name>-<node>
        "[container.lab-mixed-n1]",
        "networks.mixed-mgmt = { ipv4 = \"172.31.250.11\" }",
        "interfaces.eth1 = { bridge = \"br-mixed\", addresses = [\"10.20.0.1/24\"] }",
    ] {
        assert!(toml.contains(want), "missing {want:?} in:\n{toml}");
    }
    assert!(
        !toml.contains("[container.lab-mixed-srl]"),
        "an SR Linux node is not a container netloom wires:\n{toml}"
    );
    // Each thing left out is named, on stderr and in the file.
    for left in [
        "node srl: kind `nokia_srlinux`",
        "node n1: `binds`",
        "exec `iptables -A FORWARD -j ACCEPT`",
        "an end in `host`",
        "route `ip route add default via 172.31.250.1`",
    ] {
        assert!(r.stderr.contains(left), "stderr lacks {left:?}: {r:?}");
        assert!(toml.contains(left), "the file lacks {left:?}");
    }
    let v = nl(&["validate"], &[&out]);
    assert_eq!(v.code, 0, "the converted file validates: {v:?}");
}

#[test]
fn a_file_that_is_not_containerlab_is_an_error() {
    let d = Dir::new();
    let bad = d.write("bad.clab.yml", "name: x\ntopology: [1, 2]\n");
    let r = nl(&["convert", "clab"], &[&bad]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("not a containerlab file"), "{r:?}");
    assert!(r.stdout.is_empty(), "{r:?}");
}

#[test]
fn a_converted_router_lab_applies_and_forwards_between_real_containers() {
    let d = Dir::new();
    let lab = unique("nlcv");
    // The lab in tests/clab, under a name of this test's own (container
    // names are clab-<lab>-<node>).
    let text = std::fs::read_to_string(clab("routers.clab.yml"))
        .unwrap()
        .replace("name: routers", &format!("name: {lab}"))
        .replace("image: alpine:3", &format!("image: {IMAGE}"));
    let file = d.write("lab.clab.yml", &text);
    let r = nl(&["convert", "clab"], &[&file]);
    assert_eq!(r.code, 0, "{r:?}");
    let topo = d.write("lab.toml", &r.stdout);
    let _t = Topo { name: lab.clone() };
    // Start the containers the header names, as it says.
    let mut ctrs = vec![];
    for line in r.stdout.lines().filter(|l| l.starts_with("#   docker run")) {
        let name = line.split_whitespace().nth(5).unwrap().to_string();
        ensure_image();
        must(&format!(
            "docker run -d --name {name} --network none {IMAGE} sleep 600 >/dev/null"
        ));
        ctrs.push(Ctr { name });
    }
    assert_eq!(ctrs.len(), 3, "{}", r.stdout);
    let a = nl(&["apply"], &[&topo]);
    assert_eq!(a.code, 0, "{a:?}");
    let h1 = ctrs.iter().find(|c| c.name.ends_with("-h1")).unwrap();
    // h1 → r1 (its default route) → r2's loopback, and back.
    assert!(
        h1.pings("10.10.10.2"),
        "h1 reaches r2's loopback through r1"
    );
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&topo]).code, 0);
    assert_eq!(nl(&["destroy"], &[&topo]).code, 0);
}
