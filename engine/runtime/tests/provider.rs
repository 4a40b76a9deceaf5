//! Provider calls through a `ProviderRuntime` (a scripted host standing in for the WebAssembly
//! host): operation mapping, answers, and a run driven end to end.

mod common;

use common::*;
use fleetplane_runtime::{
    CallResolver, ManualClock, NewRun, ProviderCall, ProviderExecutor, Runtime, RuntimeConfig,
    provider_answer,
};
use fleetplane_wasm_host::{
    AccountContext, AccountInfo, CallError, ClusterRef, ClusterSpec, OpResult, Operation,
    OperationKind, OperationState, ProviderError, ProviderInfo, ProviderOp, ProviderRuntime,
};
use fleetplane_workflow::definition::ErrorKind;
use fleetplane_workflow::run::StepError;
use fleetplane_workflow::{Duration, Event, RunStatus, parse_definition};
use futures::future::BoxFuture;
use serde_json::json;
use std::sync::{Arc, Mutex};

fn cref() -> ClusterRef {
    ClusterRef {
        id: "id-1".into(),
        name: "prod".into(),
        region: "eu".into(),
    }
}

fn op(state: OperationState, error: Option<ProviderError>) -> Operation {
    Operation {
        id: "op-7".into(),
        kind: OperationKind::Create,
        cluster: cref(),
        state,
        progress: 50,
        message: "building".into(),
        error,
        poll_after_ms: 1000,
    }
}

#[test]
fn results_map_to_answers() {
    let running = provider_answer(
        3,
        Ok(OpResult::Operation(op(OperationState::Running, None))),
    );
    assert_eq!(
        running,
        Event::StepCompleted {
            call: 3,
            result: serde_json::json!({"progress": 50, "message": "building", "pollAfterMs": 1000}),
            operation: Some("op-7".into())
        }
    );
    let Event::StepCompleted {
        result, operation, ..
    } = provider_answer(
        3,
        Ok(OpResult::Operation(op(OperationState::Succeeded, None))),
    )
    else {
        panic!("not completed")
    };
    assert_eq!(operation, None);
    assert_eq!(result["state"], "Succeeded");
    assert_eq!(result["pollAfterMs"], 1000);

    let throttled = ProviderError::Throttled {
        retry_after_ms: 2000,
        message: "slow down".into(),
    };
    let failed = provider_answer(
        4,
        Ok(OpResult::Operation(op(
            OperationState::Failed,
            Some(throttled.clone()),
        ))),
    );
    let Event::StepFailed {
        error,
        retryable,
        retry_after,
        ..
    } = failed
    else {
        panic!("not failed")
    };
    assert_eq!(error.kind, ErrorKind::Throttled);
    assert!(retryable);
    assert_eq!(retry_after, Some(Duration::from_millis(2000)));

    let cases = [
        (
            CallError::Provider {
                provider: "sim".into(),
                error: ProviderError::Conflict {
                    message: "busy".into(),
                },
            },
            ErrorKind::Conflict,
            false,
        ),
        (
            CallError::Host {
                provider: "sim".into(),
                message: "disk".into(),
            },
            ErrorKind::Transient,
            true,
        ),
        (
            CallError::UnknownProvider("nope".into()),
            ErrorKind::Permanent,
            false,
        ),
    ];
    for (err, kind, retry) in cases {
        let Event::StepFailed {
            error, retryable, ..
        } = provider_answer(5, Err(err))
        else {
            panic!("not failed")
        };
        assert_eq!((error.kind, retryable), (kind, retry));
    }
    let Event::StepCompleted { result, .. } = provider_answer(
        6,
        Ok(OpResult::Account(AccountInfo {
            identity: "me".into(),
            regions: vec!["eu".into()],
        })),
    ) else {
        panic!("not completed")
    };
    assert_eq!(result, json!({"identity": "me", "regions": ["eu"]}));
}

/// A host whose create returns a running operation, polled to success; records every op.
struct Scripted(Mutex<Vec<String>>);

