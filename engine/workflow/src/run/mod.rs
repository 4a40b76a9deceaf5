//! The pure run state machine (DESIGN §6.2): `apply(state, def, event, now) -> Transition`.
//!
//! No I/O, no clock, no randomness: the runtime feeds events (its own replies to effects,
//! timers, signals) and performs the effects it gets back. See `docs/workflows.md` for the
//! contract the runtime implements.

mod fanout;
mod keys;
mod machine;
mod stuck;

pub use fanout::{
    FanoutState, ItemChanges, ItemState, ItemStatus, Items, LimitSetting, START_PER_TRANSITION,
    WaveCounts, WaveState,
};
pub use keys::{child_run_id, idempotency_key};
pub use machine::{MAX_VALUE_BYTES, apply};
pub use stuck::{
    APPROVAL_EXPECTED, CALL_EXPECTED, Stuck, TIMER_GRACE, expected_duration, stuck_steps,
};

use crate::definition::{Definition, ErrorKind, Operation, Over, StepPath};
use crate::duration::Duration;
use fleetplane_domain::Labels;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The format of [`RunState`] records; bumped on every incompatible change, with a migration.
pub const RUN_STATE_FORMAT: u32 = 1;

/// A run's id, chosen by the runtime for root runs and derived by [`child_run_id`] for children.
pub type RunId = String;

/// Identifies a reply the machine is waiting for (a call) or a timer. Allocated from a per-run
/// counter, so ids are deterministic; a reply or timer whose id is not awaited is ignored.
pub type Token = u64;

/// A run's status (DESIGN §6.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum RunStatus {
    /// Created, not started.
    Pending,
    /// Working: a call is in flight or children are running.
    Running,
    /// Waiting for a timer, a maintenance window or a signal (see [`RunState::waiting_on`]).
    Waiting,
    /// Paused by a person or by an exhausted failure budget.
    Paused,
    /// Finished successfully.
    Succeeded,
    /// Finished with an error (a redrive can resume it).
    Failed,
    /// Cancelled.
    Cancelled,
}

impl RunStatus {
    /// Whether the run has finished.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Cancelled
        )
    }
}

/// What a `Waiting` run waits for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum WaitingOn {
    /// A timer (a wait, a backoff, a poll interval, a soak).
    Timer,
    /// The cluster's maintenance window.
    Window,
    /// A signal (an approval, or `upgrade-now` when no window is known).
    Signal,
}

/// A principal sending a signal: its user name and roles (for approvals).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Principal {
    /// The user (or API key owner) name.
    pub name: String,
    /// The roles it holds where the run lives.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

impl Principal {
    /// A principal with a name and no roles.
    pub fn user(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            roles: Vec::new(),
        }
    }
}

/// A signal (DESIGN §6.2), delivered from the run's durable inbox in order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "signal", rename_all = "camelCase")]
pub enum Signal {
    /// Stop starting work; in-flight work finishes, timers stay armed.
    Pause,
    /// Continue a paused run; with `retry_failed`, re-drive failed children (or the failed step
    /// of a `Failed` run).
    Resume {
        /// Re-drive what failed.
        #[serde(default, rename = "retryFailed")]
        retry_failed: bool,
    },
    /// Stop the run for good.
    Cancel,
    /// Grant the named approval.
    Approve {
        /// The approval's name.
        name: String,
    },
    /// Refuse the named approval (the `approve` step fails with kind `rejected`).
    Reject {
        /// The approval's name.
        name: String,
    },
    /// Ignore maintenance windows from now on (the current and every later window wait ends).
    UpgradeNow,
    /// Stop starting work and, once in-flight work drains, fail the current step with kind
    /// `rollback` (a `try` can catch it and request the rollback).
    Rollback,
}

impl Signal {
    /// The signal's name as on the API (`upgrade-now`).
    pub fn name(&self) -> &'static str {
        match self {
            Signal::Pause => "pause",
            Signal::Resume { .. } => "resume",
            Signal::Cancel => "cancel",
            Signal::Approve { .. } => "approve",
            Signal::Reject { .. } => "reject",
            Signal::UpgradeNow => "upgrade-now",
            Signal::Rollback => "rollback",
        }
    }
}

