//! Validation of `[network.*]` and `[container.*]`: names, subnets, gateways
//! and static addresses, all before any Docker call.

use super::{Attachment, Container, Network};
use crate::diag::{Diagnostic, Loc, did_you_mean};
use crate::resource::NetworkRes;
use crate::spec::Loaded;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;
use toml::Spanned;

const MTU_OPTION: &str = "com.docker.network.driver.mtu";

/// Docker's rule for container and network names.
fn check_docker_name(what: &str, name: &str) -> Result<(), super::names::BadName> {
    let mut chars = name.chars();
    let ok = chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '.' | '-'));
    if ok {
        Ok(())
    } else {
        Err(super::names::BadName(format!(
            "{what} name `{name}` is not valid for Docker: use letters, digits, `_`, `.` and `-`, starting with a letter or digit"
        )))
    }
}

fn loc_of<T>(file: usize, s: &Spanned<T>) -> Loc {
    Loc::new(file, s.span())
}

pub(super) fn build(
    loaded: &Loaded,
    diags: &mut Vec<Diagnostic>,
) -> (BTreeMap<String, Network>, BTreeMap<String, Container>) {
    let mut networks: BTreeMap<String, Network> = BTreeMap::new();
    for f in &loaded.files {
        for s in &f.networks {
            if let Some(first) = networks.get(&s.name) {
                diags.push(
                    Diagnostic::at(
                        &s.name_loc,
                        format!("network `{}` is declared more than once", s.name),
                    )
                    .related(&first.loc, "first declared here"),
                );
                continue;
            }
            if let Some(n) = network(f.file, s, diags) {
                networks.insert(n.name.clone(), n);
            }
        }
    }
    overlapping_subnets(&networks, diags);

    let mut containers: BTreeMap<String, Container> = BTreeMap::new();
    for f in &loaded.files {
        for s in &f.containers {
            if let Err(m) = check_docker_name("container", &s.name) {
                diags.push(Diagnostic::at(&s.name_loc, m));
            }
            if let Some(first) = containers.get(&s.name) {
                diags.push(
                    Diagnostic::at(
                        &s.name_loc,
                        format!("container `{}` is declared more than once", s.name),
                    )
                    .related(&first.loc, "first declared here")
                    .help("list all of a container's networks in one [container.NAME] section"),
                );
                continue;
            }
            let mut c = Container {
                name: s.name.clone(),
                loc: s.name_loc.clone(),
                networks: BTreeMap::new(),
                interfaces: BTreeMap::new(),
                routes: vec![],
                loopback: Default::default(),
                sysctls: Default::default(),
                ready: None,
                cni: BTreeMap::new(),
            };
            for (net, spec) in &s.spec.networks {
                if let Some(a) = attachment(f.file, net, spec, &networks, diags) {
                    c.networks.insert(a.network.clone(), a);
                }
            }
            containers.insert(c.name.clone(), c);
        }
    }
    static_addresses_unique(&containers, diags);
    (networks, containers)
}

