//! The desired-state graph: one node per resource, edges "must exist before".

use crate::diag::{Diagnostic, Loc};
use crate::model::Topology;
use crate::naming::host_end;
use crate::resource::{
    AttachKey, AttachRes, ContainerRouteRes, IfacePeer, IfaceRes, LinkEnd, LinkKind, LinkRes,
    LoopbackRes, NetnsRes, Resource, ResourceKey, RouteKey, RouteRes, RuleKey, SysctlRes,
};
use ipnet::IpNet;
use petgraph::Direction;
use petgraph::algo::{tarjan_scc, toposort};
use petgraph::graph::{DiGraph, NodeIndex};
use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::net::IpAddr;

#[derive(Debug, Clone)]
pub struct Node {
    pub resource: Resource,
    pub loc: Option<Loc>,
    /// Topological depth: independent nodes share a level.
    pub level: usize,
}

#[derive(Debug, Default)]
pub struct DesiredGraph {
    pub graph: DiGraph<Node, ()>,
    pub index: HashMap<ResourceKey, NodeIndex>,
    /// The edges made so far: petgraph's `update_edge` scans the source's
    /// edge list, quadratic for a netns that precedes thousands of links.
    edges: HashSet<(NodeIndex, NodeIndex)>,
}

impl DesiredGraph {
    pub fn resources(&self) -> impl Iterator<Item = &Resource> {
        self.graph.node_weights().map(|n| &n.resource)
    }

    pub fn get(&self, key: &ResourceKey) -> Option<&Resource> {
        self.index.get(key).map(|i| &self.graph[*i].resource)
    }

    pub fn contains(&self, key: &ResourceKey) -> bool {
        self.index.contains_key(key)
    }

    /// The topological depth of a desired object.
    pub fn level(&self, key: &ResourceKey) -> Option<usize> {
        self.index.get(key).map(|i| self.graph[*i].level)
    }

    /// Resources that must exist after `key` (its direct dependents).
    pub fn dependents(&self, key: &ResourceKey) -> Vec<&Resource> {
        let Some(&i) = self.index.get(key) else {
            return vec![];
        };
        self.graph
            .neighbors_directed(i, Direction::Outgoing)
            .map(|n| &self.graph[n].resource)
            .collect()
    }

    fn add(&mut self, resource: Resource, loc: Option<Loc>) -> NodeIndex {
        let key = resource.key();
        let i = self.graph.add_node(Node {
            resource,
            loc,
            level: 0,
        });
        self.index.insert(key, i);
        i
    }

    fn edge(&mut self, before: &ResourceKey, after: NodeIndex) {
        if let Some(&b) = self.index.get(before) {
            self.link(b, after);
        }
    }

    /// `before` must exist before `after`; once, however often asked.
    fn link(&mut self, before: NodeIndex, after: NodeIndex) {
        if before != after && self.edges.insert((before, after)) {
            self.graph.add_edge(before, after, ());
        }
    }

    /// Graphviz DOT, nodes labelled with kind and name.
    pub fn to_dot(&self, topology: &str) -> String {
        let mut out = format!(
            "digraph \"{}\" {{\n  rankdir=LR;\n  node [shape=box, fontname=\"monospace\"];\n",
            esc(topology)
        );
        let mut nodes: Vec<_> = self.graph.node_indices().collect();
        nodes.sort_by_key(|i| self.graph[*i].resource.key());
        for i in &nodes {
            let r = &self.graph[*i].resource;
            let _ = writeln!(
                out,
                "  \"{}\" [label=\"{} {}\"];",
                esc(&r.key().to_string()),
                r.kind_name(),
                esc(&r.title())
            );
        }
        let mut edges: Vec<(String, String)> = self
            .graph
            .edge_indices()
            .filter_map(|e| self.graph.edge_endpoints(e))
            .map(|(a, b)| {
                (
                    self.graph[a].resource.key().to_string(),
                    self.graph[b].resource.key().to_string(),
                )
            })
            .collect();
        edges.sort();
        for (a, b) in edges {
            let _ = writeln!(out, "  \"{}\" -> \"{}\";", esc(&a), esc(&b));
        }
        out.push_str("}\n");
        out
    }
}

/// A string inside a DOT double-quoted ID.
pub(crate) fn esc(s: &str) -> String {
    s.replace('\\', "\\\\").replace('"', "\\\"")
}

