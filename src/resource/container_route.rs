//! Routes netloom adds inside containers (main table, via a gateway on the
//! container's netloom interfaces), owned through the ledger.

use super::iface::{netns_of, not_now, wired_here};
use super::{DiffCx, Kind, Resource, ResourceKey};
use crate::diff::field::{Field, Side, Value};
use crate::diff::{Action, Diff, FieldChange};
use crate::observed::Observed;
use crate::ownership::{Ledger, NETLOOM_PROTO, proto_name};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;
use std::net::IpAddr;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ContainerRouteRes {
    pub container: String,
    pub to: IpNet,
    pub via: IpAddr,
}

impl ContainerRouteRes {
    /// As a route in the container's main table.
    pub fn as_route(&self) -> super::RouteRes {
        super::RouteRes {
            key: super::RouteKey {
                table: crate::model::MAIN_TABLE,
                to: self.to,
                metric: crate::model::Family::of_net(&self.to).default_metric(),
            },
            via: Some(self.via),
            dev: None,
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
        format!("{} via {} in {}", self.to, self.via, self.container)
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
        match here.routes.iter().find(|o| o.route.key.to == d.to) {
            None => out.push(Action::Create, r),
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
            Some(o) if o.route.via != Some(d.via) => {
                let f = vec![FieldChange::new(
                    Side::Own,
                    Field::Via,
                    o.route.via.map(Value::Addr),
                    Some(Value::Addr(d.via)),
                )];
                out.change(Action::Update, r, None, f, None);
            }
            Some(_) => {}
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
                "present, via {}",
                x.route.via.map(|v| v.to_string()).unwrap_or_default()
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
                out.delete(Resource::ContainerRoute(ContainerRouteRes {
                    container: c.clone(),
                    to,
                    via: o.route.via.unwrap_or(to.addr()),
                }));
            }
        }
    }
}
