//! Docker networks and container attachments against a real dockerd.

mod common;

use common::*;

struct Lab {
    t: Topo,
    _nets: NetsOf,
    dir: Dir,
    base: DockerNet,
    front: String,
    subnet: u8,
}

fn lab() -> Lab {
    ensure_image();
    let t = Topo::new("nlt");
    let nets = NetsOf {
        topology: t.name.clone(),
    };
    Lab {
        front: format!("{}f", t.name),
        _nets: nets,
        t,
        dir: Dir::new(),
        base: DockerNet::internal("nlb"),
        subnet: octet(),
    }
}

impl Lab {
    fn net(&self, host: u8) -> String {
        format!("10.213.{}.{host}", self.subnet)
    }

    fn file(&self, body: &str) -> std::path::PathBuf {
        self.dir.write(
            "lab.toml",
            &format!("[topology]\nname = \"{}\"\n\n{body}", self.t.name),
        )
    }

    fn front_net(&self, extra: &str) -> String {
        format!(
            "[network.{}]\nsubnets = [\"10.213.{}.0/24\"]\n{extra}\n",
            self.front, self.subnet
        )
    }
}

#[test]
fn networks_and_attachments_are_created_changed_live_and_removed() {
    let l = lab();
    let web = Ctr::run("nlw", &l.base);
    let f = l.file(&format!(
        "{}labels = {{ team = \"web\" }}\n[container.{}]\nnetworks.{} = {{ ipv4 = \"{}\", aliases = [\"www\"] }}\n",
        l.front_net(""),
        web.name,
        l.front,
        l.net(10)
    ));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");

    let net = network_inspect(&l.front).expect("network created");
    assert_eq!(net["Labels"]["netloom.topology"], l.t.name.as_str());
    assert_eq!(net["Labels"]["team"], "web");
    assert_eq!(
        net["IPAM"]["Config"][0]["Subnet"],
        format!("10.213.{}.0/24", l.subnet)
    );
    let ep = web.endpoint(&l.front);
    assert_eq!(ep["IPAddress"], l.net(10));
    assert!(ep["Aliases"].to_string().contains("\"www\""), "{ep}");
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);

    // Change the address and aliases: applied live, the container keeps running.
    let started = web.started_at();
    let body = std::fs::read_to_string(&f)
        .unwrap()
        .replace(&l.net(10), &l.net(20))
        .replace("[\"www\"]", "[\"www\", \"api\"]");
    std::fs::write(&f, body).unwrap();
    let plan = nl(&["plan"], &[&f]);
    assert!(
        plan.stdout
            .contains(&format!("ipv4: {} → {}", l.net(10), l.net(20))),
        "{plan:?}"
    );
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    let ep = web.endpoint(&l.front);
    assert_eq!(ep["IPAddress"], l.net(20));
    assert!(ep["Aliases"].to_string().contains("\"api\""), "{ep}");
    assert_eq!(web.started_at(), started, "the container was not restarted");
    assert_eq!(web.inspect()["State"]["Running"], true);

    // Reconnected by hand without "api", the process unchanged: drift
    // (what netloom kept of its last inspect must not stand for it).
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);
    must(&format!(
        "docker network disconnect {} {}",
        l.front, web.name
    ));
    must(&format!(
        "docker network connect --ip {} --alias www {} {}",
        l.net(20),
        l.front,
        web.name
    ));
    let plan = nl(&["plan", "--detailed-exitcode"], &[&f]);
    assert_eq!(plan.code, 2, "{plan:?}");
    assert!(plan.stdout.contains("api"), "{plan:?}");
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    let ep = web.endpoint(&l.front);
    assert!(ep["Aliases"].to_string().contains("\"api\""), "{ep}");

    // Remove the attachment: disconnected; the network stays.
    std::fs::write(
        &f,
        format!("[topology]\nname = \"{}\"\n{}", l.t.name, l.front_net("")),
    )
    .unwrap();
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    assert!(web.endpoint(&l.front).is_null());
    assert!(network_inspect(&l.front).is_some());

    // Remove the network too.
    std::fs::write(&f, format!("[topology]\nname = \"{}\"\n", l.t.name)).unwrap();
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    assert!(network_inspect(&l.front).is_none());
    assert!(
        web.endpoint(&l.base.name).is_object(),
        "the container's own network is untouched"
    );
}

