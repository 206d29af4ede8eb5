//! Plan renderers: text (terminals, logs), JSON (machines), Markdown (PR comments).

use super::Plan;
use crate::diff::{Action, Change};
use std::fmt::Write as _;

fn scope(plan: &Plan) -> String {
    match &plan.netns {
        Some(n) => format!("topology {} in netns {}", plan.topology, n),
        None => format!("topology {} in the host netns", plan.topology),
    }
}

pub fn summary_line(plan: &Plan) -> String {
    let s = &plan.summary;
    let mut line = format!(
        "Plan: {} to create, {} to update, {} to replace, {} to delete",
        s.create, s.update, s.replace, s.delete
    );
    if s.pending > 0 {
        line += &format!(", {} pending", s.pending);
    }
    line + "."
}

fn pending(out: &mut String, plan: &Plan) {
    if plan.pending.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nPending: made once they can be (apply exits 2 while any wait)."
    );
    for p in &plan.pending {
        let _ = writeln!(out, "  … {} {}  # waiting: {}", p.kind, p.title, p.reason);
    }
}

/// The change lines alone, in execution order.
pub fn render_changes(plan: &Plan) -> String {
    body(plan)
}

fn body(plan: &Plan) -> String {
    let mut out = String::new();
    for s in &plan.changes {
        change_lines(&mut out, &s.change);
    }
    out
}

fn change_lines(out: &mut String, c: &Change) {
    let _ = write!(out, "  {} {} {}", c.action.symbol(), c.kind, c.title);
    if let Some(r) = &c.reason {
        let _ = write!(out, "  # {r}");
    }
    out.push('\n');
    match c.action {
        Action::Create | Action::Replace => {
            if let Some(r) = c.desired.as_deref() {
                r.kind().details(out);
            }
            // A replace also says what made it one.
            for f in &c.fields {
                let _ = writeln!(out, "      {f}");
            }
        }
        Action::Update => {
            for f in &c.fields {
                let _ = writeln!(out, "      {f}");
            }
        }
        Action::Delete => {}
    }
}

fn conflicts(out: &mut String, plan: &Plan) {
    if plan.conflicts.is_empty() {
        return;
    }
    let _ = writeln!(
        out,
        "\nConflicts: nothing will be changed until they are resolved."
    );
    for c in &plan.conflicts {
        let _ = writeln!(out, "  ! {}: {}", c.key, c.message);
        let _ = writeln!(out, "      help: {}", c.help);
    }
}

pub fn render_text(plan: &Plan) -> String {
    let mut out = String::new();
    if plan.is_empty() {
        let _ = writeln!(
            out,
            "No changes: {} matches its {} declared objects.",
            scope(plan),
            plan.summary.desired
        );
        return out;
    }
    let _ = writeln!(out, "netloom plan: {}", scope(plan));
    if !plan.changes.is_empty() {
        out.push('\n');
        out.push_str(&body(plan));
    }
    pending(&mut out, plan);
    conflicts(&mut out, plan);
    let _ = writeln!(out, "\n{}", summary_line(plan));
    out
}

pub fn render_markdown(plan: &Plan) -> String {
    let mut out = format!("### netloom plan: `{}`\n\n", plan.topology);
    if plan.is_empty() {
        let _ = writeln!(out, "No changes: {}.", scope(plan));
        return out;
    }
    let _ = writeln!(out, "{}\n\n**{}**\n", scope(plan), summary_line(plan));
    if !plan.changes.is_empty() {
        let text = markdown_body(plan);
        let fence = code_fence(&text);
        let _ = writeln!(out, "{fence}diff");
        for line in text.lines() {
            // `diff` highlighting keys on the first column, which takes the
            // place of the line's own marker.
            let t = line.trim_start();
            let indent = &line[..line.len() - t.len()];
            // A replace is red as a deletion is (it is one, first); an
            // update is `!`, and what a replace disconnects is red too.
            let (lead, rest) = if t.starts_with("-/+") || t.starts_with("disconnects") {
                ("-", t)
            } else if let Some(r) = t.strip_prefix('+') {
                ("+", r)
            } else if let Some(r) = t.strip_prefix('-') {
                ("-", r)
            } else if let Some(r) = t.strip_prefix('~') {
                ("!", r)
            } else {
                (" ", t)
            };
            let _ = writeln!(out, "{lead}{indent}{rest}");
        }
        let _ = writeln!(out, "{fence}");
    }
    if !plan.pending.is_empty() {
        out.push_str("\n**Pending**:\n\n");
        for p in &plan.pending {
            let _ = writeln!(out, "- {} `{}`: {}", p.kind, p.title, p.reason);
        }
    }
    if !plan.conflicts.is_empty() {
        out.push_str("\n**Conflicts** (nothing will be changed until they are resolved):\n\n");
        for c in &plan.conflicts {
            let _ = writeln!(out, "- `{}`: {} — {}", c.key, c.message, c.help);
        }
    }
    out
}

/// The change lines, with what a replacement disconnects on a line of its own.
fn markdown_body(plan: &Plan) -> String {
    let mut out = String::new();
    for s in &plan.changes {
        let mut lines = String::new();
        change_lines(&mut lines, &s.change);
        let (first, rest) = lines.split_once('\n').unwrap_or((&lines, ""));
        match (s.change.action, first.find("; disconnects")) {
            (Action::Replace, Some(i)) => {
                let _ = writeln!(out, "{}", &first[..i]);
                let _ = writeln!(out, "      {}", &first[i + 2..]);
            }
            _ => {
                let _ = writeln!(out, "{first}");
            }
        }
        out.push_str(rest);
    }
    out
}

pub fn render_json(plan: &Plan) -> String {
    let mut s = serde_json::to_string_pretty(plan).expect("plan serializes");
    s.push('\n');
    s
}

/// A code fence longer than any run of backticks in `text`, so nothing a
/// file puts into a plan (a label value, say) can close the block early and
/// write into the review comment around it.
pub fn code_fence(text: &str) -> String {
    let longest = text.split(|c| c != '`').map(str::len).max().unwrap_or(0);
    "`".repeat(longest.max(2) + 1)
}

#[cfg(test)]
mod tests {
    use super::code_fence;

    #[test]
    fn a_fence_outlasts_any_backticks_in_the_text() {
        assert_eq!(code_fence("plain"), "```");
        assert_eq!(code_fence("label: ```\nrm -rf"), "````");
        assert_eq!(code_fence("`````"), "``````");
    }
}