/// Builds the graph; a dependency cycle is an error at every member's location.
pub fn build(topo: &Topology) -> Result<DesiredGraph, Vec<Diagnostic>> {
    let mut g = DesiredGraph::default();
    let netns_key = topo.netns.as_ref().map(|n| {
        g.add(
            Resource::Netns(NetnsRes { name: n.clone() }),
            Some(topo.name_loc.clone()),
        );
        ResourceKey::Netns { name: n.clone() }
    });

    let links = add_links(&mut g, topo);
    let route_nodes = add_routes(&mut g, topo, &links);
    add_rules(&mut g, topo, &links.owner_of, &route_nodes);
    add_docker(&mut g, topo);
    let wired = add_container_wiring(&mut g, topo);
    add_container_routes(&mut g, topo, &wired);
    add_container_extras(&mut g, topo, &wired);
    add_topology_sysctls(&mut g, topo, &links);
    add_cni(&mut g, topo);
    let services = crate::resource::ServiceRes::all_of(topo);
    for (s, r) in topo.services.values().zip(services) {
        g.add(Resource::Service(r), Some(s.loc.clone()));
    }
    add_bgp(&mut g, topo);
    add_explicit(&mut g, topo);
    if let Some(nk) = &netns_key {
        add_netns_edges(&mut g, nk);
    }

    check_cycles(&g)?;
    set_levels(&mut g);
    Ok(g)
}

fn link_key(name: &str) -> ResourceKey {
    ResourceKey::Link {
        name: name.to_string(),
    }
}

/// What the links section learns for the sections after it.
struct Links {
    /// Which link holds each declared (connected) subnet, for gateway lookups.
    connected: Vec<(IpNet, String)>,
    /// Where every interface name lives: a veth peer resolves to its pair.
    owner_of: HashMap<String, String>,
}

/// A route's node, key and gateway, for the rules that steer into its table.
type RouteNode = (NodeIndex, RouteKey, Option<IpAddr>);

