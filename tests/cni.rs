//! CNI attachments through Debian's real plugins (`/usr/lib/cni`), into
//! real containers started `--network none`.

mod common;

use common::*;
use serde_json::Value;
use std::os::unix::fs::PermissionsExt;
use std::path::PathBuf;

const RESULTS: &str = "/var/lib/cni/results";

/// libcni's cache entries of one container (by Docker id).
fn cache_entries(id: &str) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(RESULTS)
        .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
        .unwrap_or_default();
    v.retain(|p| p.file_name().unwrap().to_string_lossy().contains(id));
    v
}

/// host-local's leases of a network: (address, container id).
fn leases(net: &str) -> Vec<(String, String)> {
    let dir = PathBuf::from("/var/lib/cni/networks").join(net);
    let mut v: Vec<(String, String)> = std::fs::read_dir(dir)
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .collect::<Vec<_>>()
        })
        .unwrap_or_default()
        .into_iter()
        .filter(|p| {
            p.file_name()
                .unwrap()
                .to_string_lossy()
                .contains(['.', ':'])
        })
        .filter(|p| {
            !p.file_name()
                .unwrap()
                .to_string_lossy()
                .starts_with("last_")
        })
        .map(|p| {
            let owner = std::fs::read_to_string(&p).unwrap_or_default();
            let id = owner.lines().next().unwrap_or_default().to_string();
            (p.file_name().unwrap().to_string_lossy().into_owned(), id)
        })
        .collect();
    v.sort();
    v
}

fn id_of(c: &Ctr) -> String {
    c.inspect()["Id"].as_str().unwrap().to_string()
}

/// IPv4 addresses (CIDR) of an interface inside a container.
fn addrs_in(c: &Ctr, ifname: &str) -> Vec<String> {
    let r = sh(&format!(
        "docker exec {} ip -o -4 addr show dev {ifname}",
        c.name
    ));
    r.stdout
        .lines()
        .filter_map(|l| l.split_whitespace().nth(3).map(str::to_string))
        .collect()
}

fn pid_of(c: &Ctr) -> u64 {
    c.inspect()["State"]["Pid"].as_u64().unwrap()
}

struct Lab {
    t: Topo,
    ns: Netns,
    d: Dir,
    net: String,
    bridge: String,
    o: u8,
}

fn lab(tag: &str) -> Lab {
    ensure_image();
    Lab {
        t: Topo::new(tag),
        ns: Netns::named(tag),
        d: Dir::new(),
        net: unique(&format!("{tag}n")),
        bridge: unique("cb"),
        o: octet(),
    }
}

impl Lab {
    fn write(&self, body: &str) -> PathBuf {
        self.d.write(
            "lab.toml",
            &format!(
                "[topology]\nname = \"{}\"\nnetns = \"{}\"\n\n{body}",
                self.t.name, self.ns.name
            ),
        )
    }

    fn bridge_net(&self, extra_plugins: &str) -> String {
        format!(
            "[cni.{}]\nplugins = [\n  {{ type = \"bridge\", bridge = \"{}\", isGateway = true, \
             ipam = {{ type = \"host-local\", subnet = \"10.89.{}.0/24\" }} }},{extra_plugins}\n]\n",
            self.net, self.bridge, self.o
        )
    }
}

