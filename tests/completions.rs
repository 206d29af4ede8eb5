//! Shell completions and the manual page, checked as a user would use
//! them: bash completes a subcommand from a prefix, and `man` renders the
//! page.

use std::process::Command;

fn netloom(args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_netloom"))
        .args(args)
        .output()
        .unwrap();
    assert!(out.status.success(), "netloom {args:?}: {out:?}");
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn bash_completes_subcommands_and_every_shell_gets_a_script() {
    let dir = std::env::temp_dir().join(format!("netloom-compl-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let script = dir.join("netloom.bash");
    std::fs::write(&script, netloom(&["completions", "bash"])).unwrap();
    let complete = |line: &str| {
        let words: Vec<&str> = line.split(' ').collect();
        let out = Command::new("bash")
            .arg("-c")
            .arg(format!(
                // As bash calls it: the command, the word being completed, the one before.
                "source {}; COMP_WORDS=({}); COMP_CWORD={}; \
                 _netloom netloom \"${{COMP_WORDS[COMP_CWORD]}}\" \"${{COMP_WORDS[COMP_CWORD-1]}}\"; \
                 echo \"${{COMPREPLY[@]}}\"",
                script.display(),
                line,
                words.len() - 1
            ))
            .output()
            .unwrap();
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    };
    let got = complete("netloom pl");
    assert_eq!(got, "plan", "completing `netloom pl`");
    let got = complete("netloom d");
    assert!(
        got.split(' ').any(|w| w == "destroy"),
        "completing `netloom d`: {got}"
    );
    let got = complete("netloom plan --for");
    assert_eq!(got, "--format", "completing `netloom plan --for`");
    let _ = std::fs::remove_dir_all(&dir);

    for (shell, marker) in [
        ("zsh", "#compdef netloom"),
        ("fish", "complete -c netloom"),
        ("elvish", "edit:completion:arg-completer[netloom]"),
        ("powershell", "Register-ArgumentCompleter"),
    ] {
        let s = netloom(&["completions", shell]);
        assert!(s.contains(marker), "{shell}: {}", &s[..s.len().min(300)]);
        for sub in ["validate", "plan", "apply", "watch", "destroy", "show"] {
            assert!(s.contains(sub), "{shell} completion lacks `{sub}`");
        }
    }
    let bad = Command::new(env!("CARGO_BIN_EXE_netloom"))
        .args(["completions", "tcsh"])
        .output()
        .unwrap();
    // Usage errors exit 1 (2 means "changes pending" to netloom).
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("possible values"));
}

#[test]
fn the_manual_page_renders_with_man() {
    let page = netloom(&["man"]);
    assert!(
        page.contains(".TH netloom 1"),
        "{}",
        &page[..page.len().min(300)]
    );
    let dir = std::env::temp_dir().join(format!("netloom-man-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("netloom.1");
    std::fs::write(&file, &page).unwrap();
    // man-db is on Debian's base system; without it, the roff checks above stand.
    if Command::new("man").arg("--version").output().is_err() {
        let _ = std::fs::remove_dir_all(&dir);
        return;
    }
    let out = Command::new("man")
        .arg("-l")
        .arg(&file)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{out:?}");
    assert!(text.contains("Declarative network reconciler"), "{text}");
    for sub in ["validate", "plan", "apply", "watch", "destroy"] {
        assert!(
            text.contains(&format!("netloom-{sub}")),
            "no `{sub}` in:\n{text}"
        );
    }
}

#[test]
fn the_systemd_unit_runs_the_binary_where_the_readme_installs_it() {
    let root = env!("CARGO_MANIFEST_DIR");
    let readme = std::fs::read_to_string(format!("{root}/README.md")).unwrap();
    let unit =
        std::fs::read_to_string(format!("{root}/contrib/systemd/netloom-watch@.service")).unwrap();
    let install = readme
        .lines()
        .find(|l| l.starts_with("cargo install"))
        .expect("the README's install command");
    let prefix = install
        .split_whitespace()
        .skip_while(|w| *w != "--root")
        .nth(1)
        .unwrap_or("~/.cargo");
    let exec = unit
        .lines()
        .find_map(|l| l.strip_prefix("ExecStart="))
        .expect("ExecStart");
    assert!(
        exec.starts_with(&format!("{prefix}/bin/netloom ")),
        "ExecStart `{exec}` is not where `{install}` puts netloom"
    );
    let doc = unit
        .lines()
        .find_map(|l| l.strip_prefix("Documentation="))
        .expect("Documentation");
    // The one page netloom ships is the one `netloom man` prints.
    assert_eq!(doc, "man:netloom(1)");
    assert!(netloom(&["man"]).contains(".TH netloom 1"));
}
