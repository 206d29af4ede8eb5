//! Links in the topology's netns: bridges and veth pairs.

use super::{DiffCx, Kind, Resource, ResourceKey};
use crate::diff::field::{Field, Side, Value, addresses, field};
use crate::diff::{Action, Diff, FieldChange};
use crate::observed::{LinkObs, Observed, is_kernel_link_local};
use crate::ownership::{Ledger, Owner, link_mark};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeSet, HashSet};
use std::fmt::{self, Write as _};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LinkKind {
    Bridge,
    Veth,
    #[serde(untagged)]
    Other(String),
}

impl fmt::Display for LinkKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LinkKind::Bridge => f.write_str("bridge"),
            LinkKind::Veth => f.write_str("veth"),
            LinkKind::Other(k) => f.write_str(k),
        }
    }
}

/// The settings of one interface that netloom manages.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkEnd {
    pub name: String,
    /// `None` (bridges only): left to the kernel.
    pub mtu: Option<u32>,
    pub up: bool,
    pub master: Option<String>,
    pub addresses: BTreeSet<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkRes {
    pub kind: LinkKind,
    #[serde(flatten)]
    pub end: LinkEnd,
    /// The other end of a veth pair.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub peer: Option<LinkEnd>,
    /// A bridge that exists already: checked for, never changed.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub external: bool,
    /// Take over an existing link of this name and kind that nobody owns.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
}

impl LinkRes {
    /// The names this link occupies in the netns (both ends of a pair).
    pub fn names(&self) -> impl Iterator<Item = &String> {
        std::iter::once(&self.end.name).chain(self.peer.as_ref().map(|p| &p.name))
    }
}

impl Kind for LinkRes {
    fn key(&self) -> ResourceKey {
        ResourceKey::Link {
            name: self.end.name.clone(),
        }
    }

    fn kind_name(&self) -> String {
        self.kind.to_string()
    }

    fn title(&self) -> String {
        match &self.peer {
            Some(p) => format!("{} (peer {})", self.end.name, p.name),
            None => self.end.name.clone(),
        }
    }

    fn delete_rank(&self) -> usize {
        if self.kind == LinkKind::Bridge { 4 } else { 3 }
    }

    fn diff(&self, r: &Resource, cx: &DiffCx, out: &mut Diff) {
        diff_link(cx, r, self, out)
    }

    /// The names are recorded before the create: its mark comes in a
    /// second request, and a crash in between must not leave a link nobody owns.
    fn claim(&self, ledger: &mut Ledger, _: &Observed) -> bool {
        let mut claimed = false;
        for n in self.names() {
            claimed |= ledger.links.insert(n.clone());
        }
        claimed
    }

    /// A deleted link's name is no longer this topology's to claim.
    fn release(&self, ledger: &mut Ledger) -> bool {
        self.made(Action::Delete, ledger)
    }

    fn made(&self, _: Action, ledger: &mut Ledger) -> bool {
        let mut changed = false;
        for n in self.names() {
            changed |= ledger.links.remove(n);
        }
        changed
    }

    fn details(&self, out: &mut String) {
        end_attrs(out, "", &self.end);
        if let Some(p) = &self.peer {
            end_attrs(out, "peer ", p);
        }
    }

    fn live(&self, o: &Observed) -> String {
        let parts: Vec<String> = self
            .names()
            .map(|name| match o.link(name) {
                Some(x) => link_state(x),
                None => format!("{name}: absent"),
            })
            .collect();
        parts.join("; ")
    }
}

