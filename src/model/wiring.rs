//! Validation of direct container wiring: `[container.*].interfaces`,
//! `[[link]]`, container `routes` and `ready`.

use super::{
    Bridge, Container, ContainerLink, ContainerRoute, DEFAULT_MTU, Iface, Network, Ready,
    check_ifname,
};
use crate::diag::{Diagnostic, Loc, did_you_mean};
use crate::spec::{ContainerRouteSpec, ContainerSpec, LinkSpec, Loaded, ReadySpec, Section};
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use toml::Spanned;

fn loc_of<T>(file: usize, s: &Spanned<T>) -> Loc {
    Loc::new(file, s.span())
}

fn mtu(file: usize, m: &Option<Spanned<i64>>, diags: &mut Vec<Diagnostic>) -> u32 {
    match m {
        None => DEFAULT_MTU,
        Some(m) if (68..=65535).contains(m.get_ref()) => *m.get_ref() as u32,
        Some(m) => {
            diags.push(
                Diagnostic::at(
                    &loc_of(file, m),
                    format!("MTU {} is out of range", m.get_ref()),
                )
                .help("an MTU is between 68 and 65535 bytes"),
            );
            DEFAULT_MTU
        }
    }
}

fn addresses(
    file: usize,
    list: &[Spanned<String>],
    diags: &mut Vec<Diagnostic>,
) -> BTreeSet<IpNet> {
    let mut out = BTreeSet::new();
    for a in list {
        match a.get_ref().parse::<IpNet>() {
            Ok(n) if !out.insert(n) => diags.push(Diagnostic::at(
                &loc_of(file, a),
                format!("address {n} is listed twice"),
            )),
            Ok(_) => {}
            Err(_) => diags.push(
                Diagnostic::at(
                    &loc_of(file, a),
                    format!("`{}` is not an address in CIDR form", a.get_ref()),
                )
                .help("e.g. \"10.12.0.1/30\""),
            ),
        }
    }
    out
}

/// Claims an interface name inside a container; a second claim is an error.
pub(super) fn claim(
    used: &mut BTreeMap<(String, String), Loc>,
    c: &str,
    ifname: &str,
    loc: &Loc,
    diags: &mut Vec<Diagnostic>,
) {
    if let Err(m) = check_ifname(ifname) {
        diags.push(Diagnostic::at(loc, m));
    }
    if let Some(first) = used.insert((c.to_string(), ifname.to_string()), loc.clone()) {
        diags.push(
            Diagnostic::at(
                loc,
                format!("interface `{ifname}` is used twice in container `{c}`"),
            )
            .related(&first, "first used here")
            .help("each interface in a container needs its own name"),
        );
    }
}

