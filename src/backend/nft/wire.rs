//! nf_tables over netlink, spoken directly: one batch (a transaction the
//! kernel commits whole or not at all) per write, and the two dumps
//! observation needs (tables, and the rules of netloom's table). The `nft`
//! binary's parse, evaluation and cache fetch cost more than the kernel's
//! own work for a table of a thousand rules; netloom already knows the
//! structure it wants, so it sends that.
//!
//! Numbers from uapi linux/netfilter/nf_tables.h and nfnetlink.h; the
//! layout of each expression is the one `nft --debug=netlink,mnl` shows nft
//! 1.0.6 sending for the same rule, so `nft list` prints netloom's rules
//! exactly as if nft had written them.

use rtnetlink::packet_core::{ErrorBuffer, NLMSG_ERROR, NetlinkBuffer, NlasIterator};
use rtnetlink::sys::Socket;
use std::io;

const NETLINK_NETFILTER: isize = 12;
const SUBSYS: u16 = 10; // NFNL_SUBSYS_NFTABLES
const BATCH_BEGIN: u16 = 0x10; // NFNL_MSG_BATCH_BEGIN (NLMSG_MIN_TYPE)
const BATCH_END: u16 = 0x11;
pub const NFPROTO_INET: u8 = 1;

const NLM_F_REQUEST: u16 = 0x1;
const NLM_F_ACK: u16 = 0x4;
const NLM_F_ECHO: u16 = 0x8;
const NLM_F_DUMP: u16 = 0x300;
const NLM_F_CREATE: u16 = 0x400;
const NLM_F_APPEND: u16 = 0x800;
const NLMSG_DONE: u16 = 3;
pub const NLA_F_NESTED: u16 = 0x8000;

/// `enum nf_tables_msg_types`.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub enum Msg {
    NewTable = 0,
    GetTable = 1,
    DelTable = 2,
    NewChain = 3,
    DelChain = 5,
    NewRule = 6,
    GetRule = 7,
    DelRule = 8,
    NewSet = 9,
    DelSet = 11,
    NewSetElem = 12,
    DelSetElem = 14,
}

/// Attributes, appended to a message or a nest.
#[derive(Default)]
pub struct Attrs(pub Vec<u8>);

impl Attrs {
    pub fn bytes(&mut self, kind: u16, v: &[u8]) -> &mut Self {
        let len = 4 + v.len();
        self.0.extend_from_slice(&(len as u16).to_ne_bytes());
        self.0.extend_from_slice(&kind.to_ne_bytes());
        self.0.extend_from_slice(v);
        self.pad();
        self
    }
    /// A NUL-terminated string, as libmnl's `mnl_attr_put_strz`.
    pub fn str(&mut self, kind: u16, s: &str) -> &mut Self {
        let mut v = s.as_bytes().to_vec();
        v.push(0);
        self.bytes(kind, &v)
    }
    pub fn be32(&mut self, kind: u16, v: u32) -> &mut Self {
        self.bytes(kind, &v.to_be_bytes())
    }
    pub fn be64(&mut self, kind: u16, v: u64) -> &mut Self {
        self.bytes(kind, &v.to_be_bytes())
    }
    pub fn u8(&mut self, kind: u16, v: u8) -> &mut Self {
        self.bytes(kind, &[v])
    }
    /// A nest written in place: its header first, its length once `f` is
    /// done. Callers keep nests under 64 KiB (set elements go in chunks).
    pub fn nest(&mut self, kind: u16, f: impl FnOnce(&mut Attrs)) -> &mut Self {
        let at = self.0.len();
        self.0.extend_from_slice(&[0; 4]);
        f(self);
        let len = u16::try_from(self.0.len() - at).expect("a netlink attribute under 64 KiB");
        self.0[at..at + 2].copy_from_slice(&len.to_ne_bytes());
        self.0[at + 2..at + 4].copy_from_slice(&(kind | NLA_F_NESTED).to_ne_bytes());
        self
    }
    fn pad(&mut self) {
        while !self.0.len().is_multiple_of(4) {
            self.0.push(0);
        }
    }
}

/// One transaction: messages between BATCH_BEGIN and BATCH_END.
pub struct Batch {
    buf: Vec<u8>,
    /// What each message does, for an error that names it.
    whats: Vec<String>,
    seq0: u32,
}

/// A rule the kernel reports (echoed after a commit, or dumped).
#[derive(Clone, Debug, PartialEq)]
pub struct RuleSeen {
    pub chain: String,
    pub comment: String,
    pub handle: u64,
}

