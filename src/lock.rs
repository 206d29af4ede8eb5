//! One process per topology: an flock on `<run dir>/<topology>.lock`.

use crate::ledger::run_dir;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io::{Read, Seek, Write};

/// Held for as long as the value lives.
pub struct TopologyLock {
    _lock: Flock<File>,
}

pub fn acquire(topology: &str) -> Result<TopologyLock, String> {
    let dir = run_dir();
    std::fs::create_dir_all(&dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let path = dir.join(format!("{topology}.lock"));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open {}: {e}", path.display()))?;
    match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
        Ok(mut lock) => {
            let _ = lock.set_len(0);
            let _ = lock.rewind();
            let _ = write!(lock, "{}", std::process::id());
            let _ = lock.flush();
            Ok(TopologyLock { _lock: lock })
        }
        Err((mut file, _)) => {
            let mut pid = String::new();
            let _ = file.read_to_string(&mut pid);
            let pid = pid.trim();
            Err(format!(
                "topology {topology} is being applied by pid {}; wait for it to finish (lock: {})",
                if pid.is_empty() { "unknown" } else { pid },
                path.display()
            ))
        }
    }
}
