use super::{Format, ShowArgs};
use netloom::engine::show::{ShowReport, show};
use std::fmt::Write as _;
use std::process::ExitCode;

pub fn run(a: &ShowArgs) -> ExitCode {
    let l = match super::load(&a.paths.paths) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let report = match super::runtime().block_on(show(&l)) {
        Ok(r) => r,
        Err(e) => return super::fail(e),
    };
    match a.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        ),
        Format::Text => print!("{}", text(&report, false)),
        Format::Markdown => print!("{}", text(&report, true)),
    }
    // 1 stays for "could not tell" (bad files, daemon away): a conflict is
    // a state, not an error of show's.
    if a.detailed_exitcode && !report.all_ok() {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

fn text(r: &ShowReport, markdown: bool) -> String {
    let mut out = String::new();
    let count = |s: &str| r.count(s);
    let _ = writeln!(
        out,
        "{}topology {} in {}: {} ok, {} drifted, {} missing, {} conflicting, {} pending, {} extra\n",
        if markdown { "### " } else { "" },
        r.topology,
        netloom::engine::netns_label(&r.netns),
        count("ok"),
        count("drift"),
        count("missing"),
        count("conflict"),
        count("pending"),
        count("extra")
    );
    if let Some(w) = &r.watch {
        let _ = writeln!(
            out,
            "watched by pid {}, serving revision {}",
            w.pid, w.revision
        );
        if let Some(b) = &w.broken {
            let _ = writeln!(
                out,
                "  the files have errors ({b}): watch serves the last revision that loaded"
            );
        }
        out.push('\n');
    }
    let start = out.len();
    for e in &r.entries {
        let _ = writeln!(out, "  {:<9} {} {}", e.status, e.kind, e.title);
        if !e.live.is_empty() {
            let _ = writeln!(out, "              live: {}", e.live);
        }
        for d in &e.drift {
            let _ = writeln!(out, "              {d}");
        }
    }
    for p in &r.ready {
        let status = if p.ok { "ready" } else { "not ready" };
        let _ = writeln!(
            out,
            "  {status:<9} {} → ping {}: {}",
            p.container, p.target, p.detail
        );
    }
    if markdown {
        let fence = netloom::plan::code_fence(&out[start..]);
        out.insert_str(start, &format!("{fence}\n"));
        let _ = writeln!(out, "{fence}");
    }
    out
}
