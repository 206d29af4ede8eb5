//! Bulk observation: one dump per object class.

use super::Kernel;
use super::dump::RawLink;
use crate::error::{Error, Result};
use crate::model::Family;
use crate::observed::{AddrObs, ContainerNetObs, HostRoute, LinkObs, Observed, RuleObs};
use crate::ownership::Ledger;
use crate::resource::RuleKey;
use futures::TryStreamExt;
use ipnet::IpNet;
use rtnetlink::IpVersion;
use rtnetlink::packet_route::AddressFamily;
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::packet_route::rule::{RuleAttribute, RuleMessage};
use std::collections::{BTreeSet, HashMap};

impl Kernel {
    /// Everything in this netns that netloom reads: all links and addresses,
    /// the routes of `tables` and of the ledger's tables, all rules.
    pub async fn observe(&self, ledger: Ledger, tables: &BTreeSet<u32>) -> Result<Observed> {
        let mut tables = tables.clone();
        tables.extend(ledger.routes.iter().map(|k| k.table));
        let dumper = self.dumper.clone();
        let fd = self.fd.clone();
        let t = std::time::Instant::now();
        let (links, addrs, routes) = tokio::task::spawn_blocking(move || {
            let mut d = dumper.lock().expect("dump socket lock");
            let (links, addrs) = match super::prefetch::take(fd.as_deref()) {
                Some(dumped) => dumped,
                None => (d.links()?, d.addresses()?),
            };
            let mut routes = vec![];
            for table in tables {
                for family in [Family::Ipv4, Family::Ipv6] {
                    routes.extend(d.routes(family, table)?);
                }
            }
            Ok::<_, std::io::Error>((links, addrs, routes))
        })
        .await
        .map_err(|e| Error::task("dump", e))?
        .map_err(|e| Error::io("dump links, addresses and routes", e))?;
        tracing::debug!(elapsed = ?t.elapsed(), links = links.len(), addresses = addrs.len(), routes = routes.len(), "dumped");
        let rules4 = self.dump_rules(IpVersion::V4).await?;
        let rules6 = self.dump_rules(IpVersion::V6).await?;

        let mut out = Observed {
            netns_exists: true,
            ledger,
            ..Default::default()
        };
        let (links, names) = assemble(links, addrs);
        out.netns_mark = links
            .iter()
            .find(|l| l.name == "lo")
            .and_then(|l| l.alias.clone());
        out.links = links;
        out.routes = routes
            .into_iter()
            .map(|(mut r, oifs)| {
                oifs.name(&mut r, &names);
                r
            })
            .collect();
        out.rules = rules4
            .iter()
            .chain(rules6.iter())
            .filter_map(rule_obs)
            .collect();
        Ok(out)
    }

    /// Every route someone made, of every type and table, in this netns (observe reads
    /// only the tables a topology uses, and unicast routes only).
    pub async fn all_routes(&self) -> Result<Vec<crate::observed::RouteObs>> {
        let dumper = self.dumper.clone();
        tokio::task::spawn_blocking(move || {
            let mut d = dumper.lock().expect("dump socket lock");
            let mut v = d.all_routes(Family::Ipv4)?;
            v.extend(d.all_routes(Family::Ipv6)?);
            Ok::<_, std::io::Error>(v)
        })
        .await
        .map_err(|e| Error::task("dump", e))?
        .map_err(|e| Error::io("dump routes", e))
    }

    /// Links with their addresses (no routes): what configuring a link needs.
    pub async fn links_here(&self) -> Result<Vec<LinkObs>> {
        let dumper = self.dumper.clone();
        let (links, addrs) = tokio::task::spawn_blocking(move || {
            let mut d = dumper.lock().expect("dump socket lock");
            Ok::<_, std::io::Error>((d.links()?, d.addresses()?))
        })
        .await
        .map_err(|e| Error::task("dump", e))?
        .map_err(|e| Error::io("dump links and addresses", e))?;
        Ok(assemble(links, addrs).0)
    }

    /// Links, addresses and main-table routes inside a container's netns.
    pub async fn observe_container(&self) -> Result<ContainerNetObs> {
        let dumper = self.dumper.clone();
        let (links, addrs, routes) = tokio::task::spawn_blocking(move || {
            let mut d = dumper.lock().expect("dump socket lock");
            let links = d.links()?;
            let addrs = d.addresses()?;
            let mut routes = d.routes(Family::Ipv4, crate::model::MAIN_TABLE)?;
            routes.extend(d.routes(Family::Ipv6, crate::model::MAIN_TABLE)?);
            Ok::<_, std::io::Error>((links, addrs, routes))
        })
        .await
        .map_err(|e| Error::task("dump", e))?
        .map_err(|e| Error::io("dump a container's links and routes", e))?;
        let (links, names) = assemble(links, addrs);
        let routes = routes
            .into_iter()
            .map(|(mut r, oifs)| {
                oifs.name(&mut r, &names);
                r
            })
            .collect();
        Ok(ContainerNetObs {
            links,
            routes,
            sysctls: Default::default(),
            shared_with: None,
            same_netns_as: None,
        })
    }

    /// Destinations of the main table (both families), with their devices.
    pub async fn main_routes(&self) -> Result<Vec<HostRoute>> {
        let dumper = self.dumper.clone();
        let (links, routes) = tokio::task::spawn_blocking(move || {
            let mut d = dumper.lock().expect("dump socket lock");
            let links = d.links()?;
            let mut routes = d.routes(Family::Ipv4, crate::model::MAIN_TABLE)?;
            routes.extend(d.routes(Family::Ipv6, crate::model::MAIN_TABLE)?);
            Ok::<_, std::io::Error>((links, routes))
        })
        .await
        .map_err(|e| Error::task("dump", e))?
        .map_err(|e| Error::io("dump host routes", e))?;
        let names: HashMap<u32, String> = links.into_iter().map(|l| (l.index, l.name)).collect();
        Ok(routes
            .into_iter()
            .map(|(r, oifs)| HostRoute {
                to: r.route.key.to,
                dev: oifs.oif.and_then(|i| names.get(&i).cloned()),
            })
            .collect())
    }

    async fn dump_rules(&self, v: IpVersion) -> Result<Vec<RuleMessage>> {
        self.handle()?
            .rule()
            .get(v)
            .execute()
            .try_collect()
            .await
            .map_err(|e| Error::kernel("dump", "rules", e))
    }
}

/// Raw links and addresses → observed links with names resolved.
fn assemble(
    links: Vec<RawLink>,
    addrs: Vec<(u32, AddrObs)>,
) -> (Vec<LinkObs>, HashMap<u32, String>) {
    let names: HashMap<u32, String> = links.iter().map(|l| (l.index, l.name.clone())).collect();
    let mut by_index: HashMap<u32, Vec<AddrObs>> = HashMap::new();
    for (i, a) in addrs {
        by_index.entry(i).or_default().push(a);
    }
    let out = links
        .into_iter()
        .map(|l| {
            let mut addresses = by_index.remove(&l.index).unwrap_or_default();
            addresses.sort_by_key(|a| a.net);
            LinkObs {
                index: l.index,
                master: l.master.and_then(|i| names.get(&i).cloned()),
                peer: l.peer.and_then(|i| names.get(&i).cloned()),
                name: l.name,
                kind: l.kind,
                mtu: l.mtu,
                up: l.up,
                carrier: l.carrier,
                alias: l.alias,
                addresses,
                group: l.group,
            }
        })
        .collect();
    (out, names)
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
