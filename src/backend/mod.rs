//! Backends: the live side. Each observes its part of the world, applies
//! the changes of its resource kinds in its own lane, and tells watch what
//! to listen to. The executor, destroy and watch know them only through
//! the `Backend` trait; a new backend is one folder here plus its entry in
//! `Registry::connect`.

pub mod bgp;
pub mod cni;
pub mod docker;
pub mod kernel;
pub mod nft;
pub mod wiring;

use crate::diff::Change;
use crate::error::{Error, Result};
use crate::model::Topology;
use crate::observed::Observed;
use crate::plan::Plan;
use crate::resource::BackendId;
use futures::StreamExt;
use futures::future::BoxFuture;
use std::collections::{BTreeSet, HashMap};
use tokio::sync::mpsc::UnboundedSender;
use tokio::task::JoinHandle;

pub use kernel::Index;
pub use nft::probe as nft_probe;
pub use nft::rules_match as nft_rules_match;

/// The ifindexes a step created, by interface name (in the topology's netns).
pub type Created = Vec<(String, u32)>;

/// One step's name and outcome.
pub type StepResult = (String, Result<Created>);

/// How a backend runs the changes of one stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// Up to this many requests in flight; every change runs.
    Concurrent(usize),
    /// One at a time, stopping at the first failure.
    Serial,
}

/// What one stage's changes may read while they run.
pub struct ApplyCx<'a> {
    pub topology: &'a str,
    /// The ifalias netloom leaves on what it makes.
    pub mark: &'a str,
    /// Interface name → ifindex in the topology's netns, as of this stage.
    pub idx: &'a Index,
    pub observed: &'a Observed,
    /// Where a backend says that a step succeeded, the moment it does
    /// (watch logs and the progress bar follow it, not the stage's end).
    pub finished: Option<UnboundedSender<String>>,
}

impl ApplyCx<'_> {
    /// Reports a step done; a result that is an error reports nothing.
    pub fn finished<T>(&self, step: &str, r: &Result<T>) {
        if let (Some(tx), Ok(_)) = (&self.finished, r) {
            let _ = tx.send(step.to_string());
        }
    }
}

/// Why watch reconciles. Triggers only say "now"; each reconcile re-reads
/// everything.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Trigger {
    Start,
    File,
    Docker,
    Netlink,
    /// gobgpd: a session changed state, a best path changed, or it went away.
    Bgp,
    Resync,
    Hangup,
    Retry,
    /// watch's own marker, queued right before a reconcile observes the
    /// live state: state events queued before it are covered by that view.
    Observed,
}

/// An event stream watch should have running, under a stable id: the
/// controller starts sources it does not run yet and stops those no
/// reconcile asks for any more (a netns that was replaced, say).
pub struct TriggerSource {
    pub id: String,
    pub start: Box<dyn FnOnce(UnboundedSender<Trigger>) -> Option<JoinHandle<()>> + Send>,
}

/// A readiness probe's outcome: (container, target, round trip or why not).
pub type Probe = (String, String, Result<std::time::Duration>);

/// What destroy can remove in one piece (a netns netloom made).
pub enum Whole {
    /// Nothing of the kind here.
    No,
    /// It can go whole: `what` names it for the report.
    Yes { what: String },
    /// It stays, and why (someone else's objects are in it).
    Kept { what: String, why: String },
}

pub trait Backend: Send + Sync {
    fn id(&self) -> BackendId;

    fn lane(&self) -> Lane;

