//! Lean dumps of links, addresses and routes for observation.
//!
//! rtnetlink decodes every attribute of every message (inet6 devconf, bridge
//! options, …) and buffers a whole dump before it is read: for 1,500 links
//! that was ~35 ms and ~30 MB. Observation needs eight attributes, so it reads
//! them straight from the messages on a plain netlink socket, one message at
//! a time, through netlink-packet-core's buffer layer (`NetlinkBuffer` for
//! message headers, `NlasIterator`/`NlaBuffer` for attributes), which checks
//! lengths but decodes nothing. rtnetlink still does every change.

use crate::model::Family;
use crate::observed::{AddrObs, RouteObs};
use crate::resource::{LinkKind, RouteKey, RouteRes};
use ipnet::IpNet;
use rtnetlink::packet_core::{
    ErrorBuffer, NLA_ALIGNTO, NLA_HEADER_SIZE, NLM_F_DUMP, NLM_F_REQUEST, NLMSG_ALIGNTO,
    NLMSG_DONE, NLMSG_ERROR, NetlinkBuffer, NlaBuffer, NlasIterator, parse_u32,
};
use rtnetlink::sys::{Socket, protocols::NETLINK_ROUTE};
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::ops::Range;

// netlink-packet-core names the netlink constants above; the rtnetlink ones
// below are private in netlink-packet-route (it exposes typed enums instead),
// so they are spelled out here as the kernel's uapi headers name them.

/// `NLMSG_HDRLEN`, the aligned `struct nlmsghdr` (linux/netlink.h).
const NLMSG_HDRLEN: usize = 16;

// Message types (linux/rtnetlink.h).
const RTM_GETLINK: u16 = 18;
const RTM_GETADDR: u16 = 22;
const RTM_GETROUTE: u16 = 26;

// Address families (linux/socket.h).
const AF_INET: u8 = 2;
const AF_INET6: u8 = 10;

/// `struct ifinfomsg` (linux/rtnetlink.h): family, pad, type, index, flags, change.
const IFINFOMSG_LEN: usize = 16;
const IFI_INDEX: Range<usize> = 4..8;
const IFI_FLAGS: Range<usize> = 8..12;
// Device flags (linux/if.h).
const IFF_UP: u32 = 1 << 0;
const IFF_LOWER_UP: u32 = 1 << 16;
// Link attributes (linux/if_link.h).
const IFLA_IFNAME: u16 = 3;
const IFLA_MTU: u16 = 4;
const IFLA_LINK: u16 = 5;
const IFLA_MASTER: u16 = 10;
const IFLA_LINKINFO: u16 = 18;
const IFLA_IFALIAS: u16 = 20;
const IFLA_GROUP: u16 = 27;
const IFLA_EXT_MASK: u16 = 29;
const IFLA_LINK_NETNSID: u16 = 37;
/// Nested in `IFLA_LINKINFO` (linux/if_link.h).
const IFLA_INFO_KIND: u16 = 1;
/// Value of `IFLA_EXT_MASK` (linux/rtnetlink.h).
const RTEXT_FILTER_SKIP_STATS: u32 = 1 << 3;

/// `struct ifaddrmsg` (linux/if_addr.h): family, prefixlen, flags, scope, index.
const IFADDRMSG_LEN: usize = 8;
const IFA_FAMILY: usize = 0;
const IFA_PREFIXLEN: usize = 1;
const IFA_HDR_FLAGS: usize = 2;
const IFA_INDEX: Range<usize> = 4..8;
// Address attributes and flags (linux/if_addr.h).
const IFA_ADDRESS: u16 = 1;
const IFA_LOCAL: u16 = 2;
const IFA_FLAGS: u16 = 8;
const IFA_F_TENTATIVE: u32 = 0x40;

/// `struct rtmsg` (linux/rtnetlink.h): family, dst_len, src_len, tos, table,
/// protocol, scope, type, flags.
const RTMSG_LEN: usize = 12;
const RTM_FAMILY: usize = 0;
const RTM_DST_LEN: usize = 1;
const RTM_TABLE: usize = 4;
const RTM_PROTOCOL: usize = 5;
const RTM_TYPE: usize = 7;
/// `rtm_type` of an ordinary route (linux/rtnetlink.h).
const RTN_UNICAST: u8 = 1;
// Route attributes (linux/rtnetlink.h).
const RTA_DST: u16 = 1;
const RTA_OIF: u16 = 4;
const RTA_GATEWAY: u16 = 5;
const RTA_PRIORITY: u16 = 6;
const RTA_TABLE: u16 = 15;
const RTA_MULTIPATH: u16 = 9;
/// `struct rtnexthop` (linux/rtnetlink.h): len u16, flags u8, hops u8, ifindex i32.
const RTNEXTHOP_LEN: usize = 8;

