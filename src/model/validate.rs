//! Spec → model: every semantic check, all diagnostics collected before any I/O.

use super::*;
use crate::diag::{Diagnostic, Loc, did_you_mean};
use crate::spec::{Loaded, Section};
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;
use toml::Spanned;

/// Builds the model, or returns every error found. Warnings ride along in
/// the second element on success.
pub fn build(loaded: &Loaded) -> Result<(Topology, Vec<Diagnostic>), Vec<Diagnostic>> {
    let mut v = Validator {
        diags: loaded.diagnostics.clone(),
    };
    // A file that could not be read or parsed is missing from the whole:
    // checks across files would report what it declares as undefined.
    if loaded.incomplete {
        return Err(v.diags);
    }
    let topo = v.topology(loaded);
    if v.diags.iter().any(Diagnostic::is_error) {
        return Err(v.diags);
    }
    Ok((topo.expect("no errors means a topology"), v.diags))
}

struct Validator {
    diags: Vec<Diagnostic>,
}

fn loc_of<T>(file: usize, s: &Spanned<T>) -> Loc {
    Loc::new(file, s.span())
}

/// A link name declared by the topology, and what declared it.
#[derive(Clone)]
enum LinkDecl {
    Bridge,
    Veth,
    Peer(String),
}

impl Validator {
    fn err(&mut self, d: Diagnostic) {
        self.diags.push(d);
    }

    fn topology(&mut self, loaded: &Loaded) -> Option<Topology> {
        // [topology]: exactly one.
        let mut decls = loaded
            .files
            .iter()
            .filter_map(|f| f.topology.as_ref().map(|t| (f.file, t)));
        let first = decls.next();
        for (_, again) in decls {
            let d = Diagnostic::at(&again.name_loc, "[topology] is declared more than once")
                .help("declare [topology] in one file of the topology only");
            let d = match first {
                Some((_, f)) => d.related(&f.name_loc, "first declared here"),
                None => d,
            };
            self.err(d);
        }
        let (name, name_loc, netns) = match first {
            Some((file, t)) => {
                let loc = loc_of(file, &t.spec.name);
                if let Err(m) = check_scope_name("topology name", t.spec.name.get_ref()) {
                    self.err(Diagnostic::at(&loc, m));
                }
                let netns = t.spec.netns.as_ref().map(|n| {
                    if let Err(m) = check_scope_name("netns name", n.get_ref()) {
                        self.err(Diagnostic::at(&loc_of(file, n), m));
                    }
                    n.get_ref().clone()
                });
                (t.spec.name.get_ref().clone(), loc, netns)
            }
            None => {
                if loaded.diagnostics.is_empty() {
                    self.err(
                        Diagnostic::error(None, "no [topology] section found")
                            .help("add to one file:\n    [topology]\n    name = \"lab1\""),
                    );
                }
                (String::new(), Loc::default(), None)
            }
        };

        // Every link name, once.
        let mut links: BTreeMap<String, (LinkDecl, Loc)> = BTreeMap::new();
        for f in &loaded.files {
            for b in &f.bridges {
                self.declare_link(&mut links, &b.name, &b.name_loc, LinkDecl::Bridge);
            }
            for v in &f.veths {
                self.declare_link(&mut links, &v.name, &v.name_loc, LinkDecl::Veth);
                let peer_loc = loc_of(f.file, &v.spec.peer);
                let peer = v.spec.peer.get_ref();
                if peer == &v.name {
                    self.err(
                        Diagnostic::at(&peer_loc, format!("veth `{peer}` cannot be its own peer"))
                            .help("give the other end of the pair a different name"),
                    );
                } else {
                    self.declare_link(&mut links, peer, &peer_loc, LinkDecl::Peer(v.name.clone()));
                }
            }
        }

        let mut bridges = BTreeMap::new();
        let mut veths = BTreeMap::new();
        let mut routes = Vec::new();
        let mut rules = Vec::new();
        for f in &loaded.files {
            for b in &f.bridges {
                if let Some(br) = self.bridge(f.file, b, &links) {
                    bridges.entry(br.name.clone()).or_insert(br);
                }
            }
            for s in &f.veths {
                if let Some(v) = self.veth(f.file, s, &links) {
                    veths.entry(v.name.clone()).or_insert(v);
                }
            }
            for r in &f.routes {
                if let Some(r) = self.route(f.file, r, &links) {
                    routes.push(r);
                }
            }
            for r in &f.rules {
                if let Some(r) = self.rule(f.file, r, &links) {
                    rules.push(r);
                }
            }
        }
        let (networks, mut containers) = super::docker::build(loaded, &mut self.diags);
        let links = super::wiring::build(loaded, &mut containers, &bridges, &mut self.diags);
        super::wiring::docker_overlaps(
            &netns,
            &bridges,
            &networks,
            &containers,
            &links,
            &mut self.diags,
        );
        self.unique_addresses(&bridges, &veths);
        self.unique_routes(&routes);
        self.gateways(&netns, &routes, &bridges, &veths);
        self.unique_rules(&rules);
        Some(Topology {
            name,
            name_loc,
            netns,
            bridges,
            veths,
            routes,
            rules,
            networks,
            containers,
            links,
        })
    }

