//! What a running watch serves, for `show`: `<run dir>/<topology>.watch.json`.

use super::super::Loaded;
use crate::ownership::ledger::run_dir;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq, schemars::JsonSchema)]
pub struct Served {
    pub pid: u32,
    /// The digest of the files being served (`Loaded::revision`).
    pub revision: String,
    /// The first line of the files' errors, while they have any: watch
    /// then serves the last revision that loaded.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub broken: Option<String>,
}

fn path(topology: &str) -> std::path::PathBuf {
    run_dir().join(format!("{topology}.watch.json"))
}

/// Notes what is served now (best effort: `show` is the only reader).
pub fn record(l: &Loaded, broken: Option<&str>) {
    let s = Served {
        pid: std::process::id(),
        revision: l.revision(),
        broken: broken.and_then(|b| b.lines().next()).map(str::to_string),
    };
    let bytes = serde_json::to_vec(&s).expect("served state serializes");
    if let Err(e) = crate::ownership::ledger::write_private(&path(&l.topo.name), &bytes) {
        tracing::debug!("cannot record the served revision: {e}");
    }
}

pub fn clear(topology: &str) {
    let _ = std::fs::remove_file(path(topology));
}

/// What a live watch of `topology` serves, if one runs.
pub fn read(topology: &str) -> Option<Served> {
    let s: Served = serde_json::from_slice(&std::fs::read(path(topology)).ok()?).ok()?;
    let alive = nix::sys::signal::kill(nix::unistd::Pid::from_raw(s.pid as i32), None).is_ok();
    alive.then_some(s)
}
