//! A BGP peer in gobgpd. gobgpd changes a peer only by deleting and adding
//! it again (its UpdatePeer does that too), so any change is a replace that
//! resets the session, and the plan says so.

use super::BgpRes;
use crate::diff::field::{Field, Side, Value, field};
use crate::diff::{Action, Diff};
use crate::model::{BgpPeer, Fam, Secret};
use crate::observed::{BgpPeerObs, Observed};
use crate::resource::{DiffCx, Kind, Resource, ResourceKey};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRes {
    pub name: String,
    pub address: IpAddr,
    pub asn: u32,
    /// Serialized as "(redacted)": plans and ledgers never hold it.
    pub password: Option<Secret>,
    pub hold_time: u32,
    pub passive: bool,
    pub multihop: Option<u32>,
    pub families: Vec<Fam>,
    pub max_prefixes: Option<u32>,
}

impl PeerRes {
    pub fn from_model(p: &BgpPeer) -> PeerRes {
        PeerRes {
            name: p.name.clone(),
            address: p.address,
            asn: p.asn,
            password: p.password.clone(),
            hold_time: p.hold_time,
            passive: p.passive,
            multihop: p.multihop,
            families: p.families.clone(),
            max_prefixes: p.max_prefixes,
        }
    }

    fn from_obs(o: &BgpPeerObs) -> PeerRes {
        PeerRes {
            name: o.address.to_string(),
            address: o.address,
            asn: o.asn,
            password: o.password.clone(),
            hold_time: o.hold_time,
            passive: o.passive,
            multihop: o.multihop,
            families: o.families.clone(),
            max_prefixes: o.max_prefixes,
        }
    }
}

fn opt(v: Option<u32>) -> Option<Value> {
    v.map(Value::Int)
}

fn fams(v: &[Fam]) -> Option<Value> {
    Some(Value::List(
        v.iter().map(|f| f.as_str().to_string()).collect(),
    ))
}

impl Kind for PeerRes {
    fn key(&self) -> ResourceKey {
        ResourceKey::Bgp(super::BgpKey::Peer {
            name: self.name.clone(),
        })
    }

    fn kind_name(&self) -> String {
        "bgp peer".into()
    }

    fn title(&self) -> String {
        self.name.clone()
    }

    fn delete_rank(&self) -> usize {
        1
    }

    fn diff(&self, r: &Resource, cx: &DiffCx, out: &mut Diff) {
        let Some(o) =
            super::live(cx).and_then(|b| b.peers.iter().find(|p| p.address == self.address))
        else {
            return out.push(Action::Create, r);
        };
        let mut f = vec![];
        field(
            &mut f,
            Side::Own,
            Field::Asn,
            Some(Value::Int(o.asn)),
            Some(Value::Int(self.asn)),
        );
        if o.password != self.password {
            // Never the values: only that it changes.
            let shown = |p: &Option<Secret>| {
                Some(Value::Text(
                    if p.is_some() { "(set)" } else { "(none)" }.into(),
                ))
            };
            let (from, to) = match (o.password.is_some(), self.password.is_some()) {
                (true, true) => (
                    Some(Value::Text("(set)".into())),
                    Some(Value::Text("(changed)".into())),
                ),
                _ => (shown(&o.password), shown(&self.password)),
            };
            f.push(crate::diff::FieldChange::new(
                Side::Own,
                Field::Password,
                from,
                to,
            ));
        }
        field(
            &mut f,
            Side::Own,
            Field::HoldTime,
            Some(Value::Int(o.hold_time)),
            Some(Value::Int(self.hold_time)),
        );
        field(
            &mut f,
            Side::Own,
            Field::Passive,
            Some(Value::Bool(o.passive)),
            Some(Value::Bool(self.passive)),
        );
        field(
            &mut f,
            Side::Own,
            Field::Multihop,
            opt(o.multihop),
            opt(self.multihop),
        );
        field(
            &mut f,
            Side::Own,
            Field::Families,
            fams(&o.families),
            fams(&self.families),
        );
        field(
            &mut f,
            Side::Own,
            Field::MaxPrefixes,
            opt(o.max_prefixes),
            opt(self.max_prefixes),
        );
        if f.is_empty() {
            return;
        }
        let why = format!("resets the BGP session with {}", self.name);
        let current = Resource::Bgp(BgpRes::Peer(PeerRes {
            name: self.name.clone(),
            ..PeerRes::from_obs(o)
        }));
        out.change(Action::Replace, r, Some(current), f, Some(why));
    }

    fn details(&self, out: &mut String) {
        let fams: Vec<&str> = self.families.iter().map(|f| f.as_str()).collect();
        let _ = writeln!(
            out,
            "      address: {}  asn: {}  families: {}  hold_time: {}{}{}{}",
            self.address,
            self.asn,
            fams.join(", "),
            self.hold_time,
            if self.passive { "  passive" } else { "" },
            self.multihop
                .map(|m| format!("  multihop: {m}"))
                .unwrap_or_default(),
            if self.password.is_some() {
                "  password: (set)"
            } else {
                ""
            },
        );
    }

    fn live(&self, o: &Observed) -> String {
        let Some(p) = o
            .bgp
            .as_ref()
            .and_then(|b| b.peers.iter().find(|p| p.address == self.address))
        else {
            return format!("{} AS{}: not configured in gobgpd", self.address, self.asn);
        };
        let up = match p.up_since {
            Some(t) if p.state == "established" => {
                let now = unix_now().unwrap_or(t);
                format!(" for {}", human((now - t).max(0)))
            }
            _ => String::new(),
        };
        format!(
            "{} AS{}: {}{up}, received {}, accepted {}, advertised {}",
            self.address, self.asn, p.state, p.received, p.accepted, p.advertised
        )
    }
}

/// Seconds since the epoch (gobgpd's session uptimes are absolute).
pub fn unix_now() -> Option<i64> {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .ok()
        .map(|d| d.as_secs() as i64)
}

pub fn human(secs: i64) -> String {
    match secs {
        s if s < 120 => format!("{s}s"),
        s if s < 7200 => format!("{}m", s / 60),
        s if s < 172_800 => format!("{}h", s / 3600),
        s => format!("{}d", s / 86_400),
    }
}

/// Peers in gobgpd at addresses no desired peer has.
pub(super) fn prune(cx: &DiffCx, out: &mut Diff) {
    // Without the speaker, or with one made again, there is nothing to prune.
    if !cx
        .desired
        .contains(&ResourceKey::Bgp(super::BgpKey::Speaker))
    {
        return;
    }
    let Some(b) = super::live(cx) else {
        return;
    };
    let wanted: Vec<IpAddr> = cx
        .desired
        .resources()
        .filter_map(|r| match r {
            Resource::Bgp(BgpRes::Peer(p)) => Some(p.address),
            _ => None,
        })
        .collect();
    for p in b.peers.iter().filter(|p| !wanted.contains(&p.address)) {
        out.delete(Resource::Bgp(BgpRes::Peer(PeerRes::from_obs(p))));
    }
}
