//! Docker networks: found by label, acted on by id; Docker cannot change a
//! network in place, so any change of its configuration is a replacement.

use super::{AttachKey, DiffCx, Kind, Resource, ResourceKey};
use crate::diff::{Action, Diff};
use crate::naming::fnv1a;
use crate::observed::{DockerObs, NetworkObs, Observed};
use crate::ownership::{HASH_LABEL, Ledger, TOPOLOGY_LABEL};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashSet};
use std::fmt::Write as _;
use std::net::IpAddr;

/// A Docker network.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetworkRes {
    pub name: String,
    /// Docker's id, when observed.
    #[serde(skip_serializing_if = "Option::is_none", default)]
    pub id: Option<String>,
    pub external: bool,
    /// Take over an existing network of this name that nothing owns.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub adopt: bool,
    pub driver: String,
    pub subnets: Vec<IpNet>,
    pub gateways: Vec<IpAddr>,
    pub ip_range: Option<IpNet>,
    pub internal: bool,
    pub attachable: bool,
    /// Driver options, `parent` and `mtu` included.
    pub options: BTreeMap<String, String>,
    /// The user's labels (netloom's own are added on creation).
    pub labels: BTreeMap<String, String>,
}

impl NetworkRes {
    pub fn ipv6(&self) -> bool {
        self.subnets.iter().any(|s| matches!(s, IpNet::V6(_)))
    }

    /// A stable hash of everything Docker fixes at creation (FNV-1a over
    /// canonical JSON: std's hasher is not stable across releases).
    pub fn config_hash(&self) -> String {
        let canon = serde_json::json!([
            self.driver,
            self.subnets,
            self.gateways,
            self.ip_range,
            self.internal,
            self.attachable,
            self.options,
            self.labels
        ])
        .to_string();
        format!("{:016x}", fnv1a(&canon))
    }

    /// The gateway Docker uses in `subnet`: the one given, else the first host.
    pub fn gateway_in(&self, subnet: &IpNet) -> Option<IpAddr> {
        self.gateways
            .iter()
            .find(|g| subnet.contains(*g))
            .copied()
            .or_else(|| match subnet {
                // ipnet counts an IPv6 subnet's first address as a host;
                // Docker's implied gateway is the one after it, as in IPv4.
                IpNet::V6(n) => Some(IpAddr::V6((u128::from(n.network()) + 1).into())),
                IpNet::V4(_) => subnet.hosts().next(),
            })
    }
}

impl Kind for NetworkRes {
    fn key(&self) -> ResourceKey {
        ResourceKey::Network {
            name: self.name.clone(),
        }
    }

    fn kind_name(&self) -> String {
        if self.external {
            "external network".into()
        } else {
            "network".into()
        }
    }

    fn title(&self) -> String {
        self.name.clone()
    }

    fn delete_rank(&self) -> usize {
        5
    }

    fn diff(&self, r: &Resource, cx: &DiffCx, out: &mut Diff) {
        diff_network(cx, r, self, out)
    }

    fn details(&self, out: &mut String) {
        let n = self;
        let _ = writeln!(out, "      driver: {}", n.driver);
        let subnets: Vec<String> = n.subnets.iter().map(|s| s.to_string()).collect();
        let _ = writeln!(out, "      subnets: {}", subnets.join(", "));
        if !n.gateways.is_empty() {
            let g: Vec<String> = n.gateways.iter().map(|s| s.to_string()).collect();
            let _ = writeln!(out, "      gateways: {}", g.join(", "));
        }
        if let Some(r) = n.ip_range {
            let _ = writeln!(out, "      ip_range: {r}");
        }
        if n.internal {
            let _ = writeln!(out, "      internal: true");
        }
        for (k, v) in &n.options {
            let _ = writeln!(out, "      option {k}: {v}");
        }
        for (k, v) in &n.labels {
            let _ = writeln!(out, "      label {k}: {v}");
        }
    }

    /// Networks carry their owner in a label; the ledger only remembers
    /// that this topology has been in Docker, so it prunes there later.
    /// An adopted network's owner is its id in the ledger, recorded before
    /// the adoption (a replacement's new network carries the labels).
    fn claim(&self, ledger: &mut Ledger, o: &Observed) -> bool {
        let mut changed = !std::mem::replace(&mut ledger.docker, true);
        let unowned = o
            .docker
            .as_ref()
            .and_then(|d| d.networks.iter().find(|n| n.net.name == self.name))
            .filter(|n| !n.all_labels.contains_key(TOPOLOGY_LABEL));
        if let Some(id) = unowned
            .and_then(|n| n.net.id.clone())
            .filter(|_| self.adopt)
        {
            changed |= ledger.networks.insert(self.name.clone(), id.clone()) != Some(id);
        }
        changed
    }