/// An external bridge must be there, and be a bridge; nothing else of it
/// is netloom's business.
fn diff_external(cx: &DiffCx, r: &Resource, d: &LinkRes, out: &mut Diff) {
    let name = &d.end.name;
    let here = crate::engine::netns_label(&cx.observed.ledger.netns);
    match cx.observed.link(name) {
        None if !cx.observed.netns_exists => out.conflict(
            r,
            format!("external bridge `{name}` cannot exist yet: the topology's netns is new"),
            "create the netns and the bridge first, or drop `external = true`".into(),
        ),
        None => out.conflict(
            r,
            format!("external bridge `{name}` does not exist ({here})"),
            format!("create it (ip link add {name} type bridge), or drop `external = true` to let netloom make it"),
        ),
        Some(o) if o.kind != LinkKind::Bridge => out.conflict(
            r,
            format!("external bridge `{name}` is a {}, not a bridge", o.kind),
            "name a bridge, or drop `external = true`".into(),
        ),
        Some(_) => {}
    }
}

fn diff_link(cx: &DiffCx, r: &Resource, d: &LinkRes, out: &mut Diff) {
    if d.external {
        return diff_external(cx, r, d, out);
    }
    let (topology, observed) = (cx.topology, cx.observed);
    let mut adopting = false;
    // Each name the resource needs must be free or already ours.
    for name in d.names() {
        if let Some(o) = observed.link(name) {
            match observed.owner_of(o, topology) {
                Owner::Ours => {}
                Owner::Unmarked if d.adopt && o.kind == d.kind => adopting = true,
                Owner::Unmarked if d.adopt => {
                    return out.conflict(
                        r,
                        format!(
                            "`{name}` cannot be adopted as a {}: it is a {}",
                            d.kind, o.kind
                        ),
                        "adopt takes over a link of the same kind only".into(),
                    );
                }
                Owner::Unmarked => {
                    return out.conflict(
                        r,
                        format!(
                            "a {} named `{name}` already exists and netloom does not own it (it has no netloom mark)",
                            o.kind
                        ),
                        format!(
                            "rename `{name}` in the topology, remove or rename the existing link, or add `adopt = true` to take it over (netloom then owns it: converges its settings, and deletes it when it leaves the files)"
                        ),
                    );
                }
                Owner::Topology(t) => {
                    return out.conflict(
                        r,
                        format!("link `{name}` belongs to topology `{t}`"),
                        format!("pick another name, or remove it from topology `{t}` first"),
                    );
                }
            }
        }
    }
    let Some(o) = observed.link(&d.end.name) else {
        return out.push(Action::Create, r);
    };
    let cur = observed.link_resource(o);
    let current = Some(Resource::Link(cur.clone()));
    if cur.kind != d.kind {
        let reason = format!("kind changes from {} to {}", cur.kind, d.kind);
        return out.change(Action::Replace, r, current, vec![], Some(reason));
    }
    if let Some(dp) = &d.peer {
        let cur_peer = cur.peer.as_ref().map(|p| p.name.clone());
        // An adopted pair is taken as it is, never deleted to be remade.
        if adopting && cur_peer.as_deref() != Some(dp.name.as_str()) {
            return out.conflict(
                r,
                format!(
                    "veth `{}` cannot be adopted: its peer is {}, not `{}`",
                    d.end.name,
                    cur_peer.unwrap_or_else(|| "in another netns".into()),
                    dp.name
                ),
                "name its real peer in `peer`, or drop `adopt`".into(),
            );
        }
        if cur_peer.as_deref() != Some(dp.name.as_str()) {
            let reason = format!(
                "peer changes from {} to {}",
                cur_peer.unwrap_or_else(|| "(none)".into()),
                dp.name
            );
            return out.change(Action::Replace, r, current, vec![], Some(reason));
        }
    }
    let mut fields = vec![];
    let mark = link_mark(topology);
    // Unmarked but ours (a create cut short before its mark): mark it now.
    let unmarked = |name: &str| {
        observed
            .link(name)
            .is_some_and(|l| l.alias.as_deref() != Some(mark.as_str()))
    };
    end_fields(&mut fields, Side::Own, &cur.end, &d.end);
    if unmarked(&d.end.name) {
        field(
            &mut fields,
            Side::Own,
            Field::Mark,
            None,
            Some(Value::Text(mark.clone())),
        );
    }
    if let (Some(cp), Some(dp)) = (&cur.peer, &d.peer) {
        end_fields(&mut fields, Side::Peer, cp, dp);
        if unmarked(&dp.name) {
            field(
                &mut fields,
                Side::Peer,
                Field::Mark,
                None,
                Some(Value::Text(mark.clone())),
            );
        }
    }
    let reason = adopting.then(|| format!("adopts the existing {}, which nothing owned", d.kind));
    if !fields.is_empty() {
        out.change(Action::Update, r, current, fields, reason);
    }
}