/// A cluster a run is about (a fan-out item, or the subject of a deploy).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct Item {
    /// The cluster's name, the item's key.
    pub name: String,
    /// Its labels (waves select on them).
    #[serde(default)]
    pub labels: Labels,
    /// Other facts expressions may read as `cluster.<fact>` (phase, health, pendingVariables…).
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub facts: Map<String, Value>,
}

impl Item {
    /// The item as expressions see it: its facts plus `name` and `labels`.
    pub fn to_cel(&self) -> Value {
        let mut m = self.facts.clone();
        m.insert("name".into(), Value::String(self.name.clone()));
        m.insert(
            "labels".into(),
            serde_json::to_value(&self.labels).unwrap_or(Value::Null),
        );
        Value::Object(m)
    }
}

/// A maintenance window `[start, end)`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// When updates may start.
    pub start: Timestamp,
    /// When they may no longer start.
    pub end: Timestamp,
}

/// An error of a provider call or render, as the runtime reports it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct StepError {
    /// The WIT error kind.
    pub kind: ErrorKind,
    /// What went wrong, for people (never secrets).
    pub message: String,
}

/// How a child run ended.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "camelCase")]
pub enum ChildOutcome {
    /// The child succeeded.
    Succeeded,
    /// The child failed.
    Failed {
        /// Its error.
        error: RunError,
    },
    /// The child was cancelled.
    Cancelled,
}

/// An event applied to a run: the runtime's replies to effects, timers, signals, edits.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Event {
    /// Start a `Pending` run with its inputs (validated, defaults applied) and, for deploys and
    /// children, the cluster it is about.
    Started {
        /// The inputs as given.
        inputs: Value,
        /// The cluster the run is about.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        subject: Option<Item>,
    },
    /// A provider call or render finished. For a provider call still in progress in the cloud,
    /// `operation` names it and the machine polls it.
    StepCompleted {
        /// The call's token.
        call: Token,
        /// The call's result.
        #[serde(default)]
        result: Value,
        /// The long-running operation, when not done yet.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operation: Option<String>,
    },
    /// A provider call or render failed.
    StepFailed {
        /// The call's token.
        call: Token,
        /// The error.
        error: StepError,
        /// Whether the provider says a retry may succeed.
        retryable: bool,
        /// The provider's requested delay (e.g. `throttled(retry-after)`).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        retry_after: Option<Duration>,
    },
    /// Reply to [`Effect::Observe`]: the cluster's current facts.
    Observed {
        /// The call's token.
        call: Token,
        /// The cluster as it is now.
        item: Item,
    },
    /// Reply to [`Effect::ResolveWindow`]: the window open now or next, or none (no schedule).
    WindowResolved {
        /// The call's token.
        call: Token,
        /// The window, if any.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        window: Option<Window>,
    },
    /// Reply to [`Effect::ResolveItems`]: the fan-out's clusters.
    ItemsResolved {
        /// The call's token.
        call: Token,
        /// The clusters (any order; duplicates are dropped).
        items: Vec<Item>,
    },
    /// A timer set by [`Effect::SetTimer`] fired.
    TimerFired {
        /// The timer.
        timer: Token,
    },
    /// A signal from the run's inbox.
    Signal {
        /// The signal.
        signal: Signal,
        /// Who sent it.
        by: Principal,
        /// Why, as given.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A child run ended (sent by the runtime on the child's [`Effect::NotifyParent`]).
    ChildCompleted {
        /// The item (cluster) key.
        item: String,
        /// The child run.
        child: RunId,
        /// How it ended.
        outcome: ChildOutcome,
    },
    /// The running fan-out's limits were edited.
    LimitsChanged {
        /// New concurrency limit, if changed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_concurrency: Option<LimitSetting>,
        /// New failure budget, if changed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        max_failures: Option<LimitSetting>,
        /// Who edited them.
        by: Principal,
    },
    /// The cluster's maintenance policy, exclusions or zone changed: re-resolve a window wait.
    WindowsChanged,
}

