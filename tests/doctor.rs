//! `netloom doctor` (issue 11, item 5): each check is broken for real — in
//! a test netns, a configuration root of the test's own, a Docker network
//! of its own — and the finding, its fix and the exit code are what a user
//! reads.

mod common;

use common::*;
use serde_json::Value;

fn doctor(args: &[&str], paths: &[&std::path::Path]) -> Run {
    let mut a = vec!["doctor"];
    a.extend_from_slice(args);
    nl(&a, paths)
}

fn findings(r: &Run) -> Vec<Value> {
    let v: Value = serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("{e}: {r:?}"));
    v["findings"].as_array().unwrap().clone()
}

#[test]
fn forwarding_off_in_a_netns_that_routes_is_a_warning_with_its_fix() {
    let ns = Netns::precreated("nldf");
    let d = Dir::new();
    let o = octet();
    let body = |extra: &str| {
        format!(
            "[topology]\nname = \"{n}\"\nnetns = \"{n}\"\n{extra}\n[bridge.br-a]\naddresses = [\"10.{o}.1.1/24\"]\n[bridge.br-b]\naddresses = [\"10.{o}.2.1/24\", \"fd00:{o}:2::1/64\"]\n",
            n = ns.name
        )
    };
    let f = d.write("t.toml", &body(""));
    // Broken: forwarding off in the test's netns (a new one takes the
    // host's IPv4 setting).
    must(&format!(
        "ip netns exec {} sysctl -qw net.ipv4.ip_forward=0",
        ns.name
    ));
    let r = doctor(&[], &[&f]);
    assert_eq!(r.code, 2, "warnings only: {r:?}");
    assert!(
        r.stdout.contains(&format!(
            "warning forwarding    netns {}: it has addresses on 2 IPv4 subnets (10.{o}.1.0/24, 10.{o}.2.0/24) and routes between them, but IPv4 forwarding is off",
            ns.name
        )),
        "{r:?}"
    );
    assert!(
        r.stdout
            .contains("fix: add `sysctls = { \"net.ipv4.ip_forward\" = \"1\" }` under [topology]"),
        "{r:?}"
    );
    // One IPv6 subnet only: nothing to route for IPv6.
    assert!(!r.stdout.contains("IPv6 forwarding"), "{r:?}");
    assert!(
        r.stdout.contains("Doctor: 0 error(s), 1 warning(s)"),
        "{r:?}"
    );

    // JSON carries the same finding, with its fix.
    let j = doctor(&["--format", "json"], &[&f]);
    assert_eq!(j.code, 2);
    let w: Vec<Value> = findings(&j)
        .into_iter()
        .filter(|f| f["severity"] == "warning")
        .collect();
    assert_eq!(w.len(), 1, "{j:?}");
    assert_eq!(w[0]["check"], "forwarding");
    assert_eq!(w[0]["subject"], format!("netns {}", ns.name));
    assert!(
        w[0]["fix"]
            .as_str()
            .unwrap()
            .contains("sysctl -w net.ipv4.ip_forward=1")
    );

    // Fixed by hand: ok, exit 0.
    must(&format!(
        "ip netns exec {} sysctl -qw net.ipv4.ip_forward=1",
        ns.name
    ));
    let r = doctor(&[], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("IPv4 forwarding is on"), "{r:?}");

    // Off again, but the topology sets it: netloom will, so it is ok.
    must(&format!(
        "ip netns exec {} sysctl -qw net.ipv4.ip_forward=0",
        ns.name
    ));
    d.write(
        "t.toml",
        &body("sysctls = { \"net.ipv4.ip_forward\" = \"1\" }"),
    );
    let r = doctor(&[], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("netloom sets net.ipv4.ip_forward = 1 (a sysctl of the topology)"),
        "{r:?}"
    );
}

#[test]
fn a_container_routing_through_the_netns_needs_forwarding_there() {
    let ns = Netns::precreated("nldc");
    let d = Dir::new();
    let o = octet();
    let f = d.write(
        "t.toml",
        &format!(
            "[topology]\nname = \"{n}\"\nnetns = \"{n}\"\n[bridge.br-a]\naddresses = [\"10.{o}.1.1/24\"]\n\
             [container.nl-doc-c]\ninterfaces.eth1 = {{ bridge = \"br-a\", addresses = [\"10.{o}.1.2/24\"] }}\n\
             routes = [{{ to = \"10.{o}.9.0/24\", via = \"10.{o}.1.1\" }}]\n",
            n = ns.name
        ),
    );
    must(&format!(
        "ip netns exec {} sysctl -qw net.ipv4.ip_forward=0",
        ns.name
    ));
    let r = doctor(&[], &[&f]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stdout.contains(&format!(
            "container `nl-doc-c` routes 10.{o}.9.0/24 via 10.{o}.1.1, an address of br-a in it, but IPv4 forwarding is off"
        )),
        "{r:?}"
    );
}