    fn declare_link(
        &mut self,
        links: &mut BTreeMap<String, (LinkDecl, Loc)>,
        name: &str,
        loc: &Loc,
        decl: LinkDecl,
    ) {
        if let Err(m) = check_ifname(name) {
            self.err(Diagnostic::at(loc, m).help("Linux interface names are 1–15 bytes"));
        }
        if let Some((_, first)) = links.get(name) {
            let d = Diagnostic::at(
                loc,
                format!("interface name `{name}` is declared more than once"),
            )
            .related(first, "first declared here")
            .help("every bridge, veth and veth peer in a topology needs its own name");
            self.err(d);
            return;
        }
        links.insert(name.to_string(), (decl, loc.clone()));
    }

    fn mtu(&mut self, file: usize, mtu: &Option<Spanned<i64>>) -> u32 {
        match mtu {
            None => DEFAULT_MTU,
            Some(m) => {
                let v = *m.get_ref();
                if !(68..=65535).contains(&v) {
                    self.err(
                        Diagnostic::at(&loc_of(file, m), format!("MTU {v} is out of range"))
                            .help("an MTU is between 68 and 65535 bytes (1280 or more with IPv6)"),
                    );
                    DEFAULT_MTU
                } else {
                    v as u32
                }
            }
        }
    }

    fn addresses(&mut self, file: usize, list: &[Spanned<String>]) -> BTreeSet<IpNet> {
        let mut out = BTreeSet::new();
        for a in list {
            let loc = loc_of(file, a);
            let Some(net) = self.cidr_host(&loc, a.get_ref()) else {
                continue;
            };
            if !out.insert(net) {
                self.err(Diagnostic::at(
                    &loc,
                    format!("address {net} is listed twice"),
                ));
            }
        }
        out
    }

    /// An interface address: `ADDR/PREFIX`, host bits allowed, unicast only.
    fn cidr_host(&mut self, loc: &Loc, text: &str) -> Option<IpNet> {
        match text.parse::<IpNet>() {
            Ok(net) => {
                let a = net.addr();
                let bad = a.is_unspecified()
                    || a.is_multicast()
                    || matches!(a, IpAddr::V4(v4) if v4.is_broadcast());
                if bad {
                    self.err(Diagnostic::at(loc, format!("{a} is not a unicast address")));
                    return None;
                }
                Some(net)
            }
            Err(_) if text.parse::<IpAddr>().is_ok() => {
                self.err(
                    Diagnostic::at(loc, format!("address `{text}` has no prefix length"))
                        .help(format!("write it in CIDR form, e.g. \"{text}/24\"")),
                );
                None
            }
            Err(_) => {
                self.err(
                    Diagnostic::at(loc, format!("`{text}` is not an address in CIDR form"))
                        .help("e.g. \"10.0.0.1/24\" or \"fd00::1/64\""),
                );
                None
            }
        }
    }

    /// A prefix to match or route: host bits must be zero; a bare address is a host prefix.
    fn prefix(&mut self, loc: &Loc, text: &str) -> Option<IpNet> {
        let net = match text.parse::<IpNet>() {
            Ok(n) => n,
            Err(_) => match text.parse::<IpAddr>() {
                Ok(a) => IpNet::from(a),
                Err(_) => {
                    self.err(
                        Diagnostic::at(loc, format!("`{text}` is not a prefix in CIDR form"))
                            .help("e.g. \"10.20.0.0/16\", \"fd00:20::/48\" or \"default\""),
                    );
                    return None;
                }
            },
        };
        if net.trunc() != net {
            self.err(
                Diagnostic::at(loc, format!("prefix {net} has host bits set"))
                    .help(format!("did you mean \"{}\"?", net.trunc())),
            );
            return None;
        }
        Some(net)
    }

