//! Provider calls through the WebAssembly host (`fleetplane_wasm_host::ProviderRuntime`, with
//! the simulator's SimCloud by default): maps `CallProvider` effects to WIT operations and their
//! results back to `StepCompleted` / `StepFailed` (docs/workflows.md, "Provider calls").

use crate::executor::EffectExecutor;
use fleetplane_wasm_host::{
    AccountContext, CallError, ClusterRef, ClusterSpec, OpResult, OperationState, ProviderOp,
    ProviderRuntime,
};
use fleetplane_workflow::definition::{ErrorKind, Operation};
use fleetplane_workflow::run::{StepError, Token};
use fleetplane_workflow::{Duration, Effect, Event};
use futures::future::BoxFuture;
use serde_json::Value;
use std::sync::Arc;

/// Everything a provider call needs besides the effect: which provider, the cloud account (with
/// its secrets, for this call only) and the cluster.
#[derive(Debug, Clone)]
pub struct ProviderCall {
    /// The installed provider serving the cluster's cloud account.
    pub provider: String,
    /// The account's configuration and secrets.
    pub account: AccountContext,
    /// The cluster (every operation but `validate-account`).
    pub cluster: Option<ClusterRef>,
    /// The desired cluster from the run's last render (`create-cluster`, `update-cluster`).
    pub spec: Option<ClusterSpec>,
    /// Whether the update replaces machines (from the render).
    pub replace_machines: bool,
}

/// Looks up what a provider call needs (the domain side: clusters, cloud accounts, renders).
pub trait CallResolver: Send + Sync + 'static {
    /// What run `run`'s call of `operation` about `cluster` needs; a failure is the step's
    /// error (`not-found` for a missing cluster, `invalid-config` for a missing render).
    fn resolve(
        &self,
        run: &str,
        cluster: Option<&str>,
        operation: Operation,
    ) -> BoxFuture<'static, Result<ProviderCall, StepError>>;
}

/// The production [`EffectExecutor`]: provider calls go to the WebAssembly host; every other
/// external effect (render, observe, windows, items, emit) to `other`.
pub struct ProviderExecutor {
    host: Arc<dyn ProviderRuntime>,
    resolver: Arc<dyn CallResolver>,
    other: Arc<dyn EffectExecutor>,
}

impl ProviderExecutor {
    /// An executor calling `host`, resolving calls with `resolver`, delegating the rest.
    pub fn new(
        host: Arc<dyn ProviderRuntime>,
        resolver: Arc<dyn CallResolver>,
        other: Arc<dyn EffectExecutor>,
    ) -> Self {
        Self {
            host,
            resolver,
            other,
        }
    }
}

fn invalid(message: impl Into<String>) -> StepError {
    StepError {
        kind: ErrorKind::InvalidConfig,
        message: message.into(),
    }
}

/// The WIT operation for a `CallProvider` effect.
///
/// # Errors
/// A [`StepError`] (`invalid-config`) when the call lacks what the operation needs (a cluster,
/// a rendered spec, the operation id to poll).
pub fn provider_op(
    operation: Operation,
    idempotency_key: &str,
    operation_id: Option<&str>,
    call: &ProviderCall,
) -> Result<ProviderOp, StepError> {
    let key = idempotency_key.to_owned();
    let cluster = || {
        call.cluster
            .clone()
            .ok_or_else(|| invalid(format!("{} needs a cluster", operation.as_str())))
    };
    let spec = || {
        call.spec
            .clone()
            .ok_or_else(|| invalid(format!("{} needs a rendered stack", operation.as_str())))
    };
    Ok(match operation {
        Operation::ValidateAccount => ProviderOp::ValidateAccount,
        Operation::CreateCluster => ProviderOp::Create { key, spec: spec()? },
        Operation::UpdateCluster => ProviderOp::Update {
            key,
            spec: spec()?,
            replace_machines: call.replace_machines,
        },
        Operation::DeleteCluster => ProviderOp::Delete {
            key,
            cluster: cluster()?,
        },
        Operation::DescribeCluster => ProviderOp::Describe {
            cluster: cluster()?,
        },
        Operation::PollOperation => ProviderOp::Poll {
            operation_id: operation_id
                .ok_or_else(|| invalid("poll-operation needs an operation id"))?
                .to_owned(),
        },
    })
}

