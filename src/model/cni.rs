//! Validation of `[cni.NAME]` networks and containers' `cni.IFNAME`.

use super::Container;
use super::wiring::claim;
use crate::diag::{Diagnostic, Loc, did_you_mean};
use crate::spec::{CniSpec, Loaded, Section};
use serde_json::{Map, Value};
use std::collections::BTreeMap;
use toml::Spanned;

/// Where plugin binaries are looked for when `plugin_dirs` is not given
/// (Debian installs them in the first).
pub const DEFAULT_PLUGIN_DIRS: [&str; 2] = ["/usr/lib/cni", "/opt/cni/bin"];

/// The newest CNI spec version the plugins on these hosts speak.
const NEWEST: (u32, u32, u32) = (1, 0, 0);

/// A CNI network: the plugin list, as a conflist.
#[derive(Debug, Clone)]
pub struct CniNet {
    /// The section's name (`[cni.NAME]`).
    pub name: String,
    pub loc: Loc,
    /// The network name the plugins see (the conflist's `name`).
    pub net_name: String,
    pub version: String,
    /// Each plugin's config, as written (without `cniVersion`, `name`).
    pub plugins: Vec<Map<String, Value>>,
    /// Plugin binary directories, searched in order.
    pub dirs: Vec<String>,
}

impl CniNet {
    /// The conflist as one canonical JSON text (keys sorted): what is cached
    /// with each attachment, so a changed config is seen as a change.
    pub fn conflist(&self) -> String {
        let mut m = Map::new();
        m.insert("cniVersion".into(), Value::String(self.version.clone()));
        m.insert("name".into(), Value::String(self.net_name.clone()));
        m.insert(
            "plugins".into(),
            Value::Array(self.plugins.iter().cloned().map(Value::Object).collect()),
        );
        Value::Object(m).to_string()
    }
}

/// An interface a CNI network makes in a container.
#[derive(Debug, Clone)]
pub struct CniAttach {
    pub ifname: String,
    pub network: String,
    pub loc: Loc,
}

fn loc_of<T>(file: usize, s: &Spanned<T>) -> Loc {
    Loc::new(file, s.span())
}

pub(super) fn build(
    loaded: &Loaded,
    containers: &mut BTreeMap<String, Container>,
    used: &mut BTreeMap<(String, String), Loc>,
    diags: &mut Vec<Diagnostic>,
) -> BTreeMap<String, CniNet> {
    let mut nets: BTreeMap<String, CniNet> = BTreeMap::new();
    for f in &loaded.files {
        let dir = loaded
            .sources
            .path(f.file)
            .parent()
            .map(std::path::Path::to_path_buf)
            .unwrap_or_default();
        for s in &f.cni {
            if let Some(first) = nets.get(&s.name) {
                diags.push(
                    Diagnostic::at(
                        &s.name_loc,
                        format!("[cni.{}] is declared more than once", s.name),
                    )
                    .related(&first.loc, "first declared here")
                    .help("declare each CNI network in one section"),
                );
                continue;
            }
            if let Some(n) = network(f.file, &dir, s, diags) {
                nets.insert(n.name.clone(), n);
            }
        }
    }
    for f in &loaded.files {
        for s in &f.containers {
            let Some(c) = containers.get_mut(&s.name) else {
                continue;
            };
            for (ifname, spec) in &s.spec.cni {
                let loc = loc_of(f.file, ifname);
                claim(used, &c.name, ifname.get_ref(), &loc, diags);
                let net = spec.network.get_ref();
                if !nets.contains_key(net) {
                    let hint = did_you_mean(net, nets.keys().map(String::as_str))
                        .map(|s| format!("did you mean `{s}`? "))
                        .unwrap_or_default();
                    diags.push(
                        Diagnostic::at(
                            &loc_of(f.file, &spec.network),
                            format!("unknown CNI network `{net}`"),
                        )
                        .unresolved()
                        .help(format!("{hint}declare it as [cni.{net}] with its plugins")),
                    );
                    continue;
                }
                c.cni.insert(
                    ifname.get_ref().clone(),
                    CniAttach {
                        ifname: ifname.get_ref().clone(),
                        network: net.clone(),
                        loc,
                    },
                );
            }
        }
    }
    nets
}