    fn bridge_ref(
        &mut self,
        file: usize,
        owner: &str,
        r: &Option<Spanned<String>>,
        links: &BTreeMap<String, (LinkDecl, Loc)>,
    ) -> Option<String> {
        let r = r.as_ref()?;
        let name = r.get_ref();
        let loc = loc_of(file, r);
        if name == owner {
            self.err(
                Diagnostic::at(&loc, format!("veth `{owner}` cannot be its own master"))
                    .help("a master is a bridge declared with [bridge.NAME]"),
            );
            return None;
        }
        match links.get(name) {
            Some((LinkDecl::Bridge, _)) => Some(name.clone()),
            Some((decl, decl_loc)) => {
                let what = match decl {
                    LinkDecl::Peer(v) => format!("the peer end of veth `{v}`"),
                    _ => "a veth".to_string(),
                };
                self.err(
                    Diagnostic::at(&loc, format!("`{name}` is {what}, not a bridge"))
                        .related(decl_loc, "declared here")
                        .help("a master is a bridge declared with [bridge.NAME]"),
                );
                None
            }
            None => {
                let bridges = links
                    .iter()
                    .filter(|(_, (d, _))| matches!(d, LinkDecl::Bridge))
                    .map(|(n, _)| n.as_str());
                let d = Diagnostic::at(&loc, format!("no bridge named `{name}` is declared"));
                let d = match did_you_mean(name, bridges) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d.help(format!("declare it with [bridge.{name}]")),
                };
                self.err(d);
                None
            }
        }
    }

    fn check_mtu_family(&mut self, loc: &Loc, mtu: u32, addrs: &BTreeSet<IpNet>) {
        if mtu < 1280 && addrs.iter().any(|a| matches!(a, IpNet::V6(_))) {
            self.err(
                Diagnostic::at(
                    loc,
                    format!("MTU {mtu} is below 1280, the minimum for IPv6"),
                )
                .help("raise the MTU or drop the IPv6 addresses"),
            );
        }
    }

    fn bridge(
        &mut self,
        file: usize,
        s: &Section<crate::spec::BridgeSpec>,
        links: &BTreeMap<String, (LinkDecl, Loc)>,
    ) -> Option<Bridge> {
        let mtu = s.spec.mtu.as_ref().map(|_| self.mtu(file, &s.spec.mtu));
        let addresses = self.addresses(file, &s.spec.addresses);
        self.check_mtu_family(
            &s.spec
                .mtu
                .as_ref()
                .map_or(s.name_loc.clone(), |m| loc_of(file, m)),
            mtu.unwrap_or(DEFAULT_MTU),
            &addresses,
        );
        Some(Bridge {
            depends_on: self.depends_on(file, &s.spec.depends_on, links),
            name: s.name.clone(),
            loc: s.name_loc.clone(),
            mtu,
            up: s.spec.up.unwrap_or(true),
            addresses,
        })
    }

    fn veth(
        &mut self,
        file: usize,
        s: &Section<crate::spec::VethSpec>,
        links: &BTreeMap<String, (LinkDecl, Loc)>,
    ) -> Option<Veth> {
        let mtu = self.mtu(file, &s.spec.mtu);
        let addresses = self.addresses(file, &s.spec.addresses);
        let peer_addresses = self.addresses(file, &s.spec.peer_addresses);
        let both: BTreeSet<IpNet> = addresses.union(&peer_addresses).copied().collect();
        let mtu_loc = s
            .spec
            .mtu
            .as_ref()
            .map_or(s.name_loc.clone(), |m| loc_of(file, m));
        self.check_mtu_family(&mtu_loc, mtu, &both);
        let master = self.bridge_ref(file, &s.name, &s.spec.master, links);
        let peer_master = self.bridge_ref(file, s.spec.peer.get_ref(), &s.spec.peer_master, links);
        Some(Veth {
            depends_on: self.depends_on(file, &s.spec.depends_on, links),
            name: s.name.clone(),
            loc: s.name_loc.clone(),
            peer: s.spec.peer.get_ref().clone(),
            master,
            peer_master,
            mtu,
            up: s.spec.up.unwrap_or(true),
            addresses,
            peer_addresses,
        })
    }

    fn ip(&mut self, loc: &Loc, text: &str) -> Option<IpAddr> {
        match text.parse::<IpAddr>() {
            Ok(a) if a.is_unspecified() || a.is_multicast() => {
                self.err(Diagnostic::at(
                    loc,
                    format!("gateway {a} is not a unicast address"),
                ));
                None
            }
            Ok(a) => Some(a),
            Err(_) => {
                let d = Diagnostic::at(loc, format!("`{text}` is not an IP address"));
                let d = if text.contains('/') {
                    d.help("a gateway is a single address, without a prefix length")
                } else {
                    d
                };
                self.err(d);
                None
            }
        }
    }

    fn table(&mut self, file: usize, t: &Spanned<i64>) -> Option<u32> {
        let v = *t.get_ref();
        let loc = loc_of(file, t);
        let why = match v {
            0 => Some("table 0 is not a table (it means \"unspecified\")".to_string()),
            253 => Some("table 253 is the kernel's `default` table".to_string()),
            255 => Some(
                "table 255 is the kernel's `local` table, which netloom does not manage"
                    .to_string(),
            ),
            v if v < 0 || v > u32::MAX as i64 => Some(format!("table {v} is out of range")),
            _ => None,
        };
        match why {
            Some(m) => {
                self.err(
                    Diagnostic::at(&loc, m)
                        .help("use 254 (main) or a table id from 1 to 252 or above 255"),
                );
                None
            }
            None => Some(v as u32),
        }
    }

    fn route(
        &mut self,
        file: usize,
        s: &Section<crate::spec::RouteSpec>,
        links: &BTreeMap<String, (LinkDecl, Loc)>,
    ) -> Option<Route> {
        let r = &s.spec;
        let to_loc = loc_of(file, &r.to);
        let via = r.via.as_ref().and_then(|v| {
            let a = self.ip(&loc_of(file, v), v.get_ref())?;
            Some((a, loc_of(file, v)))
        });
        let to = if r.to.get_ref() == "default" {
            match &via {
                Some((a, _)) if a.is_ipv6() => Some("::/0".parse().unwrap()),
                Some(_) => Some("0.0.0.0/0".parse().unwrap()),
                None => {
                    self.err(
                        Diagnostic::at(
                            &to_loc,
                            "a default route without `via` has no address family",
                        )
                        .help("give `via`, or write \"0.0.0.0/0\" or \"::/0\""),
                    );
                    None
                }
            }
        } else {
            self.prefix(&to_loc, r.to.get_ref())
        };
        if let (Some(to), Some((via, via_loc))) = (&to, &via)
            && Family::of_net(to) != Family::of(via)
        {
            self.err(
                Diagnostic::at(
                    via_loc,
                    format!("gateway {via} is not of the same address family as {to}"),
                )
                .help("an IPv4 route needs an IPv4 gateway, an IPv6 route an IPv6 one"),
            );
        }
        let dev = r.dev.as_ref().and_then(|d| {
            let name = d.get_ref();
            if links.contains_key(name) {
                return Some(name.clone());
            }
            let msg = Diagnostic::at(
                &loc_of(file, d),
                format!("route device `{name}` is not a bridge or veth end of this topology"),
            );
            let msg = match did_you_mean(name, links.keys().map(String::as_str)) {
                Some(s) => msg.help(format!("did you mean `{s}`?")),
                None => msg
                    .help("declare the interface in the topology, or route via a gateway instead"),
            };
            self.err(msg);
            None
        });
        if let Some((std::net::IpAddr::V6(v6), via_loc)) = &via
            && v6.is_unicast_link_local()
            && r.dev.is_none()
        {
            self.err(
                Diagnostic::at(
                    via_loc,
                    format!("link-local gateway {v6} needs `dev`"),
                )
                .help("a link-local address means something only on one link: name it, e.g. dev = \"br-core\""),
            );
        }
        if r.via.is_none() && r.dev.is_none() {
            self.err(
                Diagnostic::at(&s.name_loc, "a route needs `via`, `dev` or both")
                    .help("e.g. via = \"10.0.0.2\""),
            );
        }
        let table = match &r.table {
            Some(t) => self.table(file, t),
            None => Some(MAIN_TABLE),
        };
        let metric = match &r.metric {
            None => to.map(|t| Family::of_net(&t).default_metric()),
            // The kernel stores an IPv6 route asked for with metric 0 as 1024:
            // keep the same key, or it would never be seen as made.
            Some(m)
                if *m.get_ref() == 0 && to.is_some_and(|t| Family::of_net(&t) == Family::Ipv6) =>
            {
                Some(Family::Ipv6.default_metric())
            }
            Some(m) if (0..=u32::MAX as i64).contains(m.get_ref()) => Some(*m.get_ref() as u32),
            Some(m) => {
                self.err(Diagnostic::at(
                    &loc_of(file, m),
                    format!("metric {} is out of range (0 to {})", m.get_ref(), u32::MAX),
                ));
                None
            }
        };
        let depends_on = self.depends_on(file, &r.depends_on, links);
        Some(Route {
            depends_on,
            loc: s.name_loc.clone(),
            to: to?,
            via: via.map(|v| v.0),
            dev,
            table: table?,
            metric: metric?,
        })
    }

    fn rule(
        &mut self,
        file: usize,
        s: &Section<crate::spec::RuleSpec>,
        links: &BTreeMap<String, (LinkDecl, Loc)>,
    ) -> Option<Rule> {
        let r = &s.spec;
        let depends_on = self.depends_on(file, &r.depends_on, links);
        let from = r
            .from
            .as_ref()
            .map(|f| (self.prefix(&loc_of(file, f), f.get_ref()), loc_of(file, f)));
        let to =
            r.to.as_ref()
                .map(|t| (self.prefix(&loc_of(file, t), t.get_ref()), loc_of(file, t)));
        let mut family = None;
        if let Some(f) = &r.family {
            match f.get_ref().as_str() {
                "ipv4" => family = Some(Family::Ipv4),
                "ipv6" => family = Some(Family::Ipv6),
                other => self.err(
                    Diagnostic::at(&loc_of(file, f), format!("unknown family `{other}`"))
                        .help("family is \"ipv4\" or \"ipv6\""),
                ),
            }
        }
        for (net, loc) in [&from, &to].into_iter().flatten() {
            let Some(net) = net else { continue };
            let f = Family::of_net(net);
            match family {
                Some(g) if g != f => self.err(
                    Diagnostic::at(
                        loc,
                        format!("{net} does not match the rule's address family"),
                    )
                    .help("a rule matches one family: keep `from`, `to` and `family` alike"),
                ),
                _ => family = Some(f),
            }
        }
        let mut ifname = |v: &Option<Spanned<String>>| -> Option<String> {
            let v = v.as_ref()?;
            if let Err(m) = check_ifname(v.get_ref()) {
                self.err(Diagnostic::at(&loc_of(file, v), m));
            }
            Some(v.get_ref().clone())
        };
        let iif = ifname(&r.iif);
        let oif = ifname(&r.oif);
        let table = self.table(file, &r.table);
        let p = *r.priority.get_ref();
        let priority = if (1..=32765).contains(&p) {
            Some(p as u32)
        } else {
            self.err(
                Diagnostic::at(
                    &loc_of(file, &r.priority),
                    format!("rule priority {p} is out of range"),
                )
                .help("use 1 to 32765: 0, 32766 and 32767 hold the kernel's own rules"),
            );
            None
        };
        Some(Rule {
            depends_on,
            loc: s.name_loc.clone(),
            family: family.unwrap_or(Family::Ipv4),
            from: match from {
                Some((n, _)) => Some(n?),
                None => None,
            },
            to: match to {
                Some((n, _)) => Some(n?),
                None => None,
            },
            iif,
            oif,
            table: table?,
            priority: priority?,
        })
    }

    /// `depends_on` entries: "bridge.NAME" or "veth.NAME", declared in the topology.
    fn depends_on(
        &mut self,
        file: usize,
        list: &[Spanned<String>],
        links: &BTreeMap<String, (LinkDecl, Loc)>,
    ) -> Vec<String> {
        let mut out = vec![];
        for d in list {
            let loc = loc_of(file, d);
            let Some((kind, name)) = d.get_ref().split_once('.') else {
                self.err(
                    Diagnostic::at(&loc, format!("`{}` is not a reference", d.get_ref()))
                        .help("write \"bridge.NAME\" or \"veth.NAME\""),
                );
                continue;
            };
            let found = match (kind, links.get(name)) {
                ("bridge", Some((LinkDecl::Bridge, _))) | ("veth", Some((LinkDecl::Veth, _))) => {
                    true
                }
                ("bridge" | "veth", _) => false,
                _ => {
                    self.err(
                        Diagnostic::at(&loc, format!("unknown kind `{kind}` in `{}`", d.get_ref()))
                            .help("depends_on names \"bridge.NAME\" or \"veth.NAME\""),
                    );
                    continue;
                }
            };
            if found {
                out.push(name.to_string());
            } else {
                let same_kind = links.iter().filter(|(_, (k, _))| {
                    matches!(
                        (kind, k),
                        ("bridge", LinkDecl::Bridge) | ("veth", LinkDecl::Veth)
                    )
                });
                let msg = Diagnostic::at(&loc, format!("no {kind} named `{name}` is declared"));
                let msg = match did_you_mean(name, same_kind.map(|(n, _)| n.as_str())) {
                    Some(s) => msg.help(format!("did you mean `{kind}.{s}`?")),
                    None => msg.help(format!("declare it with [{kind}.{name}]")),
                };
                self.err(msg);
            }
        }
        out
    }

    /// Linux does not resolve gateways recursively: a gateway must sit in a
    /// connected subnet. Within a topology's own netns, that is one of its links'.
    fn gateways(
        &mut self,
        netns: &Option<String>,
        routes: &[Route],
        bridges: &BTreeMap<String, Bridge>,
        veths: &BTreeMap<String, Veth>,
    ) {
        if netns.is_none() {
            return; // the host's own links may well connect the gateway
        }
        let subnets: Vec<IpNet> = bridges
            .values()
            .flat_map(|b| b.addresses.iter())
            .chain(
                veths
                    .values()
                    .flat_map(|v| v.addresses.iter().chain(v.peer_addresses.iter())),
            )
            .map(|a| a.trunc())
            .collect();
        for r in routes {
            if let Some(via) = r.via
                && Family::of(&via) == Family::of_net(&r.to) // else an error already
                && !subnets.iter().any(|n| n.contains(&via))
                && !matches!(via, IpAddr::V6(v) if v.segments()[0] & 0xffc0 == 0xfe80)
            {
                self.diags.push(
                        Diagnostic::warning(&r.loc, format!("gateway {via} is not in a subnet of any link of this topology"))
                            .help("the kernel only accepts a gateway on a connected subnet: give a bridge or veth an address covering it"),
                    );
            }
        }
    }

    /// One address on two links of one netns is legal but rarely meant:
    /// which link answers for it is up to the kernel.
    fn unique_addresses(
        &mut self,
        bridges: &BTreeMap<String, Bridge>,
        veths: &BTreeMap<String, Veth>,
    ) {
        let mut on: Vec<(IpAddr, &str, &Loc)> = vec![];
        for b in bridges.values() {
            on.extend(
                b.addresses
                    .iter()
                    .map(|a| (a.addr(), b.name.as_str(), &b.loc)),
            );
        }
        for v in veths.values() {
            on.extend(
                v.addresses
                    .iter()
                    .map(|a| (a.addr(), v.name.as_str(), &v.loc)),
            );
            on.extend(
                v.peer_addresses
                    .iter()
                    .map(|a| (a.addr(), v.peer.as_str(), &v.loc)),
            );
        }
        let mut seen: BTreeMap<IpAddr, (&str, &Loc)> = BTreeMap::new();
        for (addr, link, loc) in on {
            match seen.get(&addr) {
                Some((first, first_loc)) if *first != link => {
                    let d = Diagnostic::warning(
                        loc,
                        format!("address {addr} is on both `{first}` and `{link}`"),
                    )
                    .related(first_loc, "also given here")
                    .help("give each link its own address");
                    self.diags.push(d);
                }
                _ => {
                    seen.insert(addr, (link, loc));
                }
            }
        }
    }

    fn unique_routes(&mut self, routes: &[Route]) {
        let mut seen: BTreeMap<(u32, IpNet, u32), &Loc> = BTreeMap::new();
        for r in routes {
            if let Some(first) = seen.insert((r.table, r.to, r.metric), &r.loc) {
                self.err(
                    Diagnostic::at(&r.loc, format!(
                        "route to {} in table {} with metric {} is declared more than once",
                        r.to, r.table, r.metric
                    ))
                    .related(first, "first declared here")
                    .help("a route is identified by table, destination and metric: keep one, or give them different metrics"),
                );
            }
        }
    }

    fn unique_rules(&mut self, rules: &[Rule]) {
        let mut seen: BTreeMap<String, &Loc> = BTreeMap::new();
        for r in rules {
            let key = crate::state::RuleKey::of(r).to_string();
            if let Some(first) = seen.insert(key.clone(), &r.loc) {
                self.err(
                    Diagnostic::at(&r.loc, format!("rule `{key}` is declared more than once"))
                        .related(first, "first declared here"),
                );
            }
        }
    }
}
