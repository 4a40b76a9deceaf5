//! Step-by-step journals of every step kind, with a manual clock.

use crate::harness::*;
use fleetplane_workflow::definition::{ErrorKind, Operation};
use fleetplane_workflow::run::{Awaiting, WaitingOn, Window};
use fleetplane_workflow::{Effect, RunStatus, Signal};
use serde_json::json;
use std::cell::Cell;
use std::rc::Rc;

fn head(purpose: &str) -> String {
    format!("kind: Workflow\nmetadata: {{name: t, version: 1.0.0}}\nspec:\n  purpose: {purpose}\n")
}

#[test]
fn deploy_builtin_provisions_polls_and_checks_health() {
    let polls = Rc::new(Cell::new(0));
    let p = polls.clone();
    let mut w = World::new(fleetplane_workflow::builtin::DEPLOY).cloud(move |_, op, _| match op {
        Operation::CreateCluster => Reply::InProgress("op-1"),
        Operation::PollOperation => {
            p.set(p.get() + 1);
            if p.get() < 3 { Reply::InProgress("op-1") } else { Reply::Done(json!({"done": true})) }
        }
        Operation::DescribeCluster if p.get() < 4 => {
            p.set(p.get() + 1);
            Reply::Done(json!({"phase": "Provisioning", "health": "Unknown"}))
        }
        _ => Reply::Done(json!({"phase": "Running", "health": "Healthy", "profiles": [{"name": "base", "version": "1.0.0"}]})),
    });
    w.start(json!({"revision": 1}), Some(cluster("dev", &[])));
    w.run_timers(50);
    assert_eq!(w.root().status, RunStatus::Succeeded);
    // One idempotency key per step and cluster, whatever the attempt or poll.
    let mut keys = std::collections::BTreeMap::new();
    for (_, e) in &w.effects {
        if let Effect::CallProvider {
            step,
            idempotency_key,
            ..
        } = e
        {
            keys.entry(step.to_string())
                .or_insert_with(std::collections::BTreeSet::new)
                .insert(idempotency_key.clone());
        }
    }
    assert_eq!(keys.len(), 3);
    assert!(keys.values().all(|k| k.len() == 1), "{keys:?}");
    insta::assert_snapshot!(w.log);
}

#[test]
fn retries_back_off_exponentially_and_stop_at_the_total_bound() {
    let yaml = head("deploy")
        + "  steps:\n    - id: call\n      provider:\n        operation: describe-cluster\n        retry:\n          initialInterval: 1s\n          backoffCoefficient: 2\n          maximumInterval: 5s\n          maximumAttempts: 10\n          maximumTotal: 15s\n";
    let mut w = World::new(&yaml).cloud(|_, _, _| Reply::Fail(ErrorKind::Transient, true, None));
    w.start(json!({}), Some(cluster("dev", &[])));
    w.run_timers(50);
    let s = w.root();
    assert_eq!(s.status, RunStatus::Failed);
    assert!(
        s.error.as_ref().unwrap().message.contains("maximumTotal"),
        "{:?}",
        s.error
    );
    // Attempts at 0s, 1s, 3s, 7s, 12s; the next (at 17s) would pass maximumTotal 15s.
    let attempts: Vec<u32> = w
        .effects
        .iter()
        .filter_map(|(_, e)| match e {
            Effect::CallProvider { attempt, .. } => Some(*attempt),
            _ => None,
        })
        .collect();
    assert_eq!(attempts, [1, 2, 3, 4, 5]);
    insta::assert_snapshot!(w.log);
}

