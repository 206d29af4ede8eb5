//! Services: VIPs on real nftables over real containers (busybox `nc`
//! servers that answer with their own name).

mod common;

use common::*;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

/// A container serving its name on :8080, with a label, on `network`.
fn server(tag: &str, label: &str, network: &str) -> Ctr {
    ensure_image();
    let c = Ctr { name: unique(tag) };
    must(&format!(
        "docker run -d --name {n} --label app={label} --network {network} {IMAGE} \
         /bin/busybox nc -ll -p 8080 -e /bin/busybox echo {n} >/dev/null",
        n = c.name
    ));
    c
}

/// One connect from `client` to vip:80: who answered, or the error.
fn connect(client: &Ctr, vip: &str) -> Result<String, String> {
    let r = sh(&format!(
        "docker exec {} /bin/busybox nc -w 2 {vip} 80",
        client.name
    ));
    if r.code == 0 && !r.stdout.trim().is_empty() {
        Ok(r.stdout.trim().to_string())
    } else {
        Err(r.stderr.trim().to_string())
    }
}

/// Who answered `n` connects.
fn spread(client: &Ctr, vip: &str, n: usize) -> BTreeMap<String, usize> {
    let mut m = BTreeMap::new();
    for _ in 0..n {
        let who = connect(client, vip).unwrap_or_else(|e| format!("error: {e}"));
        *m.entry(who).or_default() += 1;
    }
    m
}

fn tables_in(netns: Option<&str>) -> String {
    let pre = netns
        .map(|n| format!("ip netns exec {n} "))
        .unwrap_or_default();
    must(&format!("{pre}nft list tables"))
}

