//! The Docker half of the diff: networks (by label, acted on by id) and
//! container attachments, plus the live preflight checks.

use super::{Action, Conflict, Diff, FieldChange, Pending, change, deletion};
use crate::graph::DesiredGraph;
use crate::state::{
    AttachKey, AttachRes, DockerObs, HASH_LABEL, NetworkObs, NetworkRes, Observed, Resource,
    ResourceKey, TOPOLOGY_LABEL,
};
use ipnet::IpNet;
use std::collections::HashSet;

fn owner(n: &NetworkObs) -> Option<&str> {
    n.all_labels.get(TOPOLOGY_LABEL).map(String::as_str)
}

fn docker_of(observed: &Observed) -> Option<&DockerObs> {
    observed.docker.as_ref()
}

fn unobserved(r: &Resource, out: &mut Diff) {
    out.conflicts.push(Conflict {
        key: r.key(),
        message: "the Docker daemon was not observed".into(),
        help: "run netloom where it can reach dockerd".into(),
    });
}

pub(super) fn network(
    topology: &str,
    r: &Resource,
    d: &NetworkRes,
    observed: &Observed,
    out: &mut Diff,
) {
    let Some(docker) = docker_of(observed) else {
        return unobserved(r, out);
    };
    let same_name: Vec<&NetworkObs> = docker
        .networks
        .iter()
        .filter(|n| n.net.name == d.name)
        .collect();
    let ours: Vec<&NetworkObs> = same_name
        .iter()
        .copied()
        .filter(|n| owner(n) == Some(topology))
        .collect();
    if d.external {
        if same_name.is_empty() {
            out.conflicts.push(Conflict {
                key: r.key(),
                message: format!("external network `{}` does not exist", d.name),
                help:
                    "create it first, or drop `external = true` so that netloom creates and owns it"
                        .into(),
            });
        }
        return;
    }
    match ours.as_slice() {
        [] => {
            if let Some(other) = same_name.first() {
                let message = match owner(other) {
                    Some(t) => format!("Docker network `{}` belongs to topology `{t}`", d.name),
                    None => format!(
                        "a Docker network named `{}` already exists and netloom does not own it (no {TOPOLOGY_LABEL} label)",
                        d.name
                    ),
                };
                out.conflicts.push(Conflict {
                    key: r.key(),
                    message,
                    help: "rename the network in the topology, or remove the existing one, or declare it with external = true to attach to it".to_string(),
                });
                return;
            }
            preflight(topology, d, None, docker, r, out);
            out.changes
                .push(change(Action::Create, r, None, vec![], None));
        }
        [o] => {
            if o.all_labels.get(HASH_LABEL) == Some(&d.config_hash()) {
                return;
            }
            let reason = replace_reason(&o.net, d);
            if !preflight(topology, d, Some(o), docker, r, out) {
                return;
            }
            let cur = Resource::Network(o.net.clone());
            out.changes
                .push(change(Action::Replace, r, Some(cur), vec![], Some(reason)));
        }
        many => out.conflicts.push(Conflict {
            key: r.key(),
            message: format!(
                "{} Docker networks named `{}` carry this topology's label",
                many.len(),
                d.name
            ),
            help: "remove all but one of them with `docker network rm ID`".into(),
        }),
    }
}

/// Why a network must be recreated, in the user's terms.
fn replace_reason(cur: &NetworkRes, want: &NetworkRes) -> String {
    let mut why = vec![];
    let mut diff = |what: &str, a: String, b: String| {
        if a != b {
            why.push(format!("{what} {a} → {b}"));
        }
    };
    let nets = |v: &[IpNet]| {
        let mut s: Vec<String> = v.iter().map(|n| n.to_string()).collect();
        s.sort();
        format!("[{}]", s.join(", "))
    };
    diff("driver", cur.driver.clone(), want.driver.clone());
    diff("subnets", nets(&cur.subnets), nets(&want.subnets));
    if !want.gateways.is_empty() {
        diff(
            "gateways",
            format!("{:?}", cur.gateways),
            format!("{:?}", want.gateways),
        );
    }
    diff(
        "internal",
        cur.internal.to_string(),
        want.internal.to_string(),
    );
    diff(
        "options",
        format!("{:?}", cur.options),
        format!("{:?}", want.options),
    );
    diff(
        "labels",
        format!("{:?}", cur.labels),
        format!("{:?}", want.labels),
    );
    if why.is_empty() {
        "configuration changed; Docker cannot change a network in place".into()
    } else {
        format!(
            "{}; Docker cannot change a network in place",
            why.join(", ")
        )
    }
}

