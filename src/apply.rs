//! Executes a plan stage by stage; independent changes run concurrently.

use crate::backend::docker::DockerApi;
use crate::backend::netlink::{ContainerNet, Index, Kernel};
use crate::diff::{Action, Change};
use crate::error::{Error, Result};
use crate::ledger::Ledger;
use crate::model::Family;
use crate::netns;
use crate::plan::Plan;
use crate::state::{
    ContainerRouteRes, IfacePeer, Observed, Resource, ResourceKey, RouteKey, RouteRes,
    TOPOLOGY_LABEL, link_mark,
};
use futures::StreamExt;
use std::collections::{BTreeSet, HashMap, HashSet};

/// The ifindexes a step created, by interface name.
type Created = Vec<(String, u32)>;

/// Docker network creations in flight at once.
const DOCKER_CREATES_IN_FLIGHT: usize = 4;

/// Requests in flight at once per netns.
pub const IN_FLIGHT: usize = 16;

/// What an apply did before it stopped, and why it stopped.
#[derive(Debug)]
pub struct Failure {
    pub step: String,
    pub error: Error,
    pub done: Vec<String>,
}

fn step_name(c: &Change) -> String {
    format!("{} {} {}", c.action.symbol(), c.kind, c.title)
}

/// Applies `plan` (made against `observed`). Returns the connection to the
/// topology's netns and the steps done.
pub async fn apply(
    plan: &Plan,
    observed: &Observed,
    kernel: Option<Kernel>,
    docker: Option<&DockerApi>,
    containers: &HashMap<String, ContainerNet>,
) -> std::result::Result<(Kernel, Vec<String>), Box<Failure>> {
    let mut done = vec![];
    let fail = |step: String, error: Error, done: &Vec<String>| {
        Box::new(Failure {
            step,
            error,
            done: done.clone(),
        })
    };
    let mark = link_mark(&plan.topology);
    let save = |ledger: &Ledger, done: &Vec<String>| {
        ledger.save(&plan.topology).map_err(|e| {
            fail(
                "record ownership".into(),
                Error::io("write ledger", e),
                done,
            )
        })
    };
    let kernel = match kernel {
        Some(k) => k,
        None => {
            let name = plan.netns.clone().unwrap_or_default();
            let step = format!("+ netns {name}");
            let t = std::time::Instant::now();
            if plan.creates_netns() {
                netns::create(&name).map_err(|e| {
                    fail(
                        step.clone(),
                        Error::io(format!("create netns {name}"), e),
                        &done,
                    )
                })?;
            }
            tracing::debug!(elapsed = ?t.elapsed(), "netns created");
            let k = Kernel::connect(plan.netns.as_deref())
                .await
                .and_then(|k| k.ok_or_else(|| Error::Other(format!("netns {name} does not exist"))))
                .map_err(|e| fail(step.clone(), e, &done))?;
            tracing::debug!(elapsed = ?t.elapsed(), "connected");
            if plan.creates_netns() {
                k.mark_netns(&mark)
                    .await
                    .map_err(|e| fail(step.clone(), e, &done))?;
                done.push(step);
            }
            k
        }
    };

    let mut idx = Index(
        observed
            .links
            .iter()
            .map(|l| (l.name.clone(), l.index))
            .collect(),
    );
    let groups: HashSet<u32> = observed.links.iter().map(|l| l.group).collect();
    let mut ledger = observed.ledger.clone();
    ledger.netns = plan.netns.clone();
    // Docker networks by name → id; this topology's, found by label.
    let mut net_ids: HashMap<String, String> = observed
        .docker
        .iter()
        .flat_map(|d| d.networks.iter())
        .filter(|n| n.all_labels.get(TOPOLOGY_LABEL) == Some(&plan.topology))
        .filter_map(|n| Some((n.net.name.clone(), n.net.id.clone()?)))
        .collect();

    for (n, stage) in pipelined(plan.stages()).into_iter().enumerate() {
        let started = std::time::Instant::now();
        let stage: Vec<&Change> = stage
            .into_iter()
            .filter(|c| !matches!(c.key, ResourceKey::Netns { .. }))
            .collect();
        // Claim routes and rules in the ledger before they exist.
        let mut claimed = false;
        for c in &stage {
            match (&c.action, &c.desired) {
                (Action::Delete, _) => {}
                (_, Some(Resource::Route(r))) => claimed |= ledger.routes.insert(r.key.clone()),
                (_, Some(Resource::Rule(k))) => claimed |= ledger.rules.insert(k.clone()),
                (_, Some(Resource::Iface(i))) => {
                    claimed |= ledger.wired.insert(i.container.clone());
                    if let IfacePeer::Container { container, .. } = &i.peer {
                        claimed |= ledger.wired.insert(container.clone());
                    }
                }
                (_, Some(Resource::ContainerRoute(r))) => {
                    claimed |= ledger.wired.insert(r.container.clone());
                    claimed |= ledger.container_routes.insert((r.container.clone(), r.to));
                }
                (_, Some(Resource::Attachment(a))) => {
                    claimed |= ledger.attachments.insert(a.key.clone());
                    let id = observed
                        .docker
                        .iter()
                        .flat_map(|d| d.containers.iter())
                        .find(|c| c.name == a.key.container)
                        .map(|c| c.id.clone());
                    if let Some(id) = id {
                        ledger.attached_ids.retain(|(k, _)| *k != a.key);
                        claimed |= ledger.attached_ids.insert((a.key.clone(), id));
                    }
                }
                _ => {}
            }
            if c.desired.as_ref().is_some_and(Resource::is_docker) && !ledger.docker {
                ledger.docker = true;
                claimed = true;
            }
        }
        if claimed {
            save(&ledger, &done)?;
        }

        // Deletions (and the delete half of replacements) first; links in one batch.
        let doomed: Vec<String> = stage
            .iter()
            .filter(|c| matches!(c.action, Action::Delete | Action::Replace))
            .filter_map(|c| match &c.current {
                Some(Resource::Link(l)) => Some(l.end.name.clone()),
                _ => None,
            })
            .collect();
        if !doomed.is_empty() {
            kernel
                .delete_links(&doomed, &idx, &groups)
                .await
                .map_err(|e| {
                    fail(
                        format!("- {} link(s): {}", doomed.len(), doomed.join(", ")),
                        e,
                        &done,
                    )
                })?;
            for c in stage.iter().filter(|c| c.action == Action::Delete) {
                done.push(step_name(c));
            }
        }
        let is_docker = |c: &Change| {
            c.desired
                .as_ref()
                .or(c.current.as_ref())
                .is_some_and(Resource::is_docker)
        };
        // Link deletions went in the batch above.
        let batched =
            |c: &Change| c.action == Action::Delete && matches!(c.current, Some(Resource::Link(_)));
        // Routes re-applied (no fields: the kernel may have dropped them
        // with an address or link) are set only if really gone. Setting one
        // that exists has the kernel check its gateway again, and IPv6 checks
        // it through the route's own table, where (with a rule steering
        // lookups there) a default route reaches its gateway only through
        // itself: EHOSTUNREACH. One dump per table for the whole stage.
        let tables: BTreeSet<(Family, u32)> = stage
            .iter()
            .filter_map(|c| reapplied(c))
            .map(|r| (Family::of_net(&r.key.to), r.key.table))
            .collect();
        let present = if tables.is_empty() {
            HashSet::new()
        } else {
            kernel
                .routes_present(tables)
                .await
                .map_err(|e| fail("re-check routes".into(), e, &done))?
        };
        let still_there =
            |c: &Change| reapplied(c).is_some_and(|r| present.contains(&(r.key.clone(), r.via)));
        for c in stage.iter().filter(|c| still_there(c)) {
            done.push(step_name(c));
        }
        let kernel_lane = futures::stream::iter(stage.iter().copied())
            .filter(|c| futures::future::ready(!(is_docker(c) || batched(c) || still_there(c))))
            .map(|c| {
                let (k, idx, mark) = (&kernel, &idx, &mark);
                async move { (step_name(c), run(k, c, idx, mark, containers).await) }
            })
            .buffer_unordered(IN_FLIGHT)
            .collect::<Vec<(String, Result<Created>)>>();
        // The daemon serializes network changes: one at a time, stop at the first failure.
        // Measured on Docker 20.10: network creation gains ~20% from a few
        // requests in flight; connects get slower and removals do not gain,
        // so everything else goes one at a time, stopping at the first failure.
        let docker_lane = async {
            let Some(d) = docker else {
                let none = stage.iter().copied().filter(|c| is_docker(c));
                return none
                    .map(|c| {
                        (
                            step_name(c),
                            Err(Error::Other("Docker is not connected".into())),
                        )
                    })
                    .collect();
            };
            let creates = |c: &Change| {
                c.action == Action::Create && matches!(c.desired, Some(Resource::Network(_)))
            };
            let made_here: HashSet<&str> = stage
                .iter()
                .filter(|c| creates(c))
                .filter_map(|c| match &c.desired {
                    Some(Resource::Network(n)) => Some(n.name.as_str()),
                    _ => None,
                })
                .collect();
            // Attachments to a network this stage creates (see `pipelined`).
            let follows = |c: &Change| {
                matches!((c.action, &c.desired), (Action::Create, Some(Resource::Attachment(a)))
                    if made_here.contains(a.key.network.as_str()))
            };
            let (ready_tx, mut ready_rx) = futures::channel::mpsc::unbounded::<(String, String)>();
            let creating = async {
                let ready_tx = ready_tx;
                futures::stream::iter(stage.iter().copied().filter(|c| creates(c)))
                    .map(|c| async move {
                        let Some(Resource::Network(n)) = &c.desired else {
                            unreachable!()
                        };
                        (
                            step_name(c),
                            n.name.clone(),
                            d.create_network(n, &plan.topology).await,
                        )
                    })
                    .buffer_unordered(DOCKER_CREATES_IN_FLIGHT)
                    .inspect(|(_, name, r)| {
                        if let Ok(id) = r {
                            let _ = ready_tx.unbounded_send((name.clone(), id.clone()));
                        }
                    })
                    .collect::<Vec<(String, String, Result<String>)>>()
                    .await
            };
            // Each network's containers connect as soon as it exists, one
            // connect at a time, while the other networks are still being made.
            let connecting = async {
                let mut out: Vec<(String, Result<Created>)> = vec![];
                let mut failed = false;
                while let Some((name, id)) = ready_rx.next().await {
                    for c in stage.iter().copied().filter(|c| follows(c)) {
                        let Some(Resource::Attachment(a)) = &c.desired else {
                            unreachable!()
                        };
                        if failed || a.key.network != name {
                            continue;
                        }
                        let r = d.attach(a, &id).await;
                        failed = r.is_err();
                        out.push((step_name(c), r.map(|_| vec![])));
                    }
                }
                out
            };
            let (made, connected) = futures::join!(creating, connecting);
            let mut failed = connected.iter().any(|(_, r)| r.is_err());
            let mut out: Vec<(String, Result<Created>)> = vec![];
            for (step, name, r) in made {
                failed |= r.is_err();
                out.push((
                    step,
                    r.map(|id| {
                        net_ids.insert(name, id);
                        vec![]
                    }),
                ));
            }
            out.extend(connected);
            for c in stage
                .iter()
                .copied()
                .filter(|c| is_docker(c) && !creates(c) && !follows(c))
            {
                if failed {
                    break;
                }
                let r = run_docker(d, c, &mut net_ids, &plan.topology).await;
                failed = r.is_err();
                out.push((step_name(c), r.map(|_| vec![])));
            }
            out
        };
        let (mut results, docker_results) = futures::join!(kernel_lane, docker_lane);
        results.extend(docker_results);
        let mut first_error = None;
        for (step, r) in results {
            match r {
                Ok(created) => {
                    idx.0.extend(created);
                    done.push(step);
                }
                Err(e) if first_error.is_none() => first_error = Some((step, e)),
                Err(_) => {}
            }
        }
        if let Some((step, e)) = first_error {
            return Err(fail(step, e, &done));
        }
        tracing::debug!(stage = n, changes = stage.len(), elapsed = ?started.elapsed(), "stage applied");
        // Forget what was deleted.
        let mut released = false;
        for c in stage.iter().filter(|c| c.action == Action::Delete) {
            match &c.current {
                Some(Resource::Route(r)) => released |= ledger.routes.remove(&r.key),
                Some(Resource::Rule(k)) => released |= ledger.rules.remove(k),
                Some(Resource::Attachment(a)) => released |= ledger.attachments.remove(&a.key),
                Some(Resource::ContainerRoute(r)) => {
                    released |= ledger.container_routes.remove(&(r.container.clone(), r.to))
                }
                _ => {}
            }
        }
        if released {
            save(&ledger, &done)?;
        }
    }
    Ok((kernel, done))
}

