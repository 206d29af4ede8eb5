//! One process per topology: an flock on `<run dir>/<topology>.lock`.

use crate::error::{Error, Result};
use crate::ownership::ledger::run_dir;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io::{Read, Seek, Write};

/// Held for as long as the value lives.
pub struct TopologyLock {
    _lock: Flock<File>,
}

pub fn acquire(topology: &str) -> Result<TopologyLock> {
    let dir = run_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let path = dir.join(format!("{topology}.lock"));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
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
            Err(Error::Locked {
                topology: topology.to_string(),
                pid: if pid.is_empty() { "unknown" } else { pid }.to_string(),
                path: path.display().to_string(),
            })
        }
    }
}
