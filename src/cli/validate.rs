use super::DiagFormat;
use std::path::PathBuf;
use std::process::ExitCode;

pub fn run(paths: &[PathBuf], format: DiagFormat) -> ExitCode {
    if format == DiagFormat::Json {
        return match netloom::engine::load_diagnosed(paths) {
            Ok((l, warnings)) => {
                super::print_diagnostics_json(&warnings, &l.sources, Some(&l.topo.name));
                ExitCode::SUCCESS
            }
            Err(bad) => {
                super::print_diagnostics_json(&bad.diagnostics, &bad.sources, None);
                ExitCode::from(1)
            }
        };
    }
    let l = match super::load(paths) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let t = &l.topo;
    let mut parts = vec![
        format!("{} bridge(s)", t.bridges.len()),
        format!("{} veth pair(s)", t.veths.len()),
        format!("{} route(s)", t.routes.len()),
        format!("{} rule(s)", t.rules.len()),
    ];
    if !t.networks.is_empty() || !t.containers.is_empty() || !t.links.is_empty() {
        parts.push(format!("{} Docker network(s)", t.networks.len()));
        parts.push(format!("{} container(s)", t.containers.len()));
        parts.push(format!("{} container link(s)", t.links.len()));
    }
    println!(
        "topology {} is valid: {}; kernel objects in {} ({} file(s))",
        t.name,
        parts.join(", "),
        netloom::engine::netns_label(&t.netns),
        l.sources.files.len()
    );
    // The process ends here: freeing a large topology object by object
    // was an eighth of validating 16,000 objects.
    std::mem::forget(l);
    ExitCode::SUCCESS
}