    fn release(&self, ledger: &mut Ledger) -> bool {
        ledger.networks.remove(&self.name).is_some()
    }

    /// A network made anew (a replaced adopted one) carries the labels;
    /// only one adopted as it is stays owned by the ledger.
    fn made(&self, action: Action, ledger: &mut Ledger) -> bool {
        action != Action::Update && self.release(ledger)
    }

    /// Adopted stays adopted, `adopt` dropped from the file or not; made
    /// `external`, it is given back (destroy then leaves it).
    fn settle(&self, claimed: &Ledger, ledger: &mut Ledger) {
        ledger.docker = true;
        if let Some(id) = claimed.networks.get(&self.name).filter(|_| !self.external) {
            ledger.networks.insert(self.name.clone(), id.clone());
        }
    }

    fn live(&self, o: &Observed) -> String {
        let found = o
            .docker
            .as_ref()
            .and_then(|d| d.networks.iter().find(|x| x.net.name == self.name));
        let Some(x) = found else {
            return "absent".into();
        };
        let subnets: Vec<String> = x.net.subnets.iter().map(|s| s.to_string()).collect();
        format!(
            "present, id {}, driver {}, subnets {}",
            x.net
                .id
                .as_deref()
                .map(|i| &i[..i.len().min(12)])
                .unwrap_or("?"),
            x.net.driver,
            subnets.join(", ")
        )
    }
}

/// The topology owning a network: its label, else this topology's ledger
/// when it adopted that very network (by id).
pub(super) fn owner<'a>(n: &'a NetworkObs, cx: &DiffCx<'a>) -> Option<&'a str> {
    n.all_labels
        .get(TOPOLOGY_LABEL)
        .map(String::as_str)
        .or_else(|| adopted(n, &cx.observed.ledger).then_some(cx.topology))
        .or_else(|| {
            let docker = cx.observed.docker.as_ref()?;
            docker
                .adopted_elsewhere
                .get(n.net.id.as_ref()?)
                .map(String::as_str)
        })
}

/// Docker's own networks: never netloom's to adopt, replace or delete.
pub fn builtin(name: &str) -> bool {
    matches!(name, "bridge" | "host" | "none")
}

pub fn adopted(n: &NetworkObs, ledger: &Ledger) -> bool {
    !n.all_labels.contains_key(TOPOLOGY_LABEL)
        && n.net.id.is_some()
        && ledger.networks.get(&n.net.name) == n.net.id.as_ref()
}

const ADOPTS: &str = "adopts the existing network, which nothing owned";

/// A Docker object planned without Docker's state.
pub(super) fn unobserved(r: &Resource, out: &mut Diff) {
    out.conflict(
        r,
        "the Docker daemon was not observed".into(),
        "run netloom where it can reach dockerd".into(),
    );
}

fn diff_network(cx: &DiffCx, r: &Resource, d: &NetworkRes, out: &mut Diff) {
    let Some(docker) = cx.observed.docker.as_ref() else {
        return unobserved(r, out);
    };
    let topology = cx.topology;
    let same_name: Vec<&NetworkObs> = docker
        .networks
        .iter()
        .filter(|n| n.net.name == d.name)
        .collect();
    if d.external {
        if same_name.is_empty() {
            out.conflict(
                r,
                format!("external network `{}` does not exist", d.name),
                "create it first, or drop `external = true` so that netloom creates and owns it"
                    .into(),
            );
        }
        // Adopted before, external now: given back (the ledger forgets it).
        if let [o] = same_name.as_slice()
            && adopted(o, &cx.observed.ledger)
        {
            let cur = Some(Resource::Network(o.net.clone()));
            let why = "gives back the adopted network: netloom no longer owns it";
            out.change(Action::Update, r, cur, vec![], Some(why.into()));
        }
        return;
    }
    let ours: Vec<&NetworkObs> = same_name
        .iter()
        .copied()
        .filter(|n| owner(n, cx) == Some(topology))
        .collect();
    match ours.as_slice() {
        [] => {
            if let [other] = same_name.as_slice()
                && d.adopt
                && owner(other, cx).is_none()
                && !builtin(&d.name)
            {
                return adopt(cx, r, d, other, docker, out);
            }
            if let Some(other) = same_name.first() {
                let message = match owner(other, cx) {
                    Some(t) => format!("Docker network `{}` belongs to topology `{t}`", d.name),
                    None => format!(
                        "a Docker network named `{}` already exists and netloom does not own it (no {TOPOLOGY_LABEL} label)",
                        d.name
                    ),
                };
                let help = if owner(other, cx).is_none()
                    && same_name.len() == 1
                    && !builtin(&d.name)
                {
                    "rename the network in the topology, remove the existing one, declare it with external = true to attach to it, or add `adopt = true` to take it over (netloom then owns it: replaces it if its settings differ, and deletes it when it leaves the files)"
                } else {
                    "rename the network in the topology, or remove the existing one, or declare it with external = true to attach to it"
                };
                return out.conflict(r, message, help.to_string());
            }
            // A network that collides is a conflict, not also a create.
            if preflight(topology, d, None, docker, r, out) {
                out.push(Action::Create, r);
            }
        }
        [o] => {
            if o.all_labels.get(HASH_LABEL) == Some(&d.config_hash()) {
                return;
            }
            // An adopted network has no hash label: its settings are compared.
            if adopted(o, &cx.observed.ledger) && differences(&o.net, d).is_empty() {
                return;
            }
            let reason = replace_reason(&o.net, d);
            if !preflight(topology, d, Some(o), docker, r, out) {
                return;
            }
            let cur = Resource::Network(o.net.clone());
            out.change(Action::Replace, r, Some(cur), vec![], Some(reason));
        }
        many => out.conflict(
            r,
            format!(
                "{} Docker networks named `{}` carry this topology's label",
                many.len(),
                d.name
            ),
            "remove all but one of them with `docker network rm ID`".into(),
        ),
    }
}

