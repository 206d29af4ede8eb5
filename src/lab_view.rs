//! `graph --view lab`: the lab as a picture (containers, bridges, Docker
//! networks and the netns as nodes; veths, links and attachments as edges
//! with their addresses), as Graphviz DOT. The dependency view is `graph`.

use crate::graph::esc;
use crate::model::Topology;
use ipnet::IpNet;
use std::collections::BTreeSet;
use std::fmt::Write as _;

fn addrs(a: &BTreeSet<IpNet>) -> String {
    a.iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\\n")
}

fn end(name: &str, a: &BTreeSet<IpNet>) -> String {
    if a.is_empty() {
        esc(name)
    } else {
        format!("{}\\n{}", esc(name), addrs(a))
    }
}

/// DOT of the lab: one cluster for the topology's netns.
pub fn to_dot(t: &Topology) -> String {
    let mut out = format!(
        "graph \"{}\" {{\n  fontname=\"monospace\";\n  node [fontname=\"monospace\"];\n  edge [fontname=\"monospace\", fontsize=10];\n",
        esc(&t.name)
    );
    let ns = t.netns.as_deref().unwrap_or("host");
    let _ = writeln!(
        out,
        "  subgraph \"cluster_netns\" {{\n    label=\"netns {}\";",
        esc(ns)
    );
    for b in t.bridges.values() {
        let _ = writeln!(
            out,
            "    \"bridge/{0}\" [shape=box, label=\"bridge {0}{1}\"];",
            esc(&b.name),
            if b.addresses.is_empty() {
                String::new()
            } else {
                format!("\\n{}", addrs(&b.addresses))
            }
        );
    }
    // A veth not on a bridge is its own node, so its two ends show.
    for v in t.veths.values() {
        for (n, m) in [(&v.name, &v.master), (&v.peer, &v.peer_master)] {
            if m.is_none() {
                let _ = writeln!(
                    out,
                    "    \"veth/{0}\" [shape=ellipse, label=\"{0}\"];",
                    esc(n)
                );
            }
        }
    }
    out.push_str("  }\n");
    for n in t.networks.values() {
        let subnets: Vec<String> = n.res.subnets.iter().map(ToString::to_string).collect();
        let _ = writeln!(
            out,
            "  \"network/{0}\" [shape=hexagon, label=\"docker network {0}\\n{1}\"];",
            esc(&n.res.name),
            subnets.join("\\n")
        );
    }
    for c in t.containers.values() {
        let _ = writeln!(
            out,
            "  \"container/{0}\" [shape=box3d, label=\"{0}{1}\"];",
            esc(&c.name),
            if c.loopback.is_empty() {
                String::new()
            } else {
                format!("\\nlo {}", addrs(&c.loopback))
            }
        );
    }
    for v in t.veths.values() {
        let node = |n: &str, m: &Option<String>| match m {
            Some(b) => format!("bridge/{}", esc(b)),
            None => format!("veth/{}", esc(n)),
        };
        let _ = writeln!(
            out,
            "  \"{}\" -- \"{}\" [label=\"veth {}\", taillabel=\"{}\", headlabel=\"{}\"];",
            node(&v.name, &v.master),
            node(&v.peer, &v.peer_master),
            esc(&v.name),
            end(&v.name, &v.addresses),
            end(&v.peer, &v.peer_addresses)
        );
    }
    for c in t.containers.values() {
        for i in c.interfaces.values() {
            let _ = writeln!(
                out,
                "  \"container/{}\" -- \"bridge/{}\" [taillabel=\"{}\"];",
                esc(&c.name),
                esc(&i.bridge),
                end(&i.name, &i.addresses)
            );
        }
        for a in c.networks.values() {
            let ips: Vec<String> = a
                .ipv4
                .map(|ip| ip.to_string())
                .into_iter()
                .chain(a.ipv6.map(|ip| ip.to_string()))
                .collect();
            let _ = writeln!(
                out,
                "  \"container/{}\" -- \"network/{}\" [style=dashed, taillabel=\"{}\"];",
                esc(&c.name),
                esc(&a.network),
                ips.join("\\n")
            );
        }
    }
    for l in &t.links {
        let _ = writeln!(
            out,
            "  \"container/{}\" -- \"container/{}\" [taillabel=\"{}\", headlabel=\"{}\"];",
            esc(&l.a.0),
            esc(&l.b.0),
            end(&l.a.1, &l.a_addresses),
            end(&l.b.1, &l.b_addresses)
        );
    }
    out.push_str("}\n");
    out
}
