//! The Docker backend over bollard: observe networks and containers, create
//! and remove networks, connect and disconnect containers.
//!
//! Docker 20.10 serializes network changes in the daemon and answers
//! concurrent ones slower, so changes go one at a time; reads run in parallel.

use crate::error::{Error, Result};
use crate::observed::{ContainerObs, DockerObs, EndpointObs, Health, NetworkObs};
use crate::ownership::{HASH_LABEL, TOPOLOGY_LABEL};
use crate::resource::{AttachRes, BackendId, NetworkRes};
use bollard::Docker;
use bollard::models::{
    EndpointIpamConfig, EndpointSettings, Ipam, IpamConfig, NetworkConnectRequest,
    NetworkCreateRequest, NetworkDisconnectRequest,
};
use bollard::query_parameters::ListContainersOptionsBuilder;
use futures::StreamExt;
use ipnet::IpNet;
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::net::IpAddr;

const DEFAULT_SOCKET: &str = "unix:///var/run/docker.sock";

#[derive(Clone)]
pub struct DockerApi {
    client: Docker,
}

fn docker_error(op: &str, object: impl Into<String>, e: bollard::errors::Error) -> Error {
    let message = match e {
        bollard::errors::Error::DockerResponseServerError {
            status_code,
            message,
        } => {
            format!("{message} (HTTP {status_code})")
        }
        other => other.to_string(),
    };
    Error::Backend {
        backend: BackendId::Docker,
        op: op.to_string(),
        object: object.into(),
        errno: None,
        message,
    }
}

impl DockerApi {
    /// Connects to `$DOCKER_HOST` (a unix socket) or the default socket and
    /// checks that the daemon answers.
    pub async fn connect() -> Result<DockerApi> {
        let socket = std::env::var("DOCKER_HOST")
            .ok()
            .filter(|h| h.starts_with("unix://"))
            .unwrap_or_else(|| DEFAULT_SOCKET.to_string());
        let unreachable = |e: String| Error::Unavailable {
            backend: BackendId::Docker,
            message: format!(
                "cannot reach the Docker daemon at {socket}: {e}; start dockerd, or point DOCKER_HOST at its socket \
                 (topologies without [network] and [container] sections do not need Docker)"
            ),
        };
        let client =
            Docker::connect_with_unix_defaults().map_err(|e| unreachable(e.to_string()))?;
        client
            .ping()
            .await
            .map_err(|e| unreachable(e.to_string()))?;
        Ok(DockerApi { client })
    }

    pub fn client(&self) -> &Docker {
        &self.client
    }

