//! The nftables ruleset of one netns's services, as one `nft -f` script
//! that replaces netloom's table atomically. Every rule carries a comment
//! naming what it is for: observation reads the rules back by comment.

use crate::model::Proto;
use crate::resource::ServiceRes;
use std::fmt::Write as _;
use std::net::IpAddr;

/// The comment on the table's own rules.
pub const BASE: &str = "nl base";

/// The base chains' rules, (chain, comment) in order.
pub const BASE_RULES: [(&str, &str); 6] = [
    ("nat-prerouting", BASE),
    ("nat-output", BASE),
    ("nat-postrouting", BASE),
    ("nat-postrouting", BASE),
    ("filter-prerouting", BASE),
    ("filter-output", BASE),
];

struct Rule {
    chain: String,
    text: String,
    comment: String,
}

fn fam(ip: &IpAddr) -> (&'static str, u8) {
    match ip {
        IpAddr::V4(_) => ("ip", 4),
        IpAddr::V6(_) => ("ip6", 6),
    }
}

/// A service's rules and the chains and sets they need.
fn service_rules(s: &ServiceRes) -> (Vec<Rule>, Vec<String>, Vec<String>) {
    let (mut rules, mut chains, mut sets) = (vec![], vec![], vec![]);
    let n = &s.name;
    let mut rule = |chain: &str, text: String, comment: String| {
        rules.push(Rule {
            chain: chain.to_string(),
            text,
            comment,
        })
    };
    for p in &s.ports {
        let proto = p.protocol.as_str();
        for f in [4u8, 6] {
            let vips: Vec<&IpAddr> = s.vips.iter().filter(|v| fam(v).1 == f).collect();
            if vips.is_empty() {
                continue;
            }
            let fname = if f == 4 { "ip" } else { "ip6" };
            let eps: Vec<(String, String)> = s
                .endpoints
                .iter()
                .filter_map(|e| match f {
                    4 => e.v4.map(|a| (e.name.clone(), format!("{a}:{}", p.target))),
                    _ => {
                        e.v6.map(|a| (e.name.clone(), format!("[{a}]:{}", p.target)))
                    }
                })
                .collect();
            let svc = format!("svc-{n}-{proto}{}-{f}", p.port);
            for vip in &vips {
                if eps.is_empty() {
                    let verdict = match p.protocol {
                        Proto::Tcp => "reject with tcp reset",
                        Proto::Udp => "reject",
                    };
                    rule(
                        "noep",
                        format!("{fname} daddr {vip} {proto} dport {} {verdict}", p.port),
                        format!("nl svc {n} refuse {vip} {proto}/{}", p.port),
                    );
                } else {
                    rule(
                        "services",
                        format!("{fname} daddr {vip} {proto} dport {} goto {svc}", p.port),
                        format!("nl svc {n} to {vip} {proto}/{}", p.port),
                    );
                }
            }
            if eps.is_empty() {
                continue;
            }
            chains.push(svc.clone());
            let ep_chain = |i: usize| format!("ep-{n}-{proto}{}-{f}-{i}", p.port);
            let aff_set = |i: usize| format!("aff-{n}-{proto}{}-{f}-{i}", p.port);
            if let Some(secs) = s.affinity {
                for i in 0..eps.len() {
                    sets.push(format!(
                        "set {} {{ type {}_addr; flags timeout; timeout {secs}s; }}",
                        aff_set(i),
                        if f == 4 { "ipv4" } else { "ipv6" }
                    ));
                    rule(
                        &svc,
                        format!("{fname} saddr @{} goto {}", aff_set(i), ep_chain(i)),
                        format!("nl svc {n} sticky {i}"),
                    );
                }
            }
            let vmap: Vec<String> = (0..eps.len())
                .map(|i| format!("{i} : goto {}", ep_chain(i)))
                .collect();
            rule(
                &svc,
                format!(
                    "numgen random mod {} vmap {{ {} }}",
                    eps.len(),
                    vmap.join(", ")
                ),
                format!("nl svc {n} spread {}", eps.len()),
            );
            for (i, (name, to)) in eps.iter().enumerate() {
                let c = ep_chain(i);
                chains.push(c.clone());
                if s.affinity.is_some() {
                    rule(
                        &c,
                        format!("update @{} {{ {fname} saddr }}", aff_set(i)),
                        format!("nl svc {n} remember {i}"),
                    );
                }
                rule(
                    &c,
                    format!("meta l4proto {proto} dnat {fname} to {to}"),
                    format!("nl svc {n} ep {name} {to}"),
                );
            }
        }
    }
    (rules, chains, sets)
}

