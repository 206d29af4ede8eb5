//! Byte fixtures of real kernel dump messages through the parser.
use super::*;

macro_rules! fixtures {
    ($($name:literal),* $(,)?) => {
        &[$(($name, include_bytes!(concat!("../testdata/", $name, ".bin")))),*]
    };
}

/// Every fixture: the payload of one dump message, as `dump` hands it on.
const FIXTURES: &[(&str, &[u8])] = fixtures![
    "link-lo",
    "link-bridge",
    "link-veth-port",
    "link-veth-peer",
    "link-veth-netns",
    "link-macvlan",
    "addr-v4",
    "addr-v4-peer",
    "addr-v6-tentative",
    "addr-v6-nodad",
    "route-v4-gw",
    "route-v4-default",
    "route-v4-blackhole",
    "route-v6-gw",
    "route-v4-multipath",
    "route-v6-multipath",
];

fn fixture(name: &str) -> &'static [u8] {
    FIXTURES.iter().find(|(n, _)| *n == name).unwrap().1
}

fn link(name: &str) -> RawLink {
    parse_link(fixture(name)).expect("a link")
}

#[test]
fn links_from_the_kernel() {
    let lo = link("link-lo");
    assert_eq!((lo.index, lo.name.as_str(), lo.mtu), (1, "lo", 65536));
    assert_eq!(lo.kind, LinkKind::Other("device".into())); // no IFLA_LINKINFO
    assert!(!lo.up && !lo.carrier);
    assert_eq!(
        (lo.master, lo.peer, lo.alias, lo.group),
        (None, None, None, 0)
    );

    let br = link("link-bridge");
    assert_eq!((br.index, br.name.as_str(), br.mtu), (2, "br0", 1400));
    assert_eq!(br.kind, LinkKind::Bridge);
    assert!(br.up && br.carrier);
    assert_eq!(
        (br.master, br.peer, br.alias, br.group),
        (None, None, None, 7)
    );

    let port = link("link-veth-port");
    assert_eq!((port.index, port.name.as_str(), port.mtu), (4, "ve0", 1500));
    assert_eq!(port.kind, LinkKind::Veth);
    assert!(port.up && port.carrier);
    assert_eq!((port.master, port.peer, port.group), (Some(2), Some(3), 0));
    assert_eq!(port.alias.as_deref(), Some("uplink-to-br0"));

    let peer = link("link-veth-peer");
    assert_eq!(
        (peer.index, peer.name.as_str(), peer.kind),
        (3, "ve1", LinkKind::Veth)
    );
    assert_eq!((peer.master, peer.peer, peer.alias), (None, Some(4), None));
}

#[test]
fn link_of_another_netns_or_not_a_veth_is_no_peer() {
    // Both carry IFLA_LINK = 2: an ifindex in the peer's netns
    // (IFLA_LINK_NETNSID present), and the macvlan's lower device.
    let vx = link("link-veth-netns");
    assert_eq!(
        (vx.index, vx.name.as_str(), vx.kind),
        (5, "vx0", LinkKind::Veth)
    );
    assert!(!vx.up && !vx.carrier);
    assert_eq!(vx.peer, None);
    let mv = link("link-macvlan");
    assert_eq!((mv.index, mv.name.as_str(), mv.mtu), (6, "mv0", 1400));
    assert_eq!(mv.kind, LinkKind::Other("macvlan".into()));
    assert_eq!((mv.master, mv.peer), (None, None));
}

#[test]
fn empty_alias_is_none() {
    let mut m = fixture("link-veth-port").to_vec();
    let at = attr_at(&m, IFINFOMSG_LEN, IFLA_IFALIAS);
    m[at + NLA_HEADER_SIZE] = 0;
    assert_eq!(parse_link(&m).unwrap().alias, None);
}

#[test]
fn addresses_from_the_kernel() {
    let addr = |name| parse_addr(fixture(name)).expect("an address");
    let net = |s: &str| s.parse::<IpNet>().unwrap();
    assert_eq!(
        addr("addr-v4"),
        (
            2,
            AddrObs {
                net: net("10.1.2.1/24"),
                tentative: false
            }
        )
    );
    // IFA_ADDRESS is the peer (10.9.9.2), IFA_LOCAL ours.
    let peer = (
        4,
        AddrObs {
            net: net("10.9.9.1/32"),
            tentative: false,
        },
    );
    assert_eq!(addr("addr-v4-peer"), peer);
    // IPv6 has IFA_ADDRESS only.
    let dad = (
        3,
        AddrObs {
            net: net("2001:db8:1::1/64"),
            tentative: true,
        },
    );
    assert_eq!(addr("addr-v6-tentative"), dad);
    let nodad = (
        3,
        AddrObs {
            net: net("2001:db8:2::1/64"),
            tentative: false,
        },
    );
    assert_eq!(addr("addr-v6-nodad"), nodad);
}

