//! Resources: one module per kind, each holding what is specific to it —
//! its key, how plans name it, its field diff and prune, its delete order,
//! its ownership claim and release, and how `show` describes it live.
//!
//! The set of kinds is closed: `Resource::kind` is the one exhaustive match
//! that hands out a kind's behaviour (the `Kind` trait), so a new variant
//! does not compile until it has all of it.

mod attachment;
pub mod bgp;
mod cni;
mod container_route;
mod iface;
mod link;
mod loopback;
mod netns;
mod network;
mod route;
mod rule;
mod service;
mod sysctl;

pub use attachment::{AttachKey, AttachRes};
pub use bgp::{BgpKey, BgpRes, GoPolicy, GoStmt};
pub use cni::{CniEntry, CniRes, addresses as cni_addresses, host_links as cni_host_links};
pub use container_route::ContainerRouteRes;
pub use iface::{IfacePeer, IfaceRes};
pub use link::{LinkEnd, LinkKind, LinkRes};
pub use loopback::LoopbackRes;
pub use netns::NetnsRes;
pub use network::{NetworkRes, adopted as network_adopted, builtin as network_builtin};
pub use route::{NextHop, RouteKey, RouteRes};
pub use rule::RuleKey;
pub use service::{Endpoint, ServiceRes};
pub use sysctl::{SysctlObs, SysctlRes, normalize as normalize_sysctl, proc_path as sysctl_path};

use crate::diff::Diff;
use crate::graph::DesiredGraph;
use crate::observed::Observed;
use crate::ownership::Ledger;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A stable identity for one managed object.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum ResourceKey {
    Netns {
        name: String,
    },
    Link {
        name: String,
    },
    Route(RouteKey),
    Rule(RuleKey),
    Network {
        name: String,
    },
    Attachment(AttachKey),
    /// An interface netloom puts into a container's netns (for a
    /// container-to-container link: its first end).
    Iface {
        container: String,
        name: String,
    },
    /// A route inside a container's netns.
    ContainerRoute {
        container: String,
        #[schemars(with = "String")]
        to: IpNet,
    },
    /// netloom's addresses on a container's `lo`.
    Loopback {
        container: String,
    },
    /// A `net.*` sysctl in the topology's netns (`container: None`) or a container's.
    Sysctl {
        container: Option<String>,
        key: String,
    },
    /// An interface a CNI network makes in a container.
    Cni {
        container: String,
        ifname: String,
    },
    /// A service's rules in netloom's nftables table.
    Service {
        name: String,
    },
    /// A part of the topology's BGP speaker.
    Bgp(BgpKey),
}

impl fmt::Display for ResourceKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ResourceKey::Netns { name } => write!(f, "netns/{name}"),
            ResourceKey::Link { name } => write!(f, "link/{name}"),
            ResourceKey::Route(k) => write!(f, "route/{}/{}/{}", k.table, k.to, k.metric),
            ResourceKey::Rule(k) => write!(f, "rule/{k}"),
            ResourceKey::Network { name } => write!(f, "network/{name}"),
            ResourceKey::Attachment(a) => write!(f, "attachment/{}/{}", a.container, a.network),
            ResourceKey::Iface { container, name } => write!(f, "iface/{container}/{name}"),
            ResourceKey::ContainerRoute { container, to } => {
                write!(f, "container-route/{container}/{to}")
            }
            ResourceKey::Loopback { container } => write!(f, "loopback/{container}"),
            ResourceKey::Sysctl { container, key } => match container {
                Some(c) => write!(f, "sysctl/{c}/{key}"),
                None => write!(f, "sysctl/{key}"),
            },
            ResourceKey::Cni { container, ifname } => write!(f, "cni/{container}/{ifname}"),
            ResourceKey::Service { name } => write!(f, "service/{name}"),
            ResourceKey::Bgp(k) => write!(f, "bgp/{k}"),
        }
    }
}

/// The schema of a serialized `Resource`: its kind in `resource`, then
/// that kind's own fields (as `netloom observe` prints them).
#[derive(schemars::JsonSchema)]
#[allow(dead_code)]
pub struct ResourceDoc {
    resource: ResourceKind,
}

#[derive(schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum ResourceKind {
    Netns,
    Link,
    Route,
    Rule,
    Network,
    Attachment,
    Iface,
    ContainerRoute,
    Loopback,
    Sysctl,
    Cni,
    Service,
    Bgp,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "resource", rename_all = "lowercase")]