#[test]
fn a_bridge_service_spreads_refuses_when_empty_repairs_drift_and_follows_containers() {
    let (t, ns, d) = (Topo::new("nls"), Netns::named("nls"), Dir::new());
    let (a, b) = (server("nlsa", "web", "none"), server("nlsb", "web", "none"));
    let client = Ctr::run_mode("nlsc", "none");
    let o = octet();
    let body = |services: &str| {
        format!(
            "[topology]\nname = \"{}\"\nnetns = \"{}\"\n[bridge.br0]\naddresses = [\"10.97.{o}.1/24\"]\n\
             [container.{}]\ninterfaces.eth1 = {{ bridge = \"br0\", addresses = [\"10.97.{o}.11/24\"] }}\n\
             routes = [{{ to = \"10.96.{o}.0/24\", via = \"10.97.{o}.1\" }}]\n\
             [container.{}]\ninterfaces.eth1 = {{ bridge = \"br0\", addresses = [\"10.97.{o}.12/24\"] }}\n\
             [container.{}]\ninterfaces.eth1 = {{ bridge = \"br0\", addresses = [\"10.97.{o}.20/24\"] }}\n\
             routes = [{{ to = \"10.96.{o}.0/24\", via = \"10.97.{o}.1\" }}]\n{services}",
            t.name, ns.name, a.name, b.name, client.name
        )
    };
    let web = format!(
        "[service.web]\naddresses = [\"10.96.{o}.10\"]\nports = [{{ port = 80, target = 8080 }}]\n\
         network = \"br0\"\nselector = {{ app = \"web\" }}\n"
    );
    let empty = format!(
        "[service.empty]\naddresses = [\"10.96.{o}.11\"]\nports = [{{ port = 80 }}]\nnetwork = \"br0\"\n\
         endpoints = [\"nobody-here\"]\n"
    );
    let f = d.write("lab.toml", &body(&format!("{web}{empty}")));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains(&format!("endpoints: {}, {}", a.name, b.name)),
        "{r:?}"
    );
    let table = format!("table inet netloom-{}", t.name);
    assert!(tables_in(Some(&ns.name)).contains(&table));
    // A table of someone else's in the same netns: a decoy.
    must(&format!(
        "ip netns exec {n} nft add table inet decoy && ip netns exec {n} nft add chain inet decoy c && \
         ip netns exec {n} nft add rule inet decoy c counter comment '\"decoy\"'",
        n = ns.name
    ));

    // 20 connects from a client on the same bridge reach both endpoints.
    let vip = format!("10.96.{o}.10");
    let got = spread(&client, &vip, 20);
    assert_eq!(got.values().sum::<usize>(), 20);
    assert!(
        got.get(&a.name).is_some_and(|n| *n > 0) && got.get(&b.name).is_some_and(|n| *n > 0),
        "{got:?}"
    );
    // Hairpin: an endpoint reaches its own service, itself included.
    let hairpin = spread(&a, &vip, 10);
    assert_eq!(
        hairpin.keys().filter(|k| k.starts_with("error")).count(),
        0,
        "{hairpin:?}"
    );
    assert!(hairpin.contains_key(&a.name), "{hairpin:?}");
    // The VIP is a local route of the netns: the netns itself reaches it.
    let local = sh(&format!(
        "ip netns exec {} /bin/busybox nc -w 2 {vip} 80",
        ns.name
    ));
    assert!(
        local.stdout.trim() == a.name || local.stdout.trim() == b.name,
        "{local:?}"
    );
    // No endpoints: refused at once, not black-holed.
    let t0 = Instant::now();
    let e = connect(&client, &format!("10.96.{o}.11")).unwrap_err();
    assert!(e.contains("refused"), "{e}");
    assert!(t0.elapsed() < Duration::from_secs(1));
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);
    // show lists each service's VIPs, ports and live endpoints.
    let r = nl(&["show"], &[&f]);
    assert!(
        r.stdout.contains(&format!(
            "{vip} port 80/tcp → endpoints {}, {}",
            a.name, b.name
        )),
        "{r:?}"
    );

    // A rule deleted by hand in netloom's table is drift, and repaired.
    let handle = must(&format!(
        "ip netns exec {} nft -a list chain inet netloom-{} services | grep dport | grep -o 'handle [0-9]*' | head -1",
        ns.name, t.name
    ));
    must(&format!(
        "ip netns exec {} nft delete rule inet netloom-{} services {}",
        ns.name,
        t.name,
        handle.trim()
    ));
    let r = nl(&["plan", "--detailed-exitcode"], &[&f]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stdout.contains("~ service web") && r.stdout.contains("rules"),
        "{r:?}"
    );
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    assert!(connect(&client, &vip).is_ok());
    // So is forwarding turned off in the topology's netns.
    must(&format!(
        "ip netns exec {} sysctl -qw net.ipv4.ip_forward=0",
        ns.name
    ));
    let r = nl(&["plan", "--detailed-exitcode"], &[&f]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(r.stdout.contains("ip_forward"), "{r:?}");
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    let on = must(&format!(
        "ip netns exec {} sysctl -n net.ipv4.ip_forward",
        ns.name
    ));
    assert_eq!(on.trim(), "1");
    assert!(connect(&client, &vip).is_ok());

    // Under watch, endpoints follow the containers.
    let w = WatchProc::start(&[&f], "30s");
    eventually(
        "watch is up",
        10,
        || w.log().contains("reconcile"),
        || w.log(),
    );
    must(&format!("docker stop -t 0 {} >/dev/null", b.name));
    let stopped = Instant::now();
    eventually(
        "the stopped endpoint is out of the rules",
        5,
        || {
            !must(&format!(
                "ip netns exec {} nft list table inet netloom-{}",
                ns.name, t.name
            ))
            .contains(&b.name)
        },
        || w.log(),
    );
    assert!(
        stopped.elapsed() < Duration::from_secs(1),
        "{:?}\n{}",
        stopped.elapsed(),
        w.log()
    );
    let got = spread(&client, &vip, 10);
    assert_eq!(got.get(&a.name), Some(&10), "{got:?}");
    must(&format!("docker start {} >/dev/null", b.name));
    eventually(
        "it serves again",
        10,
        || spread(&client, &vip, 10).contains_key(&b.name),
        || w.log(),
    );
    // The VIP's local route deleted by hand is back without the resync.
    must(&format!(
        "ip -n {} route del local {vip} dev lo table local",
        ns.name
    ));
    eventually(
        "the VIP's route is repaired",
        5,
        || {
            must(&format!(
                "ip -n {} route show table local proto 78",
                ns.name
            ))
            .contains(&vip)
        },
        || w.log(),
    );
    assert!(w.stop().success());

    // Pruned: the empty service's rules go; the decoy stays.
    d.write("lab.toml", &body(&web));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("- service empty"), "{r:?}");
    let listed = must(&format!(
        "ip netns exec {} nft list table inet netloom-{}",
        ns.name, t.name
    ));
    assert!(!listed.contains(&format!("10.96.{o}.11")), "{listed}");
    assert!(tables_in(Some(&ns.name)).contains("table inet decoy"));

    // destroy: netloom's table goes, the decoy (and so the netns) stays.
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
    let left = tables_in(Some(&ns.name));
    assert!(
        !left.contains(&table) && left.contains("table inet decoy"),
        "{left}"
    );

    // Without the decoy, destroy removes the netns whole, table and all.
    must(&format!(
        "ip netns exec {} nft delete table inet decoy",
        ns.name
    ));
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    let r = nl(&["destroy"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!ns.exists());
}

