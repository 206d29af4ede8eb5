//! CNI attachments: plugins invoked with a container's netns, ADD on apply,
//! CHECK on plan and verify, DEL on prune. The plugins run with the
//! topology's netns as the runtime's (a bridge plugin's bridge lives
//! there); results are cached where libcni keeps them.

mod cache;
mod invoke;

use super::{ApplyCx, Backend, Lane};
use crate::backend::Created;
use crate::diff::{Action, Change};
use crate::error::{Error, Result};
use crate::model::{DEFAULT_PLUGIN_DIRS, Topology};
use crate::observed::{CniCached, CniObs, Observed};
use crate::ownership::Ledger;
use crate::resource::{BackendId, CniEntry, CniRes, Resource, Share};
use futures::StreamExt;
use futures::future::BoxFuture;
use invoke::{Call, Conflist};
use std::collections::HashMap;

/// Plugin calls in flight at once (host-local serializes on its own lock).
const IN_FLIGHT: usize = 8;

/// Whether the topology has (or had) CNI attachments.
pub fn needed(topo: &Topology, ledger: &Ledger) -> bool {
    topo.containers.values().any(|c| !c.cni.is_empty()) || !ledger.cni.is_empty()
}

pub struct CniBackend {
    runtime: Option<String>,
    /// Each desired attachment's config, by (container, ifname).
    desired: HashMap<(String, String), CniRes>,
    /// Plugin directories by CNI network name, for DELs of attachments
    /// whose section is gone (the defaults then).
    dirs: HashMap<String, Vec<String>>,
}

impl CniBackend {
    pub fn new(topo: &Topology) -> CniBackend {
        let mut desired = HashMap::new();
        for c in topo.containers.values() {
            for a in c.cni.values() {
                let r = CniRes::from_model(&c.name, a, &topo.cni[&a.network]);
                desired.insert((c.name.clone(), a.ifname.clone()), r);
            }
        }
        CniBackend {
            runtime: topo.netns.clone(),
            desired,
            dirs: topo
                .cni
                .values()
                .map(|n| (n.net_name.clone(), n.dirs.clone()))
                .collect(),
        }
    }

    fn dirs_of(&self, net_name: &str) -> Vec<String> {
        self.dirs
            .get(net_name)
            .cloned()
            .unwrap_or_else(|| DEFAULT_PLUGIN_DIRS.iter().map(|d| d.to_string()).collect())
    }

    /// CHECK of a recorded attachment that is what the files ask for, in
    /// the container's current netns; `None` when it passes or cannot apply.
    async fn check(&self, o: &CniObs, observed: &Observed) -> Option<String> {
        let cached = o.cached.as_ref()?;
        let want = self
            .desired
            .get(&(o.entry.container.clone(), o.entry.ifname.clone()))?;
        let c = observed.container(&o.entry.container)?;
        let current = c.running()
            && c.id == o.entry.id
            && c.sandbox.as_deref() == Some(cached.netns.as_str())
            && cached.config == want.config
            && want.net_name == o.entry.network;
        if !current {
            return None; // planned as a replacement anyway
        }
        let list = Conflist::parse(&cached.config).ok()?;
        if !list.has_check() {
            return None;
        }
        let what = want.title_text();
        let call = Call {
            container_id: &o.entry.id,
            netns: &cached.netns,
            ifname: &o.entry.ifname,
            dirs: &want.dirs,
            runtime: self.runtime.as_deref(),
            what: &what,
        };
        invoke::check(&list, &cached.result, &call)
            .await
            .err()
            .map(|e| match e {
                Error::Backend { message, .. } => message,
                other => other.to_string(),
            })
    }

    async fn add(&self, d: &CniRes, cx: &ApplyCx<'_>) -> Result<()> {
        let Some(c) = cx.observed.container(&d.container).filter(|c| c.running()) else {
            return Err(Error::State(format!(
                "container {} is not running",
                d.container
            )));
        };
        let Some(netns) = c.sandbox.clone() else {
            return Err(Error::State(format!(
                "Docker names no netns for container {}",
                d.container
            )));
        };
        let entry = CniEntry {
            container: d.container.clone(),
            ifname: d.ifname.clone(),
            network: d.net_name.clone(),
            id: c.id.clone(),
        };
        let list = Conflist::parse(&d.config)?;
        let what = d.title_text();
        let call = Call {
            container_id: &entry.id,
            netns: &netns,
            ifname: &d.ifname,
            dirs: &d.dirs,
            runtime: self.runtime.as_deref(),
            what: &what,
        };
        // An ADD that a crash cut short left no cache: DEL (repeatable)
        // clears what it may have made before the ADD again. Otherwise an
        // interface of that name is someone else's, and is left alone.
        if cx
            .observed
            .cni(&d.container, &d.ifname)
            .is_some_and(|o| o.cached.is_none())
        {
            let _ = invoke::del(&list, None, &call).await;
        } else if iface_exists(&netns, &d.ifname) {
            return Err(Error::State(format!(
                "container {} already has an interface {} that netloom did not make",
                d.container, d.ifname
            )));
        }
        let result = invoke::add(&list, &call).await?;
        self.pin_bridge_mac(&list, &result).await?;
        let cached = CniCached {
            config: d.config.clone(),
            netns,
            result,
        };
        cache::write(&entry, &cached).map_err(|e| Error::io("write the CNI result cache", e))
    }

