//! The kernel's link and address dumps, started while the topology files
//! load. They are most of a large topology's observation (at 6,000 links
//! the link dump alone is ~50 ms of kernel time), need nothing from the
//! files but the netns, and run on the other core while the files parse.
//!
//! The netns is a guess read from the files' text (`spec::netns_hint`). A
//! dump is used only by an observation of the very same netns (the same
//! namespace inode, not just the name), once; otherwise it is dropped and
//! the observation dumps as it always does.

use super::dump::{DumpSocket, RawLink};
use crate::observed::AddrObs;
use std::fs::File;
use std::os::unix::fs::MetadataExt;
use std::sync::Mutex;
use std::thread::JoinHandle;

/// Links, and addresses by link index, as `DumpSocket` decodes them.
pub(super) type Dumps = (Vec<RawLink>, Vec<(u32, AddrObs)>);
type Dumped = std::io::Result<Dumps>;

struct Started {
    /// The namespace dumped, as (device, inode); `None` for the caller's.
    id: Option<(u64, u64)>,
    thread: JoinHandle<Dumped>,
}

/// One prefetch per process: the first observation takes it.
static SLOT: Mutex<Option<Started>> = Mutex::new(None);

fn id_of(f: &File) -> Option<(u64, u64)> {
    f.metadata().ok().map(|m| (m.dev(), m.ino()))
}

/// Starts dumping the links and addresses of `netns` (`None`: the host's)
/// on a thread of its own. A netns that does not exist is not dumped.
pub fn start(netns: Option<&str>) {
    let fd = match netns {
        Some(n) => match crate::netns::open(n) {
            Ok(f) => Some(f),
            Err(_) => return,
        },
        None => None,
    };
    let id = fd.as_ref().and_then(id_of);
    if netns.is_some() && id.is_none() {
        return;
    }
    let spawned = std::thread::Builder::new()
        .name("prefetch".into())
        .spawn(move || {
            if let Some(fd) = &fd {
                nix::sched::setns(fd, nix::sched::CloneFlags::CLONE_NEWNET)
                    .map_err(std::io::Error::from)?;
            }
            let mut d = DumpSocket::new()?;
            Ok((d.links()?, d.addresses()?))
        });
    if let Ok(thread) = spawned {
        *SLOT.lock().expect("prefetch lock") = Some(Started { id, thread });
    }
}

/// The prefetched dumps, if they are of the netns of `fd` (`None`: the
/// caller's) and succeeded; waits for them to finish.
pub(super) fn take(fd: Option<&File>) -> Option<Dumps> {
    let started = SLOT.lock().expect("prefetch lock").take()?;
    let same = match fd {
        Some(f) => started.id.is_some() && id_of(f) == started.id,
        None => started.id.is_none(),
    };
    // Another netns's dump is not waited for: its thread ends on its own.
    same.then(|| started.thread.join().ok()?.ok()).flatten()
}

/// Drops a prefetch no observation took: after the plan's observation, a
/// dump from before the files loaded must never stand for the netns.
pub fn discard() {
    SLOT.lock().expect("prefetch lock").take();
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Against the real kernel: a dump stands only for the namespace it
    /// was made in, once.
    #[test]
    fn a_dump_is_taken_only_for_its_own_netns_once() {
        let tag = std::process::id();
        let (a, b) = (format!("nlpf{tag}a"), format!("nlpf{tag}b"));
        crate::netns::create(&a).expect("netns a");
        crate::netns::create(&b).expect("netns b");
        let (fa, fb) = (
            crate::netns::open(&a).unwrap(),
            crate::netns::open(&b).unwrap(),
        );

        start(Some(&a));
        let other = take(Some(&fb));
        start(Some(&a));
        let own = take(Some(&fa));
        let again = take(Some(&fa));
        start(Some(&a));
        discard();
        let discarded = take(Some(&fa));
        let _ = crate::netns::delete(&a);
        let _ = crate::netns::delete(&b);

        assert!(other.is_none(), "a dump of another netns was used");
        let (links, _) = own.expect("the dump of its own netns");
        assert_eq!(
            links.iter().map(|l| l.name.as_str()).collect::<Vec<_>>(),
            ["lo"]
        );
        assert!(again.is_none(), "a dump was taken twice");
        assert!(discarded.is_none(), "a discarded dump was used");
    }
}
