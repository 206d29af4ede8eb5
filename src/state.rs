//! Resources, their stable keys, what was observed live, and ownership marks.
//!
//! Desired and observed state use the same `Resource` type so the diff
//! compares like with like.

use crate::model::{Family, Rule};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Docker label naming the topology that owns a network.
pub const TOPOLOGY_LABEL: &str = "netloom.topology";
/// Docker label holding the hash of a network's configuration: Docker
/// cannot change a network in place, so a new hash means a replacement.
pub const HASH_LABEL: &str = "netloom.config-hash";

/// Route and rule protocol number that marks objects netloom made. Unused by
/// the kernel (< 4) and by the routing daemons listed in iproute2's rt_protos.
pub const NETLOOM_PROTO: u8 = 78;

/// The ifalias that marks a link (and a netns's `lo`) as owned by a topology.
pub fn link_mark(topology: &str) -> String {
    format!("netloom:{topology}")
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Owner {
    Ours,
    Topology(String),
    Unmarked,
}

pub fn link_owner(alias: Option<&str>, topology: &str) -> Owner {
    match alias.and_then(|a| a.strip_prefix("netloom:")) {
        Some(t) if t == topology => Owner::Ours,
        Some(t) => Owner::Topology(t.to_string()),
        None => Owner::Unmarked,
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RouteKey {
    pub table: u32,
    pub to: IpNet,
    pub metric: u32,
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} table {} metric {}", self.to, self.table, self.metric)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct RuleKey {
    pub family: Family,
    pub priority: u32,
    pub from: Option<IpNet>,
    pub to: Option<IpNet>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub table: u32,
}

impl RuleKey {
    pub fn of(r: &Rule) -> RuleKey {
        RuleKey {
            family: r.family,
            priority: r.priority,
            from: r.from,
            to: r.to,
            iif: r.iif.clone(),
            oif: r.oif.clone(),
            table: r.table,
        }
    }
}

impl fmt::Display for RuleKey {
    /// Reads like `ip rule`: `1000: from 10.0.0.0/8 iif br0 lookup 100`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.family == Family::Ipv6 {
            write!(f, "-6 ")?;
        }
        write!(f, "{}: from ", self.priority)?;
        match &self.from {
            Some(n) => write!(f, "{n}")?,
            None => write!(f, "all")?,
        }
        if let Some(n) = &self.to {
            write!(f, " to {n}")?;
        }
        if let Some(i) = &self.iif {
            write!(f, " iif {i}")?;
        }
        if let Some(o) = &self.oif {
            write!(f, " oif {o}")?;
        }
        write!(f, " lookup {}", self.table)
    }
}

/// A stable identity for one managed object.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
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
        to: IpNet,
    },
}

/// The host-side name of a container interface's veth: derived, ≤ 15
/// bytes, stable across runs (FNV-1a of topology, container and interface).
pub fn host_end(topology: &str, container: &str, ifname: &str) -> String {
    let h = fnv1a(&format!("{topology}/{container}/{ifname}"));
    format!("nl{:012x}", h & 0xffff_ffff_ffff)
}

/// The MAC address netloom gives a veth end it creates for a container:
/// derived from (scope, container, interface), so a container restarted and
/// re-wired keeps its MAC and its peers' neighbour entries stay right (with a
/// random MAC they would point at a vanished address for up to a minute).
/// Locally administered unicast (first octet 0x0a), not Docker's 02:42.
pub fn iface_mac(scope: &str, container: &str, ifname: &str) -> [u8; 6] {
    let h = fnv1a(&format!("mac/{scope}/{container}/{ifname}")).to_be_bytes();
    [0x0a, h[3], h[4], h[5], h[6], h[7]]
}

fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// A container's endpoint on a Docker network.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct AttachKey {
    pub container: String,
    pub network: String,
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
        }
    }
}

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
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRes {
    #[serde(flatten)]
    pub key: RouteKey,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
}

/// A Docker network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRes {
    pub name: String,
    /// Docker's id, when observed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    pub external: bool,
    pub driver: String,
    pub subnets: Vec<IpNet>,
    pub gateways: Vec<IpAddr>,
    pub ip_range: Option<IpNet>,
    pub internal: bool,
    pub attachable: bool,
    pub options: BTreeMap<String, String>,
    /// The user's labels (netloom's own are added on creation).
    pub labels: BTreeMap<String, String>,
}

impl NetworkRes {
    pub fn ipv6(&self) -> bool {
        self.subnets.iter().any(|s| matches!(s, IpNet::V6(_)))
    }

    /// A stable hash of everything Docker fixes at creation (FNV-1a over
    /// canonical JSON: std's hasher is not stable across releases).
    pub fn config_hash(&self) -> String {
        let canon = serde_json::json!([
            self.driver,
            self.subnets,
            self.gateways,
            self.ip_range,
            self.internal,
            self.attachable,
            self.options,
            self.labels
        ])
        .to_string();
        format!("{:016x}", fnv1a(&canon))
    }
}

