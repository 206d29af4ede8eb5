//! One reconcile: observe, plan, apply, verify, readiness.

use super::Loaded;
use crate::backend::{Probe, TriggerSource};
use crate::error::{Error, Result};
use crate::plan::Plan;

/// Hears what a converge pass does as it does it (the CLI prints, watch logs).
pub trait Report {
    /// The plan, before anything is applied. Returns whether the plan was
    /// shown to the user in full (then errors need not list conflicts again).
    fn plan(&mut self, plan: &Plan) -> bool;
    /// A change applied, as soon as its stage has run.
    fn applied(&mut self, change: &crate::diff::Change);
    /// A readiness probe that answered.
    fn ready(&mut self, container: &str, target: &str, rtt: std::time::Duration);
}

/// What one pass of converge did.
pub struct Converged {
    pub changes: usize,
    pub pending: usize,
    /// The event streams watch should listen to now.
    pub triggers: Vec<TriggerSource>,
}

/// Observes, plans, applies, verifies and probes readiness.
pub async fn converge(l: &Loaded, report: &mut dyn Report) -> Result<Converged> {
    let (mut live, plan) = super::plan(l).await?;
    let shown = report.plan(&plan);
    if !plan.conflicts.is_empty() {
        let detail = if shown {
            vec![]
        } else {
            plan.conflicts
                .iter()
                .map(|c| format!("{}: {}", c.key, c.message))
                .collect()
        };
        return Err(Error::Conflict {
            count: plan.conflicts.len(),
            detail,
        });
    }
    let mut done = vec![];
    if !plan.changes.is_empty() {
        let mut on_step = |c: &crate::diff::Change| report.applied(c);
        done = crate::exec::apply(&plan, &live.observed, &mut live.registry, &mut on_step).await?;
        crate::exec::settle_ledger(&plan, &l.graph)
            .map_err(|e| Error::io("cannot write the ledger", e))?;
        let observe = || async { super::observe(&l.topo).await.map(|live| live.observed) };
        let left = crate::verify::verify(&l.topo.name, &l.graph, observe)
            .await
            .map_err(|e| {
                Error::State(format!(
                    "verification could not observe the live state: {e}"
                ))
            })?;
        if !left.is_empty() {
            return Err(Error::Verify {
                applied: done.len(),
                left,
            });
        }
    }
    let waiting = super::waiting(&plan, &l.graph);
    let mut failed = vec![];
    for (c, dst, r) in live.registry.probe(&l.topo, &waiting).await {
        match r {
            Ok(rtt) => report.ready(&c, &dst, rtt),
            Err(e) => failed.push(format!("readiness probe of {c}: ping {dst}: {e}")),
        }
    }
    if !failed.is_empty() {
        return Err(Error::NotReady(failed));
    }
    Ok(Converged {
        changes: done.len(),
        pending: plan.pending.len(),
        triggers: live.registry.triggers(),
    })
}

/// Readiness probes of running containers (for `show`).
pub async fn probes(l: &Loaded, live: &super::Live, plan: &Plan) -> Vec<Probe> {
    let waiting = super::waiting(plan, &l.graph);
    live.registry.probe(&l.topo, &waiting).await
}
