//! A container's endpoint on a Docker network. Only attachments netloom
//! made (recorded in the ledger with the container's id) are ever changed
//! or disconnected, unless the network itself is netloom's.

use super::{DiffCx, Kind, Resource, ResourceKey};
use crate::diff::field::{Field, Side, Value};
use crate::diff::{Action, Conflict, Diff, FieldChange};
use crate::observed::Observed;
use crate::ownership::Ledger;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};
use std::fmt::Write as _;
use std::net::{Ipv4Addr, Ipv6Addr};

#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct AttachKey {
    pub container: String,
    pub network: String,
}

/// A container connected to a Docker network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachRes {
    #[serde(flatten)]
    pub key: AttachKey,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    pub aliases: BTreeSet<String>,
}

impl Kind for AttachRes {
    fn key(&self) -> ResourceKey {
        ResourceKey::Attachment(self.key.clone())
    }

    fn kind_name(&self) -> String {
        "attachment".into()
    }

    fn title(&self) -> String {
        format!("{} → {}", self.key.container, self.key.network)
    }

    fn delete_rank(&self) -> usize {
        0
    }

    fn diff(&self, r: &Resource, cx: &DiffCx, out: &mut Diff) {
        diff_attachment(cx, r, self, out)
    }

    fn details(&self, out: &mut String) {
        if let Some(ip) = self.ipv4 {
            let _ = writeln!(out, "      ipv4: {ip}");
        }
        if let Some(ip) = self.ipv6 {
            let _ = writeln!(out, "      ipv6: {ip}");
        }
        if !self.aliases.is_empty() {
            let list: Vec<&str> = self.aliases.iter().map(String::as_str).collect();
            let _ = writeln!(out, "      aliases: {}", list.join(", "));
        }
    }

    /// Recorded before the connect, with the id of the container it is for.
    fn claim(&self, ledger: &mut Ledger, observed: &Observed) -> bool {
        let mut claimed = ledger.attachments.insert(self.key.clone());
        if let Some(c) = observed.container(&self.key.container) {
            ledger.attached_ids.retain(|(k, _)| *k != self.key);
            claimed |= ledger.attached_ids.insert((self.key.clone(), c.id.clone()));
        }
        claimed |= !std::mem::replace(&mut ledger.docker, true);
        claimed
    }

    fn release(&self, ledger: &mut Ledger) -> bool {
        ledger.attachments.remove(&self.key)
    }

    /// An attachment that existed before netloom was asked for it is not
    /// netloom's: only those it made stay recorded.
    fn settle(&self, claimed: &Ledger, ledger: &mut Ledger) {
        if claimed.attachments.contains(&self.key) {
            ledger.attachments.insert(self.key.clone());
            if let Some(id) = claimed.attached_id(&self.key) {
                ledger
                    .attached_ids
                    .insert((self.key.clone(), id.to_string()));
            }
        }
    }

    fn live(&self, o: &Observed) -> String {
        let Some(c) = o.container(&self.key.container) else {
            return format!("container {} absent", self.key.container);
        };
        match c.endpoints.get(&self.key.network) {
            None => format!("container {}, not connected", c.state),
            Some(ep) if ep.stale => format!(
                "container {}, not connected (Docker holds a broken entry for the network)",
                c.state
            ),
            Some(ep) => {
                let aliases: Vec<&str> = ep.aliases.iter().map(String::as_str).collect();
                format!(
                    "container {}, connected, address {}{}",
                    c.state,
                    ep.address.as_deref().unwrap_or("(none)"),
                    if aliases.is_empty() {
                        String::new()
                    } else {
                        format!(", aliases {}", aliases.join(", "))
                    }
                )
            }
        }
    }
}

