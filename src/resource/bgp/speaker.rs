//! The BGP speaker: one gobgpd per topology, started (`StartBgp`) with the
//! topology's AS and router id, and its global policy lists.

use super::{BgpRes, compile_policies};
use crate::diff::field::{Field, Side, Value, field};
use crate::diff::{Action, Diff};
use crate::model::Bgp;
use crate::observed::{BgpObs, Observed};
use crate::ownership::Ledger;
use crate::ownership::ledger::BgpLedger;
use crate::resource::{DiffCx, Kind, Resource, ResourceKey};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::net::Ipv4Addr;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpeakerRes {
    pub asn: u32,
    pub router_id: Ipv4Addr,
    pub listen_port: i32,
    /// gobgpd's API socket.
    pub socket: PathBuf,
    /// netloom runs this gobgpd (no `api` given).
    pub managed: bool,
    /// The kernel table learned routes go in.
    pub table: u32,
    /// gobgpd policy names in the global import and export lists, in order.
    #[serde(default)]
    pub import: Vec<String>,
    #[serde(default)]
    pub export: Vec<String>,
}

/// Where netloom's own gobgpd for a topology listens.
pub fn socket_of(topology: &str) -> PathBuf {
    crate::ownership::ledger::run_dir().join(format!("{topology}.gobgp.sock"))
}

impl SpeakerRes {
    pub fn from_model(b: &Bgp, topology: &str) -> SpeakerRes {
        let (import, export) = compile_policies(b);
        SpeakerRes {
            asn: b.asn,
            router_id: b.router_id,
            listen_port: b.listen_port,
            socket: b.api.clone().unwrap_or_else(|| socket_of(topology)),
            managed: b.api.is_none(),
            table: b.table,
            import: import.into_iter().map(|p| p.name).collect(),
            export: export.into_iter().map(|p| p.name).collect(),
        }
    }

    /// A speaker known only from the ledger (for a prune).
    pub fn recorded(l: &BgpLedger) -> SpeakerRes {
        SpeakerRes {
            asn: 0,
            router_id: Ipv4Addr::UNSPECIFIED,
            listen_port: 0,
            socket: l.socket.clone(),
            managed: l.managed,
            table: l.table,
            import: vec![],
            export: vec![],
        }
    }

    /// Whether this live speaker stays as it is (its peers and paths with it).
    pub fn keeps(&self, o: &BgpObs) -> bool {
        o.running
            && o.asn == self.asn
            && o.router_id == self.router_id.to_string()
            && o.listen_port == self.listen_port
    }

    fn ledger(&self) -> BgpLedger {
        BgpLedger {
            socket: self.socket.clone(),
            managed: self.managed,
            table: self.table,
        }
    }
}

impl Kind for SpeakerRes {
    fn key(&self) -> ResourceKey {
        ResourceKey::Bgp(super::BgpKey::Speaker)
    }

    fn kind_name(&self) -> String {
        "bgp".into()
    }

    fn title(&self) -> String {
        "speaker".into()
    }

    /// Last: its peers and paths go with it.
    fn delete_rank(&self) -> usize {
        9
    }

