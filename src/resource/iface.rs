//! Interfaces netloom puts into containers: a veth to a topology bridge, or
//! one end of a link between two containers. A container that does not run
//! makes its wiring pending; a restarted one has a fresh netns, so its
//! interfaces show up as missing and are made again.

use super::{DiffCx, Kind, Resource, ResourceKey};
use crate::diff::field::{Field, Side, Value, addresses, field};
use crate::diff::{Action, Diff, FieldChange};
use crate::observed::{ContainerNetObs, LinkObs, Observed, managed_addresses};
use crate::ownership::{Ledger, Owner};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;

/// What the other end of a container interface is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum IfacePeer {
    /// A host-side end, in the topology's netns, enslaved to a bridge.
    Bridge { host: String, bridge: String },
    /// The other end of a link, in another container.
    Container {
        container: String,
        name: String,
        addresses: BTreeSet<IpNet>,
    },
    /// Observed only: an interface to delete.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfaceRes {
    pub container: String,
    pub name: String,
    pub mtu: u32,
    pub addresses: BTreeSet<IpNet>,
    pub peer: IfacePeer,
}

impl IfaceRes {
    /// The host end's name, for an interface on a bridge.
    pub fn host_end(&self) -> Option<&str> {
        match &self.peer {
            IfacePeer::Bridge { host, .. } => Some(host),
            IfacePeer::Container { .. } | IfacePeer::Unknown => None,
        }
    }

    /// The containers this interface puts something into.
    pub fn containers(&self) -> impl Iterator<Item = &String> {
        let far = match &self.peer {
            IfacePeer::Container { container, .. } => Some(container),
            IfacePeer::Bridge { .. } | IfacePeer::Unknown => None,
        };
        std::iter::once(&self.container).chain(far)
    }

    /// Both container ends as (container, interface, addresses).
    pub fn ends(&self) -> Vec<(&String, &String, &BTreeSet<IpNet>)> {
        let mut out = vec![(&self.container, &self.name, &self.addresses)];
        if let IfacePeer::Container {
            container,
            name,
            addresses,
        } = &self.peer
        {
            out.push((container, name, addresses));
        }
        out
    }
}

impl Kind for IfaceRes {
    fn key(&self) -> ResourceKey {
        ResourceKey::Iface {
            container: self.container.clone(),
            name: self.name.clone(),
        }
    }

    fn kind_name(&self) -> String {
        match self.peer {
            IfacePeer::Container { .. } => "link".into(),
            IfacePeer::Bridge { .. } | IfacePeer::Unknown => "interface".into(),
        }
    }

    fn title(&self) -> String {
        match &self.peer {
            IfacePeer::Bridge { bridge, .. } => {
                format!("{}:{} (bridge {bridge})", self.container, self.name)
            }
            IfacePeer::Container {
                container, name, ..
            } => format!("{}:{} ↔ {container}:{name}", self.container, self.name),
            IfacePeer::Unknown => format!("{}:{}", self.container, self.name),
        }
    }

    fn delete_rank(&self) -> usize {
        6
    }

    fn diff(&self, r: &Resource, cx: &DiffCx, out: &mut Diff) {
        diff_iface(cx, r, self, out)
    }

