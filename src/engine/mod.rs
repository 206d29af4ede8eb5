//! The engine: what each command does, as a library. Every function
//! returns a typed outcome; printing and exit codes are the CLI's.
//!
//! load (files → model → graph) → observe (every backend) → plan (diff +
//! order) → converge (apply, verify, readiness); destroy and show build on
//! the same steps; `watch` is a controller around `converge`.

mod converge;
pub mod destroy;
pub mod show;
pub mod watch;

pub use converge::{Converged, Report, converge, converge_with};

use crate::backend::Registry;
use crate::diag::{Diagnostic, SourceMap, render_all};
use crate::error::{Error, Result};
use crate::graph::DesiredGraph;
use crate::model::Topology;
use crate::observed::Observed;
use crate::ownership::Ledger;
use crate::plan::Plan;
use std::collections::BTreeSet;
use std::path::PathBuf;

/// A validated topology and its desired graph.
pub struct Loaded {
    pub sources: SourceMap,
    pub topo: Topology,
    pub graph: DesiredGraph,
    /// Rendered warnings (empty when there are none).
    pub warnings: String,
    digest: std::sync::OnceLock<String>,
}

impl Loaded {
    /// A digest of the files (paths and contents): which revision this is.
    pub fn revision(&self) -> String {
        let mut all = String::new();
        for f in &self.sources.files {
            all.push_str(&f.path.display().to_string());
            all.push('\0');
            all.push_str(&f.text);
            all.push('\0');
        }
        format!("{:016x}", crate::naming::fnv1a(&all))
    }

    /// sha256 of the files (paths and contents) and of the secrets they
    /// name but do not hold (a password from the environment): a saved
    /// plan is stale when this differs, and no secret can be read from it.
    pub fn input_digest(&self) -> &str {
        self.digest.get_or_init(|| self.digest_now())
    }

    /// Each file's path and sha256, for a saved plan.
    pub fn file_digests(&self) -> Vec<crate::plan::saved::FileDigest> {
        use sha2::{Digest, Sha256};
        self.sources
            .files
            .iter()
            .map(|f| crate::plan::saved::FileDigest {
                path: f.path.display().to_string(),
                sha256: hex(&Sha256::digest(f.text.as_bytes())),
            })
            .collect()
    }

    fn digest_now(&self) -> String {
        use sha2::{Digest, Sha256};
        let mut h = Sha256::new();
        for f in &self.sources.files {
            h.update(f.path.display().to_string().as_bytes());
            h.update([0]);
            h.update(f.text.as_bytes());
            h.update([0]);
        }
        if let Some(b) = &self.topo.bgp {
            for (name, p) in &b.peers {
                if let Some(pw) = &p.password {
                    h.update(name.as_bytes());
                    h.update([0]);
                    h.update(pw.expose().as_bytes());
                    h.update([0]);
                }
            }
        }
        hex(&h.finalize())
    }
}

/// Lowercase hex of a digest.
pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// Files → model → graph; errors are `Error::Invalid` with every
/// diagnostic rendered. Prints nothing (callers decide when).
pub fn load(paths: &[PathBuf]) -> Result<Loaded> {
    match load_diagnosed(paths) {
        Ok((l, _)) => Ok(l),
        Err(bad) => Err(Error::Invalid(render_all(&bad.diagnostics, &bad.sources))),
    }
}

/// Files that did not make a topology: every diagnostic, and the files
/// they point into.
pub struct Rejected {
    pub diagnostics: Vec<Diagnostic>,
    pub sources: SourceMap,
}

/// `load`, keeping the diagnostics as values (for `--format json`): the
/// loaded topology with its warnings, or everything that was wrong.
pub fn load_diagnosed(
    paths: &[PathBuf],
) -> std::result::Result<(Loaded, Vec<Diagnostic>), Rejected> {
    let t = std::time::Instant::now();
    let loaded = crate::spec::load_paths(paths);
    let (topo, warnings) = match crate::model::build(&loaded) {
        Ok(built) => built,
        Err(diagnostics) => {
            return Err(Rejected {
                diagnostics,
                sources: loaded.sources,
            });
        }
    };
    let graph = match crate::graph::build(&topo) {
        Ok(g) => g,
        Err(diags) => {
            return Err(Rejected {
                diagnostics: warnings.iter().cloned().chain(diags).collect(),
                sources: loaded.sources,
            });
        }
    };
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
            warnings: rendered,
            digest: Default::default(),
        },
        warnings,
    ))
}

/// The live side of a topology: its connected backends and what they observed.
pub struct Live {
    pub registry: Registry,
    pub observed: Observed,
}

/// Connects the backends the topology needs and observes through each.
pub async fn observe(topo: &Topology) -> Result<Live> {
    let mut observed = unobserved(topo)?;
    let mut registry = Registry::connect(topo, &observed).await?;
    let seen = registry.observe(topo, &mut observed).await;
    crate::backend::kernel::prefetch::discard();
    seen?;
    Ok(Live { registry, observed })
}