    fn diff(&self, r: &Resource, cx: &DiffCx, out: &mut Diff) {
        // From netloom's gobgpd to one at `api`, or back, or to another
        // `api`: the old one stops. (netloom's own socket follows the run
        // directory, as the ledger does: not compared.)
        if let Some(l) = &cx.observed.ledger.bgp
            && (l.managed != self.managed || (!self.managed && l.socket != self.socket))
        {
            let why = match (l.managed, self.managed) {
                (true, false) => format!(
                    "stops netloom's gobgpd and programs the one at {}",
                    self.socket.display()
                ),
                (false, true) => format!(
                    "stops BGP in the gobgpd at {} and starts netloom's own",
                    l.socket.display()
                ),
                _ => format!(
                    "moves BGP from {} to {}",
                    l.socket.display(),
                    self.socket.display()
                ),
            };
            let current = Resource::Bgp(BgpRes::Speaker(SpeakerRes::recorded(l)));
            return out.change(Action::Replace, r, Some(current), vec![], Some(why));
        }
        let Some(o) = cx.observed.bgp.as_ref().filter(|o| o.running) else {
            let why = cx
                .observed
                .ledger
                .bgp
                .is_some()
                .then(|| "gobgpd is not running: starts it and programs it again".to_string());
            return out.change(Action::Create, r, None, vec![], why);
        };
        if o.asn == 0 {
            let why = "gobgpd is running but not started (it keeps nothing across restarts): programs it again";
            return out.change(Action::Create, r, None, vec![], Some(why.into()));
        }
        let mut fields = vec![];
        field(
            &mut fields,
            Side::Own,
            Field::Asn,
            Some(Value::Int(o.asn)),
            Some(Value::Int(self.asn)),
        );
        field(
            &mut fields,
            Side::Own,
            Field::RouterId,
            Some(Value::Text(o.router_id.clone())),
            Some(Value::Text(self.router_id.to_string())),
        );
        field(
            &mut fields,
            Side::Own,
            Field::ListenPort,
            Some(Value::Text(o.listen_port.to_string())),
            Some(Value::Text(self.listen_port.to_string())),
        );
        if !fields.is_empty() {
            let why = "restarts BGP in gobgpd: every session resets";
            return out.change(Action::Replace, r, None, fields, Some(why.into()));
        }
        let names = |l: &[super::GoPolicy]| l.iter().map(|p| p.name.clone()).collect::<Vec<_>>();
        let mut fields = vec![];
        for (have, want, dir) in [
            (&o.import, &self.import, "import"),
            (&o.export, &self.export, "export"),
        ] {
            let have = names(have);
            if &have != want {
                fields.push(crate::diff::FieldChange::new(
                    Side::Own,
                    Field::Policies,
                    Some(Value::Text(format!("{dir} {}", list(&have)))),
                    Some(Value::Text(format!("{dir} {}", list(want)))),
                ));
            }
        }
        if !fields.is_empty() {
            out.change(Action::Update, r, None, fields, None);
        }
    }

    fn details(&self, out: &mut String) {
        let _ = writeln!(
            out,
            "      asn: {}  router_id: {}  {}",
            self.asn,
            self.router_id,
            if self.managed {
                "gobgpd run by netloom".to_string()
            } else {
                format!("gobgpd at {}", self.socket.display())
            }
        );
    }

    fn claim(&self, ledger: &mut Ledger, _: &Observed) -> bool {
        let l = Some(self.ledger());
        if ledger.bgp == l {
            return false;
        }
        ledger.bgp = l;
        true
    }

    fn release(&self, ledger: &mut Ledger) -> bool {
        ledger.bgp.take().is_some()
    }

    fn settle(&self, _: &Ledger, ledger: &mut Ledger) {
        ledger.bgp = Some(self.ledger());
    }

    fn live(&self, o: &Observed) -> String {
        match o.bgp.as_ref() {
            Some(b) if b.running && b.asn != 0 => format!(
                "AS{} router id {}, {} peer(s), {} announced, {} learned",
                b.asn,
                b.router_id,
                b.peers.len(),
                b.local.len(),
                b.best.len()
            ),
            Some(b) if b.running => "gobgpd running, not programmed".into(),
            _ => "gobgpd not running".into(),
        }
    }
}

fn list(v: &[String]) -> String {
    if v.is_empty() {
        "(none)".into()
    } else {
        v.join(", ")
    }
}

pub(super) fn prune(cx: &DiffCx, out: &mut Diff) {
    let key = ResourceKey::Bgp(super::BgpKey::Speaker);
    if cx.desired.contains(&key) {
        return;
    }
    if let Some(l) = &cx.observed.ledger.bgp {
        out.delete(Resource::Bgp(BgpRes::Speaker(SpeakerRes::recorded(l))));
    }
}
