use super::{Format, ShowArgs};
use crate::diff::{Action, diff};
use crate::state::{Observed, Resource, ResourceKey};
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Write as _;
use std::process::ExitCode;

#[derive(Serialize)]
struct Entry {
    key: ResourceKey,
    kind: String,
    title: String,
    /// ok, drift, missing, conflict, or extra (owned, not in the files).
    status: &'static str,
    /// The live facts, in words.
    live: String,
    drift: Vec<String>,
}

#[derive(Serialize)]
struct Probe {
    container: String,
    target: String,
    ok: bool,
    /// Round trip, or why it failed.
    detail: String,
}

#[derive(Serialize)]
struct Report {
    /// Bumped when a field changes meaning or goes away.
    format_version: u32,
    topology: String,
    netns: Option<String>,
    entries: Vec<Entry>,
    /// Readiness probes (`ready = { ping }`) of running containers.
    ready: Vec<Probe>,
}

pub fn run(a: &ShowArgs) -> ExitCode {
    let l = match super::load(&a.paths.paths) {
        Ok(l) => l,
        Err(code) => return code,
    };
    let rt = super::runtime();
    let seen = match rt.block_on(super::observe(&l.topo)) {
        Ok(seen) => seen,
        Err(e) => return super::fail(e),
    };
    let waiting = {
        let d = diff(&l.topo.name, &l.graph, &seen.observed);
        let plan = crate::plan::Plan::new(&l.topo.name, l.topo.netns.clone(), &l.graph, d);
        super::waiting_containers(&plan, &l.graph)
    };
    let ready: Vec<Probe> = rt
        .block_on(super::probe_readiness(&l.topo, &seen.containers, &waiting))
        .into_iter()
        .map(|(container, target, r)| Probe {
            container,
            target,
            ok: r.is_ok(),
            detail: match r {
                Ok(rtt) => format!("{:.1} ms", rtt.as_secs_f64() * 1000.0),
                Err(e) => e,
            },
        })
        .collect();
    let observed = seen.observed;
    let d = diff(&l.topo.name, &l.graph, &observed);
    let changes: HashMap<&ResourceKey, _> = d.changes.iter().map(|c| (&c.key, c)).collect();
    let conflicts: HashMap<&ResourceKey, _> = d.conflicts.iter().map(|c| (&c.key, c)).collect();
    let pending: HashMap<&ResourceKey, _> = d.pending.iter().map(|p| (&p.key, p)).collect();
    let mut entries = vec![];
    let mut desired: Vec<&Resource> = l.graph.resources().collect();
    desired.sort_by_key(|r| r.key());
    for r in desired {
        let key = r.key();
        let (status, drift) = if let Some(c) = conflicts.get(&key) {
            ("conflict", vec![c.message.clone()])
        } else if let Some(p) = pending.get(&key) {
            ("pending", vec![p.reason.clone()])
        } else if let Some(c) = changes.get(&key) {
            match c.action {
                Action::Create => ("missing", vec![]),
                Action::Replace => ("drift", vec![c.reason.clone().unwrap_or_default()]),
                _ => (
                    "drift",
                    c.fields
                        .iter()
                        .map(|f| {
                            format!(
                                "{}: {} → {}",
                                f.field,
                                f.from.as_deref().unwrap_or("(none)"),
                                f.to.as_deref().unwrap_or("(none)")
                            )
                        })
                        .chain(c.reason.clone())
                        .collect(),
                ),
            }
        } else {
            ("ok", vec![])
        };
        entries.push(Entry {
            live: live(r, &observed),
            key,
            kind: r.kind_name(),
            title: r.title(),
            status,
            drift,
        });
    }
    for c in d.changes.iter().filter(|c| c.action == Action::Delete) {
        entries.push(Entry {
            key: c.key.clone(),
            kind: c.kind.clone(),
            title: c.title.clone(),
            status: "extra",
            live: c
                .current
                .as_ref()
                .map(|r| live(r, &observed))
                .unwrap_or_default(),
            drift: vec![
                "owned by this topology but not in the files: the next apply deletes it".into(),
            ],
        });
    }
    let report = Report {
        format_version: 1,
        topology: l.topo.name.clone(),
        netns: l.topo.netns.clone(),
        entries,
        ready,
    };
    match a.format {
        Format::Json => println!(
            "{}",
            serde_json::to_string_pretty(&report).expect("report serializes")
        ),
        _ => print!("{}", text(&report, a.format == Format::Markdown)),
    }
    // 1 stays for "could not tell" (bad files, daemon away): a conflict is
    // a state, not an error of show's.
    if !a.detailed_exitcode {
        ExitCode::SUCCESS
    } else if report.entries.iter().any(|e| e.status != "ok") || report.ready.iter().any(|p| !p.ok)
    {
        ExitCode::from(2)
    } else {
        ExitCode::SUCCESS
    }
}

