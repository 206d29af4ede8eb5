use super::WatchArgs;
use std::process::ExitCode;

/// Diagnostics and errors of watch go to stderr.
struct Stderr;

impl netloom::engine::watch::Sink for Stderr {
    /// A closed stderr (`watch … | head`) must not stop watch.
    fn print(&mut self, text: &str) {
        use std::io::Write;
        let _ = std::io::stderr().write_all(text.as_bytes());
    }
}

pub fn run(a: &WatchArgs) -> ExitCode {
    let mut sink = Stderr;
    let opts = netloom::engine::watch::Options {
        resync: a.resync,
        lock_wait: a.lock.lock_timeout,
    };
    let run = netloom::engine::watch::run(&a.paths.paths, opts, &mut sink);
    match super::runtime().block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::fail(e),
    }
}
