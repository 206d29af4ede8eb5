use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(paths: &[PathBuf]) -> ExitCode {
    match super::load(paths) {
        Ok(l) => {
            print!("{}", l.graph.to_dot(&l.topo.name));
            ExitCode::SUCCESS
        }
        Err(code) => code,
    }
}
