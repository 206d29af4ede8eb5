//! Golden tests of the pure core: topology + observed state → plan text.
//! Regenerate with `UPDATE_GOLDEN=1 cargo test --test golden` and review the diff.

use netloom::diff::diff;
use netloom::observed::Observed;
use netloom::plan::{Plan, render_text};
use std::path::Path;

fn plan_for(dir: &Path) -> String {
    let loaded = netloom::spec::load_paths(&[dir.join("topology.toml")]);
    let (topo, _) = netloom::model::build(&loaded).expect("fixture topology is valid");
    let graph = netloom::graph::build(&topo).expect("fixture graph is acyclic");
    let observed: Observed =
        serde_json::from_str(&std::fs::read_to_string(dir.join("observed.json")).unwrap()).unwrap();
    let plan = Plan::new(
        &topo.name,
        topo.netns.clone(),
        &graph,
        diff(&topo.name, &graph, &observed),
    );
    render_text(&plan)
}

#[test]
fn plans_match_their_golden_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 6);
    let mut failed = vec![];
    for dir in dirs {
        let got = plan_for(&dir);
        let golden = dir.join("plan.txt");
        if std::env::var_os("UPDATE_GOLDEN").is_some() {
            std::fs::write(&golden, &got).unwrap();
            continue;
        }
        let want = std::fs::read_to_string(&golden).unwrap_or_default();
        if got != want {
            failed.push(format!(
                "{}:\n--- want\n{want}--- got\n{got}",
                dir.display()
            ));
        }
    }
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