#[test]
fn retry_decisions_follow_the_policy() {
    let yaml = head("deploy")
        + "  steps:\n    - provider:\n        operation: describe-cluster\n        retry: {maximumAttempts: 3, initialInterval: 1s, nonRetryableErrors: [not-found]}\n";
    // (reply, expected attempts, expected final status, expected delay of the first retry in s)
    let cases = [
        (
            Reply::Fail(ErrorKind::NotFound, true, None),
            1,
            RunStatus::Failed,
            None,
        ),
        (
            Reply::Fail(ErrorKind::Transient, false, None),
            1,
            RunStatus::Failed,
            None,
        ),
        (
            Reply::Fail(ErrorKind::Transient, true, None),
            3,
            RunStatus::Failed,
            Some(1),
        ),
        (
            Reply::Fail(ErrorKind::Throttled, true, Some(30)),
            3,
            RunStatus::Failed,
            Some(30),
        ),
    ];
    for (reply, attempts, status, first_delay) in cases {
        let r = reply.clone();
        let mut w = World::new(&yaml).cloud(move |_, _, _| r.clone());
        w.start(json!({}), Some(cluster("dev", &[])));
        let delay = w
            .timers
            .first()
            .map(|(at, _, _)| at.duration_since(t0()).as_secs());
        w.run_timers(20);
        let calls = w
            .effects
            .iter()
            .filter(|(_, e)| matches!(e, Effect::CallProvider { .. }))
            .count();
        assert_eq!(
            (calls, w.root().status, delay),
            (attempts, status, first_delay),
            "{reply:?}"
        );
    }
}

#[test]
fn waits_for_durations_instants_and_expressions() {
    let yaml = head("deploy")
        + "  steps:\n    - wait: {duration: 10m}\n    - wait: {until: '2026-03-01T01:00:00Z'}\n    - wait: {until: '2020-01-01T00:00:00Z'}\n    - set: {name: at, value: '\"2026-03-01T03:00:00Z\"'}\n    - wait: {untilExpr: vars.at, maxWait: 1h}\n";
    let mut w = World::new(&yaml);
    w.start(json!({}), Some(cluster("dev", &[])));
    assert_eq!(w.root().waiting_on, Some(WaitingOn::Timer));
    w.run_timers(10);
    assert_eq!(w.root().status, RunStatus::Succeeded);
    // The computed instant is bounded by maxWait: 01:00 + 1h.
    assert_eq!(w.now, "2026-03-01T02:00:00Z".parse().unwrap());
    insta::assert_snapshot!(w.log);
}

const WINDOW: &str = "  steps:\n    - wait: {window: true}\n    - render: {}\n";

#[test]
fn window_wait_re_resolves_at_the_window_start() {
    let mut w = World::new(&(head("deploy") + WINDOW));
    let start = "2026-03-01T02:00:00Z".parse().unwrap();
    w.windows.insert(
        "dev".into(),
        Window {
            start,
            end: "2026-03-01T06:00:00Z".parse().unwrap(),
        },
    );
    w.start(json!({}), Some(cluster("dev", &[])));
    assert_eq!(
        (w.root().status, w.root().waiting_on),
        (RunStatus::Waiting, Some(WaitingOn::Window))
    );
    // The policy changes: the runtime says so, the machine re-resolves and re-arms.
    w.windows.insert(
        "dev".into(),
        Window {
            start: "2026-03-01T03:00:00Z".parse().unwrap(),
            end: "2026-03-01T07:00:00Z".parse().unwrap(),
        },
    );
    w.send_root(fleetplane_workflow::Event::WindowsChanged);
    w.run_timers(10);
    assert_eq!(w.root().status, RunStatus::Succeeded);
    assert_eq!(w.now, "2026-03-01T03:00:00Z".parse().unwrap());
    insta::assert_snapshot!(w.log);
}

#[test]
fn upgrade_now_ends_a_window_wait_and_no_window_waits_for_it() {
    // No window is known (a policy without schedules): the wait waits for upgrade-now.
    let mut w = World::new(&(head("deploy") + WINDOW));
    w.start(json!({}), Some(cluster("dev", &[])));
    assert_eq!(
        w.root().active.as_ref().unwrap().awaiting,
        Awaiting::WindowSignal
    );
    w.send_root(signal(Signal::UpgradeNow));
    assert_eq!(w.root().status, RunStatus::Succeeded);
    insta::assert_snapshot!(w.log);

    // With maxWait, a window that never comes fails the step with `timeout`.
    let yaml = head("deploy") + "  steps:\n    - wait: {window: true, maxWait: 1d}\n";
    let mut w = World::new(&yaml);
    w.start(json!({}), Some(cluster("dev", &[])));
    w.run_timers(5);
    assert_eq!(
        w.root().error.as_ref().map(|e| e.kind.as_str()),
        Some("timeout")
    );
}