fn live(r: &Resource, o: &Observed) -> String {
    match r {
        Resource::Netns { .. } => (if o.netns_exists { "present" } else { "absent" }).into(),
        Resource::Link(l) => {
            let mut parts = vec![];
            for name in std::iter::once(&l.end.name).chain(l.peer.as_ref().map(|p| &p.name)) {
                let Some(x) = o.link(name) else {
                    parts.push(format!("{name}: absent"));
                    continue;
                };
                parts.push(link_state(x));
            }
            parts.join("; ")
        }
        Resource::Route(r) => match o.routes.iter().find(|x| x.route.key == r.key) {
            Some(x) => {
                let mut s = String::from("present");
                if let Some(v) = x.route.via {
                    let _ = write!(s, ", via {v}");
                }
                if let Some(d) = &x.route.dev {
                    let _ = write!(s, ", dev {d}");
                }
                let _ = write!(s, ", protocol {}", crate::diff::proto_name(x.protocol));
                s
            }
            None => "absent".into(),
        },
        Resource::Network(n) => {
            let found = o
                .docker
                .as_ref()
                .and_then(|d| d.networks.iter().find(|x| x.net.name == n.name));
            match found {
                Some(x) => {
                    let subnets: Vec<String> =
                        x.net.subnets.iter().map(|s| s.to_string()).collect();
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
                None => "absent".into(),
            }
        }
        Resource::Attachment(a) => {
            let c = o
                .docker
                .as_ref()
                .and_then(|d| d.containers.iter().find(|c| c.name == a.key.container));
            match c {
                None => format!("container {} absent", a.key.container),
                Some(c) => match c.endpoints.get(&a.key.network) {
                    None => format!("container {}, not connected", c.state),
                    Some(ep) if ep.stale => format!(
                        "container {}, not connected (Docker holds a broken entry for the network)",
                        c.state
                    ),
                    Some(ep) => {
                        let aliases: Vec<&str> = ep.aliases.iter().map(String::as_str).collect();
                        format!(
                            "container {}, connected, address {}{}",
                            c.state,
                            ep.address.as_deref().unwrap_or("(none)"),
                            if aliases.is_empty() {
                                String::new()
                            } else {
                                format!(", aliases {}", aliases.join(", "))
                            }
                        )
                    }
                },
            }
        }
        Resource::Iface(i) => {
            let mut ends = vec![(i.container.clone(), i.name.clone())];
            if let crate::state::IfacePeer::Container {
                container, name, ..
            } = &i.peer
            {
                ends.push((container.clone(), name.clone()));
            }
            let mut parts: Vec<String> = ends
                .iter()
                .map(
                    |(c, n)| match o.containers.get(c).and_then(|cn| cn.link(n)) {
                        Some(x) => format!("{c}:{}", link_state(x)),
                        None => format!("{c}:{n}: absent"),
                    },
                )
                .collect();
            if let crate::state::IfacePeer::Bridge { host, .. } = &i.peer {
                parts.push(match o.link(host) {
                    Some(x) => format!("host {}", link_state(x)),
                    None => format!("host {host}: absent"),
                });
            }
            parts.join("; ")
        }
        Resource::ContainerRoute(r) => {
            let found = o
                .containers
                .get(&r.container)
                .and_then(|cn| cn.routes.iter().find(|x| x.route.key.to == r.to));
            match found {
                Some(x) => format!(
                    "present, via {}",
                    x.route.via.map(|v| v.to_string()).unwrap_or_default()
                ),
                None => "absent".into(),
            }
        }
        Resource::Rule(k) => (if o.rules.iter().any(|x| &x.key == k) {
            "present"
        } else {
            "absent"
        })
        .into(),
    }
}

fn text(r: &Report, markdown: bool) -> String {
    let mut out = String::new();
    let count = |s: &str| r.entries.iter().filter(|e| e.status == s).count();
    let _ = writeln!(
        out,
        "{}topology {} in {}: {} ok, {} drifted, {} missing, {} conflicting, {} pending, {} extra\n",
        if markdown { "### " } else { "" },
        r.topology,
        super::netns_label(&r.netns),
        count("ok"),
        count("drift"),
        count("missing"),
        count("conflict"),
        count("pending"),
        count("extra")
    );
    let start = out.len();
    for e in &r.entries {
        let _ = writeln!(out, "  {:<9} {} {}", e.status, e.kind, e.title);
        if !e.live.is_empty() {
            let _ = writeln!(out, "              live: {}", e.live);
        }
        for d in &e.drift {
            let _ = writeln!(out, "              {d}");
        }
    }
    for p in &r.ready {
        let status = if p.ok { "ready" } else { "not ready" };
        let _ = writeln!(
            out,
            "  {status:<9} {} → ping {}: {}",
            p.container, p.target, p.detail
        );
    }
    if markdown {
        let fence = crate::plan::code_fence(&out[start..]);
        out.insert_str(start, &format!("{fence}\n"));
        let _ = writeln!(out, "{fence}");
    }
    out
}

/// `name: up, carrier, mtu N, master M, addresses (tentative)`.
fn link_state(x: &crate::state::LinkObs) -> String {
    let mut s = format!(
        "{}: {}, {}, mtu {}",
        x.name,
        if x.up { "up" } else { "down" },
        if x.carrier { "carrier" } else { "no carrier" },
        x.mtu
    );
    if let Some(m) = &x.master {
        let _ = write!(s, ", master {m}");
    }
    for a in x
        .addresses
        .iter()
        .filter(|a| !crate::state::is_kernel_link_local(&a.net))
    {
        let _ = write!(
            s,
            ", {}{}",
            a.net,
            if a.tentative { " (tentative)" } else { "" }
        );
    }
    s
}
