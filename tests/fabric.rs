//! A dual-stack fabric applied into freshly started containers: the first
//! apply must exit 0 (issue 14: IPv6 duplicate address detection on new
//! point-to-point veths used to outlast verification).

mod common;

use common::*;

const NODES: usize = 10;

#[test]
fn a_dual_stack_ring_into_fresh_containers_applies_first_time_every_time() {
    for round in 0..3 {
        let t = Topo::new("nlf");
        let d = Dir::new();
        let ctrs: Vec<Ctr> = (0..NODES).map(|_| Ctr::run_mode("nlfn", "none")).collect();
        let o = octet();
        let mut body = format!("[topology]\nname = \"{}\"\n", t.name);
        for (i, c) in ctrs.iter().enumerate() {
            body += &format!("[container.{}]\n", c.name);
            // The first node's readiness: its ring neighbour, over IPv6.
            // (3 × 500 ms once missed in a loaded debug CI run: see the
            // closing note of issue 9; 5 × 1 s still fails an apply whose
            // neighbour never answers.)
            if i == 0 {
                body += &format!(
                    "ready = {{ ping = \"fd00:99:{o}::1\", retries = 5, timeout_ms = 1000 }}\n"
                );
            }
        }
        // A ring: node i's eth1 to node i+1's eth2, IPv4 /31 and IPv6 /127.
        for i in 0..NODES {
            let (a, b) = (&ctrs[i].name, &ctrs[(i + 1) % NODES].name);
            body += &format!(
                "[[link]]\nendpoints = [\"{a}:eth1\", \"{b}:eth2\"]\naddresses = {{ \"{a}:eth1\" = [\"10.99.{o}.{}/31\", \"fd00:99:{o}::{:x}/127\"], \"{b}:eth2\" = [\"10.99.{o}.{}/31\", \"fd00:99:{o}::{:x}/127\"] }}\n",
                2 * i,
                2 * i,
                2 * i + 1,
                2 * i + 1
            );
        }
        let f = d.write("lab.toml", &body);
        let r = nl(&["apply"], &[&f]);
        assert_eq!(r.code, 0, "round {round}: {r:?}");
        assert!(
            r.all().contains(&format!("reaches fd00:99:{o}::1")),
            "the IPv6 readiness probe answered: {r:?}"
        );
        // Both families work over a link at once: no address is tentative.
        let peer = format!("fd00:99:{o}::1");
        let v6 = sh(&format!(
            "docker exec {} ping -c 1 -W 2 {peer}",
            ctrs[0].name
        ));
        assert_eq!(v6.code, 0, "round {round}: {v6:?}");
        assert!(ctrs[0].pings(&format!("10.99.{o}.1")));
        let addrs = must(&format!(
            "docker exec {} ip -6 addr show dev eth1",
            ctrs[0].name
        ));
        assert!(!addrs.contains("tentative"), "{addrs}");
        assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);
        if round == 0 {
            // A probe of an address node 0 has no route to fails the apply.
            let unreachable = body.replace(
                &format!("ping = \"fd00:99:{o}::1\""),
                &format!("ping = \"fd00:99:{o}::3\""),
            );
            d.write("lab.toml", &unreachable);
            let r = nl(&["apply"], &[&f]);
            assert_eq!(r.code, 1, "{r:?}");
            assert!(r.stderr.contains("readiness probe of"), "{r:?}");
        }
        assert_eq!(nl(&["destroy"], &[&f]).code, 0);
    }
}
