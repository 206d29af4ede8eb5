//! An interface a CNI plugin chain makes in a container. Observed through
//! libcni's result cache and the plugins' CHECK; only attachments the
//! ledger records (netloom ADDed them) are ever DEL'ed.

use super::{DiffCx, Kind, Resource, ResourceKey};
use crate::diff::{Action, Diff};
use crate::observed::{CniObs, Observed};
use crate::ownership::Ledger;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;

/// A recorded attachment: enough to find its cache entry
/// (`<network>-<container id>-<ifname>`) and to DEL it.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct CniEntry {
    pub container: String,
    pub ifname: String,
    /// The network name the plugins see.
    pub network: String,
    /// The Docker container id passed as CNI_CONTAINERID.
    pub id: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniRes {
    pub container: String,
    pub ifname: String,
    /// The `[cni.NAME]` section.
    pub network: String,
    /// The network name the plugins see (the conflist's `name`).
    pub net_name: String,
    /// The conflist, canonical JSON.
    pub config: String,
    /// Plugin binary directories, in search order.
    pub dirs: Vec<String>,
}

impl CniRes {
    /// The desired attachment of `container`'s `a` to `net`.
    pub fn from_model(
        container: &str,
        a: &crate::model::CniAttach,
        net: &crate::model::CniNet,
    ) -> CniRes {
        CniRes {
            container: container.to_string(),
            ifname: a.ifname.clone(),
            network: net.name.clone(),
            net_name: net.net_name.clone(),
            config: net.conflist(),
            dirs: net.dirs.clone(),
        }
    }

    /// The cached view of a recorded attachment (for plans and DEL).
    pub fn recorded(o: &CniObs) -> CniRes {
        CniRes {
            container: o.entry.container.clone(),
            ifname: o.entry.ifname.clone(),
            network: o.entry.network.clone(),
            net_name: o.entry.network.clone(),
            config: o
                .cached
                .as_ref()
                .map(|c| c.config.clone())
                .unwrap_or_default(),
            dirs: vec![],
        }
    }