/// A blocking netlink socket bound in one netns, used only for dumps.
pub struct DumpSocket {
    sock: Socket,
    seq: u32,
    buf: Vec<u8>,
}

/// A link as read from the dump, with ifindexes not yet resolved to names.
pub struct RawLink {
    pub index: u32,
    pub name: String,
    pub kind: LinkKind,
    pub mtu: u32,
    pub up: bool,
    pub carrier: bool,
    pub master: Option<u32>,
    pub peer: Option<u32>,
    pub alias: Option<String>,
    pub group: u32,
}

impl DumpSocket {
    /// Opens the socket in the calling thread's netns.
    pub fn new() -> io::Result<DumpSocket> {
        let mut sock = Socket::new(NETLINK_ROUTE)?;
        sock.bind_auto()?;
        // Strict checking makes the kernel honour the table filter of route dumps.
        sock.set_netlink_get_strict_chk(true)?;
        Ok(DumpSocket {
            sock,
            seq: 0,
            buf: Vec::with_capacity(64 * 1024),
        })
    }

    /// Sends one dump request and calls `each(payload)` per message.
    fn dump(&mut self, kind: u16, payload: &[u8], mut each: impl FnMut(&[u8])) -> io::Result<()> {
        self.seq = self.seq.wrapping_add(1);
        let mut req = vec![0u8; NLMSG_HDRLEN + payload.len()];
        let mut hdr = NetlinkBuffer::new(&mut req[..]);
        hdr.set_length((NLMSG_HDRLEN + payload.len()) as u32);
        hdr.set_message_type(kind);
        hdr.set_flags(NLM_F_REQUEST | NLM_F_DUMP);
        hdr.set_sequence_number(self.seq);
        hdr.payload_mut().copy_from_slice(payload);
        self.sock.send(&req, 0)?;
        loop {
            self.buf.clear();
            let n = self.sock.recv(&mut self.buf, 0)?;
            if messages(&self.buf[..n], self.seq, &mut each)? {
                return Ok(());
            }
        }
    }

    pub fn links(&mut self) -> io::Result<Vec<RawLink>> {
        let mut out = vec![];
        self.dump(RTM_GETLINK, &link_request(), |m| {
            if let Some(l) = parse_link(m) {
                out.push(l);
            }
        })?;
        Ok(out)
    }

    /// Every address, with its ifindex.
    pub fn addresses(&mut self) -> io::Result<Vec<(u32, AddrObs)>> {
        let mut out = vec![];
        self.dump(RTM_GETADDR, &[0u8; IFADDRMSG_LEN], |m| {
            if let Some(a) = parse_addr(m) {
                out.push(a);
            }
        })?;
        Ok(out)
    }

    /// Routes of every type and table of one family that someone made
    /// (not the kernel itself, nor router advertisements).
    pub fn all_routes(&mut self, family: Family) -> io::Result<Vec<RouteObs>> {
        // The kernel's own (protocol kernel, router advertisement) are most
        // of them (local, broadcast and link-local routes of every address
        // and link): at 6,000 links, keeping them took 100 MB.
        const KERNEL: u8 = 2;
        const RA: u8 = 9;
        let mut out = vec![];
        self.dump(RTM_GETROUTE, &route_request(family, None), |m| {
            if let Some((r, _)) = parse_route_any(m)
                && r.protocol != KERNEL
                && r.protocol != RA
            {
                out.push(r);
            }
        })?;
        Ok(out)
    }

    /// Unicast routes of one table and family, devices as ifindexes.
    pub fn routes(&mut self, family: Family, table: u32) -> io::Result<Vec<(RouteObs, Oifs)>> {
        let mut out = vec![];
        self.dump(RTM_GETROUTE, &route_request(family, Some(table)), |m| {
            if let Some(r) = parse_route(m) {
                // Strict dumps filter by table already; keep the check for old kernels.
                if r.0.route.key.table == table {
                    out.push(r);
                }
            }
        })?;
        Ok(out)
    }
}

