//! Workflow definitions (DESIGN §6.1): the document format, parsing, and step paths.

use crate::duration::Duration;
use fleetplane_domain::{DomainError, FieldError, Labels};
use serde::de::{DeserializeOwned, Error as _};
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;
use std::fmt;

/// The largest definition document accepted, in bytes.
pub const MAX_DEFINITION_BYTES: usize = 1024 * 1024;

/// A workflow definition: `kind: Workflow`, `metadata`, `spec`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Definition {
    /// Always `Workflow`.
    pub kind: Kind,
    /// Name, version and description.
    pub metadata: DefinitionMeta,
    /// Purpose, inputs and steps.
    pub spec: Spec,
}

/// The document kind; only `Workflow` exists.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Kind {
    /// A workflow definition.
    Workflow,
}

/// A definition's identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DefinitionMeta {
    /// A DNS label (`rollout`).
    pub name: String,
    /// A strict SemVer version (`1.0.0`).
    pub version: semver::Version,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
}

/// What a definition is for; templates and the domain choose definitions by purpose.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Purpose {
    /// Provision one cluster.
    Deploy,
    /// Stage a template revision on one cluster (variables, plan).
    StageUpdate,
    /// Move a template's clusters to a revision.
    Rollout,
    /// Apply one cluster's changed desired state at once (its variables, a standalone
    /// cluster's profile versions, node pools, labels).
    Update,
    /// Deprovision one cluster; its record disappears when the run succeeds.
    Delete,
}

/// The body of a definition.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Spec {
    /// What the definition is for.
    pub purpose: Purpose,
    /// Declared inputs, by name.
    #[serde(default)]
    pub inputs: BTreeMap<String, InputDecl>,
    /// The steps, run in order.
    pub steps: Vec<Step>,
}

/// The JSON type of an input.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    /// A string.
    String,
    /// A whole number.
    Integer,
    /// Any number.
    Number,
    /// `true` or `false`.
    Boolean,
    /// A list; `items` describes the elements.
    Array,
    /// A map; `properties` describes known keys.
    Object,
}

/// A JSON-Schema-like declaration of one input (or of an element or property of one).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct InputDecl {
    /// The value's type.
    #[serde(rename = "type")]
    pub ty: InputType,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Whether a value must be given (inputs with a default never need one).
    #[serde(default, skip_serializing_if = "is_false")]
    pub required: bool,
    /// The value used when none is given.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<Value>,
    /// The only values allowed.
    #[serde(rename = "enum", default, skip_serializing_if = "Option::is_none")]
    pub one_of: Option<Vec<Value>>,
    /// The least number allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub minimum: Option<f64>,
    /// The greatest number allowed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum: Option<f64>,
    /// The declaration of each element of an array.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub items: Option<Box<InputDecl>>,
    /// The declarations of an object's known keys (other keys are rejected).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<BTreeMap<String, InputDecl>>,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// One step: an optional `id`, an optional `description`, and exactly one kind.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawStep", into = "RawStep")]
pub struct Step {
    /// An identifier, unique in the definition; `steps.<id>.result` reads its result.
    pub id: Option<String>,
    /// Free text for people.
    pub description: Option<String>,
    /// What the step does.
    pub kind: StepKind,
}

/// The closed set of step kinds (DESIGN §6.1). No container, shell or HTTP step exists: every
/// cloud call goes through a provider component.
#[derive(Debug, Clone, PartialEq)]
pub enum StepKind {
    /// One provider operation, with polling and retries.
    Provider(ProviderStep),
    /// Render the cluster's stack.
    Render(RenderStep),
    /// Wait for a duration, an instant or the cluster's next maintenance window.
    Wait(WaitStep),
    /// Wait a duration while a health predicate holds.
    Soak(SoakStep),
    /// Wait until a predicate holds, re-evaluated until a timeout.
    Gate(GateStep),
    /// Wait for a named approval.
    Approve(ApproveStep),
    /// Run sub-steps once per cluster, as child runs, in waves.
    Fanout(FanoutStep),
    /// Run steps in order.
    Sequence(SequenceStep),
    /// Run the steps of the first branch whose condition holds.
    Choice(ChoiceStep),
    /// Run steps; on failure run `catch`.
    Try(TryStep),
    /// Fail the run (or the enclosing `try`).
    Fail(FailStep),
    /// Set a run variable from an expression.
    Set(SetStep),
    /// Emit an event or notification.
    Emit(EmitStep),
}

