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

mod common;

use common::*;
use serde_json::Value;

fn committed(file: &str) -> Value {
    let p = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("schemas")
        .join(file);
    serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap()
}

/// Every error `schema` finds in `doc`, as text.
fn violations(schema: &Value, doc: &Value) -> Vec<String> {
    let v = jsonschema::validator_for(schema).expect("a valid JSON Schema");
    v.iter_errors(doc)
        .map(|e| format!("{}: {e}", e.instance_path()))
        .collect()
}

#[test]
fn output_schemas_are_fresh() {
    for (name, file, generated) in netloom::schemas::all() {
        let p = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("schemas")
            .join(file);
        let committed = std::fs::read_to_string(&p).unwrap_or_default();
        assert!(
            committed == generated,
            "schemas/{file} is stale: regenerate it with\n    cargo run -- schema {name} > schemas/{file}"
        );
    }
}

#[test]
fn every_golden_plan_obeys_the_plan_schema() {
    let schema = committed("plan.schema.json");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let mut n = 0;
    let mut kinds = std::collections::BTreeSet::new();
    for e in std::fs::read_dir(root).unwrap() {
        let dir = e.unwrap().path();
        let loaded = netloom::spec::load_paths(&[dir.join("topology.toml")]);
        let (topo, _) = netloom::model::build(&loaded).unwrap();
        let graph = netloom::graph::build(&topo).unwrap();
        let observed: netloom::observed::Observed =
            serde_json::from_str(&std::fs::read_to_string(dir.join("observed.json")).unwrap())
                .unwrap();
        let plan = netloom::plan::Plan::new(
            &topo.name,
            topo.netns.clone(),
            &graph,
            netloom::diff::diff(&topo.name, &graph, &observed),
        );
        let doc: Value = serde_json::from_str(&netloom::plan::render_json(&plan)).unwrap();
        for c in doc["changes"].as_array().unwrap() {
            kinds.insert(c["key"]["type"].as_str().unwrap().to_string());
        }
        let bad = violations(&schema, &doc);
        assert!(bad.is_empty(), "{}: {bad:#?}", dir.display());
        n += 1;
    }
    assert!(n >= 14);
    assert!(kinds.len() >= 8, "the fixtures cover most kinds: {kinds:?}");

    // The schema says something: a plan without its changes, or with an
    // action it does not know, is refused.
    let bad = serde_json::json!({"format_version": 1, "netloom_version": "x", "topology": "t",
        "netns": null, "conflicts": [], "pending": [], "summary": {}});
    assert!(!violations(&schema, &bad).is_empty());
}

/// What the binary prints (and saves) obeys the committed schemas.
#[test]
fn show_json_and_a_saved_plan_obey_their_schemas() {
    let ns = Netns::precreated("nlsc");
    let d = Dir::new();
    let o = octet();
    let f = d.write(
        "t.toml",
        &format!(
            "[topology]\nname = \"{n}\"\nnetns = \"{n}\"\n[bridge.br0]\naddresses = [\"10.{o}.3.1/24\"]\n\
             [veth.va]\npeer = \"vb\"\nmaster = \"br0\"\n[[route]]\nto = \"10.{o}.4.0/24\"\nvia = \"10.{o}.3.2\"\n",
            n = ns.name
        ),
    );
    let saved = d.path.join("plan.json");
    let p = nl(&["plan", "--out", saved.to_str().unwrap()], &[&f]);
    assert_eq!(p.code, 0, "{p:?}");
    let doc: Value = serde_json::from_str(&std::fs::read_to_string(&saved).unwrap()).unwrap();
    let bad = violations(&committed("saved-plan.schema.json"), &doc);
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(nl(&["apply"], &[&saved]).code, 0);

    // Drift, so that show has more than "ok" to say.
    must(&format!("ip -n {} link set va nomaster", ns.name));
    let s = nl(&["show", "--format", "json"], &[&f]);
    assert_eq!(s.code, 0, "{s:?}");
    let doc: Value = serde_json::from_str(&s.stdout).unwrap();
    assert!(
        doc["entries"]
            .as_array()
            .unwrap()
            .iter()
            .any(|e| e["status"] == "drift"),
        "{doc}"
    );
    let bad = violations(&committed("show.schema.json"), &doc);
    assert!(bad.is_empty(), "{bad:#?}");
    assert_eq!(nl(&["destroy"], &[&f]).code, 0);
}
