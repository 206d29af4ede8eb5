//! The kernel backend over rtnetlink: one connection per netns.

mod dump;
mod observe;
mod ops;

pub use ops::Index;

use crate::error::{Error, Result};
use crate::netns;
use dump::DumpSocket;
use rtnetlink::Handle;
use std::sync::{Arc, Mutex};

/// A netlink connection into the topology's netns.
#[derive(Clone)]
pub struct Kernel {
    pub handle: Handle,
    pub netns: Option<String>,
    /// A plain socket in the same netns for lean dumps (see `dump`).
    dumper: Arc<Mutex<DumpSocket>>,
}

impl Kernel {
    /// Connects inside the named netns (or the host's). `Ok(None)` when the
    /// named netns does not exist.
    pub async fn connect(netns: Option<&str>) -> Result<Option<Kernel>> {
        let fd = match netns {
            Some(n) if !netns::exists(n) => return Ok(None),
            Some(n) => Some(netns::open(n).map_err(|e| Error::io(format!("open netns {n}"), e))?),
            None => None,
        };
        let rt = tokio::runtime::Handle::current();
        let ((conn, handle, _), dumper) = netns::run_in(fd.as_ref(), move || {
            let _guard = rt.enter();
            Ok::<_, std::io::Error>((rtnetlink::new_connection()?, DumpSocket::new()?))
        })
        .and_then(|r| r)
        .map_err(|e| Error::io("open a netlink socket", e))?;
        tokio::spawn(conn);
        Ok(Some(Kernel {
            handle,
            netns: netns.map(str::to_string),
            dumper: Arc::new(Mutex::new(dumper)),
        }))
    }
}
