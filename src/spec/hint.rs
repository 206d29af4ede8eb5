//! A guess at the topology's netns from the files' text, before they are
//! parsed: lets observation start while they load (`kernel::prefetch`).
//! Only a hint: what the loaded topology names is checked before use.

use std::path::PathBuf;

/// `Some(netns)` (`Some(None)`: the host's) when exactly one file has a
/// `[topology]` table whose text parses on its own; `None` otherwise.
pub fn netns_hint(paths: &[PathBuf]) -> Option<Option<String>> {
    let [path] = paths else { return None };
    // A directory is read as many files: not worth guessing through.
    hint_in(&std::fs::read_to_string(path).ok()?)
}

fn hint_in(text: &str) -> Option<Option<String>> {
    let start = text
        .match_indices("[topology]")
        .map(|(i, _)| i)
        .find(|&i| i == 0 || text.as_bytes()[i - 1] == b'\n')?;
    let body = &text[start + "[topology]".len()..];
    // Up to the next table header.
    let end = body
        .match_indices("\n[")
        .map(|(i, _)| i)
        .next()
        .unwrap_or(body.len());
    let table: toml::Table = toml::from_str(&body[..end]).ok()?;
    match table.get("netns") {
        None => Some(None),
        Some(toml::Value::String(s)) => Some(Some(s.clone())),
        Some(_) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_topology_table_only() {
        let hint = hint_in;
        let t =
            "# lab\n[topology]\nname = \"a\"\nnetns = \"lab1\"\n\n[bridge.br0]\nnetns = \"no\"\n";
        assert_eq!(hint(t), Some(Some("lab1".into())));
        assert_eq!(hint("[topology]\nname = \"a\"\n[bridge.b]\n"), Some(None));
        assert_eq!(hint("[bridge.b]\n"), None);
        assert_eq!(hint("[topology]\nnetns = 3\n"), None);
        assert_eq!(hint("[topology]\nnetns = \"x\n"), None);
    }
}