#[test]
fn soak_and_gate_observe_until_done() {
    let yaml = head("deploy")
        + "  steps:\n    - soak: {duration: 3m, checkEvery: 1m, health: cluster.health == \"Healthy\"}\n    - gate: {condition: cluster.phase == \"Running\", timeout: 2m, interval: 30s}\n";
    let mut w = World::new(&yaml);
    let mut c = cluster("dev", &[]);
    c.facts.insert("phase".into(), json!("Updating"));
    w.fleet.push(c.clone());
    w.start(json!({}), Some(c));
    w.run_timers(3); // the soak's checks at +1m, +2m, +3m
    assert_eq!(
        w.root().active.as_ref().map(|a| a.kind.as_str()),
        Some("gate")
    );
    w.next_timer(); // still Updating at +3m30s
    w.fleet[0].facts.insert("phase".into(), json!("Running"));
    w.run_timers(20);
    assert_eq!(w.root().status, RunStatus::Succeeded);
    insta::assert_snapshot!(w.log);
}

#[test]
fn soak_fails_when_unhealthy_and_gate_times_out() {
    let yaml = head("deploy")
        + "  steps:\n    - soak: {duration: 10m, health: cluster.health == \"Healthy\"}\n";
    let mut w = World::new(&yaml);
    w.fleet.push(cluster("dev", &[]));
    w.start(json!({}), Some(cluster("dev", &[])));
    w.fleet[0].facts.insert("health".into(), json!("Degraded"));
    w.next_timer();
    assert_eq!(
        w.root().error.as_ref().map(|e| e.kind.as_str()),
        Some("unhealthy")
    );

    let yaml = head("deploy")
        + "  steps:\n    - gate: {condition: cluster.phase == \"Running\", timeout: 2m, interval: 1m}\n";
    let mut w = World::new(&yaml);
    let mut c = cluster("dev", &[]);
    c.facts.insert("phase".into(), json!("Updating"));
    w.fleet.push(c.clone());
    w.start(json!({}), Some(c));
    w.run_timers(10);
    assert_eq!(
        w.root().error.as_ref().map(|e| e.kind.as_str()),
        Some("timeout")
    );
    assert_eq!(w.now, "2026-03-01T00:02:00Z".parse().unwrap());
    insta::assert_snapshot!(w.log);
}

const APPROVE: &str = "  steps:\n    - approve: {name: go, approvers: {users: [bob], roles: [release-manager]}, expires: 1h}\n    - emit: {type: approved}\n";

#[test]
fn approvals_check_who_record_why_and_expire() {
    let mut w = World::new(&(head("rollout") + APPROVE));
    w.start(json!({}), None);
    assert_eq!(w.root().waiting_on, Some(WaitingOn::Signal));
    // alice is a tenant admin but not an approver: refused, nothing changes.
    w.send_root(signal(Signal::Approve { name: "go".into() }));
    assert_eq!(w.root().status, RunStatus::Waiting);
    // Another approval name is not awaited.
    let bob = fleetplane_workflow::Principal::user("bob");
    w.send_root(fleetplane_workflow::Event::Signal {
        signal: Signal::Approve {
            name: "other".into(),
        },
        by: bob.clone(),
        reason: None,
    });
    w.send_root(fleetplane_workflow::Event::Signal {
        signal: Signal::Approve { name: "go".into() },
        by: bob,
        reason: Some("canary looks good".into()),
    });
    assert_eq!(w.root().status, RunStatus::Succeeded);
    assert_eq!(w.root().approvals.len(), 1);
    assert!(w.timers.is_empty(), "the expiry timer was cancelled");
    insta::assert_snapshot!("approvals_granted", w.log);

    let mut w = World::new(&(head("rollout") + APPROVE));
    w.start(json!({}), None);
    let rm = fleetplane_workflow::Principal {
        name: "carol".into(),
        roles: vec!["release-manager".into()],
    };
    w.send_root(fleetplane_workflow::Event::Signal {
        signal: Signal::Reject { name: "go".into() },
        by: rm,
        reason: Some("error rate".into()),
    });
    assert_eq!(
        w.root()
            .error
            .as_ref()
            .map(|e| (e.kind.as_str(), e.message.as_str())),
        Some(("rejected", "rejected by carol: error rate"))
    );

    let mut w = World::new(&(head("rollout") + APPROVE));
    w.start(json!({}), None);
    w.run_timers(5);
    assert_eq!(
        w.root().error.as_ref().map(|e| e.kind.as_str()),
        Some("expired")
    );
    assert_eq!(w.now, "2026-03-01T01:00:00Z".parse().unwrap());
}

