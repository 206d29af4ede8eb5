//! JSON Schema of the topology format, and the unknown-key check driven by it.
//!
//! The schema is generated from the serde types, so the key check, the
//! committed `schemas/netloom.schema.json` and the parser cannot disagree.

use super::TopologyFile;
use crate::diag::{Diagnostic, FileId, Loc, did_you_mean};
use serde_json::Value;
use std::sync::OnceLock;
use toml::Spanned;
use toml::de::DeValue;

fn schema_value() -> &'static Value {
    static SCHEMA: OnceLock<Value> = OnceLock::new();
    SCHEMA.get_or_init(|| {
        let schema = schemars::schema_for!(TopologyFile);
        serde_json::to_value(&schema).expect("schema serializes")
    })
}

/// The schema as pretty JSON, as committed under `schemas/`.
pub fn schema_json() -> String {
    let mut s = serde_json::to_string_pretty(schema_value()).expect("schema serializes");
    s.push('\n');
    s
}

/// Reports every key the format does not know and every value of the wrong
/// type, anywhere in the document, and takes them out: the rest of each
/// section still goes through every semantic check, so one run reports all.
pub fn check_keys(root: &mut Spanned<DeValue<'_>>, file: FileId, diags: &mut Vec<Diagnostic>) {
    let schema = schema_value();
    let top = At {
        parent: None,
        key: "",
    };
    walk(root, schema, schema, &top, file, diags);
}

/// Where a value is, as a chain of keys: rendered ("[bridge.br0]
/// `addresses`") only for a message, not for every value walked.
struct At<'a> {
    parent: Option<&'a At<'a>>,
    key: &'a str,
}

impl At<'_> {
    fn render(&self) -> String {
        match self.parent {
            None => "the top level".to_string(),
            Some(p) => child(&p.render(), self.key),
        }
    }
}

fn resolve<'a>(mut schema: &'a Value, root: &'a Value) -> &'a Value {
    loop {
        if let Some(r) = schema.get("$ref").and_then(Value::as_str) {
            let name = r.rsplit('/').next().unwrap_or_default();
            match root.get("$defs").and_then(|d| d.get(name)) {
                Some(s) => schema = s,
                None => return schema,
            }
        } else if let Some(alts) = schema.get("anyOf").or_else(|| schema.get("oneOf")) {
            // Option<T> is `anyOf [T, null]`: the non-null branch describes the keys.
            let mut branches =
                alts.as_array().into_iter().flatten().filter(|s| {
                    resolve(s, root).get("type").and_then(Value::as_str) != Some("null")
                });
            // A real choice (a string or a table): serde tells them apart.
            match (branches.next(), branches.next()) {
                (Some(s), None) => schema = s,
                _ => return schema,
            }
        } else {
            return schema;
        }
    }
}

/// Returns false when `value` is of the wrong type and must go.
fn walk(
    value: &mut Spanned<DeValue<'_>>,
    schema: &Value,
    root: &Value,
    path: &At<'_>,
    file: FileId,
    diags: &mut Vec<Diagnostic>,
) -> bool {
    let schema = resolve(schema, root);
    if let Some(d) = wrong_type(value, schema, file) {
        // The value's insides are meaningless against this schema.
        diags.push(d);
        return false;
    }
    if let (DeValue::Table(table), Some(required)) = (
        value.get_ref(),
        schema.get("required").and_then(Value::as_array),
    ) {
        for key in required.iter().filter_map(Value::as_str) {
            if !table.iter().any(|(k, _)| k.get_ref().as_ref() == key) {
                diags.push(
                    Diagnostic::at(
                        &Loc::new(file, value.span()),
                        format!("missing field `{key}`"),
                    )
                    .help("add the required key to this section"),
                );
            }
        }
    }
    match value.get_mut() {
        DeValue::Table(table) => {
            let props = schema.get("properties").and_then(Value::as_object);
            let extra = schema.get("additionalProperties");
            let mut drop: Vec<String> = vec![];
            for (key, val) in table.iter_mut() {
                let name: &str = key.get_ref();
                let child_path = At {
                    parent: Some(path),
                    key: name,
                };
                if let Some(p) = props.and_then(|p| p.get(name)) {
                    if !walk(val, p, root, &child_path, file, diags) {
                        drop.push(name.to_string());
                    }
                } else if let Some(extra @ Value::Object(_)) = extra {
                    if !walk(val, extra, root, &child_path, file, diags) {
                        drop.push(name.to_string());
                    }
                } else if let Some(props) = props {
                    drop.push(name.to_string());
                    let known: Vec<&str> = props.keys().map(String::as_str).collect();
                    let mut d = Diagnostic::at(
                        &Loc::new(file, key.span()),
                        format!("unknown key `{name}` in {}", path.render()),
                    );
                    d = match did_you_mean(name, known.iter().copied()) {
                        Some(s) => d.help(format!(
                            "did you mean `{s}`? (known keys: {})",
                            known.join(", ")
                        )),
                        None => d.help(format!("known keys here: {}", known.join(", "))),
                    };
                    diags.push(d);
                }
            }
            for k in &drop {
                table.remove(k.as_str());
            }
        }
        DeValue::Array(items) => {
            // A list cannot lose an item here: one wrong item drops the list.
            if let Some(item) = schema.get("items") {
                let mut keep = true;
                for v in items.iter_mut() {
                    keep &= walk(v, item, root, path, file, diags);
                }
                return keep;
            }
        }
        _ => {}
    }
    true
}