    /// A bridge plugin's bridge takes the MAC of its lowest port until one
    /// is set, and changes it as ports join: the next CHECK of every
    /// attachment made before would then fail ("Bridge interface … Mac
    /// doesn't match"). Setting the MAC it reported, unchanged, pins it.
    async fn pin_bridge_mac(&self, list: &Conflist, result: &serde_json::Value) -> Result<()> {
        let Some(bridge) = list
            .plugins
            .iter()
            .find(|p| p.get("type").and_then(|t| t.as_str()) == Some("bridge"))
            .map(|p| p.get("bridge").and_then(|b| b.as_str()).unwrap_or("cni0"))
        else {
            return Ok(());
        };
        let mac = result["interfaces"]
            .as_array()
            .into_iter()
            .flatten()
            .find(|i| i["name"] == bridge && i.get("sandbox").is_none())
            .and_then(|i| i["mac"].as_str())
            .and_then(parse_mac);
        let (Some(mac), Some(k)) = (
            mac,
            crate::backend::kernel::Kernel::connect(self.runtime.as_deref()).await?,
        ) else {
            return Ok(());
        };
        let msg = rtnetlink::LinkUnspec::new_with_name(bridge)
            .address(mac.to_vec())
            .build();
        k.handle()?
            .link()
            .set(msg)
            .execute()
            .await
            .map_err(|e| Error::kernel("set", format!("the MAC of bridge {bridge}"), e))
    }

    /// DEL of the recorded attachment of (container, ifname), with the
    /// config its ADD ran with, in its netns if that still exists.
    async fn del(&self, container: &str, ifname: &str, cx: &ApplyCx<'_>) -> Result<()> {
        let Some(o) = cx.observed.cni(container, ifname) else {
            return Ok(());
        };
        let Some(cached) = &o.cached else {
            return Ok(());
        };
        let list = Conflist::parse(&cached.config)?;
        // Only a running container's current netns: a removed or restarted
        // one leaves its old netns file behind, unmounted.
        let live = cx.observed.container(container).is_some_and(|c| {
            c.running() && c.id == o.entry.id && c.sandbox.as_deref() == Some(cached.netns.as_str())
        });
        let netns = if live { cached.netns.as_str() } else { "" };
        let dirs = self.dirs_of(&o.entry.network);
        let what = format!("{container}:{ifname} → {}", o.entry.network);
        let call = Call {
            container_id: &o.entry.id,
            netns,
            ifname,
            dirs: &dirs,
            runtime: self.runtime.as_deref(),
            what: &what,
        };
        invoke::del(&list, Some(&cached.result), &call).await?;
        cache::remove(&o.entry).map_err(|e| Error::io("remove a CNI result cache entry", e))
    }
}

impl CniRes {
    fn title_text(&self) -> String {
        format!("{}:{} → {}", self.container, self.ifname, self.network)
    }
}

impl Backend for CniBackend {
    fn id(&self) -> BackendId {
        BackendId::Cni
    }

    fn lane(&self) -> Lane {
        Lane::Concurrent(IN_FLIGHT)
    }

    fn runs_in_netns(&self) -> bool {
        true
    }

    fn observe<'a>(
        &'a mut self,
        topo: &'a Topology,
        into: &'a mut Observed,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut found = vec![];
            for e in &into.ledger.cni {
                let cached = cache::read(e)
                    .map_err(|err| Error::io(format!("read {}", cache::path(e).display()), err))?;
                found.push(CniObs {
                    entry: e.clone(),
                    cached,
                    check_failed: None,
                });
            }
            let observed: &Observed = into;
            // Boxed one by one: a closure returning the future would fail
            // the boxed observe's Send check.
            let mut pending: Vec<BoxFuture<'_, Option<String>>> = vec![];
            for o in &found {
                pending.push(Box::pin(self.check(o, observed)));
            }
            let checks: Vec<Option<String>> = futures::stream::iter(pending)
                .buffered(IN_FLIGHT)
                .collect()
                .await;
            for (o, c) in found.iter_mut().zip(checks) {
                o.check_failed = c;
            }
            into.cni = found;
            into.cni_missing = missing_plugins(topo);
            Ok(())
        })
    }

    fn apply<'a>(&'a self, c: &'a Change, cx: &'a ApplyCx<'a>) -> BoxFuture<'a, Result<Created>> {
        Box::pin(async move {
            let Some(Share::Cni(r)) = c.resource().map(Resource::share) else {
                return Err(crate::backend::not_mine(self, c));
            };
            match c.action {
                Action::Create => self.add(r, cx).await?,
                Action::Update | Action::Replace => {
                    self.del(&r.container, &r.ifname, cx).await?;
                    self.add(r, cx).await?;
                }
                Action::Delete => self.del(&r.container, &r.ifname, cx).await?,
            }
            Ok(vec![])
        })
    }
}

/// Whether the netns file `netns` holds an interface named `ifname`.
fn iface_exists(netns: &str, ifname: &str) -> bool {
    let Ok(fd) = std::fs::File::open(netns) else {
        return false;
    };
    crate::netns::run_in(Some(&fd), || nix::net::if_::if_nametoindex(ifname).is_ok())
        .unwrap_or(false)
}

/// (network section, plugin type) for each plugin found in none of its
/// network's directories.
fn missing_plugins(topo: &Topology) -> Vec<(String, String)> {
    let mut out = vec![];
    for n in topo.cni.values() {
        for p in &n.plugins {
            let Some(t) = p.get("type").and_then(|t| t.as_str()) else {
                continue;
            };
            if invoke::find(&n.dirs, t).is_none() {
                out.push((n.name.clone(), t.to_string()));
            }
        }
    }
    out
}

/// `8e:1d:a1:2e:43:58` as bytes.
fn parse_mac(s: &str) -> Option<[u8; 6]> {
    let mut out = [0u8; 6];
    let mut parts = s.split(':');
    for b in &mut out {
        *b = u8::from_str_radix(parts.next()?, 16).ok()?;
    }
    parts.next().is_none().then_some(out)
}
