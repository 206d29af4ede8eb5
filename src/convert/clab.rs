//! containerlab topology files (`*.clab.yml`) → netloom TOML, for what
//! netloom can express: `linux` and `bridge` nodes, veth links (brief and
//! extended form), `exec:` lines that set addresses, routes, link state and
//! sysctls, and an explicit management network. Everything else is listed,
//! never silently dropped.
//!
//! The format, as containerlab documents it: `name`, `prefix`, `mgmt`
//! (`network`, `ipv4-subnet`, `ipv6-subnet`), `topology.defaults`,
//! `topology.kinds`, `topology.nodes.NAME` (`kind`, `image`, `exec`,
//! `mgmt-ipv4`, `mgmt-ipv6`, …) and `topology.links` (`endpoints`).

use ipnet::IpNet;
use serde::Deserialize;
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;
use yaml_serde::Value;

#[derive(Deserialize)]
struct Lab {
    name: String,
    prefix: Option<String>,
    mgmt: Option<Mgmt>,
    topology: Topo,
}

#[derive(Deserialize)]
struct Mgmt {
    network: Option<String>,
    #[serde(rename = "ipv4-subnet")]
    ipv4_subnet: Option<String>,
    #[serde(rename = "ipv6-subnet")]
    ipv6_subnet: Option<String>,
}

#[derive(Deserialize)]
struct Topo {
    #[serde(default)]
    defaults: NodeDef,
    #[serde(default)]
    kinds: BTreeMap<String, NodeDef>,
    #[serde(default)]
    nodes: BTreeMap<String, Option<NodeDef>>,
    #[serde(default)]
    links: Vec<LinkDef>,
}

#[derive(Deserialize, Default, Clone)]
struct NodeDef {
    kind: Option<String>,
    image: Option<String>,
    #[serde(default)]
    exec: Vec<String>,
    #[serde(rename = "mgmt-ipv4")]
    mgmt_ipv4: Option<String>,
    #[serde(rename = "mgmt-ipv6")]
    mgmt_ipv6: Option<String>,
    /// Every other key, to list what is not converted.
    #[serde(flatten)]
    rest: BTreeMap<String, Value>,
}

