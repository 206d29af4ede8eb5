//! Docker: the daemon answers, it can give the topology's networks IPv6,
//! it masquerades those that reach beyond the host, and its default
//! address pools (for networks made without a subnet) are not used up.

use super::{Finding, Options};
use crate::backend::docker::DockerApi;
use crate::model::{Family, ServiceNet, Topology};
use crate::observed::NetworkObs;
use ipnet::{IpNet, Ipv4Net};
use serde_json::Value;
use std::collections::BTreeSet;

const MASQ_OPTION: &str = "com.docker.network.bridge.enable_ip_masquerade";

fn needs_docker(t: &Topology) -> bool {
    !t.networks.is_empty()
        || t.containers.values().any(|c| !c.networks.is_empty())
        || t.services
            .values()
            .any(|s| matches!(s.network, ServiceNet::Docker(_)))
}

/// The daemon's settings that matter here, from daemon.json and (on the
/// live host) the running dockerd's flags.
#[derive(Default)]
struct DaemonConfig {
    iptables: Option<bool>,
    ip6tables: Option<bool>,
    pools: Vec<(Ipv4Net, u8)>,
    source: String,
}

fn daemon_config(opts: &Options, out: &mut Vec<Finding>) -> DaemonConfig {
    let path = opts.path("/etc/docker/daemon.json");
    let mut c = DaemonConfig {
        source: path.display().to_string(),
        ..Default::default()
    };
    if let Ok(text) = std::fs::read_to_string(&path) {
        match serde_json::from_str::<Value>(&text) {
            Ok(v) => {
                c.iptables = v["iptables"].as_bool();
                c.ip6tables = v["ip6tables"].as_bool();
                for p in v["default-address-pools"].as_array().into_iter().flatten() {
                    let base = p["base"].as_str().and_then(|b| b.parse().ok());
                    let size = p["size"].as_u64().and_then(|s| u8::try_from(s).ok());
                    if let (Some(b), Some(s)) = (base, size) {
                        c.pools.push((b, s));
                    }
                }
            }
            Err(e) => out.push(Finding::warning(
                "docker",
                path.display().to_string(),
                format!("not valid JSON ({e}); dockerd refuses to start with it"),
                "fix the file, then restart dockerd",
            )),
        }
    }
    if opts.live_root() {
        for arg in dockerd_args() {
            match arg.as_str() {
                "--iptables=false" => c.iptables = Some(false),
                "--ip6tables" | "--ip6tables=true" => c.ip6tables = Some(true),
                "--ip6tables=false" => c.ip6tables = Some(false),
                _ => {
                    if let Some(p) = arg.strip_prefix("--default-address-pool=") {
                        c.pools.extend(parse_pool_flag(p));
                    }
                }
            }
        }
    }
    c
}

/// `base=10.10.0.0/16,size=24`.
fn parse_pool_flag(s: &str) -> Option<(Ipv4Net, u8)> {
    let mut base = None;
    let mut size = None;
    for kv in s.split(',') {
        match kv.split_once('=')? {
            ("base", b) => base = b.parse().ok(),
            ("size", n) => size = n.parse().ok(),
            _ => {}
        }
    }
    Some((base?, size?))
}