pub enum Resource {
    Netns(NetnsRes),
    Link(LinkRes),
    Route(RouteRes),
    Rule(RuleKey),
    Network(NetworkRes),
    Attachment(AttachRes),
    Iface(IfaceRes),
    ContainerRoute(ContainerRouteRes),
    Loopback(LoopbackRes),
    Sysctl(SysctlRes),
    Cni(CniRes),
    Service(ServiceRes),
    Bgp(BgpRes),
}

/// The backend that observes and changes a kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BackendId {
    /// Links, addresses, routes and rules in the topology's netns.
    Kernel,
    /// Docker networks and container attachments.
    Docker,
    /// Interfaces and routes inside containers' netns.
    Wiring,
    /// Interfaces CNI plugins make in containers.
    Cni,
    /// Service VIPs in netloom's nftables tables.
    Nft,
    /// The topology's gobgpd, and the routes it learns.
    Bgp,
}

impl BackendId {
    /// Whether what this backend applies stays out of every other
    /// backend's view. nftables: its own table and VIP routes in the
    /// `local` table, which the kernel backend reads only for routes its
    /// ledger names. Not wiring or CNI (a container interface's host end
    /// is a link in the topology's netns), Docker (bridges and veths in
    /// the host's), BGP (learned routes in a kernel table).
    pub fn keeps_to_itself(self) -> bool {
        match self {
            BackendId::Nft => true,
            BackendId::Kernel
            | BackendId::Docker
            | BackendId::Wiring
            | BackendId::Cni
            | BackendId::Bgp => false,
        }
    }
}

impl fmt::Display for BackendId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            BackendId::Kernel => "kernel",
            BackendId::Docker => "Docker",
            BackendId::Wiring => "container wiring",
            BackendId::Cni => "CNI",
            BackendId::Nft => "nftables",
            BackendId::Bgp => "BGP",
        })
    }
}

