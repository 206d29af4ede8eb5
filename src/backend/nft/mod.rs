//! Services on nftables: one table per topology and netns
//! (`inet netloom-<topology>`), changed in one nf_tables transaction per
//! apply (spoken over netlink, see `wire`), read back by its rules'
//! comments. No other table is ever created, changed or deleted.

mod conntrack;
mod expr;
mod generation;
pub mod render;
mod wire;

use super::{ApplyCx, Backend, Lane, StepResult, Whole};
use crate::backend::Created;
use crate::diff::Change;
use crate::error::{Error, Result};
use crate::model::Topology;
use crate::observed::{NftObs, Observed};
use crate::ownership::Ledger;
use crate::resource::{BackendId, Resource, ServiceRes};
use futures::future::BoxFuture;

pub use render::rules_match;

/// One netns's nftables state as observation needs it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Listed {
    /// netloom's table (`None`: there is none).
    table: Option<NftObs>,
    /// The other tables there (topology's netns only).
    foreign: Vec<String>,
}

/// The last listing per netns, keyed by (netns inode, generation), under
/// the run directory.
mod cache {
    use super::Listed;
    use crate::observed::NftObs;
    use std::path::{Path, PathBuf};

    #[derive(serde::Serialize, serde::Deserialize)]
    struct Entry {
        version: String,
        stamp: (u64, u32),
        listed: Listed,
    }

    pub fn path(topology: &str, host: bool) -> PathBuf {
        let at = if host { "host" } else { "netns" };
        crate::ownership::ledger::run_dir().join(format!("{topology}.nft-{at}.json"))
    }

    pub fn read(path: &Path, stamp: (u64, u32)) -> Option<Listed> {
        let e: Entry = serde_json::from_slice(&std::fs::read(path).ok()?).ok()?;
        (e.version == env!("CARGO_PKG_VERSION") && e.stamp == stamp).then_some(e.listed)
    }

    /// After a change in place: the listing observation saw (`seen`, true
    /// at its stamp) with the changed services' rules replaced by those
    /// written, valid for the new generation only if that change was the
    /// one commit since. Otherwise the cache goes (the next observation
    /// lists).
    pub fn update(
        path: &Path,
        seen: &NftObs,
        foreign: &[String],
        changed: &[&str],
        kept: &[String],
        added: Vec<(String, String, u64)>,
        after: Option<(u64, u32)>,
    ) {
        let next = match (seen.stamp, after) {
            (Some(s0), Some(s1)) if s0.0 == s1.0 && s0.1.wrapping_add(1) == s1.1 => Some(s1),
            _ => None,
        };
        let Some(stamp) = next else {
            tracing::debug!(
                ?after,
                "nft cache dropped: another commit since the listing"
            );
            let _ = std::fs::remove_file(path);
            return;
        };
        let mut t = seen.clone();
        // Rewritten: a changed service's rules, but the dispatch rules of
        // those whose dispatch was left in place.
        let rewritten = |(chain, comment): &(String, String)| {
            let Some(n) = comment
                .strip_prefix("nl svc ")
                .and_then(|r| r.split(' ').next())
            else {
                return false;
            };
            let shared = chain == "services" || chain == "noep";
            changed.contains(&n) && !(shared && kept.iter().any(|k| k == n))
        };
        let (mut rules, mut handles) = (vec![], vec![]);
        for (i, r) in t.rules.iter().enumerate() {
            if !rewritten(r) {
                rules.push(r.clone());
                handles.push(t.handles.get(i).copied().unwrap_or_default());
            }
        }
        for (chain, comment, handle) in added {
            rules.push((chain, comment));
            handles.push(handle);
        }
        t.rules = rules;
        t.handles = handles;
        t.local = vec![];
        t.by_service = Default::default();
        let listed = Listed {
            table: Some(t),
            foreign: foreign.to_vec(),
        };
        write(path, stamp, &listed);
    }