    /// All networks, all containers, and the aliases of the containers named.
    /// With `cache`, what inspect said of running containers is kept there
    /// and stands while their process and endpoints do (`inspected`).
    pub async fn observe(
        &self,
        declared: &BTreeSet<String>,
        cache: Option<&std::path::Path>,
    ) -> Result<DockerObs> {
        let opts = ListContainersOptionsBuilder::default().all(true).build();
        // Both lists at once: each is a round trip to dockerd.
        let (nets, summaries) = tokio::join!(
            self.client.list_networks(None),
            self.client.list_containers(Some(opts))
        );
        let nets = nets.map_err(|e| docker_error("list", "networks", e))?;
        let summaries = summaries.map_err(|e| docker_error("list", "containers", e))?;
        let networks = nets.into_iter().map(network_obs).collect();
        // Each container with its network → endpoint id, as listed.
        let (mut containers, mut endpoint_ids): (Vec<ContainerObs>, Vec<BTreeMap<String, String>>) =
            summaries
                .into_iter()
                .filter_map(|c| {
                    let name = c
                        .names
                        .as_ref()?
                        .first()?
                        .trim_start_matches('/')
                        .to_string();
                    let listed = c
                        .network_settings
                        .and_then(|s| s.networks)
                        .unwrap_or_default();
                    let ids = listed
                        .iter()
                        .map(|(n, ep)| (n.clone(), ep.endpoint_id.clone().unwrap_or_default()))
                        .collect();
                    let endpoints = listed
                        .into_iter()
                        .map(|(n, ep)| (n, endpoint_obs(ep, "")))
                        .collect();
                    let obs = ContainerObs {
                        network_mode: c
                            .host_config
                            .and_then(|h| h.network_mode)
                            .unwrap_or_default()
                            .into(),
                        id: c.id.unwrap_or_default(),
                        name,
                        state: c.state.map(|s| s.to_string()).unwrap_or_default().into(),
                        pid: 0,
                        sandbox: None,
                        endpoints,
                        health: c.status.as_deref().and_then(Health::from_status),
                        labels: c.labels.unwrap_or_default().into_iter().collect(),
                    };
                    Some((obs, ids))
                })
                .unzip();
        // Aliases and pids are only in inspect output: inspect the declared
        // containers (but those whose last inspect still stands).
        let mut kept = cache.map(super::inspected::Inspected::read);
        let mut wanted: Vec<(usize, String)> = vec![];
        for (i, c) in containers.iter_mut().enumerate() {
            if !declared.contains(&c.name) {
                continue;
            }
            let hit = kept
                .as_ref()
                .filter(|_| c.running())
                .and_then(|k| k.get(&c.id, &endpoint_ids[i]));
            match hit {
                Some(e) => {
                    c.pid = e.pid;
                    c.sandbox = e.sandbox.clone();
                    c.endpoints.extend(e.endpoints.clone());
                }
                None => wanted.push((i, c.id.clone())),
            }
        }
        type Inspected = (u32, Option<String>, HashMap<String, EndpointSettings>);
        let inspected: Vec<(usize, Result<Inspected>)> = futures::stream::iter(wanted)
            .map(|(i, id)| async move {
                let r = self
                    .client
                    .inspect_container(&id, None)
                    .await
                    .map(|c| {
                        let pid = c.state.and_then(|s| s.pid).unwrap_or(0).max(0) as u32;
                        let settings = c.network_settings.unwrap_or_default();
                        let sandbox = settings.sandbox_key.filter(|k| !k.is_empty());
                        (pid, sandbox, settings.networks.unwrap_or_default())
                    })
                    .map_err(|e| docker_error("inspect", format!("container {id}"), e));
                (i, r)
            })
            .buffer_unordered(16)
            .collect()
            .await;
        for (i, r) in inspected {
            match r {
                Ok((pid, sandbox, nets)) => {
                    let c = &mut containers[i];
                    c.pid = pid;
                    c.sandbox = sandbox;
                    let short: String = c.id.chars().take(12).collect();
                    let inspected: BTreeMap<String, EndpointObs> = nets
                        .into_iter()
                        .map(|(n, ep)| (n, endpoint_obs(ep, &short)))
                        .collect();
                    if let Some(k) = kept.as_mut().filter(|_| c.running()) {
                        let ids = std::mem::take(&mut endpoint_ids[i]);
                        k.put(&c.id, pid, c.sandbox.clone(), ids, inspected.clone());
                    }
                    c.endpoints.extend(inspected);
                }
                // Gone between list and inspect: the next observation sees it.
                Err(e) => tracing::debug!("{e}"),
            }
        }
        if let (Some(mut k), Some(path)) = (kept, cache) {
            k.retain(&containers.iter().map(|c| c.id.as_str()).collect());
            k.write(path);
        }
        // Only a running container has endpoints; a stopped one keeps its config.
        for c in containers.iter_mut().filter(|c| !c.running()) {
            for ep in c.endpoints.values_mut() {
                ep.stale = false;
            }
        }
        Ok(DockerObs {
            networks,
            containers,
            ..Default::default()
        })
    }

    /// Creates a network with netloom's labels; returns its id.
    pub async fn create_network(&self, n: &NetworkRes, topology: &str) -> Result<String> {
        let mut labels: HashMap<String, String> = n.labels.clone().into_iter().collect();
        labels.insert(TOPOLOGY_LABEL.into(), topology.into());
        labels.insert(HASH_LABEL.into(), n.config_hash());
        let config = n
            .subnets
            .iter()
            .map(|s| IpamConfig {
                subnet: Some(s.to_string()),
                gateway: n
                    .gateways
                    .iter()
                    .find(|g| s.contains(*g))
                    .map(|g| g.to_string()),
                ip_range: n.ip_range.filter(|r| s.contains(r)).map(|r| r.to_string()),
                ..Default::default()
            })
            .collect();
        let req = NetworkCreateRequest {
            name: n.name.clone(),
            driver: Some(n.driver.clone()),
            internal: Some(n.internal),
            attachable: Some(n.attachable),
            enable_ipv6: Some(n.ipv6()),
            ipam: Some(Ipam {
                driver: Some("default".into()),
                config: Some(config),
                ..Default::default()
            }),
            options: Some(n.options.clone().into_iter().collect()),
            labels: Some(labels),
            ..Default::default()
        };
        let resp = self
            .client
            .create_network(req)
            .await
            .map_err(|e| docker_error("create", format!("network {}", n.name), e))?;
        Ok(resp.id)
    }

