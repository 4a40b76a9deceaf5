//! Fan-outs: waves, concurrency (count and percentage), failure budgets, live counts, editing
//! limits while running, and re-driving failed children.

use crate::harness::*;
use fleetplane_workflow::definition::{ErrorKind, Operation};
use fleetplane_workflow::run::{ItemStatus, LimitSetting, WaveCounts};
use fleetplane_workflow::{Effect, Event, RunStatus, Signal};
use serde_json::json;
use std::collections::BTreeMap;

fn rollout(fanout_opts: &str) -> String {
    format!(
        "kind: Workflow\nmetadata: {{name: t, version: 1.0.0}}\nspec:\n  purpose: rollout\n  steps:\n    - id: update\n      fanout:\n        over: template\n{fanout_opts}        skip:\n          - if: item.pendingVariables > 0\n            reason: pending variables\n        steps:\n          - wait: {{duration: 1m}}\n          - provider: {{operation: update-cluster, retry: {{maximumAttempts: 1}}}}\n"
    )
}

fn fleet(w: &mut World) {
    w.fleet = vec![
        cluster("c1", &[("ring", "canary")]),
        cluster("c2", &[("ring", "canary")]),
        cluster("c3", &[]),
        cluster("c4", &[]),
        cluster("c5", &[]),
        cluster("c6", &[]),
        cluster("c7", &[]),
    ];
    w.fleet[6].facts.insert("pendingVariables".into(), json!(2));
}

fn statuses(w: &World) -> BTreeMap<String, ItemStatus> {
    let f = w
        .root()
        .active
        .as_ref()
        .and_then(|a| a.fanout.as_ref())
        .expect("fan-out");
    f.items.iter().map(|i| (i.name.clone(), i.status)).collect()
}

#[test]
fn waves_run_in_order_within_their_limits_and_soak_between() {
    let opts = "        maxConcurrency: 2\n        waves:\n          - {name: canary, selector: {matchLabels: {ring: canary}}, maxConcurrency: 1, soakMinutes: 10}\n";
    let mut w = World::new(&rollout(opts));
    fleet(&mut w);
    w.start(json!({}), None);
    w.run_timers(100);
    let s = w.root();
    assert_eq!(s.status, RunStatus::Succeeded, "{}", w.log);
    assert_eq!(
        s.counts,
        WaveCounts {
            total: 7,
            pending: 0,
            running: 0,
            succeeded: 6,
            failed: 0,
            skipped: 1
        }
    );
    assert_eq!(
        s.results["update"],
        json!({"total": 7, "succeeded": 6, "failed": 0, "skipped": 1})
    );
    assert!(
        w.running_seen.iter().all(|&r| r <= 2),
        "{:?}",
        w.running_seen
    );
    // canary: 2 × 1m one at a time, soak 10m, rest (4 clusters, 2 at a time): 2 × 1m.
    assert_eq!(w.now, "2026-03-01T00:14:00Z".parse().unwrap());
    insta::assert_snapshot!(w.log);
}

#[test]
fn percentage_concurrency_rounds_up() {
    let mut w = World::new(&rollout("        maxConcurrency: 30%\n"));
    fleet(&mut w);
    w.start(json!({}), None);
    // 30% of 7 clusters → 3 at once.
    assert_eq!(w.root().counts.running, 3);
    w.run_timers(100);
    assert_eq!(w.root().status, RunStatus::Succeeded);
    assert_eq!(w.running_seen.iter().max(), Some(&3));
}

fn failing(names: &'static [&'static str]) -> impl FnMut(&str, Operation, u32) -> Reply {
    move |c, op, _| {
        if op == Operation::UpdateCluster && names.contains(&c) {
            Reply::Fail(ErrorKind::Permanent, false, None)
        } else {
            Reply::Done(json!({}))
        }
    }
}