impl Event {
    /// A short name for journals (`stepCompleted`).
    pub fn name(&self) -> &'static str {
        match self {
            Event::Started { .. } => "started",
            Event::StepCompleted { .. } => "stepCompleted",
            Event::StepFailed { .. } => "stepFailed",
            Event::Observed { .. } => "observed",
            Event::WindowResolved { .. } => "windowResolved",
            Event::ItemsResolved { .. } => "itemsResolved",
            Event::TimerFired { .. } => "timerFired",
            Event::Signal { .. } => "signal",
            Event::ChildCompleted { .. } => "childCompleted",
            Event::LimitsChanged { .. } => "limitsChanged",
            Event::WindowsChanged => "windowsChanged",
        }
    }
}

/// Everything a child run needs; the runtime creates it with [`RunState::for_child`] (if it does
/// not exist yet: the id is deterministic) and then applies [`Event::Started`] with `inputs` and
/// `item`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ChildSpec {
    /// The child's id ([`child_run_id`]).
    pub run: RunId,
    /// The parent run.
    pub parent: RunId,
    /// The fan-out step whose `steps` the child runs.
    pub fanout: StepPath,
    /// The cluster.
    pub item: Item,
    /// The parent's inputs.
    pub inputs: Value,
    /// The parent's variables when the child starts.
    pub vars: Map<String, Value>,
    /// Whether `upgrade-now` was already signalled to the parent.
    pub upgrade_now: bool,
}

/// What the runtime must do. Effects are at-least-once: each carries what makes a repeat
/// harmless (a token the machine de-duplicates, an idempotency key, a deterministic child id).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Effect {
    /// Call a provider operation; reply with `StepCompleted`/`StepFailed` carrying `call`.
    CallProvider {
        /// Reply token.
        call: Token,
        /// The step.
        step: StepPath,
        /// The operation.
        operation: Operation,
        /// For `poll-operation`: the operation to poll.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        operation_id: Option<String>,
        /// The cluster, when the run is about one.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
        /// Passed to the provider; the same for every attempt and poll of this step.
        idempotency_key: String,
        /// 1 for the first attempt (for logs; never part of the key).
        attempt: u32,
        /// Extra arguments from the step's `args` expression (`null` when none).
        #[serde(default)]
        args: Value,
    },
    /// Render the cluster's stack; reply with `StepCompleted` (the rendered summary) or
    /// `StepFailed`.
    Render {
        /// Reply token.
        call: Token,
        /// The step.
        step: StepPath,
        /// The cluster.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
    },
    /// Read the cluster's current facts from the store; reply with `Observed`.
    Observe {
        /// Reply token.
        call: Token,
        /// The step.
        step: StepPath,
        /// The cluster.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
    },
    /// Find the cluster's maintenance window open at `after` or the next one, in its own zone,
    /// honouring exclusions; reply with `WindowResolved`.
    ResolveWindow {
        /// Reply token.
        call: Token,
        /// The step.
        step: StepPath,
        /// The cluster.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        cluster: Option<String>,
        /// The instant from which to look.
        after: Timestamp,
    },
    /// List the fan-out's clusters; reply with `ItemsResolved`.
    ResolveItems {
        /// Reply token.
        call: Token,
        /// The step.
        step: StepPath,
        /// Which clusters.
        over: Over,
    },
    /// Arm a durable timer; deliver `TimerFired` at or after `at` (also after a restart).
    SetTimer {
        /// The timer.
        timer: Token,
        /// When it fires.
        at: Timestamp,
    },
    /// Disarm a timer (firing it anyway is harmless: the machine ignores it).
    CancelTimer {
        /// The timer.
        timer: Token,
    },
    /// Create and start a child run (create-if-absent on `spec.run`).
    StartChild(Box<ChildSpec>),
    /// Deliver a signal to a child run's inbox.
    SignalChild {
        /// The child run.
        child: RunId,
        /// The signal.
        signal: Signal,
        /// Who sent it to the parent.
        by: Principal,
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// This child run ended: deliver `ChildCompleted` to the parent.
    NotifyParent {
        /// The parent run.
        parent: RunId,
        /// The item key.
        item: String,
        /// This run.
        child: RunId,
        /// How it ended.
        outcome: ChildOutcome,
    },
    /// Publish an event (CloudEvents on `/v1/events`, notification sinks); `key` de-duplicates.
    Emit {
        /// Deterministic id of the event.
        key: String,
        /// The step that emitted it.
        step: StepPath,
        /// Event type.
        event_type: String,
        /// Message for people.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        message: Option<String>,
        /// Event data.
        #[serde(default)]
        data: Value,
    },
}

