//! apply / plan / destroy / show against the real kernel, each test in its
//! own network namespace.

mod common;

use common::*;

fn topo_a(t: &Topo, ns: &Netns) -> String {
    format!(
        r#"
[topology]
name = "{t}"
netns = "{ns}"

[bridge.br-core]
addresses = ["10.0.0.1/24", "fd00:0:0:1::1/64"]
mtu = 9000

[bridge.br-edge]
addresses = ["10.1.0.1/24"]

[veth.v-core]
peer = "v-edge"
master = "br-core"
peer_master = "br-edge"

[veth.v-host]
peer = "v-host-p"
addresses = ["10.9.0.1/30"]
peer_addresses = ["10.9.0.2/30"]

[[route]]
to = "10.20.0.0/16"
via = "10.0.0.2"
table = 100

[[route]]
to = "fd00:20::/48"
via = "fd00:0:0:1::2"

[[rule]]
from = "192.168.100.0/24"
table = 100
priority = 1000
"#,
        t = t.name,
        ns = ns.name
    )
}

#[test]
fn apply_creates_what_the_file_says_and_a_second_plan_is_empty() {
    let (t, ns, d) = (Topo::new("nlt"), Netns::named("nlt"), Dir::new());
    let f = d.write("lab.toml", &topo_a(&t, &ns));

    let plan = nl(&["plan", "--detailed-exitcode"], &[&f]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(
        plan.stdout.contains(&format!("+ netns {}", ns.name)),
        "{plan:?}"
    );
    assert!(!ns.exists(), "plan must not create the netns");

    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("verified"), "{r:?}");

    assert_eq!(
        ns.link_names(),
        [
            "br-core", "br-edge", "v-core", "v-edge", "v-host", "v-host-p"
        ]
    );
    let core = ns.link("br-core");
    assert_eq!(
        core["mtu"], 9000,
        "bridge MTU is pinned even with 1500-byte ports"
    );
    assert_eq!(core["ifalias"], format!("netloom:{}", t.name));
    assert_eq!(core["linkinfo"]["info_kind"], "bridge");
    assert_eq!(ns.addrs("br-core"), ["10.0.0.1/24", "fd00:0:0:1::1/64"]);
    assert_eq!(ns.link("v-core")["master"], "br-core");
    assert_eq!(ns.link("v-edge")["master"], "br-edge");
    assert_eq!(ns.link("v-edge")["ifalias"], format!("netloom:{}", t.name));
    for l in ["v-core", "v-edge", "v-host", "v-host-p"] {
        let flags = ns.link(l)["flags"].to_string();
        assert!(
            flags.contains("\"UP\"") && flags.contains("LOWER_UP"),
            "{l} up with carrier: {flags}"
        );
    }
    assert_eq!(ns.addrs("v-host-p"), ["10.9.0.2/30"]);
    assert_eq!(
        ns.routes("100"),
        ["10.20.0.0/16 via 10.0.0.2 dev br-core proto 78"]
    );
    assert!(
        ns.routes("main")
            .contains(&"fd00:20::/48 via fd00:0:0:1::2 dev br-core proto 78".to_string())
    );
    assert_eq!(
        ns.rules(),
        ["1000: from 192.168.100.0/24 lookup 100 proto 78"]
    );

    let again = nl(&["plan", "--detailed-exitcode"], &[&f]);
    assert_eq!(again.code, 0, "{again:?}");
    assert!(again.stdout.starts_with("No changes"), "{again:?}");
    let reapply = nl(&["apply"], &[&f]);
    assert_eq!(reapply.code, 0);
    assert!(reapply.stdout.starts_with("No changes"), "{reapply:?}");

    let destroy = nl(&["destroy"], &[&f]);
    assert_eq!(destroy.code, 0, "{destroy:?}");
    assert!(
        !ns.exists(),
        "the netns netloom created is removed: {destroy:?}"
    );
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 2);
}

