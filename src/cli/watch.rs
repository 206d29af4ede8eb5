use super::WatchArgs;
use std::process::ExitCode;

/// Diagnostics and errors of watch go to stderr.
struct Stderr;

impl netloom::engine::watch::Sink for Stderr {
    fn print(&mut self, text: &str) {
        eprint!("{text}");
    }
}

pub fn run(a: &WatchArgs) -> ExitCode {
    let mut sink = Stderr;
    let run = netloom::engine::watch::run(&a.paths.paths, a.resync, &mut sink);
    match super::runtime().block_on(run) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => super::fail(e),
    }
}
