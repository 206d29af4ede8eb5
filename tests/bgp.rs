//! BGP against a real peer: netloom's gobgpd in the topology's netns, BIRD
//! in a netns of its own, a veth between them. Sessions use TCP MD5.

mod common;

use common::*;
use std::path::PathBuf;

/// BIRD and a topology netns wired to each other; both daemons are stopped
/// by pid when the lab goes.
struct Lab {
    topo: Topo,
    ns: Netns,
    bird_ns: Netns,
    dir: Dir,
    o: u8,
    password: String,
}

impl Lab {
    fn new(tag: &str) -> Lab {
        let (ns, bird_ns) = (Netns::precreated(tag), Netns::precreated("nlbird"));
        let o = octet();
        let (a, b) = (unique("nlga"), unique("nlgb"));
        must(&format!(
            "ip link add {a} netns {} type veth peer name {b} netns {}",
            ns.name, bird_ns.name
        ));
        for (n, dev, host) in [(&ns.name, &a, 1), (&bird_ns.name, &b, 2)] {
            must(&format!(
                "ip -n {n} addr add 10.150.{o}.{host}/24 dev {dev} && \
                 ip -n {n} addr add fd00:150:{o}::{host}/64 dev {dev} nodad && \
                 ip -n {n} link set {dev} up && ip -n {n} link set lo up"
            ));
        }
        let lab = Lab {
            topo: Topo::new(tag),
            ns,
            bird_ns,
            dir: Dir::new(),
            o,
            password: format!("pw-{}-secret", unique("x")),
        };
        lab.bird(&lab.password.clone(), true);
        lab
    }

    fn bird_sock(&self) -> PathBuf {
        self.dir.path.join("bird.sock")
    }

    /// (Re)writes BIRD's config and starts or reloads it. `extra`: whether
    /// it exports 10.30.o.0/24 (rejected by netloom's import policy) and
    /// 10.20.o.0/24 (accepted).
    fn bird(&self, password: &str, with_routes: bool) {
        let o = self.o;
        let routes = if with_routes {
            format!(
                "route 10.20.{o}.0/24 blackhole; route 10.30.{o}.0/24 blackhole; \
                 route 10.31.{o}.0/24 blackhole {{ bgp_community.add((65002,100)); }};"
            )
        } else {
            String::new()
        };
        let timers = "hold time 6; keepalive time 2; connect delay time 1; connect retry time 2; error wait time 1,5;";
        let conf = format!(
            "router id 10.150.{o}.2;\nlog \"{log}\" all;\nprotocol device {{}}\n\
             protocol static s4 {{ ipv4; {routes} }}\n\
             protocol static s6 {{ ipv6; route fd00:20:{o}::/64 blackhole; }}\n\
             protocol bgp r1 {{ local 10.150.{o}.2 as 65002; neighbor 10.150.{o}.1 as 65001; password \"{password}\"; {timers}\n\
               ipv4 {{ import all; export all; }}; }}\n\
             protocol bgp r1v6 {{ local fd00:150:{o}::2 as 65002; neighbor fd00:150:{o}::1 as 65001; password \"{password}\"; {timers}\n\
               ipv6 {{ import all; export all; }}; }}\n",
            log = self.dir.path.join("bird.log").display()
        );
        let path = self.dir.write("bird.conf", &conf);
        let sock = self.bird_sock();
        if sock.exists() {
            must(&format!("birdc -s {} configure", sock.display()));
        } else {
            must(&format!(
                "ip netns exec {} bird -c {} -s {} -P {}",
                self.bird_ns.name,
                path.display(),
                sock.display(),
                self.dir.path.join("bird.pid").display()
            ));
        }
    }

    fn birdc(&self, cmd: &str) -> String {
        sh(&format!("birdc -s {} {cmd}", self.bird_sock().display())).stdout
    }