impl DumpSocket {
    /// Destinations of the `local` routes of table local (255) made with
    /// `protocol`: addresses answered here without being on an interface.
    pub fn local_routes(&mut self, family: Family, protocol: u8) -> io::Result<Vec<IpNet>> {
        const RTN_LOCAL: u8 = 2;
        const TABLE_LOCAL: u32 = 255;
        let mut out = vec![];
        self.dump(
            RTM_GETROUTE,
            &route_request(family, Some(TABLE_LOCAL)),
            |m| {
                if m.len() >= RTMSG_LEN
                    && m[RTM_TYPE] == RTN_LOCAL
                    && m[RTM_PROTOCOL] == protocol
                    && let Some((r, _)) = parse_route_any(m)
                {
                    out.push(r.route.key.to);
                }
            },
        )?;
        Ok(out)
    }
}

/// The benchmark floor for observation: the dumps `Kernel::observe` asks
/// for (links without stats, addresses, each table's routes of both
/// families, rules of both families), read and walked but not decoded.
/// Returns how many messages came back.
pub fn floor(tables: &[u32]) -> io::Result<usize> {
    const RTM_GETRULE: u16 = 34;
    const FIB_RULE_HDR_LEN: usize = 12;
    let mut d = DumpSocket::new()?;
    let mut n = 0;
    d.dump(RTM_GETLINK, &link_request(), |_| n += 1)?;
    d.dump(RTM_GETADDR, &[0u8; IFADDRMSG_LEN], |_| n += 1)?;
    for &t in tables {
        for f in [Family::Ipv4, Family::Ipv6] {
            d.dump(RTM_GETROUTE, &route_request(f, Some(t)), |_| n += 1)?;
        }
    }
    for family in [AF_INET, AF_INET6] {
        let mut req = vec![0u8; FIB_RULE_HDR_LEN];
        req[0] = family;
        d.dump(RTM_GETRULE, &req, |_| n += 1)?;
    }
    Ok(n)
}

/// Walks the messages of one datagram, calling `each` with the payload of
/// those of this dump (`seq`). `Ok(true)` once the dump is done.
fn messages(mut data: &[u8], seq: u32, each: &mut impl FnMut(&[u8])) -> io::Result<bool> {
    let invalid = |what| io::Error::new(io::ErrorKind::InvalidData, what);
    while data.len() >= NLMSG_HDRLEN {
        let msg =
            NetlinkBuffer::new_checked(data).map_err(|_| invalid("truncated netlink message"))?;
        let len = msg.length() as usize;
        let body = msg.payload();
        let (typ, msg_seq) = (msg.message_type(), msg.sequence_number());
        data = &data[align(len, NLMSG_ALIGNTO as usize).min(data.len())..];
        if msg_seq != seq {
            continue;
        }
        match typ {
            NLMSG_DONE => return Ok(true),
            NLMSG_ERROR => {
                let err = ErrorBuffer::new_checked(body)
                    .map_err(|_| invalid("truncated netlink error"))?;
                if let Some(code) = err.code() {
                    return Err(io::Error::from_raw_os_error(-code.get()));
                }
            }
            _ => each(body),
        }
    }
    Ok(false)
}

/// `RTM_GETLINK` dump request: every link, without statistics.
fn link_request() -> Vec<u8> {
    let mut req = vec![0u8; IFINFOMSG_LEN]; // ifinfomsg, all zero: every link
    nla(
        &mut req,
        IFLA_EXT_MASK,
        &RTEXT_FILTER_SKIP_STATS.to_ne_bytes(),
    );
    req
}

/// `RTM_GETROUTE` dump request of one family, and of one table if given.
fn route_request(family: Family, table: Option<u32>) -> Vec<u8> {
    let mut req = vec![0u8; RTMSG_LEN];
    req[RTM_FAMILY] = match family {
        Family::Ipv4 => AF_INET,
        Family::Ipv6 => AF_INET6,
    };
    if let Some(table) = table {
        req[RTM_TABLE] = if table < 256 { table as u8 } else { 0 };
        nla(&mut req, RTA_TABLE, &table.to_ne_bytes());
    }
    req
}

