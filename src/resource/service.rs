//! A service: virtual IPs whose connections spread over container
//! endpoints, as rules in netloom's own nftables table. The endpoints are
//! resolved against the live containers at diff time; the rules are
//! observed back by their comments, so a rule changed by hand is drift.

use super::{DiffCx, Kind, Resource, ResourceKey};
use crate::diff::field::{Field, Side, Value};
use crate::diff::{Action, Diff, FieldChange};
use crate::model::{Port, ServiceNet};
use crate::observed::Observed;
use crate::ownership::Ledger;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// One endpoint as resolved: a ready container and its addresses.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct Endpoint {
    pub name: String,
    pub v4: Option<Ipv4Addr>,
    pub v6: Option<Ipv6Addr>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceRes {
    pub name: String,
    /// The rules live in the host's netns (Docker networks), else in the
    /// topology's.
    pub host: bool,
    pub vips: Vec<IpAddr>,
    pub ports: Vec<Port>,
    pub network: ServiceNet,
    pub selector: BTreeMap<String, String>,
    pub names: BTreeSet<String>,
    pub affinity: Option<u32>,
    /// For a bridge network: each container wired to it, with its addresses there.
    /// Shared: every service on a bridge carries the same map, and a
    /// service is cloned at each diff.
    #[serde(default, skip_serializing_if = "no_members")]
    pub members: std::sync::Arc<BTreeMap<String, Vec<IpAddr>>>,
    /// Resolved at diff time (empty in the desired graph).
    #[serde(default)]
    pub endpoints: Vec<Endpoint>,
}

fn no_members(m: &std::sync::Arc<BTreeMap<String, Vec<IpAddr>>>) -> bool {
    m.is_empty()
}

/// Each bridge's members (container → its addresses there), built once
/// per topology: every service on a bridge shares its map.
type Members = std::collections::HashMap<String, std::sync::Arc<BTreeMap<String, Vec<IpAddr>>>>;

impl ServiceRes {
    /// Every service of a topology, in name order.
    pub fn all_of(topo: &crate::model::Topology) -> Vec<ServiceRes> {
        let mut members = Members::new();
        topo.services
            .values()
            .map(|s| ServiceRes::from_model(s, topo, &mut members))
            .collect()
    }

    fn from_model(
        s: &crate::model::Service,
        topo: &crate::model::Topology,
        cache: &mut Members,
    ) -> ServiceRes {
        let members = match &s.network {
            ServiceNet::Bridge(b) => cache
                .entry(b.clone())
                .or_insert_with(|| {
                    let mut m: BTreeMap<String, Vec<IpAddr>> = BTreeMap::new();
                    for c in topo.containers.values() {
                        for i in c.interfaces.values().filter(|i| &i.bridge == b) {
                            let e = m.entry(c.name.clone()).or_default();
                            e.extend(i.addresses.iter().map(|a| a.addr()));
                        }
                    }
                    std::sync::Arc::new(m)
                })
                .clone(),
            ServiceNet::Docker(_) => Default::default(),
        };
        ServiceRes {
            name: s.name.clone(),
            host: matches!(s.network, ServiceNet::Docker(_)) || topo.netns.is_none(),
            vips: s.vips.clone(),
            ports: s.ports.clone(),
            network: s.network.clone(),
            selector: s.selector.clone(),
            names: s.endpoints.clone(),
            affinity: s.affinity,
            members,
            endpoints: vec![],
        }
    }

    /// A service known only from its rules in a table (for a prune).
    pub fn recorded(name: String, host: bool) -> ServiceRes {
        ServiceRes {
            name,
            host,
            vips: vec![],
            ports: vec![],
            network: ServiceNet::Bridge(String::new()),
            selector: BTreeMap::new(),
            names: BTreeSet::new(),
            affinity: None,
            members: Default::default(),
            endpoints: vec![],
        }
    }

    /// The ready containers this service spreads over, by name.
    pub fn resolve(&self, o: &Observed) -> Vec<Endpoint> {
        let Some(docker) = o.docker.as_ref() else {
            return vec![];
        };
        let mut out: Vec<Endpoint> = docker
            .containers
            .iter()
            .filter(|c| c.ready())
            .filter(|c| {
                self.names.contains(&c.name)
                    || (!self.selector.is_empty()
                        && self
                            .selector
                            .iter()
                            .all(|(k, v)| c.labels.get(k) == Some(v)))
            })
            .filter_map(|c| {
                let (v4, v6) = match &self.network {
                    ServiceNet::Docker(n) => {
                        let ep = c.endpoints.get(n).filter(|e| !e.stale)?;
                        let v4 = ep.address.as_deref().and_then(|a| a.parse().ok());
                        let v6 = ep.address6.as_deref().and_then(|a| a.parse().ok());
                        (v4, v6)
                    }
                    ServiceNet::Bridge(_) => {
                        let addrs = self.members.get(&c.name)?;
                        let v4 = addrs.iter().find_map(|a| match a {
                            IpAddr::V4(x) => Some(*x),
                            IpAddr::V6(_) => None,
                        });
                        let v6 = addrs.iter().find_map(|a| match a {
                            IpAddr::V6(x) => Some(*x),
                            IpAddr::V4(_) => None,
                        });
                        (v4, v6)
                    }
                };
                (v4.is_some() || v6.is_some()).then(|| Endpoint {
                    name: c.name.clone(),
                    v4,
                    v6,
                })
            })
            .collect();
        out.sort();
        out
    }