    /// The topology: speaker, two sessions to BIRD (v4 and v6), policies.
    fn topology(&self, password_env: &str, import_also_30: bool) -> String {
        let o = self.o;
        let extra = if import_also_30 {
            format!("\n[[bgp.policy.from-r2.term]]\nprefixes = [\"10.30.{o}.0/24\"]\n")
        } else {
            String::new()
        };
        format!(
            "[topology]\nname = \"{t}\"\nnetns = \"{ns}\"\n\n[bgp]\nasn = 65001\nrouter_id = \"10.150.{o}.1\"\n\
             announce = [\"192.168.{o}.0/24\", \"fd00:100:{o}::/64\"]\n\n\
             [bgp.peer.r2]\naddress = \"10.150.{o}.2\"\nasn = 65002\npassword = {{ env = \"{password_env}\" }}\n\
             hold_time = 6\nimport = [\"from-r2\"]\nexport = [\"to-r2\"]\n\n\
             [bgp.peer.r2v6]\naddress = \"fd00:150:{o}::2\"\nasn = 65002\npassword = {{ env = \"{password_env}\" }}\n\
             hold_time = 6\n\n\
             [bgp.policy.from-r2]\ndefault = \"reject\"\n[[bgp.policy.from-r2.term]]\nprefixes = [\"10.20.0.0/16 le 24\"]\n\
             [[bgp.policy.from-r2.term]]\ncommunities = [\"65002:100\"]\nset = {{ local_pref = 200 }}\n{extra}\n\
             [bgp.policy.to-r2]\n[[bgp.policy.to-r2.term]]\nprefixes = [\"192.168.{o}.0/24\"]\n\
             set = {{ communities = [\"65001:666\"], med = 7, prepend = 2 }}\n",
            t = self.topo.name,
            ns = self.ns.name,
        )
    }

    fn nl(&self, args: &[&str], file: &std::path::Path, password: &str) -> Run {
        let mut c = netloom();
        c.env("LAB_BGP_PW", password).args(args).arg(file);
        run(c)
    }

    fn gobgpd_pid(&self) -> Option<u32> {
        let p = run_dir().join(format!("{}.gobgpd.pid", self.topo.name));
        let pid: u32 = std::fs::read_to_string(p).ok()?.trim().parse().ok()?;
        std::path::Path::new(&format!("/proc/{pid}"))
            .exists()
            .then_some(pid)
    }

    fn kernel_bgp_routes(&self) -> String {
        must(&format!("ip -n {} route show proto 79", self.ns.name))
            + &must(&format!("ip -n {} -6 route show proto 79", self.ns.name))
    }

    fn established(&self, file: &std::path::Path) -> usize {
        let r = self.nl(&["show", "--format", "json"], file, &self.password);
        let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap_or_default();
        v["bgp"]["peers"]
            .as_array()
            .map(|a| a.iter().filter(|p| p["state"] == "established").count())
            .unwrap_or(0)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(pid) = self.gobgpd_pid() {
            let _ = sh(&format!("kill -9 {pid}"));
        }
        let _ = sh(&format!(
            "kill -9 $(cat {}) 2>/dev/null",
            self.dir.path.join("bird.pid").display()
        ));
        let _ = std::fs::remove_file(run_dir().join(format!("{}.gobgpd.pid", self.topo.name)));
        let _ = std::fs::remove_file(run_dir().join(format!("{}.gobgp.sock", self.topo.name)));
        let _ = std::fs::remove_file(run_dir().join(format!("{}.gobgpd.log", self.topo.name)));
    }
}