#[test]
fn control_flow_set_choice_try_catch_fail_emit_sequence() {
    let yaml = head("rollout")
        + r#"  inputs:
    mode: {type: string, enum: [a, b], default: b}
  steps:
    - set: {name: n, value: "1 + 2"}
    - choice:
        when:
          - if: inputs.mode == "a"
            steps: [{emit: {type: never}}]
          - if: vars.n == 3
            steps:
              - sequence:
                  steps:
                    - set: {name: m, value: "vars.n * 2"}
        otherwise: [{emit: {type: never}}]
    - try:
        steps:
          - emit: {type: before, data: "{'m': vars.m}"}
          - fail: {message: boom, kind: custom}
          - emit: {type: never}
        catch:
          - emit: {type: caught, data: "{'kind': run.error.kind, 'at': run.error.step}"}
    - choice:
        when: [{if: "false", steps: [{emit: {type: never}}]}]
    - fail: {message: the end}
"#;
    let mut w = World::new(&yaml);
    w.start(json!({}), None);
    let s = w.root();
    assert_eq!(s.status, RunStatus::Failed, "{}", w.log);
    assert_eq!(s.vars.get("m"), Some(&json!(6)), "{}", w.log);
    let emitted: Vec<String> = w
        .effects
        .iter()
        .filter_map(|(_, e)| match e {
            Effect::Emit { event_type, .. } => Some(event_type.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(emitted, ["before", "caught"]);
    insta::assert_snapshot!(w.log);
}

#[test]
fn bad_inputs_fail_the_run_and_expression_errors_fail_the_step() {
    let yaml = head("rollout")
        + "  inputs:\n    n: {type: integer, required: true}\n  steps:\n    - set: {name: x, value: 'inputs.n / 0'}\n";
    let mut w = World::new(&yaml);
    w.start(json!({"n": "x", "extra": 1}), None);
    let e = w.root().error.clone().unwrap();
    assert_eq!(e.kind, "invalid-config");
    assert!(
        e.message.contains("inputs.n") && e.message.contains("inputs.extra"),
        "{}",
        e.message
    );

    let mut w = World::new(&yaml);
    w.start(json!({"n": 1}), None);
    assert_eq!(
        w.root().error.as_ref().map(|e| e.kind.as_str()),
        Some("expression")
    );
}

#[test]
fn stale_and_duplicate_replies_are_ignored() {
    let yaml = head("deploy") + "  steps:\n    - provider: {operation: describe-cluster}\n";
    let mut w = World::new(&yaml).cloud(|_, _, _| Reply::Hold);
    w.start(json!({}), Some(cluster("dev", &[])));
    let call = match &w.held[0].1 {
        Effect::CallProvider { call, .. } => *call,
        _ => unreachable!(),
    };
    let done = fleetplane_workflow::Event::StepCompleted {
        call,
        result: json!({}),
        operation: None,
    };
    w.send_root(fleetplane_workflow::Event::StepCompleted {
        call: call + 7,
        result: json!({}),
        operation: None,
    });
    w.send_root(fleetplane_workflow::Event::TimerFired { timer: 99 });
    w.send_root(done.clone());
    w.send_root(done);
    assert_eq!(w.root().status, RunStatus::Succeeded);
    insta::assert_snapshot!(w.log);
}

#[test]
fn stuck_steps_are_flagged_by_kind() {
    use fleetplane_workflow::stuck_steps;
    // A provider call nobody answers.
    let yaml = head("deploy")
        + "  steps:\n    - provider: {operation: describe-cluster, retry: {maximumAttempts: 1}}\n";
    let mut w = World::new(&yaml).cloud(|_, _, _| Reply::Hold);
    w.start(json!({}), Some(cluster("dev", &[])));
    assert!(stuck_steps(w.root(), &w.def, w.now).is_empty());
    w.advance(14 * 60);
    assert!(stuck_steps(w.root(), &w.def, w.now).is_empty());
    w.advance(2 * 60);
    let s = stuck_steps(w.root(), &w.def, w.now);
    assert_eq!(s.len(), 1);
    assert!(
        s[0].reason.starts_with("no reply to call"),
        "{}",
        s[0].reason
    );

    // A timer the runtime failed to fire.
    let mut w = World::new(&(head("deploy") + "  steps:\n    - wait: {duration: 1h}\n"));
    w.start(json!({}), Some(cluster("dev", &[])));
    w.advance(3600 + 4 * 60);
    assert!(stuck_steps(w.root(), &w.def, w.now).is_empty());
    w.advance(2 * 60);
    assert!(
        stuck_steps(w.root(), &w.def, w.now)[0]
            .reason
            .contains("overdue")
    );
    // Paused runs are never stuck.
    w.send_root(signal(Signal::Pause));
    assert!(stuck_steps(w.root(), &w.def, w.now).is_empty());

    // An approval without expiry, awaited for more than a day.
    let mut w = World::new(&(head("deploy") + "  steps:\n    - approve: {name: go}\n"));
    w.start(json!({}), Some(cluster("dev", &[])));
    w.advance(25 * 3600);
    let s = stuck_steps(w.root(), &w.def, w.now);
    assert_eq!(s.first().map(|s| s.kind.as_str()), Some("approve"));
}

#[test]
fn a_state_written_by_format_1_is_still_read() {
    // Golden bytes: a deploy run waiting between two polls of its create-cluster operation.
    let bytes = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/golden/run-state-v1.json"
    ))
    .unwrap();
    let state = fleetplane_workflow::RunState::from_json(&bytes).expect("format 1 reads");
    assert_eq!(state.status, RunStatus::Waiting);
    let a = state.active.as_ref().unwrap();
    assert_eq!(a.operation_id.as_deref(), Some("op-1"));
    // And it continues: the poll timer fires, the machine polls the operation.
    // The definition the run was pinned to (a copy: the built-in may evolve).
    let def = def(include_str!("golden/deploy-for-run-state-v1.yaml"));
    assert_eq!(state.definition.digest, def.digest());
    let timer = match a.awaiting {
        Awaiting::Timer { timer, .. } => timer,
        ref other => panic!("{other:?}"),
    };
    let mut s = state.clone();
    let tr = fleetplane_workflow::apply(
        &mut s,
        &def,
        fleetplane_workflow::Event::TimerFired { timer },
        t0(),
    );
    assert!(matches!(
        tr.effects.as_slice(),
        [Effect::CallProvider {
            operation: Operation::PollOperation,
            ..
        }]
    ));
}

#[test]
fn an_operation_the_provider_lost_is_called_again_with_the_same_key() {
    let yaml = head("deploy")
        + "  steps:\n    - provider:\n        operation: create-cluster\n        poll: {interval: 1s, timeout: 1h}\n        retry: {maximumAttempts: 3, initialInterval: 1s}\n";
    // The create is accepted; the first poll finds no such operation (the provider lost it);
    // the second create (same key) is polled to the end.
    let mut polls = 0;
    let mut w = World::new(&yaml).cloud(move |_, op, _| match op {
        Operation::CreateCluster => Reply::InProgress("op-1"),
        Operation::PollOperation => {
            polls += 1;
            if polls == 1 {
                Reply::Fail(ErrorKind::NotFound, false, None)
            } else {
                Reply::Done(json!({"state": "succeeded"}))
            }
        }
        _ => Reply::Done(json!({})),
    });
    w.start(json!({}), Some(cluster("dev", &[])));
    w.run_timers(20);
    assert_eq!(w.root().status, RunStatus::Succeeded, "{}", w.log);
    let calls: Vec<(Operation, String)> = w
        .effects
        .iter()
        .filter_map(|(_, e)| match e {
            Effect::CallProvider {
                operation,
                idempotency_key,
                ..
            } => Some((*operation, idempotency_key.clone())),
            _ => None,
        })
        .collect();
    let ops: Vec<Operation> = calls.iter().map(|(o, _)| *o).collect();
    assert_eq!(
        ops,
        [
            Operation::CreateCluster,
            Operation::PollOperation,
            Operation::CreateCluster,
            Operation::PollOperation
        ]
    );
    assert!(
        calls.iter().all(|(_, k)| *k == calls[0].1),
        "one key: {calls:?}"
    );
}
