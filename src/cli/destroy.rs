use crate::diff::diff;
use crate::graph::DesiredGraph;
use crate::ledger::Ledger;
use crate::netns;
use crate::plan::{Plan, render_changes};
use crate::state::{NETLOOM_PROTO, Observed, Owner, RouteObs, link_mark, link_owner};
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(paths: &[PathBuf]) -> ExitCode {
    let l = match super::load(paths) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let t = &l.topo;
    let _lock = match crate::lock::acquire(&t.name) {
        Ok(lock) => lock,
        Err(e) => return super::fail(e),
    };
    super::runtime().block_on(async {
        let live = match super::observe(t).await {
            Ok(x) => x,
            Err(e) => return super::fail(e),
        };
        let (kernel, observed, docker, containers) =
            (live.kernel, live.observed, live.docker, live.containers);
        let scope = format!("topology {} in {}", t.name, super::netns_label(&t.netns));
        let kernel = match (kernel, &docker) {
            (Some(k), _) => k,
            (None, None) => {
                let _ = Ledger::remove(&t.name);
                println!(
                    "Nothing to destroy: {} does not exist.",
                    super::netns_label(&t.netns)
                );
                return ExitCode::SUCCESS;
            }
            // The netns is gone but Docker objects may remain: the executor
            // needs a connection, and no kernel step will use it.
            (None, Some(_)) => match crate::backend::netlink::Kernel::connect(None).await {
                Ok(Some(k)) => k,
                Ok(None) => unreachable!("the host netns exists"),
                Err(e) => return super::fail(e),
            },
        };
        let nothing = DesiredGraph::default();
        let plan = Plan::new(
            &t.name,
            t.netns.clone(),
            &nothing,
            diff(&t.name, &nothing, &observed),
        );
        // A netns netloom created, holding only this topology's links and no
        // process, goes as a whole: the kernel tears it down in one step.
        let ours = observed.netns_mark.as_deref() == Some(link_mark(&t.name).as_str());
        let only_ours = observed
            .links
            .iter()
            .all(|l| l.name == "lo" || link_owner(l.alias.as_deref(), &t.name) == Owner::Ours);
        let idle = t.netns.as_deref().is_some_and(|n| {
            netns::processes_in(n)
                .map(|p| p.is_empty())
                .unwrap_or(false)
        });
        // Routes, rules and addresses of other topologies or of people
        // sharing the netns (rules and addresses are observed already).
        let foreign = if ours && only_ours && idle {
            match kernel.all_routes().await {
                Ok(routes) => foreign_in_netns(&routes, &observed),
                Err(e) => return super::fail(e),
            }
        } else {
            vec![]
        };
        println!("netloom destroy: {scope}\n");
        print!("{}", render_changes(&plan));
        let whole_netns = ours && only_ours && idle && foreign.is_empty();
        let removed = plan.changes.len() + usize::from(whole_netns);
        let mut plan = plan;
        if whole_netns {
            let name = t.netns.as_deref().unwrap_or_default();
            println!("  - netns {name}  # created by netloom: removed with everything in it");
            if let Err(e) = netns::delete(name) {
                return super::fail(format!("delete netns {name}: {e}"));
            }
            // What lives in Docker and inside containers still goes one by one.
            plan.changes.retain(|s| {
                s.change
                    .current
                    .as_ref()
                    .is_some_and(|r| !r.in_topology_netns())
            });
        }
        if !plan.changes.is_empty() {
            if let Err(f) =
                crate::apply::apply(&plan, &observed, Some(kernel), docker.as_ref(), &containers)
                    .await
            {
                eprintln!("error: step `{}` failed: {}", f.step, f.error);
                eprintln!("fix the cause and run `netloom destroy` again");
                return ExitCode::from(1);
            }
        } else if !whole_netns {
            println!("  nothing this topology owns is present");
        }
        if ours && !whole_netns {
            let why = if !only_ours {
                "it holds links this topology does not own".to_string()
            } else if !idle {
                "a process still uses it".to_string()
            } else {
                format!(
                    "it holds routes, rules or addresses this topology does not own: {}",
                    foreign.join(", ")
                )
            };
            println!(
                "  (netns {} kept: {why})",
                t.netns.as_deref().unwrap_or_default()
            );
        }
        if !ours && let Some(n) = t.netns.as_deref() {
            let by = match observed
                .netns_mark
                .as_deref()
                .and_then(|m| m.strip_prefix("netloom:"))
            {
                Some(other) => format!("topology {other} created it"),
                None => "netloom did not create it".to_string(),
            };
            println!("  (netns {n} kept: {by})");
        }
        if let Err(e) = Ledger::remove(&t.name) {
            return super::fail(format!("cannot remove the ledger: {e}"));
        }
        println!("\nDestroy complete: {removed} object(s) removed.");
        ExitCode::SUCCESS
    })
}

/// What in the netns is neither this topology's (by its ledger) nor the
/// kernel's own (connected and RA routes, default rules, loopback
/// addresses): what deleting the whole netns would destroy for someone else.
fn foreign_in_netns(routes: &[RouteObs], observed: &Observed) -> Vec<String> {
    const KERNEL: u8 = 2;
    const RA: u8 = 9;
    let ledger = &observed.ledger;
    let routes = routes
        .iter()
        .filter(|r| {
            r.protocol != KERNEL
                && r.protocol != RA
                && !(r.protocol == NETLOOM_PROTO && ledger.routes.contains(&r.route.key))
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
