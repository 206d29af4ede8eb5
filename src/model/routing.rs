//! Spec → model for routes and rules: gateways, prefixes, tables,
//! metrics and priorities, and the checks across all routes and rules.

use super::validate::{LinkDecl, Validator, loc_of};
use super::{Bridge, Family, MAIN_TABLE, Route, Rule, Veth, check_ifname};
use crate::diag::{Diagnostic, Loc, did_you_mean};
use crate::resource::NextHop;
use crate::spec::{NexthopSpec, Section, ViaSpec};
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;
use toml::Spanned;

/// A gateway address: unicast, without a prefix length.
pub(super) fn gateway_ip(loc: &Loc, text: &str, diags: &mut Vec<Diagnostic>) -> Option<IpAddr> {
    match text.parse::<IpAddr>() {
        Ok(a) if a.is_unspecified() || a.is_multicast() => {
            diags.push(Diagnostic::at(
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
            diags.push(d);
            None
        }
    }
}

/// How a route leaves: one gateway (`via`), or several next hops (a list
/// of `via`s, or `nexthops` with their own `dev` and `weight`).
#[derive(Default)]
pub(super) struct Gateways {
    pub via: Option<(IpAddr, Loc)>,
    /// Two or more, canonical order; each with the location of its address.
    pub hops: Vec<(NextHop, Loc)>,
    /// `dev` of a single entry in `nexthops` (the route's own `dev` otherwise).
    pub dev: Option<(String, Loc)>,
}

impl Gateways {
    pub fn nexthops(&self) -> Vec<NextHop> {
        self.hops.iter().map(|(h, _)| h.clone()).collect()
    }

    /// Every gateway address with its location.
    pub fn addrs(&self) -> Vec<(IpAddr, &Loc)> {
        self.via
            .iter()
            .map(|(a, l)| (*a, l))
            .chain(self.hops.iter().map(|(h, l)| (h.via, l)))
            .collect()
    }
}

/// Reads `via` (one or a list) and `nexthops`; `None` on an error reported.
pub(super) fn gateways_of(
    file: usize,
    via: &Option<Spanned<ViaSpec>>,
    nexthops: &[NexthopSpec],
    dev: &Option<Spanned<String>>,
    diags: &mut Vec<Diagnostic>,
) -> Option<Gateways> {
    let n = diags.len();
    let mut hops: Vec<(NextHop, Loc, Option<Loc>)> = vec![];
    let mut out = Gateways::default();
    match via {
        Some(v) if !nexthops.is_empty() => diags.push(
            Diagnostic::at(
                &loc_of(file, v),
                "a route takes `via` or `nexthops`, not both",
            )
            .help("list every gateway under `nexthops`, or drop `nexthops`"),
        ),
        Some(v) => {
            let loc = loc_of(file, v);
            match v.get_ref() {
                ViaSpec::One(text) => out.via = gateway_ip(&loc, text, diags).map(|a| (a, loc)),
                ViaSpec::Many(list) if list.is_empty() => diags.push(
                    Diagnostic::at(&loc, "`via` is an empty list")
                        .help("give one gateway, or several for a multipath route"),
                ),
                ViaSpec::Many(list) => {
                    for text in list {
                        if let Some(a) = gateway_ip(&loc, text, diags) {
                            let hop = NextHop {
                                via: a,
                                dev: None,
                                weight: 1,
                            };
                            hops.push((hop, loc.clone(), None));
                        }
                    }
                }
            }
        }
        None => {
            for h in nexthops {
                let loc = loc_of(file, &h.via);
                let weight = match &h.weight {
                    None => 1,
                    Some(w) if (1..=256).contains(w.get_ref()) => *w.get_ref() as u16,
                    Some(w) => {
                        diags.push(
                            Diagnostic::at(
                                &loc_of(file, w),
                                format!("weight {} is out of range", w.get_ref()),
                            )
                            .help("a next hop's weight is from 1 to 256"),
                        );
                        1
                    }
                };
                if let Some(a) = gateway_ip(&loc, h.via.get_ref(), diags) {
                    let hop = NextHop {
                        via: a,
                        dev: h.dev.as_ref().map(|d| d.get_ref().clone()),
                        weight,
                    };
                    hops.push((hop, loc, h.dev.as_ref().map(|d| loc_of(file, d))));
                }
            }
            if let (Some(d), false) = (dev, nexthops.is_empty()) {
                diags.push(
                    Diagnostic::at(
                        &loc_of(file, d),
                        "with `nexthops`, each next hop names its own `dev`",
                    )
                    .help("move `dev` into the next hops"),
                );
            }
        }
    }
    // One next hop and a gateway listed twice are mistakes worth naming.
    let mut seen: Vec<(IpAddr, Option<String>)> = vec![];
    for (h, loc, _) in &hops {
        let key = (h.via, h.dev.clone());
        if seen.contains(&key) {
            diags.push(Diagnostic::at(
                loc,
                format!("next hop {} is listed twice", h.via),
            ));
        }
        seen.push(key);
    }
    if diags.len() > n {
        return None;
    }
    if hops.len() == 1 {
        let (h, loc, dev_loc) = hops.pop().unwrap();
        out.dev = h.dev.zip(dev_loc);
        out.via = Some((h.via, loc));
    } else {
        hops.sort_by(|a, b| a.0.cmp(&b.0));
        out.hops = hops.into_iter().map(|(h, l, _)| (h, l)).collect();
    }
    Some(out)
}

impl Validator {
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

    pub(super) fn route(
        &mut self,
        file: usize,
        s: &Section<crate::spec::RouteSpec>,
        links: &BTreeMap<String, (LinkDecl, Loc)>,
    ) -> Option<Route> {
        let r = &s.spec;
        let to_loc = loc_of(file, &r.to);
        let gw = gateways_of(file, &r.via, &r.nexthops, &r.dev, &mut self.diags);
        let addrs = gw.as_ref().map(|g| g.addrs()).unwrap_or_default();
        let to = if r.to.get_ref() == "default" {
            match addrs.first() {
                Some((a, _)) if a.is_ipv6() => Some("::/0".parse().unwrap()),
                Some(_) => Some("0.0.0.0/0".parse().unwrap()),
                None if gw.is_none() => None,
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
        if let Some(to) = &to {
            same_family(to, &addrs, &mut self.diags);
        }
        let dev_ok = |name: &str, loc: &Loc, diags: &mut Vec<Diagnostic>| {
            if links.contains_key(name) {
                return true;
            }
            let msg = Diagnostic::at(
                loc,
                format!("route device `{name}` is not a bridge or veth end of this topology"),
            )
            .unresolved();
            let msg = match did_you_mean(name, links.keys().map(String::as_str)) {
                Some(s) => msg.help(format!("did you mean `{s}`?")),
                None => msg
                    .help("declare the interface in the topology, or route via a gateway instead"),
            };
            diags.push(msg);
            false
        };
        let dev = match (&r.dev, gw.as_ref().and_then(|g| g.dev.clone())) {
            (_, Some((d, loc))) => dev_ok(&d, &loc, &mut self.diags).then_some(d),
            (Some(d), None) if r.nexthops.is_empty() => {
                dev_ok(d.get_ref(), &loc_of(file, d), &mut self.diags).then(|| d.get_ref().clone())
            }
            _ => None,
        };
        let nexthops = gw.as_ref().map(|g| g.nexthops()).unwrap_or_default();
        for (h, loc) in gw.iter().flat_map(|g| g.hops.iter()) {
            if let Some(d) = &h.dev {
                dev_ok(d, loc, &mut self.diags);
            }
        }
        link_local_needs_dev(
            gw.as_ref(),
            r.dev.is_some() || dev.is_some(),
            &mut self.diags,
        );
        if gw.as_ref().is_some_and(|g| g.addrs().is_empty()) && r.dev.is_none() {
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
        let gw = gw?;
        Some(Route {
            depends_on,
            loc: s.name_loc.clone(),
            to: to?,
            via: gw.via.map(|v| v.0),
            dev,
            nexthops,
            table: table?,
            metric: metric?,
        })
    }

    pub(super) fn rule(
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

    /// Linux does not resolve gateways recursively: a gateway must sit in a
    /// connected subnet. Within a topology's own netns, that is one of its links'.
    pub(super) fn gateways(
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
            for via in r.via.into_iter().chain(r.nexthops.iter().map(|h| h.via)) {
                if Family::of(&via) == Family::of_net(&r.to) // else an error already
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
    }

    pub(super) fn unique_routes(&mut self, routes: &[Route]) {
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

    pub(super) fn unique_rules(&mut self, rules: &[Rule]) {
        let mut seen: BTreeMap<String, &Loc> = BTreeMap::new();
        for r in rules {
            let key = crate::resource::RuleKey::of(r).to_string();
            if let Some(first) = seen.insert(key.clone(), &r.loc) {
                self.err(
                    Diagnostic::at(&r.loc, format!("rule `{key}` is declared more than once"))
                        .related(first, "first declared here"),
                );
            }
        }
    }
}

/// Each gateway of the family of `to`.
pub(super) fn same_family(to: &IpNet, addrs: &[(IpAddr, &Loc)], diags: &mut Vec<Diagnostic>) {
    for (via, loc) in addrs {
        if Family::of_net(to) != Family::of(via) {
            diags.push(
                Diagnostic::at(
                    loc,
                    format!("gateway {via} is not of the same address family as {to}"),
                )
                .help("an IPv4 route needs an IPv4 gateway, an IPv6 route an IPv6 one"),
            );
        }
    }
}

/// A link-local IPv6 gateway means something only on one link.
pub(super) fn link_local_needs_dev(
    gw: Option<&Gateways>,
    has_dev: bool,
    diags: &mut Vec<Diagnostic>,
) {
    let Some(gw) = gw else { return };
    let mut check = |via: &IpAddr, dev: bool, loc: &Loc| {
        if let IpAddr::V6(v6) = via
            && v6.is_unicast_link_local()
            && !dev
        {
            diags.push(
                Diagnostic::at(loc, format!("link-local gateway {v6} needs `dev`"))
                    .help("a link-local address means something only on one link: name it, e.g. dev = \"br-core\""),
            );
        }
    };
    if let Some((via, loc)) = &gw.via {
        check(via, has_dev, loc);
    }
    for (h, loc) in &gw.hops {
        check(&h.via, h.dev.is_some(), loc);
    }
}