/// (chain, comment) of each rule of a service, in order: what observation
/// must find for it.
pub fn rules_of(s: &ServiceRes) -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = service_rules(s)
        .0
        .into_iter()
        .map(|r| (r.chain, r.comment))
        .collect();
    v.sort();
    v
}

/// The script that makes `table` hold exactly these services' rules (or,
/// with none, removes it). `add` first: nft 1.0.6 has no `destroy`.
pub fn script(table: &str, services: &[ServiceRes]) -> String {
    let mut out = format!("add table inet {table}\ndelete table inet {table}\n");
    if services.is_empty() {
        return out;
    }
    let (mut rules, mut chains, mut sets) = (vec![], vec![], vec![]);
    for s in services {
        let (r, c, st) = service_rules(s);
        rules.extend(r);
        chains.extend(c);
        sets.extend(st);
    }
    let elems = |f: u8| -> String {
        let v: Vec<String> = services
            .iter()
            .flat_map(|s| s.vips.iter())
            .filter(|v| fam(v).1 == f)
            .map(ToString::to_string)
            .collect::<std::collections::BTreeSet<_>>()
            .into_iter()
            .collect();
        if v.is_empty() {
            String::new()
        } else {
            format!(" elements = {{ {} }};", v.join(", "))
        }
    };
    let _ = writeln!(out, "table inet {table} {{");
    let _ = writeln!(out, "  set vips4 {{ type ipv4_addr;{} }}", elems(4));
    let _ = writeln!(out, "  set vips6 {{ type ipv6_addr;{} }}", elems(6));
    for s in &sets {
        let _ = writeln!(out, "  {s}");
    }
    let base = [
        (
            "nat-prerouting",
            "type nat hook prerouting priority -100; policy accept;",
            vec!["jump services"],
        ),
        (
            "nat-output",
            "type nat hook output priority -100; policy accept;",
            vec!["jump services"],
        ),
        (
            "nat-postrouting",
            "type nat hook postrouting priority 100; policy accept;",
            vec![
                "ct status dnat ct original ip daddr @vips4 masquerade",
                "ct status dnat ct original ip6 daddr @vips6 masquerade",
            ],
        ),
        // Before routing: a VIP with no route here is still refused with
        // a reset, not "network unreachable".
        (
            "filter-prerouting",
            "type filter hook prerouting priority -110; policy accept;",
            vec!["jump noep"],
        ),
        (
            "filter-output",
            "type filter hook output priority -10; policy accept;",
            vec!["jump noep"],
        ),
    ];
    for (name, hook, body) in base {
        let _ = writeln!(out, "  chain {name} {{\n    {hook}");
        for b in body {
            let _ = writeln!(out, "    {b} comment \"{BASE}\"");
        }
        let _ = writeln!(out, "  }}");
    }
    // Rules by chain, in order (a scan of every rule per chain was
    // quadratic in the number of endpoints).
    let mut by_chain: std::collections::HashMap<&str, Vec<&Rule>> = Default::default();
    for r in &rules {
        by_chain.entry(r.chain.as_str()).or_default().push(r);
    }
    for c in ["services", "noep"]
        .iter()
        .map(|s| s.to_string())
        .chain(chains)
    {
        let _ = writeln!(out, "  chain {c} {{");
        for r in by_chain.get(c.as_str()).into_iter().flatten() {
            let _ = writeln!(out, "    {} comment \"{}\"", r.text, r.comment);
        }
        let _ = writeln!(out, "  }}");
    }
    out.push_str("}\n");
    out
}

/// A change in place: its script, whether to run it echoed (it adds rules
/// whose handles a later change needs), and the rules it writes.
pub struct Delta {
    pub script: String,
    pub echo: bool,
    /// (chain, comment) of every rule added.
    pub written: Vec<(String, String)>,
    /// Changed services whose dispatch rules stayed as they were.
    pub kept: Vec<String>,
}

/// The chains of the table's own (every service's dispatch lives in them).
const SHARED: [&str; 2] = ["services", "noep"];

