//! UDP flows to endpoints a service no longer has. Connection tracking
//! keeps a flow's NAT decision for as long as the flow lives, and UDP
//! clients that reuse their socket keep a flow alive forever: without a
//! flush they would go on reaching the endpoint that was taken out.

use crate::observed::NftObs;
use crate::resource::ServiceRes;
use std::collections::BTreeSet;
use std::net::IpAddr;

/// One set of conntrack entries to delete: UDP to `vip`:`port`, answered
/// by `endpoint`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Stale {
    pub vip: IpAddr,
    pub port: u16,
    pub endpoint: IpAddr,
}

/// The address of a DNAT target as its comment writes it: `10.0.0.5:8080`
/// or `[fd00::5]:8080`.
fn target_addr(to: &str) -> Option<IpAddr> {
    let host = match to.strip_prefix('[') {
        Some(rest) => rest.split(']').next()?,
        None => to.rsplit_once(':')?.0,
    };
    host.parse().ok()
}

/// What the table held before an apply, against the services it holds
/// after: each UDP (VIP, port) of a `changed` service (the others lead
/// where they led), with the endpoints it led to that it no longer leads to.
pub fn stale(before: &NftObs, after: &[ServiceRes], changed: &[&str]) -> Vec<Stale> {
    let mut out = BTreeSet::new();
    let after: std::collections::HashMap<&str, &ServiceRes> =
        after.iter().map(|s| (s.name.as_str(), s)).collect();
    for &name in changed {
        let rules = before.rules_of(name);
        let mut udp: Vec<(IpAddr, u16)> = vec![];
        let mut eps: BTreeSet<IpAddr> = BTreeSet::new();
        let to = format!("nl svc {name} to ");
        let ep = format!("nl svc {name} ep ");
        for (_, comment) in &rules {
            if let Some(rest) = comment.strip_prefix(&to) {
                // `VIP udp/PORT`
                let mut w = rest.split(' ');
                let vip = w.next().and_then(|v| v.parse::<IpAddr>().ok());
                let port = w
                    .next()
                    .and_then(|p| p.strip_prefix("udp/"))
                    .and_then(|p| p.parse::<u16>().ok());
                if let (Some(v), Some(p)) = (vip, port) {
                    udp.push((v, p));
                }
            } else if let Some(rest) = comment.strip_prefix(&ep) {
                // `NAME TARGET`
                if let Some(a) = rest.split(' ').nth(1).and_then(target_addr) {
                    eps.insert(a);
                }
            }
        }
        if udp.is_empty() {
            continue;
        }
        let now: BTreeSet<IpAddr> = after
            .get(name)
            .into_iter()
            .flat_map(|s| &s.endpoints)
            .flat_map(|e| e.v4.map(IpAddr::V4).into_iter().chain(e.v6.map(IpAddr::V6)))
            .collect();
        for gone in eps.difference(&now) {
            for (vip, port) in udp.iter().filter(|(v, _)| v.is_ipv4() == gone.is_ipv4()) {
                out.insert(Stale {
                    vip: *vip,
                    port: *port,
                    endpoint: *gone,
                });
            }
        }
    }
    out.into_iter().collect()
}

/// Deletes the entries (`conntrack -D`, run in the netns the caller is
/// in). None matching is no error; a missing `conntrack` is reported once.
pub fn flush(stale: &[Stale]) -> std::io::Result<usize> {
    let mut deleted = 0;
    for s in stale {
        let family = if s.vip.is_ipv4() { "ipv4" } else { "ipv6" };
        let out = std::process::Command::new("conntrack")
            .args(["-D", "-f", family, "-p", "udp", "--orig-dst"])
            .arg(s.vip.to_string())
            .args(["--dport", &s.port.to_string(), "--reply-src"])
            .arg(s.endpoint.to_string())
            .output()?;
        deleted += deleted_count(&String::from_utf8_lossy(&out.stderr));
    }
    Ok(deleted)
}

/// From "conntrack v1.4.7 (conntrack-tools): N flow entries have been
/// deleted." (stderr; exit 1 when none were).
fn deleted_count(said: &str) -> usize {
    let words: Vec<&str> = said.split_whitespace().collect();
    words
        .windows(2)
        .find(|w| w[1] == "flow")
        .and_then(|w| w[0].parse::<usize>().ok())
        .unwrap_or(0)
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_count_is_read_past_the_version_prefix() {
        let said = "conntrack v1.4.7 (conntrack-tools): 3 flow entries have been deleted.\n";
        assert_eq!(super::deleted_count(said), 3);
        assert_eq!(
            super::deleted_count(
                "conntrack v1.4.7 (conntrack-tools): 0 flow entries have been deleted.\n"
            ),
            0
        );
    }

    use super::*;
    use crate::resource::Endpoint;

    #[test]
    fn udp_flows_to_endpoints_taken_out_are_stale() {
        let c = |s: &str| ("c".to_string(), s.to_string());
        let before = NftObs {
            host: false,
            rules: vec![
                c("nl svc dns to 10.96.0.10 udp/53"),
                c("nl svc dns to 10.96.0.10 tcp/53"),
                c("nl svc dns ep a 10.97.0.11:5353"),
                c("nl svc dns ep b 10.97.0.12:5353"),
                c("nl svc web to 10.96.0.20 tcp/80"),
                c("nl svc web ep a 10.97.0.11:8080"),
                c("nl svc v6 to fd00::10 udp/53"),
                c("nl svc v6 ep a [fd00::11]:53"),
            ],
            base_ok: true,
            local: vec![],
            handles: vec![],
            by_service: Default::default(),
            stamp: None,
        };
        let mut dns = ServiceRes::recorded("dns".into(), false);
        dns.endpoints = vec![Endpoint {
            name: "b".into(),
            v4: Some("10.97.0.12".parse().unwrap()),
            v6: None,
        }];
        // Only changed services are looked at: their rules are what moved.
        let only_dns = stale(&before, std::slice::from_ref(&dns), &["dns"]);
        assert_eq!(only_dns.len(), 1, "{only_dns:?}");
        // web (TCP only) lost its endpoint: nothing to flush; v6 is gone whole.
        let got = stale(&before, &[dns], &["dns", "web", "v6"]);
        assert_eq!(
            got,
            [
                Stale {
                    vip: "10.96.0.10".parse().unwrap(),
                    port: 53,
                    endpoint: "10.97.0.11".parse().unwrap()
                },
                Stale {
                    vip: "fd00::10".parse().unwrap(),
                    port: 53,
                    endpoint: "fd00::11".parse().unwrap()
                },
            ]
        );
    }
}