/// The connection into a running container's netns.
fn netns_of<'a>(
    ctrs: &'a HashMap<String, ContainerNet>,
    container: &str,
) -> Result<&'a ContainerNet> {
    ctrs.get(container)
        .ok_or_else(|| Error::Other(format!("container {container} is not running")))
}

fn container_route(r: &ContainerRouteRes) -> RouteRes {
    RouteRes {
        key: RouteKey {
            table: crate::model::MAIN_TABLE,
            to: r.to,
            metric: crate::model::Family::of_net(&r.to).default_metric(),
        },
        via: Some(r.via),
        dev: None,
    }
}

async fn run(
    k: &Kernel,
    c: &Change,
    idx: &Index,
    mark: &str,
    ctrs: &HashMap<String, ContainerNet>,
) -> Result<Created> {
    match (c.action, c.desired.as_ref(), c.current.as_ref()) {
        (Action::Create | Action::Replace, Some(Resource::Iface(d)), _) => {
            let here = netns_of(ctrs, &d.container)?;
            if c.action == Action::Replace {
                here.kernel.delete_by_name(&d.name).await?;
            }
            match &d.peer {
                IfacePeer::Bridge { host, bridge } => {
                    k.create_container_iface(d, host, idx.get(bridge)?, mark, here)
                        .await?
                }
                IfacePeer::Container {
                    container,
                    name,
                    addresses,
                } => {
                    let there = netns_of(ctrs, container)?;
                    there.kernel.delete_by_name(name).await?; // a broken pair's leftover end
                    here.kernel
                        .create_container_link(d, name, addresses, mark, there, container)
                        .await?
                }
                IfacePeer::Unknown => return Err(Error::Other("no peer to create".into())),
            }
            Ok(vec![])
        }
        (Action::Update, Some(Resource::Iface(d)), _) => {
            let here = netns_of(ctrs, &d.container)?;
            here.kernel
                .configure_end(&d.container, &d.name, d.mtu, mark, &d.addresses, false)
                .await?;
            match &d.peer {
                IfacePeer::Bridge { host, bridge } => {
                    k.configure_host_end(host, idx.get(bridge)?, d.mtu, mark)
                        .await?
                }
                IfacePeer::Container {
                    container,
                    name,
                    addresses,
                } => {
                    netns_of(ctrs, container)?
                        .kernel
                        .configure_end(container, name, d.mtu, mark, addresses, false)
                        .await?
                }
                IfacePeer::Unknown => {}
            }
            Ok(vec![])
        }
        // A container that is gone took its interfaces with it.
        (Action::Delete, _, Some(Resource::Iface(cur))) => match ctrs.get(&cur.container) {
            Some(n) => n.kernel.delete_by_name(&cur.name).await.map(|_| vec![]),
            None => Ok(vec![]),
        },
        (Action::Create | Action::Update, Some(Resource::ContainerRoute(r)), _) => {
            netns_of(ctrs, &r.container)?
                .kernel
                .replace_route(&container_route(r), &Index::default())
                .await
                .map(|_| vec![])
        }
        (Action::Delete, _, Some(Resource::ContainerRoute(r))) => match ctrs.get(&r.container) {
            Some(n) => n
                .kernel
                .delete_route(&container_route(r))
                .await
                .map(|_| vec![]),
            None => Ok(vec![]),
        },
        (Action::Create | Action::Replace, Some(Resource::Link(d)), _) => {
            k.create_link(d, mark, idx).await
        }
        (Action::Update, Some(Resource::Link(d)), cur) => {
            let cur = match cur {
                Some(Resource::Link(l)) => Some(l),
                _ => None,
            };
            k.update_link(d, cur, mark, idx).await.map(|_| vec![])
        }
        (Action::Create | Action::Update, Some(Resource::Route(r)), _) => {
            k.replace_route(r, idx).await.map(|_| vec![])
        }
        (Action::Create | Action::Update, Some(Resource::Rule(r)), _) => {
            k.add_rule(r).await.map(|_| vec![])
        }
        (Action::Delete, _, Some(Resource::Route(r))) => k.delete_route(r).await.map(|_| vec![]),
        (Action::Delete, _, Some(Resource::Rule(r))) => k.delete_rule(r).await.map(|_| vec![]),
        _ => Err(Error::Other(format!(
            "no operation for {} {}",
            c.kind, c.title
        ))),
    }
}

