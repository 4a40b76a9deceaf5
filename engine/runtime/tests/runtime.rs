//! The runtime against real redb files, a manual clock and a deterministic fake executor.

mod common;

use common::*;
use fleetplane_runtime::{ManualClock, NewRun, RuntimeError};
use fleetplane_store::RunIndex;
use fleetplane_workflow::{Event, Principal, RunStatus, Signal, parse_definition};
use serde_json::json;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

/// Every step kind: provider (polled and `until`), render, wait (duration and window), soak,
/// gate, approve, fanout, sequence, choice, try/catch, fail, set, emit.
const EVERY_KIND: &str = r#"kind: Workflow
metadata: {name: every-kind, version: 1.0.0}
spec:
  purpose: rollout
  inputs:
    n: {type: integer, default: 2}
  steps:
    - set: {name: x, value: inputs.n + 1}
    - sequence:
        steps:
          - wait: {duration: 5m}
          - emit: {type: example.started, data: "{'x': vars.x}"}
    - choice:
        when:
          - if: vars.x > 2
            steps: [{approve: {name: go, expires: 1h}}]
        otherwise:
          - fail: {message: not reached}
    - try:
        steps:
          - fail: {message: boom, kind: expected}
        catch:
          - emit: {type: example.caught, data: "{'e': run.error.kind}"}
    - id: roll
      fanout:
        over: template
        maxConcurrency: 3
        steps:
          - wait: {window: true, maxWait: 2h}
          - render: {}
          - provider: {operation: create-cluster, poll: {interval: 10s, timeout: 5m}}
          - provider:
              operation: describe-cluster
              poll: {timeout: 10m, until: result.phase == "Running"}
          - soak: {duration: 2m, health: cluster.health == "Healthy", checkEvery: 1m}
          - gate: {condition: cluster.phase == "Running", timeout: 1m}
    - emit: {type: example.done}
"#;

const FANOUT: &str = r#"kind: Workflow
metadata: {name: wide, version: 1.0.0}
spec:
  purpose: rollout
  steps:
    - id: roll
      fanout:
        over: template
        maxConcurrency: 200
        maxFailures: 0
        steps:
          - wait: {duration: 1m}
          - render: {}
          - provider: {operation: update-cluster, retry: {maximumAttempts: 1}}
"#;

fn new_run(id: &str, digest: &str) -> NewRun {
    NewRun {
        id: id.into(),
        definition: digest.into(),
        inputs: json!({}),
        subject: None,
        project: Some("default".into()),
        cluster: None,
    }
}

#[tokio::test(flavor = "current_thread")]
async fn every_step_kind_runs_to_completion() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleetplane.redb");
    let clock = Arc::new(ManualClock::new(t0()));
    let fake = Arc::new(Fake::new(5));
    let mut rt = runtime(&path, &clock, fake.clone());
    let digest = rt.register(parse_definition(EVERY_KIND.as_bytes()).unwrap());
    rt.start_run(new_run("run-1", &digest)).unwrap();

    // Advance timer by timer until the run waits for the approval.
    let mut idle = rt.run_until_idle().await.unwrap();
    while state(&rt, "run-1").waiting_on != Some(fleetplane_workflow::run::WaitingOn::Signal) {
        clock.set(idle.next_timer.expect("a timer"));
        idle = rt.run_until_idle().await.unwrap();
    }
    let s = state(&rt, "run-1");
    assert_eq!(s.status, RunStatus::Waiting, "{idle:?} {:?}", s.error);
    assert_eq!(
        rt.store()
            .read()
            .unwrap()
            .runs_by(&RunIndex::Status("Waiting".into()), None, 10)
            .unwrap(),
        ["run-1"]
    );
    rt.send(
        "run-1",
        &Event::Signal {
            signal: Signal::Approve { name: "go".into() },
            by: Principal::user("bob"),
            reason: Some("lgtm".into()),
        },
    )
    .unwrap();
    let idle = drive(&mut rt, &clock, 1_000).await;
    assert_eq!(idle.next_timer, None);
    assert!(!rt.busy());

    let s = state(&rt, "run-1");
    assert_eq!(s.status, RunStatus::Succeeded, "{:?}", s.error);
    assert_eq!(
        s.results["roll"],
        json!({"total": 5, "succeeded": 5, "failed": 0, "skipped": 0})
    );
    let records: BTreeSet<String> = journal(&rt, "run-1")
        .iter()
        .map(|e| e["record"]["type"].as_str().unwrap_or_default().to_owned())
        .collect();
    for r in [
        "variableSet",
        "timerFired",
        "approvalDecided",
        "errorCaught",
        "childCompleted",
    ] {
        assert!(records.contains(r), "no {r} in {records:?}");
    }
    let r = rt.store().read().unwrap();
    let children = r
        .runs_by(&RunIndex::Parent("run-1".into()), None, 100)
        .unwrap();
    assert_eq!(children.len(), 5);
    for c in &children {
        let rec = r.run(c).unwrap().unwrap();
        assert_eq!(rec.header.project.as_deref(), Some("default"));
        assert_eq!(rec.header.parent.as_deref(), Some("run-1"));
        let child = state(&rt, c);
        assert_eq!(child.status, RunStatus::Succeeded);
        journal(&rt, c);
        // Cluster locks are released when children end.
        assert_eq!(r.cluster_lock(&child.subject.unwrap().name).unwrap(), None);
    }
    // Nothing left behind: outbox, inbox and timers are empty.
    assert!(r.outbox(0, 10).unwrap().is_empty());
    assert!(r.inbox(10).unwrap().is_empty());
    assert!(r.next_timer().unwrap().is_none());
    // create-cluster was polled: more than one call per child, all under one key.
    let calls = fake.calls.lock().unwrap();
    assert!(calls.len() > 10, "{}", calls.len());
    assert_eq!(fake.emitted.lock().unwrap().len(), 3);
}