impl StepKind {
    /// The kind's name as written in definitions (`fanout`).
    pub fn name(&self) -> &'static str {
        match self {
            StepKind::Provider(_) => "provider",
            StepKind::Render(_) => "render",
            StepKind::Wait(_) => "wait",
            StepKind::Soak(_) => "soak",
            StepKind::Gate(_) => "gate",
            StepKind::Approve(_) => "approve",
            StepKind::Fanout(_) => "fanout",
            StepKind::Sequence(_) => "sequence",
            StepKind::Choice(_) => "choice",
            StepKind::Try(_) => "try",
            StepKind::Fail(_) => "fail",
            StepKind::Set(_) => "set",
            StepKind::Emit(_) => "emit",
        }
    }
}

/// Every step kind's name, in the order of [`StepKind`].
pub const STEP_KINDS: [&str; 13] = [
    "provider", "render", "wait", "soak", "gate", "approve", "fanout", "sequence", "choice", "try",
    "fail", "set", "emit",
];

/// The wire form of a step: every kind as an optional key, so unknown keys are rejected and the
/// "exactly one kind" rule gets a clear message.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawStep {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    provider: Option<ProviderStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    render: Option<RenderStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    wait: Option<WaitStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    soak: Option<SoakStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    gate: Option<GateStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    approve: Option<ApproveStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fanout: Option<FanoutStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    sequence: Option<SequenceStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    choice: Option<ChoiceStep>,
    #[serde(default, skip_serializing_if = "Option::is_none", rename = "try")]
    try_: Option<TryStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    fail: Option<FailStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    set: Option<SetStep>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    emit: Option<EmitStep>,
}

impl TryFrom<RawStep> for Step {
    type Error = String;

    fn try_from(r: RawStep) -> Result<Self, String> {
        let mut kinds: Vec<StepKind> = Vec::new();
        kinds.extend(r.provider.map(StepKind::Provider));
        kinds.extend(r.render.map(StepKind::Render));
        kinds.extend(r.wait.map(StepKind::Wait));
        kinds.extend(r.soak.map(StepKind::Soak));
        kinds.extend(r.gate.map(StepKind::Gate));
        kinds.extend(r.approve.map(StepKind::Approve));
        kinds.extend(r.fanout.map(StepKind::Fanout));
        kinds.extend(r.sequence.map(StepKind::Sequence));
        kinds.extend(r.choice.map(StepKind::Choice));
        kinds.extend(r.try_.map(StepKind::Try));
        kinds.extend(r.fail.map(StepKind::Fail));
        kinds.extend(r.set.map(StepKind::Set));
        kinds.extend(r.emit.map(StepKind::Emit));
        let n = kinds.len();
        match kinds.pop() {
            Some(kind) if n == 1 => Ok(Step {
                id: r.id,
                description: r.description,
                kind,
            }),
            Some(_) => Err(format!(
                "a step has exactly one kind, found {n} (one of: {})",
                STEP_KINDS.join(", ")
            )),
            None => Err(format!(
                "a step needs a kind, one of: {}",
                STEP_KINDS.join(", ")
            )),
        }
    }
}

impl From<Step> for RawStep {
    fn from(s: Step) -> Self {
        let mut r = RawStep {
            id: s.id,
            description: s.description,
            ..RawStep::default()
        };
        match s.kind {
            StepKind::Provider(k) => r.provider = Some(k),
            StepKind::Render(k) => r.render = Some(k),
            StepKind::Wait(k) => r.wait = Some(k),
            StepKind::Soak(k) => r.soak = Some(k),
            StepKind::Gate(k) => r.gate = Some(k),
            StepKind::Approve(k) => r.approve = Some(k),
            StepKind::Fanout(k) => r.fanout = Some(k),
            StepKind::Sequence(k) => r.sequence = Some(k),
            StepKind::Choice(k) => r.choice = Some(k),
            StepKind::Try(k) => r.try_ = Some(k),
            StepKind::Fail(k) => r.fail = Some(k),
            StepKind::Set(k) => r.set = Some(k),
            StepKind::Emit(k) => r.emit = Some(k),
        }
        r
    }
}

/// The provider operations of the WIT world (`fleetplane:provider`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Operation {
    /// Check a cloud account's configuration and credentials.
    ValidateAccount,
    /// Create a cluster.
    CreateCluster,
    /// Update a cluster to a rendered stack.
    UpdateCluster,
    /// Delete a cluster.
    DeleteCluster,
    /// Read a cluster's observed state.
    DescribeCluster,
    /// Poll a long-running operation; issued by the engine while a step polls.
    PollOperation,
}