async fn run_docker(
    d: &DockerApi,
    c: &Change,
    ids: &mut HashMap<String, String>,
    topology: &str,
) -> Result<()> {
    let id_of = |ids: &HashMap<String, String>, name: &str| {
        ids.get(name).cloned().unwrap_or_else(|| name.to_string())
    };
    match (c.action, c.desired.as_ref(), c.current.as_ref()) {
        (Action::Create, Some(Resource::Network(n)), _) => {
            let id = d.create_network(n, topology).await?;
            ids.insert(n.name.clone(), id);
            Ok(())
        }
        (Action::Replace, Some(Resource::Network(n)), Some(Resource::Network(old))) => {
            d.remove_network(old.id.as_deref().unwrap_or(&old.name), &old.name)
                .await?;
            let id = d.create_network(n, topology).await?;
            ids.insert(n.name.clone(), id);
            Ok(())
        }
        (Action::Delete, _, Some(Resource::Network(old))) => {
            d.remove_network(old.id.as_deref().unwrap_or(&old.name), &old.name)
                .await?;
            ids.remove(&old.name);
            Ok(())
        }
        (Action::Create, Some(Resource::Attachment(a)), _) => {
            d.attach(a, &id_of(ids, &a.key.network)).await
        }
        // Docker changes an endpoint only by reconnecting it; the container keeps running.
        // If the new settings are refused (an address in use), the old ones
        // are put back so the container is not left unplugged.
        (Action::Update, Some(Resource::Attachment(a)), current) => {
            let id = id_of(ids, &a.key.network);
            d.detach(&a.key.container, &id, &a.key.network).await?;
            let Err(e) = d.attach(a, &id).await else {
                return Ok(());
            };
            let restored = match current {
                Some(Resource::Attachment(old)) => match d.attach(old, &id).await {
                    Ok(()) => "it was reconnected with its previous settings".to_string(),
                    Err(e2) => format!(
                        "reconnecting it with its previous settings failed too ({e2}); it is disconnected"
                    ),
                },
                _ => "it is disconnected".to_string(),
            };
            Err(Error::Other(format!("{e}; {restored}")))
        }
        (Action::Delete, _, Some(Resource::Attachment(a))) => {
            d.detach(
                &a.key.container,
                &id_of(ids, &a.key.network),
                &a.key.network,
            )
            .await
        }
        _ => Err(Error::Other(format!(
            "no operation for {} {}",
            c.kind, c.title
        ))),
    }
}

