//! Kernel link kinds the topology needs, proven by making one in a scratch
//! netns that vanishes afterwards (module autoloading included): reading
//! /sys/module misses built-in drivers.

use super::Finding;
use crate::backend::kernel::Kernel;
use crate::model::Topology;
use futures::TryStreamExt;
use rtnetlink::packet_route::link::{InfoKind, IpVlanMode, MacVlanMode};
use rtnetlink::{
    LinkBridge, LinkDummy, LinkIpVlan, LinkMacVlan, LinkMessageBuilder, LinkUnspec, LinkVeth,
    LinkVlan,
};
use std::collections::BTreeSet;

const CHECK: &str = "link-kinds";

/// The kinds of link the topology makes (directly, through Docker's
/// drivers or through CNI plugins).
fn needed(t: &Topology) -> BTreeSet<&'static str> {
    let mut k = BTreeSet::new();
    if t.bridges.values().any(|b| !b.external) {
        k.insert("bridge");
    }
    let veths = !t.veths.is_empty()
        || !t.links.is_empty()
        || t.containers.values().any(|c| !c.interfaces.is_empty());
    if veths {
        k.insert("veth");
    }
    for n in t.networks.values().filter(|n| !n.external) {
        match n.driver.as_str() {
            "bridge" => {
                k.insert("bridge");
                k.insert("veth");
            }
            "macvlan" => {
                k.insert("macvlan");
            }
            "ipvlan" => {
                k.insert("ipvlan");
            }
            _ => {}
        }
    }
    for p in t.cni.values().flat_map(|n| &n.plugins) {
        match p.get("type").and_then(|v| v.as_str()) {
            Some("bridge") => k.extend(["bridge", "veth"]),
            Some("ptp") => k.extend(["veth"]),
            Some("macvlan") => k.extend(["macvlan"]),
            Some("ipvlan") => k.extend(["ipvlan"]),
            Some("vlan") => k.extend(["vlan"]),
            _ => {}
        }
    }
    k
}

/// Whether the kernel makes a link of `kind` (bridge, veth, dummy,
/// macvlan, ipvlan, vlan), tried in a fresh netns: Err(reason) if not.
pub async fn probe_kind(kind: &str) -> Result<(), String> {
    let fd = crate::netns::scratch().map_err(|e| format!("cannot make a scratch netns: {e}"))?;
    let k = Kernel::connect_fd(Some(&fd)).map_err(|e| e.to_string())?;
    let handle = k.handle().map_err(|e| e.to_string())?;
    let add = |msg| {
        let h = handle.clone();
        async move { h.link().add(msg).execute().await.map_err(|e| e.to_string()) }
    };
    // A veth end as the parent: veth is always there (dummy is not).
    let parent = || async {
        add(LinkVeth::new("nlprobe0", "nlprobe9").build()).await?;
        let mut links = handle
            .link()
            .get()
            .match_name("nlprobe0".to_string())
            .execute();
        match links.try_next().await {
            Ok(Some(l)) => Ok(l.header.index),
            Ok(None) => Err("the parent link vanished".to_string()),
            Err(e) => Err(e.to_string()),
        }
    };
    match kind {
        "bridge" => add(LinkBridge::new("nlprobe1").build()).await,
        "veth" => add(LinkVeth::new("nlprobe1", "nlprobe2").build()).await,
        "dummy" => add(LinkDummy::new("nlprobe1").build()).await,
        "macvlan" => {
            let p = parent().await?;
            add(LinkMacVlan::new("nlprobe1", p, MacVlanMode::Bridge).build()).await
        }
        "ipvlan" => {
            let p = parent().await?;
            add(LinkIpVlan::new("nlprobe1", p, IpVlanMode::L2).build()).await
        }
        "vlan" => {
            let p = parent().await?;
            add(LinkVlan::new("nlprobe1", p, 10).build()).await
        }
        other => {
            let msg = LinkMessageBuilder::<LinkUnspec>::new_with_info_kind(InfoKind::Other(
                other.to_string(),
            ))
            .name("nlprobe1")
            .build();
            add(msg).await
        }
    }
}

pub(super) async fn examine(topo: Option<&Topology>, out: &mut Vec<Finding>) {
    let kinds = match topo {
        Some(t) => needed(t),
        None => ["bridge", "veth"].into_iter().collect(),
    };
    if kinds.is_empty() {
        return;
    }
    // Without the right to make a netns nothing can be told about drivers.
    if let Err(e) = crate::netns::scratch() {
        out.push(Finding::warning(
            CHECK,
            kinds.into_iter().collect::<Vec<_>>().join(", "),
            format!("not checked: cannot make a scratch netns ({e})"),
            "run doctor as root (netloom itself needs root, or CAP_NET_ADMIN and CAP_SYS_ADMIN)",
        ));
        return;
    }
    for kind in kinds {
        out.push(match probe_kind(kind).await {
            Ok(()) => Finding::ok(CHECK, kind, "the kernel makes these links"),
            Err(e) => Finding::error(
                CHECK,
                kind,
                format!("the kernel cannot make a {kind} link: {e}"),
                format!(
                    "load its module (modprobe {}), or use a kernel built with it",
                    module(kind)
                ),
            ),
        });
    }
}

fn module(kind: &str) -> &str {
    match kind {
        "vlan" => "8021q",
        k => k,
    }
}
