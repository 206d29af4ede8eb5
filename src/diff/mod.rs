//! Desired graph vs observed state → changes and conflicts.
//!
//! Only objects that carry this topology's mark are ever updated or
//! deleted; a desired object whose name or key is held by anything else is a
//! conflict, reported before any change is made.

mod docker;
mod wiring;

use crate::graph::DesiredGraph;
use crate::state::{
    IfacePeer, IfaceRes, LinkEnd, LinkRes, NETLOOM_PROTO, Observed, Owner, Resource, ResourceKey,
    link_owner,
};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashSet};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Create,
    Update,
    Replace,
    Delete,
}

impl Action {
    pub fn symbol(self) -> &'static str {
        match self {
            Action::Create => "+",
            Action::Update => "~",
            Action::Replace => "-/+",
            Action::Delete => "-",
        }
    }
}

/// One field that differs. For a set (addresses), each added or removed
/// member is its own entry with only `to` or only `from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldChange {
    pub field: String,
    pub from: Option<String>,
    pub to: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    pub action: Action,
    pub key: ResourceKey,
    pub kind: String,
    pub title: String,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    pub fields: Vec<FieldChange>,
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub reason: Option<String>,
    /// The object to create or converge to.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub desired: Option<Resource>,
    /// The object as observed (updates, replacements, deletions).
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub current: Option<Resource>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conflict {
    pub key: ResourceKey,
    pub message: String,
    pub help: String,
}

/// A desired object that cannot be made yet, and why (a container that is
/// not running). Not an error: `watch` makes it when it can.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Pending {
    pub key: ResourceKey,
    pub kind: String,
    pub title: String,
    pub reason: String,
}

#[derive(Debug, Default)]
pub struct Diff {
    pub changes: Vec<Change>,
    pub conflicts: Vec<Conflict>,
    pub pending: Vec<Pending>,
}