/// Enum cases as the API spells them (`running` → `Running`) in the fields definitions compare.
fn api_spelling(v: &mut Value) {
    match v {
        Value::Object(m) => {
            for (k, v) in m.iter_mut() {
                if matches!(k.as_str(), "phase" | "health" | "state" | "status")
                    && let Value::String(s) = v
                {
                    let mut c = s.chars();
                    if let Some(first) = c.next() {
                        *s = first.to_uppercase().chain(c).collect();
                    }
                } else {
                    api_spelling(v);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(api_spelling),
        _ => {}
    }
}

fn kind_of(e: &CallError) -> ErrorKind {
    use fleetplane_wasm_host::ProviderError as P;
    match e.provider_error() {
        Some(P::InvalidConfig { .. }) => ErrorKind::InvalidConfig,
        Some(P::NotFound { .. }) => ErrorKind::NotFound,
        Some(P::Conflict { .. }) => ErrorKind::Conflict,
        Some(P::Throttled { .. }) => ErrorKind::Throttled,
        Some(P::Transient { .. }) => ErrorKind::Transient,
        Some(P::Permanent { .. }) => ErrorKind::Permanent,
        None if e.is_retryable() => ErrorKind::Transient,
        None => ErrorKind::Permanent,
    }
}

/// The event answering call `call` with the host's result: a running operation answers
/// `StepCompleted {operation}`, a succeeded one or any other result `StepCompleted {result}`
/// (camelCase fields, API enum spellings); a failed operation or an error `StepFailed`,
/// retryable for throttled and transient errors (and host deadlines), with `retryAfter` from
/// `throttled`.
pub fn provider_answer(call: Token, result: Result<OpResult, CallError>) -> Event {
    let failed = |kind: ErrorKind, message: String, retryable: bool, after: Option<Duration>| {
        Event::StepFailed {
            call,
            error: StepError { kind, message },
            retryable,
            retry_after: after,
        }
    };
    match result {
        Ok(OpResult::Operation(op)) => match op.state {
            // In progress: the operation, and the provider's hint of when to ask again.
            OperationState::Running => Event::StepCompleted {
                call,
                result: serde_json::json!({
                    "progress": op.progress,
                    "message": op.message,
                    "pollAfterMs": op.poll_after_ms,
                }),
                operation: Some(op.id),
            },
            OperationState::Succeeded => {
                let mut result = serde_json::to_value(&op).unwrap_or(Value::Null);
                api_spelling(&mut result);
                Event::StepCompleted {
                    call,
                    result,
                    operation: None,
                }
            }
            OperationState::Failed => match op.error {
                Some(e) => {
                    let err = CallError::Provider {
                        provider: String::new(),
                        error: e.clone(),
                    };
                    failed(
                        kind_of(&err),
                        e.to_string(),
                        e.is_retryable(),
                        e.retry_after().map(millis_duration),
                    )
                }
                None => failed(
                    ErrorKind::Permanent,
                    format!("operation {} failed: {}", op.id, op.message),
                    false,
                    None,
                ),
            },
        },
        Ok(other) => {
            let mut result = match other {
                OpResult::Account(a) => serde_json::to_value(a),
                OpResult::State(s) => serde_json::to_value(s),
                OpResult::Operation(o) => serde_json::to_value(o),
            }
            .unwrap_or(Value::Null);
            api_spelling(&mut result);
            Event::StepCompleted {
                call,
                result,
                operation: None,
            }
        }
        Err(e) => failed(
            kind_of(&e),
            e.to_string(),
            e.is_retryable(),
            e.retry_after().map(millis_duration),
        ),
    }
}

fn millis_duration(d: std::time::Duration) -> Duration {
    Duration::from_millis(u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

impl EffectExecutor for ProviderExecutor {
    fn perform(&self, run: &str, effect: Effect) -> BoxFuture<'static, Option<Event>> {
        let Effect::CallProvider {
            call,
            operation,
            operation_id,
            cluster,
            idempotency_key,
            ..
        } = effect
        else {
            return self.other.perform(run, effect);
        };
        let host = self.host.clone();
        let resolving = self.resolver.resolve(run, cluster.as_deref(), operation);
        Box::pin(async move {
            let target = match resolving.await {
                Ok(t) => t,
                Err(error) => {
                    return Some(Event::StepFailed {
                        call,
                        error,
                        retryable: false,
                        retry_after: None,
                    });
                }
            };
            let op = match provider_op(
                operation,
                &idempotency_key,
                operation_id.as_deref(),
                &target,
            ) {
                Ok(op) => op,
                Err(error) => {
                    return Some(Event::StepFailed {
                        call,
                        error,
                        retryable: false,
                        retry_after: None,
                    });
                }
            };
            let result = host.call(&target.provider, &target.account, op).await;
            Some(provider_answer(call, result))
        })
    }
}
