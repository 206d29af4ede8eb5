//! Command-line interface: parses arguments, calls the engine, renders its
//! outcomes and maps them to exit codes. Private to the binary.

mod apply;
mod destroy;
mod doctor;
mod graph;
mod plan;
mod saved;
mod show;
mod tty;
mod validate;
mod watch;

use clap::{Args, Parser, Subcommand, ValueEnum};
use netloom::engine::{self, Loaded};
use netloom::error::Error;
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
    Validate(ValidateArgs),
    /// Show the ordered changes apply would make; changes nothing.
    Plan(PlanArgs),
    /// Make the changes, then observe again to verify.
    Apply(ApplyArgs),
    /// Apply, then keep applying on file edits, Docker and netlink events, and a periodic resync.
    Watch(WatchArgs),
    /// Remove everything this topology owns.
    Destroy(DestroyArgs),
    /// The live state of what the topology describes, and its drift.
    Show(ShowArgs),
    /// The desired-state graph as Graphviz DOT (--view lab: the lab picture).
    Graph(GraphArgs),
    /// Write a netloom topology from another tool's file (stdout, or -o FILE);
    /// what could not be converted is listed on stderr and in the output.
    #[command(subcommand)]
    Convert(ConvertFrom),
    /// Check the host for what would stop or break the topology: forwarding,
    /// Docker (IPv6, masquerade, address pools), other network managers,
    /// binaries, link kinds. Exit 0 all ok, 2 warnings, 1 errors.
    Doctor(DoctorArgs),
    /// Print a JSON Schema (also in schemas/): of the topology format (for
    /// editors), or of plan, show or saved-plan JSON.
    Schema {
        #[arg(value_enum, default_value = "topology")]
        of: SchemaOf,
    },
    /// Print a shell completion script: `netloom completions bash > /etc/bash_completion.d/netloom`.
    Completions {
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff): `netloom man > /usr/local/share/man/man1/netloom.1`.
    Man,
    /// Print the observed live state as JSON (for bug reports and test fixtures).
    #[command(hide = true)]
    Observe(Paths),
}

#[derive(Subcommand, Debug)]
pub enum ConvertFrom {
    /// A containerlab topology (FILE.clab.yml): linux and bridge nodes,
    /// links, `exec:` addresses, routes, link state and sysctls, and the
    /// management network.
    Clab {
        #[arg(value_name = "FILE")]
        file: PathBuf,
        /// Write the topology here instead of stdout.
        #[arg(short, long, value_name = "OUT")]
        output: Option<PathBuf>,
    },
}

#[derive(Args, Debug)]
pub struct Paths {
    /// Topology files, or directories of *.toml files (merged as one topology).
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
}