#[test]
fn sessions_come_up_with_md5_and_routes_flow_through_policy_both_ways() {
    let lab = Lab::new("nlg");
    let o = lab.o;
    let f = lab
        .dir
        .write("lab.toml", &lab.topology("LAB_BGP_PW", false));
    let decoy = format!("10.40.{o}.0/24");
    must(&format!(
        "ip -n {} route add {decoy} via 10.150.{o}.2 proto static",
        lab.ns.name
    ));

    let plan = lab.nl(&["plan"], &f, &lab.password);
    assert_eq!(plan.code, 0, "{plan:?}");
    assert!(plan.stdout.contains("+ bgp speaker"), "{plan:?}");
    assert!(plan.stdout.contains("+ bgp peer r2"), "{plan:?}");
    let apply = lab.nl(&["apply"], &f, &lab.password);
    assert_eq!(apply.code, 0, "{apply:?}");
    let pid = lab.gobgpd_pid().expect("gobgpd runs after apply exits");
    let cmdline = std::fs::read_to_string(format!("/proc/{pid}/cmdline")).unwrap();
    assert!(
        cmdline.contains("--pprof-disable") && cmdline.contains("unix://"),
        "{cmdline}"
    );
    // gobgpd runs inside the topology's netns.
    assert_eq!(
        must(&format!("readlink /proc/{pid}/ns/net")),
        must(&format!(
            "ip netns exec {} readlink /proc/self/ns/net",
            lab.ns.name
        ))
    );

    eventually(
        "both sessions established",
        20,
        || lab.established(&f) == 2,
        || lab.birdc("show protocols all"),
    );
    // BIRD has both announcements, and the export policy's community on the v4 one.
    eventually(
        "BIRD receives the v4 and v6 announcements",
        10,
        || {
            let r = lab.birdc("show route all");
            r.contains(&format!("192.168.{o}.0/24")) && r.contains(&format!("fd00:100:{o}::/64"))
        },
        || lab.birdc("show route all"),
    );
    let v4 = lab.birdc(&format!("show route all 192.168.{o}.0/24"));
    assert!(v4.contains("BGP.community: (65001,666)"), "{v4}");
    assert!(v4.contains("BGP.med: 7"), "{v4}");
    assert!(v4.contains("BGP.as_path: 65001 65001 65001"), "{v4}");

    // apply installs the best paths known now: 10.20 (accepted), never 10.30.
    eventually(
        "learned routes installed",
        15,
        || {
            lab.nl(&["apply"], &f, &lab.password);
            let k = lab.kernel_bgp_routes();
            k.contains(&format!("10.20.{o}.0/24 via 10.150.{o}.2"))
                && k.contains(&format!("10.31.{o}.0/24 via 10.150.{o}.2"))
                && k.contains(&format!("fd00:20:{o}::/64"))
        },
        || {
            let g = format!(
                "gobgp --target unix://{}",
                run_dir()
                    .join(format!("{}.gobgp.sock", lab.topo.name))
                    .display()
            );
            format!(
                "{}\n{}\n{}\n{}",
                lab.kernel_bgp_routes(),
                sh(&format!("{g} global rib")).stdout,
                sh(&format!("{g} neighbor 10.150.{o}.2 adj-in")).stdout,
                lab.birdc("show route all")
            )
        },
    );
    assert!(
        !lab.kernel_bgp_routes().contains(&format!("10.30.{o}.0/24")),
        "{}",
        lab.kernel_bgp_routes()
    );
    let again = lab.nl(&["plan", "--detailed-exitcode"], &f, &lab.password);
    assert_eq!(
        again.code, 0,
        "a converged BGP topology plans nothing: {again:?}"
    );

    // show: per peer, state and counts; rejected routes are received, not accepted.
    let show = lab.nl(&["show", "--format", "json"], &f, &lab.password);
    let v: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    let r2 = v["bgp"]["peers"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["name"] == "r2")
        .unwrap()
        .clone();
    assert_eq!(r2["state"], "established", "{r2}");
    let birdlog = std::fs::read_to_string(lab.dir.path.join("bird.log")).unwrap_or_default();
    assert_eq!(r2["received"], 3, "{r2}\n{birdlog}");
    assert_eq!(r2["accepted"], 2, "{r2}");
    assert!(r2["advertised"].as_u64().unwrap() >= 1, "{r2}");
    let text = lab.nl(&["show"], &f, &lab.password);
    assert!(text.stdout.contains("established for"), "{text:?}");

    // The password is in no output, log or file netloom writes.
    let debug = {
        let mut c = netloom();
        c.env("LAB_BGP_PW", &lab.password)
            .env("RUST_LOG", "netloom=trace")
            .args(["apply"])
            .arg(&f);
        run(c)
    };
    let mut outputs = vec![plan.all(), apply.all(), show.all(), text.all(), debug.all()];
    for fmt in ["json", "markdown"] {
        outputs.push(lab.nl(&["plan", "--format", fmt], &f, &lab.password).all());
    }
    outputs.push(
        std::fs::read_to_string(run_dir().join(format!("{}.ledger.json", lab.topo.name))).unwrap(),
    );
    // gobgpd's own log (next to the ledger) and its environment.
    outputs.push(
        std::fs::read_to_string(run_dir().join(format!("{}.gobgpd.log", lab.topo.name)))
            .unwrap_or_default(),
    );
    outputs.push(std::fs::read_to_string(format!("/proc/{pid}/environ")).unwrap_or_default());
    for out in &outputs {
        assert!(!out.contains(&lab.password), "the password leaked: {out}");
    }

    // destroy stops gobgpd, removes the learned routes, leaves the decoy.
    let d = lab.nl(&["destroy"], &f, &lab.password);
    assert_eq!(d.code, 0, "{d:?}");
    assert!(!d.all().contains(&lab.password));
    assert!(
        lab.gobgpd_pid().is_none(),
        "gobgpd still runs after destroy"
    );
    assert_eq!(
        lab.kernel_bgp_routes().trim(),
        "",
        "learned routes left behind"
    );
    assert!(
        must(&format!("ip -n {} route show {decoy}", lab.ns.name)).contains("proto static"),
        "the decoy route of another protocol must stay"
    );
}

