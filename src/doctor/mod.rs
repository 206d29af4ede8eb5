//! `netloom doctor`: the host checks a topology depends on — forwarding,
//! Docker and its NAT, other network managers, binaries, link kinds —
//! each as a finding with how to fix it. Reads only; changes nothing.

mod docker;
mod forwarding;
mod kinds;
mod managers;
mod tools;

use crate::model::Topology;
use serde::Serialize;
use std::path::{Path, PathBuf};

pub use forwarding::why_forward;
pub use kinds::probe_kind;
pub use managers::{netplan_names, networkd_matches};

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Ok,
    Warning,
    Error,
}

impl Severity {
    pub fn label(self) -> &'static str {
        match self {
            Severity::Ok => "ok",
            Severity::Warning => "warning",
            Severity::Error => "error",
        }
    }
}

/// One thing doctor looked at, and what it found.
#[derive(Debug, Clone, Serialize)]
pub struct Finding {
    /// Which check: forwarding, docker, masquerade, ipv6, address-pools,
    /// managers, binaries, link-kinds.
    pub check: &'static str,
    pub severity: Severity,
    /// What it is about (a netns, a network, a file, a binary).
    pub subject: String,
    pub message: String,
    /// How to fix it (warnings and errors).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub fix: Option<String>,
}

impl Finding {
    pub fn ok(check: &'static str, subject: impl Into<String>, message: impl Into<String>) -> Self {
        Finding {
            check,
            severity: Severity::Ok,
            subject: subject.into(),
            message: message.into(),
            fix: None,
        }
    }

    pub fn warning(
        check: &'static str,
        subject: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            severity: Severity::Warning,
            fix: Some(fix.into()),
            ..Finding::ok(check, subject, message)
        }
    }

    pub fn error(
        check: &'static str,
        subject: impl Into<String>,
        message: impl Into<String>,
        fix: impl Into<String>,
    ) -> Self {
        Finding {
            severity: Severity::Error,
            ..Finding::warning(check, subject, message, fix)
        }
    }
}

pub struct Options {
    /// Where other managers' and Docker's configuration is read from
    /// (`/`, or a host image).
    pub config_root: PathBuf,
}

impl Options {
    /// `rel` (absolute, like "/etc/netplan") under the configuration root.
    fn path(&self, rel: &str) -> PathBuf {
        self.config_root.join(rel.trim_start_matches('/'))
    }

    fn live_root(&self) -> bool {
        self.config_root == Path::new("/")
    }
}

/// Every check that applies to `topo` (or to the host alone, without one).
pub async fn examine(topo: Option<&Topology>, opts: &Options) -> Vec<Finding> {
    let mut out = vec![];
    forwarding::examine(topo, &mut out);
    docker::examine(topo, opts, &mut out).await;
    managers::examine(topo, opts, &mut out);
    tools::examine(topo, &mut out);
    kinds::examine(topo, &mut out).await;
    out
}

/// 1 with any error, 2 with warnings only, else 0.
pub fn exit_code(findings: &[Finding]) -> u8 {
    match findings.iter().map(|f| f.severity).max() {
        Some(Severity::Error) => 1,
        Some(Severity::Warning) => 2,
        _ => 0,
    }
}

/// How many findings of each severity: (errors, warnings, ok).
pub fn counts(findings: &[Finding]) -> (usize, usize, usize) {
    let n = |s| findings.iter().filter(|f| f.severity == s).count();
    (n(Severity::Error), n(Severity::Warning), n(Severity::Ok))
}

/// The report as text, worst first within each check's order.
pub fn render_text(findings: &[Finding]) -> String {
    use std::fmt::Write as _;
    let mut s = String::new();
    for f in findings {
        let _ = writeln!(
            s,
            "  {:<7} {:<13} {}: {}",
            f.severity.label(),
            f.check,
            f.subject,
            f.message
        );
        if let Some(fix) = &f.fix {
            let _ = writeln!(s, "          fix: {fix}");
        }
    }
    let (e, w, o) = counts(findings);
    let _ = writeln!(s, "\nDoctor: {e} error(s), {w} warning(s), {o} ok.");
    s
}

/// A binary on `$PATH`, as the backends would run it.
pub(crate) fn on_path(bin: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|d| d.join(bin))
        .find(|p| is_executable(p))
}

pub(crate) fn is_executable(p: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(test)]
mod tests;
