//! Reading topology files and directories into spanned spec sections.

use super::{
    BgpSpec, BridgeSpec, CniSpec, ContainerSpec, LinkSpec, NetworkSpec, RouteSpec, RuleSpec,
    ServiceSpec, TopologySection, VethSpec, check_keys,
};
use crate::diag::{Diagnostic, FileId, Loc, SourceMap};
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use toml::Spanned;
use toml::de::{DeTable, DeValue, ValueDeserializer};

/// One named (`[bridge.NAME]`) or listed (`[[route]]`) section of a file.
#[derive(Debug)]
pub struct Section<T> {
    /// The section's name, for named sections.
    pub name: String,
    /// Where the name (or, for listed sections, the table) is written.
    pub name_loc: Loc,
    pub spec: T,
}

#[derive(Debug, Default)]
pub struct SpecFile {
    pub file: FileId,
    pub topology: Option<Section<TopologySection>>,
    pub bridges: Vec<Section<BridgeSpec>>,
    pub veths: Vec<Section<VethSpec>>,
    pub routes: Vec<Section<RouteSpec>>,
    pub rules: Vec<Section<RuleSpec>>,
    pub networks: Vec<Section<NetworkSpec>>,
    pub containers: Vec<Section<ContainerSpec>>,
    pub links: Vec<Section<LinkSpec>>,
    pub cni: Vec<Section<CniSpec>>,
    pub services: Vec<Section<ServiceSpec>>,
    pub bgp: Option<Section<BgpSpec>>,
    /// A section was left out for its errors: checks that look across
    /// sections would misreport what it declares.
    pub dropped: bool,
}

#[derive(Debug, Default)]
pub struct Loaded {
    pub sources: SourceMap,
    pub files: Vec<SpecFile>,
    pub diagnostics: Vec<Diagnostic>,
    /// A path or file could not be read or parsed, or a section was left
    /// out (errors in `diagnostics`): what it declares is unknown.
    pub incomplete: bool,
}

impl Loaded {
    /// Parses one file's text into the set (its diagnostics included).
    pub fn add_text(&mut self, path: PathBuf, text: String) {
        let id = self.sources.add(path, text);
        let text = self.sources.files[id].text.clone();
        match parse_file(id, &text, &mut self.diagnostics) {
            Some(f) => {
                self.incomplete |= f.dropped;
                self.files.push(f);
            }
            None => self.incomplete = true,
        }
    }
}

/// Parses topology texts given in memory (tests, fuzzing), as `load_paths`
/// parses files.
pub fn load_texts(texts: Vec<(PathBuf, String)>) -> Loaded {
    let mut out = Loaded::default();
    for (path, text) in texts {
        out.add_text(path, text);
    }
    out
}

/// Expands each path (a file, or a directory of `*.toml` files) and parses
/// every file, collecting all diagnostics rather than stopping at the first.
pub fn load_paths(paths: &[PathBuf]) -> Loaded {
    let mut out = Loaded::default();
    let mut files = Vec::new();
    for p in paths {
        match expand(p) {
            Ok(mut found) => files.append(&mut found),
            Err(d) => {
                out.diagnostics.push(d);
                out.incomplete = true;
            }
        }
    }
    files.sort();
    files.dedup();
    for path in files {
        match std::fs::read_to_string(&path) {
            Ok(text) => out.add_text(path, text),
            Err(e) => {
                out.diagnostics.push(
                    Diagnostic::error(None, format!("cannot read {}: {e}", path.display()))
                        .help("check the path and its permissions"),
                );
                out.incomplete = true;
            }
        }
    }
    out
}