#[test]
fn a_wrong_password_keeps_the_session_down_a_peer_change_resets_it_and_a_policy_edit_does_not() {
    let lab = Lab::new("nlgp");
    let o = lab.o;
    let f = lab
        .dir
        .write("lab.toml", &lab.topology("LAB_BGP_PW", false));
    let wrong = format!("{}-wrong", lab.password);
    let r = lab.nl(&["apply"], &f, &wrong);
    assert_eq!(r.code, 0, "{r:?}");
    std::thread::sleep(std::time::Duration::from_secs(6));
    let show = lab.nl(&["show", "--format", "json"], &f, &wrong);
    let v: serde_json::Value = serde_json::from_str(&show.stdout).unwrap();
    for p in v["bgp"]["peers"].as_array().unwrap() {
        assert_ne!(
            p["state"], "established",
            "a wrong MD5 password must keep {p} down"
        );
    }
    assert!(!show.all().contains(&wrong));

    // The right password: the plan says the sessions reset, apply does it.
    let plan = lab.nl(&["plan"], &f, &lab.password);
    assert!(plan.stdout.contains("-/+ bgp peer r2"), "{plan:?}");
    assert!(
        plan.stdout.contains("resets the BGP session with r2"),
        "{plan:?}"
    );
    assert!(plan.stdout.contains("password"), "{plan:?}");
    assert!(
        !plan.all().contains(&lab.password) && !plan.all().contains(&wrong),
        "{plan:?}"
    );
    let r = lab.nl(&["apply"], &f, &lab.password);
    assert_eq!(r.code, 0, "{r:?}");
    eventually(
        "sessions established",
        20,
        || lab.established(&f) == 2,
        || lab.birdc("show protocols all"),
    );
    eventually(
        "10.20 installed",
        15,
        || {
            lab.nl(&["apply"], &f, &lab.password);
            lab.kernel_bgp_routes().contains(&format!("10.20.{o}.0/24"))
        },
        || lab.kernel_bgp_routes(),
    );
    let up = |name: &str| -> i64 {
        let s = lab.nl(&["show", "--format", "json"], &f, &lab.password);
        let v: serde_json::Value = serde_json::from_str(&s.stdout).unwrap();
        v["bgp"]["peers"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["name"] == name)
            .unwrap()["up_since"]
            .as_i64()
            .unwrap_or(-1)
    };
    let before = up("r2");
    assert!(before > 1_000_000_000, "up since {before}");

    // A policy edit: planned as an update that keeps the session, applied
    // by a soft reset, and 10.30 arrives in the kernel.
    std::fs::write(&f, lab.topology("LAB_BGP_PW", true)).unwrap();
    let plan = lab.nl(&["plan"], &f, &lab.password);
    assert!(plan.stdout.contains("~ bgp policy from-r2"), "{plan:?}");
    assert!(plan.stdout.contains("sessions stay up"), "{plan:?}");
    assert!(!plan.stdout.contains("-/+ bgp peer"), "{plan:?}");
    let r = lab.nl(&["apply"], &f, &lab.password);
    assert_eq!(r.code, 0, "{r:?}");
    eventually(
        "10.30 installed after the policy edit",
        15,
        || {
            lab.nl(&["apply"], &f, &lab.password);
            lab.kernel_bgp_routes().contains(&format!("10.30.{o}.0/24"))
        },
        || lab.kernel_bgp_routes(),
    );
    assert_eq!(up("r2"), before, "the policy edit reset the session");

    // An announcement dropped from the files is withdrawn: BIRD loses it.
    let fewer = lab
        .topology("LAB_BGP_PW", true)
        .replace(&format!("\"192.168.{o}.0/24\", "), "");
    std::fs::write(&f, fewer).unwrap();
    let plan = lab.nl(&["plan"], &f, &lab.password);
    assert!(
        plan.stdout
            .contains(&format!("- bgp announce 192.168.{o}.0/24")),
        "{plan:?}"
    );
    assert_eq!(lab.nl(&["apply"], &f, &lab.password).code, 0);
    eventually(
        "BIRD no longer has the withdrawn prefix",
        10,
        || {
            !lab.birdc(&format!("show route 192.168.{o}.0/24"))
                .contains("AS65001")
        },
        || lab.birdc("show route"),
    );
    assert!(
        lab.birdc(&format!("show route fd00:100:{o}::/64"))
            .contains("AS65001")
    );

    // A new router id restarts BGP in gobgpd, said so in the plan; every
    // peer, path and policy is programmed again.
    let moved = std::fs::read_to_string(&f).unwrap().replace(
        &format!("router_id = \"10.150.{o}.1\""),
        "router_id = \"10.150.255.1\"",
    );
    std::fs::write(&f, moved).unwrap();
    let plan = lab.nl(&["plan"], &f, &lab.password);
    assert!(
        plan.stdout
            .contains("-/+ bgp speaker  # restarts BGP in gobgpd: every session resets"),
        "{plan:?}"
    );
    assert!(plan.stdout.contains("router_id: 10.150."), "{plan:?}");
    assert_eq!(lab.nl(&["apply"], &f, &lab.password).code, 0);
    eventually(
        "sessions back after the restart",
        20,
        || lab.established(&f) == 2,
        || lab.birdc("show protocols all"),
    );
    eventually(
        "BIRD sees the new router id",
        10,
        || {
            lab.birdc("show protocols all r1v6")
                .contains("10.150.255.1")
        },
        || lab.birdc("show protocols all r1v6"),
    );
    eventually(
        "BIRD has the v6 announcement again",
        10,
        || {
            lab.birdc(&format!("show route fd00:100:{o}::/64"))
                .contains("AS65001")
        },
        || lab.birdc("show route"),
    );
}