#[test]
fn an_exhausted_budget_pauses_and_resume_accepts_the_failures() {
    let mut w = World::new(&rollout(
        "        maxConcurrency: 2\n        maxFailures: 1\n",
    ))
    .cloud(failing(&["c2", "c3", "c5"]));
    fleet(&mut w);
    w.start(json!({}), None);
    w.run_timers(100);
    // c2 fails (within budget), c3 fails: budget of 1 exhausted → paused; c4 (running) finished.
    let s = w.root();
    assert_eq!(s.status, RunStatus::Paused, "{}", w.log);
    assert_eq!(
        s.paused.as_ref().map(|p| p.reason.as_str()),
        Some("failure budget exhausted")
    );
    assert_eq!(s.counts.failed, 2);
    assert_eq!(s.counts.pending, 2);
    let snapshot_paused = statuses(&w);
    // Resume: the two failures are accepted; c5 fails again → one more failure is within budget.
    w.send_root(signal(Signal::Resume {
        retry_failed: false,
    }));
    w.run_timers(100);
    assert_eq!(w.root().status, RunStatus::Succeeded, "{}", w.log);
    assert_eq!(w.root().counts.failed, 3);
    insta::assert_snapshot!(format!("{snapshot_paused:?}\n{}", w.log));
}

#[test]
fn editing_limits_while_running() {
    let mut w = World::new(&rollout(
        "        maxConcurrency: 1\n        maxFailures: 5\n",
    ))
    .cloud(failing(&["c1", "c2"]));
    fleet(&mut w);
    w.start(json!({}), None);
    assert_eq!(w.root().counts.running, 1);
    let by = admin();
    w.send_root(Event::LimitsChanged {
        max_concurrency: Some(LimitSetting::Count(3)),
        max_failures: None,
        by: by.clone(),
    });
    assert_eq!(w.root().counts.running, 3);
    // Invalid limits are refused and change nothing.
    w.send_root(Event::LimitsChanged {
        max_concurrency: Some(LimitSetting::Count(0)),
        max_failures: None,
        by: by.clone(),
    });
    w.next_timer(); // c1, c2 fail; c3 succeeds
    assert_eq!(w.root().counts.failed, 2);
    // Lowering the budget below the failures so far exhausts it at once.
    w.send_root(Event::LimitsChanged {
        max_concurrency: None,
        max_failures: Some(LimitSetting::Percent(10)),
        by,
    });
    assert_eq!(w.root().status, RunStatus::Paused);
    insta::assert_snapshot!(w.log);
}

