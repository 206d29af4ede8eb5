use netloom::engine::{self, Loaded, Report};
use netloom::lock::Role;
use netloom::plan::saved::SavedPlan;
use netloom::plan::{Plan, render_text};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

/// Prints the plan and readiness to stdout, as `apply` does; on a terminal,
/// a progress bar while the changes are made.
struct Printed<'a> {
    saved: Option<&'a SavedPlan>,
    bar: Option<super::tty::Bar>,
}

impl Report for Printed<'_> {
    fn check(&mut self, plan: &Plan) -> netloom::error::Result<()> {
        match self.saved {
            Some(s) => super::saved::check(s, plan, &[]),
            None => Ok(()),
        }
    }

    fn plan(&mut self, plan: &Plan) -> bool {
        print!("{}", super::tty::paint(&render_text(plan)));
        self.bar = Some(super::tty::Bar::new(plan.changes.len(), "apply"));
        true
    }

    fn applied(&mut self, c: &netloom::diff::Change) {
        if let Some(b) = &mut self.bar {
            b.step(&c.step_name());
        }
    }

    fn ready(&mut self, c: &str, dst: &str, rtt: Duration) {
        if let Some(mut b) = self.bar.take() {
            b.finish();
        }
        println!(
            "ready: {c} reaches {dst} ({:.1} ms)",
            rtt.as_secs_f64() * 1000.0
        );
    }

    fn observing(&mut self) {
        // Verification follows the last step: the bar has said all it can.
        if let Some(b) = &mut self.bar
            && b.done()
        {
            b.finish();
        }
    }
}

/// Exit 0 when converged, 2 when converged but some objects wait (pending),
/// 1 on any error.
pub fn run(paths: &[PathBuf], lock_wait: Duration, rollback: bool) -> ExitCode {
    if super::saved::is_saved_plan(paths) {
        return super::saved::apply(&paths[0], lock_wait, rollback);
    }
    match super::load(paths) {
        Ok(l) => {
            let code = run_loaded(&l, lock_wait, rollback, None);
            // The process ends here: the kernel reclaims a large topology
            // faster than freeing it object by object would.
            std::mem::forget(l);
            code
        }
        Err(code) => code,
    }
}

/// Applies `l`; with a saved plan, only if the plan made now is that one.
pub fn run_loaded(
    l: &Loaded,
    lock_wait: Duration,
    rollback: bool,
    saved: Option<&SavedPlan>,
) -> ExitCode {
    let _lock = match netloom::lock::acquire_as(&l.topo.name, Role::Apply, lock_wait) {
        Ok(lock) => lock,
        Err(e) => return super::fail(e),
    };
    let start = Instant::now();
    let mut report = Printed { saved, bar: None };
    let result = super::runtime().block_on(engine::converge_with(l, &mut report, rollback));
    drop(report);
    match result {
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