pub fn diff(topology: &str, desired: &DesiredGraph, observed: &Observed) -> Diff {
    let mut out = Diff::default();
    let mut desired_links: HashSet<&str> = HashSet::new();
    let mut desired_keys: HashSet<ResourceKey> = HashSet::new();
    let mut resources: Vec<&Resource> = desired.resources().collect();
    resources.sort_by_key(|r| r.key());
    for r in &resources {
        desired_keys.insert(r.key());
        if let Resource::Link(l) = r {
            desired_links.insert(&l.end.name);
            if let Some(p) = &l.peer {
                desired_links.insert(&p.name);
            }
        }
        // The host end of a container interface lives in the topology's netns.
        if let Resource::Iface(IfaceRes {
            peer: IfacePeer::Bridge { host, .. },
            ..
        }) = r
        {
            desired_links.insert(host);
        }
    }

    for r in &resources {
        match r {
            Resource::Netns { .. } => {
                if !observed.netns_exists {
                    out.changes
                        .push(change(Action::Create, r, None, vec![], None));
                }
            }
            Resource::Link(d) => diff_link(topology, r, d, observed, &mut out),
            Resource::Route(d) => {
                let found = observed.routes.iter().find(|o| o.route.key == d.key);
                match found {
                    None => out.changes.push(change(Action::Create, r, None, vec![], None)),
                    Some(o) if o.protocol == NETLOOM_PROTO && observed.ledger.routes.contains(&d.key) => {
                        let mut f = vec![];
                        field(&mut f, "via", &o.route.via.map(|v| v.to_string()), &d.via.map(|v| v.to_string()));
                        // Without `dev` the kernel picks the device from the gateway.
                        if d.dev.is_some() {
                            field(&mut f, "dev", &o.route.dev, &d.dev);
                        }
                        if !f.is_empty() {
                            let cur = Resource::Route(o.route.clone());
                            out.changes.push(change(Action::Update, r, Some(cur), f, None));
                        }
                    }
                    Some(o) => out.conflicts.push(Conflict {
                        key: r.key(),
                        message: format!(
                            "a route to {} (table {}, metric {}) already exists and this topology does not own it (protocol {}{})",
                            d.key.to, d.key.table, d.key.metric, proto_name(o.protocol), foreign(o.protocol)
                        ),
                        help: "remove that route, or give this one another metric or table".into(),
                    }),
                }
            }
            Resource::Rule(k) => {
                let found = observed.rules.iter().find(|o| &o.key == k);
                match found {
                    None => out.changes.push(change(Action::Create, r, None, vec![], None)),
                    Some(o) if o.protocol == NETLOOM_PROTO && observed.ledger.rules.contains(k) => {}
                    Some(o) => out.conflicts.push(Conflict {
                        key: r.key(),
                        message: format!(
                            "rule `{k}` already exists and this topology does not own it (protocol {}{})",
                            proto_name(o.protocol),
                            foreign(o.protocol)
                        ),
                        help: "remove that rule, or give this one another priority".into(),
                    }),
                }
            }
            Resource::Network(n) => docker::network(topology, r, n, observed, &mut out),
            Resource::Attachment(a) => {
                let managed = matches!(
                    desired.get(&ResourceKey::Network { name: a.key.network.clone() }),
                    Some(Resource::Network(n)) if !n.external
                );
                docker::attachment(r, a, managed, observed, &mut out)
            }
            Resource::Iface(i) => wiring::iface(topology, r, i, observed, &mut out),
            Resource::ContainerRoute(cr) => wiring::route(r, cr, observed, &mut out),
        }
    }

    // Prune: marked objects the files no longer describe.
    let mut gone: HashSet<&str> = HashSet::new();
    let mut links: Vec<_> = observed.links.iter().collect();
    links.sort_by(|a, b| a.name.cmp(&b.name)); // a pair is named by its first end
    for o in links {
        // `lo` carries the mark of a netns netloom created; it is never pruned.
        if o.name == "lo"
            || link_owner(o.alias.as_deref(), topology) != Owner::Ours
            || desired_links.contains(o.name.as_str())
            || gone.contains(o.name.as_str())
        {
            continue;
        }
        let cur = observed.link_resource(o);
        if let Some(p) = &o.peer {
            // The other end is still wanted: its own replacement removes this one.
            if desired_links.contains(p.as_str()) {
                continue;
            }
            gone.insert(p); // one delete removes both ends
        }
        let res = Resource::Link(cur);
        out.changes.push(deletion(res));
    }
    for o in &observed.routes {
        let key = ResourceKey::Route(o.route.key.clone());
        if o.protocol == NETLOOM_PROTO
            && observed.ledger.routes.contains(&o.route.key)
            && !desired_keys.contains(&key)
        {
            let res = Resource::Route(o.route.clone());
            out.changes.push(deletion(res));
        }
    }
    for o in &observed.rules {
        let key = ResourceKey::Rule(o.key.clone());
        if o.protocol == NETLOOM_PROTO
            && observed.ledger.rules.contains(&o.key)
            && !desired_keys.contains(&key)
        {
            let res = Resource::Rule(o.key.clone());
            out.changes.push(deletion(res));
        }
    }

    docker::prune(topology, &desired_keys, observed, &mut out);
    docker::address_clashes(observed, &mut out);
    docker::endpoint_notes(desired, observed, &mut out);
    wiring::prune(topology, &resources, observed, &mut out);
    // Deleting a container interface takes its host end along: listing that
    // end as a second deletion of a link by its derived name only confuses.
    let host_ends: HashSet<String> = out
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .filter_map(|c| match &c.current {
            Some(Resource::Iface(i)) => {
                Some(crate::state::host_end(topology, &i.container, &i.name))
            }
            _ => None,
        })
        .collect();
    out.changes.retain(|c| {
        !(c.action == Action::Delete
            && matches!(&c.current, Some(Resource::Link(l)) if host_ends.contains(&l.end.name)))
    });

    wait_behind_pending(desired, &mut out);
    let waiting: HashSet<ResourceKey> = out.pending.iter().map(|p| p.key.clone()).collect();
    cascade(desired, &mut out.changes, &waiting);
    out
}

/// What depends on a pending object cannot be made either (a route whose
/// gateway is on a link to a stopped container): it waits too.
fn wait_behind_pending(desired: &DesiredGraph, out: &mut Diff) {
    let mut queue: Vec<(ResourceKey, String)> = out
        .pending
        .iter()
        .map(|p| (p.key.clone(), format!("{} {}", p.kind, p.title)))
        .collect();
    let mut seen: HashSet<ResourceKey> = queue.iter().map(|(k, _)| k.clone()).collect();
    while let Some((key, what)) = queue.pop() {
        for dep in desired.dependents(&key) {
            let k = dep.key();
            if !seen.insert(k.clone()) {
                continue;
            }
            out.changes.retain(|c| c.key != k);
            out.pending.push(Pending {
                key: k.clone(),
                kind: dep.kind_name(),
                title: dep.title(),
                reason: format!("needs {what}, which is pending"),
            });
            queue.push((k, format!("{} {}", dep.kind_name(), dep.title())));
        }
    }
}

