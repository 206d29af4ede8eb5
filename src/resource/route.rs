//! Routes in the topology's netns, owned through protocol 78 and the ledger.

use super::{DiffCx, Kind, Resource, ResourceKey};
use crate::diff::field::{Field, Side, Value, field};
use crate::diff::{Action, Diff};
use crate::model::Family;
use crate::observed::Observed;
use crate::ownership::{Ledger, NETLOOM_PROTO, foreign, proto_name};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt::{self, Write as _};
use std::net::IpAddr;

#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
pub struct RouteKey {
    pub table: u32,
    #[schemars(with = "String")]
    pub to: IpNet,
    pub metric: u32,
}

impl fmt::Display for RouteKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} table {} metric {}", self.to, self.table, self.metric)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RouteRes {
    #[serde(flatten)]
    pub key: RouteKey,
    pub via: Option<IpAddr>,
    pub dev: Option<String>,
    /// Several next hops (ECMP), in canonical order; then `via` and `dev`
    /// are `None`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nexthops: Vec<NextHop>,
}

/// One next hop of a multipath route.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct NextHop {
    pub via: IpAddr,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// 1 to 256, as `ip route … nexthop … weight N`.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub weight: u16,
}

fn one() -> u16 {
    1
}

fn is_one(w: &u16) -> bool {
    *w == 1
}

impl fmt::Display for NextHop {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.via)?;
        if let Some(d) = &self.dev {
            write!(f, " dev {d}")?;
        }
        if self.weight != 1 {
            write!(f, " weight {}", self.weight)?;
        }
        Ok(())
    }
}

/// ` via A`, ` dev D`, or ` via A, B weight 2` after a route's prefix.
pub fn write_gateways(s: &mut String, via: Option<IpAddr>, dev: &Option<String>, hops: &[NextHop]) {
    if let Some(v) = via {
        let _ = write!(s, " via {v}");
    }
    if let Some(d) = dev {
        let _ = write!(s, " dev {d}");
    }
    if !hops.is_empty() {
        let hops: Vec<String> = hops.iter().map(|h| h.to_string()).collect();
        let _ = write!(s, " via {}", hops.join(", "));
    }
}

/// Next hops as the plan shows them: comma-separated, in canonical order.
pub fn nexthops_value(hops: &[NextHop]) -> Option<Value> {
    (!hops.is_empty()).then(|| Value::List(hops.iter().map(|h| h.to_string()).collect()))
}

/// Whether observed next hops are the desired ones. Without `dev` the
/// kernel picks the device from the gateway, so an observed `dev` counts
/// only where one was asked for.
pub fn same_nexthops(observed: &[NextHop], desired: &[NextHop]) -> bool {
    observed.len() == desired.len()
        && observed.iter().zip(desired).all(|(o, d)| {
            o.via == d.via && o.weight == d.weight && (d.dev.is_none() || o.dev == d.dev)
        })
}

impl Kind for RouteRes {
    fn key(&self) -> ResourceKey {
        ResourceKey::Route(self.key.clone())
    }

    fn kind_name(&self) -> String {
        "route".into()
    }

    fn title(&self) -> String {
        let mut s = if self.key.to.prefix_len() == 0 {
            "default".to_string()
        } else {
            self.key.to.to_string()
        };
        write_gateways(&mut s, self.via, &self.dev, &self.nexthops);
        let _ = write!(s, " table {}", self.key.table);
        if self.key.metric != Family::of_net(&self.key.to).default_metric() {
            let _ = write!(s, " metric {}", self.key.metric);
        }
        s
    }

    fn delete_rank(&self) -> usize {
        2
    }

    fn diff(&self, r: &Resource, cx: &DiffCx, out: &mut Diff) {
        let d = self;
        let observed = cx.observed;
        let Some(o) = observed.routes.iter().find(|o| o.route.key == d.key) else {
            return out.push(Action::Create, r);
        };
        if o.protocol == NETLOOM_PROTO && observed.ledger.routes.contains(&d.key) {
            let mut f = vec![];
            let via = |v: Option<IpAddr>| v.map(Value::Addr);
            field(&mut f, Side::Own, Field::Via, via(o.route.via), via(d.via));
            // Without `dev` the kernel picks the device from the gateway.
            if d.dev.is_some() {
                let dev = |v: &Option<String>| v.clone().map(Value::Text);
                field(
                    &mut f,
                    Side::Own,
                    Field::Dev,
                    dev(&o.route.dev),
                    dev(&d.dev),
                );
            }
            if !same_nexthops(&o.route.nexthops, &d.nexthops) {
                f.push(crate::diff::FieldChange::new(
                    Side::Own,
                    Field::Nexthops,
                    nexthops_value(&o.route.nexthops),
                    nexthops_value(&d.nexthops),
                ));
            }
            if !f.is_empty() {
                let cur = Resource::Route(o.route.clone());
                out.change(Action::Update, r, Some(cur), f, None);
            }
            return;
        }
        out.conflict(
            r,
            format!(
                "a route to {} (table {}, metric {}) already exists and this topology does not own it (protocol {}{})",
                d.key.to,
                d.key.table,
                d.key.metric,
                proto_name(o.protocol),
                foreign(o.protocol)
            ),
            "remove that route, or give this one another metric or table".into(),
        )
    }

    fn claim(&self, ledger: &mut Ledger, _: &Observed) -> bool {
        ledger.routes.insert(self.key.clone())
    }

    fn release(&self, ledger: &mut Ledger) -> bool {
        ledger.routes.remove(&self.key)
    }

    fn settle(&self, _: &Ledger, ledger: &mut Ledger) {
        ledger.routes.insert(self.key.clone());
    }

    fn live(&self, o: &Observed) -> String {
        let Some(x) = o.routes.iter().find(|x| x.route.key == self.key) else {
            return "absent".into();
        };
        let mut s = String::from("present");
        if let Some(v) = x.route.via {
            let _ = write!(s, ", via {v}");
        }
        if let Some(d) = &x.route.dev {
            let _ = write!(s, ", dev {d}");
        }
        if !x.route.nexthops.is_empty() {
            let hops: Vec<String> = x.route.nexthops.iter().map(|h| h.to_string()).collect();
            let _ = write!(s, ", via {}", hops.join(", "));
        }
        let _ = write!(s, ", protocol {}", proto_name(x.protocol));
        s
    }
}

/// Ledgered routes the files no longer hold.
pub(super) fn prune(cx: &DiffCx, out: &mut Diff) {
    for o in &cx.observed.routes {
        if o.protocol == NETLOOM_PROTO
            && cx.observed.ledger.routes.contains(&o.route.key)
            && !cx
                .desired
                .contains(&ResourceKey::Route(o.route.key.clone()))
        {
            out.delete(Resource::Route(o.route.clone()));
        }
    }
}
