//! BGP over gobgpd's gRPC API: netloom runs one gobgpd per topology in its
//! netns (or drives the one `[bgp] api` names), programs its global config,
//! peers, local paths and policy, and copies the best learned paths into
//! the kernel. gobgpd keeps nothing across restarts; a restarted one is
//! seen as empty and programmed again.

pub mod client;
pub mod daemon;
pub mod observe;
pub mod pb;
pub mod render;

use super::{ApplyCx, Backend, Created, Lane, StepResult, Trigger, TriggerSource};
use crate::backend::kernel::Kernel;
use crate::diff::{Action, Change};
use crate::error::{Error, Result};
use crate::model::{Bgp, Fam, Topology};
use crate::observed::{BgpKernelRoute, BgpObs, Observed};
use crate::ownership::{BGP_ROUTE_METRIC, Ledger, NETLOOM_BGP_PROTO};
use crate::resource::bgp::{PeerRes, RoutesRes, SpeakerRes};
use crate::resource::{BackendId, BgpRes, Resource, RouteKey, RouteRes, Share};
use client::{Gobgp, why};
use futures::future::BoxFuture;
use std::path::PathBuf;
use std::time::Duration;

/// Whether the topology has (or had) a BGP speaker.
pub fn needed(topo: &Topology, ledger: &Ledger) -> bool {
    topo.bgp.is_some() || ledger.bgp.is_some()
}

pub struct BgpBackend {
    topology: String,
    netns: Option<String>,
    bgp: Option<Bgp>,
    socket: PathBuf,
    table: u32,
    /// The table the ledger says learned routes went in before (to prune
    /// them when `table` changes).
    old_table: Option<u32>,
    /// One connection for every call of a run (a channel multiplexes them);
    /// dropped when gobgpd is (re)started.
    conn: tokio::sync::Mutex<Option<Gobgp>>,
}

fn failed(op: &str, object: impl Into<String>, s: &tonic::Status) -> Error {
    Error::Backend {
        backend: BackendId::Bgp,
        op: op.into(),
        object: object.into(),
        errno: None,
        message: format!("gobgpd: {}", why(s)),
    }
}

impl BgpBackend {
    pub fn new(topo: &Topology, ledger: &Ledger) -> BgpBackend {
        let (socket, table) = match (&topo.bgp, &ledger.bgp) {
            (Some(b), _) => (
                b.api
                    .clone()
                    .unwrap_or_else(|| crate::resource::bgp::socket_of(&topo.name)),
                b.table,
            ),
            (None, Some(l)) => (l.socket.clone(), l.table),
            (None, None) => (
                crate::resource::bgp::socket_of(&topo.name),
                crate::model::MAIN_TABLE,
            ),
        };
        BgpBackend {
            topology: topo.name.clone(),
            netns: topo.netns.clone(),
            bgp: topo.bgp.clone(),
            socket,
            table,
            old_table: ledger.bgp.as_ref().map(|l| l.table).filter(|t| *t != table),
            conn: tokio::sync::Mutex::new(None),
        }
    }

    async fn client(&self) -> Result<Gobgp> {
        let mut conn = self.conn.lock().await;
        if let Some(c) = conn.as_ref() {
            return Ok(c.clone());
        }
        let c = Gobgp::connect(&self.socket, Duration::from_secs(2))
            .await
            .map_err(|e| Error::Unavailable {
                backend: BackendId::Bgp,
                message: format!("cannot reach gobgpd at {}: {e}", self.socket.display()),
            })?;
        *conn = Some(c.clone());
        Ok(c)
    }

    /// Forgets the connection (gobgpd is being replaced).
    async fn reconnect(&self) {
        *self.conn.lock().await = None;
    }

    async fn kernel(&self) -> Result<Option<Kernel>> {
        Kernel::connect(self.netns.as_deref()).await
    }

