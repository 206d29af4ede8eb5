//! netloom's compiled policies as gobgpd messages: one SetPolicies with
//! every defined set and policy, then the two global assignments.

use super::pb;
use crate::model::{Community, Fam};
use crate::resource::bgp::Verdict;
use crate::resource::{GoPolicy, GoStmt};

fn host_net(a: std::net::IpAddr) -> String {
    match a {
        std::net::IpAddr::V4(x) => format!("{x}/32"),
        std::net::IpAddr::V6(x) => format!("{x}/128"),
    }
}

fn matching(name: &str) -> Option<pb::MatchSet> {
    Some(pb::MatchSet {
        r#type: pb::MATCH_ANY,
        name: name.to_string(),
    })
}

fn statement(name: String, s: &GoStmt, sets: &mut Vec<pb::DefinedSet>) -> pb::Statement {
    let mut cond = pb::Conditions::default();
    if !s.prefixes.is_empty() {
        let set = format!("{name}/p");
        sets.push(pb::DefinedSet {
            defined_type: pb::DEFINED_PREFIX,
            name: set.clone(),
            list: vec![],
            prefixes: s
                .prefixes
                .iter()
                .map(|m| pb::Prefix {
                    ip_prefix: m.net.to_string(),
                    mask_length_min: u32::from(m.min),
                    mask_length_max: u32::from(m.max),
                })
                .collect(),
        });
        cond.prefix_set = matching(&set);
    }
    if !s.communities.is_empty() {
        let set = format!("{name}/c");
        sets.push(pb::DefinedSet {
            defined_type: pb::DEFINED_COMMUNITY,
            name: set.clone(),
            list: s.communities.iter().map(Community::to_string).collect(),
            prefixes: vec![],
        });
        cond.community_set = matching(&set);
    }
    if !s.neighbor.is_empty() {
        let set = format!("{name}/n");
        sets.push(pb::DefinedSet {
            defined_type: pb::DEFINED_NEIGHBOR,
            name: set.clone(),
            list: s.neighbor.iter().map(|a| host_net(*a)).collect(),
            prefixes: vec![],
        });
        cond.neighbor_set = matching(&set);
    }
    let actions = pb::Actions {
        route_action: match s.verdict {
            Verdict::Accept => pb::ROUTE_ACCEPT,
            Verdict::Reject => pb::ROUTE_REJECT,
            Verdict::Next => pb::ROUTE_NONE,
        },
        community: (!s.set_communities.is_empty()).then(|| pb::CommunityAction {
            r#type: pb::COMMUNITY_ADD,
            communities: s.set_communities.iter().map(Community::to_string).collect(),
        }),
        med: s.med.map(|m| pb::MedAction {
            r#type: pb::MED_REPLACE,
            value: i64::from(m),
        }),
        as_prepend: s.prepend.map(|(asn, repeat)| pb::AsPrependAction {
            asn,
            repeat,
            use_left_most: false,
        }),
        local_pref: s.local_pref.map(|value| pb::LocalPrefAction { value }),
    };
    pb::Statement {
        name,
        conditions: Some(cond),
        actions: Some(actions),
    }
}

/// The whole policy configuration, and the import and export assignments.
pub fn policies(
    import: &[GoPolicy],
    export: &[GoPolicy],
) -> (pb::SetPoliciesRequest, [pb::PolicyAssignment; 2]) {
    let mut req = pb::SetPoliciesRequest::default();
    for p in import.iter().chain(export) {
        let mut statements = vec![];
        for (i, s) in p.statements.iter().enumerate() {
            statements.push(statement(
                format!("{}/{i}", p.name),
                s,
                &mut req.defined_sets,
            ));
        }
        req.policies.push(pb::Policy {
            name: p.name.clone(),
            statements,
        });
    }
    let assign = |dir, list: &[GoPolicy]| pb::PolicyAssignment {
        name: "global".into(),
        direction: dir,
        policies: list
            .iter()
            .map(|p| pb::Policy {
                name: p.name.clone(),
                statements: vec![],
            })
            .collect(),
        default_action: pb::ROUTE_ACCEPT,
    };
    (
        req,
        [
            assign(pb::DIR_IMPORT, import),
            assign(pb::DIR_EXPORT, export),
        ],
    )
}

/// A local path for `prefix`, next hop self.
pub fn announcement(prefix: ipnet::IpNet) -> pb::Path {
    let v6 = Fam::of_net(&prefix) == Fam::Ipv6;
    let nlri = pb::Any::pack(
        "IPAddressPrefix",
        &pb::IpAddressPrefix {
            prefix_len: u32::from(prefix.prefix_len()),
            prefix: prefix.addr().to_string(),
        },
    );
    let origin = pb::Any::pack("OriginAttribute", &pb::OriginAttribute { origin: 0 });
    // An unspecified next hop is "self": gobgpd puts its session address.
    let hop = if v6 {
        pb::Any::pack(
            "MpReachNLRIAttribute",
            &pb::MpReachNlriAttribute {
                family: Some(pb::Family::unicast(true)),
                next_hops: vec!["::".into()],
                nlris: vec![nlri.clone()],
            },
        )
    } else {
        pb::Any::pack(
            "NextHopAttribute",
            &pb::NextHopAttribute {
                next_hop: "0.0.0.0".into(),
            },
        )
    };
    pb::Path {
        nlri: Some(nlri),
        pattrs: vec![origin, hop],
        family: Some(pb::Family::unicast(v6)),
        ..Default::default()
    }
}