fn header(buf: &mut Vec<u8>, kind: u16, flags: u16, seq: u32, family: u8, res_id: u16) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&0u32.to_ne_bytes()); // length, set by `finish`
    buf.extend_from_slice(&kind.to_ne_bytes());
    buf.extend_from_slice(&flags.to_ne_bytes());
    buf.extend_from_slice(&seq.to_ne_bytes());
    buf.extend_from_slice(&0u32.to_ne_bytes());
    // struct nfgenmsg: family, version (NFNETLINK_V0), res_id (be16)
    buf.push(family);
    buf.push(0);
    buf.extend_from_slice(&res_id.to_be_bytes());
    at
}

fn finish(buf: &mut [u8], at: usize) {
    let len = (buf.len() - at) as u32;
    buf[at..at + 4].copy_from_slice(&len.to_ne_bytes());
}

impl Default for Batch {
    fn default() -> Self {
        Batch::new()
    }
}

impl Batch {
    pub fn new() -> Batch {
        let seq0 = 1;
        let mut buf = Vec::with_capacity(64 * 1024);
        let at = header(&mut buf, BATCH_BEGIN, NLM_F_REQUEST, seq0, 0, SUBSYS);
        finish(&mut buf, at);
        Batch {
            buf,
            whats: vec![],
            seq0,
        }
    }

    pub fn len(&self) -> usize {
        self.whats.len()
    }

    /// Appends one message; `echo`: the kernel sends the object back, as
    /// committed (with its handle).
    pub fn push(&mut self, msg: Msg, echo: bool, what: String, attrs: &Attrs) {
        let mut flags = NLM_F_REQUEST;
        match msg {
            Msg::NewRule => flags |= NLM_F_CREATE | NLM_F_APPEND,
            Msg::NewTable | Msg::NewChain | Msg::NewSet | Msg::NewSetElem => flags |= NLM_F_CREATE,
            _ => {}
        }
        if echo {
            flags |= NLM_F_ECHO;
        }
        let seq = self.seq0 + 1 + self.whats.len() as u32;
        let at = header(
            &mut self.buf,
            (SUBSYS << 8) | msg as u16,
            flags,
            seq,
            NFPROTO_INET,
            0,
        );
        self.buf.extend_from_slice(&attrs.0);
        finish(&mut self.buf, at);
        self.whats.push(what);
    }

    /// The size of the batch's messages, for `open`.
    pub fn size(&self) -> usize {
        self.buf.len()
    }

    /// Sends the batch and waits for the kernel's verdict on it: the rules
    /// pushed with `echo`, as committed. The last message asks for an ACK:
    /// errors of earlier ones come before it.
    pub fn commit(mut self, sock: &Socket) -> Result<Vec<RuleSeen>, Refused> {
        if self.whats.is_empty() {
            return Ok(vec![]);
        }
        let last = self.seq0 + self.whats.len() as u32;
        // The ACK flag on the last message, before END is appended.
        let mut off = 0;
        let mut last_at = 0;
        while off < self.buf.len() {
            let len = u32::from_ne_bytes(self.buf[off..off + 4].try_into().unwrap()) as usize;
            last_at = off;
            off += len;
        }
        let f = u16::from_ne_bytes(self.buf[last_at + 6..last_at + 8].try_into().unwrap());
        self.buf[last_at + 6..last_at + 8].copy_from_slice(&(f | NLM_F_ACK).to_ne_bytes());
        let at = header(&mut self.buf, BATCH_END, NLM_F_REQUEST, last + 1, 0, SUBSYS);
        finish(&mut self.buf, at);

        sock.send(&self.buf, 0).map_err(Refused::Io)?;
        let mut echoed = vec![];
        let mut first_err: Option<(u32, i32)> = None;
        let mut buf = Vec::with_capacity(1 << 20);
        loop {
            buf.clear();
            let n = sock.recv(&mut buf, 0).map_err(Refused::Io)?;
            let mut off = 0;
            while off < n {
                let Ok(m) = NetlinkBuffer::new_checked(&buf[off..n]) else {
                    break;
                };
                let len = m.length() as usize;
                let seq = m.sequence_number();
                match m.message_type() {
                    NLMSG_ERROR => {
                        let code = ErrorBuffer::new_checked(m.payload())
                            .ok()
                            .and_then(|e| e.code())
                            .map(|c| -c.get());
                        if let Some(c) = code {
                            first_err.get_or_insert((seq, c));
                        }
                        // The last message's answer, or the batch's own
                        // (refused as a whole: permission, commit).
                        if seq == last || (seq == self.seq0 && code.is_some()) {
                            return match first_err {
                                None => Ok(echoed),
                                Some((s, c)) => Err(Refused::Kernel {
                                    what: s
                                        .checked_sub(self.seq0 + 1)
                                        .and_then(|i| self.whats.get(i as usize))
                                        .cloned()
                                        .unwrap_or_else(|| "the transaction".into()),
                                    errno: c,
                                }),
                            };
                        }
                    }
                    t if t == (SUBSYS << 8) | Msg::NewRule as u16 => {
                        echoed.extend(parse_rule(m.payload()));
                    }
                    _ => {}
                }
                if len == 0 {
                    break;
                }
                off += (len + 3) & !3;
            }
        }
    }
}

