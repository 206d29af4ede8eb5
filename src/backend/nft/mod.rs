//! Services on nftables: one table per topology and netns
//! (`inet netloom-<topology>`), replaced in one `nft -f` transaction per
//! apply, read back with `nft -j` by its rules' comments. No other table is
//! ever created, changed or deleted.

mod conntrack;
mod generation;
pub mod render;

use super::{ApplyCx, Backend, Lane, StepResult, Whole};
use crate::backend::Created;
use crate::diff::Change;
use crate::error::{Error, Result};
use crate::model::Topology;
use crate::observed::{NftObs, Observed};
use crate::ownership::Ledger;
use crate::resource::{BackendId, Resource, ServiceRes};
use futures::future::BoxFuture;
use std::io::Write as _;
use std::process::{Command, Stdio};

pub use render::rules_of;

/// One netns's nftables state as observation needs it.
#[derive(serde::Serialize, serde::Deserialize)]
struct Listed {
    /// netloom's table (`None`: there is none).
    table: Option<NftObs>,
    /// The other tables there (topology's netns only).
    foreign: Vec<String>,
}

/// The rules an `nft -e -a` run added, as (chain, comment, handle).
fn echoed(out: &str) -> Vec<(String, String, u64)> {
    let mut rules = vec![];
    for line in out.lines() {
        let Some((body, handle)) = line.rsplit_once(" # handle ") else {
            continue;
        };
        let Ok(handle) = handle.trim().parse::<u64>() else {
            continue;
        };
        // add rule inet TABLE CHAIN … comment "COMMENT"
        let mut w = body.split(' ');
        if (w.next(), w.next()) != (Some("add"), Some("rule")) {
            continue;
        }
        let chain = w.nth(2).unwrap_or_default().to_string();
        let comment = body
            .rsplit_once(" comment \"")
            .map(|(_, c)| c.trim_end_matches('"').to_string())
            .unwrap_or_default();
        rules.push((chain, comment, handle));
    }
    rules
}

/// The last listing per netns, keyed by (netns inode, generation), under
/// the run directory.
mod cache {
    use super::Listed;
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

    /// After a change in place: the cached listing with the changed
    /// services' rules replaced by those the kernel echoed, valid for the
    /// new generation only if that change was the one commit since the
    /// listing. Otherwise the cache goes (the next observation lists).
    pub fn update(
        path: &Path,
        changed: &[&str],
        kept: &[String],
        added: Vec<(String, String, u64)>,
        generation: Option<u32>,
    ) {
        let entry: Option<Entry> = std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok());
        let next = match (entry, generation) {
            (Some(e), Some(g)) if e.stamp.1.wrapping_add(1) == g => Some((e, g)),
            _ => None,
        };
        let Some((e, g)) = next else {
            tracing::debug!(
                ?generation,
                "nft cache dropped: another commit since the listing"
            );
            let _ = std::fs::remove_file(path);
            return;
        };
        let Some(mut t) = e.listed.table else {
            let _ = std::fs::remove_file(path);
            return;
        };
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
        t.by_service = Default::default();
        let listed = Listed {
            table: Some(t),
            foreign: e.listed.foreign,
        };
        write(path, (e.stamp.0, g), &listed);
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
            services: topo
                .services
                .values()
                .map(|s| ServiceRes::from_model(s, topo))
                .collect(),
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

    /// Runs `nft` in a location's netns with `stdin`.
    async fn nft(
        &self,
        host: bool,
        args: &[&str],
        stdin: Option<String>,
    ) -> Result<std::process::Output> {
        let args: Vec<String> = args.iter().map(|a| a.to_string()).collect();
        self.in_netns(
            host,
            "run nft (Debian: apt-get install nftables)",
            move || {
                let mut child = Command::new("nft")
                    .args(&args)
                    .stdin(Stdio::piped())
                    .stdout(Stdio::piped())
                    .stderr(Stdio::piped())
                    .spawn()?;
                if let (Some(text), Some(mut w)) = (stdin, child.stdin.take()) {
                    w.write_all(text.as_bytes())?;
                }
                child.wait_with_output()
            },
        )
        .await
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
        let stamp = self.stamp(host).await;
        let cache = cache::path(&self.topology, host);
        if let Some(hit) = stamp.and_then(|s| cache::read(&cache, s)) {
            return Ok(Some(hit));
        }
        let table = self.list_table(host).await?;
        let foreign = if host {
            vec![]
        } else {
            self.foreign_tables().await?
        };
        let listed = Listed { table, foreign };
        if let Some(s) = stamp {
            cache::write(&cache, s, &listed);
        }
        Ok(Some(listed))
    }

