//! Network sysctls (`net.*`) in the topology's netns or a container's,
//! observed and diffed like any field. The value each key had before
//! netloom first set it is kept in the ledger and written back when the
//! key leaves the files.

use super::iface::{netns_of, not_now, wired_here};
use super::{DiffCx, Kind, Resource, ResourceKey};
use crate::diff::field::{Field, Side, Value};
use crate::diff::{Action, Diff, FieldChange};
use crate::observed::Observed;
use crate::ownership::Ledger;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SysctlRes {
    /// `None`: the topology's netns.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub container: Option<String>,
    /// As written in the file: `net.ipv4.ip_forward`.
    pub key: String,
    /// The value to set (`None` in a deletion).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// In a deletion: the value from before netloom, written back.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub restore: Option<String>,
}

/// `/proc/sys/…` of a key: dots are separators unless the key uses
/// slashes (as sysctl.conf allows, for interface names with dots).
pub fn proc_path(key: &str) -> String {
    if key.contains('/') {
        format!("/proc/sys/{}", key.trim_start_matches('/'))
    } else {
        format!("/proc/sys/{}", key.replace('.', "/"))
    }
}

/// Values compare by their words: the kernel separates multi-value
/// sysctls with tabs, files use spaces.
pub fn normalize(v: &str) -> String {
    v.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Observed sysctls of one netns: key → value (`None`: no such key there).
pub type SysctlObs = BTreeMap<String, Option<String>>;

impl SysctlRes {
    fn observed<'a>(&self, o: &'a Observed) -> Result<Option<&'a SysctlObs>, super::iface::NotNow> {
        match &self.container {
            None => Ok(o.sysctls.as_ref()),
            Some(c) => netns_of(o, c).map(|n| Some(&n.sysctls)),
        }
    }

    fn ledgered<'a>(&self, l: &'a Ledger) -> Option<&'a BTreeMap<String, String>> {
        match &self.container {
            None => Some(&l.sysctls),
            Some(c) => l.container_sysctls.get(c),
        }
    }

    fn where_(&self) -> String {
        match &self.container {
            None => "the topology's netns".into(),
            Some(c) => format!("container `{c}`"),
        }
    }
}

impl Kind for SysctlRes {
    fn key(&self) -> ResourceKey {
        ResourceKey::Sysctl {
            container: self.container.clone(),
            key: self.key.clone(),
        }
    }

    fn kind_name(&self) -> String {
        "sysctl".into()
    }

    fn title(&self) -> String {
        let mut s = self.key.clone();
        if let Some(v) = &self.value {
            s.push_str(&format!(" = {v}"));
        }
        if let Some(c) = &self.container {
            s.push_str(&format!(" in {c}"));
        }
        if let Some(v) = &self.restore {
            s.push_str(&format!(" (back to {v})"));
        }
        s
    }

    fn delete_rank(&self) -> usize {
        6
    }

    fn diff(&self, r: &Resource, cx: &DiffCx, out: &mut Diff) {
        let seen = match self.observed(cx.observed) {
            Ok(s) => s,
            Err(why) => return not_now(r, why, out),
        };
        // The netns is yet to be made.
        let Some(seen) = seen else {
            return out.push(Action::Create, r);
        };
        let want = self.value.as_deref().map(normalize);
        match seen.get(&self.key) {
            Some(None) => out.conflict(
                r,
                format!("sysctl {} does not exist in {}", self.key, self.where_()),
                "check the key's spelling (`sysctl -a` lists them); interface keys need the interface to exist first".into(),
            ),
            Some(Some(v)) if Some(normalize(v)) == want => {}
            Some(Some(v)) => {
                let f = vec![FieldChange::new(
                    Side::Own,
                    Field::Value,
                    Some(Value::Text(normalize(v))),
                    want.map(Value::Text),
                )];
                out.change(Action::Update, r, None, f, None);
            }
            None => out.push(Action::Create, r),
        }
    }

    /// Records the value from before netloom, once.
    fn claim(&self, ledger: &mut Ledger, o: &Observed) -> bool {
        let before = self
            .observed(o)
            .ok()
            .flatten()
            .and_then(|s| s.get(&self.key).cloned().flatten());
        // The container is wired: its prune must see it after the key goes.
        let wired = match &self.container {
            Some(c) => ledger.wired.insert(c.clone()),
            None => false,
        };
        let Some(v) = before else { return wired };
        let map = match &self.container {
            None => &mut ledger.sysctls,
            Some(c) => ledger.container_sysctls.entry(c.clone()).or_default(),
        };
        if map.contains_key(&self.key) {
            return wired;
        }
        map.insert(self.key.clone(), normalize(&v));
        true
    }

    fn release(&self, ledger: &mut Ledger) -> bool {
        match &self.container {
            None => ledger.sysctls.remove(&self.key).is_some(),
            Some(c) => {
                let Some(m) = ledger.container_sysctls.get_mut(c) else {
                    return false;
                };
                let gone = m.remove(&self.key).is_some();
                if m.is_empty() {
                    ledger.container_sysctls.remove(c);
                }
                gone
            }
        }
    }

    fn settle(&self, claimed: &Ledger, ledger: &mut Ledger) {
        if let Some(v) = self.ledgered(claimed).and_then(|m| m.get(&self.key)) {
            let map = match &self.container {
                None => &mut ledger.sysctls,
                Some(c) => ledger.container_sysctls.entry(c.clone()).or_default(),
            };
            map.insert(self.key.clone(), v.clone());
        }
        if let Some(c) = &self.container {
            ledger.wired.insert(c.clone());
        }
    }

    fn live(&self, o: &Observed) -> String {
        match self
            .observed(o)
            .ok()
            .flatten()
            .and_then(|s| s.get(&self.key))
        {
            Some(Some(v)) => format!("= {}", normalize(v)),
            Some(None) => "no such key".into(),
            None => "not observed".into(),
        }
    }
}

/// Keys set before whose section is gone: restore their old values.
pub(super) fn prune(cx: &DiffCx, out: &mut Diff) {
    let l = &cx.observed.ledger;
    let mut gone = |container: Option<&String>, map: &BTreeMap<String, String>| {
        for (key, original) in map {
            let k = ResourceKey::Sysctl {
                container: container.cloned(),
                key: key.clone(),
            };
            if !cx.desired.contains(&k) {
                out.delete(Resource::Sysctl(SysctlRes {
                    container: container.cloned(),
                    key: key.clone(),
                    value: None,
                    restore: Some(original.clone()),
                }));
            }
        }
    };
    if cx.observed.sysctls.is_some() {
        gone(None, &l.sysctls);
    }
    for (c, _) in wired_here(cx.observed) {
        if let Some(m) = l.container_sysctls.get(c) {
            gone(Some(c), m);
        }
    }
}
