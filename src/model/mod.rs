//! The validated topology: names checked, addresses parsed, references
//! resolved. Built only when the files have no errors.

mod bgp;
mod cni;
mod docker;
mod names;
mod routing;
mod service;
mod validate;
mod wiring;

pub use bgp::{
    Bgp, Community, Fam, Peer as BgpPeer, Policy as BgpPolicy, PrefixMatch, Secret, Term as BgpTerm,
};
pub use cni::{CniAttach, CniNet, DEFAULT_PLUGIN_DIRS, parse_version as parse_cni_version};
pub use names::{check_ifname, check_scope_name};
pub use service::{Port, Proto, Service, ServiceNet};
pub use validate::build;

use crate::diag::Loc;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::net::IpAddr;

pub const DEFAULT_MTU: u32 = 1500;
pub const MAIN_TABLE: u32 = 254;

#[derive(Debug, Clone)]
pub struct Topology {
    pub name: String,
    pub name_loc: Loc,
    /// Named netns holding the kernel objects; `None` is the host's.
    pub netns: Option<String>,
    pub bridges: BTreeMap<String, Bridge>,
    pub veths: BTreeMap<String, Veth>,
    pub routes: Vec<Route>,
    pub rules: Vec<Rule>,
    pub networks: BTreeMap<String, Network>,
    pub containers: BTreeMap<String, Container>,
    /// Point-to-point veths between two containers.
    pub links: Vec<ContainerLink>,
    /// CNI networks, by name.
    pub cni: BTreeMap<String, CniNet>,
    /// Services (VIPs on nftables), by name.
    pub services: BTreeMap<String, Service>,
    /// The BGP speaker, if `[bgp]` is declared.
    pub bgp: Option<Bgp>,
    /// `net.*` sysctls in the topology's netns: key → value.
    pub sysctls: BTreeMap<String, String>,
}

/// A veth from a container's netns to a topology bridge.
#[derive(Debug, Clone)]
pub struct Iface {
    pub name: String,
    pub loc: Loc,
    pub bridge: String,
    pub addresses: BTreeSet<IpNet>,
    pub mtu: u32,
}

/// A veth between two containers' netns.
#[derive(Debug, Clone)]
pub struct ContainerLink {
    pub loc: Loc,
    /// (container, interface) of each end.
    pub a: (String, String),
    pub b: (String, String),
    pub a_addresses: BTreeSet<IpNet>,
    pub b_addresses: BTreeSet<IpNet>,
    pub mtu: u32,
}

/// A route inside a container's netns.
#[derive(Debug, Clone)]
pub struct ContainerRoute {
    pub loc: Loc,
    pub to: IpNet,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    /// `None`: the kernel's default for the family.
    pub metric: Option<u32>,
    pub nexthops: Vec<crate::resource::NextHop>,
}

/// Ping from inside the container after apply: readiness, not a sleep.
#[derive(Debug, Clone)]
pub struct Ready {
    pub ping: IpAddr,
    pub retries: u32,
    pub timeout_ms: u64,
}

/// A Docker network as the files declare it: the resource itself, and where.
#[derive(Debug, Clone)]
pub struct Network {
    pub res: crate::resource::NetworkRes,
    pub loc: Loc,
}

/// Validation reads the network's fields as its own.
impl std::ops::Deref for Network {
    type Target = crate::resource::NetworkRes;
    fn deref(&self) -> &Self::Target {
        &self.res
    }
}

/// An existing container that netloom connects to networks.
#[derive(Debug, Clone)]
pub struct Container {
    pub name: String,
    pub loc: Loc,
    pub networks: BTreeMap<String, Attachment>,
    pub interfaces: BTreeMap<String, Iface>,
    pub routes: Vec<ContainerRoute>,
    /// Addresses netloom puts on the container's `lo`.
    pub loopback: BTreeSet<IpNet>,
    /// `net.*` sysctls in the container's netns: key → value.
    pub sysctls: BTreeMap<String, String>,
    pub ready: Option<Ready>,
    /// Interfaces CNI plugins make, by interface name.
    pub cni: BTreeMap<String, CniAttach>,
}

#[derive(Debug, Clone)]
pub struct Attachment {
    pub network: String,
    pub loc: Loc,
    pub ipv4: Option<std::net::Ipv4Addr>,
    pub ipv6: Option<std::net::Ipv6Addr>,
    pub aliases: BTreeSet<String>,
}

#[derive(Debug, Clone)]
pub struct Bridge {
    pub name: String,
    pub loc: Loc,
    /// `None`: the kernel's automatic bridge MTU.
    pub mtu: Option<u32>,
    pub up: bool,
    pub addresses: BTreeSet<IpNet>,
    /// Links (by name) that must exist first, from `depends_on`.
    pub depends_on: Vec<String>,
    /// Exists already; netloom only enslaves ports to it.
    pub external: bool,
    /// Take over an existing, unowned bridge of this name.
    pub adopt: bool,
}

#[derive(Debug, Clone)]
pub struct Veth {
    pub name: String,
    pub loc: Loc,
    pub peer: String,
    pub master: Option<String>,
    pub peer_master: Option<String>,
    pub mtu: u32,
    pub up: bool,
    pub addresses: BTreeSet<IpNet>,
    pub peer_addresses: BTreeSet<IpNet>,
    /// Links (by name) that must exist first, from `depends_on`.
    pub depends_on: Vec<String>,
    /// Take over an existing, unowned pair of these names.
    pub adopt: bool,
}

#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    Serialize,
    Deserialize,
    schemars::JsonSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum Family {
    Ipv4,
    Ipv6,
}

impl Family {
    pub fn of(addr: &IpAddr) -> Family {
        if addr.is_ipv4() {
            Family::Ipv4
        } else {
            Family::Ipv6
        }
    }
    pub fn of_net(net: &IpNet) -> Family {
        Family::of(&net.addr())
    }
    /// The kernel's metric when none is given.
    pub fn default_metric(self) -> u32 {
        match self {
            Family::Ipv4 => 0,
            Family::Ipv6 => 1024,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Route {
    pub loc: Loc,
    pub to: IpNet,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    /// Two or more next hops (ECMP); then `via` and `dev` are `None`.
    pub nexthops: Vec<crate::resource::NextHop>,
    pub table: u32,
    pub metric: u32,
    /// Links (by name) that must exist first, from `depends_on`.
    pub depends_on: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct Rule {
    pub loc: Loc,
    pub family: Family,
    pub from: Option<IpNet>,
    pub to: Option<IpNet>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub table: u32,
    pub priority: u32,
    /// Links (by name) that must exist first, from `depends_on`.
    pub depends_on: Vec<String>,
}
