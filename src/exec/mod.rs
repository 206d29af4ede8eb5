//! Executes a plan stage by stage: each backend takes its share of a stage
//! in its own lane, all lanes at once; ownership is claimed in the ledger
//! before anything is made and released after it is deleted.

use crate::backend::{ApplyCx, Index, Registry};
use crate::diff::{Action, Change};
use crate::error::{Error, Result};
use crate::graph::DesiredGraph;
use crate::observed::Observed;
use crate::ownership::{Ledger, link_mark};
use crate::plan::Plan;
use crate::resource::Resource;

/// Applies `plan` (made against `observed`) through `registry`. Returns the
/// steps done; a failure is `Error::Step` with the steps done before it.
pub async fn apply(
    plan: &Plan,
    observed: &Observed,
    registry: &mut Registry,
    on_step: &mut dyn FnMut(&Change),
) -> Result<Vec<String>> {
    let fail = |step: String, error: Error, done: &Vec<String>| Error::Step {
        step,
        source: Box::new(error),
        done: done.clone(),
    };
    let mut ledger = observed.ledger.clone();
    ledger.netns = plan.netns.clone();
    // The netns is marked after it is made: say first that it is ours.
    if plan.creates_netns() && !ledger.made_netns {
        ledger.made_netns = true;
        let e = |e| {
            fail(
                "record ownership".into(),
                Error::io("write ledger", e),
                &vec![],
            )
        };
        ledger.save(&plan.topology).map_err(e)?;
    }
    let mut done = registry.prepare(plan).await?;
    for step in &done {
        if let Some(c) = plan.changes.iter().find(|s| s.change.step_name() == *step) {
            on_step(&c.change);
        }
    }
    let mark = link_mark(&plan.topology);
    let mut idx = Index(
        observed
            .links
            .iter()
            .map(|l| (l.name.clone(), l.index))
            .collect(),
    );
    let save = |ledger: &Ledger, done: &Vec<String>| {
        ledger.save(&plan.topology).map_err(|e| {
            let e = Error::io("write ledger", e);
            fail("record ownership".into(), e, done)
        })
    };

    let mut stages = plan.stages();
    for b in registry.backends() {
        b.restage(&mut stages);
    }
    for (n, stage) in stages.into_iter().enumerate() {
        let started = std::time::Instant::now();
        // Claim before the objects exist: a crash leaves a stale entry, never an orphan.
        if claim(&stage, &mut ledger, observed) {
            save(&ledger, &done)?;
        }
        // Results come back by step name: one map per stage, not a scan per result.
        let by_name: std::collections::HashMap<String, &Change> =
            stage.iter().map(|c| (c.step_name(), *c)).collect();
        // Steps are reported as backends finish them, while the stage runs.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let mut told = std::collections::HashSet::new();
        let mut tell = |step: String| {
            if let Some(c) = by_name.get(&step)
                && told.insert(step)
            {
                on_step(c);
            }
        };
        let results = {
            let cx = ApplyCx {
                topology: &plan.topology,
                mark: &mark,
                idx: &idx,
                observed,
                finished: Some(tx),
            };
            let running = registry.apply_stage(&stage, &cx);
            tokio::pin!(running);
            loop {
                tokio::select! {
                    r = &mut running => break r,
                    Some(step) = rx.recv() => tell(step),
                }
            }
        };
        while let Ok(step) = rx.try_recv() {
            tell(step);
        }
        let mut first_error = None;
        for (step, r) in results {
            match r {
                Ok(created) => {
                    idx.0.extend(created);
                    tell(step.clone());
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
        if release(&stage, &mut ledger) {
            save(&ledger, &done)?;
        }
    }
    Ok(done)
}

fn claim(stage: &[&Change], ledger: &mut Ledger, observed: &Observed) -> bool {
    let mut claimed = false;
    for c in stage.iter().filter(|c| c.action != Action::Delete) {
        if let Some(r) = c.desired.as_deref() {
            claimed |= r.kind().claim(ledger, observed);
        }
    }
    claimed
}

/// Forgets what was deleted, and the intents of what was made (a stage
/// that got here had every change succeed).
fn release(stage: &[&Change], ledger: &mut Ledger) -> bool {
    let mut released = false;
    for c in stage {
        match (c.action, &c.desired, &c.current) {
            (Action::Delete, _, Some(r)) => released |= r.kind().release(ledger),
            (a, Some(r), _) => released |= r.kind().made(a, ledger),
            _ => {}
        }
    }
    released
}

/// After a successful apply the ledger holds exactly the desired routes,
/// rules and wired containers, and the attachments netloom made.
pub fn settle_ledger(plan: &Plan, graph: &DesiredGraph) -> std::io::Result<()> {
    // The file holds what this apply claimed before making it, plus what
    // earlier applies made.
    let claimed = Ledger::load(&plan.topology)?;
    // `made_netns` is not carried over: the netns is marked now, and a
    // stale flag could make a netns someone else makes later look ours.
    let mut ledger = Ledger {
        netns: plan.netns.clone(),
        ..Default::default()
    };
    for r in graph.resources() {
        r.kind().settle(&claimed, &mut ledger);
    }
    if ledger.is_empty() {
        Ledger::remove(&plan.topology)
    } else {
        ledger.save(&plan.topology)
    }
}

/// The resources a plan's pending entries stand for.
pub fn pending_resources<'a>(
    plan: &'a Plan,
    graph: &'a DesiredGraph,
) -> impl Iterator<Item = &'a Resource> {
    plan.pending.iter().filter_map(|p| graph.get(&p.key))
}

#[cfg(test)]
mod tests;

pub mod rollback;