impl Operation {
    /// The operation's name as in the WIT world (`create-cluster`).
    pub fn as_str(self) -> &'static str {
        match self {
            Operation::ValidateAccount => "validate-account",
            Operation::CreateCluster => "create-cluster",
            Operation::UpdateCluster => "update-cluster",
            Operation::DeleteCluster => "delete-cluster",
            Operation::DescribeCluster => "describe-cluster",
            Operation::PollOperation => "poll-operation",
        }
    }

    /// Whether the operation changes nothing (safe to repeat while polling with `until`).
    pub fn is_read_only(self) -> bool {
        matches!(
            self,
            Operation::ValidateAccount | Operation::DescribeCluster | Operation::PollOperation
        )
    }
}

/// The error kinds of the WIT world, which decide retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum ErrorKind {
    /// The request or configuration is wrong; retrying cannot help.
    InvalidConfig,
    /// The object does not exist.
    NotFound,
    /// The object is in a conflicting state.
    Conflict,
    /// The cloud asked to slow down (with a retry-after).
    Throttled,
    /// A temporary failure.
    Transient,
    /// A permanent failure.
    Permanent,
}

impl ErrorKind {
    /// The kind as definitions and journals spell it (`invalid-config`).
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::InvalidConfig => "invalid-config",
            ErrorKind::NotFound => "not-found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::Throttled => "throttled",
            ErrorKind::Transient => "transient",
            ErrorKind::Permanent => "permanent",
        }
    }

    /// Whether the WIT world says the kind may be retried (`throttled`, `transient`); the
    /// runtime sets [`crate::run::Event::StepFailed`]'s `retryable` from it.
    pub fn retryable_by_default(self) -> bool {
        matches!(self, ErrorKind::Throttled | ErrorKind::Transient)
    }
}

/// `provider`: one provider operation.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderStep {
    /// Which operation.
    pub operation: Operation,
    /// A CEL expression producing a map of extra arguments passed to the call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<String>,
    /// Polling of a long-running operation, and optionally re-calling until a predicate holds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub poll: Option<Poll>,
    /// How failed calls are retried.
    #[serde(default)]
    pub retry: RetryPolicy,
}

/// Polling: the engine polls a long-running operation every `interval` until it is done; with
/// `until`, it then re-calls a read-only operation until the predicate (over `result`) holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Poll {
    /// Time between polls (default 10s).
    #[serde(default = "default_poll_interval")]
    pub interval: Duration,
    /// How long polling may take before the step fails with `timeout`.
    pub timeout: Duration,
    /// A CEL predicate over `result`; polling continues while it is false.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub until: Option<String>,
}

fn default_poll_interval() -> Duration {
    Duration::from_secs(10)
}

/// A retry policy (Temporal's shape). Attempts are always bounded.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RetryPolicy {
    /// Delay before the first retry (default 1s).
    #[serde(default = "default_initial_interval")]
    pub initial_interval: Duration,
    /// Factor applied to the delay after each retry (default 2.0, between 1 and 10).
    #[serde(default = "default_backoff")]
    pub backoff_coefficient: f64,
    /// The longest delay (default 1m).
    #[serde(default = "default_maximum_interval")]
    pub maximum_interval: Duration,
    /// The most attempts, the first included (default 5, at most 100).
    #[serde(default = "default_maximum_attempts")]
    pub maximum_attempts: u32,
    /// The longest time from the first attempt to the start of the last one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maximum_total: Option<Duration>,
    /// Error kinds never retried (in addition to errors the provider marks not retryable).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub non_retryable_errors: Vec<ErrorKind>,
}

fn default_initial_interval() -> Duration {
    Duration::from_secs(1)
}
fn default_backoff() -> f64 {
    2.0
}
fn default_maximum_interval() -> Duration {
    Duration::from_secs(60)
}
fn default_maximum_attempts() -> u32 {
    5
}

impl Default for RetryPolicy {
    fn default() -> Self {
        Self {
            initial_interval: default_initial_interval(),
            backoff_coefficient: default_backoff(),
            maximum_interval: default_maximum_interval(),
            maximum_attempts: default_maximum_attempts(),
            maximum_total: None,
            non_retryable_errors: Vec::new(),
        }
    }
}

impl RetryPolicy {
    /// The delay before attempt `next_attempt` (2 for the first retry):
    /// `min(initialInterval × backoffCoefficient^(next_attempt-2), maximumInterval)`.
    pub fn delay_before(&self, next_attempt: u32) -> Duration {
        let exp = next_attempt.saturating_sub(2).min(64) as i32;
        let ms = self.initial_interval.as_millis() as f64 * self.backoff_coefficient.powi(exp);
        let capped = ms.min(self.maximum_interval.as_millis() as f64);
        // `capped` is finite and within u64 (it is at most maximumInterval).
        Duration::from_millis(if capped.is_finite() && capped > 0.0 {
            capped as u64
        } else {
            0
        })
    }
}