#[test]
fn a_changed_subnet_replaces_the_network_and_reattaches_its_containers() {
    let l = lab();
    let web = Ctr::run("nlw", &l.base);
    // Someone else's container on our network: it must be disconnected, not break the removal.
    let other = Ctr::run("nlo", &l.base);
    let f = l.file(&format!(
        "{}[container.{}]\nnetworks.{} = {{ ipv4 = \"{}\" }}\n",
        l.front_net(""),
        web.name,
        l.front,
        l.net(10)
    ));
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    must(&format!(
        "docker network connect {} {}",
        l.front, other.name
    ));
    let old_id = network_inspect(&l.front).unwrap()["Id"].clone();

    let moved = octet();
    let body = std::fs::read_to_string(&f).unwrap().replace(
        &format!("10.213.{}.", l.subnet),
        &format!("10.213.{moved}."),
    );
    std::fs::write(&f, body).unwrap();
    let plan = nl(&["plan"], &[&f]);
    assert!(
        plan.stdout.contains(&format!("-/+ network {}", l.front)),
        "{plan:?}"
    );
    assert!(
        plan.stdout
            .contains("Docker cannot change a network in place"),
        "{plan:?}"
    );
    assert!(
        plan.stdout.contains(&format!(
            "disconnects and does not reconnect (not declared on it): {}",
            other.name
        )),
        "{plan:?}"
    );
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!r.all().contains("active endpoints"), "{r:?}");
    let net = network_inspect(&l.front).unwrap();
    assert_ne!(net["Id"], old_id, "a new network");
    assert!(other.endpoint(&l.front).is_null());
    assert_eq!(
        net["IPAM"]["Config"][0]["Subnet"],
        format!("10.213.{moved}.0/24")
    );
    assert_eq!(
        web.endpoint(&l.front)["IPAddress"],
        format!("10.213.{moved}.10")
    );
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);

    // destroy disconnects what is attached, then removes the network.
    let d = nl(&["destroy"], &[&f]);
    assert_eq!(d.code, 0, "{d:?}");
    assert!(network_inspect(&l.front).is_none());
    assert!(web.endpoint(&l.front).is_null());
    assert_eq!(web.inspect()["State"]["Running"], true);
}

#[test]
fn external_networks_and_decoys_are_never_changed() {
    let l = lab();
    let shared = DockerNet::internal("nls");
    let decoy = DockerNet::internal("nld");
    let web = Ctr::run("nlw", &l.base);
    let bystander = Ctr::run("nly", &decoy);
    let snapshot = |n: &str| {
        let v = network_inspect(n).unwrap();
        (
            v["Id"].clone(),
            v["IPAM"].clone(),
            v["Labels"].clone(),
            v["Containers"].as_object().map(|c| c.len()),
        )
    };
    let (shared_before, decoy_before, bystander_started) = (
        snapshot(&shared.name),
        snapshot(&decoy.name),
        bystander.started_at(),
    );

    let f = l.file(&format!(
        "[network.{}]\nexternal = true\n[container.{}]\nnetworks.{} = {{ aliases = [\"web\"] }}\n",
        shared.name, web.name, shared.name
    ));
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    assert!(
        web.endpoint(&shared.name).is_object(),
        "attached to the external network"
    );
    // Removing the attachment detaches it (netloom made it); the network stays.
    std::fs::write(
        &f,
        format!(
            "[topology]\nname = \"{}\"\n[network.{}]\nexternal = true\n",
            l.t.name, shared.name
        ),
    )
    .unwrap();
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    assert!(web.endpoint(&shared.name).is_null());
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
    assert_eq!(
        snapshot(&shared.name).0,
        shared_before.0,
        "the external network is never deleted"
    );
    assert_eq!(snapshot(&shared.name).1, shared_before.1);
    assert_eq!(snapshot(&decoy.name), decoy_before);
    assert_eq!(bystander.started_at(), bystander_started);

    // An attachment netloom did not make is left alone by prune, even when
    // the files declared it for a while.
    must(&format!(
        "docker network connect {} {}",
        shared.name, web.name
    ));
    let declared = format!(
        "[topology]\nname = \"{}\"\n[network.{}]\nexternal = true\n[container.{}]\nnetworks.{} = {{}}\n",
        l.t.name, shared.name, web.name, shared.name
    );
    std::fs::write(&f, declared).unwrap();
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    std::fs::write(&f, format!("[topology]\nname = \"{}\"\n", l.t.name)).unwrap();
    let prune = nl(&["plan"], &[&f]);
    assert!(!prune.stdout.contains("- attachment"), "{prune:?}");
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
    assert!(
        web.endpoint(&shared.name).is_object(),
        "not netloom's to remove"
    );

    // An external network that does not exist is reported, not created.
    let missing = l.file("[network.nl-no-such-net]\nexternal = true\n");
    let r = nl(&["plan"], &[&missing]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .contains("external network `nl-no-such-net` does not exist"),
        "{r:?}"
    );
}