fn align(n: usize, to: usize) -> usize {
    (n + to - 1) & !(to - 1)
}

/// Appends one attribute, padded.
fn nla(buf: &mut Vec<u8>, kind: u16, value: &[u8]) {
    let start = buf.len();
    let len = NLA_HEADER_SIZE + value.len();
    buf.resize(start + align(len, NLA_ALIGNTO), 0);
    let mut attr = NlaBuffer::new(&mut buf[start..]);
    attr.set_length(len as u16);
    attr.set_kind(kind);
    attr.value_mut().copy_from_slice(value);
}

/// The attributes of `data`, up to the first malformed one.
fn attrs(data: &[u8]) -> impl Iterator<Item = NlaBuffer<&[u8]>> {
    NlasIterator::new(data).map_while(Result::ok)
}

/// The first four bytes as a native-endian u32 (0 if shorter).
fn u32_of(v: &[u8]) -> u32 {
    v.get(..4).and_then(|b| parse_u32(b).ok()).unwrap_or(0)
}

/// Up to the first NUL, lossily.
fn str_of(v: &[u8]) -> String {
    String::from_utf8_lossy(v.split(|b| *b == 0).next().unwrap_or_default()).into_owned()
}

fn ip_of(family: u8, v: &[u8]) -> Option<IpAddr> {
    match (family, v.len()) {
        (AF_INET, 4) => Some(IpAddr::V4(Ipv4Addr::new(v[0], v[1], v[2], v[3]))),
        (AF_INET6, 16) => Some(IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(v).unwrap()))),
        _ => None,
    }
}

/// An `RTM_NEWLINK` payload; `None` if shorter than its `ifinfomsg`.
fn parse_link(m: &[u8]) -> Option<RawLink> {
    if m.len() < IFINFOMSG_LEN {
        return None;
    }
    let flags = u32_of(&m[IFI_FLAGS]);
    let mut l = RawLink {
        index: u32_of(&m[IFI_INDEX]),
        name: String::new(),
        kind: LinkKind::Other("device".into()),
        mtu: 0,
        up: flags & IFF_UP != 0,
        carrier: flags & IFF_LOWER_UP != 0,
        master: None,
        peer: None,
        alias: None,
        group: 0,
    };
    let mut peer_elsewhere = false;
    // Most attributes are skipped: their values are read only once matched.
    for a in attrs(&m[IFINFOMSG_LEN..]) {
        match a.kind() {
            IFLA_IFNAME => l.name = str_of(a.value()),
            IFLA_MTU => l.mtu = u32_of(a.value()),
            IFLA_LINK => l.peer = Some(u32_of(a.value())),
            IFLA_MASTER => l.master = Some(u32_of(a.value())),
            IFLA_IFALIAS if a.value().first().is_some_and(|b| *b != 0) => {
                l.alias = Some(str_of(a.value()))
            }
            IFLA_GROUP => l.group = u32_of(a.value()),
            IFLA_LINK_NETNSID => peer_elsewhere = true,
            IFLA_LINKINFO => {
                if let Some(k) = attrs(a.value()).find(|i| i.kind() == IFLA_INFO_KIND) {
                    l.kind = match str_of(k.value()).as_str() {
                        "bridge" => LinkKind::Bridge,
                        "veth" => LinkKind::Veth,
                        other => LinkKind::Other(other.to_string()),
                    };
                }
            }
            _ => {}
        }
    }
    // IFLA_LINK is an ifindex in another netns when LINK_NETNSID is present.
    if peer_elsewhere || l.kind != LinkKind::Veth {
        l.peer = None;
    }
    Some(l)
}

fn parse_addr(m: &[u8]) -> Option<(u32, AddrObs)> {
    if m.len() < IFADDRMSG_LEN {
        return None;
    }
    let (family, prefix) = (m[IFA_FAMILY], m[IFA_PREFIXLEN]);
    let index = u32_of(&m[IFA_INDEX]);
    let (mut local, mut address, mut flags) = (None, None, m[IFA_HDR_FLAGS] as u32);
    for a in attrs(&m[IFADDRMSG_LEN..]) {
        match a.kind() {
            IFA_ADDRESS => address = ip_of(family, a.value()),
            IFA_LOCAL => local = ip_of(family, a.value()),
            IFA_FLAGS => flags = u32_of(a.value()), // full width: wins over the header's u8
            _ => {}
        }
    }
    // For IPv4, IFA_LOCAL is the interface's own address.
    let ip = local.or(address)?;
    Some((
        index,
        AddrObs {
            net: IpNet::new(ip, prefix).ok()?,
            tentative: flags & IFA_F_TENTATIVE != 0,
        },
    ))
}