pub(super) fn build(
    loaded: &Loaded,
    containers: &mut BTreeMap<String, Container>,
    bridges: &BTreeMap<String, Bridge>,
    used: &mut BTreeMap<(String, String), Loc>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<ContainerLink> {
    for f in &loaded.files {
        for s in &f.containers {
            let Some(c) = containers.get_mut(&s.name) else {
                continue;
            };
            interfaces(f.file, &s.spec, c, bridges, used, diags);
            c.loopback = addresses(f.file, &s.spec.loopback, diags);
            c.sysctls = sysctls(f.file, &s.spec.sysctls, diags);
            if let Some(r) = &s.spec.ready
                && let Some(ready) = ready(f.file, r, diags)
            {
                c.ready = Some(ready);
            }
        }
    }

    let mut links = vec![];
    for f in &loaded.files {
        for s in &f.links {
            if let Some(l) = link(f.file, s, containers, used, diags) {
                links.push(l);
            }
        }
    }

    links
}

/// `sysctls`: network ones only (`net.*`: the others are the whole
/// host's, whatever netns they are written from).
pub(super) fn sysctls(
    file: usize,
    map: &BTreeMap<Spanned<String>, Spanned<String>>,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    for (k, v) in map {
        let key = k.get_ref();
        let path = key.replace('/', ".");
        let well_formed = !key.is_empty()
            && key
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-/@:".contains(c))
            && !path.split('.').any(str::is_empty);
        if !well_formed {
            diags.push(
                Diagnostic::at(&loc_of(file, k), format!("`{key}` is not a sysctl key"))
                    .help("e.g. \"net.ipv4.ip_forward\""),
            );
            continue;
        }
        if !path.starts_with("net.") {
            diags.push(
                Diagnostic::at(
                    &loc_of(file, k),
                    format!("sysctl `{key}` is not a network sysctl"),
                )
                .help("only net.* keys belong to a network namespace; others would change the whole host"),
            );
            continue;
        }
        let value = v.get_ref();
        if value.trim().is_empty() || value.contains('\n') {
            diags.push(
                Diagnostic::at(
                    &loc_of(file, v),
                    format!("sysctl `{key}` needs a one-line value"),
                )
                .help("e.g. \"1\""),
            );
            continue;
        }
        out.insert(key.clone(), value.clone());
    }
    out
}

/// A container's `interfaces`: each a veth to a declared bridge.
fn interfaces(
    file: usize,
    spec: &ContainerSpec,
    c: &mut Container,
    bridges: &BTreeMap<String, Bridge>,
    used: &mut BTreeMap<(String, String), Loc>,
    diags: &mut Vec<Diagnostic>,
) {
    for (name, spec) in &spec.interfaces {
        let loc = loc_of(file, name);
        claim(used, &c.name, name.get_ref(), &loc, diags);
        let bridge = spec.bridge.get_ref();
        if !bridges.contains_key(bridge) {
            let d = Diagnostic::at(
                &loc_of(file, &spec.bridge),
                format!("no bridge named `{bridge}` is declared"),
            )
            .unresolved();
            diags.push(
                match did_you_mean(bridge, bridges.keys().map(String::as_str)) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!("declare it with [bridge.{bridge}]")),
                },
            );
        }
        c.interfaces.insert(
            name.get_ref().clone(),
            Iface {
                name: name.get_ref().clone(),
                loc,
                bridge: bridge.clone(),
                addresses: addresses(file, &spec.addresses, diags),
                mtu: mtu(file, &spec.mtu, diags),
            },
        );
    }
}

/// The readiness probe; `None` when its address is not IPv4.
fn ready(file: usize, r: &ReadySpec, diags: &mut Vec<Diagnostic>) -> Option<Ready> {
    let ping = r.ping.get_ref().parse();
    let num = |v: &Option<Spanned<i64>>,
               default: i64,
               max: i64,
               what: &str,
               diags: &mut Vec<Diagnostic>| match v {
        Some(n) if (1..=max).contains(n.get_ref()) => *n.get_ref(),
        Some(n) => {
            diags.push(Diagnostic::at(
                &loc_of(file, n),
                format!("{what} {} is out of range (1 to {max})", n.get_ref()),
            ));
            default
        }
        None => default,
    };
    let retries = num(&r.retries, 5, 1000, "retries", diags) as u32;
    let timeout_ms = num(&r.timeout_ms, 1000, 600_000, "timeout_ms", diags) as u64;
    match ping {
        Ok(ping) => Some(Ready {
            ping,
            retries,
            timeout_ms,
        }),
        Err(_) => {
            diags.push(
                Diagnostic::at(
                    &loc_of(file, &r.ping),
                    format!("`{}` is not an IP address", r.ping.get_ref()),
                )
                .help("the readiness probe pings one IPv4 or IPv6 address"),
            );
            None
        }
    }
}

/// One `[[link]]`; `None` when its endpoints are not two CONTAINER:IFNAME.
fn link(
    file: usize,
    s: &Section<LinkSpec>,
    containers: &BTreeMap<String, Container>,
    used: &mut BTreeMap<(String, String), Loc>,
    diags: &mut Vec<Diagnostic>,
) -> Option<ContainerLink> {
    let ends = link_ends(file, &s.spec, diags);
    if s.spec.endpoints.get_ref().len() != 2 {
        diags.push(
            Diagnostic::at(
                &loc_of(file, &s.spec.endpoints),
                "a link has exactly two endpoints",
            )
            .help("endpoints = [\"r1:eth1\", \"r2:eth1\"]"),
        );
        return None;
    }
    if ends.len() != 2 {
        return None;
    }
    for (c, i, loc) in &ends {
        if !containers.contains_key(c) {
            let d =
                Diagnostic::at(loc, format!("no container named `{c}` is declared")).unresolved();
            diags.push(
                match did_you_mean(c, containers.keys().map(String::as_str)) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!("declare it with [container.{c}] (it may be empty)")),
                },
            );
        }
        claim(used, c, i, loc, diags);
    }
    let [a_addresses, b_addresses] = link_addresses(file, s, &ends, diags);
    Some(ContainerLink {
        loc: s.name_loc.clone(),
        a: (ends[0].0.clone(), ends[0].1.clone()),
        b: (ends[1].0.clone(), ends[1].1.clone()),
        a_addresses,
        b_addresses,
        mtu: mtu(file, &s.spec.mtu, diags),
    })
}

