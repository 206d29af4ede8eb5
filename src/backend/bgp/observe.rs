//! Reading gobgpd back: peers, local and learned paths, and the global
//! policy lists normalized into netloom's compiled form (so a policy is
//! diffed as it is, not as netloom last sent it).

use super::client::Gobgp;
use super::pb;
use crate::model::{Community, Fam, PrefixMatch, Secret};
use crate::observed::{BgpLearned, BgpObs, BgpPeerObs};
use crate::resource::bgp::Verdict;
use crate::resource::{GoPolicy, GoStmt};
use ipnet::IpNet;
use std::collections::HashMap;
use std::net::IpAddr;
use tonic::Status;

fn state_name(s: i32) -> &'static str {
    match s {
        1 => "idle",
        2 => "connect",
        3 => "active",
        4 => "opensent",
        5 => "openconfirm",
        6 => "established",
        _ => "unknown",
    }
}

fn family_of(f: &Option<pb::Family>) -> Option<Fam> {
    match f.as_ref().map(|f| (f.afi, f.safi)) {
        Some((pb::AFI_IP, pb::SAFI_UNICAST)) => Some(Fam::Ipv4),
        Some((pb::AFI_IP6, pb::SAFI_UNICAST)) => Some(Fam::Ipv6),
        _ => None,
    }
}

/// The next hop a path carries (NEXT_HOP, or MP_REACH's first), from
/// the binary attributes when gobgpd sent those, else from the typed ones.
pub fn next_hop(p: &pb::Path) -> Option<IpAddr> {
    if !p.pattrs_binary.is_empty() {
        return p.pattrs_binary.iter().find_map(|a| wire_next_hop(a));
    }
    p.pattrs.iter().find_map(|a| {
        if let Some(n) = a.unpack::<pb::NextHopAttribute>("NextHopAttribute") {
            return n.next_hop.parse().ok();
        }
        a.unpack::<pb::MpReachNlriAttribute>("MpReachNLRIAttribute")
            .and_then(|m| m.next_hops.first().and_then(|h| h.parse().ok()))
    })
}

/// Decodes one path attribute in BGP's wire format (RFC 4271 4.3: flags,
/// type, a length of one octet or two with the extended-length flag) and
/// returns the next hop if it is NEXT_HOP (type 3) or MP_REACH_NLRI (type
/// 14, RFC 4760: AFI, SAFI, next-hop length, next hops; an IPv6 one may be
/// followed by a link-local, which is not the one routed to).
fn wire_next_hop(a: &[u8]) -> Option<IpAddr> {
    const EXTENDED_LENGTH: u8 = 0x10;
    let (&flags, rest) = a.split_first()?;
    let (&kind, rest) = rest.split_first()?;
    let (len, value) = if flags & EXTENDED_LENGTH != 0 {
        let (l, v) = rest.split_at_checked(2)?;
        (u16::from_be_bytes([l[0], l[1]]) as usize, v)
    } else {
        let (&l, v) = rest.split_first()?;
        (l as usize, v)
    };
    let value = value.get(..len)?;
    let addr = |b: &[u8]| -> Option<IpAddr> {
        match b.len() {
            4 => Some(IpAddr::from(<[u8; 4]>::try_from(b).ok()?)),
            16 | 32 => Some(IpAddr::from(<[u8; 16]>::try_from(&b[..16]).ok()?)),
            _ => None,
        }
    };
    match kind {
        3 => addr(value),
        14 => {
            let n = *value.get(3)? as usize;
            addr(value.get(4..4 + n)?)
        }
        _ => None,
    }
}

fn prefix_of(d: &pb::Destination) -> Option<IpNet> {
    d.prefix.parse().ok()
}

fn is_local(p: &pb::Path) -> bool {
    p.neighbor_ip == "<nil>" || p.neighbor_ip.is_empty()
}