/// A CNI attachment another tool made (the bridge plugin run by hand, with
/// a runtime netns of its own): netloom must never touch it.
fn decoy_add(c: &Ctr, runtime: &Netns, net: &str, o: u8, cmd: &str) -> Run {
    let conf = format!(
        r#"{{"cniVersion":"1.0.0","name":"{net}","type":"bridge","bridge":"{}","ipam":{{"type":"host-local","subnet":"10.88.{o}.0/24"}}}}"#,
        &net[..net.len().min(15)]
    );
    let netns = c.inspect()["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap()
        .to_string();
    sh(&format!(
        "echo '{conf}' | ip netns exec {} env -i CNI_COMMAND={cmd} CNI_CONTAINERID={} CNI_NETNS={netns} \
         CNI_IFNAME=eth9 CNI_PATH=/usr/lib/cni /usr/lib/cni/bridge",
        runtime.name,
        id_of(c)
    ))
}

#[test]
fn bridge_and_host_local_attach_check_repair_reconfigure_prune_and_destroy() {
    let l = lab("nlc");
    let (web, db) = (Ctr::run_mode("nlcw", "none"), Ctr::run_mode("nlcd", "none"));
    let both = format!(
        "{}[container.{}]\ncni.eth1 = {{ network = \"{}\" }}\n[container.{}]\ncni.eth1 = {{ network = \"{}\" }}\n",
        l.bridge_net(""),
        web.name,
        l.net,
        db.name,
        l.net
    );
    let f = l.write(&both);
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout
            .contains(&format!("+ cni {}:eth1 → {}", web.name, l.net)),
        "{r:?}"
    );

    // Addresses from host-local, and traffic between the two containers.
    let (wa, da) = (addrs_in(&web, "eth1"), addrs_in(&db, "eth1"));
    assert_eq!((wa.len(), da.len()), (1, 1), "{wa:?} {da:?}");
    assert!(wa[0].starts_with(&format!("10.89.{}.", l.o)), "{wa:?}");
    let db_ip = da[0].split('/').next().unwrap().to_string();
    assert!(web.pings(&db_ip), "web reaches db over the CNI bridge");
    // The plugin's bridge is in the topology's netns, not the host's.
    assert!(
        l.ns.link_names().contains(&l.bridge),
        "{:?}",
        l.ns.link_names()
    );
    assert_ne!(sh(&format!("ip link show {}", l.bridge)).code, 0);

    // libcni's cache, in its format, readable by root only.
    let (wid, did) = (id_of(&web), id_of(&db));
    let entries = cache_entries(&wid);
    assert_eq!(entries.len(), 1, "{entries:?}");
    let name = entries[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert_eq!(name, format!("{}-{wid}-eth1", l.net));
    let mode = std::fs::metadata(&entries[0]).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let cached: Value =
        serde_json::from_str(&std::fs::read_to_string(&entries[0]).unwrap()).unwrap();
    assert_eq!(cached["kind"], "cniCacheV1");
    assert_eq!(cached["containerId"], wid.as_str());
    assert_eq!(cached["ifName"], "eth1");
    assert_eq!(cached["networkName"], l.net.as_str());
    let config = must(&format!(
        "echo {} | base64 -d",
        cached["config"].as_str().unwrap()
    ));
    let config: Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["name"], l.net.as_str());
    assert_eq!(config["plugins"][0]["type"], "bridge");
    assert_eq!(cached["result"]["ips"][0]["address"], wa[0].as_str());
    assert_eq!(leases(&l.net).len(), 2);

    // Converged: the plan (which runs CHECK) is empty.
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);

    // Another tool's attachment in the same container is left alone.
    let other = Netns::precreated("nlco");
    let decoy = unique("nlcx");
    let r = decoy_add(&web, &other, &decoy, l.o, "ADD");
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);

    // Drift inside the container: CHECK sees it, apply repairs it.
    must(&format!(
        "nsenter -t {} -n ip addr flush dev eth1",
        pid_of(&web)
    ));
    let r = nl(&["plan", "--detailed-exitcode"], &[&f]);
    assert_eq!(r.code, 2, "{r:?}");
    assert!(
        r.stdout.contains(&format!("-/+ cni {}:eth1", web.name))
            && r.stdout.contains("CHECK failed"),
        "{r:?}"
    );
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    assert_eq!(addrs_in(&web, "eth1").len(), 1);
    assert!(web.pings(&db_ip));
    assert_eq!(leases(&l.net).len(), 2, "the old lease was freed");

    // A changed config re-attaches: DEL with the old, ADD with the new.
    let tuned = both.replace(
        "} },\n]",
        "} },\n  { type = \"tuning\", sysctl = { \"net.ipv4.conf.eth1.proxy_arp\" = \"1\" } },\n]",
    );
    assert_ne!(tuned, both);
    l.write(&tuned);
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("config changed"), "{r:?}");
    let sysctl = must(&format!(
        "docker exec {} cat /proc/sys/net/ipv4/conf/eth1/proxy_arp",
        web.name
    ));
    assert_eq!(sysctl.trim(), "1");
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);
    assert_eq!(leases(&l.net).len(), 2);

    // Pruned: db's interface, lease and cache entry go.
    l.write(&tuned.replace(
        &format!(
            "[container.{}]\ncni.eth1 = {{ network = \"{}\" }}\n",
            db.name, l.net
        ),
        "",
    ));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        r.stdout.contains(&format!("- cni {}:eth1", db.name)),
        "{r:?}"
    );
    assert!(addrs_in(&db, "eth1").is_empty());
    assert!(db.extra_links().is_empty(), "{:?}", db.extra_links());
    assert!(cache_entries(&did).is_empty());
    assert!(
        leases(&l.net).iter().all(|(_, id)| *id != did),
        "{:?}",
        leases(&l.net)
    );

    // The decoy is untouched all along.
    assert!(web.extra_links().contains(&"eth9".to_string()));
    assert_eq!(leases(&decoy).len(), 1);
    assert_eq!(decoy_add(&web, &other, &decoy, l.o, "DEL").code, 0);

    // Destroy leaves no interface, lease, cache entry, bridge or netns.
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
    assert!(web.extra_links().is_empty(), "{:?}", web.extra_links());
    assert!(cache_entries(&wid).is_empty());
    assert!(leases(&l.net).is_empty(), "{:?}", leases(&l.net));
    assert!(!l.ns.exists());
}

