//! Other network managers configured for names the topology declares in
//! the host's netns: NetworkManager, systemd-networkd and netplan would
//! configure (or remove) them behind netloom's back.

use super::{Finding, Options};
use crate::model::Topology;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

const CHECK: &str = "managers";

/// The interface names the topology puts in the host's netns.
fn host_names(t: &Topology) -> BTreeSet<String> {
    let mut names = BTreeSet::new();
    if t.netns.is_none() {
        names.extend(
            t.bridges
                .values()
                .filter(|b| !b.external)
                .map(|b| b.name.clone()),
        );
        for v in t.veths.values() {
            names.insert(v.name.clone());
            names.insert(v.peer.clone());
        }
    }
    for n in t.networks.values().filter(|n| !n.external) {
        if let Some(b) = n.options.get("com.docker.network.bridge.name") {
            names.insert(b.clone());
        }
    }
    names
}

/// Files of `dir` ending in one of `exts`, sorted.
fn files(dir: &Path, exts: &[&str]) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .flatten()
        .map(|e| e.path())
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| exts.contains(&e))
        })
        .collect();
    v.sort();
    v
}

/// `(section, key, value)` of an INI-style file (networkd units, NM keyfiles).
fn ini(text: &str) -> Vec<(String, String, String)> {
    let mut section = String::new();
    let mut out = vec![];
    for line in text.lines().map(str::trim) {
        if line.starts_with(['#', ';']) || line.is_empty() {
            continue;
        }
        if let Some(s) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            section = s.trim().to_string();
        } else if let Some((k, v)) = line.split_once('=') {
            out.push((section.clone(), k.trim().to_string(), v.trim().to_string()));
        }
    }
    out
}

fn glob_matches(pattern: &str, name: &str) -> bool {
    glob::Pattern::new(pattern).is_ok_and(|p| p.matches(name))
}

/// The names of `names` a systemd-networkd `.network` file's `[Match]
/// Name=` takes, unless it leaves them unmanaged (`[Link] Unmanaged=yes`).
pub fn networkd_matches(text: &str, names: &BTreeSet<String>) -> Vec<String> {
    let kv = ini(text);
    let unmanaged = kv.iter().any(|(s, k, v)| {
        s == "Link" && k == "Unmanaged" && matches!(v.as_str(), "yes" | "true" | "1")
    });
    if unmanaged {
        return vec![];
    }
    let patterns: Vec<&str> = kv
        .iter()
        .filter(|(s, k, _)| s == "Match" && k == "Name")
        .flat_map(|(_, _, v)| v.split_whitespace())
        .collect();
    // A negated list (`Name=!eth0`) matches everything else.
    let (neg, pos): (Vec<&str>, Vec<&str>) = patterns.iter().partition(|p| p.starts_with('!'));
    names
        .iter()
        .filter(|n| {
            if !pos.is_empty() {
                pos.iter().any(|p| glob_matches(p, n))
            } else if !neg.is_empty() {
                !neg.iter().any(|p| glob_matches(&p[1..], n))
            } else {
                false
            }
        })
        .cloned()
        .collect()
}

/// Every interface name (or `match.name` glob) a netplan file declares,
/// with where: `network.bridges.br0`.
pub fn netplan_names(text: &str) -> Result<Vec<(String, String)>, String> {
    let v: yaml_serde::Value = yaml_serde::from_str(text).map_err(|e| e.to_string())?;
    let mut out = vec![];
    let Some(net) = v.get("network").and_then(|n| n.as_mapping()) else {
        return Ok(out);
    };
    for (kind, devs) in net {
        let (Some(kind), Some(devs)) = (kind.as_str(), devs.as_mapping()) else {
            continue;
        };
        for (id, dev) in devs {
            let Some(id) = id.as_str() else { continue };
            let name = dev
                .get("set-name")
                .and_then(|n| n.as_str())
                .or_else(|| dev.get("match")?.get("name")?.as_str())
                .unwrap_or(id);
            out.push((name.to_string(), format!("network.{kind}.{id}")));
        }
    }
    Ok(out)
}

pub(super) fn examine(topo: Option<&Topology>, opts: &Options, out: &mut Vec<Finding>) {
    let Some(t) = topo else { return };
    let names = host_names(t);
    if names.is_empty() {
        return;
    }
    let before = out.len();
    networkd(opts, &names, out);
    netplan(opts, &names, out);
    network_manager(opts, &names, out);
    if out.len() == before {
        out.push(Finding::ok(
            CHECK,
            "host",
            format!(
                "no NetworkManager, systemd-networkd or netplan configuration names {}",
                names.iter().cloned().collect::<Vec<_>>().join(", ")
            ),
        ));
    }
}