#[test]
fn a_docker_network_service_lives_in_the_host_netns_and_destroy_removes_its_table() {
    ensure_image();
    let t = Topo::new("nlsd");
    let _nets = NetsOf {
        topology: t.name.clone(),
    };
    let o = octet();
    let net = format!("{}n", t.name);
    let d = Dir::new();
    // The network first (servers join it at start), then the service.
    let base = format!(
        "[topology]\nname = \"{}\"\n[network.{net}]\nsubnets = [\"10.98.{o}.0/24\"]\ninternal = true\n",
        t.name
    );
    let f = d.write("lab.toml", &base);
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    let (a, b) = (
        server("nlsda", &t.name, &net),
        server("nlsdb", &t.name, &net),
    );
    let client = Ctr::run_mode("nlsdc", &net);
    let vip = format!("10.96.{o}.20");
    d.write(
        "lab.toml",
        &format!(
            "{base}[service.api]\naddresses = [\"{vip}\"]\nports = [{{ port = 80, target = 8080 }}]\n\
             network = \"{net}\"\nselector = {{ app = \"{}\" }}\n",
            t.name
        ),
    );
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    let table = format!("table inet netloom-{}", t.name);
    assert!(tables_in(None).contains(&table));
    // An internal network has no default route: the client routes the VIP
    // through the network's gateway (the host).
    let pid = client.inspect()["State"]["Pid"].as_u64().unwrap();
    must(&format!(
        "nsenter -t {pid} -n ip route add {vip}/32 via 10.98.{o}.1"
    ));
    let got = spread(&client, &vip, 20);
    assert!(
        got.get(&a.name).is_some_and(|n| *n > 0) && got.get(&b.name).is_some_and(|n| *n > 0),
        "{got:?}"
    );
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);
    drop(a);
    drop(b);
    drop(client);
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
    assert!(!tables_in(None).contains(&table));
}