    fn details(&self, out: &mut String) {
        let list = |s: &BTreeSet<IpNet>| {
            s.iter()
                .map(|a| a.to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        for (c, n, a) in self.ends() {
            if !a.is_empty() {
                let _ = writeln!(out, "      {c}:{n} addresses: {}", list(a));
            }
        }
    }

    /// The containers, and the ends before they are made (their marks come
    /// in a second request: a crash in between must not orphan them).
    fn claim(&self, ledger: &mut Ledger, _: &Observed) -> bool {
        let mut claimed = false;
        for c in self.containers() {
            claimed |= ledger.wired.insert(c.clone());
        }
        for (c, n, _) in self.ends() {
            claimed |= ledger.ifaces.insert((c.clone(), n.clone()));
        }
        if let Some(h) = self.host_end() {
            claimed |= ledger.links.insert(h.to_string());
        }
        claimed
    }

    fn release(&self, ledger: &mut Ledger) -> bool {
        self.made(Action::Delete, ledger)
    }

    fn made(&self, _: Action, ledger: &mut Ledger) -> bool {
        let mut changed = false;
        for (c, n, _) in self.ends() {
            changed |= ledger.ifaces.remove(&(c.clone(), n.clone()));
        }
        if let Some(h) = self.host_end() {
            changed |= ledger.links.remove(h);
        }
        changed
    }

    fn settle(&self, _: &Ledger, ledger: &mut Ledger) {
        ledger.wired.extend(self.containers().cloned());
    }

    fn live(&self, o: &Observed) -> String {
        let mut parts: Vec<String> = self
            .ends()
            .into_iter()
            .map(
                |(c, n, _)| match o.containers.get(c).and_then(|cn| cn.link(n)) {
                    Some(x) => format!("{c}:{}", super::link::link_state(x)),
                    None => format!("{c}:{n}: absent"),
                },
            )
            .collect();
        if let Some(host) = self.host_end() {
            parts.push(match o.link(host) {
                Some(x) => format!("host {}", super::link::link_state(x)),
                None => format!("host {host}: absent"),
            });
        }
        parts.join("; ")
    }
}

/// Why a container cannot be wired.
pub(super) enum NotNow {
    /// Not running (yet): waits.
    Pending(String),
    /// Never: a conflict.
    Refused(String),
}

pub(super) fn not_now(r: &Resource, why: NotNow, out: &mut Diff) {
    match why {
        NotNow::Pending(reason) => out.pending(r, reason),
        NotNow::Refused(message) => out.conflict(
            r,
            message,
            "wire a container with its own network namespace (any --network but host or container:…)".into(),
        ),
    }
}

/// The container's netns as observed, or why it cannot be wired now.
pub(super) fn netns_of<'a>(
    observed: &'a Observed,
    container: &str,
) -> Result<&'a ContainerNetObs, NotNow> {
    if let Some(n) = observed.containers.get(container) {
        return match &n.shared_with {
            None => Ok(n),
            Some(with) => Err(NotNow::Refused(format!(
                "container `{container}` shares its network namespace with {with}"
            ))),
        };
    }
    Err(NotNow::Pending(match observed.container(container) {
        None => {
            let names = observed
                .docker
                .iter()
                .flat_map(|d| d.containers.iter().map(|c| c.name.as_str()));
            match crate::diag::did_you_mean(container, names) {
                Some(s) => format!("container `{container}` does not exist (did you mean `{s}`?)"),
                None => format!("container `{container}` does not exist"),
            }
        }
        Some(c) if c.running() => {
            format!("container `{container}` has no network namespace yet")
        }
        Some(c) => format!(
            "container `{container}` exists but is not running (status: {})",
            c.state
        ),
    }))
}

/// Why an interface in a container cannot be taken over.
struct NotOurs(String);

/// Compares one container end; an unmarked interface of that name is a
/// conflict, unless the ledger says this topology was making it.
fn end_fields(
    cx: &DiffCx,
    container: &str,
    side: Side,
    l: &LinkObs,
    mtu: u32,
    want: &BTreeSet<IpNet>,
    fields: &mut Vec<FieldChange>,
) -> Result<(), NotOurs> {
    let topology = cx.topology;
    match cx.observed.iface_owner(container, l, topology) {
        Owner::Ours => {}
        Owner::Topology(other) => {
            return Err(NotOurs(format!(
                "an interface named `{}` already exists there and belongs to topology {other}",
                l.name
            )));
        }
        Owner::Unmarked => {
            return Err(NotOurs(format!(
                "an interface named `{}` already exists there and netloom does not own it",
                l.name
            )));
        }
    }
    let (from, to) = (Value::Int(l.mtu), Value::Int(mtu));
    field(fields, side, Field::Mtu, Some(from), Some(to));
    let (from, to) = (Value::Bool(l.up), Value::Bool(true));
    field(fields, side, Field::Up, Some(from), Some(to));
    addresses(fields, side, &managed_addresses(l), want);
    let mark = crate::ownership::link_mark(topology);
    if l.alias.as_deref() != Some(mark.as_str()) {
        field(fields, side, Field::Mark, None, Some(Value::Text(mark)));
    }
    Ok(())
}

