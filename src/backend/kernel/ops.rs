//! Kernel operations. Each is one or a few netlink requests, safe to repeat.

use super::Kernel;
use super::observe::name_of;
use crate::error::{Error, Result};
use crate::model::Family;
use crate::ownership::NETLOOM_PROTO;
use crate::resource::{LinkEnd, LinkKind, LinkRes, RouteRes, RuleKey};
use futures::StreamExt;
use ipnet::IpNet;
use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_ECHO, NLM_F_EXCL, NLM_F_REPLACE, NLM_F_REQUEST, NetlinkMessage,
    NetlinkPayload,
};
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{InfoData, InfoVeth, LinkAttribute, LinkMessage};
use rtnetlink::packet_route::route::{
    RouteAddress, RouteAttribute, RouteHeader, RouteMessage, RouteNextHop, RouteProtocol,
    RouteScope, RouteType,
};
use rtnetlink::packet_route::rule::{RuleAction, RuleAttribute, RuleMessage};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::{LinkBridge, LinkMessageBuilder, LinkUnspec, LinkVeth};
use std::collections::{BTreeSet, HashMap, HashSet};
use std::net::IpAddr;

const ENODEV: i32 = 19;
const EEXIST: i32 = 17;
const ENOENT: i32 = 2;
const ESRCH: i32 = 3;
const EADDRNOTAVAIL: i32 = 99;

/// Interface name → ifindex in the connected netns.
#[derive(Debug, Clone, Default)]
pub struct Index(pub HashMap<String, u32>);

impl Index {
    pub fn get(&self, name: &str) -> Result<u32> {
        self.0
            .get(name)
            .copied()
            .ok_or_else(|| Error::State(format!("interface {name} not found")))
    }
}

fn family_of(ip: &IpAddr) -> AddressFamily {
    if ip.is_ipv4() {
        AddressFamily::Inet
    } else {
        AddressFamily::Inet6
    }
}

impl Kernel {
    /// Sends one request and returns what the kernel sent back before its ACK.
    pub(super) async fn request(
        &self,
        msg: RouteNetlinkMessage,
        flags: u16,
    ) -> std::result::Result<Vec<RouteNetlinkMessage>, rtnetlink::Error> {
        let mut req = NetlinkMessage::from(msg);
        req.header.flags = NLM_F_REQUEST | NLM_F_ACK | flags;
        let mut h = self
            .handle()
            .map_err(|e| rtnetlink::Error::NamespaceError(e.to_string()))?;
        let mut responses = h.request(req)?;
        let mut out = vec![];
        while let Some(m) = responses.next().await {
            match m.payload {
                NetlinkPayload::Error(e) if e.code.is_some() => {
                    return Err(rtnetlink::Error::NetlinkError(e));
                }
                NetlinkPayload::InnerMessage(inner) => out.push(inner),
                _ => {}
            }
        }
        Ok(out)
    }

    pub async fn index(&self) -> Result<Index> {
        let dumper = self.dumper.clone();
        let links =
            tokio::task::spawn_blocking(move || dumper.lock().expect("dump socket lock").links())
                .await
                .map_err(|e| Error::task("dump", e))?
                .map_err(|e| Error::io("dump links", e))?;
        Ok(Index(
            links.into_iter().map(|l| (l.name, l.index)).collect(),
        ))
    }

