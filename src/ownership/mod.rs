//! What makes prune safe: the marks netloom leaves on what it made (link
//! ifalias, Docker labels, a route protocol number) and the per-topology
//! ledger for what a mark cannot name.

pub mod ledger;

pub use ledger::{Ledger, write_private};

/// Docker label naming the topology that owns a network.
pub const TOPOLOGY_LABEL: &str = "netloom.topology";
/// Docker label holding the hash of a network's configuration: Docker
/// cannot change a network in place, so a new hash means a replacement.
pub const HASH_LABEL: &str = "netloom.config-hash";

/// Route and rule protocol number that marks objects netloom made. Unused by
/// the kernel (< 4) and by the routing daemons listed in iproute2's rt_protos.
pub const NETLOOM_PROTO: u8 = 78;
/// The route protocol number of routes netloom installs from BGP (`ip route
/// show proto 79`); distinct from its static routes' 78.
pub const NETLOOM_BGP_PROTO: u8 = 79;
/// The metric of learned BGP routes.
pub const BGP_ROUTE_METRIC: u32 = 20;

/// The ifalias that marks a link (and a netns's `lo`) as owned by a topology.
pub fn link_mark(topology: &str) -> String {
    format!("netloom:{topology}")
}

/// Whose a marked object is.
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

/// A route protocol number as `ip route` users know it: `78, netloom`.
pub fn proto_name(p: u8) -> String {
    let name = match p {
        1 => "redirect",
        2 => "kernel",
        3 => "boot",
        4 => "static",
        11 => "zebra",
        12 => "bird",
        16 => "dhcp",
        186 => "bgp",
        NETLOOM_PROTO => "netloom",
        NETLOOM_BGP_PROTO => "netloom-bgp",
        _ => "",
    };
    if name.is_empty() {
        p.to_string()
    } else {
        format!("{p}, {name}")
    }
}

/// Appended to a conflict about a route or rule with netloom's protocol.
pub fn foreign(p: u8) -> &'static str {
    if p == NETLOOM_PROTO {
        ", made by another netloom topology"
    } else {
        ""
    }
}
