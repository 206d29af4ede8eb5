//! The executor against fake backends: stages in order, lanes with their
//! bounds, failures reported with what was done before them.

use super::apply;
use crate::backend::{ApplyCx, Backend, Created, Lane, Registry};
use crate::diff::{Action, Change};
use crate::error::{Error, Result};
use crate::model::Topology;
use crate::observed::Observed;
use crate::plan::{Plan, Staged, Summary};
use crate::resource::{AttachKey, AttachRes, BackendId, LinkEnd, LinkKind, LinkRes, Resource};
use futures::future::BoxFuture;
use std::sync::{Arc, Mutex};
use std::time::Duration;

type Log = Arc<Mutex<Vec<String>>>;
/// (in flight now, most in flight at once)
type Running = Arc<Mutex<(usize, usize)>>;

/// Records what it applied and how many ran at once; fails steps it is told to.
struct Fake {
    id: BackendId,
    lane: Lane,
    fail: Vec<String>,
    log: Log,
    running: Running,
}

impl Backend for Fake {
    fn id(&self) -> BackendId {
        self.id
    }

    fn lane(&self) -> Lane {
        self.lane
    }

    fn observe<'a>(
        &'a mut self,
        _: &'a Topology,
        _: &'a mut Observed,
    ) -> BoxFuture<'a, Result<()>> {
        Box::pin(async { Ok(()) })
    }

    fn apply<'a>(&'a self, c: &'a Change, _: &'a ApplyCx<'a>) -> BoxFuture<'a, Result<Created>> {
        Box::pin(async move {
            {
                let mut r = self.running.lock().unwrap();
                r.0 += 1;
                r.1 = r.1.max(r.0);
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
            self.running.lock().unwrap().0 -= 1;
            let step = c.step_name();
            self.log.lock().unwrap().push(step.clone());
            if self.fail.contains(&c.title) {
                return Err(Error::State(format!("{step} refused")));
            }
            Ok(vec![(c.title.clone(), 7)])
        })
    }
}

fn fake(id: BackendId, lane: Lane, fail: &[&str], log: &Log) -> (Box<dyn Backend>, Running) {
    let running = Arc::new(Mutex::new((0, 0)));
    let b = Fake {
        id,
        lane,
        fail: fail.iter().map(|s| s.to_string()).collect(),
        log: log.clone(),
        running: running.clone(),
    };
    (Box::new(b), running)
}

fn bridge(name: &str) -> Resource {
    Resource::Link(LinkRes {
        kind: LinkKind::Bridge,
        end: LinkEnd {
            name: name.into(),
            mtu: None,
            up: true,
            master: None,
            addresses: Default::default(),
        },
        peer: None,
        external: false,
        adopt: false,
    })
}

fn attachment(container: &str) -> Resource {
    Resource::Attachment(AttachRes {
        key: AttachKey {
            container: container.into(),
            network: "n1".into(),
        },
        ipv4: None,
        ipv6: None,
        aliases: Default::default(),
    })
}

fn staged(stage: usize, action: Action, r: Resource) -> Staged {
    let deleting = action == Action::Delete;
    Staged {
        stage,
        change: Change {
            action,
            key: r.key(),
            kind: r.kind_name(),
            title: r.title(),
            fields: vec![],
            reason: None,
            desired: (!deleting).then(|| Box::new(r.clone())),
            current: deleting.then(|| Box::new(r)),
        },
        source: None,
    }
}

fn plan(changes: Vec<Staged>) -> Plan {
    Plan {
        format_version: 1,
        netloom_version: "test",
        input_digest: None,
        topology: "fake".into(),
        netns: Some("fake".into()),
        changes,
        conflicts: vec![],
        pending: vec![],
        summary: Summary::default(),
    }
}

fn logged(log: &Log) -> Vec<String> {
    log.lock().unwrap().clone()
}

#[tokio::test]
async fn stages_run_in_order_and_a_lane_keeps_its_bound() {
    let log = Log::default();
    let (kernel, running) = fake(BackendId::Kernel, Lane::Concurrent(2), &[], &log);
    let mut reg = Registry::from_backends(vec![kernel]);
    let mut changes = vec![staged(0, Action::Delete, bridge("old"))];
    changes.extend((0..6).map(|i| staged(1, Action::Create, bridge(&format!("b{i}")))));
    changes.push(staged(2, Action::Create, bridge("last")));
    let done = apply(&plan(changes), &Observed::default(), &mut reg, &mut |_| {})
        .await
        .unwrap();
    assert_eq!(done.len(), 8);
    let log = logged(&log);
    assert_eq!(log.first().map(String::as_str), Some("- bridge old"));
    assert_eq!(log.last().map(String::as_str), Some("+ bridge last"));
    let most = running.lock().unwrap().1;
    assert_eq!(most, 2, "at most two in flight, and two did run together");
}

