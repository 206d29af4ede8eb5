//! Direct container wiring against real containers: veths into container
//! netns, point-to-point links, routes inside containers, readiness,
//! restarts and destroy.

mod common;

use common::*;

struct Lab {
    t: Topo,
    ns: Netns,
    dir: Dir,
    base: DockerNet,
    o: u8,
}

fn lab() -> Lab {
    ensure_image();
    Lab {
        t: Topo::new("nlt"),
        ns: Netns::named("nlt"),
        dir: Dir::new(),
        base: DockerNet::internal("nlb"),
        o: octet(),
    }
}

impl Lab {
    fn write(&self, body: &str) -> std::path::PathBuf {
        self.dir.write(
            "lab.toml",
            &format!(
                "[topology]\nname = \"{}\"\nnetns = \"{}\"\n\n{body}",
                self.t.name, self.ns.name
            ),
        )
    }
}

#[test]
fn point_to_point_and_bridged_containers_reach_each_other() {
    let l = lab();
    let (r1, r2, r3) = (
        Ctr::run("nla", &l.base),
        Ctr::run("nlb", &l.base),
        Ctr::run("nlc", &l.base),
    );
    let o = l.o;
    let f = l.write(&format!(
        r#"
[bridge.br-lan]
addresses = ["10.61.{o}.1/24"]

[container.{a}]
interfaces.eth1 = {{ bridge = "br-lan", addresses = ["10.61.{o}.11/24"] }}
ready = {{ ping = "10.62.{o}.2", retries = 5, timeout_ms = 500 }}

[container.{b}]
interfaces.eth1 = {{ bridge = "br-lan", addresses = ["10.61.{o}.12/24"] }}

[container.{c}]
interfaces.eth1 = {{ bridge = "br-lan", addresses = ["10.61.{o}.13/24"] }}

[[link]]
endpoints = ["{a}:eth2", "{b}:eth2"]
# IPv6 too, though Docker turned it off in these containers.
addresses = {{ "{a}:eth2" = ["10.62.{o}.1/30", "fd00:62:{o}::1/64"], "{b}:eth2" = ["10.62.{o}.2/30", "fd00:62:{o}::2/64"] }}
"#,
        a = r1.name,
        b = r2.name,
        c = r3.name
    ));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains(&format!("ready: {} reaches 10.62.{o}.2", r1.name)),
        "{r:?}"
    );
    assert_eq!(r1.extra_links(), ["eth1", "eth2"]);
    assert!(r1.pings(&format!("10.62.{o}.2")), "point to point");
    assert!(r1.pings(&format!("fd00:62:{o}::2")), "point to point, IPv6");
    for (from, to) in [(&r1, 12), (&r2, 13), (&r3, 11)] {
        assert!(
            from.pings(&format!("10.61.{o}.{to}")),
            "{} → .{to} over the bridge",
            from.name
        );
    }
    // Host ends: derived names, marked, enslaved to the bridge, in the topology's netns.
    let host_ends: Vec<String> =
        l.ns.link_names()
            .into_iter()
            .filter(|n| n.starts_with("nl"))
            .collect();
    assert_eq!(host_ends.len(), 3, "{:?}", l.ns.link_names());
    for h in &host_ends {
        assert!(h.len() <= 15);
        let link = l.ns.link(h);
        assert_eq!(link["master"], "br-lan");
        assert_eq!(link["ifalias"], format!("netloom:{}", l.t.name));
    }
    let show = nl(&["show"], &[&f]);
    assert!(
        show.stdout
            .contains(&format!("ready     {} → ping 10.62.{o}.2", r1.name)),
        "{show:?}"
    );
    assert!(show.stdout.contains("up, carrier"), "{show:?}");
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);

    // Unwire one container: one deletion, its host end goes with it.
    let body = std::fs::read_to_string(&f).unwrap().replace(
        &format!(
            "[container.{}]\ninterfaces.eth1 = {{ bridge = \"br-lan\", addresses = [\"10.61.{o}.13/24\"] }}\n",
            r3.name
        ),
        "",
    );
    std::fs::write(&f, body).unwrap();
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(&format!("- interface {}:eth1", r3.name)),
        "{r:?}"
    );
    assert!(!r.stdout.contains("veth nl"), "{r:?}");
    assert!(
        r.stdout
            .contains("0 to create, 0 to update, 0 to replace, 1 to delete"),
        "{r:?}"
    );
    assert!(r3.extra_links().is_empty());
    assert_eq!(
        l.ns.link_names()
            .iter()
            .filter(|n| n.starts_with("nl"))
            .count(),
        2
    );

    // destroy removes every end, on the host side and in the containers.
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
    assert!(!l.ns.exists());
    for c in [&r1, &r2, &r3] {
        assert!(
            c.extra_links().is_empty(),
            "{}: {:?}",
            c.name,
            c.extra_links()
        );
    }
}

