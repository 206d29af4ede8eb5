//! `graph --view lab`: the lab picture names every container, bridge and
//! link with its addresses; the default view stays the dependency graph.

mod common;
use common::*;
use std::path::Path;

#[test]
fn the_lab_view_draws_containers_bridges_and_links_with_addresses() {
    let routers = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/routers");
    let r = nl(&["graph", "--view", "lab"], &[&routers]);
    assert_eq!(r.code, 0, "{r:?}");
    let dot = &r.stdout;
    assert!(dot.starts_with("graph \"routers\" {"), "{dot}");
    for c in ["r1", "r2", "r3"] {
        assert!(
            dot.contains(&format!("\"container/{c}\" [shape=box3d")),
            "{dot}"
        );
        assert!(
            dot.contains(&format!("\"container/{c}\" -- \"bridge/br-mgmt\"")),
            "{dot}"
        );
    }
    assert!(
        dot.contains("\"container/r1\" -- \"container/r2\" [taillabel=\"eth1\\n10.12.0.1/30\", headlabel=\"eth1\\n10.12.0.2/30\"]"),
        "{dot}"
    );
    assert!(dot.contains("label=\"netns routers\""), "{dot}");
    assert!(dot.trim_end().ends_with('}'));

    let deps = nl(&["graph"], &[&routers]);
    assert_eq!(deps.code, 0, "{deps:?}");
    assert!(deps.stdout.starts_with("digraph"), "{deps:?}");
}
