//! What observation found live: the kernel in the topology's netns, Docker,
//! and the netns of each wired container, plus the topology's ledger.

use crate::ownership::{Ledger, Owner, link_owner};
use crate::resource::{LinkEnd, LinkKind, LinkRes, NetworkRes, RouteRes, RuleKey};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

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
    pub ledger: Ledger,
    /// Sysctls the topology sets or set, in its netns; `None` when that
    /// netns does not exist yet.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sysctls: Option<crate::resource::SysctlObs>,
    /// The Docker side; `None` when the topology has nothing in Docker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerObs>,
    /// Inside the netns of each running container the topology wires.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub containers: BTreeMap<String, ContainerNetObs>,
    /// The CNI attachments the ledger records, as their cache and CHECK found them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cni: Vec<CniObs>,
    /// netloom's nftables tables of this topology (host's and topology netns's).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nft: Vec<NftObs>,
    /// nftables tables in the topology's netns that are not netloom's
    /// (`family name`): destroy keeps that netns for them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nft_foreign: Vec<String>,
    /// (CNI network section, plugin type) of plugins in none of its `plugin_dirs`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cni_missing: Vec<(String, String)>,
    /// The topology's BGP speaker, as gobgpd reports it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<BgpObs>,
    /// `links` by name, built on first lookup (diff looks up every link
    /// by name: a scan each made planning quadratic). Observation fills
    /// `links` whole before anything looks a link up; a list changed
    /// afterwards is caught when its length or a found name disagrees.
    #[serde(skip)]
    #[doc(hidden)]
    pub link_index: NameIndex,
}

impl Observed {
    /// Copies what backend `id` observes from `from` (the ledger aside,
    /// which is the topology's, not a backend's).
    pub fn keep_part(&mut self, id: crate::resource::BackendId, from: &Observed) {
        use crate::resource::BackendId;
        // Every field named, none with `..`: a new field must be given to
        // a backend here, or verification would keep a stale copy of it.
        let Observed {
            netns_exists,
            netns_mark,
            links,
            routes,
            rules,
            ledger: _,
            sysctls,
            docker,
            containers,
            cni,
            nft,
            nft_foreign,
            cni_missing,
            bgp,
            link_index: _,
        } = from;
        match id {
            BackendId::Kernel => {
                self.netns_exists = *netns_exists;
                self.netns_mark.clone_from(netns_mark);
                self.links.clone_from(links);
                self.routes.clone_from(routes);
                self.rules.clone_from(rules);
                self.sysctls.clone_from(sysctls);
            }
            BackendId::Docker => self.docker.clone_from(docker),
            BackendId::Wiring => self.containers.clone_from(containers),
            BackendId::Cni => {
                self.cni.clone_from(cni);
                self.cni_missing.clone_from(cni_missing);
            }
            BackendId::Nft => {
                self.nft.clone_from(nft);
                self.nft_foreign.clone_from(nft_foreign);
            }
            BackendId::Bgp => self.bgp.clone_from(bgp),
        }
    }
}

/// A lookup table derived from observed data, built once when first asked.
/// Not part of what was observed: equal, cloned and printed as nothing.
pub struct Derived<T>(std::sync::OnceLock<T>);

impl<T> Default for Derived<T> {
    fn default() -> Self {
        Derived(std::sync::OnceLock::new())
    }
}

impl<T> Clone for Derived<T> {
    fn clone(&self) -> Self {
        Derived::default()
    }
}

impl<T> PartialEq for Derived<T> {
    fn eq(&self, _: &Self) -> bool {
        true
    }
}

impl<T> Eq for Derived<T> {}

impl<T> std::fmt::Debug for Derived<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Derived")
    }
}

/// Positions in a `Vec<LinkObs>` by name.
pub type NameIndex = Derived<HashMap<String, usize>>;

