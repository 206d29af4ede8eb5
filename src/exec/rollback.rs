//! The inverse of what an apply did: created objects deleted, deleted ones
//! made again from their observed settings, updated ones set back. Pure:
//! it builds a plan, which the executor then runs like any other.

use crate::diff::{Action, Change};
use crate::plan::{Plan, Staged, Summary};
use crate::resource::Resource;

/// The plan that undoes `done` (step names of `plan`, in the order they
/// were done), and the step that failed if it may have acted partly.
pub fn inverse(plan: &Plan, done: &[String], failed: Option<&str>) -> Plan {
    let names: std::collections::HashMap<String, &Staged> = plan
        .changes
        .iter()
        .map(|s| (s.change.step_name(), s))
        .collect();
    let by_name = |step: &str| names.get(step).copied();
    // Undo in reverse stage order; a replacement's two halves in two stages.
    let mut undone: Vec<(usize, &Staged)> = done
        .iter()
        .map(String::as_str)
        .chain(failed)
        .filter_map(by_name)
        .map(|s| (s.stage, s))
        .collect();
    undone.sort_by_key(|(stage, _)| std::cmp::Reverse(*stage));
    undone.dedup_by_key(|(_, s)| s.change.key.clone());
    // One group per original stage, latest first; a group whose undo has
    // second halves (replacements) takes two stages.
    let mut changes = vec![];
    let mut stage = 0;
    let mut replaced = false;
    let mut i = 0;
    while i < undone.len() {
        let orig = undone[i].0;
        let mut second = false;
        while i < undone.len() && undone[i].0 == orig {
            for (half, c) in undo(&undone[i].1.change) {
                second |= half;
                let at = stage + usize::from(half);
                changes.push(Staged {
                    stage: at,
                    change: c,
                    source: None,
                });
            }
            i += 1;
        }
        stage += 1 + usize::from(second);
        replaced |= second;
    }
    if replaced {
        redo_dependents(plan, done, &mut changes, stage);
    }
    changes.sort_by_key(|s| s.stage);
    let summary = Summary::of(&changes);
    Plan {
        format_version: plan.format_version,
        netloom_version: plan.netloom_version,
        input_digest: plan.input_digest.clone(),
        topology: plan.topology.clone(),
        netns: plan.netns.clone(),
        changes,
        conflicts: vec![],
        pending: vec![],
        summary,
    }
}

/// An object made again (a replacement undone) has lost what hung on it:
/// a Docker network its endpoints, a bridge its ports, a link its routes.
/// So what depends on others is set last, after every object is back: the
/// settings undone (moved there) and what this run re-applied (again).
fn redo_dependents(plan: &Plan, done: &[String], changes: &mut Vec<Staged>, last: usize) {
    let dependent = |r: &Resource| match r {
        Resource::Link(_)
        | Resource::Route(_)
        | Resource::Rule(_)
        | Resource::Attachment(_)
        | Resource::ContainerRoute(_)
        | Resource::Loopback(_)
        | Resource::Sysctl(_)
        | Resource::Cni(_)
        | Resource::Service(_) => true,
        Resource::Bgp(b) => !matches!(b, crate::resource::BgpRes::Speaker(_)),
        Resource::Netns(_) | Resource::Network(_) | Resource::Iface(_) => false,
    };
    for s in changes.iter_mut() {
        if s.change.action == Action::Update && s.change.desired.as_deref().is_some_and(dependent) {
            s.stage = last;
        }
    }
    let done: std::collections::HashSet<&str> = done.iter().map(String::as_str).collect();
    let undone: std::collections::HashSet<_> =
        changes.iter().map(|s| s.change.key.clone()).collect();
    let again = plan.changes.iter().filter(|s| {
        s.change.is_reapply()
            && s.change.desired.as_deref().is_some_and(dependent)
            && !undone.contains(&s.change.key)
            && done.contains(s.change.step_name().as_str())
    });
    let again: Vec<Staged> = again
        .map(|s| Staged {
            stage: last,
            change: Change {
                reason: Some("rollback: set again on what was made again".into()),
                ..s.change.clone()
            },
            source: s.source.clone(),
        })
        .collect();
    changes.extend(again);
}

/// The changes that undo one change; `true` marks the second half of a
/// replacement's undo (made again after the new object is gone).
fn undo(c: &Change) -> Vec<(bool, Change)> {
    let make = |action: Action, r: &Resource, current: Option<Resource>| Change {
        action,
        key: r.key(),
        kind: r.kind_name(),
        title: r.title(),
        fields: vec![],
        reason: Some("rollback".into()),
        desired: (action != Action::Delete).then(|| Box::new(r.clone())),
        current: current.map(Box::new),
    };
    match (c.action, c.desired.as_deref(), c.current.as_deref()) {
        // The netns goes with destroy, not with a rollback.
        (_, Some(Resource::Netns(_)), _) => vec![],
        (Action::Create, Some(d), _) => vec![(false, make(Action::Delete, d, Some(d.clone())))],
        // A DEL'ed CNI attachment's lease is gone: an ADD would not bring
        // it back as it was.
        (Action::Delete, _, Some(Resource::Cni(_))) => vec![],
        (Action::Delete, _, Some(cur)) => vec![(false, make(Action::Create, cur, None))],
        // A container interface's `current` is not what was observed, and
        // a replaced one was a broken pair: neither can be made again.
        (Action::Update | Action::Replace, Some(Resource::Iface(_)), _) => vec![],
        // Only what was observed can be put back: an update planned without
        // the observed object (a re-apply) has nothing to restore.
        (Action::Update, Some(d), Some(cur)) => {
            vec![(false, make(Action::Update, cur, Some(d.clone())))]
        }
        (Action::Replace, Some(d), Some(cur)) => vec![
            (false, make(Action::Delete, d, Some(d.clone()))),
            (true, make(Action::Create, cur, None)),
        ],
        (Action::Create | Action::Update | Action::Replace | Action::Delete, _, _) => vec![],
    }
}