/// A container's wired interfaces: node and addresses, for its routes.
type Wired<'a> = HashMap<&'a str, Vec<(NodeIndex, &'a str, Vec<IpNet>)>>;

/// Bridges and veths; a veth after the bridges its ends are enslaved to.
fn add_links(g: &mut DesiredGraph, topo: &Topology) -> Links {
    let mut connected: Vec<(IpNet, String)> = Vec::new();
    let mut owner_of: HashMap<String, String> = HashMap::new();

    for b in topo.bridges.values() {
        g.add(
            Resource::Link(LinkRes {
                kind: LinkKind::Bridge,
                end: LinkEnd {
                    name: b.name.clone(),
                    mtu: b.mtu,
                    up: b.up,
                    master: None,
                    addresses: b.addresses.clone(),
                },
                peer: None,
                external: b.external,
                adopt: b.adopt,
            }),
            Some(b.loc.clone()),
        );
        connected.extend(b.addresses.iter().map(|a| (a.trunc(), b.name.clone())));
        owner_of.insert(b.name.clone(), b.name.clone());
    }
    for v in topo.veths.values() {
        let i = g.add(
            Resource::Link(LinkRes {
                kind: LinkKind::Veth,
                end: LinkEnd {
                    name: v.name.clone(),
                    mtu: Some(v.mtu),
                    up: v.up,
                    master: v.master.clone(),
                    addresses: v.addresses.clone(),
                },
                peer: Some(LinkEnd {
                    name: v.peer.clone(),
                    mtu: Some(v.mtu),
                    up: v.up,
                    master: v.peer_master.clone(),
                    addresses: v.peer_addresses.clone(),
                }),
                external: false,
                adopt: v.adopt,
            }),
            Some(v.loc.clone()),
        );
        for m in v.master.iter().chain(v.peer_master.iter()) {
            g.edge(&link_key(m), i);
        }
        connected.extend(v.addresses.iter().map(|a| (a.trunc(), v.name.clone())));
        connected.extend(v.peer_addresses.iter().map(|a| (a.trunc(), v.name.clone())));
        owner_of.insert(v.name.clone(), v.name.clone());
        owner_of.insert(v.peer.clone(), v.name.clone());
    }
    Links {
        connected,
        owner_of,
    }
}

/// Routes after their `dev`, then after the link their gateway is on.
fn add_routes(g: &mut DesiredGraph, topo: &Topology, links: &Links) -> Vec<RouteNode> {
    let route_nodes: Vec<RouteNode> = topo
        .routes
        .iter()
        .map(|r| {
            let key = RouteKey {
                table: r.table,
                to: r.to,
                metric: r.metric,
            };
            let i = g.add(
                Resource::Route(RouteRes {
                    key: key.clone(),
                    via: r.via,
                    dev: r.dev.clone(),
                    nexthops: r.nexthops.clone(),
                }),
                Some(r.loc.clone()),
            );
            for d in r
                .dev
                .iter()
                .chain(r.nexthops.iter().filter_map(|h| h.dev.as_ref()))
            {
                g.edge(&link_key(&links.owner_of[d]), i);
            }
            (i, key, r.via)
        })
        .collect();
    // A gateway is reached through the connected subnet of a topology link
    // (the kernel does not resolve gateways through other routes).
    let gateways = route_nodes
        .iter()
        .zip(&topo.routes)
        .flat_map(|((i, _, _), r)| {
            r.via
                .into_iter()
                .chain(r.nexthops.iter().map(|h| h.via))
                .map(move |v| (*i, v))
        });
    let gateways: Vec<(NodeIndex, IpAddr)> = gateways.collect();
    for (i, via) in &gateways {
        let best = links
            .connected
            .iter()
            .filter(|(net, _)| net.contains(via))
            .max_by_key(|(net, _)| net.prefix_len());
        if let Some((_, link)) = best {
            g.edge(&link_key(link), *i);
        }
    }
    route_nodes
}

/// Rules after the links they match on and the routes of their table.
fn add_rules(
    g: &mut DesiredGraph,
    topo: &Topology,
    owner_of: &HashMap<String, String>,
    route_nodes: &[RouteNode],
) {
    for r in &topo.rules {
        let key = RuleKey::of(r);
        let i = g.add(Resource::Rule(key.clone()), Some(r.loc.clone()));
        for name in r.iif.iter().chain(r.oif.iter()) {
            if let Some(o) = owner_of.get(name) {
                g.edge(&link_key(o), i);
            }
        }
        // Fill a table before steering traffic into it.
        for (ri, rk, _) in route_nodes {
            if rk.table == r.table && Family::of_net(&rk.to) == r.family {
                g.link(*ri, i);
            }
        }
    }
}

/// Docker: networks before the containers attached to them.
fn add_docker(g: &mut DesiredGraph, topo: &Topology) {
    for n in topo.networks.values() {
        g.add(Resource::Network(n.res.clone()), Some(n.loc.clone()));
    }
    for c in topo.containers.values() {
        for a in c.networks.values() {
            let i = g.add(
                Resource::Attachment(AttachRes {
                    key: AttachKey {
                        container: c.name.clone(),
                        network: a.network.clone(),
                    },
                    ipv4: a.ipv4,
                    ipv6: a.ipv6,
                    aliases: a.aliases.clone(),
                }),
                Some(a.loc.clone()),
            );
            g.edge(
                &ResourceKey::Network {
                    name: a.network.clone(),
                },
                i,
            );
        }
    }
}

/// Direct container wiring: interfaces after their bridge, and the
/// container-to-container links. Returns each container's wired ends.
fn add_container_wiring<'a>(g: &mut DesiredGraph, topo: &'a Topology) -> Wired<'a> {
    let mut wired: Wired<'a> = HashMap::new();
    for c in topo.containers.values() {
        for i in c.interfaces.values() {
            let n = g.add(
                Resource::Iface(IfaceRes {
                    container: c.name.clone(),
                    name: i.name.clone(),
                    mtu: i.mtu,
                    addresses: i.addresses.clone(),
                    peer: IfacePeer::Bridge {
                        host: host_end(&topo.name, &c.name, &i.name),
                        bridge: i.bridge.clone(),
                    },
                }),
                Some(i.loc.clone()),
            );
            g.edge(&link_key(&i.bridge), n);
            wired.entry(&c.name).or_default().push((
                n,
                i.name.as_str(),
                i.addresses.iter().copied().collect(),
            ));
        }
    }
    for l in &topo.links {
        let n = g.add(
            Resource::Iface(IfaceRes {
                container: l.a.0.clone(),
                name: l.a.1.clone(),
                mtu: l.mtu,
                addresses: l.a_addresses.clone(),
                peer: IfacePeer::Container {
                    container: l.b.0.clone(),
                    name: l.b.1.clone(),
                    addresses: l.b_addresses.clone(),
                },
            }),
            Some(l.loc.clone()),
        );
        wired.entry(&l.a.0).or_default().push((
            n,
            l.a.1.as_str(),
            l.a_addresses.iter().copied().collect(),
        ));
        wired.entry(&l.b.0).or_default().push((
            n,
            l.b.1.as_str(),
            l.b_addresses.iter().copied().collect(),
        ));
    }
    wired
}