/// A container connected to a Docker network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AttachRes {
    #[serde(flatten)]
    pub key: AttachKey,
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    pub aliases: BTreeSet<String>,
}

/// What the other end of a container interface is.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum IfacePeer {
    /// A host-side end, in the topology's netns, enslaved to a bridge.
    Bridge { host: String, bridge: String },
    /// The other end of a link, in another container.
    Container {
        container: String,
        name: String,
        addresses: BTreeSet<IpNet>,
    },
    /// Observed only: an interface to delete.
    Unknown,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IfaceRes {
    pub container: String,
    pub name: String,
    pub mtu: u32,
    pub addresses: BTreeSet<IpNet>,
    pub peer: IfacePeer,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRouteRes {
    pub container: String,
    pub to: IpNet,
    pub via: IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "resource", rename_all = "lowercase")]
pub enum Resource {
    Netns { name: String },
    Link(LinkRes),
    Route(RouteRes),
    Rule(RuleKey),
    Network(NetworkRes),
    Attachment(AttachRes),
    Iface(IfaceRes),
    ContainerRoute(ContainerRouteRes),
}

impl Resource {
    pub fn key(&self) -> ResourceKey {
        match self {
            Resource::Netns { name } => ResourceKey::Netns { name: name.clone() },
            Resource::Link(l) => ResourceKey::Link {
                name: l.end.name.clone(),
            },
            Resource::Route(r) => ResourceKey::Route(r.key.clone()),
            Resource::Rule(k) => ResourceKey::Rule(k.clone()),
            Resource::Network(n) => ResourceKey::Network {
                name: n.name.clone(),
            },
            Resource::Attachment(a) => ResourceKey::Attachment(a.key.clone()),
            Resource::Iface(i) => ResourceKey::Iface {
                container: i.container.clone(),
                name: i.name.clone(),
            },
            Resource::ContainerRoute(r) => ResourceKey::ContainerRoute {
                container: r.container.clone(),
                to: r.to,
            },
        }
    }

    /// Lives in the topology's netns (and goes when netloom deletes that netns).
    pub fn in_topology_netns(&self) -> bool {
        matches!(
            self,
            Resource::Netns { .. } | Resource::Link(_) | Resource::Route(_) | Resource::Rule(_)
        )
    }

    /// Docker objects live in the daemon, outside any netns.
    pub fn is_docker(&self) -> bool {
        matches!(self, Resource::Network(_) | Resource::Attachment(_))
    }

    /// The word users read in plans: bridge, veth, route, rule, netns.
    pub fn kind_name(&self) -> String {
        match self {
            Resource::Netns { .. } => "netns".into(),
            Resource::Link(l) => l.kind.to_string(),
            Resource::Route(_) => "route".into(),
            Resource::Rule(_) => "rule".into(),
            Resource::Network(n) if n.external => "external network".into(),
            Resource::Network(_) => "network".into(),
            Resource::Attachment(_) => "attachment".into(),
            Resource::Iface(i) if matches!(i.peer, IfacePeer::Container { .. }) => "link".into(),
            Resource::Iface(_) => "interface".into(),
            Resource::ContainerRoute(_) => "container route".into(),
        }
    }

    /// How the object is named in plans: `br0`, `v0 (peer p0)`, `10.0.0.0/8 table 254`.
    pub fn title(&self) -> String {
        match self {
            Resource::Netns { name } => name.clone(),
            Resource::Link(l) => match &l.peer {
                Some(p) => format!("{} (peer {})", l.end.name, p.name),
                None => l.end.name.clone(),
            },
            Resource::Route(r) => {
                let mut s = if r.key.to.prefix_len() == 0 {
                    "default".to_string()
                } else {
                    r.key.to.to_string()
                };
                if let Some(v) = r.via {
                    s += &format!(" via {v}");
                }
                if let Some(d) = &r.dev {
                    s += &format!(" dev {d}");
                }
                s += &format!(" table {}", r.key.table);
                let fam = Family::of_net(&r.key.to);
                if r.key.metric != fam.default_metric() {
                    s += &format!(" metric {}", r.key.metric);
                }
                s
            }
            Resource::Rule(k) => k.to_string(),
            Resource::Network(n) => n.name.clone(),
            Resource::Attachment(a) => format!("{} → {}", a.key.container, a.key.network),
            Resource::Iface(i) => match &i.peer {
                IfacePeer::Bridge { bridge, .. } => {
                    format!("{}:{} (bridge {bridge})", i.container, i.name)
                }
                IfacePeer::Container {
                    container, name, ..
                } => format!("{}:{} ↔ {container}:{name}", i.container, i.name),
                IfacePeer::Unknown => format!("{}:{}", i.container, i.name),
            },
            Resource::ContainerRoute(r) => format!("{} via {} in {}", r.to, r.via, r.container),
        }
    }
}

