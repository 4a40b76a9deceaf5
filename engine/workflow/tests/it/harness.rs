//! A small in-memory runtime for tests: a manual clock, durable-timer queue, child runs, and a
//! scripted cloud. It performs effects the way `docs/workflows.md` tells the real runtime to,
//! and logs every journal entry and effect for snapshots.

use fleetplane_workflow::definition::Operation;
use fleetplane_workflow::run::{Item, StepError, Token, Window};
use fleetplane_workflow::{
    Definition, Effect, Event, Principal, RunState, Signal, Transition, apply, parse_definition,
};
use jiff::Timestamp;
use serde_json::{Value, json};
use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write;

pub const T0: &str = "2026-03-01T00:00:00Z";

pub fn t0() -> Timestamp {
    T0.parse().unwrap()
}

pub fn def(yaml: &str) -> Definition {
    match parse_definition(yaml.as_bytes()) {
        Ok(d) => d,
        Err(e) => panic!("definition does not validate: {e:?}"),
    }
}

pub fn admin() -> Principal {
    Principal {
        name: "alice".into(),
        roles: vec!["tenant-admin".into()],
    }
}

pub fn signal(s: Signal) -> Event {
    Event::Signal {
        signal: s,
        by: admin(),
        reason: Some("test".into()),
    }
}

/// What the scripted cloud answers to one provider call.
#[derive(Debug, Clone)]
pub enum Reply {
    Done(Value),
    InProgress(&'static str),
    Fail(
        fleetplane_workflow::definition::ErrorKind,
        bool,
        Option<u64>,
    ),
    /// Leave the call unanswered (the test answers it by hand).
    Hold,
}

type Cloud = Box<dyn FnMut(&str, Operation, u32) -> Reply>;

/// A cluster of the simulated fleet.
pub fn cluster(name: &str, labels: &[(&str, &str)]) -> Item {
    let mut facts = serde_json::Map::new();
    facts.insert("phase".into(), json!("Running"));
    facts.insert("health".into(), json!("Healthy"));
    facts.insert("revision".into(), json!(1));
    facts.insert("pendingVariables".into(), json!(0));
    Item {
        name: name.into(),
        labels: labels
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        facts,
    }
}

pub struct World {
    pub def: Definition,
    pub now: Timestamp,
    pub runs: BTreeMap<String, RunState>,
    pub root: String,
    /// (at, run, timer)
    pub timers: Vec<(Timestamp, String, Token)>,
    pub queue: VecDeque<(String, Event)>,
    pub fleet: Vec<Item>,
    pub windows: BTreeMap<String, Window>,
    pub cloud: Cloud,
    pub held: Vec<(String, Effect)>,
    pub log: String,
    /// Every effect seen, with the run it came from.
    pub effects: Vec<(String, Effect)>,
    /// Only the root run's journal goes to the log unless this is set.
    pub log_children: bool,
    /// The root's running-children count after every transition.
    pub running_seen: Vec<usize>,
}

impl World {
    pub fn new(yaml: &str) -> Self {
        let def = def(yaml);
        let root = "run-1".to_owned();
        let mut runs = BTreeMap::new();
        runs.insert(root.clone(), RunState::new(root.clone(), &def));
        Self {
            def,
            now: t0(),
            runs,
            root,
            timers: Vec::new(),
            queue: VecDeque::new(),
            fleet: Vec::new(),
            windows: BTreeMap::new(),
            cloud: Box::new(|_, _, _| {
                Reply::Done(json!({"phase": "Running", "health": "Healthy"}))
            }),
            held: Vec::new(),
            log: String::new(),
            effects: Vec::new(),
            log_children: false,
            running_seen: Vec::new(),
        }
    }

    pub fn cloud(mut self, f: impl FnMut(&str, Operation, u32) -> Reply + 'static) -> Self {
        self.cloud = Box::new(f);
        self
    }

    pub fn root(&self) -> &RunState {
        &self.runs[&self.root]
    }