/// `render`: render the cluster's stack (the runtime knows the target revision).
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RenderStep {}

/// `wait`: exactly one of `duration`, `until`, `untilExpr`, `window`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "RawWait", into = "RawWait")]
pub struct WaitStep {
    /// What to wait for.
    pub for_: WaitFor,
    /// An upper bound on the wait; required for `untilExpr`, optional for `window`.
    pub max_wait: Option<Duration>,
}

/// What a `wait` waits for.
#[derive(Debug, Clone, PartialEq)]
pub enum WaitFor {
    /// A fixed duration from the step's start.
    Duration(Duration),
    /// A fixed instant.
    Until(jiff::Timestamp),
    /// An instant computed by a CEL expression returning an RFC 3339 string.
    UntilExpr(String),
    /// The start of the cluster's next maintenance window (now, if one is open); an
    /// `upgrade-now` signal ends it at once.
    Window,
}

#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct RawWait {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    duration: Option<Duration>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until: Option<jiff::Timestamp>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    until_expr: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    window: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    max_wait: Option<Duration>,
}

impl TryFrom<RawWait> for WaitStep {
    type Error = String;
    fn try_from(r: RawWait) -> Result<Self, String> {
        let mut found = Vec::new();
        if let Some(d) = r.duration {
            found.push(WaitFor::Duration(d));
        }
        if let Some(t) = r.until {
            found.push(WaitFor::Until(t));
        }
        if let Some(e) = r.until_expr {
            found.push(WaitFor::UntilExpr(e));
        }
        match r.window {
            Some(true) => found.push(WaitFor::Window),
            Some(false) => return Err("window must be true when present".into()),
            None => {}
        }
        let n = found.len();
        match found.pop() {
            Some(for_) if n == 1 => Ok(WaitStep {
                for_,
                max_wait: r.max_wait,
            }),
            _ => Err(format!(
                "a wait needs exactly one of duration, until, untilExpr, window (found {n})"
            )),
        }
    }
}

impl From<WaitStep> for RawWait {
    fn from(w: WaitStep) -> Self {
        let mut r = RawWait {
            max_wait: w.max_wait,
            ..RawWait::default()
        };
        match w.for_ {
            WaitFor::Duration(d) => r.duration = Some(d),
            WaitFor::Until(t) => r.until = Some(t),
            WaitFor::UntilExpr(e) => r.until_expr = Some(e),
            WaitFor::Window => r.window = Some(true),
        }
        r
    }
}

/// `soak`: wait `duration`; every `checkEvery` observe the cluster and fail if `health` is false.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SoakStep {
    /// How long to soak.
    pub duration: Duration,
    /// A CEL predicate that must hold at every check (e.g. `cluster.health == "Healthy"`).
    pub health: String,
    /// Time between checks (default 1m).
    #[serde(default = "default_check_every")]
    pub check_every: Duration,
}

fn default_check_every() -> Duration {
    Duration::from_secs(60)
}

/// `gate`: observe and evaluate `condition` every `interval` until it holds or `timeout` passes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct GateStep {
    /// A CEL predicate.
    pub condition: String,
    /// How long the predicate may stay false before the step fails with `timeout`.
    pub timeout: Duration,
    /// Time between evaluations (default 30s).
    #[serde(default = "default_gate_interval")]
    pub interval: Duration,
}

fn default_gate_interval() -> Duration {
    Duration::from_secs(30)
}

/// `approve`: wait for an `approve` or `reject` signal with this name.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApproveStep {
    /// The approval's name, unique in the definition.
    pub name: String,
    /// Who may approve; empty lists mean anyone allowed to signal the run.
    #[serde(default)]
    pub approvers: Approvers,
    /// How long the approval may be awaited before the step fails with `expired`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires: Option<Duration>,
    /// What the approver is asked, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
}

/// Who may approve: any listed user, or anyone holding a listed role.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Approvers {
    /// User names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub users: Vec<String>,
    /// Role names.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub roles: Vec<String>,
}

/// `fanout`: one child run per cluster, in waves.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct FanoutStep {
    /// Which clusters.
    pub over: Over,
    /// Waves, run in order; clusters no wave selects form a last wave named `rest`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub waves: Option<OrExpr<Vec<Wave>>>,
    /// How many children may run at once, over the whole fan-out (count, `N%` or expression).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<Limit>,
    /// How many children may fail before the failure policy applies (default 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failures: Option<Limit>,
    /// The same budget as a percentage of the clusters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_failure_percent: Option<Limit>,
    /// What happens when the budget is exhausted (default `pause`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub on_failure: Option<OrExpr<OnFailure>>,
    /// Conditions (over `item`/`cluster`) under which a cluster is skipped with a reason.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub skip: Vec<SkipRule>,
    /// The per-cluster steps, run as a child run keyed by the cluster.
    pub steps: Vec<Step>,
}

