//! Named network namespaces, and running code inside one.
//!
//! A netlink socket stays in the netns it was created in, so sockets are
//! made on a short-lived thread that `setns`es first; tokio's own threads
//! never change namespace, and nothing forks.

use nix::mount::{MntFlags, MsFlags, mount, umount2};
use nix::sched::{CloneFlags, setns, unshare};
use std::fs::File;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;

pub const NETNS_DIR: &str = "/run/netns";

pub fn path(name: &str) -> PathBuf {
    PathBuf::from(NETNS_DIR).join(name)
}

pub fn exists(name: &str) -> bool {
    path(name).exists()
}

pub fn open(name: &str) -> io::Result<File> {
    File::open(path(name))
}

/// Runs `f` on a fresh thread inside the netns `fd` (or the caller's, if `None`).
pub fn run_in<T: Send>(fd: Option<&File>, f: impl FnOnce() -> T + Send) -> io::Result<T> {
    std::thread::scope(|s| {
        s.spawn(|| {
            if let Some(fd) = fd {
                setns(fd, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            }
            Ok(f())
        })
        .join()
        .map_err(|_| io::Error::other("netns worker thread panicked"))?
    })
}

/// `/run/netns` as iproute2 sets it up: a shared mount, so namespaces
/// mounted here are visible to other mount namespaces.
fn prepare_dir() -> io::Result<()> {
    std::fs::create_dir_all(NETNS_DIR)?;
    let shared = |flags| mount(None::<&str>, NETNS_DIR, None::<&str>, flags, None::<&str>);
    if let Err(nix::errno::Errno::EINVAL) = shared(MsFlags::MS_SHARED | MsFlags::MS_REC) {
        mount(
            Some(NETNS_DIR),
            NETNS_DIR,
            None::<&str>,
            MsFlags::MS_BIND | MsFlags::MS_REC,
            None::<&str>,
        )?;
        shared(MsFlags::MS_SHARED | MsFlags::MS_REC)?;
    }
    Ok(())
}

/// Creates the named netns (like `ip netns add`), without forking.
pub fn create(name: &str) -> io::Result<()> {
    prepare_dir()?;
    let target = path(name);
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(&target)?;
    let result = std::thread::scope(|s| {
        s.spawn(|| -> io::Result<()> {
            unshare(CloneFlags::CLONE_NEWNET)?;
            mount(
                Some("/proc/thread-self/ns/net"),
                &target,
                None::<&str>,
                MsFlags::MS_BIND,
                None::<&str>,
            )?;
            Ok(())
        })
        .join()
        .unwrap_or_else(|_| Err(io::Error::other("netns worker thread panicked")))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&target);
    }
    result
}

/// Removes the named netns (like `ip netns del`). The kernel frees its
/// objects once nothing else holds the namespace.
pub fn delete(name: &str) -> io::Result<()> {
    let target = path(name);
    match umount2(&target, MntFlags::MNT_DETACH) {
        Ok(()) | Err(nix::errno::Errno::EINVAL) | Err(nix::errno::Errno::ENOENT) => {}
        Err(e) => return Err(e.into()),
    }
    match std::fs::remove_file(&target) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Pids of processes whose netns is the named one: deleting the mount would
/// not free it while they live.
pub fn processes_in(name: &str) -> io::Result<Vec<u32>> {
    let ns = std::fs::metadata(path(name))?;
    let mut pids = vec![];
    for entry in std::fs::read_dir("/proc")?.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|s| s.parse::<u32>().ok())
        else {
            continue;
        };
        if let Ok(m) = std::fs::metadata(entry.path().join("ns/net"))
            && m.ino() == ns.ino()
            && m.dev() == ns.dev()
        {
            pids.push(pid);
        }
    }
    Ok(pids)
}
