//! Desired graph vs observed state → changes, conflicts and pending objects.
//!
//! Each kind diffs itself (`resource::Kind::diff`); this module holds the
//! change types and what runs across kinds: prune, objects waiting behind
//! pending ones, and dependents re-applied after a replacement.
//!
//! Only objects that carry this topology's mark are ever updated or
//! deleted; a desired object whose name or key is held by anything else is a
//! conflict, reported before any change is made.

pub mod field;

pub use field::FieldChange;

use crate::graph::DesiredGraph;
use crate::observed::Observed;
use crate::resource::{DiffCx, Resource, ResourceKey};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};

#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, schemars::JsonSchema,
)]
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

#[derive(Debug, Clone, PartialEq, Eq, Serialize, schemars::JsonSchema)]
pub struct Change {
    pub action: Action,
    pub key: ResourceKey,
    pub kind: String,
    pub title: String,
    #[serde(skip_serializing_if = "Vec::is_empty", default)]
    #[schemars(with = "Vec<crate::diff::field::FieldChangeDoc>")]
    pub fields: Vec<FieldChange>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// The object to create or converge to.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::resource::ResourceDoc>")]
    pub desired: Option<Box<Resource>>,
    /// The object as observed (updates, replacements, deletions).
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schemars(with = "Option<crate::resource::ResourceDoc>")]
    pub current: Option<Box<Resource>>,
}

impl Change {
    /// The object this change is about: the desired one, or for a deletion
    /// the observed one.
    pub fn resource(&self) -> Option<&Resource> {
        self.desired.as_deref().or(self.current.as_deref())
    }

    /// "Update with no fields": set again, unchanged, because the kernel
    /// may have dropped it with something it depended on.
    pub fn is_reapply(&self) -> bool {
        self.action == Action::Update && self.fields.is_empty()
    }

    /// `+ bridge br0`: how logs and failure reports name a step.
    pub fn step_name(&self) -> String {
        format!("{} {} {}", self.action.symbol(), self.kind, self.title)
    }

