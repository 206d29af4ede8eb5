//! Which wired containers share a netns, with the host or each other.

use crate::backend::kernel::ContainerNet;
use crate::model::Topology;

/// Notes containers whose netns is not theirs alone. The host's
/// (`--network host`), or one two containers with wiring of their own
/// share (`--network container:X`), is a conflict (`shared_with`). A netns
/// shared with containers that only probe or were wired before is looked
/// after through one of them (`same_netns_as` on the others), so prune does
/// not see the wiring of one as another's leftovers.
pub fn mark_shared(
    topo: &Topology,
    observed: &mut std::collections::BTreeMap<String, crate::observed::ContainerNetObs>,
    nets: &std::collections::HashMap<String, ContainerNet>,
) {
    use std::os::unix::fs::MetadataExt;
    let id = |m: std::fs::Metadata| (m.dev(), m.ino());
    // The netns netloom runs in: the host's, where dockerd runs too.
    let host = std::fs::metadata("/proc/self/ns/net").ok().map(id);
    let mut wires: std::collections::BTreeSet<&str> = topo
        .containers
        .values()
        .filter(|c| !c.interfaces.is_empty() || !c.routes.is_empty())
        .map(|c| c.name.as_str())
        .collect();
    for l in &topo.links {
        wires.insert(&l.a.0);
        wires.insert(&l.b.0);
    }
    let mut groups: std::collections::BTreeMap<(u64, u64), Vec<&String>> = Default::default();
    for (name, c) in nets {
        if let Ok(m) = c.fd.metadata() {
            groups.entry(id(m)).or_default().push(name);
        }
    }
    for (this, mut members) in groups {
        members.sort();
        if Some(this) == host {
            for name in members {
                if let Some(o) = observed.get_mut(name.as_str()) {
                    o.shared_with = Some("the host (--network host)".to_string());
                }
            }
            continue;
        }
        let wired: Vec<&String> = members
            .iter()
            .copied()
            .filter(|n| wires.contains(n.as_str()))
            .collect();
        let keeper = wired.first().or(members.first()).copied();
        for name in &members {
            let Some(o) = observed.get_mut(name.as_str()) else {
                continue;
            };
            if wired.len() > 1 && wired.contains(name) {
                let other = wired.iter().find(|w| *w != name).expect("two or more");
                o.shared_with = Some(format!("container `{other}`"));
            } else if Some(*name) != keeper {
                o.same_netns_as = keeper.cloned();
            }
        }
    }
}
