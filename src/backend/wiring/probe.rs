//! Readiness probes: a ping from inside a container after apply.

use crate::backend::Probe;
use crate::backend::kernel::ContainerNet;
use crate::error::Error;
use crate::model::Topology;
use std::collections::{BTreeSet, HashMap};

/// The readiness probes of running containers. Containers that are not
/// running, or whose wiring waits (a peer stopped), are skipped: they
/// cannot answer yet, which is not a failure.
pub async fn readiness(
    topo: &Topology,
    containers: &HashMap<String, ContainerNet>,
    waiting: &BTreeSet<String>,
) -> Vec<Probe> {
    let mut out = vec![];
    for c in topo.containers.values() {
        if waiting.contains(&c.name)
            || c.ready
                .as_ref()
                .is_some_and(|r| waiting.contains(&r.ping.to_string()))
        {
            continue;
        }
        let (Some(ready), Some(net)) = (&c.ready, containers.get(&c.name)) else {
            continue;
        };
        let fd = match net.fd.try_clone() {
            Ok(fd) => fd,
            Err(e) => {
                let e = Error::io(format!("open the netns of {}", c.name), e);
                out.push((c.name.clone(), ready.ping.to_string(), Err(e)));
                continue;
            }
        };
        let (dst, timeout, tries) = (
            ready.ping,
            std::time::Duration::from_millis(ready.timeout_ms),
            ready.retries,
        );
        let r =
            tokio::task::spawn_blocking(move || crate::netns::ping(&fd, dst, timeout, tries)).await;
        let r = match r {
            Ok(Ok(Some(rtt))) => Ok(rtt),
            Ok(Ok(None)) => Err(Error::State(format!(
                "no reply after {tries} tries of {} ms",
                timeout.as_millis()
            ))),
            // The kernel refuses echo requests to a broadcast address.
            Ok(Err(e)) if e.raw_os_error() == Some(13) => Err(Error::State(format!(
                "{e} (a broadcast address? `ready.ping` takes one host's address)"
            ))),
            Ok(Err(e)) => Err(Error::State(e.to_string())),
            Err(e) => Err(Error::task("ping", e)),
        };
        out.push((c.name.clone(), dst.to_string(), r));
    }
    out
}
