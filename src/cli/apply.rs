use crate::plan::render_text;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

/// Exit 0 when converged, 2 when converged but some attachments wait for
/// their container (pending), 1 on any error.
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
    super::runtime().block_on(async {
        let (live, plan) = match super::observe_and_plan(&l).await {
            Ok(x) => x,
            Err(e) => return super::fail(e),
        };
        print!("{}", render_text(&plan));
        if !plan.conflicts.is_empty() {
            return super::fail(format!(
                "{} conflict(s) with objects netloom does not own; nothing was changed",
                plan.conflicts.len()
            ));
        }
        let pending = if plan.pending.is_empty() {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(2)
        };
        if plan.changes.is_empty() {
            if !ready(&l.topo, &live.containers).await {
                return ExitCode::from(1);
            }
            if !plan.pending.is_empty() {
                println!(
                    "\nNothing to change now; {} pending (exit code 2).",
                    plan.pending.len()
                );
            }
            return pending;
        }
        let done = match crate::apply::apply(
            &plan,
            &live.observed,
            live.kernel,
            live.docker.as_ref(),
            &live.containers,
        )
        .await
        {
            Ok((_, done)) => done,
            Err(f) => {
                eprintln!("error: step `{}` failed: {}", f.step, f.error);
                if f.done.is_empty() {
                    eprintln!("nothing was changed before it");
                } else {
                    eprintln!("done before it ({}):", f.done.len());
                    for d in &f.done {
                        eprintln!("  {d}");
                    }
                }
                eprintln!(
                    "fix the cause and run `netloom apply` again: it continues from the live state"
                );
                return ExitCode::from(1);
            }
        };
        if let Err(e) = crate::apply::settle_ledger(&plan, &l.graph) {
            return super::fail(format!("cannot write the ledger: {e}"));
        }
        let verifying = Instant::now();
        let observe = || async { super::observe(&l.topo).await.map(|live| live.observed) };
        let verified = crate::verify::verify(&l.topo.name, &l.graph, observe).await;
        tracing::info!(elapsed = ?verifying.elapsed(), "verified");
        match verified {
            Ok(left) if left.is_empty() => {
                if !ready(&l.topo, &live.containers).await {
                    return ExitCode::from(1);
                }
                println!(
                    "\nApply complete: {} change(s) in {:.0?}; verified, nothing left to change{}.",
                    done.len(),
                    start.elapsed(),
                    if plan.pending.is_empty() {
                        ""
                    } else {
                        " but what is pending"
                    }
                );
                pending
            }
            Ok(left) => {
                eprintln!(
                    "error: applied {} change(s), but the live state still differs:",
                    done.len()
                );
                for d in left {
                    eprintln!("  {d}");
                }
                ExitCode::from(1)
            }
            Err(e) => super::fail(format!(
                "verification could not observe the live state: {e}"
            )),
        }
    })
}

/// Runs the readiness probes; prints each result. False if any failed.
async fn ready(
    topo: &crate::model::Topology,
    containers: &std::collections::HashMap<String, crate::backend::netlink::ContainerNet>,
) -> bool {
    let mut ok = true;
    for (c, dst, r) in super::probe_readiness(topo, containers).await {
        match r {
            Ok(rtt) => println!(
                "ready: {c} reaches {dst} ({:.1} ms)",
                rtt.as_secs_f64() * 1000.0
            ),
            Err(e) => {
                eprintln!("error: readiness probe of {c}: ping {dst}: {e}");
                ok = false;
            }
        }
    }
    ok
}
