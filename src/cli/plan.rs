use super::{Format, PlanArgs};
use netloom::engine::{Loaded, destroy};
use netloom::plan::saved::Operation;
use netloom::plan::{Plan, code_fence, render_changes, render_json, render_markdown, render_text};
use std::fmt::Write as _;
use std::process::ExitCode;

pub fn run(a: &PlanArgs) -> ExitCode {
    // A plan holds no lock and is a snapshot: dumps from while the files
    // load are as current as any. (apply observes under the topology's
    // lock, taken after loading, so it does not prefetch.)
    netloom::engine::prefetch(&a.paths.paths);
    let loaded = if a.format == Format::Json {
        // A bot posting the JSON needs the diagnostics on stdout, not nothing.
        netloom::engine::load_diagnosed(&a.paths.paths)
            .map(|(l, _)| {
                eprint!("{}", l.warnings);
                l
            })
            .map_err(|bad| {
                super::print_diagnostics_json(&bad.diagnostics, &bad.sources, None);
                ExitCode::from(1)
            })
    } else {
        super::load(&a.paths.paths)
    };
    let l = match loaded {
        Ok(l) => l,
        Err(code) => return code,
    };
    let code = run_loaded(a, &l);
    // The process ends here: the kernel reclaims a large topology faster
    // than freeing it object by object would.
    std::mem::forget(l);
    code
}

fn run_loaded(a: &PlanArgs, l: &Loaded) -> ExitCode {
    if a.destroy {
        return run_destroy(a, l);
    }
    let plan = match super::runtime().block_on(netloom::engine::plan(l)) {
        Ok((live, plan)) => {
            std::mem::forget(live);
            plan
        }
        Err(e) => return super::fail(e),
    };
    let out = match a.format {
        Format::Text => super::tty::paint(&render_text(&plan)),
        Format::Json => render_json(&plan),
        Format::Markdown => render_markdown(&plan),
    };
    print!("{out}");
    if !plan.conflicts.is_empty() {
        return super::fail(format!(
            "{} conflict(s) with objects this topology does not own; apply would change nothing{}",
            plan.conflicts.len(),
            if a.out.is_some() {
                " (no plan was saved)"
            } else {
                ""
            }
        ));
    }
    if let Some(code) = save(a, l, &plan, Operation::Apply, &[]) {
        return code;
    }
    if a.detailed_exitcode && (!plan.changes.is_empty() || !plan.pending.is_empty()) {
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}

/// Writes the saved plan when `--out` asks; `Some` is a failure to exit with.
fn save(
    a: &PlanArgs,
    l: &Loaded,
    plan: &Plan,
    op: Operation,
    whole: &[String],
) -> Option<ExitCode> {
    let out = a.out.as_ref()?;
    let s = super::saved::make(op, &a.paths.paths, l, plan, whole);
    if let Err(e) = super::saved::write(out, &s) {
        return Some(super::fail(e));
    }
    let msg = format!(
        "Saved this plan to {0}; `netloom apply {0}` makes exactly these changes, or none if anything changed since.",
        out.display()
    );
    // stdout holds only the JSON or Markdown when one is asked for.
    if a.format == Format::Text {
        println!("\n{msg}");
    } else {
        eprintln!("{msg}");
    }
    None
}

/// `plan --destroy`: what destroy would remove.
fn run_destroy(a: &PlanArgs, l: &Loaded) -> ExitCode {
    let prepared = match super::runtime().block_on(destroy::prepare(l)) {
        Ok(d) => d,
        Err(e) => return super::fail(e),
    };
    let (mut plan, whole, kept): (Plan, Vec<String>, Vec<(String, String)>) = match &prepared {
        Some(d) => (
            d.plan.clone(),
            d.removed_whole().map(str::to_string).collect(),
            d.kept()
                .map(|(a, b)| (a.to_string(), b.to_string()))
                .collect(),
        ),
        None => (destroy::nothing(l), vec![], vec![]),
    };
    plan.input_digest = Some(l.input_digest().to_string());
    let count = plan.changes.len() + whole.len();
    let scope = format!(
        "topology {} in {}",
        l.topo.name,
        netloom::engine::netns_label(&l.topo.netns)
    );
    let mut lines = render_changes(&plan);
    for w in &whole {
        let _ = writeln!(
            lines,
            "  - {w}  # created by netloom: removed with everything in it"
        );
    }
    for (what, why) in &kept {
        let _ = writeln!(lines, "  ({what} kept: {why})");
    }
    let summary = format!("Plan: destroy removes {count} object(s).");
    let out = match a.format {
        Format::Text if count == 0 => {
            format!("Nothing to destroy: {scope} owns nothing that is present.\n")
        }
        Format::Text => super::tty::paint(&format!(
            "netloom plan --destroy: {scope}\n\n{lines}\n{summary}\n"
        )),
        Format::Markdown => {
            let mut m = format!(
                "### netloom plan --destroy: `{}`\n\n{scope}\n\n**{summary}**\n\n",
                l.topo.name
            );
            if count > 0 {
                let fence = code_fence(&lines);
                let _ = writeln!(m, "{fence}diff");
                for line in lines.lines() {
                    let t = line.trim_start();
                    let indent = &line[..line.len() - t.len()];
                    match t.strip_prefix('-') {
                        Some(rest) => {
                            let _ = writeln!(m, "-{indent}{rest}");
                        }
                        None => {
                            let _ = writeln!(m, " {indent}{t}");
                        }
                    }
                }
                let _ = writeln!(m, "{fence}");
            }
            m
        }
        Format::Json => {
            let mut v = serde_json::to_value(&plan).expect("a plan serializes");
            v["operation"] = serde_json::json!("destroy");
            v["removed_whole"] = serde_json::json!(whole);
            serde_json::to_string_pretty(&v).expect("JSON") + "\n"
        }
    };
    print!("{out}");
    if let Some(code) = save(a, l, &plan, Operation::Destroy, &whole) {
        return code;
    }
    if a.detailed_exitcode && count > 0 {
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
