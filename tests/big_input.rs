//! Any input gets its verdict in memory linear in its size: a line that
//! repeats one address 100,000 times once took 24 GB (every diagnostic
//! printed the whole line). Alone in its test binary, so the peak memory of
//! this process's children is netloom's.

use std::process::Command;

#[test]
fn a_line_of_100000_repeated_addresses_is_judged_in_bounded_memory() {
    let dir = std::env::temp_dir().join(format!("netloom-big-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("big.toml");
    let list = vec!["\"10.0.0.1/24\""; 100_000].join(", ");
    std::fs::write(
        &file,
        format!("[topology]\nname = \"big\"\n[bridge.br0]\naddresses = [{list}]\n"),
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_netloom"))
        .arg("validate")
        .arg(&file)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{}",
        &stderr[..stderr.len().min(2000)]
    );
    assert!(stderr.contains("big.toml:4:29: error: address 10.0.0.1/24 is listed twice"));
    assert!(
        stderr.contains("… and 99949 more errors"),
        "the rest are counted"
    );
    assert!(stderr.contains("99999 errors found; nothing was changed"));
    // The first 50 in full, each with a cut line: a few kilobytes, not gigabytes.
    assert!(stderr.len() < 64 * 1024, "{} bytes of report", stderr.len());
    let usage =
        nix::sys::resource::getrusage(nix::sys::resource::UsageWho::RUSAGE_CHILDREN).unwrap();
    let peak_kib = usage.max_rss(); // Linux: KiB
    assert!(
        peak_kib < 200 * 1024,
        "peak memory {peak_kib} KiB for a 1.5 MB file"
    );
}
