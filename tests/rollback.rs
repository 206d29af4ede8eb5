//! A failed apply puts back what it changed (`--no-rollback` keeps it).

mod common;

use common::*;

#[test]
fn a_refused_route_rolls_back_the_bridges_and_the_mtu_changed_before_it() {
    let (t, ns, d) = (Topo::new("nlr"), Netns::named("nlr"), Dir::new());
    let head = format!(
        "[topology]\nname = \"{}\"\nnetns = \"{}\"\n\n",
        t.name, ns.name
    );
    let v1 = d.write(
        "lab.toml",
        &format!("{head}[bridge.br0]\nmtu = 1500\naddresses = [\"10.91.0.1/24\"]\n"),
    );
    assert_eq!(nl(&["apply"], &[&v1]).code, 0);
    // A new bridge, an MTU change, and a route whose gateway is on no
    // connected subnet: the kernel refuses it (ENETUNREACH) in the same stage.
    let v2 = format!(
        "{head}[bridge.br0]\nmtu = 9000\naddresses = [\"10.91.0.1/24\"]\n[bridge.br-new]\n\
         [[route]]\nto = \"10.92.0.0/16\"\nvia = \"10.99.0.1\"\n"
    );
    d.write("lab.toml", &v2);
    let r = nl(&["apply"], &[&v1]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains("route 10.92.0.0/16"),
        "names the failed step: {r:?}"
    );
    assert!(r.stderr.contains("rolled back"), "{r:?}");
    assert_eq!(ns.link_names(), ["br0"], "the new bridge is gone");
    assert_eq!(ns.link("br0")["mtu"], 1500, "the MTU is back");
    assert_eq!(ns.addrs("br0"), ["10.91.0.1/24"]);
    // What the rolled-back run meant to make is not claimed any more: a
    // bridge of that name made by hand now is someone else's.
    must(&format!("ip -n {} link add br-new type bridge", ns.name));
    let r = nl(&["plan"], &[&v1]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("a bridge named `br-new` already exists and netloom does not own it"),
        "{r:?}"
    );
    must(&format!("ip -n {} link del br-new", ns.name));
    // The original state verifies: nothing to change against v1.
    d.write(
        "lab.toml",
        &format!("{head}[bridge.br0]\nmtu = 1500\naddresses = [\"10.91.0.1/24\"]\n"),
    );
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&v1]).code, 0);

    // --no-rollback keeps partial progress.
    d.write("lab.toml", &v2);
    let r = nl(&["apply", "--no-rollback"], &[&v1]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(!r.stderr.contains("rolled back"), "{r:?}");
    assert_eq!(ns.link_names(), ["br-new", "br0"]);
    assert_eq!(ns.link("br0")["mtu"], 9000);
    assert_eq!(nl(&["destroy"], &[&v1]).code, 0);
}