fn diff_attachment(cx: &DiffCx, r: &Resource, d: &AttachRes, out: &mut Diff) {
    let Some(docker) = cx.observed.docker.as_ref() else {
        return super::network::unobserved(r, out);
    };
    let Some(c) = docker.container(&d.key.container) else {
        let names = docker.containers.iter().map(|c| c.name.as_str());
        let hint = crate::diag::did_you_mean(&d.key.container, names)
            .map(|s| format!(" (did you mean `{s}`?)"))
            .unwrap_or_default();
        let reason = format!("container `{}` does not exist{hint}", d.key.container);
        return out.pending(r, reason);
    };
    if !c.running() {
        let state = c.state.to_string();
        let reason = format!(
            "container `{}` exists but is not running (status: {})",
            d.key.container,
            if state.is_empty() { "unknown" } else { &state }
        );
        return out.pending(r, reason);
    }
    if !c.network_mode.has_own_netns() {
        return out.conflict(
            r,
            format!(
                "container `{}` runs with --network {}: Docker cannot connect it to other networks",
                d.key.container, c.network_mode
            ),
            "start it on a bridge network to use `networks.*`, or wire it with `interfaces` / [[link]]".into(),
        );
    }
    let Some(ep) = c.endpoints.get(&d.key.network) else {
        return out.push(Action::Create, r);
    };
    if ep.stale {
        // A connect replaces the broken entry.
        let reason = "Docker lists the network but the container has no endpoint on it (a connect that failed)";
        return out.change(Action::Create, r, None, vec![], Some(reason.into()));
    }
    let current = AttachRes {
        key: d.key.clone(),
        ipv4: ep.ipv4,
        ipv6: ep.ipv6,
        aliases: ep.aliases.clone(),
    };
    let fields = fields(&current, d);
    if fields.is_empty() {
        return;
    }
    // Attachments to a network netloom manages are netloom's to change.
    let managed = matches!(
        cx.desired.get(&ResourceKey::Network { name: d.key.network.clone() }),
        Some(Resource::Network(n)) if !n.external
    );
    let ledger = &cx.observed.ledger;
    let ours = managed
        || (ledger.attachments.contains(&d.key)
            && ledger.attached_id(&d.key).is_none_or(|id| id == c.id));
    if !ours {
        return out.conflict(
            r,
            format!(
                "container `{}` is already connected to `{}` with other settings, and netloom did not connect it",
                d.key.container, d.key.network
            ),
            "disconnect it (docker network disconnect), or match its settings in the file".into(),
        );
    }
    let cur = Resource::Attachment(current);
    out.change(Action::Update, r, Some(cur), fields, None);
}

fn fields(cur: &AttachRes, want: &AttachRes) -> Vec<FieldChange> {
    let mut out = vec![];
    if cur.ipv4 != want.ipv4 {
        let v = |a: Option<Ipv4Addr>| a.map(|a| Value::Addr(a.into()));
        out.push(FieldChange::new(
            Side::Own,
            Field::Ipv4,
            v(cur.ipv4),
            v(want.ipv4),
        ));
    }
    if cur.ipv6 != want.ipv6 {
        let v = |a: Option<Ipv6Addr>| a.map(|a| Value::Addr(a.into()));
        out.push(FieldChange::new(
            Side::Own,
            Field::Ipv6,
            v(cur.ipv6),
            v(want.ipv6),
        ));
    }
    if cur.aliases != want.aliases {
        let v = |s: &BTreeSet<String>| Some(Value::List(s.iter().cloned().collect()));
        out.push(FieldChange::new(
            Side::Own,
            Field::Aliases,
            v(&cur.aliases),
            v(&want.aliases),
        ));
    }
    out
}

/// Attachments netloom made that the files no longer hold.
pub(super) fn prune(cx: &DiffCx, out: &mut Diff) {
    let Some(docker) = cx.observed.docker.as_ref() else {
        return;
    };
    let ledger = &cx.observed.ledger;
    for k in &ledger.attachments {
        if cx.desired.contains(&ResourceKey::Attachment(k.clone())) {
            continue;
        }
        let Some(c) = docker.container(&k.container) else {
            continue;
        };
        // Re-created under the same name: its endpoints are not netloom's.
        if ledger.attached_id(k).is_some_and(|id| id != c.id) {
            continue;
        }
        let Some(ep) = c.endpoints.get(&k.network) else {
            continue;
        };
        out.delete(Resource::Attachment(AttachRes {
            key: k.clone(),
            ipv4: ep.ipv4,
            ipv6: ep.ipv6,
            aliases: ep.aliases.clone(),
        }));
    }
}

/// The attachments this plan disconnects (deletions run first).
pub(super) fn detached(out: &Diff) -> HashSet<AttachKey> {
    out.changes
        .iter()
        .filter(|c| c.action == Action::Delete)
        .filter_map(|c| Some(c.current.as_deref()?.as_attachment()?.key.clone()))
        .collect()
}

/// A static address that another container already holds on the network:
/// Docker would refuse the connect only after disconnecting the old
/// endpoint. Holders whose attachment this plan deletes (deletions run
/// first), networks it replaces (every endpoint goes) and broken entries do
/// not count. A holder this plan moves elsewhere still does: Docker changes
/// endpoints one at a time, so a move into a freed address needs two applies.
pub(super) fn address_clashes(cx: &DiffCx, out: &mut Diff) {
    let Some(docker) = cx.observed.docker.as_ref() else {
        return;
    };
    let replaced: HashSet<&str> = out
        .changes
        .iter()
        .filter(|c| c.action == Action::Replace)
        .filter_map(|c| Some(c.desired.as_deref()?.as_network()?.name.as_str()))
        .collect();
    let detached = detached(out);
    let mut found = vec![];
    for c in &out.changes {
        let (Action::Create | Action::Update, Some(Resource::Attachment(a))) =
            (c.action, c.desired.as_deref())
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
    // A connect that would be refused is a conflict, not also a change.
    let refused: HashSet<ResourceKey> = found.iter().map(|c| c.key.clone()).collect();
    out.changes.retain(|c| !refused.contains(&c.key));
    out.conflicts.extend(found);
}
