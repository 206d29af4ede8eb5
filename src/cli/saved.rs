//! `plan --out FILE` and `apply FILE`: a reviewed plan applied as it was
//! reviewed, or not at all.

use netloom::engine::Loaded;
use netloom::error::Error;
use netloom::plan::Plan;
use netloom::plan::saved::{self, Operation, SavedPlan};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// The saved plan for `plan`, made from `l` given as `paths`.
pub fn make(
    op: Operation,
    paths: &[PathBuf],
    l: &Loaded,
    plan: &Plan,
    removed_whole: &[String],
) -> SavedPlan {
    let mut v = serde_json::to_value(plan).expect("a plan serializes");
    v["input_digest"] = serde_json::json!(l.input_digest());
    SavedPlan {
        netloom_saved_plan: saved::SAVED_PLAN_VERSION,
        netloom_version: env!("CARGO_PKG_VERSION").into(),
        created_unix: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
        operation: op,
        topology: l.topo.name.clone(),
        paths: paths.to_vec(),
        files: l.file_digests(),
        input_digest: l.input_digest().to_string(),
        live_digest: saved::live_digest(&saved::relevant(plan, removed_whole)),
        removed_whole: removed_whole.to_vec(),
        plan: v,
    }
}

/// Writes it (through a temporary file, so a reader never sees half).
pub fn write(out: &Path, s: &SavedPlan) -> Result<(), Error> {
    let tmp = out.with_extension("netloom-tmp");
    std::fs::write(&tmp, s.to_json())
        .and_then(|()| std::fs::rename(&tmp, out))
        .map_err(|e| Error::io(format!("cannot write the plan to {}", out.display()), e))
}

/// The plan made now is the saved one, or the error saying how it is not.
pub fn check(s: &SavedPlan, now: &Plan, removed_whole: &[String]) -> Result<(), Error> {
    let relevant = saved::relevant(now, removed_whole);
    let was = saved_relevant(s);
    if saved::live_digest(&relevant) == s.live_digest && was == relevant {
        return Ok(());
    }
    Err(Error::Stale(saved::stale_reasons(&was, &relevant)))
}

fn saved_relevant(s: &SavedPlan) -> serde_json::Value {
    saved::relevant_of(s.plan.clone(), &s.removed_whole)
}

/// Whether `paths` is one saved plan file (for `apply`).
pub fn is_saved_plan(paths: &[PathBuf]) -> bool {
    let [p] = paths else { return false };
    p.is_file() && std::fs::read_to_string(p).is_ok_and(|t| SavedPlan::sniff(&t))
}

/// `apply FILE`: refuses, changing nothing, when the netloom, the files or
/// the live state differ from those the plan was made from.
pub fn apply(file: &Path, lock_wait: std::time::Duration, rollback: bool) -> ExitCode {
    let s = match std::fs::read_to_string(file)
        .map_err(|e| e.to_string())
        .and_then(|t| SavedPlan::parse(&t))
    {
        Ok(s) => s,
        Err(e) => return super::fail(format!("{}: {e}", file.display())),
    };
    if s.netloom_version != env!("CARGO_PKG_VERSION") {
        return super::fail(Error::Stale(vec![format!(
            "it was made by netloom {}, and this is netloom {}",
            s.netloom_version,
            env!("CARGO_PKG_VERSION")
        )]));
    }
    let l = match netloom::engine::load(&s.paths) {
        Ok(l) => l,
        Err(e) => {
            eprint!("{e}");
            return super::fail(Error::Stale(vec![
                "the files it was made from no longer make a topology (above)".into(),
            ]));
        }
    };
    let mut reasons = saved::file_reasons(&s.files, &l.file_digests());
    if reasons.is_empty() && l.input_digest() != s.input_digest {
        reasons.push(
            "a secret the files name (a BGP password) changed since the plan was made".into(),
        );
    }
    if !reasons.is_empty() {
        return super::fail(Error::Stale(reasons));
    }
    eprint!("{}", l.warnings);
    match s.operation {
        Operation::Apply => super::apply::run_loaded(&l, lock_wait, rollback, Some(&s)),
        Operation::Destroy => super::destroy::run_loaded(&l, lock_wait, Some(&s)),
    }
}