#[test]
fn a_route_inside_a_container_goes_through_a_router_container() {
    let l = lab();
    let a = Ctr::run("nla", &l.base);
    let router = Ctr::run_with("nlr", &l.base, "--sysctl net.ipv4.ip_forward=1");
    let c = Ctr::run("nlc", &l.base);
    let o = l.o;
    let f = l.write(&format!(
        r#"
[container.{a}]
routes = [{{ to = "10.64.{o}.0/30", via = "10.63.{o}.2" }}]

[container.{r}]
routes = [{{ to = "10.99.{o}.0/24", via = "10.63.{o}.1" }}]

[container.{c}]
routes = [{{ to = "10.63.{o}.0/30", via = "10.64.{o}.1" }}]

[[link]]
endpoints = ["{a}:eth1", "{r}:eth1"]
addresses = {{ "{a}:eth1" = ["10.63.{o}.1/30"], "{r}:eth1" = ["10.63.{o}.2/30"] }}

[[link]]
endpoints = ["{r}:eth2", "{c}:eth1"]
addresses = {{ "{r}:eth2" = ["10.64.{o}.1/30"], "{c}:eth1" = ["10.64.{o}.2/30"] }}
"#,
        a = a.name,
        r = router.name,
        c = c.name
    ));
    assert!(!a.pings(&format!("10.64.{o}.2")), "unreachable before");
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(a.pings(&format!("10.64.{o}.2")), "through the router");
    let route = must(&format!("docker exec {} ip route", a.name));
    assert!(
        route.contains(&format!("10.64.{o}.0/30 via 10.63.{o}.2 dev eth1")),
        "{route}"
    );

    // Renaming the router's end of the second link makes that veth again;
    // the route in the container at its other end is back in one apply.
    let body = std::fs::read_to_string(&f).unwrap().replace(
        &format!("{}:eth2", router.name),
        &format!("{}:e2", router.name),
    );
    std::fs::write(&f, body).unwrap();
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(a.pings(&format!("10.64.{o}.2")), "through the renamed end");

    // With c stopped, the router's link to it waits; the router's route via
    // a, on its other link, does not wait with it.
    must(&format!("docker stop -t 0 {} >/dev/null", c.name));
    must(&format!("docker restart -t 0 {} >/dev/null", router.name));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 2, "pending: {r:?}");
    let route = must(&format!("docker exec {} ip route", router.name));
    assert!(
        route.contains(&format!("10.99.{o}.0/24 via 10.63.{o}.1 dev eth1")),
        "{route}"
    );
    must(&format!("docker start {} >/dev/null", c.name));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");

    // Removing a route from the file removes it from the container.
    let body = std::fs::read_to_string(&f).unwrap().replacen(
        &format!("routes = [{{ to = \"10.64.{o}.0/30\", via = \"10.63.{o}.2\" }}]"),
        "",
        1,
    );
    std::fs::write(&f, body).unwrap();
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    assert!(!a.pings(&format!("10.64.{o}.2")));
    assert!(
        !must(&format!("docker exec {} ip route", a.name)).contains(&format!("10.64.{o}.0/30"))
    );
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
}