/// Container routes after the container interface their gateway is on.
fn add_container_routes(g: &mut DesiredGraph, topo: &Topology, wired: &Wired<'_>) {
    for c in topo.containers.values() {
        for r in &c.routes {
            let n = g.add(
                Resource::ContainerRoute(ContainerRouteRes {
                    container: c.name.clone(),
                    to: r.to,
                    via: r.via,
                    dev: r.dev.clone(),
                    metric: r.metric,
                    nexthops: r.nexthops.clone(),
                }),
                Some(r.loc.clone()),
            );
            // Only the interfaces a gateway or `dev` is on: a route must
            // not wait for a link elsewhere that is pending. Without one
            // (`lo`, or a gateway validated to be on some), all of them.
            let ends = wired
                .get(c.name.as_str())
                .map(Vec::as_slice)
                .unwrap_or_default();
            let vias: Vec<IpAddr> = r
                .via
                .into_iter()
                .chain(r.nexthops.iter().map(|h| h.via))
                .collect();
            let devs: Vec<&str> = r
                .dev
                .iter()
                .chain(r.nexthops.iter().filter_map(|h| h.dev.as_ref()))
                .map(String::as_str)
                .collect();
            let on_subnet: Vec<NodeIndex> = ends
                .iter()
                .filter(|(_, name, nets)| {
                    devs.contains(name)
                        || nets
                            .iter()
                            .any(|a| vias.iter().any(|v| a.trunc().contains(v)))
                })
                .map(|(i, _, _)| *i)
                .collect();
            let deps: Vec<NodeIndex> = if on_subnet.is_empty() {
                ends.iter().map(|(i, _, _)| *i).collect()
            } else {
                on_subnet
            };
            for i in deps {
                g.link(i, n);
            }
        }
    }
}

/// The interface names a sysctl key is about (`net.ipv4.conf.e1.forwarding`).
fn key_names(key: &str) -> Vec<&str> {
    key.split(['.', '/']).collect()
}

/// Loopback addresses and sysctls inside containers; a sysctl of an
/// interface after that interface.
fn add_container_extras(g: &mut DesiredGraph, topo: &Topology, wired: &Wired<'_>) {
    for c in topo.containers.values() {
        if !c.loopback.is_empty() {
            g.add(
                Resource::Loopback(LoopbackRes {
                    container: c.name.clone(),
                    addresses: c.loopback.clone(),
                }),
                Some(c.loc.clone()),
            );
        }
        let ends = wired
            .get(c.name.as_str())
            .map(Vec::as_slice)
            .unwrap_or_default();
        for (key, value) in &c.sysctls {
            let n = g.add(
                Resource::Sysctl(SysctlRes {
                    container: Some(c.name.clone()),
                    key: key.clone(),
                    value: Some(value.clone()),
                    restore: None,
                }),
                Some(c.loc.clone()),
            );
            let names = key_names(key);
            for (i, name, _) in ends {
                if names.contains(name) {
                    g.link(*i, n);
                }
            }
        }
    }
}

/// Sysctls of the topology's netns, after the links they name.
fn add_topology_sysctls(g: &mut DesiredGraph, topo: &Topology, links: &Links) {
    for (key, value) in &topo.sysctls {
        let n = g.add(
            Resource::Sysctl(SysctlRes {
                container: None,
                key: key.clone(),
                value: Some(value.clone()),
                restore: None,
            }),
            Some(topo.name_loc.clone()),
        );
        for name in key_names(key) {
            if let Some(owner) = links.owner_of.get(name) {
                g.edge(&link_key(owner), n);
            }
        }
    }
}