    /// Reads this backend's part of the live state into `into` (backends
    /// observe in registry order; a later one may read what an earlier one
    /// found, as wiring reads Docker's containers).
    fn observe<'a>(
        &'a mut self,
        topo: &'a Topology,
        into: &'a mut Observed,
    ) -> BoxFuture<'a, Result<()>>;

    /// Work before the first stage (creating the topology's netns); returns
    /// the steps it did.
    fn prepare<'a>(&'a mut self, _plan: &'a Plan) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(async { Ok(vec![]) })
    }

    /// Applies one change of this backend's kinds.
    fn apply<'a>(&'a self, c: &'a Change, cx: &'a ApplyCx<'a>) -> BoxFuture<'a, Result<Created>>;

    /// Applies this backend's share of one stage. The default runs each
    /// change through `apply` in the backend's lane.
    fn apply_stage<'a>(
        &'a self,
        stage: Vec<&'a Change>,
        cx: &'a ApplyCx<'a>,
    ) -> BoxFuture<'a, Vec<StepResult>> {
        Box::pin(run_in_lane(self, stage, cx))
    }

    /// Moves changes between stages where this backend can start them
    /// earlier than the graph's levels say.
    fn restage(&self, _stages: &mut Vec<Vec<&Change>>) {}

    /// Event streams for watch.
    fn triggers(&self) -> Vec<TriggerSource> {
        vec![]
    }

    /// Readiness probes of what this backend wired, skipping `waiting`
    /// containers and addresses (their wiring is pending).
    fn probe<'a>(
        &'a self,
        _topo: &'a Topology,
        _waiting: &'a BTreeSet<String>,
    ) -> BoxFuture<'a, Vec<Probe>> {
        Box::pin(async { vec![] })
    }

    /// Whether destroy may remove this backend's part in one piece.
    fn whole<'a>(&'a self, _topo: &'a Topology, _o: &'a Observed) -> BoxFuture<'a, Result<Whole>> {
        Box::pin(async { Ok(Whole::No) })
    }

    /// Whether this backend's changes run inside the topology's netns
    /// (destroy runs its deletions before that netns goes whole).
    fn runs_in_netns(&self) -> bool {
        false
    }

    /// Removes what `whole` said could go in one piece.
    fn remove_whole<'a>(&'a mut self, _topo: &'a Topology) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }
}

/// A change routed to a backend that does not own its kind (a bug).
pub fn not_mine<B: Backend + ?Sized>(b: &B, c: &Change) -> Error {
    Error::State(format!(
        "the {} backend does not own {}",
        b.id(),
        c.step_name()
    ))
}

/// Runs changes through `b.apply` in `b`'s lane.
pub async fn run_in_lane<'a, B: Backend + ?Sized>(
    b: &'a B,
    stage: Vec<&'a Change>,
    cx: &'a ApplyCx<'a>,
) -> Vec<StepResult> {
    match b.lane() {
        Lane::Concurrent(n) => {
            let mut steps = vec![];
            for c in stage {
                steps.push(one(b, c, cx));
            }
            futures::stream::iter(steps)
                .buffer_unordered(n.max(1))
                .collect()
                .await
        }
        Lane::Serial => {
            let mut out = vec![];
            for c in stage {
                let r = b.apply(c, cx).await;
                let failed = r.is_err();
                cx.finished(&c.step_name(), &r);
                out.push((c.step_name(), r));
                if failed {
                    break;
                }
            }
            out
        }
    }
}

fn one<'a, B: Backend + ?Sized>(
    b: &'a B,
    c: &'a Change,
    cx: &'a ApplyCx<'a>,
) -> BoxFuture<'a, StepResult> {
    Box::pin(async move {
        let r = b.apply(c, cx).await;
        cx.finished(&c.step_name(), &r);
        (c.step_name(), r)
    })
}

/// The backends one topology needs, connected.
pub struct Registry {
    backends: Vec<Box<dyn Backend>>,
}

impl Registry {
    /// Connects the backends `topo` (and what its ledger says it made)
    /// needs: the kernel always, Docker and container wiring when the
    /// topology has or had anything there.
    pub async fn connect(topo: &Topology, observed: &Observed) -> Result<Registry> {
        Registry::connect_but(topo, observed, &BTreeSet::new()).await
    }

