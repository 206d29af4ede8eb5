use netloom::engine::{self, destroy};
use netloom::error::Error;
use netloom::plan::render_changes;
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(paths: &[PathBuf], lock_wait: std::time::Duration) -> ExitCode {
    let l = match super::load(paths) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let t = &l.topo;
    let lock = match netloom::lock::acquire_as(&t.name, netloom::lock::Role::Destroy, lock_wait) {
        Ok(lock) => lock,
        Err(e) => return super::fail(e),
    };
    super::runtime().block_on(async {
        let mut d = match destroy::prepare(&l).await {
            Ok(Some(d)) => d,
            Ok(None) => {
                println!(
                    "Nothing to destroy: {} does not exist.",
                    engine::netns_label(&t.netns)
                );
                lock.remove();
                return ExitCode::SUCCESS;
            }
            Err(e) => return super::fail(e),
        };
        let scope = format!("topology {} in {}", t.name, engine::netns_label(&t.netns));
        println!("netloom destroy: {scope}\n");
        print!("{}", render_changes(&d.plan));
        let whole: Vec<String> = d.removed_whole().map(str::to_string).collect();
        for what in &whole {
            println!("  - {what}  # created by netloom: removed with everything in it");
        }
        match destroy::execute(&mut d, &l).await {
            Ok(()) => {}
            Err(Error::Step { step, source, .. }) => {
                eprintln!("error: step `{step}` failed: {source}");
                eprintln!("fix the cause and run `netloom destroy` again");
                return ExitCode::from(1);
            }
            Err(e) => return super::fail(e),
        }
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
