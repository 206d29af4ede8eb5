//! Saved plans: `plan --out FILE` writes one, `apply FILE` applies exactly
//! it or nothing. The file holds the changes and what they were made from:
//! the files' digests and a digest of the live state the changes depend on
//! (the observed form of every object they touch, and what waits or
//! conflicts). Secrets appear only inside the input digest.

use super::Plan;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::PathBuf;

/// Version of the saved-plan file; a file of another version is refused.
pub const SAVED_PLAN_VERSION: u32 = 1;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Operation {
    /// Converge to the files (`netloom plan --out`).
    Apply,
    /// Remove everything the topology owns (`netloom plan --destroy --out`).
    Destroy,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct FileDigest {
    pub path: String,
    pub sha256: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, schemars::JsonSchema)]
#[schemars(title = "netloom saved plan")]
pub struct SavedPlan {
    /// Marks the file as a saved plan; its format version.
    pub netloom_saved_plan: u32,
    /// The netloom that made it; another version refuses to apply it.
    pub netloom_version: String,
    /// Seconds since the epoch when the plan was made.
    pub created_unix: u64,
    pub operation: Operation,
    pub topology: String,
    /// The PATH arguments plan was given, as given: `apply FILE` reads the
    /// files from there (relative to where it runs).
    pub paths: Vec<PathBuf>,
    pub files: Vec<FileDigest>,
    /// sha256 of the files and of the secrets they name.
    pub input_digest: String,
    /// sha256 of the live state the changes depend on.
    pub live_digest: String,
    /// Destroy: what goes whole (`netns lab1`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub removed_whole: Vec<String>,
    /// The plan as `plan --format json` prints it.
    #[schemars(with = "crate::plan::Plan")]
    pub plan: Value,
}

impl SavedPlan {
    /// Whether `text` is a saved plan (and not a topology file).
    pub fn sniff(text: &str) -> bool {
        text.trim_start().starts_with('{')
            && serde_json::from_str::<Value>(text)
                .is_ok_and(|v| v.get("netloom_saved_plan").is_some())
    }

    pub fn parse(text: &str) -> Result<SavedPlan, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        match v.get("netloom_saved_plan").and_then(Value::as_u64) {
            Some(n) if n == u64::from(SAVED_PLAN_VERSION) => {}
            Some(n) => {
                return Err(format!(
                    "saved-plan format {n}; this netloom reads format {SAVED_PLAN_VERSION}"
                ));
            }
            None => return Err("not a netloom saved plan (no netloom_saved_plan)".into()),
        }
        serde_json::from_value(v).map_err(|e| format!("a damaged saved plan: {e}"))
    }

    pub fn to_json(&self) -> String {
        let mut s = serde_json::to_string_pretty(self).expect("a saved plan serializes");
        s.push('\n');
        s
    }
}

/// What of a plan depends on the live state: its changes (without the
/// stage and source, which follow from the files), conflicts and pending
/// objects, and for a destroy what goes whole.
pub fn relevant(plan: &Plan, removed_whole: &[String]) -> Value {
    relevant_of(
        serde_json::to_value(plan).expect("a plan serializes"),
        removed_whole,
    )
}

/// `relevant` of a plan as JSON (a saved plan's `plan`).
pub fn relevant_of(mut v: Value, removed_whole: &[String]) -> Value {
    if let Some(changes) = v.get_mut("changes").and_then(Value::as_array_mut) {
        for c in changes {
            if let Some(o) = c.as_object_mut() {
                o.remove("stage");
                o.remove("source");
            }
        }
    }
    serde_json::json!({
        "changes": v["changes"],
        "conflicts": v["conflicts"],
        "pending": v["pending"],
        "removed_whole": removed_whole,
    })
}

/// sha256 of `relevant`.
pub fn live_digest(relevant: &Value) -> String {
    use sha2::{Digest, Sha256};
    crate::engine::hex(&Sha256::digest(relevant.to_string().as_bytes()))
}

