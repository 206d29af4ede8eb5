//! Without root, netloom says that root is what it needs.

mod common;

use common::*;

#[test]
fn plan_without_root_says_root_is_needed() {
    let (t, ns) = (Topo::new("nlu"), Netns::precreated("nlu"));
    let d = Dir::new();
    let f = d.write(
        "lab.toml",
        &format!(
            "[topology]\nname = \"{}\"\nnetns = \"{}\"\n[bridge.br0]\n",
            t.name, ns.name
        ),
    );
    let run = run_dir();
    let r = sh(&format!(
        "NETLOOM_RUN_DIR={} setpriv --reuid=65534 --regid=65534 --clear-groups {} plan {}",
        run.display(),
        env!("CARGO_BIN_EXE_netloom"),
        f.display()
    ));
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("error: "), "{r:?}");
    assert!(r.stderr.contains("needs root (or CAP_NET_ADMIN"), "{r:?}");
    // As root the same plan works.
    assert_eq!(nl(&["plan"], &[&f]).code, 0);
}