    /// Creates a bridge or veth pair with its mark, state and addresses.
    /// Returns the new ifindexes by name.
    pub async fn create_link(
        &self,
        d: &LinkRes,
        mark: &str,
        idx: &Index,
    ) -> Result<Vec<(String, u32)>> {
        let name = &d.end.name;
        let msg = match d.kind {
            // A bridge MTU given at creation is not pinned: the kernel lowers
            // it as ports join. Create with another MTU; set_end then changes
            // it, which the kernel records as chosen by the user.
            // A bridge with no MAC of its own takes its lowest port's and
            // changes it as ports come and go, leaving every neighbour entry
            // for its addresses stale; a chosen one stays put.
            LinkKind::Bridge => {
                let b = LinkMessageBuilder::<LinkBridge>::new(name)
                    .address(crate::naming::iface_mac(mark, "", name).to_vec());
                let b = match d.end.mtu {
                    Some(1500) => b.mtu(1499),
                    _ => b,
                };
                if d.end.up { b.up() } else { b.down() }.build()
            }
            LinkKind::Veth => {
                let p = d.peer.as_ref().expect("a veth has a peer");
                // Asking for the peer to be up here fails with ENOTCONN (the
                // main end is not registered yet): set_end brings it up.
                let mut peer = LinkMessageBuilder::<LinkUnspec>::new().name(p.name.clone());
                if let Some(m) = p.mtu {
                    peer = peer.mtu(m);
                }
                let peer = peer.build();
                let mut b = with_state(LinkVeth::new(name, &p.name), &d.end)
                    .set_info_data(InfoData::Veth(InfoVeth::Peer(peer)));
                if let Some(m) = &d.end.master {
                    b = b.controller(idx.get(m)?);
                }
                b.build()
            }
            LinkKind::Other(ref k) => {
                return Err(Error::State(format!("cannot create a link of kind {k}")));
            }
        };
        let echoed = self
            .request(
                RouteNetlinkMessage::NewLink(msg),
                NLM_F_CREATE | NLM_F_EXCL | NLM_F_ECHO,
            )
            .await
            .map_err(|e| Error::kernel("create", format!("{} {name}", d.kind), e))?;
        let (index, peer_index) = match echoed.iter().find_map(|m| match m {
            RouteNetlinkMessage::NewLink(l) if name_of(l) == *name => Some(l),
            _ => None,
        }) {
            Some(l) => (
                l.header.index,
                l.attributes.iter().find_map(|a| match a {
                    LinkAttribute::Link(i) => Some(*i),
                    _ => None,
                }),
            ),
            // Kernels that do not echo: look the new link up.
            None => {
                let now = self.index().await?;
                (
                    now.get(name)?,
                    d.peer.as_ref().and_then(|p| now.0.get(&p.name).copied()),
                )
            }
        };
        let mut created = vec![(name.clone(), index)];
        // The alias is dropped when given at creation: set it now.
        self.set_end(index, &d.end, mark, idx, false).await?;
        self.add_addresses(index, name, &d.end.addresses).await?;
        if let Some(p) = &d.peer {
            let pi = peer_index.ok_or_else(|| {
                Error::State(format!("veth peer {} not found after creation", p.name))
            })?;
            self.set_end(pi, p, mark, idx, true).await?;
            self.add_addresses(pi, &p.name, &p.addresses).await?;
            created.push((p.name.clone(), pi));
        }
        Ok(created)
    }

    /// Sets mtu, state, master and mark of one end in one request.
    async fn set_end(
        &self,
        index: u32,
        e: &LinkEnd,
        mark: &str,
        idx: &Index,
        with_master: bool,
    ) -> Result<()> {
        let mut b = with_state(LinkUnspec::new_with_index(index), e).alias(mark);
        if with_master {
            b = match &e.master {
                Some(m) => b.controller(idx.get(m)?),
                None => b.nocontroller(),
            };
        }
        self.request(RouteNetlinkMessage::SetLink(b.build()), 0)
            .await
            .map_err(|err| Error::kernel("configure", format!("link {}", e.name), err))?;
        Ok(())
    }

    async fn add_addresses(
        &self,
        index: u32,
        name: &str,
        addrs: &std::collections::BTreeSet<IpNet>,
    ) -> Result<()> {
        for a in addrs {
            self.handle()?
                .address()
                .add(index, a.addr(), a.prefix_len())
                .replace()
                .execute()
                .await
                .map_err(|e| Error::kernel("add address", format!("{a} on {name}"), e))?;
        }
        Ok(())
    }