/// A resource seen by the backend that owns its kind.
pub enum Share<'a> {
    Kernel(KernelRes<'a>),
    Docker(DockerRes<'a>),
    Wiring(WiringRes<'a>),
    Cni(&'a CniRes),
    Nft(&'a ServiceRes),
    Bgp(&'a BgpRes),
}

pub enum KernelRes<'a> {
    Netns(&'a NetnsRes),
    Link(&'a LinkRes),
    Route(&'a RouteRes),
    Rule(&'a RuleKey),
    Sysctl(&'a SysctlRes),
}

pub enum DockerRes<'a> {
    Network(&'a NetworkRes),
    Attachment(&'a AttachRes),
}

pub enum WiringRes<'a> {
    Iface(&'a IfaceRes),
    ContainerRoute(&'a ContainerRouteRes),
    Loopback(&'a LoopbackRes),
    Sysctl(&'a SysctlRes),
}

/// What the diff of one desired object looks at.
pub struct DiffCx<'a> {
    pub topology: &'a str,
    pub desired: &'a DesiredGraph,
    pub observed: &'a Observed,
}

/// The behaviour of one kind of resource.
pub trait Kind {
    fn key(&self) -> ResourceKey;
    /// The word users read in plans: bridge, veth, route, network, link…
    fn kind_name(&self) -> String;
    /// How plans name the object: `br0`, `v0 (peer p0)`, `10.0.0.0/8 table 254`.
    fn title(&self) -> String;
    /// Deletions run in this order (low first): endpoints before networks,
    /// rules before routes, ports before bridges.
    fn delete_rank(&self) -> usize;
    /// Compares this desired object with what is live.
    fn diff(&self, r: &Resource, cx: &DiffCx, out: &mut Diff);
    /// The attributes a plan lists under a create or replace (none by default).
    fn details(&self, _out: &mut String) {}
    /// Records ownership before the object is made; true if the ledger
    /// changed. By default a kind carries its mark on the object itself.
    fn claim(&self, _ledger: &mut Ledger, _observed: &Observed) -> bool {
        false
    }
    /// Forgets ownership after the object was deleted; true if the ledger changed.
    fn release(&self, _ledger: &mut Ledger) -> bool {
        false
    }
    /// After the object was made (and marked): drops intents `claim`
    /// recorded, so a stale one can never make a later foreign object of
    /// that name look like this topology's. True if the ledger changed.
    fn made(&self, _action: crate::diff::Action, _ledger: &mut Ledger) -> bool {
        false
    }
    /// Puts this desired object's ownership into the ledger a successful
    /// apply leaves (`claimed`: what the ledger held before it settled).
    fn settle(&self, _claimed: &Ledger, _ledger: &mut Ledger) {}
    /// The live facts about this object, in words (`show`).
    fn live(&self, observed: &Observed) -> String;
}

impl Resource {
    /// The one dispatch over the closed set of kinds.
    pub fn kind(&self) -> &dyn Kind {
        match self {
            Resource::Netns(r) => r,
            Resource::Link(r) => r,
            Resource::Route(r) => r,
            Resource::Rule(r) => r,
            Resource::Network(r) => r,
            Resource::Attachment(r) => r,
            Resource::Iface(r) => r,
            Resource::ContainerRoute(r) => r,
            Resource::Loopback(r) => r,
            Resource::Sysctl(r) => r,
            Resource::Cni(r) => r,
            Resource::Service(r) => r,
            Resource::Bgp(r) => r,
        }
    }

    pub fn key(&self) -> ResourceKey {
        self.kind().key()
    }

    pub fn kind_name(&self) -> String {
        self.kind().kind_name()
    }

    pub fn title(&self) -> String {
        self.kind().title()
    }

    /// The same object, as one of the kinds of the backend that owns it:
    /// each backend matches its own kinds exhaustively.
    pub fn share(&self) -> Share<'_> {
        match self {
            Resource::Netns(r) => Share::Kernel(KernelRes::Netns(r)),
            Resource::Link(r) => Share::Kernel(KernelRes::Link(r)),
            Resource::Route(r) => Share::Kernel(KernelRes::Route(r)),
            Resource::Rule(r) => Share::Kernel(KernelRes::Rule(r)),
            Resource::Network(r) => Share::Docker(DockerRes::Network(r)),
            Resource::Attachment(r) => Share::Docker(DockerRes::Attachment(r)),
            Resource::Iface(r) => Share::Wiring(WiringRes::Iface(r)),
            Resource::ContainerRoute(r) => Share::Wiring(WiringRes::ContainerRoute(r)),
            Resource::Loopback(r) => Share::Wiring(WiringRes::Loopback(r)),
            Resource::Sysctl(r) if r.container.is_none() => Share::Kernel(KernelRes::Sysctl(r)),
            Resource::Sysctl(r) => Share::Wiring(WiringRes::Sysctl(r)),
            Resource::Cni(r) => Share::Cni(r),
            Resource::Service(r) => Share::Nft(r),
            Resource::Bgp(r) => Share::Bgp(r),
        }
    }

    pub fn backend(&self) -> BackendId {
        match self.share() {
            Share::Kernel(_) => BackendId::Kernel,
            Share::Docker(_) => BackendId::Docker,
            Share::Wiring(_) => BackendId::Wiring,
            Share::Cni(_) => BackendId::Cni,
            Share::Nft(_) => BackendId::Nft,
            Share::Bgp(_) => BackendId::Bgp,
        }
    }

    // One kind out of a list ("the links this plan deletes"); doing
    // something per kind is an exhaustive `match` (or `kind()`), never this.
    pub fn as_link(&self) -> Option<&LinkRes> {
        if let Resource::Link(x) = self {
            Some(x)
        } else {
            None
        }
    }

    pub fn as_route(&self) -> Option<&RouteRes> {
        if let Resource::Route(x) = self {
            Some(x)
        } else {
            None
        }
    }

    pub fn as_network(&self) -> Option<&NetworkRes> {
        if let Resource::Network(x) = self {
            Some(x)
        } else {
            None
        }
    }

    pub fn as_attachment(&self) -> Option<&AttachRes> {
        if let Resource::Attachment(x) = self {
            Some(x)
        } else {
            None
        }
    }

    pub fn as_cni(&self) -> Option<&CniRes> {
        if let Resource::Cni(x) = self {
            Some(x)
        } else {
            None
        }
    }

    pub fn as_iface(&self) -> Option<&IfaceRes> {
        if let Resource::Iface(x) = self {
            Some(x)
        } else {
            None
        }
    }

    /// Lives in the topology's netns (and goes when netloom deletes that netns).
    pub fn in_topology_netns(&self) -> bool {
        self.backend() == BackendId::Kernel
    }

    /// Docker objects live in the daemon, outside any netns.
    pub fn is_docker(&self) -> bool {
        self.backend() == BackendId::Docker
    }
}

/// Marked or ledgered objects of every kind that the files no longer
/// describe: each kind's prune, in one list.
pub(crate) fn prune_all(cx: &DiffCx, out: &mut Diff) {
    link::prune(cx, out);
    route::prune(cx, out);
    rule::prune(cx, out);
    attachment::prune(cx, out);
    network::prune(cx, out);
    iface::prune(cx, out);
    container_route::prune(cx, out);
    loopback::prune(cx, out);
    sysctl::prune(cx, out);
    cni::prune(cx, out);
    service::prune(cx, out);
    bgp::prune(cx, out);
    // Checks across the kinds' changes, once every change is known.
    attachment::address_clashes(cx, out);
    network::endpoint_notes(cx, out);
    iface::drop_host_end_deletions(cx, out);
}
