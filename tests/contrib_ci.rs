//! contrib/ci: the script the GitHub and GitLab examples call writes the
//! pull-request comment, saves the plan, and the saved plan applies after
//! the "merge"; a broken file gives a comment that says where and why.

mod common;
use common::*;
use std::path::Path;
use std::process::Command;

fn script() -> std::path::PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/ci/netloom-plan-comment.sh")
}

fn comment(dir: &Dir, topo: &Path, plan_out: Option<&Path>) -> (Run, String) {
    let md = dir.path.join("plan.md");
    let mut c = Command::new("bash");
    c.arg(script())
        .arg(&md)
        .arg(topo)
        .env("NETLOOM", env!("CARGO_BIN_EXE_netloom"))
        .env("NETLOOM_RUN_DIR", run_dir());
    if let Some(p) = plan_out {
        c.env("NETLOOM_PLAN_OUT", p);
    }
    let r = run(c);
    (r, std::fs::read_to_string(&md).unwrap_or_default())
}

#[test]
fn the_ci_script_comments_saves_and_the_reviewed_plan_applies() {
    let ns = Netns::named("nlci");
    let t = Topo::new("ci");
    let dir = Dir::new();
    let f = dir.write(
        "lab.toml",
        &format!(
            "[topology]\nname = \"{}\"\nnetns = \"{}\"\n\n[bridge.br-ci]\naddresses = [\"10.91.0.1/24\"]\n",
            t.name, ns.name
        ),
    );
    let saved = dir.path.join("netloom.plan");
    let (r, md) = comment(&dir, &f, Some(&saved));
    assert_eq!(r.code, 0, "{r:?}");
    assert!(
        md.starts_with(&format!("### netloom plan: `{}`", t.name)),
        "{md}"
    );
    assert!(
        md.lines()
            .any(|l| l.starts_with('+') && l.trim_end().ends_with("bridge br-ci")),
        "{md}"
    );
    assert!(md.contains("**Plan: 2 to create"), "{md}");
    assert!(r.stderr.contains("changes pending"), "{r:?}");
    assert!(!ns.exists(), "planning changed nothing");

    // The merge: the reviewed plan is applied as it is.
    let a = nl(&["apply"], &[&saved]);
    assert_eq!(a.code, 0, "{a:?}");
    assert_eq!(ns.addrs("br-ci"), ["10.91.0.1/24"]);

    // Nothing left: the next comment says so.
    let (r, md) = comment(&dir, &f, None);
    assert_eq!(r.code, 0, "{r:?}");
    assert!(md.contains("No changes"), "{md}");

    // A broken file: the comment names the place, the job fails.
    std::fs::write(
        &f,
        "[topology]\nname = \"x\"\n[bridge.br-ci]\nmtu = \"big\"\n",
    )
    .unwrap();
    let (r, md) = comment(&dir, &f, None);
    assert_eq!(r.code, 1, "{r:?}");
    assert!(md.starts_with("### netloom plan failed (exit 1)"), "{md}");
    assert!(md.contains("lab.toml:4:"), "{md}");
}

#[test]
fn the_ci_examples_call_the_tested_script() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("contrib/ci");
    for f in ["github-actions.yml", "gitlab-ci.yml"] {
        let text = std::fs::read_to_string(root.join(f)).unwrap();
        let _: serde_json::Value =
            yaml_serde::from_str(&text).unwrap_or_else(|e| panic!("{f} is not YAML: {e}"));
        assert!(
            text.contains("contrib/ci/netloom-plan-comment.sh")
                && text.contains("netloom apply netloom.plan"),
            "{f} plans with the script and applies the saved plan"
        );
    }
}
