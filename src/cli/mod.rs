//! Command-line interface: argument parsing and the shared load/observe steps.

mod apply;
mod destroy;
mod graph;
mod plan;
mod show;
mod validate;
mod watch;

use crate::backend::docker::DockerApi;
use crate::backend::netlink::{ContainerNet, Kernel};
use crate::diag::{SourceMap, render_all};
use crate::graph::DesiredGraph;
use crate::ledger::Ledger;
use crate::model::Topology;
use crate::state::Observed;
use clap::{Args, Parser, Subcommand, ValueEnum};
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
            match runtime().block_on(observe(&l.topo)) {
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
            print!("{}", crate::spec::schema_json());
            ExitCode::SUCCESS
        }
    }
}

/// A validated topology and its desired graph.
pub struct Loaded {
    pub sources: SourceMap,
    pub topo: Topology,
    pub graph: DesiredGraph,
}

/// Files → model → graph. Diagnostics go to stderr; on error, exit code 1.
pub fn load(paths: &[PathBuf]) -> Result<Loaded, ExitCode> {
    match load_quiet(paths) {
        Ok((l, warnings)) => {
            eprint!("{warnings}");
            Ok(l)
        }
        Err(diags) => {
            eprint!("{diags}");
            Err(ExitCode::from(1))
        }
    }
}

/// Files → model → graph, with the rendered warnings; or the rendered
/// diagnostics when there are errors. Prints nothing (watch decides when).
pub fn load_quiet(paths: &[PathBuf]) -> Result<(Loaded, String), String> {
    let t = std::time::Instant::now();
    let loaded = crate::spec::load_paths(paths);
    let (topo, warnings) =
        crate::model::build(&loaded).map_err(|diags| render_all(&diags, &loaded.sources))?;
    let graph = crate::graph::build(&topo).map_err(|diags| {
        let all: Vec<_> = warnings.iter().cloned().chain(diags).collect();
        render_all(&all, &loaded.sources)
    })?;
    let rendered = if warnings.is_empty() {
        String::new()
    } else {
        render_all(&warnings, &loaded.sources)
    };
    tracing::debug!(elapsed = ?t.elapsed(), objects = graph.graph.node_count(), "loaded");
    Ok((
        Loaded {
            sources: loaded.sources,
            topo,
            graph,
        },
        rendered,
    ))
}

pub fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("tokio runtime")
}

/// Connects to the topology's netns (if it exists) and observes it.
/// The live side of a topology: connections and what they observed.
pub struct Live {
    pub kernel: Option<Kernel>,
    pub docker: Option<DockerApi>,
    pub observed: Observed,
    /// The netns of each running container the topology wires directly.
    pub containers: std::collections::HashMap<String, ContainerNet>,
}

/// Containers whose netns netloom works in: declared with interfaces or
/// routes, named by a link, or wired by an earlier apply.
fn wired_containers(topo: &Topology, ledger: &Ledger) -> std::collections::BTreeSet<String> {
    let mut out: std::collections::BTreeSet<String> = topo
        .containers
        .values()
        .filter(|c| !c.interfaces.is_empty() || !c.routes.is_empty() || c.ready.is_some())
        .map(|c| c.name.clone())
        .collect();
    for l in &topo.links {
        out.insert(l.a.0.clone());
        out.insert(l.b.0.clone());
    }
    out.extend(ledger.wired.iter().cloned());
    out
}

/// Whether the topology has (or had) anything in Docker.
fn needs_docker(topo: &Topology, ledger: &Ledger) -> bool {
    !topo.networks.is_empty()
        || !topo.containers.is_empty()
        || ledger.docker
        || !ledger.attachments.is_empty()
}

