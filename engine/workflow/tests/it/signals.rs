//! Every signal in every state: a table of what happens, snapshotted, plus the rules that
//! matter most asserted directly.

use crate::harness::*;
use fleetplane_workflow::{RunStatus, Signal};
use serde_json::json;
use std::fmt::Write;

fn head(purpose: &str) -> String {
    format!("kind: Workflow\nmetadata: {{name: t, version: 1.0.0}}\nspec:\n  purpose: {purpose}\n")
}

/// Builds a world in the named state.
fn world_in(state: &str) -> World {
    let timer =
        head("deploy") + "  steps:\n    - wait: {duration: 10m}\n    - emit: {type: done}\n";
    let mut w = match state {
        "pending" => return World::new(&timer),
        "running" => World::new(
            &(head("deploy") + "  steps:\n    - provider: {operation: describe-cluster}\n"),
        )
        .cloud(|_, _, _| Reply::Hold),
        "waiting-timer" | "paused" | "cancelled" => World::new(&timer),
        "waiting-window" => {
            World::new(&(head("deploy") + "  steps:\n    - wait: {window: true}\n"))
        }
        "waiting-approval" => {
            World::new(&(head("deploy") + "  steps:\n    - approve: {name: go, expires: 1h}\n"))
        }
        "fanout" => {
            let mut w = World::new(
                &(head("rollout")
                    + "  steps:\n    - fanout:\n        over: template\n        steps:\n          - wait: {duration: 1m}\n          - approve: {name: go}\n"),
            );
            w.fleet = vec![cluster("c1", &[]), cluster("c2", &[])];
            w.start(json!({}), None);
            return w;
        }
        "succeeded" => World::new(&(head("deploy") + "  steps:\n    - emit: {type: done}\n")),
        "failed" => World::new(&(head("deploy") + "  steps:\n    - fail: {message: no}\n")),
        other => panic!("{other}"),
    };
    w.start(json!({}), Some(cluster("dev", &[])));
    match state {
        "paused" => w.send_root(signal(Signal::Pause)),
        "cancelled" => w.send_root(signal(Signal::Cancel)),
        _ => {}
    }
    w
}

const STATES: [&str; 10] = [
    "pending",
    "running",
    "waiting-timer",
    "waiting-window",
    "waiting-approval",
    "fanout",
    "paused",
    "succeeded",
    "failed",
    "cancelled",
];

fn signals() -> Vec<Signal> {
    vec![
        Signal::Pause,
        Signal::Resume {
            retry_failed: false,
        },
        Signal::Resume { retry_failed: true },
        Signal::Cancel,
        Signal::Approve { name: "go".into() },
        Signal::Reject { name: "go".into() },
        Signal::UpgradeNow,
        Signal::Rollback,
    ]
}

fn summarize(delta: &str) -> String {
    let mut parts = Vec::new();
    for line in delta.lines() {
        if let Some(pos) = line.find("\"type\":\"") {
            let rest = &line[pos + 8..];
            parts.push(rest[..rest.find('"').unwrap_or(rest.len())].to_owned());
        } else if let Some(pos) = line.find("-> ") {
            let e = &line[pos + 3..];
            parts.push(format!("→{}", e.split(' ').next().unwrap_or(e)));
        }
    }
    parts.join(" ")
}

#[test]
fn every_signal_in_every_state() {
    let mut table = String::new();
    for state in STATES {
        let before_status = world_in(state).root().status;
        let _ = writeln!(table, "## {state} ({before_status:?})");
        for s in signals() {
            let mut w = world_in(state);
            let seq = w.root().journal_seq;
            let mark = w.log.len();
            w.send_root(signal(s.clone()));
            let after = w.root();
            assert!(after.journal_seq > seq, "{state}/{s:?}: no journal entry");
            let _ = writeln!(
                table,
                "{:<28} -> {:?}{}: {}",
                serde_json::to_string(&s).unwrap(),
                after.status,
                after
                    .waiting_on
                    .map(|o| format!("({o:?})"))
                    .unwrap_or_default(),
                summarize(&w.log[mark..])
            );
        }
    }
    insta::assert_snapshot!(table);
}

#[test]
fn pause_keeps_timers_and_resume_replays_what_fired_meanwhile() {
    let mut w = world_in("waiting-timer");
    w.send_root(signal(Signal::Pause));
    assert_eq!(w.root().status, RunStatus::Paused);
    assert_eq!(w.timers.len(), 1, "the timer stays armed");
    w.next_timer(); // fires while paused: deferred
    assert_eq!(w.root().status, RunStatus::Paused);
    assert_eq!(w.root().deferred.len(), 1);
    w.advance(3600);
    w.send_root(signal(Signal::Resume {
        retry_failed: false,
    }));
    assert_eq!(w.root().status, RunStatus::Succeeded);
    assert!(w.root().deferred.is_empty());
}

#[test]
fn a_reply_while_paused_is_applied_but_nothing_new_starts() {
    let yaml = head("deploy")
        + "  steps:\n    - provider: {operation: describe-cluster}\n    - emit: {type: next}\n";
    let mut w = World::new(&yaml).cloud(|_, _, _| Reply::Hold);
    w.start(json!({}), Some(cluster("dev", &[])));
    w.send_root(signal(Signal::Pause));
    let call = match &w.held[0].1 {
        fleetplane_workflow::Effect::CallProvider { call, .. } => *call,
        _ => unreachable!(),
    };
    w.send_root(fleetplane_workflow::Event::StepCompleted {
        call,
        result: json!({}),
        operation: None,
    });
    assert_eq!(w.root().status, RunStatus::Paused);
    assert!(w.root().active.is_none(), "the provider step completed");
    assert!(
        !w.log.contains("\"kind\":\"emit\""),
        "the next step did not start"
    );
    w.send_root(signal(Signal::Resume {
        retry_failed: false,
    }));
    assert_eq!(w.root().status, RunStatus::Succeeded);
}

#[test]
fn signals_reach_running_children() {
    let mut w = world_in("fanout");
    w.next_timer(); // children now await approval `go`
    let children: Vec<String> = w.runs.keys().filter(|k| *k != "run-1").cloned().collect();
    assert_eq!(children.len(), 2);
    w.send_root(signal(Signal::Pause));
    assert!(
        children
            .iter()
            .all(|c| w.runs[c].status == RunStatus::Paused)
    );
    w.send_root(signal(Signal::Resume {
        retry_failed: false,
    }));
    w.send_root(signal(Signal::Approve { name: "go".into() }));
    assert_eq!(w.root().status, RunStatus::Succeeded, "{}", w.log);
    let mut w = world_in("fanout");
    w.send_root(signal(Signal::Cancel));
    assert!(w.runs.values().all(|r| r.status == RunStatus::Cancelled));
}