    /// Converges an existing link (both ends of a veth) to `d`.
    pub async fn update_link(
        &self,
        d: &LinkRes,
        current: Option<&LinkRes>,
        mark: &str,
        idx: &Index,
    ) -> Result<()> {
        let ends = std::iter::once((&d.end, current.map(|c| &c.end))).chain(
            d.peer
                .iter()
                .map(|p| (p, current.and_then(|c| c.peer.as_ref()))),
        );
        for (want, have) in ends {
            let index = idx.get(&want.name)?;
            self.set_end(index, want, mark, idx, true).await?;
            let missing = match have {
                Some(h) => want.addresses.difference(&h.addresses).copied().collect(),
                None => want.addresses.clone(),
            };
            let extra: Vec<&IpNet> = have
                .map(|h| h.addresses.difference(&want.addresses).collect())
                .unwrap_or_default();
            if extra.iter().any(|a| a.addr().is_ipv4()) {
                self.sysctl(&format!("ipv4/conf/{}/promote_secondaries", want.name), "1")
                    .await?;
            }
            // Additions first, then removals, with secondaries promoted: the
            // link never drops to no IPv4 address (which flushes every IPv4
            // route through it) and removing a subnet's primary does not take
            // the new address along. An address that only changes its prefix
            // goes first: the kernel knows an IPv6 address by the address
            // alone, so adding it again would modify the old entry in place.
            let (reprefixed, extra): (Vec<&IpNet>, Vec<&IpNet>) = extra
                .into_iter()
                .partition(|a| missing.iter().any(|m: &IpNet| m.addr() == a.addr()));
            for a in reprefixed {
                self.del_address(index, &want.name, a).await?;
            }
            self.add_addresses(index, &want.name, &missing).await?;
            for a in extra {
                self.del_address(index, &want.name, a).await?;
            }
        }
        Ok(())
    }

    async fn del_address(&self, index: u32, name: &str, a: &IpNet) -> Result<()> {
        let mut msg = AddressMessage::default();
        msg.header.family = family_of(&a.addr());
        msg.header.prefix_len = a.prefix_len();
        msg.header.index = index;
        if a.addr().is_ipv4() {
            msg.attributes.push(AddressAttribute::Local(a.addr()));
        }
        msg.attributes.push(AddressAttribute::Address(a.addr()));
        match self.handle()?.address().del(msg).execute().await {
            Err(e) if crate::error::errno(&e) == Some(EADDRNOTAVAIL) => Ok(()),
            r => r.map_err(|e| Error::kernel("remove address", format!("{a} from {name}"), e)),
        }
    }

    /// Deletes links. Several go in one request through a link group: the
    /// kernel then unregisters them as a batch, far faster than one by one.
    pub async fn delete_links(
        &self,
        names: &[String],
        idx: &Index,
        used_groups: &HashSet<u32>,
    ) -> Result<()> {
        let present: Vec<(&String, u32)> = names
            .iter()
            .filter_map(|n| idx.0.get(n).map(|i| (n, *i)))
            .collect();
        if present.len() == 1 {
            let (name, i) = present[0];
            return match self.handle()?.link().del(i).execute().await {
                Err(e) if crate::error::errno(&e) == Some(ENODEV) => Ok(()),
                r => r.map_err(|e| Error::kernel("delete", format!("link {name}"), e)),
            };
        }
        if present.is_empty() {
            return Ok(());
        }
        let mut group = 0x6e6c_0000 | (std::process::id() & 0xffff);
        while used_groups.contains(&group) {
            group = group.wrapping_add(1);
        }
        // Boxed one by one: a closure returning an async block, held across
        // an await, makes the caller's future fail the Send check.
        let mut tagging: Vec<futures::future::BoxFuture<'_, Result<()>>> = vec![];
        for &(name, i) in &present {
            tagging.push(Box::pin(self.tag_group(name, i, group)));
        }
        let tag = futures::stream::iter(tagging)
            .buffer_unordered(super::IN_FLIGHT)
            .collect::<Vec<_>>()
            .await;
        tag.into_iter().collect::<Result<Vec<_>>>()?;
        let mut msg = LinkMessage::default();
        msg.attributes.push(LinkAttribute::Group(group));
        self.request(RouteNetlinkMessage::DelLink(msg), 0)
            .await
            .map_err(|e| Error::kernel("delete", format!("{} links", present.len()), e))?;
        Ok(())
    }