#[test]
fn watch_follows_withdrawals_and_restarts_a_killed_gobgpd() {
    let lab = Lab::new("nlgw");
    let o = lab.o;
    let f = lab
        .dir
        .write("lab.toml", &lab.topology("LAB_BGP_PW", false));
    let w = WatchProc::start_env(&[&f], "60s", &[("LAB_BGP_PW", &lab.password)]);
    let route = format!("10.20.{o}.0/24 via 10.150.{o}.2");
    eventually(
        "watch installs the learned route",
        30,
        || lab.kernel_bgp_routes().contains(&route),
        || w.log(),
    );

    // BIRD withdraws: the kernel route goes.
    lab.bird(&lab.password, false);
    eventually(
        "the withdrawn route leaves the kernel",
        20,
        || !lab.kernel_bgp_routes().contains(&route),
        || w.log(),
    );

    // gobgpd killed: watch starts and programs a new one; BIRD sees the
    // announcement again.
    lab.bird(&lab.password, true);
    eventually(
        "route back",
        20,
        || lab.kernel_bgp_routes().contains(&route),
        || w.log(),
    );
    // The peer goes down: its routes leave the kernel, and return with it.
    lab.birdc("disable r1");
    eventually(
        "routes of a peer that went down are removed",
        20,
        || !lab.kernel_bgp_routes().contains(&route),
        || w.log(),
    );
    lab.birdc("enable r1");
    eventually(
        "routes back with the session",
        30,
        || lab.kernel_bgp_routes().contains(&route),
        || w.log(),
    );
    let old = lab.gobgpd_pid().unwrap();
    must(&format!("kill -9 {old}"));
    eventually(
        "a new gobgpd, programmed",
        30,
        || lab.gobgpd_pid().is_some_and(|p| p != old) && lab.established(&f) == 2,
        || format!("{}\n{}", w.log(), lab.birdc("show protocols")),
    );
    eventually(
        "BIRD sees the announcement again",
        20,
        || {
            lab.birdc(&format!("show route 192.168.{o}.0/24"))
                .contains("AS65001")
        },
        || lab.birdc("show route"),
    );
    eventually(
        "the learned route is back",
        20,
        || lab.kernel_bgp_routes().contains(&route),
        || w.log(),
    );
    assert!(!w.log().contains(&lab.password));
    assert!(w.stop().success());
}

