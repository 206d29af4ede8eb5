//! Spec → model for routes and rules: gateways, prefixes, tables,
//! metrics and priorities, and the checks across all routes and rules.

use super::validate::{LinkDecl, Validator, loc_of};
use super::{Bridge, Family, MAIN_TABLE, Route, Rule, Veth, check_ifname};
use crate::diag::{Diagnostic, Loc, did_you_mean};
use crate::spec::Section;
use ipnet::IpNet;
use std::collections::BTreeMap;
use std::net::IpAddr;
use toml::Spanned;

impl Validator {
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

    pub(super) fn route(
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
