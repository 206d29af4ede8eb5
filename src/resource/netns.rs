//! The topology's own named network namespace.

use super::{DiffCx, Kind, Resource, ResourceKey};
use crate::diff::{Action, Diff};
use crate::observed::Observed;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetnsRes {
    pub name: String,
}

impl Kind for NetnsRes {
    fn key(&self) -> ResourceKey {
        ResourceKey::Netns {
            name: self.name.clone(),
        }
    }

    fn kind_name(&self) -> String {
        "netns".into()
    }

    fn title(&self) -> String {
        self.name.clone()
    }

    /// netloom never deletes a netns by diff (destroy decides that).
    fn delete_rank(&self) -> usize {
        6
    }

    fn diff(&self, r: &Resource, cx: &DiffCx, out: &mut Diff) {
        if !cx.observed.netns_exists {
            out.push(Action::Create, r);
        }
    }

    fn live(&self, o: &Observed) -> String {
        (if o.netns_exists { "present" } else { "absent" }).into()
    }
}
