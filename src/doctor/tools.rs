//! The programs the topology's backends run: gobgpd for [bgp], each CNI
//! plugin in its directories; and for services, the kernel's nf_tables
//! (netloom speaks it over netlink, no `nft` binary needed).

use super::{Finding, is_executable, on_path};
use crate::model::Topology;
use std::path::Path;

const CHECK: &str = "binaries";

pub(super) fn examine(topo: Option<&Topology>, out: &mut Vec<Finding>) {
    let Some(t) = topo else {
        // Without a topology nothing needs them: only say what is there.
        for bin in ["gobgpd"] {
            if let Some(p) = on_path(bin) {
                out.push(Finding::ok(CHECK, bin, p.display().to_string()));
            }
        }
        return;
    };
    if let Some(b) = &t.bgp {
        match &b.api {
            Some(sock) if sock.exists() => out.push(Finding::ok(
                CHECK,
                "gobgpd",
                format!("[bgp] api: {} exists", sock.display()),
            )),
            Some(sock) => out.push(Finding::error(
                CHECK,
                "gobgpd",
                format!("[bgp] names gobgpd's API socket {}, which does not exist", sock.display()),
                format!(
                    "start gobgpd with --api-hosts unix://{}, or drop `api` so that netloom runs its own",
                    sock.display()
                ),
            )),
            None => out.push(binary("gobgpd", "[bgp]", "apt-get install gobgpd")),
        }
    }
    if !t.services.is_empty() {
        out.push(match crate::backend::nft_probe() {
            Ok(g) => Finding::ok(
                CHECK,
                "nf_tables",
                format!("the kernel answers nf_tables over netlink (ruleset generation {g})"),
            ),
            Err(e) => Finding::error(
                CHECK,
                "nf_tables",
                format!("services need the kernel's nf_tables, which does not answer: {e}"),
                "load it (modprobe nf_tables nft_nat nft_ct nft_numgen nft_reject_inet), or use a kernel built with CONFIG_NF_TABLES".to_string(),
            ),
        });
    }
    let udp = t.services.values().any(|s| {
        s.ports
            .iter()
            .any(|p| p.protocol == crate::model::Proto::Udp)
    });
    if udp {
        // Only stale flows suffer without it: a warning, not an error.
        let mut f = binary(
            "conntrack",
            "a UDP service (to flush flows to endpoints taken out)",
            "apt-get install conntrack",
        );
        if f.severity == super::Severity::Error {
            f.severity = super::Severity::Warning;
        }
        out.push(f);
    }
    for n in t.cni.values() {
        for p in &n.plugins {
            let Some(kind) = p.get("type").and_then(|v| v.as_str()) else {
                continue;
            };
            let found = n
                .dirs
                .iter()
                .map(|d| Path::new(d).join(kind))
                .find(|p| is_executable(p));
            out.push(match found {
                Some(p) => Finding::ok(CHECK, format!("cni plugin {kind}"), p.display().to_string()),
                None => Finding::error(
                    CHECK,
                    format!("cni plugin {kind}"),
                    format!(
                        "CNI network `{}` runs plugin `{kind}`, which is in none of {}",
                        n.name,
                        n.dirs.join(", ")
                    ),
                    "apt-get install containernetworking-plugins, or list the directory that holds it in plugin_dirs",
                ),
            });
        }
    }
}

fn binary(bin: &str, why: &str, fix: &str) -> Finding {
    match on_path(bin) {
        Some(p) => Finding::ok(CHECK, bin, p.display().to_string()),
        None => Finding::error(CHECK, bin, format!("not on PATH; {why} needs it"), fix),
    }
}