pub async fn peers(c: &mut Gobgp) -> Result<Vec<BgpPeerObs>, Status> {
    let mut out = vec![];
    for p in c.peers().await? {
        let conf = p.conf.clone().unwrap_or_default();
        let Ok(address) = conf.neighbor_address.parse::<IpAddr>() else {
            continue;
        };
        let state = p.state.clone().unwrap_or_default();
        let timers = p.timers.clone().unwrap_or_default();
        let mut families = vec![];
        let (mut received, mut advertised, mut max_prefixes) = (0, 0, None);
        for a in &p.afi_safis {
            let cfg = a.config.clone().unwrap_or_default();
            if let Some(f) = family_of(&cfg.family)
                && cfg.enabled
            {
                families.push(f);
            }
            if let Some(s) = &a.state {
                received += s.received;
                advertised += s.advertised;
            }
            if let Some(l) = a.prefix_limits.as_ref().filter(|l| l.max_prefixes > 0) {
                max_prefixes = Some(l.max_prefixes);
            }
        }
        families.sort();
        families.dedup();
        let established = state.session_state == pb::SESSION_ESTABLISHED;
        let multihop = p
            .ebgp_multihop
            .as_ref()
            .filter(|m| m.enabled)
            .map(|m| m.multihop_ttl);
        out.push(BgpPeerObs {
            address,
            asn: conf.peer_asn,
            password: (!conf.auth_password.is_empty()).then(|| Secret::new(conf.auth_password)),
            hold_time: timers
                .config
                .as_ref()
                .map(|t| t.hold_time as u32)
                .unwrap_or(0),
            passive: p.transport.as_ref().is_some_and(|t| t.passive_mode),
            multihop,
            families,
            max_prefixes,
            state: state_name(state.session_state).to_string(),
            up_since: timers
                .state
                .as_ref()
                .and_then(|s| s.uptime.as_ref())
                .map(|t| t.seconds)
                .filter(|_| established),
            received,
            // Filled in from the RIB (`rib`): gobgpd's own counter ignores
            // import policy.
            accepted: 0,
            advertised,
        });
    }
    out.sort_by_key(|p| p.address);
    Ok(out)
}

/// Local paths (announcements) and best learned paths of both families;
/// and per peer, how many prefixes import policy let into the RIB (what
/// it rejects stays in adj-in only), counted in `accepted`.
pub async fn rib(
    c: &mut Gobgp,
    into: &mut BgpObs,
    accepted: &mut HashMap<IpAddr, u64>,
) -> Result<(), Status> {
    for v6 in [false, true] {
        for d in c.paths(pb::TABLE_GLOBAL, "", v6).await? {
            let Some(prefix) = prefix_of(&d) else {
                continue;
            };
            let mut from: Vec<IpAddr> = d
                .paths
                .iter()
                .filter_map(|p| p.neighbor_ip.parse().ok())
                .collect();
            from.sort();
            from.dedup();
            for a in from {
                *accepted.entry(a).or_default() += 1;
            }
            for p in &d.paths {
                if is_local(p) {
                    into.local.push(prefix);
                } else if p.best
                    && !p.is_nexthop_invalid
                    && let (Some(nexthop), Ok(peer)) = (next_hop(p), p.neighbor_ip.parse())
                {
                    into.best.push(BgpLearned {
                        prefix,
                        nexthop,
                        peer,
                    });
                }
            }
        }
    }
    into.local.sort();
    into.local.dedup();
    into.best.sort();
    Ok(())
}