    /// (netns inode, nftables generation): a netns made anew restarts its count.
    async fn stamp(&self, host: bool) -> Option<(u64, u32)> {
        self.in_netns(host, "read the nftables generation", || {
            use std::os::unix::fs::MetadataExt;
            let ino = std::fs::metadata("/proc/thread-self/ns/net")?.ino();
            Ok((ino, generation::current()?))
        })
        .await
        .ok()
    }

    /// The table as observation describes it, from its rules in order.
    async fn table_obs(
        &self,
        host: bool,
        rules: Vec<(String, String)>,
        handles: Vec<u64>,
    ) -> Result<NftObs> {
        let base: Vec<(&str, &str)> = rules
            .iter()
            .filter(|(_, c)| c == render::BASE)
            .map(|(ch, c)| (ch.as_str(), c.as_str()))
            .collect();
        let base_ok = base == render::BASE_RULES && rules.iter().all(|(_, c)| c.starts_with("nl "));
        Ok(NftObs {
            host,
            rules,
            base_ok,
            local: vec![],
            handles,
            by_service: Default::default(),
        })
    }

    async fn list_table(&self, host: bool) -> Result<Option<NftObs>> {
        let out = self
            .nft(host, &["-j", "list", "table", "inet", &self.table], None)
            .await?;
        if !out.status.success() {
            let err = String::from_utf8_lossy(&out.stderr);
            if err.contains("No such file or directory") {
                return Ok(None);
            }
            return Err(self.failed("list", &err));
        }
        let v: serde_json::Value = serde_json::from_slice(&out.stdout)
            .map_err(|e| self.failed("list", &format!("unreadable JSON: {e}")))?;
        let (mut rules, mut handles) = (vec![], vec![]);
        for o in v["nftables"].as_array().into_iter().flatten() {
            if let Some(r) = o.get("rule") {
                rules.push((
                    r["chain"].as_str().unwrap_or_default().to_string(),
                    r["comment"].as_str().unwrap_or_default().to_string(),
                ));
                handles.push(r["handle"].as_u64().unwrap_or_default());
            }
        }
        self.table_obs(host, rules, handles).await.map(Some)
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
        let out = self.nft(false, &["list", "tables"], None).await?;
        Ok(String::from_utf8_lossy(&out.stdout)
            .lines()
            .filter_map(|l| l.strip_prefix("table "))
            .filter(|t| *t != format!("inet {}", self.table))
            .map(str::to_string)
            .collect())
    }

    fn failed(&self, op: &str, message: &str) -> Error {
        Error::Backend {
            backend: BackendId::Nft,
            op: format!("nft {op}"),
            object: format!("table inet {}", self.table),
            errno: None,
            message: message.trim().to_string(),
        }
    }

    /// Brings one location's table to every desired service there,
    /// endpoints resolved against what was observed, in one transaction:
    /// only the `changed` services when the table is netloom's as it
    /// should be, else the whole table anew.
    async fn sync(&self, host: bool, observed: &Observed, changed: &[&str]) -> Result<()> {
        let here = self.resolved(host, observed);
        self.write(host, observed, changed, &here).await?;
        // Right after the rules moved, whatever fails next: the next
        // apply's "before" would no longer know the endpoints taken out.
        self.flush_stale(host, observed, &here).await;
        if !host {
            let wanted: Vec<std::net::IpAddr> =
                here.iter().flat_map(|s| s.vips.iter().copied()).collect();
            // What observation saw: no second dump on the apply path.
            let have = observed.nft_table(false).map(|t| t.local.as_slice());
            self.local_routes(&wanted, have).await?;
        }
        Ok(())
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
        match self.kernel().await? {
            Some(k) => Ok(k
                .local_routes()
                .await?
                .into_iter()
                .map(|n| n.addr())
                .collect()),
            None => Ok(vec![]),
        }
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
        for v in want.difference(&have) {
            k.set_local_route(*v, true).await?;
        }
        for v in have.difference(&want) {
            k.set_local_route(*v, false).await?;
        }
        Ok(())
    }

