//! IP forwarding where the topology routes: its netns when that netns sits
//! between subnets, the host when Docker networks reach beyond it.

use super::Finding;
use crate::model::{Family, ServiceNet, Topology};
use ipnet::IpNet;
use std::collections::BTreeSet;

const CHECK: &str = "forwarding";

fn key(f: Family) -> &'static str {
    match f {
        Family::Ipv4 => "net.ipv4.ip_forward",
        Family::Ipv6 => "net.ipv6.conf.all.forwarding",
    }
}

fn family_name(f: Family) -> &'static str {
    match f {
        Family::Ipv4 => "IPv4",
        Family::Ipv6 => "IPv6",
    }
}

/// Why the topology's netns must forward `fam`, if it must: a container
/// routes through one of its addresses, or it holds addresses on two or
/// more subnets (it is the router between them).
pub fn why_forward(t: &Topology, fam: Family) -> Option<String> {
    let mut local: Vec<(IpNet, &str)> = vec![];
    for b in t.bridges.values() {
        local.extend(b.addresses.iter().map(|a| (*a, b.name.as_str())));
    }
    for v in t.veths.values() {
        local.extend(v.addresses.iter().map(|a| (*a, v.name.as_str())));
        local.extend(v.peer_addresses.iter().map(|a| (*a, v.peer.as_str())));
    }
    local.retain(|(a, _)| Family::of_net(a) == fam);
    for c in t.containers.values() {
        for r in &c.routes {
            let hops = r.via.into_iter().chain(r.nexthops.iter().map(|h| h.via));
            for via in hops {
                if let Some((_, dev)) = local.iter().find(|(a, _)| a.addr() == via) {
                    return Some(format!(
                        "container `{}` routes {} via {via}, an address of {dev} in it",
                        c.name, r.to
                    ));
                }
            }
        }
    }
    let subnets: BTreeSet<IpNet> = local.iter().map(|(a, _)| a.trunc()).collect();
    (subnets.len() >= 2).then(|| {
        let list: Vec<String> = subnets.iter().map(ToString::to_string).collect();
        format!(
            "it has addresses on {} {} subnets ({}) and routes between them",
            subnets.len(),
            family_name(fam),
            list.join(", ")
        )
    })
}

/// Why the host must forward `fam` for Docker: networks that reach beyond
/// it, VIPs routed to containers.
fn why_host_forwards(t: &Topology, fam: Family) -> Option<String> {
    let net = t
        .networks
        .values()
        // Only a bridge network's traffic is routed by the host (macvlan
        // and ipvlan leave through their parent link).
        .find(|n| {
            !n.external
                && !n.internal
                && n.driver == "bridge"
                && n.subnets.iter().any(|s| Family::of_net(s) == fam)
        });
    if let Some(n) = net {
        return Some(format!(
            "containers on Docker network `{}` reach beyond the host through it",
            n.name
        ));
    }
    let svc = t.services.values().find(|s| {
        matches!(s.network, ServiceNet::Docker(_)) && s.vips.iter().any(|v| Family::of(v) == fam)
    })?;
    Some(format!(
        "service `{}`'s VIPs are routed to containers on Docker network `{}`",
        svc.name,
        svc.network.name()
    ))
}

/// What a netns made now gets: per net.core.devconf_inherit_init_net,
/// IPv4 takes the host's settings (0, 1) and IPv6 the defaults (0, 2) —
/// forwarding off — unless told to inherit (1).
fn new_netns_forwards(fam: Family) -> bool {
    let inherit = std::fs::read_to_string("/proc/sys/net/core/devconf_inherit_init_net")
        .ok()
        .and_then(|v| v.trim().parse::<u8>().ok())
        .unwrap_or(0);
    // 0: IPv4 inherits, IPv6 starts from defaults; 1 and 3 (from the
    // creating netns, the host here): both inherit; 2: defaults.
    let inherits = match fam {
        Family::Ipv4 => matches!(inherit, 0 | 1 | 3),
        Family::Ipv6 => matches!(inherit, 1 | 3),
    };
    inherits && read(None, fam).unwrap_or(false)
}