    /// Disconnects every endpoint (Docker refuses to remove a network that
    /// has any), then removes the network. Returns the containers disconnected.
    pub async fn remove_network(&self, id: &str, name: &str) -> Result<Vec<String>> {
        let inspect = match self.client.inspect_network(id, None).await {
            Ok(i) => i,
            Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => return Ok(vec![]),
            Err(e) => return Err(docker_error("inspect", format!("network {name}"), e)),
        };
        let mut gone = vec![];
        for (cid, ep) in inspect.containers.unwrap_or_default() {
            let who = ep.name.unwrap_or(cid.clone());
            self.detach(&cid, id, name).await?;
            gone.push(who);
        }
        match self.client.remove_network(id).await {
            Ok(())
            | Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            }) => Ok(gone),
            Err(e) => Err(docker_error("remove", format!("network {name}"), e)),
        }
    }

    pub async fn attach(&self, a: &AttachRes, network_id: &str) -> Result<()> {
        let ipam = (a.ipv4.is_some() || a.ipv6.is_some()).then(|| EndpointIpamConfig {
            ipv4_address: a.ipv4.map(|x| x.to_string()),
            ipv6_address: a.ipv6.map(|x| x.to_string()),
            ..Default::default()
        });
        let req = NetworkConnectRequest {
            container: a.key.container.clone(),
            endpoint_config: Some(EndpointSettings {
                ipam_config: ipam,
                aliases: (!a.aliases.is_empty()).then(|| a.aliases.iter().cloned().collect()),
                ..Default::default()
            }),
        };
        self.client
            .connect_network(network_id, req)
            .await
            .map_err(|e| {
                docker_error(
                    "connect",
                    format!("container {} to network {}", a.key.container, a.key.network),
                    e,
                )
            })
    }

    /// Disconnects; an endpoint that is already gone counts as done
    /// (Docker answers that with inconsistent status codes).
    pub async fn detach(&self, container: &str, network_id: &str, network: &str) -> Result<()> {
        let disconnect = || {
            self.client.disconnect_network(
                network_id,
                NetworkDisconnectRequest {
                    container: container.to_string(),
                    force: Some(true),
                },
            )
        };
        let Err(e) = disconnect().await else {
            return Ok(());
        };
        let inspected = self.client.inspect_container(container, None).await.ok();
        let running = inspected
            .as_ref()
            .and_then(|c| c.state.as_ref())
            .and_then(|s| s.running)
            .unwrap_or(false);
        let entry = inspected
            .and_then(|c| c.network_settings.and_then(|s| s.networks))
            .and_then(|mut n| n.remove(network));
        let failed = |e| {
            docker_error(
                "disconnect",
                format!("container {container} from network {network}"),
                e,
            )
        };
        match entry {
            None => Ok(()),
            // A broken entry (see EndpointObs::stale): Docker refuses to
            // disconnect it but lets a connect replace it, after which the
            // disconnect works.
            Some(ep) if running && ep.endpoint_id.as_deref().is_none_or(str::is_empty) => {
                let plain = NetworkConnectRequest {
                    container: container.to_string(),
                    endpoint_config: None,
                };
                if let Err(e2) = self.client.connect_network(network_id, plain).await {
                    return Err(Error::State(format!(
                        "{}; Docker holds a broken entry for it, and replacing that failed too: {e2}",
                        failed(e)
                    )));
                }
                disconnect().await.map_err(failed)
            }
            Some(_) => Err(failed(e)),
        }
    }
}

fn network_obs(n: bollard::models::Network) -> NetworkObs {
    let all_labels: BTreeMap<String, String> = n.labels.unwrap_or_default().into_iter().collect();
    let labels = all_labels
        .iter()
        .filter(|(k, _)| !k.starts_with("netloom."))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    let configs = n.ipam.and_then(|i| i.config).unwrap_or_default();
    let parse_net = |s: &Option<String>| s.as_deref().and_then(|s| s.parse::<IpNet>().ok());
    NetworkObs {
        net: NetworkRes {
            name: n.name.unwrap_or_default(),
            id: n.id,
            external: false,
            adopt: false,
            driver: n.driver.unwrap_or_default(),
            subnets: configs
                .iter()
                .filter_map(|c| parse_net(&c.subnet))
                .collect(),
            gateways: configs
                .iter()
                .filter_map(|c| c.gateway.as_deref().and_then(|g| g.parse::<IpAddr>().ok()))
                .collect(),
            ip_range: configs.iter().find_map(|c| parse_net(&c.ip_range)),
            internal: n.internal.unwrap_or(false),
            attachable: n.attachable.unwrap_or(false),
            options: n.options.unwrap_or_default().into_iter().collect(),
            labels,
        },
        all_labels,
    }
}

fn endpoint_obs(ep: EndpointSettings, short_id: &str) -> EndpointObs {
    let ipam = ep.ipam_config.unwrap_or_default();
    EndpointObs {
        network_id: ep.network_id.unwrap_or_default(),
        ipv4: ipam.ipv4_address.as_deref().and_then(|a| a.parse().ok()),
        ipv6: ipam.ipv6_address.as_deref().and_then(|a| a.parse().ok()),
        aliases: ep
            .aliases
            .unwrap_or_default()
            .into_iter()
            .filter(|a| !short_id.is_empty() && a != short_id)
            .collect(),
        address: ep.ip_address.filter(|a| !a.is_empty()),
        address6: ep.global_ipv6_address.filter(|a| !a.is_empty()),
        stale: ep.endpoint_id.is_none_or(|id| id.is_empty()),
    }
}
