//! The kernel as a `Backend`: links, routes and rules in the topology's netns.

use super::{Kernel, events};
use crate::backend::{ApplyCx, Backend, Created, Lane, StepResult, TriggerSource, Whole};
use crate::diff::{Action, Change};
use crate::error::{Error, Result};
use crate::model::{Family, Topology};
use crate::netns;
use crate::observed::{Observed, RouteObs};
use crate::ownership::{NETLOOM_PROTO, Owner, link_mark};
use crate::plan::Plan;
use crate::resource::{BackendId, KernelRes, Resource, RouteRes, Share};
use futures::future::BoxFuture;
use std::collections::{BTreeSet, HashSet};

/// Requests in flight at once per netns.
pub const IN_FLIGHT: usize = 16;

pub struct KernelBackend {
    netns: Option<String>,
    /// `None` while the topology's named netns does not exist.
    kernel: Option<Kernel>,
    /// Link groups in use (a batch delete picks a free one).
    groups: HashSet<u32>,
    /// This topology made the netns but a crash kept its mark off.
    unmarked: bool,
}

impl KernelBackend {
    pub async fn connect(topo: &Topology) -> Result<KernelBackend> {
        Ok(KernelBackend {
            netns: topo.netns.clone(),
            kernel: Kernel::connect(topo.netns.as_deref()).await?,
            groups: HashSet::new(),
            unmarked: false,
        })
    }

    fn kernel(&self) -> Result<&Kernel> {
        self.kernel
            .as_ref()
            .ok_or_else(|| Error::no_netns(self.netns.as_deref()))
    }
}

impl Backend for KernelBackend {
    fn id(&self) -> BackendId {
        BackendId::Kernel
    }

    fn lane(&self) -> Lane {
        Lane::Concurrent(IN_FLIGHT)
    }

