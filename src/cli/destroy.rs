use netloom::engine::{self, Loaded, destroy};
use netloom::error::Error;
use netloom::plan::render_changes;
use netloom::plan::saved::SavedPlan;
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(paths: &[PathBuf], lock_wait: std::time::Duration) -> ExitCode {
    match super::load(paths) {
        Ok(l) => run_loaded(&l, lock_wait, None),
        Err(code) => code,
    }
}

/// Destroys; with a saved plan, only when what would go is what it says.
pub fn run_loaded(
    l: &Loaded,
    lock_wait: std::time::Duration,
    saved: Option<&SavedPlan>,
) -> ExitCode {
    let t = &l.topo;
    let lock = match netloom::lock::acquire_as(&t.name, netloom::lock::Role::Destroy, lock_wait) {
        Ok(lock) => lock,
        Err(e) => return super::fail(e),
    };
    super::runtime().block_on(async {
        let prepared = match destroy::prepare(l).await {
            Ok(d) => d,
            Err(e) => return super::fail(e),
        };
        if let Some(saved) = saved {
            let (plan, whole) = match &prepared {
                Some(d) => (
                    d.plan.clone(),
                    d.removed_whole().map(str::to_string).collect(),
                ),
                None => (destroy::nothing(l), vec![]),
            };
            if let Err(e) = super::saved::check(saved, &plan, &whole) {
                return super::fail(e);
            }
        }
        let Some(mut d) = prepared else {
            println!(
                "Nothing to destroy: {} does not exist.",
                engine::netns_label(&t.netns)
            );
            lock.remove();
            return ExitCode::SUCCESS;
        };
        let scope = format!("topology {} in {}", t.name, engine::netns_label(&t.netns));
        println!("netloom destroy: {scope}\n");
        print!("{}", render_changes(&d.plan));
        let whole: Vec<String> = d.removed_whole().map(str::to_string).collect();
        for what in &whole {
            println!("  - {what}  # created by netloom: removed with everything in it");
        }
        let total = d.steps();
        let mut progress = super::tty::Bar::new(total, "destroy");
        match destroy::execute(&mut d, l, &mut |c| progress.step(c)).await {
            Ok(()) => {}
            Err(Error::Step { step, source, .. }) => {
                progress.finish();
                eprintln!("error: step `{step}` failed: {source}");
                eprintln!("fix the cause and run `netloom destroy` again");
                return ExitCode::from(1);
            }
            Err(e) => {
                progress.finish();
                return super::fail(e);
            }
        }
        progress.finish();
        if d.plan.changes.is_empty() && whole.is_empty() {
            println!("  nothing this topology owns is present");
        }
        for (what, why) in d.kept() {
            println!("  ({what} kept: {why})");
        }
        println!("\nDestroy complete: {} object(s) removed.", d.count());
        // Nothing of the topology is left, its lock file included.
        lock.remove();
        ExitCode::SUCCESS
    })
}
