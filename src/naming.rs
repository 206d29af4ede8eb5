//! Names and MAC addresses netloom derives, stable across runs.

/// The host-side name of a container interface's veth: derived, ≤ 15
/// bytes, stable across runs (FNV-1a of topology, container and interface).
pub fn host_end(topology: &str, container: &str, ifname: &str) -> String {
    let h = fnv1a(&format!("{topology}/{container}/{ifname}"));
    format!("nl{:012x}", h & 0xffff_ffff_ffff)
}

/// The MAC address netloom gives a veth end it creates for a container:
/// derived from (scope, container, interface), so a container restarted and
/// re-wired keeps its MAC and its peers' neighbour entries stay right (with a
/// random MAC they would point at a vanished address for up to a minute).
/// Locally administered unicast (first octet 0x0a), not Docker's 02:42.
pub fn iface_mac(scope: &str, container: &str, ifname: &str) -> [u8; 6] {
    let h = fnv1a(&format!("mac/{scope}/{container}/{ifname}")).to_be_bytes();
    [0x0a, h[3], h[4], h[5], h[6], h[7]]
}

/// FNV-1a: std's hasher is not stable across releases, and these values
/// end up in names, MACs and labels that must survive an upgrade.
pub fn fnv1a(s: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in s.bytes() {
        h ^= b as u64;
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// Natural order: digit runs compare as numbers (`p2` before `p10`), the
/// rest byte by byte; equal-looking strings (`p02`, `p2`) fall back to
/// plain order, so this is a total order.
pub fn natural_cmp(a: &str, b: &str) -> std::cmp::Ordering {
    use std::cmp::Ordering;
    let (mut x, mut y) = (a.as_bytes(), b.as_bytes());
    while !x.is_empty() && !y.is_empty() {
        let (dx, dy) = (x[0].is_ascii_digit(), y[0].is_ascii_digit());
        let ord = if dx && dy {
            let run = |s: &[u8]| s.iter().take_while(|c| c.is_ascii_digit()).count();
            let (nx, ny) = (run(x), run(y));
            let strip = |s: &[u8]| -> usize { s.iter().take_while(|c| **c == b'0').count() };
            let (vx, vy) = (&x[strip(&x[..nx])..nx], &y[strip(&y[..ny])..ny]);
            let o = vx.len().cmp(&vy.len()).then_with(|| vx.cmp(vy));
            x = &x[nx..];
            y = &y[ny..];
            o
        } else {
            let o = x[0].cmp(&y[0]);
            x = &x[1..];
            y = &y[1..];
            o
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    x.len()
        .cmp(&y.len())
        .then_with(|| a.as_bytes().cmp(b.as_bytes()))
}

#[cfg(test)]
mod natural_tests {
    use super::natural_cmp;

    #[test]
    fn numbers_in_names_sort_by_value() {
        let mut v = vec![
            "p10",
            "p2",
            "p1",
            "q",
            "p02",
            "p",
            "b10x",
            "b9x",
            "10.0.10.0",
            "10.0.2.0",
        ];
        v.sort_by(|a, b| natural_cmp(a, b));
        assert_eq!(
            v,
            [
                "10.0.2.0",
                "10.0.10.0",
                "b9x",
                "b10x",
                "p",
                "p1",
                "p02",
                "p2",
                "p10",
                "q"
            ]
        );
        assert_eq!(natural_cmp("p2", "p2"), std::cmp::Ordering::Equal);
    }
}