fn parse_route(m: &[u8]) -> Option<(RouteObs, Oifs)> {
    if m.len() < RTMSG_LEN || m[RTM_TYPE] != RTN_UNICAST {
        return None;
    }
    parse_route_any(m)
}

/// Any route type: blackhole, unreachable, local… as well as unicast.
fn parse_route_any(m: &[u8]) -> Option<(RouteObs, Oifs)> {
    if m.len() < RTMSG_LEN {
        return None;
    }
    let (family, dst_len) = (m[RTM_FAMILY], m[RTM_DST_LEN]);
    let (mut table, protocol) = (m[RTM_TABLE] as u32, m[RTM_PROTOCOL]);
    let (mut dst, mut via, mut oif, mut metric) = (None, None, None, 0);
    let (mut nexthops, mut hop_oifs) = (vec![], vec![]);
    for a in attrs(&m[RTMSG_LEN..]) {
        match a.kind() {
            RTA_DST => dst = ip_of(family, a.value()),
            RTA_OIF => oif = Some(u32_of(a.value())),
            RTA_MULTIPATH => {
                for (hop, ifindex) in parse_multipath(family, a.value()) {
                    nexthops.push(hop);
                    hop_oifs.push(ifindex);
                }
            }
            RTA_GATEWAY => via = ip_of(family, a.value()),
            RTA_PRIORITY => metric = u32_of(a.value()),
            RTA_TABLE => table = u32_of(a.value()), // full width: wins over the header's u8
            _ => {}
        }
    }
    let dst = dst.unwrap_or(match family {
        AF_INET => IpAddr::V4(Ipv4Addr::UNSPECIFIED),
        _ => IpAddr::V6(Ipv6Addr::UNSPECIFIED),
    });
    Some((
        RouteObs {
            route: RouteRes {
                key: RouteKey {
                    table,
                    to: IpNet::new(dst, dst_len).ok()?,
                    metric,
                },
                via,
                dev: None,
                nexthops,
            },
            protocol,
        },
        Oifs {
            oif,
            hops: hop_oifs,
        },
    ))
}

/// The next hops of an `RTA_MULTIPATH`, each with its ifindex (0: none).
fn parse_multipath(family: u8, mut v: &[u8]) -> Vec<(crate::resource::NextHop, u32)> {
    let mut out = vec![];
    while v.len() >= RTNEXTHOP_LEN {
        let len = u16::from_ne_bytes([v[0], v[1]]) as usize;
        if len < RTNEXTHOP_LEN || len > v.len() {
            break;
        }
        let (hops, ifindex) = (v[3], u32_of(&v[4..8]));
        let via = attrs(&v[RTNEXTHOP_LEN..len])
            .find(|a| a.kind() == RTA_GATEWAY)
            .and_then(|a| ip_of(family, a.value()));
        if let Some(via) = via {
            let hop = crate::resource::NextHop {
                via,
                dev: None,
                weight: hops as u16 + 1,
            };
            out.push((hop, ifindex));
        }
        v = &v[align(len, 4).min(v.len())..];
    }
    out
}

/// The devices of a dumped route, as ifindexes, until resolved to names.
#[derive(Debug, Clone, Default)]
pub struct Oifs {
    pub oif: Option<u32>,
    /// One per next hop of a multipath route.
    pub hops: Vec<u32>,
}

impl Oifs {
    /// Names the route's devices and puts its next hops in canonical order.
    pub fn name(self, r: &mut RouteObs, names: &std::collections::HashMap<u32, String>) {
        r.route.dev = self.oif.and_then(|i| names.get(&i).cloned());
        for (h, i) in r.route.nexthops.iter_mut().zip(self.hops) {
            h.dev = names.get(&i).cloned();
        }
        r.route.nexthops.sort();
    }
}

// The fixtures are real kernel messages captured on a little-endian host
// (netlink is host-endian): `capture_fixtures` below remakes them.
#[cfg(all(test, target_endian = "little"))]
mod tests;