/// Connects to the topology's netns (if it exists) and to Docker (if the
/// topology uses it) and observes both.
pub async fn observe(topo: &Topology) -> Result<Live, String> {
    let ledger = Ledger::load(&topo.name)
        .map_err(|e| format!("cannot read the ledger of topology {}: {e}", topo.name))?;
    if !ledger.is_empty() && ledger.netns != topo.netns && ledger.netns.is_some() {
        return Err(format!(
            "topology {} was applied to {} and now names {}; run `netloom destroy` with the old files first, or restore the old netns",
            topo.name,
            netns_label(&ledger.netns),
            netns_label(&topo.netns)
        ));
    }
    let with_docker = needs_docker(topo, &ledger);
    let kernel = Kernel::connect(topo.netns.as_deref())
        .await
        .map_err(|e| e.to_string())?;
    let mut observed = match &kernel {
        Some(k) => {
            let tables = topo.routes.iter().map(|r| r.table).collect();
            k.observe(ledger, &tables)
                .await
                .map_err(|e| e.to_string())?
        }
        None => Observed {
            netns_exists: false,
            ledger,
            ..Default::default()
        },
    };
    let mut docker = None;
    let mut containers = std::collections::HashMap::new();
    if with_docker {
        let api = DockerApi::connect().await.map_err(|e| e.to_string())?;
        let mut declared: std::collections::BTreeSet<String> =
            topo.containers.keys().cloned().collect();
        declared.extend(observed.ledger.wired.iter().cloned());
        let mut obs = api.observe(&declared).await.map_err(|e| e.to_string())?;
        if topo.networks.values().any(|n| !n.external) {
            // Subnets must not collide with the host's own routes.
            let host = match (&kernel, &topo.netns) {
                (Some(k), None) => k.clone(),
                _ => Kernel::connect(None)
                    .await
                    .map_err(|e| e.to_string())?
                    .expect("the host netns exists"),
            };
            obs.host_routes = host.main_routes().await.map_err(|e| e.to_string())?;
            obs.ipv6_disabled = std::fs::read_to_string("/proc/sys/net/ipv6/conf/all/disable_ipv6")
                .map(|v| v.trim() == "1")
                .unwrap_or(false);
        }
        // Inside each running wired container (a fresh netns after a restart).
        for name in wired_containers(topo, &observed.ledger) {
            let Some(c) = obs
                .containers
                .iter()
                .find(|c| c.name == name && c.state == "running" && c.pid > 0)
            else {
                continue;
            };
            // The container may stop between inspect and open: then it is pending.
            let Ok(net) = ContainerNet::open(&name, c.pid) else {
                continue;
            };
            let seen = net
                .kernel
                .observe_container()
                .await
                .map_err(|e| e.to_string())?;
            observed.containers.insert(name.clone(), seen);
            containers.insert(name, net);
        }
        mark_shared_netns(topo, &mut observed.containers, &containers);
        observed.docker = Some(obs);
        docker = Some(api);
    }
    Ok(Live {
        kernel,
        docker,
        observed,
        containers,
    })
}

/// Notes containers whose netns is not theirs alone. The host's
/// (`--network host`), or one two containers with wiring of their own
/// share (`--network container:X`), is a conflict (`shared_with`). A netns
/// shared with containers that only probe or were wired before is looked
/// after through one of them (`same_netns_as` on the others), so prune does
/// not see the wiring of one as another's leftovers.
fn mark_shared_netns(
    topo: &Topology,
    observed: &mut std::collections::BTreeMap<String, crate::state::ContainerNetObs>,
    nets: &std::collections::HashMap<String, ContainerNet>,
) {
    use std::os::unix::fs::MetadataExt;
    let id = |m: std::fs::Metadata| (m.dev(), m.ino());
    // The netns netloom runs in: the host's, where dockerd runs too.
    let host = std::fs::metadata("/proc/self/ns/net").ok().map(id);
    let mut wires: std::collections::BTreeSet<&str> = topo
        .containers
        .values()
        .filter(|c| !c.interfaces.is_empty() || !c.routes.is_empty())
        .map(|c| c.name.as_str())
        .collect();
    for l in &topo.links {
        wires.insert(&l.a.0);
        wires.insert(&l.b.0);
    }
    let mut groups: std::collections::BTreeMap<(u64, u64), Vec<&String>> = Default::default();
    for (name, c) in nets {
        if let Ok(m) = c.fd.metadata() {
            groups.entry(id(m)).or_default().push(name);
        }
    }
    for (this, mut members) in groups {
        members.sort();
        if Some(this) == host {
            for name in members {
                if let Some(o) = observed.get_mut(name.as_str()) {
                    o.shared_with = Some("the host (--network host)".to_string());
                }
            }
            continue;
        }
        let wired: Vec<&String> = members
            .iter()
            .copied()
            .filter(|n| wires.contains(n.as_str()))
            .collect();
        let keeper = wired.first().or(members.first()).copied();
        for name in &members {
            let Some(o) = observed.get_mut(name.as_str()) else {
                continue;
            };
            if wired.len() > 1 && wired.contains(name) {
                let other = wired.iter().find(|w| *w != name).expect("two or more");
                o.shared_with = Some(format!("container `{other}`"));
            } else if Some(*name) != keeper {
                o.same_netns_as = keeper.cloned();
            }
        }
    }
}