    async fn observe_all(&self, into: &mut BgpObs) -> std::result::Result<(), tonic::Status> {
        let Ok(mut c) = Gobgp::connect(&self.socket, Duration::from_secs(1)).await else {
            return Ok(());
        };
        let g = match c.get_bgp().await {
            Ok(g) => g,
            // A socket that does not answer: not running, for our purposes.
            Err(_) => return Ok(()),
        };
        into.running = true;
        into.asn = g.asn;
        into.router_id = g.router_id;
        into.listen_port = g.listen_port;
        if g.asn == 0 {
            return Ok(());
        }
        // Three independent reads, on one multiplexed connection.
        let (mut c2, mut c3) = (c.clone(), c.clone());
        let (mut rib, mut pol) = (BgpObs::default(), BgpObs::default());
        let mut accepted = std::collections::HashMap::new();
        let (peers, r, p) = tokio::join!(
            observe::peers(&mut c),
            observe::rib(&mut c2, &mut rib, &mut accepted),
            observe::policies(&mut c3, &mut pol)
        );
        into.peers = peers?;
        for p in &mut into.peers {
            p.accepted = accepted.get(&p.address).copied().unwrap_or(0);
        }
        r?;
        p?;
        (into.local, into.best) = (rib.local, rib.best);
        (into.import, into.export) = (pol.import, pol.export);
        Ok(())
    }

    /// The whole policy configuration the files ask for, and soft resets so
    /// routes already received and sent meet it.
    async fn push_policies(&self, c: &mut Gobgp) -> Result<()> {
        let Some(b) = &self.bgp else { return Ok(()) };
        let (import, export) = crate::resource::bgp::compile_policies(b);
        let (req, assignments) = render::policies(&import, &export);
        c.set_policies(req)
            .await
            .map_err(|s| failed("set", "BGP policies", &s))?;
        for a in assignments {
            c.set_assignment(a)
                .await
                .map_err(|s| failed("assign", "BGP policies", &s))?;
        }
        for p in b.peers.values() {
            // A session that is not up has nothing to re-evaluate.
            let _ = c
                .soft_reset(&p.address.to_string(), pb::SOFT_RESET_BOTH)
                .await;
        }
        Ok(())
    }

    async fn start(&self, s: &SpeakerRes, c: Option<Gobgp>) -> Result<Gobgp> {
        let mut c = match c {
            Some(c) => c,
            None => self.client().await?,
        };
        let g = pb::Global {
            asn: s.asn,
            router_id: s.router_id.to_string(),
            listen_port: s.listen_port,
            listen_addresses: vec![],
        };
        c.start_bgp(g)
            .await
            .map_err(|e| failed("start", "BGP in gobgpd", &e))?;
        self.push_policies(&mut c).await?;
        Ok(c)
    }