/// An error that ended a step (and possibly the run).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RunError {
    /// The kind: a provider error kind (`transient`, `invalid-config`…) or an engine kind:
    /// `timeout`, `expired`, `rejected`, `unhealthy`, `expression`, `budget-exhausted`,
    /// `rollback`, `child-failed`, `failed` (a `fail` step's default).
    pub kind: String,
    /// What went wrong, for people.
    pub message: String,
    /// The step where it happened.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub step: Option<StepPath>,
}

impl RunError {
    pub(crate) fn new(kind: &str, message: impl Into<String>, step: Option<&StepPath>) -> Self {
        Self {
            kind: kind.to_owned(),
            message: message.into(),
            step: step.cloned(),
        }
    }
}

/// An approval decision, kept on the run for the audit trail and the console.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalRecord {
    /// The approval's name.
    pub name: String,
    /// Whether it was granted.
    pub approved: bool,
    /// Who decided.
    pub by: String,
    /// Why, as given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// When.
    pub at: Timestamp,
}

/// One entry of a run's append-only journal. `seq` starts at 1 and has no gaps.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JournalEntry {
    /// Position in the run's journal.
    pub seq: u64,
    /// When the transition happened.
    pub at: Timestamp,
    /// What happened.
    pub record: Record,
}

/// What a journal entry records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(
    tag = "type",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum Record {
    /// The run started.
    RunStarted {
        /// Inputs with defaults applied.
        inputs: Value,
    },
    /// The run succeeded.
    RunSucceeded,
    /// The run failed.
    RunFailed {
        /// The error.
        error: RunError,
    },
    /// The run was cancelled.
    RunCancelled,
    /// The run paused.
    RunPaused {
        /// Why (`signal` or `failure budget exhausted`).
        reason: String,
    },
    /// The run resumed.
    RunResumed,
    /// A failed run was re-driven.
    RunRedriven {
        /// The new generation (part of idempotency keys).
        generation: u32,
    },
    /// A step started.
    StepStarted {
        /// The step.
        step: StepPath,
        /// Its kind.
        kind: String,
    },
    /// A step completed.
    StepCompleted {
        /// The step.
        step: StepPath,
    },
    /// A step failed.
    StepFailed {
        /// The step.
        step: StepPath,
        /// The error.
        error: RunError,
    },
    /// A call failed and will be retried.
    StepRetrying {
        /// The step.
        step: StepPath,
        /// The next attempt's number.
        attempt: u32,
        /// Delay before it.
        delay: Duration,
        /// The failure.
        error: StepError,
    },
    /// A `try` caught an error and runs its `catch` steps.
    ErrorCaught {
        /// The `try` step.
        step: StepPath,
        /// The error.
        error: RunError,
    },
    /// A timer was armed.
    TimerSet {
        /// The timer.
        timer: Token,
        /// When it fires.
        at: Timestamp,
        /// What for.
        purpose: String,
    },
    /// A timer fired.
    TimerFired {
        /// The timer.
        timer: Token,
    },
    /// A timer was disarmed.
    TimerCancelled {
        /// The timer.
        timer: Token,
    },
    /// A signal was received and acted on.
    SignalReceived {
        /// The signal.
        signal: Signal,
        /// Who sent it.
        by: String,
        /// Why.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
    },
    /// A signal was received and had no effect (defined behaviour, e.g. `pause` while paused).
    SignalIgnored {
        /// The signal.
        signal: Signal,
        /// Who sent it.
        by: String,
        /// Why they sent it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        reason: Option<String>,
        /// Why it had no effect.
        why: String,
    },
    /// A provider call is about to be made.
    ProviderCallIntended {
        /// The step.
        step: StepPath,
        /// Reply token.
        call: Token,
        /// The operation.
        operation: Operation,
        /// The idempotency key.
        idempotency_key: String,
        /// Attempt number.
        attempt: u32,
    },
    /// A provider call's result.
    ProviderCallResult {
        /// The step.
        step: StepPath,
        /// Reply token.
        call: Token,
        /// `done`, `in-progress` or `failed`.
        outcome: String,
        /// The error, when failed.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        error: Option<StepError>,
    },
    /// A request was made to the runtime (render, observe, resolve window or items).
    Requested {
        /// The step.
        step: StepPath,
        /// Reply token.
        call: Token,
        /// What (`render`, `observe`, `resolveWindow`, `resolveItems`).
        what: String,
    },
    /// A reply to a request arrived.
    Replied {
        /// The step.
        step: StepPath,
        /// Reply token.
        call: Token,
        /// What it said, briefly.
        summary: String,
    },
    /// A fan-out resolved its clusters into waves.
    FanoutPlanned {
        /// The step.
        step: StepPath,
        /// Clusters in all.
        total: usize,
        /// Clusters skipped by skip rules.
        skipped: usize,
        /// Wave names and sizes.
        waves: Vec<(String, usize)>,
        /// Each skipped cluster with the reason its skip rule gave (DESIGN §5.1: skipped
        /// clusters say why, also after the run).
        #[serde(default, skip_serializing_if = "Vec::is_empty")]
        skipped_items: Vec<(String, String)>,
    },
    /// A wave started.
    WaveStarted {
        /// The wave.
        wave: String,
    },
    /// A wave finished.
    WaveCompleted {
        /// The wave.
        wave: String,
        /// Its counts.
        counts: WaveCounts,
    },
    /// A child run was started (or re-driven).
    ChildStarted {
        /// The item.
        item: String,
        /// The child run.
        child: RunId,
        /// Whether it is a re-drive of a failed child.
        redrive: bool,
    },
    /// A child run ended.
    ChildCompleted {
        /// The item.
        item: String,
        /// How.
        outcome: ChildOutcome,
    },
    /// The fan-out's failure budget is exhausted.
    BudgetExhausted {
        /// Failures counted against the budget.
        failed: usize,
        /// Failures allowed.
        allowed: usize,
    },
    /// The fan-out's limits changed.
    LimitsChanged {
        /// Concurrency now.
        max_concurrency: LimitSetting,
        /// Failure budget now.
        max_failures: LimitSetting,
        /// Who changed them.
        by: String,
    },
    /// A `set` step set a variable.
    VariableSet {
        /// The variable.
        name: String,
        /// Its value.
        value: Value,
    },
    /// An `emit` step emitted an event.
    Emitted {
        /// The event type.
        event_type: String,
        /// Its key.
        key: String,
    },
    /// An approval was decided.
    ApprovalDecided(ApprovalRecord),
    /// An event arrived while the run was paused; it is applied on resume.
    EventDeferred {
        /// The event's name.
        event: String,
    },
    /// An event had no effect (a stale reply or timer, a duplicate delivery, a finished run).
    EventIgnored {
        /// The event's name.
        event: String,
        /// Why.
        why: String,
    },
}