/// The readiness probes of running containers: (container, target, round
/// trip or the failure). Containers that are not running are skipped.
pub async fn probe_readiness(
    topo: &Topology,
    containers: &std::collections::HashMap<String, ContainerNet>,
    waiting: &std::collections::BTreeSet<String>,
) -> Vec<(String, String, Result<std::time::Duration, String>)> {
    let mut out = vec![];
    for c in topo.containers.values() {
        // Wiring that waits (a peer stopped) cannot answer yet: not a failure.
        if waiting.contains(&c.name)
            || c.ready
                .as_ref()
                .is_some_and(|r| waiting.contains(&r.ping.to_string()))
        {
            continue;
        }
        let (Some(ready), Some(net)) = (&c.ready, containers.get(&c.name)) else {
            continue;
        };
        let fd = match net.fd.try_clone() {
            Ok(fd) => fd,
            Err(e) => {
                out.push((c.name.clone(), ready.ping.to_string(), Err(e.to_string())));
                continue;
            }
        };
        let (dst, timeout, tries) = (
            ready.ping,
            std::time::Duration::from_millis(ready.timeout_ms),
            ready.retries,
        );
        let r =
            tokio::task::spawn_blocking(move || crate::netns::ping(&fd, dst, timeout, tries)).await;
        let r = match r {
            Ok(Ok(Some(rtt))) => Ok(rtt),
            Ok(Ok(None)) => Err(format!(
                "no reply after {tries} tries of {} ms",
                timeout.as_millis()
            )),
            // The kernel refuses echo requests to a broadcast address.
            Ok(Err(e)) if e.raw_os_error() == Some(13) => Err(format!(
                "{e} (a broadcast address? `ready.ping` takes one host's address)"
            )),
            Ok(Err(e)) => Err(e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        out.push((c.name.clone(), dst.to_string(), r));
    }
    out
}

/// Containers with pending wiring (at either end of it), and the addresses
/// on that wiring: probes from those containers or to those addresses wait.
pub fn waiting_containers(
    plan: &crate::plan::Plan,
    graph: &DesiredGraph,
) -> std::collections::BTreeSet<String> {
    use crate::state::{IfacePeer, Resource};
    let mut out = std::collections::BTreeSet::new();
    for p in &plan.pending {
        match graph.get(&p.key) {
            Some(Resource::Iface(i)) => {
                out.insert(i.container.clone());
                out.extend(i.addresses.iter().map(|a| a.addr().to_string()));
                if let IfacePeer::Container {
                    container,
                    addresses,
                    ..
                } = &i.peer
                {
                    out.insert(container.clone());
                    out.extend(addresses.iter().map(|a| a.addr().to_string()));
                }
            }
            Some(Resource::ContainerRoute(r)) => {
                out.insert(r.container.clone());
            }
            _ => {}
        }
    }
    out
}

/// Observes and plans, logging each phase.
pub async fn observe_and_plan(l: &Loaded) -> Result<(Live, crate::plan::Plan), String> {
    let t = std::time::Instant::now();
    let live = observe(&l.topo).await?;
    tracing::debug!(elapsed = ?t.elapsed(), links = live.observed.links.len(), routes = live.observed.routes.len(), "observed");
    let t = std::time::Instant::now();
    let d = crate::diff::diff(&l.topo.name, &l.graph, &live.observed);
    let plan = crate::plan::Plan::new(&l.topo.name, l.topo.netns.clone(), &l.graph, d);
    tracing::debug!(elapsed = ?t.elapsed(), changes = plan.changes.len(), "planned");
    Ok((live, plan))
}

pub fn netns_label(n: &Option<String>) -> String {
    match n {
        Some(n) => format!("netns {n}"),
        None => "the host netns".into(),
    }
}

pub fn fail(msg: impl std::fmt::Display) -> ExitCode {
    eprintln!("error: {msg}");
    ExitCode::from(1)
}