/// Takes over an unowned network: as it is when its settings are the
/// file's, else by replacing it (Docker cannot change one in place).
fn adopt(
    cx: &DiffCx,
    r: &Resource,
    d: &NetworkRes,
    o: &NetworkObs,
    docker: &DockerObs,
    out: &mut Diff,
) {
    let cur = Some(Resource::Network(o.net.clone()));
    if differences(&o.net, d).is_empty() {
        return out.change(Action::Update, r, cur, vec![], Some(ADOPTS.into()));
    }
    if preflight(cx.topology, d, Some(o), docker, r, out) {
        let reason = format!("{ADOPTS}; {}", replace_reason(&o.net, d));
        out.change(Action::Replace, r, cur, vec![], Some(reason));
    }
}

/// Why a network must be recreated, in the user's terms.
fn replace_reason(cur: &NetworkRes, want: &NetworkRes) -> String {
    let why = differences(cur, want);
    if why.is_empty() {
        "configuration changed; Docker cannot change a network in place".into()
    } else {
        format!(
            "{}; Docker cannot change a network in place",
            why.join(", ")
        )
    }
}

/// The settings that differ between a live network and the file's, each
/// as `what old → new`. Labels the file does not name are not counted (an
/// adopted network may carry others' labels).
fn differences(cur: &NetworkRes, want: &NetworkRes) -> Vec<String> {
    let mut why = vec![];
    let mut diff = |what: &str, a: String, b: String| {
        if a != b {
            why.push(format!("{what} {a} → {b}"));
        }
    };
    let nets = |v: &[IpNet]| {
        let mut s: Vec<String> = v.iter().map(|n| n.to_string()).collect();
        s.sort();
        format!("[{}]", s.join(", "))
    };
    diff("driver", cur.driver.clone(), want.driver.clone());
    diff("subnets", nets(&cur.subnets), nets(&want.subnets));
    if !want.gateways.is_empty() {
        let (a, b) = (&cur.gateways, &want.gateways);
        diff("gateways", format!("{a:?}"), format!("{b:?}"));
    }
    if want.ip_range.is_some() || cur.ip_range.is_some() {
        let (a, b) = (&cur.ip_range, &want.ip_range);
        diff("ip_range", format!("{a:?}"), format!("{b:?}"));
    }
    let (a, b) = (cur.internal, want.internal);
    diff("internal", a.to_string(), b.to_string());
    // Attachable means something only for swarm-scoped networks; a local
    // bridge made by `docker network create` is not attachable yet works.
    if want.driver == "overlay" {
        let (a, b) = (cur.attachable, want.attachable);
        diff("attachable", a.to_string(), b.to_string());
    }
    let (a, b) = (&cur.options, &want.options);
    diff("options", format!("{a:?}"), format!("{b:?}"));
    let named: BTreeMap<String, String> = want
        .labels
        .keys()
        .filter_map(|k| Some((k.clone(), cur.labels.get(k)?.clone())))
        .collect();
    diff("labels", format!("{named:?}"), format!("{:?}", want.labels));
    why
}

