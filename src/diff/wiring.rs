//! The diff of direct container wiring: interfaces and links inside
//! container netns, and routes there. A container that does not run makes
//! its wiring pending; a restarted container has a fresh netns, so its
//! interfaces show up as missing and are made again.

use super::{Action, Conflict, Diff, FieldChange, Pending, change, deletion, field};
use crate::state::{
    ContainerNetObs, ContainerRouteRes, IfacePeer, IfaceRes, LinkObs, NETLOOM_PROTO, Observed,
    Owner, Resource, link_owner,
};
use std::collections::HashSet;

/// Why a container cannot be wired.
enum NotNow {
    /// Not running (yet): waits.
    Pending(String),
    /// Never: a conflict.
    Refused(String),
}

fn not_now(r: &Resource, why: NotNow, out: &mut Diff) {
    match why {
        NotNow::Pending(reason) => pend(r, reason, out),
        NotNow::Refused(message) => out.conflicts.push(Conflict {
            key: r.key(),
            message,
            help: "wire a container with its own network namespace (any --network but host or container:…)".into(),
        }),
    }
}

/// The container's netns as observed, or why it cannot be wired now.
fn netns_of<'a>(observed: &'a Observed, container: &str) -> Result<&'a ContainerNetObs, NotNow> {
    if let Some(n) = observed.containers.get(container) {
        return match &n.shared_with {
            None => Ok(n),
            Some(with) => Err(NotNow::Refused(format!(
                "container `{container}` shares its network namespace with {with}"
            ))),
        };
    }
    let state = observed
        .docker
        .as_ref()
        .and_then(|d| d.containers.iter().find(|c| c.name == container))
        .map(|c| c.state.clone());
    Err(NotNow::Pending(match state {
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
        Some(s) if s == "running" => {
            format!("container `{container}` has no network namespace yet")
        }
        Some(s) => format!("container `{container}` exists but is not running (status: {s})"),
    }))
}

fn pend(r: &Resource, reason: String, out: &mut Diff) {
    out.pending.push(Pending {
        key: r.key(),
        kind: r.kind_name(),
        title: r.title(),
        reason,
    });
}

/// Compares one container end; an unmarked interface of that name is a conflict.
fn end_fields(
    topology: &str,
    prefix: &str,
    l: &LinkObs,
    mtu: u32,
    addresses: &std::collections::BTreeSet<ipnet::IpNet>,
    fields: &mut Vec<FieldChange>,
) -> Result<(), String> {
    match link_owner(l.alias.as_deref(), topology) {
        Owner::Ours => {}
        Owner::Topology(other) => {
            return Err(format!(
                "an interface named `{}` already exists there and belongs to topology {other}",
                l.name
            ));
        }
        Owner::Unmarked => {
            return Err(format!(
                "an interface named `{}` already exists there and netloom does not own it",
                l.name
            ));
        }
    }
    field(
        fields,
        &format!("{prefix}mtu"),
        &Some(l.mtu.to_string()),
        &Some(mtu.to_string()),
    );
    field(
        fields,
        &format!("{prefix}up"),
        &Some(l.up.to_string()),
        &Some("true".into()),
    );
    let have: std::collections::BTreeSet<_> = l
        .addresses
        .iter()
        .map(|a| a.net)
        .filter(|n| !crate::state::is_kernel_link_local(n))
        .collect();
    for gone in have.difference(addresses) {
        fields.push(FieldChange {
            field: format!("{prefix}address"),
            from: Some(gone.to_string()),
            to: None,
        });
    }
    for new in addresses.difference(&have) {
        fields.push(FieldChange {
            field: format!("{prefix}address"),
            from: None,
            to: Some(new.to_string()),
        });
    }
    Ok(())
}