#[test]
fn applying_version_b_after_a_converges_to_exactly_b() {
    let (t, ns, d) = (Topo::new("nlt"), Netns::named("nlt"), Dir::new());
    let f = d.write("lab.toml", &topo_a(&t, &ns));
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    let edge_mac = ns.link("br-edge")["address"].clone();

    // B: MTU changes, an address swapped, v-core moved to br-edge, a veth
    // pair, a route and the rule removed, a bridge added, a route changed.
    let b = format!(
        r#"
[topology]
name = "{}"
netns = "{}"

[bridge.br-core]
addresses = ["10.0.0.1/24", "10.0.5.1/24"]
mtu = 1500

[bridge.br-edge]
addresses = ["10.1.0.7/24"]

[bridge.br-new]
mtu = 1400

[veth.v-core]
peer = "v-edge"
master = "br-edge"
mtu = 1400

[[route]]
to = "10.20.0.0/16"
via = "10.0.5.9"
table = 100
"#,
        t.name, ns.name
    );
    std::fs::write(&f, b).unwrap();
    let plan = nl(&["plan"], &[&f]);
    assert!(
        plan.stdout.contains("master: br-core → br-edge"),
        "{plan:?}"
    );
    assert!(
        plan.stdout.contains("- veth v-host (peer v-host-p)"),
        "{plan:?}"
    );
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");

    assert_eq!(
        ns.link_names(),
        ["br-core", "br-edge", "br-new", "v-core", "v-edge"]
    );
    assert_eq!(ns.link("br-core")["mtu"], 1500);
    assert_eq!(ns.link("br-new")["mtu"], 1400);
    assert_eq!(ns.addrs("br-core"), ["10.0.0.1/24", "10.0.5.1/24"]);
    assert_eq!(
        ns.addrs("br-edge"),
        ["10.1.0.7/24"],
        "a new address in the same subnet"
    );
    assert_eq!(ns.link("v-core")["master"], "br-edge");
    assert_eq!(
        ns.link("br-edge")["address"],
        edge_mac,
        "the bridge keeps its MAC while its ports change"
    );
    assert!(
        ns.link("v-edge").get("master").is_none(),
        "peer_master removed"
    );
    assert_eq!(ns.link("v-core")["mtu"], 1400);
    assert_eq!(ns.link("v-edge")["mtu"], 1400);
    assert_eq!(
        ns.routes("100"),
        ["10.20.0.0/16 via 10.0.5.9 dev br-core proto 78"]
    );
    assert!(
        !ns.routes("main").iter().any(|r| r.starts_with("fd00:20::")),
        "{:?}",
        ns.routes("main")
    );
    assert_eq!(ns.rules(), Vec::<String>::new());
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);
}

#[test]
fn objects_netloom_does_not_own_are_never_touched() {
    let (t, ns, d) = (Topo::new("nlt"), Netns::precreated("nlt"), Dir::new());
    let n = &ns.name;
    // Decoys: an unmarked bridge, another topology's bridge, a foreign route and rule.
    must(&format!(
        "ip -n {n} link add decoy0 type bridge && ip -n {n} link set decoy0 up && \
         ip -n {n} addr add 10.77.0.1/24 dev decoy0 && \
         ip -n {n} link add other0 type bridge && ip -n {n} link set other0 alias netloom:someoneelse && \
         ip -n {n} route add 10.78.0.0/16 via 10.77.0.9 table 100 && \
         ip -n {n} rule add from 10.79.0.0/16 table 100 priority 2000"
    ));
    // What a user would check of a link (live timers left out).
    let stable = |name: &str| {
        let l = ns.link(name);
        [
            "ifname", "ifindex", "address", "mtu", "flags", "ifalias", "master", "group",
        ]
        .map(|k| l[k].clone())
    };
    let snapshot = || {
        (
            stable("decoy0"),
            ns.addrs("decoy0"),
            stable("other0"),
            ns.routes("100")
                .into_iter()
                .filter(|r| r.contains("10.78"))
                .collect::<Vec<_>>(),
            ns.rules()
                .into_iter()
                .filter(|r| r.starts_with("2000"))
                .collect::<Vec<_>>(),
        )
    };
    let before = snapshot();

    let f = d.write("lab.toml", &topo_a(&t, &ns));
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    // Everything but [topology] removed: a prune of all owned objects.
    std::fs::write(
        &f,
        format!("[topology]\nname = \"{}\"\nnetns = \"{n}\"\n", t.name),
    )
    .unwrap();
    let prune = nl(&["apply"], &[&f]);
    assert_eq!(prune.code, 0, "{prune:?}");
    assert_eq!(ns.link_names(), ["decoy0", "other0"]);
    assert_eq!(snapshot(), before);

    // Claiming a name held by an unmarked link is a conflict; nothing changes.
    std::fs::write(&f, format!("[topology]\nname = \"{}\"\nnetns = \"{n}\"\n[bridge.decoy0]\nmtu = 1400\n[bridge.fresh0]\n", t.name)).unwrap();
    let conflict = nl(&["apply"], &[&f]);
    assert_eq!(conflict.code, 1, "{conflict:?}");
    assert!(
        conflict
            .stdout
            .contains("already exists and netloom does not own it"),
        "{conflict:?}"
    );
    assert!(
        conflict.stderr.contains("nothing was changed"),
        "{conflict:?}"
    );
    assert_eq!(
        ns.link_names(),
        ["decoy0", "other0"],
        "fresh0 must not be created either"
    );
    // ...and another topology's link is refused by name.
    std::fs::write(
        &f,
        format!(
            "[topology]\nname = \"{}\"\nnetns = \"{n}\"\n[bridge.other0]\n",
            t.name
        ),
    )
    .unwrap();
    let other = nl(&["plan"], &[&f]);
    assert_eq!(other.code, 1);
    assert!(
        other.stdout.contains("belongs to topology `someoneelse`"),
        "{other:?}"
    );
    // A foreign route with the same key is a conflict too.
    std::fs::write(
        &f,
        format!("[topology]\nname = \"{}\"\nnetns = \"{n}\"\n[bridge.b1]\naddresses=[\"10.77.1.1/24\"]\n[[route]]\nto = \"10.78.0.0/16\"\nvia = \"10.77.1.2\"\ntable = 100\n", t.name),
    )
    .unwrap();
    let route = nl(&["plan"], &[&f]);
    assert_eq!(route.code, 1);
    assert!(
        route
            .stdout
            .contains("this topology does not own it (protocol 3, boot)"),
        "{route:?}"
    );

    // destroy in a netns netloom did not create: owned objects go, the netns and decoys stay.
    std::fs::write(&f, topo_a(&t, &ns)).unwrap();
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    let destroy = nl(&["destroy"], &[&f]);
    assert_eq!(destroy.code, 0, "{destroy:?}");
    assert!(ns.exists());
    assert_eq!(ns.link_names(), ["decoy0", "other0"]);
    assert_eq!(snapshot(), before);
}