    /// After the rules moved: UDP flows still held by endpoints taken out.
    async fn flush_stale(&self, host: bool, observed: &Observed, after: &[ServiceRes]) {
        let Some(before) = observed.nft_table(host) else {
            return;
        };
        let stale = conntrack::stale(before, after);
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
        if let Some(d) = in_place {
            // Echoed with handles (the kernel's account of the rules it
            // added) only when a later change will need them: echo makes
            // nft read the whole table first.
            let args: &[&str] = if d.echo {
                &["-e", "-a", "-f", "-"]
            } else {
                &["-f", "-"]
            };
            let out = self.nft(host, args, Some(d.script)).await?;
            if out.status.success() {
                let added = if d.echo {
                    echoed(&String::from_utf8_lossy(&out.stdout))
                } else {
                    // Committed whole or not at all; handles not needed.
                    d.written.into_iter().map(|(c, m)| (c, m, 0)).collect()
                };
                // Asked after the commit: one more than at the listing
                // means no one else's commit came in between.
                let generation = self
                    .in_netns(host, "read the nftables generation", generation::current)
                    .await
                    .ok();
                cache::update(
                    &cache::path(&self.topology, host),
                    changed,
                    &d.kept,
                    added,
                    generation,
                );
                return Ok(());
            }
            // The table moved since it was observed: write it whole.
            tracing::debug!(stderr = %String::from_utf8_lossy(&out.stderr), "nft change in place refused; replacing the table");
        }
        // Whole: echoed, so the table written is known without listing it
        // again, if this was the one commit in between.
        let before = self.stamp(host).await;
        let script = render::script(&self.table, here);
        let echo = !here.is_empty();
        let args: &[&str] = if echo {
            &["-e", "-a", "-f", "-"]
        } else {
            &["-f", "-"]
        };
        let out = self.nft(host, args, Some(script)).await?;
        if !out.status.success() {
            return Err(self.failed("-f", &String::from_utf8_lossy(&out.stderr)));
        }
        let path = cache::path(&self.topology, host);
        match (echo, before, self.stamp(host).await) {
            (true, Some(s0), Some(s1)) if s1.0 == s0.0 && s1.1 == s0.1.wrapping_add(1) => {
                let (mut rules, mut handles) = (vec![], vec![]);
                for (chain, comment, handle) in echoed(&String::from_utf8_lossy(&out.stdout)) {
                    rules.push((chain, comment));
                    handles.push(handle);
                }
                let table = self.table_obs(host, rules, handles).await?;
                let foreign = if host {
                    vec![]
                } else {
                    self.foreign_tables().await?
                };
                let listed = Listed {
                    table: Some(table),
                    foreign,
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
                if let Some(mut l) = self.observe_one(host).await? {
                    if !host {
                        into.nft_foreign = l.foreign;
                        if let Some(t) = &mut l.table {
                            t.local = self.local_vips().await?;
                        }
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
                let script = render::script(&self.table, &[]);
                let out = self.nft(host, &["-f", "-"], Some(script)).await?;
                if !out.status.success() {
                    return Err(self.failed("-f", &String::from_utf8_lossy(&out.stderr)));
                }
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

#[cfg(test)]
mod tests {
    #[test]
    fn echoed_rules_give_chain_comment_and_handle() {
        // As nft 1.0.6 echoes a transaction (`nft -e -a -f`).
        let out = "add chain inet t svc-a # handle 2009\n\
                   add rule inet t services ip daddr 10.76.0.8 tcp dport 80 goto svc-a comment \"nl svc a to 10.76.0.8 tcp/80\" # handle 8089\n\
                   add rule inet t ep-a-0 meta l4proto tcp dnat ip to 10.75.1.1:8080 comment \"nl svc a ep c0 10.75.1.1:8080\" # handle 8092\n";
        assert_eq!(
            super::echoed(out),
            [
                (
                    "services".to_string(),
                    "nl svc a to 10.76.0.8 tcp/80".to_string(),
                    8089
                ),
                (
                    "ep-a-0".to_string(),
                    "nl svc a ep c0 10.75.1.1:8080".to_string(),
                    8092
                ),
            ]
        );
    }
}