    async fn speaker(&self, c: &Change, s: &SpeakerRes) -> Result<()> {
        match c.action {
            Action::Create => {
                // Whatever was connected before may be a gobgpd that is gone.
                self.reconnect().await;
                let reachable = match Gobgp::connect(&self.socket, Duration::from_secs(1)).await {
                    Ok(mut g) => g.get_bgp().await.ok().map(|gl| (g, gl.asn)),
                    Err(_) => None,
                };
                match reachable {
                    Some((g, 0)) => self.start(s, Some(g)).await.map(|_| ()),
                    // Started meanwhile (another run): programming it again is idempotent.
                    Some((mut g, _)) => self.push_policies(&mut g).await,
                    None if s.managed => {
                        // A hung gobgpd of ours holds the socket: replace it.
                        self.reconnect().await;
                        daemon::stop(&self.topology, &self.socket).await?;
                        daemon::start(&self.topology, self.netns.as_deref(), &self.socket).await?;
                        self.start(s, None).await.map(|_| ())
                    }
                    None => Err(Error::Unavailable {
                        backend: BackendId::Bgp,
                        message: format!(
                            "gobgpd at {} does not answer: start it, or remove [bgp] api to let netloom run one",
                            self.socket.display()
                        ),
                    }),
                }
            }
            Action::Replace
                if let Some(Resource::Bgp(BgpRes::Speaker(old))) = c.current.as_deref()
                    && (old.managed != s.managed || (!s.managed && old.socket != s.socket)) =>
            {
                self.reconnect().await;
                if old.managed {
                    daemon::stop(&self.topology, &old.socket).await?;
                } else if let Ok(mut g) = Gobgp::connect(&old.socket, Duration::from_secs(1)).await
                {
                    let _ = g.stop_bgp().await;
                }
                let create = Change {
                    action: Action::Create,
                    current: None,
                    ..c.clone()
                };
                Box::pin(self.speaker(&create, s)).await
            }
            Action::Replace => {
                let mut g = self.client().await?;
                g.stop_bgp()
                    .await
                    .map_err(|e| failed("stop", "BGP in gobgpd", &e))?;
                self.start(s, Some(g)).await.map(|_| ())
            }
            Action::Update => {
                let mut g = self.client().await?;
                self.push_policies(&mut g).await
            }
            Action::Delete => {
                self.reconnect().await;
                if s.managed {
                    daemon::stop(&self.topology, &s.socket).await
                } else {
                    match self.client().await {
                        Ok(mut g) => g
                            .stop_bgp()
                            .await
                            .map_err(|e| failed("stop", "BGP in gobgpd", &e)),
                        Err(_) => Ok(()),
                    }
                }
            }
        }
    }

    async fn peer(&self, c: &Change, p: &PeerRes) -> Result<()> {
        let mut g = self.client().await?;
        let addr = p.address.to_string();
        let what = format!("BGP peer {}", p.name);
        match c.action {
            Action::Delete => g
                .delete_peer(&addr)
                .await
                .map_err(|e| failed("delete", what, &e)),
            Action::Replace => {
                let _ = g.delete_peer(&addr).await;
                g.add_peer(peer_message(p))
                    .await
                    .map_err(|e| failed("add", what, &e))
            }
            Action::Create | Action::Update => match g.add_peer(peer_message(p)).await {
                Ok(()) => Ok(()),
                // Re-applied after a restart that kept it: nothing to do.
                Err(e) if why(&e).contains("existing peer") => Ok(()),
                Err(e) => Err(failed("add", what, &e)),
            },
        }
    }

    async fn routes(&self, c: &Change, r: &RoutesRes, cx: &ApplyCx<'_>) -> Result<()> {
        let Some(k) = self.kernel().await? else {
            return Err(Error::no_netns(self.netns.as_deref()));
        };
        let have: Vec<&BgpKernelRoute> = cx
            .observed
            .bgp
            .iter()
            .flat_map(|b| &b.kernel)
            .filter(|x| x.table == r.table)
            .collect();
        let want = if c.action == Action::Delete {
            vec![]
        } else {
            r.routes.clone()
        };
        let route = |to, via| RouteRes {
            key: RouteKey {
                table: r.table,
                to,
                metric: BGP_ROUTE_METRIC,
            },
            via: Some(via),
            dev: None,
            nexthops: vec![],
        };
        // Sets, not pairwise scans: a full table is a million comparisons.
        let wanted: std::collections::HashSet<(ipnet::IpNet, std::net::IpAddr)> =
            want.iter().copied().collect();
        let present: std::collections::HashSet<(ipnet::IpNet, Option<std::net::IpAddr>)> =
            have.iter().map(|h| (h.prefix, h.via)).collect();
        for h in &have {
            if !h.via.is_some_and(|v| wanted.contains(&(h.prefix, v))) {
                let mut x = route(h.prefix, h.via.unwrap_or(h.prefix.addr()));
                x.via = h.via;
                k.delete_route_as(&x, NETLOOM_BGP_PROTO).await?;
            }
        }
        let missing: Vec<RouteRes> = want
            .iter()
            .filter(|(p, v)| !present.contains(&(*p, Some(*v))))
            .map(|(p, v)| route(*p, *v))
            .collect();
        let mut adds = vec![];
        for x in &missing {
            let k = k.clone();
            adds.push(
                Box::pin(async move { k.replace_route_as(x, NETLOOM_BGP_PROTO).await })
                    as BoxFuture<'_, Result<()>>,
            );
        }
        let results: Vec<Result<()>> = futures::stream::iter(adds)
            .buffer_unordered(64)
            .collect()
            .await;
        // One route the kernel refuses (a next hop not on a connected
        // network) must not keep the others out: all are tried, then the
        // refused ones are reported.
        let refused: Vec<String> = results
            .into_iter()
            .filter_map(|r| r.err().map(|e| e.to_string()))
            .collect();
        if refused.is_empty() {
            Ok(())
        } else {
            Err(Error::State(format!(
                "{} learned route(s) refused by the kernel: {}",
                refused.len(),
                refused.join("; ")
            )))
        }
    }