    /// Best effort: a cache that cannot be written is only a slower plan.
    pub fn write(path: &Path, stamp: (u64, u32), listed: &Listed) {
        let e = Entry {
            version: env!("CARGO_PKG_VERSION").into(),
            stamp,
            listed: Listed {
                table: listed.table.clone(),
                foreign: listed.foreign.clone(),
            },
        };
        if let Ok(bytes) = serde_json::to_vec(&e) {
            let _ = std::fs::create_dir_all(crate::ownership::ledger::run_dir());
            let _ = crate::ownership::write_private(path, &bytes);
        }
    }
}

/// Whether this netns's kernel answers nf_tables: its ruleset generation.
pub fn probe() -> std::io::Result<u32> {
    generation::current()
}

/// Whether the topology has (or had) services.
pub fn needed(topo: &Topology, ledger: &Ledger) -> bool {
    !topo.services.is_empty() || !ledger.nft.is_empty()
}

pub fn table_name(topology: &str) -> String {
    format!("netloom-{topology}")
}

pub struct NftBackend {
    topology: String,
    table: String,
    netns: Option<String>,
    services: Vec<ServiceRes>,
    /// Where the last observation found a table (host: true).
    seen: Vec<bool>,
}

impl NftBackend {
    pub fn new(topo: &Topology) -> NftBackend {
        NftBackend {
            topology: topo.name.clone(),
            table: table_name(&topo.name),
            netns: topo.netns.clone(),
            services: ServiceRes::all_of(topo),
            seen: vec![],
        }
    }

    /// The netns of a location: `None` is the host's.
    fn netns_of(&self, host: bool) -> Option<&str> {
        if host { None } else { self.netns.as_deref() }
    }