    pub fn start(&mut self, inputs: Value, subject: Option<Item>) {
        let root = self.root.clone();
        self.send(&root, Event::Started { inputs, subject });
    }

    /// Applies an event to a run and performs the resulting effects until nothing is left to
    /// do at the current instant.
    pub fn send(&mut self, run: &str, event: Event) {
        self.queue.push_back((run.to_owned(), event));
        self.drain();
    }

    pub fn send_root(&mut self, event: Event) {
        let root = self.root.clone();
        self.send(&root, event);
    }

    fn label(&self, run: &str) -> String {
        if run == self.root {
            "root".into()
        } else {
            let s = &self.runs[run];
            format!(
                "child:{}",
                s.subject.as_ref().map(|i| i.name.as_str()).unwrap_or("?")
            )
        }
    }

    fn drain(&mut self) {
        while let Some((run, event)) = self.queue.pop_front() {
            let Some(state) = self.runs.get_mut(&run) else {
                continue;
            };
            let before = state.journal_seq;
            let tr: Transition = apply(state, &self.def, event, self.now);
            assert_eq!(
                tr.journal.first().map(|j| j.seq),
                Some(before + 1),
                "journal gap"
            );
            for w in tr.journal.windows(2) {
                assert_eq!(w[1].seq, w[0].seq + 1, "journal gap");
            }
            if run == self.root {
                self.running_seen.push(state.counts.running);
            }
            let logged = run == self.root || self.log_children;
            let label = self.label(&run);
            let since = self.now.duration_since(t0());
            for j in &tr.journal {
                if logged {
                    let rec = serde_json::to_string(&j.record).unwrap();
                    let _ = writeln!(self.log, "{label} #{} +{}s {rec}", j.seq, since.as_secs());
                }
            }
            for e in tr.effects {
                if logged {
                    let _ = writeln!(self.log, "{label}   -> {}", brief(&e));
                }
                self.effects.push((run.clone(), e.clone()));
                self.perform(&run, e);
            }
        }
    }

    fn perform(&mut self, run: &str, e: Effect) {
        let run = run.to_owned();
        match e {
            Effect::CallProvider {
                call,
                operation,
                cluster,
                attempt,
                ..
            } => {
                let c = cluster.unwrap_or_default();
                let event = match (self.cloud)(&c, operation, attempt) {
                    Reply::Done(result) => Event::StepCompleted {
                        call,
                        result,
                        operation: None,
                    },
                    Reply::InProgress(op) => Event::StepCompleted {
                        call,
                        result: Value::Null,
                        operation: Some(op.into()),
                    },
                    Reply::Fail(kind, retryable, after) => Event::StepFailed {
                        call,
                        error: StepError {
                            kind,
                            message: format!("{c}: simulated {kind:?}"),
                        },
                        retryable,
                        retry_after: after.map(fleetplane_workflow::Duration::from_secs),
                    },
                    Reply::Hold => {
                        self.held.push((
                            run,
                            Effect::CallProvider {
                                call,
                                step: Default::default(),
                                operation,
                                operation_id: None,
                                cluster: Some(c),
                                idempotency_key: String::new(),
                                attempt,
                                args: Value::Null,
                            },
                        ));
                        return;
                    }
                };
                self.queue.push_back((run, event));
            }
            Effect::Render { call, cluster, .. } => {
                let event = Event::StepCompleted {
                    call,
                    result: json!({"cluster": cluster, "replaceMachines": false}),
                    operation: None,
                };
                self.queue.push_back((run, event));
            }
            Effect::Observe { call, cluster, .. } => {
                let item = cluster
                    .and_then(|c| self.fleet.iter().find(|i| i.name == c).cloned())
                    .unwrap_or_default();
                self.queue.push_back((run, Event::Observed { call, item }));
            }
            Effect::ResolveWindow { call, cluster, .. } => {
                let window = cluster.and_then(|c| self.windows.get(&c).copied());
                self.queue
                    .push_back((run, Event::WindowResolved { call, window }));
            }
            Effect::ResolveItems { call, .. } => {
                let items = self.fleet.clone();
                self.queue
                    .push_back((run, Event::ItemsResolved { call, items }));
            }
            Effect::SetTimer { timer, at } => self.timers.push((at, run, timer)),
            Effect::CancelTimer { timer } => {
                self.timers.retain(|(_, r, t)| !(r == &run && *t == timer))
            }
            Effect::StartChild(spec) => {
                if !self.runs.contains_key(&spec.run) {
                    let child = RunState::for_child(&spec, &self.def);
                    self.runs.insert(spec.run.clone(), child);
                }
                self.queue.push_back((
                    spec.run.clone(),
                    Event::Started {
                        inputs: spec.inputs.clone(),
                        subject: Some(spec.item.clone()),
                    },
                ));
            }
            Effect::SignalChild {
                child,
                signal,
                by,
                reason,
            } => {
                self.queue
                    .push_back((child, Event::Signal { signal, by, reason }));
            }
            Effect::NotifyParent {
                parent,
                item,
                child,
                outcome,
            } => {
                self.queue.push_back((
                    parent,
                    Event::ChildCompleted {
                        item,
                        child,
                        outcome,
                    },
                ));
            }
            Effect::Emit { .. } => {}
        }
    }