/// Checks that need the live state: subnets colliding with other Docker
/// networks or host routes, and IPv6 on a host that has it disabled.
fn preflight(
    topology: &str,
    d: &NetworkRes,
    replacing: Option<&NetworkObs>,
    docker: &DockerObs,
    r: &Resource,
    out: &mut Diff,
) -> bool {
    let before = out.conflicts.len();
    // Routes Docker made for its own bridges are reported as the network itself.
    // A bridge named with `com.docker.network.bridge.name` is Docker's too.
    let docker_bridges: HashSet<String> = docker
        .networks
        .iter()
        .filter_map(|n| {
            let named = n.net.options.get("com.docker.network.bridge.name").cloned();
            let id = n.net.id.as_ref()?;
            Some(named.unwrap_or_else(|| format!("br-{}", &id[..id.len().min(12)])))
        })
        .chain(["docker0".to_string()])
        .collect();
    for s in &d.subnets {
        for n in &docker.networks {
            if replacing.is_some_and(|o| o.net.id == n.net.id) {
                continue;
            }
            if let Some(t) = n.net.subnets.iter().find(|t| overlaps(s, t)) {
                let whose = match n.all_labels.get(TOPOLOGY_LABEL).map(String::as_str) {
                    Some(o) if o == topology => {
                        " (this topology's, not in the files any more)".to_string()
                    }
                    Some(o) => format!(" (topology {o})"),
                    None => String::new(),
                };
                out.conflict(
                    r,
                    format!(
                        "subnet {s} collides with {t} of Docker network `{}`{whose}",
                        n.net.name
                    ),
                    "pick a subnet no other network uses".into(),
                );
            }
        }
        for h in &docker.host_routes {
            if h.to.prefix_len() == 0 || h.dev.as_ref().is_some_and(|d| docker_bridges.contains(d))
            {
                continue;
            }
            if overlaps(s, &h.to) {
                let dev = h.dev.as_ref().map(|d| format!(" dev {d}"));
                out.conflict(
                    r,
                    format!(
                        "subnet {s} collides with the host route to {}{}",
                        h.to,
                        dev.unwrap_or_default()
                    ),
                    "pick a subnet the host does not route elsewhere".into(),
                );
            }
        }
        if matches!(s, IpNet::V6(_)) && docker.ipv6_disabled {
            out.conflict(r, format!("subnet {s} is IPv6, but IPv6 is disabled on this host (net.ipv6.conf.all.disable_ipv6 = 1)"),
                "enable IPv6 (sysctl -w net.ipv6.conf.all.disable_ipv6=0) or drop the IPv6 subnet".into());
        }
    }
    out.conflicts.len() == before
}

fn overlaps(a: &IpNet, b: &IpNet) -> bool {
    a.contains(&b.network()) || b.contains(&a.network())
}

/// Networks carrying this topology's label that the files no longer declare.
pub(super) fn prune(cx: &DiffCx, out: &mut Diff) {
    let Some(docker) = cx.observed.docker.as_ref() else {
        return;
    };
    for n in &docker.networks {
        let key = ResourceKey::Network {
            name: n.net.name.clone(),
        };
        if owner(n, cx) == Some(cx.topology) && !cx.desired.contains(&key) {
            out.delete(Resource::Network(n.net.clone()));
        }
    }
}

/// Names, on a network's deletion or replacement, the containers whose
/// endpoints go with it and that no other change in the plan accounts for:
/// Docker cannot remove a network with endpoints, so netloom disconnects
/// them, and after a replacement reconnects only the declared ones.
pub(super) fn endpoint_notes(cx: &DiffCx, out: &mut Diff) {
    let Some(docker) = cx.observed.docker.as_ref() else {
        return;
    };
    let detached = super::attachment::detached(out);
    for c in out.changes.iter_mut() {
        let Some(Resource::Network(n)) = c.current.as_deref() else {
            continue;
        };
        let deleting = c.action == Action::Delete;
        let on_it = |k: &AttachKey| {
            if deleting {
                detached.contains(k)
            } else {
                cx.desired.contains(&ResourceKey::Attachment(k.clone()))
            }
        };
        let others: Vec<&str> = docker
            .containers
            .iter()
            .filter(|ctr| {
                ctr.endpoints
                    .values()
                    .any(|e| Some(&e.network_id) == n.id.as_ref())
            })
            .filter(|ctr| {
                !on_it(&AttachKey {
                    container: ctr.name.clone(),
                    network: n.name.clone(),
                })
            })
            .map(|ctr| ctr.name.as_str())
            .collect();
        if others.is_empty() {
            continue;
        }
        let note = if deleting {
            format!("disconnects first: {}", others.join(", "))
        } else {
            format!(
                "disconnects and does not reconnect (not declared on it): {}",
                others.join(", ")
            )
        };
        c.reason = Some(match c.reason.take() {
            Some(r) => format!("{r}; {note}"),
            None => note,
        });
    }
}