impl NameIndex {
    /// The link named `name`. Checked against the vector itself, so a
    /// vector changed after the index was built is scanned instead.
    fn find<'a>(&self, links: &'a [LinkObs], name: &str) -> Option<&'a LinkObs> {
        let idx = self.0.get_or_init(|| {
            let mut m = HashMap::with_capacity(links.len());
            for (i, l) in links.iter().enumerate() {
                m.entry(l.name.clone()).or_insert(i);
            }
            m
        });
        let scan = || links.iter().find(|l| l.name == name);
        if idx.len() != links.len() {
            return scan();
        }
        match idx.get(name).and_then(|&i| links.get(i)) {
            Some(l) if l.name == name => Some(l),
            Some(_) => scan(),
            None => None,
        }
    }
}

/// gobgpd's state, and the learned routes in the kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpObs {
    /// gobgpd answered on its API socket.
    pub running: bool,
    /// 0: gobgpd runs but was never started (or lost its state in a restart).
    pub asn: u32,
    pub router_id: String,
    pub listen_port: i32,
    #[serde(default)]
    pub peers: Vec<BgpPeerObs>,
    /// Prefixes this speaker originates (local paths).
    #[serde(default)]
    pub local: Vec<IpNet>,
    /// Best paths learned from peers.
    #[serde(default)]
    pub best: Vec<BgpLearned>,
    /// The global import and export policy lists, as compiled statements.
    #[serde(default)]
    pub import: Vec<crate::resource::GoPolicy>,
    #[serde(default)]
    pub export: Vec<crate::resource::GoPolicy>,
    /// Routes with netloom's BGP protocol number in the topology's netns.
    #[serde(default)]
    pub kernel: Vec<BgpKernelRoute>,
    /// Prefixes of the learned-route table that hold another protocol's
    /// route at the learned routes' metric: left alone, never replaced.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub kernel_taken: Vec<IpNet>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpPeerObs {
    pub address: std::net::IpAddr,
    pub asn: u32,
    pub password: Option<crate::model::Secret>,
    pub hold_time: u32,
    pub passive: bool,
    pub multihop: Option<u32>,
    pub families: Vec<crate::model::Fam>,
    pub max_prefixes: Option<u32>,
    /// "established", "active", "idle", …
    pub state: String,
    /// Unix time the session came up (established only).
    pub up_since: Option<i64>,
    pub received: u64,
    /// Received and accepted by import policy (counted from adj-in).
    pub accepted: u64,
    pub advertised: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BgpLearned {
    pub prefix: IpNet,
    pub nexthop: std::net::IpAddr,
    /// The peer's address.
    pub peer: std::net::IpAddr,
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct BgpKernelRoute {
    pub table: u32,
    pub prefix: IpNet,
    pub via: Option<std::net::IpAddr>,
}

/// netloom's nftables table in one netns, read back by rule comments.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NftObs {
    /// In the host's netns (else the topology's).
    pub host: bool,
    /// (chain, comment) of every rule; rules without a comment have "".
    pub rules: Vec<(String, String)>,
    /// The table's own rules are all there, and no rule is someone else's.
    pub base_ok: bool,
    /// VIPs answered in the topology's netns by a `local` route of
    /// netloom's (read on every observation: the nftables generation does
    /// not cover routes).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub local: Vec<IpAddr>,
    /// Each rule's handle, as `rules` (for changes made in place; empty
    /// when not known).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub handles: Vec<u64>,
    /// Rule positions by service, built on first lookup: each service's
    /// diff asks, and a scan of every rule each made 1,000 services slow.
    #[serde(skip)]
    #[doc(hidden)]
    pub by_service: ServiceIndex,
    /// (netns inode, nftables generation) this listing is true at.
    #[serde(skip)]
    #[doc(hidden)]
    pub stamp: Option<(u64, u32)>,
}

/// Rule positions in `NftObs::rules` by service name.
pub type ServiceIndex = Derived<BTreeMap<String, Vec<usize>>>;