    async fn apply_one(&self, c: &Change, cx: &ApplyCx<'_>) -> Result<()> {
        let Some(Share::Bgp(b)) = c.resource().map(Resource::share) else {
            return Err(super::not_mine(self, c));
        };
        match b {
            BgpRes::Speaker(s) => self.speaker(c, s).await,
            BgpRes::Peer(p) => self.peer(c, p).await,
            BgpRes::Announce(a) => {
                let mut g = self.client().await?;
                let path = render::announcement(a.prefix);
                let what = format!("BGP announcement {}", a.prefix);
                match c.action {
                    Action::Delete => g
                        .delete_path(path)
                        .await
                        .map_err(|e| failed("withdraw", what, &e)),
                    _ => g
                        .add_path(path)
                        .await
                        .map_err(|e| failed("announce", what, &e)),
                }
            }
            BgpRes::Policy(_) => {
                let mut g = self.client().await?;
                self.push_policies(&mut g).await
            }
            BgpRes::Routes(r) => self.routes(c, r, cx).await,
        }
    }
}

use futures::StreamExt as _;

/// gobgpd's peer message for a desired peer.
pub fn peer_message(p: &PeerRes) -> pb::Peer {
    pb::Peer {
        conf: Some(pb::PeerConf {
            auth_password: p
                .password
                .as_ref()
                .map(|s| s.expose().to_string())
                .unwrap_or_default(),
            description: String::new(),
            neighbor_address: p.address.to_string(),
            peer_asn: p.asn,
        }),
        ebgp_multihop: p.multihop.map(|ttl| pb::EbgpMultihop {
            enabled: true,
            multihop_ttl: ttl,
        }),
        state: None,
        timers: Some(pb::Timers {
            config: Some(pb::TimersConfig {
                // gobgpd's default of 120 s makes a lost session slow to return.
                connect_retry: 5,
                hold_time: u64::from(p.hold_time),
                keepalive_interval: u64::from(p.hold_time / 3),
            }),
            state: None,
        }),
        transport: Some(pb::Transport {
            passive_mode: p.passive,
        }),
        afi_safis: p
            .families
            .iter()
            .map(|f| {
                let family = Some(pb::Family::unicast(*f == Fam::Ipv6));
                pb::AfiSafi {
                    config: Some(pb::AfiSafiConfig {
                        family: family.clone(),
                        enabled: true,
                    }),
                    state: None,
                    prefix_limits: p.max_prefixes.map(|m| pb::PrefixLimit {
                        family,
                        max_prefixes: m,
                    }),
                }
            })
            .collect(),
    }
}

impl Backend for BgpBackend {
    fn id(&self) -> BackendId {
        BackendId::Bgp
    }

    fn lane(&self) -> Lane {
        Lane::Concurrent(32)
    }