#[test]
fn a_literal_password_is_a_warning_unless_allowed_and_is_never_echoed() {
    let d = Dir::new();
    let body = |allow: &str| {
        format!(
            "[topology]\nname = \"{}\"\n[bgp]\nasn = 65001\nrouter_id = \"10.0.0.1\"\n\
             [bgp.peer.r2]\naddress = \"10.0.0.2\"\nasn = 65002\npassword = \"hunter2-literal\"\n{allow}",
            unique("nlgl")
        )
    };
    let f = d.write("a.toml", &body(""));
    let r = nl(&["validate"], &[&f]);
    assert_eq!(r.code, 0, "a warning does not refuse the file: {r:?}");
    assert!(
        r.all()
            .contains("a.toml:9:12: warning: peer `r2`'s password is written in the topology file"),
        "{r:?}"
    );
    assert!(r.all().contains("allow_literal_password"), "{r:?}");
    assert!(!r.all().contains("hunter2-literal"), "{r:?}");
    let f = d.write("b.toml", &body("allow_literal_password = true\n"));
    let r = nl(&["validate"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.all().contains("warning"), "{r:?}");
}

#[test]
fn an_existing_gobgpd_at_api_is_programmed_not_started_and_peer_options_read_back_unchanged() {
    let lab = Lab::new("nlgx");
    let o = lab.o;
    let sock = lab.dir.path.join("own.sock");
    let own = std::process::Command::new("ip")
        .args([
            "netns",
            "exec",
            &lab.ns.name,
            "gobgpd",
            "--pprof-disable",
            "-p",
        ])
        .arg(format!("--api-hosts=unix://{}", sock.display()))
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Stopped even when an assertion fails first.
    struct Own(std::process::Child);
    impl Drop for Own {
        fn drop(&mut self) {
            let _ = self.0.kill();
            let _ = self.0.wait();
        }
    }
    let mut own = Own(own);
    eventually("own gobgpd up", 10, || sock.exists(), String::new);
    let topo = format!(
        "[topology]\nname = \"{t}\"\nnetns = \"{ns}\"\n[bgp]\nasn = 65001\nrouter_id = \"10.150.{o}.1\"\n\
         api = \"unix://{s}\"\nannounce = [\"192.168.{o}.0/24\"]\n\
         [bgp.peer.r2]\naddress = \"10.150.{o}.2\"\nasn = 65002\npassword = {{ env = \"LAB_BGP_PW\" }}\n\
         hold_time = 6\npassive = true\nmultihop = 2\nmax_prefixes = 100\n",
        t = lab.topo.name,
        ns = lab.ns.name,
        s = sock.display()
    );
    let f = lab.dir.write("ext.toml", &topo);
    let r = lab.nl(&["apply"], &f, &lab.password);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        lab.gobgpd_pid().is_none(),
        "netloom must not start its own gobgpd"
    );
    eventually(
        "passive session established",
        20,
        || lab.established(&f) == 1,
        || lab.birdc("show protocols all"),
    );
    // Install what arrived, then: passive, multihop, max_prefixes and hold
    // time read back as written (no perpetual replace).
    // (Routes may still be arriving right after the session came up.)
    eventually(
        "converged: nothing left to plan",
        15,
        || {
            assert_eq!(lab.nl(&["apply"], &f, &lab.password).code, 0);
            lab.nl(&["plan", "--detailed-exitcode"], &f, &lab.password)
                .code
                == 0
        },
        || lab.nl(&["plan"], &f, &lab.password).all(),
    );
    let p = lab.nl(&["plan"], &f, &lab.password);
    assert!(!p.stdout.contains("bgp peer"), "{p:?}");
    eventually(
        "BIRD receives the announcement",
        10,
        || {
            lab.birdc(&format!("show route 192.168.{o}.0/24"))
                .contains("AS65001")
        },
        || lab.birdc("show route"),
    );
    // A changed option is a session reset, planned as such.
    std::fs::write(&f, topo.replace("max_prefixes = 100", "max_prefixes = 200")).unwrap();
    let p = lab.nl(&["plan"], &f, &lab.password);
    assert!(
        p.stdout
            .contains("-/+ bgp peer r2  # resets the BGP session with r2"),
        "{p:?}"
    );
    assert!(p.stdout.contains("max_prefixes: 100 → 200"), "{p:?}");
    // destroy stops BGP in that gobgpd, and leaves the process to its owner.
    let d = lab.nl(&["destroy"], &f, &lab.password);
    assert_eq!(d.code, 0, "{d:?}");
    assert!(
        own.0.try_wait().unwrap().is_none(),
        "destroy must not stop a gobgpd netloom did not start"
    );
    let g = sh(&format!("gobgp --target unix://{} global", sock.display()));
    assert!(
        !g.stdout.contains("65001"),
        "BGP still started in gobgpd after destroy: {g:?}"
    );
}