/// What one `apply` produced: journal entries and effects. The runtime commits the new state,
/// the journal entries and the effects (as an outbox) in one transaction, then performs the
/// effects.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    /// New journal entries, in order (at least one per event).
    pub journal: Vec<JournalEntry>,
    /// Effects, in order.
    pub effects: Vec<Effect>,
}

/// Which part of a definition a run executes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(
    tag = "scope",
    rename_all = "camelCase",
    rename_all_fields = "camelCase"
)]
pub enum RunScope {
    /// The whole definition.
    Root,
    /// The `steps` of a fan-out, for one item.
    Child {
        /// The parent run.
        parent: RunId,
        /// The fan-out step.
        fanout: StepPath,
    },
}

/// The definition a run executes, pinned by digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DefinitionRef {
    /// The definition's name.
    pub name: String,
    /// Its version.
    pub version: semver::Version,
    /// [`Definition::digest`].
    pub digest: String,
}

/// Which step lists a frame iterates, and how failures treat it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum FrameKind {
    /// A plain list (spec, sequence, choice branch, fan-out body of a child).
    Plain,
    /// `try.steps`: a failure inside switches to `catch`.
    Try,
    /// `try.catch`.
    Catch,
}

/// A list of steps being executed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Frame {
    /// The step owning the list (`None` for `spec.steps`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub owner: Option<StepPath>,
    /// Which list of the owner.
    pub list: crate::definition::ListSel,
    /// The index of the next step to start.
    pub next: usize,
    /// How failures treat it.
    pub kind: FrameKind,
}