/// The clusters a fan-out covers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Over {
    /// The clusters of the run's template.
    Template,
    /// The clusters of the run's project matching a selector.
    Selector(Selector),
}

/// A label selector in `matchLabels` form.
#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Selector {
    /// Labels that must all be equal.
    #[serde(default)]
    pub match_labels: Labels,
}

/// A wave (the `spec.rollout.waves[]` shape of DESIGN §5.4).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Wave {
    /// The wave's name.
    pub name: String,
    /// The clusters of the wave (those not taken by an earlier wave).
    #[serde(default)]
    pub selector: Selector,
    /// The wave's own concurrency limit (count or `N%` of the wave).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<Limit>,
    /// Minutes to wait after the wave before the next one starts.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub soak_minutes: Option<u32>,
}

/// What a fan-out does when its failure budget is exhausted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Stop starting children and pause the run until a person resumes it.
    Pause,
    /// Stop starting children; when running ones finish, fail the step (kind `budget-exhausted`).
    Fail,
}

/// A skip rule of a fan-out.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SkipRule {
    /// A CEL predicate over `item` (the cluster's facts).
    #[serde(rename = "if")]
    pub if_: String,
    /// The reason recorded for skipped clusters.
    pub reason: String,
}

/// A limit: a count (`10`), a percentage (`"25%"`) or an expression (`{expr: inputs.max}`)
/// whose value is a count, a percentage string, or `null` for no limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Limit {
    /// An absolute count.
    Count(u32),
    /// A percentage (0–100) of the clusters concerned, rounded up for concurrency and down for
    /// failure budgets.
    Percent(u8),
    /// A CEL expression evaluated when the fan-out starts.
    Expr(String),
}

impl Limit {
    /// Interprets a JSON value (a literal, or an expression's result) as a limit.
    ///
    /// # Errors
    /// A message when the value is neither a count, a percentage string nor an expression.
    pub fn from_value(v: &Value, allow_expr: bool) -> Result<Option<Limit>, String> {
        match v {
            Value::Null => Ok(None),
            Value::Number(n) => match n.as_u64() {
                Some(c) if c <= u64::from(u32::MAX) => Ok(Some(Limit::Count(c as u32))),
                _ => Err(format!("{n} is not a whole number ≥ 0")),
            },
            Value::String(s) => {
                let pct = s.strip_suffix('%').and_then(|p| p.parse::<u8>().ok());
                match pct {
                    Some(p) if p <= 100 && !s.starts_with('+') => Ok(Some(Limit::Percent(p))),
                    _ => Err(format!("{s:?} is not a percentage like \"25%\"")),
                }
            }
            Value::Object(m) if allow_expr && m.len() == 1 => match m.get("expr") {
                Some(Value::String(e)) => Ok(Some(Limit::Expr(e.clone()))),
                _ => Err("expected {expr: \"<CEL>\"}".into()),
            },
            _ => Err("expected a count, a percentage like \"25%\" or {expr: \"<CEL>\"}".into()),
        }
    }

    /// Resolves a count or percentage against `total` items: percentages round up when
    /// `round_up` (concurrency, at least 1 when total > 0), down otherwise (budgets).
    pub fn resolve(&self, total: usize, round_up: bool) -> Option<usize> {
        match self {
            Limit::Count(c) => Some(*c as usize),
            Limit::Percent(p) => {
                let scaled = total * usize::from(*p);
                Some(if round_up {
                    scaled.div_ceil(100).max(usize::from(total > 0))
                } else {
                    scaled / 100
                })
            }
            Limit::Expr(_) => None,
        }
    }
}

impl fmt::Display for Limit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Limit::Count(c) => write!(f, "{c}"),
            Limit::Percent(p) => write!(f, "{p}%"),
            Limit::Expr(e) => write!(f, "{{expr: {e}}}"),
        }
    }
}

impl Serialize for Limit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Limit::Count(c) => s.serialize_u32(*c),
            Limit::Percent(p) => s.collect_str(&format_args!("{p}%")),
            Limit::Expr(e) => {
                let mut m = serde_json::Map::new();
                m.insert("expr".into(), Value::String(e.clone()));
                m.serialize(s)
            }
        }
    }
}

impl<'de> Deserialize<'de> for Limit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        match Limit::from_value(&v, true).map_err(D::Error::custom)? {
            Some(l) => Ok(l),
            None => Err(D::Error::custom(
                "a limit cannot be null; leave the field out",
            )),
        }
    }
}