/// Why a batch did not commit.
#[derive(Debug)]
pub enum Refused {
    /// The socket itself failed.
    Io(io::Error),
    /// The kernel refused a message (so the whole transaction).
    Kernel { what: String, errno: i32 },
}

impl std::fmt::Display for Refused {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refused::Io(e) => write!(f, "nf_tables netlink: {e}"),
            Refused::Kernel { what, errno } => write!(
                f,
                "the kernel refused {what}: {}",
                io::Error::from_raw_os_error(*errno)
            ),
        }
    }
}

/// Closes a socket that took part in a transaction, off the caller's path:
/// closing a NETLINK_NETFILTER socket waits for nf_tables to finish
/// releasing what the last transaction removed (an RCU grace period,
/// ~15 ms measured here), which by then has mostly passed on its own.
pub fn close_later(sock: Socket) {
    let _ = std::thread::Builder::new()
        .name("nft-close".into())
        .spawn(move || {
            std::thread::sleep(std::time::Duration::from_millis(200));
            drop(sock);
        });
}

/// A NETLINK_NETFILTER socket in the calling thread's netns, with buffers
/// for a batch of `size` bytes and the replies to it (echoes of every
/// rule would overflow the default receive buffer and be dropped).
pub fn open(size: usize) -> io::Result<Socket> {
    use std::os::fd::{AsRawFd, BorrowedFd};
    let mut sock = Socket::new(NETLINK_NETFILTER)?;
    sock.bind_auto()?;
    // SAFETY: the fd is the socket's, alive for this borrow.
    let fd = unsafe { BorrowedFd::borrow_raw(sock.as_raw_fd()) };
    let want = (size + 64 * 1024).max(1 << 20);
    use nix::sys::socket::{setsockopt, sockopt};
    // FORCE needs CAP_NET_ADMIN, which writing nf_tables needs anyway;
    // the plain option (capped by rmem_max) is the fallback.
    if setsockopt(&fd, sockopt::SndBufForce, &want).is_err() {
        let _ = setsockopt(&fd, sockopt::SndBuf, &want);
    }
    // A kernel that never answers becomes an error, not a hung apply.
    let _ = setsockopt(
        &fd,
        sockopt::ReceiveTimeout,
        &nix::sys::time::TimeVal::new(30, 0),
    );
    let rcv = (4 * size).max(4 << 20);
    if setsockopt(&fd, sockopt::RcvBufForce, &rcv).is_err() {
        let _ = setsockopt(&fd, sockopt::RcvBuf, &rcv);
    }
    Ok(sock)
}

const NFTA_RULE_CHAIN: u16 = 2;
const NFTA_RULE_HANDLE: u16 = 3;
const NFTA_RULE_USERDATA: u16 = 7;
const NFTA_RULE_TABLE: u16 = 1;
const NFTA_TABLE_NAME: u16 = 1;

fn attr_str(v: &[u8]) -> String {
    let end = v.iter().position(|b| *b == 0).unwrap_or(v.len());
    String::from_utf8_lossy(&v[..end]).into_owned()
}

/// The comment in a rule's user data (libnftnl's TLV: type 0, length, text).
fn comment_of(udata: &[u8]) -> String {
    let mut i = 0;
    while i + 2 <= udata.len() {
        let (t, l) = (udata[i], udata[i + 1] as usize);
        let v = udata.get(i + 2..i + 2 + l).unwrap_or_default();
        if t == 0 {
            return attr_str(v);
        }
        i += 2 + l;
    }
    String::new()
}

