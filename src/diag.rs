//! Source files, locations and diagnostics rendered as `file:line:col: message`.

use std::fmt::Write as _;
use std::ops::Range;
use std::path::{Path, PathBuf};

/// Index of a file in a [`SourceMap`].
pub type FileId = usize;

/// A byte range in one source file.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Loc {
    pub file: FileId,
    pub span: Range<usize>,
}

impl Loc {
    pub fn new(file: FileId, span: Range<usize>) -> Self {
        Loc { file, span }
    }
}

#[derive(Debug, Default)]
pub struct SourceFile {
    pub path: PathBuf,
    pub text: String,
    /// Byte offset of the start of each line.
    line_starts: Vec<usize>,
}

impl SourceFile {
    pub fn new(path: PathBuf, text: String) -> Self {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        SourceFile {
            path,
            text,
            line_starts,
        }
    }

    /// 1-based line and column (in characters) of a byte offset.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = offset.min(self.text.len());
        let line = self.line_starts.partition_point(|&s| s <= offset) - 1;
        let start = self.line_starts[line];
        let col = self.text[start..offset].chars().count();
        (line + 1, col + 1)
    }

    fn line_text(&self, line: usize) -> &str {
        let start = self.line_starts[line - 1];
        let end = self
            .line_starts
            .get(line)
            .copied()
            .unwrap_or(self.text.len());
        self.text[start..end].trim_end_matches(['\n', '\r'])
    }
}

#[derive(Debug, Default)]
pub struct SourceMap {
    pub files: Vec<SourceFile>,
}

impl SourceMap {
    pub fn add(&mut self, path: PathBuf, text: String) -> FileId {
        self.files.push(SourceFile::new(path, text));
        self.files.len() - 1
    }

    pub fn path(&self, id: FileId) -> &Path {
        &self.files[id].path
    }

    /// `file:line:col` of a location.
    pub fn position(&self, loc: &Loc) -> String {
        let f = &self.files[loc.file];
        let (line, col) = f.line_col(loc.span.start);
        format!("{}:{}:{}", f.path.display(), line, col)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Error,
    Warning,
}

#[derive(Debug, Clone)]
pub struct Diagnostic {
    pub severity: Severity,
    pub loc: Option<Loc>,
    pub message: String,
    pub help: Option<String>,
    /// Further locations that take part (the other duplicate, the rest of a cycle).
    pub related: Vec<(Loc, String)>,
    /// The source line holds a secret: show the position, not the line.
    pub conceal: bool,
    /// A name that is declared nowhere: while a file could not be read,
    /// it may be declared there, so such errors are held back.
    pub unresolved: bool,
}

impl Diagnostic {
    pub fn error(loc: Option<Loc>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            loc,
            message: message.into(),
            help: None,
            related: vec![],
            conceal: false,
            unresolved: false,
        }
    }

    pub fn at(loc: &Loc, message: impl Into<String>) -> Self {
        Self::error(Some(loc.clone()), message)
    }

    pub fn warning(loc: &Loc, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Warning,
            ..Self::at(loc, message)
        }
    }

    pub fn help(mut self, help: impl Into<String>) -> Self {
        self.help = Some(help.into());
        self
    }

    /// Marks a reference to a name declared nowhere (see `unresolved`).
    pub fn unresolved(mut self) -> Self {
        self.unresolved = true;
        self
    }

    /// Renders without the source line (it holds a password).
    pub fn concealed(mut self) -> Self {
        self.conceal = true;
        self
    }

    pub fn related(mut self, loc: &Loc, note: impl Into<String>) -> Self {
        self.related.push((loc.clone(), note.into()));
        self
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Renders as `file:line:col: error: message`, the source line with a caret,
    /// and `help:` / `note:` lines.
    pub fn render(&self, map: &SourceMap) -> String {
        let sev = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut out = String::new();
        match &self.loc {
            Some(loc) => {
                let _ = writeln!(out, "{}: {sev}: {}", map.position(loc), self.message);
                if !self.conceal {
                    snippet(&mut out, map, loc);
                }
            }
            None => {
                let _ = writeln!(out, "{sev}: {}", self.message);
            }
        }
        for (loc, note) in &self.related {
            let _ = writeln!(out, "  note: {}: {note}", map.position(loc));
        }
        if let Some(help) = &self.help {
            let _ = writeln!(out, "  help: {help}");
        }
        out
    }
}

