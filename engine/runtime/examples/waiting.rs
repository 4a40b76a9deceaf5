//! Measures runs per second while 10,000 other runs wait (DESIGN §9, issue 6): first W runs that
//! each wait on a durable one-hour timer are started and parked, then M short runs (a `set`, an
//! `emit` answered at once, done) are started through the client — one transaction each, as the
//! API does — and driven to the end. Usage:
//! `cargo run --release -p fleetplane-runtime --example waiting [DIR] [W] [M]`.
#![allow(clippy::print_stdout)]

use fleetplane_runtime::{EffectExecutor, NewRun, Runtime, RuntimeConfig, SystemClock};
use fleetplane_store::RedbStorage;
use fleetplane_workflow::{Effect, Event, parse_definition};
use futures::future::BoxFuture;
use serde_json::json;
use std::sync::Arc;
use std::time::Instant;

const WAITER: &str = r#"kind: Workflow
metadata: {name: waiter, version: 1.0.0}
spec:
  purpose: rollout
  steps:
    - wait: {duration: 1h}
"#;

const SHORT: &str = r#"kind: Workflow
metadata: {name: short, version: 1.0.0}
spec:
  purpose: rollout
  steps:
    - set: {name: x, value: "1"}
    - emit: {type: bench.done}
"#;

/// Answers nothing but emits (which expect no answer).
struct Quiet;

impl EffectExecutor for Quiet {
    fn perform(&self, _run: &str, _effect: Effect) -> BoxFuture<'static, Option<Event>> {
        Box::pin(async { None })
    }
}

async fn drain(rt: &mut Runtime) -> Result<(u64, usize), Box<dyn std::error::Error>> {
    let (mut batches, mut applied) = (0u64, 0usize);
    loop {
        let r = rt.tick()?;
        if r.applied > 0 {
            batches += 1;
            applied += r.applied;
            continue;
        }
        if !rt.busy() {
            return Ok((batches, applied));
        }
        tokio::task::yield_now().await;
    }
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let base = args.next().map(std::path::PathBuf::from);
    let waiting: usize = args
        .next()
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let short: usize = args.next().map(|s| s.parse()).transpose()?.unwrap_or(2_000);
    let dir = match &base {
        Some(b) => tempfile::tempdir_in(b)?,
        None => tempfile::tempdir()?,
    };
    let store = Arc::new(RedbStorage::open(&dir.path().join("fleetplane.redb"))?);
    let mut rt = Runtime::open(
        store,
        Arc::new(SystemClock),
        Arc::new(Quiet),
        RuntimeConfig::default(),
    )?;
    let waiter = rt.register(parse_definition(WAITER.as_bytes())?);
    let quick = rt.register(parse_definition(SHORT.as_bytes())?);
    let client = rt.client();
    let new = |id: String, definition: &str| NewRun {
        id,
        definition: definition.to_owned(),
        inputs: json!({}),
        subject: None,
        project: None,
        cluster: None,
    };

    let started = Instant::now();
    for i in 0..waiting {
        client.start_run(new(format!("w{i:06}"), &waiter))?;
    }
    let (_, applied) = drain(&mut rt).await?;
    let park = started.elapsed().as_secs_f64();
    println!(
        "parked {waiting} waiting runs in {park:.2}s ({:.0} runs/s started and parked, {applied} transitions)",
        waiting as f64 / park
    );

    let started = Instant::now();
    for i in 0..short {
        client.start_run(new(format!("s{i:06}"), &quick))?;
    }
    let (batches, applied) = drain(&mut rt).await?;
    let secs = started.elapsed().as_secs_f64();
    println!(
        "with {waiting} runs waiting: {short} short runs started (one commit each) and finished in \
         {secs:.2}s: {:.0} runs/s ({applied} transitions in {batches} batches)",
        short as f64 / secs
    );
    Ok(())
}