/// A literal value or `{expr: "<CEL>"}` computing it when the step starts.
#[derive(Debug, Clone, PartialEq)]
pub enum OrExpr<T> {
    /// A literal.
    Literal(T),
    /// A CEL expression whose JSON result deserializes to `T`.
    Expr(String),
}

impl<T: Serialize> Serialize for OrExpr<T> {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            OrExpr::Literal(t) => t.serialize(s),
            OrExpr::Expr(e) => {
                let mut m = serde_json::Map::new();
                m.insert("expr".into(), Value::String(e.clone()));
                m.serialize(s)
            }
        }
    }
}

impl<'de, T: DeserializeOwned> Deserialize<'de> for OrExpr<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let v = Value::deserialize(d)?;
        if let Value::Object(m) = &v
            && m.len() == 1
            && let Some(e) = m.get("expr")
        {
            return match e {
                Value::String(e) => Ok(OrExpr::Expr(e.clone())),
                _ => Err(D::Error::custom("expr must be a string")),
            };
        }
        serde_json::from_value(v)
            .map(OrExpr::Literal)
            .map_err(D::Error::custom)
    }
}

/// `sequence`: steps in order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SequenceStep {
    /// The steps.
    pub steps: Vec<Step>,
}

/// `choice`: the first branch whose `if` holds runs; otherwise `otherwise` (possibly nothing).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ChoiceStep {
    /// The branches, tried in order.
    pub when: Vec<Branch>,
    /// Steps run when no branch holds.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub otherwise: Vec<Step>,
}

/// One branch of a `choice`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Branch {
    /// A CEL predicate.
    #[serde(rename = "if")]
    pub if_: String,
    /// The steps run when it holds.
    pub steps: Vec<Step>,
}

/// `try`: run `steps`; if one fails, record the error in `run.error` and run `catch`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TryStep {
    /// The protected steps.
    pub steps: Vec<Step>,
    /// The steps run on failure; when they complete, the `try` completes.
    pub catch: Vec<Step>,
}

/// `fail`: fail with a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FailStep {
    /// What went wrong, for people.
    pub message: String,
    /// The error kind recorded (default `failed`), visible to `catch` as `run.error.kind`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
}

/// `set`: set run variable `name` (read as `vars.<name>`) to the value of `value`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SetStep {
    /// The variable, an identifier.
    pub name: String,
    /// A CEL expression.
    pub value: String,
}

/// `emit`: an event on the run's event stream (and to notification sinks).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EmitStep {
    /// The event type (`rollout.wave-completed`).
    #[serde(rename = "type")]
    pub type_: String,
    /// A message for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// A CEL expression producing the event's data.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub data: Option<String>,
}

// ---------------------------------------------------------------------------------------------
// Step paths

/// Which list of steps a path segment indexes, named after the field that holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum ListSel {
    /// `spec.steps`.
    Spec,
    /// `sequence.steps`.
    Sequence,
    /// `try.steps`.
    Try,
    /// `try.catch`.
    Catch,
    /// `fanout.steps`.
    Fanout,
    /// `choice.when[k].steps`.
    When(u32),
    /// `choice.otherwise`.
    Otherwise,
}

/// The address of a step in its definition: the lists and indices leading to it. Displayed and
/// serialized as the definition path (`spec.steps[2].fanout.steps[0]`), which is also the path
/// validation errors name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct StepPath(Vec<(ListSel, u32)>);

impl StepPath {
    /// The path of `spec.steps[i]`.
    pub fn root(i: usize) -> Self {
        StepPath(vec![(ListSel::Spec, i as u32)])
    }

    /// The path of the `i`-th step of list `sel` of this step.
    pub fn child(&self, sel: ListSel, i: usize) -> Self {
        let mut v = self.0.clone();
        v.push((sel, i as u32));
        StepPath(v)
    }

    /// The path of the next step in the same list.
    pub fn next_sibling(&self) -> Self {
        let mut v = self.0.clone();
        if let Some(last) = v.last_mut() {
            last.1 += 1;
        }
        StepPath(v)
    }

    /// The enclosing step, if any.
    pub fn parent(&self) -> Option<StepPath> {
        (self.0.len() > 1).then(|| StepPath(self.0[..self.0.len() - 1].to_vec()))
    }

    /// The list this step belongs to and its index there.
    pub fn last(&self) -> Option<(ListSel, usize)> {
        self.0.last().map(|(s, i)| (*s, *i as usize))
    }

    /// Whether `self` is `other` or inside it.
    pub fn starts_with(&self, other: &StepPath) -> bool {
        self.0.starts_with(&other.0)
    }