#[test]
fn drift_is_shown_and_repaired() {
    let (t, ns, d) = (Topo::new("nlt"), Netns::named("nlt"), Dir::new());
    let f = d.write("lab.toml", &topo_a(&t, &ns));
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    let n = &ns.name;
    must(&format!(
        "ip -n {n} link set br-core mtu 1500 && ip -n {n} addr del 10.1.0.1/24 dev br-edge && \
         ip -n {n} link set v-core nomaster && ip -n {n} link del v-host && ip -n {n} rule del priority 1000"
    ));
    let show = nl(&["show"], &[&f]);
    assert_eq!(show.code, 0, "{show:?}");
    assert!(show.stdout.contains("drift     bridge br-core"), "{show:?}");
    assert!(show.stdout.contains("mtu: 1500 → 9000"), "{show:?}");
    assert!(show.stdout.contains("missing   veth v-host"), "{show:?}");
    assert!(show.stdout.contains("missing   rule 1000"), "{show:?}");
    let json: serde_json::Value =
        serde_json::from_str(&nl(&["show", "--format", "json"], &[&f]).stdout).unwrap();
    let statuses: Vec<&str> = json["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["status"].as_str().unwrap())
        .collect();
    assert_eq!(statuses.iter().filter(|s| **s == "ok").count(), 3, "{json}");
    assert_eq!(json["format_version"], 1);
    assert_eq!(nl(&["show", "--detailed-exitcode"], &[&f]).code, 2);

    let plan = nl(&["plan", "--detailed-exitcode"], &[&f]);
    assert_eq!(plan.code, 2);
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    // A stray address is one update: nothing that depends on the bridge is touched.
    must(&format!("ip -n {n} addr add 10.0.0.99/24 dev br-core"));
    let stray = nl(&["plan"], &[&f]);
    assert!(
        stray
            .stdout
            .contains("Plan: 0 to create, 1 to update, 0 to replace, 0 to delete."),
        "{stray:?}"
    );
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    assert_eq!(ns.addrs("br-core"), ["10.0.0.1/24", "fd00:0:0:1::1/64"]);
    assert_eq!(ns.link("br-core")["mtu"], 9000);
    assert_eq!(ns.addrs("br-edge"), ["10.1.0.1/24"]);
    assert_eq!(ns.link("v-core")["master"], "br-core");
    assert_eq!(nl(&["show", "--detailed-exitcode"], &[&f]).code, 0);
    assert_eq!(
        ns.rules(),
        ["1000: from 192.168.100.0/24 lookup 100 proto 78"]
    );
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);
}