/// How the files differ from those the plan was made from.
pub fn file_reasons(saved: &[FileDigest], now: &[FileDigest]) -> Vec<String> {
    let was: BTreeMap<&str, &str> = saved
        .iter()
        .map(|f| (f.path.as_str(), f.sha256.as_str()))
        .collect();
    let is: BTreeMap<&str, &str> = now
        .iter()
        .map(|f| (f.path.as_str(), f.sha256.as_str()))
        .collect();
    let mut out = vec![];
    for (path, d) in &was {
        match is.get(path) {
            None => out.push(format!("{path} is gone since the plan was made")),
            Some(n) if n != d => out.push(format!("{path} changed since the plan was made")),
            Some(_) => {}
        }
    }
    for path in is.keys().filter(|p| !was.contains_key(*p)) {
        out.push(format!("{path} was added since the plan was made"));
    }
    out
}

fn by_key(v: &Value, list: &str) -> BTreeMap<String, Value> {
    v[list]
        .as_array()
        .map(|a| {
            a.iter()
                .map(|c| (c["key"].to_string(), c.clone()))
                .collect()
        })
        .unwrap_or_default()
}

fn name(c: &Value) -> String {
    format!(
        "{} {}",
        c["kind"].as_str().unwrap_or("object"),
        c["title"].as_str().unwrap_or("?")
    )
}

fn fields(c: &Value) -> String {
    let f: Vec<&str> = c["fields"]
        .as_array()
        .map(|a| a.iter().filter_map(|f| f["field"].as_str()).collect())
        .unwrap_or_default();
    if f.is_empty() {
        String::new()
    } else {
        format!(" ({})", f.join(", "))
    }
}

/// Why the plan made now (`now`, from `relevant`) differs from the saved
/// one, an object at a time, in words; empty when they are the same.
pub fn stale_reasons(saved: &Value, now: &Value) -> Vec<String> {
    if saved == now {
        return vec![];
    }
    let (was, is) = (by_key(saved, "changes"), by_key(now, "changes"));
    let mut keys: Vec<&String> = was.keys().chain(is.keys()).collect();
    keys.sort();
    keys.dedup();
    let mut out = vec![];
    let action = |c: &Value| c["action"].as_str().unwrap_or("").to_string();
    for k in keys {
        let line = match (was.get(k), is.get(k)) {
            (Some(o), Some(n)) if o == n => continue,
            (Some(o), None) => match action(o).as_str() {
                "create" => format!("{} was created since the plan was made", name(o)),
                "delete" => format!("{} was deleted since the plan was made", name(o)),
                _ => format!(
                    "{} was changed since the plan was made: it now matches the files",
                    name(o)
                ),
            },
            (None, Some(n)) => match action(n).as_str() {
                "create" => format!("{} was deleted since the plan was made", name(n)),
                "delete" => format!(
                    "{} (owned, no longer in the files) appeared since the plan was made",
                    name(n)
                ),
                _ => format!("{} changed since the plan was made{}", name(n), fields(n)),
            },
            (Some(o), Some(n)) => {
                if action(o) != "create" && action(n) == "create" {
                    format!("{} was deleted since the plan was made", name(n))
                } else {
                    format!("{} changed since the plan was made{}", name(n), fields(n))
                }
            }
            (None, None) => continue,
        };
        out.push(line);
    }
    let (was, is) = (by_key(saved, "pending"), by_key(now, "pending"));
    for (k, p) in &was {
        if !is.contains_key(k) {
            out.push(format!("{} no longer waits ({})", name(p), p["reason"]));
        }
    }
    for (k, p) in &is {
        if !was.contains_key(k) {
            out.push(format!(
                "{} now waits: {}",
                name(p),
                p["reason"].as_str().unwrap_or("")
            ));
        }
    }
    if saved["conflicts"] != now["conflicts"] {
        for c in now["conflicts"].as_array().into_iter().flatten() {
            out.push(format!(
                "a conflict: {}",
                c["message"].as_str().unwrap_or("")
            ));
        }
    }
    if saved["removed_whole"] != now["removed_whole"] {
        out.push(format!("what goes whole is now {}", now["removed_whole"]));
    }
    if out.is_empty() {
        // Same objects, same actions: something inside them moved.
        out.push("the live state changed since the plan was made".into());
    }
    if !is_empty_plan(saved) && is_empty_plan(now) {
        out.insert(
            0,
            "the live state already matches the files (was the plan applied already?)".into(),
        );
        out.truncate(1);
    }
    out
}

