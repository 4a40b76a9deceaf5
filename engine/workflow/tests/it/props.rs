//! Properties over random event sequences: `apply` never panics, the journal is append-only and
//! gap-free, idempotency keys never depend on the attempt, and states survive persistence.

use crate::harness::{cluster, t0};
use fleetplane_workflow::definition::ErrorKind;
use fleetplane_workflow::run::{
    ChildOutcome, Item, LimitSetting, RunError, StepError, Window, child_run_id, idempotency_key,
};
use fleetplane_workflow::{
    Definition, Effect, Event, Principal, RunState, Signal, apply, parse_definition,
};
use proptest::prelude::*;
use serde_json::json;
use std::collections::BTreeMap;

const KITCHEN_SINK: &str = r#"kind: Workflow
metadata: {name: sink, version: 1.0.0}
spec:
  purpose: deploy
  inputs:
    n: {type: integer, default: 1}
  steps:
    - id: a
      provider:
        operation: create-cluster
        poll: {interval: 10s, timeout: 5m}
        retry: {maximumAttempts: 4, initialInterval: 1s, maximumTotal: 1m}
    - try:
        steps:
          - wait: {window: true, maxWait: 2h}
          - render: {}
          - soak: {duration: 2m, health: cluster.health == "Healthy"}
          - gate: {condition: cluster.phase == "Running", timeout: 1m}
        catch:
          - emit: {type: caught, data: "{'e': run.error}"}
    - choice:
        when:
          - if: inputs.n > 1
            steps: [{approve: {name: go, expires: 1h}}]
        otherwise:
          - provider:
              operation: describe-cluster
              poll: {timeout: 10m, until: result.phase == "Running"}
    - set: {name: x, value: inputs.n + 1}
    - fail: {message: done, kind: done}
"#;

fn defs() -> Vec<Definition> {
    let mut v = vec![parse_definition(KITCHEN_SINK.as_bytes()).unwrap()];
    v.extend(fleetplane_workflow::builtin::builtin().unwrap());
    let canary = std::fs::read(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../workflows/examples/canary.yaml"
    ))
    .unwrap();
    v.push(parse_definition(&canary).unwrap());
    v
}

#[derive(Debug, Clone)]
enum Ev {
    Started(i64),
    Completed(u64, bool, u8),
    Failed(u64, u8, bool, Option<u64>),
    Observed(u64, bool),
    Window(u64, i64, i64, bool),
    Items(u64, u8),
    Timer(u64),
    Signal(u8),
    Child(u8, bool, u8),
    Limits(Option<u32>, Option<u8>),
    WindowsChanged,
}

fn ev() -> impl Strategy<Value = Ev> {
    prop_oneof![
        1 => (0i64..3).prop_map(Ev::Started),
        4 => (1u64..40, any::<bool>(), 0u8..3).prop_map(|(c, op, r)| Ev::Completed(c, op, r)),
        3 => (1u64..40, 0u8..6, any::<bool>(), proptest::option::of(0u64..120)).prop_map(|(c, k, r, a)| Ev::Failed(c, k, r, a)),
        2 => (1u64..40, any::<bool>()).prop_map(|(c, h)| Ev::Observed(c, h)),
        2 => (1u64..40, -7200i64..7200, 0i64..14400, any::<bool>()).prop_map(|(c, s, l, n)| Ev::Window(c, s, l, n)),
        2 => (1u64..40, 0u8..6).prop_map(|(c, n)| Ev::Items(c, n)),
        4 => (1u64..40).prop_map(Ev::Timer),
        3 => (0u8..8).prop_map(Ev::Signal),
        3 => (0u8..6, any::<bool>(), 0u8..3).prop_map(|(i, ok, o)| Ev::Child(i, ok, o)),
        1 => (proptest::option::of(0u32..5), proptest::option::of(0u8..120)).prop_map(|(c, f)| Ev::Limits(c, f)),
        1 => Just(Ev::WindowsChanged),
    ]
}

const KINDS: [ErrorKind; 6] = [
    ErrorKind::InvalidConfig,
    ErrorKind::NotFound,
    ErrorKind::Conflict,
    ErrorKind::Throttled,
    ErrorKind::Transient,
    ErrorKind::Permanent,
];

