use super::{Format, PlanArgs};
use crate::diff::diff;
use crate::plan::{Plan, render_json, render_markdown, render_text};
use std::process::ExitCode;

pub fn run(a: &PlanArgs) -> ExitCode {
    let l = match super::load(&a.paths.paths) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let observed = match super::runtime().block_on(super::observe(&l.topo)) {
        Ok((_, o)) => o,
        Err(e) => return super::fail(e),
    };
    let plan = Plan::new(
        &l.topo.name,
        l.topo.netns.clone(),
        &l.graph,
        diff(&l.topo.name, &l.graph, &observed),
    );
    let out = match a.format {
        Format::Text => render_text(&plan),
        Format::Json => render_json(&plan),
        Format::Markdown => render_markdown(&plan),
    };
    print!("{out}");
    if !plan.conflicts.is_empty() {
        return super::fail(format!(
            "{} conflict(s) with objects netloom does not own; apply would change nothing",
            plan.conflicts.len()
        ));
    }
    if a.detailed_exitcode && !plan.changes.is_empty() {
        return ExitCode::from(2);
    }
    ExitCode::SUCCESS
}