#[test]
fn address_flags_attribute_wins_over_the_header() {
    // Tentative in both the header's u8 and IFA_FLAGS: clear it in IFA_FLAGS only.
    let mut m = fixture("addr-v6-tentative").to_vec();
    assert_ne!(m[IFA_HDR_FLAGS] as u32 & IFA_F_TENTATIVE, 0);
    let at = attr_at(&m, IFADDRMSG_LEN, IFA_FLAGS) + NLA_HEADER_SIZE;
    m[at] &= !(IFA_F_TENTATIVE as u8);
    assert!(!parse_addr(&m).unwrap().1.tentative);
    // Without IFA_FLAGS (old kernels), the header's flags count.
    let mut m = fixture("addr-v6-tentative").to_vec();
    let at = attr_at(&m, IFADDRMSG_LEN, IFA_FLAGS);
    m[at + 2..at + 4].copy_from_slice(&0x3fffu16.to_ne_bytes());
    assert!(parse_addr(&m).unwrap().1.tentative);
}

fn route(name: &str) -> (RouteObs, Option<u32>) {
    let (r, oifs) = parse_route_any(fixture(name)).expect("a route");
    (r, oifs.oif)
}

fn obs(table: u32, to: &str, metric: u32, via: Option<&str>, protocol: u8) -> RouteObs {
    RouteObs {
        route: RouteRes {
            key: RouteKey {
                table,
                to: to.parse().unwrap(),
                metric,
            },
            via: via.map(|v| v.parse().unwrap()),
            dev: None,
            nexthops: vec![],
        },
        protocol,
    }
}

#[test]
fn routes_from_the_kernel() {
    let gw = (
        obs(100, "192.168.50.0/24", 42, Some("10.1.2.254"), 4),
        Some(2),
    );
    assert_eq!(route("route-v4-gw"), gw);
    // No RTA_DST: the default route.
    let default = (obs(100, "0.0.0.0/0", 0, Some("10.1.2.254"), 3), Some(2));
    assert_eq!(route("route-v4-default"), default);
    let v6 = (
        obs(100, "2001:db8:5::/48", 7, Some("2001:db8:2::fe"), 3),
        Some(3),
    );
    assert_eq!(route("route-v6-gw"), v6);
    for name in ["route-v4-gw", "route-v4-default", "route-v6-gw"] {
        let (r, oifs) = parse_route(fixture(name)).expect("unicast");
        assert_eq!((r, oifs.oif), route(name), "{name}");
    }
}

#[test]
fn multipath_routes_from_the_kernel() {
    // br0 is ifindex 2, ve1 3 in the capture (see `capture_fixtures`).
    let names: std::collections::HashMap<u32, String> =
        [(2, "br0".to_string()), (3, "ve1".to_string())].into();
    let hop = |via: &str, dev: &str, weight| crate::resource::NextHop {
        via: via.parse().unwrap(),
        dev: Some(dev.into()),
        weight,
    };
    let (mut r, oifs) = parse_route(fixture("route-v4-multipath")).expect("unicast");
    oifs.name(&mut r, &names);
    assert_eq!((r.route.via, &r.route.dev), (None, &None));
    assert_eq!(
        r.route.nexthops,
        [hop("10.1.2.253", "br0", 3), hop("10.1.2.254", "br0", 1)]
    );
    let (mut r, oifs) = parse_route(fixture("route-v6-multipath")).expect("unicast");
    oifs.name(&mut r, &names);
    assert_eq!(r.route.key.to, "2001:db8:77::/48".parse().unwrap());
    assert_eq!(
        r.route.nexthops,
        [
            hop("2001:db8:2::fd", "ve1", 1),
            hop("2001:db8:2::fe", "ve1", 1)
        ]
    );
}