#[test]
fn a_removed_container_is_deleted_without_its_netns_and_a_restarted_one_attached_again() {
    let l = lab("nlcr");
    let web = Ctr::run_mode("nlcrw", "none");
    let gone = Ctr::run_mode("nlcrg", "none");
    let f = l.write(&format!(
        "{}[container.{}]\ncni.eth1 = {{ network = \"{}\" }}\n[container.{}]\ncni.eth1 = {{ network = \"{}\" }}\n",
        l.bridge_net(""),
        web.name,
        l.net,
        gone.name,
        l.net
    ));
    assert_eq!(nl(&["apply"], &[&f]).code, 0);
    let gid = id_of(&gone);
    drop(gone);
    // Removed: DEL with no netns frees its lease and cache entry; it waits.
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 2, "pending: {r:?}");
    assert!(cache_entries(&gid).is_empty());
    assert!(
        leases(&l.net).iter().all(|(_, id)| *id != gid),
        "{:?}",
        leases(&l.net)
    );
    assert_eq!(leases(&l.net).len(), 1);

    // Restarted (a new netns) under watch: attached again, one lease.
    let w = WatchProc::start(&[&f], "30s");
    eventually(
        "watch is up",
        10,
        || w.log().contains("reconcile"),
        || w.log(),
    );
    must(&format!("docker restart -t 0 {} >/dev/null", web.name));
    eventually(
        "re-attached",
        10,
        || addrs_in(&web, "eth1").len() == 1,
        || w.log(),
    );
    eventually(
        "one lease",
        5,
        || leases(&l.net).len() == 1,
        || format!("{:?}", leases(&l.net)),
    );
    let sandbox = web.inspect()["NetworkSettings"]["SandboxKey"]
        .as_str()
        .unwrap()
        .to_string();
    let cached: Value =
        serde_json::from_str(&std::fs::read_to_string(&cache_entries(&id_of(&web))[0]).unwrap())
            .unwrap();
    assert_eq!(cached["netns"], sandbox.as_str());
    assert!(w.stop().success());
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
    assert!(leases(&l.net).is_empty());
}

