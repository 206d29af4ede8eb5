//! The kernel backend over rtnetlink: one connection per netns. `Kernel`
//! holds the netlink operations; `KernelBackend` is the `Backend` for the
//! topology's netns.

mod backend;
mod dump;
pub mod events;
mod observe;
mod ops;
pub mod prefetch;
mod wiring;

pub use backend::{IN_FLIGHT, KernelBackend, foreign_in_netns};
pub use ops::Index;

/// For `examples/dump_floor`: the kernel dumps of an observation, undecoded.
#[doc(hidden)]
pub fn observation_floor(tables: &[u32]) -> std::io::Result<usize> {
    dump::floor(tables)
}

use crate::error::{Error, Result};
use crate::netns;
use dump::DumpSocket;
use rtnetlink::Handle;
use std::sync::{Arc, Mutex};

/// What a `Kernel` is made of, opened on a thread inside its netns (a
/// socket stays in the netns it was created in).
struct Sockets {
    /// The rtnetlink connection: made later, on first use, when only
    /// dumps were asked for (observing 200 containers' netns).
    conn: Option<(Conn, Handle)>,
    dumper: DumpSocket,
}

type Conn = rtnetlink::proto::Connection<rtnetlink::packet_route::RouteNetlinkMessage>;

impl Sockets {
    fn open(rt: &tokio::runtime::Handle) -> std::io::Result<Sockets> {
        Ok(Sockets {
            conn: Some(connection(rt)?),
            dumper: DumpSocket::new()?,
        })
    }

    fn dumper_only() -> std::io::Result<Sockets> {
        Ok(Sockets {
            conn: None,
            dumper: DumpSocket::new()?,
        })
    }
}

/// An rtnetlink connection in the calling thread's netns.
fn connection(rt: &tokio::runtime::Handle) -> std::io::Result<(Conn, Handle)> {
    let _guard = rt.enter();
    let (conn, handle, _) = rtnetlink::new_connection()?;
    Ok((conn, handle))
}

/// netloom's local routes (the services' VIPs) in the netns of the
/// calling thread: one plain dump socket, for callers already running
/// inside the netns (no connection of its own to set up).
pub fn local_vips_here() -> std::io::Result<Vec<std::net::IpAddr>> {
    let mut d = DumpSocket::new()?;
    let mut out = d.local_routes(crate::model::Family::Ipv4, crate::ownership::NETLOOM_PROTO)?;
    out.extend(d.local_routes(crate::model::Family::Ipv6, crate::ownership::NETLOOM_PROTO)?);
    Ok(out.into_iter().map(|n| n.addr()).collect())
}

/// A netlink connection into the topology's netns.
#[derive(Clone)]
pub struct Kernel {
    /// Made on first use when the connection was opened for dumps only.
    handle: Arc<std::sync::OnceLock<Handle>>,
    /// A plain socket in the same netns for lean dumps (see `dump`).
    dumper: Arc<Mutex<DumpSocket>>,
    /// The netns file, for work that must run inside it (sysctls).
    fd: Option<Arc<std::fs::File>>,
}

impl Kernel {
    /// The rtnetlink connection, opened inside the netns on first use.
    pub fn handle(&self) -> Result<Handle> {
        if let Some(h) = self.handle.get() {
            return Ok(h.clone());
        }
        let rt = tokio::runtime::Handle::current();
        let (conn, h) = netns::run_in(self.fd.as_deref(), || connection(&rt))
            .and_then(|r| r)
            .map_err(|e| Error::io("open a netlink socket", e))?;
        tokio::spawn(conn);
        Ok(self.handle.get_or_init(|| h).clone())
    }

    /// Connects inside the named netns (or the host's). `Ok(None)` when the
    /// named netns does not exist.
    pub async fn connect(netns: Option<&str>) -> Result<Option<Kernel>> {
        let fd = match netns {
            Some(n) if !netns::exists(n) => return Ok(None),
            Some(n) => Some(netns::open(n).map_err(|e| Error::io(format!("open netns {n}"), e))?),
            None => None,
        };
        Self::connect_fd(fd.as_ref()).map(Some)
    }

    /// Connects inside the netns of an open namespace file (`None`: ours).
    pub fn connect_fd(fd: Option<&std::fs::File>) -> Result<Kernel> {
        let rt = tokio::runtime::Handle::current();
        let sockets = netns::run_in(fd, || Sockets::open(&rt)).and_then(|r| r);
        Kernel::from_sockets(sockets, fd)
    }

    /// A connection from sockets opened inside the netns of `fd`.
    fn from_sockets(
        sockets: std::io::Result<Sockets>,
        fd: Option<&std::fs::File>,
    ) -> Result<Kernel> {
        let Sockets { conn, dumper } =
            sockets.map_err(|e| Error::io("open a netlink socket", e))?;
        let handle = Arc::new(std::sync::OnceLock::new());
        if let Some((conn, h)) = conn {
            tokio::spawn(conn);
            let _ = handle.set(h);
        }
        Ok(Kernel {
            handle,
            dumper: Arc::new(Mutex::new(dumper)),
            fd: fd
                .map(|f| f.try_clone())
                .transpose()
                .map_err(|e| Error::io("keep the netns open", e))?
                .map(Arc::new),
        })
    }