#[test]
fn an_ipv6_vip_spreads_and_client_ip_affinity_keeps_one_endpoint() {
    let (t, ns, d) = (Topo::new("nls6"), Netns::named("nls6"), Dir::new());
    let (a, b) = (
        server("nls6a", "web6", "none"),
        server("nls6b", "web6", "none"),
    );
    let client = Ctr::run_mode("nls6c", "none");
    let o = octet();
    let iface = |c: &Ctr, host: u8, route: bool| {
        format!(
            "[container.{}]\ninterfaces.eth1 = {{ bridge = \"br0\", addresses = [\"10.95.{o}.{host}/24\", \"fd00:95:{o}::{host}/64\"] }}\n{}",
            c.name,
            if route {
                format!(
                    "routes = [{{ to = \"10.94.{o}.0/24\", via = \"10.95.{o}.1\" }}, {{ to = \"fd00:94:{o}::/64\", via = \"fd00:95:{o}::1\" }}]\n"
                )
            } else {
                String::new()
            }
        )
    };
    let f = d.write(
        "lab.toml",
        &format!(
            "[topology]\nname = \"{}\"\nnetns = \"{}\"\n[bridge.br0]\naddresses = [\"10.95.{o}.1/24\", \"fd00:95:{o}::1/64\"]\n\
             {}{}{}\
             [service.v6]\naddresses = [\"fd00:94:{o}::10\"]\nports = [{{ port = 80, target = 8080 }}]\nnetwork = \"br0\"\nselector = {{ app = \"web6\" }}\n\
             [service.sticky]\naddresses = [\"10.94.{o}.20\"]\nports = [{{ port = 80, target = 8080 }}]\nnetwork = \"br0\"\nselector = {{ app = \"web6\" }}\n\
             affinity = {{ client_ip = \"10m\" }}\n",
            t.name,
            ns.name,
            iface(&a, 11, false),
            iface(&b, 12, false),
            iface(&client, 20, true)
        ),
    );
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    // IPv6: both endpoints, at their IPv6 addresses.
    let got = spread(&client, &format!("fd00:94:{o}::10"), 20);
    assert!(
        got.get(&a.name).is_some_and(|n| *n > 0) && got.get(&b.name).is_some_and(|n| *n > 0),
        "{got:?}"
    );
    // Affinity: every connect from one client lands on one endpoint.
    let got = spread(&client, &format!("10.94.{o}.20"), 10);
    assert_eq!(got.len(), 1, "{got:?}");
    assert!(!got.keys().next().unwrap().starts_with("error"), "{got:?}");
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);
    // Another service added is changed in place: the sticky service's
    // remembered client survives the apply, and so do its rules.
    let table = format!("netloom-{}", t.name);
    let list = || {
        must(&format!(
            "ip netns exec {} nft -a list table inet {table}",
            ns.name
        ))
    };
    let client_ip = format!("10.95.{o}.20");
    let sticky_rules = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains("nl svc sticky"))
            .map(|l| l.trim().to_string())
            .collect()
    };
    let before = list();
    assert!(
        before.contains(&client_ip),
        "the client is remembered:\n{before}"
    );
    let text = std::fs::read_to_string(&f).unwrap()
        + &format!(
            "[service.extra]\naddresses = [\"10.94.{o}.30\"]\nports = [{{ port = 80, target = 8080 }}]\nnetwork = \"br0\"\nselector = {{ app = \"web6\" }}\n"
        );
    d.write("lab.toml", &text);
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("+ service extra"), "{r:?}");
    let after = list();
    assert!(
        after.contains(&client_ip),
        "still remembered after the apply:\n{after}"
    );
    assert_eq!(
        sticky_rules(&after),
        sticky_rules(&before),
        "same rules, same handles"
    );
    let extra = spread(&client, &format!("10.94.{o}.30"), 4);
    assert!(!extra.keys().any(|k| k.starts_with("error")), "{extra:?}");
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
}