#[tokio::test]
async fn a_failed_step_stops_the_apply_and_names_what_was_done() {
    let log = Log::default();
    let (kernel, _) = fake(BackendId::Kernel, Lane::Concurrent(4), &["b1"], &log);
    let mut reg = Registry::from_backends(vec![kernel]);
    let changes = vec![
        staged(0, Action::Create, bridge("b0")),
        staged(1, Action::Create, bridge("b1")),
        staged(2, Action::Create, bridge("b2")),
    ];
    let e = apply(&plan(changes), &Observed::default(), &mut reg, &mut |_| {})
        .await
        .unwrap_err();
    let Error::Step { step, done, source } = &e else {
        panic!("{e}")
    };
    assert_eq!(step, "+ bridge b1");
    assert_eq!(done, &["+ bridge b0"]);
    assert!(source.to_string().contains("refused"));
    let log = logged(&log);
    assert!(
        !log.contains(&"+ bridge b2".into()),
        "no later stage: {log:?}"
    );
    let text = e.to_string();
    assert!(
        text.contains("done before it (1):\n  + bridge b0"),
        "{text}"
    );
}

#[tokio::test]
async fn a_serial_lane_stops_at_its_first_failure_while_other_lanes_finish() {
    let log = Log::default();
    let (kernel, _) = fake(BackendId::Kernel, Lane::Concurrent(4), &[], &log);
    let (docker, running) = fake(BackendId::Docker, Lane::Serial, &["c1 → n1"], &log);
    let mut reg = Registry::from_backends(vec![kernel, docker]);
    let changes = vec![
        staged(0, Action::Create, attachment("c0")),
        staged(0, Action::Create, attachment("c1")),
        staged(0, Action::Create, attachment("c2")),
        staged(0, Action::Create, bridge("b0")),
    ];
    let e = apply(&plan(changes), &Observed::default(), &mut reg, &mut |_| {})
        .await
        .unwrap_err();
    let log = logged(&log);
    assert!(
        log.contains(&"+ bridge b0".into()),
        "the kernel lane ran: {log:?}"
    );
    assert!(
        !log.contains(&"+ attachment c2 → n1".into()),
        "serial stops: {log:?}"
    );
    assert_eq!(running.lock().unwrap().1, 1, "one at a time");
    let Error::Step { step, done, .. } = e else {
        panic!("not a step failure")
    };
    assert_eq!(step, "+ attachment c1 → n1");
    assert!(done.contains(&"+ bridge b0".into()), "{done:?}");
    assert!(done.contains(&"+ attachment c0 → n1".into()), "{done:?}");
}

#[tokio::test]
async fn changes_for_a_backend_that_is_not_connected_fail_by_name() {
    let log = Log::default();
    let (kernel, _) = fake(BackendId::Kernel, Lane::Concurrent(4), &[], &log);
    let mut reg = Registry::from_backends(vec![kernel]);
    let changes = vec![staged(0, Action::Create, attachment("c0"))];
    let e = apply(&plan(changes), &Observed::default(), &mut reg, &mut |_| {})
        .await
        .unwrap_err();
    assert!(e.to_string().contains("Docker is not connected"), "{e}");
    assert!(logged(&log).is_empty());
}

#[test]
fn the_inverse_undoes_latest_first_and_replacements_in_two_stages() {
    use crate::exec::rollback::inverse;
    let mut old = bridge("r");
    let Resource::Link(l) = &mut old else {
        unreachable!()
    };
    l.end.mtu = Some(1500);
    let mut new = old.clone();
    let Resource::Link(l) = &mut new else {
        unreachable!()
    };
    l.end.mtu = Some(9000);
    let mut update = staged(1, Action::Update, new.clone());
    update.change.current = Some(Box::new(old.clone()));
    let mut replace = staged(1, Action::Replace, bridge("x"));
    replace.change.current = Some(Box::new(bridge("x-old")));
    let forward = plan(vec![
        staged(0, Action::Delete, bridge("gone")),
        staged(1, Action::Create, bridge("made")),
        update,
        replace,
        // Re-applied (no fields): its master was replaced.
        staged(2, Action::Update, bridge("port")),
        staged(2, Action::Create, bridge("failed")),
    ]);
    let done: Vec<String> = forward.changes[..5]
        .iter()
        .map(|s| s.change.step_name())
        .collect();
    let inv = inverse(&forward, &done, Some("+ bridge failed"));
    let lines: Vec<(usize, String)> = inv
        .changes
        .iter()
        .map(|s| (s.stage, s.change.step_name()))
        .collect();
    let want = vec![
        (0, "- bridge failed".to_string()),
        (1, "- bridge made".to_string()),
        (1, "- bridge x".to_string()),
        (2, "+ bridge x-old".to_string()),
        (3, "+ bridge gone".to_string()),
        // After a replacement, settings of what depends on others come
        // last, once everything is made again; re-applies are done again.
        (4, "~ bridge r".to_string()),
        (4, "~ bridge port".to_string()),
    ];
    assert_eq!(lines, want);
    // The update goes back to what was observed.
    let back = &inv.changes[5].change;
    assert_eq!(back.desired.as_deref(), Some(&old));
    assert_eq!(back.current.as_deref(), Some(&new));
}