#[derive(Deserialize)]
struct LinkDef {
    #[serde(rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    endpoints: Vec<EndpointDef>,
    mtu: Option<u32>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum EndpointDef {
    Brief(String),
    Extended { node: String, interface: String },
}

/// Node keys that are the container's business, not the network's: they
/// are not reported one by one.
const CONTAINER_KEYS: &[&str] = &[
    "image",
    "group",
    "labels",
    "env",
    "cmd",
    "entrypoint",
    "user",
];

/// The converted topology and what could not be converted.
pub struct Converted {
    pub toml: String,
    pub skipped: Vec<String>,
    /// Container names netloom expects to exist, with their image.
    pub containers: Vec<(String, Option<String>)>,
    /// A management network (Docker) was converted.
    pub mgmt: bool,
}

#[derive(Default)]
struct Node {
    container: String,
    image: Option<String>,
    bridge: bool,
    /// Interface → addresses from `exec`.
    addresses: BTreeMap<String, Vec<IpNet>>,
    routes: Vec<Route>,
    sysctls: BTreeMap<String, String>,
    mgmt_ipv4: Option<String>,
    mgmt_ipv6: Option<String>,
    /// `interfaces.X = { bridge = … }` entries: (ifname, bridge).
    to_bridges: Vec<(String, String)>,
}

/// A container-to-container link: (node, ifname) of each end, and its MTU.
type Link = ((String, String), (String, String), Option<u32>);

struct Route {
    to: String,
    via: Option<IpAddr>,
    dev: Option<String>,
    metric: Option<u32>,
    line: String,
}

pub fn convert(text: &str, source: &str) -> Result<Converted, String> {
    let lab: Lab = yaml_serde::from_str(text)
        .map_err(|e| format!("{source}: not a containerlab file: {e}"))?;
    let mut skipped = vec![];
    let container_name = |node: &str| match lab.prefix.as_deref() {
        None => format!("clab-{}-{node}", lab.name),
        Some("") => node.to_string(),
        Some("__lab-name") => format!("{}-{node}", lab.name),
        Some(p) => format!("{p}-{}-{node}", lab.name),
    };

    let mut nodes: BTreeMap<String, Node> = BTreeMap::new();
    for (name, def) in &lab.topology.nodes {
        let def = def.clone().unwrap_or_default();
        let kind = def
            .kind
            .clone()
            .or_else(|| lab.topology.defaults.kind.clone())
            .unwrap_or_else(|| "linux".into());
        let kind_def = lab.topology.kinds.get(&kind).cloned().unwrap_or_default();
        match kind.as_str() {
            "linux" | "bridge" => {}
            other => {
                skipped.push(format!(
                    "node {name}: kind `{other}` (netloom wires linux containers and bridges only)"
                ));
                continue;
            }
        }
        let mut n = Node {
            container: container_name(name),
            image: def.image.clone().or(kind_def.image.clone()).or(lab
                .topology
                .defaults
                .image
                .clone()),
            bridge: kind == "bridge",
            mgmt_ipv4: def.mgmt_ipv4.clone(),
            mgmt_ipv6: def.mgmt_ipv6.clone(),
            ..Node::default()
        };
        for key in def
            .rest
            .keys()
            .filter(|k| !CONTAINER_KEYS.contains(&k.as_str()))
        {
            skipped.push(format!(
                "node {name}: `{key}` (not a network setting netloom makes)"
            ));
        }
        let exec = [&def.exec, &kind_def.exec, &lab.topology.defaults.exec]
            .into_iter()
            .find(|e| !e.is_empty())
            .cloned()
            .unwrap_or_default();
        for line in &exec {
            if let Err(why) = exec_line(line, &mut n) {
                skipped.push(format!("node {name}: exec `{line}` ({why})"));
            }
        }
        nodes.insert(name.clone(), n);
    }

    // Links: container to container, or container to a bridge node.
    let mut links: Vec<Link> = vec![];
    for (i, l) in lab.topology.links.iter().enumerate() {
        let what = format!("link {}", i + 1);
        if let Some(k) = l.kind.as_deref().filter(|k| *k != "veth") {
            skipped.push(format!("{what}: type `{k}` (only veth links convert)"));
            continue;
        }
        let ends: Vec<(String, String)> = l
            .endpoints
            .iter()
            .filter_map(|e| match e {
                EndpointDef::Brief(s) => s
                    .split_once(':')
                    .map(|(n, i)| (n.to_string(), i.to_string())),
                EndpointDef::Extended { node, interface } => {
                    Some((node.clone(), interface.clone()))
                }
            })
            .collect();
        let [a, b] = ends.as_slice() else {
            skipped.push(format!("{what}: needs two endpoints NODE:IFNAME"));
            continue;
        };
        let label = format!("{what} ({}:{} — {}:{})", a.0, a.1, b.0, b.1);
        let special = |n: &str| matches!(n, "host" | "mgmt-net" | "macvlan");
        if special(&a.0) || special(&b.0) {
            skipped.push(format!(
                "{label}: an end in `host`, `mgmt-net` or `macvlan`"
            ));
            continue;
        }
        let (Some(na), Some(nb)) = (nodes.get(&a.0), nodes.get(&b.0)) else {
            skipped.push(format!("{label}: an end on a node that was not converted"));
            continue;
        };
        match (na.bridge, nb.bridge) {
            (false, false) => links.push((a.clone(), b.clone(), l.mtu)),
            (true, true) => skipped.push(format!("{label}: between two bridges")),
            // A container end on a bridge node: an interface to that bridge.
            (false, true) | (true, false) => {
                let (ctr, br) = if nb.bridge { (a, b) } else { (b, a) };
                skipped.push(format!(
                    "{label}: the bridge port's name `{}` becomes a name netloom derives",
                    br.1
                ));
                let port = (ctr.1.clone(), br.0.clone());
                nodes.get_mut(&ctr.0).unwrap().to_bridges.push(port);
            }
        }
    }

    let toml = render(&lab, &nodes, &links, &mut skipped);
    let mgmt = lab.mgmt.is_some() && toml.contains("# the management network");
    let containers = nodes
        .values()
        .filter(|n| !n.bridge)
        .map(|n| (n.container.clone(), n.image.clone()))
        .collect();
    Ok(Converted {
        toml,
        skipped,
        containers,
        mgmt,
    })
}

/// One `exec:` line, into the node; `Err` says why it is not converted.
fn exec_line(line: &str, n: &mut Node) -> Result<(), String> {
    let mut w: Vec<&str> = line.split_whitespace().collect();
    if w.first() == Some(&"sudo") {
        w.remove(0);
    }
    if w.first() == Some(&"sysctl") {
        let kv = w.iter().skip(1).find(|a| !a.starts_with('-'));
        let Some((k, v)) = kv.and_then(|kv| kv.split_once('=')) else {
            return Err("a sysctl without KEY=VALUE".into());
        };
        if !k.starts_with("net.") && !k.starts_with("net/") {
            return Err("not a network sysctl".into());
        }
        n.sysctls.insert(k.to_string(), v.to_string());
        return Ok(());
    }
    if w.first() != Some(&"ip") {
        return Err("not an `ip` or `sysctl` command".into());
    }
    w.remove(0);
    let mut v6 = false;
    while let Some(f) = w.first().filter(|f| f.starts_with('-')) {
        match *f {
            "-6" => v6 = true,
            "-4" => {}
            _ => return Err(format!("option {f}")),
        }
        w.remove(0);
    }
    let obj = w.first().copied().unwrap_or_default();
    let verb = w.get(1).copied().unwrap_or_default();
    let args = w.get(2..).unwrap_or_default();
    let opt = |name: &str| {
        args.iter()
            .position(|a| *a == name)
            .and_then(|i| args.get(i + 1))
            .copied()
    };
    match (obj, verb) {
        ("a" | "addr" | "address", "add" | "replace") => {
            let (Some(addr), Some(dev)) = (args.first(), opt("dev")) else {
                return Err("an address needs ADDR dev IFNAME".into());
            };
            let net = addr
                .parse::<IpNet>()
                .or_else(|_| addr.parse::<IpAddr>().map(IpNet::from))
                .map_err(|_| format!("`{addr}` is not an address"))?;
            n.addresses.entry(dev.to_string()).or_default().push(net);
            Ok(())
        }
        ("l" | "link", "set") => {
            // Link state: netloom brings its links up; an MTU is the link's.
            let rest: Vec<&&str> = args.iter().filter(|a| **a != "dev").collect();
            match rest.as_slice() {
                [_, s] if **s == "up" => Ok(()),
                _ => Err("only `ip link set IFNAME up` converts".into()),
            }
        }
        ("r" | "route" | "ro", "add" | "replace") => {
            let Some(to) = args.first() else {
                return Err("a route without a destination".into());
            };
            let known = ["via", "dev", "metric"];
            for (i, a) in args.iter().enumerate().skip(1).step_by(2) {
                if !known.contains(a) || args.get(i + 1).is_none() {
                    return Err(format!("route option `{a}`"));
                }
            }
            let via = opt("via")
                .map(|g| g.parse::<IpAddr>().map_err(|_| format!("gateway `{g}`")))
                .transpose()?;
            let metric = opt("metric")
                .map(|m| m.parse::<u32>().map_err(|_| format!("metric `{m}`")))
                .transpose()?;
            let to = if *to == "default" && via.is_none() {
                if v6 { "::/0" } else { "0.0.0.0/0" }.to_string()
            } else {
                to.to_string()
            };
            n.routes.push(Route {
                to,
                via,
                dev: opt("dev").map(str::to_string),
                metric,
                line: line.to_string(),
            });
            Ok(())
        }
        _ => Err("only addresses, routes, `link set up` and net.* sysctls convert".into()),
    }
}

/// A TOML string (quoted and escaped).
fn q(s: &str) -> String {
    toml::Value::String(s.to_string()).to_string()
}

/// A TOML key: bare when it can be.
fn key(s: &str) -> String {
    if !s.is_empty()
        && s.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
    {
        s.to_string()
    } else {
        q(s)
    }
}

fn list(items: impl IntoIterator<Item = String>) -> String {
    let v: Vec<String> = items.into_iter().map(|s| q(&s)).collect();
    format!("[{}]", v.join(", "))
}

fn render(
    lab: &Lab,
    nodes: &BTreeMap<String, Node>,
    links: &[Link],
    skipped: &mut Vec<String>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "[topology]\nname = {}", q(&lab.name));