/// Diagnostics rendered in full; the rest are counted.
pub const MAX_SHOWN: usize = 50;

/// Characters of a source line shown on each side of the column, for long lines.
const CONTEXT: usize = 60;

/// A literal `password = "…"` on a shown line becomes `"****"` (same
/// width, so carets still line up): the file holds it, reports never do.
fn redact_passwords(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("password") {
        let (head, tail) = rest.split_at(i + "password".len());
        out.push_str(head);
        let after = tail.trim_start();
        let Some(value) = after.strip_prefix('=').map(str::trim_start) else {
            rest = tail;
            continue;
        };
        let Some(inner) = value.strip_prefix('"') else {
            rest = tail;
            continue;
        };
        let lead = tail.len() - value.len();
        out.push_str(&tail[..lead]);
        out.push('"');
        let end = inner.find('"').unwrap_or(inner.len());
        out.extend(std::iter::repeat_n('*', inner[..end].chars().count()));
        rest = &inner[end..];
    }
    out.push_str(rest);
    out
}

fn snippet(out: &mut String, map: &SourceMap, loc: &Loc) {
    let f = &map.files[loc.file];
    let (line, col) = f.line_col(loc.span.start);
    let redacted = redact_passwords(f.line_text(line));
    let text = redacted.as_str();
    let (end_line, end_col) = f.line_col(loc.span.end.max(loc.span.start));
    let width = if end_line == line && end_col > col {
        end_col - col
    } else {
        1
    };
    // A very long line is cut around the column, so a report stays the
    // size of what it says, whatever the input.
    let (shown, caret_at, width) = if text.chars().count() > 2 * CONTEXT + 20 {
        let from = (col - 1).saturating_sub(CONTEXT);
        let cut: String = text.chars().skip(from).take(2 * CONTEXT).collect();
        let lead = if from > 0 { "…" } else { "" };
        let tail = if from + 2 * CONTEXT < text.chars().count() {
            "…"
        } else {
            ""
        };
        let at = col - 1 - from + lead.chars().count();
        (
            format!("{lead}{cut}{tail}"),
            at,
            width.min(2 * CONTEXT - (col - 1 - from)).max(1),
        )
    } else {
        (text.to_string(), col - 1, width)
    };
    let gutter = line.to_string().len();
    let _ = writeln!(out, "{:gutter$} |", "");
    let _ = writeln!(out, "{line} | {shown}");
    let _ = writeln!(
        out,
        "{:gutter$} | {}{}",
        "",
        " ".repeat(caret_at),
        "^".repeat(width)
    );
}

