//! `apply`: one event in, journal entries and effects out.

use super::fanout::{FanoutState, Halt, ItemStatus, LimitSetting, START_PER_TRANSITION};
use super::keys::{child_run_id, emit_key, idempotency_key};
use super::{
    Active, ApprovalRecord, Awaiting, ChildOutcome, ChildSpec, Effect, Event, Frame, FrameKind,
    Item, JournalEntry, PauseInfo, Principal, Record, RunError, RunScope, RunState, RunStatus,
    Signal, StepError, Token, Transition, WaitingOn, Window,
};
use crate::definition::{
    Definition, FanoutStep, Limit, ListSel, OnFailure, Operation, OrExpr, ProviderStep, Step,
    StepKind, StepPath, WaitFor, Wave,
};
use crate::duration::Duration;
use crate::expr::{self, Scope};
use jiff::Timestamp;
use serde_json::{Value, json};

/// The largest step result or variable kept in the run state, in bytes of JSON.
pub const MAX_VALUE_BYTES: usize = 64 * 1024;
/// The most events kept while paused (duplicates beyond are dropped; timers are re-armed).
const MAX_DEFERRED: usize = 64;
/// Poll settings when a provider returns an operation for a step without `poll`.
const DEFAULT_POLL_INTERVAL: Duration = Duration::from_secs(10);
/// The shortest wait before polling a cloud operation again, whatever the provider hints.
const MIN_POLL_AFTER_MS: u64 = 100;
const DEFAULT_POLL_TIMEOUT: Duration = Duration::from_secs(3600);

/// Applies one event to a run and returns what to journal and do. Deterministic: the same state,
/// definition, event and `now` always give the same result. Never panics on any event.
///
/// `def` must be the definition the run was created with (same digest).
pub fn apply(state: &mut RunState, def: &Definition, event: Event, now: Timestamp) -> Transition {
    let mut tx = Tx {
        state,
        def,
        now,
        out: Transition::default(),
    };
    let name = event.name();
    tx.handle(event);
    tx.refresh_status();
    if tx.out.journal.is_empty() {
        tx.record(Record::EventIgnored {
            event: name.into(),
            why: "nothing to do".into(),
        });
    }
    tx.out
}

struct Tx<'a> {
    state: &'a mut RunState,
    def: &'a Definition,
    now: Timestamp,
    out: Transition,
}

fn add(t: Timestamp, d: Duration) -> Timestamp {
    t.checked_add(d.to_signed()).unwrap_or(Timestamp::MAX)
}

fn cap(v: Value) -> Value {
    let n = serde_json::to_vec(&v).map(|b| b.len()).unwrap_or(0);
    if n > MAX_VALUE_BYTES {
        json!({"truncated": true, "bytes": n})
    } else {
        v
    }
}

impl<'a> Tx<'a> {
    // -----------------------------------------------------------------------------------------
    // plumbing

    fn record(&mut self, record: Record) {
        self.state.journal_seq += 1;
        self.out.journal.push(JournalEntry {
            seq: self.state.journal_seq,
            at: self.now,
            record,
        });
    }

    fn effect(&mut self, e: Effect) {
        self.out.effects.push(e);
    }

    fn token(&mut self) -> Token {
        let t = self.state.next_token;
        self.state.next_token += 1;
        t
    }

    fn ignore(&mut self, event: &str, why: impl Into<String>) {
        self.record(Record::EventIgnored {
            event: event.into(),
            why: why.into(),
        });
    }

    fn set_timer(&mut self, at: Timestamp, purpose: &str) -> Token {
        let timer = self.token();
        self.effect(Effect::SetTimer { timer, at });
        self.record(Record::TimerSet {
            timer,
            at,
            purpose: purpose.into(),
        });
        timer
    }

    fn await_timer(&mut self, at: Timestamp, purpose: &str) {
        let timer = self.set_timer(at, purpose);
        self.set_awaiting(Awaiting::Timer { timer, at });
    }

    fn set_awaiting(&mut self, awaiting: Awaiting) {
        let now = self.now;
        if let Some(a) = self.state.active.as_mut() {
            a.awaiting = awaiting;
            a.awaiting_since = now;
        }
    }

    /// Disarms the active step's timer, if it has one.
    fn cancel_active_timer(&mut self) {
        let timer = match self.state.active.as_ref().map(|a| &a.awaiting) {
            Some(Awaiting::Timer { timer, .. }) => Some(*timer),
            Some(Awaiting::Approval {
                expiry: Some((timer, _)),
                ..
            }) => Some(*timer),
            _ => None,
        };
        if let Some(timer) = timer {
            self.effect(Effect::CancelTimer { timer });
            self.record(Record::TimerCancelled { timer });
            self.set_awaiting(Awaiting::Nothing);
        }
    }

    fn subject_name(&self) -> Option<String> {
        self.state.subject.as_ref().map(|s| s.name.clone())
    }

    fn is_paused(&self) -> bool {
        self.state.paused.is_some()
    }