/// Explicit ordering from `depends_on`.
fn add_explicit(g: &mut DesiredGraph, topo: &Topology) {
    let explicit: Vec<(ResourceKey, &Vec<String>)> = topo
        .bridges
        .values()
        .map(|b| (link_key(&b.name), &b.depends_on))
        .chain(
            topo.veths
                .values()
                .map(|v| (link_key(&v.name), &v.depends_on)),
        )
        .chain(topo.routes.iter().map(|r| {
            (
                ResourceKey::Route(RouteKey {
                    table: r.table,
                    to: r.to,
                    metric: r.metric,
                }),
                &r.depends_on,
            )
        }))
        .chain(
            topo.rules
                .iter()
                .map(|r| (ResourceKey::Rule(RuleKey::of(r)), &r.depends_on)),
        )
        .collect();
    for (key, deps) in explicit {
        let i = g.index[&key];
        for d in deps {
            let before = g.index[&link_key(d)];
            g.link(before, i);
        }
    }
}

/// The topology's netns before everything that lives in it.
/// CNI attachments: the plugins run in the topology's netns (its edge
/// comes with every other non-Docker node's).
fn add_cni(g: &mut DesiredGraph, topo: &Topology) {
    for c in topo.containers.values() {
        for a in c.cni.values() {
            let r = crate::resource::CniRes::from_model(&c.name, a, &topo.cni[&a.network]);
            g.add(Resource::Cni(r), Some(a.loc.clone()));
        }
    }
}

/// The speaker first; a peer after the policies it uses, so its first
/// routes already meet them.
fn add_bgp(g: &mut DesiredGraph, topo: &Topology) {
    use crate::resource::{BgpKey, BgpRes};
    let Some(b) = &topo.bgp else { return };
    let speaker = ResourceKey::Bgp(BgpKey::Speaker);
    for r in BgpRes::from_model(b, &topo.name) {
        let loc = match &r {
            BgpRes::Peer(p) => b.peers.get(&p.name).map(|p| p.loc.clone()),
            BgpRes::Policy(p) => b.policies.get(&p.name).and_then(|p| p.loc.clone()),
            _ => Some(b.loc.clone()),
        };
        let is_speaker = matches!(r, BgpRes::Speaker(_));
        let i = g.add(Resource::Bgp(r), loc);
        if !is_speaker {
            g.edge(&speaker, i);
        }
    }
    for p in b.peers.values() {
        let Some(&i) = g.index.get(&ResourceKey::Bgp(BgpKey::Peer {
            name: p.name.clone(),
        })) else {
            continue;
        };
        for pol in p.import.iter().chain(&p.export) {
            g.edge(&ResourceKey::Bgp(BgpKey::Policy { name: pol.clone() }), i);
        }
    }
}

fn add_netns_edges(g: &mut DesiredGraph, netns_key: &ResourceKey) {
    let all: Vec<NodeIndex> = g.graph.node_indices().collect();
    for i in all {
        // Docker objects live in the daemon, not in the netns.
        if !g.graph[i].resource.is_docker() {
            g.edge(netns_key, i);
        }
    }
}

use crate::model::Family;

fn check_cycles(g: &DesiredGraph) -> Result<(), Vec<Diagnostic>> {
    if toposort(&g.graph, None).is_ok() {
        return Ok(());
    }
    let mut diags = vec![];
    for scc in tarjan_scc(&g.graph) {
        if scc.len() < 2 {
            continue;
        }
        let mut members: Vec<&Node> = scc.iter().map(|i| &g.graph[*i]).collect();
        members.sort_by_key(|n| n.loc.as_ref().map(|l| (l.file, l.span.start)));
        let names: Vec<String> = members
            .iter()
            .map(|n| format!("{} {}", n.resource.kind_name(), n.resource.title()))
            .collect();
        let first = members[0];
        let mut d = Diagnostic::error(
            first.loc.clone(),
            format!("dependency cycle: {} → {}", names.join(" → "), names[0]),
        )
        .help("each object here must exist before the next: remove one `depends_on` (or `master`) to break the cycle");
        for n in &members[1..] {
            if let Some(l) = &n.loc {
                d = d.related(
                    l,
                    format!(
                        "{} {} is part of the cycle",
                        n.resource.kind_name(),
                        n.resource.title()
                    ),
                );
            }
        }
        diags.push(d);
    }
    Err(diags)
}

fn set_levels(g: &mut DesiredGraph) {
    let order = toposort(&g.graph, None).expect("acyclic");
    for i in order {
        let d = g
            .graph
            .neighbors_directed(i, Direction::Incoming)
            .map(|p| g.graph[p].level + 1)
            .max()
            .unwrap_or(0);
        g.graph[i].level = d;
    }
}