/// A thread of this test process inside `c`'s netns (busybox has no UDP
/// server): answers every datagram on :`port` with `c`'s name, until the
/// returned flag is cleared.
fn udp_responder(c: &Ctr, port: u16) -> std::sync::Arc<std::sync::atomic::AtomicBool> {
    use std::sync::atomic::{AtomicBool, Ordering};
    let on = std::sync::Arc::new(AtomicBool::new(true));
    let pid = c.inspect()["State"]["Pid"].as_u64().unwrap();
    let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
    let (name, flag) = (c.name.clone(), on.clone());
    let (ready_tx, ready) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
        let s = std::net::UdpSocket::bind(("0.0.0.0", port)).unwrap();
        s.set_read_timeout(Some(Duration::from_millis(100)))
            .unwrap();
        ready_tx.send(()).unwrap();
        let mut buf = [0u8; 64];
        while flag.load(Ordering::SeqCst) {
            if let Ok((_, from)) = s.recv_from(&mut buf) {
                let _ = s.send_to(name.as_bytes(), from);
            }
        }
    });
    ready.recv().unwrap();
    on
}

/// A UDP client socket inside `c`'s netns that keeps its source port, as a
/// DNS resolver or a game client does: `ask` sends one datagram and
/// returns who answered.
struct UdpClient {
    ask: std::sync::mpsc::Sender<std::sync::mpsc::Sender<String>>,
}

impl UdpClient {
    fn open(c: &Ctr, to: String) -> UdpClient {
        let pid = c.inspect()["State"]["Pid"].as_u64().unwrap();
        let ns = std::fs::File::open(format!("/proc/{pid}/ns/net")).unwrap();
        let (ask, asked) = std::sync::mpsc::channel::<std::sync::mpsc::Sender<String>>();
        std::thread::spawn(move || {
            nix::sched::setns(&ns, nix::sched::CloneFlags::CLONE_NEWNET).unwrap();
            let s = std::net::UdpSocket::bind("0.0.0.0:0").unwrap();
            s.set_read_timeout(Some(Duration::from_millis(500)))
                .unwrap();
            let mut buf = [0u8; 64];
            for reply in asked {
                let got = s
                    .send_to(b"who", to.as_str())
                    .and_then(|_| s.recv_from(&mut buf))
                    .map(|(n, _)| String::from_utf8_lossy(&buf[..n]).into_owned())
                    .unwrap_or_else(|e| format!("error: {e}"));
                let _ = reply.send(got);
            }
        });
        UdpClient { ask }
    }

    fn who(&self) -> String {
        let (tx, rx) = std::sync::mpsc::channel();
        self.ask.send(tx).unwrap();
        rx.recv().unwrap()
    }
}

#[test]
fn a_udp_flow_follows_the_endpoints_when_one_is_taken_out() {
    let (t, ns, d) = (Topo::new("nlsu"), Netns::named("nlsu"), Dir::new());
    let (a, b, client) = (
        Ctr::run_mode("nlsua", "none"),
        Ctr::run_mode("nlsub", "none"),
        Ctr::run_mode("nlsuc", "none"),
    );
    let o = octet();
    let body = |endpoints: &[&Ctr]| {
        let eps: Vec<String> = endpoints
            .iter()
            .map(|c| format!("\"{}\"", c.name))
            .collect();
        format!(
            "[topology]\nname = \"{}\"\nnetns = \"{}\"\n[bridge.br0]\naddresses = [\"10.93.{o}.1/24\"]\n\
             [container.{}]\ninterfaces.eth1 = {{ bridge = \"br0\", addresses = [\"10.93.{o}.11/24\"] }}\n\
             [container.{}]\ninterfaces.eth1 = {{ bridge = \"br0\", addresses = [\"10.93.{o}.12/24\"] }}\n\
             [container.{}]\ninterfaces.eth1 = {{ bridge = \"br0\", addresses = [\"10.93.{o}.20/24\"] }}\n\
             routes = [{{ to = \"10.92.{o}.0/24\", via = \"10.93.{o}.1\" }}]\n\
             [service.dns]\naddresses = [\"10.92.{o}.53\"]\nports = [{{ port = 53, target = 5353, protocol = \"udp\" }}]\n\
             network = \"br0\"\nendpoints = [{}]\n",
            t.name,
            ns.name,
            a.name,
            b.name,
            client.name,
            eps.join(", ")
        )
    };
    let f = d.write("lab.toml", &body(&[&a, &b]));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    let _on = (udp_responder(&a, 5353), udp_responder(&b, 5353));
    let c = UdpClient::open(&client, format!("10.92.{o}.53:53"));

    // One socket is one flow: every answer from the endpoint it first got.
    let first = c.who();
    assert!(first == a.name || first == b.name, "{first}");
    for _ in 0..5 {
        assert_eq!(c.who(), first);
    }
    // Take that endpoint out (it still answers if anything reaches it).
    let (gone, left) = if first == a.name { (&a, &b) } else { (&b, &a) };
    d.write("lab.toml", &body(&[left]));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(&format!("- endpoint {}", gone.name)),
        "{r:?}"
    );
    // The same socket now reaches the endpoint left: its flow was flushed.
    assert_eq!(c.who(), left.name, "the flow still goes to {}", gone.name);
    assert_eq!(c.who(), left.name);
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
}

