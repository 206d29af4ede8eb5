//! Direct container wiring as a `Backend`: veths with one end inside a
//! container's netns (to a topology bridge, or to another container), and
//! routes there. Each running wired container is reached through an open
//! fd on its netns; the netlink work itself is `Kernel`'s.

mod netns_groups;
mod probe;

use crate::backend::kernel::{ContainerNet, IN_FLIGHT, Kernel, events};
use crate::backend::{ApplyCx, Backend, Created, Lane, Probe, TriggerSource};
use crate::diff::{Action, Change};
use crate::error::{Error, Result};
use crate::model::Topology;
use crate::observed::{ContainerNetObs, Observed};
use crate::ownership::Ledger;
use crate::plan::Plan;
use crate::resource::{BackendId, IfacePeer, IfaceRes, Resource, Share, WiringRes};
use futures::StreamExt;
use futures::future::BoxFuture;
use std::collections::{BTreeSet, HashMap};

/// Containers whose netns are read at once while observing.
const OBSERVE_IN_FLIGHT: usize = 8;

pub struct WiringBackend {
    netns: Option<String>,
    /// The topology's netns, where host ends of bridge interfaces live.
    kernel: Option<Kernel>,
    /// The netns of each running container the topology wires.
    containers: HashMap<String, ContainerNet>,
}

/// Containers whose netns netloom works in: declared with interfaces,
/// routes or a readiness probe, named by a link, or wired by an earlier apply.
pub fn wired_containers(topo: &Topology, ledger: &Ledger) -> BTreeSet<String> {
    let mut out: BTreeSet<String> = topo
        .containers
        .values()
        .filter(|c| {
            !c.interfaces.is_empty()
                || !c.routes.is_empty()
                || c.ready.is_some()
                || !c.loopback.is_empty()
                || !c.sysctls.is_empty()
        })
        .map(|c| c.name.clone())
        .collect();
    for l in &topo.links {
        out.insert(l.a.0.clone());
        out.insert(l.b.0.clone());
    }
    out.extend(ledger.wired.iter().cloned());
    out
}

impl WiringBackend {
    pub fn new(topo: &Topology) -> WiringBackend {
        WiringBackend {
            netns: topo.netns.clone(),
            kernel: None,
            containers: HashMap::new(),
        }
    }

    /// The connection into a running container's netns.
    fn netns_of(&self, container: &str) -> Result<&ContainerNet> {
        self.containers
            .get(container)
            .ok_or_else(|| Error::State(format!("container {container} is not running")))
    }

    fn host(&self) -> Result<&Kernel> {
        self.kernel
            .as_ref()
            .ok_or_else(|| Error::no_netns(self.netns.as_deref()))
    }

    async fn create(&self, d: &IfaceRes, replace: bool, cx: &ApplyCx<'_>) -> Result<()> {
        let here = self.netns_of(&d.container)?;
        if replace {
            here.kernel.delete_by_name(&d.name).await?;
        }
        match &d.peer {
            IfacePeer::Bridge { host, bridge } => {
                let bridge = cx.idx.get(bridge)?;
                self.host()?
                    .create_container_iface(d, host, bridge, cx.mark, here)
                    .await
            }
            IfacePeer::Container {
                container,
                name,
                addresses,
            } => {
                let there = self.netns_of(container)?;
                there.kernel.delete_by_name(name).await?; // a broken pair's leftover end
                here.kernel
                    .create_container_link(d, name, addresses, cx.mark, there, container)
                    .await
            }
            IfacePeer::Unknown => Err(Error::State(format!(
                "{}:{}: no peer to create",
                d.container, d.name
            ))),
        }
    }

    async fn update(&self, d: &IfaceRes, cx: &ApplyCx<'_>) -> Result<()> {
        let here = self.netns_of(&d.container)?;
        let p2p = matches!(d.peer, IfacePeer::Container { .. });
        here.kernel
            .configure_end(
                &d.container,
                &d.name,
                d.mtu,
                cx.mark,
                &d.addresses,
                false,
                p2p,
            )
            .await?;
        match &d.peer {
            IfacePeer::Bridge { host, bridge } => {
                let bridge = cx.idx.get(bridge)?;
                self.host()?
                    .configure_host_end(host, bridge, d.mtu, cx.mark)
                    .await
            }
            IfacePeer::Container {
                container,
                name,
                addresses,
            } => {
                self.netns_of(container)?
                    .kernel
                    .configure_end(container, name, d.mtu, cx.mark, addresses, false, true)
                    .await
            }
            IfacePeer::Unknown => Ok(()),
        }
    }
}

impl Backend for WiringBackend {
    fn id(&self) -> BackendId {
        BackendId::Wiring
    }

    fn lane(&self) -> Lane {
        Lane::Concurrent(IN_FLIGHT)
    }