/// The endpoints that parse as CONTAINER:IFNAME, each with its location.
fn link_ends(
    file: usize,
    spec: &LinkSpec,
    diags: &mut Vec<Diagnostic>,
) -> Vec<(String, String, Loc)> {
    spec.endpoints
        .get_ref()
        .iter()
        .filter_map(|e| {
            let loc = loc_of(file, e);
            match e.get_ref().split_once(':') {
                Some((c, i)) if !c.is_empty() && !i.is_empty() => {
                    Some((c.to_string(), i.to_string(), loc))
                }
                _ => {
                    diags.push(
                        Diagnostic::at(
                            &loc,
                            format!("endpoint `{}` is not CONTAINER:IFNAME", e.get_ref()),
                        )
                        .help("e.g. \"r1:eth1\""),
                    );
                    None
                }
            }
        })
        .collect()
}

/// A link's addresses, per end (in the order of `ends`, which has two).
fn link_addresses(
    file: usize,
    s: &Section<LinkSpec>,
    ends: &[(String, String, Loc)],
    diags: &mut Vec<Diagnostic>,
) -> [BTreeSet<IpNet>; 2] {
    let mut per_end: [BTreeSet<IpNet>; 2] = Default::default();
    for (key, list) in &s.spec.addresses {
        let pos = ends
            .iter()
            .position(|(c, i, _)| format!("{c}:{i}") == *key.get_ref());
        match pos {
            Some(p) => per_end[p] = addresses(file, list, diags),
            None => diags.push(
                Diagnostic::at(
                    &loc_of(file, key),
                    format!("`{}` is not an endpoint of this link", key.get_ref()),
                )
                .help(format!(
                    "endpoints: {}:{}, {}:{}",
                    ends[0].0, ends[0].1, ends[1].0, ends[1].1
                )),
            ),
        }
    }
    // Both ends on one subnet is what a point-to-point link wants.
    let same = per_end[0]
        .iter()
        .any(|a| per_end[1].iter().any(|b| a.trunc() == b.trunc()));
    if !per_end[0].is_empty() && !per_end[1].is_empty() && !same {
        diags.push(
            Diagnostic::warning(
                &s.name_loc,
                "the two ends of this link have addresses in different subnets",
            )
            .help("they cannot reach each other directly; use one subnet, e.g. a /30 or /31"),
        );
    }
    per_end
}

/// Container routes: a default route only through a netloom interface.
/// After CNI attachments, whose interfaces a route may name.
pub(super) fn container_routes(
    loaded: &Loaded,
    containers: &mut BTreeMap<String, Container>,
    links: &[ContainerLink],
    diags: &mut Vec<Diagnostic>,
) {
    for f in &loaded.files {
        for s in &f.containers {
            let Some(c) = containers.get(&s.name) else {
                continue;
            };
            let mut connected: Vec<IpNet> = c
                .interfaces
                .values()
                .flat_map(|i| i.addresses.iter().map(|a| a.trunc()))
                .collect();
            // Interfaces a route may name as `dev`: netloom's own and `lo`.
            let mut devs: Vec<String> = c.interfaces.keys().cloned().collect();
            devs.extend(c.cni.keys().cloned());
            devs.push("lo".into());
            for l in links {
                if l.a.0 == c.name {
                    connected.extend(l.a_addresses.iter().map(|a| a.trunc()));
                    devs.push(l.a.1.clone());
                }
                if l.b.0 == c.name {
                    connected.extend(l.b_addresses.iter().map(|a| a.trunc()));
                    devs.push(l.b.1.clone());
                }
            }
            let here = Here {
                container: &c.name,
                connected: &connected,
                devs: &devs,
            };
            let routes: Vec<ContainerRoute> = s
                .spec
                .routes
                .iter()
                .filter_map(|r| container_route(f.file, r, &here, diags))
                .collect();
            let mut seen: BTreeMap<IpNet, &Loc> = BTreeMap::new();
            for r in &routes {
                if let Some(first) = seen.insert(r.to, &r.loc) {
                    diags.push(
                        Diagnostic::at(
                            &r.loc,
                            format!("container `{}` has two routes to {}", c.name, r.to),
                        )
                        .related(first, "first declared here")
                        .help("keep one; for several gateways, list them all in one route's `via`"),
                    );
                }
            }
            if let Some(c) = containers.get_mut(&s.name) {
                c.routes = routes;
            }
        }
    }
}

