use super::{Format, PlanArgs};
use netloom::plan::{render_json, render_markdown, render_text};
use std::process::ExitCode;

pub fn run(a: &PlanArgs) -> ExitCode {
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
    let plan = match super::runtime().block_on(netloom::engine::plan(&l)) {
        Ok((_, plan)) => plan,
        Err(e) => return super::fail(e),
    };
    let out = match a.format {
        Format::Text => render_text(&plan),
        Format::Json => render_json(&plan),
        Format::Markdown => render_markdown(&plan),
    };
    print!("{out}");
    if !plan.conflicts.is_empty() {
        return super::fail(format!(
            "{} conflict(s) with objects this topology does not own; apply would change nothing",
            plan.conflicts.len()
        ));
    }
    if a.detailed_exitcode && (!plan.changes.is_empty() || !plan.pending.is_empty()) {
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
