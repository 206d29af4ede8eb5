//! The corpus of invalid topologies: each is refused with its location and
//! message, and `apply` changes nothing.

mod common;

use common::*;
use std::path::{Path, PathBuf};

struct Expect {
    file: PathBuf,
    kind: &'static str,
    text: String,
}

fn cases() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid");
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    v.sort();
    v
}

fn expectations(case: &Path) -> Vec<Expect> {
    let files: Vec<PathBuf> = if case.is_dir() {
        let mut f: Vec<_> = std::fs::read_dir(case)
            .unwrap()
            .map(|e| e.unwrap().path())
            .collect();
        f.sort();
        f
    } else {
        vec![case.to_path_buf()]
    };
    let mut out = vec![];
    for f in files {
        for line in std::fs::read_to_string(&f).unwrap().lines() {
            for kind in ["expect", "expect-help", "expect-note"] {
                if let Some(rest) = line.strip_prefix(&format!("# {kind}: ")) {
                    out.push(Expect {
                        file: f.clone(),
                        kind,
                        text: rest.to_string(),
                    });
                }
            }
        }
    }
    out
}

#[test]
fn corpus_has_one_case_per_error_class() {
    assert!(
        cases().len() >= 25,
        "the corpus keeps at least 25 invalid topologies"
    );
}