    /// Moves the clock to the next timer and fires every timer due then.
    pub fn next_timer(&mut self) -> bool {
        let Some(at) = self.timers.iter().map(|(at, _, _)| *at).min() else {
            return false;
        };
        if at > self.now {
            self.now = at;
        }
        let due: Vec<_> = self
            .timers
            .iter()
            .filter(|(a, _, _)| *a <= self.now)
            .cloned()
            .collect();
        self.timers.retain(|(a, _, _)| *a > self.now);
        for (_, run, timer) in due {
            self.queue.push_back((run, Event::TimerFired { timer }));
        }
        self.drain();
        true
    }

    /// Fires timers until none is left (bounded).
    pub fn run_timers(&mut self, max: usize) {
        for _ in 0..max {
            if !self.next_timer() {
                return;
            }
        }
    }

    pub fn advance(&mut self, secs: i64) {
        self.now = self
            .now
            .checked_add(jiff::SignedDuration::from_secs(secs))
            .unwrap();
    }
}

/// A one-line summary of an effect for logs.
pub fn brief(e: &Effect) -> String {
    match e {
        Effect::CallProvider {
            call,
            step,
            operation,
            operation_id,
            cluster,
            attempt,
            ..
        } => format!(
            "callProvider call={call} {} {}{}{} attempt={attempt} step={step}",
            operation.as_str(),
            cluster.as_deref().unwrap_or("-"),
            operation_id
                .as_ref()
                .map(|o| format!(" op={o}"))
                .unwrap_or_default(),
            "",
        ),
        Effect::Render { call, cluster, .. } => {
            format!("render call={call} {}", cluster.as_deref().unwrap_or("-"))
        }
        Effect::Observe { call, cluster, .. } => {
            format!("observe call={call} {}", cluster.as_deref().unwrap_or("-"))
        }
        Effect::ResolveWindow { call, cluster, .. } => {
            format!(
                "resolveWindow call={call} {}",
                cluster.as_deref().unwrap_or("-")
            )
        }
        Effect::ResolveItems { call, .. } => format!("resolveItems call={call}"),
        Effect::SetTimer { timer, at } => format!("setTimer {timer} at {at}"),
        Effect::CancelTimer { timer } => format!("cancelTimer {timer}"),
        Effect::StartChild(s) => format!("startChild {}", s.item.name),
        Effect::SignalChild { signal, .. } => format!("signalChild {}", signal.name()),
        Effect::NotifyParent { item, outcome, .. } => {
            format!(
                "notifyParent {item} {}",
                serde_json::to_string(outcome).unwrap()
            )
        }
        Effect::Emit {
            event_type, data, ..
        } => format!("emit {event_type} {data}"),
    }
}
