//! `netloom watch` keeps a topology converged: file edits, drift by hand,
//! container restarts and starts, broken edits, signals.

mod common;

use common::*;

fn kernel_topology(t: &Topo, ns: &Netns, body: &str) -> String {
    format!(
        "[topology]\nname = \"{}\"\nnetns = \"{}\"\n\n{body}",
        t.name, ns.name
    )
}

#[test]
fn edits_and_drift_converge_and_a_broken_edit_changes_nothing() {
    let (t, ns, d) = (Topo::new("nlt"), Netns::named("nlt"), Dir::new());
    let f = d.path.join("lab.toml");
    save_atomically(
        &f,
        &kernel_topology(&t, &ns, "[bridge.br0]\naddresses = [\"10.82.0.1/24\"]\n"),
    );
    let w = WatchProc::start(&[&d.path], "30s");
    let log = || w.log();
    eventually(
        "first apply",
        10,
        || ns.exists() && ns.link_names() == ["br0"],
        log,
    );

    // An edit (atomic save) converges.
    save_atomically(
        &f,
        &kernel_topology(
            &t,
            &ns,
            "[bridge.br0]\naddresses = [\"10.82.0.2/24\"]\nmtu = 1400\n[bridge.br1]\n",
        ),
    );
    eventually(
        "edit applied",
        10,
        || {
            ns.link_names() == ["br0", "br1"]
                && ns.addrs("br0") == ["10.82.0.2/24"]
                && ns.link("br0")["mtu"] == 1400
        },
        log,
    );
    // The log says what changed, not only how much.
    eventually(
        "changes logged",
        5,
        || log().contains("applied + bridge br1") && log().contains("applied ~ bridge br0"),
        log,
    );

    // Drift by hand is repaired without waiting for the resync (30 s).
    must(&format!(
        "ip -n {0} link del br1 && ip -n {0} addr del 10.82.0.2/24 dev br0",
        ns.name
    ));
    eventually(
        "drift repaired",
        10,
        || ns.link_names() == ["br0", "br1"] && ns.addrs("br0") == ["10.82.0.2/24"],
        log,
    );

    // A broken edit is reported with its location; nothing changes.
    save_atomically(
        &f,
        &kernel_topology(
            &t,
            &ns,
            "[bridge.br0]\naddresses = [\"10.82.0.3/24\"]\nmtuu = 1400\n",
        ),
    );
    eventually(
        "error reported",
        10,
        || log().contains("unknown key `mtuu`"),
        log,
    );
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(ns.link_names(), ["br0", "br1"], "the last good state stays");
    assert_eq!(ns.addrs("br0"), ["10.82.0.2/24"]);
    // A deleted file is never an empty topology.
    std::fs::remove_file(&f).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(
        ns.link_names(),
        ["br0", "br1"],
        "nothing is pruned for a missing file"
    );

    // The fix is applied.
    save_atomically(
        &f,
        &kernel_topology(&t, &ns, "[bridge.br0]\naddresses = [\"10.82.0.3/24\"]\n"),
    );
    eventually(
        "fix applied",
        15,
        || ns.link_names() == ["br0"] && ns.addrs("br0") == ["10.82.0.3/24"],
        log,
    );

    // SIGHUP forces a reconcile; SIGTERM ends watch cleanly.
    w.signal("HUP");
    eventually(
        "hangup reconcile",
        10,
        || log().contains("trigger=Hangup"),
        log,
    );
    assert!(log().contains("result=ok"));
    let status = w.stop();
    assert!(status.success(), "clean exit: {status:?}");
    assert_eq!(nl(&["destroy"], &[&d.path]).code, 0);
}