/// A route re-applied without changes (the kernel may have dropped it).
fn reapplied(c: &Change) -> Option<&RouteRes> {
    match (c.action, &c.desired) {
        (Action::Update, Some(Resource::Route(r))) if c.fields.is_empty() => Some(r),
        _ => None,
    }
}

/// Moves the attachments to a network one stage creates from the next
/// stage into that one, where each starts as soon as its network exists: an
/// attachment depends on nothing else, and the daemon makes networks and
/// connects containers faster side by side than one stage after the other.
fn pipelined(mut stages: Vec<Vec<&Change>>) -> Vec<Vec<&Change>> {
    for s in 1..stages.len() {
        let made: HashSet<String> = stages[s - 1]
            .iter()
            .filter(|c| c.action == Action::Create)
            .filter_map(|c| match &c.desired {
                Some(Resource::Network(n)) => Some(n.name.clone()),
                _ => None,
            })
            .collect();
        if made.is_empty() {
            continue;
        }
        let (pull, keep): (Vec<&Change>, Vec<&Change>) =
            std::mem::take(&mut stages[s]).into_iter().partition(|c| {
                matches!((c.action, &c.desired), (Action::Create, Some(Resource::Attachment(a)))
                    if made.contains(&a.key.network))
            });
        stages[s - 1].extend(pull);
        stages[s] = keep;
    }
    stages.retain(|s| !s.is_empty());
    stages
}