#[test]
fn containers_that_are_absent_or_stopped_are_pending_not_failed() {
    let l = lab();
    let sleeper = Ctr::run("nlp", &l.base);
    must(&format!("docker stop -t 0 {} >/dev/null", sleeper.name));
    let f = l.file(&format!(
        "{}[container.{}]\nnetworks.{} = {{ ipv4 = \"{}\" }}\n[container.nl-never-there]\nnetworks.{} = {{}}\n",
        l.front_net(""),
        sleeper.name,
        l.front,
        l.net(30),
        l.front
    ));
    let plan = nl(&["plan", "--detailed-exitcode", "--format", "json"], &[&f]);
    assert_eq!(plan.code, 2, "{plan:?}");
    let json: serde_json::Value = serde_json::from_str(&plan.stdout).unwrap();
    let reasons: Vec<&str> = json["pending"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["reason"].as_str().unwrap())
        .collect();
    assert_eq!(reasons.len(), 2, "{json}");
    assert!(
        reasons.iter().any(|r| r.contains("does not exist")),
        "{reasons:?}"
    );
    assert!(
        reasons
            .iter()
            .any(|r| r.contains("not running (status: exited)")),
        "{reasons:?}"
    );

    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 2, "success with pending attachments: {r:?}");
    assert!(
        r.stdout
            .contains("waiting: container `nl-never-there` does not exist"),
        "{r:?}"
    );
    assert!(
        network_inspect(&l.front).is_some(),
        "the network is made regardless"
    );

    must(&format!("docker start {} >/dev/null", sleeper.name));
    assert_eq!(nl(&["apply"], &[&f]).code, 2, "one is still pending");
    assert_eq!(sleeper.endpoint(&l.front)["IPAddress"], l.net(30));
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
}

#[test]
fn live_conflicts_are_refused_before_any_change() {
    let l = lab();
    let decoy = DockerNet::internal("nld");
    // A subnet that collides with a live network (and the host route Docker made for it).
    let f = l.file(&format!(
        "[network.{}]\nsubnets = [\"{}\"]\n",
        l.front, decoy.subnet
    ));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains(&format!(
            "collides with {} of Docker network `{}`",
            decoy.subnet, decoy.name
        )),
        "{r:?}"
    );
    assert!(network_inspect(&l.front).is_none(), "nothing was created");

    // An unmarked network with the desired name is never adopted.
    let f = l.file(&format!(
        "[network.{}]\nsubnets = [\"10.213.{}.0/24\"]\n",
        decoy.name, l.subnet
    ));
    let r = nl(&["plan"], &[&f]);
    assert_eq!(r.code, 1);
    assert!(
        r.stdout
            .contains("already exists and netloom does not own it"),
        "{r:?}"
    );
}

#[test]
fn docker_unavailable_is_a_clear_error_and_kernel_topologies_do_not_need_it() {
    let l = lab();
    let f = l.file(&l.front_net(""));
    let mut c = netloom();
    c.env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .arg("plan")
        .arg(&f);
    let r = run(c);
    assert_eq!(r.code, 1);
    assert!(
        r.stderr
            .contains("cannot reach the Docker daemon at unix:///nonexistent/docker.sock"),
        "{r:?}"
    );

    let ns = Netns::named("nlt");
    let k = l.dir.write(
        "kernel.toml",
        &format!(
            "[topology]\nname = \"{}k\"\nnetns = \"{}\"\n[bridge.br0]\n",
            l.t.name, ns.name
        ),
    );
    let mut c = netloom();
    c.env("DOCKER_HOST", "unix:///nonexistent/docker.sock")
        .arg("apply")
        .arg(&k);
    let r = run(c);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(ns.link_names(), ["br0"]);
    let _ = nl(&["destroy"], &[&k]);
    let _ = std::fs::remove_file(run_dir().join(format!("{}k.ledger.json", l.t.name)));
    let _ = std::fs::remove_file(run_dir().join(format!("{}k.lock", l.t.name)));
}