    /// As `connect`, leaving out the `skip` backends (whose part of an
    /// observation is taken from an earlier one).
    pub async fn connect_but(
        topo: &Topology,
        observed: &Observed,
        skip: &BTreeSet<BackendId>,
    ) -> Result<Registry> {
        let ledger = &observed.ledger;
        let want = |id: BackendId, needed: bool| needed && !skip.contains(&id);
        let mut backends: Vec<Box<dyn Backend>> = vec![];
        if want(BackendId::Kernel, true) {
            backends.push(Box::new(kernel::KernelBackend::connect(topo).await?));
        }
        let docker = docker::needed(topo, ledger);
        if want(BackendId::Docker, docker) {
            backends.push(Box::new(docker::DockerBackend::connect(topo).await?));
        }
        // After Docker: it reads the containers Docker found.
        if want(BackendId::Wiring, docker) {
            backends.push(Box::new(wiring::WiringBackend::new(topo)));
        }
        if want(BackendId::Cni, cni::needed(topo, ledger)) {
            backends.push(Box::new(cni::CniBackend::new(topo)));
        }
        // After Docker too: endpoints are containers Docker found.
        if want(BackendId::Nft, nft::needed(topo, ledger)) {
            backends.push(Box::new(nft::NftBackend::new(topo)));
        }
        if want(BackendId::Bgp, bgp::needed(topo, ledger)) {
            backends.push(Box::new(bgp::BgpBackend::new(topo, ledger)));
        }
        Ok(Registry { backends })
    }

    /// The backends before the first one in `changed`, in registry order:
    /// an apply of `changed`'s objects left their part of the world alone
    /// (a backend reads at most what those before it observed).
    pub fn before_first(&self, changed: &BTreeSet<BackendId>) -> BTreeSet<BackendId> {
        self.backends()
            .map(|b| b.id())
            .take_while(|id| !changed.contains(id))
            .collect()
    }

    pub fn ids(&self) -> BTreeSet<BackendId> {
        self.backends().map(|b| b.id()).collect()
    }

    /// A registry of the given backends (tests, embedding).
    pub fn from_backends(backends: Vec<Box<dyn Backend>>) -> Registry {
        Registry { backends }
    }

    pub fn backends(&self) -> impl Iterator<Item = &dyn Backend> {
        self.backends.iter().map(|b| b.as_ref())
    }

    pub fn get(&self, id: BackendId) -> Option<&dyn Backend> {
        self.backends().find(|b| b.id() == id)
    }

    pub fn get_mut(&mut self, id: BackendId) -> Option<&mut Box<dyn Backend>> {
        self.backends.iter_mut().find(|b| b.id() == id)
    }

    /// Every backend's observation, in order.
    pub async fn observe(&mut self, topo: &Topology, into: &mut Observed) -> Result<()> {
        for b in &mut self.backends {
            let t = std::time::Instant::now();
            b.observe(topo, into).await?;
            tracing::debug!(backend = ?b.id(), elapsed = ?t.elapsed(), "observed by backend");
        }
        Ok(())
    }

    pub async fn prepare(&mut self, plan: &Plan) -> Result<Vec<String>> {
        let mut done = vec![];
        for b in &mut self.backends {
            done.extend(b.prepare(plan).await?);
        }
        Ok(done)
    }

    pub fn triggers(&self) -> Vec<TriggerSource> {
        self.backends().flat_map(|b| b.triggers()).collect()
    }

    pub async fn probe(&self, topo: &Topology, waiting: &BTreeSet<String>) -> Vec<Probe> {
        let mut out = vec![];
        for b in self.backends() {
            out.extend(b.probe(topo, waiting).await);
        }
        out
    }

    /// Each backend's share of one stage, all lanes at once; changes of a
    /// backend that is not connected fail.
    pub async fn apply_stage(&self, stage: &[&Change], cx: &ApplyCx<'_>) -> Vec<StepResult> {
        let mut shares: HashMap<BackendId, Vec<&Change>> = HashMap::new();
        for c in stage {
            if let Some(r) = c.resource() {
                shares.entry(r.backend()).or_default().push(c);
            }
        }
        let mut missing = vec![];
        let mut lanes = vec![];
        for (id, changes) in shares {
            match self.get(id) {
                Some(b) => lanes.push((id, b.apply_stage(changes, cx))),
                None => missing.extend(changes.into_iter().map(|c| {
                    let e = Error::Unavailable {
                        backend: id,
                        message: format!("{id} is not connected"),
                    };
                    (c.step_name(), Err(e))
                })),
            }
        }
        // Results in registry order, so the first failure reported is stable.
        lanes.sort_by_key(|(id, _)| self.backends().position(|b| b.id() == *id));
        let results = futures::future::join_all(lanes.into_iter().map(|(_, f)| f)).await;
        let mut out: Vec<StepResult> = results.into_iter().flatten().collect();
        out.extend(missing);
        out
    }
}