/// What the active step waits for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "on", rename_all = "camelCase", rename_all_fields = "camelCase")]
pub enum Awaiting {
    /// Nothing (transient).
    Nothing,
    /// A reply with this token.
    Call {
        /// The token.
        call: Token,
    },
    /// A timer.
    Timer {
        /// The timer.
        timer: Token,
        /// When it fires.
        at: Timestamp,
    },
    /// An approval signal, and optionally its expiry timer.
    Approval {
        /// The approval.
        name: String,
        /// Expiry timer and instant.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        expiry: Option<(Token, Timestamp)>,
    },
    /// An `upgrade-now` signal or a `windowsChanged` event (no window is known).
    WindowSignal,
    /// Child runs.
    Children,
}

/// The step currently executing (there is at most one per run; composite steps are frames).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Active {
    /// The step.
    pub step: StepPath,
    /// Its kind.
    pub kind: String,
    /// When it started.
    pub started_at: Timestamp,
    /// What it waits for.
    pub awaiting: Awaiting,
    /// Since when it waits for that.
    pub awaiting_since: Timestamp,
    /// Attempt number of the current call (provider steps).
    #[serde(default)]
    pub attempt: u32,
    /// When the first attempt started (for `maximumTotal`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub first_attempt_at: Option<Timestamp>,
    /// The long-running operation being polled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub operation_id: Option<String>,
    /// When polling started (for `poll.timeout`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll_started_at: Option<Timestamp>,
    /// Arguments of the provider call, evaluated once at the step's start.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub args: Value,
    /// A deadline (wait `maxWait`, gate timeout, soak end).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deadline: Option<Timestamp>,
    /// The window a window wait resolved.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub window: Option<Window>,
    /// A fan-out's bookkeeping.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fanout: Option<Box<FanoutState>>,
    /// Set when the step failed and the run stopped on it (kept for a re-drive).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failed: Option<RunError>,
}

/// Why a run is paused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PauseInfo {
    /// Who paused it (`engine` for an exhausted budget).
    pub by: String,
    /// Why.
    pub reason: String,
    /// Since when.
    pub since: Timestamp,
}

/// A run's whole state, persisted after every transition (in a versioned envelope: `format`).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RunState {
    /// [`RUN_STATE_FORMAT`] when written.
    pub format: u32,
    /// The run's id.
    pub id: RunId,
    /// The definition, pinned.
    pub definition: DefinitionRef,
    /// Root or child.
    pub scope: RunScope,
    /// The status.
    pub status: RunStatus,
    /// What a `Waiting` run waits for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waiting_on: Option<WaitingOn>,
    /// Why it is paused.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub paused: Option<PauseInfo>,
    /// Inputs, defaults applied.
    #[serde(default)]
    pub inputs: Value,
    /// The cluster the run is about.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<Item>,
    /// Variables set by `set` steps.
    #[serde(default)]
    pub vars: Map<String, Value>,
    /// Results of completed steps with an id.
    #[serde(default)]
    pub results: Map<String, Value>,
    /// `upgrade-now` was signalled.
    #[serde(default)]
    pub upgrade_now: bool,
    /// `rollback` was signalled.
    #[serde(default)]
    pub rollback_requested: bool,
    /// A signalled rollback has not yet failed the run's position.
    #[serde(default)]
    pub rollback_pending: bool,
    /// The last error: caught by a `try` (`run.error`), or the one the run failed with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<RunError>,
    /// Incremented by every re-drive; part of idempotency keys.
    #[serde(default)]
    pub generation: u32,
    /// Step lists being executed, outermost first.
    #[serde(default)]
    pub frames: Vec<Frame>,
    /// The step executing.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub active: Option<Active>,
    /// Events received while paused, applied in order on resume.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub deferred: Vec<Event>,
    /// Approval decisions.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub approvals: Vec<ApprovalRecord>,
    /// Counts of the current (or last) fan-out, for `run.*` in expressions.
    #[serde(default)]
    pub counts: WaveCounts,
    /// Next token to allocate.
    pub next_token: Token,
    /// Sequence number of the last journal entry (0 before the first).
    pub journal_seq: u64,
    /// When the run started.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub started_at: Option<Timestamp>,
    /// When the run ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended_at: Option<Timestamp>,
}

