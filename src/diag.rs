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
}

impl Diagnostic {
    pub fn error(loc: Option<Loc>, message: impl Into<String>) -> Self {
        Diagnostic {
            severity: Severity::Error,
            loc,
            message: message.into(),
            help: None,
            related: vec![],
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
                snippet(&mut out, map, loc);
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

fn snippet(out: &mut String, map: &SourceMap, loc: &Loc) {
    let f = &map.files[loc.file];
    let (line, col) = f.line_col(loc.span.start);
    let text = f.line_text(line);
    let (end_line, end_col) = f.line_col(loc.span.end.max(loc.span.start));
    let width = if end_line == line && end_col > col {
        end_col - col
    } else {
        1
    };
    let gutter = line.to_string().len();
    let _ = writeln!(out, "{:gutter$} |", "");
    let _ = writeln!(out, "{line} | {text}");
    let _ = writeln!(
        out,
        "{:gutter$} | {}{}",
        "",
        " ".repeat(col - 1),
        "^".repeat(width)
    );
}

/// Renders every diagnostic, errors and warnings in file order.
pub fn render_all(diags: &[Diagnostic], map: &SourceMap) -> String {
    let mut sorted: Vec<&Diagnostic> = diags.iter().collect();
    sorted.sort_by_key(|d| {
        d.loc
            .as_ref()
            .map(|l| (l.file, l.span.start))
            .unwrap_or((usize::MAX, 0))
    });
    let mut out = String::new();
    for d in sorted {
        out.push_str(&d.render(map));
    }
    let errors = diags.iter().filter(|d| d.is_error()).count();
    let warnings = diags.len() - errors;
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
