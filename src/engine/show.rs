//! `show`: the live state of every object the topology describes (and of
//! owned objects it no longer describes), with drift and readiness.

use super::Loaded;
use crate::diff::{Action, FieldChange};
use crate::error::Result;
use crate::resource::ResourceKey;
use serde::Serialize;
use std::collections::HashMap;

/// Bumped when a field changes meaning or goes away.
pub const SHOW_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct Entry {
    pub key: ResourceKey,
    pub kind: String,
    pub title: String,
    /// ok, drift, missing, conflict, pending, or extra (owned, not in the files).
    pub status: &'static str,
    /// The live facts, in words.
    pub live: String,
    pub drift: Vec<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct ProbeResult {
    pub container: String,
    pub target: String,
    pub ok: bool,
    /// Round trip, or why it failed.
    pub detail: String,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
#[schemars(title = "netloom show")]
pub struct ShowReport {
    pub format_version: u32,
    pub topology: String,
    pub netns: Option<String>,
    pub entries: Vec<Entry>,
    /// Readiness probes (`ready = { ping }`) of running containers.
    pub ready: Vec<ProbeResult>,
    /// The BGP speaker's sessions, announcements and installed routes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub bgp: Option<BgpShow>,
    /// A `watch` of this topology that is running, and what it serves.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch: Option<super::watch::served::Served>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct BgpShow {
    pub running: bool,
    pub asn: u32,
    pub router_id: String,
    pub peers: Vec<BgpPeerShow>,
    pub announced: Vec<String>,
    /// Learned routes netloom installed in the kernel.
    pub installed: Vec<String>,
}

#[derive(Debug, Serialize, schemars::JsonSchema)]
pub struct BgpPeerShow {
    pub name: String,
    pub address: String,
    pub asn: u32,
    /// established, active, idle, …; "not configured" when gobgpd lacks it.
    pub state: String,
    pub uptime_seconds: Option<i64>,
    /// Unix time the session came up (stays the same while it stays up).
    pub up_since: Option<i64>,
    pub received: u64,
    /// Received and accepted by import policy.
    pub accepted: u64,
    pub advertised: u64,
}

fn bgp_show(l: &Loaded, o: &crate::observed::Observed) -> Option<BgpShow> {
    let b = l.topo.bgp.as_ref()?;
    let live = o.bgp.clone().unwrap_or_default();
    let now = crate::resource::bgp::unix_now().unwrap_or(0);
    let peers = b
        .peers
        .values()
        .map(|p| {
            let seen = live.peers.iter().find(|x| x.address == p.address);
            BgpPeerShow {
                name: p.name.clone(),
                address: p.address.to_string(),
                asn: p.asn,
                state: seen.map_or("not configured".into(), |x| x.state.clone()),
                uptime_seconds: seen.and_then(|x| x.up_since).map(|t| (now - t).max(0)),
                up_since: seen.and_then(|x| x.up_since),
                received: seen.map_or(0, |x| x.received),
                accepted: seen.map_or(0, |x| x.accepted),
                advertised: seen.map_or(0, |x| x.advertised),
            }
        })
        .collect();
    Some(BgpShow {
        running: live.running,
        asn: live.asn,
        router_id: live.router_id.clone(),
        peers,
        announced: live.local.iter().map(ToString::to_string).collect(),
        installed: live
            .kernel
            .iter()
            .map(|k| match k.via {
                Some(v) => format!("{} via {v} table {}", k.prefix, k.table),
                None => format!("{} table {}", k.prefix, k.table),
            })
            .collect(),
    })
}

impl ShowReport {
    /// Anything drifted, missing, extra, pending, conflicting or not ready.
    pub fn all_ok(&self) -> bool {
        self.entries.iter().all(|e| e.status == "ok") && self.ready.iter().all(|p| p.ok)
    }

    pub fn count(&self, status: &str) -> usize {
        self.entries.iter().filter(|e| e.status == status).count()
    }
}

pub async fn show(l: &Loaded) -> Result<ShowReport> {
    let (live, plan) = super::plan(l).await?;
    let ready = super::converge::probes(l, &live, &plan)
        .await
        .into_iter()
        .map(|(container, target, r)| ProbeResult {
            container,
            target,
            ok: r.is_ok(),
            detail: match r {
                Ok(rtt) => format!("{:.1} ms", rtt.as_secs_f64() * 1000.0),
                Err(e) => e.to_string(),
            },
        })
        .collect();
    let observed = &live.observed;
    // The plan holds the diff already: no second one.
    let all_changes = plan.changes.iter().map(|s| &s.change);
    let changes: HashMap<&ResourceKey, _> = all_changes.clone().map(|c| (&c.key, c)).collect();
    let conflicts: HashMap<&ResourceKey, _> = plan.conflicts.iter().map(|c| (&c.key, c)).collect();
    let pending: HashMap<&ResourceKey, _> = plan.pending.iter().map(|p| (&p.key, p)).collect();
    let mut desired: Vec<_> = l.graph.resources().collect();
    desired.sort_by_key(|r| r.key());
    let mut entries = vec![];
    for r in desired {
        let key = r.key();
        let (status, drift) = if let Some(c) = conflicts.get(&key) {
            ("conflict", vec![c.message.clone()])
        } else if let Some(p) = pending.get(&key) {
            ("pending", vec![p.reason.clone()])
        } else if let Some(c) = changes.get(&key) {
            match c.action {
                Action::Create => ("missing", vec![]),
                Action::Replace => ("drift", vec![c.reason.clone().unwrap_or_default()]),
                Action::Update | Action::Delete => (
                    "drift",
                    c.fields
                        .iter()
                        .map(FieldChange::transition)
                        .chain(c.reason.clone())
                        .collect(),
                ),
            }
        } else {
            ("ok", vec![])
        };
        entries.push(Entry {
            live: r.kind().live(observed),
            key,
            kind: r.kind_name(),
            title: r.title(),
            status,
            drift,
        });
    }
    for c in all_changes.filter(|c| c.action == Action::Delete) {
        entries.push(Entry {
            key: c.key.clone(),
            kind: c.kind.clone(),
            title: c.title.clone(),
            status: "extra",
            live: c
                .current
                .as_ref()
                .map(|r| r.kind().live(observed))
                .unwrap_or_default(),
            drift: vec![
                "owned by this topology but not in the files: the next apply deletes it".into(),
            ],
        });
    }
    Ok(ShowReport {
        format_version: SHOW_FORMAT_VERSION,
        topology: l.topo.name.clone(),
        netns: l.topo.netns.clone(),
        entries,
        ready,
        bgp: bgp_show(l, observed),
        watch: super::watch::served::read(&l.topo.name),
    })
}