/// The running dockerd's arguments (empty when none runs here).
fn dockerd_args() -> Vec<String> {
    let Ok(dir) = std::fs::read_dir("/proc") else {
        return vec![];
    };
    for e in dir.flatten() {
        let p = e.path();
        let comm = std::fs::read_to_string(p.join("comm")).unwrap_or_default();
        if comm.trim() == "dockerd" {
            let raw = std::fs::read(p.join("cmdline")).unwrap_or_default();
            return raw
                .split(|b| *b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect();
        }
    }
    vec![]
}

/// Docker's built-in pools (libnetwork's local-scope defaults): 172.17–31
/// as /16s, and 192.168.0.0/16 as /20s — 31 networks.
fn default_pools() -> Vec<(Ipv4Net, u8)> {
    let mut v: Vec<(Ipv4Net, u8)> = (17..=31)
        .map(|o| (format!("172.{o}.0.0/16").parse().expect("a pool"), 16))
        .collect();
    v.push(("192.168.0.0/16".parse().expect("a pool"), 20));
    v
}

/// (free, total) subnets of the pools, given the subnets networks use.
pub fn pool_usage(pools: &[(Ipv4Net, u8)], used: &[Ipv4Net]) -> (u64, u64) {
    let mut total = 0u64;
    let mut taken = 0u64;
    for (base, size) in pools {
        let size = (*size).max(base.prefix_len());
        let slots = 1u64 << (size - base.prefix_len()).min(40);
        total += slots;
        let mut hit: BTreeSet<u64> = BTreeSet::new();
        for u in used {
            if !(base.contains(u) || u.contains(base)) {
                continue;
            }
            // The slots this subnet covers, by index within the pool.
            let start = u32::from(u.network()).max(u32::from(base.network()));
            let end = u32::from(u.broadcast()).min(u32::from(base.broadcast()));
            let shift = 32 - u32::from(size);
            let first = u64::from((start - u32::from(base.network())) >> shift);
            let last = u64::from((end - u32::from(base.network())) >> shift);
            hit.extend(first..=last.min(first + slots));
        }
        taken += hit.len() as u64;
    }
    (total.saturating_sub(taken), total)
}

pub(super) async fn examine(topo: Option<&Topology>, opts: &Options, out: &mut Vec<Finding>) {
    let needed = topo.is_none_or(needs_docker);
    if !needed {
        return;
    }
    let api = match DockerApi::connect().await {
        Ok(api) => api,
        Err(e) => {
            let fix = "start it (systemctl start docker, or dockerd &), or point DOCKER_HOST at its socket";
            out.push(match topo {
                Some(_) => Finding::error(
                    "docker",
                    "dockerd",
                    format!("{e}; the topology's networks and containers need it"),
                    fix,
                ),
                None => Finding::warning("docker", "dockerd", e.to_string(), fix),
            });
            return;
        }
    };
    let version = api
        .client()
        .version()
        .await
        .ok()
        .and_then(|v| v.version)
        .unwrap_or_else(|| "?".into());
    out.push(Finding::ok(
        "docker",
        "dockerd",
        format!("dockerd {version} answers"),
    ));
    let mut cfg = daemon_config(opts, out);
    // Docker 27 made ip6tables the default.
    let major = version
        .split('.')
        .next()
        .and_then(|m| m.parse::<u32>().ok());
    if cfg.ip6tables.is_none() && major.is_some_and(|m| m >= 27) {
        cfg.ip6tables = Some(true);
    }
    let live = match api.observe(&BTreeSet::new(), None).await {
        Ok(o) => o.networks,
        Err(e) => {
            out.push(Finding::error(
                "docker",
                "dockerd",
                format!("cannot list networks: {e}"),
                "check dockerd's log",
            ));
            return;
        }
    };
    if let Some(t) = topo {
        ipv6(t, &cfg, out);
        masquerade(t, &cfg, &live, out);
    }
    pools(&cfg, &live, out);
}

fn ipv6(t: &Topology, cfg: &DaemonConfig, out: &mut Vec<Finding>) {
    let v6: Vec<_> = t
        .networks
        .values()
        .filter(|n| !n.external && n.subnets.iter().any(|s| Family::of_net(s) == Family::Ipv6))
        .collect();
    if v6.is_empty() {
        return;
    }
    // With ipv6.disable=1 on the kernel command line the file is absent.
    let disabled = std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6")
        .map_or(true, |v| v.trim() == "1");
    if disabled {
        out.push(Finding::error(
            "ipv6",
            "host",
            format!(
                "IPv6 is disabled on the host (net.ipv6.conf.all.disable_ipv6 = 1): Docker cannot give `{}` its IPv6 subnet",
                v6[0].name
            ),
            "run: sysctl -w net.ipv6.conf.all.disable_ipv6=0 (and drop ipv6.disable=1 from the kernel command line, if set there)",
        ));
        return;
    }
    // Docker NATs only bridge networks; macvlan and ipvlan are not its to route.
    for n in v6.iter().filter(|n| !n.internal && n.driver == "bridge") {
        if cfg.ip6tables == Some(true) {
            out.push(Finding::ok(
                "ipv6",
                format!("network {}", n.name),
                "dockerd makes IPv6 NAT and filter rules (ip6tables)",
            ));
        } else {
            out.push(Finding::warning(
                "ipv6",
                format!("network {}", n.name),
                "has an IPv6 subnet and reaches beyond the host, but dockerd makes no IPv6 NAT rules (ip6tables is off): its containers reach beyond the host over IPv6 only if something routes its subnet to this host",
                format!(
                    "set \"experimental\": true and \"ip6tables\": true in {} and restart dockerd, or route the subnet to this host",
                    cfg.source
                ),
            ));
        }
    }
}

/// The NAT rules in the host's netns, as text (iptables-save, else nft).
fn nat_rules() -> Option<String> {
    let run = |cmd: &str, args: &[&str]| {
        let o = std::process::Command::new(cmd).args(args).output().ok()?;
        o.status
            .success()
            .then(|| String::from_utf8_lossy(&o.stdout).into_owned())
    };
    run("iptables-save", &["-t", "nat"]).or_else(|| run("nft", &["list", "table", "ip", "nat"]))
}

/// A rule that rewrites the source of `subnet`'s packets.
fn masquerades(rules: &str, subnet: &Ipv4Net) -> bool {
    let s = subnet.to_string();
    rules.lines().any(|l| {
        let from = l.contains(&format!("-s {s} ")) || l.contains(&format!("ip saddr {s} "));
        let nat = ["MASQUERADE", "SNAT", "masquerade", "snat"]
            .iter()
            .any(|k| l.contains(k));
        from && nat
    })
}

fn masquerade(t: &Topology, cfg: &DaemonConfig, live: &[NetworkObs], out: &mut Vec<Finding>) {
    let mut rules: Option<Option<String>> = None;
    for n in t.networks.values() {
        if n.external || n.internal || n.driver != "bridge" {
            continue;
        }
        let Some(subnet) = n.subnets.iter().find_map(|s| match s {
            IpNet::V4(v) => Some(*v),
            IpNet::V6(_) => None,
        }) else {
            continue;
        };
        let subject = format!("network {}", n.name);
        let fix = format!(
            "drop `{MASQ_OPTION}` = \"false\" from the network's options, or add a masquerade rule of your own for {subnet}, or make it internal = true if it should not reach beyond the host"
        );
        if n.options.get(MASQ_OPTION).is_some_and(|v| v == "false") {
            out.push(Finding::warning(
                "masquerade",
                subject,
                format!(
                    "reaches beyond the host (not internal) but its options turn masquerading off: replies to {subnet} find no way back unless the outside routes it to this host"
                ),
                fix,
            ));
            continue;
        }
        if cfg.iptables == Some(false) {
            out.push(Finding::warning(
                "masquerade",
                subject,
                "dockerd runs with iptables off, so it makes no masquerade rule for it",
                format!(
                    "remove \"iptables\": false from {} (or --iptables=false), or add a masquerade rule for {subnet}",
                    cfg.source
                ),
            ));
            continue;
        }
        if !live.iter().any(|o| o.net.name == n.name) {
            out.push(Finding::ok(
                "masquerade",
                subject,
                "dockerd masquerades it once netloom creates it",
            ));
            continue;
        }
        let Some(text) = rules.get_or_insert_with(nat_rules) else {
            continue;
        };
        if masquerades(text, &subnet) {
            out.push(Finding::ok(
                "masquerade",
                subject,
                format!("{subnet} is masqueraded"),
            ));
        } else {
            out.push(Finding::warning(
                "masquerade",
                subject,
                format!(
                    "no NAT rule masquerades {subnet}: its containers cannot reach beyond the host"
                ),
                fix,
            ));
        }
    }
}

fn pools(cfg: &DaemonConfig, live: &[NetworkObs], out: &mut Vec<Finding>) {
    let (pools, whose) = if cfg.pools.is_empty() {
        (
            default_pools(),
            "Docker's default address pools".to_string(),
        )
    } else {
        (
            cfg.pools.clone(),
            format!("the default-address-pools of {}", cfg.source),
        )
    };
    let used: Vec<Ipv4Net> = live
        .iter()
        .flat_map(|n| &n.net.subnets)
        .filter_map(|s| match s {
            IpNet::V4(v) => Some(*v),
            IpNet::V6(_) => None,
        })
        .collect();
    let (free, total) = pool_usage(&pools, &used);
    let msg = format!("{free} of {total} subnets of {whose} are free");
    // Nearly exhausted: a fifth or less left, or at most one.
    if free * 5 <= total || free <= 1 {
        out.push(Finding::warning(
            "address-pools",
            "dockerd",
            format!("{msg}: a network made without a subnet (docker network create, compose) fails once none is left"),
            format!(
                "remove networks nothing uses (docker network prune), or give dockerd larger default-address-pools in {}; netloom's own networks always name their subnets",
                cfg.source
            ),
        ));
    } else {
        out.push(Finding::ok("address-pools", "dockerd", msg));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(s: &str) -> Ipv4Net {
        s.parse().unwrap()
    }

    #[test]
    fn pools_count_the_slots_networks_take() {
        let pools = default_pools();
        assert_eq!(pool_usage(&pools, &[]), (31, 31));
        // docker0, one /16 slot; a /24 inside 192.168.0.0/20 takes that /20.
        let used = [n("172.17.0.0/16"), n("192.168.3.0/24"), n("10.0.0.0/8")];
        assert_eq!(pool_usage(&pools, &used), (29, 31));
        // A subnet wider than the slot size covers several.
        let p = [(n("10.10.0.0/16"), 24)];
        assert_eq!(pool_usage(&p, &[n("10.10.0.0/22")]), (252, 256));
    }

    #[test]
    fn a_masquerade_rule_is_found_by_its_source() {
        let rules = "-A POSTROUTING -s 10.213.5.0/24 ! -o br-a946d04e16d5 -j MASQUERADE\n";
        assert!(masquerades(rules, &n("10.213.5.0/24")));
        assert!(!masquerades(rules, &n("10.213.6.0/24")));
        assert_eq!(
            parse_pool_flag("base=10.10.0.0/16,size=24"),
            Some((n("10.10.0.0/16"), 24))
        );
    }
}