fn networkd(opts: &Options, names: &BTreeSet<String>, out: &mut Vec<Finding>) {
    for dir in ["/etc/systemd/network", "/run/systemd/network"] {
        for f in files(&opts.path(dir), &["network", "netdev"]) {
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            let netdev = f.extension().is_some_and(|e| e == "netdev");
            let hit: Vec<String> = if netdev {
                ini(&text)
                    .into_iter()
                    .filter(|(s, k, v)| s == "NetDev" && k == "Name" && names.contains(v))
                    .map(|(_, _, v)| v)
                    .collect()
            } else {
                networkd_matches(&text, names)
            };
            if hit.is_empty() {
                continue;
            }
            let what = if netdev {
                "systemd-networkd creates"
            } else {
                "systemd-networkd configures (addresses, state) what netloom declares:"
            };
            out.push(Finding::warning(
                CHECK,
                f.display().to_string(),
                format!("{what} {}", hit.join(", ")),
                if netdev {
                    "remove the .netdev, or rename the object in the topology".to_string()
                } else {
                    "narrow its [Match] Name=, or add `Unmanaged=yes` under [Link], then networkctl reload".to_string()
                },
            ));
        }
    }
}

fn netplan(opts: &Options, names: &BTreeSet<String>, out: &mut Vec<Finding>) {
    for dir in ["/etc/netplan", "/run/netplan", "/lib/netplan"] {
        for f in files(&opts.path(dir), &["yaml", "yml"]) {
            let Ok(text) = std::fs::read_to_string(&f) else {
                continue;
            };
            let declared = match netplan_names(&text) {
                Ok(d) => d,
                Err(e) => {
                    out.push(Finding::warning(
                        CHECK,
                        f.display().to_string(),
                        format!("not readable as netplan YAML: {e}"),
                        "fix it (netplan generate shows the error too)",
                    ));
                    continue;
                }
            };
            let hit: Vec<String> = declared
                .iter()
                .flat_map(|(pat, at)| {
                    names
                        .iter()
                        .filter(|n| glob_matches(pat, n))
                        .map(move |n| format!("{n} ({at})"))
                })
                .collect();
            if !hit.is_empty() {
                out.push(Finding::warning(
                    CHECK,
                    f.display().to_string(),
                    format!("netplan configures what netloom declares: {}", hit.join(", ")),
                    "remove those entries from the netplan file (and run netplan apply), or rename the objects in the topology",
                ));
            }
        }
    }
}

fn network_manager(opts: &Options, names: &BTreeSet<String>, out: &mut Vec<Finding>) {
    let unmanaged = nm_unmanaged(opts);
    let left = |n: &String| !unmanaged.iter().any(|p| glob_matches(p, n));
    let dir = opts.path("/etc/NetworkManager/system-connections");
    for f in files(&dir, &["nmconnection"]) {
        let Ok(text) = std::fs::read_to_string(&f) else {
            continue;
        };
        let hit: Vec<String> = ini(&text)
            .into_iter()
            .filter(|(s, k, v)| s == "connection" && k == "interface-name" && names.contains(v))
            .map(|(_, _, v)| v)
            .filter(left)
            .collect();
        if !hit.is_empty() {
            out.push(Finding::warning(
                CHECK,
                f.display().to_string(),
                format!("a NetworkManager connection profile for {}", hit.join(", ")),
                format!(
                    "delete the profile (nmcli connection delete), or {}",
                    nm_leave_alone(&hit)
                ),
            ));
        }
    }
    // The running daemon's own view, when this is the live host.
    if !opts.live_root() {
        return;
    }
    let Ok(o) = std::process::Command::new("nmcli")
        .args(["-t", "-f", "DEVICE,STATE", "device"])
        .output()
    else {
        return;
    };
    let text = String::from_utf8_lossy(&o.stdout);
    let managed: Vec<String> = text
        .lines()
        .filter_map(|l| l.split_once(':'))
        .filter(|(d, s)| names.contains(*d) && !s.starts_with("unmanaged"))
        .map(|(d, _)| d.to_string())
        .collect();
    if !managed.is_empty() {
        out.push(Finding::warning(
            CHECK,
            "NetworkManager",
            format!("manages {}", managed.join(", ")),
            format!("{} and reload NetworkManager", nm_leave_alone(&managed)),
        ));
    }
}

/// The keyfile setting that tells NetworkManager to leave `names` alone.
fn nm_leave_alone(names: &[String]) -> String {
    let devices: Vec<String> = names
        .iter()
        .map(|n| format!("interface-name:{n}"))
        .collect();
    format!(
        "add `[keyfile]\\nunmanaged-devices={}` to /etc/NetworkManager/conf.d/netloom.conf",
        devices.join(";")
    )
}

/// `interface-name:` globs NetworkManager is told to leave alone.
fn nm_unmanaged(opts: &Options) -> Vec<String> {
    let mut paths = vec![opts.path("/etc/NetworkManager/NetworkManager.conf")];
    paths.extend(files(&opts.path("/etc/NetworkManager/conf.d"), &["conf"]));
    paths
        .iter()
        .filter_map(|p| std::fs::read_to_string(p).ok())
        .flat_map(|t| ini(&t))
        .filter(|(s, k, _)| s == "keyfile" && k == "unmanaged-devices")
        .flat_map(|(_, _, v)| {
            v.split(';')
                .filter_map(|d| d.trim().strip_prefix("interface-name:").map(str::to_string))
                .collect::<Vec<_>>()
        })
        .collect()
}
