//! `watch` as a controller: triggers (file edits, the backends' event
//! streams, a periodic resync, SIGHUP) → a debounce → one reconcile (re-read
//! the files, re-observe everything, converge) → an error policy that
//! decides the retry. Event streams may drop or repeat messages; the resync
//! is what guarantees convergence.

mod debounce;
mod files;
pub mod policy;
pub mod served;

pub use debounce::Debounce;

use super::{Converged, Loaded, Report};
use crate::backend::{Trigger, TriggerSource};
use crate::error::Error;
use crate::plan::Plan;
use policy::Next;
use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::mpsc::{UnboundedSender, unbounded_channel};
use tokio::task::JoinHandle;

/// Where watch writes what is not a log line: the diagnostics of a broken
/// edit, warnings, errors.
pub trait Sink {
    fn print(&mut self, text: &str);
}

/// A reconcile's converge, logged rather than printed. Readiness is logged
/// when it changes, not on every resync.
struct Logged<'a> {
    ready: &'a mut std::collections::BTreeSet<(String, String)>,
    seen: std::collections::BTreeSet<(String, String)>,
    tx: &'a UnboundedSender<Trigger>,
    marks: &'a mut usize,
}

impl Report for Logged<'_> {
    fn plan(&mut self, _: &Plan) -> bool {
        false
    }

    /// A daemon's log says what it changed, field by field, as it happens.
    fn applied(&mut self, c: &crate::diff::Change) {
        tracing::info!("applied {}", c.log_line());
    }

    fn ready(&mut self, c: &str, dst: &str, rtt: Duration) {
        let key = (c.to_string(), dst.to_string());
        self.seen.insert(key.clone());
        if !self.ready.insert(key) {
            return;
        }
        tracing::info!(
            "ready: {c} reaches {dst} ({:.1} ms)",
            rtt.as_secs_f64() * 1000.0
        );
    }

    fn observing(&mut self) {
        if self.tx.send(Trigger::Observed).is_ok() {
            *self.marks += 1;
        }
    }
}

/// Takes what was queued before a reconcile's last observation began (its
/// markers are all queued by the time it returns). After a good reconcile,
/// the kernel's and Docker's events among them are covered by that view
/// (the echo of watch's own apply, mostly) and dropped; anything else is
/// queued again. Events that came during or after it stay. Returns how many
/// were dropped.
fn drain_observed(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<Trigger>,
    tx: &UnboundedSender<Trigger>,
    marks: usize,
    covered: bool,
) -> usize {
    let (mut seen, mut dropped, mut keep) = (0, 0, vec![]);
    while seen < marks {
        match rx.try_recv() {
            Ok(Trigger::Observed) => seen += 1,
            Ok(Trigger::Netlink | Trigger::Docker | Trigger::Bgp) if covered => dropped += 1,
            Ok(t) => keep.push(t),
            Err(_) => break,
        }
    }
    for t in keep {
        let _ = tx.send(t);
    }
    dropped
}

/// The event streams running now, by source id.
#[derive(Default)]
struct Sources(HashMap<String, JoinHandle<()>>);

impl Sources {
    /// Keeps the sources still wanted and running, starts the new ones,
    /// stops the rest (a netns that was replaced, a container restarted).
    fn update(&mut self, wanted: Vec<TriggerSource>, tx: &UnboundedSender<Trigger>) {
        let ids: std::collections::HashSet<&str> = wanted.iter().map(|s| s.id.as_str()).collect();
        self.0.retain(|id, task| {
            let keep = ids.contains(id.as_str()) && !task.is_finished();
            if !keep {
                task.abort();
            }
            keep
        });
        for s in wanted {
            if !self.0.contains_key(&s.id)
                && let Some(task) = (s.start)(tx.clone())
            {
                self.0.insert(s.id, task);
            }
        }
    }

    fn stop(&mut self) {
        for t in self.0.values() {
            t.abort();
        }
        self.0.clear();
    }
}