#[test]
fn blackhole_route_in_a_table_past_255() {
    // The header's table is RT_TABLE_COMPAT (252); RTA_TABLE has the real one.
    let m = fixture("route-v4-blackhole");
    assert_eq!(m[RTM_TABLE], 252);
    assert_eq!(
        route("route-v4-blackhole"),
        (obs(1000, "10.99.0.0/16", 5, None, 3), None)
    );
    assert!(parse_route(m).is_none(), "not unicast");
}

#[test]
fn truncated_or_garbage_input_does_not_panic() {
    let parse_all = |m: &[u8]| {
        let _ = parse_link(m);
        let _ = parse_addr(m);
        let _ = parse_route(m);
        let _ = parse_route_any(m);
    };
    for (name, m) in FIXTURES {
        for n in 0..m.len() {
            parse_all(&m[..n]);
        }
        // Attribute lengths of 0, 3 and past the end, at every offset.
        for at in 0..m.len().saturating_sub(2) {
            for len in [0u16, 3, 0xffff] {
                let mut bad = m.to_vec();
                bad[at..at + 2].copy_from_slice(&len.to_ne_bytes());
                parse_all(&bad);
            }
        }
        assert!(parse_link(&m[..IFINFOMSG_LEN - 1]).is_none(), "{name}");
        assert!(parse_addr(&m[..IFADDRMSG_LEN - 1]).is_none(), "{name}");
        assert!(parse_route_any(&m[..RTMSG_LEN - 1]).is_none(), "{name}");
    }
    // A cut attribute ends the walk; what came before it stays.
    let m = fixture("link-veth-port");
    let cut = attr_at(m, IFINFOMSG_LEN, IFLA_IFALIAS) + 6;
    let l = parse_link(&m[..cut]).unwrap();
    assert_eq!((l.name.as_str(), l.alias), ("ve0", None));
    let mut x = 0x9e37_79b9_u32;
    for len in 0..600 {
        let junk: Vec<u8> = (0..len)
            .map(|_| {
                x ^= x << 13;
                x ^= x >> 17;
                x ^= x << 5;
                x as u8
            })
            .collect();
        parse_all(&junk);
        let _ = messages(&junk, 1, &mut |m| parse_all(m));
    }
}

/// One netlink message around `body`.
fn message(typ: u16, seq: u32, body: &[u8]) -> Vec<u8> {
    let mut m = vec![0u8; NLMSG_HDRLEN + body.len()];
    let mut hdr = NetlinkBuffer::new(&mut m[..]);
    hdr.set_length((NLMSG_HDRLEN + body.len()) as u32);
    hdr.set_message_type(typ);
    hdr.set_sequence_number(seq);
    hdr.payload_mut().copy_from_slice(body);
    m.resize(align(m.len(), NLMSG_ALIGNTO as usize), 0);
    m
}

#[test]
fn messages_of_one_datagram() {
    const RTM_NEWLINK: u16 = 16;
    let mut data = message(RTM_NEWLINK, 7, fixture("link-lo"));
    data.extend(message(RTM_NEWLINK, 6, fixture("link-bridge"))); // another request's
    data.extend(message(RTM_NEWLINK, 7, fixture("link-bridge")));
    let mut names = vec![];
    let mut each = |m: &[u8]| names.push(parse_link(m).unwrap().name);
    assert!(!messages(&data, 7, &mut each).unwrap());
    data.extend(message(NLMSG_DONE, 7, &0i32.to_ne_bytes()));
    data.extend(message(RTM_NEWLINK, 7, fixture("link-veth-port"))); // past the end
    assert!(messages(&data, 7, &mut each).unwrap());
    assert_eq!(names, ["lo", "br0", "lo", "br0"]);

    // An ack goes on; an error ends the dump with its errno.
    let mut each = |_: &[u8]| {};
    let ack = message(NLMSG_ERROR, 7, &[0u8; 20]);
    assert!(!messages(&ack, 7, &mut each).unwrap());
    let eperm = message(NLMSG_ERROR, 7, &(-1i32).to_ne_bytes());
    let err = messages(&eperm, 7, &mut each).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(1));
    let short = message(NLMSG_ERROR, 7, &[0xff; 2]);
    let err = messages(&short, 7, &mut each).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    // A message longer than the datagram.
    let whole = message(RTM_NEWLINK, 7, fixture("link-bridge"));
    let err = messages(&whole[..100], 7, &mut each).unwrap_err();
    assert_eq!(err.kind(), io::ErrorKind::InvalidData);
    // Less than a header left over: ignored.
    assert!(!messages(&whole[..NLMSG_HDRLEN - 1], 7, &mut each).unwrap());
}

