//! The nftables ruleset generation of the calling thread's netns: a counter
//! the kernel bumps on every committed change to any table there. An
//! unchanged generation means an unchanged table, so observation can skip
//! listing it (`nft -j list table` of 1,000 services takes ~300 ms).
//!
//! One `NFT_MSG_GETGEN` request over `NETLINK_NETFILTER`; the reply
//! (`NFT_MSG_NEWGEN`) carries `NFTA_GEN_ID`, big-endian (uapi
//! linux/netfilter/nf_tables.h, linux/netfilter/nfnetlink.h).

use rtnetlink::packet_core::{
    ErrorBuffer, NLM_F_REQUEST, NLMSG_ERROR, NetlinkBuffer, NlasIterator,
};
use rtnetlink::sys::Socket;
use std::io;

const NETLINK_NETFILTER: isize = 12;
const NFNL_SUBSYS_NFTABLES: u16 = 10;
const NFT_MSG_NEWGEN: u16 = 15;
const NFT_MSG_GETGEN: u16 = 16;
const NFTA_GEN_ID: u16 = 1;
/// `struct nfgenmsg`: family, version, res_id (be16).
const NFGENMSG_LEN: usize = 4;
const NLMSG_HDRLEN: usize = 16;

/// The current generation id.
pub fn current() -> io::Result<u32> {
    on(&socket()?)
}

/// (netns inode, generation) here, on a socket of its own.
pub fn stamp() -> io::Result<(u64, u32)> {
    stamp_on(&socket()?)
}

fn socket() -> io::Result<Socket> {
    let mut sock = Socket::new(NETLINK_NETFILTER)?;
    sock.bind_auto()?;
    Ok(sock)
}

/// (netns inode, generation) of the calling thread's netns, asked on an
/// open NETLINK_NETFILTER socket: a netns made anew restarts its count.
pub fn stamp_on(sock: &Socket) -> io::Result<(u64, u32)> {
    use std::os::unix::fs::MetadataExt;
    let ino = std::fs::metadata("/proc/thread-self/ns/net")?.ino();
    Ok((ino, on(sock)?))
}

/// The current generation, asked on an open NETLINK_NETFILTER socket.
pub fn on(sock: &Socket) -> io::Result<u32> {
    let mut req = vec![0u8; NLMSG_HDRLEN + NFGENMSG_LEN];
    let len = req.len() as u32;
    let mut hdr = NetlinkBuffer::new(&mut req[..]);
    hdr.set_length(len);
    hdr.set_message_type((NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_GETGEN);
    hdr.set_flags(NLM_F_REQUEST);
    hdr.set_sequence_number(1);
    sock.send(&req, 0)?;
    let mut buf = Vec::with_capacity(4096);
    let n = sock.recv(&mut buf, 0)?;
    parse(&buf[..n])
}

fn parse(data: &[u8]) -> io::Result<u32> {
    let invalid = |what: &str| io::Error::new(io::ErrorKind::InvalidData, what.to_string());
    let msg = NetlinkBuffer::new_checked(data).map_err(|_| invalid("truncated netlink reply"))?;
    let body = msg.payload();
    match msg.message_type() {
        NLMSG_ERROR => {
            let err = ErrorBuffer::new_checked(body).map_err(|_| invalid("truncated error"))?;
            Err(match err.code() {
                Some(c) => io::Error::from_raw_os_error(-c.get()),
                None => invalid("an ACK instead of the generation"),
            })
        }
        t if t == (NFNL_SUBSYS_NFTABLES << 8) | NFT_MSG_NEWGEN && body.len() >= NFGENMSG_LEN => {
            NlasIterator::new(&body[NFGENMSG_LEN..])
                .map_while(Result::ok)
                .find(|a| a.kind() == NFTA_GEN_ID)
                .and_then(|a| {
                    a.value()
                        .get(..4)
                        .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
                })
                .ok_or_else(|| invalid("no NFTA_GEN_ID in the reply"))
        }
        _ => Err(invalid("an unexpected reply to NFT_MSG_GETGEN")),
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_committed_change_moves_the_generation() {
        // Live: needs root and nft, as the whole suite does (.ci/run installs nft).
        let ns = format!("nl-gen-{}", std::process::id());
        let ip = |a: &str| {
            std::process::Command::new("ip")
                .args(a.split(' '))
                .status()
                .unwrap()
        };
        assert!(ip(&format!("netns add {ns}")).success());
        let fd = crate::netns::open(&ns).unwrap();
        let before = crate::netns::run_in(Some(&fd), super::current)
            .unwrap()
            .unwrap();
        let again = crate::netns::run_in(Some(&fd), super::current)
            .unwrap()
            .unwrap();
        let nft = std::process::Command::new("ip")
            .args(["netns", "exec", &ns, "nft", "add", "table", "inet", "t"])
            .status()
            .unwrap();
        let after = crate::netns::run_in(Some(&fd), super::current)
            .unwrap()
            .unwrap();
        ip(&format!("netns del {ns}"));
        assert!(nft.success());
        assert_eq!(before, again, "nothing changed, nothing moves");
        assert_ne!(before, after, "a new table is a new generation");
    }
}