/// What a container route is checked against.
struct Here<'a> {
    container: &'a str,
    /// The subnets of the container's netloom interfaces.
    connected: &'a [IpNet],
    /// The interface names a route may use as `dev`.
    devs: &'a [String],
}

/// One container route; `None` when it is reported.
fn container_route(
    file: usize,
    r: &ContainerRouteSpec,
    here: &Here,
    diags: &mut Vec<Diagnostic>,
) -> Option<ContainerRoute> {
    let container = here.container;
    let gw = super::routing::gateways_of(file, &r.via, &r.nexthops, &r.dev, diags)?;
    let addrs = gw.addrs();
    let to_loc = loc_of(file, &r.to);
    let to = if r.to.get_ref() == "default" {
        let Some((via, _)) = addrs.first() else {
            diags.push(
                Diagnostic::at(
                    &to_loc,
                    "a default route without `via` has no address family",
                )
                .help("give `via`, or write \"0.0.0.0/0\" or \"::/0\""),
            );
            return None;
        };
        IpNet::new(
            if via.is_ipv4() {
                IpAddr::from([0u8; 4])
            } else {
                IpAddr::from([0u16; 8])
            },
            0,
        )
        .unwrap()
    } else {
        match r.to.get_ref().parse::<IpNet>() {
            Ok(n) if n.trunc() == n => n,
            Ok(n) => {
                diags.push(
                    Diagnostic::at(&to_loc, format!("prefix {n} has host bits set"))
                        .help(format!("did you mean \"{}\"?", n.trunc())),
                );
                return None;
            }
            Err(_) => {
                diags.push(Diagnostic::at(
                    &to_loc,
                    format!("`{}` is not a prefix in CIDR form", r.to.get_ref()),
                ));
                return None;
            }
        }
    };
    let n = diags.len();
    super::routing::same_family(&to, &addrs, diags);
    let dev_ok = |name: &str, loc: &Loc, diags: &mut Vec<Diagnostic>| {
        if here.devs.iter().any(|d| d == name) {
            return true;
        }
        let d = Diagnostic::at(
            loc,
            format!("`{name}` is not one of container `{container}`'s netloom interfaces"),
        )
        .unresolved();
        diags.push(
            match did_you_mean(name, here.devs.iter().map(String::as_str)) {
                Some(s) => d.help(format!("did you mean `{s}`?")),
                None => d.help(format!("its interfaces: {}", here.devs.join(", "))),
            },
        );
        false
    };
    let dev = match (&r.dev, &gw.dev) {
        (_, Some((d, loc))) => Some((d.clone(), loc.clone())),
        (Some(d), None) if r.nexthops.is_empty() => Some((d.get_ref().clone(), loc_of(file, d))),
        _ => None,
    };
    if let Some((d, loc)) = &dev {
        dev_ok(d, loc, diags);
    }
    for (h, loc) in &gw.hops {
        if let Some(d) = &h.dev {
            dev_ok(d, loc, diags);
        }
    }
    super::routing::link_local_needs_dev(Some(&gw), dev.is_some(), diags);
    if addrs.is_empty() && dev.is_none() {
        diags.push(
            Diagnostic::at(&to_loc, "a container route needs `via`, `dev` or both")
                .help("e.g. via = \"10.0.0.2\""),
        );
    }
    // The kernel resolves a gateway only on a connected subnet; with `dev`,
    // an on-link (or link-local) gateway is the user's call.
    for (via, loc) in &addrs {
        let on_dev = dev.is_some()
            || gw
                .hops
                .iter()
                .any(|(h, _)| h.via == *via && h.dev.is_some());
        if on_dev || here.connected.iter().any(|n| n.contains(via)) {
            continue;
        }
        let msg = if to.prefix_len() == 0 {
            format!(
                "a default route in container `{container}` must use a gateway on one of its netloom interfaces; {via} is on none"
            )
        } else {
            format!("gateway {via} is on none of container `{container}`'s netloom interfaces")
        };
        diags.push(
            Diagnostic::at(loc, msg)
                .help("give one of its interfaces or links an address in the gateway's subnet"),
        );
    }
    let metric = match &r.metric {
        None => None,
        // As for host routes: IPv6 metric 0 is stored as 1024.
        Some(m) if *m.get_ref() == 0 && to.addr().is_ipv6() => Some(1024),
        Some(m) if (0..=u32::MAX as i64).contains(m.get_ref()) => Some(*m.get_ref() as u32),
        Some(m) => {
            diags.push(Diagnostic::at(
                &loc_of(file, m),
                format!("metric {} is out of range (0 to {})", m.get_ref(), u32::MAX),
            ));
            None
        }
    };
    if diags.len() > n {
        return None;
    }
    Some(ContainerRoute {
        loc: to_loc,
        to,
        nexthops: gw.nexthops(),
        via: gw.via.map(|v| v.0),
        dev: dev.map(|d| d.0),
        metric,
    })
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Addresses netloom puts next to a Docker network's subnet: in a container
/// attached to that network, or on a bridge in the host's netns where
/// Docker's bridge for it lives. Either way one namespace would hold two
/// routes to one subnet and traffic would leave by whichever the kernel
/// picks.
pub(super) fn docker_overlaps(
    netns: &Option<String>,
    bridges: &BTreeMap<String, Bridge>,
    networks: &BTreeMap<String, Network>,
    containers: &BTreeMap<String, Container>,
    links: &[ContainerLink],
    diags: &mut Vec<Diagnostic>,
) {
    let subnets_of = |net: &str| -> Vec<IpNet> {
        networks
            .get(net)
            .map(|n| n.subnets.clone())
            .unwrap_or_default()
    };
    for c in containers.values() {
        let mut ours: Vec<(String, &IpNet, &Loc)> = vec![];
        for i in c.interfaces.values() {
            ours.extend(
                i.addresses
                    .iter()
                    .map(|a| (format!("{}:{}", c.name, i.name), a, &i.loc)),
            );
        }
        for l in links {
            for ((cn, ifn), addrs) in [(&l.a, &l.a_addresses), (&l.b, &l.b_addresses)] {
                if *cn == c.name {
                    ours.extend(addrs.iter().map(|a| (format!("{cn}:{ifn}"), a, &l.loc)));
                }
            }
        }
        for net in c.networks.keys() {
            for sub in subnets_of(net) {
                for (end, a, loc) in ours.iter().filter(|(_, a, _)| overlaps(a, &sub)) {
                    diags.push(
                        Diagnostic::at(
                            loc,
                            format!(
                                "address {a} of {end} overlaps subnet {sub} of Docker network `{net}`, which `{}` is attached to",
                                c.name
                            ),
                        )
                        .help("the container would have two routes to one subnet: use addresses outside the network's subnets"),
                    );
                }
            }
        }
    }
    if netns.is_some() {
        return;
    }
    for b in bridges.values() {
        for n in networks
            .values()
            .filter(|n| !n.external && n.driver == "bridge")
        {
            for sub in &n.subnets {
                for a in b.addresses.iter().filter(|a| overlaps(a, sub)) {
                    diags.push(
                        Diagnostic::at(
                            &b.loc,
                            format!(
                                "address {a} of bridge `{}` overlaps subnet {sub} of Docker network `{}`",
                                b.name, n.name
                            ),
                        )
                        .help("both are in the host's netns, where Docker's bridge gets a route for the subnet: use another range, or put the topology's kernel objects in their own netns"),
                    );
                }
            }
        }
    }
}
