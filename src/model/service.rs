//! Validation of `[service.NAME]`: virtual IPs over container endpoints.

use super::{Bridge, Container, ContainerLink, Network};
use crate::diag::{Diagnostic, Loc, did_you_mean};
use crate::spec::{Loaded, PortSpec, Section, ServiceSpec};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use toml::Spanned;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Proto {
    Tcp,
    Udp,
}

impl Proto {
    pub fn as_str(self) -> &'static str {
        match self {
            Proto::Tcp => "tcp",
            Proto::Udp => "udp",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Port {
    pub port: u16,
    pub target: u16,
    pub protocol: Proto,
}

/// Where a service's endpoints are reached, and so where its rules live.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ServiceNet {
    /// A Docker network: rules in the host's netns.
    Docker(String),
    /// A topology bridge: rules in the topology's netns.
    Bridge(String),
}

impl ServiceNet {
    pub fn name(&self) -> &str {
        match self {
            ServiceNet::Docker(n) | ServiceNet::Bridge(n) => n,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Service {
    pub name: String,
    pub loc: Loc,
    pub vips: Vec<IpAddr>,
    pub ports: Vec<Port>,
    pub network: ServiceNet,
    pub selector: BTreeMap<String, String>,
    pub endpoints: BTreeSet<String>,
    /// Client-IP affinity, in seconds.
    pub affinity: Option<u32>,
}

fn loc_of<T>(file: usize, s: &Spanned<T>) -> Loc {
    Loc::new(file, s.span())
}

/// What the services are checked against.
pub(super) struct Others<'a> {
    pub bridges: &'a BTreeMap<String, Bridge>,
    pub networks: &'a BTreeMap<String, Network>,
    pub containers: &'a BTreeMap<String, Container>,
    pub links: &'a [ContainerLink],
}

pub(super) fn build(
    loaded: &Loaded,
    o: &Others,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, Service> {
    let taken = addresses_in_use(o);
    let mut out: BTreeMap<String, Service> = BTreeMap::new();
    // (VIP, port, protocol) → where first served.
    let mut served: BTreeMap<(IpAddr, u16, Proto), (String, Loc)> = BTreeMap::new();
    for f in &loaded.files {
        for s in &f.services {
            if let Some(first) = out.get(&s.name) {
                diags.push(
                    Diagnostic::at(
                        &s.name_loc,
                        format!("[service.{}] is declared more than once", s.name),
                    )
                    .related(&first.loc, "first declared here")
                    .help("declare each service in one section"),
                );
                continue;
            }
            let Some(svc) = service(f.file, s, o, &taken, diags) else {
                continue;
            };
            for vip in &svc.vips {
                for p in &svc.ports {
                    let key = (*vip, p.port, p.protocol);
                    if let Some((other, loc)) = served.get(&key) {
                        diags.push(
                            Diagnostic::at(
                                &svc.loc,
                                format!(
                                    "{vip} port {}/{} is served twice: by `{other}` and `{}`",
                                    p.port,
                                    p.protocol.as_str(),
                                    svc.name
                                ),
                            )
                            .related(loc, "first served here")
                            .help("give one of the services another VIP or port"),
                        );
                    } else {
                        served.insert(key, (svc.name.clone(), svc.loc.clone()));
                    }
                }
            }
            out.insert(svc.name.clone(), svc);
        }
    }
    out
}

/// Every address the topology gives a bridge, interface or container.
fn addresses_in_use(o: &Others) -> BTreeMap<IpAddr, String> {
    let mut m = BTreeMap::new();
    for b in o.bridges.values() {
        for a in &b.addresses {
            m.insert(a.addr(), format!("bridge {}", b.name));
        }
    }
    for c in o.containers.values() {
        for i in c.interfaces.values() {
            for a in &i.addresses {
                m.insert(a.addr(), format!("{}:{}", c.name, i.name));
            }
        }
        for a in c.networks.values() {
            if let Some(ip) = a.ipv4 {
                m.insert(
                    IpAddr::V4(ip),
                    format!("container {} on {}", c.name, a.network),
                );
            }
            if let Some(ip) = a.ipv6 {
                m.insert(
                    IpAddr::V6(ip),
                    format!("container {} on {}", c.name, a.network),
                );
            }
        }
    }
    for l in o.links {
        for (end, addrs) in [(&l.a, &l.a_addresses), (&l.b, &l.b_addresses)] {
            for a in addrs {
                m.insert(a.addr(), format!("{}:{}", end.0, end.1));
            }
        }
    }
    m
}

fn service(
    file: usize,
    s: &Section<ServiceSpec>,
    o: &Others,
    taken: &BTreeMap<IpAddr, String>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Service> {
    let before = diags.len();
    let mut vips = vec![];
    for a in s.spec.addresses.get_ref() {
        let loc = loc_of(file, a);
        match a.get_ref().parse::<IpAddr>() {
            Err(_) => diags.push(
                Diagnostic::at(&loc, format!("`{}` is not an IP address", a.get_ref()))
                    .help("a VIP is one address, without a prefix: \"10.96.0.10\" or \"fd00:96::10\""),
            ),
            Ok(ip) if taken.contains_key(&ip) => diags.push(
                Diagnostic::at(&loc, format!("VIP {ip} is an address the topology gives {}", taken[&ip]))
                    .help("a VIP must be an address no interface holds; pick one outside the topology's addresses"),
            ),
            Ok(ip) => vips.push(ip),
        }
    }
    if s.spec.addresses.get_ref().is_empty() {
        diags.push(
            Diagnostic::at(
                &loc_of(file, &s.spec.addresses),
                "a service needs at least one VIP",
            )
            .help("e.g. addresses = [\"10.96.0.10\"]"),
        );
    }
    let mut ports = vec![];
    for p in s.spec.ports.get_ref() {
        if let Some(p) = port(file, p, diags) {
            ports.push(p);
        }
    }
    if s.spec.ports.get_ref().is_empty() {
        diags.push(
            Diagnostic::at(
                &loc_of(file, &s.spec.ports),
                "a service needs at least one port",
            )
            .help("e.g. ports = [{ port = 80, target = 8080, protocol = \"tcp\" }]"),
        );
    }
    let net = s.spec.network.get_ref();
    let network = if o.networks.contains_key(net) {
        Some(ServiceNet::Docker(net.clone()))
    } else if o.bridges.contains_key(net) {
        Some(ServiceNet::Bridge(net.clone()))
    } else {
        let names = o
            .networks
            .keys()
            .chain(o.bridges.keys())
            .map(String::as_str);
        let hint = did_you_mean(net, names)
            .map(|x| format!("did you mean `{x}`? "))
            .unwrap_or_default();
        diags.push(
            Diagnostic::at(
                &loc_of(file, &s.spec.network),
                format!("unknown network `{net}`"),
            )
            .unresolved()
            .help(format!(
                "{hint}a service's network is a [network.X] or a [bridge.X] of this topology"
            )),
        );
        None
    };
    if s.spec.selector.is_empty() && s.spec.endpoints.is_empty() {
        diags.push(
            Diagnostic::at(&s.name_loc, format!("service `{}` selects no endpoints", s.name))
                .help("give `selector = { app = \"web\" }` (Docker labels) and/or `endpoints = [\"web1\"]`"),
        );
    }
    let affinity = s.spec.affinity.as_ref().and_then(|a| {
        let d = parse_duration(a.client_ip.get_ref());
        if d.is_none() {
            diags.push(
                Diagnostic::at(
                    &loc_of(file, &a.client_ip),
                    format!("`{}` is not a duration", a.client_ip.get_ref()),
                )
                .help("write a number with s, m or h: \"30s\", \"10m\", \"3h\""),
            );
        }
        d
    });
    (diags.len() == before).then(|| Service {
        name: s.name.clone(),
        loc: s.name_loc.clone(),
        vips,
        ports,
        network: network.expect("checked above"),
        selector: s.spec.selector.clone(),
        endpoints: s
            .spec
            .endpoints
            .iter()
            .map(|e| e.get_ref().clone())
            .collect(),
        affinity,
    })
}

fn port(file: usize, p: &PortSpec, diags: &mut Vec<Diagnostic>) -> Option<Port> {
    let num = |v: &Spanned<i64>, diags: &mut Vec<Diagnostic>| {
        let n = *v.get_ref();
        if (1..=65535).contains(&n) {
            Some(n as u16)
        } else {
            diags.push(
                Diagnostic::at(&loc_of(file, v), format!("port {n} is out of range"))
                    .help("a port is between 1 and 65535"),
            );
            None
        }
    };
    let port = num(&p.port, diags);
    let target = match &p.target {
        Some(t) => num(t, diags),
        None => port,
    };
    let protocol = match p.protocol.as_ref().map(|x| (x.get_ref().as_str(), x)) {
        None | Some(("tcp", _)) => Some(Proto::Tcp),
        Some(("udp", _)) => Some(Proto::Udp),
        Some((other, x)) => {
            diags.push(
                Diagnostic::at(&loc_of(file, x), format!("unknown protocol `{other}`"))
                    .help("a service port's protocol is \"tcp\" or \"udp\""),
            );
            None
        }
    };
    Some(Port {
        port: port?,
        target: target?,
        protocol: protocol?,
    })
}

/// "30s", "10m", "3h" → seconds (at least 1).
pub fn parse_duration(s: &str) -> Option<u32> {
    let (num, unit) = s.split_at(s.find(|c: char| !c.is_ascii_digit())?);
    let n: u32 = num.parse().ok()?;
    let mul = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        _ => return None,
    };
    n.checked_mul(mul).filter(|&v| v > 0)
}

/// Services on a bridge are routed through the topology's netns, so they
/// need its forwarding on: as sysctls of that netns, listed in the plan,
/// owned (the old value comes back on destroy) like the file's own. A
/// file that sets the key otherwise is refused.
pub(super) fn forwarding(
    netns: &Option<String>,
    services: &BTreeMap<String, Service>,
    sysctls: &mut BTreeMap<String, String>,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(ns) = netns else { return };
    for s in services
        .values()
        .filter(|s| matches!(s.network, ServiceNet::Bridge(_)))
    {
        let mut keys = vec![];
        if s.vips.iter().any(IpAddr::is_ipv4) {
            keys.push("net.ipv4.ip_forward");
            // The same kernel switch under another name: set to 0 it would
            // fight the key above.
            if let Some((k, v)) = sysctls.iter().find(|(k, v)| {
                k.replace('/', ".") == "net.ipv4.conf.all.forwarding" && v.trim() != "1"
            }) {
                diags.push(
                    Diagnostic::at(
                        &s.loc,
                        format!(
                            "service `{}` is routed through netns {ns}, which needs IPv4 forwarding, but [topology] sysctls sets `{k}` to \"{v}\"",
                            s.name
                        ),
                    )
                    .help("drop that key from [topology] sysctls (netloom then sets net.ipv4.ip_forward to 1)"),
                );
            }
        }
        if s.vips.iter().any(IpAddr::is_ipv6) {
            keys.push("net.ipv6.conf.all.forwarding");
        }
        for key in keys {
            let given = sysctls
                .iter()
                .find(|(k, _)| k.replace('/', ".") == key)
                .map(|(k, v)| (k.clone(), v.clone()));
            match given {
                None => {
                    sysctls.insert(key.to_string(), "1".to_string());
                }
                Some((_, v)) if v.trim() == "1" => {}
                Some((k, v)) => diags.push(
                    Diagnostic::at(
                        &s.loc,
                        format!(
                            "service `{}` is routed through netns {ns}, which needs {key} = 1, but [topology] sysctls sets `{k}` to \"{v}\"",
                            s.name
                        ),
                    )
                    .help("drop that key from [topology] sysctls (netloom then sets it to 1), or set it to \"1\""),
                ),
            }
        }
    }
}
