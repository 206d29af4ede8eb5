use super::*;
use std::collections::BTreeSet;

fn names(v: &[&str]) -> BTreeSet<String> {
    v.iter().map(|s| s.to_string()).collect()
}

#[test]
fn networkd_match_names_are_globs_and_unmanaged_is_respected() {
    let n = names(&["br-lab", "veth-a", "eth0"]);
    let f = "[Match]\nName=br-* eth1\n\n[Network]\nDHCP=yes\n";
    assert_eq!(networkd_matches(f, &n), ["br-lab"]);
    let f = "[Match]\nName=br-*\n[Link]\nUnmanaged=yes\n";
    assert!(networkd_matches(f, &n).is_empty());
    let f = "[Match]\nName=!eth0\n";
    assert_eq!(networkd_matches(f, &n), ["br-lab", "veth-a"]);
    assert!(networkd_matches("[Match]\nMACAddress=00:11:22:33:44:55\n", &n).is_empty());
}

#[test]
fn netplan_names_come_from_ids_set_name_and_match() {
    let y = "network:\n  version: 2\n  ethernets:\n    eth0: {dhcp4: true}\n    lan:\n      match: {name: \"veth*\"}\n  bridges:\n    br-lab:\n      interfaces: [eth0]\n";
    let got = netplan_names(y).unwrap();
    assert_eq!(
        got,
        [
            ("eth0".to_string(), "network.ethernets.eth0".to_string()),
            ("veth*".to_string(), "network.ethernets.lan".to_string()),
            ("br-lab".to_string(), "network.bridges.br-lab".to_string()),
        ]
    );
    assert!(netplan_names("network: [").is_err());
}

#[test]
fn the_exit_code_is_the_worst_finding() {
    let ok = Finding::ok("x", "s", "m");
    let w = Finding::warning("x", "s", "m", "f");
    let e = Finding::error("x", "s", "m", "f");
    assert_eq!(exit_code(std::slice::from_ref(&ok)), 0);
    assert_eq!(exit_code(&[ok.clone(), w.clone()]), 2);
    assert_eq!(exit_code(&[w, e, ok]), 1);
    assert_eq!(exit_code(&[]), 0);
}
