mod cli;

use clap::Parser;
use std::process::ExitCode;
use tracing_subscriber::EnvFilter;

fn main() -> ExitCode {
    // Usage errors exit 1 (clap's default 2 means "changes pending" here).
    let cli = match cli::Cli::try_parse_from(cli::terraform_spelling(std::env::args_os())) {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS // --help, --version
            };
        }
    };
    // watch reports each reconcile in one line: its default is info.
    let watching = matches!(cli.command, cli::Command::Watch(_));
    let level = match cli.verbose {
        0 if watching => "info",
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    // An empty RUST_LOG counts as unset, so -v still works.
    let filter = match std::env::var("RUST_LOG") {
        Ok(v) if !v.trim().is_empty() => EnvFilter::new(v),
        // netlink_proto warns about every multicast message a request
        // socket happens to see; that is noise below -vv.
        _ if cli.verbose < 2 => EnvFilter::new(format!("{level},netlink_proto=error")),
        _ => EnvFilter::new(level),
    };
    use std::io::IsTerminal;
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        // A closed stderr (`netloom watch d 2>&1 | head -1`) must not end
        // watch: the default reports a failed log write with eprintln!, which
        // panics on that same closed stderr.
        .log_internal_errors(false)
        .init();
    cli::run(cli)
}