/// Starts the kernel dumps of the netns the files seem to name while they
/// load (see `backend::kernel::prefetch`); the first observation uses them
/// if the loaded topology names that very netns.
pub fn prefetch(paths: &[PathBuf]) {
    if let Some(netns) = crate::spec::netns_hint(paths) {
        crate::backend::kernel::prefetch::start(netns.as_deref());
    }
}

/// Observes again after an apply: the `kept` backends' parts are copied
/// from `before` (the caller keeps only backends none of whose objects
/// were applied and in whose view nothing applied shows), the others
/// observe. A topology of 1,000 services
/// whose apply changed one rule re-reads only its nftables table. Returns
/// the backends that observed.
pub async fn observe_again(
    topo: &Topology,
    before: &Observed,
    kept: &BTreeSet<crate::resource::BackendId>,
) -> Result<(Observed, crate::verify::Scope)> {
    let mut observed = unobserved(topo)?;
    for &id in kept {
        observed.keep_part(id, before);
    }
    let mut registry = Registry::connect_but(topo, &observed, kept).await?;
    registry.observe(topo, &mut observed).await?;
    Ok((observed, Some(registry.ids())))
}

/// An observation holding only the ledger: where every backend starts.
fn unobserved(topo: &Topology) -> Result<Observed> {
    let ledger = Ledger::load(&topo.name).map_err(|e| {
        Error::io(
            format!("cannot read the ledger of topology {}", topo.name),
            e,
        )
    })?;
    if !ledger.is_empty() && ledger.netns != topo.netns && ledger.netns.is_some() {
        return Err(Error::State(format!(
            "topology {} was applied to {} and now names {}; run `netloom destroy` with the old files first, or restore the old netns",
            topo.name,
            netns_label(&ledger.netns),
            netns_label(&topo.netns)
        )));
    }
    Ok(Observed {
        netns_exists: true,
        ledger,
        ..Default::default()
    })
}

/// Observes and plans, logging each phase.
pub async fn plan(l: &Loaded) -> Result<(Live, Plan)> {
    let t = std::time::Instant::now();
    let live = observe(&l.topo).await?;
    tracing::debug!(elapsed = ?t.elapsed(), links = live.observed.links.len(), routes = live.observed.routes.len(), "observed");
    // What was observed, as the golden fixtures hold it (tests/fixtures/*/observed.json).
    if let Some(path) = std::env::var_os("NETLOOM_CAPTURE_OBSERVED") {
        let json = serde_json::to_string_pretty(&live.observed).unwrap_or_default();
        if let Err(e) = std::fs::write(&path, json + "\n") {
            tracing::warn!(
                "cannot write {}: {e}",
                std::path::Path::new(&path).display()
            );
        }
    }
    let t = std::time::Instant::now();
    let plan = plan_for(l, &live.observed);
    tracing::debug!(elapsed = ?t.elapsed(), changes = plan.changes.len(), "planned");
    Ok((live, plan))
}

/// The plan for an observed state (pure).
pub fn plan_for(l: &Loaded, observed: &Observed) -> Plan {
    let d = crate::diff::diff(&l.topo.name, &l.graph, observed);
    let mut plan = Plan::new(&l.topo.name, l.topo.netns.clone(), &l.graph, d);
    plan.locate(&l.graph, &l.sources);
    plan.input_digest = Some(l.input_digest().to_string());
    plan
}

/// Containers with pending wiring (at either end of it), and the addresses
/// on that wiring: probes from those containers or to those addresses wait.
pub fn waiting(plan: &Plan, graph: &DesiredGraph) -> BTreeSet<String> {
    use crate::resource::Resource;
    let mut out = BTreeSet::new();
    for r in crate::exec::pending_resources(plan, graph) {
        match r {
            Resource::Iface(i) => {
                for (c, _, addresses) in i.ends() {
                    out.insert(c.clone());
                    out.extend(addresses.iter().map(|a| a.addr().to_string()));
                }
            }
            Resource::ContainerRoute(r) => {
                out.insert(r.container.clone());
            }
            Resource::Loopback(l) => {
                out.insert(l.container.clone());
                out.extend(l.addresses.iter().map(|a| a.addr().to_string()));
            }
            Resource::Sysctl(s) => out.extend(s.container.clone()),
            Resource::Cni(c) => {
                out.insert(c.container.clone());
            }
            Resource::Service(_) | Resource::Bgp(_) => {}
            Resource::Netns(_)
            | Resource::Link(_)
            | Resource::Route(_)
            | Resource::Rule(_)
            | Resource::Network(_)
            | Resource::Attachment(_) => {}
        }
    }
    out
}

/// `netns lab1`, or `the host netns`.
pub fn netns_label(n: &Option<String>) -> String {
    match n {
        Some(n) => format!("netns {n}"),
        None => "the host netns".into(),
    }
}