    /// Runs `f` on a blocking thread inside a location's netns.
    async fn in_netns<T: Send + 'static>(
        &self,
        host: bool,
        what: &str,
        f: impl FnOnce() -> std::io::Result<T> + Send + 'static,
    ) -> Result<T> {
        let ns = self.netns_of(host).map(str::to_string);
        let run = move || match &ns {
            None => f(),
            Some(n) => crate::netns::run_in(Some(&crate::netns::open(n)?), f)?,
        };
        tokio::task::spawn_blocking(run)
            .await
            .map_err(|e| Error::task(what, e))?
            .map_err(|e| Error::io(what.to_string(), e))
    }

    /// The table here, and the other tables here: from the cache when the
    /// ruleset's generation has not moved since it was listed.
    async fn observe_one(&self, host: bool) -> Result<Option<Listed>> {
        if !host
            && self
                .netns
                .as_deref()
                .is_some_and(|n| !crate::netns::exists(n))
        {
            return Ok(None);
        }
        // The (netns inode, generation) stamp (a netns made anew restarts
        // its count), and in the topology's netns the VIPs' local routes
        // (not covered by the generation): on one thread there.
        let (stamp, local) = self
            .in_netns(
                host,
                "read the nftables generation and the VIP routes",
                move || {
                    let local = if host {
                        vec![]
                    } else {
                        crate::backend::kernel::local_vips_here()?
                    };
                    Ok((generation::stamp().ok(), local))
                },
            )
            .await?;
        let cache = cache::path(&self.topology, host);
        if let Some(mut hit) = stamp.and_then(|s| cache::read(&cache, s)) {
            if let Some(t) = &mut hit.table {
                t.stamp = stamp;
                t.local = local;
            }
            return Ok(Some(hit));
        }
        let mut listed = self.list(host).await?;
        if let Some(s) = stamp {
            cache::write(&cache, s, &listed);
        }
        if let Some(t) = &mut listed.table {
            t.stamp = stamp;
            t.local = local;
        }
        Ok(Some(listed))
    }

    /// The table as observation describes it, from its rules in order.
    fn table_obs(&self, host: bool, rules: Vec<(String, String)>, handles: Vec<u64>) -> NftObs {
        let base: Vec<(&str, &str)> = rules
            .iter()
            .filter(|(_, c)| c == render::BASE)
            .map(|(ch, c)| (ch.as_str(), c.as_str()))
            .collect();
        let base_ok = base == render::BASE_RULES && rules.iter().all(|(_, c)| c.starts_with("nl "));
        NftObs {
            host,
            rules,
            base_ok,
            local: vec![],
            handles,
            by_service: Default::default(),
            stamp: None,
        }
    }

    /// netloom's table and the others here, from the kernel (two dumps).
    async fn list(&self, host: bool) -> Result<Listed> {
        let ours = format!("inet {}", self.table);
        let table = self.table.clone();
        let (tables, rules) = self
            .in_netns(host, "read nftables over netlink", move || {
                let tables = wire::tables()?;
                let rules = if tables.contains(&ours) {
                    Some(wire::rules(&table)?)
                } else {
                    None
                };
                Ok((tables, rules))
            })
            .await?;
        let foreign = if host {
            vec![]
        } else {
            let ours = format!("inet {}", self.table);
            tables.into_iter().filter(|t| *t != ours).collect()
        };
        let table = match rules {
            Some(rs) => {
                let (rules, handles) = rs
                    .into_iter()
                    .map(|r| ((r.chain, r.comment), r.handle))
                    .unzip();
                Some(self.table_obs(host, rules, handles))
            }
            None => None,
        };
        Ok(Listed { table, foreign })
    }

    /// Forwarding in the topology's netns is a sysctl of the model's (see
    /// `model::service::forwarding`); the host's is Docker's to set.
    async fn bridge_hooks_off(&self) -> Result<()> {
        if self.netns.is_none() {
            return Ok(());
        }
        self.in_netns(
            false,
            "turn off bridge netfilter hooks in the topology's netns",
            move || {
                // With br_netfilter loaded (Docker loads it), a connection
                // DNATed back to the endpoint it came from would be bridged out
                // of the port it came in by, which a bridge refuses: hairpin
                // fails. Service traffic here is routed, so the bridge-level
                // hooks are turned off in this netns.
                for f in ["bridge-nf-call-iptables", "bridge-nf-call-ip6tables"] {
                    let p = format!("/proc/sys/net/bridge/{f}");
                    if std::path::Path::new(&p).exists() {
                        std::fs::write(&p, "0")?;
                    }
                }
                Ok(())
            },
        )
        .await
    }

    /// Tables in the topology's netns other than netloom's.
    async fn foreign_tables(&self) -> Result<Vec<String>> {
        if self
            .netns
            .as_deref()
            .is_none_or(|n| !crate::netns::exists(n))
        {
            return Ok(vec![]);
        }
        // The tables only: netloom's rules are not needed here.
        let ours = format!("inet {}", self.table);
        let tables = self
            .in_netns(false, "read nftables over netlink", wire::tables)
            .await?;
        Ok(tables.into_iter().filter(|t| *t != ours).collect())
    }

    /// Commits a batch in a location's netns, reading the ruleset's
    /// generation just before and just after it.
    async fn commit(&self, host: bool, batch: wire::Batch) -> Result<Committed> {
        let (before, result, after) = self
            .in_netns(host, "write nftables over netlink", move || {
                let sock = wire::open(batch.size())?;
                let before = generation::stamp_on(&sock).ok();
                let result = batch.commit(&sock);
                let after = generation::stamp_on(&sock).ok();
                wire::close_later(sock);
                Ok((before, result, after))
            })
            .await?;
        Ok(Committed {
            before,
            result,
            after,
        })
    }

    fn refused(&self, r: wire::Refused) -> Error {
        match r {
            wire::Refused::Io(e) => Error::io(
                format!("write table inet {} over nf_tables netlink", self.table),
                e,
            ),
            wire::Refused::Kernel { what, errno } => Error::Backend {
                backend: BackendId::Nft,
                op: "nf_tables transaction".into(),
                object: format!("table inet {}", self.table),
                errno: Some(errno),
                message: format!(
                    "the kernel refused {what}: {} (nothing was changed: the transaction is whole or not at all)",
                    std::io::Error::from_raw_os_error(errno)
                ),
            },
        }
    }

    /// Brings one location's table to every desired service there,
    /// endpoints resolved against what was observed, in one transaction:
    /// only the `changed` services when the table is netloom's as it
    /// should be, else the whole table anew.
    async fn sync(&self, host: bool, observed: &Observed, changed: &[&str]) -> Result<()> {
        let here = self.resolved(host, observed);
        // The VIPs' local routes do not depend on the rules: set alongside.
        let routes = async {
            if host {
                return Ok(());
            }
            let wanted: Vec<std::net::IpAddr> =
                here.iter().flat_map(|s| s.vips.iter().copied()).collect();
            // What observation saw: no second dump on the apply path.
            let have = observed.nft_table(false).map(|t| t.local.as_slice());
            self.local_routes(&wanted, have).await
        };
        let (written, routed) = tokio::join!(self.write(host, observed, changed, &here), routes);
        written?;
        // Right after the rules moved, whatever fails next: the next
        // apply's "before" would no longer know the endpoints taken out.
        self.flush_stale(host, observed, &here, changed).await;
        routed
    }

    /// The desired services of one location, endpoints resolved against
    /// what was observed.
    fn resolved(&self, host: bool, observed: &Observed) -> Vec<ServiceRes> {
        let mut here: Vec<ServiceRes> = self
            .services
            .iter()
            .filter(|s| s.host == host)
            .cloned()
            .collect();
        for s in &mut here {
            s.endpoints = s.resolve(observed);
        }
        here
    }

    /// The topology's netns, connected (None while it does not exist).
    async fn kernel(&self) -> Result<Option<crate::backend::kernel::Kernel>> {
        match self.netns.as_deref() {
            Some(n) => crate::backend::kernel::Kernel::connect(Some(n)).await,
            None => Ok(None),
        }
    }

    /// VIPs with a local route of netloom's in the topology's netns.
    async fn local_vips(&self) -> Result<Vec<std::net::IpAddr>> {
        if self
            .netns
            .as_deref()
            .is_none_or(|n| !crate::netns::exists(n))
        {
            return Ok(vec![]);
        }
        self.in_netns(
            false,
            "dump the VIPs' local routes",
            crate::backend::kernel::local_vips_here,
        )
        .await
    }

    /// Makes the local routes in the topology's netns exactly `wanted`,
    /// from `have` as observed (None: dump them now).
    async fn local_routes(
        &self,
        wanted: &[std::net::IpAddr],
        have: Option<&[std::net::IpAddr]>,
    ) -> Result<()> {
        use std::collections::HashSet;
        let want: HashSet<std::net::IpAddr> = wanted.iter().copied().collect();
        let have: HashSet<std::net::IpAddr> = match have {
            Some(h) => h.iter().copied().collect(),
            None => self.local_vips().await?.into_iter().collect(),
        };
        if want == have {
            return Ok(());
        }
        let Some(k) = self.kernel().await? else {
            return Ok(());
        };
        let add: Vec<std::net::IpAddr> = want.difference(&have).copied().collect();
        let del: Vec<std::net::IpAddr> = have.difference(&want).copied().collect();
        k.set_local_routes(&add, &del).await
    }

    /// After the rules moved: UDP flows still held by endpoints taken out.
    async fn flush_stale(
        &self,
        host: bool,
        observed: &Observed,
        after: &[ServiceRes],
        changed: &[&str],
    ) {
        let Some(before) = observed.nft_table(host) else {
            return;
        };
        let stale = conntrack::stale(before, after, changed);
        if stale.is_empty() {
            return;
        }
        match self
            .in_netns(host, "flush conntrack entries", move || {
                conntrack::flush(&stale)
            })
            .await
        {
            Ok(n) => tracing::debug!(deleted = n, "UDP flows to removed endpoints flushed"),
            Err(e) => tracing::warn!(
                "cannot flush UDP flows to removed endpoints ({e}); they keep reaching them until they time out (Debian: apt-get install conntrack)"
            ),
        }
    }

    async fn write(
        &self,
        host: bool,
        observed: &Observed,
        changed: &[&str],
        here: &[ServiceRes],
    ) -> Result<()> {
        if !here.is_empty() && !host {
            self.bridge_hooks_off().await?;
        }
        let in_place = observed
            .nft_table(host)
            .filter(|t| t.base_ok && !here.is_empty())
            .and_then(|t| {
                let pairs: Vec<(&str, Option<&ServiceRes>)> = changed
                    .iter()
                    .map(|n| (*n, here.iter().find(|s| s.name == *n)))
                    .collect();
                render::delta(&self.table, &pairs, here, t)
            });
        let path = cache::path(&self.topology, host);
        if let Some(d) = in_place {
            let t0 = std::time::Instant::now();
            let n = d.writer.batch.len();
            let c = self.commit(host, d.writer.batch).await?;
            tracing::debug!(messages = n, elapsed = ?t0.elapsed(), "nft services changed in place");
            match c.result {
                Ok(echoed) => {
                    // The kernel's account of the dispatch rules added (their
                    // handles); the others' handles are never needed.
                    let handles = by_rule(echoed);
                    let added = d
                        .written
                        .into_iter()
                        .map(|(c, m)| {
                            let h = handles.get(&(c.clone(), m.clone())).copied();
                            (c, m, h.unwrap_or_default())
                        })
                        .collect();
                    // One more than at the listing means no one else's
                    // commit came in between.
                    if let Some(seen) = observed.nft_table(host) {
                        cache::update(
                            &path,
                            seen,
                            &observed.nft_foreign,
                            changed,
                            &d.kept,
                            added,
                            c.after,
                        );
                    }
                    return Ok(());
                }
                // The table moved since it was observed: write it whole.
                Err(r) => {
                    tracing::debug!(error = %r, "nf_tables change in place refused; replacing the table")
                }
            }
        }
        let t0 = std::time::Instant::now();
        let (w, written) = render::whole(&self.table, here);
        let (t1, n) = (t0.elapsed(), w.batch.len());
        let c = self.commit(host, w.batch).await?;
        tracing::debug!(encoded = ?t1, messages = n, elapsed = ?t0.elapsed(), "nft table written whole");
        let echoed = c.result.map_err(|r| self.refused(r))?;
        match (c.before, c.after) {
            (Some(s0), Some(s1))
                if !here.is_empty() && s1.0 == s0.0 && s1.1 == s0.1.wrapping_add(1) =>
            {
                // The table written is known without listing it again.
                let handles = by_rule(echoed);
                let (rules, handles) = written
                    .into_iter()
                    .map(|r| {
                        let h = handles.get(&r).copied().unwrap_or_default();
                        (r, h)
                    })
                    .unzip();
                let listed = Listed {
                    table: Some(self.table_obs(host, rules, handles)),
                    foreign: if host {
                        vec![]
                    } else {
                        observed.nft_foreign.clone()
                    },
                };
                cache::write(&path, s1, &listed);
            }
            _ => {
                let _ = std::fs::remove_file(&path);
            }
        }
        Ok(())
    }
}

