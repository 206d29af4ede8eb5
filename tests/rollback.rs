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

/// A connect Docker refuses (an address on a network whose subnet nobody
/// configured) after this run replaced a network and moved an attachment:
/// the network comes back with its old subnet, the container with its old
/// address on it, and the refused container is left as it was.
#[test]
fn a_refused_docker_connect_rolls_back_a_replaced_network_and_a_moved_attachment() {
    ensure_image();
    let t = Topo::new("nlq");
    let _nets = NetsOf {
        topology: t.name.clone(),
    };
    let base = DockerNet::internal("nlqb");
    let (a, b) = (Ctr::run("nlqa", &base), Ctr::run("nlqz", &base));
    let bare = DockerNet::bare("nlqx");
    let o = octet();
    let net = format!("{}n", t.name);
    let d = Dir::new();
    let v1 = format!(
        "[topology]\nname = \"{}\"\n[network.{net}]\nsubnets = [\"10.216.{o}.0/24\"]\n\
         [container.{}]\nnetworks.{net} = {{ ipv4 = \"10.216.{o}.10\" }}\n",
        t.name, a.name
    );
    let f = d.write("lab.toml", &v1);
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    let subnet = |n: &str| network_inspect(n).unwrap()["IPAM"]["Config"][0]["Subnet"].clone();
    // The bare network has a subnet Docker picked; an address in it is
    // refused all the same ("user configured subnets" only).
    let auto = subnet(&bare.name);
    let auto = auto.as_str().unwrap();
    let refused = auto
        .rsplit_once(".0/")
        .map(|(p, _)| format!("{p}.250"))
        .unwrap();
    d.write(
        "lab.toml",
        &format!(
            "[topology]\nname = \"{}\"\n[network.{net}]\nsubnets = [\"10.217.{o}.0/24\"]\n\
             [network.{bare}]\nexternal = true\n\
             [container.{}]\nnetworks.{net} = {{ ipv4 = \"10.217.{o}.10\" }}\n\
             [container.{}]\nnetworks.{bare} = {{ ipv4 = \"{refused}\" }}\n",
            t.name,
            a.name,
            b.name,
            bare = bare.name
        ),
    );
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&b.name),
        "names the refused connect: {r:?}"
    );
    assert!(r.stderr.contains("rolled back"), "{r:?}");
    assert_eq!(subnet(&net), format!("10.216.{o}.0/24"), "{r:?}");
    assert_eq!(
        a.endpoint(&net)["IPAMConfig"]["IPv4Address"],
        format!("10.216.{o}.10"),
        "{r:?}"
    );
    assert!(b.endpoint(&bare.name).is_null(), "{r:?}");
    d.write("lab.toml", &v1);
    let r = nl(&["plan", "--detailed-exitcode"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
}

/// Every step succeeds but the live state does not verify: the address a
/// container interface gets on a bridge is already held by a host on that
/// bridge's segment (a port netloom does not own), so IPv6 duplicate
/// address detection fails it. The run is undone all the same.
#[test]
fn a_verification_failure_rolls_back_what_the_run_changed() {
    let (t, ns, d) = (Topo::new("nlv"), Netns::named("nlv"), Dir::new());
    let other = Netns::precreated("nlvo");
    let c = Ctr::run_mode("nlvc", "none");
    let head = format!(
        "[topology]\nname = \"{}\"\nnetns = \"{}\"\n\n",
        t.name, ns.name
    );
    let v1 = d.write(
        "lab.toml",
        &format!("{head}[bridge.br0]\nmtu = 1500\naddresses = [\"10.93.0.1/24\"]\n"),
    );
    assert_eq!(nl(&["apply"], &[&v1]).code, 0);
    // Another host on br0's segment holds fd00:93::5.
    must(&format!(
        "ip -n {ns} link add fx type veth peer name fy netns {o} && ip -n {ns} link set fx master br0 up && \
         ip -n {o} addr add fd00:93::5/64 dev fy nodad && ip -n {o} link set fy up",
        ns = ns.name,
        o = other.name
    ));
    d.write(
        "lab.toml",
        &format!(
            "{head}[bridge.br0]\nmtu = 9000\naddresses = [\"10.93.0.1/24\"]\n\
             [container.{}]\ninterfaces.eth1 = {{ bridge = \"br0\", addresses = [\"fd00:93::5/64\"] }}\n",
            c.name
        ),
    );
    let r = nl(&["apply"], &[&v1]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("address fd00:93::5/64"), "{r:?}");
    assert!(r.stderr.contains("rolled back"), "{r:?}");
    assert_eq!(
        c.extra_links(),
        Vec::<String>::new(),
        "the interface is gone: {r:?}"
    );
    assert_eq!(ns.link("br0")["mtu"], 1500, "the MTU is back: {r:?}");
    // The foreign port is untouched.
    assert_eq!(ns.link("fx")["master"], "br0");
    must(&format!("ip -n {} link del fx", ns.name));
    assert_eq!(nl(&["destroy"], &[&v1]).code, 0);
}