#[test]
fn every_invalid_topology_is_refused_with_location_and_message() {
    let mut failures = vec![];
    for case in cases() {
        let exp = expectations(&case);
        assert!(
            !exp.is_empty(),
            "{} has no `# expect:` line",
            case.display()
        );
        let r = nl(&["validate"], &[&case]);
        if r.code != 1 {
            failures.push(format!(
                "{}: exit {} (want 1)\n{r:?}",
                case.display(),
                r.code
            ));
            continue;
        }
        for e in exp {
            let want = match e.kind {
                "expect" => match e.text.strip_prefix("0:0: ") {
                    Some(msg) => format!("error: {msg}"),
                    None => {
                        let (line, rest) = e.text.split_once(':').unwrap();
                        let (col, msg) = rest.split_once(": ").unwrap();
                        format!("{}:{line}:{col}: error: {msg}", e.file.display())
                    }
                },
                "expect-help" => format!("help: {}", e.text),
                _ => format!("note: {}", case.join(&e.text).display()),
            };
            if !r.stderr.contains(&want) {
                failures.push(format!(
                    "{}: stderr lacks\n    {want}\n{r:?}",
                    case.display()
                ));
            }
        }
        if !r.stderr.contains("nothing was changed") {
            failures.push(format!("{}: no closing line\n{r:?}", case.display()));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_file_that_does_not_parse_hides_no_other_error_and_invents_none() {
    let case = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/invalid/all-errors-in-one-run");
    let r = nl(&["validate"], &[&case]);
    assert_eq!(r.code, 1);
    assert!(r.stderr.contains("4 errors found"), "{r:?}");
    // br-in-b is declared in the file that did not parse.
    assert!(!r.stderr.contains("no bridge named `br-in-b`"), "{r:?}");
    let j = nl(&["validate", "--format", "json"], &[&case]);
    let v: serde_json::Value = serde_json::from_str(&j.stdout).unwrap();
    let files: std::collections::BTreeSet<&str> = v["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["file"].as_str().unwrap().rsplit('/').next().unwrap())
        .collect();
    assert_eq!(files, ["a.toml", "b.toml"].into_iter().collect(), "{v}");
}

#[test]
fn apply_of_invalid_input_changes_nothing() {
    // Run inside a scratch netns so a validation gap could not touch the host.
    let ns = Netns::precreated("nlinv");
    let before = ns.ip_json("link show");
    for case in cases() {
        let mut c = std::process::Command::new("ip");
        c.args([
            "netns",
            "exec",
            &ns.name,
            env!("CARGO_BIN_EXE_netloom"),
            "apply",
        ])
        .arg(&case);
        c.env("NETLOOM_RUN_DIR", run_dir());
        let r = run(c);
        assert_eq!(r.code, 1, "{}: {r:?}", case.display());
        assert!(r.stderr.contains("error"), "{}: {r:?}", case.display());
    }
    assert_eq!(
        ns.ip_json("link show"),
        before,
        "apply of invalid input changed links"
    );
    assert_eq!(ns.routes("all"), Vec::<String>::new());
    assert_eq!(ns.rules(), Vec::<String>::new());
}

#[test]
fn a_warning_is_reported_with_its_location_and_does_not_block() {
    let d = Dir::new();
    let f = d.write(
        "lab.toml",
        "[topology]\nname = \"lab\"\n[container.a]\n[container.b]\n[[link]]\nendpoints = [\"a:eth1\", \"b:eth1\"]\naddresses = { \"a:eth1\" = [\"10.1.0.1/30\"], \"b:eth1\" = [\"10.2.0.2/30\"] }\n",
    );
    let r = nl(&["validate"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    let want = format!(
        "{}:5:1: warning: the two ends of this link have addresses in different subnets",
        f.display()
    );
    assert!(r.stderr.contains(&want), "{r:?}");
    assert!(r.stdout.contains("is valid"), "{r:?}");
}

#[test]
fn an_empty_file_in_a_topology_directory_is_an_error_not_an_empty_section_list() {
    // What a watcher sees of a file an editor truncates before writing it.
    let d = Dir::new();
    d.write("topology.toml", "[topology]\nname = \"lab\"\n");
    let empty = d.write("bridges.toml", "");
    let r = nl(&["validate"], &[&d.path]);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(
        r.stderr.contains(&format!(
            "{}:1:1: error: the file is empty",
            empty.display()
        )),
        "{r:?}"
    );
}

#[test]
fn every_invalid_topology_gives_its_diagnostics_as_json_on_stdout() {
    let mut failures = vec![];
    for case in cases() {
        for cmd in ["validate", "plan"] {
            let r = nl(&[cmd, "--format", "json"], &[&case]);
            let v: serde_json::Value = match serde_json::from_str(&r.stdout) {
                Ok(v) => v,
                Err(e) => {
                    failures.push(format!(
                        "{} ({cmd}): stdout is not JSON: {e}\n{r:?}",
                        case.display()
                    ));
                    continue;
                }
            };
            if r.code != 1 || v["valid"] != false || v["format_version"] != 1 {
                failures.push(format!("{} ({cmd}): exit {}\n{v}", case.display(), r.code));
            }
            let diags = v["diagnostics"].as_array().cloned().unwrap_or_default();
            for e in expectations(&case) {
                // As the text test: the expected words begin the message.
                let says = |d: &serde_json::Value, msg: &str| {
                    d["message"].as_str().is_some_and(|m| m.starts_with(msg))
                };
                let found = diags.iter().any(|d| match e.kind {
                    "expect" => match e.text.strip_prefix("0:0: ") {
                        Some(msg) => says(d, msg) && d["line"].is_null(),
                        None => {
                            let (line, rest) = e.text.split_once(':').unwrap();
                            let (col, msg) = rest.split_once(": ").unwrap();
                            d["severity"] == "error"
                                && d["file"] == e.file.display().to_string()
                                && d["line"].as_u64() == line.parse().ok()
                                && d["column"].as_u64() == col.parse().ok()
                                && says(d, msg)
                        }
                    },
                    "expect-help" => d["help"]
                        .as_str()
                        .is_some_and(|h| h.contains(e.text.as_str())),
                    _ => d["related"].as_array().is_some_and(|r| {
                        r.iter().any(|x| {
                            x["file"]
                                == case
                                    .join(e.text.split(':').next().unwrap())
                                    .display()
                                    .to_string()
                        })
                    }),
                });
                if !found {
                    failures.push(format!(
                        "{} ({cmd}): no diagnostic for `{}: {}` in\n{v:#}",
                        case.display(),
                        e.kind,
                        e.text
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

#[test]
fn a_valid_topology_validates_as_json_with_its_warnings() {
    let d = Dir::new();
    let f = d.write(
        "lab.toml",
        "[topology]\nname = \"lab\"\n[container.a]\n[container.b]\n[[link]]\nendpoints = [\"a:eth1\", \"b:eth1\"]\naddresses = { \"a:eth1\" = [\"10.1.0.1/30\"], \"b:eth1\" = [\"10.2.0.2/30\"] }\n",
    );
    let r = nl(&["validate", "--format", "json"], &[&f]);
    assert_eq!(r.code, 0, "{r:?}");
    let v: serde_json::Value = serde_json::from_str(&r.stdout).unwrap();
    assert_eq!(v["valid"], true, "{v}");
    assert_eq!(v["topology"], "lab", "{v}");
    assert_eq!(
        (v["errors"].as_u64(), v["warnings"].as_u64()),
        (Some(0), Some(1)),
        "{v}"
    );
    let w = &v["diagnostics"][0];
    assert_eq!(w["severity"], "warning", "{v}");
    assert_eq!(
        (w["line"].as_u64(), w["column"].as_u64()),
        (Some(5), Some(1)),
        "{v}"
    );
    assert!(
        w["message"]
            .as_str()
            .unwrap()
            .contains("addresses in different subnets"),
        "{v}"
    );
}
