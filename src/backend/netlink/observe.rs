//! Bulk observation: one dump per object class, run concurrently.

use super::Kernel;
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::model::Family;
use crate::state::{
    AddrObs, LinkKind, LinkObs, Observed, RouteKey, RouteObs, RouteRes, RuleKey, RuleObs,
};
use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::IpVersion;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use rtnetlink::packet_route::link::{InfoKind, LinkAttribute, LinkFlags, LinkInfo, LinkMessage};
use rtnetlink::packet_route::route::{RouteAddress, RouteAttribute, RouteMessage, RouteType};
use rtnetlink::packet_route::rule::{RuleAttribute, RuleMessage};
use std::collections::HashMap;
use std::net::IpAddr;

impl Kernel {
    /// Everything in this netns that netloom reads, in one pass.
    pub async fn observe(&self, ledger: Ledger) -> Result<Observed> {
        // One dump at a time: the kernel answers EBUSY to a second dump on a
        // socket while one is in progress.
        let links = self.dump_links().await?;
        let addrs = self.dump_addresses().await?;
        let routes4 = self.dump_routes(AddressFamily::Inet).await?;
        let routes6 = self.dump_routes(AddressFamily::Inet6).await?;
        let rules4 = self.dump_rules(IpVersion::V4).await?;
        let rules6 = self.dump_rules(IpVersion::V6).await?;
        let names: HashMap<u32, String> =
            links.iter().map(|l| (l.header.index, name_of(l))).collect();
        let mut by_index: HashMap<u32, Vec<AddrObs>> = HashMap::new();
        for a in &addrs {
            if let Some(obs) = addr_obs(a) {
                by_index.entry(a.header.index).or_default().push(obs);
            }
        }
        let mut out = Observed {
            netns_exists: true,
            ledger,
            ..Default::default()
        };
        for l in &links {
            let mut obs = link_obs(l, &names);
            if let Some(mut a) = by_index.remove(&obs.index) {
                a.sort_by_key(|x| x.net);
                obs.addresses = a;
            }
            if obs.name == "lo" {
                out.netns_mark = obs.alias.clone();
            }
            out.links.push(obs);
        }
        out.routes = routes4
            .iter()
            .chain(routes6.iter())
            .filter_map(|r| route_obs(r, &names))
            .collect();
        out.rules = rules4
            .iter()
            .chain(rules6.iter())
            .filter_map(rule_obs)
            .collect();
        Ok(out)
    }

    pub async fn dump_links(&self) -> Result<Vec<LinkMessage>> {
        self.handle
            .link()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::kernel("dump", "links", e))
    }

    async fn dump_addresses(&self) -> Result<Vec<AddressMessage>> {
        self.handle
            .address()
            .get()
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::kernel("dump", "addresses", e))
    }

    async fn dump_routes(&self, family: AddressFamily) -> Result<Vec<RouteMessage>> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family;
        self.handle
            .route()
            .get(msg)
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::kernel("dump", "routes", e))
    }

    async fn dump_rules(&self, v: IpVersion) -> Result<Vec<RuleMessage>> {
        self.handle
            .rule()
            .get(v)
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::kernel("dump", "rules", e))
    }
}

pub(super) fn name_of(l: &LinkMessage) -> String {
    l.attributes
        .iter()
        .find_map(|a| match a {
            LinkAttribute::IfName(n) => Some(n.clone()),
            _ => None,
        })
        .unwrap_or_default()
}

fn link_obs(l: &LinkMessage, names: &HashMap<u32, String>) -> LinkObs {
    let mut o = LinkObs {
        index: l.header.index,
        name: name_of(l),
        kind: LinkKind::Other(String::new()),
        mtu: 0,
        up: l.header.flags.contains(LinkFlags::Up),
        carrier: l.header.flags.contains(LinkFlags::LowerUp),
        master: None,
        peer: None,
        alias: None,
        addresses: vec![],
        group: 0,
    };
    let mut peer_elsewhere = false;
    for a in &l.attributes {
        match a {
            LinkAttribute::Mtu(m) => o.mtu = *m,
            LinkAttribute::Controller(i) => o.master = names.get(i).cloned(),
            LinkAttribute::IfAlias(s) if !s.is_empty() => o.alias = Some(s.clone()),
            LinkAttribute::Group(g) => o.group = *g,
            LinkAttribute::Link(i) => o.peer = names.get(i).cloned(),
            LinkAttribute::LinkNetNsId(_) => peer_elsewhere = true,
            LinkAttribute::LinkInfo(infos) => {
                for i in infos {
                    if let LinkInfo::Kind(k) = i {
                        o.kind = match k {
                            InfoKind::Bridge => LinkKind::Bridge,
                            InfoKind::Veth => LinkKind::Veth,
                            other => LinkKind::Other(other.to_string()),
                        };
                    }
                }
            }
            _ => {}
        }
    }
    // IFLA_LINK names an ifindex in another netns when LINK_NETNSID is set.
    if peer_elsewhere || o.kind != LinkKind::Veth {
        o.peer = None;
    }
    if o.kind == LinkKind::Other(String::new()) {
        o.kind = LinkKind::Other("device".into());
    }
    o
}