#[test]
fn a_failed_step_is_reported_and_a_rerun_converges() {
    let (t, ns, d) = (Topo::new("nlt"), Netns::named("nlt"), Dir::new());
    // The gateway is on no connected subnet: the kernel refuses the route.
    let bad = format!(
        "[topology]\nname = \"{}\"\nnetns = \"{}\"\n[bridge.br0]\naddresses = [\"10.0.0.1/24\"]\n[[route]]\nto = \"10.20.0.0/16\"\nvia = \"10.99.0.1\"\n",
        t.name, ns.name
    );
    let f = d.write("lab.toml", &bad);
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr
            .contains("warning: gateway 10.99.0.1 is not in a subnet"),
        "{r:?}"
    );
    assert!(
        r.stderr
            .contains("step `+ route 10.20.0.0/16 via 10.99.0.1 table 254` failed"),
        "{r:?}"
    );
    assert!(
        r.stderr.contains("Network is unreachable"),
        "the kernel's own error: {r:?}"
    );
    assert!(
        r.stderr.contains("+ bridge br0"),
        "what was done is listed: {r:?}"
    );
    std::fs::write(&f, bad.replace("10.99.0.1", "10.0.0.99")).unwrap();
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    assert_eq!(
        ns.routes("main"),
        ["10.20.0.0/16 via 10.0.0.99 dev br0 proto 78"]
    );
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);
}

#[test]
fn a_second_process_on_the_same_topology_is_refused() {
    let (t, ns, d) = (Topo::new("nlt"), Netns::named("nlt"), Dir::new());
    let f = d.write("lab.toml", &topo_a(&t, &ns));
    std::fs::create_dir_all(run_dir()).unwrap();
    let lock_path = run_dir().join(format!("{}.lock", t.name));
    // Another process holds the lock, as a running apply would.
    // -o: only flock itself holds the lock, so killing it frees the lock.
    let mut holder = std::process::Command::new("flock")
        .arg("-o")
        .arg(&lock_path)
        .args(["sleep", "30"])
        .spawn()
        .expect("flock(1) from util-linux");
    std::thread::sleep(std::time::Duration::from_millis(300));
    std::fs::write(&lock_path, holder.id().to_string()).unwrap();
    let r = nl(&["apply"], &[&f]);
    holder.kill().unwrap();
    let _ = holder.wait();
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "topology {} is being applied by pid {}",
            t.name,
            holder.id()
        )),
        "{r:?}"
    );
    assert!(!ns.exists(), "nothing was applied");
    assert_eq!(nl(&["apply"], &[&f]).code, 0, "the lock is free again");
}

#[test]
fn plan_formats_and_graph() {
    let (t, ns, d) = (Topo::new("nlt"), Netns::named("nlt"), Dir::new());
    let f = d.write("lab.toml", &topo_a(&t, &ns));
    let json: serde_json::Value =
        serde_json::from_str(&nl(&["plan", "--format", "json"], &[&f]).stdout).unwrap();
    assert_eq!(json["format_version"], 1);
    assert_eq!(json["summary"]["create"], 8);
    let keys: Vec<&str> = json["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["key"]["type"].as_str().unwrap())
        .collect();
    assert_eq!(keys[0], "netns", "the netns comes first");
    // Bridges are created in an earlier stage than the veths enslaved to them.
    let stage = |title: &str| {
        json["changes"]
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["title"].as_str().unwrap().starts_with(title))
            .unwrap()["stage"]
            .as_u64()
            .unwrap()
    };
    assert!(stage("br-core") < stage("v-core"));
    assert!(stage("10.20.0.0/16") > stage("br-core"));
    assert!(
        stage("1000:") > stage("10.20.0.0/16"),
        "the rule comes after its table's routes"
    );

    let md = nl(&["plan", "--format", "markdown"], &[&f]);
    assert!(
        md.stdout
            .starts_with(&format!("### netloom plan: `{}`", t.name))
    );
    assert!(md.stdout.contains("```diff\n+   netns"), "{md:?}");

    let dot = nl(&["graph"], &[&f]).stdout;
    assert!(dot.starts_with(&format!("digraph \"{}\"", t.name)));
    assert!(dot.contains("\"link/br-core\" -> \"link/v-core\""), "{dot}");
    assert!(
        dot.contains("\"link/br-core\" -> \"route/100/10.20.0.0/16/0\""),
        "{dot}"
    );
}

