//! A prefix the speaker originates: a local path in gobgpd's global RIB,
//! next hop self.

use super::BgpRes;
use crate::diff::{Action, Diff};
use crate::observed::Observed;
use crate::resource::{DiffCx, Kind, Resource, ResourceKey};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct AnnounceRes {
    pub prefix: IpNet,
}

impl Kind for AnnounceRes {
    fn key(&self) -> ResourceKey {
        ResourceKey::Bgp(super::BgpKey::Announce {
            prefix: self.prefix,
        })
    }

    fn kind_name(&self) -> String {
        "bgp announce".into()
    }

    fn title(&self) -> String {
        self.prefix.to_string()
    }

    fn delete_rank(&self) -> usize {
        1
    }

    fn diff(&self, r: &Resource, cx: &DiffCx, out: &mut Diff) {
        if !super::live(cx).is_some_and(|b| b.local.contains(&self.prefix)) {
            out.push(Action::Create, r);
        }
    }

    fn live(&self, o: &Observed) -> String {
        match o.bgp.as_ref() {
            Some(b) if b.local.contains(&self.prefix) => "announced".into(),
            _ => "not announced".into(),
        }
    }
}

/// Local paths no `announce` lists.
pub(super) fn prune(cx: &DiffCx, out: &mut Diff) {
    if !cx
        .desired
        .contains(&ResourceKey::Bgp(super::BgpKey::Speaker))
    {
        return;
    }
    let Some(b) = super::live(cx) else {
        return;
    };
    for p in &b.local {
        let r = AnnounceRes { prefix: *p };
        if !cx.desired.contains(&r.key()) {
            out.delete(Resource::Bgp(BgpRes::Announce(r)));
        }
    }
}