/// After a successful apply the ledger holds exactly the desired routes,
/// rules and wired containers, and the attachments netloom made.
pub fn settle_ledger(plan: &Plan, graph: &crate::graph::DesiredGraph) -> std::io::Result<()> {
    // The file holds what this apply claimed before making it, plus what
    // earlier applies made.
    let claimed = Ledger::load(&plan.topology)?;
    let mut ledger = Ledger {
        netns: plan.netns.clone(),
        ..Default::default()
    };
    for r in graph.resources() {
        match r {
            Resource::Route(r) => {
                ledger.routes.insert(r.key.clone());
            }
            Resource::Rule(k) => {
                ledger.rules.insert(k.clone());
            }
            // An attachment that existed before netloom was asked for it is
            // not netloom's: only those it made stay recorded.
            Resource::Attachment(a) if claimed.attachments.contains(&a.key) => {
                ledger.attachments.insert(a.key.clone());
                if let Some(id) = claimed.attached_id(&a.key) {
                    ledger.attached_ids.insert((a.key.clone(), id.to_string()));
                }
            }
            Resource::Network(_) => ledger.docker = true,
            Resource::Iface(i) => {
                ledger.wired.insert(i.container.clone());
                if let crate::state::IfacePeer::Container { container, .. } = &i.peer {
                    ledger.wired.insert(container.clone());
                }
            }
            Resource::ContainerRoute(cr) => {
                ledger.wired.insert(cr.container.clone());
                ledger
                    .container_routes
                    .insert((cr.container.clone(), cr.to));
            }
            _ => {}
        }
    }
    if ledger.is_empty() {
        Ledger::remove(&plan.topology)
    } else {
        ledger.save(&plan.topology)
    }
}