/// A replaced link takes its ports' enslavement and its routes with it; a
/// link that loses addresses takes the routes through them. Re-apply those
/// dependents even though they look unchanged now.
fn cascade(desired: &DesiredGraph, changes: &mut Vec<Change>, waiting: &HashSet<ResourceKey>) {
    let changed: BTreeMap<ResourceKey, usize> = changes
        .iter()
        .enumerate()
        .map(|(i, c)| (c.key.clone(), i))
        .collect();
    let mut extra: BTreeMap<ResourceKey, Change> = BTreeMap::new();
    for c in changes.iter() {
        // Subnets a link loses (no address left in them): the kernel
        // flushes routes whose gateway was there.
        let kept: Vec<ipnet::IpNet> = match &c.desired {
            Some(Resource::Link(l)) => l
                .end
                .addresses
                .iter()
                .chain(l.peer.iter().flat_map(|p| p.addresses.iter()))
                .map(|a| a.trunc())
                .collect(),
            _ => vec![],
        };
        let lost: Vec<ipnet::IpNet> = c
            .fields
            .iter()
            .filter(|f| f.field.ends_with("address") && f.to.is_none())
            .filter_map(|f| f.from.as_deref()?.parse::<ipnet::IpNet>().ok())
            .map(|n| n.trunc())
            .filter(|n| !kept.contains(n))
            .collect();
        if c.action != Action::Replace && lost.is_empty() {
            continue;
        }
        for dep in desired.dependents(&c.key) {
            let k = dep.key();
            if changed.contains_key(&k) || extra.contains_key(&k) || waiting.contains(&k) {
                continue;
            }
            let affected = match dep {
                Resource::Rule(_) => false, // rules name interfaces, they survive
                _ if c.action == Action::Replace => true,
                Resource::Route(r) => r.via.is_some_and(|v| lost.iter().any(|n| n.contains(&v))),
                _ => false,
            };
            if !affected {
                continue;
            }
            let reason = format!("re-applied: depends on {} {}", c.kind, c.title);
            extra.insert(k, change(Action::Update, dep, None, vec![], Some(reason)));
        }
    }
    // Deleting an interface drops the routes that went through it, in its
    // netns and, for a link between containers, in the peer's; which ones is
    // not known from here, so re-apply them all (an idempotent set each).
    for c in changes.iter().filter(|c| c.action == Action::Delete) {
        let netns_of_deleted: Option<Option<&str>> = match &c.current {
            Some(Resource::Link(_)) => Some(None),
            Some(Resource::Iface(i)) => Some(Some(i.container.as_str())),
            _ => None,
        };
        let Some(where_) = netns_of_deleted else {
            continue;
        };
        for r in desired.resources() {
            let same_netns = match (r, where_) {
                (Resource::Route(_), None) => true,
                // Its peer may sit in another container, and which one is
                // not known for an interface found only in the kernel.
                (Resource::ContainerRoute(_), Some(_)) => true,
                _ => false,
            };
            let k = r.key();
            if !same_netns
                || changed.contains_key(&k)
                || extra.contains_key(&k)
                || waiting.contains(&k)
            {
                continue;
            }
            let reason = format!(
                "re-applied: {} {} is removed, and the kernel drops routes through it",
                c.kind, c.title
            );
            extra.insert(k, change(Action::Update, r, None, vec![], Some(reason)));
        }
    }
    changes.extend(extra.into_values());
}

