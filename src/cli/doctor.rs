use super::{DiagFormat, DoctorArgs};
use netloom::doctor::{self, Options};
use std::process::ExitCode;

pub fn run(a: &DoctorArgs) -> ExitCode {
    let loaded = if a.paths.is_empty() {
        None
    } else {
        match super::load(&a.paths) {
            Ok(l) => Some(l),
            Err(code) => return code,
        }
    };
    let topo = loaded.as_ref().map(|l| &l.topo);
    let opts = Options {
        config_root: a.config_root.clone(),
    };
    let findings = super::runtime().block_on(doctor::examine(topo, &opts));
    let code = doctor::exit_code(&findings);
    match a.format {
        DiagFormat::Json => {
            let (errors, warnings, ok) = doctor::counts(&findings);
            let v = serde_json::json!({
                "format_version": 1,
                "netloom_version": env!("CARGO_PKG_VERSION"),
                "topology": topo.map(|t| &t.name),
                "findings": findings,
                "summary": { "errors": errors, "warnings": warnings, "ok": ok },
                "exit_code": code,
            });
            println!(
                "{}",
                serde_json::to_string_pretty(&v).expect("findings serialize")
            );
        }
        DiagFormat::Text => {
            match topo {
                Some(t) => {
                    let ns = t
                        .netns
                        .as_deref()
                        .map_or("the host netns".to_string(), |n| format!("netns {n}"));
                    println!("netloom doctor: topology {} in {ns}\n", t.name);
                }
                None => println!(
                    "netloom doctor: this host (give topology files to check what they need)\n"
                ),
            }
            print!("{}", doctor::render_text(&findings));
        }
    }
    ExitCode::from(code)
}
