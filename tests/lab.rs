//! Router-lab features (issue 14): loopback addresses, ECMP routes in
//! containers and in the topology's netns, container routes with `dev`,
//! `metric` and IPv6, and sysctls restored when their key goes — against
//! real containers started `--network none` and a real netns.

mod common;

use common::*;
use serde_json::Value;

/// `ip -j …` inside a container's netns, from the host's iproute2 (busybox
/// has no JSON output, and the container has no CAP_NET_ADMIN for drift).
fn in_ctr(c: &Ctr, cmd: &str) -> String {
    let pid = must(&format!(
        "docker inspect -f '{{{{.State.Pid}}}}' {}",
        c.name
    ));
    must(&format!("nsenter -t {} -n {cmd}", pid.trim()))
}

fn json(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// The route to `to` inside the container, as `ip -j` gives it.
fn route_to(c: &Ctr, family: &str, to: &str) -> Value {
    let all = json(&in_ctr(c, &format!("ip -j {family} route show")));
    all.as_array()
        .unwrap()
        .iter()
        .find(|r| r["dst"] == to)
        .cloned()
        .unwrap_or(Value::Null)
}

/// (gateway, dev, weight) of each next hop.
fn hops(r: &Value) -> Vec<(String, String, u64)> {
    let mut v: Vec<_> = r["nexthops"]
        .as_array()
        .map(|a| a.as_slice())
        .unwrap_or_default()
        .iter()
        .map(|h| {
            (
                h["gateway"].as_str().unwrap_or_default().to_string(),
                h["dev"].as_str().unwrap_or_default().to_string(),
                h["weight"].as_u64().unwrap_or(1),
            )
        })
        .collect();
    v.sort();
    v
}

fn lo_addrs(c: &Ctr) -> Vec<String> {
    let v = json(&in_ctr(c, "ip -j addr show dev lo"));
    let mut out: Vec<String> = v[0]["addr_info"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| format!("{}/{}", a["local"].as_str().unwrap(), a["prefixlen"]))
        .collect();
    out.sort();
    out
}

fn sysctl(c: &Ctr, path: &str) -> String {
    in_ctr(c, &format!("cat /proc/sys/{path}"))
        .trim()
        .to_string()
}

#[test]
fn two_routers_reach_each_others_loopback_over_two_equal_cost_links() {
    let t = Topo::new("nlb");
    let d = Dir::new();
    let (r1, r2) = (Ctr::run_mode("nlbr", "none"), Ctr::run_mode("nlbr", "none"));
    let o = octet();
    let (a, b) = (&r1.name, &r2.name);
    let forwarding_before = sysctl(&r1, "net/ipv6/conf/all/forwarding");
    assert_eq!(
        forwarding_before, "0",
        "Docker's default in a --network none container"
    );
    let body = format!(
        r#"[topology]
name = "{t}"

[container.{a}]
loopback = ["10.{o}.255.1/32", "fd00:{o}:ff::1/128"]
sysctls = {{ "net.ipv6.conf.all.forwarding" = "1" }}
routes = [
  {{ to = "10.{o}.255.2/32", via = ["10.{o}.0.1", "10.{o}.1.1"] }},
  {{ to = "fd00:{o}:ff::2/128", nexthops = [{{ via = "fd00:{o}:0::1", dev = "e1" }}, {{ via = "fd00:{o}:1::1", dev = "e2", weight = 3 }}] }},
  {{ to = "10.{o}.99.0/24", dev = "e1", metric = 50 }},
]

[container.{b}]
loopback = ["10.{o}.255.2/32", "fd00:{o}:ff::2/128"]
routes = [
  {{ to = "10.{o}.255.1/32", via = ["10.{o}.0.0", "10.{o}.1.0"] }},
  {{ to = "fd00:{o}:ff::1/128", via = "fd00:{o}:1::", dev = "e2" }},
]

[[link]]
endpoints = ["{a}:e1", "{b}:e1"]
addresses = {{ "{a}:e1" = ["10.{o}.0.0/31", "fd00:{o}:0::/127"], "{b}:e1" = ["10.{o}.0.1/31", "fd00:{o}:0::1/127"] }}

[[link]]
endpoints = ["{a}:e2", "{b}:e2"]
addresses = {{ "{a}:e2" = ["10.{o}.1.0/31", "fd00:{o}:1::/127"], "{b}:e2" = ["10.{o}.1.1/31", "fd00:{o}:1::1/127"] }}
"#,
        t = t.name
    );
    let f = d.write("lab.toml", &body);
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");

    // Loopback to loopback, both families, sourced from the router id.
    let ping = |from: &Ctr, src: &str, dst: &str| {
        sh(&format!(
            "docker exec {} ping -c 1 -W 2 -I {src} {dst}",
            from.name
        ))
        .code
            == 0
    };
    assert!(ping(
        &r1,
        &format!("10.{o}.255.1"),
        &format!("10.{o}.255.2")
    ));
    assert!(ping(
        &r2,
        &format!("10.{o}.255.2"),
        &format!("10.{o}.255.1")
    ));
    assert!(ping(
        &r1,
        &format!("fd00:{o}:ff::1"),
        &format!("fd00:{o}:ff::2")
    ));
    assert!(lo_addrs(&r1).contains(&format!("10.{o}.255.1/32")));
    assert!(
        lo_addrs(&r1).contains(&"127.0.0.1/8".to_string()),
        "lo's own stays"
    );

    // Both links carry the route: the kernel holds both next hops.
    let v4 = route_to(&r1, "-4", &format!("10.{o}.255.2"));
    assert_eq!(
        hops(&v4),
        [
            (format!("10.{o}.0.1"), "e1".into(), 1),
            (format!("10.{o}.1.1"), "e2".into(), 1)
        ],
        "{v4}"
    );
    let v6 = route_to(&r1, "-6", &format!("fd00:{o}:ff::2"));
    let mut want = vec![
        (format!("fd00:{o}::1"), "e1".to_string(), 1),
        (format!("fd00:{o}:1::1"), "e2".to_string(), 3),
    ];
    want.sort();
    assert_eq!(hops(&v6), want, "{v6}");
    let onlink = route_to(&r1, "-4", &format!("10.{o}.99.0/24"));
    assert_eq!(
        (onlink["dev"].as_str(), onlink["metric"].as_u64()),
        (Some("e1"), Some(50))
    );
    assert_eq!(sysctl(&r1, "net/ipv6/conf/all/forwarding"), "1");
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);

    // Drift by hand inside the containers is shown and repaired.
    in_ctr(&r2, &format!("ip addr del 10.{o}.255.2/32 dev lo"));
    in_ctr(
        &r1,
        &format!("ip route replace 10.{o}.255.2/32 via 10.{o}.0.1 proto 78"),
    );
    in_ctr(
        &r1,
        "sh -c 'echo 0 > /proc/sys/net/ipv6/conf/all/forwarding'",
    );
    let p = nl(&["plan"], &[&f]);
    assert!(
        p.stdout.contains(&format!("+ address 10.{o}.255.2/32")),
        "{p:?}"
    );
    assert!(p.stdout.contains("nexthops:"), "{p:?}");
    assert!(p.stdout.contains("value: 0 → 1"), "{p:?}");
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    assert_eq!(
        hops(&route_to(&r1, "-4", &format!("10.{o}.255.2"))).len(),
        2
    );
    assert!(ping(
        &r2,
        &format!("10.{o}.255.2"),
        &format!("10.{o}.255.1")
    ));

    // Taking keys out: the sysctl gets its old value back, a loopback
    // address and a metric move, and nothing else changes.
    let edited = body
        .replace(
            "sysctls = { \"net.ipv6.conf.all.forwarding\" = \"1\" }\n",
            "",
        )
        .replace(
            &format!("loopback = [\"10.{o}.255.1/32\", \"fd00:{o}:ff::1/128\"]"),
            &format!("loopback = [\"10.{o}.255.1/32\"]"),
        )
        .replace("metric = 50", "metric = 60");
    assert_ne!(edited, body);
    d.write("lab.toml", &edited);
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("(back to 0)"), "{r:?}");
    assert_eq!(sysctl(&r1, "net/ipv6/conf/all/forwarding"), "0");
    assert!(!lo_addrs(&r1).contains(&format!("fd00:{o}:ff::1/128")));
    let moved = route_to(&r1, "-4", &format!("10.{o}.99.0/24"));
    assert_eq!(
        moved["metric"].as_u64(),
        Some(60),
        "one route, at the new metric"
    );
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);

    // Destroy leaves lo as Docker made it and the routes gone.
    let r = nl(&["destroy"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(lo_addrs(&r1), ["127.0.0.1/8", "::1/128"]);
    assert_eq!(route_to(&r1, "-4", &format!("10.{o}.255.2")), Value::Null);
}

#[test]
fn an_ecmp_route_and_sysctls_in_the_topology_netns_are_kept_and_restored() {
    // Made before netloom runs: netloom reads each key's value first (in a
    // netns it makes itself there is nothing to read before the apply).
    let ns = Netns::precreated("nlbn");
    let d = Dir::new();
    let o = octet();
    let body = format!(
        r#"[topology]
name = "{n}"
netns = "{n}"
sysctls = {{ "net.ipv4.ip_forward" = "1", "net.ipv4.conf.br-a.rp_filter" = "2" }}

[bridge.br-a]
addresses = ["10.{o}.0.1/24"]

[bridge.br-b]
addresses = ["10.{o}.1.1/24"]

[[route]]
to = "10.{o}.64.0/18"
nexthops = [{{ via = "10.{o}.0.2", weight = 2 }}, {{ via = "10.{o}.1.2", dev = "br-b" }}]
"#,
        n = ns.name
    );
    let f = d.write("t.toml", &body);
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    let read = |p: &str| must(&format!("ip netns exec {} cat /proc/sys/{p}", ns.name));
    assert_eq!(read("net/ipv4/ip_forward").trim(), "1");
    assert_eq!(read("net/ipv4/conf/br-a/rp_filter").trim(), "2");
    let routes = json(&must(&format!(
        "ip -n {} -j route show 10.{o}.64.0/18",
        ns.name
    )));
    assert_eq!(
        hops(&routes[0]),
        [
            (format!("10.{o}.0.2"), "br-a".into(), 2),
            (format!("10.{o}.1.2"), "br-b".into(), 1)
        ],
        "{routes}"
    );
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);

    // A next hop taken away by hand is drift; so is a sysctl set back.
    must(&format!(
        "ip -n {} route replace 10.{o}.64.0/18 via 10.{o}.0.2 proto 78",
        ns.name
    ));
    must(&format!(
        "ip netns exec {} sysctl -qw net.ipv4.ip_forward=0",
        ns.name
    ));
    let p = nl(&["plan", "--detailed-exitcode"], &[&f]);
    assert_eq!(p.code, 2, "{p:?}");
    assert!(
        p.stdout.contains("nexthops:") && p.stdout.contains("value: 0 → 1"),
        "{p:?}"
    );
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    assert_eq!(read("net/ipv4/ip_forward").trim(), "1");

    // One gateway left: a plain route; the keys removed get their old values.
    let single = body
        .replace(
            &format!(
                "nexthops = [{{ via = \"10.{o}.0.2\", weight = 2 }}, {{ via = \"10.{o}.1.2\", dev = \"br-b\" }}]"
            ),
            &format!("via = \"10.{o}.0.2\""),
        )
        .replace(
            "sysctls = { \"net.ipv4.ip_forward\" = \"1\", \"net.ipv4.conf.br-a.rp_filter\" = \"2\" }\n",
            "",
        );
    assert_ne!(single, body);
    d.write("t.toml", &single);
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(read("net/ipv4/ip_forward").trim(), "0");
    assert_ne!(read("net/ipv4/conf/br-a/rp_filter").trim(), "2");
    let routes = json(&must(&format!(
        "ip -n {} -j route show 10.{o}.64.0/18",
        ns.name
    )));
    assert_eq!(routes[0]["gateway"], format!("10.{o}.0.2"), "{routes}");
    assert!(routes[0]["nexthops"].is_null(), "{routes}");
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
    assert!(ns.link_names().is_empty(), "{:?}", ns.link_names());
}

