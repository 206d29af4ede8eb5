//! A container restarted under `netloom watch` is re-wired in one
//! reconcile: its links (made again, so their other ends in the
//! neighbouring containers are new too), its routes and the neighbours'
//! routes through those links, with no failed verification and no retry.

mod common;

use common::*;

/// A routed chain c1 – c2 – c3 – c4 of /30 links (c2 and c3 forward), each
/// container with routes to the far subnets via its link neighbours, and
/// c1 also on a topology bridge.
struct Chain {
    // Dropped in this order: the containers before their network.
    c: Vec<Ctr>,
    _base: DockerNet,
    _nets: NetsOf,
    t: Topo,
    _ns: Netns,
    dir: Dir,
    o: u8,
}

fn chain() -> Chain {
    ensure_image();
    let t = Topo::new("nlt");
    let nets = NetsOf {
        topology: t.name.clone(),
    };
    let base = DockerNet::internal("nlb");
    let fwd = "--sysctl net.ipv4.ip_forward=1";
    let c = vec![
        Ctr::run("nlra", &base),
        Ctr::run_with("nlrb", &base, fwd),
        Ctr::run_with("nlrc", &base, fwd),
        Ctr::run("nlrd", &base),
    ];
    Chain {
        t,
        _ns: Netns::named("nlt"),
        dir: Dir::new(),
        _base: base,
        _nets: nets,
        c,
        o: octet(),
    }
}

impl Chain {
    fn write(&self) -> std::path::PathBuf {
        let o = self.o;
        let [c1, c2, c3, c4] = [0, 1, 2, 3].map(|i| self.c[i].name.as_str());
        // Link subnets: c1–c2 10.71, c2–c3 10.72, c3–c4 10.73; bridge 10.74.
        let body = format!(
            r#"
[bridge.br-lan]
addresses = ["10.74.{o}.1/24"]

[container.{c1}]
interfaces.eth9 = {{ bridge = "br-lan", addresses = ["10.74.{o}.11/24"] }}
routes = [
  {{ to = "10.72.{o}.0/30", via = "10.71.{o}.2" }},
  {{ to = "10.73.{o}.0/30", via = "10.71.{o}.2" }},
]

[container.{c2}]
routes = [
  {{ to = "10.73.{o}.0/30", via = "10.72.{o}.2" }},
  {{ to = "10.74.{o}.0/24", via = "10.71.{o}.1" }},
]

[container.{c3}]
routes = [
  {{ to = "10.71.{o}.0/30", via = "10.72.{o}.1" }},
  {{ to = "10.74.{o}.0/24", via = "10.72.{o}.1" }},
]

[container.{c4}]
routes = [
  {{ to = "10.71.{o}.0/30", via = "10.73.{o}.1" }},
  {{ to = "10.72.{o}.0/30", via = "10.73.{o}.1" }},
  {{ to = "10.74.{o}.0/24", via = "10.73.{o}.1" }},
]

[[link]]
endpoints = ["{c1}:eth1", "{c2}:eth1"]
addresses = {{ "{c1}:eth1" = ["10.71.{o}.1/30"], "{c2}:eth1" = ["10.71.{o}.2/30"] }}

[[link]]
endpoints = ["{c2}:eth2", "{c3}:eth1"]
addresses = {{ "{c2}:eth2" = ["10.72.{o}.1/30"], "{c3}:eth1" = ["10.72.{o}.2/30"] }}

[[link]]
endpoints = ["{c3}:eth2", "{c4}:eth1"]
addresses = {{ "{c3}:eth2" = ["10.73.{o}.1/30"], "{c4}:eth1" = ["10.73.{o}.2/30"] }}
"#
        );
        self.dir.write(
            "lab.toml",
            &format!(
                "[topology]\nname = \"{}\"\nnetns = \"{}\"\n{body}",
                self.t.name, self._ns.name
            ),
        )
    }

    /// End to end both ways, and from the bridge's container to the far end.
    fn routes_work(&self) -> bool {
        let o = self.o;
        self.c[0].pings(&format!("10.73.{o}.2"))
            && self.c[3].pings(&format!("10.71.{o}.1"))
            && self.c[3].pings(&format!("10.74.{o}.11"))
            && self.c[1].pings(&format!("10.73.{o}.2"))
    }
}

/// Keeps a container's current netns alive (bound to a name, as
/// `ip netns attach` does) until dropped.
fn hold_netns(c: &Ctr) -> Netns {
    let pid = must(&format!(
        "docker inspect -f '{{{{.State.Pid}}}}' {}",
        c.name
    ));
    let held = Netns::named("nlo");
    must(&format!("ip netns attach {} {}", held.name, pid.trim()));
    held
}

fn converged(f: &std::path::Path) -> bool {
    nl(&["plan", "--detailed-exitcode"], &[f]).code == 0
}

#[test]
fn restarting_a_container_in_a_routed_chain_costs_one_clean_reconcile() {
    let lab = chain();
    let f = lab.write();
    let w = WatchProc::start(&[&f], "60s");
    let log = || w.log();
    eventually(
        "first apply",
        30,
        || log().contains("result=ok") && converged(&f),
        log,
    );
    assert!(lab.routes_work(), "routed before any restart\n{}", log());
    let o = lab.o;
    let wants = [
        vec!["eth1", "eth9"],
        vec!["eth1", "eth2"],
        vec!["eth1", "eth2"],
        vec!["eth1"],
    ];

    // An end of the chain, then a router in the middle. The kernel tears a
    // stopped container's netns down asynchronously, so its veths' other
    // ends, in the neighbours, may still be there when the restarted
    // container's new netns is observed (and the neighbours' routes through
    // them too). The first restart of each lets that race run; the next
    // two hold the old netns (as a slow teardown, or an `nsenter` shell
    // left in it, would) until watch has converged, so the leftovers are
    // surely seen.
    for (round, i) in [3usize, 3, 3, 1, 1, 1].into_iter().enumerate() {
        let c = &lab.c[i];
        std::thread::sleep(std::time::Duration::from_millis(300));
        let from = log().len();
        let since = || log()[from..].to_string();
        let _old = (round % 3 != 0).then(|| hold_netns(c));
        must(&format!("docker restart -t 0 {} >/dev/null", c.name));
        eventually(
            &format!("{} re-wired after its restart", c.name),
            20,
            || {
                since().contains("result=ok")
                    && (0..4).all(|j| lab.c[j].extra_links() == wants[j])
                    && converged(&f)
            },
            || format!("{}\n--- since the restart:\n{}", log(), since()),
        );
        assert!(
            lab.routes_work(),
            "routes across the chain after restarting {}\n{}",
            c.name,
            since()
        );
        // Let any retry or verification failure show up before judging.
        std::thread::sleep(std::time::Duration::from_millis(2500));
        let s = since();
        for bad in ["result=error", "still differs", "WARN", "ERROR"] {
            assert!(
                !s.contains(bad),
                "restarting {} logged `{bad}`:\n{s}",
                c.name
            );
        }
        // One reconcile made the changes (the one at the stop only found
        // the container's wiring pending).
        let applying = s
            .lines()
            .filter(|l| l.contains(" reconcile trigger=") && !l.contains(" changes=0 "))
            .count();
        assert_eq!(applying, 1, "restarting {}:\n{s}", c.name);
        assert!(converged(&f), "{s}");
        let route = must(&format!("docker exec {} ip route", lab.c[3].name));
        assert!(
            route.contains(&format!("10.71.{o}.0/30 via 10.73.{o}.1 dev eth1")),
            "{route}"
        );
    }
    assert!(w.stop().success());
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
}
