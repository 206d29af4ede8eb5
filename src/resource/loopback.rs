//! Addresses netloom puts on a container's `lo` (router ids, anycast),
//! owned through the ledger: `lo`'s own 127.0.0.1 and ::1, and anything
//! else not recorded there, are never touched.

use super::iface::{netns_of, not_now, wired_here};
use super::{DiffCx, Kind, Resource, ResourceKey};
use crate::diff::field::{Side, addresses};
use crate::diff::{Action, Diff};
use crate::observed::{ContainerNetObs, Observed};
use crate::ownership::Ledger;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoopbackRes {
    pub container: String,
    pub addresses: BTreeSet<IpNet>,
}

/// The addresses on a container's `lo` now.
pub fn on_lo(n: &ContainerNetObs) -> BTreeSet<IpNet> {
    n.link("lo")
        .map(|l| l.addresses.iter().map(|a| a.net).collect())
        .unwrap_or_default()
}

impl Kind for LoopbackRes {
    fn key(&self) -> ResourceKey {
        ResourceKey::Loopback {
            container: self.container.clone(),
        }
    }

    fn kind_name(&self) -> String {
        "loopback".into()
    }

    fn title(&self) -> String {
        format!("lo in {}", self.container)
    }

    fn delete_rank(&self) -> usize {
        6
    }

    fn details(&self, out: &mut String) {
        let list: Vec<String> = self.addresses.iter().map(|a| a.to_string()).collect();
        out.push_str(&format!("      addresses: {}\n", list.join(", ")));
    }

    fn diff(&self, r: &Resource, cx: &DiffCx, out: &mut Diff) {
        let here = match netns_of(cx.observed, &self.container) {
            Ok(n) => n,
            Err(why) => return not_now(r, why, out),
        };
        let have = on_lo(here);
        let ours = cx
            .observed
            .ledger
            .loopback
            .get(&self.container)
            .cloned()
            .unwrap_or_default();
        // What netloom put there and still is; the wanted ones present.
        let mine: BTreeSet<IpNet> = have.intersection(&ours).copied().collect();
        let present: BTreeSet<IpNet> = have.intersection(&self.addresses).copied().collect();
        let view: BTreeSet<IpNet> = mine.union(&present).copied().collect();
        if view == self.addresses {
            return;
        }
        if view.is_empty() {
            return out.push(Action::Create, r);
        }
        let mut f = vec![];
        addresses(&mut f, Side::Own, &view, &self.addresses);
        let cur = Resource::Loopback(LoopbackRes {
            container: self.container.clone(),
            addresses: mine,
        });
        out.change(Action::Update, r, Some(cur), f, None);
    }

    fn claim(&self, ledger: &mut Ledger, _: &Observed) -> bool {
        let wired = ledger.wired.insert(self.container.clone());
        let set = ledger.loopback.entry(self.container.clone()).or_default();
        let before = set.len();
        set.extend(self.addresses.iter().copied());
        wired | (set.len() != before)
    }

    fn release(&self, ledger: &mut Ledger) -> bool {
        ledger.loopback.remove(&self.container).is_some()
    }

    fn settle(&self, _: &Ledger, ledger: &mut Ledger) {
        ledger.wired.insert(self.container.clone());
        ledger
            .loopback
            .insert(self.container.clone(), self.addresses.clone());
    }

    fn live(&self, o: &Observed) -> String {
        match o.containers.get(&self.container) {
            Some(n) => {
                let on: Vec<String> = on_lo(n)
                    .intersection(&self.addresses)
                    .map(|a| a.to_string())
                    .collect();
                format!("present: {}", on.join(", "))
            }
            None => "container not observed".into(),
        }
    }
}

/// Loopback addresses recorded for a container whose section no longer has any.
pub(super) fn prune(cx: &DiffCx, out: &mut Diff) {
    for (c, n) in wired_here(cx.observed) {
        let Some(ours) = cx.observed.ledger.loopback.get(c) else {
            continue;
        };
        if cx.desired.contains(&ResourceKey::Loopback {
            container: c.clone(),
        }) {
            continue;
        }
        let left: BTreeSet<IpNet> = on_lo(n).intersection(ours).copied().collect();
        out.delete(Resource::Loopback(LoopbackRes {
            container: c.clone(),
            addresses: left,
        }));
    }
}