impl NftObs {
    fn index(&self) -> &BTreeMap<String, Vec<usize>> {
        self.by_service.0.get_or_init(|| {
            let mut m: BTreeMap<String, Vec<usize>> = BTreeMap::new();
            for (i, (_, c)) in self.rules.iter().enumerate() {
                if let Some(name) = c.strip_prefix("nl svc ").and_then(|r| r.split(' ').next()) {
                    m.entry(name.to_string()).or_default().push(i);
                }
            }
            m
        })
    }

    fn of_service<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a (String, String)> + 'a {
        self.index()
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|&i| self.rules.get(i))
    }

    /// A service's rules with their handles, in table order.
    pub fn rules_with_handles(&self, name: &str) -> Vec<(&str, &str, Option<u64>)> {
        self.index()
            .get(name)
            .into_iter()
            .flatten()
            .filter_map(|&i| {
                let (chain, comment) = self.rules.get(i)?;
                Some((
                    chain.as_str(),
                    comment.as_str(),
                    self.handles.get(i).copied(),
                ))
            })
            .collect()
    }

    /// Whether a service has rules here.
    pub fn has_service(&self, name: &str) -> bool {
        self.index().contains_key(name)
    }

    /// The services that have rules here.
    pub fn services(&self) -> BTreeSet<String> {
        self.index().keys().cloned().collect()
    }

    /// A service's rules, sorted.
    pub fn rules_of<'a>(&'a self, name: &'a str) -> Vec<(&'a str, &'a str)> {
        let mut v: Vec<(&str, &str)> = self
            .of_service(name)
            .map(|(c, m)| (c.as_str(), m.as_str()))
            .collect();
        v.sort_unstable();
        v
    }

    /// The endpoints a service's rules lead to, by name.
    pub fn endpoints_of<'a>(&'a self, name: &'a str) -> BTreeSet<&'a str> {
        self.of_service(name)
            .filter_map(|(_, c)| {
                c.strip_prefix("nl svc ")?
                    .strip_prefix(name)?
                    .strip_prefix(" ep ")?
                    .split(' ')
                    .next()
            })
            .collect()
    }
}

/// One recorded CNI attachment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniObs {
    pub entry: crate::resource::CniEntry,
    /// The cached ADD (libcni's cache file); `None` if the ADD never finished.
    pub cached: Option<CniCached>,
    /// Why CHECK failed, when it ran and did.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub check_failed: Option<String>,
}

/// What libcni's cache holds about one ADD.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CniCached {
    /// The conflist the ADD ran with.
    pub config: String,
    pub netns: String,
    /// The chain's final result.
    pub result: serde_json::Value,
}

/// Links (with addresses) and main-table routes inside one container.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerNetObs {
    pub links: Vec<LinkObs>,
    pub routes: Vec<RouteObs>,
    /// The sysctls the topology sets or set here.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sysctls: crate::resource::SysctlObs,
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
    /// Unlabelled networks other topologies adopted: id → topology.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub adopted_elsewhere: BTreeMap<String, String>,
}

impl DockerObs {
    pub fn container(&self, name: &str) -> Option<&ContainerObs> {
        self.containers.iter().find(|c| c.name == name)
    }
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

/// Docker's container state, parsed once where it is read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ContainerState {
    Running,
    Created,
    Exited,
    Paused,
    Restarting,
    Removing,
    Dead,
    /// Docker did not say.
    Unknown,
    Other(String),
}

impl From<String> for ContainerState {
    fn from(s: String) -> Self {
        match s.as_str() {
            "running" => Self::Running,
            "created" => Self::Created,
            "exited" => Self::Exited,
            "paused" => Self::Paused,
            "restarting" => Self::Restarting,
            "removing" => Self::Removing,
            "dead" => Self::Dead,
            "" => Self::Unknown,
            _ => Self::Other(s),
        }
    }
}

impl From<ContainerState> for String {
    fn from(s: ContainerState) -> String {
        s.to_string()
    }
}