fn network(
    file: usize,
    s: &crate::spec::Section<crate::spec::NetworkSpec>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Network> {
    let spec = &s.spec;
    if let Err(m) = check_docker_name("network", &s.name) {
        diags.push(Diagnostic::at(&s.name_loc, m));
    }
    let external = spec.external.as_ref().is_some_and(|e| *e.get_ref());
    if external {
        return Some(external_network(s, diags));
    }

    if crate::resource::network_builtin(&s.name) {
        diags.push(
            Diagnostic::at(
                &s.name_loc,
                format!("`{}` is one of Docker's own networks: netloom cannot own it", s.name),
            )
            .help("declare it with external = true to attach containers to it, or give the network another name"),
        );
        return None;
    }
    let driver = spec
        .driver
        .as_ref()
        .map(|d| d.get_ref().clone())
        .unwrap_or_else(|| "bridge".into());
    let options = driver_options(file, s, &driver, diags);
    let labels = labels(file, spec, diags);
    let subnets = subnets(file, s, diags);
    let gateways = gateways(file, spec, &subnets, diags);
    let ip_range = ip_range(file, spec, &subnets, diags);
    Some(Network {
        loc: s.name_loc.clone(),
        res: NetworkRes {
            name: s.name.clone(),
            id: None,
            external: false,
            adopt: spec.adopt.unwrap_or(false),
            driver,
            subnets,
            gateways,
            ip_range,
            internal: spec.internal.unwrap_or(false),
            attachable: spec.attachable.unwrap_or(true),
            options,
            labels,
        },
    })
}

/// An external network: only its name is ours, any other key is an error.
fn external_network(
    s: &crate::spec::Section<crate::spec::NetworkSpec>,
    diags: &mut Vec<Diagnostic>,
) -> Network {
    let spec = &s.spec;
    let managed: Vec<&str> = [
        ("driver", spec.driver.is_some()),
        ("parent", spec.parent.is_some()),
        ("adopt", spec.adopt.is_some()),
        ("subnets", !spec.subnets.is_empty()),
        ("gateways", !spec.gateways.is_empty()),
        ("ip_range", spec.ip_range.is_some()),
        ("internal", spec.internal.is_some()),
        ("attachable", spec.attachable.is_some()),
        ("options", !spec.options.is_empty()),
        ("labels", !spec.labels.is_empty()),
        ("mtu", spec.mtu.is_some()),
    ]
    .into_iter()
    .filter(|(_, set)| *set)
    .map(|(k, _)| k)
    .collect();
    if !managed.is_empty() {
        diags.push(
            Diagnostic::at(&s.name_loc, format!(
                "external network `{}` cannot have {}: netloom never changes an external network",
                s.name,
                managed.join(", ")
            ))
            .help("remove those keys, or drop `external = true` to let netloom create and own the network"),
        );
    }
    Network {
        loc: s.name_loc.clone(),
        res: NetworkRes {
            name: s.name.clone(),
            id: None,
            external: true,
            adopt: false,
            driver: String::new(),
            subnets: vec![],
            gateways: vec![],
            ip_range: None,
            internal: false,
            attachable: true,
            options: BTreeMap::new(),
            labels: BTreeMap::new(),
        },
    }
}

/// The driver options as given, plus `parent` and the MTU, which Docker
/// takes as options.
fn driver_options(
    file: usize,
    s: &crate::spec::Section<crate::spec::NetworkSpec>,
    driver: &str,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, String> {
    let spec = &s.spec;
    let mut options = spec.options.clone();
    match (&spec.parent, driver) {
        (Some(p), "macvlan" | "ipvlan") => {
            options.insert("parent".into(), p.get_ref().clone());
        }
        (Some(p), _) => diags.push(
            Diagnostic::at(
                &loc_of(file, p),
                format!("`parent` is for macvlan and ipvlan networks, not {driver}"),
            )
            .help("remove `parent`, or set driver = \"macvlan\""),
        ),
        (None, "macvlan" | "ipvlan") if !options.contains_key("parent") => diags.push(
            Diagnostic::at(
                &s.name_loc,
                format!("a {driver} network needs `parent`, the host interface it sits on"),
            )
            .help("e.g. parent = \"eth0\""),
        ),
        _ => {}
    }
    if let Some(m) = &spec.mtu {
        let v = *m.get_ref();
        if (68..=65535).contains(&v) {
            options.insert(MTU_OPTION.into(), v.to_string());
        } else {
            diags.push(
                Diagnostic::at(&loc_of(file, m), format!("MTU {v} is out of range"))
                    .help("an MTU is between 68 and 65535 bytes"),
            );
        }
    }
    options
}

fn labels(
    file: usize,
    spec: &crate::spec::NetworkSpec,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, String> {
    let mut labels = BTreeMap::new();
    for (k, v) in &spec.labels {
        if k.get_ref().starts_with("netloom.") {
            diags.push(
                Diagnostic::at(
                    &loc_of(file, k),
                    format!(
                        "label `{}` uses the reserved prefix `netloom.`",
                        k.get_ref()
                    ),
                )
                .help("netloom sets its own `netloom.*` labels to mark what it owns"),
            );
        }
        labels.insert(k.get_ref().clone(), v.clone());
    }
    labels
}

fn subnets(
    file: usize,
    s: &crate::spec::Section<crate::spec::NetworkSpec>,
    diags: &mut Vec<Diagnostic>,
) -> Vec<IpNet> {
    let spec = &s.spec;
    let mut subnets: Vec<IpNet> = vec![];
    for sn in &spec.subnets {
        let loc = loc_of(file, sn);
        match sn.get_ref().parse::<IpNet>() {
            Ok(n) if n.trunc() != n => diags.push(
                Diagnostic::at(&loc, format!("subnet {n} has host bits set"))
                    .help(format!("did you mean \"{}\"?", n.trunc())),
            ),
            Ok(n) => {
                if let Some(o) = subnets
                    .iter()
                    .find(|o| o.contains(&n.network()) || n.contains(&o.network()))
                {
                    diags.push(Diagnostic::at(
                        &loc,
                        format!("subnet {n} overlaps {o} of the same network"),
                    ));
                }
                subnets.push(n);
            }
            Err(_) => diags.push(
                Diagnostic::at(
                    &loc,
                    format!("`{}` is not a subnet in CIDR form", sn.get_ref()),
                )
                .help("e.g. \"192.168.100.0/24\" or \"fd00:100::/64\""),
            ),
        }
    }
    if spec.subnets.is_empty() {
        diags.push(
            Diagnostic::at(&s.name_loc, format!("network `{}` has no subnets", s.name))
                .help("give it subnets = [\"…/24\"]: Docker's default pools run out after ~30 networks and may collide with your routes"),
        );
    }
    subnets
}

fn gateways(
    file: usize,
    spec: &crate::spec::NetworkSpec,
    subnets: &[IpNet],
    diags: &mut Vec<Diagnostic>,
) -> Vec<IpAddr> {
    let mut gateways: Vec<IpAddr> = vec![];
    for g in &spec.gateways {
        let loc = loc_of(file, g);
        let Ok(ip) = g.get_ref().parse::<IpAddr>() else {
            diags.push(Diagnostic::at(
                &loc,
                format!("`{}` is not an IP address", g.get_ref()),
            ));
            continue;
        };
        match subnets.iter().find(|n| n.contains(&ip)) {
            None => diags.push(
                Diagnostic::at(
                    &loc,
                    format!("gateway {ip} is in none of the network's subnets"),
                )
                .help(format!("subnets: {}", list(subnets))),
            ),
            Some(n) if !usable(n, ip) => diags.push(Diagnostic::at(
                &loc,
                format!("gateway {ip} is the network or broadcast address of {n}"),
            )),
            Some(n) if gateways.iter().any(|o| n.contains(o)) => diags.push(Diagnostic::at(
                &loc,
                format!("subnet {n} has more than one gateway"),
            )),
            Some(_) => gateways.push(ip),
        }
    }
    gateways
}

fn ip_range(
    file: usize,
    spec: &crate::spec::NetworkSpec,
    subnets: &[IpNet],
    diags: &mut Vec<Diagnostic>,
) -> Option<IpNet> {
    spec.ip_range.as_ref().and_then(|r| {
        let loc = loc_of(file, r);
        match r.get_ref().parse::<IpNet>() {
            Ok(n) if n.trunc() != n => {
                diags.push(
                    Diagnostic::at(&loc, format!("ip_range {n} has host bits set"))
                        .help(format!("did you mean \"{}\"?", n.trunc())),
                );
                None
            }
            Ok(n) if !subnets.iter().any(|s| s.contains(&n)) => {
                diags.push(Diagnostic::at(
                    &loc,
                    format!("ip_range {n} is not inside any of the network's subnets"),
                ));
                None
            }
            Ok(n) => Some(n),
            Err(_) => {
                diags.push(Diagnostic::at(
                    &loc,
                    format!("`{}` is not a range in CIDR form", r.get_ref()),
                ));
                None
            }
        }
    })
}

fn list(nets: &[IpNet]) -> String {
    nets.iter()
        .map(|n| n.to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Not the network address, nor (IPv4) the broadcast address.
fn usable(net: &IpNet, ip: IpAddr) -> bool {
    match net {
        IpNet::V4(n) if n.prefix_len() < 31 => {
            ip != IpAddr::V4(n.network()) && ip != IpAddr::V4(n.broadcast())
        }
        IpNet::V6(n) => ip != IpAddr::V6(n.network()),
        _ => true,
    }
}

fn overlapping_subnets(networks: &BTreeMap<String, Network>, diags: &mut Vec<Diagnostic>) {
    let all: Vec<(&Network, &IpNet)> = networks
        .values()
        .flat_map(|n| n.subnets.iter().map(move |s| (n, s)))
        .collect();
    for (i, (a, sa)) in all.iter().enumerate() {
        for (b, sb) in &all[i + 1..] {
            if a.name != b.name && (sa.contains(&sb.network()) || sb.contains(&sa.network())) {
                diags.push(
                    Diagnostic::at(
                        &b.loc,
                        format!(
                            "subnet {sb} of network `{}` overlaps {sa} of network `{}`",
                            b.name, a.name
                        ),
                    )
                    .related(&a.loc, format!("network `{}` declared here", a.name))
                    .help("Docker refuses overlapping subnets: give each network its own range"),
                );
            }
        }
    }
}

fn attachment(
    file: usize,
    net: &Spanned<String>,
    spec: &crate::spec::AttachSpec,
    networks: &BTreeMap<String, Network>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Attachment> {
    let name = net.get_ref();
    let loc = loc_of(file, net);
    let Some(network) = networks.get(name) else {
        let d = Diagnostic::at(&loc, format!("no network named `{name}` is declared")).unresolved();
        let d = match did_you_mean(name, networks.keys().map(String::as_str)) {
            Some(s) => d.help(format!("did you mean `{s}`?")),
            None => d.help(format!(
                "declare it with [network.{name}] (add external = true if it exists already)"
            )),
        };
        diags.push(d);
        return None;
    };
    let mut check = |text: &Spanned<String>, want_v4: bool| -> Option<IpAddr> {
        let loc = loc_of(file, text);
        let ip = match text.get_ref().parse::<IpAddr>() {
            Ok(ip) if ip.is_ipv4() == want_v4 => ip,
            Ok(ip) => {
                let (key, fam) = if want_v4 {
                    ("ipv4", "IPv4")
                } else {
                    ("ipv6", "IPv6")
                };
                diags.push(
                    Diagnostic::at(&loc, format!("{ip} is not an {fam} address"))
                        .help(format!("`{key}` takes an {fam} address")),
                );
                return None;
            }
            Err(_) => {
                let d = Diagnostic::at(&loc, format!("`{}` is not an IP address", text.get_ref()));
                diags.push(if text.get_ref().contains('/') {
                    d.help("give the address alone: the prefix comes from the network's subnet")
                } else {
                    d
                });
                return None;
            }
        };
        if network.external {
            return Some(ip); // its subnets are not ours to know; Docker checks
        }
        match network.subnets.iter().find(|n| n.contains(&ip)) {
            None => diags.push(
                Diagnostic::at(
                    &loc,
                    format!("{ip} is outside the subnets of network `{}`", network.name),
                )
                .related(&network.loc, "network declared here")
                .help(format!("subnets: {}", list(&network.subnets))),
            ),
            Some(n) if !usable(n, ip) => diags.push(Diagnostic::at(
                &loc,
                format!("{ip} is the network or broadcast address of {n}"),
            )),
            Some(n) if network.gateway_in(n) == Some(ip) => diags.push(
                Diagnostic::at(&loc, format!("{ip} is the gateway of {n}"))
                    .help("the gateway address belongs to the network itself: pick another"),
            ),
            Some(_) => return Some(ip),
        }
        None
    };
    let ipv4 = spec
        .ipv4
        .as_ref()
        .and_then(|t| check(t, true))
        .map(|ip| match ip {
            IpAddr::V4(a) => a,
            IpAddr::V6(_) => unreachable!(),
        });
    let ipv6 = spec
        .ipv6
        .as_ref()
        .and_then(|t| check(t, false))
        .map(|ip| match ip {
            IpAddr::V6(a) => a,
            IpAddr::V4(_) => unreachable!(),
        });
    let mut aliases = BTreeSet::new();
    for a in &spec.aliases {
        if let Err(m) = check_docker_name("alias", a.get_ref()) {
            diags.push(Diagnostic::at(&loc_of(file, a), m));
        } else if !aliases.insert(a.get_ref().clone()) {
            diags.push(Diagnostic::at(
                &loc_of(file, a),
                format!("alias `{}` is listed twice", a.get_ref()),
            ));
        }
    }
    Some(Attachment {
        network: name.clone(),
        loc, // the network key under [container.NAME]
        ipv4,
        ipv6,
        aliases,
    })
}

fn static_addresses_unique(containers: &BTreeMap<String, Container>, diags: &mut Vec<Diagnostic>) {
    let mut seen: BTreeMap<(String, IpAddr), (&str, &Loc)> = BTreeMap::new();
    for c in containers.values() {
        for a in c.networks.values() {
            let ips = a
                .ipv4
                .map(IpAddr::V4)
                .into_iter()
                .chain(a.ipv6.map(IpAddr::V6));
            for ip in ips {
                if let Some((other, loc)) = seen.insert((a.network.clone(), ip), (&c.name, &a.loc))
                {
                    diags.push(
                        Diagnostic::at(
                            &a.loc,
                            format!(
                                "{ip} on network `{}` is given to both `{other}` and `{}`",
                                a.network, c.name
                            ),
                        )
                        .related(loc, format!("`{other}` takes it here")),
                    );
                }
            }
        }
    }
}