/// The global import and export lists, each policy's statements with their
/// sets resolved.
pub async fn policies(c: &mut Gobgp, into: &mut BgpObs) -> Result<(), Status> {
    let mut prefixes: HashMap<String, Vec<PrefixMatch>> = HashMap::new();
    for s in c.defined_sets(pb::DEFINED_PREFIX).await? {
        let list = s
            .prefixes
            .iter()
            .filter_map(|p| {
                Some(PrefixMatch {
                    net: p.ip_prefix.parse().ok()?,
                    min: p.mask_length_min as u8,
                    max: p.mask_length_max as u8,
                })
            })
            .collect();
        prefixes.insert(s.name, list);
    }
    let mut neighbors: HashMap<String, Vec<IpAddr>> = HashMap::new();
    for s in c.defined_sets(pb::DEFINED_NEIGHBOR).await? {
        let list = s
            .list
            .iter()
            .filter_map(|a| a.parse::<IpNet>().ok().map(|n| n.addr()))
            .collect();
        neighbors.insert(s.name, list);
    }
    let mut communities: HashMap<String, Vec<Community>> = HashMap::new();
    for s in c.defined_sets(pb::DEFINED_COMMUNITY).await? {
        // gobgpd keeps community matches as regexps: "^65001:100$".
        let list = s
            .list
            .iter()
            .filter_map(|x| Community::parse(x.trim_start_matches('^').trim_end_matches('$')))
            .collect();
        communities.insert(s.name, list);
    }
    for (dir, out) in [
        (pb::DIR_IMPORT, &mut into.import),
        (pb::DIR_EXPORT, &mut into.export),
    ] {
        for p in c.assignment(dir).await?.policies {
            let statements = p
                .statements
                .iter()
                .map(|s| {
                    let cond = s.conditions.clone().unwrap_or_default();
                    let act = s.actions.clone().unwrap_or_default();
                    GoStmt {
                        prefixes: resolve(&cond.prefix_set, &prefixes),
                        communities: resolve(&cond.community_set, &communities),
                        neighbor: resolve(&cond.neighbor_set, &neighbors),
                        verdict: match act.route_action {
                            pb::ROUTE_ACCEPT => Verdict::Accept,
                            pb::ROUTE_REJECT => Verdict::Reject,
                            _ => Verdict::Next,
                        },
                        set_communities: act
                            .community
                            .map(|c| {
                                c.communities
                                    .iter()
                                    .filter_map(|x| Community::parse(x))
                                    .collect()
                            })
                            .unwrap_or_default(),
                        local_pref: act.local_pref.map(|l| l.value),
                        med: act.med.map(|m| m.value as u32),
                        prepend: act.as_prepend.map(|a| (a.asn, a.repeat)),
                    }
                    .canonical()
                })
                .collect();
            out.push(GoPolicy {
                name: p.name,
                statements,
            });
        }
    }
    Ok(())
}

fn resolve<T: Clone>(m: &Option<pb::MatchSet>, map: &HashMap<String, Vec<T>>) -> Vec<T> {
    m.as_ref()
        .and_then(|m| map.get(&m.name).cloned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::wire_next_hop;
    use std::net::IpAddr;

    #[test]
    fn next_hops_are_read_from_wire_attributes() {
        // ORIGIN (type 1) carries no next hop.
        assert_eq!(wire_next_hop(&[0x40, 1, 1, 0]), None);
        let v4 = [0x40, 3, 4, 10, 250, 1, 1];
        assert_eq!(wire_next_hop(&v4), Some("10.250.1.1".parse().unwrap()));
        // MP_REACH_NLRI with extended length, a global and a link-local
        // next hop, then one NLRI (fd00:1::/64).
        let global: IpAddr = "fd00::2".parse().unwrap();
        let IpAddr::V6(g) = global else { panic!() };
        let ll: std::net::Ipv6Addr = "fe80::1".parse().unwrap();
        let mut value = vec![0, 2, 1, 32];
        value.extend(g.octets());
        value.extend(ll.octets());
        value.push(0);
        value.extend([64, 0xfd, 0, 0, 1, 0, 0, 0, 0]);
        let mut a = vec![0x90, 14];
        a.extend((value.len() as u16).to_be_bytes());
        a.extend(&value);
        assert_eq!(wire_next_hop(&a), Some(global));
        // Truncated input is no next hop, not a panic.
        for cut in 0..a.len() {
            let _ = wire_next_hop(&a[..cut]);
        }
        assert_eq!(wire_next_hop(&a[..20]), None);
    }
}