    fn observe<'a>(
        &'a mut self,
        topo: &'a Topology,
        into: &'a mut Observed,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let Some(k) = &self.kernel else {
                into.netns_exists = false;
                return Ok(());
            };
            let tables = topo.routes.iter().map(|r| r.table).collect();
            let ledger = std::mem::take(&mut into.ledger);
            let mut keys: Vec<String> = topo.sysctls.keys().cloned().collect();
            keys.extend(ledger.sysctls.keys().cloned());
            keys.sort();
            keys.dedup();
            let sysctls = k.read_sysctls(keys).await?;
            let mut seen = k.observe(ledger, &tables).await?;
            seen.sysctls = Some(sysctls);
            self.groups = seen.links.iter().map(|l| l.group).collect();
            self.unmarked =
                topo.netns.is_some() && seen.netns_mark.is_none() && seen.ledger.made_netns;
            let (docker, containers) = (into.docker.take(), std::mem::take(&mut into.containers));
            *into = Observed {
                docker,
                containers,
                ..seen
            };
            Ok(())
        })
    }

    /// Creates the topology's netns (marked on its `lo`) when the plan says so.
    fn prepare<'a>(&'a mut self, plan: &'a Plan) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(async move {
            if let (Some(k), true) = (&self.kernel, self.unmarked) {
                k.mark_netns(&link_mark(&plan.topology)).await?;
                self.unmarked = false;
            }
            if self.kernel.is_some() || !plan.creates_netns() {
                return Ok(vec![]);
            }
            let name = plan.netns.clone().unwrap_or_default();
            let step = format!("+ netns {name}");
            let failed = |e: Error| Error::Step {
                step: step.clone(),
                source: Box::new(e),
                done: vec![],
            };
            netns::create(&name)
                .map_err(|e| failed(Error::io(format!("create netns {name}"), e)))?;
            let k = Kernel::connect(Some(&name))
                .await
                .and_then(|k| k.ok_or_else(|| Error::State(format!("netns {name} does not exist"))))
                .map_err(failed)?;
            k.mark_netns(&link_mark(&plan.topology))
                .await
                .map_err(failed)?;
            self.kernel = Some(k);
            Ok(vec![step])
        })
    }

    fn apply<'a>(&'a self, c: &'a Change, cx: &'a ApplyCx<'a>) -> BoxFuture<'a, Result<Created>> {
        Box::pin(async move {
            let Some(Share::Kernel(res)) = c.resource().map(|r| r.share()) else {
                return Err(crate::backend::not_mine(self, c));
            };
            let k = self.kernel()?;
            let (idx, mark) = (cx.idx, cx.mark);
            match (c.action, res) {
                (Action::Create | Action::Replace, KernelRes::Link(d)) => {
                    k.create_link(d, mark, idx).await
                }
                (Action::Update, KernelRes::Link(d)) => {
                    let cur = c.current.as_deref().and_then(Resource::as_link);
                    k.update_link(d, cur, mark, idx).await.map(|_| vec![])
                }
                // Batched in `apply_stage`; one alone goes the same way.
                (Action::Delete, KernelRes::Link(l)) => {
                    let names = [l.end.name.clone()];
                    k.delete_links(&names, idx, &self.groups)
                        .await
                        .map(|_| vec![])
                }
                (Action::Create | Action::Update | Action::Replace, KernelRes::Route(r)) => {
                    k.replace_route(r, idx).await.map(|_| vec![])
                }
                (Action::Delete, KernelRes::Route(r)) => k.delete_route(r).await.map(|_| vec![]),
                (_, KernelRes::Sysctl(s)) => k.set_sysctl(s).await.map(|_| vec![]),
                (Action::Create | Action::Update | Action::Replace, KernelRes::Rule(r)) => {
                    k.add_rule(r).await.map(|_| vec![])
                }
                (Action::Delete, KernelRes::Rule(r)) => k.delete_rule(r).await.map(|_| vec![]),
                // The netns is made in `prepare` and removed only by destroy.
                (_, KernelRes::Netns(_)) => Ok(vec![]),
            }
        })
    }

    /// Link deletions (and the delete half of link replacements) first, in
    /// one batch; routes re-applied only if the kernel really dropped them;
    /// then the rest, concurrently.
    fn apply_stage<'a>(
        &'a self,
        stage: Vec<&'a Change>,
        cx: &'a ApplyCx<'a>,
    ) -> BoxFuture<'a, Vec<StepResult>> {
        Box::pin(async move {
            let mut out: Vec<StepResult> = vec![];
            let k = match self.kernel() {
                Ok(k) => k,
                Err(e) if stage.iter().all(|c| is_netns(c)) => {
                    drop(e);
                    return vec![];
                }
                Err(e) => return vec![("connect".into(), Err(e))],
            };
            let doomed: Vec<String> = stage
                .iter()
                .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
                .filter_map(|c| Some(c.current.as_deref()?.as_link()?.end.name.clone()))
                .collect();
            if !doomed.is_empty() {
                if let Err(e) = k.delete_links(&doomed, cx.idx, &self.groups).await {
                    let step = format!("- {} link(s): {}", doomed.len(), doomed.join(", "));
                    return vec![(step, Err(e))];
                }
                let deleted = stage.iter().filter(|c| {
                    c.action == Action::Delete
                        && matches!(c.current.as_deref(), Some(Resource::Link(_)))
                });
                out.extend(deleted.map(|c| (c.step_name(), Ok(vec![]))));
            }
            let batched = |c: &Change| {
                c.action == Action::Delete
                    && matches!(c.current.as_deref(), Some(Resource::Link(_)))
            };
            let present = match still_present(k, &stage).await {
                Ok(p) => p,
                Err(e) => return vec![("re-check routes".into(), Err(e))],
            };
            let still_there = |c: &Change| {
                reapplied(c).is_some_and(|r| present.contains(&(r.key.clone(), r.via)))
            };
            let mut rest = vec![];
            for c in stage {
                if still_there(c) {
                    out.push((c.step_name(), Ok(vec![])));
                } else if !batched(c) && !is_netns(c) {
                    rest.push(c);
                }
            }
            out.extend(crate::backend::run_in_lane(self, rest, cx).await);
            out
        })
    }

    fn triggers(&self) -> Vec<TriggerSource> {
        let fd = match &self.netns {
            Some(n) => match netns::open(n) {
                Ok(f) => Some(f),
                Err(_) => return vec![],
            },
            None => None,
        };
        let id = match &fd {
            Some(f) => format!("netlink/netns/{}", events::inode(f).unwrap_or(0)),
            None => "netlink/host".to_string(),
        };
        vec![TriggerSource {
            id,
            start: Box::new(move |tx| events::subscribe(fd.as_ref(), tx)),
        }]
    }

    /// A netns netloom created, holding only this topology's links and no
    /// process, goes as a whole: the kernel tears it down in one step.
    fn whole<'a>(&'a self, topo: &'a Topology, o: &'a Observed) -> BoxFuture<'a, Result<Whole>> {
        Box::pin(async move {
            let (Some(name), Some(k)) = (&topo.netns, &self.kernel) else {
                return Ok(Whole::No);
            };
            let what = format!("netns {name}");
            // Marked, or made by this topology and not marked yet (a crash
            // between the create and the mark).
            let ours = o.netns_mark.as_deref() == Some(link_mark(&topo.name).as_str())
                || (o.ledger.made_netns && o.netns_mark.is_none());
            if !ours {
                let why = match o
                    .netns_mark
                    .as_deref()
                    .and_then(|m| m.strip_prefix("netloom:"))
                {
                    Some(other) => format!("topology {other} created it"),
                    None => "netloom did not create it".to_string(),
                };
                return Ok(Whole::Kept { what, why });
            }
            let cni = crate::resource::cni_host_links(topo, o);
            let only_ours = o.links.iter().all(|l| {
                l.name == "lo" || o.owner_of(l, &topo.name) == Owner::Ours || cni.contains(&l.name)
            });
            if !only_ours {
                let why = "it holds links this topology does not own".to_string();
                return Ok(Whole::Kept { what, why });
            }
            if !o.nft_foreign.is_empty() {
                let why = format!(
                    "it holds nftables tables this topology does not own: {}",
                    o.nft_foreign.join(", ")
                );
                return Ok(Whole::Kept { what, why });
            }
            // netloom's own gobgpd is stopped before the netns goes.
            let ours = o
                .ledger
                .bgp
                .as_ref()
                .filter(|b| b.managed)
                .and_then(|b| crate::backend::bgp::daemon::running_pid(&topo.name, &b.socket));
            let idle = netns::processes_in(name)
                .map(|p| p.iter().all(|pid| Some(*pid) == ours))
                .unwrap_or(false);
            if !idle {
                let why = "a process still uses it".to_string();
                return Ok(Whole::Kept { what, why });
            }
            // Routes, rules and addresses of other topologies or of people
            // sharing the netns (rules and addresses are observed already).
            let foreign = foreign_in_netns(&k.all_routes().await?, o);
            if !foreign.is_empty() {
                let why = format!(
                    "it holds routes, rules or addresses this topology does not own: {}",
                    foreign.join(", ")
                );
                return Ok(Whole::Kept { what, why });
            }
            Ok(Whole::Yes { what })
        })
    }

    fn remove_whole<'a>(&'a mut self, topo: &'a Topology) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let name = topo.netns.as_deref().unwrap_or_default();
            self.kernel = None;
            netns::delete(name).map_err(|e| Error::io(format!("delete netns {name}"), e))
        })
    }
}

