//! The kernel backend over rtnetlink: one connection per netns.

mod observe;
mod ops;

pub use ops::Index;

use crate::error::{Error, Result};
use crate::netns;
use rtnetlink::Handle;

/// A netlink connection into the topology's netns.
#[derive(Clone)]
pub struct Kernel {
    pub handle: Handle,
    pub netns: Option<String>,
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
        let (conn, handle, _) = netns::run_in(fd.as_ref(), move || {
            let _guard = rt.enter();
            rtnetlink::new_connection()
        })
        .and_then(|r| r)
        .map_err(|e| Error::io("open a netlink socket", e))?;
        tokio::spawn(conn);
        Ok(Some(Kernel {
            handle,
            netns: netns.map(str::to_string),
        }))
    }
}