#[test]
fn routes_and_rules_in_every_form_converge_and_prune() {
    let (t, ns, d) = (Topo::new("nlt"), Netns::named("nlt"), Dir::new());
    let head = format!(
        r#"
[topology]
name = "{}"
netns = "{}"

[bridge.br0]
addresses = ["10.30.0.1/24", "fd00:30::1/64"]

[veth.va]
peer = "vb"
addresses = ["10.31.0.1/30"]
peer_addresses = ["10.31.0.2/30"]

[[route]]
to = "10.41.0.0/16"
via = "10.31.0.2"
metric = 50

[[rule]]
from = "fd00:99::/48"
table = 200
priority = 1300
"#,
        t.name, ns.name
    );
    let extra = r#"
[[route]]
to = "10.40.0.0/16"
dev = "br0"

# The kernel stores IPv6 metric 0 as 1024.
[[route]]
to = "fd00:75::/64"
via = "fd00:30::2"
metric = 0

[[route]]
to = "default"
via = "10.30.0.254"
table = 200

[[route]]
to = "default"
via = "fd00:30::fe"
table = 200

[[route]]
to = "10.41.0.0/16"
via = "10.30.0.9"
metric = 100

[[rule]]
iif = "va"
table = 200
priority = 1100

[[rule]]
to = "10.50.0.0/16"
oif = "br0"
table = 200
priority = 1200

[[rule]]
family = "ipv6"
table = 200
priority = 1400
"#;
    let f = d.write("lab.toml", &format!("{head}{extra}"));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");

    assert_eq!(
        ns.routes("200"),
        [
            "default via 10.30.0.254 dev br0 proto 78",
            "default via fd00:30::fe dev br0 proto 78"
        ]
    );
    let main = ns.routes("main");
    assert!(
        main.contains(&"10.40.0.0/16 dev br0 proto 78".to_string()),
        "a route with only a device: {main:?}"
    );
    assert!(
        main.contains(&"fd00:75::/64 via fd00:30::2 dev br0 proto 78".to_string()),
        "{main:?}"
    );
    let metrics = |ns: &Netns| {
        let v: serde_json::Value = serde_json::from_str(&must(&format!(
            "ip -n {} -j route show 10.41.0.0/16",
            ns.name
        )))
        .unwrap();
        let mut m: Vec<String> = v
            .as_array()
            .unwrap()
            .iter()
            .map(|r| format!("{} {}", r["gateway"], r["metric"]).replace('"', ""))
            .collect();
        m.sort();
        m
    };
    assert_eq!(
        metrics(&ns),
        ["10.30.0.9 100", "10.31.0.2 50"],
        "one prefix, two metrics"
    );
    assert_eq!(
        ns.rules(),
        [
            "1100: from all iif va lookup 200 proto 78",
            "1200: from all to 10.50.0.0/16 oif br0 lookup 200 proto 78",
            "1300: from fd00:99::/48 lookup 200 proto 78",
            "1400: from all lookup 200 proto 78",
        ]
    );
    let again = nl(&["plan", "--detailed-exitcode"], &[&f]);
    assert_eq!(again.code, 0, "{again:?}");

    // Another address in the same subnet: the routes through br0 stay.
    // And an IPv6 address that only changes its prefix length.
    let moved = format!("{head}{extra}")
        .replace("10.30.0.1/24", "10.30.0.2/24")
        .replace("fd00:30::1/64", "fd00:30::1/56");
    std::fs::write(&f, &moved).unwrap();
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ns.addrs("br0"), ["10.30.0.2/24", "fd00:30::1/56"]);
    assert_eq!(ns.routes("200").len(), 2);
    assert_eq!(metrics(&ns), ["10.30.0.9 100", "10.31.0.2 50"]);
    assert!(
        ns.routes("main")
            .contains(&"10.40.0.0/16 dev br0 proto 78".to_string())
    );
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);

    // A veth replaced (new peer name) takes the routes through it along;
    // they are made again in the same apply.
    std::fs::write(&f, moved.replace("peer = \"vb\"", "peer = \"vc\"")).unwrap();
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("re-applied: depends on veth va"), "{r:?}");
    assert_eq!(metrics(&ns), ["10.30.0.9 100", "10.31.0.2 50"]);

    // Drop the extra routes and rules: exactly those go.
    std::fs::write(&f, &head).unwrap();
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ns.routes("200"), Vec::<String>::new());
    assert!(
        !ns.routes("main")
            .iter()
            .any(|r| r.starts_with("10.40.") || r.starts_with("fd00:75:"))
    );
    assert_eq!(metrics(&ns), ["10.31.0.2 50"]);
    assert_eq!(ns.rules(), ["1300: from fd00:99::/48 lookup 200 proto 78"]);
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
}