    /// The plugin types of the chain, in order.
    pub fn plugin_types(&self) -> Vec<String> {
        let v: serde_json::Value = serde_json::from_str(&self.config).unwrap_or_default();
        v["plugins"]
            .as_array()
            .map(|ps| {
                ps.iter()
                    .filter_map(|p| p["type"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }
}

impl Kind for CniRes {
    fn key(&self) -> ResourceKey {
        ResourceKey::Cni {
            container: self.container.clone(),
            ifname: self.ifname.clone(),
        }
    }

    fn kind_name(&self) -> String {
        "cni".into()
    }

    fn title(&self) -> String {
        format!("{}:{} → {}", self.container, self.ifname, self.network)
    }

    /// With the Docker endpoints: before anything they hang off goes.
    fn delete_rank(&self) -> usize {
        0
    }

    fn diff(&self, r: &Resource, cx: &DiffCx, out: &mut Diff) {
        diff_cni(cx, r, self, out)
    }

    fn details(&self, out: &mut String) {
        let _ = writeln!(out, "      plugins: {}", self.plugin_types().join(", "));
    }

    /// Recorded before the ADD, with the container's id.
    fn claim(&self, ledger: &mut Ledger, observed: &Observed) -> bool {
        let Some(c) = observed.container(&self.container) else {
            return false;
        };
        let entry = CniEntry {
            container: self.container.clone(),
            ifname: self.ifname.clone(),
            network: self.net_name.clone(),
            id: c.id.clone(),
        };
        if ledger.cni.contains(&entry) {
            return false;
        }
        // A replaced attachment's old entry goes once its DEL has run
        // (the backend DELs before it ADDs); keep it until then.
        ledger.cni.insert(entry);
        true
    }

    fn release(&self, ledger: &mut Ledger) -> bool {
        let before = ledger.cni.len();
        ledger
            .cni
            .retain(|e| !(e.container == self.container && e.ifname == self.ifname));
        ledger.cni.len() != before
    }

    fn settle(&self, claimed: &Ledger, ledger: &mut Ledger) {
        for e in claimed
            .cni
            .iter()
            .filter(|e| e.container == self.container && e.ifname == self.ifname)
        {
            ledger.cni.insert(e.clone());
        }
    }

    fn live(&self, o: &Observed) -> String {
        match o.cni(&self.container, &self.ifname) {
            None => "not attached".into(),
            Some(obs) => match (&obs.cached, &obs.check_failed) {
                (None, _) => "an ADD that did not finish".into(),
                (Some(_), Some(why)) => format!("attached; CHECK fails: {why}"),
                (Some(c), None) => format!("attached: {}", addresses(&c.result).join(", ")),
            },
        }
    }
}

/// Interfaces CNI plugins made in the topology's netns on this topology's
/// behalf: host ends in the cached results, and the bridges that `bridge`
/// plugins of its networks keep (a DEL leaves the bridge). They go with
/// the netns when destroy removes it whole.
pub fn host_links(
    topo: &crate::model::Topology,
    o: &Observed,
) -> std::collections::BTreeSet<String> {
    let mut out = std::collections::BTreeSet::new();
    let mut bridges = |plugins: &[serde_json::Value]| {
        for p in plugins.iter().filter(|p| p["type"] == "bridge") {
            out.insert(p["bridge"].as_str().unwrap_or("cni0").to_string());
        }
    };
    for n in topo.cni.values() {
        let ps: Vec<serde_json::Value> = n
            .plugins
            .iter()
            .cloned()
            .map(serde_json::Value::Object)
            .collect();
        bridges(&ps);
    }
    let mut hosts = vec![];
    for c in o.cni.iter().filter_map(|x| x.cached.as_ref()) {
        let conf: serde_json::Value = serde_json::from_str(&c.config).unwrap_or_default();
        bridges(
            conf["plugins"]
                .as_array()
                .map(Vec::as_slice)
                .unwrap_or_default(),
        );
        for i in c.result["interfaces"].as_array().into_iter().flatten() {
            if i["sandbox"].as_str().unwrap_or_default().is_empty()
                && let Some(n) = i["name"].as_str()
            {
                hosts.push(n.to_string());
            }
        }
    }
    out.extend(hosts);
    out
}

/// The addresses a CNI result lists.
pub fn addresses(result: &serde_json::Value) -> Vec<String> {
    result["ips"]
        .as_array()
        .map(|ips| {
            ips.iter()
                .filter_map(|ip| ip["address"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

fn diff_cni(cx: &DiffCx, r: &Resource, d: &CniRes, out: &mut Diff) {
    let Some(docker) = cx.observed.docker.as_ref() else {
        return super::network::unobserved(r, out);
    };
    let recorded = cx.observed.cni(&d.container, &d.ifname);
    let Some(c) = docker.container(&d.container) else {
        // Removed: DEL what it had (no netns), then wait for it.
        if let Some(o) = recorded {
            out.delete(Resource::Cni(CniRes::recorded(o)));
        }
        let reason = format!("container `{}` does not exist", d.container);
        return out.pending(r, reason);
    };
    if !c.running() {
        let reason = format!(
            "container `{}` exists but is not running (status: {})",
            d.container, c.state
        );
        return out.pending(r, reason);
    }
    if !c.network_mode.is_private() {
        return out.conflict(
            r,
            format!(
                "container `{}` runs with --network {}: it has no netns of its own for CNI",
                d.container, c.network_mode
            ),
            "start it with --network none (or on a Docker network) to attach it through CNI".into(),
        );
    }
    let missing: Vec<&str> = cx
        .observed
        .cni_missing
        .iter()
        .filter(|(net, _)| *net == d.network)
        .map(|(_, t)| t.as_str())
        .collect();
    if !missing.is_empty() {
        return out.conflict(
            r,
            format!(
                "CNI plugin(s) {} of [cni.{}] found in none of {}",
                missing.join(", "),
                d.network,
                d.dirs.join(", ")
            ),
            "install them (Debian: containernetworking-plugins), or set `plugin_dirs`".into(),
        );
    }
    let Some(o) = recorded else {
        return out.push(Action::Create, r);
    };
    let current = Some(Resource::Cni(CniRes::recorded(o)));
    let Some(cached) = &o.cached else {
        let reason = "an earlier ADD did not finish: DEL, then ADD again";
        return out.change(Action::Create, r, None, vec![], Some(reason.into()));
    };
    let reason = if o.entry.id != c.id {
        "the container was re-created".to_string()
    } else if c.sandbox.as_deref() != Some(cached.netns.as_str()) {
        "the container restarted (a new netns): DEL, then ADD".to_string()
    } else if cached.config != d.config || o.entry.network != d.net_name {
        "the network's config changed: DEL with the old config, then ADD".to_string()
    } else if let Some(why) = &o.check_failed {
        format!("CHECK failed ({why}): DEL, then ADD")
    } else {
        return;
    };
    out.change(Action::Replace, r, current, vec![], Some(reason));
}

/// Recorded attachments the files no longer ask for: DEL'ed (with no netns
/// if their container is gone, which the plugins accept).
pub(super) fn prune(cx: &DiffCx, out: &mut Diff) {
    for o in &cx.observed.cni {
        let key = ResourceKey::Cni {
            container: o.entry.container.clone(),
            ifname: o.entry.ifname.clone(),
        };
        if !cx.desired.contains(&key) {
            out.delete(Resource::Cni(CniRes::recorded(o)));
        }
    }
}