#[derive(Args, Debug)]
pub struct GraphArgs {
    #[command(flatten)]
    pub paths: Paths,
    /// `deps`: what must exist before what; `lab`: containers, bridges,
    /// Docker networks and the netns, wired by veths, links and attachments
    /// with their addresses.
    #[arg(long, value_enum, default_value = "deps")]
    pub view: GraphView,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum SchemaOf {
    /// Topology files.
    Topology,
    /// `plan --format json`.
    Plan,
    /// `show --format json`.
    Show,
    /// A plan file saved by `plan --out`.
    SavedPlan,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum GraphView {
    Deps,
    Lab,
}

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// Topology files or directories; without them, the host alone.
    #[arg(value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    /// `json`: every finding as JSON on stdout.
    #[arg(long, value_enum, default_value = "text")]
    pub format: DiagFormat,
    /// Read NetworkManager, systemd-networkd, netplan and Docker
    /// configuration under DIR instead of / (a host image, a chroot).
    #[arg(long, value_name = "DIR", default_value = "/")]
    pub config_root: PathBuf,
}

#[derive(Args, Debug)]
pub struct ValidateArgs {
    #[command(flatten)]
    pub paths: Paths,
    /// `json`: the verdict and every diagnostic as JSON on stdout.
    #[arg(long, value_enum, default_value = "text")]
    pub format: DiagFormat,
}

#[derive(Clone, Copy, Debug, ValueEnum, PartialEq, Eq)]
pub enum DiagFormat {
    Text,
    Json,
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
    /// Also save the plan to FILE (Terraform's `-out FILE` works too):
    /// `netloom apply FILE` makes exactly those changes, or refuses if the
    /// files or the live state changed since.
    #[arg(long, value_name = "FILE")]
    pub out: Option<PathBuf>,
    /// Plan what `destroy` would remove (with --out, save it for `apply FILE`).
    #[arg(long)]
    pub destroy: bool,
}

#[derive(Args, Debug)]
pub struct ApplyArgs {
    /// Topology files or directories, or one plan file saved by `plan --out`.
    #[arg(required = true, value_name = "PATH|PLANFILE")]
    pub paths: Vec<PathBuf>,
    #[command(flatten)]
    pub lock: LockArgs,
    /// On a failed step or verification, keep what was changed instead of
    /// putting it back.
    #[arg(long)]
    pub no_rollback: bool,
}

#[derive(Args, Debug)]
pub struct DestroyArgs {
    #[command(flatten)]
    pub paths: Paths,
    #[command(flatten)]
    pub lock: LockArgs,
}

#[derive(Args, Debug)]
pub struct LockArgs {
    /// Wait this long for another netloom holding the topology (an apply or
    /// a watch) before giving up, e.g. 30s; 0 fails at once.
    #[arg(long, value_name = "DURATION", default_value = "0s", value_parser = parse_wait)]
    pub lock_timeout: std::time::Duration,
}

#[derive(Args, Debug)]
pub struct WatchArgs {
    #[command(flatten)]
    pub paths: Paths,
    /// Reconcile at least this often, whatever the events say (e.g. 30s, 500ms, 2m).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    pub resync: std::time::Duration,
    #[command(flatten)]
    pub lock: LockArgs,
}

fn parse_duration(s: &str) -> Result<std::time::Duration, Error> {
    let d = parse_wait(s)?;
    if d.is_zero() {
        return Err(Error::Invalid(
            "the resync interval must be above zero".into(),
        ));
    }
    Ok(d)
}

/// `30s`, `500ms`, `2m`, or `0`.
fn parse_wait(s: &str) -> Result<std::time::Duration, Error> {
    let (num, unit) = s
        .find(|c: char| !c.is_ascii_digit())
        .map_or((s, "s"), |i| s.split_at(i));
    let n: u64 = num
        .parse()
        .map_err(|_| Error::Invalid(format!("`{s}` is not a duration like 30s, 500ms or 2m")))?;
    let d = match unit {
        "ms" => std::time::Duration::from_millis(n),
        "s" => std::time::Duration::from_secs(n),
        "m" => std::time::Duration::from_secs(n * 60),
        _ => return Err(Error::Invalid(format!("`{s}`: use ms, s or m"))),
    };
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

/// Terraform's single-dash spellings (`plan -out FILE`, `-out=FILE`,
/// `-destroy`, `-detailed-exitcode`) as their `--` forms.
pub fn terraform_spelling(
    args: impl Iterator<Item = std::ffi::OsString>,
) -> Vec<std::ffi::OsString> {
    args.map(|a| {
        let Some(s) = a.to_str() else { return a };
        for flag in ["-out", "-destroy", "-detailed-exitcode"] {
            if s == flag || (flag == "-out" && s.starts_with("-out=")) {
                return format!("-{s}").into();
            }
        }
        a
    })
    .collect()
}

pub fn run(cli: Cli) -> ExitCode {
    match cli.command {
        Command::Validate(a) => validate::run(&a.paths.paths, a.format),
        Command::Plan(a) => plan::run(&a),
        Command::Apply(a) => apply::run(&a.paths, a.lock.lock_timeout, !a.no_rollback),
        Command::Watch(a) => watch::run(&a),
        Command::Destroy(a) => destroy::run(&a.paths.paths, a.lock.lock_timeout),
        Command::Show(a) => show::run(&a),
        Command::Graph(a) => graph::run(&a.paths.paths, a.view),
        Command::Doctor(a) => doctor::run(&a),
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
        Command::Convert(ConvertFrom::Clab { file, output }) => convert_clab(&file, output),
        Command::Schema { of } => {
            let name = of
                .to_possible_value()
                .expect("a value")
                .get_name()
                .to_string();
            print!(
                "{}",
                netloom::schemas::named(&name).expect("every SchemaOf has a schema")
            );
            ExitCode::SUCCESS
        }
        Command::Completions { shell } => {
            use clap::CommandFactory;
            let mut cmd = Cli::command();
            clap_complete::generate(shell, &mut cmd, "netloom", &mut std::io::stdout());
            ExitCode::SUCCESS
        }
        Command::Man => {
            use clap::CommandFactory;
            let mut out = vec![];
            if let Err(e) = clap_mangen::Man::new(Cli::command()).render(&mut out) {
                return fail(Error::io("render the manual page", e));
            }
            use std::io::Write;
            // A closed stdout (`| head`) is no reason to panic.
            let _ = std::io::stdout().write_all(&out);
            ExitCode::SUCCESS
        }
    }
}

fn convert_clab(file: &std::path::Path, output: Option<PathBuf>) -> ExitCode {
    let c = match netloom::convert::containerlab(file) {
        Ok(c) => c,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(1);
        }
    };
    match &output {
        Some(out) => {
            if let Err(e) = std::fs::write(out, &c.toml) {
                return fail(Error::io(format!("write {}", out.display()), e));
            }
        }
        None => print!("{}", c.toml),
    }
    eprintln!(
        "converted {} container(s) from {}{}",
        c.containers.len(),
        file.display(),
        output
            .map(|o| format!(" into {}", o.display()))
            .unwrap_or_default()
    );
    if !c.skipped.is_empty() {
        eprintln!("not converted ({}):", c.skipped.len());
        for s in &c.skipped {
            eprintln!("  - {s}");
        }
    }
    ExitCode::SUCCESS
}

/// Diagnostics as `--format json` prints them, on stdout.
pub fn print_diagnostics_json(
    diags: &[netloom::diag::Diagnostic],
    sources: &netloom::diag::SourceMap,
    topology: Option<&str>,
) {
    let mut v = netloom::diag::to_json(diags, sources);
    v["format_version"] = serde_json::json!(1);
    v["netloom_version"] = serde_json::json!(env!("CARGO_PKG_VERSION"));
    v["topology"] = serde_json::json!(topology);
    println!(
        "{}",
        serde_json::to_string_pretty(&v).expect("diagnostics serialize")
    );
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

/// Prints the error (a closed stderr is no reason to panic) and gives exit 1.
pub fn fail(msg: impl std::fmt::Display) -> ExitCode {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "error: {msg}");
    // Most failures without root are that: say so instead of leaving an EPERM.
    if !nix::unistd::geteuid().is_root() {
        let _ = writeln!(
            std::io::stderr(),
            "  help: netloom is not running as root; it needs root (or CAP_NET_ADMIN and CAP_SYS_ADMIN) to read and change network namespaces, netlink and /run/netloom: run it with sudo"
        );
    }
    ExitCode::from(1)
}