/// Every wrong-typed value is reported here, not just the first serde meets.
fn wrong_type(value: &Spanned<DeValue<'_>>, schema: &Value, file: FileId) -> Option<Diagnostic> {
    let types = schema.get("type")?;
    let v = value.get_ref();
    let fits = |t: &str| {
        matches!(
            (t, v),
            ("string", DeValue::String(_))
                | ("integer", DeValue::Integer(_))
                | ("number", DeValue::Integer(_) | DeValue::Float(_))
                | ("boolean", DeValue::Boolean(_))
                | ("array", DeValue::Array(_))
                | ("object", DeValue::Table(_))
        )
    };
    // Checked before anything is allocated: nearly every value fits.
    let fit = match types {
        Value::String(t) => fits(t),
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).any(fits),
        _ => return None,
    };
    if fit {
        return None;
    }
    let allowed: Vec<&str> = match types {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let found = match v {
        DeValue::String(s) => format!("string {s:?}"),
        DeValue::Integer(i) => format!("integer `{}`", i.as_str()),
        DeValue::Float(f) => format!("floating point `{}`", f.as_str()),
        DeValue::Boolean(b) => format!("boolean `{b}`"),
        DeValue::Datetime(d) => format!("datetime `{d}`"),
        DeValue::Array(_) => "a list".to_string(),
        DeValue::Table(_) => "a table".to_string(),
    };
    let expected: Vec<&str> = allowed
        .iter()
        .filter_map(|t| match *t {
            "string" => Some("a string"),
            "integer" => Some("an integer"),
            "number" => Some("a number"),
            "boolean" => Some("true or false"),
            "array" => Some("a list"),
            "object" => Some("a table"),
            _ => None,
        })
        .collect();
    let d = Diagnostic::at(
        &Loc::new(file, value.span()),
        format!("invalid type: {found}, expected {}", expected.join(" or ")),
    );
    Some(match (v, allowed.first().copied()) {
        (DeValue::String(_), Some("integer" | "number")) => {
            d.help("write numbers without quotes, e.g. mtu = 9000")
        }
        (DeValue::String(_), Some("boolean")) => d.help("write true or false without quotes"),
        (_, Some("array")) => d.help("write a list in brackets, e.g. [\"10.0.0.1/24\"]"),
        (_, Some("string")) => d.help("write it in double quotes"),
        (_, Some("object")) => {
            d.help("write it as a table: a [section] of its own, or { key = value } inline")
        }
        _ => d.help("see schemas/netloom.schema.json for the type each key takes"),
    })
}

fn child(path: &str, key: &str) -> String {
    match path {
        "the top level" if key == "route" || key == "rule" || key == "link" => format!("[[{key}]]"),
        "the top level" => format!("[{key}]"),
        p if p.starts_with("[[") => format!("{p} `{key}`"),
        p if p.matches('.').count() == 0 && p.starts_with('[') => {
            format!("{}.{key}]", p.trim_end_matches(']'))
        }
        p => format!("{p} `{key}`"),
    }
}