#[test]
fn missing_binaries_and_plugins_are_errors_naming_what_installs_them() {
    let ns = Netns::precreated("nldb");
    let d = Dir::new();
    let f = d.write(
        "t.toml",
        &format!(
            "[topology]\nname = \"{n}\"\nnetns = \"{n}\"\n[bgp]\nasn = 65001\nrouter_id = \"10.255.0.1\"\n\
             [cni.nldocnet]\nplugins = [{{ type = \"nl-no-such-plugin\" }}]\n",
            n = ns.name
        ),
    );
    // gobgpd is where CI installs it; a PATH without it is the broken host.
    let empty = d.path.join("bin");
    std::fs::create_dir_all(&empty).unwrap();
    let mut c = netloom();
    c.env("PATH", &empty).arg("doctor").arg(&f);
    let r = run(c);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("error   binaries      gobgpd: not on PATH; [bgp] needs it"),
        "{r:?}"
    );
    assert!(r.stdout.contains("fix: apt-get install gobgpd"), "{r:?}");
    assert!(
        r.stdout.contains(
            "cni plugin nl-no-such-plugin: CNI network `nldocnet` runs plugin `nl-no-such-plugin`, which is in none of /usr/lib/cni, /opt/cni/bin"
        ),
        "{r:?}"
    );
    // With the real PATH gobgpd is found; the plugin is still missing.
    let r = doctor(&[], &[&f]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("ok      binaries      gobgpd: /"),
        "{r:?}"
    );
}

#[test]
fn other_managers_configured_for_declared_names_are_warnings() {
    let d = Dir::new();
    let t = Topo::new("nldm");
    let br = unique("nldm");
    // A host-netns topology: doctor only reads, so nothing lands on the host.
    let f = d.write(
        "t.toml",
        &format!("[topology]\nname = \"{}\"\n[bridge.{br}]\n", t.name),
    );
    let root = d.path.join("root");
    let put = |rel: &str, text: &str| {
        let p = root.join(rel);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(p, text).unwrap();
    };
    let root_s = root.to_str().unwrap();
    put(
        "etc/systemd/network/10-lab.network",
        "[Match]\nName=nldm*\n[Network]\nDHCP=yes\n",
    );
    put(
        "etc/netplan/01-lab.yaml",
        &format!("network:\n  version: 2\n  bridges:\n    {br}:\n      dhcp4: true\n"),
    );
    put(
        "etc/NetworkManager/system-connections/lab.nmconnection",
        &format!("[connection]\nid=lab\ntype=bridge\ninterface-name={br}\n"),
    );
    let r = doctor(&["--config-root", root_s], &[&f]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stdout.contains(&format!(
            "{root_s}/etc/systemd/network/10-lab.network: systemd-networkd configures (addresses, state) what netloom declares: {br}"
        )),
        "{r:?}"
    );
    assert!(
        r.stdout.contains(&format!(
            "{root_s}/etc/netplan/01-lab.yaml: netplan configures what netloom declares: {br} (network.bridges.{br})"
        )),
        "{r:?}"
    );
    assert!(
        r.stdout.contains(&format!(
            "lab.nmconnection: a NetworkManager connection profile for {br}"
        )),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("Doctor: 0 error(s), 3 warning(s)"),
        "{r:?}"
    );

    // Told to leave the name alone (and the netplan entry gone): ok.
    put(
        "etc/systemd/network/10-lab.network",
        "[Match]\nName=nldm*\n[Link]\nUnmanaged=yes\n",
    );
    put(
        "etc/NetworkManager/conf.d/netloom.conf",
        &format!("[keyfile]\nunmanaged-devices=interface-name:{br}\n"),
    );
    std::fs::remove_file(root.join("etc/netplan/01-lab.yaml")).unwrap();
    let r = doctor(&["--config-root", root_s], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains("no NetworkManager, systemd-networkd or netplan configuration names"),
        "{r:?}"
    );
}