/// The rules the kernel echoed, by (chain, comment).
fn by_rule(echoed: Vec<wire::RuleSeen>) -> std::collections::HashMap<(String, String), u64> {
    echoed
        .into_iter()
        .map(|r| ((r.chain, r.comment), r.handle))
        .collect()
}

/// A batch's outcome, with the generation before and after it.
struct Committed {
    before: Option<(u64, u32)>,
    result: std::result::Result<Vec<wire::RuleSeen>, wire::Refused>,
    after: Option<(u64, u32)>,
}

impl Backend for NftBackend {
    fn id(&self) -> BackendId {
        BackendId::Nft
    }

    fn lane(&self) -> Lane {
        Lane::Serial
    }

    fn observe<'a>(
        &'a mut self,
        _topo: &'a Topology,
        into: &'a mut Observed,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            let mut out = vec![];
            for host in [true, false] {
                let wanted = self.services.iter().any(|s| s.host == host)
                    || into
                        .ledger
                        .nft
                        .contains(if host { "host" } else { "netns" });
                // Without a netns of its own, the topology's is the host's.
                if !host && self.netns.is_none() {
                    continue;
                }
                if !wanted {
                    // Destroy still asks whether the topology's netns holds
                    // tables of others.
                    if !host {
                        into.nft_foreign = self.foreign_tables().await?;
                    }
                    continue;
                }
                if let Some(l) = self.observe_one(host).await? {
                    if !host {
                        into.nft_foreign = l.foreign;
                    }
                    out.extend(l.table);
                }
            }
            self.seen = out.iter().map(|t| t.host).collect();
            into.nft = out;
            Ok(())
        })
    }

    /// destroy removes the tables whole (whatever services they hold).
    fn whole<'a>(&'a self, _t: &'a Topology, o: &'a Observed) -> BoxFuture<'a, Result<Whole>> {
        Box::pin(async move {
            if o.nft.is_empty() {
                return Ok(Whole::No);
            }
            Ok(Whole::Yes {
                what: format!("nftables table inet {}", self.table),
            })
        })
    }

    fn remove_whole<'a>(&'a mut self, _t: &'a Topology) -> BoxFuture<'a, Result<()>> {
        Box::pin(async move {
            for host in self.seen.clone() {
                // Gone already with the topology's netns (removed whole first).
                if !host
                    && self
                        .netns
                        .as_deref()
                        .is_some_and(|n| !crate::netns::exists(n))
                {
                    continue;
                }
                let (w, _) = render::whole(&self.table, &[]);
                let c = self.commit(host, w.batch).await?;
                c.result.map_err(|r| self.refused(r))?;
                if !host {
                    self.local_routes(&[], None).await?;
                }
                let _ = std::fs::remove_file(cache::path(&self.topology, host));
            }
            Ok(())
        })
    }

    fn apply<'a>(&'a self, c: &'a Change, cx: &'a ApplyCx<'a>) -> BoxFuture<'a, Result<Created>> {
        Box::pin(async move {
            let Some(Resource::Service(s)) = c.resource() else {
                return Err(crate::backend::not_mine(self, c));
            };
            self.sync(s.host, cx.observed, &[s.name.as_str()])
                .await
                .map(|()| vec![])
        })
    }

    /// One transaction per location, whatever the number of services changed.
    fn apply_stage<'a>(
        &'a self,
        stage: Vec<&'a Change>,
        cx: &'a ApplyCx<'a>,
    ) -> BoxFuture<'a, Vec<StepResult>> {
        Box::pin(async move {
            let mut out = vec![];
            for host in [true, false] {
                let mine: Vec<&Change> = stage
                    .iter()
                    .copied()
                    .filter(
                        |c| matches!(c.resource(), Some(Resource::Service(s)) if s.host == host),
                    )
                    .collect();
                if mine.is_empty() {
                    continue;
                }
                let names: Vec<&str> = mine
                    .iter()
                    .filter_map(|c| match c.resource() {
                        Some(Resource::Service(s)) => Some(s.name.as_str()),
                        _ => None,
                    })
                    .collect();
                let r = self.sync(host, cx.observed, &names).await;
                for c in mine {
                    let one = match &r {
                        Ok(()) => Ok(vec![]),
                        Err(e) => Err(Error::State(e.to_string())),
                    };
                    out.push((c.step_name(), one));
                }
            }
            out
        })
    }
}