#[test]
fn a_dual_stack_network_takes_static_ipv6_addresses_live() {
    if std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6")
        .is_ok_and(|v| v.trim() == "1")
    {
        eprintln!("IPv6 is disabled on this host: skipped");
        return;
    }
    let l = lab();
    let (web, cli) = (Ctr::run("nlw", &l.base), Ctr::run("nlc", &l.base));
    let s = l.subnet;
    let v6 = |h: u8| format!("fd00:213:{s}::{h}");
    let body = |host: u8| {
        format!(
            "[network.{n}]\nsubnets = [\"10.213.{s}.0/24\", \"fd00:213:{s}::/64\"]\n\
             [container.{w}]\nnetworks.{n} = {{ ipv4 = \"{v4}\", ipv6 = \"{v6}\" }}\n\
             [container.{c}]\nnetworks.{n} = {{}}\n",
            n = l.front,
            w = web.name,
            c = cli.name,
            v4 = l.net(host),
            v6 = v6(host)
        )
    };
    let f = l.file(&body(10));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(network_inspect(&l.front).unwrap()["EnableIPv6"], true);
    let ep = web.endpoint(&l.front);
    assert_eq!(ep["GlobalIPv6Address"], v6(10));
    assert_eq!(ep["IPAddress"], l.net(10));
    assert!(cli.pings(&v6(10)), "reachable over IPv6");
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);

    let started = web.started_at();
    std::fs::write(
        &f,
        format!("[topology]\nname = \"{}\"\n\n{}", l.t.name, body(20)),
    )
    .unwrap();
    let plan = nl(&["plan"], &[&f]);
    assert!(
        plan.stdout
            .contains(&format!("ipv6: {} → {}", v6(10), v6(20))),
        "{plan:?}"
    );
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(web.endpoint(&l.front)["GlobalIPv6Address"], v6(20));
    assert_eq!(web.started_at(), started, "the container was not restarted");
    assert!(cli.pings(&v6(20)));
    assert!(!cli.pings(&v6(10)), "the old address is gone");

    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
    assert!(network_inspect(&l.front).is_none());
}

#[test]
fn an_address_in_use_is_refused_at_plan_and_a_broken_endpoint_is_repaired() {
    let l = lab();
    let (web, other) = (Ctr::run("nlw", &l.base), Ctr::run("nlo", &l.base));
    let body = |host: u8| {
        format!(
            "{}[container.{}]\nnetworks.{} = {{ ipv4 = \"{}\" }}\n",
            l.front_net(""),
            web.name,
            l.front,
            l.net(host)
        )
    };
    let f = l.file(&body(10));
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    // Someone else takes .50 by hand.
    must(&format!(
        "docker network connect --ip {} {} {}",
        l.net(50),
        l.front,
        other.name
    ));

    std::fs::write(
        &f,
        format!("[topology]\nname = \"{}\"\n\n{}", l.t.name, body(50)),
    )
    .unwrap();
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains(&format!(
            "{} on network `{}` is already in use by container `{}`",
            l.net(50),
            l.front,
            other.name
        )),
        "{r:?}"
    );
    assert_eq!(
        web.endpoint(&l.front)["IPAddress"],
        l.net(10),
        "still connected as before"
    );

    // The state a connect refused by Docker leaves: listed, but no endpoint.
    must(&format!(
        "docker network disconnect {} {}",
        l.front, web.name
    ));
    assert_ne!(
        sh(&format!(
            "docker network connect --ip {} {} {}",
            l.net(50),
            l.front,
            web.name
        ))
        .code,
        0
    );
    if web.endpoint(&l.front)["EndpointID"] != "" {
        eprintln!("this dockerd rolls a refused connect back cleanly: nothing to repair");
        return;
    }
    std::fs::write(
        &f,
        format!("[topology]\nname = \"{}\"\n\n{}", l.t.name, body(10)),
    )
    .unwrap();
    let plan = nl(&["plan"], &[&f]);
    assert!(plan.stdout.contains("a connect that failed"), "{plan:?}");
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(web.endpoint(&l.front)["IPAddress"], l.net(10));
    must(&format!("docker restart -t 0 {} >/dev/null", web.name));
    assert_eq!(web.inspect()["State"]["Running"], true);
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);

    // A broken entry of an attachment being removed is cleared, too.
    must(&format!(
        "docker network disconnect {} {}",
        l.front, web.name
    ));
    let _ = sh(&format!(
        "docker network connect --ip {} {} {}",
        l.net(50),
        l.front,
        web.name
    ));
    must(&format!(
        "docker network disconnect {} {}",
        l.front, other.name
    ));
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
    assert!(web.endpoint(&l.front).is_null());
    assert!(network_inspect(&l.front).is_none());
}

