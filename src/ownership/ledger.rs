//! The per-topology record of routes and rules netloom created.
//!
//! Links carry their topology in their ifalias, but routes and rules only
//! have an 8-bit protocol number: it says "netloom made this", not which
//! topology did. The ledger (under the run directory, a tmpfs that lives
//! exactly as long as the kernel state it describes) names the topology.
//! A key is written *before* the object is created, so a crash can leave a
//! stale entry (harmless: it is dropped on the next apply) but never an
//! object nobody owns.

use crate::resource::{AttachKey, CniEntry, RouteKey, RuleKey};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};
use std::io::{self, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ledger {
    /// The netns the topology was applied to (`None`: the host's).
    #[serde(default)]
    pub netns: Option<String>,
    #[serde(default)]
    pub routes: BTreeSet<RouteKey>,
    #[serde(default)]
    pub rules: BTreeSet<RuleKey>,
    /// Container attachments netloom made (on external networks too).
    #[serde(default)]
    pub attachments: BTreeSet<AttachKey>,
    /// The container each recorded attachment was made for, by id: a
    /// container re-created under the same name is someone else's.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub attached_ids: BTreeSet<(AttachKey, String)>,
    /// Routes netloom added inside containers.
    #[serde(default)]
    pub container_routes: BTreeSet<(String, ipnet::IpNet)>,
    /// Addresses netloom put on containers' `lo`, by container.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub loopback: std::collections::BTreeMap<String, BTreeSet<ipnet::IpNet>>,
    /// Sysctls netloom set in the topology's netns: key → the value before.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub sysctls: std::collections::BTreeMap<String, String>,
    /// The same inside containers, by container.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub container_sysctls:
        std::collections::BTreeMap<String, std::collections::BTreeMap<String, String>>,
    /// Containers netloom wired (interfaces, links, routes), to prune them
    /// after their sections are gone.
    #[serde(default)]
    pub wired: BTreeSet<String>,
    /// Set once the topology has made anything in Docker, so a topology
    /// whose Docker sections are all removed still prunes them.
    #[serde(default)]
    pub docker: bool,
    /// Docker networks adopted (`adopt = true`), name → id: a network's
    /// labels cannot be changed, so its owner is recorded here.
    #[serde(default, skip_serializing_if = "std::collections::BTreeMap::is_empty")]
    pub networks: std::collections::BTreeMap<String, String>,
    /// Links in the topology's netns being made: written before the create
    /// (a link gets its mark in a second request), so a link left unmarked
    /// by a crash in between is known as this topology's. Cleared once an
    /// apply succeeds (everything is marked then).
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub links: BTreeSet<String>,
    /// Container interfaces being made, as (container, interface): the same
    /// for ends inside containers.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub ifaces: BTreeSet<(String, String)>,
    /// The topology's netns was created by this topology (written before
    /// the create; the mark on its `lo` follows in a second step).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub made_netns: bool,
    /// CNI attachments netloom made (recorded before the ADD): only these
    /// are ever DEL'ed.
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub cni: BTreeSet<CniEntry>,
    /// Where netloom made an nftables table for services: "host", "netns".
    #[serde(default, skip_serializing_if = "BTreeSet::is_empty")]
    pub nft: BTreeSet<String>,
    /// The BGP speaker netloom programs for this topology (recorded before
    /// it is started), so destroy and prunes stop it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub bgp: Option<BgpLedger>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BgpLedger {
    /// gobgpd's API socket.
    pub socket: PathBuf,
    /// netloom started this gobgpd (else: an existing one at `[bgp] api`).
    pub managed: bool,
    /// The kernel table learned routes go in.
    #[serde(default = "main_table")]
    pub table: u32,
}

fn main_table() -> u32 {
    crate::model::MAIN_TABLE
}

/// Where locks and ledgers live: `$NETLOOM_RUN_DIR`, else `/run/netloom`.
pub fn run_dir() -> PathBuf {
    std::env::var_os("NETLOOM_RUN_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/run/netloom"))
}

/// Replaces `target` atomically with `bytes`, mode 0600.
pub fn write_private(target: &Path, bytes: &[u8]) -> io::Result<()> {
    // A temporary name of this writer's own: two writers of one file (tests
    // of one process share a topology name) must not rename each other's.
    static N: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let mut tmp = target.as_os_str().to_owned();
    tmp.push(format!(".{}.{n}.tmp", std::process::id()));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)?;
    // A file left from before keeps its mode: set it.
    f.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    f.write_all(bytes)?;
    drop(f);
    std::fs::rename(tmp, target)
}

fn path(dir: &Path, topology: &str) -> PathBuf {
    dir.join(format!("{topology}.ledger.json"))
}

impl Ledger {
    pub fn load(topology: &str) -> io::Result<Ledger> {
        match std::fs::read(path(&run_dir(), topology)) {
            Ok(bytes) => serde_json::from_slice(&bytes)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(Ledger::default()),
            Err(e) => Err(e),
        }
    }

    /// Writes atomically (temp file + rename), readable by root only: it
    /// names what the topology made (and, later, secrets' digests).
    pub fn save(&self, topology: &str) -> io::Result<()> {
        let dir = run_dir();
        std::fs::create_dir_all(&dir)?;
        write_private(&path(&dir, topology), &serde_json::to_vec_pretty(self)?)
    }

    pub fn remove(topology: &str) -> io::Result<()> {
        // What the Docker backend kept of its last inspects goes with it.
        let _ = std::fs::remove_file(crate::backend::docker::inspect_cache_path(topology));
        match std::fs::remove_file(path(&run_dir(), topology)) {
            Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
            _ => Ok(()),
        }
    }

    /// The container id an attachment was made for, if recorded.
    /// Docker networks other topologies adopted (they carry no label):
    /// network id → topology, from every other ledger in the run dir.
    pub fn networks_adopted_elsewhere(topology: &str) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        let Ok(dir) = std::fs::read_dir(run_dir()) else {
            return out;
        };
        for e in dir.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Some(other) = name.strip_suffix(".ledger.json") else {
                continue;
            };
            if other == topology {
                continue;
            }
            if let Ok(l) = Ledger::load(other) {
                for id in l.networks.into_values() {
                    out.insert(id, other.to_string());
                }
            }
        }
        out
    }

    pub fn attached_id(&self, k: &AttachKey) -> Option<&str> {
        self.attached_ids
            .iter()
            .find(|(key, _)| key == k)
            .map(|(_, id)| id.as_str())
    }

    pub fn is_empty(&self) -> bool {
        self.routes.is_empty()
            && self.rules.is_empty()
            && self.attachments.is_empty()
            && !self.docker
            && self.networks.is_empty()
            && self.wired.is_empty()
            && self.links.is_empty()
            && self.ifaces.is_empty()
            && self.cni.is_empty()
            && self.nft.is_empty()
            && self.bgp.is_none()
    }

    /// The CNI attachment recorded for this container interface.
    pub fn cni_entry(&self, container: &str, ifname: &str) -> Option<&CniEntry> {
        self.cni
            .iter()
            .find(|e| e.container == container && e.ifname == ifname)
    }
}
