//! `destroy`: everything this topology owns goes, and nothing else. What a
//! backend can remove in one piece (a netns netloom made, holding only its
//! own objects) goes whole; the rest change by change.

use super::{Live, Loaded};
use crate::backend::Whole;
use crate::error::Result;
use crate::graph::DesiredGraph;
use crate::ownership::Ledger;
use crate::plan::Plan;
use crate::resource::BackendId;

/// A destroy, planned and not yet done.
pub struct Destroying {
    pub live: Live,
    /// Deleting every owned object, change by change.
    pub plan: Plan,
    /// Per backend: whether its part goes whole.
    pub whole: Vec<(BackendId, Whole)>,
}

impl Destroying {
    /// What goes whole (`netns lab1`).
    pub fn removed_whole(&self) -> impl Iterator<Item = &str> {
        self.whole.iter().filter_map(|(_, w)| match w {
            Whole::Yes { what } => Some(what.as_str()),
            Whole::No | Whole::Kept { .. } => None,
        })
    }

    /// What stays although netloom made it, and why.
    pub fn kept(&self) -> impl Iterator<Item = (&str, &str)> {
        self.whole.iter().filter_map(|(_, w)| match w {
            Whole::Kept { what, why } => Some((what.as_str(), why.as_str())),
            Whole::No | Whole::Yes { .. } => None,
        })
    }

    /// Objects removed: the changes plus what goes whole.
    pub fn count(&self) -> usize {
        self.plan.changes.len() + self.removed_whole().count()
    }
}

/// A veth pair is deleted through whichever end was observed first; name
/// it as the file does (`[veth.zz]` with peer `aa` is `veth zz`, not `aa`).
fn by_file_name(c: &mut crate::diff::Change, t: &crate::model::Topology) {
    let Some(crate::resource::Resource::Link(l)) = c.current.as_deref_mut() else {
        return;
    };
    let Some(peer) = l.peer.as_mut() else {
        return;
    };
    if t.veths.contains_key(&peer.name) && !t.veths.contains_key(&l.end.name) {
        std::mem::swap(&mut l.end, peer);
        let r = crate::resource::Resource::Link(l.clone());
        c.key = r.key();
        c.title = r.title();
    }
}

/// The destroy plan when there is nothing at all.
pub fn nothing(l: &Loaded) -> Plan {
    let t = &l.topo;
    Plan::new(
        &t.name,
        t.netns.clone(),
        &DesiredGraph::default(),
        crate::diff::Diff::default(),
    )
}

/// `None`: there is nothing at all (no netns, nothing in Docker).
pub async fn prepare(l: &Loaded) -> Result<Option<Destroying>> {
    let t = &l.topo;
    let live = super::observe(t).await?;
    if !live.observed.netns_exists && live.registry.get(BackendId::Docker).is_none() {
        Ledger::remove(&t.name).map_err(|e| crate::error::Error::io("remove the ledger", e))?;
        return Ok(None);
    }
    let nothing = DesiredGraph::default();
    let mut d = crate::diff::diff(&t.name, &nothing, &live.observed);
    for c in &mut d.changes {
        by_file_name(c, t);
    }
    let plan = Plan::new(&t.name, t.netns.clone(), &nothing, d);
    let mut whole = vec![];
    for b in live.registry.backends() {
        whole.push((b.id(), b.whole(t, &live.observed).await?));
    }
    Ok(Some(Destroying { live, plan, whole }))
}

/// The destroy as it runs: deletions inside what goes whole, what goes
/// whole, the remaining deletions.
struct Split {
    early: Plan,
    gone: Vec<(BackendId, String)>,
    rest: Plan,
}

impl Destroying {
    fn split(&self) -> Split {
        let gone: Vec<(BackendId, String)> = self
            .whole
            .iter()
            .filter_map(|(id, w)| match w {
                Whole::Yes { what } => Some((*id, what.clone())),
                Whole::No | Whole::Kept { .. } => None,
            })
            .collect();
        // Deletions that run inside what goes whole (CNI plugins run in the
        // topology's netns) go first.
        let first: Vec<BackendId> = self
            .live
            .registry
            .backends()
            .filter(|b| b.runs_in_netns())
            .map(|b| b.id())
            .collect();
        // Only the changes that run are copied: at 16,000 objects whole
        // copies of the plan were most of destroy's memory.
        let (mut early, mut rest) = (vec![], vec![]);
        for s in &self.plan.changes {
            let backend = s.change.resource().map(|r| r.backend());
            if !gone.is_empty() && backend.is_some_and(|b| first.contains(&b)) {
                early.push(s.clone());
            } else if backend.is_none_or(|b| gone.iter().all(|(id, _)| b != *id)) {
                // What goes whole takes its objects with it.
                rest.push(s.clone());
            }
        }
        let part = |changes| Plan {
            changes,
            ..self.plan.without_changes()
        };
        let (early, rest) = (part(early), part(rest));
        Split { early, gone, rest }
    }

    /// Steps execute takes (each reported to its `on_step`).
    pub fn steps(&self) -> usize {
        let s = self.split();
        s.early.changes.len() + s.gone.len() + s.rest.changes.len()
    }
}

/// Removes what goes whole, then applies the remaining deletions, then
/// forgets the topology's ledger. `on_step` hears each step once done.
pub async fn execute(d: &mut Destroying, l: &Loaded, on_step: &mut dyn FnMut(&str)) -> Result<()> {
    let Split { early, gone, rest } = d.split();
    let mut each = |c: &crate::diff::Change| on_step(&c.step_name());
    if !early.changes.is_empty() {
        crate::exec::apply(&early, &d.live.observed, &mut d.live.registry, &mut each).await?;
    }
    for (id, what) in &gone {
        if let Some(b) = d.live.registry.get_mut(*id) {
            b.remove_whole(&l.topo).await?;
        }
        on_step(&format!("- {what}"));
    }
    let mut each = |c: &crate::diff::Change| on_step(&c.step_name());
    if !rest.changes.is_empty() {
        crate::exec::apply(&rest, &d.live.observed, &mut d.live.registry, &mut each).await?;
    }
    Ledger::remove(&l.topo.name).map_err(|e| crate::error::Error::io("cannot remove the ledger", e))
}