fn is_empty_plan(v: &Value) -> bool {
    ["changes", "conflicts", "pending"]
        .iter()
        .all(|k| v[k].as_array().is_none_or(Vec::is_empty))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn change(action: &str, name: &str, fields: &[&str]) -> Value {
        json!({
            "action": action,
            "key": {"type": "link", "name": name},
            "kind": "bridge",
            "title": name,
            "fields": fields.iter().map(|f| json!({"field": f})).collect::<Vec<_>>(),
        })
    }

    fn plan(changes: Vec<Value>) -> Value {
        json!({"changes": changes, "conflicts": [], "pending": [], "removed_whole": []})
    }

    #[test]
    fn the_same_plan_is_not_stale() {
        let p = plan(vec![change("update", "br-a", &["mtu"])]);
        assert!(stale_reasons(&p, &p.clone()).is_empty());
    }

    #[test]
    fn an_object_deleted_since_is_named() {
        let saved = plan(vec![change("update", "br-a", &["mtu"])]);
        let now = plan(vec![
            change("update", "br-a", &["mtu"]),
            change("create", "br-b", &[]),
        ]);
        assert_eq!(
            stale_reasons(&saved, &now),
            ["bridge br-b was deleted since the plan was made"]
        );
    }

    #[test]
    fn an_update_turned_into_a_create_is_a_deletion() {
        let saved = plan(vec![change("update", "br-a", &["mtu"])]);
        let now = plan(vec![change("create", "br-a", &[])]);
        assert_eq!(
            stale_reasons(&saved, &now),
            ["bridge br-a was deleted since the plan was made"]
        );
    }

    #[test]
    fn drift_since_names_its_fields() {
        let saved = plan(vec![]);
        let now = plan(vec![change("update", "br-a", &["mtu", "address"])]);
        assert_eq!(
            stale_reasons(&saved, &now),
            ["bridge br-a changed since the plan was made (mtu, address)"]
        );
    }

    #[test]
    fn a_plan_applied_already_says_so() {
        let saved = plan(vec![
            change("create", "br-a", &[]),
            change("create", "br-b", &[]),
        ]);
        let now = plan(vec![]);
        let r = stale_reasons(&saved, &now);
        assert_eq!(r.len(), 1);
        assert!(r[0].contains("already matches"), "{r:?}");
    }

    #[test]
    fn files_changed_added_and_gone() {
        let f = |p: &str, d: &str| FileDigest {
            path: p.into(),
            sha256: d.into(),
        };
        let r = file_reasons(
            &[f("a.toml", "1"), f("b.toml", "2")],
            &[f("a.toml", "9"), f("c.toml", "3")],
        );
        assert_eq!(
            r,
            [
                "a.toml changed since the plan was made",
                "b.toml is gone since the plan was made",
                "c.toml was added since the plan was made"
            ]
        );
    }

    #[test]
    fn only_a_saved_plan_is_sniffed_as_one() {
        assert!(SavedPlan::sniff("{\"netloom_saved_plan\": 1}"));
        assert!(!SavedPlan::sniff("[topology]\nname = \"x\"\n"));
        assert!(!SavedPlan::sniff("{\"format_version\": 1}"));
        assert!(
            SavedPlan::parse("{\"netloom_saved_plan\": 7}")
                .unwrap_err()
                .contains("format 7")
        );
    }
}