    fn observe<'a>(
        &'a mut self,
        _topo: &'a Topology,
        into: &'a mut Observed,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut obs = BgpObs::default();
            self.observe_all(&mut obs)
                .await
                .map_err(|s| failed("read", "gobgpd's state", &s))?;
            if into.netns_exists
                && let Some(k) = self.kernel().await?
            {
                for table in std::iter::once(self.table).chain(self.old_table) {
                    for r in k.table_routes(table).await? {
                        if r.protocol == NETLOOM_BGP_PROTO {
                            obs.kernel.push(BgpKernelRoute {
                                table,
                                prefix: r.route.key.to,
                                via: r.route.via,
                            });
                        } else if r.route.key.metric == BGP_ROUTE_METRIC && table == self.table {
                            // Someone else's route where a learned one would go.
                            obs.kernel_taken.push(r.route.key.to);
                        }
                    }
                }
                obs.kernel.sort();
            }
            into.bgp = Some(obs);
            Ok(())
        })
    }

    fn apply<'a>(&'a self, c: &'a Change, cx: &'a ApplyCx<'a>) -> BoxFuture<'a, Result<Created>> {
        Box::pin(async move { self.apply_one(c, cx).await.map(|()| vec![]) })
    }

    /// New announcements go to gobgpd in one AddPathStream call; the rest
    /// run in the lane.
    fn apply_stage<'a>(
        &'a self,
        stage: Vec<&'a Change>,
        cx: &'a ApplyCx<'a>,
    ) -> BoxFuture<'a, Vec<StepResult>> {
        Box::pin(async move {
            let (adds, rest): (Vec<&Change>, Vec<&Change>) = stage.into_iter().partition(|c| {
                c.action != Action::Delete
                    && matches!(c.resource(), Some(Resource::Bgp(BgpRes::Announce(_))))
            });
            let mut out = super::run_in_lane(self, rest, cx).await;
            if adds.len() > 1 {
                let paths = adds
                    .iter()
                    .filter_map(|c| match c.resource() {
                        Some(Resource::Bgp(BgpRes::Announce(a))) => {
                            Some(render::announcement(a.prefix))
                        }
                        _ => None,
                    })
                    .collect();
                let r = match self.client().await {
                    Ok(mut g) => g
                        .add_paths(paths, 250)
                        .await
                        .map_err(|e| failed("announce", format!("{} prefixes", adds.len()), &e)),
                    Err(e) => Err(e),
                };
                for c in adds {
                    let one = match &r {
                        Ok(()) => Ok(vec![]),
                        Err(e) => Err(Error::State(e.to_string())),
                    };
                    out.push((c.step_name(), one));
                }
            } else {
                out.extend(super::run_in_lane(self, adds, cx).await);
            }
            out
        })
    }

    fn triggers(&self) -> Vec<TriggerSource> {
        if self.bgp.is_none() {
            return vec![];
        }
        let socket = self.socket.clone();
        vec![TriggerSource {
            id: format!("bgp:{}", socket.display()),
            start: Box::new(move |tx| Some(tokio::spawn(events(socket, tx)))),
        }]
    }

    /// Learned routes live in the topology's netns, and gobgpd runs there.
    fn runs_in_netns(&self) -> bool {
        true
    }
}

/// gobgpd's peer and best-path events as triggers; the stream ending
/// (gobgpd died) is a trigger too, so the next reconcile restarts it.
async fn events(socket: PathBuf, tx: tokio::sync::mpsc::UnboundedSender<Trigger>) {
    loop {
        if let Ok(mut c) = Gobgp::connect(&socket, Duration::from_secs(1)).await
            && let Ok(mut s) = c.watch().await
        {
            while let Ok(Some(_)) = s.message().await {
                if tx.send(Trigger::Bgp).is_err() {
                    return;
                }
            }
            if tx.send(Trigger::Bgp).is_err() {
                return;
            }
        }
        if tx.is_closed() {
            return;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}
