//! Measures journal transitions per second against raw redb commits per second on the same
//! disk. Usage: `cargo run --release -p fleetplane-runtime --example transitions [DIR] [N]`.
#![allow(clippy::print_stdout)]

use fleetplane_runtime::{EffectExecutor, NewRun, Runtime, RuntimeConfig, SystemClock};
use fleetplane_store::RedbStorage;
use fleetplane_workflow::{Effect, Event, Item, parse_definition};
use futures::future::BoxFuture;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

const FANOUT: &str = r#"kind: Workflow
metadata: {name: wide, version: 1.0.0}
spec:
  purpose: rollout
  steps:
    - id: roll
      fanout:
        over: template
        steps:
          - render: {}
          - provider: {operation: update-cluster, retry: {maximumAttempts: 1}}
"#;

struct Instant_;

impl EffectExecutor for Instant_ {
    fn perform(&self, _run: &str, effect: Effect) -> BoxFuture<'static, Option<Event>> {
        let ev = match effect {
            Effect::CallProvider { call, .. } | Effect::Render { call, .. } => {
                Some(Event::StepCompleted {
                    call,
                    result: json!({}),
                    operation: None,
                })
            }
            Effect::ResolveItems { call, .. } => Some(Event::ItemsResolved {
                call,
                items: (0..N_ITEMS.load(std::sync::atomic::Ordering::Relaxed))
                    .map(|i| Item {
                        name: format!("c{i:06}"),
                        ..Item::default()
                    })
                    .collect(),
            }),
            _ => None,
        };
        Box::pin(async move { ev })
    }
}

static N_ITEMS: std::sync::atomic::AtomicUsize = std::sync::atomic::AtomicUsize::new(0);

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args.next().map(std::path::PathBuf::from);
    let n: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    N_ITEMS.store(n, std::sync::atomic::Ordering::Relaxed);
    let dir = match &base {
        Some(b) => tempfile::tempdir_in(b)?,
        None => tempfile::tempdir()?,
    };

    // Raw redb: one small insert per durable commit.
    let raw = redb::Database::create(dir.path().join("raw.redb"))?;
    let table: redb::TableDefinition<'_, u64, &[u8]> = redb::TableDefinition::new("t");
    let commits = 500u64;
    let started = Instant::now();
    for i in 0..commits {
        let w = raw.begin_write()?;
        w.open_table(table)?.insert(i, &[0u8; 200][..])?;
        w.commit()?;
    }
    let raw_rate = commits as f64 / started.elapsed().as_secs_f64();

    // The runtime: a fan-out over n clusters, batched.
    let store = Arc::new(RedbStorage::open(&dir.path().join("fleetplane.redb"))?);
    let mut rt = Runtime::open(
        store,
        Arc::new(SystemClock),
        Arc::new(Instant_),
        RuntimeConfig {
            batch_events: 10_000,
            max_in_flight: 1_024,
            ..RuntimeConfig::default()
        },
    )?;
    let digest = rt.register(parse_definition(FANOUT.as_bytes())?);
    rt.start_run(NewRun {
        id: "wide".into(),
        definition: digest,
        inputs: json!({}),
        subject: None,
        project: None,
        cluster: None,
    })?;
    let started = Instant::now();
    let mut batches = 0u64;
    let mut applied = 0usize;
    loop {
        let r = rt.tick()?;
        if r.applied > 0 {
            batches += 1;
            applied += r.applied;
            continue;
        }
        if !rt.busy() {
            break;
        }
        tokio::task::yield_now().await;
    }
    let secs = started.elapsed().as_secs_f64();
    println!("raw redb durable commits/s: {raw_rate:.0}");
    println!(
        "runtime: {n} children, {applied} transitions in {batches} commits, {secs:.2}s: \
         {:.0} transitions/s ({:.1} transitions/commit)",
        applied as f64 / secs,
        applied as f64 / batches.max(1) as f64
    );
    Ok(())
}