pub(super) fn iface(
    topology: &str,
    r: &Resource,
    d: &IfaceRes,
    observed: &Observed,
    out: &mut Diff,
) {
    let here = match netns_of(observed, &d.container) {
        Ok(n) => n,
        Err(why) => return not_now(r, why, out),
    };
    let there = match &d.peer {
        IfacePeer::Container { container, .. } => match netns_of(observed, container) {
            Ok(n) => Some(n),
            Err(why) => return not_now(r, why, out),
        },
        _ => None,
    };
    let conflict = |message: String, out: &mut Diff| {
        out.conflicts.push(Conflict {
            key: r.key(),
            message,
            help: "rename the interface in the topology, or remove the existing one".into(),
        })
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
            let whose = match link_owner(o.alias.as_deref(), topology) {
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
        }
        out.changes
            .push(change(Action::Create, r, None, vec![], None));
        return;
    };
    let mut fields = vec![];
    if let Err(m) = end_fields(topology, "", l, d.mtu, &d.addresses, &mut fields) {
        return conflict(format!("in container `{}`: {m}", d.container), out);
    }
    let missing_peer = match &d.peer {
        IfacePeer::Bridge { host, bridge } => match observed.link(host) {
            None => true,
            Some(h) => {
                field(&mut fields, "host master", &h.master, &Some(bridge.clone()));
                field(
                    &mut fields,
                    "host mtu",
                    &Some(h.mtu.to_string()),
                    &Some(d.mtu.to_string()),
                );
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
                if let Err(m) = end_fields(topology, "peer ", p, d.mtu, addresses, &mut fields) {
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
        out.changes
            .push(change(Action::Replace, r, current, vec![], Some(reason)));
    } else if !fields.is_empty() {
        out.changes
            .push(change(Action::Update, r, current, fields, None));
    }
}

pub(super) fn route(r: &Resource, d: &ContainerRouteRes, observed: &Observed, out: &mut Diff) {
    let here = match netns_of(observed, &d.container) {
        Ok(n) => n,
        Err(why) => return not_now(r, why, out),
    };
    match here.routes.iter().find(|o| o.route.key.to == d.to) {
        None => out
            .changes
            .push(change(Action::Create, r, None, vec![], None)),
        Some(o) if o.protocol != NETLOOM_PROTO => out.conflicts.push(Conflict {
            key: r.key(),
            message: format!(
                "container `{}` already has a route to {} that netloom does not own (protocol {})",
                d.container,
                d.to,
                super::proto_name(o.protocol)
            ),
            help: "remove that route inside the container, or route another prefix".into(),
        }),
        Some(o) if o.route.via != Some(d.via) => {
            let f = vec![FieldChange {
                field: "via".into(),
                from: o.route.via.map(|v| v.to_string()),
                to: Some(d.via.to_string()),
            }];
            out.changes.push(change(Action::Update, r, None, f, None));
        }
        Some(_) => {}
    }
}

/// Marked interfaces and ledgered routes inside containers that the files
/// no longer describe.
pub(super) fn prune(topology: &str, desired: &[&Resource], observed: &Observed, out: &mut Diff) {
    let mut keep: HashSet<(&str, &str)> = HashSet::new();
    let mut routes: HashSet<(&str, ipnet::IpNet)> = HashSet::new();
    for r in desired {
        match r {
            Resource::Iface(i) => {
                keep.insert((&i.container, &i.name));
                if let IfacePeer::Container {
                    container, name, ..
                } = &i.peer
                {
                    keep.insert((container, name));
                }
            }
            Resource::ContainerRoute(cr) => {
                routes.insert((&cr.container, cr.to));
            }
            _ => {}
        }
    }
    let mut gone: HashSet<(String, String)> = HashSet::new();
    for (c, n) in &observed.containers {
        // Not this container's alone: the host's links, or another
        // container's wiring, are not leftovers of its own.
        if n.shared_with.is_some() || n.same_netns_as.is_some() {
            continue;
        }
        for l in &n.links {
            if l.name == "lo"
                || link_owner(l.alias.as_deref(), topology) != Owner::Ours
                || keep.contains(&(c.as_str(), l.name.as_str()))
            {
                continue;
            }
            if gone.contains(&(c.clone(), l.name.clone())) {
                continue;
            }
            gone.insert((c.clone(), l.name.clone()));
            out.changes.push(deletion(Resource::Iface(IfaceRes {
                container: c.clone(),
                name: l.name.clone(),
                mtu: l.mtu,
                addresses: Default::default(),
                peer: IfacePeer::Unknown,
            })));
        }
        for o in &n.routes {
            let key = (c.clone(), o.route.key.to);
            if o.protocol == NETLOOM_PROTO
                && observed.ledger.container_routes.contains(&key)
                && !routes.contains(&(c.as_str(), o.route.key.to))
            {
                out.changes
                    .push(deletion(Resource::ContainerRoute(ContainerRouteRes {
                        container: c.clone(),
                        to: o.route.key.to,
                        via: o.route.via.unwrap_or(o.route.key.to.addr()),
                    })));
            }
        }
    }
}