fn expand(p: &Path) -> Result<Vec<PathBuf>, Diagnostic> {
    let meta = std::fs::metadata(p).map_err(|e| {
        Diagnostic::error(None, format!("cannot open {}: {e}", p.display()))
            .help("PATH is a topology file or a directory of *.toml files")
    })?;
    if !meta.is_dir() {
        return Ok(vec![p.to_path_buf()]);
    }
    let entries = std::fs::read_dir(p)
        .map_err(|e| Diagnostic::error(None, format!("cannot list {}: {e}", p.display())))?;
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        // Hidden files are editors' backups and swap files, not topology.
        .filter(|f| f.extension().is_some_and(|x| x == "toml") && f.is_file())
        .filter(|f| {
            !f.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    found.sort();
    if found.is_empty() {
        return Err(Diagnostic::error(
            None,
            format!("{} holds no *.toml topology files", p.display()),
        )
        .help("a directory is read as one topology made of its *.toml files"));
    }
    Ok(found)
}

fn parse_file(file: FileId, text: &str, diags: &mut Vec<Diagnostic>) -> Option<SpecFile> {
    // An empty file is almost always one caught half-written (an editor
    // that truncates, then writes): read as "declares nothing", it would
    // prune everything its sections made.
    if text.trim().is_empty() {
        diags.push(
            Diagnostic::at(&Loc::new(file, 0..0), "the file is empty")
                .help("add sections to it, or remove the file if it is not needed"),
        );
        return None;
    }
    let (root, errors) = DeTable::parse_recoverable(text);
    if !errors.is_empty() {
        diags.push(syntax_error(file, errors));
        return None;
    }
    let span = root.span();
    let mut root = Spanned::new(span, DeValue::Table(root.into_inner()));
    let before = diags.len();
    check_keys(&mut root, file, diags);
    // Whether the schema check reported anything in this file.
    let said = diags.len() > before;
    let DeValue::Table(table) = root.into_inner() else {
        unreachable!("parsed a table")
    };
    let mut out = SpecFile {
        file,
        ..Default::default()
    };
    // Sections written, to tell whether any was dropped for its errors.
    let mut written = 0;
    for (key, value) in table {
        let key_loc = Loc::new(file, key.span());
        let key: &str = key.get_ref().as_ref();
        written += match (key, value.get_ref()) {
            ("topology" | "bgp", _) => 1,
            (_, DeValue::Table(t)) => t.len(),
            (_, DeValue::Array(a)) => a.len(),
            _ => 1,
        };
        section(file, said, key, key_loc, value, &mut out, diags);
    }
    let kept = usize::from(out.topology.is_some())
        + out.bridges.len()
        + out.veths.len()
        + out.routes.len()
        + out.rules.len()
        + out.networks.len()
        + out.containers.len()
        + out.links.len()
        + out.cni.len()
        + out.services.len()
        + usize::from(out.bgp.is_some());
    out.dropped = kept < written;
    Some(out)
}

/// Outside `format!` and any fn: a lone `{` in a fn body misleads
/// brace-counting function-length checks.
const UNCLOSED_HINT: &str = "(an unclosed `[`, `{` or string before here?)";

/// The file's first syntax error, with how many more followed.
fn syntax_error(file: FileId, mut errors: Vec<toml::de::Error>) -> Diagnostic {
    // After one syntax error the parser's guesses cascade: report the
    // first, and how many more followed.
    errors.sort_by_key(|e| e.span().map(|s| s.start).unwrap_or(0));
    let more = errors.len() - 1;
    let d = toml_error(file, &errors[0], None);
    if more > 0 {
        d.help(format!(
            "{more} more syntax error(s) follow in this file, probably caused by this one {UNCLOSED_HINT}"
        ))
    } else {
        d
    }
}

/// One top-level key of a file, typed into its place in `out`.
fn section(
    file: FileId,
    said: bool,
    key: &str,
    key_loc: Loc,
    value: Spanned<DeValue<'_>>,
    out: &mut SpecFile,
    diags: &mut Vec<Diagnostic>,
) {
    match key {
        "topology" => {
            if let Some(spec) = typed(file, said, value, diags) {
                out.topology = Some(Section {
                    name: "topology".into(),
                    name_loc: key_loc,
                    spec,
                });
            }
        }
        "bridge" => named(
            file,
            said,
            "bridge",
            key_loc,
            value,
            &mut out.bridges,
            diags,
        ),
        "veth" => named(file, said, "veth", key_loc, value, &mut out.veths, diags),
        "route" => listed(file, said, "route", key_loc, value, &mut out.routes, diags),
        "rule" => listed(file, said, "rule", key_loc, value, &mut out.rules, diags),
        "link" => listed(file, said, "link", key_loc, value, &mut out.links, diags),
        "network" => named(
            file,
            said,
            "network",
            key_loc,
            value,
            &mut out.networks,
            diags,
        ),
        "container" => named(
            file,
            said,
            "container",
            key_loc,
            value,
            &mut out.containers,
            diags,
        ),
        "cni" => named(file, said, "cni", key_loc, value, &mut out.cni, diags),
        "bgp" => {
            if let Some(spec) = typed(file, said, value, diags) {
                out.bgp = Some(Section {
                    name: "bgp".into(),
                    name_loc: key_loc,
                    spec,
                });
            }
        }
        "service" => named(
            file,
            said,
            "service",
            key_loc,
            value,
            &mut out.services,
            diags,
        ),
        _ => {} // reported by check_keys
    }
}

fn named<T: DeserializeOwned>(
    file: FileId,
    said: bool,
    kind: &str,
    key_loc: Loc,
    value: Spanned<DeValue<'_>>,
    into: &mut Vec<Section<T>>,
    diags: &mut Vec<Diagnostic>,
) {
    let DeValue::Table(table) = value.into_inner() else {
        diags.push(
            Diagnostic::at(
                &key_loc,
                format!("`{kind}` must be a table of named {kind}s"),
            )
            .help(format!(
                "write each one as its own section, e.g. [{kind}.NAME]"
            )),
        );
        return;
    };
    for (name, v) in table {
        let name_loc = Loc::new(file, name.span());
        if !v.get_ref().is_table() {
            diags.push(
                Diagnostic::at(
                    &name_loc,
                    format!("[{kind}.{}] must be a table", name.get_ref()),
                )
                .help(format!(
                    "write it as a section: [{kind}.{}]",
                    name.get_ref()
                )),
            );
            continue;
        }
        if let Some(spec) = typed(file, said, v, diags) {
            into.push(Section {
                name: name.get_ref().to_string(),
                name_loc,
                spec,
            });
        }
    }
}

fn listed<T: DeserializeOwned>(
    file: FileId,
    said: bool,
    kind: &str,
    key_loc: Loc,
    value: Spanned<DeValue<'_>>,
    into: &mut Vec<Section<T>>,
    diags: &mut Vec<Diagnostic>,
) {
    let DeValue::Array(items) = value.into_inner() else {
        diags.push(
            Diagnostic::at(&key_loc, format!("`{kind}` must be a list of tables"))
                .help(format!("write each entry as [[{kind}]]")),
        );
        return;
    };
    for v in items.iter() {
        let loc = Loc::new(file, v.span());
        if let Some(spec) = typed(file, said, v.clone(), diags) {
            into.push(Section {
                name: kind.to_string(),
                name_loc: loc,
                spec,
            });
        }
    }
}

fn typed<T: DeserializeOwned>(
    file: FileId,
    said: bool,
    value: Spanned<DeValue<'_>>,
    diags: &mut Vec<Diagnostic>,
) -> Option<T> {
    let whole = value.span();
    match T::deserialize(ValueDeserializer::from(value)) {
        Ok(v) => Some(v),
        Err(e) => {
            // Unknown keys, wrong types and missing keys were all reported
            // by check_keys, which does not stop at the first. Should serde
            // ever see one the schema missed, its error stands.
            let m = e.message();
            let schema_kind = m.starts_with("unknown field")
                || m.starts_with("invalid type")
                || m.starts_with("missing field");
            if !(schema_kind && said) {
                diags.push(toml_error(file, &e, Some(whole)));
            }
            None
        }
    }
}

fn toml_error(
    file: FileId,
    e: &toml::de::Error,
    fallback: Option<std::ops::Range<usize>>,
) -> Diagnostic {
    let span = e.span().or(fallback).unwrap_or(0..0);
    let msg = e
        .message()
        .trim()
        .replace("expected i64", "expected an integer")
        .replace("expected a sequence", "expected a list");
    let d = Diagnostic::at(&Loc::new(file, span), msg.clone());
    if e.message().starts_with("missing field") {
        d.help("add the required key to this section")
    } else if msg.contains("invalid type: string") && msg.contains("integer") {
        d.help("write numbers without quotes, e.g. mtu = 9000")
    } else if msg.contains("invalid type: string") && msg.contains("boolean") {
        d.help("write true or false without quotes")
    } else if msg.contains("invalid type") {
        d.help("see schemas/netloom.schema.json for the type each key takes")
    } else {
        d
    }
}