#[test]
fn resume_with_retry_failed_redrives_failed_children_with_new_keys() {
    let mut calls: BTreeMap<String, u32> = BTreeMap::new();
    let opts = "        maxFailures: 0\n        onFailure: fail\n";
    let mut w = World::new(&rollout(opts)).cloud(move |c, op, _| {
        if op != Operation::UpdateCluster {
            return Reply::Done(json!({}));
        }
        let n = calls.entry(c.to_owned()).or_default();
        *n += 1;
        if c == "c4" && *n == 1 {
            Reply::Fail(ErrorKind::Permanent, false, None)
        } else {
            Reply::Done(json!({}))
        }
    });
    fleet(&mut w);
    w.start(json!({}), None);
    w.run_timers(100);
    let s = w.root();
    assert_eq!(s.status, RunStatus::Failed, "{}", w.log);
    assert_eq!(
        s.error.as_ref().map(|e| e.kind.as_str()),
        Some("budget-exhausted")
    );
    // Re-drive: only c4 runs again, under a new generation (a new idempotency key).
    w.log_children = true;
    w.send_root(signal(Signal::Resume { retry_failed: true }));
    w.run_timers(100);
    assert_eq!(w.root().status, RunStatus::Succeeded, "{}", w.log);
    assert_eq!(w.root().counts.succeeded, 6);
    let c4_keys: Vec<String> = w
        .effects
        .iter()
        .filter_map(|(_, e)| match e {
            Effect::CallProvider {
                cluster: Some(c),
                operation: Operation::UpdateCluster,
                idempotency_key,
                ..
            } if c == "c4" => Some(idempotency_key.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(c4_keys.len(), 2);
    assert_ne!(c4_keys[0], c4_keys[1]);
    let f = w.root().active.as_ref().map(|a| a.kind.clone());
    assert_eq!(f, None);
    insta::assert_snapshot!(w.log);
}

#[test]
fn rollback_stops_the_fan_out_and_the_catch_requests_it() {
    let mut w = World::new(fleetplane_workflow::builtin::ROLLOUT).cloud(|_, op, _| match op {
        Operation::UpdateCluster => Reply::InProgress("op-1"),
        _ => Reply::Done(json!({"phase": "Running", "health": "Healthy"})),
    });
    fleet(&mut w);
    for c in &mut w.fleet {
        c.facts.insert("revision".into(), json!(1));
    }
    w.start(
        json!({"revision": 2, "maxConcurrency": 2, "upgradeNow": true}),
        None,
    );
    assert_eq!(w.root().counts.running, 2);
    w.send_root(signal(Signal::Rollback));
    w.run_timers(100);
    let s = w.root();
    assert_eq!(s.status, RunStatus::Failed, "{}", w.log);
    assert_eq!(
        s.error.as_ref().map(|e| e.kind.as_str()),
        Some("rollout-failed")
    );
    let emitted: Vec<&str> = w
        .effects
        .iter()
        .filter_map(|(r, e)| match e {
            Effect::Emit { event_type, .. } if r == "run-1" => Some(event_type.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(
        emitted,
        [
            "fleetplane.rollout.started",
            "fleetplane.rollout.rollback-requested"
        ]
    );
    insta::assert_snapshot!(w.log);
}

#[test]
fn rollout_builtin_waits_for_windows_unless_upgrade_now() {
    let mut w = World::new(fleetplane_workflow::builtin::ROLLOUT);
    fleet(&mut w);
    let start = "2026-03-01T02:00:00Z".parse().unwrap();
    for c in ["c1", "c2", "c3", "c4", "c5", "c6"] {
        w.windows.insert(
            c.into(),
            fleetplane_workflow::run::Window {
                start,
                end: "2026-03-01T06:00:00Z".parse().unwrap(),
            },
        );
    }
    w.fleet[5].facts.insert("revision".into(), json!(2));
    w.start(json!({"revision": 2, "waves": [{"name": "canary", "selector": {"matchLabels": {"ring": "canary"}}, "soakMinutes": 30}]}), None);
    w.run_timers(200);
    let s = w.root();
    assert_eq!(s.status, RunStatus::Succeeded, "{}", w.log);
    assert_eq!(
        s.counts,
        WaveCounts {
            total: 7,
            succeeded: 5,
            skipped: 2,
            ..WaveCounts::default()
        }
    );
    let f = s.active.as_ref();
    assert!(f.is_none());
    // Canary at the 02:00 window, soak 30 min, then the rest — still inside the window.
    assert_eq!(w.now, "2026-03-01T02:30:00Z".parse().unwrap());
    insta::assert_snapshot!(w.log);
}

#[test]
fn an_unlimited_fan_out_starts_its_children_in_bounded_steps() {
    use fleetplane_workflow::run::START_PER_TRANSITION as STEP;
    let mut w = World::new(&rollout(""));
    w.fleet = (0..2 * STEP + STEP / 2)
        .map(|i| cluster(&format!("c{i:05}"), &[]))
        .collect();
    w.start(json!({}), None);
    assert_eq!(
        w.root().counts.running,
        STEP,
        "the first transition starts one step"
    );
    let armed_now = |w: &World| {
        w.timers
            .iter()
            .filter(|(at, run, _)| run == &w.root && *at == w.now)
            .count()
    };
    assert_eq!(armed_now(&w), 1, "a continuation due at once");
    // Firing it starts the next step, and arms another while some are left.
    w.next_timer();
    assert_eq!(w.root().counts.running, 2 * STEP);
    assert_eq!(armed_now(&w), 1);
    w.next_timer();
    assert_eq!(w.root().counts.running, 2 * STEP + STEP / 2);
    assert_eq!(armed_now(&w), 0, "nothing left to start, no timer");
    w.run_timers(10);
    let s = w.root();
    assert_eq!(s.status, RunStatus::Succeeded);
    assert_eq!(s.counts.succeeded, 2 * STEP + STEP / 2);
    assert!(w.timers.is_empty(), "{:?}", w.timers);
    // No root transition started more than one step's children.
    let mut before = 0;
    for &running in &w.running_seen {
        assert!(running <= before + STEP, "{before} → {running}");
        before = running;
    }
}
