use super::Loaded;
use crate::plan::render_text;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// What one pass of converge did.
pub struct Converged {
    pub changes: usize,
    pub pending: usize,
    /// The netns of each running wired container (watch listens in them).
    pub container_netns: Vec<std::fs::File>,
}

/// One reconcile: observe, plan, apply, verify, readiness. `show_plan`
/// prints the plan to stdout (apply does; watch logs a summary instead).
/// The error is the whole report: what failed, with what was done before.
pub async fn converge(l: &Loaded, show_plan: bool) -> Result<Converged, String> {
    let (live, plan) = super::observe_and_plan(l).await?;
    if show_plan {
        print!("{}", render_text(&plan));
    }
    if !plan.conflicts.is_empty() {
        let list: Vec<String> = plan
            .conflicts
            .iter()
            .map(|c| format!("{}: {}", c.key, c.message))
            .collect();
        let detail = if show_plan {
            String::new()
        } else {
            format!(":\n  {}", list.join("\n  "))
        };
        return Err(format!(
            "{} conflict(s) with objects this topology does not own; nothing was changed{detail}",
            plan.conflicts.len()
        ));
    }
    let mut done = vec![];
    if !plan.changes.is_empty() {
        done = match crate::apply::apply(
            &plan,
            &live.observed,
            live.kernel,
            live.docker.as_ref(),
            &live.containers,
        )
        .await
        {
            Ok((_, done)) => {
                // A daemon's log says what it changed, not just how much.
                if !show_plan {
                    for step in &done {
                        tracing::info!("applied {step}");
                    }
                }
                done
            }
            Err(f) => {
                let mut msg = format!("step `{}` failed: {}\n", f.step, f.error);
                if f.done.is_empty() {
                    msg += "no step before it had changed anything\n";
                } else {
                    msg += &format!("done before it ({}):\n", f.done.len());
                    for d in &f.done {
                        msg += &format!("  {d}\n");
                    }
                }
                msg += "fix the cause and apply again: it continues from the live state";
                return Err(msg);
            }
        };
        crate::apply::settle_ledger(&plan, &l.graph)
            .map_err(|e| format!("cannot write the ledger: {e}"))?;
        let observe = || async { super::observe(&l.topo).await.map(|live| live.observed) };
        let left = crate::verify::verify(&l.topo.name, &l.graph, observe)
            .await
            .map_err(|e| format!("verification could not observe the live state: {e}"))?;
        if !left.is_empty() {
            return Err(format!(
                "applied {} change(s), but the live state still differs:\n  {}",
                done.len(),
                left.join("\n  ")
            ));
        }
    }
    let mut failed = vec![];
    let waiting = super::waiting_containers(&plan, &l.graph);
    for (c, dst, r) in super::probe_readiness(&l.topo, &live.containers, &waiting).await {
        let ms = |rtt: std::time::Duration| rtt.as_secs_f64() * 1000.0;
        match r {
            Ok(rtt) if show_plan => println!("ready: {c} reaches {dst} ({:.1} ms)", ms(rtt)),
            Ok(rtt) => tracing::info!("ready: {c} reaches {dst} ({:.1} ms)", ms(rtt)),
            Err(e) => failed.push(format!("readiness probe of {c}: ping {dst}: {e}")),
        }
    }
    if !failed.is_empty() {
        return Err(failed.join("\n"));
    }
    Ok(Converged {
        changes: done.len(),
        pending: plan.pending.len(),
        container_netns: live
            .containers
            .values()
            .filter_map(|n| n.fd.try_clone().ok())
            .collect(),
    })
}

/// Exit 0 when converged, 2 when converged but some objects wait (pending),
/// 1 on any error.
pub fn run(paths: &[PathBuf]) -> ExitCode {
    let l = match super::load(paths) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let _lock = match crate::lock::acquire(&l.topo.name) {
        Ok(lock) => lock,
        Err(e) => return super::fail(e),
    };
    let start = Instant::now();
    match super::runtime().block_on(converge(&l, true)) {
        Ok(c) => {
            if c.changes > 0 {
                println!(
                    "\nApply complete: {} change(s) in {:.0?}; verified, nothing left to change{}.",
                    c.changes,
                    start.elapsed(),
                    if c.pending == 0 {
                        ""
                    } else {
                        " but what is pending"
                    }
                );
            } else if c.pending > 0 {
                println!(
                    "\nNothing to change now; {} pending (exit code 2).",
                    c.pending
                );
            }
            if c.pending > 0 {
                ExitCode::from(2)
            } else {
                ExitCode::SUCCESS
            }
        }
        Err(e) => super::fail(e),
    }
}