    // Bridges containerlab expects to exist on the host.
    for (name, n) in nodes.iter().filter(|(_, n)| n.bridge) {
        let _ = writeln!(out, "\n[bridge.{}]\nexternal = true", key(name));
        if !n.addresses.is_empty() || !n.routes.is_empty() {
            skipped.push(format!("node {name}: exec lines of a bridge node"));
        }
    }

    let mgmt = lab.mgmt.as_ref().map(|m| {
        let name = m.network.clone().unwrap_or_else(|| "clab".into());
        let subnets: Vec<String> = [&m.ipv4_subnet, &m.ipv6_subnet]
            .into_iter()
            .flatten()
            .filter(|s| s.parse::<IpNet>().is_ok())
            .cloned()
            .collect();
        (name, subnets)
    });
    match &mgmt {
        Some((name, subnets)) if !subnets.is_empty() => {
            let _ = writeln!(
                out,
                "\n[network.{}]   # the management network\nsubnets = {}",
                key(name),
                list(subnets.iter().cloned())
            );
        }
        Some((name, _)) => {
            skipped.push(format!("mgmt: network `{name}` without a subnet netloom can give it"));
        }
        None => skipped.push(
            "mgmt: none declared; containerlab would make its default `clab` network (add `mgmt:` with an ipv4-subnet to convert one)".into(),
        ),
    }
    let mgmt_name = mgmt
        .as_ref()
        .filter(|(_, s)| !s.is_empty())
        .map(|(n, _)| n.clone());

