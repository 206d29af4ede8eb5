//! One error type for the library: what went wrong, of which kind, and
//! whether trying again (without changing the files) may help.

use crate::resource::BackendId;
use std::io;

/// The broad class of an error, for callers that decide what to do next.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// The files (or the arguments) are wrong: only an edit helps.
    Invalid,
    /// Something live that netloom does not own is in the way.
    Conflict,
    /// A backend (kernel, Docker) refused or failed a request.
    Backend,
    /// Reading or writing netloom's own files, or a system interface.
    Io,
    /// Applied, but the live state does not match (or is not ready).
    Verify,
    /// Another netloom process holds the topology.
    Busy,
}

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Rendered diagnostics of the topology files.
    #[error("{0}")]
    Invalid(String),
    /// Plan-time conflicts; `detail` lists them when the plan was not shown.
    #[error("{count} conflict(s) with objects this topology does not own; nothing was changed{}",
        if detail.is_empty() { String::new() } else { format!(":\n  {}", detail.join("\n  ")) })]
    Conflict { count: usize, detail: Vec<String> },
    /// A request to a backend failed.
    #[error("{op} {object}: {message}")]
    Backend {
        backend: BackendId,
        op: String,
        object: String,
        errno: Option<i32>,
        message: String,
    },
    /// A backend that a change needs is not there (a daemon that is down).
    #[error("{message}")]
    Unavailable { backend: BackendId, message: String },
    #[error("{context}: {source}")]
    Io {
        context: String,
        #[source]
        source: io::Error,
    },
    /// Live state that rules an operation out (a container that stopped, a
    /// netns that vanished, a ledger naming another netns).
    #[error("{0}")]
    State(String),
    /// One step of an apply failed, after `done` had been done.
    #[error(
        "step `{step}` failed: {source}\n{}fix the cause and apply again: it continues from the live state",
        done_lines(done)
    )]
    Step {
        step: String,
        source: Box<Error>,
        done: Vec<String>,
    },
    /// An apply that failed and put back what it had changed.
    #[error(
        "{}rolled back {undone} change(s): the live state is as it was before this apply (`--no-rollback` keeps partial progress)",
        failure(source)
    )]
    RolledBack { source: Box<Error>, undone: usize },
    #[error("{source}\nrolling back failed too: {rollback}")]
    RollbackFailed {
        source: Box<Error>,
        rollback: Box<Error>,
    },
    #[error("applied {applied} change(s), but the live state still differs:\n  {}", left.join("\n  "))]
    Verify { applied: usize, left: Vec<String> },
    /// Readiness probes that failed, one line each.
    #[error("{}", .0.join("\n"))]
    NotReady(Vec<String>),
    /// A saved plan that no longer matches the files or the live state.
    #[error("the plan is stale: {}; run plan again", .0.join("; "))]
    Stale(Vec<String>),
    #[error("{}", locked(topology, pid, role, path))]
    Locked {
        topology: String,
        pid: String,
        /// What the holder does: `apply`, `destroy`, `watch` (a watch holds
        /// the topology for its whole life), or empty when it did not say.
        role: String,
        path: String,
    },
}

fn locked(topology: &str, pid: &str, role: &str, path: &str) -> String {
    match role {
        "watch" => format!(
            "topology {topology} is watched by pid {pid}; stop that watch first, or wait for it with --lock-timeout (lock: {path})"
        ),
        "destroy" => format!(
            "topology {topology} is being destroyed by pid {pid}; wait for it to finish, or use --lock-timeout (lock: {path})"
        ),
        _ => format!(
            "topology {topology} is being applied by pid {pid}; wait for it to finish, or use --lock-timeout (lock: {path})"
        ),
    }
}

impl Error {
    /// The report without the CLI's advice to apply again (watch retries
    /// by itself); ends with a newline.
    pub fn without_advice(&self) -> String {
        failure(self)
    }
}

/// A failure's report without the advice to apply again (a rollback follows).
fn failure(e: &Error) -> String {
    match e {
        Error::Step { step, source, done } => {
            format!("step `{step}` failed: {source}\n{}", done_lines(done))
        }
        other => format!("{other}\n"),
    }
}

fn done_lines(done: &[String]) -> String {
    if done.is_empty() {
        return "no step before it had changed anything\n".into();
    }
    let mut s = format!("done before it ({}):\n", done.len());
    for d in done {
        s += &format!("  {d}\n");
    }
    s
}

pub type Result<T> = std::result::Result<T, Error>;

impl Error {
    pub fn io(context: impl Into<String>, source: io::Error) -> Self {
        Error::Io {
            context: context.into(),
            source,
        }
    }

    /// A netlink request that failed, with the kernel's errno.
    pub fn kernel(op: &str, object: impl Into<String>, e: rtnetlink::Error) -> Self {
        let errno = errno(&e);
        let message = match errno {
            Some(n) => io::Error::from_raw_os_error(n).to_string(),
            None => e.to_string(),
        };
        Error::Backend {
            backend: BackendId::Kernel,
            op: op.to_string(),
            object: object.into(),
            errno,
            message,
        }
    }

    /// The topology's named netns is not there (`None`: the host's, which always is).
    pub fn no_netns(netns: Option<&str>) -> Self {
        Error::State(format!(
            "netns {} does not exist",
            netns.unwrap_or_default()
        ))
    }

    /// A task that could not be joined (it panicked or was cancelled).
    pub fn task(what: &str, e: tokio::task::JoinError) -> Self {
        Error::State(format!("{what} task: {e}"))
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            Error::Invalid(_) | Error::Stale(_) => ErrorKind::Invalid,
            Error::Conflict { .. } => ErrorKind::Conflict,
            Error::Backend { .. } | Error::Unavailable { .. } | Error::State(_) => {
                ErrorKind::Backend
            }
            Error::Io { .. } => ErrorKind::Io,
            Error::Step { source, .. }
            | Error::RolledBack { source, .. }
            | Error::RollbackFailed { source, .. } => source.kind(),
            Error::Verify { .. } | Error::NotReady(_) => ErrorKind::Verify,
            Error::Locked { .. } => ErrorKind::Busy,
        }
    }

    /// Whether the same request may succeed later with the files unchanged
    /// (the live state moves on: a daemon returns, a container starts).
    pub fn retryable(&self) -> bool {
        match self.kind() {
            ErrorKind::Invalid | ErrorKind::Conflict => false,
            ErrorKind::Backend | ErrorKind::Io | ErrorKind::Verify | ErrorKind::Busy => true,
        }
    }

    pub fn errno(&self) -> Option<i32> {
        match self {
            Error::Backend { errno, .. } => *errno,
            Error::Io { source, .. } => source.raw_os_error(),
            Error::Step { source, .. }
            | Error::RolledBack { source, .. }
            | Error::RollbackFailed { source, .. } => source.errno(),
            Error::Invalid(_)
            | Error::Conflict { .. }
            | Error::Unavailable { .. }
            | Error::State(_)
            | Error::Verify { .. }
            | Error::NotReady(_)
            | Error::Stale(_)
            | Error::Locked { .. } => None,
        }
    }
}

/// The positive errno of a netlink error, if it carries one.
pub fn errno(e: &rtnetlink::Error) -> Option<i32> {
    match e {
        rtnetlink::Error::NetlinkError(m) => m.code.map(|c| -c.get()),
        _ => None,
    }
}