    /// Inside each running wired container (a fresh netns after a restart).
    fn observe<'a>(
        &'a mut self,
        topo: &'a Topology,
        into: &'a mut Observed,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            // The topology's netns is reached in `prepare`, only when
            // something is applied: observing needs no connection there.
            let running: Vec<(String, u32)> = wired_containers(topo, &into.ledger)
                .into_iter()
                .filter_map(|name| {
                    let c = into.container(&name).filter(|c| c.running() && c.pid > 0)?;
                    Some((name, c.pid))
                })
                .collect();
            // All netns are entered from one thread, then dumped several at
            // a time; a thread per netns, one after another, made 200
            // containers take 100 ms.
            let nets = ContainerNet::open_many(&running);
            let ledger = &into.ledger;
            let seen: Vec<Result<Option<(String, ContainerNet, ContainerNetObs)>>> =
                futures::stream::iter(running.into_iter().zip(nets))
                    .map(|((name, _), opened)| async move {
                        // The container may stop between inspect and open:
                        // then it is pending.
                        let Ok(net) = opened else {
                            return Ok(None);
                        };
                        let mut seen = net.kernel.observe_container().await?;
                        let mut keys: Vec<String> = topo
                            .containers
                            .get(&name)
                            .map(|c| c.sysctls.keys().cloned().collect())
                            .unwrap_or_default();
                        if let Some(m) = ledger.container_sysctls.get(&name) {
                            keys.extend(m.keys().cloned());
                        }
                        keys.sort();
                        keys.dedup();
                        seen.sysctls = net.kernel.read_sysctls(keys).await?;
                        Ok(Some((name, net, seen)))
                    })
                    .buffer_unordered(OBSERVE_IN_FLIGHT)
                    .collect()
                    .await;
            for r in seen {
                if let Some((name, net, obs)) = r? {
                    into.containers.insert(name.clone(), obs);
                    self.containers.insert(name, net);
                }
            }
            netns_groups::mark_shared(topo, &mut into.containers, &self.containers);
            Ok(())
        })
    }

    /// Host ends go into the topology's netns, which may be new.
    fn prepare<'a>(&'a mut self, _plan: &'a Plan) -> BoxFuture<'a, Result<Vec<String>>> {
        Box::pin(async move {
            if self.kernel.is_none() {
                self.kernel = Kernel::connect(self.netns.as_deref()).await?;
            }
            Ok(vec![])
        })
    }

    fn apply<'a>(&'a self, c: &'a Change, cx: &'a ApplyCx<'a>) -> BoxFuture<'a, Result<Created>> {
        Box::pin(async move {
            let Some(Share::Wiring(res)) = c.resource().map(|r| r.share()) else {
                return Err(crate::backend::not_mine(self, c));
            };
            match (c.action, res) {
                (Action::Create, WiringRes::Iface(d)) => self.create(d, false, cx).await,
                (Action::Replace, WiringRes::Iface(d)) => self.create(d, true, cx).await,
                (Action::Update, WiringRes::Iface(d)) => self.update(d, cx).await,
                // A container that is gone took its interfaces with it.
                (Action::Delete, WiringRes::Iface(cur)) => {
                    match self.containers.get(&cur.container) {
                        Some(n) => n.kernel.delete_by_name(&cur.name).await,
                        None => Ok(()),
                    }
                }
                (
                    Action::Create | Action::Update | Action::Replace,
                    WiringRes::ContainerRoute(r),
                ) => {
                    let kernel = &self.netns_of(&r.container)?.kernel;
                    let route = r.as_route();
                    let named =
                        route.dev.is_some() || route.nexthops.iter().any(|h| h.dev.is_some());
                    let idx = if named {
                        kernel.index().await?
                    } else {
                        crate::backend::Index::default()
                    };
                    kernel.replace_route(&route, &idx).await?;
                    // A metric is part of a route's identity: the old one goes.
                    if let Some(Resource::ContainerRoute(cur)) = c.current.as_deref()
                        && cur.metric() != r.metric()
                    {
                        kernel.delete_route(&cur.as_route()).await?;
                    }
                    Ok(())
                }
                (Action::Delete, WiringRes::Loopback(l)) => match self.containers.get(&l.container)
                {
                    Some(n) => n.kernel.set_loopback(&BTreeSet::new(), &l.addresses).await,
                    None => Ok(()),
                },
                (_, WiringRes::Loopback(l)) => {
                    let mine = match c.current.as_deref() {
                        Some(Resource::Loopback(cur)) => cur.addresses.clone(),
                        _ => BTreeSet::new(),
                    };
                    let kernel = &self.netns_of(&l.container)?.kernel;
                    kernel.set_loopback(&l.addresses, &mine).await
                }
                (Action::Delete, WiringRes::Sysctl(s)) => match self
                    .containers
                    .get(s.container.as_deref().unwrap_or_default())
                {
                    Some(n) => n.kernel.set_sysctl(s).await,
                    None => Ok(()),
                },
                (_, WiringRes::Sysctl(s)) => {
                    let c = s.container.as_deref().unwrap_or_default();
                    self.netns_of(c)?.kernel.set_sysctl(s).await
                }
                (Action::Delete, WiringRes::ContainerRoute(r)) => {
                    match self.containers.get(&r.container) {
                        Some(n) => n.kernel.delete_route(&r.as_route()).await,
                        None => Ok(()),
                    }
                }
            }
            .map(|()| vec![])
        })
    }

    /// One netlink subscription inside each wired container's netns, by
    /// netns inode (a restart makes a new one).
    fn triggers(&self) -> Vec<TriggerSource> {
        self.containers
            .values()
            .filter_map(|n| {
                let fd = n.fd.try_clone().ok()?;
                let id = format!("netlink/container/{}", events::inode(&fd)?);
                Some(TriggerSource {
                    id,
                    start: Box::new(move |tx| events::subscribe(Some(&fd), tx)),
                })
            })
            .collect()
    }

    fn probe<'a>(
        &'a self,
        topo: &'a Topology,
        waiting: &'a BTreeSet<String>,
    ) -> BoxFuture<'a, Vec<Probe>> {
        Box::pin(probe::readiness(topo, &self.containers, waiting))
    }
}