    /// Puts a link into a group (a batch delete's first half).
    async fn tag_group(&self, name: &str, index: u32, group: u32) -> Result<()> {
        let msg = LinkUnspec::new_with_index(index).link_group(group).build();
        match self.request(RouteNetlinkMessage::SetLink(msg), 0).await {
            Err(e) if crate::error::errno(&e) == Some(ENODEV) => Ok(()),
            r => r
                .map(|_| ())
                .map_err(|e| Error::kernel("delete", format!("link {name}"), e)),
        }
    }

    pub async fn replace_route(&self, r: &RouteRes, idx: &Index) -> Result<()> {
        self.set_route(r, idx, NLM_F_CREATE | NLM_F_REPLACE).await
    }

    /// The routes (key and gateway) now in the given tables, one dump per
    /// table and family.
    pub async fn routes_present(
        &self,
        tables: BTreeSet<(crate::model::Family, u32)>,
    ) -> Result<HashSet<(crate::resource::RouteKey, Option<IpAddr>)>> {
        let dumper = self.dumper.clone();
        tokio::task::spawn_blocking(move || {
            let mut d = dumper.lock().expect("dump socket lock");
            let mut out = HashSet::new();
            for (family, table) in tables {
                for (o, _) in d.routes(family, table)? {
                    out.insert((o.route.key, o.route.via));
                }
            }
            Ok::<_, std::io::Error>(out)
        })
        .await
        .map_err(|e| Error::task("dump", e))?
        .map_err(|e| Error::io("dump routes", e))
    }

    /// Every unicast route of one table (both families), of any protocol.
    pub async fn table_routes(&self, table: u32) -> Result<Vec<crate::observed::RouteObs>> {
        let dumper = self.dumper.clone();
        tokio::task::spawn_blocking(move || {
            let mut d = dumper.lock().expect("dump socket lock");
            let mut out = vec![];
            for family in [crate::model::Family::Ipv4, crate::model::Family::Ipv6] {
                out.extend(d.routes(family, table)?.into_iter().map(|(o, _)| o));
            }
            Ok::<_, std::io::Error>(out)
        })
        .await
        .map_err(|e| Error::task("dump", e))?
        .map_err(|e| Error::io("dump routes", e))
    }

    /// Adds (or deletes) `local ADDR dev lo table local proto 78`: the
    /// netns answers for ADDR (ARP included) as for an address of its own.
    /// Adds and deletes local routes (`local ADDR dev lo table local`), all
    /// requests in flight at once on the one connection.
    pub async fn set_local_routes(&self, add: &[IpAddr], del: &[IpAddr]) -> Result<()> {
        if add.is_empty() && del.is_empty() {
            return Ok(());
        }
        let lo = self.index().await?.get("lo")?;
        let ops = add
            .iter()
            .map(|a| (*a, true))
            .chain(del.iter().map(|a| (*a, false)))
            .map(|(a, on)| self.set_local_route(lo, a, on));
        futures::future::try_join_all(ops).await.map(|_| ())
    }