/// Checks that need the live state: subnets colliding with other Docker
/// networks or host routes, and IPv6 on a host that has it disabled.
fn preflight(
    topology: &str,
    d: &NetworkRes,
    replacing: Option<&NetworkObs>,
    docker: &DockerObs,
    r: &Resource,
    out: &mut Diff,
) -> bool {
    let before = out.conflicts.len();
    // Routes Docker made for its own bridges are reported as the network itself.
    // A bridge named with `com.docker.network.bridge.name` is Docker's too.
    let docker_bridges: HashSet<String> = docker
        .networks
        .iter()
        .filter_map(|n| {
            let named = n.net.options.get("com.docker.network.bridge.name").cloned();
            let id = n.net.id.as_ref()?;
            Some(named.unwrap_or_else(|| format!("br-{}", &id[..id.len().min(12)])))
        })
        .chain(["docker0".to_string()])
        .collect();
    for s in &d.subnets {
        for n in &docker.networks {
            if replacing.is_some_and(|o| o.net.id == n.net.id) {
                continue;
            }
            if let Some(t) = n.net.subnets.iter().find(|t| overlaps(s, t)) {
                let whose = match owner(n) {
                    Some(o) if o == topology => {
                        " (this topology's, not in the files any more)".to_string()
                    }
                    Some(o) => format!(" (topology {o})"),
                    None => String::new(),
                };
                out.conflicts.push(Conflict {
                    key: r.key(),
                    message: format!(
                        "subnet {s} collides with {t} of Docker network `{}`{whose}",
                        n.net.name
                    ),
                    help: "pick a subnet no other network uses".into(),
                });
            }
        }
        for h in &docker.host_routes {
            if h.to.prefix_len() == 0 || h.dev.as_ref().is_some_and(|d| docker_bridges.contains(d))
            {
                continue;
            }
            if overlaps(s, &h.to) {
                out.conflicts.push(Conflict {
                    key: r.key(),
                    message: format!(
                        "subnet {s} collides with the host route to {}{}",
                        h.to,
                        h.dev
                            .as_ref()
                            .map(|d| format!(" dev {d}"))
                            .unwrap_or_default()
                    ),
                    help: "pick a subnet the host does not route elsewhere".into(),
                });
            }
        }
        if matches!(s, IpNet::V6(_)) && docker.ipv6_disabled {
            out.conflicts.push(Conflict {
                key: r.key(),
                message: format!("subnet {s} is IPv6, but IPv6 is disabled on this host (net.ipv6.conf.all.disable_ipv6 = 1)"),
                help: "enable IPv6 (sysctl -w net.ipv6.conf.all.disable_ipv6=0) or drop the IPv6 subnet".into(),
            });
        }
    }
    out.conflicts.len() == before
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

pub(super) fn attachment(
    r: &Resource,
    d: &AttachRes,
    managed: bool,
    observed: &Observed,
    out: &mut Diff,
) {
    let Some(docker) = docker_of(observed) else {
        return unobserved(r, out);
    };
    let pending = |reason: String, out: &mut Diff| {
        out.pending.push(Pending {
            key: r.key(),
            kind: r.kind_name(),
            title: r.title(),
            reason,
        })
    };
    let Some(c) = docker.containers.iter().find(|c| c.name == d.key.container) else {
        let names = docker.containers.iter().map(|c| c.name.as_str());
        let hint = crate::diag::did_you_mean(&d.key.container, names)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        return pending(
            format!("container `{}` does not exist{hint}", d.key.container),
            out,
        );
    };
    if c.state != "running" {
        return pending(
            format!(
                "container `{}` exists but is not running (status: {})",
                d.key.container,
                if c.state.is_empty() {
                    "unknown"
                } else {
                    &c.state
                }
            ),
            out,
        );
    }
    let mode = c.network_mode.as_str();
    if mode == "none" || mode == "host" || mode.starts_with("container:") {
        out.conflicts.push(Conflict {
            key: r.key(),
            message: format!(
                "container `{}` runs with --network {mode}: Docker cannot connect it to other networks",
                d.key.container
            ),
            help: "start it on a bridge network to use `networks.*`, or wire it with `interfaces` / [[link]]".into(),
        });
        return;
    }
    let Some(ep) = c.endpoints.get(&d.key.network) else {
        out.changes
            .push(change(Action::Create, r, None, vec![], None));
        return;
    };
    if ep.stale {
        // A connect replaces the broken entry.
        out.changes.push(change(
            Action::Create,
            r,
            None,
            vec![],
            Some("Docker lists the network but the container has no endpoint on it (a connect that failed)".into()),
        ));
        return;
    }
    let mut fields = vec![];
    if ep.ipv4 != d.ipv4 {
        fields.push(FieldChange {
            field: "ipv4".into(),
            from: ep.ipv4.map(|a| a.to_string()),
            to: d.ipv4.map(|a| a.to_string()),
        });
    }
    if ep.ipv6 != d.ipv6 {
        fields.push(FieldChange {
            field: "ipv6".into(),
            from: ep.ipv6.map(|a| a.to_string()),
            to: d.ipv6.map(|a| a.to_string()),
        });
    }
    if ep.aliases != d.aliases {
        let fmt = |s: &std::collections::BTreeSet<String>| {
            s.iter().cloned().collect::<Vec<_>>().join(", ")
        };
        fields.push(FieldChange {
            field: "aliases".into(),
            from: Some(fmt(&ep.aliases)),
            to: Some(fmt(&d.aliases)),
        });
    }
    if fields.is_empty() {
        return;
    }
    let ours = managed
        || (observed.ledger.attachments.contains(&d.key)
            && observed
                .ledger
                .attached_id(&d.key)
                .is_none_or(|id| id == c.id));
    if !ours {
        out.conflicts.push(Conflict {
            key: r.key(),
            message: format!(
                "container `{}` is already connected to `{}` with other settings, and netloom did not connect it",
                d.key.container, d.key.network
            ),
            help: "disconnect it (docker network disconnect), or match its settings in the file".into(),
        });
        return;
    }
    let cur = Resource::Attachment(AttachRes {
        key: d.key.clone(),
        ipv4: ep.ipv4,
        ipv6: ep.ipv6,
        aliases: ep.aliases.clone(),
    });
    out.changes
        .push(change(Action::Update, r, Some(cur), fields, None));
}

/// Attachments netloom made that the files no longer hold, and networks
/// carrying this topology's label that the files no longer declare.
pub(super) fn prune(
    topology: &str,
    desired: &HashSet<ResourceKey>,
    observed: &Observed,
    out: &mut Diff,
) {
    let Some(docker) = docker_of(observed) else {
        return;
    };
    for k in &observed.ledger.attachments {
        if desired.contains(&ResourceKey::Attachment(k.clone())) {
            continue;
        }
        let Some(c) = docker.containers.iter().find(|c| c.name == k.container) else {
            continue;
        };
        // Re-created under the same name: its endpoints are not netloom's.
        if observed.ledger.attached_id(k).is_some_and(|id| id != c.id) {
            continue;
        }
        let Some(ep) = c.endpoints.get(&k.network) else {
            continue;
        };
        let res = Resource::Attachment(AttachRes {
            key: k.clone(),
            ipv4: ep.ipv4,
            ipv6: ep.ipv6,
            aliases: ep.aliases.clone(),
        });
        out.changes.push(deletion(res));
    }
    for n in &docker.networks {
        if owner(n) == Some(topology)
            && !desired.contains(&ResourceKey::Network {
                name: n.net.name.clone(),
            })
        {
            let res = Resource::Network(n.net.clone());
            out.changes.push(change(
                Action::Delete,
                &res,
                Some(res.clone()),
                vec![],
                None,
            ));
        }
    }
}

/// A static address that another container already holds on the network:
/// Docker would refuse the connect only after disconnecting the old
/// endpoint. Holders whose attachment this plan deletes (deletions run
/// first), networks it replaces (every endpoint goes) and broken entries do
/// not count. A holder this plan moves elsewhere still does: Docker changes
/// endpoints one at a time, so a move into a freed address needs two applies.
pub(super) fn address_clashes(observed: &Observed, out: &mut Diff) {
    let Some(docker) = docker_of(observed) else {
        return;
    };
    let replaced: HashSet<&str> = out
        .changes
        .iter()
        .filter(|c| c.action == Action::Replace)
        .filter_map(|c| match &c.desired {
            Some(Resource::Network(n)) => Some(n.name.as_str()),
            _ => None,
        })
        .collect();
    let detached = detached(out);
    let mut found = vec![];
    for c in &out.changes {
        let (Action::Create | Action::Update, Some(Resource::Attachment(a))) =
            (c.action, &c.desired)
        else {
            continue;
        };
        if replaced.contains(a.key.network.as_str()) {
            continue;
        }
        let wanted: Vec<String> = a
            .ipv4
            .map(|x| x.to_string())
            .into_iter()
            .chain(a.ipv6.map(|x| x.to_string()))
            .collect();
        for holder in docker
            .containers
            .iter()
            .filter(|h| h.name != a.key.container)
        {
            let Some(ep) = holder.endpoints.get(&a.key.network) else {
                continue;
            };
            let key = AttachKey {
                container: holder.name.clone(),
                network: a.key.network.clone(),
            };
            if ep.stale || detached.contains(&key) {
                continue;
            }
            let held: Vec<String> = ep
                .address
                .iter()
                .chain(ep.address6.iter())
                .cloned()
                .chain(ep.ipv4.map(|x| x.to_string()))
                .chain(ep.ipv6.map(|x| x.to_string()))
                .collect();
            let Some(addr) = wanted.iter().find(|w| held.contains(w)) else {
                continue;
            };
            found.push(Conflict {
                key: c.key.clone(),
                message: format!(
                    "{addr} on network `{}` is already in use by container `{}`",
                    a.key.network, holder.name
                ),
                help: format!(
                    "pick another address for `{}`, or free it first (move or disconnect `{}` and apply) and then apply this",
                    a.key.container, holder.name
                ),
            });
        }
    }
    out.conflicts.extend(found);
}

/// The attachments this plan disconnects (deletions run first).
fn detached(out: &Diff) -> HashSet<AttachKey> {
    out.changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .filter_map(|c| match &c.current {
            Some(Resource::Attachment(a)) => Some(a.key.clone()),
            _ => None,
        })
        .collect()
}

/// Names, on a network's deletion or replacement, the containers whose
/// endpoints go with it and that no other change in the plan accounts for:
/// Docker cannot remove a network with endpoints, so netloom disconnects
/// them, and after a replacement reconnects only the declared ones.
pub(super) fn endpoint_notes(desired: &DesiredGraph, observed: &Observed, out: &mut Diff) {
    let Some(docker) = docker_of(observed) else {
        return;
    };
    let detached = detached(out);
    for c in out.changes.iter_mut() {
        let Some(Resource::Network(n)) = &c.current else {
            continue;
        };
        let on_it = |k: &AttachKey| match c.action {
            Action::Delete => detached.contains(k),
            _ => desired.get(&ResourceKey::Attachment(k.clone())).is_some(),
        };
        let others: Vec<&str> = docker
            .containers
            .iter()
            .filter(|ctr| {
                ctr.endpoints
                    .iter()
                    .any(|(_, e)| Some(&e.network_id) == n.id.as_ref())
            })
            .filter(|ctr| {
                !on_it(&AttachKey {
                    container: ctr.name.clone(),
                    network: n.name.clone(),
                })
            })
            .map(|ctr| ctr.name.as_str())
            .collect();
        if others.is_empty() {
            continue;
        }
        let note = match c.action {
            Action::Delete => format!("disconnects first: {}", others.join(", ")),
            _ => format!(
                "disconnects and does not reconnect (not declared on it): {}",
                others.join(", ")
            ),
        };
        c.reason = Some(match c.reason.take() {
            Some(r) => format!("{r}; {note}"),
            None => note,
        });
    }
}