/// One live interface, as dumped from the kernel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LinkObs {
    pub index: u32,
    pub name: String,
    pub kind: LinkKind,
    pub mtu: u32,
    /// Administratively up (IFF_UP).
    pub up: bool,
    /// Lower layer up (IFF_LOWER_UP): carrier.
    #[serde(default)]
    pub carrier: bool,
    pub master: Option<String>,
    /// For a veth: the other end, when it lives in the same netns.
    pub peer: Option<String>,
    pub alias: Option<String>,
    #[serde(default)]
    pub addresses: Vec<AddrObs>,
    #[serde(default)]
    pub group: u32,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AddrObs {
    pub net: IpNet,
    #[serde(default)]
    pub tentative: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteObs {
    #[serde(flatten)]
    pub route: RouteRes,
    pub protocol: u8,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RuleObs {
    #[serde(flatten)]
    pub key: RuleKey,
    pub protocol: u8,
}

/// Everything observed in the topology's netns, plus the topology's ledger.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Observed {
    /// Whether the topology's named netns exists (always true for the host's).
    pub netns_exists: bool,
    /// The ifalias of the netns's `lo`: the mark netloom leaves on a netns it created.
    #[serde(default)]
    pub netns_mark: Option<String>,
    #[serde(default)]
    pub links: Vec<LinkObs>,
    #[serde(default)]
    pub routes: Vec<RouteObs>,
    #[serde(default)]
    pub rules: Vec<RuleObs>,
    /// Route and rule keys this topology recorded as its own.
    #[serde(default)]
    pub ledger: crate::ledger::Ledger,
    /// The Docker side; `None` when the topology has nothing in Docker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerObs>,
    /// Inside the netns of each running container the topology wires.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub containers: BTreeMap<String, ContainerNetObs>,
}

/// Links (with addresses) and main-table routes inside one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerNetObs {
    pub links: Vec<LinkObs>,
    pub routes: Vec<RouteObs>,
    /// Whose netns this also is ("the host", "container `db`"): wiring it
    /// would change theirs too, so netloom refuses.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shared_with: Option<String>,
    /// Another observed container whose netns this also is, which the
    /// diff goes through instead (a pod: one wired, others only probe).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_netns_as: Option<String>,
}

impl ContainerNetObs {
    pub fn link(&self, name: &str) -> Option<&LinkObs> {
        self.links.iter().find(|l| l.name == name)
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct DockerObs {
    pub networks: Vec<NetworkObs>,
    pub containers: Vec<ContainerObs>,
    /// Destinations of the host's main routing table, for subnet collisions.
    #[serde(default)]
    pub host_routes: Vec<HostRoute>,
    /// `net.ipv6.conf.all.disable_ipv6` on the host.
    #[serde(default)]
    pub ipv6_disabled: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostRoute {
    pub to: IpNet,
    pub dev: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkObs {
    #[serde(flatten)]
    pub net: NetworkRes,
    /// Every label, netloom's included.
    pub all_labels: BTreeMap<String, String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerObs {
    pub id: String,
    pub name: String,
    /// Docker's state: running, exited, created, …
    pub state: String,
    /// The init process, for reaching the container's netns (declared containers only).
    #[serde(default)]
    pub pid: u32,
    /// Endpoints by network name.
    pub endpoints: BTreeMap<String, EndpointObs>,
    /// Docker's network mode: "default", "bridge", a network, "none",
    /// "host" or "container:ID".
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub network_mode: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EndpointObs {
    pub network_id: String,
    /// Static addresses requested at connect time.
    pub ipv4: Option<Ipv4Addr>,
    pub ipv6: Option<Ipv6Addr>,
    /// User aliases (Docker's automatic short-id alias left out).
    pub aliases: BTreeSet<String>,
    /// The address the container got.
    pub address: Option<String>,
    /// The global IPv6 address the container got.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub address6: Option<String>,
    /// Docker lists the network for a running container but there is no
    /// endpoint: what a connect that failed half-way leaves behind. Docker
    /// will not disconnect it, and the container cannot restart with it.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub stale: bool,
}

impl Observed {
    pub fn link(&self, name: &str) -> Option<&LinkObs> {
        self.links.iter().find(|l| l.name == name)
    }

    /// An observed link as the resource it stands for (a veth with its peer end).
    pub fn link_resource(&self, l: &LinkObs) -> LinkRes {
        let end = |l: &LinkObs| LinkEnd {
            name: l.name.clone(),
            mtu: Some(l.mtu),
            up: l.up,
            master: l.master.clone(),
            addresses: l
                .addresses
                .iter()
                .map(|a| a.net)
                .filter(|n| !is_kernel_link_local(n))
                .collect(),
        };
        let peer = l.peer.as_deref().and_then(|p| self.link(p)).map(end);
        LinkRes {
            kind: l.kind.clone(),
            end: end(l),
            peer,
        }
    }
}

/// IPv6 link-local addresses are the kernel's own; they are never managed.
pub fn is_kernel_link_local(net: &IpNet) -> bool {
    matches!(net, IpNet::V6(n) if n.addr().segments()[0] & 0xffc0 == 0xfe80)
}