/// The README's BGP lab, as a new user runs it (names made unique): the
/// session comes up, routes flow both ways, a policy edit takes effect.
#[test]
fn the_readme_bgp_lab_works_and_a_policy_edit_takes_effect() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/bgp");
    let (t, d) = (Topo::new("nlgr"), Dir::new());
    let (lab_ns, peer_ns) = (Netns::named("nlgrl"), Netns::named("nlgrp"));
    let lab = std::fs::read_to_string(root.join("lab.toml"))
        .unwrap()
        .replace("name = \"bgplab\"", &format!("name = \"{}\"", t.name))
        .replace(
            "netns = \"bgplab\"",
            &format!("netns = \"{}\"", lab_ns.name),
        );
    let f = d.write("lab.toml", &lab);
    std::fs::copy(root.join("r2.key"), d.path.join("r2.key")).unwrap();
    let peer = |cmd: &str| {
        let mut c = std::process::Command::new("bash");
        c.arg(root.join("peer.sh"))
            .arg(cmd)
            .env("BGPLAB_NS", &lab_ns.name)
            .env("BGPPEER_NS", &peer_ns.name)
            .env("BGPPEER_RUN", d.path.join("peer"));
        run(c)
    };
    struct Down<'a>(&'a dyn Fn(&str) -> Run);
    impl Drop for Down<'_> {
        fn drop(&mut self) {
            (self.0)("down");
        }
    }
    let r = peer("up");
    assert_eq!(r.code, 0, "{r:?}");
    let _down = Down(&peer);
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    let gobgpd = || {
        std::fs::read_to_string(run_dir().join(format!("{}.gobgpd.pid", t.name)))
            .ok()
            .and_then(|p| p.trim().parse::<u32>().ok())
    };
    struct Kill(Option<u32>);
    impl Drop for Kill {
        fn drop(&mut self) {
            if let Some(p) = self.0 {
                let _ = sh(&format!("kill -9 {p}"));
            }
        }
    }
    let _kill = Kill(gobgpd());
    eventually(
        "the session is up in show",
        20,
        || nl(&["show"], &[&f]).stdout.contains("established for"),
        || nl(&["show"], &[&f]).all(),
    );
    eventually(
        "BIRD has the announcement with the community",
        10,
        || peer("routes").stdout.contains("BGP.community: (65001,100)"),
        || peer("routes").all(),
    );
    let routes = || must(&format!("ip -n {} route show proto 79", lab_ns.name));
    eventually(
        "r2's accepted route in the kernel",
        15,
        || {
            nl(&["apply"], &[&f]);
            routes().contains("10.20.1.0/24 via 10.255.0.2")
        },
        routes,
    );
    assert!(!routes().contains("10.30.1.0/24"), "{}", routes());
    // The user edits the import policy: accept 10.30 instead of 10.20.
    std::fs::write(&f, lab.replace("10.20.0.0/16 le 24", "10.30.0.0/16 le 24")).unwrap();
    let p = nl(&["plan"], &[&f]);
    assert!(p.stdout.contains("~ bgp policy from-r2"), "{p:?}");
    eventually(
        "the edited policy in effect",
        15,
        || {
            nl(&["apply"], &[&f]);
            let r = routes();
            r.contains("10.30.1.0/24 via 10.255.0.2") && !r.contains("10.20.1.0/24")
        },
        routes,
    );
    let r = nl(&["destroy"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.all().contains("lab-secret"));
}