    // Which interfaces of each node are wired by netloom, and their subnets.
    let mut wired: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    for (a, b, _) in links {
        wired.entry(a.0.as_str()).or_default().push(a.1.clone());
        wired.entry(b.0.as_str()).or_default().push(b.1.clone());
    }
    for (name, n) in nodes.iter().filter(|(_, n)| !n.bridge) {
        let _ = writeln!(out, "\n[container.{}]", key(&n.container));
        if let Some(net) = &mgmt_name {
            let mut attrs = vec![];
            if let Some(a) = &n.mgmt_ipv4 {
                attrs.push(format!("ipv4 = {}", q(a)));
            }
            if let Some(a) = &n.mgmt_ipv6 {
                attrs.push(format!("ipv6 = {}", q(a)));
            }
            let attrs = if attrs.is_empty() {
                "{}".to_string()
            } else {
                format!("{{ {} }}", attrs.join(", "))
            };
            let _ = writeln!(out, "networks.{} = {attrs}", key(net));
        }
        let mut ifaces: Vec<String> = wired.get(name.as_str()).cloned().unwrap_or_default();
        for (ifname, br) in &n.to_bridges {
            ifaces.push(ifname.clone());
            let addrs = n.addresses.get(ifname).cloned().unwrap_or_default();
            let _ = writeln!(
                out,
                "interfaces.{} = {{ bridge = {}, addresses = {} }}",
                key(ifname),
                q(br),
                list(addrs.iter().map(|a| a.to_string()))
            );
        }
        if let Some(lo) = n.addresses.get("lo") {
            let _ = writeln!(out, "loopback = {}", list(lo.iter().map(|a| a.to_string())));
            ifaces.push("lo".into());
        }
        for (ifname, _) in n.addresses.iter().filter(|(i, _)| !ifaces.contains(i)) {
            skipped.push(format!(
                "node {name}: addresses on {ifname}, which no converted link makes"
            ));
        }
        // Gateways must be on a subnet of the node's netloom interfaces.
        let connected: Vec<IpNet> = ifaces
            .iter()
            .flat_map(|i| n.addresses.get(i).cloned().unwrap_or_default())
            .map(|a| a.trunc())
            .collect();
        let mut routes = vec![];
        for r in &n.routes {
            let dev_ok = r.dev.as_ref().is_none_or(|d| ifaces.contains(d));
            let via_ok = r
                .via
                .is_none_or(|g| connected.iter().any(|c| c.contains(&g)));
            if !dev_ok || !via_ok || (r.via.is_none() && r.dev.is_none()) {
                skipped.push(format!(
                    "node {name}: route `{}` (not through a converted interface)",
                    r.line
                ));
                continue;
            }
            let mut parts = vec![format!("to = {}", q(&r.to))];
            if let Some(v) = r.via {
                parts.push(format!("via = {}", q(&v.to_string())));
            }
            if let Some(d) = &r.dev {
                parts.push(format!("dev = {}", q(d)));
            }
            if let Some(m) = r.metric {
                parts.push(format!("metric = {m}"));
            }
            routes.push(format!("  {{ {} }},", parts.join(", ")));
        }
        if !routes.is_empty() {
            let _ = writeln!(out, "routes = [\n{}\n]", routes.join("\n"));
        }
        if !n.sysctls.is_empty() {
            let kv: Vec<String> = n
                .sysctls
                .iter()
                .map(|(k, v)| format!("{} = {}", q(k), q(v)))
                .collect();
            let _ = writeln!(out, "sysctls = {{ {} }}", kv.join(", "));
        }
    }