    /// Writes `/proc/sys/net/…` inside this netns (sysctls follow the
    /// writing thread's netns, so the write runs on a thread inside it).
    pub async fn sysctl(&self, path: &str, value: &str) -> Result<()> {
        self.write_proc(format!("/proc/sys/net/{path}"), value.to_string())
            .await
    }

    /// Writes one `/proc/sys` file from a thread inside this netns.
    async fn write_proc(&self, path: String, value: String) -> Result<()> {
        let fd = self.fd.clone();
        tokio::task::spawn_blocking(move || {
            netns::run_in(fd.as_deref(), || std::fs::write(&path, &value))
                .and_then(|r| r)
                .map_err(|e| Error::io(format!("write {path}"), e))
        })
        .await
        .map_err(|e| Error::task("sysctl", e))?
    }
}

impl Kernel {
    /// Sets one sysctl here; one without a value (a restore of a value
    /// never read) is left as it is.
    pub async fn set_sysctl(&self, s: &crate::resource::SysctlRes) -> Result<()> {
        let Some(value) = s.value.clone().or_else(|| s.restore.clone()) else {
            return Ok(());
        };
        self.write_proc(crate::resource::sysctl_path(&s.key), value)
            .await
    }

    /// Reads sysctls here: a key that does not exist reads as `None`.
    pub async fn read_sysctls(&self, keys: Vec<String>) -> Result<crate::resource::SysctlObs> {
        // Every observation asks: none wanted is no thread in the netns.
        if keys.is_empty() {
            return Ok(Default::default());
        }
        let fd = self.fd.clone();
        tokio::task::spawn_blocking(move || {
            netns::run_in(fd.as_deref(), || {
                keys.into_iter()
                    .map(|k| {
                        let path = crate::resource::sysctl_path(&k);
                        let v = std::fs::read_to_string(&path)
                            .ok()
                            .or_else(|| std::fs::read_to_string(inherited(&path)?).ok());
                        (k, v.map(|v| crate::resource::normalize_sysctl(&v)))
                    })
                    .collect()
            })
            .map_err(|e| Error::io("enter the netns to read sysctls", e))
        })
        .await
        .map_err(|e| Error::task("sysctl", e))?
    }
}

/// An interface's `conf` sysctl before the interface exists: the value it
/// will start with, from `conf/default` (the kernel copies those).
fn inherited(path: &str) -> Option<String> {
    let rest = path.strip_prefix("/proc/sys/net/")?;
    let mut parts = rest.splitn(4, '/');
    let (family, conf, iface, key) = (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
    let per_iface = matches!(family, "ipv4" | "ipv6") && conf == "conf";
    (per_iface && iface != "all" && iface != "default")
        .then(|| format!("/proc/sys/net/{family}/conf/default/{key}"))
}

/// A running container's netns: the open namespace file (to create veth
/// ends in it) and a connection inside it.
pub struct ContainerNet {
    pub fd: std::fs::File,
    pub kernel: Kernel,
}

impl ContainerNet {
    /// Opens `/proc/PID/ns/net` of each (name, pid): an fd, never a bare
    /// pid, from then on. The sockets of all are made on one thread (a
    /// thread per netns made observing 200 containers slow).
    pub fn open_many(containers: &[(String, u32)]) -> Vec<Result<ContainerNet>> {
        let files: Vec<Result<std::fs::File>> = containers
            .iter()
            .map(|(name, pid)| {
                let path = format!("/proc/{pid}/ns/net");
                std::fs::File::open(&path).map_err(|e| {
                    Error::io(format!("open the netns of container {name} ({path})"), e)
                })
            })
            .collect();
        let open: Vec<&std::fs::File> = files.iter().filter_map(|f| f.as_ref().ok()).collect();
        // Dump sockets only: observing needs no more, and the rtnetlink
        // connection of each is made when something is changed there.
        let mut sockets = match netns::run_in_each(&open, Sockets::dumper_only) {
            Ok(s) => s.into_iter(),
            Err(e) => {
                let msg = e.to_string();
                let failed =
                    || Error::io("open a netlink socket", std::io::Error::other(msg.clone()));
                return containers.iter().map(|_| Err(failed())).collect();
            }
        };
        files
            .into_iter()
            .map(|f| {
                let fd = f?;
                let sockets = sockets
                    .next()
                    .expect("one result per open netns")
                    .and_then(|r| r);
                let kernel = Kernel::from_sockets(sockets, Some(&fd))?;
                Ok(ContainerNet { fd, kernel })
            })
            .collect()
    }
}
