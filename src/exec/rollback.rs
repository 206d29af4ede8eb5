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
                });
            }
            i += 1;
        }
        stage += 1 + usize::from(second);
    }
    changes.sort_by_key(|s| s.stage);
    let summary = Summary::of(&changes);
    Plan {
        format_version: plan.format_version,
        topology: plan.topology.clone(),
        netns: plan.netns.clone(),
        changes,
        conflicts: vec![],
        pending: vec![],
        summary,
    }
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
        desired: (action != Action::Delete).then(|| r.clone()),
        current,
    };
    match (c.action, &c.desired, &c.current) {
        // The netns goes with destroy, not with a rollback.
        (_, Some(Resource::Netns(_)), _) => vec![],
        (Action::Create, Some(d), _) => vec![(false, make(Action::Delete, d, Some(d.clone())))],
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