    /// The active step's definition (borrowed from the definition, not from `self`).
    fn active_step(&self) -> Option<&'a Step> {
        let def: &'a Definition = self.def;
        self.state.active.as_ref().and_then(|a| def.step(&a.step))
    }

    fn refresh_status(&mut self) {
        let s = &mut *self.state;
        if s.status.is_terminal() {
            s.waiting_on = None;
            return;
        }
        if s.paused.is_some() {
            s.status = RunStatus::Paused;
            s.waiting_on = None;
            return;
        }
        if s.started_at.is_none() {
            s.status = RunStatus::Pending;
            return;
        }
        let is_window = s
            .active
            .as_ref()
            .and_then(|a| self.def.step(&a.step))
            .is_some_and(|st| matches!(&st.kind, StepKind::Wait(w) if w.for_ == WaitFor::Window));
        s.waiting_on = match s.active.as_ref().map(|a| &a.awaiting) {
            Some(Awaiting::Timer { .. }) if is_window => Some(WaitingOn::Window),
            Some(Awaiting::Timer { .. }) => Some(WaitingOn::Timer),
            Some(Awaiting::Approval { .. }) => Some(WaitingOn::Signal),
            Some(Awaiting::WindowSignal) => Some(WaitingOn::Window),
            _ => None,
        };
        s.status = if s.waiting_on.is_some() {
            RunStatus::Waiting
        } else {
            RunStatus::Running
        };
    }

    // -----------------------------------------------------------------------------------------
    // expressions

    fn run_json(&self) -> Value {
        let s = &*self.state;
        let c = &s.counts;
        json!({
            "id": s.id,
            "generation": s.generation,
            "upgradeNow": s.upgrade_now,
            "rollbackRequested": s.rollback_requested,
            "error": s.error,
            "total": c.total,
            "pending": c.pending,
            "running": c.running,
            "succeeded": c.succeeded,
            "failed": c.failed,
            "skipped": c.skipped,
        })
    }

    /// Evaluates `source` in the run's scope (plus `result`/`item` where given).
    fn eval(
        &self,
        source: &str,
        result: Option<&Value>,
        item: Option<&Value>,
    ) -> Result<Value, String> {
        let compiled = expr::compile_shared(source).map_err(|e| e.to_string())?;
        // Only what the expression reads is built: the step results in particular (stacks,
        // observed clusters) are large, and most expressions read one field of the inputs.
        let inputs = &self.state.inputs;
        let vars = compiled
            .reads("vars")
            .then(|| Value::Object(self.state.vars.clone()));
        let steps = compiled.fields_read("steps").map_or_else(
            || Some(self.state.results.iter().collect::<Vec<_>>()),
            |ids| {
                (!ids.is_empty()).then(|| {
                    self.state
                        .results
                        .iter()
                        .filter(|(k, _)| ids.contains(&k.as_str()))
                        .collect()
                })
            },
        );
        let steps = steps.map(|results| {
            Value::Object(
                results
                    .into_iter()
                    .map(|(k, v)| (k.clone(), json!({ "result": v })))
                    .collect(),
            )
        });
        let run = compiled.reads("run").then(|| self.run_json());
        let cluster = if compiled.reads("cluster") {
            self.state.subject.as_ref().map(Item::to_cel)
        } else {
            None
        };
        let scope = Scope {
            inputs: Some(inputs),
            vars: vars.as_ref(),
            run: run.as_ref(),
            cluster: cluster.as_ref().or(item),
            steps: steps.as_ref(),
            result,
            item,
        };
        compiled.eval(&scope).map_err(|e| e.to_string())
    }

    fn eval_bool(&self, source: &str, result: Option<&Value>) -> Result<bool, String> {
        match self.eval(source, result, None)? {
            Value::Bool(b) => Ok(b),
            other => Err(format!(
                "expression returned {}, expected bool",
                expr::type_name(&other)
            )),
        }
    }

    // -----------------------------------------------------------------------------------------
    // dispatch

    fn handle(&mut self, event: Event) {
        let name = event.name();
        if let Event::Signal { signal, by, reason } = event {
            return self.on_signal(signal, by, reason);
        }
        if self.state.status.is_terminal() {
            let status = self.state.status;
            return self.ignore(name, format!("the run is {status:?}"));
        }
        if self.is_paused() && matches!(event, Event::Started { .. } | Event::TimerFired { .. }) {
            if self.state.deferred.len() >= MAX_DEFERRED {
                return self.ignore(name, "too many events deferred while paused");
            }
            self.state.deferred.push(event);
            return self.record(Record::EventDeferred { event: name.into() });
        }
        match event {
            Event::Started { inputs, subject } => self.on_started(inputs, subject),
            Event::StepCompleted {
                call,
                result,
                operation,
            } => self.on_step_completed(call, result, operation),
            Event::StepFailed {
                call,
                error,
                retryable,
                retry_after,
            } => self.on_step_failed(call, error, retryable, retry_after),
            Event::Observed { call, item } => self.on_observed(call, item),
            Event::WindowResolved { call, window } => self.on_window_resolved(call, window),
            Event::ItemsResolved { call, items } => self.on_items_resolved(call, items),
            Event::TimerFired { timer } => self.on_timer(timer),
            Event::ChildCompleted {
                item,
                child,
                outcome,
            } => self.on_child_completed(item, child, outcome),
            Event::LimitsChanged {
                max_concurrency,
                max_failures,
                by,
            } => self.on_limits_changed(max_concurrency, max_failures, by),
            Event::WindowsChanged => self.on_windows_changed(),
            Event::Signal { .. } => {}
        }
    }

    /// Whether the active step awaits reply `call`; journals an ignored event when not.
    fn expect_call(&mut self, event: &str, call: Token) -> bool {
        let ok = matches!(self.state.active.as_ref().map(|a| &a.awaiting), Some(Awaiting::Call { call: c }) if *c == call);
        if !ok {
            self.ignore(
                event,
                format!("no call {call} is awaited (stale or duplicate reply)"),
            );
        }
        ok
    }

    // -----------------------------------------------------------------------------------------
    // lifecycle

    fn on_started(&mut self, inputs: Value, subject: Option<Item>) {
        if self.state.started_at.is_some() {
            return self.ignore("started", "the run has already started");
        }
        self.state.started_at = Some(self.now);
        self.state.subject = subject;
        match crate::validate::validate_inputs(self.def, &inputs) {
            Ok(v) => {
                self.state.inputs = v.clone();
                self.record(Record::RunStarted { inputs: v });
            }
            Err(e) => {
                self.state.inputs = inputs.clone();
                self.record(Record::RunStarted { inputs });
                let detail: Vec<String> = e
                    .errors
                    .iter()
                    .map(|f| format!("{}: {}", f.field, f.message))
                    .collect();
                return self.fail_run(RunError::new("invalid-config", detail.join("; "), None));
            }
        }
        let first = match &self.state.scope {
            RunScope::Root => Frame {
                owner: None,
                list: ListSel::Spec,
                next: 0,
                kind: FrameKind::Plain,
            },
            RunScope::Child { fanout, .. } => Frame {
                owner: Some(fanout.clone()),
                list: ListSel::Fanout,
                next: 0,
                kind: FrameKind::Plain,
            },
        };
        self.state.frames = vec![first];
        self.state.status = RunStatus::Running;
        self.advance();
    }

    fn finish(&mut self, status: RunStatus) {
        self.state.status = status;
        self.state.ended_at = Some(self.now);
        self.state.paused = None;
        self.state.deferred.clear();
        if let RunScope::Child { parent, .. } = &self.state.scope {
            let outcome = match status {
                RunStatus::Succeeded => ChildOutcome::Succeeded,
                RunStatus::Cancelled => ChildOutcome::Cancelled,
                _ => ChildOutcome::Failed {
                    error: self
                        .state
                        .error
                        .clone()
                        .unwrap_or_else(|| RunError::new("failed", "failed", None)),
                },
            };
            let e = Effect::NotifyParent {
                parent: parent.clone(),
                item: self.subject_name().unwrap_or_default(),
                child: self.state.id.clone(),
                outcome,
            };
            self.effect(e);
        }
    }

    fn fail_run(&mut self, error: RunError) {
        self.state.error = Some(error.clone());
        self.record(Record::RunFailed { error });
        self.finish(RunStatus::Failed);
    }

    fn pause(&mut self, by: &str, reason: &str) {
        self.state.paused = Some(PauseInfo {
            by: by.into(),
            reason: reason.into(),
            since: self.now,
        });
        self.record(Record::RunPaused {
            reason: reason.into(),
        });
    }

    // -----------------------------------------------------------------------------------------
    // stepping

    fn list_of_frame(&self, f: &Frame) -> Option<&[Step]> {
        match &f.owner {
            None => Some(&self.def.spec.steps),
            Some(owner) => self.def.step(owner)?.list(f.list),
        }
    }

    /// Starts steps until one has to wait, the run pauses or ends.
    fn advance(&mut self) {
        // Each turn starts a step or closes a list, so the loop is bounded by the definition.
        loop {
            if self.is_paused() || self.state.status.is_terminal() || self.state.active.is_some() {
                return;
            }
            if self.state.rollback_pending {
                // A rollback requested while a call was in flight fails the position once.
                return self.raise(RunError::new("rollback", "a rollback was requested", None));
            }
            let Some(top) = self.state.frames.last().cloned() else {
                self.record(Record::RunSucceeded);
                return self.finish(RunStatus::Succeeded);
            };
            let Some(len) = self.list_of_frame(&top).map(<[Step]>::len) else {
                return self.fail_run(RunError::new(
                    "internal",
                    "the run's position does not exist in its definition",
                    top.owner.as_ref(),
                ));
            };
            if top.next < len {
                if let Some(f) = self.state.frames.last_mut() {
                    f.next += 1;
                }
                let path = match &top.owner {
                    None => StepPath::root(top.next),
                    Some(owner) => owner.child(top.list, top.next),
                };
                self.start_step(path);
            } else {
                self.state.frames.pop();
                let bottom_of_child = self.state.frames.is_empty()
                    && matches!(self.state.scope, RunScope::Child { .. });
                if let Some(owner) = top.owner
                    && !bottom_of_child
                {
                    self.record(Record::StepCompleted { step: owner });
                }
            }
        }
    }

    fn start_step(&mut self, path: StepPath) {
        let def = self.def;
        let Some(step) = def.step(&path) else {
            return self.fail_run(RunError::new("internal", "step not found", Some(&path)));
        };
        self.record(Record::StepStarted {
            step: path.clone(),
            kind: step.kind.name().into(),
        });
        let frame = |list: ListSel, kind: FrameKind| Frame {
            owner: Some(path.clone()),
            list,
            next: 0,
            kind,
        };
        match &step.kind {
            StepKind::Sequence(_) => self
                .state
                .frames
                .push(frame(ListSel::Sequence, FrameKind::Plain)),
            StepKind::Try(_) => self.state.frames.push(frame(ListSel::Try, FrameKind::Try)),
            StepKind::Choice(c) => {
                for (k, b) in c.when.iter().enumerate() {
                    match self.eval_bool(&b.if_, None) {
                        Err(e) => return self.raise(RunError::new("expression", e, Some(&path))),
                        Ok(true) => {
                            return self
                                .state
                                .frames
                                .push(frame(ListSel::When(k as u32), FrameKind::Plain));
                        }
                        Ok(false) => {}
                    }
                }
                if c.otherwise.is_empty() {
                    self.record(Record::StepCompleted { step: path });
                } else {
                    self.state
                        .frames
                        .push(frame(ListSel::Otherwise, FrameKind::Plain));
                }
            }
            StepKind::Fail(f) => {
                let kind = f.kind.as_deref().unwrap_or("failed");
                self.raise(RunError::new(kind, f.message.clone(), Some(&path)));
            }
            StepKind::Set(s) => match self.eval(&s.value, None, None) {
                Err(e) => self.raise(RunError::new("expression", e, Some(&path))),
                Ok(v) if serde_json::to_vec(&v).map(|b| b.len()).unwrap_or(0) > MAX_VALUE_BYTES => {
                    self.raise(RunError::new(
                        "expression",
                        "value larger than 64 KiB",
                        Some(&path),
                    ))
                }
                Ok(v) => {
                    self.state.vars.insert(s.name.clone(), v.clone());
                    self.record(Record::VariableSet {
                        name: s.name.clone(),
                        value: v,
                    });
                    self.record(Record::StepCompleted { step: path });
                }
            },
            StepKind::Emit(e) => {
                let data = match &e.data {
                    None => Ok(Value::Null),
                    Some(d) => self.eval(d, None, None),
                };
                match data {
                    Err(err) => self.raise(RunError::new("expression", err, Some(&path))),
                    Ok(data) => {
                        let key = emit_key(&self.state.id, self.state.generation, &path);
                        self.effect(Effect::Emit {
                            key: key.clone(),
                            step: path.clone(),
                            event_type: e.type_.clone(),
                            message: e.message.clone(),
                            data: cap(data),
                        });
                        self.record(Record::Emitted {
                            event_type: e.type_.clone(),
                            key,
                        });
                        self.record(Record::StepCompleted { step: path });
                    }
                }
            }
            kind => {
                self.state.active = Some(Active {
                    step: path.clone(),
                    kind: kind.name().into(),
                    started_at: self.now,
                    awaiting: Awaiting::Nothing,
                    awaiting_since: self.now,
                    attempt: 0,
                    first_attempt_at: None,
                    operation_id: None,
                    poll_started_at: None,
                    args: Value::Null,
                    deadline: None,
                    window: None,
                    fanout: None,
                    failed: None,
                });
                self.start_leaf(step, &path);
            }
        }
    }

    fn start_leaf(&mut self, step: &Step, path: &StepPath) {
        match &step.kind {
            StepKind::Provider(p) => {
                let args = match &p.args {
                    None => Value::Null,
                    Some(a) => match self.eval(a, None, None) {
                        Ok(v) => v,
                        Err(e) => return self.raise(RunError::new("expression", e, Some(path))),
                    },
                };
                if let Some(a) = self.state.active.as_mut() {
                    a.args = cap(args);
                    a.attempt = 1;
                    a.first_attempt_at = Some(self.now);
                }
                self.issue_call(p);
            }
            StepKind::Render(_) => {
                let call = self.token();
                let cluster = self.subject_name();
                self.effect(Effect::Render {
                    call,
                    step: path.clone(),
                    cluster,
                });
                self.record(Record::Requested {
                    step: path.clone(),
                    call,
                    what: "render".into(),
                });
                self.set_awaiting(Awaiting::Call { call });
            }
            StepKind::Wait(w) => {
                let deadline = w.max_wait.map(|m| add(self.now, m));
                if let Some(a) = self.state.active.as_mut() {
                    a.deadline = deadline;
                }
                let until = match &w.for_ {
                    WaitFor::Duration(d) => add(self.now, *d),
                    WaitFor::Until(t) => *t,
                    WaitFor::UntilExpr(e) => {
                        let t = self.eval(e, None, None).and_then(|v| match v {
                            Value::String(s) => s.parse::<Timestamp>().map_err(|e| e.to_string()),
                            other => Err(format!(
                                "untilExpr returned {}, expected an RFC 3339 string",
                                expr::type_name(&other)
                            )),
                        });
                        match t {
                            Ok(t) => t,
                            Err(e) => {
                                return self.raise(RunError::new("expression", e, Some(path)));
                            }
                        }
                    }
                    WaitFor::Window => {
                        if self.state.upgrade_now {
                            return self.complete(None);
                        }
                        return self.resolve_window();
                    }
                };
                let until = deadline.map_or(until, |d| until.min(d));
                if until <= self.now {
                    self.complete(None)
                } else {
                    self.await_timer(until, "wait")
                }
            }
            StepKind::Soak(s) => {
                let end = add(self.now, s.duration);
                if let Some(a) = self.state.active.as_mut() {
                    a.deadline = Some(end);
                }
                self.observe();
            }
            StepKind::Gate(g) => {
                let end = add(self.now, g.timeout);
                if let Some(a) = self.state.active.as_mut() {
                    a.deadline = Some(end);
                }
                self.observe();
            }
            StepKind::Approve(a) => {
                let expiry = a.expires.map(|d| {
                    let at = add(self.now, d);
                    (self.set_timer(at, "approval expiry"), at)
                });
                self.set_awaiting(Awaiting::Approval {
                    name: a.name.clone(),
                    expiry,
                });
            }
            StepKind::Fanout(f) => {
                let call = self.token();
                self.effect(Effect::ResolveItems {
                    call,
                    step: path.clone(),
                    over: f.over.clone(),
                });
                self.record(Record::Requested {
                    step: path.clone(),
                    call,
                    what: "resolveItems".into(),
                });
                self.set_awaiting(Awaiting::Call { call });
            }
            // Composite and instantaneous kinds never become the active step.
            _ => self.raise(RunError::new("internal", "not a leaf step", Some(path))),
        }
    }

    /// Completes the active step with an optional result and moves on.
    fn complete(&mut self, result: Option<Value>) {
        let Some(active) = self.state.active.take() else {
            return;
        };
        if let (Some(id), Some(result)) = (
            self.def.step(&active.step).and_then(|s| s.id.clone()),
            result,
        ) {
            self.state.results.insert(id, cap(result));
        }
        self.record(Record::StepCompleted { step: active.step });
        self.advance();
    }

    /// Fails the current position: the nearest enclosing `try` catches it, else the run fails
    /// (keeping its position so a re-drive can resume there).
    fn raise(&mut self, error: RunError) {
        if error.kind == "rollback" {
            self.state.rollback_pending = false;
        }
        self.cancel_active_timer();
        let failed_step = self
            .state
            .active
            .as_ref()
            .map(|a| a.step.clone())
            .or(error.step.clone());
        if let Some(step) = failed_step.clone() {
            self.record(Record::StepFailed {
                step,
                error: error.clone(),
            });
        }
        let catcher = self
            .state
            .frames
            .iter()
            .rposition(|f| f.kind == FrameKind::Try);
        let Some(pos) = catcher else {
            if let Some(a) = self.state.active.as_mut() {
                a.failed = Some(error.clone());
                a.awaiting = Awaiting::Nothing;
            }
            return self.fail_run(error);
        };
        self.state.active = None;
        while self.state.frames.len() > pos + 1 {
            if let Some(f) = self.state.frames.pop()
                && let Some(owner) = f.owner
                && Some(&owner) != failed_step.as_ref()
            {
                self.record(Record::StepFailed {
                    step: owner,
                    error: error.clone(),
                });
            }
        }
        let Some(try_frame) = self.state.frames.pop() else {
            return;
        };
        let Some(try_step) = try_frame.owner else {
            return;
        };
        self.state.error = Some(error.clone());
        self.record(Record::ErrorCaught {
            step: try_step.clone(),
            error,
        });
        self.state.frames.push(Frame {
            owner: Some(try_step),
            list: ListSel::Catch,
            next: 0,
            kind: FrameKind::Catch,
        });
        self.advance();
    }

    // -----------------------------------------------------------------------------------------
    // provider, render, observe, window

    fn provider_step(&self) -> Option<&'a ProviderStep> {
        match &self.active_step()?.kind {
            StepKind::Provider(p) => Some(p),
            _ => None,
        }
    }

    fn issue_call(&mut self, p: &ProviderStep) {
        let Some(a) = self.state.active.as_ref() else {
            return;
        };
        let step = a.step.clone();
        let operation_id = a.operation_id.clone();
        let attempt = a.attempt;
        let args = a.args.clone();
        let operation = if operation_id.is_some() {
            Operation::PollOperation
        } else {
            p.operation
        };
        let cluster = self.subject_name();
        let key = idempotency_key(
            &self.state.id,
            self.state.generation,
            &step,
            cluster.as_deref(),
        );
        let call = self.token();
        self.effect(Effect::CallProvider {
            call,
            step: step.clone(),
            operation,
            operation_id,
            cluster,
            idempotency_key: key.clone(),
            attempt,
            args,
        });
        self.record(Record::ProviderCallIntended {
            step,
            call,
            operation,
            idempotency_key: key,
            attempt,
        });
        self.set_awaiting(Awaiting::Call { call });
    }

    fn observe(&mut self) {
        let Some(step) = self.state.active.as_ref().map(|a| a.step.clone()) else {
            return;
        };
        let call = self.token();
        let cluster = self.subject_name();
        self.effect(Effect::Observe {
            call,
            step: step.clone(),
            cluster,
        });
        self.record(Record::Requested {
            step,
            call,
            what: "observe".into(),
        });
        self.set_awaiting(Awaiting::Call { call });
    }

    fn resolve_window(&mut self) {
        let Some(step) = self.state.active.as_ref().map(|a| a.step.clone()) else {
            return;
        };
        let call = self.token();
        let cluster = self.subject_name();
        self.effect(Effect::ResolveWindow {
            call,
            step: step.clone(),
            cluster,
            after: self.now,
        });
        self.record(Record::Requested {
            step,
            call,
            what: "resolveWindow".into(),
        });
        self.set_awaiting(Awaiting::Call { call });
    }

    fn on_step_completed(&mut self, call: Token, result: Value, operation: Option<String>) {
        if !self.expect_call("stepCompleted", call) {
            return;
        }
        let Some(step) = self.state.active.as_ref().map(|a| a.step.clone()) else {
            return;
        };
        let Some(p) = self.provider_step() else {
            // A render.
            self.record(Record::Replied {
                step,
                call,
                summary: "rendered".into(),
            });
            return self.complete(Some(result));
        };
        let outcome = if operation.is_some() {
            "in-progress"
        } else {
            "done"
        };
        self.record(Record::ProviderCallResult {
            step: step.clone(),
            call,
            outcome: outcome.into(),
            error: None,
        });
        let (interval, timeout) = p
            .poll
            .as_ref()
            .map_or((DEFAULT_POLL_INTERVAL, DEFAULT_POLL_TIMEOUT), |poll| {
                (poll.interval, poll.timeout)
            });
        let poll_more = match operation {
            Some(op) => {
                if let Some(a) = self.state.active.as_mut() {
                    a.operation_id = Some(op);
                }
                true
            }
            None => {
                if let Some(a) = self.state.active.as_mut() {
                    a.operation_id = None;
                }
                match p.poll.as_ref().and_then(|poll| poll.until.as_ref()) {
                    None => false,
                    Some(until) => match self.eval_bool(until, Some(&result)) {
                        Err(e) => return self.raise(RunError::new("expression", e, Some(&step))),
                        Ok(done) => !done,
                    },
                }
            }
        };
        if !poll_more {
            return self.complete(Some(result));
        }
        let now = self.now;
        let started = self
            .state
            .active
            .as_mut()
            .map(|a| *a.poll_started_at.get_or_insert(now))
            .unwrap_or(now);
        if now >= add(started, timeout) {
            return self.raise(RunError::new(
                "timeout",
                format!("still not done after polling for {timeout}"),
                Some(&step),
            ));
        }
        // A cloud operation says when to ask again (`pollAfterMs`); the step's interval is the
        // longest wait, and asking sooner than every 100 ms is never useful.
        let interval = match (&self.state.active, result["pollAfterMs"].as_u64()) {
            (Some(a), Some(ms)) if a.operation_id.is_some() => {
                interval.min(Duration::from_millis(ms.max(MIN_POLL_AFTER_MS)))
            }
            _ => interval,
        };
        self.await_timer(add(now, interval), "poll");
    }

    fn on_step_failed(
        &mut self,
        call: Token,
        error: StepError,
        retryable: bool,
        retry_after: Option<Duration>,
    ) {
        if !self.expect_call("stepFailed", call) {
            return;
        }
        let Some(step) = self.state.active.as_ref().map(|a| a.step.clone()) else {
            return;
        };
        let kind = serde_json::to_value(error.kind)
            .ok()
            .and_then(|v| v.as_str().map(str::to_owned))
            .unwrap_or_default();
        let Some(p) = self.provider_step() else {
            self.record(Record::Replied {
                step: step.clone(),
                call,
                summary: format!("failed: {}", error.message),
            });
            return self.raise(RunError::new(&kind, error.message, Some(&step)));
        };
        self.record(Record::ProviderCallResult {
            step: step.clone(),
            call,
            outcome: "failed".into(),
            error: Some(error.clone()),
        });
        let policy = &p.retry;
        let (attempt, first) = self
            .state
            .active
            .as_ref()
            .map(|a| (a.attempt, a.first_attempt_at.unwrap_or(self.now)))
            .unwrap_or((1, self.now));
        if self.state.rollback_pending {
            // Do not start the call again for a run that is being rolled back.
            return self.raise(RunError::new(
                "rollback",
                "a rollback was requested",
                Some(&step),
            ));
        }
        // The provider lost an operation it had acknowledged (the poll answers not-found, e.g.
        // after its own crash): calling the original operation again with the same idempotency
        // key recreates it (the provider contract), as a retry of the step.
        let lost_operation = error.kind == crate::definition::ErrorKind::NotFound
            && self
                .state
                .active
                .as_ref()
                .is_some_and(|a| a.operation_id.is_some());
        if lost_operation && let Some(a) = self.state.active.as_mut() {
            a.operation_id = None;
        }
        if !lost_operation && (!retryable || policy.non_retryable_errors.contains(&error.kind)) {
            return self.raise(RunError::new(&kind, error.message, Some(&step)));
        }
        if attempt >= policy.maximum_attempts {
            return self.raise(RunError::new(
                &kind,
                format!("{} (gave up after {attempt} attempts)", error.message),
                Some(&step),
            ));
        }
        let delay = policy
            .delay_before(attempt + 1)
            .max(retry_after.unwrap_or_default());
        let at = add(self.now, delay);
        if let Some(total) = policy.maximum_total
            && at > add(first, total)
        {
            return self.raise(RunError::new(
                &kind,
                format!(
                    "{} (retries would exceed maximumTotal {total})",
                    error.message
                ),
                Some(&step),
            ));
        }
        if let Some(a) = self.state.active.as_mut() {
            a.attempt = attempt + 1;
        }
        self.record(Record::StepRetrying {
            step,
            attempt: attempt + 1,
            delay,
            error,
        });
        self.await_timer(at, "retry");
    }

    fn on_observed(&mut self, call: Token, item: Item) {
        if !self.expect_call("observed", call) {
            return;
        }
        let Some(step) = self.state.active.as_ref().map(|a| a.step.clone()) else {
            return;
        };
        self.record(Record::Replied {
            step: step.clone(),
            call,
            summary: format!("observed {}", item.name),
        });
        self.state.subject = Some(item);
        let deadline = self
            .state
            .active
            .as_ref()
            .and_then(|a| a.deadline)
            .unwrap_or(self.now);
        match self.active_step().map(|s| &s.kind) {
            Some(StepKind::Gate(g)) => match self.eval_bool(&g.condition, None) {
                Err(e) => self.raise(RunError::new("expression", e, Some(&step))),
                Ok(true) => self.complete(None),
                Ok(false) if self.now >= deadline => self.raise(RunError::new(
                    "timeout",
                    format!("condition still false after {}", g.timeout),
                    Some(&step),
                )),
                Ok(false) => self.await_timer(add(self.now, g.interval).min(deadline), "gate"),
            },
            Some(StepKind::Soak(s)) => match self.eval_bool(&s.health, None) {
                Err(e) => self.raise(RunError::new("expression", e, Some(&step))),
                Ok(false) => self.raise(RunError::new(
                    "unhealthy",
                    "health gate failed during soak",
                    Some(&step),
                )),
                Ok(true) if self.now >= deadline => self.complete(None),
                Ok(true) => self.await_timer(add(self.now, s.check_every).min(deadline), "soak"),
            },
            _ => self.raise(RunError::new(
                "internal",
                "observation for a step that does not observe",
                Some(&step),
            )),
        }
    }

    fn on_window_resolved(&mut self, call: Token, window: Option<Window>) {
        if !self.expect_call("windowResolved", call) {
            return;
        }
        let Some(step) = self.state.active.as_ref().map(|a| a.step.clone()) else {
            return;
        };
        let summary = match &window {
            Some(w) => format!("window {} – {}", w.start, w.end),
            None => "no window".into(),
        };
        self.record(Record::Replied {
            step,
            call,
            summary,
        });
        let now = self.now;
        let deadline = self.state.active.as_ref().and_then(|a| a.deadline);
        if let Some(a) = self.state.active.as_mut() {
            a.window = window;
        }
        match window {
            Some(w) if w.start <= now && now < w.end => self.complete(None),
            Some(w) if w.start > now => {
                let at = deadline.map_or(w.start, |d| w.start.min(d));
                self.await_timer(at, "window")
            }
            _ => match deadline {
                Some(d) => self.await_timer(d, "window deadline"),
                None => self.set_awaiting(Awaiting::WindowSignal),
            },
        }
    }

    fn on_windows_changed(&mut self) {
        let waiting_window = self
            .active_step()
            .is_some_and(|s| matches!(&s.kind, StepKind::Wait(w) if w.for_ == WaitFor::Window))
            && matches!(
                self.state.active.as_ref().map(|a| &a.awaiting),
                Some(Awaiting::Timer { .. } | Awaiting::WindowSignal)
            );
        if !waiting_window {
            return self.ignore("windowsChanged", "no window wait is in progress");
        }
        self.cancel_active_timer();
        self.resolve_window();
    }

    fn on_timer(&mut self, timer: Token) {
        if let Some(f) = self.state.active.as_mut().and_then(|a| a.fanout.as_mut())
            && f.continuation == Some(timer)
        {
            f.continuation = None;
            self.record(Record::TimerFired { timer });
            return self.pump();
        }
        let (matches_timer, is_expiry) = match self.state.active.as_ref().map(|a| &a.awaiting) {
            Some(Awaiting::Timer { timer: t, .. }) => (*t == timer, false),
            Some(Awaiting::Approval {
                expiry: Some((t, _)),
                ..
            }) => (*t == timer, true),
            _ => (false, false),
        };
        if !matches_timer {
            return self.ignore(
                "timerFired",
                format!("timer {timer} is not armed (stale or duplicate)"),
            );
        }
        self.record(Record::TimerFired { timer });
        let Some(step) = self.state.active.as_ref().map(|a| a.step.clone()) else {
            return;
        };
        if is_expiry {
            self.set_awaiting(Awaiting::Nothing);
            return self.raise(RunError::new(
                "expired",
                "the approval expired",
                Some(&step),
            ));
        }
        self.set_awaiting(Awaiting::Nothing);
        match self.active_step().map(|s| &s.kind) {
            Some(StepKind::Provider(p)) => self.issue_call(p),
            Some(StepKind::Wait(w)) if w.for_ == WaitFor::Window => {
                let deadline = self.state.active.as_ref().and_then(|a| a.deadline);
                if deadline.is_some_and(|d| self.now >= d) {
                    let max = w.max_wait.unwrap_or_default();
                    self.raise(RunError::new(
                        "timeout",
                        format!("no window opened within {max}"),
                        Some(&step),
                    ))
                } else {
                    // Re-resolve at the window's start: the policy may have changed meanwhile.
                    self.resolve_window()
                }
            }
            Some(StepKind::Wait(_)) => self.complete(None),
            Some(StepKind::Soak(_) | StepKind::Gate(_)) => self.observe(),
            Some(StepKind::Fanout(_)) => {
                self.set_awaiting(Awaiting::Children);
                self.pump();
            }
            _ => self.ignore("timerFired", "the active step has no timer"),
        }
    }

    // -----------------------------------------------------------------------------------------
    // fan-out

    fn fanout_step(&self) -> Option<(StepPath, &'a FanoutStep)> {
        let a = self.state.active.as_ref()?;
        match &self.active_step()?.kind {
            StepKind::Fanout(f) => Some((a.step.clone(), f)),
            _ => None,
        }
    }

    fn eval_limit(
        &self,
        l: &Option<Limit>,
        percent_field: bool,
    ) -> Result<Option<LimitSetting>, String> {
        let Some(l) = l else { return Ok(None) };
        let limit = match l {
            Limit::Expr(e) => match Limit::from_value(&self.eval(e, None, None)?, false)? {
                Some(l) => l,
                None => return Ok(Some(LimitSetting::Unlimited)),
            },
            other => other.clone(),
        };
        Ok(Some(match limit {
            Limit::Count(c) if percent_field => LimitSetting::Percent(c.min(100) as u8),
            Limit::Count(c) => LimitSetting::Count(c),
            Limit::Percent(p) => LimitSetting::Percent(p),
            Limit::Expr(_) => LimitSetting::Unlimited,
        }))
    }

    fn on_items_resolved(&mut self, call: Token, items: Vec<Item>) {
        if !self.expect_call("itemsResolved", call) {
            return;
        }
        let Some((path, f)) = self.fanout_step() else {
            return;
        };
        let planned = self.plan_fanout(f, items);
        let mut state = match planned {
            Ok(s) => s,
            Err(e) => {
                self.record(Record::Replied {
                    step: path.clone(),
                    call,
                    summary: "items resolved".into(),
                });
                return self.raise(RunError::new("expression", e, Some(&path)));
            }
        };
        let valid = state.max_concurrency.valid_for_concurrency()
            && state.max_failures.valid_for_budget()
            && state
                .waves
                .iter()
                .all(|w| w.max_concurrency.valid_for_concurrency());
        if valid {
            self.record(Record::FanoutPlanned {
                step: path.clone(),
                total: state.totals.total,
                skipped: state.totals.skipped,
                waves: state
                    .waves
                    .iter()
                    .map(|w| (w.name.clone(), w.counts.total))
                    .collect(),
                skipped_items: state
                    .items
                    .iter()
                    .filter(|i| i.status == ItemStatus::Skipped)
                    .map(|i| (i.name.clone(), i.detail.clone().unwrap_or_default()))
                    .collect(),
            });
        } else {
            return self.raise(RunError::new(
                "invalid-config",
                "invalid fan-out limits",
                Some(&path),
            ));
        }
        state.current = 0;
        self.state.counts = state.totals;
        if let Some(a) = self.state.active.as_mut() {
            a.fanout = Some(Box::new(state));
        }
        self.set_awaiting(Awaiting::Children);
        self.pump();
    }

    fn plan_fanout(&self, f: &FanoutStep, items: Vec<Item>) -> Result<FanoutState, String> {
        let max_concurrency = self
            .eval_limit(&f.max_concurrency, false)?
            .unwrap_or(LimitSetting::Unlimited);
        let max_failures = match (&f.max_failures, &f.max_failure_percent) {
            (Some(_), _) => self.eval_limit(&f.max_failures, false)?,
            (None, Some(_)) => self.eval_limit(&f.max_failure_percent, true)?,
            (None, None) => None,
        }
        .unwrap_or(LimitSetting::Count(0));
        let on_failure = match &f.on_failure {
            None => OnFailure::Pause,
            Some(OrExpr::Literal(o)) => *o,
            Some(OrExpr::Expr(e)) => serde_json::from_value(self.eval(e, None, None)?)
                .map_err(|_| "onFailure must evaluate to \"pause\" or \"fail\"".to_owned())?,
        };
        let waves: Vec<Wave> = match &f.waves {
            None => Vec::new(),
            Some(OrExpr::Literal(w)) => w.clone(),
            Some(OrExpr::Expr(e)) => match self.eval(e, None, None)? {
                Value::Null => Vec::new(),
                v => serde_json::from_value(v).map_err(|e| format!("waves: {e}"))?,
            },
        };
        let rules: Vec<(expr::Compiled, String)> = f
            .skip
            .iter()
            .map(|r| {
                expr::compile(&r.if_)
                    .map(|c| (c, r.reason.clone()))
                    .map_err(|e| e.to_string())
            })
            .collect::<Result<_, _>>()?;
        let vars = Value::Object(self.state.vars.clone());
        let run = self.run_json();
        let mut prepared = expr::Prepared::new(&Scope {
            inputs: Some(&self.state.inputs),
            vars: Some(&vars),
            run: Some(&run),
            ..Scope::default()
        });
        let skip = |item: &Item| {
            if rules.is_empty() {
                return None;
            }
            let cel = item.to_cel();
            prepared.set("cluster", &cel);
            prepared.set("item", &cel);
            rules
                .iter()
                .find_map(|(c, reason)| match c.eval_bool_prepared(&prepared) {
                    Ok(true) => Some(reason.clone()),
                    Ok(false) => None,
                    Err(e) => Some(format!("skip rule failed: {e}")),
                })
        };
        Ok(FanoutState::plan(
            items,
            &waves,
            max_concurrency,
            max_failures,
            on_failure,
            skip,
        ))
    }

    fn running_children(&self) -> Vec<String> {
        self.state
            .fanout()
            .map(|f| {
                f.items
                    .iter()
                    .filter(|i| i.status == ItemStatus::Running)
                    .filter_map(|i| i.child.clone())
                    .collect()
            })
            .unwrap_or_default()
    }

    fn forward(&mut self, signal: Signal, by: &Principal, reason: &Option<String>) {
        for child in self.running_children() {
            self.effect(Effect::SignalChild {
                child,
                signal: signal.clone(),
                by: by.clone(),
                reason: reason.clone(),
            });
        }
    }

    /// Starts children as limits allow, moves through waves, and ends the fan-out when done.
    fn pump(&mut self) {
        if self.is_paused() || self.state.status.is_terminal() {
            return;
        }
        let Some((path, _)) = self.fanout_step() else {
            return;
        };
        if !matches!(
            self.state.active.as_ref().map(|a| &a.awaiting),
            Some(Awaiting::Children)
        ) {
            return;
        }
        let parent = self.state.id.clone();
        let mut started = 0usize;
        // Every turn starts a child, closes a wave or returns: bounded by items + waves.
        loop {
            let Some(mut f) = self.state.active.as_mut().and_then(|a| a.fanout.take()) else {
                return;
            };
            if self.state.rollback_pending && f.halt.is_none() {
                f.halt = Some(Halt::Rollback);
            }
            let mut finished: Option<Result<Value, RunError>> = None;
            let mut soak_until: Option<Timestamp> = None;
            let limit = f.concurrency_limit().unwrap_or(usize::MAX);
            if let Some(halt) = f.halt {
                if f.totals.running == 0 {
                    finished = Some(Err(match halt {
                        Halt::Rollback => {
                            RunError::new("rollback", "a rollback was requested", Some(&path))
                        }
                        Halt::BudgetExhausted => RunError::new(
                            "budget-exhausted",
                            format!(
                                "{} clusters failed, more than the budget allows",
                                f.totals.failed
                            ),
                            Some(&path),
                        ),
                    }));
                } else {
                    self.put_fanout(f);
                    return;
                }
            } else {
                while f.totals.running < limit {
                    let Some(i) = f.requeued.pop_front() else {
                        break;
                    };
                    let i = i as usize;
                    f.set_status(i, ItemStatus::Running);
                    let row = f.items.get_mut(i);
                    row.redrives += 1;
                    row.detail = None;
                    if let Some(child) = f.items[i].child.clone() {
                        self.effect(Effect::SignalChild {
                            child: child.clone(),
                            signal: Signal::Resume { retry_failed: true },
                            by: Principal::user("engine"),
                            reason: Some("re-drive".into()),
                        });
                        self.record(Record::ChildStarted {
                            item: f.items[i].name.clone(),
                            child,
                            redrive: true,
                        });
                    }
                }
                if f.current < f.waves.len() {
                    if !f.wave_started {
                        f.wave_started = true;
                        self.record(Record::WaveStarted {
                            wave: f.waves[f.current].name.clone(),
                        });
                    }
                    let limit = f.concurrency_limit().unwrap_or(usize::MAX);
                    while f.totals.running < limit && f.cursor < f.waves[f.current].members.len() {
                        if started == START_PER_TRANSITION {
                            // The rest start from the continuation timer (due at once), so that
                            // no transition writes more than a bounded number of new runs.
                            if f.continuation.is_none() {
                                f.continuation =
                                    Some(self.set_timer(self.now, "start more children"));
                            }
                            break;
                        }
                        started += 1;
                        let i = f.waves[f.current].members[f.cursor] as usize;
                        f.cursor += 1;
                        if f.items[i].status != ItemStatus::Pending || f.items[i].child.is_some() {
                            continue;
                        }
                        let row = f.items.get_mut(i);
                        let item = row.item.take().unwrap_or_else(|| Item {
                            name: row.name.clone(),
                            ..Item::default()
                        });
                        let child = child_run_id(
                            &parent,
                            &path,
                            u32::try_from(i).unwrap_or(u32::MAX),
                            &item.name,
                        );
                        row.child = Some(child.clone());
                        f.set_status(i, ItemStatus::Running);
                        self.record(Record::ChildStarted {
                            item: item.name.clone(),
                            child: child.clone(),
                            redrive: false,
                        });
                        self.effect(Effect::StartChild(Box::new(ChildSpec {
                            run: child,
                            parent: parent.clone(),
                            fanout: path.clone(),
                            item,
                            inputs: self.state.inputs.clone(),
                            vars: self.state.vars.clone(),
                            upgrade_now: self.state.upgrade_now,
                        })));
                    }
                    if f.current_wave_done() && f.cursor >= f.waves[f.current].members.len() {
                        let w = &f.waves[f.current];
                        self.record(Record::WaveCompleted {
                            wave: w.name.clone(),
                            counts: w.counts,
                        });
                        let soak = if w.counts.succeeded > 0 {
                            w.soak
                        } else {
                            Duration::default()
                        };
                        f.current += 1;
                        f.cursor = 0;
                        f.wave_started = false;
                        if soak.as_millis() > 0 && f.current < f.waves.len() {
                            soak_until = Some(add(self.now, soak));
                        } else {
                            self.put_fanout(f);
                            continue;
                        }
                    }
                } else if f.all_done() {
                    finished = Some(Ok(json!({
                        "total": f.totals.total,
                        "succeeded": f.totals.succeeded,
                        "failed": f.totals.failed,
                        "skipped": f.totals.skipped,
                    })));
                }
            }
            if finished.is_some()
                && let Some(timer) = f.continuation.take()
            {
                self.effect(Effect::CancelTimer { timer });
                self.record(Record::TimerCancelled { timer });
            }
            self.put_fanout(f);
            if let Some(at) = soak_until {
                return self.await_timer(at, "wave soak");
            }
            return match finished {
                None => {}
                Some(Ok(result)) => self.complete(Some(result)),
                Some(Err(e)) => self.raise(e),
            };
        }
    }

    fn put_fanout(&mut self, f: Box<FanoutState>) {
        self.state.counts = f.totals;
        if let Some(a) = self.state.active.as_mut() {
            a.fanout = Some(f);
        }
    }

    fn on_child_completed(&mut self, item: String, child: String, outcome: ChildOutcome) {
        let Some(mut f) = self.state.active.as_mut().and_then(|a| a.fanout.take()) else {
            return self.ignore("childCompleted", "no fan-out is running");
        };
        let found = f.find(&item).filter(|&i| {
            f.items[i].status == ItemStatus::Running && f.items[i].child.as_deref() == Some(&child)
        });
        let Some(i) = found else {
            self.put_fanout(f);
            return self.ignore(
                "childCompleted",
                format!("{item} is not running as {child}"),
            );
        };
        let (status, detail) = match &outcome {
            ChildOutcome::Succeeded => (ItemStatus::Succeeded, None),
            ChildOutcome::Failed { error } => (
                ItemStatus::Failed,
                Some(format!("{}: {}", error.kind, error.message)),
            ),
            ChildOutcome::Cancelled => (ItemStatus::Failed, Some("cancelled".to_owned())),
        };
        f.set_status(i, status);
        f.items.get_mut(i).detail = detail;
        self.record(Record::ChildCompleted { item, outcome });
        self.check_budget_and_pump(f);
    }

    /// After a failure or a limit edit: halts the fan-out when its budget is exhausted (pausing
    /// the run for `onFailure: pause`), puts its state back, and starts what may start.
    fn check_budget_and_pump(&mut self, mut f: Box<FanoutState>) {
        let exhausted = f.halt.is_none() && f.budget_exhausted();
        if exhausted {
            f.halt = Some(Halt::BudgetExhausted);
            let allowed = f.failures_allowed().unwrap_or(0);
            self.record(Record::BudgetExhausted {
                failed: f.totals.failed - f.accepted_failures,
                allowed,
            });
        }
        let pause = exhausted && f.on_failure == OnFailure::Pause && !self.is_paused();
        self.put_fanout(f);
        if pause {
            self.pause("engine", "failure budget exhausted");
        }
        self.pump();
    }

    fn on_limits_changed(
        &mut self,
        max_concurrency: Option<LimitSetting>,
        max_failures: Option<LimitSetting>,
        by: Principal,
    ) {
        if max_concurrency.is_some_and(|l| !l.valid_for_concurrency())
            || max_failures.is_some_and(|l| !l.valid_for_budget())
        {
            return self.ignore(
                "limitsChanged",
                "invalid limits (concurrency ≥ 1, percentages ≤ 100)",
            );
        }
        let Some(mut f) = self.state.active.as_mut().and_then(|a| a.fanout.take()) else {
            return self.ignore("limitsChanged", "no fan-out is running");
        };
        if let Some(l) = max_concurrency {
            f.max_concurrency = l;
        }
        if let Some(l) = max_failures {
            f.max_failures = l;
        }
        self.record(Record::LimitsChanged {
            max_concurrency: f.max_concurrency,
            max_failures: f.max_failures,
            by: by.name,
        });
        self.check_budget_and_pump(f);
    }

    /// Re-queues failed items of the running fan-out; returns how many.
    fn requeue_failed(&mut self) -> usize {
        let Some(f) = self.state.active.as_mut().and_then(|a| a.fanout.as_mut()) else {
            return 0;
        };
        let failed: Vec<usize> = (0..f.items.len())
            .filter(|&i| f.items[i].status == ItemStatus::Failed)
            .collect();
        for &i in &failed {
            f.set_status(i, ItemStatus::Pending);
            f.requeued.push_back(i as u32);
        }
        f.accepted_failures = f.totals.failed;
        if f.halt == Some(Halt::BudgetExhausted) {
            f.halt = None;
        }
        let totals = f.totals;
        self.state.counts = totals;
        failed.len()
    }

    // -----------------------------------------------------------------------------------------
    // signals

    fn on_signal(&mut self, signal: Signal, by: Principal, reason: Option<String>) {
        let status = self.state.status;
        let ignored = |tx: &mut Self, why: String| {
            tx.record(Record::SignalIgnored {
                signal: signal.clone(),
                by: by.name.clone(),
                reason: reason.clone(),
                why,
            })
        };
        let received = |tx: &mut Self| {
            tx.record(Record::SignalReceived {
                signal: signal.clone(),
                by: by.name.clone(),
                reason: reason.clone(),
            })
        };
        if status.is_terminal() {
            let redrive =
                status == RunStatus::Failed && signal == (Signal::Resume { retry_failed: true });
            if !redrive {
                return ignored(self, format!("the run is {status:?}"));
            }
            received(self);
            return self.redrive();
        }
        match &signal {
            Signal::Pause => {
                if self.is_paused() {
                    return ignored(self, "the run is already paused".into());
                }
                received(self);
                let why = reason
                    .clone()
                    .unwrap_or_else(|| format!("paused by {}", by.name));
                self.pause(&by.name, &why);
                self.forward(Signal::Pause, &by, &reason);
            }
            Signal::Resume { retry_failed } => {
                let requeued = if *retry_failed {
                    self.requeue_failed()
                } else {
                    0
                };
                if !self.is_paused() {
                    if requeued == 0 {
                        return ignored(self, "the run is not paused and nothing failed".into());
                    }
                    received(self);
                    return self.pump();
                }
                received(self);
                self.state.paused = None;
                self.record(Record::RunResumed);
                if let Some(f) = self.state.active.as_mut().and_then(|a| a.fanout.as_mut())
                    && f.halt == Some(Halt::BudgetExhausted)
                {
                    // Resuming accepts the failures so far: the budget counts new ones.
                    f.accepted_failures = f.totals.failed;
                    f.halt = None;
                }
                self.forward(
                    Signal::Resume {
                        retry_failed: false,
                    },
                    &by,
                    &reason,
                );
                let deferred = std::mem::take(&mut self.state.deferred);
                for e in deferred {
                    self.handle(e);
                }
                self.pump();
                self.advance();
            }
            Signal::Cancel => {
                received(self);
                self.cancel_active_timer();
                self.forward(Signal::Cancel, &by, &reason);
                self.record(Record::RunCancelled);
                self.finish(RunStatus::Cancelled);
            }
            Signal::Approve { name } | Signal::Reject { name } => {
                let approve = matches!(signal, Signal::Approve { .. });
                let awaited = matches!(self.state.active.as_ref().map(|a| &a.awaiting), Some(Awaiting::Approval { name: n, .. }) if n == name);
                if !awaited {
                    if !self.running_children().is_empty() {
                        received(self);
                        return self.forward(signal.clone(), &by, &reason);
                    }
                    return ignored(self, format!("no approval named {name:?} is awaited"));
                }
                let allowed = match self.active_step().map(|s| &s.kind) {
                    Some(StepKind::Approve(a)) => {
                        (a.approvers.users.is_empty() && a.approvers.roles.is_empty())
                            || a.approvers.users.contains(&by.name)
                            || by.roles.iter().any(|r| a.approvers.roles.contains(r))
                    }
                    _ => false,
                };
                if !allowed {
                    return ignored(
                        self,
                        format!("{} may not decide approval {name:?}", by.name),
                    );
                }
                received(self);
                let record = ApprovalRecord {
                    name: name.clone(),
                    approved: approve,
                    by: by.name.clone(),
                    reason: reason.clone(),
                    at: self.now,
                };
                self.state.approvals.push(record.clone());
                self.record(Record::ApprovalDecided(record));
                self.cancel_active_timer();
                let step = self.state.active.as_ref().map(|a| a.step.clone());
                if approve {
                    self.complete(Some(json!({"approvedBy": by.name, "reason": reason})));
                } else {
                    let why = reason.clone().unwrap_or_default();
                    self.raise(RunError::new(
                        "rejected",
                        format!("rejected by {}: {why}", by.name),
                        step.as_ref(),
                    ));
                }
            }
            Signal::UpgradeNow => {
                if self.state.upgrade_now {
                    return ignored(self, "upgrade-now was already signalled".into());
                }
                received(self);
                self.state.upgrade_now = true;
                self.forward(Signal::UpgradeNow, &by, &reason);
                let window_wait = self.active_step().is_some_and(
                    |s| matches!(&s.kind, StepKind::Wait(w) if w.for_ == WaitFor::Window),
                );
                if window_wait {
                    self.cancel_active_timer();
                    self.complete(None);
                }
            }
            Signal::Rollback => {
                if self.state.rollback_requested {
                    return ignored(self, "a rollback was already requested".into());
                }
                received(self);
                self.state.rollback_requested = true;
                self.state.rollback_pending = true;
                self.forward(Signal::Rollback, &by, &reason);
                let polling = self
                    .state
                    .active
                    .as_ref()
                    .is_some_and(|a| a.poll_started_at.is_some());
                match self.state.active.as_ref().map(|a| a.awaiting.clone()) {
                    // In-flight work (a call, or a cloud operation being polled) finishes first;
                    // the rollback fails the position after it.
                    Some(Awaiting::Call { .. }) => {}
                    Some(Awaiting::Timer { .. }) if polling => {}
                    Some(Awaiting::Children) => self.pump(),
                    Some(_) => {
                        let step = self.state.active.as_ref().map(|a| a.step.clone());
                        self.raise(RunError::new(
                            "rollback",
                            "a rollback was requested",
                            step.as_ref(),
                        ));
                    }
                    // Not started: the run fails with `rollback` when it starts.
                    None => {}
                }
            }
        }
    }

    /// Resumes a `Failed` run at the step it failed on, with a new generation (so provider calls
    /// get new idempotency keys: the failed ones are final on the cloud's side).
    fn redrive(&mut self) {
        self.state.generation += 1;
        self.record(Record::RunRedriven {
            generation: self.state.generation,
        });
        self.state.status = RunStatus::Running;
        self.state.ended_at = None;
        self.state.rollback_requested = false;
        self.state.rollback_pending = false;
        let error = self.state.error.take();
        let fanout_failed = self
            .state
            .active
            .as_ref()
            .is_some_and(|a| a.fanout.is_some());
        if fanout_failed {
            if let Some(a) = self.state.active.as_mut() {
                a.failed = None;
                a.awaiting = Awaiting::Children;
                a.awaiting_since = self.now;
            }
            self.requeue_failed();
            return self.pump();
        }
        let failed_step = self
            .state
            .active
            .take()
            .map(|a| a.step)
            .or(error.and_then(|e| e.step));
        if let (Some(step), Some(top)) = (failed_step, self.state.frames.last_mut())
            && let Some((_, i)) = step.last()
            && top.next == i + 1
        {
            top.next = i;
        }
        self.advance();
    }
}
