//! After apply: observe again and report any difference left.

use crate::diff::diff_within;
use crate::diff::{Action, FieldChange};
use crate::error::Result;
use crate::graph::DesiredGraph;
use crate::observed::Observed;
use crate::resource::{BackendId, LinkKind, Resource};
use std::collections::BTreeSet;
use std::time::Duration;

/// The backends an observation is new for (`None`: all of them); the
/// others' parts are what the plan saw.
pub type Scope = Option<BTreeSet<BackendId>>;

/// Differences still present, each as one line; empty when converged.
/// Only resources of backends in `scope` are compared: the others' parts
/// are as planned, and nothing of theirs was applied.
pub fn differences(
    topology: &str,
    graph: &DesiredGraph,
    observed: &Observed,
    scope: &Scope,
) -> Vec<String> {
    let d = diff_within(topology, graph, observed, scope.as_ref());
    let fresh = |b: BackendId| scope.as_ref().is_none_or(|s| s.contains(&b));
    let mut out: Vec<String> = d
        .changes
        .iter()
        // Learned routes follow gobgpd, which moves on by itself (a session
        // coming up, a soft reset this apply asked for): the next apply or
        // watch's next reconcile installs them; not a failure of this one.
        .filter(|c| {
            !matches!(
                c.key,
                crate::resource::ResourceKey::Bgp(crate::resource::BgpKey::Routes { .. })
            )
        })
        .map(|c| {
            let fields: Vec<String> = c.fields.iter().map(FieldChange::mismatch).collect();
            let what = match c.action {
                Action::Create => "missing".to_string(),
                Action::Delete => "still present".to_string(),
                Action::Update | Action::Replace if fields.is_empty() => c
                    .reason
                    .clone()
                    .map(|r| format!("differs ({r})"))
                    .unwrap_or_else(|| "differs".to_string()),
                Action::Update | Action::Replace => fields.join(", "),
            };
            format!("{} {}: {what}", c.kind, c.title)
        })
        .collect();
    out.extend(
        d.conflicts
            .iter()
            .map(|c| format!("{}: {}", c.key, c.message)),
    );
    // A veth pair that is up on both ends has carrier.
    for r in graph.resources() {
        if let Resource::Link(l) = r
            && fresh(BackendId::Kernel)
            && l.kind == LinkKind::Veth
            && l.end.up
            && l.peer.as_ref().is_some_and(|p| p.up)
            && let Some(o) = observed.link(&l.end.name)
            && !o.carrier
        {
            out.push(format!("veth {}: up but without carrier", l.end.name));
        }
        // Container ends: up with carrier, addresses past IPv6 duplicate detection.
        if let Resource::Iface(i) = r
            && fresh(BackendId::Wiring)
        {
            for (c, n, _) in i.ends() {
                let Some(l) = observed.containers.get(c).and_then(|cn| cn.link(n)) else {
                    continue;
                };
                if !l.carrier {
                    out.push(format!("interface {c}:{n}: up but without carrier"));
                }
                for a in l.addresses.iter().filter(|a| a.tentative) {
                    out.push(format!("interface {c}:{n}: address {} still tentative (IPv6 duplicate address detection)", a.net));
                }
            }
        }
    }
    out
}

/// Observes until nothing differs, briefly retrying for the kernel to
/// settle (carrier comes up asynchronously). Returns what still differs.
pub async fn verify<F, Fut>(
    topology: &str,
    graph: &DesiredGraph,
    mut observe: F,
) -> Result<Vec<String>>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<(Observed, Scope)>>,
{
    let mut delay = Duration::from_millis(10);
    let mut attempt = 0;
    loop {
        let (observed, scope) = observe().await?;
        let left = differences(topology, graph, &observed, &scope);
        attempt += 1;
        tracing::debug!(attempt, left = left.len(), "verified");
        // Up to ~2.5 s in all: IPv6 duplicate address detection takes about a second.
        if left.is_empty() || attempt >= 9 {
            return Ok(left);
        }
        tokio::time::sleep(delay).await;
        delay *= 2;
    }
}