    async fn set_local_route(&self, lo: u32, addr: IpAddr, add: bool) -> Result<()> {
        let mut msg = RouteMessage::default();
        msg.header.address_family = family_of(&addr);
        msg.header.destination_prefix_length = if addr.is_ipv4() { 32 } else { 128 };
        msg.header.protocol = RouteProtocol::Other(NETLOOM_PROTO);
        msg.header.scope = RouteScope::Host;
        msg.header.kind = RouteType::Local;
        msg.header.table = 255;
        msg.attributes
            .push(RouteAttribute::Destination(route_addr(addr)));
        msg.attributes.push(RouteAttribute::Oif(lo));
        let what = format!("local route {addr}");
        if add {
            self.request(
                RouteNetlinkMessage::NewRoute(msg),
                NLM_F_CREATE | NLM_F_REPLACE,
            )
            .await
            .map_err(|e| Error::kernel("set", what, e))?;
            return Ok(());
        }
        match self.request(RouteNetlinkMessage::DelRoute(msg), 0).await {
            Err(e) if crate::error::errno(&e) == Some(ESRCH) => Ok(()),
            r => r.map(|_| ()).map_err(|e| Error::kernel("delete", what, e)),
        }
    }

    /// Sets a gateway route under another protocol number than netloom's
    /// static one (learned BGP routes).
    pub async fn replace_route_as(&self, r: &RouteRes, protocol: u8) -> Result<()> {
        let mut msg = route_message_as(r, protocol);
        if let Some(v) = r.via {
            msg.attributes.push(RouteAttribute::Gateway(route_addr(v)));
        }
        self.request(
            RouteNetlinkMessage::NewRoute(msg),
            NLM_F_CREATE | NLM_F_REPLACE,
        )
        .await
        .map_err(|e| Error::kernel("set", format!("route {}", r.key), e))?;
        Ok(())
    }

    pub async fn delete_route_as(&self, r: &RouteRes, protocol: u8) -> Result<()> {
        let mut msg = route_message_as(r, protocol);
        msg.header.scope = RouteScope::NoWhere;
        match self.request(RouteNetlinkMessage::DelRoute(msg), 0).await {
            Err(e) if crate::error::errno(&e) == Some(ESRCH) => Ok(()),
            r2 => r2
                .map(|_| ())
                .map_err(|e| Error::kernel("delete", format!("route {}", r.key), e)),
        }
    }

    async fn set_route(&self, r: &RouteRes, idx: &Index, flags: u16) -> Result<()> {
        let mut msg = route_message(r);
        if let Some(d) = &r.dev {
            msg.attributes.push(RouteAttribute::Oif(idx.get(d)?));
            if r.via.is_none() {
                msg.header.scope = RouteScope::Link;
            }
        }
        if let Some(v) = r.via {
            msg.attributes.push(RouteAttribute::Gateway(route_addr(v)));
        }
        if !r.nexthops.is_empty() {
            let mut hops = vec![];
            for h in &r.nexthops {
                let mut nh = RouteNextHop::default();
                nh.hops = (h.weight.clamp(1, 256) - 1) as u8;
                if let Some(d) = &h.dev {
                    nh.interface_index = idx.get(d)?;
                }
                nh.attributes
                    .push(RouteAttribute::Gateway(route_addr(h.via)));
                hops.push(nh);
            }
            msg.attributes.push(RouteAttribute::MultiPath(hops));
        }
        self.request(RouteNetlinkMessage::NewRoute(msg), flags)
            .await
            .map_err(|e| Error::kernel("set", format!("route {}", r.key), e))?;
        Ok(())
    }

    pub async fn delete_route(&self, r: &RouteRes) -> Result<()> {
        let mut msg = route_message(r);
        msg.header.scope = RouteScope::NoWhere; // match any scope, as `ip route del`
        match self.request(RouteNetlinkMessage::DelRoute(msg), 0).await {
            Err(e) if crate::error::errno(&e) == Some(ESRCH) => Ok(()),
            r2 => r2
                .map(|_| ())
                .map_err(|e| Error::kernel("delete", format!("route {}", r.key), e)),
        }
    }

