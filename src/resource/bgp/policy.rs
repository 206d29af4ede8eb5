//! Route policy. gobgpd assigns policies only globally, so each use of a
//! policy by a peer compiles to a gobgpd policy of its own,
//! `nl/<import|export>/<peer>/<policy>`, whose statements also match that
//! peer's neighbor set; the global lists hold them in peer order. The
//! compiled form is what is diffed: gobgpd's own is normalized into it.

use super::BgpRes;
use crate::diff::field::{Field, Side, Value};
use crate::diff::{Action, Diff, FieldChange};
use crate::model::{Bgp, BgpPolicy, Community, Fam, PrefixMatch};
use crate::observed::Observed;
use crate::resource::{DiffCx, Kind, Resource, ResourceKey};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::net::IpAddr;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Verdict {
    Accept,
    Reject,
    /// On to the next statement (or policy).
    Next,
}

/// One gobgpd statement, its sets resolved.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoStmt {
    /// Empty: any prefix.
    pub prefixes: Vec<PrefixMatch>,
    /// Empty: any communities.
    pub communities: Vec<Community>,
    pub neighbor: Vec<IpAddr>,
    pub verdict: Verdict,
    pub set_communities: Vec<Community>,
    pub local_pref: Option<u32>,
    pub med: Option<u32>,
    /// (AS, times).
    pub prepend: Option<(u32, u32)>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GoPolicy {
    pub name: String,
    pub statements: Vec<GoStmt>,
}

impl GoStmt {
    /// Sets in one order: gobgpd returns a prefix set sorted, whatever
    /// order it was given.
    pub fn canonical(mut self) -> GoStmt {
        self.prefixes.sort();
        self.prefixes.dedup();
        self.communities.sort();
        self.communities.dedup();
        self.neighbor.sort();
        self.set_communities.sort();
        self.set_communities.dedup();
        self
    }
}

pub fn instance_name(dir: &str, peer: &str, policy: &str) -> String {
    format!("nl/{dir}/{peer}/{policy}")
}

/// (direction, peer, policy) of a compiled policy's name.
pub fn parse_instance(name: &str) -> Option<(&str, &str, &str)> {
    let mut it = name.strip_prefix("nl/")?.splitn(3, '/');
    Some((it.next()?, it.next()?, it.next()?))
}

fn statements(p: &BgpPolicy, peer: IpAddr, asn: u32) -> Vec<GoStmt> {
    let mut out = vec![];
    for t in &p.terms {
        // A gobgpd prefix set holds one family: a mixed term is two statements.
        let mut groups: Vec<Vec<PrefixMatch>> = vec![];
        for fam in [Fam::Ipv4, Fam::Ipv6] {
            let g: Vec<PrefixMatch> = t
                .prefixes
                .iter()
                .filter(|m| Fam::of_net(&m.net) == fam)
                .copied()
                .collect();
            if !g.is_empty() {
                groups.push(g);
            }
        }
        if groups.is_empty() {
            groups.push(vec![]);
        }
        for prefixes in groups {
            out.push(
                GoStmt {
                    prefixes,
                    communities: t.communities.clone(),
                    neighbor: vec![peer],
                    verdict: if t.accept {
                        Verdict::Accept
                    } else {
                        Verdict::Reject
                    },
                    set_communities: if t.accept {
                        t.set_communities.clone()
                    } else {
                        vec![]
                    },
                    local_pref: t.local_pref.filter(|_| t.accept),
                    med: t.med.filter(|_| t.accept),
                    prepend: t.prepend.filter(|_| t.accept).map(|n| (asn, n)),
                }
                .canonical(),
            );
        }
    }
    if let Some(d) = p.default {
        out.push(GoStmt {
            prefixes: vec![],
            communities: vec![],
            neighbor: vec![peer],
            verdict: if d { Verdict::Accept } else { Verdict::Reject },
            set_communities: vec![],
            local_pref: None,
            med: None,
            prepend: None,
        });
    }
    out
}

/// The global import and export lists the model asks for.
pub fn compile(b: &Bgp) -> (Vec<GoPolicy>, Vec<GoPolicy>) {
    let mut import = vec![];
    let mut export = vec![];
    for peer in b.peers.values() {
        for (dir, names, into) in [
            ("import", &peer.import, &mut import),
            ("export", &peer.export, &mut export),
        ] {
            for n in names {
                if let Some(p) = b.policies.get(n) {
                    into.push(GoPolicy {
                        name: instance_name(dir, &peer.name, n),
                        statements: statements(p, peer.address, b.asn),
                    });
                }
            }
        }
    }
    (import, export)
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyRes {
    pub name: String,
    pub terms: usize,
    /// Its compiled uses, one per (direction, peer).
    pub instances: Vec<GoPolicy>,
}

impl PolicyRes {
    pub fn from_model(p: &BgpPolicy, b: &Bgp) -> PolicyRes {
        let (import, export) = compile(b);
        let instances = import
            .into_iter()
            .chain(export)
            .filter(|g| parse_instance(&g.name).is_some_and(|(_, _, n)| n == p.name))
            .collect();
        PolicyRes {
            name: p.name.clone(),
            terms: p.terms.len(),
            instances,
        }
    }

    fn uses(&self) -> Vec<String> {
        self.instances
            .iter()
            .filter_map(|g| parse_instance(&g.name).map(|(d, p, _)| format!("{d} of {p}")))
            .collect()
    }
}

/// This policy's compiled uses live in gobgpd, by name.
fn live_instances<'a>(
    name: &str,
    o: &'a crate::observed::BgpObs,
) -> BTreeMap<&'a str, &'a GoPolicy> {
    o.import
        .iter()
        .chain(&o.export)
        .filter(|g| parse_instance(&g.name).is_some_and(|(_, _, n)| n == name))
        .map(|g| (g.name.as_str(), g))
        .collect()
}