#[test]
fn a_restarted_container_gets_its_interfaces_back_and_a_stopped_one_waits() {
    let l = lab();
    let (r1, r2) = (Ctr::run("nla", &l.base), Ctr::run("nlb", &l.base));
    let o = l.o;
    let f = l.write(&format!(
        r#"
[bridge.br-lan]
[container.{a}]
interfaces.eth1 = {{ bridge = "br-lan", addresses = ["10.65.{o}.1/24"] }}
ready = {{ ping = "10.65.{o}.2", retries = 3, timeout_ms = 300 }}
[container.{b}]
interfaces.eth1 = {{ bridge = "br-lan", addresses = ["10.65.{o}.2/24"] }}
"#,
        a = r1.name,
        b = r2.name
    ));
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    assert!(r1.pings(&format!("10.65.{o}.2")));

    let mac = |c: &Ctr| {
        must(&format!(
            "docker exec {} cat /sys/class/net/eth1/address",
            c.name
        ))
    };
    let (mac1, mac2) = (mac(&r1), mac(&r2));

    // A restart gives the container a new netns: its interface is gone.
    must(&format!("docker restart -t 0 {} >/dev/null", r1.name));
    assert!(r1.extra_links().is_empty());
    let plan = nl(&["plan", "--detailed-exitcode"], &[&f]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(
        plan.stdout
            .contains(&format!("+ interface {}:eth1 (bridge br-lan)", r1.name)),
        "{plan:?}"
    );
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    assert!(r1.pings(&format!("10.65.{o}.2")), "restored by one apply");
    // Same MAC as before, so peers' neighbour entries are still right.
    assert_eq!(mac(&r1), mac1);

    // A stopped container is pending, not an error.
    must(&format!("docker stop -t 0 {} >/dev/null", r2.name));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(
        r.code, 2,
        "pending, and the probe toward it waits too: {r:?}"
    );
    assert!(
        r.stdout.contains(&format!(
            "container `{}` exists but is not running",
            r2.name
        )),
        "{r:?}"
    );
    must(&format!("docker start {} >/dev/null", r2.name));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(mac(&r2), mac2);
    assert!(r1.pings(&format!("10.65.{o}.2")));
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
}

#[test]
fn containers_sharing_a_netns_are_refused_before_any_change() {
    let l = lab();
    let o = l.o;
    let owner = Ctr::run("nlo", &l.base);
    let guest = Ctr::run_mode("nlg", &format!("container:{}", owner.name));
    let host = Ctr::run_mode("nlh", "host");
    let none = Ctr::run_mode("nln", "none");
    let f = l.write(&format!(
        r#"
[bridge.br-lan]
[network.{t}n]
subnets = ["10.66.{o}.0/24"]
[container.{a}]
interfaces.eth1 = {{ bridge = "br-lan", addresses = ["10.65.{o}.1/24"] }}
[container.{b}]
interfaces.eth2 = {{ bridge = "br-lan", addresses = ["10.65.{o}.2/24"] }}
[container.{h}]
interfaces.eth1 = {{ bridge = "br-lan", addresses = ["10.65.{o}.3/24"] }}
[container.{n}]
networks.{t}n = {{}}
"#,
        t = l.t.name,
        a = owner.name,
        b = guest.name,
        h = host.name,
        n = none.name,
    ));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 1, "{r:?}");
    for msg in [
        format!(
            "container `{}` shares its network namespace with container `{}`",
            owner.name, guest.name
        ),
        format!(
            "container `{}` shares its network namespace with container `{}`",
            guest.name, owner.name
        ),
        format!(
            "container `{}` shares its network namespace with the host (--network host)",
            host.name
        ),
        format!(
            "container `{}` runs with --network none: Docker cannot connect it to other networks",
            none.name
        ),
    ] {
        assert!(r.stdout.contains(&msg), "{msg}\n{r:?}");
    }
    assert!(!l.ns.exists(), "nothing was changed");
    assert!(owner.extra_links().is_empty());
    assert!(network_inspect(&format!("{}n", l.t.name)).is_none());
}

#[test]
fn a_pod_wired_through_one_container_stays_converged() {
    let l = lab();
    let o = l.o;
    let owner = Ctr::run("nlo", &l.base);
    // Shares owner's netns and only probes: the wiring there is owner's.
    let sidecar = Ctr::run_mode("nls", &format!("container:{}", owner.name));
    let f = l.write(&format!(
        r#"
[bridge.br-lan]
addresses = ["10.67.{o}.1/24"]
[container.{a}]
interfaces.eth1 = {{ bridge = "br-lan", addresses = ["10.67.{o}.2/24"] }}
[container.{s}]
ready = {{ ping = "10.67.{o}.1", retries = 5, timeout_ms = 500 }}
"#,
        a = owner.name,
        s = sidecar.name,
    ));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    for _ in 0..2 {
        let again = nl(&["plan", "--detailed-exitcode"], &[&f]);
        assert_eq!(again.code, 0, "{again:?}");
        assert_eq!(nl(&["apply"], &[&f]).code, 0);
    }
    assert_eq!(owner.extra_links(), ["eth1"]);
    assert!(sidecar.pings(&format!("10.67.{o}.1")));
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
    assert!(owner.extra_links().is_empty());
}