#[test]
fn container_restarts_and_starts_are_followed() {
    ensure_image();
    let (t, ns, d) = (Topo::new("nlt"), Netns::named("nlt"), Dir::new());
    let _nets = NetsOf {
        topology: t.name.clone(),
    };
    let base = DockerNet::internal("nlb");
    let a = Ctr::run("nla", &base);
    // Created but not started: its attachment is pending until it runs.
    let b = Ctr {
        name: unique("nlp"),
    };
    must(&format!(
        "docker create --name {} --network {} {IMAGE} sleep 600 >/dev/null",
        b.name, base.name
    ));
    let o = octet();
    let front = format!("{}f", t.name);
    let f = d.write(
        "lab.toml",
        &kernel_topology(
            &t,
            &ns,
            &format!(
                "[bridge.br0]\naddresses = [\"10.83.{o}.1/24\"]\n\
                 [network.{front}]\nsubnets = [\"10.84.{o}.0/24\"]\n\
                 [container.{a}]\ninterfaces.eth1 = {{ bridge = \"br0\", addresses = [\"10.83.{o}.2/24\"] }}\n\
                 [container.{b}]\nnetworks.{front} = {{ ipv4 = \"10.84.{o}.10\" }}\n",
                a = a.name,
                b = b.name
            ),
        ),
    );
    let w = WatchProc::start(&[&f], "30s");
    let log = || w.log();
    eventually(
        "interface in the container",
        15,
        || a.extra_links() == ["eth1"],
        log,
    );
    // The summary line comes once the reconcile is over.
    eventually("pending reported", 15, || log().contains("pending=1"), log);

    // A restart gives the container a new netns; watch puts eth1 back.
    must(&format!("docker restart -t 0 {} >/dev/null", a.name));
    eventually(
        "interface restored after restart",
        15,
        || a.extra_links() == ["eth1"],
        log,
    );
    assert!(a.pings(&format!("10.83.{o}.1")));

    // Drift inside the container is heard too (the resync is 30 s away).
    let pid = must(&format!(
        "docker inspect -f '{{{{.State.Pid}}}}' {}",
        a.name
    ));
    must(&format!(
        "nsenter -t {} -n ip addr del 10.83.{o}.2/24 dev eth1",
        pid.trim()
    ));
    eventually(
        "address restored inside the container",
        10,
        || {
            must(&format!("docker exec {} ip -o addr show dev eth1", a.name))
                .contains(&format!("10.83.{o}.2/24"))
        },
        log,
    );

    // Starting the pending container attaches it.
    must(&format!("docker start {} >/dev/null", b.name));
    eventually(
        "pending container attached",
        15,
        || b.endpoint(&front)["IPAddress"] == format!("10.84.{o}.10"),
        log,
    );

    // Docker events about other containers do not wake watch.
    std::thread::sleep(std::time::Duration::from_millis(300));
    let before = log().matches("Docker").count();
    let _other = Ctr::run("nlu", &base);
    std::thread::sleep(std::time::Duration::from_millis(800));
    assert_eq!(log().matches("Docker").count(), before, "{}", log());

    assert!(w.stop().success());
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
}

/// `2026-12-03T07:01:35.425135Z` (tracing, Docker's JSON) → (date, seconds).
fn instant(s: &str) -> (String, f64) {
    let (date, time) = s.split_once('T').unwrap();
    let time = time.trim_end_matches('Z');
    let time = time.split('+').next().unwrap();
    let secs = time
        .split(':')
        .map(|p| p.parse::<f64>().unwrap())
        .fold(0.0, |acc, p| acc * 60.0 + p);
    (date.to_string(), secs)
}

#[test]
fn each_change_is_logged_when_it_is_done_not_when_its_stage_ends() {
    let t = Topo::new("nlwl");
    let _nets = NetsOf {
        topology: t.name.clone(),
    };
    let d = Dir::new();
    let o = octet();
    let names: Vec<String> = (0..6).map(|i| format!("{}n{i}", t.name)).collect();
    let mut body = format!("[topology]\nname = \"{}\"\n", t.name);
    for (i, n) in names.iter().enumerate() {
        body.push_str(&format!(
            "[network.{n}]\nsubnets = [\"10.221.{o}.{}/28\"]\ninternal = true\n",
            i * 16
        ));
    }
    let f = d.write("lab.toml", &body);
    let w = WatchProc::start(&[&f], "30s");
    let log = || w.log();
    eventually(
        "first reconcile",
        20,
        || log().contains("reconcile trigger=Start"),
        log,
    );
    // The six creations are one stage; Docker makes them one after another.
    let logged: Vec<(String, f64)> = log()
        .lines()
        .filter(|l| l.contains("applied + network"))
        .map(|l| instant(l.split_whitespace().next().unwrap()))
        .collect();
    assert_eq!(logged.len(), 6, "{}", log());
    let created: Vec<(String, f64)> = names
        .iter()
        .map(|n| instant(network_inspect(n).unwrap()["Created"].as_str().unwrap()))
        .collect();
    let earliest = |v: &[(String, f64)]| {
        v.iter()
            .cloned()
            .min_by(|a, b| (&a.0, a.1).partial_cmp(&(&b.0, b.1)).unwrap())
            .unwrap()
    };
    let latest = |v: &[(String, f64)]| {
        v.iter()
            .cloned()
            .max_by(|a, b| (&a.0, a.1).partial_cmp(&(&b.0, b.1)).unwrap())
            .unwrap()
    };
    let (first_logged, last_made) = (earliest(&logged), latest(&created));
    assert!(
        (&first_logged.0, first_logged.1) < (&last_made.0, last_made.1),
        "the first network was logged at {first_logged:?}, after the last was made at {last_made:?}:\n{}",
        log()
    );
    drop(w);
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
}
