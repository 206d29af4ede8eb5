//! Routes netloom adds inside containers (main table, via a gateway on the
//! container's netloom interfaces), owned through the ledger.

use super::iface::{netns_of, not_now, wired_here};
use super::route::{NextHop, nexthops_value, same_nexthops};
use super::{DiffCx, Kind, Resource, ResourceKey};
use crate::diff::field::{Field, Side, Value, field};
use crate::diff::{Action, Diff, FieldChange};
use crate::observed::Observed;
use crate::ownership::{Ledger, NETLOOM_PROTO, proto_name};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::fmt::Write as _;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRouteRes {
    pub container: String,
    pub to: IpNet,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub via: Option<IpAddr>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dev: Option<String>,
    /// `None`: the kernel's default for the family.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<u32>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub nexthops: Vec<NextHop>,
}

impl ContainerRouteRes {
    pub fn metric(&self) -> u32 {
        self.metric
            .unwrap_or_else(|| crate::model::Family::of_net(&self.to).default_metric())
    }

    /// As a route in the container's main table.
    pub fn as_route(&self) -> super::RouteRes {
        super::RouteRes {
            key: super::RouteKey {
                table: crate::model::MAIN_TABLE,
                to: self.to,
                metric: self.metric(),
            },
            via: self.via,
            dev: self.dev.clone(),
            nexthops: self.nexthops.clone(),
        }
    }

    /// An observed route, as this kind. The device the kernel picked for a
    /// gateway is left out, as the files leave it out.
    fn of(container: &str, o: &super::RouteRes) -> ContainerRouteRes {
        let mut nexthops = o.nexthops.clone();
        for h in &mut nexthops {
            h.dev = None;
        }
        ContainerRouteRes {
            container: container.to_string(),
            to: o.key.to,
            via: o.via,
            dev: o.dev.clone().filter(|_| o.via.is_none()),
            nexthops,
            metric: Some(o.key.metric)
                .filter(|m| *m != crate::model::Family::of_net(&o.key.to).default_metric()),
        }
    }
}

impl Kind for ContainerRouteRes {
    fn key(&self) -> ResourceKey {
        ResourceKey::ContainerRoute {
            container: self.container.clone(),
            to: self.to,
        }
    }

    fn kind_name(&self) -> String {
        "container route".into()
    }

    fn title(&self) -> String {
        let mut s = self.to.to_string();
        super::route::write_gateways(&mut s, self.via, &self.dev, &self.nexthops);
        if let Some(m) = self.metric {
            let _ = write!(s, " metric {m}");
        }
        let _ = write!(s, " in {}", self.container);
        s
    }

    fn delete_rank(&self) -> usize {
        6
    }

    fn diff(&self, r: &Resource, cx: &DiffCx, out: &mut Diff) {
        let d = self;
        let here = match netns_of(cx.observed, &d.container) {
            Ok(n) => n,
            Err(why) => return not_now(r, why, out),
        };
        let metric = d.metric();
        let at_key = here
            .routes
            .iter()
            .find(|o| o.route.key.to == d.to && o.route.key.metric == metric);
        let ours_elsewhere = || {
            here.routes
                .iter()
                .find(|o| o.route.key.to == d.to && o.protocol == NETLOOM_PROTO)
        };
        match at_key {
            None => match ours_elsewhere() {
                // Only the metric moved: the old route goes as the new one comes.
                Some(o) => {
                    let f = vec![FieldChange::new(
                        Side::Own,
                        Field::Metric,
                        Some(Value::Int(o.route.key.metric)),
                        Some(Value::Int(metric)),
                    )];
                    let cur = Resource::ContainerRoute(Self::of(&d.container, &o.route));
                    out.change(Action::Update, r, Some(cur), f, None);
                }
                None => out.push(Action::Create, r),
            },
            Some(o) if o.protocol != NETLOOM_PROTO => out.conflict(
                r,
                format!(
                    "container `{}` already has a route to {} that netloom does not own (protocol {})",
                    d.container,
                    d.to,
                    proto_name(o.protocol)
                ),
                "remove that route inside the container, or route another prefix".into(),
            ),
            Some(o) => {
                let mut f = vec![];
                let via = |v: Option<IpAddr>| v.map(Value::Addr);
                field(&mut f, Side::Own, Field::Via, via(o.route.via), via(d.via));
                // Without `dev` the kernel picks the device from the gateway.
                if d.dev.is_some() {
                    let dev = |v: &Option<String>| v.clone().map(Value::Text);
                    field(&mut f, Side::Own, Field::Dev, dev(&o.route.dev), dev(&d.dev));
                }
                if !same_nexthops(&o.route.nexthops, &d.nexthops) {
                    f.push(FieldChange::new(
                        Side::Own,
                        Field::Nexthops,
                        nexthops_value(&o.route.nexthops),
                        nexthops_value(&d.nexthops),
                    ));
                }
                if !f.is_empty() {
                    out.change(Action::Update, r, None, f, None);
                }
            }
        }
    }

    fn claim(&self, ledger: &mut Ledger, _: &Observed) -> bool {
        let wired = ledger.wired.insert(self.container.clone());
        ledger
            .container_routes
            .insert((self.container.clone(), self.to))
            | wired
    }

    fn release(&self, ledger: &mut Ledger) -> bool {
        ledger
            .container_routes
            .remove(&(self.container.clone(), self.to))
    }

    fn settle(&self, _: &Ledger, ledger: &mut Ledger) {
        ledger.wired.insert(self.container.clone());
        ledger
            .container_routes
            .insert((self.container.clone(), self.to));
    }

    fn live(&self, o: &Observed) -> String {
        let found = o
            .containers
            .get(&self.container)
            .and_then(|cn| cn.routes.iter().find(|x| x.route.key.to == self.to));
        match found {
            Some(x) => format!(
                "present, {}",
                Self::of(&self.container, &x.route)
                    .title()
                    .trim_end_matches(&format!(" in {}", self.container))
            ),
            None => "absent".into(),
        }
    }
}

/// Ledgered routes inside containers that the files no longer hold.
pub(super) fn prune(cx: &DiffCx, out: &mut Diff) {
    let mut wanted: HashSet<(&str, IpNet)> = HashSet::new();
    for r in cx.desired.resources() {
        if let Resource::ContainerRoute(cr) = r {
            wanted.insert((&cr.container, cr.to));
        }
    }
    for (c, n) in wired_here(cx.observed) {
        for o in &n.routes {
            let to = o.route.key.to;
            if o.protocol == NETLOOM_PROTO
                && cx
                    .observed
                    .ledger
                    .container_routes
                    .contains(&(c.clone(), to))
                && !wanted.contains(&(c.as_str(), to))
            {
                out.delete(Resource::ContainerRoute(ContainerRouteRes::of(c, &o.route)));
            }
        }
    }
}
