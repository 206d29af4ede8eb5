//! Command-line interface: parses arguments, calls the engine, renders its
//! outcomes and maps them to exit codes. Private to the binary.

mod apply;
mod destroy;
mod graph;
mod plan;
mod show;
mod validate;
mod watch;

use clap::{Args, Parser, Subcommand, ValueEnum};
use netloom::engine::{self, Loaded};
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Parser, Debug)]
#[command(
    name = "netloom",
    version,
    about = "Declarative network reconciler for Linux hosts that run containers"
)]
pub struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    pub verbose: u8,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand, Debug)]
pub enum Command {
    /// Parse and validate the topology; reads no live state.
    Validate(Paths),
    /// Show the ordered changes apply would make; changes nothing.
    Plan(PlanArgs),
    /// Make the changes, then observe again to verify.
    Apply(ApplyArgs),
    /// Apply, then keep applying on file edits, Docker and netlink events, and a periodic resync.
    Watch(WatchArgs),
    /// Remove everything this topology owns.
    Destroy(Paths),
    /// The live state of what the topology describes, and its drift.
    Show(ShowArgs),
    /// The desired-state graph as Graphviz DOT.
    Graph(Paths),
    /// Print the JSON Schema of the topology format (for editors; also in schemas/).
    Schema,
    /// Print the observed live state as JSON (for bug reports and test fixtures).
    #[command(hide = true)]
    Observe(Paths),
}

#[derive(Args, Debug)]
pub struct Paths {
    /// Topology files, or directories of *.toml files (merged as one topology).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Markdown,
}

#[derive(Args, Debug)]
pub struct PlanArgs {
    #[command(flatten)]
    pub paths: Paths,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Exit 2 when changes are pending, 0 when there are none (as Terraform).
    #[arg(long)]
    pub detailed_exitcode: bool,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    #[command(flatten)]
    pub paths: Paths,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub paths: Paths,
    /// Reconcile at least this often, whatever the events say (e.g. 30s, 500ms, 2m).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub resync: std::time::Duration,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, String> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| format!("`{s}` is not a duration like 30s, 500ms or 2m"))?;
    let d = match unit {
        "ms" => std::time::Duration::from_millis(n),
        "s" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_secs(n * 60),
        _ => return Err(format!("`{s}`: use ms, s or m")),
    };
    if d.is_zero() {
        return Err("the resync interval must be above zero".into());
    }
    Ok(d)
}

#[derive(Args, Debug)]
pub struct ShowArgs {
    #[command(flatten)]
    pub paths: Paths,
    #[arg(long, value_enum, default_value = "text")]
    pub format: Format,
    /// Exit 2 when anything is not ok (drift, missing, extra, pending, a
    /// conflict, a failed readiness probe), 1 when show itself failed.
    #[arg(long)]
    pub detailed_exitcode: bool,
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate(p) => validate::run(&p.paths),
        Command::Plan(a) => plan::run(&a),
        Command::Apply(a) => apply::run(&a.paths.paths),
        Command::Watch(a) => watch::run(&a),
        Command::Destroy(p) => destroy::run(&p.paths),
        Command::Show(a) => show::run(&a),
        Command::Graph(p) => graph::run(&p.paths),
        Command::Observe(p) => {
            let l = match load(&p.paths) {
                Ok(l) => l,
                Err(code) => return code,
            };
            match runtime().block_on(engine::observe(&l.topo)) {
                Ok(live) => {
                    println!(
                        "{}",
                        serde_json::to_string_pretty(&live.observed).expect("observed serializes")
                    );
                    ExitCode::SUCCESS
                }
                Err(e) => fail(e),
            }
        }
        Command::Schema => {
            print!("{}", netloom::spec::schema_json());
            ExitCode::SUCCESS
        }
    }
}

/// Files → model → graph. Diagnostics go to stderr; on error, exit code 1.
pub fn load(paths: &[PathBuf]) -> Result<Loaded, ExitCode> {
    match engine::load(paths) {
        Ok(l) => {
            eprint!("{}", l.warnings);
            Ok(l)
        }
        Err(e) => {
            eprint!("{e}");
            Err(ExitCode::from(1))
        }
    }
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

pub fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(1)
}