/// How watch runs.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// Reconcile at least this often.
    pub resync: Duration,
    /// How long to wait for another process holding the topology.
    pub lock_wait: Duration,
}

/// Runs until SIGTERM or SIGINT (after the reconcile under way). Fails at
/// once if another process holds the topology (after `lock_wait`).
pub async fn run(
    paths: &[PathBuf],
    opts: Options,
    sink: &mut dyn Sink,
) -> crate::error::Result<()> {
    let resync = opts.resync;
    let (tx, mut rx) = unbounded_channel::<Trigger>();
    let _files = files::watch(paths, tx.clone())
        .map_err(|e| Error::State(format!("cannot watch the topology files: {e}")))?;
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
        signal(SignalKind::hangup()),
    ) else {
        return Err(Error::State("cannot install signal handlers".into()));
    };
    let mut resync_timer = tokio::time::interval(resync);
    resync_timer.tick().await; // the first tick is immediate; the start trigger covers it
    let _ = tx.send(Trigger::Start);
    let debounce = Debounce::default();
    let mut sources = Sources::default();
    let mut failures = 0u32;
    let mut retry_at: Option<tokio::time::Instant> = None;
    let mut st = State::default();
    tracing::info!(resync = ?resync, "watching {}", paths.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "));

    loop {
        let first = tokio::select! {
            t = rx.recv() => t.unwrap_or(Trigger::Resync),
            _ = resync_timer.tick() => Trigger::Resync,
            _ = sleep_until(retry_at) => Trigger::Retry,
            _ = hup.recv() => Trigger::Hangup,
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        if first == Trigger::Observed {
            continue;
        }
        let triggers = tokio::select! {
            t = debounce.collect(first, &mut rx) => t,
            _ = term.recv() => break,
            _ = int.recv() => break,
        };
        retry_at = None;
        let t = Instant::now();
        let cause = causes(first, &triggers);
        let mut marks = 0;
        let result = reconcile(paths, &mut st, opts.lock_wait, sink, (&tx, &mut marks)).await;
        let took = t.elapsed();
        let echoes = drain_observed(&mut rx, &tx, marks, result.is_ok());
        if echoes > 0 {
            tracing::debug!("{echoes} event(s) already seen by the last observation");
        }
        match result {
            Ok(c) => {
                failures = 0;
                st.error.clear();
                let serving = match &st.broken {
                    Some(_) => " serving=last-good (the files have errors; see above)",
                    None => "",
                };
                // Events that changed nothing netloom manages (the echo of
                // its own apply: carrier coming up, addresses settling) make
                // a reconcile that is logged only at debug level.
                let echo = c.changes == 0
                    && Some(c.pending) == st.pending
                    && triggers
                        .keys()
                        .all(|t| matches!(t, Trigger::Netlink | Trigger::Docker | Trigger::Bgp));
                let line = format!(
                    "reconcile trigger={cause} changes={} pending={} duration={took:.0?} result=ok revision={}{serving}",
                    c.changes,
                    c.pending,
                    st.revision()
                );
                if echo {
                    tracing::debug!("{line}");
                } else {
                    tracing::info!("{line}");
                }
                st.pending = Some(c.pending);
                sources.update(c.triggers, &tx);
            }
            // The first lock is taken at once or never: two watchers must not both run.
            Err(e @ Error::Locked { .. }) if !st.ever_locked => return Err(e),
            Err(e) => {
                failures += 1;
                match policy::after_error(&e, failures) {
                    Next::AwaitChange => {
                        tracing::warn!(
                            "reconcile trigger={cause} duration={took:.0?} result=invalid-files (nothing applied; waiting for an edit)"
                        );
                    }
                    Next::Retry(delay) => {
                        retry_at = Some(tokio::time::Instant::now() + delay);
                        tracing::warn!(
                            "reconcile trigger={cause} duration={took:.0?} result=error retry_in={delay:.0?}"
                        );
                        let text = format!(
                            "error: {}watch tries again (and on the next event)\n",
                            e.without_advice()
                        );
                        if text != st.error {
                            sink.print(&text);
                            st.error = text;
                        }
                    }
                }
            }
        }
    }
    tracing::info!("stopping");
    sources.stop();
    if let Some(lock) = &st.lock {
        served::clear(&lock.topology);
    }
    Ok(())
}

/// What watch keeps between reconciles.
#[derive(Default)]
struct State {
    /// The last files that loaded: what watch serves while the files are broken.
    good: Option<Loaded>,
    /// The files' errors, rendered, while they have any.
    broken: Option<String>,
    /// Held for watch's life (re-taken if an edit renames the topology).
    lock: Option<crate::lock::TopologyLock>,
    warnings: String,
    /// Probes that answered last time (logged again only after a change).
    ready: std::collections::BTreeSet<(String, String)>,
    /// The last error printed, so a retry that fails the same way is quiet.
    error: String,
    /// Pending objects after the last good reconcile.
    pending: Option<usize>,
    /// A lock was taken once: a later lock failure (a rename onto a held
    /// topology) is retried, not fatal.
    ever_locked: bool,
}

impl State {
    fn revision(&self) -> String {
        self.good.as_ref().map(Loaded::revision).unwrap_or_default()
    }
}

/// `Hangup,File,Netlink×3`: the trigger that started the reconcile first,
/// then what arrived while it waited for quiet.
fn causes(first: Trigger, triggers: &BTreeMap<Trigger, usize>) -> String {
    let started = triggers.get_key_value(&first);
    let parts: Vec<String> = started
        .into_iter()
        .chain(triggers.iter().filter(|(k, _)| **k != first))
        .map(|(k, n)| {
            if *n > 1 {
                format!("{k:?}×{n}")
            } else {
                format!("{k:?}")
            }
        })
        .collect();
    parts.join(",")
}

async fn sleep_until(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Loads and converges under the topology's lock. A bad edit is reported
/// once, and the last good files keep being served (drift is still
/// repaired); before any good load, nothing is applied.
async fn reconcile(
    paths: &[PathBuf],
    st: &mut State,
    lock_wait: Duration,
    sink: &mut dyn Sink,
    (tx, marks): (&UnboundedSender<Trigger>, &mut usize),
) -> crate::error::Result<Converged> {
    match super::load(paths) {
        Ok(l) => {
            if l.warnings != st.warnings {
                sink.print(&l.warnings);
                st.warnings = l.warnings.clone();
            }
            st.broken = None;
            st.good = Some(l);
        }
        Err(e @ Error::Invalid(_)) => {
            let text = e.to_string();
            if st.broken.as_ref() != Some(&text) {
                sink.print(&text);
            }
            st.broken = Some(text);
            if st.good.is_none() {
                return Err(e);
            }
        }
        Err(e) => return Err(e),
    }
    let l = st.good.as_ref().expect("loaded above");
    if st.lock.as_ref().is_none_or(|k| k.topology != l.topo.name) {
        // The new name first: if it is held, watch keeps the old one and
        // retries (only a watch that never held a lock gives up).
        let lock = crate::lock::acquire_as(&l.topo.name, crate::lock::Role::Watch, lock_wait)?;
        if let Some(old) = st.lock.replace(lock) {
            served::clear(&old.topology);
        }
        st.ever_locked = true;
    }
    served::record(l, st.broken.as_deref());
    let mut report = Logged {
        ready: &mut st.ready,
        seen: Default::default(),
        tx,
        marks,
    };
    let result = super::converge(l, &mut report).await;
    // A probe that did not answer this time is logged again when it does.
    let seen = std::mem::take(&mut report.seen);
    if result.is_ok() {
        st.ready = seen;
    } else {
        st.ready.retain(|k| seen.contains(k));
    }
    result
}
