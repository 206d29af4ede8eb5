//! BGP resources, all programmed into the topology's gobgpd: the speaker
//! itself, its peers, the prefixes it announces, route policies, and the
//! learned routes netloom copies into the kernel. One `Resource::Bgp`
//! variant holds them; this module dispatches to each.

mod announce;
mod peer;
mod policy;
mod routes;
mod speaker;

pub use announce::AnnounceRes;
pub use peer::{PeerRes, unix_now};
pub use policy::{
    GoPolicy, GoStmt, PolicyRes, Verdict, compile as compile_policies, instance_name,
    parse_instance,
};
pub use routes::RoutesRes;
pub use speaker::{SpeakerRes, socket_of};

use super::{DiffCx, Kind, Resource, ResourceKey};
use crate::diff::Diff;
use crate::model::Bgp;
use crate::observed::{BgpObs, Observed};
use crate::ownership::Ledger;
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::fmt;

#[derive(
    Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, schemars::JsonSchema,
)]
#[serde(tag = "bgp", rename_all = "lowercase")]
pub enum BgpKey {
    Speaker,
    Peer {
        name: String,
    },
    Announce {
        #[schemars(with = "String")]
        prefix: IpNet,
    },
    Policy {
        name: String,
    },
    Routes {
        table: u32,
    },
}

impl fmt::Display for BgpKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            BgpKey::Speaker => f.write_str("speaker"),
            BgpKey::Peer { name } => write!(f, "peer/{name}"),
            BgpKey::Announce { prefix } => write!(f, "announce/{prefix}"),
            BgpKey::Policy { name } => write!(f, "policy/{name}"),
            BgpKey::Routes { table } => write!(f, "routes/{table}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "bgp", rename_all = "lowercase")]
pub enum BgpRes {
    Speaker(SpeakerRes),
    Peer(PeerRes),
    Announce(AnnounceRes),
    Policy(PolicyRes),
    Routes(RoutesRes),
}

impl BgpRes {
    fn inner(&self) -> &dyn Kind {
        match self {
            BgpRes::Speaker(r) => r,
            BgpRes::Peer(r) => r,
            BgpRes::Announce(r) => r,
            BgpRes::Policy(r) => r,
            BgpRes::Routes(r) => r,
        }
    }

    /// Every BGP resource a `[bgp]` section describes.
    pub fn from_model(b: &Bgp, topology: &str) -> Vec<BgpRes> {
        let mut out = vec![BgpRes::Speaker(SpeakerRes::from_model(b, topology))];
        out.extend(
            b.peers
                .values()
                .map(|p| BgpRes::Peer(PeerRes::from_model(p))),
        );
        out.extend(
            b.announce
                .iter()
                .map(|p| BgpRes::Announce(AnnounceRes { prefix: *p })),
        );
        out.extend(
            b.policies
                .values()
                .map(|p| BgpRes::Policy(PolicyRes::from_model(p, b))),
        );
        if b.install {
            out.push(BgpRes::Routes(RoutesRes::from_model(b)));
        }
        out
    }
}

impl Kind for BgpRes {
    fn key(&self) -> ResourceKey {
        self.inner().key()
    }
    fn kind_name(&self) -> String {
        self.inner().kind_name()
    }
    fn title(&self) -> String {
        self.inner().title()
    }
    fn delete_rank(&self) -> usize {
        self.inner().delete_rank()
    }
    fn diff(&self, r: &Resource, cx: &DiffCx, out: &mut Diff) {
        self.inner().diff(r, cx, out)
    }
    fn details(&self, out: &mut String) {
        self.inner().details(out)
    }
    fn claim(&self, ledger: &mut Ledger, o: &Observed) -> bool {
        self.inner().claim(ledger, o)
    }
    fn release(&self, ledger: &mut Ledger) -> bool {
        self.inner().release(ledger)
    }
    fn settle(&self, claimed: &Ledger, ledger: &mut Ledger) {
        self.inner().settle(claimed, ledger)
    }
    fn live(&self, o: &Observed) -> String {
        self.inner().live(o)
    }
}

/// The speaker's live state, if it is the one the files describe and it
/// stays: otherwise everything in it is made again.
pub(crate) fn live<'a>(cx: &DiffCx<'a>) -> Option<&'a BgpObs> {
    let want = cx.desired.resources().find_map(|r| match r {
        Resource::Bgp(BgpRes::Speaker(s)) => Some(s),
        _ => None,
    })?;
    cx.observed.bgp.as_ref().filter(|o| want.keeps(o))
}

/// The BGP objects live that the files no longer describe.
pub(crate) fn prune(cx: &DiffCx, out: &mut Diff) {
    speaker::prune(cx, out);
    peer::prune(cx, out);
    announce::prune(cx, out);
    policy::prune(cx, out);
    routes::prune(cx, out);
}