/// (chain, comment, handle) of a NEWRULE message's payload.
fn parse_rule(payload: &[u8]) -> Option<RuleSeen> {
    let mut r = RuleSeen {
        chain: String::new(),
        comment: String::new(),
        handle: 0,
    };
    for a in NlasIterator::new(payload.get(4..)?).map_while(Result::ok) {
        match a.kind() & !NLA_F_NESTED {
            NFTA_RULE_CHAIN => r.chain = attr_str(a.value()),
            NFTA_RULE_HANDLE => r.handle = u64::from_be_bytes(a.value().get(..8)?.try_into().ok()?),
            NFTA_RULE_USERDATA => r.comment = comment_of(a.value()),
            _ => {}
        }
    }
    Some(r)
}

/// A dump request; the payload of each reply (`struct nfgenmsg` first,
/// left to the caller).
fn dump(msg: Msg, family: u8, attrs: &Attrs) -> io::Result<Vec<Vec<u8>>> {
    let sock = open(0)?;
    let mut req = Vec::with_capacity(64);
    let at = header(
        &mut req,
        (SUBSYS << 8) | msg as u16,
        NLM_F_REQUEST | NLM_F_DUMP,
        1,
        family,
        0,
    );
    req.extend_from_slice(&attrs.0);
    finish(&mut req, at);
    sock.send(&req, 0)?;
    let mut out = vec![];
    let mut buf = Vec::with_capacity(1 << 18);
    loop {
        buf.clear();
        let n = sock.recv(&mut buf, 0)?;
        let mut off = 0;
        while off < n {
            let Ok(m) = NetlinkBuffer::new_checked(&buf[off..n]) else {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "truncated nf_tables dump",
                ));
            };
            let len = m.length() as usize;
            match m.message_type() {
                NLMSG_DONE => return Ok(out),
                NLMSG_ERROR => {
                    let code = ErrorBuffer::new_checked(m.payload())
                        .ok()
                        .and_then(|e| e.code())
                        .map(|c| -c.get());
                    return match code {
                        Some(c) => Err(io::Error::from_raw_os_error(c)),
                        None => Ok(out),
                    };
                }
                _ => out.push(m.payload().to_vec()),
            }
            if len == 0 {
                break;
            }
            off += (len + 3) & !3;
        }
    }
}

/// Every table in the calling thread's netns, as `nft list tables` names
/// them ("inet netloom-lab").
pub fn tables() -> io::Result<Vec<String>> {
    let mut out = vec![];
    for p in dump(Msg::GetTable, 0, &Attrs::default())? {
        let Some(&family) = p.first() else { continue };
        let fam = match family {
            1 => "inet",
            2 => "ip",
            3 => "arp",
            5 => "netdev",
            7 => "bridge",
            10 => "ip6",
            _ => "unknown",
        };
        for a in NlasIterator::new(p.get(4..).unwrap_or_default()).map_while(Result::ok) {
            if a.kind() == NFTA_TABLE_NAME {
                out.push(format!("{fam} {}", attr_str(a.value())));
            }
        }
    }
    Ok(out)
}

/// The rules of `inet TABLE`, in order, chain by chain (none when there
/// is no such table: `tables` tells which).
pub fn rules(table: &str) -> io::Result<Vec<RuleSeen>> {
    let mut a = Attrs::default();
    a.str(NFTA_RULE_TABLE, table);
    Ok(dump(Msg::GetRule, NFPROTO_INET, &a)?
        .iter()
        .filter_map(|p| parse_rule(p))
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attributes_are_padded_and_nests_flagged() {
        let mut a = Attrs::default();
        a.str(1, "t").nest(2, |n| {
            n.be32(1, 7);
        });
        assert_eq!(
            a.0,
            [
                6, 0, 1, 0, b't', 0, 0, 0, // "t\0" padded to 8
                12, 0, 2, 0x80, 8, 0, 1, 0, 0, 0, 0, 7
            ]
        );
    }

    #[test]
    fn a_rule_message_gives_chain_comment_and_handle() {
        let mut a = Attrs::default();
        a.str(NFTA_RULE_TABLE, "t")
            .str(NFTA_RULE_CHAIN, "ep-a-0")
            .be64(NFTA_RULE_HANDLE, 8092)
            .bytes(NFTA_RULE_USERDATA, b"\x00\x06nl ep\x00");
        let mut payload = vec![1, 0, 0, 0];
        payload.extend_from_slice(&a.0);
        assert_eq!(
            parse_rule(&payload),
            Some(RuleSeen {
                chain: "ep-a-0".into(),
                comment: "nl ep".into(),
                handle: 8092
            })
        );
    }
}
