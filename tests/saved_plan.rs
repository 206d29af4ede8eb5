//! Saved plans: `plan --out FILE` then `apply FILE` makes exactly the
//! reviewed changes, and refuses, changing nothing, when the files or the
//! live state moved since; `plan --destroy --out` saves a destroy.

mod common;
use common::*;

fn topo(ns: &Netns, t: &Topo, extra: &str) -> String {
    format!(
        "[topology]\nname = \"{}\"\nnetns = \"{}\"\n\n[bridge.br-a]\naddresses = [\"10.92.0.1/24\"]\n\n[bridge.br-b]\nmtu = 1400\n{extra}",
        t.name, ns.name
    )
}

#[test]
fn a_saved_plan_applies_once_and_a_stale_one_changes_nothing() {
    let ns = Netns::named("nlsp");
    let t = Topo::new("sp");
    let dir = Dir::new();
    let f = dir.write("lab.toml", &topo(&ns, &t, ""));
    let p1 = dir.path.join("p1.json");
    let r = nl(&["plan", "-out", p1.to_str().unwrap()], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!ns.exists());
    let text = std::fs::read_to_string(&p1).unwrap();
    assert!(text.contains("\"netloom_saved_plan\": 1"), "{text}");

    let a = nl(&["apply"], &[&p1]);
    assert_eq!(a.code, 0, "{a:?}");
    assert_eq!(ns.addrs("br-a"), ["10.92.0.1/24"]);
    // Applied already: refused, says why.
    let again = nl(&["apply"], &[&p1]);
    assert_eq!(again.code, 1, "{again:?}");
    assert!(again.stderr.contains("already matches"), "{again:?}");

    // The live state moved after the plan: refused, naming the object.
    let p2 = dir.path.join("p2.json");
    std::fs::write(&f, topo(&ns, &t, "\n[bridge.br-c]\n")).unwrap();
    assert_eq!(nl(&["plan", "--out", p2.to_str().unwrap()], &[&f]).code, 0);
    must(&format!("ip -n {} link del br-b", ns.name));
    let stale = nl(&["apply"], &[&p2]);
    assert_eq!(stale.code, 1, "{stale:?}");
    assert!(
        stale.stderr.contains(
            "the plan is stale: bridge br-b was deleted since the plan was made; run plan again"
        ),
        "{stale:?}"
    );
    assert!(
        !ns.link_names().contains(&"br-c".to_string()),
        "nothing changed"
    );

    // The files moved after the plan: refused.
    let p3 = dir.path.join("p3.json");
    assert_eq!(nl(&["plan", "--out", p3.to_str().unwrap()], &[&f]).code, 0);
    std::fs::write(&f, topo(&ns, &t, "\n[bridge.br-d]\n")).unwrap();
    let edited = nl(&["apply"], &[&p3]);
    assert_eq!(edited.code, 1, "{edited:?}");
    assert!(
        edited
            .stderr
            .contains("lab.toml changed since the plan was made"),
        "{edited:?}"
    );
    assert!(!ns.link_names().contains(&"br-c".to_string()));

    // The JSON plan names where each change comes from.
    let j = nl(&["plan", "--format", "json"], &[&f]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    assert_eq!(v["netloom_version"], env!("CARGO_PKG_VERSION"));
    assert_eq!(v["input_digest"].as_str().map(str::len), Some(64));
    let d = v["changes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["title"] == "br-d")
        .expect("br-d is planned");
    assert_eq!(d["source"]["line"], 11, "{d}"); // [bridge.br-d]

    // A saved destroy removes what it listed.
    let pd = dir.path.join("destroy.json");
    let r = nl(&["plan", "-destroy", "-out", pd.to_str().unwrap()], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(r.stdout.contains("- bridge br-a"), "{r:?}");
    assert!(ns.exists(), "planning a destroy removes nothing");
    let r = nl(&["apply"], &[&pd]);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(!ns.exists());
}

#[test]
fn a_file_that_is_not_a_plan_is_refused_clearly() {
    let dir = Dir::new();
    let f = dir.write("p.json", "{\"netloom_saved_plan\": 9}");
    let r = nl(&["apply"], &[&f]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(r.stderr.contains("saved-plan format 9"), "{r:?}");
}

#[test]
fn a_password_changed_outside_the_files_changes_the_input_digest_only_as_a_digest() {
    let src = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("topologies/bgp");
    let dir = Dir::new();
    let lab = dir.write(
        "lab.toml",
        &std::fs::read_to_string(src.join("lab.toml")).unwrap(),
    );
    dir.write("r2.key", "first-secret\n");
    let before = netloom::engine::load(std::slice::from_ref(&lab)).unwrap();
    let d1 = before.input_digest().to_string();
    dir.write("r2.key", "second-secret\n");
    let after = netloom::engine::load(std::slice::from_ref(&lab)).unwrap();
    let d2 = after.input_digest().to_string();
    assert_eq!(
        before.file_digests(),
        after.file_digests(),
        "lab.toml is the same"
    );
    assert_ne!(
        d1, d2,
        "the password is part of what a saved plan was made from"
    );
    assert_eq!(d1.len(), 64);
    assert!(!d1.contains("secret") && !d2.contains("secret"));
}