fn network(
    file: usize,
    dir: &std::path::Path,
    s: &Section<CniSpec>,
    diags: &mut Vec<Diagnostic>,
) -> Option<CniNet> {
    let before = diags.len();
    if !valid_name(&s.name) {
        diags.push(
            Diagnostic::at(
                &s.name_loc,
                format!("`{}` is not a valid CNI network name", s.name),
            )
            .help("use letters, digits, `_`, `.` and `-`, starting with a letter or digit"),
        );
    }
    let (version, net_name, plugins, loc) = match (&s.spec.plugins, &s.spec.file) {
        (Some(p), Some(f)) => {
            diags.push(
                Diagnostic::at(&loc_of(file, f), "give `plugins` or `file`, not both")
                    .related(&loc_of(file, p), "plugins given here")
                    .help("keep the inline list or the conflist file"),
            );
            return None;
        }
        (None, None) => {
            diags.push(
                Diagnostic::at(&s.name_loc, format!("[cni.{}] has no plugins", s.name)).help(
                    "add `plugins = [{ type = \"bridge\", … }]`, or `file = \"NAME.conflist\"`",
                ),
            );
            return None;
        }
        (Some(p), None) => {
            let version = s
                .spec
                .cni_version
                .as_ref()
                .map(|v| (v.get_ref().clone(), loc_of(file, v)))
                .unwrap_or_else(|| ("1.0.0".into(), loc_of(file, p)));
            (
                version,
                s.name.clone(),
                p.get_ref().clone(),
                loc_of(file, p),
            )
        }
        (None, Some(f)) => {
            let loc = loc_of(file, f);
            let (version, name, plugins) = conflist(dir, f.get_ref(), &loc, diags)?;
            ((version, loc.clone()), name, plugins, loc)
        }
    };
    check_version(&version.0, &version.1, diags);
    if plugins.is_empty() {
        diags.push(
            Diagnostic::at(&loc, "the plugin list is empty")
                .help("a CNI network needs at least one plugin, e.g. { type = \"bridge\" }"),
        );
    }
    for (i, p) in plugins.iter().enumerate() {
        match p.get("type") {
            Some(Value::String(t)) if valid_type(t) => {}
            Some(Value::String(t)) => diags.push(
                Diagnostic::at(
                    &loc,
                    format!("plugin {}: type `{t}` is not a bare plugin name", i + 1),
                )
                .help("name the binary only (e.g. \"bridge\"); it is looked up in `plugin_dirs`"),
            ),
            _ => diags.push(
                Diagnostic::at(&loc, format!("plugin {} has no `type`", i + 1))
                    .help("every plugin names its binary: type = \"bridge\""),
            ),
        }
    }
    let dirs = match &s.spec.plugin_dirs {
        None => DEFAULT_PLUGIN_DIRS.iter().map(|d| d.to_string()).collect(),
        Some(ds) => ds
            .iter()
            .filter_map(|d| {
                if d.get_ref().starts_with('/') {
                    return Some(d.get_ref().clone());
                }
                diags.push(
                    Diagnostic::at(
                        &loc_of(file, d),
                        "a plugin directory must be an absolute path",
                    )
                    .help("e.g. \"/usr/lib/cni\""),
                );
                None
            })
            .collect(),
    };
    (diags.len() == before).then(|| CniNet {
        name: s.name.clone(),
        loc: s.name_loc.clone(),
        net_name,
        version: version.0,
        plugins,
        dirs,
    })
}

/// A conflist's (cniVersion, name, plugins).
type ConflistParts = (String, String, Vec<Map<String, Value>>);

/// Reads a .conflist.
fn conflist(
    dir: &std::path::Path,
    path: &str,
    loc: &Loc,
    diags: &mut Vec<Diagnostic>,
) -> Option<ConflistParts> {
    let full = dir.join(path);
    let text = match std::fs::read_to_string(&full) {
        Ok(t) => t,
        Err(e) => {
            diags.push(
                Diagnostic::at(
                    loc,
                    format!(
                        "cannot read the conflist `{path}` ({}): {e}",
                        full.display()
                    ),
                )
                .help("the path is relative to this topology file"),
            );
            return None;
        }
    };
    let bad = |diags: &mut Vec<Diagnostic>, what: String| {
        diags.push(Diagnostic::at(loc, format!("`{path}` is not a CNI conflist: {what}")).help(
            "a conflist is a JSON object with `cniVersion`, `name` and a `plugins` list; a single-plugin .conf is not read",
        ));
    };
    let v: Value = match serde_json::from_str(&text) {
        Ok(v) => v,
        Err(e) => {
            bad(diags, format!("invalid JSON ({e})"));
            return None;
        }
    };
    let Some(obj) = v.as_object() else {
        bad(diags, "not a JSON object".into());
        return None;
    };
    let Some(Value::Array(plugins)) = obj.get("plugins") else {
        bad(diags, "no `plugins` list".into());
        return None;
    };
    let Some(name) = obj.get("name").and_then(Value::as_str) else {
        bad(diags, "no `name`".into());
        return None;
    };
    let version = obj
        .get("cniVersion")
        .and_then(Value::as_str)
        .unwrap_or("0.1.0");
    let mut out = vec![];
    for p in plugins {
        let Some(p) = p.as_object() else {
            bad(diags, "a plugin is not a JSON object".into());
            return None;
        };
        out.push(p.clone());
    }
    Some((version.to_string(), name.to_string(), out))
}

fn check_version(v: &str, loc: &Loc, diags: &mut Vec<Diagnostic>) {
    match parse_version(v) {
        None => diags.push(
            Diagnostic::at(loc, format!("`{v}` is not a CNI version"))
                .help("write it as MAJOR.MINOR.PATCH, e.g. \"1.0.0\""),
        ),
        Some(x) if x > NEWEST => diags.push(
            Diagnostic::at(
                loc,
                format!("cniVersion {v} is newer than the plugins support"),
            )
            .help("use \"1.0.0\": the plugins here speak CNI up to 1.0.0 and refuse newer configs"),
        ),
        Some(_) => {}
    }
}

/// `1.0.0` → (1, 0, 0).
pub fn parse_version(v: &str) -> Option<(u32, u32, u32)> {
    let mut it = v.split('.').map(|p| p.parse::<u32>().ok());
    let out = (it.next()??, it.next()??, it.next()??);
    it.next().is_none().then_some(out)
}

fn valid_name(n: &str) -> bool {
    let mut c = n.chars();
    c.next().is_some_and(|f| f.is_ascii_alphanumeric())
        && c.all(|x| x.is_ascii_alphanumeric() || "_.-".contains(x))
}

/// A plugin type is a binary's bare name: no path can escape the plugin dirs.
fn valid_type(t: &str) -> bool {
    !t.is_empty() && !t.contains(['/', '\\']) && t != "." && t != ".."
}
