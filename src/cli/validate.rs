use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(paths: &[PathBuf]) -> ExitCode {
    let l = match super::load(paths) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let t = &l.topo;
    println!(
        "topology {} is valid: {} bridge(s), {} veth pair(s), {} route(s), {} rule(s) in {} ({} file(s))",
        t.name,
        t.bridges.len(),
        t.veths.len(),
        t.routes.len(),
        t.rules.len(),
        super::netns_label(&t.netns),
        l.sources.files.len()
    );
    ExitCode::SUCCESS
}