#[test]
fn destroy_keeps_a_netns_that_holds_another_topologys_routes_and_rules() {
    let (a, b, ns, d) = (
        Topo::new("nlt"),
        Topo::new("nlt"),
        Netns::named("nlt"),
        Dir::new(),
    );
    let fa = d.write(
        "a.toml",
        &format!(
            "[topology]\nname = \"{}\"\nnetns = \"{}\"\n[bridge.br0]\naddresses = [\"10.86.0.1/24\"]\n",
            a.name, ns.name
        ),
    );
    // B has no links at all: only a route and a rule in A's netns.
    let fb = d.write(
        "b.toml",
        &format!(
            "[topology]\nname = \"{}\"\nnetns = \"{}\"\n[[route]]\nto = \"10.87.0.0/16\"\nvia = \"10.86.0.9\"\ntable = 50\n[[rule]]\nfrom = \"10.88.0.0/16\"\ntable = 50\npriority = 50\n",
            b.name, ns.name
        ),
    );
    assert_eq!(nl(&["apply"], &[&fa]).code, 0);
    let r = nl(&["apply"], &[&fb]);
    assert_eq!(r.code, 0, "{r:?}");

    let r = nl(&["destroy"], &[&fa]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(ns.exists(), "{r:?}");
    assert!(
        r.stdout.contains("it holds routes, rules or addresses"),
        "{r:?}"
    );
    assert_eq!(ns.link_names(), Vec::<String>::new());
    assert_eq!(ns.rules(), ["50: from 10.88.0.0/16 lookup 50 proto 78"]);

    // B did not create the netns, and says whose it is.
    let r = nl(&["destroy"], &[&fb]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(&format!(
            "(netns {} kept: topology {} created it)",
            ns.name, a.name
        )),
        "{r:?}"
    );

    // A hand-made rule keeps it too; once that is gone, destroy removes it.
    assert_eq!(nl(&["apply"], &[&fa]).code, 0);
    must(&format!(
        "ip -n {} rule add from 10.89.0.0/16 table 51 priority 51",
        ns.name
    ));
    let r = nl(&["destroy"], &[&fa]);
    assert!(ns.exists() && r.stdout.contains("rule 51"), "{r:?}");
    must(&format!("ip -n {} rule del priority 51", ns.name));
    // So do a hand-made blackhole route and an address on lo.
    for (add, del, shows) in [
        (
            "route add blackhole 10.90.0.0/16 table 52",
            "route del blackhole 10.90.0.0/16 table 52",
            "route 10.90.0.0/16 table 52",
        ),
        (
            "addr add 10.91.0.1/32 dev lo",
            "addr del 10.91.0.1/32 dev lo",
            "address 10.91.0.1/32 on lo",
        ),
    ] {
        assert_eq!(nl(&["apply"], &[&fa]).code, 0);
        must(&format!("ip -n {} {add}", ns.name));
        let r = nl(&["destroy"], &[&fa]);
        assert!(ns.exists() && r.stdout.contains(shows), "{shows}: {r:?}");
        must(&format!("ip -n {} {del}", ns.name));
    }
    assert_eq!(nl(&["apply"], &[&fa]).code, 0);
    assert_eq!(nl(&["destroy"], &[&fa]).code, 0);
    assert!(!ns.exists());
}

#[test]
fn destroy_lists_veths_by_their_names_in_the_file_in_natural_order() {
    let (t, ns, d) = (Topo::new("nlt"), Netns::named("nlt"), Dir::new());
    // `zz`'s peer `aa` sorts first, so the pair is observed through `aa`.
    let f = d.write(
        "lab.toml",
        &format!(
            "[topology]\nname = \"{}\"\nnetns = \"{}\"\n\
             [veth.p10]\npeer = \"q10\"\n[veth.p2]\npeer = \"q2\"\n[veth.zz]\npeer = \"aa\"\n",
            t.name, ns.name
        ),
    );
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    let r = nl(&["destroy"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    let veths: Vec<&str> = r
        .stdout
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- veth "))
        .collect();
    assert_eq!(
        veths,
        ["p2 (peer q2)", "p10 (peer q10)", "zz (peer aa)"],
        "{r:?}"
    );
    assert!(!ns.exists(), "{r:?}");
}
