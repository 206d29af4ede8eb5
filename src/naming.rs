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