#[test]
fn ports_join_an_external_bridge_that_netloom_never_changes_or_deletes() {
    let ns = Netns::precreated("nlbx");
    let d = Dir::new();
    let o = octet();
    let c = Ctr::run_mode("nlbxc", "none");
    // The user's bridge, with settings of its own.
    must(&format!(
        "ip -n {n} link add br-user type bridge && ip -n {n} link set br-user mtu 1400 up && ip -n {n} addr add 10.{o}.5.1/24 dev br-user",
        n = ns.name
    ));
    let body = format!(
        r#"[topology]
name = "{n}"
netns = "{n}"

[bridge.br-user]
external = true

[veth.vx1]
peer = "vx1p"
master = "br-user"
mtu = 1400

[container.{c}]
interfaces.eth1 = {{ bridge = "br-user", addresses = ["10.{o}.5.10/24"], mtu = 1400 }}
"#,
        n = ns.name,
        c = c.name
    );
    let f = d.write("t.toml", &body);
    let p = nl(&["plan"], &[&f]);
    assert!(
        !p.stdout
            .lines()
            .any(|l| l.trim_start().trim_start_matches(['+', '~', '-']).trim() == "bridge br-user"),
        "nothing of it is planned: {p:?}"
    );
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ns.link("vx1")["master"], "br-user");
    assert!(
        c.pings(&format!("10.{o}.5.1")),
        "the container reaches the user's bridge"
    );
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);

    // Destroy takes netloom's ports and leaves the bridge as it was.
    let r = nl(&["destroy"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.stdout.contains("br-user"), "{r:?}");
    assert_eq!(ns.link_names(), ["br-user"]);
    let br = ns.link("br-user");
    assert_eq!(
        (br["mtu"].as_u64(), br["ifalias"].as_str()),
        (Some(1400), None)
    );
    assert_eq!(ns.addrs("br-user"), [format!("10.{o}.5.1/24")]);

    // A missing external bridge is refused before anything changes.
    must(&format!("ip -n {} link del br-user", ns.name));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.all().contains("external bridge `br-user` does not exist"),
        "{r:?}"
    );
    assert!(ns.link_names().is_empty(), "{:?}", ns.link_names());
}