#[test]
fn requests() {
    let mut link = vec![0u8; 16];
    link.extend([8, 0, 29, 0, 8, 0, 0, 0]); // IFLA_EXT_MASK = RTEXT_FILTER_SKIP_STATS
    assert_eq!(link_request(), link);
    let mut v4 = vec![0u8; 12];
    v4[0] = 2;
    assert_eq!(route_request(Family::Ipv4, None), v4);
    let mut t = vec![10, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
    t.extend([8, 0, 15, 0, 0xe8, 3, 0, 0]); // RTA_TABLE = 1000, and 0 in the header
    assert_eq!(route_request(Family::Ipv6, Some(1000)), t);
    assert_eq!(route_request(Family::Ipv4, Some(254))[RTM_TABLE], 254);
    let mut odd = vec![];
    nla(&mut odd, 3, b"ab\0");
    assert_eq!(odd, [7, 0, 3, 0, b'a', b'b', 0, 0]);
}

#[test]
fn constants_match_libc() {
    use nix::libc;
    assert_eq!(
        [RTM_GETLINK, RTM_GETADDR, RTM_GETROUTE],
        [libc::RTM_GETLINK, libc::RTM_GETADDR, libc::RTM_GETROUTE]
    );
    assert_eq!(
        [RTA_DST, RTA_OIF, RTA_GATEWAY, RTA_PRIORITY, RTA_TABLE],
        [
            libc::RTA_DST,
            libc::RTA_OIF,
            libc::RTA_GATEWAY,
            libc::RTA_PRIORITY,
            libc::RTA_TABLE
        ]
    );
    assert_eq!(RTN_UNICAST, libc::RTN_UNICAST);
    assert_eq!(
        RTEXT_FILTER_SKIP_STATS,
        libc::RTEXT_FILTER_SKIP_STATS as u32
    );
    assert_eq!(
        [IFF_UP, IFF_LOWER_UP],
        [libc::IFF_UP as u32, libc::IFF_LOWER_UP as u32]
    );
    assert_eq!(
        [AF_INET, AF_INET6],
        [libc::AF_INET as u8, libc::AF_INET6 as u8]
    );
    assert_eq!(NLMSG_HDRLEN, std::mem::size_of::<libc::nlmsghdr>());
    assert_eq!(IFINFOMSG_LEN, std::mem::size_of::<libc::ifinfomsg>());
    assert_eq!(IFADDRMSG_LEN, std::mem::size_of::<libc::ifaddrmsg>());
}

/// Offset in `m` of the first attribute `kind` after a `hdr`-byte header.
fn attr_at(m: &[u8], hdr: usize, kind: u16) -> usize {
    let a = attrs(&m[hdr..])
        .find(|a| a.kind() == kind)
        .expect("attribute");
    a.into_inner().as_ptr() as usize - m.as_ptr() as usize
}

/// Remakes `testdata/`: builds a small topology in two fresh netns (as
/// root), dumps it and saves the payloads the parser would get.
/// `cargo test --lib capture_fixtures -- --ignored`
#[test]
#[ignore = "root; rewrites testdata/ from two scratch netns"]
fn capture_fixtures() {
    struct Netns(String);
    impl Drop for Netns {
        fn drop(&mut self) {
            let _ = std::process::Command::new("ip")
                .args(["netns", "del", &self.0])
                .status();
        }
    }
    let ip = |args: &str| {
        let ok = std::process::Command::new("ip")
            .args(args.split_whitespace())
            .status();
        assert!(ok.unwrap().success(), "ip {args}");
    };
    let name = format!("nl-cap-{}", std::process::id());
    let other = format!("{name}-b");
    ip(&format!("netns add {name}"));
    let _ns = Netns(name.clone());
    ip(&format!("netns add {other}"));
    let _other = Netns(other.clone());
    let n = format!("-n {name}");
    for cmd in [
        "link add br0 type bridge",
        "link set br0 group 7 up",
        "addr add 10.1.2.1/24 dev br0",
        "link add ve0 type veth peer name ve1",
        "link set ve0 master br0 alias uplink-to-br0 up",
        "link set br0 mtu 1400",
        "link set ve1 up",
        "addr add 10.9.9.1 peer 10.9.9.2/32 dev ve0",
        "addr add 2001:db8:2::1/64 dev ve1 nodad",
        "addr add 2001:db8:1::1/64 dev ve1",
        &format!("link add vx0 type veth peer name vx1 netns {other}"),
        "link add link br0 name mv0 type macvlan mode bridge",
        "route add 192.168.50.0/24 via 10.1.2.254 dev br0 metric 42 table 100 proto static",
        "route add default via 10.1.2.254 dev br0 table 100",
        "route add blackhole 10.99.0.0/16 table 1000 metric 5",
        "-6 route add 2001:db8:5::/48 via 2001:db8:2::fe dev ve1 table 100 metric 7",
        "route add 10.77.0.0/16 table 100 nexthop via 10.1.2.253 dev br0 weight 3 nexthop via 10.1.2.254 dev br0",
        "-6 route add 2001:db8:77::/48 table 100 nexthop via 2001:db8:2::fd dev ve1 nexthop via 2001:db8:2::fe dev ve1",
    ] {
        ip(&format!("{n} {cmd}"));
    }
    let fd = crate::netns::open(&name).unwrap();
    let (links, addrs, routes) = crate::netns::run_in(Some(&fd), || {
        let mut d = DumpSocket::new().unwrap();
        let mut grab = |kind, req: &[u8]| {
            let mut v: Vec<Vec<u8>> = vec![];
            d.dump(kind, req, |m| v.push(m.to_vec())).unwrap();
            v
        };
        let links = grab(RTM_GETLINK, &link_request());
        let addrs = grab(RTM_GETADDR, &[0u8; IFADDRMSG_LEN]);
        let mut routes = grab(RTM_GETROUTE, &route_request(Family::Ipv4, None));
        routes.extend(grab(RTM_GETROUTE, &route_request(Family::Ipv6, None)));
        (links, addrs, routes)
    })
    .unwrap();
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/backend/kernel/testdata");
    std::fs::create_dir_all(&dir).unwrap();
    let save = |file: &str, msgs: &[Vec<u8>], pick: &dyn Fn(&[u8]) -> bool| {
        let m = msgs
            .iter()
            .find(|m| pick(m))
            .unwrap_or_else(|| panic!("no message for {file}"));
        std::fs::write(dir.join(format!("{file}.bin")), m).unwrap();
    };
    let link = |want: &'static str| move |m: &[u8]| parse_link(m).is_some_and(|l| l.name == want);
    save("link-lo", &links, &link("lo"));
    save("link-bridge", &links, &link("br0"));
    save("link-veth-port", &links, &link("ve0"));
    save("link-veth-peer", &links, &link("ve1"));
    save("link-veth-netns", &links, &link("vx0"));
    save("link-macvlan", &links, &link("mv0"));
    let addr = |want: &'static str| {
        move |m: &[u8]| parse_addr(m).is_some_and(|(_, a)| a.net == want.parse::<IpNet>().unwrap())
    };
    save("addr-v4", &addrs, &addr("10.1.2.1/24"));
    save("addr-v4-peer", &addrs, &addr("10.9.9.1/32"));
    save("addr-v6-tentative", &addrs, &addr("2001:db8:1::1/64"));
    save("addr-v6-nodad", &addrs, &addr("2001:db8:2::1/64"));
    let route = |want: &'static str, table: u32| {
        move |m: &[u8]| {
            parse_route_any(m).is_some_and(|(r, _)| {
                r.route.key.to == want.parse::<IpNet>().unwrap() && r.route.key.table == table
            })
        }
    };
    save("route-v4-gw", &routes, &route("192.168.50.0/24", 100));
    save("route-v4-default", &routes, &route("0.0.0.0/0", 100));
    save("route-v4-blackhole", &routes, &route("10.99.0.0/16", 1000));
    save("route-v6-gw", &routes, &route("2001:db8:5::/48", 100));
    save("route-v4-multipath", &routes, &route("10.77.0.0/16", 100));
    save(
        "route-v6-multipath",
        &routes,
        &route("2001:db8:77::/48", 100),
    );
    // What iproute2 makes of the same netns, to check the tests' figures by.
    for what in [
        "-d link",
        "addr",
        "route show table all",
        "-6 route show table all",
    ] {
        ip(&format!("{n} -details {what}"));
    }
}