/// Forwarding a bridge service needs is planned, owned and given back.
#[test]
fn the_forwarding_a_bridge_service_needs_is_in_the_plan_and_undone_by_destroy() {
    let (t, ns, d) = (Topo::new("nlsf"), Netns::precreated("nlsf"), Dir::new());
    let o = octet();
    must(&format!(
        "ip netns exec {} sysctl -qw net.ipv4.ip_forward=0",
        ns.name
    ));
    let f = d.write(
        "lab.toml",
        &format!(
            "[topology]\nname = \"{}\"\nnetns = \"{}\"\n[bridge.br0]\naddresses = [\"10.91.{o}.1/24\"]\n\
             [service.quiet]\naddresses = [\"10.90.{o}.10\"]\nports = [{{ port = 80 }}]\nnetwork = \"br0\"\nendpoints = [\"nobody-here\"]\n",
            t.name, ns.name
        ),
    );
    let forward = || {
        must(&format!(
            "ip netns exec {} cat /proc/sys/net/ipv4/ip_forward",
            ns.name
        ))
    };
    let p = nl(&["plan"], &[&f]);
    assert!(
        p.stdout
            .contains("~ sysctl net.ipv4.ip_forward = 1\n      value: 0 → 1"),
        "{p:?}"
    );
    assert_eq!(forward().trim(), "0", "plan changes nothing");
    assert!(
        p.stdout
            .contains(&format!("routes: local 10.90.{o}.10 dev lo")),
        "{p:?}"
    );
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    assert_eq!(forward().trim(), "1");
    let local = || {
        must(&format!(
            "ip -n {} route show table local proto 78",
            ns.name
        ))
    };
    assert_eq!(
        local().trim(),
        format!("local 10.90.{o}.10 dev lo scope host")
    );
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);
    // Deleted by hand: drift, repaired.
    must(&format!(
        "ip -n {} route del local 10.90.{o}.10 dev lo table local",
        ns.name
    ));
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 2);
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    assert!(local().contains(&format!("10.90.{o}.10")));
    let r = nl(&["destroy"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("sysctl net.ipv4.ip_forward"), "{r:?}");
    assert_eq!(forward().trim(), "0", "destroy puts the old value back");
    assert_eq!(local().trim(), "", "destroy removes the VIP's route");
}

/// `nft --debug=netlink list table` of a table: its rules as the kernel
/// holds them (expressions, registers, data), set elements sorted (their
/// order is the hash's).
fn bytecode(netns: &str, table: &str) -> (Vec<String>, Vec<String>) {
    let out = must(&format!(
        "ip netns exec {netns} nft --debug=netlink list table inet {table}"
    ));
    let (mut rules, mut elems) = (vec![], vec![]);
    for l in out.lines() {
        // The listing itself (after the debug part) is compared on its own.
        if l.starts_with("table ") {
            break;
        }
        let t = l.trim();
        if t.starts_with("element ") {
            elems.push(t.to_string());
        } else {
            rules.push(t.to_string());
        }
    }
    elems.sort();
    (rules, elems)
}