    for (a, b, mtu) in links {
        let (ca, cb) = (&nodes[&a.0].container, &nodes[&b.0].container);
        let (ea, eb) = (format!("{ca}:{}", a.1), format!("{cb}:{}", b.1));
        let _ = writeln!(out, "\n[[link]]\nendpoints = [{}, {}]", q(&ea), q(&eb));
        let addrs = |node: &str, ifname: &str| {
            nodes[node]
                .addresses
                .get(ifname)
                .cloned()
                .unwrap_or_default()
        };
        let (aa, ab) = (addrs(&a.0, &a.1), addrs(&b.0, &b.1));
        if !aa.is_empty() || !ab.is_empty() {
            let mut parts = vec![];
            for (end, list_) in [(&ea, &aa), (&eb, &ab)] {
                if !list_.is_empty() {
                    parts.push(format!(
                        "{} = {}",
                        q(end),
                        list(list_.iter().map(|x| x.to_string()))
                    ));
                }
            }
            let _ = writeln!(out, "addresses = {{ {} }}", parts.join(", "));
        }
        if let Some(m) = mtu {
            let _ = writeln!(out, "mtu = {m}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exec_lines_that_convert_and_those_that_do_not() {
        let mut n = Node::default();
        for ok in [
            "ip addr add 10.0.0.1/31 dev eth1",
            "sudo ip -6 address add fd00::1/127 dev eth1",
            "ip link set dev eth1 up",
            "ip route add 10.9.0.0/16 via 10.0.0.0 metric 5",
            "ip -6 route add default via fd00::",
            "sysctl -w net.ipv4.ip_forward=1",
        ] {
            exec_line(ok, &mut n).unwrap_or_else(|e| panic!("{ok}: {e}"));
        }
        assert_eq!(n.addresses["eth1"].len(), 2);
        assert_eq!(n.routes.len(), 2);
        assert_eq!(n.routes[0].metric, Some(5));
        assert_eq!(n.sysctls["net.ipv4.ip_forward"], "1");
        for bad in [
            "iptables -A FORWARD -j ACCEPT",
            "ip link set eth1 mtu 9000",
            "ip route add 10.9.0.0/16 via 10.0.0.0 onlink",
            "sysctl -w kernel.panic=1",
            "ip -br addr",
        ] {
            assert!(exec_line(bad, &mut n).is_err(), "{bad}");
        }
    }

    #[test]
    fn container_names_follow_the_lab_prefix() {
        let lab = |prefix: &str| {
            format!("name: l1\n{prefix}topology:\n  nodes:\n    n1: {{kind: linux}}\n")
        };
        let names = |text: &str| convert(text, "t").unwrap().containers[0].0.clone();
        assert_eq!(names(&lab("")), "clab-l1-n1");
        assert_eq!(names(&lab("prefix: \"\"\n")), "n1");
        assert_eq!(names(&lab("prefix: __lab-name\n")), "l1-n1");
        assert_eq!(names(&lab("prefix: lab\n")), "lab-l1-n1");
    }
}