#[cfg(test)]
mod redact_tests {
    #[test]
    fn literal_passwords_are_starred_in_place() {
        let r = super::redact_passwords(r#"peer.r2 = { password = "hunter2", asn = 1 }"#);
        assert_eq!(r, r#"peer.r2 = { password = "*******", asn = 1 }"#);
        let r =
            super::redact_passwords(r#"password = { env = "X" }  allow_literal_password = true"#);
        assert_eq!(
            r,
            r#"password = { env = "X" }  allow_literal_password = true"#
        );
    }
}

/// Diagnostics by file and position; those without a place last.
fn in_file_order(diags: &[Diagnostic]) -> Vec<&Diagnostic> {
    let mut sorted: Vec<&Diagnostic> = diags.iter().collect();
    sorted.sort_by_key(|d| {
        d.loc
            .as_ref()
            .map(|l| (l.file, l.span.start))
            .unwrap_or((usize::MAX, 0))
    });
    sorted
}

/// Every diagnostic as JSON, in file order, for `--format json`: file,
/// 1-based line and column (start and end), severity, message, help and
/// related locations. No source text: a concealed line stays concealed.
pub fn to_json(diags: &[Diagnostic], map: &SourceMap) -> serde_json::Value {
    use serde_json::json;
    let at = |loc: &Loc| {
        let f = &map.files[loc.file];
        let (line, column) = f.line_col(loc.span.start);
        let (end_line, end_column) = f.line_col(loc.span.end);
        json!({
            "file": f.path.display().to_string(),
            "line": line,
            "column": column,
            "end_line": end_line,
            "end_column": end_column,
        })
    };
    let sorted = in_file_order(diags);
    let list: Vec<serde_json::Value> = sorted
        .iter()
        .map(|d| {
            let mut v = match &d.loc {
                Some(l) => at(l),
                None => json!({ "file": null, "line": null, "column": null }),
            };
            v["severity"] = json!(match d.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
            });
            v["message"] = json!(d.message);
            v["help"] = json!(d.help);
            v["related"] = d
                .related
                .iter()
                .map(|(l, note)| {
                    let mut r = at(l);
                    r["note"] = json!(note);
                    r
                })
                .collect();
            v
        })
        .collect();
    let errors = diags.iter().filter(|d| d.is_error()).count();
    json!({
        "valid": errors == 0,
        "errors": errors,
        "warnings": diags.len() - errors,
        "diagnostics": list,
    })
}

/// Renders every diagnostic, errors and warnings in file order.
pub fn render_all(diags: &[Diagnostic], map: &SourceMap) -> String {
    let sorted = in_file_order(diags);
    let mut out = String::new();
    for d in sorted.iter().take(MAX_SHOWN) {
        out.push_str(&d.render(map));
    }
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
    if sorted.len() > MAX_SHOWN {
        let rest = &sorted[MAX_SHOWN..];
        let (e, w) = rest.iter().fold(
            (0, 0),
            |(e, w), d| {
                if d.is_error() { (e + 1, w) } else { (e, w + 1) }
            },
        );
        let plural =
            |n: usize, what: &str| format!("{n} more {what}{}", if n == 1 { "" } else { "s" });
        let parts: Vec<String> = [(e, "error"), (w, "warning")]
            .into_iter()
            .filter(|(n, _)| *n > 0)
            .map(|(n, what)| plural(n, what))
            .collect();
        let _ = writeln!(
            out,
            "… and {} (fix the first ones and run again)",
            parts.join(" and ")
        );
    }
    if errors > 0 {
        let _ = writeln!(
            out,
            "{errors} error{} found; nothing was changed",
            if errors == 1 { "" } else { "s" }
        );
    } else if warnings > 0 {
        let _ = writeln!(
            out,
            "{warnings} warning{}",
            if warnings == 1 { "" } else { "s" }
        );
    }
    out
}

/// The closest candidate to a misspelt word, if any is close enough.
pub fn did_you_mean<'a>(
    word: &str,
    candidates: impl IntoIterator<Item = &'a str>,
) -> Option<&'a str> {
    candidates
        .into_iter()
        .map(|c| (strsim::jaro_winkler(word, c), c))
        .filter(|(score, _)| *score > 0.8)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, c)| c)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_col_counts_from_one() {
        let f = SourceFile::new("t.toml".into(), "ab\ncdé\nx".into());
        assert_eq!(f.line_col(0), (1, 1));
        assert_eq!(f.line_col(3), (2, 1));
        assert_eq!(f.line_col(7), (2, 4));
        assert_eq!(f.line_col(8), (3, 1));
    }

    #[test]
    fn suggests_close_words_only() {
        assert_eq!(did_you_mean("adress", ["address", "mtu"]), Some("address"));
        assert_eq!(did_you_mean("zzz", ["address", "mtu"]), None);
    }
}