    /// The number of segments.
    pub fn depth(&self) -> usize {
        self.0.len()
    }

    /// Parses the display form.
    ///
    /// # Errors
    /// A message when the string is not a step path.
    pub fn parse(s: &str) -> Result<Self, String> {
        let bad = || format!("not a step path: {s:?}");
        let mut rest = s.strip_prefix("spec.steps[").ok_or_else(bad)?;
        let mut segs = Vec::new();
        let mut sel = ListSel::Spec;
        loop {
            let (num, after) = rest.split_once(']').ok_or_else(bad)?;
            let i: u32 = num.parse().map_err(|_| bad())?;
            segs.push((sel, i));
            if after.is_empty() {
                break;
            }
            let prefixes: [(&str, ListSel); 5] = [
                (".sequence.steps[", ListSel::Sequence),
                (".try.steps[", ListSel::Try),
                (".try.catch[", ListSel::Catch),
                (".fanout.steps[", ListSel::Fanout),
                (".choice.otherwise[", ListSel::Otherwise),
            ];
            if let Some((p, s2)) = prefixes.iter().find(|(p, _)| after.starts_with(p)) {
                sel = *s2;
                rest = &after[p.len()..];
            } else if let Some(w) = after.strip_prefix(".choice.when[") {
                let (k, after2) = w.split_once(']').ok_or_else(bad)?;
                let k: u32 = k.parse().map_err(|_| bad())?;
                sel = ListSel::When(k);
                rest = after2.strip_prefix(".steps[").ok_or_else(bad)?;
            } else {
                return Err(bad());
            }
        }
        Ok(StepPath(segs))
    }
}

impl fmt::Display for StepPath {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (sel, i) in &self.0 {
            match sel {
                ListSel::Spec => write!(f, "spec.steps[{i}]")?,
                ListSel::Sequence => write!(f, ".sequence.steps[{i}]")?,
                ListSel::Try => write!(f, ".try.steps[{i}]")?,
                ListSel::Catch => write!(f, ".try.catch[{i}]")?,
                ListSel::Fanout => write!(f, ".fanout.steps[{i}]")?,
                ListSel::When(k) => write!(f, ".choice.when[{k}].steps[{i}]")?,
                ListSel::Otherwise => write!(f, ".choice.otherwise[{i}]")?,
            }
        }
        Ok(())
    }
}

impl Serialize for StepPath {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for StepPath {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = String::deserialize(d)?;
        StepPath::parse(&s).map_err(D::Error::custom)
    }
}

impl Step {
    /// The list `sel` of this step, if it has one.
    pub fn list(&self, sel: ListSel) -> Option<&[Step]> {
        match (&self.kind, sel) {
            (StepKind::Sequence(s), ListSel::Sequence) => Some(&s.steps),
            (StepKind::Try(t), ListSel::Try) => Some(&t.steps),
            (StepKind::Try(t), ListSel::Catch) => Some(&t.catch),
            (StepKind::Fanout(f), ListSel::Fanout) => Some(&f.steps),
            (StepKind::Choice(c), ListSel::When(k)) => c.when.get(k as usize).map(|b| &b.steps[..]),
            (StepKind::Choice(c), ListSel::Otherwise) => Some(&c.otherwise),
            _ => None,
        }
    }
}

impl Definition {
    /// The step at `path`, if it exists.
    pub fn step(&self, path: &StepPath) -> Option<&Step> {
        let mut list: &[Step] = &self.spec.steps;
        let mut found: Option<&Step> = None;
        for (n, (sel, i)) in path.0.iter().enumerate() {
            if n > 0 {
                list = found?.list(*sel)?;
            } else if *sel != ListSel::Spec {
                return None;
            }
            found = Some(list.get(*i as usize)?);
        }
        found
    }

    /// The list a path's step belongs to (`spec.steps`, or a list of its parent).
    pub fn list_of(&self, path: &StepPath) -> Option<&[Step]> {
        match path.parent() {
            None => Some(&self.spec.steps),
            Some(p) => self.step(&p)?.list(path.last()?.0),
        }
    }

    /// `name@version`.
    pub fn reference(&self) -> String {
        format!("{}@{}", self.metadata.name, self.metadata.version)
    }

    /// A digest of the definition's canonical JSON form (`sha256:<hex>`), by which runs pin it.
    pub fn digest(&self) -> String {
        // Serializing plain data types to JSON cannot fail.
        let bytes = serde_json::to_vec(self).unwrap_or_default();
        let hash = Sha256::digest(&bytes);
        let mut out = String::with_capacity(7 + 64);
        out.push_str("sha256:");
        for b in hash {
            out.push_str(&format!("{b:02x}"));
        }
        out
    }