fn addr_obs(a: &AddressMessage) -> Option<AddrObs> {
    let mut local = None;
    let mut address = None;
    let mut tentative = false;
    for attr in &a.attributes {
        match attr {
            AddressAttribute::Local(ip) => local = Some(*ip),
            AddressAttribute::Address(ip) => address = Some(*ip),
            AddressAttribute::Flags(f) => tentative = f.contains(AddressFlags::Tentative),
            _ => {}
        }
    }
    // For IPv4, IFA_LOCAL is the interface's address (IFA_ADDRESS may be a peer).
    let ip = local.or(address)?;
    Some(AddrObs {
        net: IpNet::new(ip, a.header.prefix_len).ok()?,
        tentative,
    })
}

fn route_addr(a: &RouteAddress) -> Option<IpAddr> {
    match a {
        RouteAddress::Inet(v4) => Some(IpAddr::V4(*v4)),
        RouteAddress::Inet6(v6) => Some(IpAddr::V6(*v6)),
        _ => None,
    }
}

fn route_obs(r: &RouteMessage, names: &HashMap<u32, String>) -> Option<RouteObs> {
    if r.header.kind != RouteType::Unicast {
        return None;
    }
    let family = match r.header.address_family {
        AddressFamily::Inet => Family::Ipv4,
        AddressFamily::Inet6 => Family::Ipv6,
        _ => return None,
    };
    let mut table = r.header.table as u32;
    let mut dst = None;
    let mut via = None;
    let mut dev = None;
    let mut metric = 0;
    for a in &r.attributes {
        match a {
            RouteAttribute::Table(t) => table = *t,
            RouteAttribute::Destination(d) => dst = route_addr(d),
            RouteAttribute::Gateway(g) => via = route_addr(g),
            RouteAttribute::Oif(i) => dev = names.get(i).cloned(),
            RouteAttribute::Priority(p) => metric = *p,
            _ => {}
        }
    }
    let dst = dst.unwrap_or(match family {
        Family::Ipv4 => IpAddr::from([0u8; 4]),
        Family::Ipv6 => IpAddr::from([0u16; 8]),
    });
    let to = IpNet::new(dst, r.header.destination_prefix_length).ok()?;
    Some(RouteObs {
        route: RouteRes {
            key: RouteKey { table, to, metric },
            via,
            dev,
        },
        protocol: u8::from(r.header.protocol),
    })
}

fn rule_obs(r: &RuleMessage) -> Option<RuleObs> {
    let family = match r.header.family {
        AddressFamily::Inet => Family::Ipv4,
        AddressFamily::Inet6 => Family::Ipv6,
        _ => return None,
    };
    let mut key = RuleKey {
        family,
        priority: 0,
        from: None,
        to: None,
        iif: None,
        oif: None,
        table: r.header.table as u32,
    };
    let mut protocol = 0;
    for a in &r.attributes {
        match a {
            RuleAttribute::Priority(p) => key.priority = *p,
            RuleAttribute::Source(ip) => key.from = IpNet::new(*ip, r.header.src_len).ok(),
            RuleAttribute::Destination(ip) => key.to = IpNet::new(*ip, r.header.dst_len).ok(),
            RuleAttribute::Iifname(n) => key.iif = Some(n.clone()),
            RuleAttribute::Oifname(n) => key.oif = Some(n.clone()),
            RuleAttribute::Table(t) => key.table = *t,
            RuleAttribute::Protocol(p) => protocol = u8::from(*p),
            _ => {}
        }
    }
    Some(RuleObs { key, protocol })
}
