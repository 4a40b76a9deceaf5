//! A deterministic fake executor and helpers shared by the runtime tests.
#![allow(dead_code)]

use fleetplane_runtime::{EffectExecutor, Idle, ManualClock, Runtime, RuntimeConfig};
use fleetplane_store::{RedbStorage, Store};
use fleetplane_workflow::{Effect, Event, Item};
use futures::future::BoxFuture;
use serde_json::json;
use std::path::Path;
use std::sync::{Arc, Mutex};

pub fn t0() -> jiff::Timestamp {
    "2026-03-02T10:00:00Z".parse().unwrap()
}

pub fn cluster(name: &str) -> Item {
    let mut facts = serde_json::Map::new();
    facts.insert("phase".into(), json!("Running"));
    facts.insert("health".into(), json!("Healthy"));
    facts.insert("revision".into(), json!(1));
    facts.insert("pendingVariables".into(), json!(0));
    facts.insert("timeZone".into(), json!("UTC"));
    Item {
        name: name.into(),
        labels: Default::default(),
        facts,
    }
}

/// Performed provider calls: (run, step, cluster, idempotency key, attempt).
pub type Calls = Arc<Mutex<Vec<(String, String, String, String, u32)>>>;

/// Answers every effect from the effect alone: a fleet of `fleet` clusters, every cloud call
/// succeeds (create-cluster first reports an operation in progress), windows open now.
pub struct Fake {
    pub fleet: Vec<Item>,
    pub calls: Calls,
    pub emitted: Arc<Mutex<Vec<String>>>,
}

impl Fake {
    pub fn new(fleet: usize) -> Self {
        Self {
            fleet: (0..fleet).map(|i| cluster(&format!("c{i:05}"))).collect(),
            calls: Arc::default(),
            emitted: Arc::default(),
        }
    }
}

impl EffectExecutor for Fake {
    fn perform(&self, run: &str, effect: Effect) -> BoxFuture<'static, Option<Event>> {
        let answer = match effect {
            Effect::CallProvider {
                call,
                step,
                operation,
                cluster,
                idempotency_key,
                attempt,
                operation_id,
                ..
            } => {
                self.calls.lock().unwrap().push((
                    run.to_owned(),
                    step.to_string(),
                    cluster.clone().unwrap_or_default(),
                    idempotency_key,
                    attempt,
                ));
                let in_progress = operation.as_str() == "create-cluster" && operation_id.is_none();
                Some(Event::StepCompleted {
                    call,
                    result: json!({"phase": "Running", "health": "Healthy"}),
                    operation: in_progress.then(|| "op-1".to_owned()),
                })
            }
            Effect::Render { call, cluster, .. } => Some(Event::StepCompleted {
                call,
                result: json!({"cluster": cluster, "replaceMachines": false}),
                operation: None,
            }),
            Effect::Observe { call, cluster, .. } => Some(Event::Observed {
                call,
                item: crate::common::cluster(&cluster.unwrap_or_default()),
            }),
            Effect::ResolveWindow { call, after, .. } => Some(Event::WindowResolved {
                call,
                window: Some(fleetplane_workflow::run::Window {
                    start: after,
                    end: after + jiff::SignedDuration::from_hours(4),
                }),
            }),
            Effect::ResolveItems { call, .. } => Some(Event::ItemsResolved {
                call,
                items: self.fleet.clone(),
            }),
            Effect::Emit { key, .. } => {
                self.emitted.lock().unwrap().push(key);
                None
            }
            other => panic!("internal effect reached the executor: {other:?}"),
        };
        // Like a real executor's, the answer comes after a wait (here one scheduler pass).
        Box::pin(async move {
            tokio::task::yield_now().await;
            answer
        })
    }
}

pub fn open_store(path: &Path) -> Store {
    Arc::new(RedbStorage::open(path).unwrap())
}

pub fn runtime(path: &Path, clock: &Arc<ManualClock>, fake: Arc<Fake>) -> Runtime {
    Runtime::open(
        open_store(path),
        clock.clone(),
        fake,
        RuntimeConfig::default(),
    )
    .unwrap()
}

/// Runs until nothing is ready, advancing the clock to each next timer, at most `rounds`
/// times; returns the last idle report.
pub async fn drive(rt: &mut Runtime, clock: &ManualClock, rounds: usize) -> Idle {
    let mut idle = rt.run_until_idle().await.unwrap();
    for _ in 0..rounds {
        let Some(at) = idle.next_timer else { break };
        clock.set(at);
        idle = rt.run_until_idle().await.unwrap();
    }
    idle
}

pub fn state(rt: &Runtime, run: &str) -> fleetplane_workflow::RunState {
    let r = rt.store().read().unwrap();
    let rec = r.run(run).unwrap().unwrap();
    fleetplane_runtime::load_state(&*r, &rec).unwrap()
}

/// Every journal entry of `run`, asserting seq 1.. with no gaps.
pub fn journal(rt: &Runtime, run: &str) -> Vec<serde_json::Value> {
    let r = rt.store().read().unwrap();
    let entries = r.journal(run, 0, usize::MAX).unwrap();
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e.seq, i as u64 + 1, "journal of {run} has a gap");
    }
    assert_eq!(r.journal_head(run).unwrap(), entries.len() as u64);
    entries
        .iter()
        .map(|e| serde_json::from_slice(&e.body).unwrap())
        .collect()
}
