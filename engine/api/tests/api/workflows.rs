//! Workflow definitions and runs through the API, with the runtime driven by a manual clock.

use crate::support::{Api, assert_problem};
use axum::http::{Method, StatusCode};
use fleetplane_api::effects::ApiEffects;
use fleetplane_api::workflows::attach;
use fleetplane_runtime::{ManualClock, Runtime, RuntimeConfig};
use serde_json::{Value, json};
use std::sync::Arc;

const APPROVAL: &str = include_str!("../../../../tests/workflows/approval.yaml");

struct Engine {
    api: Api,
    runtime: Runtime,
    clock: Arc<ManualClock>,
}

async fn engine() -> Engine {
    let api = Api::new().await;
    let clock = Arc::new(ManualClock::new("2026-01-01T00:00:00Z".parse().unwrap()));
    let runtime = Runtime::open(
        api.state.store.clone(),
        clock.clone(),
        Arc::new(ApiEffects::new(api.state.clone())),
        RuntimeConfig::default(),
    )
    .unwrap();
    attach(&api.state, runtime.client()).await.unwrap();
    Engine {
        api,
        runtime,
        clock,
    }
}

/// PUT with a raw (YAML) body.
async fn put_yaml(api: &Api, path: &str, yaml: &str) -> crate::support::Reply {
    use axum::body::Body;
    use http_body_util::BodyExt;
    use tower::ServiceExt;
    let req = axum::http::Request::builder()
        .method(Method::PUT)
        .uri(path)
        .header("authorization", format!("Bearer {}", crate::support::ADMIN))
        .header("content-type", "application/yaml")
        .body(Body::from(yaml.to_owned()))
        .unwrap();
    let res = fleetplane_api::router(api.state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = res.status();
    let headers = res.headers().clone();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    crate::support::Reply {
        status,
        headers,
        body: serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    }
}

const DEMO: &str = "/v1/workflows/approval-demo/versions/1.0.0";

#[tokio::test]
async fn submission_is_validated_with_step_paths() {
    let e = engine().await;
    let bad = APPROVAL.replace("duration: 1m", "duration: 1 minute");
    let r = put_yaml(&e.api, DEMO, &bad).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert!(
        r.body.to_string().contains("spec.steps[1].wait.duration"),
        "{}",
        r.body
    );
    // Every static problem at once, with its path.
    let bad = APPROVAL.replace("value: inputs.note", "value: vars.nope");
    let r = put_yaml(&e.api, DEMO, &bad).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert!(r.body.to_string().contains("spec.steps[0]"), "{}", r.body);
    // Path and document must agree.
    let r = put_yaml(
        &e.api,
        "/v1/workflows/approval-demo/versions/2.0.0",
        APPROVAL,
    )
    .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert!(
        r.body.to_string().contains("metadata.version"),
        "{}",
        r.body
    );
}

#[tokio::test]
async fn builtins_are_listed_and_read_only() {
    let e = engine().await;
    let r = e.api.admin(Method::GET, "/v1/workflows", None).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    let items = r.body["items"].as_array().unwrap();
    let deploy = items.iter().find(|i| i["name"] == "deploy").unwrap();
    assert_eq!(deploy["readOnly"], true);
    assert!(deploy["digest"].as_str().unwrap().starts_with("sha256:"));
    let version = deploy["version"].as_str().unwrap().to_owned();
    let path = format!("/v1/workflows/deploy/versions/{version}");
    let r = e.api.admin(Method::GET, &path, None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["definition"]["metadata"]["name"], "deploy");
    let r = put_yaml(&e.api, &path, fleetplane_workflow::builtin::DEPLOY).await;
    assert_problem(&r, StatusCode::CONFLICT, "Conflict");
    let r = e.api.admin(Method::GET, "/v1/workflows:schema", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body["$schema"].is_string(), "{}", r.body);
}

async fn run(e: &Engine, id: &str) -> Value {
    let r = e
        .api
        .admin(
            Method::GET,
            &format!("/v1/projects/default/runs/{id}"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    r.body
}

async fn signal(e: &Engine, id: &str, s: &str, body: Option<Value>) -> crate::support::Reply {
    e.api
        .admin(
            Method::POST,
            &format!("/v1/projects/default/runs/{id}:{s}"),
            body,
        )
        .await
}

#[tokio::test]
async fn a_run_is_driven_by_signals() {
    let mut e = engine().await;
    let r = put_yaml(&e.api, DEMO, APPROVAL).await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let r = e
        .api
        .admin(
            Method::POST,
            "/v1/projects/default/runs",
            Some(json!({"workflow": "approval-demo@1.0.0", "inputs": {"note": "hi"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();

    // The version is now immutable.
    let changed = APPROVAL.replace("Go ahead?", "Really?");
    let r = put_yaml(&e.api, DEMO, &changed).await;
    assert_problem(&r, StatusCode::CONFLICT, "WorkflowVersionInUse");
    // Re-submitting the same document is harmless.
    let r = put_yaml(&e.api, DEMO, APPROVAL).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);

    let idle = e.runtime.run_until_idle().await.unwrap();
    let v = run(&e, &id).await;
    assert_eq!(v["status"], "Waiting", "{v}");
    assert_eq!(v["waitingOn"], "timer");
    assert_eq!(v["vars"]["greeting"], "hi");
    e.clock.set(idle.next_timer.unwrap());
    e.runtime.run_until_idle().await.unwrap();
    assert_eq!(run(&e, &id).await["waitingOn"], "signal");

    // Pause, list the paused runs, resume.
    assert_eq!(signal(&e, &id, "pause", None).await.status, StatusCode::OK);
    e.runtime.run_until_idle().await.unwrap();
    assert_eq!(run(&e, &id).await["status"], "Paused");
    let r = e
        .api
        .admin(Method::GET, "/v1/projects/default/runs?status=Paused", None)
        .await;
    assert_eq!(r.body["items"][0]["id"], id.as_str(), "{}", r.body);
    let r = e
        .api
        .admin(Method::GET, "/v1/runs?status=Paused", None)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1, "{}", r.body);
    let r = signal(&e, &id, "resume", Some(json!({"reason": "ok"}))).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    e.runtime.run_until_idle().await.unwrap();
    assert_eq!(run(&e, &id).await["status"], "Waiting");

    // An approval needs its name; an unknown signal is no route.
    let r = signal(&e, &id, "approve", Some(json!({}))).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    let r = signal(&e, &id, "explode", None).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "NotFound");
    let r = signal(
        &e,
        &id,
        "approve",
        Some(json!({"name": "go", "reason": "lgtm"})),
    )
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    e.runtime.run_until_idle().await.unwrap();
    let v = run(&e, &id).await;
    assert_eq!(v["status"], "Succeeded", "{v}");
    assert_eq!(v["workflow"], "approval-demo@1.0.0");

    // Signals are audited with who and why.
    let r = e
        .api
        .admin(Method::GET, "/v1/audit-events?action=run.approve", None)
        .await;
    let entry = &r.body["items"][0];
    assert_eq!(entry["actor"], "user:admin", "{}", r.body);
    assert_eq!(entry["after"]["reason"], "lgtm");

    // Journal paging: pages follow each other without gaps.
    let mut after = 0;
    let mut seqs = Vec::new();
    loop {
        let r = e
            .api
            .admin(
                Method::GET,
                &format!("/v1/projects/default/runs/{id}/journal?after={after}&limit=3"),
                None,
            )
            .await;
        assert_eq!(r.status, StatusCode::OK, "{}", r.body);
        for it in r.body["items"].as_array().unwrap() {
            seqs.push(it["seq"].as_u64().unwrap());
        }
        match r.body["next"].as_u64() {
            Some(n) => after = n,
            None => break,
        }
    }
    assert!(seqs.len() > 3, "{seqs:?}");
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());

    // A run is not visible under another project, and unknown runs are 404.
    let r = e
        .api
        .admin(Method::GET, &format!("/v1/projects/other/runs/{id}"), None)
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "NotFound");
    let r = signal(&e, "nope", "cancel", None).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "NotFound");
}

#[tokio::test]
async fn runs_need_permissions() {
    let e = engine().await;
    let key = e
        .api
        .user_with_role("viewer", "project-viewer", Some("default"))
        .await;
    let r = e
        .api
        .call(
            Method::POST,
            "/v1/projects/default/runs",
            Some(&key),
            Some(json!({"workflow": "approval-demo@1.0.0"})),
            &[],
        )
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "Forbidden");
    let r = e
        .api
        .call(
            Method::GET,
            "/v1/projects/default/runs",
            Some(&key),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
}