fn diff_iface(cx: &DiffCx, r: &Resource, d: &IfaceRes, out: &mut Diff) {
    let (topology, observed) = (cx.topology, cx.observed);
    let here = match netns_of(observed, &d.container) {
        Ok(n) => n,
        Err(why) => return not_now(r, why, out),
    };
    let there = match &d.peer {
        IfacePeer::Container { container, .. } => match netns_of(observed, container) {
            Ok(n) => Some(n),
            Err(why) => return not_now(r, why, out),
        },
        IfacePeer::Bridge { .. } | IfacePeer::Unknown => None,
    };
    let conflict = |message: String, out: &mut Diff| {
        out.conflict(
            r,
            message,
            "rename the interface in the topology, or remove the existing one".into(),
        )
    };
    let Some(l) = here.link(&d.name) else {
        // Check the far end's name is free (or ours, left from a broken pair).
        if let (
            IfacePeer::Container {
                container, name, ..
            },
            Some(t),
        ) = (&d.peer, there)
            && let Some(o) = t.link(name)
        {
            let whose = match observed.iface_owner(container, o, topology) {
                Owner::Ours => None,
                Owner::Topology(other) => Some(format!("that belongs to topology {other}")),
                Owner::Unmarked => Some("netloom does not own".to_string()),
            };
            if let Some(whose) = whose {
                return conflict(
                    format!("container `{container}` already has an interface `{name}` {whose}"),
                    out,
                );
            }
            // Ours, left from the old pair (this end went with a restarted
            // container's old netns, which the kernel tears down
            // asynchronously): making the pair deletes it, and the kernel
            // drops the routes through it in that container. A replacement,
            // as when the ends are the other way round, so the cascade
            // re-applies those routes in this same plan.
            let current = Some(Resource::Iface(IfaceRes {
                peer: IfacePeer::Unknown,
                ..d.clone()
            }));
            let reason = format!("this end is gone; {container}:{name} is left from the old pair");
            return out.change(Action::Replace, r, current, vec![], Some(reason));
        }
        return out.push(Action::Create, r);
    };
    let mut fields = vec![];
    if let Err(NotOurs(m)) = end_fields(
        cx,
        &d.container,
        Side::Own,
        l,
        d.mtu,
        &d.addresses,
        &mut fields,
    ) {
        return conflict(format!("in container `{}`: {m}", d.container), out);
    }
    let missing_peer = match &d.peer {
        IfacePeer::Bridge { host, bridge } => match observed.link(host) {
            None => true,
            Some(h) => {
                let (from, to) = (
                    h.master.clone().map(Value::Text),
                    Value::Text(bridge.clone()),
                );
                field(&mut fields, Side::Host, Field::Master, from, Some(to));
                let (from, to) = (Value::Int(h.mtu), Value::Int(d.mtu));
                field(&mut fields, Side::Host, Field::Mtu, Some(from), Some(to));
                false
            }
        },
        IfacePeer::Container {
            container,
            name,
            addresses,
        } => match there.and_then(|t| t.link(name)) {
            None => true,
            Some(p) => {
                if let Err(NotOurs(m)) =
                    end_fields(cx, container, Side::Peer, p, d.mtu, addresses, &mut fields)
                {
                    return conflict(format!("in container `{container}`: {m}"), out);
                }
                false
            }
        },
        IfacePeer::Unknown => false,
    };
    let current = Some(Resource::Iface(IfaceRes {
        peer: IfacePeer::Unknown,
        ..d.clone()
    }));
    if missing_peer {
        let reason = "the other end is gone".to_string();
        out.change(Action::Replace, r, current, vec![], Some(reason));
    } else if !fields.is_empty() {
        out.change(Action::Update, r, current, fields, None);
    }
}

/// Marked interfaces inside containers that the files no longer describe.
pub(super) fn prune(cx: &DiffCx, out: &mut Diff) {
    let mut keep: HashSet<(&str, &str)> = HashSet::new();
    for r in cx.desired.resources() {
        if let Resource::Iface(i) = r {
            for (c, n, _) in i.ends() {
                keep.insert((c, n));
            }
        }
    }
    for (c, n) in wired_here(cx.observed) {
        for l in &n.links {
            if l.name == "lo"
                || cx.observed.iface_owner(c, l, cx.topology) != Owner::Ours
                || keep.contains(&(c.as_str(), l.name.as_str()))
            {
                continue;
            }
            out.delete(Resource::Iface(IfaceRes {
                container: c.clone(),
                name: l.name.clone(),
                mtu: l.mtu,
                addresses: Default::default(),
                peer: IfacePeer::Unknown,
            }));
        }
    }
}

/// The observed container netns that are their container's alone: the
/// host's links, or another container's wiring, are not leftovers of its own.
pub(super) fn wired_here(o: &Observed) -> impl Iterator<Item = (&String, &ContainerNetObs)> {
    o.containers
        .iter()
        .filter(|(_, n)| n.shared_with.is_none() && n.same_netns_as.is_none())
}

/// Deleting a container interface takes its host end along: listing that
/// end as a second deletion of a link by its derived name only confuses.
pub(super) fn drop_host_end_deletions(cx: &DiffCx, out: &mut Diff) {
    let host_ends: HashSet<String> = out
        .changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .filter_map(|c| c.current.as_deref()?.as_iface())
        .map(|i| crate::naming::host_end(cx.topology, &i.container, &i.name))
        .collect();
    out.changes.retain(|c| {
        !(c.action == Action::Delete
            && matches!(c.current.as_deref(), Some(Resource::Link(l)) if host_ends.contains(&l.end.name)))
    });
}