impl ProviderRuntime for Scripted {
    fn call<'a>(
        &'a self,
        provider: &'a str,
        account: &'a AccountContext,
        op_: ProviderOp,
    ) -> BoxFuture<'a, Result<OpResult, CallError>> {
        let line = match &op_ {
            ProviderOp::Create { key, spec } => format!("create {key} {}", spec.cluster.name),
            ProviderOp::Poll { operation_id } => format!("poll {operation_id}"),
            other => other.name().to_owned(),
        };
        self.0
            .lock()
            .unwrap()
            .push(format!("{provider}/{}: {line}", account.name));
        let polls = self.0.lock().unwrap().len();
        let result = match op_ {
            ProviderOp::ValidateAccount => Ok(OpResult::Account(AccountInfo {
                identity: "me".into(),
                regions: vec![],
            })),
            ProviderOp::Create { .. } => Ok(OpResult::Operation(op(OperationState::Running, None))),
            ProviderOp::Poll { .. } if polls < 4 => {
                Ok(OpResult::Operation(op(OperationState::Running, None)))
            }
            ProviderOp::Poll { .. } => Ok(OpResult::Operation(op(OperationState::Succeeded, None))),
            _ => Err(CallError::Provider {
                provider: provider.into(),
                error: ProviderError::Permanent {
                    message: "unexpected".into(),
                },
            }),
        };
        Box::pin(async move { result })
    }

    fn providers(&self) -> Vec<ProviderInfo> {
        Vec::new()
    }

    fn provider(&self, _name: &str) -> Option<ProviderInfo> {
        None
    }
}

struct Resolver;

impl CallResolver for Resolver {
    fn resolve(
        &self,
        _run: &str,
        cluster: Option<&str>,
        _operation: fleetplane_workflow::definition::Operation,
    ) -> BoxFuture<'static, Result<ProviderCall, StepError>> {
        let cluster = cluster.map(|_| cref());
        Box::pin(async move {
            Ok(ProviderCall {
                provider: "simulator".into(),
                account: AccountContext::new("acct", json!({})),
                spec: cluster.clone().map(|c| ClusterSpec {
                    cluster: c,
                    cloud_type: "sim".into(),
                    labels: vec![],
                    node_pools: vec![],
                    os_image: "os".into(),
                    kubernetes_version: "1.33".into(),
                    layers: vec![],
                    revision: "r1".into(),
                }),
                cluster,
                replace_machines: false,
            })
        })
    }
}

const DEPLOY: &str = r#"kind: Workflow
metadata: {name: mini-deploy, version: 1.0.0}
spec:
  purpose: deploy
  steps:
    - provider: {operation: validate-account}
    - provider: {operation: create-cluster, poll: {interval: 10s, timeout: 1h}}
"#;

#[tokio::test(flavor = "current_thread")]
async fn a_deploy_polls_its_operation_through_the_host() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Arc::new(ManualClock::new(t0()));
    let host = Arc::new(Scripted(Mutex::new(Vec::new())));
    let exec = ProviderExecutor::new(host.clone(), Arc::new(Resolver), Arc::new(Fake::new(0)));
    let mut rt = Runtime::open(
        open_store(&dir.path().join("f.redb")),
        clock.clone(),
        Arc::new(exec),
        RuntimeConfig::default(),
    )
    .unwrap();
    let digest = rt.register(parse_definition(DEPLOY.as_bytes()).unwrap());
    rt.start_run(NewRun {
        id: "d1".into(),
        definition: digest,
        inputs: json!({}),
        subject: Some(cluster("prod")),
        project: Some("default".into()),
        cluster: Some("default/prod".into()),
    })
    .unwrap();
    drive(&mut rt, &clock, 20).await;
    let s = state(&rt, "d1");
    assert_eq!(s.status, RunStatus::Succeeded, "{:?}", s.error);
    let calls = host.0.lock().unwrap().clone();
    assert_eq!(calls.len(), 4, "{calls:?}");
    assert_eq!(calls[0], "simulator/acct: validate-account");
    assert!(calls[1].starts_with("simulator/acct: create "), "{calls:?}");
    assert!(calls[2..].iter().all(|c| c == "simulator/acct: poll op-7"));
    journal(&rt, "d1");
    assert_eq!(
        rt.store()
            .read()
            .unwrap()
            .cluster_lock("default/prod")
            .unwrap(),
        None
    );
}