fn end_fields(out: &mut Vec<FieldChange>, side: Side, cur: &LinkEnd, want: &LinkEnd) {
    if let Some(m) = want.mtu {
        let from = cur.mtu.map(Value::Int);
        field(out, side, Field::Mtu, from, Some(Value::Int(m)));
    }
    let (from, to) = (Value::Bool(cur.up), Value::Bool(want.up));
    field(out, side, Field::Up, Some(from), Some(to));
    let text = |m: &Option<String>| m.clone().map(Value::Text);
    field(
        out,
        side,
        Field::Master,
        text(&cur.master),
        text(&want.master),
    );
    addresses(out, side, &cur.addresses, &want.addresses);
}

fn end_attrs(out: &mut String, prefix: &str, e: &LinkEnd) {
    if let Some(m) = e.mtu {
        let _ = writeln!(out, "      {prefix}mtu: {m}");
    }
    if !e.up {
        let _ = writeln!(out, "      {prefix}up: false");
    }
    if let Some(m) = &e.master {
        let _ = writeln!(out, "      {prefix}master: {m}");
    }
    if !e.addresses.is_empty() {
        let list: Vec<String> = e.addresses.iter().map(|a| a.to_string()).collect();
        let _ = writeln!(out, "      {prefix}addresses: {}", list.join(", "));
    }
}

/// Marked links the files no longer describe; a pair goes in one deletion,
/// named by its alphabetically first end.
pub(super) fn prune(cx: &DiffCx, out: &mut Diff) {
    let mut wanted: HashSet<&str> = HashSet::new();
    for r in cx.desired.resources() {
        match r {
            Resource::Link(l) => wanted.extend(l.names().map(String::as_str)),
            // The host end of a container interface lives in the topology's netns.
            Resource::Iface(i) => wanted.extend(i.host_end()),
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
            | Resource::Bgp(_) => {}
        }
    }
    let mut gone: HashSet<&str> = HashSet::new();
    let mut links: Vec<_> = cx.observed.links.iter().collect();
    links.sort_by(|a, b| a.name.cmp(&b.name));
    for o in links {
        // `lo` carries the mark of a netns netloom created; it is never pruned.
        if o.name == "lo"
            || cx.observed.owner_of(o, cx.topology) != Owner::Ours
            || wanted.contains(o.name.as_str())
            || gone.contains(o.name.as_str())
        {
            continue;
        }
        let cur = cx.observed.link_resource(o);
        if let Some(p) = &o.peer {
            // The other end is still wanted: its own replacement removes this one.
            if wanted.contains(p.as_str()) {
                continue;
            }
            gone.insert(p); // one delete removes both ends
        }
        out.delete(Resource::Link(cur));
    }
}

/// `name: up, carrier, mtu N, master M, addresses (tentative)`.
pub(crate) fn link_state(x: &LinkObs) -> String {
    let mut s = format!(
        "{}: {}, {}, mtu {}",
        x.name,
        if x.up { "up" } else { "down" },
        if x.carrier { "carrier" } else { "no carrier" },
        x.mtu
    );
    if let Some(m) = &x.master {
        let _ = write!(s, ", master {m}");
    }
    for a in x.addresses.iter().filter(|a| !is_kernel_link_local(&a.net)) {
        let _ = write!(
            s,
            ", {}{}",
            a.net,
            if a.tentative { " (tentative)" } else { "" }
        );
    }
    s
}