fn to_event(e: &Ev, state: &RunState, now: jiff::Timestamp, def: &Definition) -> Event {
    let by = Principal {
        name: "p".into(),
        roles: vec!["tenant-admin".into()],
    };
    match e {
        Ev::Started(k) => Event::Started {
            inputs: match k {
                0 => json!({}),
                1 => json!({"n": 2, "revision": 2}),
                _ => json!({"n": "bad"}),
            },
            subject: Some(cluster("dev", &[("ring", "canary")])),
        },
        Ev::Completed(c, op, r) => Event::StepCompleted {
            call: *c,
            result: match r {
                0 => json!({"phase": "Running", "health": "Healthy"}),
                1 => json!({"phase": "Provisioning"}),
                _ => json!(null),
            },
            operation: op.then(|| "op-1".to_owned()),
        },
        Ev::Failed(c, k, r, a) => Event::StepFailed {
            call: *c,
            error: StepError {
                kind: KINDS[*k as usize % 6],
                message: "x".into(),
            },
            retryable: *r,
            retry_after: a.map(fleetplane_workflow::Duration::from_secs),
        },
        Ev::Observed(c, healthy) => {
            let mut item = cluster("dev", &[]);
            if !healthy {
                item.facts.insert("health".into(), json!("Degraded"));
            }
            Event::Observed { call: *c, item }
        }
        Ev::Window(c, s, l, none) => Event::WindowResolved {
            call: *c,
            window: (!none).then(|| {
                let start = now
                    .checked_add(jiff::SignedDuration::from_secs(*s))
                    .unwrap();
                Window {
                    start,
                    end: start
                        .checked_add(jiff::SignedDuration::from_secs(*l))
                        .unwrap(),
                }
            }),
        },
        Ev::Items(c, n) => Event::ItemsResolved {
            call: *c,
            items: (0..*n)
                .map(|i| {
                    let ring = if i % 2 == 0 { "canary" } else { "main" };
                    cluster(&format!("c{i}"), &[("ring", ring)])
                })
                .collect::<Vec<Item>>(),
        },
        Ev::Timer(t) => Event::TimerFired { timer: *t },
        Ev::Signal(k) => Event::Signal {
            signal: match k {
                0 => Signal::Pause,
                1 => Signal::Resume {
                    retry_failed: false,
                },
                2 => Signal::Resume { retry_failed: true },
                3 => Signal::Cancel,
                4 => Signal::Approve { name: "go".into() },
                5 => Signal::Reject {
                    name: "promote-canary".into(),
                },
                6 => Signal::UpgradeNow,
                _ => Signal::Rollback,
            },
            by,
            reason: None,
        },
        Ev::Child(i, real, o) => {
            let item = format!("c{i}");
            let fanout = state
                .active
                .as_ref()
                .map(|a| a.step.clone())
                .unwrap_or_default();
            let child = if *real {
                child_run_id(&state.id, &fanout, u32::from(*i), &item)
            } else {
                "nope".into()
            };
            let outcome = match o {
                0 => ChildOutcome::Succeeded,
                1 => ChildOutcome::Failed {
                    error: RunError {
                        kind: "transient".into(),
                        message: "x".into(),
                        step: None,
                    },
                },
                _ => ChildOutcome::Cancelled,
            };
            let _ = def;
            Event::ChildCompleted {
                item,
                child,
                outcome,
            }
        }
        Ev::Limits(c, f) => Event::LimitsChanged {
            max_concurrency: c.map(LimitSetting::Count),
            max_failures: f.map(LimitSetting::Percent),
            by,
        },
        Ev::WindowsChanged => Event::WindowsChanged,
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, ..ProptestConfig::default() })]

    #[test]
    fn apply_is_total_gap_free_and_keys_ignore_attempts(
        which in 0usize..5,
        events in proptest::collection::vec((ev(), 0i64..900), 0..60),
    ) {
        let defs = defs();
        let def = &defs[which];
        let mut state = RunState::new("run-p", def);
        let mut now = t0();
        let mut keys: BTreeMap<(u32, String, Option<String>), String> = BTreeMap::new();
        let mut first = true;
        for (e, dt) in &events {
            now = now.checked_add(jiff::SignedDuration::from_secs(*dt)).unwrap();
            let event = if first { first = false; to_event(&Ev::Started(1), &state, now, def) } else { to_event(e, &state, now, def) };
            let before = state.journal_seq;
            let tr = apply(&mut state, def, event, now);
            // Append-only and gap-free: every transition journals, numbering continues.
            prop_assert!(!tr.journal.is_empty());
            for (k, j) in tr.journal.iter().enumerate() {
                prop_assert_eq!(j.seq, before + 1 + k as u64);
            }
            prop_assert_eq!(state.journal_seq, before + tr.journal.len() as u64);
            for eff in &tr.effects {
                if let Effect::CallProvider { step, cluster, idempotency_key: key, .. } = eff {
                    let g = state.generation;
                    prop_assert_eq!(key, &idempotency_key(&state.id, g, step, cluster.as_deref()));
                    let slot = keys.entry((g, step.to_string(), cluster.clone())).or_insert_with(|| key.clone());
                    prop_assert_eq!(&*slot, key);
                }
            }
            // The state survives persistence unchanged.
            let bytes = serde_json::to_vec(&state).unwrap();
            prop_assert_eq!(&RunState::from_json(&bytes).unwrap(), &state);
        }
        let _ = fleetplane_workflow::stuck_steps(&state, def, now);
    }

    #[test]
    fn parse_definition_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = parse_definition(&bytes);
    }

    #[test]
    fn parse_definition_never_panics_on_near_misses(mutation in 0usize..2000, byte in any::<u8>()) {
        let mut doc = KITCHEN_SINK.as_bytes().to_vec();
        let i = mutation % doc.len();
        doc[i] = byte;
        let _ = parse_definition(&doc);
    }
}

#[test]
fn unknown_state_formats_are_refused() {
    let def = parse_definition(KITCHEN_SINK.as_bytes()).unwrap();
    let state = RunState::new("r", &def);
    let mut v = serde_json::to_value(&state).unwrap();
    v["format"] = json!(99);
    assert!(RunState::from_json(&serde_json::to_vec(&v).unwrap()).is_err());
    assert!(RunState::from_json(b"{}").is_err());
}

/// Writes the golden format-1 state (run by hand with `--ignored` when the format changes
/// deliberately; never overwrite an existing golden file for the same format).
#[test]
#[ignore]
fn write_golden_state() {
    use crate::harness::{Reply, World};
    use fleetplane_workflow::definition::Operation;
    let mut w = World::new(fleetplane_workflow::builtin::DEPLOY).cloud(|_, op, _| match op {
        Operation::CreateCluster | Operation::PollOperation => Reply::InProgress("op-1"),
        _ => Reply::Done(json!({"phase": "Running", "health": "Healthy"})),
    });
    w.start(json!({"revision": 1}), Some(cluster("dev", &[])));
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/it/golden/run-state-v1.json"
    );
    if !std::path::Path::new(path).exists() {
        std::fs::write(path, serde_json::to_string_pretty(w.root()).unwrap()).unwrap();
    }
}
