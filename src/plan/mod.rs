//! The plan: ordered changes in stages. Plan, apply and verify share it.

mod render;
pub mod saved;

pub use render::{
    code_fence, render_changes, render_json, render_markdown, render_text, summary_line,
};

use crate::diff::{Action, Change, Conflict, Diff, Pending};
use crate::graph::DesiredGraph;
use crate::resource::ResourceKey;
use serde::{Deserialize, Serialize};

/// Version of the JSON plan document; bumped on incompatible changes.
pub const PLAN_FORMAT_VERSION: u32 = 1;

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
#[schemars(title = "netloom plan")]
pub struct Plan {
    pub format_version: u32,
    /// The netloom that made the plan.
    pub netloom_version: &'static str,
    /// sha256 of the files (paths and contents) and of any secret they name
    /// (BGP passwords from the environment or a file): which input this is.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub input_digest: Option<String>,
    pub topology: String,
    pub netns: Option<String>,
    /// In execution order. Changes with the same `stage` are independent.
    pub changes: Vec<Staged>,
    pub conflicts: Vec<Conflict>,
    /// Objects that cannot be made yet (a container that is not running).
    pub pending: Vec<Pending>,
    pub summary: Summary,
}

#[derive(Debug, Clone, Serialize, schemars::JsonSchema)]
pub struct Staged {
    pub stage: usize,
    #[serde(flatten)]
    pub change: Change,
    /// The section of the files that asked for it (none for a deletion of
    /// what the files no longer name).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source: Option<Place>,
}

/// A position in the topology files, 1-based.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Place {
    pub file: String,
    pub line: usize,
    pub column: usize,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, schemars::JsonSchema)]
pub struct Summary {
    pub create: usize,
    pub update: usize,
    pub replace: usize,
    pub delete: usize,
    pub pending: usize,
    /// Objects the files describe.
    pub desired: usize,
}

impl Summary {
    /// The counts of each action among `changes`.
    pub fn of(changes: &[Staged]) -> Summary {
        let mut summary = Summary::default();
        for s in changes {
            match s.change.action {
                Action::Create => summary.create += 1,
                Action::Update => summary.update += 1,
                Action::Replace => summary.replace += 1,
                Action::Delete => summary.delete += 1,
            }
        }
        summary
    }
}

impl Plan {
    /// Orders a diff: deletions first (rules, routes, veths, bridges), then
    /// creations, updates and replacements level by level of the graph.
    /// The same plan with no changes (for plans made of some of them).
    pub fn without_changes(&self) -> Plan {
        Plan {
            format_version: self.format_version,
            netloom_version: self.netloom_version,
            input_digest: self.input_digest.clone(),
            topology: self.topology.clone(),
            netns: self.netns.clone(),
            changes: vec![],
            conflicts: self.conflicts.clone(),
            pending: self.pending.clone(),
            summary: self.summary.clone(),
        }
    }

    pub fn new(topology: &str, netns: Option<String>, graph: &DesiredGraph, diff: Diff) -> Plan {
        // Sort positions, not changes: a change is large and moved once,
        // into its stage (at 10,000 objects, copies of the list were the
        // peak of a plan's memory).
        let slots: Vec<(usize, usize)> = diff
            .changes
            .iter()
            .map(|c| {
                if c.action == Action::Delete {
                    (
                        0,
                        c.current.as_deref().map_or(6, |r| r.kind().delete_rank()),
                    )
                } else {
                    (1, graph.level(&c.key).unwrap_or(0))
                }
            })
            .collect();
        let names: Vec<String> = diff.changes.iter().map(|c| c.key.to_string()).collect();
        let mut order: Vec<usize> = (0..diff.changes.len()).collect();
        // Within a stage, kinds in their order and names of one kind in
        // natural order (p2 before p10).
        order.sort_by(|&i, &j| {
            let (a, b) = (&diff.changes[i].key, &diff.changes[j].key);
            slots[i].cmp(&slots[j]).then_with(|| {
                if std::mem::discriminant(a) == std::mem::discriminant(b) {
                    crate::naming::natural_cmp(&names[i], &names[j]).then_with(|| a.cmp(b))
                } else {
                    a.cmp(b)
                }
            })
        });
        drop(names);
        let mut taken: Vec<Option<Change>> = diff.changes.into_iter().map(Some).collect();
        let mut stage = 0;
        let mut last = None;
        let mut changes = Vec::with_capacity(order.len());
        for i in order {
            let slot = slots[i];
            if last.is_some_and(|l| l != slot) {
                stage += 1;
            }
            last = Some(slot);
            changes.push(Staged {
                stage,
                change: taken[i].take().expect("each position once"),
                source: None,
            });
        }
        drop(taken);
        let summary = Summary {
            desired: graph.graph.node_count(),
            pending: diff.pending.len(),
            ..Summary::of(&changes)
        };
        Plan {
            format_version: PLAN_FORMAT_VERSION,
            netloom_version: env!("CARGO_PKG_VERSION"),
            input_digest: None,
            topology: topology.to_string(),
            netns,
            changes,
            conflicts: diff.conflicts,
            pending: diff.pending,
            summary,
        }
    }

    /// Names, per change, the section of the files it comes from.
    pub fn locate(&mut self, graph: &DesiredGraph, sources: &crate::diag::SourceMap) {
        for s in &mut self.changes {
            let loc = graph
                .index
                .get(&s.change.key)
                .and_then(|i| graph.graph[*i].loc.as_ref());
            s.source = loc.map(|loc| {
                let f = &sources.files[loc.file];
                let (line, column) = f.line_col(loc.span.start);
                Place {
                    file: f.path.display().to_string(),
                    line,
                    column,
                }
            });
        }
    }

    pub fn is_empty(&self) -> bool {
        self.changes.is_empty() && self.conflicts.is_empty() && self.pending.is_empty()
    }

    /// The changes grouped by stage, in order.
    pub fn stages(&self) -> Vec<Vec<&Change>> {
        let mut out: Vec<Vec<&Change>> = vec![];
        for s in &self.changes {
            if out.len() <= s.stage {
                out.resize_with(s.stage + 1, Vec::new);
            }
            out[s.stage].push(&s.change);
        }
        out
    }

    pub fn creates_netns(&self) -> bool {
        self.changes.iter().any(|s| {
            matches!(s.change.key, ResourceKey::Netns { .. }) && s.change.action == Action::Create
        })
    }
}