#[test]
fn ipv6_over_an_ipv4_session_and_a_set_on_a_reject_term_are_warnings() {
    let d = Dir::new();
    let f = d.write(
        "w.toml",
        &format!(
            "[topology]\nname = \"{}\"\n[bgp]\nasn = 65001\nrouter_id = \"10.0.0.1\"\n\
             [bgp.peer.r2]\naddress = \"10.0.0.2\"\nasn = 65002\nfamilies = [\"ipv4\", \"ipv6\"]\nimport = [\"p\"]\n\
             [bgp.policy.p]\n[[bgp.policy.p.term]]\nprefixes = [\"10.0.0.0/8 le 24\"]\naction = \"reject\"\nset = {{ med = 5 }}\n",
            unique("nlgw")
        ),
    );
    let r = nl(&["validate"], &[&f]);
    assert_eq!(r.code, 0, "warnings do not refuse the file: {r:?}");
    assert!(
        r.all()
            .contains("w.toml:9:12: warning: peer `r2` carries ipv6 over an IPv4 session"),
        "{r:?}"
    );
    assert!(
        r.all()
            .contains("w.toml:14:10: warning: a rejecting term's `set` does nothing"),
        "{r:?}"
    );
}

#[test]
fn a_new_table_for_learned_routes_moves_them_and_the_old_table_is_left_clean() {
    let lab = Lab::new("nlgt");
    let o = lab.o;
    let main = lab.topology("LAB_BGP_PW", false);
    let f = lab.dir.write("lab.toml", &main);
    let learned = |table: &str| {
        must(&format!(
            "ip -n {ns} route show table {table} proto 79; ip -n {ns} -6 route show table {table} proto 79",
            ns = lab.ns.name
        ))
    };
    // Both sessions' routes first (the v6 one may come up later), so the
    // plan after the move has nothing new to add.
    eventually(
        "learned routes of both sessions in the main table",
        20,
        || {
            lab.nl(&["apply"], &f, &lab.password);
            let k = learned("main");
            // Every prefix BIRD exports, including the community-tagged one.
            k.contains(&format!("10.20.{o}.0/24 via 10.150.{o}.2"))
                && k.contains(&format!("10.31.{o}.0/24 via 10.150.{o}.2"))
                && k.contains(&format!("fd00:20:{o}::/64"))
        },
        || {
            format!(
                "{}\n{}",
                lab.kernel_bgp_routes(),
                lab.birdc("show protocols")
            )
        },
    );
    let f = lab
        .dir
        .write("lab.toml", &main.replace("[bgp]\n", "[bgp]\ntable = 100\n"));
    let plan = lab.nl(&["plan"], &f, &lab.password);
    assert!(plan.stdout.contains("- bgp routes table 254"), "{plan:?}");
    assert!(plan.stdout.contains("bgp routes table 100"), "{plan:?}");
    // The sessions stay: only where the routes go changes.
    assert!(!plan.stdout.contains("bgp peer"), "{plan:?}");
    assert!(!plan.stdout.contains("bgp speaker"), "{plan:?}");
    let apply = lab.nl(&["apply"], &f, &lab.password);
    assert_eq!(apply.code, 0, "{apply:?}");
    assert_eq!(learned("main"), "", "{apply:?}");
    let moved = learned("100");
    assert!(
        moved.contains(&format!("10.20.{o}.0/24 via 10.150.{o}.2"))
            && moved.contains(&format!("fd00:20:{o}::/64")),
        "{moved}"
    );
    let again = lab.nl(&["plan", "--detailed-exitcode"], &f, &lab.password);
    assert_eq!(again.code, 0, "{again:?}");
    let destroy = lab.nl(&["destroy"], &f, &lab.password);
    assert_eq!(destroy.code, 0, "{destroy:?}");
    assert_eq!(learned("100"), "");
}