#[test]
fn a_static_address_freed_in_the_same_plan_can_be_taken() {
    let l = lab();
    let (a, b) = (Ctr::run("nla", &l.base), Ctr::run("nlb", &l.base));
    let attach = |c: &Ctr, host: u8| {
        format!(
            "[container.{}]\nnetworks.{} = {{ ipv4 = \"{}\" }}\n",
            c.name,
            l.front,
            l.net(host)
        )
    };
    let f = l.file(&format!(
        "{}{}{}",
        l.front_net(""),
        attach(&a, 10),
        attach(&b, 50)
    ));
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    // b leaves the network and a takes its address, in one edit.
    std::fs::write(
        &f,
        format!(
            "[topology]\nname = \"{}\"\n\n{}{}",
            l.t.name,
            l.front_net(""),
            attach(&a, 50)
        ),
    )
    .unwrap();
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(a.endpoint(&l.front)["IPAddress"], l.net(50));
    assert!(b.endpoint(&l.front).is_null());
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
}

#[test]
fn a_network_with_its_own_bridge_name_is_replaced_on_a_label_change() {
    let l = lab();
    let bridge = format!("b{}", l.t.name);
    let f = l.file(&l.front_net(&format!(
        "options = {{ \"com.docker.network.bridge.name\" = \"{bridge}\" }}\nlabels = {{ team = \"a\" }}"
    )));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    let body = std::fs::read_to_string(&f)
        .unwrap()
        .replace("team = \"a\"", "team = \"b\"");
    std::fs::write(&f, body).unwrap();
    let plan = nl(&["plan", "--detailed-exitcode"], &[&f]);
    assert_eq!(
        plan.code, 2,
        "its own bridge's route is no collision: {plan:?}"
    );
    assert!(
        plan.stdout.contains(&format!("-/+ network {}", l.front)),
        "{plan:?}"
    );
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    assert_eq!(network_inspect(&l.front).unwrap()["Labels"]["team"], "b");
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
}

#[test]
fn a_container_recreated_under_the_same_name_keeps_the_network_it_came_with() {
    let l = lab();
    let ext = DockerNet::internal("nle");
    let name = unique("nlr");
    let run = |net: &str, ip: &str| {
        must(&format!(
            "docker rm -f {name} >/dev/null 2>&1; docker run -d --name {name} --network {net} {ip} {IMAGE} sleep 600 >/dev/null"
        ))
    };
    run(&l.base.name, "");
    let _gone = Ctr { name: name.clone() };
    let f = l.file(&format!(
        "[network.{e}]\nexternal = true\n[container.{name}]\nnetworks.{e} = {{}}\n",
        e = ext.name
    ));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    // Someone re-creates the container, on that network from the start,
    // and the file stops mentioning it.
    run(&ext.name, "");
    std::fs::write(&f, format!("[topology]\nname = \"{}\"\n", l.t.name)).unwrap();
    let plan = nl(&["plan"], &[&f]);
    assert!(!plan.stdout.contains("- attachment"), "{plan:?}");
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    let ep = must(&format!(
        "docker inspect -f '{{{{json .NetworkSettings.Networks}}}}' {name}"
    ));
    assert!(ep.contains(&ext.name), "still on its network: {ep}");
}
