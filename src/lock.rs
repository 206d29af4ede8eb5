//! One process per topology: an flock on `<run dir>/<topology>.lock`,
//! holding the holder's pid and what it does (apply, destroy, watch). A
//! watcher holds it for its whole life, so two watchers cannot fight.

use crate::error::{Error, Result};
use crate::ownership::ledger::run_dir;
use nix::fcntl::{Flock, FlockArg};
use std::fs::File;
use std::io::{Read, Seek, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::PathBuf;
use std::time::{Duration, Instant};

/// What the holder of a lock is doing (said to whoever waits for it).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Apply,
    Destroy,
    Watch,
}

impl Role {
    fn word(self) -> &'static str {
        match self {
            Role::Apply => "apply",
            Role::Destroy => "destroy",
            Role::Watch => "watch",
        }
    }

    fn from_word(w: &str) -> Option<Role> {
        [Role::Apply, Role::Destroy, Role::Watch]
            .into_iter()
            .find(|r| r.word() == w)
    }
}

/// Held for as long as the value lives.
pub struct TopologyLock {
    lock: Flock<File>,
    path: PathBuf,
    pub topology: String,
}

impl TopologyLock {
    /// Removes the lock file (destroy: nothing of the topology is left). A
    /// process waiting on the old file notices the file is gone and opens
    /// the path again, so two holders can never both think they hold it.
    pub fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
        drop(self.lock);
    }
}

fn path_of(topology: &str) -> PathBuf {
    run_dir().join(format!("{topology}.lock"))
}

/// Takes the topology's lock; waits up to `wait` for another holder to
/// let go (zero: fail at once, naming the holder).
pub fn acquire_as(topology: &str, role: Role, wait: Duration) -> Result<TopologyLock> {
    let dir = run_dir();
    std::fs::create_dir_all(&dir)
        .map_err(|e| Error::io(format!("cannot create {}", dir.display()), e))?;
    let path = path_of(topology);
    let start = Instant::now();
    loop {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(&path)
            .map_err(|e| Error::io(format!("cannot open {}", path.display()), e))?;
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(mut lock) => {
                // Locked a file destroy has just removed: take the new one.
                let same = match (lock.metadata(), std::fs::metadata(&path)) {
                    (Ok(a), Ok(b)) => a.ino() == b.ino() && a.dev() == b.dev(),
                    _ => false,
                };
                if !same {
                    continue;
                }
                // Written whole, then cut: a reader never sees it empty.
                let text = format!("{} {}\n", std::process::id(), role.word());
                let _ = lock.rewind();
                let _ = lock.write_all(text.as_bytes());
                let _ = lock.set_len(text.len() as u64);
                let _ = lock.flush();
                return Ok(TopologyLock {
                    lock,
                    path,
                    topology: topology.to_string(),
                });
            }
            Err((mut file, _)) => {
                if start.elapsed() < wait {
                    std::thread::sleep(Duration::from_millis(100).min(wait));
                    continue;
                }
                let mut text = String::new();
                let _ = file.read_to_string(&mut text);
                let mut words = text.split_whitespace();
                let pid = words.next().unwrap_or("unknown").to_string();
                let role = words.next().and_then(Role::from_word);
                return Err(Error::Locked {
                    topology: topology.to_string(),
                    pid,
                    role: role.map(Role::word).unwrap_or_default().to_string(),
                    path: path.display().to_string(),
                });
            }
        }
    }
}

/// Takes the lock for an apply, failing at once if another process has it.
pub fn acquire(topology: &str) -> Result<TopologyLock> {
    acquire_as(topology, Role::Apply, Duration::ZERO)
}
