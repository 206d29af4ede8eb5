//! What watch does after a reconcile that failed.

use crate::error::{Error, ErrorKind};
use std::time::Duration;

/// The longest wait between retries.
pub const BACKOFF_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Next {
    /// Only an edit of the files can fix it: no retry timer.
    AwaitChange,
    /// Try again after this long (events may come first).
    Retry(Duration),
}

/// `failures`: consecutive failed reconciles, this one included.
pub fn after_error(e: &Error, failures: u32) -> Next {
    match e.kind() {
        ErrorKind::Invalid => Next::AwaitChange,
        // Anything live may change by itself: a daemon returns, a foreign
        // object is removed, a container starts.
        ErrorKind::Conflict
        | ErrorKind::Backend
        | ErrorKind::Io
        | ErrorKind::Verify
        | ErrorKind::Busy => Next::Retry(backoff(failures)),
    }
}

/// 2 s, 4 s, 8 s … up to 30 s.
pub fn backoff(failures: u32) -> Duration {
    Duration::from_secs(1u64 << failures.clamp(1, 5)).min(BACKOFF_MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bad_files_wait_for_an_edit_and_live_errors_back_off() {
        let invalid = Error::Invalid("x.toml:1:1: error".into());
        assert_eq!(after_error(&invalid, 3), Next::AwaitChange);
        let live = Error::State("container c1 is not running".into());
        let waits: Vec<Next> = (1..=6).map(|n| after_error(&live, n)).collect();
        let secs = |s| Next::Retry(Duration::from_secs(s));
        assert_eq!(
            waits,
            vec![secs(2), secs(4), secs(8), secs(16), secs(30), secs(30)]
        );
    }
}
