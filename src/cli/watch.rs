//! `netloom watch`: a level-triggered loop. Every trigger — a file edit, a
//! Docker event, a netlink event, the periodic resync, SIGHUP — only says
//! "reconcile now"; each reconcile re-reads the files and re-observes
//! everything. Event streams may drop or repeat messages; the resync is what
//! guarantees convergence.

use super::WatchArgs;
use crate::netns;
use futures::StreamExt;
use notify::{RecursiveMode, Watcher};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::{Duration, Instant};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};

/// Quiet time that ends a burst of triggers, and the longest a burst may
/// postpone a reconcile.
const QUIET: Duration = Duration::from_millis(60);
const MAX_DELAY: Duration = Duration::from_millis(500);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Trigger {
    Start,
    File,
    Docker,
    Netlink,
    Resync,
    Hangup,
    Retry,
}

pub fn run(a: &WatchArgs) -> ExitCode {
    super::runtime().block_on(watch(a))
}

async fn watch(a: &WatchArgs) -> ExitCode {
    let (tx, mut rx) = unbounded_channel::<Trigger>();
    let _files = match watch_files(&a.paths.paths, tx.clone()) {
        Ok(w) => w,
        Err(e) => return super::fail(format!("cannot watch the topology files: {e}")),
    };
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        return super::fail("cannot install signal handlers");
    };
    let mut resync = tokio::time::interval(a.resync);
    resync.tick().await; // the first tick is immediate; the start trigger covers it
    let _ = tx.send(Trigger::Start);

    let mut netlink: Option<(u64, tokio::task::JoinHandle<()>)> = None;
    // Subscriptions inside wired containers, by netns inode (a restart makes a new one).
    let mut in_containers: std::collections::HashMap<u64, tokio::task::JoinHandle<()>> =
        Default::default();
    let mut docker_events: Option<tokio::task::JoinHandle<()>> = None;
    let interest: Interest = Default::default();
    let mut failures = 0u32;
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut warnings = String::new();
    let mut last_errors = String::new();
    tracing::info!(resync = ?a.resync, "watching {}", a.paths.paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));

    loop {
        let first = tokio::select! {
            t = rx.recv() => t.unwrap_or(Trigger::Resync),
            _ = resync.tick() => Trigger::Resync,
            _ = sleep_until(retry_at) => Trigger::Retry,
            _ = hup.recv() => Trigger::Hangup,
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        // Collapse a burst into one reconcile, without letting it starve.
        let mut triggers: BTreeMap<Trigger, usize> = BTreeMap::from([(first, 1)]);
        let started = Instant::now();
        let mut stop = false;
        while started.elapsed() < MAX_DELAY {
            tokio::select! {
                Some(t) = rx.recv() => *triggers.entry(t).or_default() += 1,
                _ = tokio::time::sleep(QUIET) => break,
                _ = term.recv() => { stop = true; break }
                _ = int.recv() => { stop = true; break }
            }
        }
        if stop {
            break;
        }
        retry_at = None;

        let t = Instant::now();
        let cause: Vec<String> = triggers
            .iter()
            .map(|(k, n)| {
                format!(
                    "{k:?}{}",
                    if *n > 1 {
                        format!("×{n}")
                    } else {
                        String::new()
                    }
                )
            })
            .collect();
        let result = reconcile(&a.paths.paths, &mut warnings).await;
        let took = t.elapsed();
        match &result {
            Ok((l, c)) => {
                failures = 0;
                last_errors.clear();
                tracing::info!(
                    "reconcile trigger={} changes={} pending={} duration={took:.0?} result=ok",
                    cause.join(","),
                    c.changes,
                    c.pending
                );
                // Subscribe to what the topology lives on, once it exists.
                let ns = l.topo.netns.clone();
                let id = netns_id(ns.as_deref());
                if id.is_some()
                    && netlink
                        .as_ref()
                        .is_none_or(|(old, task)| Some(*old) != id || task.is_finished())
                {
                    if let Some((_, task)) = netlink.take() {
                        task.abort();
                    }
                    let fd = ns.as_deref().and_then(|n| netns::open(n).ok());
                    if ns.is_none() || fd.is_some() {
                        netlink = subscribe_netlink(fd.as_ref(), tx.clone())
                            .map(|task| (id.unwrap_or(0), task));
                    }
                }
                use std::os::unix::fs::MetadataExt;
                let current: std::collections::HashMap<u64, &std::fs::File> = c
                    .container_netns
                    .iter()
                    .filter_map(|f| Some((f.metadata().ok()?.ino(), f)))
                    .collect();
                in_containers.retain(|ino, task| {
                    let keep = current.contains_key(ino) && !task.is_finished();
                    if !keep {
                        task.abort();
                    }
                    keep
                });
                for (ino, f) in current {
                    if !in_containers.contains_key(&ino)
                        && let Some(task) = subscribe_netlink(Some(f), tx.clone())
                    {
                        in_containers.insert(ino, task);
                    }
                }
                // Docker events matter only for the containers and networks named here.
                let names: std::collections::HashSet<String> = l
                    .topo
                    .containers
                    .keys()
                    .chain(l.topo.networks.keys())
                    .cloned()
                    .collect();
                *interest.lock().expect("interest lock") = names;
                let wants_docker = !l.topo.networks.is_empty() || !l.topo.containers.is_empty();
                if wants_docker && docker_events.is_none() {
                    docker_events = Some(tokio::spawn(docker_event_loop(
                        tx.clone(),
                        interest.clone(),
                    )));
                }
            }
            Err(Failed::Files(diags)) => {
                // Say it once per distinct content; only an edit can fix it,
                // so there is no retry timer.
                if *diags != last_errors {
                    eprint!("{diags}");
                    last_errors = diags.clone();
                }
                tracing::warn!(
                    "reconcile trigger={} duration={took:.0?} result=invalid-files (nothing applied; waiting for an edit)",
                    cause.join(",")
                );
            }
            Err(Failed::Live(e)) => {
                failures += 1;
                let delay = Duration::from_secs(1u64 << failures.min(5)).min(BACKOFF_MAX);
                retry_at = Some(tokio::time::Instant::now() + delay);
                tracing::warn!(
                    "reconcile trigger={} duration={took:.0?} result=error retry_in={delay:.0?}",
                    cause.join(",")
                );
                eprintln!("error: {e}");
            }
        }
    }
    tracing::info!("stopping");
    if let Some((_, t)) = netlink {
        t.abort();
    }
    for t in in_containers.values() {
        t.abort();
    }
    if let Some(t) = docker_events {
        t.abort();
    }
    ExitCode::SUCCESS
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Why a reconcile did not converge.
enum Failed {
    /// The files have errors (rendered): nothing is applied until an edit fixes them.
    Files(String),
    /// Anything live: retried with backoff.
    Live(String),
}

/// Loads and converges under the topology's lock. A bad edit is reported
/// and nothing is applied: the last good state stays in place.
async fn reconcile(
    paths: &[PathBuf],
    warnings: &mut String,
) -> Result<(super::Loaded, super::apply::Converged), Failed> {
    let (l, w) = super::load_quiet(paths).map_err(Failed::Files)?;
    if w != *warnings {
        eprint!("{w}");
        *warnings = w;
    }
    let _lock = crate::lock::acquire(&l.topo.name).map_err(Failed::Live)?;
    let c = super::apply::converge(&l, false)
        .await
        .map_err(Failed::Live)?;
    Ok((l, c))
}

/// Watches the directories (editors replace files by rename, which a watch
/// on the file itself would miss).
fn watch_files(
    paths: &[PathBuf],
    tx: UnboundedSender<Trigger>,
) -> notify::Result<notify::RecommendedWatcher> {
    let wanted: Vec<PathBuf> = paths
        .iter()
        .map(|p| std::fs::canonicalize(p).unwrap_or_else(|_| p.clone()))
        .collect();
    let dirs: Vec<PathBuf> = wanted
        .iter()
        .map(|p| {
            if p.is_dir() {
                p.clone()
            } else {
                p.parent().unwrap_or(Path::new(".")).to_path_buf()
            }
        })
        .collect();
    let relevant = wanted.clone();
    let mut w = notify::recommended_watcher(move |ev: notify::Result<notify::Event>| {
        let Ok(ev) = ev else { return };
        if matches!(ev.kind, notify::EventKind::Access(_)) {
            return;
        }
        let hit = ev.paths.iter().any(|p| {
            relevant.iter().any(|w| {
                p == w
                    || (w.is_dir()
                        && p.parent() == Some(w.as_path())
                        && p.extension().is_some_and(|x| x == "toml"))
            })
        });
        if hit {
            let _ = tx.send(Trigger::File);
        }
    })?;
    for d in dirs {
        w.watch(&d, RecursiveMode::NonRecursive)?;
    }
    Ok(w)
}

/// The inode of the topology's netns: a new one means a new namespace.
fn netns_id(ns: Option<&str>) -> Option<u64> {
    use std::os::unix::fs::MetadataExt;
    match ns {
        Some(n) => std::fs::metadata(netns::path(n)).ok().map(|m| m.ino()),
        None => Some(0),
    }
}

/// Link, address, route and rule notifications from a netns (`None`: ours).
fn subscribe_netlink(
    fd: Option<&std::fs::File>,
    tx: UnboundedSender<Trigger>,
) -> Option<tokio::task::JoinHandle<()>> {
    use rtnetlink::MulticastGroup as G;
    let rt = tokio::runtime::Handle::current();
    let groups = [
        G::Link,
        G::Ipv4Ifaddr,
        G::Ipv6Ifaddr,
        G::Ipv4Route,
        G::Ipv6Route,
        G::Ipv4Rule,
        G::Ipv6Rule,
    ];
    let made = netns::run_in(fd, move || {
        let _guard = rt.enter();
        rtnetlink::new_multicast_connection(&groups)
    });
    let (conn, _handle, mut messages) = match made {
        Ok(Ok(x)) => x,
        Ok(Err(e)) | Err(e) => {
            tracing::warn!(
                "cannot subscribe to netlink events: {e}; relying on the periodic resync"
            );
            return None;
        }
    };
    Some(tokio::spawn(async move {
        let conn = tokio::spawn(conn);
        while let Some((msg, _)) = messages.next().await {
            if matters(&msg) {
                let _ = tx.send(Trigger::Netlink);
            }
        }
        // The stream ended (the socket overran, or the netns went away):
        // re-observe, and the next reconcile subscribes again.
        conn.abort();
        let _ = tx.send(Trigger::Resync);
    }))
}

/// Whether a notification can be drift netloom manages. New links make the
/// kernel announce thousands of IPv6 link-local addresses (as duplicate
/// detection finishes) and the routes it derives from addresses: bursts that
/// would only hold real edits back.
fn matters(
    msg: &rtnetlink::packet_core::NetlinkMessage<rtnetlink::packet_route::RouteNetlinkMessage>,
) -> bool {
    use rtnetlink::packet_core::NetlinkPayload;
    use rtnetlink::packet_route::address::AddressAttribute;
    use rtnetlink::packet_route::route::RouteProtocol;
    const LOCAL_TABLE: u8 = 255; // the kernel's own: addresses' local routes
    use rtnetlink::packet_route::RouteNetlinkMessage as M;
    let NetlinkPayload::InnerMessage(m) = &msg.payload else {
        return true;
    };
    match m {
        M::NewAddress(a) | M::DelAddress(a) => !a.attributes.iter().any(|x| {
            matches!(x, AddressAttribute::Address(std::net::IpAddr::V6(v6)) if v6.segments()[0] & 0xffc0 == 0xfe80)
        }),
        M::NewRoute(r) | M::DelRoute(r) => {
            r.header.protocol != RouteProtocol::Kernel && r.header.table != LOCAL_TABLE
        }
        _ => true,
    }
}

/// Docker container and network events, reconnecting while dockerd is away.
/// Names of the containers and networks the topology declares.
type Interest = std::sync::Arc<std::sync::Mutex<std::collections::HashSet<String>>>;

async fn docker_event_loop(tx: UnboundedSender<Trigger>, interest: Interest) {
    use bollard::query_parameters::EventsOptionsBuilder;
    let mut delay = Duration::from_millis(500);
    loop {
        if let Ok(api) = crate::backend::docker::DockerApi::connect().await {
            delay = Duration::from_millis(500);
            let _ = tx.send(Trigger::Docker); // anything may have changed while away
            let filters = std::collections::HashMap::from([("type", vec!["container", "network"])]);
            let mut events = api.client().events(Some(
                EventsOptionsBuilder::default().filters(&filters).build(),
            ));
            while let Some(ev) = events.next().await {
                match ev {
                    Ok(ev) => {
                        let action = ev.action.unwrap_or_default();
                        // Container events name the container, network events the network.
                        let name = ev
                            .actor
                            .and_then(|a| a.attributes)
                            .and_then(|mut attrs| attrs.remove("name"))
                            .unwrap_or_default();
                        let ours = interest.lock().expect("interest lock").contains(&name);
                        if ours
                            && ["start", "die", "destroy", "connect", "disconnect", "create"]
                                .iter()
                                .any(|a| action.starts_with(a))
                        {
                            let _ = tx.send(Trigger::Docker);
                        }
                    }
                    Err(_) => break,
                }
            }
            tracing::warn!("lost the Docker event stream; reconnecting");
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(10));
    }
}