fn read(netns: Option<&str>, fam: Family) -> std::io::Result<bool> {
    let path = format!("/proc/sys/{}", key(fam).replace('.', "/"));
    let fd = netns.map(crate::netns::open).transpose()?;
    crate::netns::run_in(fd.as_ref(), || std::fs::read_to_string(&path))?.map(|v| v.trim() == "1")
}

pub(super) fn examine(topo: Option<&Topology>, out: &mut Vec<Finding>) {
    let Some(t) = topo else {
        for fam in [Family::Ipv4, Family::Ipv6] {
            if let Ok(on) = read(None, fam) {
                let state = if on { "on" } else { "off" };
                out.push(Finding::ok(
                    CHECK,
                    "host",
                    format!("{} forwarding is {state}", family_name(fam)),
                ));
            }
        }
        return;
    };
    for fam in [Family::Ipv4, Family::Ipv6] {
        let netns_why = why_forward(t, fam);
        let host_why = why_host_forwards(t, fam);
        match (&t.netns, netns_why) {
            (Some(ns), Some(why)) => out.push(in_netns(t, ns, fam, &why)),
            (None, Some(why)) => out.push(on_host(t, fam, &why)),
            _ => {}
        }
        if let Some(why) = host_why
            && (t.netns.is_some() || why_forward(t, fam).is_none())
        {
            out.push(on_host(t, fam, &why));
        }
    }
}

fn set_by_topology(t: &Topology, fam: Family) -> bool {
    t.sysctls
        .iter()
        .any(|(k, v)| k.replace('/', ".") == key(fam) && v.trim() == "1")
}

fn in_netns(t: &Topology, ns: &str, fam: Family, why: &str) -> Finding {
    let subject = format!("netns {ns}");
    let k = key(fam);
    if set_by_topology(t, fam) {
        return Finding::ok(
            CHECK,
            subject,
            format!("{why}; netloom sets {k} = 1 (a sysctl of the topology)"),
        );
    }
    let fix = format!(
        "add `sysctls = {{ \"{k}\" = \"1\" }}` under [topology] (netloom then sets it on every apply), or run: ip netns exec {ns} sysctl -w {k}=1"
    );
    let fam_name = family_name(fam);
    if !crate::netns::exists(ns) {
        if new_netns_forwards(fam) {
            return Finding::ok(
                CHECK,
                subject,
                format!("{why}; a new netns takes the host's {fam_name} forwarding, which is on"),
            );
        }
        return Finding::warning(
            CHECK,
            subject,
            format!(
                "{why}, but it does not exist yet and a new netns will start with {fam_name} forwarding off"
            ),
            fix,
        );
    }
    match read(Some(ns), fam) {
        Ok(true) => Finding::ok(
            CHECK,
            subject,
            format!("{why}; {fam_name} forwarding is on"),
        ),
        Ok(false) => Finding::warning(
            CHECK,
            subject,
            format!(
                "{why}, but {fam_name} forwarding is off ({k} = 0): it drops what it should route"
            ),
            fix,
        ),
        Err(e) => Finding::warning(
            CHECK,
            subject,
            format!("cannot read {k}: {e}"),
            "run doctor as root",
        ),
    }
}

fn on_host(t: &Topology, fam: Family, why: &str) -> Finding {
    let k = key(fam);
    let fam_name = family_name(fam);
    if t.netns.is_none() && set_by_topology(t, fam) {
        return Finding::ok(
            CHECK,
            "host",
            format!("{why}; netloom sets {k} = 1 (a sysctl of the topology)"),
        );
    }
    match read(None, fam) {
        Ok(true) => Finding::ok(CHECK, "host", format!("{why}; {fam_name} forwarding is on")),
        Ok(false) => Finding::warning(
            CHECK,
            "host",
            format!("{why}, but {fam_name} forwarding is off ({k} = 0)"),
            format!(
                "run: sysctl -w {k}=1, and keep it with a line `{k} = 1` in /etc/sysctl.d/90-netloom.conf (dockerd turns IPv4 forwarding on at start unless it runs with --ip-forward=false)"
            ),
        ),
        Err(e) => Finding::warning(
            CHECK,
            "host",
            format!("cannot read {k}: {e}"),
            "run doctor as root",
        ),
    }
}