impl Kind for PolicyRes {
    fn key(&self) -> ResourceKey {
        ResourceKey::Bgp(super::BgpKey::Policy {
            name: self.name.clone(),
        })
    }

    fn kind_name(&self) -> String {
        "bgp policy".into()
    }

    fn title(&self) -> String {
        self.name.clone()
    }

    fn delete_rank(&self) -> usize {
        1
    }

    fn diff(&self, r: &Resource, cx: &DiffCx, out: &mut Diff) {
        let have = super::live(cx)
            .map(|b| live_instances(&self.name, b))
            .unwrap_or_default();
        if have.is_empty() {
            if !self.instances.is_empty() {
                out.push(Action::Create, r);
            }
            return;
        }
        let mut fields = vec![];
        for want in &self.instances {
            let (d, p, _) = parse_instance(&want.name).unwrap_or_default();
            match have.get(want.name.as_str()) {
                Some(h) if *h == want => {}
                Some(h) => {
                    // Which statements (terms, and the default last) differ.
                    let n = want.statements.len().max(h.statements.len());
                    let differ: Vec<String> = (0..n)
                        .filter(|i| want.statements.get(*i) != h.statements.get(*i))
                        .map(|i| (i + 1).to_string())
                        .collect();
                    fields.push(FieldChange::new(
                        Side::Own,
                        Field::Statements,
                        Some(Value::Text(format!(
                            "{d} of {p}: {} statement(s) in gobgpd",
                            h.statements.len()
                        ))),
                        Some(Value::Text(format!(
                            "{} in the files (differs at statement{} {})",
                            want.statements.len(),
                            if differ.len() == 1 { "" } else { "s" },
                            differ.join(", ")
                        ))),
                    ))
                }
                None => fields.push(FieldChange::new(
                    Side::Own,
                    Field::Statements,
                    None,
                    Some(Value::Text(format!("{d} of {p}"))),
                )),
            }
        }
        for name in have.keys() {
            if !self.instances.iter().any(|w| w.name == *name) {
                let (d, p, _) = parse_instance(name).unwrap_or_default();
                fields.push(FieldChange::new(
                    Side::Own,
                    Field::Statements,
                    Some(Value::Text(format!("{d} of {p}"))),
                    None,
                ));
            }
        }
        if !fields.is_empty() {
            let why = "updates gobgpd's policy and soft-resets the peers (sessions stay up)";
            out.change(Action::Update, r, None, fields, Some(why.into()));
        }
    }

    fn details(&self, out: &mut String) {
        let uses = self.uses();
        let _ = writeln!(
            out,
            "      {} term(s), used as: {}",
            self.terms,
            if uses.is_empty() {
                "nothing".to_string()
            } else {
                uses.join(", ")
            }
        );
    }

    fn live(&self, o: &Observed) -> String {
        let n = o
            .bgp
            .as_ref()
            .map(|b| live_instances(&self.name, b).len())
            .unwrap_or(0);
        let uses = self.uses();
        format!(
            "{} term(s); used as {}; {n} of {} in gobgpd",
            self.terms,
            if uses.is_empty() {
                "nothing".to_string()
            } else {
                uses.join(", ")
            },
            self.instances.len()
        )
    }
}

/// Compiled policies in gobgpd of a policy the files no longer declare.
pub(super) fn prune(cx: &DiffCx, out: &mut Diff) {
    if !cx
        .desired
        .contains(&ResourceKey::Bgp(super::BgpKey::Speaker))
    {
        return;
    }
    let Some(b) = super::live(cx) else {
        return;
    };
    let mut gone: Vec<&str> = b
        .import
        .iter()
        .chain(&b.export)
        .filter_map(|g| parse_instance(&g.name).map(|(_, _, n)| n))
        .filter(|n| {
            !cx.desired
                .contains(&ResourceKey::Bgp(super::BgpKey::Policy {
                    name: n.to_string(),
                }))
        })
        .collect();
    gone.sort();
    gone.dedup();
    for n in gone {
        out.delete(Resource::Bgp(BgpRes::Policy(PolicyRes {
            name: n.to_string(),
            terms: 0,
            instances: vec![],
        })));
    }
}