impl fmt::Display for ContainerState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Running => "running",
            Self::Created => "created",
            Self::Exited => "exited",
            Self::Paused => "paused",
            Self::Restarting => "restarting",
            Self::Removing => "removing",
            Self::Dead => "dead",
            Self::Unknown => "",
            Self::Other(s) => s,
        })
    }
}

/// Docker's network mode of a container (`HostConfig.NetworkMode`).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum NetworkMode {
    /// "default", "bridge", a network's name, or not reported.
    #[default]
    Default,
    Named(String),
    None,
    Host,
    /// `container:ID`: another container's netns.
    Container(String),
}

impl NetworkMode {
    /// Docker can connect such a container to networks of its own.
    pub fn has_own_netns(&self) -> bool {
        matches!(self, Self::Default | Self::Named(_))
    }

    /// The container has a netns that is its own (not the host's or
    /// another container's), if perhaps empty.
    pub fn is_private(&self) -> bool {
        match self {
            Self::Default | Self::Named(_) | Self::None => true,
            Self::Host | Self::Container(_) => false,
        }
    }
}

impl From<String> for NetworkMode {
    fn from(s: String) -> Self {
        match s.as_str() {
            "" => Self::Default,
            "none" => Self::None,
            "host" => Self::Host,
            _ => match s.strip_prefix("container:") {
                Some(id) => Self::Container(id.to_string()),
                None => Self::Named(s),
            },
        }
    }
}

impl From<NetworkMode> for String {
    fn from(m: NetworkMode) -> String {
        m.to_string()
    }
}

impl fmt::Display for NetworkMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Default => Ok(()),
            Self::Named(s) => f.write_str(s),
            Self::None => f.write_str("none"),
            Self::Host => f.write_str("host"),
            Self::Container(id) => write!(f, "container:{id}"),
        }
    }
}

fn is_default_mode(m: &NetworkMode) -> bool {
    *m == NetworkMode::Default
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerObs {
    pub id: String,
    pub name: String,
    pub state: ContainerState,
    /// The init process, for reaching the container's netns (declared containers only).
    #[serde(default)]
    pub pid: u32,
    /// The netns file Docker keeps for the container's sandbox (new on
    /// every start; declared containers only): what CNI plugins are given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sandbox: Option<String>,
    /// Endpoints by network name.
    pub endpoints: BTreeMap<String, EndpointObs>,
    #[serde(default, skip_serializing_if = "is_default_mode")]
    pub network_mode: NetworkMode,
    /// Docker labels (what service selectors match).
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The healthcheck's verdict, when the container has one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub health: Option<Health>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Health {
    Starting,
    Healthy,
    Unhealthy,
}

impl Health {
    /// From Docker's status line: "Up 5 minutes (healthy)".
    pub fn from_status(status: &str) -> Option<Health> {
        if status.contains("(healthy)") {
            Some(Health::Healthy)
        } else if status.contains("(unhealthy)") {
            Some(Health::Unhealthy)
        } else if status.contains("(health: starting)") {
            Some(Health::Starting)
        } else {
            None
        }
    }
}

impl ContainerObs {
    pub fn running(&self) -> bool {
        self.state == ContainerState::Running
    }

    /// Running, and healthy where it has a healthcheck: it may serve.
    pub fn ready(&self) -> bool {
        self.running() && self.health.is_none_or(|h| h == Health::Healthy)
    }
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
        self.link_index.find(&self.links, name)
    }

    /// An observed link as the resource it stands for (a veth with its peer end).
    pub fn link_resource(&self, l: &LinkObs) -> LinkRes {
        let end = |l: &LinkObs| LinkEnd {
            name: l.name.clone(),
            mtu: Some(l.mtu),
            up: l.up,
            master: l.master.clone(),
            addresses: managed_addresses(l),
        };
        let peer = l.peer.as_deref().and_then(|p| self.link(p)).map(end);
        LinkRes {
            kind: l.kind.clone(),
            end: end(l),
            peer,
            external: false,
            adopt: false,
        }
    }

    pub fn container(&self, name: &str) -> Option<&ContainerObs> {
        self.docker.as_ref().and_then(|d| d.container(name))
    }

    /// netloom's nftables table in the host's netns, or the topology's.
    pub fn nft_table(&self, host: bool) -> Option<&NftObs> {
        self.nft.iter().find(|t| t.host == host)
    }

    /// The recorded CNI attachment of this container interface.
    pub fn cni(&self, container: &str, ifname: &str) -> Option<&CniObs> {
        self.cni
            .iter()
            .find(|o| o.entry.container == container && o.entry.ifname == ifname)
    }

    /// Whose a link in the topology's netns is: by its mark, or this
    /// topology's if it is unmarked and the ledger says it was being made.
    pub fn owner_of(&self, l: &LinkObs, topology: &str) -> Owner {
        match link_owner(l.alias.as_deref(), topology) {
            Owner::Unmarked if self.ledger.links.contains(&l.name) => Owner::Ours,
            owner => owner,
        }
    }

    /// The same for an interface inside a container.
    pub fn iface_owner(&self, container: &str, l: &LinkObs, topology: &str) -> Owner {
        let intended = || {
            self.ledger
                .ifaces
                .contains(&(container.to_string(), l.name.clone()))
        };
        match link_owner(l.alias.as_deref(), topology) {
            Owner::Unmarked if intended() => Owner::Ours,
            owner => owner,
        }
    }
}