    /// `~ bridge br0 mtu 1500→9000, +address 10.0.0.2/24`: a log line.
    /// At most `LOG_FIELDS` fields are spelled out: a thousand learned
    /// routes make one readable line, not 50 KB of it.
    pub fn log_line(&self) -> String {
        const LOG_FIELDS: usize = 8;
        let mut fields: Vec<String> = self
            .fields
            .iter()
            .take(LOG_FIELDS)
            .map(FieldChange::compact)
            .collect();
        if self.fields.len() > LOG_FIELDS {
            fields.push(format!("… {} more", self.fields.len() - LOG_FIELDS));
        }
        if fields.is_empty() {
            self.step_name()
        } else {
            format!("{} {}", self.step_name(), fields.join(", "))
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Conflict {
    pub key: ResourceKey,
    pub message: String,
    pub help: String,
}

/// A desired object that cannot be made yet, and why (a container that is
/// not running). Not an error: `watch` makes it when it can.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
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

impl Diff {
    /// A change with nothing but its action.
    pub fn push(&mut self, action: Action, r: &Resource) {
        self.change(action, r, None, vec![], None)
    }

    pub fn change(
        &mut self,
        action: Action,
        r: &Resource,
        current: Option<Resource>,
        fields: Vec<FieldChange>,
        reason: Option<String>,
    ) {
        self.changes
            .push(change(action, r, current, fields, reason))
    }

    /// Deleting an observed object.
    pub fn delete(&mut self, res: Resource) {
        let c = change(Action::Delete, &res, Some(res.clone()), vec![], None);
        self.changes.push(c)
    }

    pub fn conflict(&mut self, r: &Resource, message: String, help: String) {
        self.conflicts.push(Conflict {
            key: r.key(),
            message,
            help,
        })
    }

    pub fn pending(&mut self, r: &Resource, reason: String) {
        self.pending.push(Pending {
            key: r.key(),
            kind: r.kind_name(),
            title: r.title(),
            reason,
        })
    }
}

pub fn diff(topology: &str, desired: &DesiredGraph, observed: &Observed) -> Diff {
    diff_within(topology, desired, observed, None)
}

/// As `diff`, comparing only the resources of the `only` backends (all
/// when `None`); prunes still look at everything observed. Verification
/// after an apply that changed one backend's objects compares those.
pub fn diff_within(
    topology: &str,
    desired: &DesiredGraph,
    observed: &Observed,
    only: Option<&std::collections::BTreeSet<crate::resource::BackendId>>,
) -> Diff {
    let mut out = Diff::default();
    // Keys are built once each (a key is a few strings; sorting by a key
    // built per comparison was N log N of them).
    let mut resources: Vec<(ResourceKey, &Resource)> =
        desired.resources().map(|r| (r.key(), r)).collect();
    resources.sort_unstable_by(|a, b| a.0.cmp(&b.0));
    let cx = DiffCx {
        topology,
        desired,
        observed,
    };
    for (_, r) in &resources {
        if only.is_some_and(|o| !o.contains(&r.backend())) {
            continue;
        }
        r.kind().diff(r, &cx, &mut out);
    }
    crate::resource::prune_all(&cx, &mut out);
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
            out.pending(dep, format!("needs {what}, which is pending"));
            queue.push((k, format!("{} {}", dep.kind_name(), dep.title())));
        }
    }
}

/// A replaced link takes its ports' enslavement and its routes with it; a
/// link that loses addresses takes the routes through them. Re-apply those
/// dependents even though they look unchanged now.
fn cascade(desired: &DesiredGraph, changes: &mut Vec<Change>, waiting: &HashSet<ResourceKey>) {
    let changed: HashSet<ResourceKey> = changes.iter().map(|c| c.key.clone()).collect();
    let mut extra: BTreeMap<ResourceKey, Change> = BTreeMap::new();
    let skip = |k: &ResourceKey, extra: &BTreeMap<ResourceKey, Change>| {
        changed.contains(k) || extra.contains_key(k) || waiting.contains(k)
    };
    for c in changes.iter() {
        let lost = lost_subnets(c);
        if c.action != Action::Replace && lost.is_empty() {
            continue;
        }
        for dep in desired.dependents(&c.key) {
            let k = dep.key();
            if skip(&k, &extra) {
                continue;
            }
            let affected = match dep {
                Resource::Rule(_) => false, // rules name interfaces, they survive
                _ if c.action == Action::Replace => true,
                Resource::Route(r) => r
                    .via
                    .into_iter()
                    .chain(r.nexthops.iter().map(|h| h.via))
                    .any(|v| lost.iter().any(|n| n.contains(&v))),
                Resource::Netns(_)
                | Resource::Link(_)
                | Resource::Network(_)
                | Resource::Attachment(_)
                | Resource::Iface(_)
                | Resource::ContainerRoute(_)
                | Resource::Loopback(_)
                | Resource::Sysctl(_)
                | Resource::Cni(_)
                | Resource::Service(_)
                | Resource::Bgp(_) => false,
            };
            if affected {
                let reason = format!("re-applied: depends on {} {}", c.kind, c.title);
                extra.insert(k, change(Action::Update, dep, None, vec![], Some(reason)));
            }
        }
    }
    // Deleting an interface drops the routes that went through it, in its
    // netns and, for a link between containers, in the peer's; which ones is
    // not known from here, so re-apply them all (an idempotent set each).
    for c in changes.iter().filter(|c| c.action == Action::Delete) {
        let Some(cur) = c.current.as_deref() else {
            continue;
        };
        let in_containers = match cur {
            Resource::Link(_) => false,
            Resource::Iface(_) => true,
            Resource::Netns(_)
            | Resource::Route(_)
            | Resource::Rule(_)
            | Resource::Network(_)
            | Resource::Attachment(_)
            | Resource::ContainerRoute(_)
            | Resource::Loopback(_)
            | Resource::Sysctl(_)
            | Resource::Cni(_)
            | Resource::Service(_)
            | Resource::Bgp(_) => continue,
        };
        for r in desired.resources() {
            // Its peer may sit in another container, and which one is
            // not known for an interface found only in the kernel.
            let same_netns = match r {
                Resource::Route(_) => !in_containers,
                Resource::ContainerRoute(_) => in_containers,
                Resource::Netns(_)
                | Resource::Link(_)
                | Resource::Rule(_)
                | Resource::Network(_)
                | Resource::Attachment(_)
                | Resource::Iface(_)
                | Resource::Loopback(_)
                | Resource::Sysctl(_)
                | Resource::Cni(_)
                | Resource::Service(_)
                | Resource::Bgp(_) => false,
            };
            let k = r.key();
            if !same_netns || skip(&k, &extra) {
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

/// Subnets a link loses (no address left in them): the kernel flushes
/// routes whose gateway was there.
fn lost_subnets(c: &Change) -> Vec<ipnet::IpNet> {
    let kept: Vec<ipnet::IpNet> = c
        .desired
        .as_deref()
        .and_then(Resource::as_link)
        .map(|l| {
            let peer = l.peer.iter().flat_map(|p| p.addresses.iter());
            l.end
                .addresses
                .iter()
                .chain(peer)
                .map(|a| a.trunc())
                .collect()
        })
        .unwrap_or_default();
    c.fields
        .iter()
        .filter_map(FieldChange::lost_net)
        .map(|n| n.trunc())
        .filter(|n| !kept.contains(n))
        .collect()
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
        desired: (action != Action::Delete).then(|| Box::new(r.clone())),
        current: current.map(Box::new),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::diff::field::{Field, Side, Value};
    use crate::resource::bgp::BgpKey;

    #[test]
    fn a_log_line_names_a_few_fields_and_counts_the_rest() {
        let route = |i: usize| {
            FieldChange::new(
                Side::Own,
                Field::Route,
                None,
                Some(Value::Text(format!("10.0.{i}.0/24 via 10.9.0.1"))),
            )
        };
        let mut c = Change {
            action: Action::Update,
            key: ResourceKey::Bgp(BgpKey::Routes { table: 254 }),
            kind: "bgp routes".into(),
            title: "table 254".into(),
            fields: (0..3).map(route).collect(),
            reason: None,
            desired: None,
            current: None,
        };
        assert_eq!(
            c.log_line(),
            "~ bgp routes table 254 +route 10.0.0.0/24 via 10.9.0.1, \
             +route 10.0.1.0/24 via 10.9.0.1, +route 10.0.2.0/24 via 10.9.0.1"
        );
        c.fields = (0..1000).map(route).collect();
        let line = c.log_line();
        assert!(
            line.ends_with("+route 10.0.7.0/24 via 10.9.0.1, … 992 more"),
            "{line}"
        );
        assert!(line.len() < 400, "{line}");
    }
}