#[test]
fn netlooms_table_is_byte_for_byte_what_nft_itself_writes_from_its_listing() {
    // netloom encodes nf_tables messages itself. The proof that it encodes
    // them as nft does: the listing of netloom's table, loaded by nft into
    // a second netns, gives the same kernel objects, rule for rule.
    let (t, ns, d) = (Topo::new("nlw"), Netns::named("nlw"), Dir::new());
    let other = Netns::precreated("nlw2");
    let (a, b) = (Ctr::run_mode("nlwa", "none"), Ctr::run_mode("nlwb", "none"));
    let o = octet();
    let iface = |c: &Ctr, host: u8| {
        format!(
            "[container.{}]\ninterfaces.eth1 = {{ bridge = \"br0\", addresses = [\"10.93.{o}.{host}/24\", \"fd00:93:{o}::{host}/64\"] }}\n",
            c.name
        )
    };
    let f = d.write(
        "lab.toml",
        &format!(
            "[topology]\nname = \"{}\"\nnetns = \"{}\"\n[bridge.br0]\naddresses = [\"10.93.{o}.1/24\", \"fd00:93:{o}::1/64\"]\n\
             {}{}\
             [service.web]\naddresses = [\"10.92.{o}.10\", \"fd00:92:{o}::10\"]\nports = [{{ port = 80, target = 8080 }}, {{ port = 53, protocol = \"udp\" }}]\n\
             network = \"br0\"\nendpoints = [\"{}\", \"{}\"]\naffinity = {{ client_ip = \"90s\" }}\n\
             [service.plain]\naddresses = [\"10.92.{o}.11\"]\nports = [{{ port = 443, target = 8443 }}]\nnetwork = \"br0\"\nendpoints = [\"{}\"]\n\
             [service.empty]\naddresses = [\"10.92.{o}.12\", \"fd00:92:{o}::12\"]\nports = [{{ port = 80 }}, {{ port = 69, protocol = \"udp\" }}]\n\
             network = \"br0\"\nendpoints = [\"nobody-here\"]\n",
            t.name,
            ns.name,
            iface(&a, 11),
            iface(&b, 12),
            a.name,
            b.name,
            b.name
        ),
    );
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    let table = format!("netloom-{}", t.name);
    let listing = must(&format!(
        "ip netns exec {} nft list table inet {table}",
        ns.name
    ));
    for needle in [
        "numgen random mod 2 vmap",
        "dnat ip6 to [fd00:93",
        "update @aff-web-tcp80-4-0 { ip saddr }",
        "flags dynamic,timeout",
        "reject with tcp reset",
        "ct status dnat ct original ip6 daddr @vips6 masquerade",
    ] {
        assert!(listing.contains(needle), "{needle:?} not in\n{listing}");
    }
    let script = d.write("again.nft", &listing);
    must(&format!(
        "ip netns exec {} nft -f {}",
        other.name,
        script.display()
    ));
    let again = must(&format!(
        "ip netns exec {} nft list table inet {table}",
        other.name
    ));
    assert_eq!(listing, again, "nft reads netloom's table as it wrote it");
    let (mine, my_elems) = bytecode(&ns.name, &table);
    let (nfts, nft_elems) = bytecode(&other.name, &table);
    assert!(mine.len() > 100, "a listing of every rule: {mine:?}");
    let first_diff = mine.iter().zip(&nfts).position(|(x, y)| x != y);
    assert_eq!(
        first_diff.map(|i| (
            &mine[i.saturating_sub(3)..=i],
            &nfts[i.saturating_sub(3)..=i]
        )),
        None,
        "netloom's rules differ from nft's"
    );
    assert_eq!(mine.len(), nfts.len());
    assert_eq!(my_elems, nft_elems);
    nl(&["destroy"], &[&f]);
}