/// A link's addresses without the kernel's own link-local ones.
pub fn managed_addresses(l: &LinkObs) -> BTreeSet<IpNet> {
    l.addresses
        .iter()
        .map(|a| a.net)
        .filter(|n| !is_kernel_link_local(n))
        .collect()
}

/// IPv6 link-local addresses are the kernel's own; they are never managed.
pub fn is_kernel_link_local(net: &IpNet) -> bool {
    matches!(net, IpNet::V6(n) if n.addr().segments()[0] & 0xffc0 == 0xfe80)
}

#[cfg(test)]
mod health_tests {
    use super::Health;

    #[test]
    fn health_is_read_from_dockers_status_line() {
        assert_eq!(
            Health::from_status("Up 5 minutes (healthy)"),
            Some(Health::Healthy)
        );
        assert_eq!(
            Health::from_status("Up 2 seconds (health: starting)"),
            Some(Health::Starting)
        );
        assert_eq!(
            Health::from_status("Up 1 minute (unhealthy)"),
            Some(Health::Unhealthy)
        );
        assert_eq!(Health::from_status("Up 3 hours"), None);
    }
}

#[cfg(test)]
mod index_tests {
    use super::{LinkObs, Observed};
    use crate::resource::LinkKind;

    fn link(index: u32, name: &str) -> LinkObs {
        LinkObs {
            index,
            name: name.into(),
            kind: LinkKind::Bridge,
            mtu: 1500,
            up: true,
            carrier: true,
            master: None,
            peer: None,
            alias: None,
            addresses: vec![],
            group: 0,
        }
    }

    #[test]
    fn links_are_found_by_name_and_a_changed_list_is_still_right() {
        let mut o = Observed {
            links: (0..1000).map(|i| link(i, &format!("b{i}"))).collect(),
            ..Default::default()
        };
        assert_eq!(o.link("b737").map(|l| l.index), Some(737));
        assert!(o.link("b1000").is_none());
        // Changed after the index was built: found in the list itself.
        o.links.push(link(5000, "late"));
        assert_eq!(o.link("late").map(|l| l.index), Some(5000));
        o.links.swap(0, 999);
        assert_eq!(o.link("b0").map(|l| l.index), Some(0));
        assert_eq!(o.link("b999").map(|l| l.index), Some(999));
        o.links.retain(|l| l.name != "b5");
        assert!(o.link("b5").is_none());
        // A clone indexes its own list.
        let c = o.clone();
        assert_eq!(c.link("b10").map(|l| l.index), Some(10));
        assert_eq!(c, o);
    }
}