#[test]
fn ptp_with_static_ipam_reaches_the_topology_netns() {
    let l = lab("nlcp");
    let c = Ctr::run_mode("nlcpc", "none");
    let f = l.write(&format!(
        "[cni.{}]\nplugins = [{{ type = \"ptp\", ipam = {{ type = \"static\", \
         addresses = [{{ address = \"10.90.{o}.2/24\", gateway = \"10.90.{o}.1\" }}] }} }}]\n\
         [container.{}]\ncni.net0 = {{ network = \"{}\" }}\n",
        l.net,
        c.name,
        l.net,
        o = l.o
    ));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(addrs_in(&c, "net0"), [format!("10.90.{}.2/24", l.o)]);
    // The host end is in the topology's netns, routed to the container.
    let r = sh(&format!(
        "ip netns exec {} busybox ping -c 1 -W 2 10.90.{}.2",
        l.ns.name, l.o
    ));
    assert_eq!(r.code, 0, "{r:?}");
    assert_eq!(nl(&["plan", "--detailed-exitcode"], &[&f]).code, 0);
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
    assert!(c.extra_links().is_empty());
    assert!(cache_entries(&id_of(&c)).is_empty());
}

#[test]
fn a_plugin_error_is_reported_with_its_message_and_the_run_is_undone() {
    let l = lab("nlce");
    let (a, b) = (
        Ctr::run_mode("nlcea", "none"),
        Ctr::run_mode("nlceb", "none"),
    );
    // One address to hand out, two containers: host-local refuses the second.
    let f = l.write(&format!(
        "[bridge.br0]\naddresses = [\"10.92.{o}.1/24\"]\n\
         [cni.{}]\nplugins = [{{ type = \"bridge\", bridge = \"{}\", ipam = {{ type = \"host-local\", \
         ranges = [[{{ subnet = \"10.89.{o}.0/24\", rangeStart = \"10.89.{o}.10\", rangeEnd = \"10.89.{o}.10\" }}]] }} }}]\n\
         [container.{}]\ncni.eth1 = {{ network = \"{}\" }}\n[container.{}]\ncni.eth1 = {{ network = \"{}\" }}\n",
        l.net,
        l.bridge,
        a.name,
        l.net,
        b.name,
        l.net,
        o = l.o
    ));
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("CNI ADD"), "{r:?}");
    assert!(r.stderr.contains("plugin bridge"), "{r:?}");
    assert!(
        r.stderr.contains("no IP addresses available"),
        "the plugin's msg: {r:?}"
    );
    assert!(r.stderr.contains("rolled back"), "{r:?}");
    // Nothing else stays: no interface in either container, no lease, no
    // cache entry, no bridge of the topology's.
    assert!(a.extra_links().is_empty() && b.extra_links().is_empty());
    assert!(leases(&l.net).is_empty(), "{:?}", leases(&l.net));
    assert!(cache_entries(&id_of(&a)).is_empty() && cache_entries(&id_of(&b)).is_empty());
    assert!(!l.ns.link_names().contains(&"br0".to_string()));
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
}

#[test]
fn a_plugin_missing_from_plugin_dirs_is_a_conflict_at_plan_time() {
    let l = lab("nlcm");
    let c = Ctr::run_mode("nlcmc", "none");
    let f = l.write(&format!(
        "[cni.{}]\nplugin_dirs = [\"/usr/lib/cni\"]\nplugins = [{{ type = \"bridge\" }}, {{ type = \"nosuchplugin\" }}]\n\
         [container.{}]\ncni.eth1 = {{ network = \"{}\" }}\n",
        l.net, c.name, l.net
    ));
    let r = nl(&["plan"], &[&f]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stdout.contains("CNI plugin(s) nosuchplugin") && r.stdout.contains("/usr/lib/cni"),
        "{r:?}"
    );
    assert_eq!(nl(&["apply"], &[&f]).code, 1);
    assert!(c.extra_links().is_empty());
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
}
