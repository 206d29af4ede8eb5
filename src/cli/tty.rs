//! What only a person at a terminal sees: a progress bar for long applies
//! and destroys, and plan markers in colour. Nothing of it when stdout is
//! not a terminal or `CI` is set (colour also honours `NO_COLOR`), so logs,
//! pipes and tests get the plain text.

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::io::IsTerminal;

fn interactive() -> bool {
    std::io::stdout().is_terminal() && std::env::var_os("CI").is_none()
}

/// Whether plan markers are coloured.
pub fn colour() -> bool {
    interactive() && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
}

/// Steps done / total and the current step, on stderr, cleared when done.
pub struct Bar(Option<ProgressBar>);

impl Bar {
    /// Drawn only on a terminal and for more than a handful of steps
    /// (a short apply is over before a bar could say anything).
    pub fn new(total: usize, verb: &str) -> Bar {
        if !interactive() || total < 5 {
            return Bar(None);
        }
        let pb = ProgressBar::with_draw_target(Some(total as u64), ProgressDrawTarget::stderr());
        let style = ProgressStyle::with_template(&format!(
            "{verb} [{{bar:30}}] {{pos}}/{{len}} {{wide_msg}}"
        ))
        .unwrap_or_else(|_| ProgressStyle::default_bar())
        .progress_chars("=> ");
        pb.set_style(style);
        Bar(Some(pb))
    }

    pub fn step(&mut self, name: &str) {
        if let Some(pb) = &self.0 {
            pb.inc(1);
            pb.set_message(name.to_string());
        }
    }

    /// Every step counted (or no bar at all).
    pub fn done(&self) -> bool {
        self.0
            .as_ref()
            .is_none_or(|pb| pb.length().is_some_and(|l| pb.position() >= l))
    }

    pub fn finish(&mut self) {
        if let Some(pb) = self.0.take() {
            pb.finish_and_clear();
        }
    }
}

impl Drop for Bar {
    fn drop(&mut self) {
        self.finish();
    }
}

/// Plan text with its markers coloured (create green, update yellow,
/// replace magenta, delete red), when `colour()` says so.
pub fn paint(text: &str) -> String {
    if !colour() {
        return text.to_string();
    }
    paint_always(text)
}

fn paint_always(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 64);
    for line in text.split_inclusive('\n') {
        let t = line.trim_start();
        let indent = &line[..line.len() - t.len()];
        let code = if t.starts_with("-/+ ") {
            Some("35")
        } else if t.starts_with("+ ") {
            Some("32")
        } else if t.starts_with("- ") {
            Some("31")
        } else if t.starts_with("~ ") {
            Some("33")
        } else if t.starts_with("! ") {
            Some("1;31")
        } else {
            None
        };
        match code {
            Some(c) if !indent.is_empty() => {
                let (marker, rest) = t.split_once(' ').unwrap_or((t, ""));
                out.push_str(&format!("{indent}\x1b[{c}m{marker}\x1b[0m {rest}"));
            }
            _ => out.push_str(line),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn markers_of_change_lines_are_coloured_and_nothing_else() {
        let t =
            "netloom plan: x\n\n  + bridge br0\n      mtu: 1 → 2\n  -/+ veth a\n- not a change\n";
        let p = super::paint_always(t);
        assert!(p.contains("  \x1b[32m+\x1b[0m bridge br0\n"), "{p:?}");
        assert!(p.contains("  \x1b[35m-/+\x1b[0m veth a\n"), "{p:?}");
        assert!(p.contains("\n      mtu: 1 → 2\n"));
        assert!(p.contains("\n- not a change\n"));
        assert!(p.starts_with("netloom plan: x\n"));
    }
}