impl RunState {
    /// A new `Pending` root run of `def`.
    pub fn new(id: impl Into<RunId>, def: &Definition) -> Self {
        Self::blank(id.into(), def, RunScope::Root)
    }

    /// A new `Pending` child run (see [`ChildSpec`]); `vars` and the upgrade-now flag are
    /// inherited from the parent.
    pub fn for_child(spec: &ChildSpec, def: &Definition) -> Self {
        let mut s = Self::blank(
            spec.run.clone(),
            def,
            RunScope::Child {
                parent: spec.parent.clone(),
                fanout: spec.fanout.clone(),
            },
        );
        s.vars = spec.vars.clone();
        s.upgrade_now = spec.upgrade_now;
        s
    }

    fn blank(id: RunId, def: &Definition, scope: RunScope) -> Self {
        Self {
            format: RUN_STATE_FORMAT,
            id,
            definition: DefinitionRef {
                name: def.metadata.name.clone(),
                version: def.metadata.version.clone(),
                digest: def.digest(),
            },
            scope,
            status: RunStatus::Pending,
            waiting_on: None,
            paused: None,
            inputs: Value::Null,
            subject: None,
            vars: Map::new(),
            results: Map::new(),
            upgrade_now: false,
            rollback_requested: false,
            rollback_pending: false,
            error: None,
            generation: 0,
            frames: Vec::new(),
            active: None,
            deferred: Vec::new(),
            approvals: Vec::new(),
            counts: WaveCounts::default(),
            next_token: 1,
            journal_seq: 0,
            started_at: None,
            ended_at: None,
        }
    }

    /// Reads a persisted state.
    ///
    /// # Errors
    /// [`StateFormatError`] when the bytes are not a state or of an unknown format.
    pub fn from_json(bytes: &[u8]) -> Result<Self, StateFormatError> {
        /// The format alone (the rest is skipped without building values), checked before
        /// the state is decoded straight from the bytes: the runtime reads states on every
        /// batch of a large fan-out, and a `Value` first doubled the work.
        #[derive(Deserialize)]
        struct Envelope {
            #[serde(default)]
            format: Option<Value>,
        }
        let invalid = |e: serde_json::Error| StateFormatError::Invalid(e.to_string());
        let envelope: Envelope = serde_json::from_slice(bytes).map_err(invalid)?;
        let format = envelope
            .format
            .as_ref()
            .and_then(Value::as_u64)
            .unwrap_or(0);
        if format != u64::from(RUN_STATE_FORMAT) {
            return Err(StateFormatError::UnknownFormat(format));
        }
        serde_json::from_slice(bytes).map_err(invalid)
    }

    /// The fan-out's bookkeeping, when a fan-out is the active step.
    pub fn fanout(&self) -> Option<&FanoutState> {
        self.active.as_ref().and_then(|a| a.fanout.as_deref())
    }

    /// The active fan-out's items, for the runtime to store them apart or attach them.
    pub fn fanout_items_mut(&mut self) -> Option<&mut Items> {
        self.active
            .as_mut()
            .and_then(|a| a.fanout.as_mut())
            .map(|f| &mut f.items)
    }
}

/// Why a persisted state cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateFormatError {
    /// Not a run state.
    #[error("invalid run state: {0}")]
    Invalid(String),
    /// Written by a format this version does not know.
    #[error("unknown run state format {0}")]
    UnknownFormat(u64),
}