#[test]
fn docker_unreachable_is_an_error_when_the_topology_needs_it() {
    let d = Dir::new();
    let t = Topo::new("nldd");
    let f = d.write(
        "t.toml",
        &format!(
            "[topology]\nname = \"{}\"\n[network.{}n]\nsubnets = [\"10.217.{}.0/24\"]\n",
            t.name,
            t.name,
            octet()
        ),
    );
    let mut c = netloom();
    c.env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .arg("doctor")
        .arg(&f);
    let r = run(c);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout
            .contains("error   docker        dockerd: cannot reach the Docker daemon at unix:///nonexistent/docker.sock"),
        "{r:?}"
    );
    assert!(
        r.stdout.contains("fix: start it (systemctl start docker"),
        "{r:?}"
    );
    // A kernel-only topology does not ask for Docker at all.
    let k = d.write("k.toml", &format!("[topology]\nname = \"{}k\"\n", t.name));
    let mut c = netloom();
    c.env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .arg("doctor")
        .arg(&k);
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains("docker"), "{r:?}");
}

#[test]
fn masquerade_ipv6_nat_and_address_pools_are_checked_against_dockerd() {
    let d = Dir::new();
    let t = Topo::new("nldk");
    let _nets = NetsOf {
        topology: t.name.clone(),
    };
    let o = octet();
    let (masq, open) = (format!("{}m", t.name), format!("{}o", t.name));
    let f = d.write(
        "t.toml",
        &format!(
            "[topology]\nname = \"{}\"\n\
             [network.{masq}]\nsubnets = [\"10.218.{o}.0/26\"]\noptions = {{ \"com.docker.network.bridge.enable_ip_masquerade\" = \"false\" }}\n\
             [network.{open}]\nsubnets = [\"10.218.{o}.64/26\", \"fd00:218:{o}::/64\"]\n",
            t.name
        ),
    );
    // A pool of four /26s of which the test takes three.
    let root = d.path.join("root");
    std::fs::create_dir_all(root.join("etc/docker")).unwrap();
    std::fs::write(
        root.join("etc/docker/daemon.json"),
        format!("{{\"default-address-pools\": [{{\"base\": \"10.219.{o}.0/24\", \"size\": 26}}]}}"),
    )
    .unwrap();
    let taken: Vec<DockerNet> = (0..3)
        .map(|i| {
            DockerNet::exactly(
                &format!("{}p{i}", t.name),
                &format!("10.219.{o}.{}/26", i * 64),
            )
        })
        .collect();
    let root_s = root.to_str().unwrap();

    // Before apply: masquerade is off by option, IPv6 has no NAT here.
    let r = doctor(&["--config-root", root_s], &[&f]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stdout.contains(&format!(
            "warning masquerade    network {masq}: reaches beyond the host (not internal) but its options turn masquerading off"
        )),
        "{r:?}"
    );
    assert!(
        r.stdout.contains(&format!(
            "ok      masquerade    network {open}: dockerd masquerades it once netloom creates it"
        )),
        "{r:?}"
    );
    assert!(
        r.stdout.contains(&format!(
            "warning ipv6          network {open}: has an IPv6 subnet and reaches beyond the host, but dockerd makes no IPv6 NAT rules"
        )),
        "{r:?}"
    );
    assert!(
        r.stdout.contains(&format!(
            "warning address-pools dockerd: 1 of 4 subnets of the default-address-pools of {root_s}/etc/docker/daemon.json are free"
        )),
        "{r:?}"
    );

    // Applied: Docker's own rule masquerades the open network's subnet.
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    let r = doctor(&["--config-root", root_s], &[&f]);
    assert!(
        r.stdout.contains(&format!(
            "ok      masquerade    network {open}: 10.218.{o}.64/26 is masqueraded"
        )),
        "{r:?}"
    );
    drop(taken);
    let r = doctor(&["--config-root", root_s], &[&f]);
    assert!(
        r.stdout
            .contains("ok      address-pools dockerd: 4 of 4 subnets of the default-address-pools"),
        "{r:?}"
    );
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
}

#[tokio::test]
async fn link_kinds_are_proven_by_making_one() {
    for kind in ["bridge", "veth", "macvlan"] {
        assert_eq!(netloom::doctor::probe_kind(kind).await, Ok(()), "{kind}");
    }
    let e = netloom::doctor::probe_kind("nl-no-such-kind")
        .await
        .unwrap_err();
    assert!(!e.is_empty());
}

#[test]
fn without_a_topology_the_host_alone_is_checked() {
    let r = doctor(&["--format", "json"], &[]);
    assert!(r.code == 0 || r.code == 2, "{r:?}");
    let checks: Vec<String> = findings(&r)
        .iter()
        .map(|f| f["check"].as_str().unwrap().to_string())
        .collect();
    for c in ["forwarding", "docker", "address-pools", "link-kinds"] {
        assert!(checks.iter().any(|x| x == c), "{c}: {r:?}");
    }
}