fn is_netns(c: &Change) -> bool {
    matches!(c.resource(), Some(Resource::Netns(_)))
}

/// A route re-applied without changes (the kernel may have dropped it).
fn reapplied(c: &Change) -> Option<&RouteRes> {
    c.desired
        .as_deref()
        .and_then(Resource::as_route)
        .filter(|_| c.is_reapply())
}

/// Routes re-applied (no fields: the kernel may have dropped them with an
/// address or link) are set only if really gone. Setting one that exists has
/// the kernel check its gateway again, and IPv6 checks it through the
/// route's own table, where (with a rule steering lookups there) a default
/// route reaches its gateway only through itself: EHOSTUNREACH. One dump per
/// table for the whole stage.
async fn still_present(
    k: &Kernel,
    stage: &[&Change],
) -> Result<HashSet<(crate::resource::RouteKey, Option<std::net::IpAddr>)>> {
    let tables: BTreeSet<(Family, u32)> = stage
        .iter()
        .filter_map(|c| reapplied(c))
        .map(|r| (Family::of_net(&r.key.to), r.key.table))
        .collect();
    if tables.is_empty() {
        return Ok(HashSet::new());
    }
    k.routes_present(tables).await
}

/// What in the netns is neither this topology's (by its ledger) nor the
/// kernel's own (connected and RA routes, default rules, loopback
/// addresses): what deleting the whole netns would destroy for someone else.
pub fn foreign_in_netns(routes: &[RouteObs], observed: &Observed) -> Vec<String> {
    const KERNEL: u8 = 2;
    let ledger = &observed.ledger;
    // `routes` are `Kernel::all_routes`: the kernel's own are not in them.
    let routes = routes
        .iter()
        .filter(|r| {
            let ours = (r.protocol == NETLOOM_PROTO && ledger.routes.contains(&r.route.key))
                || (r.protocol == crate::ownership::NETLOOM_BGP_PROTO && ledger.bgp.is_some())
                // A service VIP's local route (only netloom's services make
                // protocol-78 routes in table local).
                || (r.protocol == NETLOOM_PROTO
                    && r.route.key.table == 255
                    && ledger.nft.contains("netns"));
            !ours
        })
        .map(|r| format!("route {}", r.route.key));
    let rules = observed
        .rules
        .iter()
        .filter(|r| {
            r.protocol != KERNEL && !(r.protocol == NETLOOM_PROTO && ledger.rules.contains(&r.key))
        })
        .map(|r| format!("rule {}", r.key.priority));
    let addresses = observed
        .links
        .iter()
        .filter(|l| l.name == "lo")
        .flat_map(|l| l.addresses.iter())
        .filter(|a| !["127.0.0.1/8", "::1/128"].contains(&a.net.to_string().as_str()))
        .map(|a| format!("address {} on lo", a.net));
    routes.chain(rules).chain(addresses).collect()
}
