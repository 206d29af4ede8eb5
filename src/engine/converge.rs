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
    /// The live state is about to be observed (for the plan, and for each
    /// verification attempt): what happened before now is in that view.
    /// watch uses it to skip the echo of its own apply.
    fn observing(&mut self) {}
    /// Whether the plan may be applied at all (a saved plan checks that it
    /// is the one made now); called before `plan`.
    fn check(&mut self, _plan: &Plan) -> Result<()> {
        Ok(())
    }
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
    converge_with(l, report, false).await
}

/// As `converge`; with `rollback`, a failed step or verification puts back
/// what this pass changed before the error is returned.
pub async fn converge_with(
    l: &Loaded,
    report: &mut dyn Report,
    rollback: bool,
) -> Result<Converged> {
    report.observing();
    let (mut live, plan) = super::plan(l).await?;
    report.check(&plan)?;
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
        let applied =
            crate::exec::apply(&plan, &live.observed, &mut live.registry, &mut on_step).await;
        done = match applied {
            Ok(done) => done,
            Err(Error::Step { step, source, done }) if rollback => {
                // The failed step is undone too, as it may have acted partly,
                // but only where what it left is surely this run's: not after
                // EEXIST (the name was someone else's), and not in Docker
                // (a network is removed by name, which may resolve elsewhere).
                let failed = plan.changes.iter().find(|s| s.change.step_name() == step);
                let partial = failed.is_some_and(|s| {
                    const EEXIST: i32 = 17;
                    source.errno() != Some(EEXIST)
                        && s.change.resource().is_some_and(|r| !r.is_docker())
                });
                let inv =
                    crate::exec::rollback::inverse(&plan, &done, partial.then_some(step.as_str()));
                let key = failed.filter(|_| partial).map(|s| s.change.key.clone());
                let e = Error::Step { step, source, done };
                return Err(undo(l, inv, e, key).await);
            }
            Err(e) => return Err(e),
        };
        crate::exec::settle_ledger(&plan, &l.graph)
            .map_err(|e| Error::io("cannot write the ledger", e))?;
        let changed: std::collections::BTreeSet<_> = plan
            .changes
            .iter()
            // A change of no resource: observe everything again.
            .map(|s| {
                s.change
                    .resource()
                    .map_or(crate::resource::BackendId::Kernel, |r| r.backend())
            })
            .collect();
        // Backends before the first changed one keep their part of the
        // plan's observation, when nothing applied shows in their view.
        let kept = if changed.iter().all(|b| b.keeps_to_itself()) {
            live.registry.before_first(&changed)
        } else {
            Default::default()
        };
        let before = &live.observed;
        let observe = || {
            report.observing();
            super::observe_again(&l.topo, before, &kept)
        };
        // Verification does not count learned routes (gobgpd moves on by
        // itself): a plan of nothing else has nothing to verify.
        let only_learned = plan.changes.iter().all(|s| {
            matches!(
                s.change.key,
                crate::resource::ResourceKey::Bgp(crate::resource::BgpKey::Routes { .. })
            )
        });
        let left = if only_learned {
            vec![]
        } else {
            crate::verify::verify(&l.topo.name, &l.graph, observe)
                .await
                .map_err(|e| {
                    Error::State(format!(
                        "verification could not observe the live state: {e}"
                    ))
                })?
        };
        if !left.is_empty() {
            let e = Error::Verify {
                applied: done.len(),
                left,
            };
            if rollback {
                let inv = crate::exec::rollback::inverse(&plan, &done, None);
                return Err(undo(l, inv, e, None).await);
            }
            return Err(e);
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

/// Runs the inverse plan against a fresh observation; returns the error
/// to report: the original one, with what the rollback did.
async fn undo(
    l: &Loaded,
    inv: Plan,
    e: Error,
    failed_key: Option<crate::resource::ResourceKey>,
) -> Error {
    if inv.changes.is_empty() {
        return e;
    }
    let mut live = match super::observe(&l.topo).await {
        Ok(live) => live,
        Err(e2) => {
            return Error::RollbackFailed {
                source: Box::new(e),
                rollback: Box::new(e2),
            };
        }
    };
    let undone = crate::exec::apply(&inv, &live.observed, &mut live.registry, &mut |_| {}).await;
    match undone {
        // Counted: what was done and is now put back (not the failed step's undo).
        Ok(_) => Error::RolledBack {
            source: Box::new(e),
            // A replacement's two halves are one change put back.
            undone: inv
                .changes
                .iter()
                .filter(|s| Some(&s.change.key) != failed_key.as_ref())
                .map(|s| &s.change.key)
                .collect::<std::collections::BTreeSet<_>>()
                .len(),
        },
        Err(e2) => Error::RollbackFailed {
            source: Box::new(e),
            rollback: Box::new(e2),
        },
    }
}

/// Readiness probes of running containers (for `show`).
pub async fn probes(l: &Loaded, live: &super::Live, plan: &Plan) -> Vec<Probe> {
    let waiting = super::waiting(plan, &l.graph);
    live.registry.probe(&l.topo, &waiting).await
}
