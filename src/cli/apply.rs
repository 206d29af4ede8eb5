use netloom::engine::{self, Report};
use netloom::lock::Role;
use netloom::plan::{Plan, render_text};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Prints the plan and readiness to stdout, as `apply` does.
struct Printed;

impl Report for Printed {
    fn plan(&mut self, plan: &Plan) -> bool {
        print!("{}", render_text(plan));
        true
    }

    fn applied(&mut self, _: &netloom::diff::Change) {}

    fn ready(&mut self, c: &str, dst: &str, rtt: Duration) {
        println!(
            "ready: {c} reaches {dst} ({:.1} ms)",
            rtt.as_secs_f64() * 1000.0
        );
    }
}

/// Exit 0 when converged, 2 when converged but some objects wait (pending),
/// 1 on any error.
pub fn run(paths: &[PathBuf], lock_wait: Duration, rollback: bool) -> ExitCode {
    let l = match super::load(paths) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let _lock = match netloom::lock::acquire_as(&l.topo.name, Role::Apply, lock_wait) {
        Ok(lock) => lock,
        Err(e) => return super::fail(e),
    };
    let start = Instant::now();
    match super::runtime().block_on(engine::converge_with(&l, &mut Printed, rollback)) {
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