fn diff_link(topology: &str, r: &Resource, d: &LinkRes, observed: &Observed, out: &mut Diff) {
    // Each name the resource needs must be free or already ours.
    let names = std::iter::once(&d.end.name).chain(d.peer.as_ref().map(|p| &p.name));
    for name in names {
        if let Some(o) = observed.link(name) {
            match link_owner(o.alias.as_deref(), topology) {
                Owner::Ours => {}
                Owner::Unmarked => {
                    out.conflicts.push(Conflict {
                        key: r.key(),
                        message: format!(
                            "a {} named `{name}` already exists and netloom does not own it (it has no netloom mark)",
                            o.kind
                        ),
                        help: format!("rename `{name}` in the topology, or remove or rename the existing link"),
                    });
                    return;
                }
                Owner::Topology(t) => {
                    out.conflicts.push(Conflict {
                        key: r.key(),
                        message: format!("link `{name}` belongs to topology `{t}`"),
                        help: format!("pick another name, or remove it from topology `{t}` first"),
                    });
                    return;
                }
            }
        }
    }
    let Some(o) = observed.link(&d.end.name) else {
        out.changes
            .push(change(Action::Create, r, None, vec![], None));
        return;
    };
    let cur = observed.link_resource(o);
    let current = Some(Resource::Link(cur.clone()));
    if cur.kind != d.kind {
        let reason = format!("kind changes from {} to {}", cur.kind, d.kind);
        out.changes
            .push(change(Action::Replace, r, current, vec![], Some(reason)));
        return;
    }
    if let Some(dp) = &d.peer {
        let cur_peer = cur.peer.as_ref().map(|p| p.name.clone());
        if cur_peer.as_deref() != Some(dp.name.as_str()) {
            let reason = format!(
                "peer changes from {} to {}",
                cur_peer.unwrap_or_else(|| "(none)".into()),
                dp.name
            );
            out.changes
                .push(change(Action::Replace, r, current, vec![], Some(reason)));
            return;
        }
    }
    let mut fields = vec![];
    end_fields(&mut fields, "", &cur.end, &d.end);
    if let (Some(cp), Some(dp)) = (&cur.peer, &d.peer) {
        end_fields(&mut fields, "peer ", cp, dp);
        let peer_obs = observed.link(&dp.name);
        if peer_obs.is_some_and(|p| link_owner(p.alias.as_deref(), topology) != Owner::Ours) {
            field(
                &mut fields,
                "peer mark",
                &None,
                &Some(crate::state::link_mark(topology)),
            );
        }
    }
    if !fields.is_empty() {
        out.changes
            .push(change(Action::Update, r, current, fields, None));
    }
}

fn end_fields(out: &mut Vec<FieldChange>, prefix: &str, cur: &LinkEnd, want: &LinkEnd) {
    if let Some(m) = want.mtu {
        field(
            out,
            &format!("{prefix}mtu"),
            &cur.mtu.map(|c| c.to_string()),
            &Some(m.to_string()),
        );
    }
    field(
        out,
        &format!("{prefix}up"),
        &Some(cur.up.to_string()),
        &Some(want.up.to_string()),
    );
    field(out, &format!("{prefix}master"), &cur.master, &want.master);
    let a: BTreeSet<_> = cur.addresses.iter().collect();
    let b: BTreeSet<_> = want.addresses.iter().collect();
    for gone in a.difference(&b) {
        out.push(FieldChange {
            field: format!("{prefix}address"),
            from: Some(gone.to_string()),
            to: None,
        });
    }
    for new in b.difference(&a) {
        out.push(FieldChange {
            field: format!("{prefix}address"),
            from: None,
            to: Some(new.to_string()),
        });
    }
}

fn field(out: &mut Vec<FieldChange>, name: &str, from: &Option<String>, to: &Option<String>) {
    if from != to {
        out.push(FieldChange {
            field: name.to_string(),
            from: from.clone(),
            to: to.clone(),
        });
    }
}

/// Deleting an observed object.
fn deletion(res: Resource) -> Change {
    change(Action::Delete, &res, Some(res.clone()), vec![], None)
}

fn change(
    action: Action,
    r: &Resource,
    current: Option<Resource>,
    fields: Vec<FieldChange>,
    reason: Option<String>,
) -> Change {
    Change {
        action,
        key: r.key(),
        kind: r.kind_name(),
        title: r.title(),
        fields,
        reason,
        desired: (action != Action::Delete).then(|| r.clone()),
        current,
    }
}

pub fn proto_name(p: u8) -> String {
    let name = match p {
        1 => "redirect",
        2 => "kernel",
        3 => "boot",
        4 => "static",
        11 => "zebra",
        12 => "bird",
        16 => "dhcp",
        186 => "bgp",
        NETLOOM_PROTO => "netloom",
        _ => "",
    };
    if name.is_empty() {
        p.to_string()
    } else {
        format!("{p}, {name}")
    }
}

fn foreign(p: u8) -> &'static str {
    if p == NETLOOM_PROTO {
        ", made by another netloom topology"
    } else {
        ""
    }
}
