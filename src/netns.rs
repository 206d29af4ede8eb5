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

/// A fresh, empty netns that lives as long as the returned file: made on
/// a short-lived thread, so nothing else ever enters it (doctor's probes).
pub fn scratch() -> io::Result<File> {
    std::thread::scope(|s| {
        s.spawn(|| {
            unshare(CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
            File::open("/proc/thread-self/ns/net")
        })
        .join()
        .map_err(|_| io::Error::other("netns worker thread panicked"))?
    })
}

/// Runs `f` once inside each netns of `fds`, in order, on one fresh thread
/// that enters them one after another (and ends there): opening hundreds of
/// namespaces costs one thread, not one each.
pub fn run_in_each<T: Send>(
    fds: &[&File],
    f: impl Fn() -> T + Send + Sync,
) -> io::Result<Vec<io::Result<T>>> {
    std::thread::scope(|s| {
        s.spawn(|| {
            fds.iter()
                .map(|fd| {
                    setns(fd, CloneFlags::CLONE_NEWNET).map_err(io::Error::from)?;
                    Ok(f())
                })
                .collect()
        })
        .join()
        .map_err(|_| io::Error::other("netns worker thread panicked"))
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

/// ICMP (or ICMPv6) echo from inside the netns `fd` to `dst`: up to
/// `tries` requests, each waiting up to `timeout` for its reply. The round
/// trip, or `None`.
pub fn ping(
    fd: &File,
    dst: std::net::IpAddr,
    timeout: std::time::Duration,
    tries: u32,
) -> io::Result<Option<std::time::Duration>> {
    use nix::sys::socket::{
        AddressFamily, MsgFlags, SockFlag, SockProtocol, SockType, SockaddrStorage, recvfrom,
        sendto, setsockopt, socket, sockopt,
    };
    use std::os::fd::AsRawFd;
    // (family, protocol, echo request type, echo reply type)
    let (family, proto, request, reply) = match dst {
        std::net::IpAddr::V4(_) => (AddressFamily::Inet, SockProtocol::Icmp, 8u8, 0u8),
        std::net::IpAddr::V6(_) => (AddressFamily::Inet6, SockProtocol::IcmpV6, 128, 129),
    };
    run_in(
        Some(fd),
        move || -> io::Result<Option<std::time::Duration>> {
            let sock = socket(family, SockType::Raw, SockFlag::SOCK_CLOEXEC, proto)?;
            setsockopt(
                &sock,
                sockopt::ReceiveTimeout,
                &nix::sys::time::TimeVal::new(0, 100_000),
            )?;
            let id = (std::process::id() & 0xffff) as u16;
            let to = SockaddrStorage::from(std::net::SocketAddr::new(dst, 0));
            for seq in 0..tries as u16 {
                let [i0, i1] = id.to_be_bytes();
                let [s0, s1] = seq.to_be_bytes();
                let mut pkt = [
                    request, 0, 0, 0, i0, i1, s0, s1, b'n', b'l', b'o', b'o', b'm', 0, 0, 0,
                ];
                // On a raw ICMPv6 socket the kernel fills in the checksum.
                if dst.is_ipv4() {
                    let sum = checksum(&pkt);
                    pkt[2..4].copy_from_slice(&sum.to_be_bytes());
                }
                let start = std::time::Instant::now();
                sendto(sock.as_raw_fd(), &pkt, &to, MsgFlags::empty())?;
                let mut buf = [0u8; 1500];
                while start.elapsed() < timeout {
                    let (n, from) = match recvfrom::<SockaddrStorage>(sock.as_raw_fd(), &mut buf) {
                        Ok(x) => x,
                        Err(nix::errno::Errno::EAGAIN) => continue,
                        Err(e) => return Err(e.into()),
                    };
                    let from = from.and_then(|f| {
                        f.as_sockaddr_in()
                            .map(|a| std::net::IpAddr::V4(a.ip()))
                            .or_else(|| f.as_sockaddr_in6().map(|a| std::net::IpAddr::V6(a.ip())))
                    });
                    // A raw socket sees every ICMP message (IPv4's with
                    // their IP header): pick our echo reply.
                    let skip = if dst.is_ipv4() {
                        ((buf[0] & 0x0f) as usize) * 4
                    } else {
                        0
                    };
                    let Some(icmp) = buf.get(skip..n) else {
                        continue;
                    };
                    if icmp.len() >= 8
                        && icmp[0] == reply
                        && from == Some(dst)
                        && icmp[4..6] == id.to_be_bytes()
                        && icmp[6..8] == seq.to_be_bytes()
                    {
                        return Ok(Some(start.elapsed()));
                    }
                }
            }
            Ok(None)
        },
    )?
}

fn checksum(data: &[u8]) -> u16 {
    let mut sum: u32 = data
        .chunks(2)
        .map(|c| u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)]) as u32)
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    !(sum as u16)
}