    pub fn where_(&self) -> &'static str {
        if self.host { "host" } else { "netns" }
    }
}

impl Kind for ServiceRes {
    fn key(&self) -> ResourceKey {
        ResourceKey::Service {
            name: self.name.clone(),
        }
    }

    fn kind_name(&self) -> String {
        "service".into()
    }

    fn title(&self) -> String {
        self.name.clone()
    }

    /// Rules reference nothing netloom deletes: any time.
    fn delete_rank(&self) -> usize {
        0
    }

    fn diff(&self, r: &Resource, cx: &DiffCx, out: &mut Diff) {
        diff_service(cx, r, self, out)
    }

    fn details(&self, out: &mut String) {
        let vips: Vec<String> = self.vips.iter().map(ToString::to_string).collect();
        let ports: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("{}/{}→{}", p.port, p.protocol.as_str(), p.target))
            .collect();
        let _ = writeln!(
            out,
            "      vips: {}  ports: {}",
            vips.join(", "),
            ports.join(", ")
        );
        if !self.host {
            let routes: Vec<String> = self
                .vips
                .iter()
                .map(|v| format!("local {v} dev lo"))
                .collect();
            let _ = writeln!(out, "      routes: {}", routes.join(", "));
        }
        let eps: Vec<&str> = self.endpoints.iter().map(|e| e.name.as_str()).collect();
        let _ = writeln!(
            out,
            "      endpoints: {}",
            if eps.is_empty() {
                "none (connections are refused)".to_string()
            } else {
                eps.join(", ")
            }
        );
    }

    fn claim(&self, ledger: &mut Ledger, _: &Observed) -> bool {
        ledger.nft.insert(self.where_().to_string())
    }

    fn settle(&self, _: &Ledger, ledger: &mut Ledger) {
        ledger.nft.insert(self.where_().to_string());
    }

    fn live(&self, o: &Observed) -> String {
        let vips: Vec<String> = self.vips.iter().map(ToString::to_string).collect();
        let ports: Vec<String> = self
            .ports
            .iter()
            .map(|p| format!("{}/{}", p.port, p.protocol.as_str()))
            .collect();
        let serves = format!("{} port {}", vips.join(", "), ports.join(", "));
        let seen = o.nft_table(self.host).map(|t| t.endpoints_of(&self.name));
        match seen {
            None => format!("{serves}: no table"),
            Some(eps) if eps.is_empty() => {
                format!("{serves}: no endpoints, connections are refused")
            }
            Some(eps) => format!(
                "{serves} → endpoints {}",
                eps.into_iter().collect::<Vec<_>>().join(", ")
            ),
        }
    }
}

fn diff_service(cx: &DiffCx, r: &Resource, d: &ServiceRes, out: &mut Diff) {
    if cx.observed.docker.is_none() {
        return super::network::unobserved(r, out);
    }
    // The desired service is cloned only for a change: a no-op diff of
    // 1,000 services is most of a plan.
    let endpoints = d.resolve(cx.observed);
    let want = |endpoints: &[Endpoint]| {
        let mut want = d.clone();
        want.endpoints = endpoints.to_vec();
        Resource::Service(want)
    };
    let Some(table) = cx
        .observed
        .nft_table(d.host)
        .filter(|t| t.has_service(&d.name))
    else {
        return out.push(Action::Create, &want(&endpoints));
    };
    let have = table.endpoints_of(&d.name);
    let wanted: BTreeSet<&str> = endpoints.iter().map(|e| e.name.as_str()).collect();
    let mut fields: Vec<FieldChange> = vec![];
    for gone in have.difference(&wanted) {
        fields.push(FieldChange::new(
            Side::Own,
            Field::Endpoint,
            Some(Value::Text(gone.to_string())),
            None,
        ));
    }
    for new in wanted.difference(&have) {
        fields.push(FieldChange::new(
            Side::Own,
            Field::Endpoint,
            None,
            Some(Value::Text(new.to_string())),
        ));
    }
    // In the topology's netns each VIP is a local route there, so the
    // netns itself and clients on the VIP's own subnet reach it too.
    if !d.host {
        for vip in d.vips.iter().filter(|v| !table.local.contains(v)) {
            fields.push(FieldChange::new(
                Side::Own,
                Field::Route,
                None,
                Some(Value::Text(format!("local {vip} dev lo"))),
            ));
        }
    }
    let rules_match = table.base_ok && crate::backend::nft_rules_match(d, &endpoints, table);
    // Rules that differ beyond the endpoints: edited by hand.
    if !rules_match && fields.is_empty() {
        fields.push(FieldChange::new(
            Side::Own,
            Field::Rules,
            Some(Value::Text("changed by hand".into())),
            Some(Value::Text("netloom's".into())),
        ));
    }
    if fields.is_empty() {
        return;
    }
    out.change(Action::Update, &want(&endpoints), None, fields, None);
}

/// Services whose rules are in a table of this topology's but that the
/// files no longer declare.
pub(super) fn prune(cx: &DiffCx, out: &mut Diff) {
    for t in &cx.observed.nft {
        for name in t.services() {
            let key = ResourceKey::Service { name: name.clone() };
            if cx.desired.contains(&key) {
                continue;
            }
            out.delete(Resource::Service(ServiceRes::recorded(name, t.host)));
        }
    }
}