/// A script that changes only the given services in an existing table of
/// netloom's (`observed`): each one's dispatch rules are deleted by handle
/// and its own chains flushed, then its rules come anew; chains and sets
/// it no longer has go. `None` when that cannot be done in place (a rule
/// without a handle): then the whole table is written.
pub fn delta(
    table: &str,
    changed: &[(&str, Option<&ServiceRes>)],
    all: &[ServiceRes],
    observed: &crate::observed::NftObs,
) -> Option<Delta> {
    let mut out = String::new();
    let (mut old_chains, mut new_chains) = (vec![], vec![]);
    let (mut old_sets, mut new_sets) = (vec![], vec![]);
    let mut new_rules = vec![];
    let mut echo = false;
    let mut kept = vec![];
    for (name, new) in changed {
        let old = observed.rules_with_handles(name);
        let mut old_shared: Vec<(&str, &str)> = old
            .iter()
            .filter(|(c, _, _)| SHARED.contains(c))
            .map(|(c, m, _)| (*c, *m))
            .collect();
        old_shared.sort();
        let (rules, chains, sets) = new.map(service_rules).unwrap_or_default();
        let mut new_shared: Vec<(&str, &str)> = rules
            .iter()
            .filter(|r| SHARED.contains(&r.chain.as_str()))
            .map(|r| (r.chain.as_str(), r.comment.as_str()))
            .collect();
        new_shared.sort();
        // Dispatch rules unchanged (an endpoint change): left in place.
        let keep_shared = old_shared == new_shared;
        if keep_shared {
            kept.push(name.to_string());
        }
        for (chain, comment, handle) in old {
            // A service's comment in a base chain was put there by hand.
            if BASE_RULES.iter().any(|(b, _)| *b == chain) {
                return None;
            }
            if SHARED.contains(&chain) {
                if !keep_shared {
                    let handle = handle.filter(|h| *h != 0)?;
                    let _ = writeln!(out, "delete rule inet {table} {chain} handle {handle}");
                }
            } else if !old_chains.contains(&chain) {
                old_chains.push(chain);
                // An endpoint chain with a `remember` rule has a set of its own.
                if comment.contains(" remember ")
                    && let Some(set) = chain.strip_prefix("ep-")
                {
                    old_sets.push(format!("aff-{set}"));
                }
            }
        }
        // New rules in the shared chains are echoed, for their handles.
        echo |= !keep_shared && !new_shared.is_empty();
        new_rules.extend(
            rules
                .into_iter()
                .filter(|r| !(keep_shared && SHARED.contains(&r.chain.as_str()))),
        );
        new_chains.extend(chains);
        new_sets.extend(sets);
    }
    for c in &old_chains {
        let _ = writeln!(out, "flush chain inet {table} {c}");
    }
    let new_set_names: Vec<&str> = new_sets
        .iter()
        .filter_map(|s| s.strip_prefix("set ")?.split(' ').next())
        .collect();
    for c in old_chains
        .iter()
        .filter(|c| !new_chains.iter().any(|n| n == *c))
    {
        let _ = writeln!(out, "delete chain inet {table} {c}");
    }
    for s in old_sets
        .iter()
        .filter(|s| !new_set_names.contains(&s.as_str()))
    {
        let _ = writeln!(out, "delete set inet {table} {s}");
    }
    for s in &new_sets {
        let _ = writeln!(
            out,
            "add {}",
            s.replace("set ", &format!("set inet {table} "))
        );
    }
    for c in &new_chains {
        let _ = writeln!(out, "add chain inet {table} {c}");
    }
    for r in &new_rules {
        let _ = writeln!(
            out,
            "add rule inet {table} {} {} comment \"{}\"",
            r.chain, r.text, r.comment
        );
    }
    // The VIP sets the masquerade rules match, whole, when a changed
    // service's VIPs moved (a VIP may serve several services).
    let old_vips: std::collections::BTreeSet<String> = changed
        .iter()
        .flat_map(|(n, _)| observed.rules_with_handles(n))
        .filter(|(c, _, _)| SHARED.contains(c))
        .filter_map(|(_, comment, _)| {
            let rest = comment.split(' ').collect::<Vec<_>>();
            (rest.len() >= 5).then(|| rest[4].to_string())
        })
        .collect();
    let new_vips: std::collections::BTreeSet<String> = changed
        .iter()
        .filter_map(|(_, s)| *s)
        .flat_map(|s| s.vips.iter().map(ToString::to_string))
        .collect();
    let written = new_rules
        .iter()
        .map(|r| (r.chain.clone(), r.comment.clone()))
        .collect();
    let done = |script| Delta {
        script,
        echo,
        written,
        kept,
    };
    if old_vips == new_vips {
        return Some(done(out));
    }
    for (f, set) in [(4u8, "vips4"), (6, "vips6")] {
        let v: std::collections::BTreeSet<String> = all
            .iter()
            .flat_map(|s| s.vips.iter())
            .filter(|v| fam(v).1 == f)
            .map(ToString::to_string)
            .collect();
        let _ = writeln!(out, "flush set inet {table} {set}");
        if !v.is_empty() {
            let list: Vec<String> = v.into_iter().collect();
            let _ = writeln!(
                out,
                "add element inet {table} {set} {{ {} }}",
                list.join(", ")
            );
        }
    }
    Some(done(out))
}