    pub async fn add_rule(&self, k: &RuleKey) -> Result<()> {
        match self
            .request(
                RouteNetlinkMessage::NewRule(rule_message(k)),
                NLM_F_CREATE | NLM_F_EXCL,
            )
            .await
        {
            Err(e) if crate::error::errno(&e) == Some(EEXIST) => Ok(()),
            r => r
                .map(|_| ())
                .map_err(|e| Error::kernel("add", format!("rule {k}"), e)),
        }
    }

    pub async fn delete_rule(&self, k: &RuleKey) -> Result<()> {
        match self
            .request(RouteNetlinkMessage::DelRule(rule_message(k)), 0)
            .await
        {
            Err(e) if crate::error::errno(&e) == Some(ENOENT) => Ok(()),
            r => r
                .map(|_| ())
                .map_err(|e| Error::kernel("delete", format!("rule {k}"), e)),
        }
    }

    /// Marks a netns netloom created: `lo` carries the topology's mark (and
    /// is brought up, as users of a fresh netns expect).
    pub async fn mark_netns(&self, mark: &str) -> Result<()> {
        let msg = LinkUnspec::new_with_name("lo").alias(mark).up().build();
        self.request(RouteNetlinkMessage::SetLink(msg), 0)
            .await
            .map_err(|e| Error::kernel("mark", "netns (lo)", e))?;
        Ok(())
    }
}

fn with_state<T>(b: LinkMessageBuilder<T>, e: &LinkEnd) -> LinkMessageBuilder<T> {
    let b = match e.mtu {
        Some(m) => b.mtu(m),
        None => b,
    };
    if e.up { b.up() } else { b.down() }
}

fn route_addr(ip: IpAddr) -> RouteAddress {
    match ip {
        IpAddr::V4(a) => RouteAddress::Inet(a),
        IpAddr::V6(a) => RouteAddress::Inet6(a),
    }
}

fn route_message(r: &RouteRes) -> RouteMessage {
    route_message_as(r, NETLOOM_PROTO)
}

fn route_message_as(r: &RouteRes, protocol: u8) -> RouteMessage {
    let mut msg = RouteMessage::default();
    let to = r.key.to;
    msg.header.address_family = family_of(&to.addr());
    msg.header.destination_prefix_length = to.prefix_len();
    msg.header.protocol = RouteProtocol::Other(protocol);
    msg.header.scope = RouteScope::Universe;
    msg.header.kind = RouteType::Unicast;
    msg.header.table = if r.key.table < 256 {
        r.key.table as u8
    } else {
        RouteHeader::RT_TABLE_UNSPEC
    };
    msg.attributes.push(RouteAttribute::Table(r.key.table));
    if to.prefix_len() > 0 {
        msg.attributes
            .push(RouteAttribute::Destination(route_addr(to.addr())));
    }
    msg.attributes.push(RouteAttribute::Priority(r.key.metric));
    msg
}

fn rule_message(k: &RuleKey) -> RuleMessage {
    let mut msg = RuleMessage::default();
    msg.header.family = match k.family {
        Family::Ipv4 => AddressFamily::Inet,
        Family::Ipv6 => AddressFamily::Inet6,
    };
    msg.header.action = RuleAction::ToTable;
    msg.header.table = if k.table < 256 { k.table as u8 } else { 0 };
    msg.attributes.push(RuleAttribute::Table(k.table));
    msg.attributes.push(RuleAttribute::Priority(k.priority));
    msg.attributes
        .push(RuleAttribute::Protocol(RouteProtocol::Other(NETLOOM_PROTO)));
    if let Some(n) = k.from {
        msg.header.src_len = n.prefix_len();
        msg.attributes.push(RuleAttribute::Source(n.addr()));
    }
    if let Some(n) = k.to {
        msg.header.dst_len = n.prefix_len();
        msg.attributes.push(RuleAttribute::Destination(n.addr()));
    }
    if let Some(i) = &k.iif {
        msg.attributes.push(RuleAttribute::Iifname(i.clone()));
    }
    if let Some(o) = &k.oif {
        msg.attributes.push(RuleAttribute::Oifname(o.clone()));
    }
    msg
}