#[tokio::test(flavor = "current_thread")]
async fn a_fan_out_over_1000_items_completes() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleetplane.redb");
    let clock = Arc::new(ManualClock::new(t0()));
    let fake = Arc::new(Fake::new(1_000));
    // A small state cache: most children are re-read from the store between batches. Little
    // room for answers ahead of the batches: the slots keep waiting for batches to commit.
    let mut rt = fleetplane_runtime::Runtime::open(
        open_store(&path),
        clock.clone(),
        fake.clone(),
        fleetplane_runtime::RuntimeConfig {
            cached_runs: 50,
            max_in_flight: 8,
            max_answers_ahead: 20,
            ..Default::default()
        },
    )
    .unwrap();
    let digest = rt.register(parse_definition(FANOUT.as_bytes()).unwrap());
    rt.start_run(new_run("wide", &digest)).unwrap();
    let idle = drive(&mut rt, &clock, 100).await;
    assert_eq!(idle.next_timer, None);
    let s = state(&rt, "wide");
    assert_eq!(s.status, RunStatus::Succeeded, "{:?}", s.error);
    assert_eq!(
        s.results["roll"],
        json!({"total": 1000, "succeeded": 1000, "failed": 0, "skipped": 0})
    );
    assert_eq!(fake.calls.lock().unwrap().len(), 1_000);
    let r = rt.store().read().unwrap();
    assert_eq!(
        r.runs_by(&RunIndex::Status("Succeeded".into()), None, 2_000)
            .unwrap()
            .len(),
        1_001
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_crash_mid_run_resumes_with_the_same_keys_and_a_gap_free_journal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleetplane.redb");
    let clock = Arc::new(ManualClock::new(t0()));
    let fake = Arc::new(Fake::new(300));
    let def = parse_definition(FANOUT.as_bytes()).unwrap();
    let mut crashes = 0;
    {
        let mut rt = runtime(&path, &clock, fake.clone());
        let digest = rt.register(def.clone());
        rt.start_run(new_run("wide", &digest)).unwrap();
        rt.run_until_idle().await.unwrap();
    }
    // Crash repeatedly: each incarnation runs a few batches and is dropped with effects in
    // flight and answers not yet committed.
    let mut done = false;
    for round in 0..400 {
        // A few performing slots: an incarnation gets through some effects, not the queue.
        let mut rt = fleetplane_runtime::Runtime::open(
            open_store(&path),
            clock.clone(),
            fake.clone(),
            fleetplane_runtime::RuntimeConfig {
                max_in_flight: 8,
                ..Default::default()
            },
        )
        .unwrap();
        rt.register(def.clone());
        for _ in 0..(1 + round % 3) {
            rt.tick().unwrap();
            tokio::task::yield_now().await;
        }
        crashes += 1;
        if !rt.busy() {
            let idle = rt.run_until_idle().await.unwrap();
            match idle.next_timer {
                Some(at) => clock.set(at),
                None => {
                    done = true;
                    break;
                }
            }
        }
        drop(rt);
    }
    assert!(done, "did not finish after {crashes} crashes");
    let rt = runtime(&path, &clock, fake.clone());
    let s = state(&rt, "wide");
    assert_eq!(s.status, RunStatus::Succeeded, "{:?}", s.error);
    assert_eq!(
        s.results["roll"],
        json!({"total": 300, "succeeded": 300, "failed": 0, "skipped": 0})
    );
    journal(&rt, "wide");
    // Every child's provider calls, however often repeated, carry one key.
    let calls = fake.calls.lock().unwrap();
    let mut keys: BTreeMap<(String, String), BTreeSet<String>> = BTreeMap::new();
    for (run, step, _cluster, key, _) in calls.iter() {
        keys.entry((run.clone(), step.clone()))
            .or_default()
            .insert(key.clone());
    }
    assert_eq!(keys.len(), 300);
    assert!(keys.values().all(|k| k.len() == 1));
    // Crashes happened with calls performed but not answered: they were performed again.
    assert!(calls.len() > 300, "{} calls", calls.len());
    assert!(crashes > 10, "{crashes}");
    let r = rt.store().read().unwrap();
    for c in r
        .runs_by(&RunIndex::Parent("wide".into()), None, 1_000)
        .unwrap()
    {
        journal(&rt, &c);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn cluster_locks_refuse_a_second_run() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("fleetplane.redb");
    let clock = Arc::new(ManualClock::new(t0()));
    let mut rt = runtime(&path, &clock, Arc::new(Fake::new(0)));
    let digest = rt.register(parse_definition(FANOUT.as_bytes()).unwrap());
    let locked = |id: &str| NewRun {
        cluster: Some("default/prod".into()),
        ..new_run(id, &digest)
    };
    rt.start_run(locked("a")).unwrap();
    let err = rt.start_run(locked("b")).unwrap_err();
    assert!(
        matches!(&err, RuntimeError::ClusterBusy { holder, .. } if holder == "a"),
        "{err}"
    );
    assert!(matches!(
        rt.start_run(new_run("a", &digest)),
        Err(RuntimeError::RunExists(_))
    ));
    // "a" ends (an empty fleet succeeds at once) and releases the lock.
    drive(&mut rt, &clock, 10).await;
    assert_eq!(state(&rt, "a").status, RunStatus::Succeeded);
    rt.start_run(locked("b")).unwrap();
}

#[tokio::test(flavor = "current_thread")]
async fn serve_runs_what_clients_start_until_shutdown() {
    const QUICK: &str = "kind: Workflow\nmetadata: {name: quick, version: 1.0.0}\nspec:\n  purpose: rollout\n  steps:\n    - id: roll\n      fanout:\n        over: template\n        steps:\n          - render: {}\n";
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let rt = runtime(&dir.path().join("f.redb"), &clock, Arc::new(Fake::new(20)));
    let client = rt.client();
    let digest = client.register(parse_definition(QUICK.as_bytes()).unwrap());
    let mut commits = rt.commits();
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(rt.serve(async {
        let _ = stopped.await;
    }));
    client.start_run(new_run("q", &digest)).unwrap();
    let finished = async {
        loop {
            commits.changed().await.unwrap();
            let r = client.store().read().unwrap();
            if r.run("q").unwrap().unwrap().header.terminal {
                return r.run("q").unwrap().unwrap().header.status;
            }
        }
    };
    // A guard against hanging, not a timing assertion.
    let status = tokio::time::timeout(std::time::Duration::from_secs(60), finished)
        .await
        .expect("the run did not finish");
    assert_eq!(status, "Succeeded");
    stop.send(()).unwrap();
    task.await.unwrap();
}

/// Claims `Emit` effects of type `claimed.*` inside the batch; records what it saw.
#[derive(Default)]
struct EmittingHook {
    pending: std::sync::Mutex<Vec<String>>,
    published: std::sync::Mutex<Vec<String>>,
}

impl fleetplane_runtime::TransitionHook for EmittingHook {
    fn applied(
        &self,
        _w: &mut dyn fleetplane_store::WriteOps,
        _t: &fleetplane_runtime::Applied<'_>,
    ) -> Result<(), fleetplane_store::StoreError> {
        Ok(())
    }

    fn perform(
        &self,
        w: &mut dyn fleetplane_store::WriteOps,
        run: &fleetplane_store::RunHeader,
        effect: &fleetplane_workflow::Effect,
        _now: jiff::Timestamp,
    ) -> Result<bool, fleetplane_store::StoreError> {
        match effect {
            fleetplane_workflow::Effect::Emit { event_type, .. }
                if event_type.starts_with("claimed.") =>
            {
                // A domain write in the batch's transaction.
                w.append(fleetplane_store::Log::Events, event_type.as_bytes())?;
                self.pending
                    .lock()
                    .unwrap()
                    .push(format!("{}:{event_type}", run.id));
                Ok(true)
            }
            _ => Ok(false),
        }
    }

    fn committed(&self) {
        let done = std::mem::take(&mut *self.pending.lock().unwrap());
        self.published.lock().unwrap().extend(done);
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_hook_performs_the_effects_it_claims_inside_the_batch() {
    const EMITS: &str = "kind: Workflow\nmetadata: {name: emits, version: 1.0.0}\nspec:\n  purpose: update\n  steps:\n    - emit: {type: claimed.one}\n    - emit: {type: left.two}\n    - emit: {type: claimed.three}\n";
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let fake = Arc::new(Fake::new(1));
    let hook = Arc::new(EmittingHook::default());
    let mut rt = runtime(&dir.path().join("f.redb"), &clock, fake.clone()).with_hook(hook.clone());
    let digest = rt.register(parse_definition(EMITS.as_bytes()).unwrap());
    rt.start_run(new_run("e", &digest)).unwrap();
    drive(&mut rt, &clock, 10).await;
    assert_eq!(state(&rt, "e").status, RunStatus::Succeeded);
    // The claimed ones were published once, with their transition; only the other one went
    // through the outbox to the executor.
    assert_eq!(
        *hook.published.lock().unwrap(),
        ["e:claimed.one", "e:claimed.three"]
    );
    assert_eq!(fake.emitted.lock().unwrap().len(), 1);
    let r = rt.store().read().unwrap();
    assert!(r.outbox(0, 10).unwrap().is_empty());
    let logged: Vec<Vec<u8>> = r
        .log_after(fleetplane_store::Log::Events, 0, 10)
        .unwrap()
        .into_iter()
        .map(|e| e.body)
        .collect();
    assert_eq!(logged, [b"claimed.one".to_vec(), b"claimed.three".to_vec()]);
}

/// Fails the batch (a store error) the first `left` times it is handed an answer.
struct FailingHook {
    left: std::sync::atomic::AtomicUsize,
}

impl fleetplane_runtime::TransitionHook for FailingHook {
    fn applied(
        &self,
        _w: &mut dyn fleetplane_store::WriteOps,
        t: &fleetplane_runtime::Applied<'_>,
    ) -> Result<(), fleetplane_store::StoreError> {
        use std::sync::atomic::Ordering;
        if matches!(t.event, Event::StepCompleted { .. })
            && self
                .left
                .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
                .is_ok()
        {
            return Err(fleetplane_store::StoreError::Unavailable(
                "injected failure".into(),
            ));
        }
        Ok(())
    }
}

/// A batch that fails commits nothing and keeps the answers it was applying: the next batch
/// applies them, and no effect is performed twice for it.
#[tokio::test(flavor = "current_thread")]
async fn a_failed_batch_keeps_its_answers_for_the_next() {
    const STEPS: &str = "kind: Workflow\nmetadata: {name: steps, version: 1.0.0}\nspec:\n  purpose: update\n  steps:\n    - render: {}\n    - provider: {operation: update-cluster}\n    - provider: {operation: describe-cluster}\n";
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let fake = Arc::new(Fake::new(1));
    let hook = Arc::new(FailingHook { left: 3.into() });
    let mut rt = runtime(&dir.path().join("f.redb"), &clock, fake.clone()).with_hook(hook);
    let digest = rt.register(parse_definition(STEPS.as_bytes()).unwrap());
    rt.start_run(new_run("s", &digest)).unwrap();
    let mut failures = 0;
    for _ in 0..20 {
        match rt.run_until_idle().await {
            Ok(_) if state(&rt, "s").status.is_terminal() => break,
            Ok(_) => {}
            Err(RuntimeError::Store(_)) => failures += 1,
            Err(e) => panic!("{e}"),
        }
    }
    assert_eq!(failures, 3, "three batches failed before one committed");
    assert_eq!(state(&rt, "s").status, RunStatus::Succeeded);
    let steps: Vec<String> = fake
        .calls
        .lock()
        .unwrap()
        .iter()
        .map(|c| c.1.clone())
        .collect();
    assert_eq!(steps.len(), 2, "one call per provider step: {steps:?}");
    journal(&rt, "s");
    assert!(rt.store().read().unwrap().outbox(0, 10).unwrap().is_empty());
}
