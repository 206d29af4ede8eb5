//! Learned routes in the kernel: gobgpd installs none itself (only through
//! zebra), so netloom copies the best paths learned from peers into the
//! topology's netns, under its own BGP route protocol number
//! (`NETLOOM_BGP_PROTO`), and removes them when withdrawn.

use super::BgpRes;
use crate::diff::field::{Field, Side, Value};
use crate::diff::{Action, Diff, FieldChange};
use crate::model::Bgp;
use crate::observed::Observed;
use crate::resource::{DiffCx, Kind, Resource, ResourceKey};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RoutesRes {
    pub table: u32,
    /// Resolved at diff time from gobgpd's best paths (empty in the graph).
    #[serde(default)]
    pub routes: Vec<(IpNet, IpAddr)>,
}

impl RoutesRes {
    pub fn from_model(b: &Bgp) -> RoutesRes {
        RoutesRes {
            table: b.table,
            routes: vec![],
        }
    }

    /// The routes the best paths ask for (one per prefix).
    pub fn resolve(&self, o: &Observed, live: bool) -> Vec<(IpNet, IpAddr)> {
        let mut out: Vec<(IpNet, IpAddr)> = match o.bgp.as_ref() {
            Some(b) if live => b
                .best
                .iter()
                .filter(|l| !b.kernel_taken.contains(&l.prefix))
                .map(|l| (l.prefix, l.nexthop))
                .collect(),
            _ => vec![],
        };
        out.sort();
        out.dedup_by_key(|r| r.0);
        out
    }
}

fn shown(r: &(IpNet, IpAddr)) -> Value {
    Value::Text(format!("{} via {}", r.0, r.1))
}

impl Kind for RoutesRes {
    fn key(&self) -> ResourceKey {
        ResourceKey::Bgp(super::BgpKey::Routes { table: self.table })
    }

    fn kind_name(&self) -> String {
        "bgp routes".into()
    }

    fn title(&self) -> String {
        format!("table {}", self.table)
    }

    /// First: nothing depends on them.
    fn delete_rank(&self) -> usize {
        0
    }

    fn diff(&self, r: &Resource, cx: &DiffCx, out: &mut Diff) {
        let _ = r;
        let want: BTreeSet<(IpNet, IpAddr)> = self
            .resolve(cx.observed, super::live(cx).is_some())
            .into_iter()
            .collect();
        let have: BTreeSet<(IpNet, IpAddr)> = cx
            .observed
            .bgp
            .iter()
            .flat_map(|b| &b.kernel)
            .filter(|k| k.table == self.table)
            .filter_map(|k| k.via.map(|v| (k.prefix, v)))
            .collect();
        if want == have {
            return;
        }
        let mut fields = vec![];
        for gone in have.difference(&want) {
            fields.push(FieldChange::new(
                Side::Own,
                Field::Route,
                Some(shown(gone)),
                None,
            ));
        }
        for new in want.difference(&have) {
            fields.push(FieldChange::new(
                Side::Own,
                Field::Route,
                None,
                Some(shown(new)),
            ));
        }
        let resolved = Resource::Bgp(BgpRes::Routes(RoutesRes {
            table: self.table,
            routes: want.into_iter().collect(),
        }));
        out.change(Action::Update, &resolved, None, fields, None);
    }

    fn live(&self, o: &Observed) -> String {
        let n = o
            .bgp
            .iter()
            .flat_map(|b| &b.kernel)
            .filter(|k| k.table == self.table)
            .count();
        let routes: Vec<String> = o
            .bgp
            .iter()
            .flat_map(|b| &b.kernel)
            .filter(|k| k.table == self.table)
            .take(20)
            .map(|k| match k.via {
                Some(v) => format!("{} via {v}", k.prefix),
                None => k.prefix.to_string(),
            })
            .collect();
        let more = if n > routes.len() { ", …" } else { "" };
        let taken = o.bgp.as_ref().map_or(0, |b| b.kernel_taken.len());
        let taken = if taken > 0 {
            format!("; {taken} prefix(es) left to another protocol's route")
        } else {
            String::new()
        };
        if routes.is_empty() {
            format!("no learned routes in table {}{taken}", self.table)
        } else {
            format!(
                "{n} learned route(s) in table {}: {}{more}{taken}",
                self.table,
                routes.join(", ")
            )
        }
    }
}

/// Learned routes in the kernel when nothing asks for them any more.
pub(super) fn prune(cx: &DiffCx, out: &mut Diff) {
    let Some(b) = cx.observed.bgp.as_ref().filter(|b| !b.kernel.is_empty()) else {
        return;
    };
    let tables: BTreeSet<u32> = b.kernel.iter().map(|k| k.table).collect();
    for table in tables {
        if cx
            .desired
            .contains(&ResourceKey::Bgp(super::BgpKey::Routes { table }))
        {
            continue;
        }
        out.delete(Resource::Bgp(BgpRes::Routes(RoutesRes {
            table,
            routes: vec![],
        })));
    }
}
