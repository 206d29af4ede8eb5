//! What `docker inspect` said about running containers, kept between runs
//! in the run directory: inspecting is one round trip per container (200
//! containers: ~40 ms of a no-op plan's ~125 ms), and what only inspect
//! tells (the init pid, the sandbox, each endpoint's aliases and requested
//! addresses) cannot change while the container's process and endpoints
//! live.
//!
//! An entry stands for a listed container only if its init process is
//! still the one inspected (same pid, same start time in `/proc`) and the
//! list shows the same endpoint ids on the same networks: a restart makes
//! a new process, a disconnect or connect a new endpoint. Anything else is
//! inspected again.

use crate::observed::EndpointObs;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Entry {
    pub pid: u32,
    /// The init process's start time (clock ticks since boot).
    started: u64,
    pub sandbox: Option<String>,
    /// Network name → endpoint id, as listed.
    endpoint_ids: BTreeMap<String, String>,
    /// Network name → the endpoint as inspected.
    pub endpoints: BTreeMap<String, EndpointObs>,
}

#[derive(Debug, Default, Serialize, Deserialize)]
pub struct Inspected {
    version: String,
    /// By container id.
    containers: BTreeMap<String, Entry>,
    /// Something was put or dropped since it was read.
    #[serde(skip)]
    changed: bool,
}

pub fn path(topology: &str) -> PathBuf {
    crate::ownership::ledger::run_dir().join(format!("{topology}.docker-inspect.json"))
}

/// The start time of process `pid`, field 22 of `/proc/PID/stat`.
fn started(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces and parentheses.
    let rest = &stat[stat.rfind(')')? + 1..];
    rest.split_whitespace().nth(19)?.parse().ok()
}

impl Inspected {
    /// Entries written by this version of netloom; none if unreadable.
    pub fn read(path: &Path) -> Inspected {
        std::fs::read(path)
            .ok()
            .and_then(|b| serde_json::from_slice::<Inspected>(&b).ok())
            .filter(|i| i.version == env!("CARGO_PKG_VERSION"))
            .unwrap_or_default()
    }

    /// The entry for container `id`, if it still stands (see the module).
    pub fn get(&self, id: &str, endpoint_ids: &BTreeMap<String, String>) -> Option<&Entry> {
        let e = self.containers.get(id)?;
        let whole = !endpoint_ids.values().any(String::is_empty);
        (whole && e.pid > 0 && &e.endpoint_ids == endpoint_ids && started(e.pid) == Some(e.started))
            .then_some(e)
    }

    /// Keeps what was inspected of a running container.
    pub fn put(
        &mut self,
        id: &str,
        pid: u32,
        sandbox: Option<String>,
        endpoint_ids: BTreeMap<String, String>,
        endpoints: BTreeMap<String, EndpointObs>,
    ) {
        let Some(started) = started(pid).filter(|_| pid > 0) else {
            return;
        };
        if endpoint_ids.values().any(String::is_empty) {
            return;
        }
        let e = Entry {
            pid,
            started,
            sandbox,
            endpoint_ids,
            endpoints,
        };
        if self.containers.get(id) != Some(&e) {
            self.containers.insert(id.to_string(), e);
            self.changed = true;
        }
    }

    /// Keeps only `ids` (containers listed now).
    pub fn retain(&mut self, ids: &std::collections::BTreeSet<&str>) {
        let before = self.containers.len();
        self.containers.retain(|id, _| ids.contains(id.as_str()));
        self.changed |= self.containers.len() != before;
    }

    /// Written if anything changed, atomically and readable by root only
    /// as the ledger is. A run that cannot write it only inspects again
    /// next time.
    pub fn write(mut self, path: &Path) {
        if !self.changed {
            return;
        }
        self.version = env!("CARGO_PKG_VERSION").to_string();
        if let Ok(json) = serde_json::to_vec(&self) {
            let _ = crate::ownership::ledger::write_private(path, &json);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ids(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(n, e)| (n.to_string(), e.to_string()))
            .collect()
    }

    #[test]
    fn an_entry_stands_only_for_the_same_process_and_endpoints() {
        let me = std::process::id();
        let mut i = Inspected::default();
        i.put("c1", me, None, ids(&[("net", "ep1")]), BTreeMap::new());
        assert!(i.get("c1", &ids(&[("net", "ep1")])).is_some());
        // Reconnected: a new endpoint.
        assert!(i.get("c1", &ids(&[("net", "ep2")])).is_none());
        // Connected to one more network.
        assert!(i.get("c1", &ids(&[("net", "ep1"), ("b", "ep3")])).is_none());
        assert!(i.get("c2", &ids(&[("net", "ep1")])).is_none());
        // Restarted: the start time no longer matches.
        i.containers.get_mut("c1").unwrap().started += 1;
        assert!(i.get("c1", &ids(&[("net", "ep1")])).is_none());
        // A half-made endpoint is never kept.
        i.put("c3", me, None, ids(&[("net", "")]), BTreeMap::new());
        assert!(!i.containers.contains_key("c3"));
    }

    #[test]
    fn reads_its_own_start_time() {
        assert!(started(std::process::id()).is_some_and(|t| t > 0));
        assert_eq!(started(0), None);
    }
}
