//! The committed JSON Schema matches the Rust types, and the examples obey it.

use std::path::Path;

#[test]
fn committed_schema_is_fresh() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("schemas/netloom.schema.json");
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == netloom::spec::schema_json(),
        "schemas/netloom.schema.json is stale: regenerate it with\n    cargo run -- schema > schemas/netloom.schema.json"
    );
}

#[test]
fn every_example_topology_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies");
    let mut n = 0;
    for e in std::fs::read_dir(root).unwrap() {
        let p = e.unwrap().path();
        let loaded = netloom::spec::load_paths(std::slice::from_ref(&p));
        let (topo, warnings) = netloom::model::build(&loaded).unwrap_or_else(|d| {
            panic!(
                "{}: {}",
                p.display(),
                netloom::diag::render_all(&d, &loaded.sources)
            )
        });
        assert!(warnings.is_empty(), "{}: {warnings:?}", p.display());
        netloom::graph::build(&topo).unwrap();
        n += 1;
    }
    assert!(n >= 2);
}
