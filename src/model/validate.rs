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
    let topo = v.topology(loaded);
    if loaded.incomplete {
        // Every check still ran on what did load (one run shows all that
        // is wrong), but one that looks a name up may be missing what the
        // unread part declares.
        v.diags.retain(|d| !d.unresolved);
        return Err(v.diags);
    }
    if v.diags.iter().any(Diagnostic::is_error) {
        return Err(v.diags);
    }
    Ok((topo.expect("no errors means a topology"), v.diags))
}

pub(super) struct Validator {
    pub(super) diags: Vec<Diagnostic>,
}

pub(super) fn loc_of<T>(file: usize, s: &Spanned<T>) -> Loc {
    Loc::new(file, s.span())
}

/// A link name declared by the topology, and what declared it.
#[derive(Clone)]
pub(super) enum LinkDecl {
    Bridge,
    Veth,
    Peer(String),
}

impl Validator {
    pub(super) fn err(&mut self, d: Diagnostic) {
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
        let sysctls = first
            .map(|(file, t)| super::wiring::sysctls(file, &t.spec.sysctls, &mut self.diags))
            .unwrap_or_default();
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
        let mut ifnames = BTreeMap::new();
        let links = super::wiring::build(
            loaded,
            &mut containers,
            &bridges,
            &mut ifnames,
            &mut self.diags,
        );
        let cni = super::cni::build(loaded, &mut containers, &mut ifnames, &mut self.diags);
        super::wiring::container_routes(loaded, &mut containers, &links, &mut self.diags);
        let others = super::service::Others {
            bridges: &bridges,
            networks: &networks,
            containers: &containers,
            links: &links,
        };
        let services = super::service::build(loaded, &others, &mut self.diags);
        let mut sysctls = sysctls;
        super::service::forwarding(&netns, &services, &mut sysctls, &mut self.diags);
        let bgp = super::bgp::build(loaded, &mut self.diags);
        // Checks of the whole (where the netns is, which links hold a
        // gateway's subnet): an unread part could change their verdict.
        if !loaded.incomplete {
            super::wiring::docker_overlaps(
                &netns,
                &bridges,
                &networks,
                &containers,
                &links,
                &mut self.diags,
            );
            self.gateways(&netns, &routes, &bridges, &veths);
        }
        self.unique_addresses(&bridges, &veths);
        self.unique_routes(&routes);
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
            cni,
            services,
            bgp,
            sysctls,
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
    pub(super) fn prefix(&mut self, loc: &Loc, text: &str) -> Option<IpNet> {
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
                let d = Diagnostic::at(&loc, format!("no bridge named `{name}` is declared"))
                    .unresolved();
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
        let external = s.spec.external.as_ref().is_some_and(|e| *e.get_ref());
        if external {
            let spec = &s.spec;
            let managed: Vec<&str> = [
                ("addresses", !spec.addresses.is_empty()),
                ("mtu", spec.mtu.is_some()),
                ("up", spec.up.is_some()),
                ("adopt", spec.adopt.is_some()),
            ]
            .into_iter()
            .filter(|(_, set)| *set)
            .map(|(k, _)| k)
            .collect();
            if !managed.is_empty() {
                self.err(
                    Diagnostic::at(&s.name_loc, format!(
                        "external bridge `{}` cannot have {}: netloom never changes an external bridge",
                        s.name,
                        managed.join(", ")
                    ))
                    .help("remove those keys, or drop `external = true` to let netloom create and own the bridge"),
                );
            }
        }
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
            external,
            adopt: s.spec.adopt.unwrap_or(false),
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
            adopt: s.spec.adopt.unwrap_or(false),
        })
    }

    /// `depends_on` entries: "bridge.NAME" or "veth.NAME", declared in the topology.
    pub(super) fn depends_on(
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
                let msg = Diagnostic::at(&loc, format!("no {kind} named `{name}` is declared"))
                    .unresolved();
                let msg = match did_you_mean(name, same_kind.map(|(n, _)| n.as_str())) {
                    Some(s) => msg.help(format!("did you mean `{kind}.{s}`?")),
                    None => msg.help(format!("declare it with [{kind}.{name}]")),
                };
                self.err(msg);
            }
        }
        out
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
}