    /// The definition as JSON (for the schema test and the API).
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Parses a definition document (YAML, or JSON when it starts with `{`) without the static
/// checks. Most callers want [`parse_definition`].
///
/// # Errors
/// `ValidationFailed` with one field error naming the path of the offending value
/// (`spec.steps[2].fanout.steps[0].wait`) when the document is too large, not UTF-8, not YAML or
/// JSON, or does not have the definition's shape.
pub fn parse_unchecked(bytes: &[u8]) -> Result<Definition, DomainError> {
    let fail =
        |field: String, msg: String| DomainError::validation(vec![FieldError::new(field, msg)]);
    if bytes.len() > MAX_DEFINITION_BYTES {
        return Err(fail(
            String::new(),
            format!(
                "definition is {} bytes, at most {MAX_DEFINITION_BYTES}",
                bytes.len()
            ),
        ));
    }
    let text = std::str::from_utf8(bytes)
        .map_err(|e| fail(String::new(), format!("definition is not UTF-8: {e}")))?;
    let value: Value = if text.trim_start().starts_with('{') {
        serde_json::from_str(text).map_err(|e| fail(String::new(), format!("invalid JSON: {e}")))?
    } else {
        // YAML 1.2 booleans only: `n`, `no`, `on` stay strings (a step id `n` is not `false`).
        let mut options = serde_saphyr::Options::default();
        options.strict_booleans = true;
        serde_saphyr::from_str_with_options(text, options).map_err(|e| {
            fail(
                String::new(),
                format!("invalid YAML: {}", first_line(&e.to_string())),
            )
        })?
    };
    from_value(value)
}

/// Builds a definition from a JSON value, with the same errors as [`parse_unchecked`].
///
/// # Errors
/// `ValidationFailed` naming the path of the first offending value.
pub fn from_value(value: Value) -> Result<Definition, DomainError> {
    serde_path_to_error::deserialize::<_, Definition>(value).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        DomainError::validation(vec![FieldError::new(field, e.inner().to_string())])
    })
}

fn first_line(s: &str) -> String {
    s.lines().next().unwrap_or_default().to_owned()
}

/// Parses a definition document and runs every static check (see [`crate::validate`]).
///
/// # Errors
/// `ValidationFailed`: for a document that does not parse, one error at the offending path;
/// otherwise every static problem at once, each with its step path.
pub fn parse_definition(bytes: &[u8]) -> Result<Definition, DomainError> {
    let def = parse_unchecked(bytes)?;
    crate::validate::check(&def)?;
    Ok(def)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn step_paths_round_trip() {
        let p = StepPath::root(2)
            .child(ListSel::Fanout, 0)
            .child(ListSel::When(1), 3)
            .child(ListSel::Catch, 0)
            .child(ListSel::Otherwise, 4)
            .child(ListSel::Sequence, 1)
            .child(ListSel::Try, 2);
        let s = p.to_string();
        assert_eq!(
            s,
            "spec.steps[2].fanout.steps[0].choice.when[1].steps[3].try.catch[0]\
             .choice.otherwise[4].sequence.steps[1].try.steps[2]"
        );
        assert_eq!(StepPath::parse(&s), Ok(p));
        for bad in [
            "",
            "steps[0]",
            "spec.steps[x]",
            "spec.steps[0].foo[1]",
            "spec.steps[0",
        ] {
            assert!(StepPath::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn limits_parse() {
        let ok = [
            (serde_json::json!(3), Limit::Count(3)),
            (serde_json::json!("25%"), Limit::Percent(25)),
            (
                serde_json::json!({"expr": "inputs.x"}),
                Limit::Expr("inputs.x".into()),
            ),
        ];
        for (v, want) in ok {
            let got: Limit = serde_json::from_value(v.clone()).unwrap();
            assert_eq!(got, want);
            assert_eq!(serde_json::to_value(&got).unwrap(), v);
        }
        for bad in [
            serde_json::json!(-1),
            serde_json::json!("101%"),
            serde_json::json!("x"),
            serde_json::json!(null),
            serde_json::json!(1.5),
            serde_json::json!({"e": 1}),
        ] {
            assert!(
                serde_json::from_value::<Limit>(bad.clone()).is_err(),
                "{bad}"
            );
        }
        assert_eq!(Limit::Percent(25).resolve(10, true), Some(3));
        assert_eq!(Limit::Percent(25).resolve(10, false), Some(2));
        assert_eq!(Limit::Percent(1).resolve(3, true), Some(1));
        assert_eq!(Limit::Percent(0).resolve(0, true), Some(0));
    }
}
