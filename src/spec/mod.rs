//! The topology file format: serde mirror of the TOML, with source spans.
//!
//! These are wire types: strings stay strings here (so each list entry keeps
//! its own span) and are checked and converted in `model`.

mod hint;
mod load;
mod schema;

pub use hint::netns_hint;
pub use load::{Loaded, Section, SpecFile, load_paths, load_texts};
pub use schema::{check_keys, schema_json};

use schemars::JsonSchema;
use serde::Deserialize;
use std::collections::BTreeMap;
use toml::Spanned;

/// One topology file. Several files (a directory) merge into one topology.
#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
#[schemars(title = "netloom topology")]
pub struct TopologyFile {
    /// The topology's identity and scope. Exactly one file of a topology declares it.
    pub topology: Option<TopologySection>,
    /// Linux bridges, by interface name.
    #[serde(default)]
    pub bridge: BTreeMap<String, BridgeSpec>,
    /// veth pairs, by the name of their first end.
    #[serde(default)]
    pub veth: BTreeMap<String, VethSpec>,
    /// Routes in the topology's network namespace.
    #[serde(default)]
    pub route: Vec<RouteSpec>,
    /// Policy-routing rules in the topology's network namespace.
    #[serde(default)]
    pub rule: Vec<RuleSpec>,
    /// Docker networks, by name.
    #[serde(default)]
    pub network: BTreeMap<String, NetworkSpec>,
    /// Existing containers netloom networks, by container name.
    #[serde(default)]
    pub container: BTreeMap<String, ContainerSpec>,
    /// Point-to-point veth links between two containers.
    #[serde(default)]
    pub link: Vec<LinkSpec>,
    /// CNI networks (plugin lists, as in a .conflist), by name.
    #[serde(default)]
    pub cni: BTreeMap<String, CniSpec>,
    /// Services: virtual IPs over container endpoints, on nftables.
    #[serde(default)]
    pub service: BTreeMap<String, ServiceSpec>,
    /// The topology's BGP speaker (gobgpd): peers, announcements, policy.
    pub bgp: Option<BgpSpec>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BgpSpec {
    /// The speaker's AS number (1–4294967295).
    #[schemars(with = "u32")]
    pub asn: Spanned<i64>,
    /// The BGP router id: an IPv4 address.
    #[schemars(with = "String")]
    pub router_id: Spanned<String>,
    /// Prefixes this speaker originates (next hop self).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub announce: Vec<Spanned<String>>,
    /// Learned best routes go into the kernel (default true).
    pub install: Option<bool>,
    /// Kernel table for learned routes (default 254, main).
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub table: Option<Spanned<i64>>,
    /// TCP port gobgpd listens on for BGP (default 179; -1: do not listen).
    #[schemars(with = "Option<i32>")]
    pub listen_port: Option<Spanned<i64>>,
    /// Drive an existing gobgpd at this API ("unix:///path.sock") instead
    /// of the one netloom runs for the topology. The topology owns it outright.
    #[schemars(with = "Option<String>")]
    pub api: Option<Spanned<String>>,
    /// Peers, by name.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, BgpPeerSpec>")]
    pub peer: BTreeMap<Spanned<String>, BgpPeerSpec>,
    /// Route policies, by name, used by peers' `import` and `export`.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, BgpPolicySpec>")]
    pub policy: BTreeMap<Spanned<String>, BgpPolicySpec>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BgpPeerSpec {
    /// The neighbour's address (IPv4 or IPv6).
    #[schemars(with = "String")]
    pub address: Spanned<String>,
    /// The neighbour's AS number.
    #[schemars(with = "u32")]
    pub asn: Spanned<i64>,
    /// TCP MD5 password: `{ env = "VAR" }` or `{ file = "/path" }` (a
    /// literal string is a warning: it would be committed to git).
    #[schemars(with = "Option<PasswordSpec>")]
    pub password: Option<Spanned<PasswordSpec>>,
    /// Allow `password` as a literal string without a warning.
    pub allow_literal_password: Option<bool>,
    /// Hold time in seconds (3–65535; default 90); keepalive is a third of it.
    #[schemars(with = "Option<u32>")]
    pub hold_time: Option<Spanned<i64>>,
    /// Wait for the neighbour to connect (default false).
    pub passive: Option<bool>,
    /// eBGP multihop TTL.
    #[schemars(with = "Option<u8>", range(min = 1, max = 255))]
    pub multihop: Option<Spanned<i64>>,
    /// Address families: "ipv4", "ipv6" (default: the family of `address`).
    #[schemars(with = "Option<Vec<String>>")]
    pub families: Option<Spanned<Vec<Spanned<String>>>>,
    /// Most prefixes accepted from the neighbour, per family.
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub max_prefixes: Option<Spanned<i64>>,
    /// Policies applied in order to routes from this peer.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub import: Vec<Spanned<String>>,
    /// Policies applied in order to routes sent to this peer.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub export: Vec<Spanned<String>>,
}

/// A secret's source. Its Debug never shows a literal.
#[derive(Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum PasswordSpec {
    Literal(String),
    Env { env: String },
    File { file: String },
}

impl std::fmt::Debug for PasswordSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            PasswordSpec::Literal(_) => f.write_str("Literal((redacted))"),
            PasswordSpec::Env { env } => write!(f, "Env({env})"),
            PasswordSpec::File { file } => write!(f, "File({file})"),
        }
    }
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BgpPolicySpec {
    /// For routes no term matches: "accept" or "reject" (omitted: they
    /// go on to the peer's next policy, and are accepted after the last).
    #[schemars(with = "Option<String>")]
    pub default: Option<Spanned<String>>,
    /// Terms, tried in order; the first that matches decides.
    #[serde(default)]
    pub term: Vec<BgpTermSpec>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BgpTermSpec {
    /// Prefix list: "10.0.0.0/8" (exact), "10.0.0.0/8 le 24", "10.0.0.0/8 ge 16 le 24".
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub prefixes: Vec<Spanned<String>>,
    /// Matches routes carrying any of these communities ("ASN:VALUE").
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub communities: Vec<Spanned<String>>,
    /// "accept" (default) or "reject".
    #[schemars(with = "Option<String>")]
    pub action: Option<Spanned<String>>,
    /// Attributes set on accepted routes.
    pub set: Option<BgpSetSpec>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BgpSetSpec {
    /// Communities added ("ASN:VALUE").
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub communities: Vec<Spanned<String>>,
    #[schemars(with = "Option<u32>")]
    pub local_pref: Option<Spanned<i64>>,
    #[schemars(with = "Option<u32>")]
    pub med: Option<Spanned<i64>>,
    /// Prepend the speaker's own AS this many times.
    #[schemars(with = "Option<u8>", range(min = 1, max = 32))]
    pub prepend: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ServiceSpec {
    /// The virtual IPs (IPv4 and/or IPv6).
    #[schemars(with = "Vec<String>")]
    pub addresses: Spanned<Vec<Spanned<String>>>,
    /// Ports the VIPs serve, each forwarded to `target` on the endpoints.
    #[schemars(with = "Vec<PortSpec>")]
    pub ports: Spanned<Vec<PortSpec>>,
    /// A `[network.X]` (Docker) or `[bridge.X]`: endpoints are reached at
    /// their address on it.
    #[schemars(with = "String")]
    pub network: Spanned<String>,
    /// Running containers with all these Docker labels are endpoints.
    #[serde(default)]
    pub selector: BTreeMap<String, String>,
    /// Containers by name that are endpoints (declared or not).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub endpoints: Vec<Spanned<String>>,
    /// Session affinity.
    pub affinity: Option<AffinitySpec>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PortSpec {
    /// The port on the VIPs.
    #[schemars(with = "u16", range(min = 1, max = 65535))]
    pub port: Spanned<i64>,
    /// The port on the endpoints (default: `port`).
    #[schemars(with = "Option<u16>", range(min = 1, max = 65535))]
    pub target: Option<Spanned<i64>>,
    /// "tcp" (default) or "udp".
    #[schemars(with = "Option<String>")]
    pub protocol: Option<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AffinitySpec {
    /// A client IP keeps its endpoint for this long after its last new
    /// connection ("30s", "10m", "3h").
    #[schemars(with = "String")]
    pub client_ip: Spanned<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TopologySection {
    /// Ownership scope: every object netloom creates is marked with this name.
    #[schemars(with = "String")]
    pub name: Spanned<String>,
    /// Named network namespace (as in `ip netns`) that holds the kernel
    /// objects; created if absent. Default: the host's namespace.
    #[schemars(with = "Option<String>")]
    pub netns: Option<Spanned<String>>,
    /// Network sysctls in the topology's netns (`net.*` only); removed
    /// keys get their old value back.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub sysctls: BTreeMap<Spanned<String>, Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct BridgeSpec {
    /// The bridge exists already (made by the user, or another tool):
    /// netloom enslaves its ports to it but never changes or deletes it.
    /// No other key may be given.
    #[schemars(with = "Option<bool>")]
    pub external: Option<Spanned<bool>>,
    /// Take over an existing bridge of this name that nothing owns: netloom
    /// marks it, converges its settings, and owns it from then on.
    pub adopt: Option<bool>,
    /// Interface addresses in CIDR form, e.g. "10.0.0.1/24", "fd00::1/64".
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub addresses: Vec<Spanned<String>>,
    /// MTU in bytes. Given: pinned, kept when ports join. Omitted: the
    /// kernel's automatic MTU (the smallest port's; 1500 without ports).
    #[schemars(with = "Option<u32>", range(min = 68, max = 65535))]
    pub mtu: Option<Spanned<i64>>,
    /// Administrative state (default true).
    pub up: Option<bool>,
    /// Extra ordering: objects ("bridge.NAME", "veth.NAME") that must exist first.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub depends_on: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct VethSpec {
    /// Take over an existing veth pair of these names that nothing owns.
    pub adopt: Option<bool>,
    /// Name of the other end of the pair.
    #[schemars(with = "String")]
    pub peer: Spanned<String>,
    /// Bridge this end is enslaved to.
    #[schemars(with = "Option<String>")]
    pub master: Option<Spanned<String>>,
    /// Bridge the peer end is enslaved to.
    #[schemars(with = "Option<String>")]
    pub peer_master: Option<Spanned<String>>,
    /// MTU of both ends (default 1500).
    #[schemars(with = "Option<u32>", range(min = 68, max = 65535))]
    pub mtu: Option<Spanned<i64>>,
    /// Administrative state of both ends (default true).
    pub up: Option<bool>,
    /// Addresses of this end, in CIDR form.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub addresses: Vec<Spanned<String>>,
    /// Addresses of the peer end, in CIDR form.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub peer_addresses: Vec<Spanned<String>>,
    /// Extra ordering: objects ("bridge.NAME", "veth.NAME") that must exist first.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub depends_on: Vec<Spanned<String>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RouteSpec {
    /// Destination prefix ("10.20.0.0/16", "fd00:20::/48") or "default".
    #[schemars(with = "String")]
    pub to: Spanned<String>,
    /// Gateway address, same family as `to`; a list of several is an
    /// equal-cost multipath route (ECMP).
    #[schemars(with = "Option<ViaSpec>")]
    pub via: Option<Spanned<ViaSpec>>,
    /// Output interface: a bridge or veth end of this topology.
    #[schemars(with = "Option<String>")]
    pub dev: Option<Spanned<String>>,
    /// Next hops of a multipath route, each with its own `dev` and
    /// `weight` (instead of `via`).
    #[serde(default)]
    pub nexthops: Vec<NexthopSpec>,
    /// Routing table id (default 254, "main").
    #[schemars(with = "Option<u32>", range(min = 1))]
    pub table: Option<Spanned<i64>>,
    /// Route metric / priority (default 0 for IPv4, 1024 for IPv6, as the kernel).
    #[schemars(with = "Option<u32>")]
    pub metric: Option<Spanned<i64>>,
    /// Extra ordering: objects ("bridge.NAME", "veth.NAME") that must exist first.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub depends_on: Vec<Spanned<String>>,
}

/// One gateway, or several (ECMP).
#[derive(Debug, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum ViaSpec {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NexthopSpec {
    /// Gateway address.
    #[schemars(with = "String")]
    pub via: Spanned<String>,
    /// Output interface for this next hop.
    #[schemars(with = "Option<String>")]
    pub dev: Option<Spanned<String>>,
    /// Share of flows, relative to the other next hops (1–256, default 1).
    #[schemars(with = "Option<u16>", range(min = 1, max = 256))]
    pub weight: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RuleSpec {
    /// Source prefix to match.
    #[schemars(with = "Option<String>")]
    pub from: Option<Spanned<String>>,
    /// Destination prefix to match.
    #[schemars(with = "Option<String>")]
    pub to: Option<Spanned<String>>,
    /// Input interface to match.
    #[schemars(with = "Option<String>")]
    pub iif: Option<Spanned<String>>,
    /// Output interface to match.
    #[schemars(with = "Option<String>")]
    pub oif: Option<Spanned<String>>,
    /// Table to look up.
    #[schemars(with = "u32", range(min = 1))]
    pub table: Spanned<i64>,
    /// Rule priority: required, it is part of the rule's identity.
    #[schemars(with = "u32", range(min = 1, max = 32765))]
    pub priority: Spanned<i64>,
    /// Address family when neither `from` nor `to` is given (default "ipv4").
    #[schemars(with = "Option<Family>")]
    pub family: Option<Spanned<String>>,
    /// Extra ordering: objects ("bridge.NAME", "veth.NAME") that must exist first.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub depends_on: Vec<Spanned<String>>,
}

/// Address family names accepted by `family`.
#[derive(JsonSchema)]
#[serde(rename_all = "lowercase")]
#[allow(dead_code)]
enum Family {
    Ipv4,
    Ipv6,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NetworkSpec {
    /// The network exists already: netloom attaches containers to it but
    /// never changes or deletes it. No other key may be given.
    #[schemars(with = "Option<bool>")]
    pub external: Option<Spanned<bool>>,
    /// Docker network driver: "bridge" (default), "macvlan" (needs `parent`),
    /// others are passed through.
    #[schemars(with = "Option<String>")]
    pub driver: Option<Spanned<String>>,
    /// Host interface of a macvlan or ipvlan network.
    #[schemars(with = "Option<String>")]
    pub parent: Option<Spanned<String>>,
    /// Subnets in CIDR form (IPv4 and IPv6; at least one).
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub subnets: Vec<Spanned<String>>,
    /// Gateway addresses, at most one per subnet.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub gateways: Vec<Spanned<String>>,
    /// Range (CIDR, within a subnet) Docker allocates dynamic addresses from.
    #[schemars(with = "Option<String>")]
    pub ip_range: Option<Spanned<String>>,
    /// No outside connectivity (default false).
    pub internal: Option<bool>,
    /// Containers may be attached manually (default true).
    pub attachable: Option<bool>,
    /// Driver options, passed to Docker as given.
    #[serde(default)]
    pub options: BTreeMap<String, String>,
    /// Labels added to the network (`netloom.*` is reserved).
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub labels: BTreeMap<Spanned<String>, String>,
    /// MTU, as the driver option `com.docker.network.driver.mtu`.
    #[schemars(with = "Option<u32>", range(min = 68, max = 65535))]
    pub mtu: Option<Spanned<i64>>,
    /// Take over an existing Docker network of this name that nothing owns
    /// (ownership is then kept in the ledger: its labels cannot change).
    pub adopt: Option<bool>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerSpec {
    /// Docker networks to connect the container to, by network name.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, AttachSpec>")]
    pub networks: BTreeMap<Spanned<String>, AttachSpec>,
    /// Interfaces netloom puts straight into the container's netns: a veth
    /// whose other end is enslaved to a topology bridge.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, IfaceSpec>")]
    pub interfaces: BTreeMap<Spanned<String>, IfaceSpec>,
    /// Routes inside the container's netns.
    #[serde(default)]
    pub routes: Vec<ContainerRouteSpec>,
    /// Addresses on the container's `lo` (router ids: "10.10.10.1/32").
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub loopback: Vec<Spanned<String>>,
    /// Network sysctls inside the container's netns
    /// (`{ "net.ipv4.ip_forward" = "1" }`); removed keys get their old value back.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, String>")]
    pub sysctls: BTreeMap<Spanned<String>, Spanned<String>>,
    /// A readiness probe run inside the container's netns after apply.
    pub ready: Option<ReadySpec>,
    /// Interfaces made by CNI plugins, by interface name: ADD on apply,
    /// CHECK on plan and verify, DEL when removed.
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, CniAttachSpec>")]
    pub cni: BTreeMap<Spanned<String>, CniAttachSpec>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CniSpec {
    /// The plugin chain, each a table turned into the plugin's JSON config
    /// (`type` names the plugin binary). Or give `file`.
    #[schemars(with = "Option<Vec<serde_json::Map<String, serde_json::Value>>>")]
    pub plugins: Option<Spanned<Vec<serde_json::Map<String, serde_json::Value>>>>,
    /// A .conflist file (JSON), relative to this topology file.
    #[schemars(with = "Option<String>")]
    pub file: Option<Spanned<String>>,
    /// The CNI spec version of an inline `plugins` list (default "1.0.0").
    #[schemars(with = "Option<String>")]
    pub cni_version: Option<Spanned<String>>,
    /// Directories searched for plugin binaries, in order (default
    /// ["/usr/lib/cni", "/opt/cni/bin"]).
    #[schemars(with = "Option<Vec<String>>")]
    pub plugin_dirs: Option<Vec<Spanned<String>>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CniAttachSpec {
    /// The `[cni.NAME]` network whose plugins make this interface.
    #[schemars(with = "String")]
    pub network: Spanned<String>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IfaceSpec {
    /// Topology bridge the host end is enslaved to.
    #[schemars(with = "String")]
    pub bridge: Spanned<String>,
    /// Addresses of the container end, in CIDR form.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub addresses: Vec<Spanned<String>>,
    /// MTU of both ends (default 1500).
    #[schemars(with = "Option<u32>", range(min = 68, max = 65535))]
    pub mtu: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ContainerRouteSpec {
    /// Destination prefix or "default" (a default route must use a gateway
    /// on one of the container's netloom interfaces).
    #[schemars(with = "String")]
    pub to: Spanned<String>,
    /// Gateway address; a list of several is an ECMP route.
    #[schemars(with = "Option<ViaSpec>")]
    pub via: Option<Spanned<ViaSpec>>,
    /// Output interface: one of the container's netloom interfaces, or "lo".
    #[schemars(with = "Option<String>")]
    pub dev: Option<Spanned<String>>,
    /// Route metric (default 0 for IPv4, 1024 for IPv6, as the kernel).
    #[schemars(with = "Option<u32>")]
    pub metric: Option<Spanned<i64>>,
    /// Next hops of a multipath route, each with its own `dev` and `weight`.
    #[serde(default)]
    pub nexthops: Vec<NexthopSpec>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReadySpec {
    /// IPv4 or IPv6 address to ping from inside the container after apply.
    #[schemars(with = "String")]
    pub ping: Spanned<String>,
    /// Tries before giving up (default 5), each waiting up to `timeout_ms`.
    #[schemars(with = "Option<u32>")]
    pub retries: Option<Spanned<i64>>,
    /// Milliseconds to wait for each reply (default 1000).
    #[schemars(with = "Option<u32>")]
    pub timeout_ms: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinkSpec {
    /// The two ends, "CONTAINER:IFNAME".
    #[schemars(with = "[String; 2]")]
    pub endpoints: Spanned<Vec<Spanned<String>>>,
    /// Addresses per end, keyed by "CONTAINER:IFNAME".
    #[serde(default)]
    #[schemars(with = "BTreeMap<String, Vec<String>>")]
    pub addresses: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    /// MTU of both ends (default 1500).
    #[schemars(with = "Option<u32>", range(min = 68, max = 65535))]
    pub mtu: Option<Spanned<i64>>,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AttachSpec {
    /// Static IPv4 address on the network.
    #[schemars(with = "Option<String>")]
    pub ipv4: Option<Spanned<String>>,
    /// Static IPv6 address on the network.
    #[schemars(with = "Option<String>")]
    pub ipv6: Option<Spanned<String>>,
    /// DNS aliases of the container on the network.
    #[serde(default)]
    #[schemars(with = "Vec<String>")]
    pub aliases: Vec<Spanned<String>>,
}
