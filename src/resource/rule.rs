//! Policy routing rules in the topology's netns, owned like routes.

use super::{DiffCx, Kind, Resource, ResourceKey};
use crate::diff::{Action, Diff};
use crate::model::{Family, Rule};
use crate::observed::Observed;
use crate::ownership::{Ledger, NETLOOM_PROTO, foreign, proto_name};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;

/// A rule is its own key: the kernel has no identity for it but its fields.
#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct RuleKey {
    pub family: Family,
    pub priority: u32,
    #[schemars(with = "Option<String>")]
    pub from: Option<IpNet>,
    #[schemars(with = "Option<String>")]
    pub to: Option<IpNet>,
    pub iif: Option<String>,
    pub oif: Option<String>,
    pub table: u32,
}

impl RuleKey {
    pub fn of(r: &Rule) -> RuleKey {
        RuleKey {
            family: r.family,
            priority: r.priority,
            from: r.from,
            to: r.to,
            iif: r.iif.clone(),
            oif: r.oif.clone(),
            table: r.table,
        }
    }
}

impl fmt::Display for RuleKey {
    /// Reads like `ip rule`: `1000: from 10.0.0.0/8 iif br0 lookup 100`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.family == Family::Ipv6 {
            write!(f, "-6 ")?;
        }
        write!(f, "{}: from ", self.priority)?;
        match &self.from {
            Some(n) => write!(f, "{n}")?,
            None => write!(f, "all")?,
        }
        if let Some(n) = &self.to {
            write!(f, " to {n}")?;
        }
        if let Some(i) = &self.iif {
            write!(f, " iif {i}")?;
        }
        if let Some(o) = &self.oif {
            write!(f, " oif {o}")?;
        }
        write!(f, " lookup {}", self.table)
    }
}

impl Kind for RuleKey {
    fn key(&self) -> ResourceKey {
        ResourceKey::Rule(self.clone())
    }

    fn kind_name(&self) -> String {
        "rule".into()
    }

    fn title(&self) -> String {
        self.to_string()
    }

    fn delete_rank(&self) -> usize {
        1
    }

    fn diff(&self, r: &Resource, cx: &DiffCx, out: &mut Diff) {
        let observed = cx.observed;
        let Some(o) = observed.rules.iter().find(|o| &o.key == self) else {
            return out.push(Action::Create, r);
        };
        if o.protocol == NETLOOM_PROTO && observed.ledger.rules.contains(self) {
            return;
        }
        out.conflict(
            r,
            format!(
                "rule `{self}` already exists and this topology does not own it (protocol {}{})",
                proto_name(o.protocol),
                foreign(o.protocol)
            ),
            "remove that rule, or give this one another priority".into(),
        )
    }

    fn claim(&self, ledger: &mut Ledger, _: &Observed) -> bool {
        ledger.rules.insert(self.clone())
    }

    fn release(&self, ledger: &mut Ledger) -> bool {
        ledger.rules.remove(self)
    }

    fn settle(&self, _: &Ledger, ledger: &mut Ledger) {
        ledger.rules.insert(self.clone());
    }

    fn live(&self, o: &Observed) -> String {
        (if o.rules.iter().any(|x| &x.key == self) {
            "present"
        } else {
            "absent"
        })
        .into()
    }
}

/// Ledgered rules the files no longer hold.
pub(super) fn prune(cx: &DiffCx, out: &mut Diff) {
    for o in &cx.observed.rules {
        if o.protocol == NETLOOM_PROTO
            && cx.observed.ledger.rules.contains(&o.key)
            && !cx.desired.contains(&ResourceKey::Rule(o.key.clone()))
        {
            out.delete(Resource::Rule(o.key.clone()));
        }
    }
}
