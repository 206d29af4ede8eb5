//! Golden tests of the pure core: topology + observed state → plan text
//! (`plan.txt`) and, where a fixture has one, the JSON plan (`plan.json`).
//! Regenerate with `UPDATE_GOLDEN=1 cargo test --test golden` and review the diff.

use netloom::diff::diff;
use netloom::observed::Observed;
use netloom::plan::{Plan, render_json, render_markdown, render_text};
use std::path::Path;

fn plan_for(dir: &Path) -> Plan {
    let loaded = netloom::spec::load_paths(&[dir.join("topology.toml")]);
    let (topo, _) = netloom::model::build(&loaded).expect("fixture topology is valid");
    let graph = netloom::graph::build(&topo).expect("fixture graph is acyclic");
    let observed: Observed =
        serde_json::from_str(&std::fs::read_to_string(dir.join("observed.json")).unwrap()).unwrap();
    Plan::new(
        &topo.name,
        topo.netns.clone(),
        &graph,
        diff(&topo.name, &graph, &observed),
    )
}

/// Compares `got` with the golden file (or rewrites it under UPDATE_GOLDEN).
fn check(golden: &Path, got: &str, failed: &mut Vec<String>) {
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(golden, got).unwrap();
        return;
    }
    let want = std::fs::read_to_string(golden).unwrap_or_default();
    if got != want {
        failed.push(format!(
            "{}:\n--- want\n{want}--- got\n{got}",
            golden.display()
        ));
    }
}

#[test]
fn plans_match_their_golden_files() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut dirs: Vec<_> = std::fs::read_dir(&root)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    dirs.sort();
    assert!(dirs.len() >= 14);
    let mut failed = vec![];
    let mut json = 0;
    for dir in dirs {
        let plan = plan_for(&dir);
        check(&dir.join("plan.txt"), &render_text(&plan), &mut failed);
        // plan.json is optional: only fixtures that have one compare JSON.
        // plan.md too: replaces must stand out from updates in a PR comment.
        let md = dir.join("plan.md");
        if md.exists() {
            check(&md, &render_markdown(&plan), &mut failed);
        }
        let golden = dir.join("plan.json");
        if golden.exists() {
            check(&golden, &render_json(&plan), &mut failed);
            json += 1;
        }
    }
    assert!(
        json >= 3,
        "kernel, Docker and wiring fixtures have a plan.json"
    );
    assert!(failed.is_empty(), "{}", failed.join("\n"));
}
