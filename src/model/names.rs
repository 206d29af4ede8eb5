//! Name rules shared by the validator: kernel interface names and the
//! names netloom uses for files and marks.

/// Why a name is refused, in words for a diagnostic.
#[derive(Debug)]
pub struct BadName(pub String);

impl std::fmt::Display for BadName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<BadName> for String {
    fn from(b: BadName) -> String {
        b.0
    }
}

/// Linux's `dev_valid_name`: 1–15 bytes, not `.`/`..`, no `/`, `:` or whitespace.
pub fn check_ifname(name: &str) -> Result<(), BadName> {
    if name.is_empty() {
        return Err(BadName("an interface name cannot be empty".into()));
    }
    if name.len() > 15 {
        return Err(BadName(format!(
            "interface name `{name}` is {} bytes long; Linux allows at most 15",
            name.len()
        )));
    }
    if name == "lo" {
        return Err(BadName(
            "`lo` is the loopback interface every netns has; pick another name".into(),
        ));
    }
    if name == "." || name == ".." {
        return Err(BadName(format!("`{name}` is not a valid interface name")));
    }
    if let Some(c) = name
        .chars()
        .find(|c| *c == '/' || *c == ':' || c.is_whitespace())
    {
        return Err(BadName(format!(
            "interface name `{name}` contains {:?}; names cannot hold `/`, `:` or whitespace",
            c
        )));
    }
    Ok(())
}

/// Topology and netns names become file names and marks: keep them plain.
pub fn check_scope_name(what: &str, name: &str) -> Result<(), BadName> {
    let ok = !name.is_empty()
        && name.len() <= 64
        && !name.starts_with(['.', '-'])
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'));
    if ok {
        Ok(())
    } else {
        Err(BadName(format!(
            "{what} `{name}` is not valid: use 1–64 characters of letters, digits, `-`, `_` and `.`, not starting with `.` or `-`"
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interface_names_follow_the_kernel() {
        assert!(check_ifname("br-core").is_ok());
        assert!(check_ifname("a23456789012345").is_ok());
        assert!(check_ifname("a234567890123456").is_err());
        assert!(check_ifname("a/b").is_err());
        assert!(check_ifname("a b").is_err());
        assert!(check_ifname("a:b").is_err());
        assert!(check_ifname("..").is_err());
        assert!(check_ifname("").is_err());
    }

    #[test]
    fn scope_names_are_plain() {
        assert!(check_scope_name("topology", "lab-1.a_b").is_ok());
        assert!(check_scope_name("topology", "../x").is_err());
        assert!(check_scope_name("topology", "a b").is_err());
        assert!(check_scope_name("topology", "").is_err());
    }
}
