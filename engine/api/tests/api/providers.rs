//! Providers and cloud accounts: install by upload (JSON and multipart), digests, health,
//! account validation with field paths, write-only sealed secrets, delete rules.

use crate::support::{ADMIN, Api, assert_problem};
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use base64::Engine;
use fleetplane_api::cloud_accounts::{self, CloudAccount, SecretCipher};
use fleetplane_api::providers::ProviderRegistry;
use fleetplane_store::tables::kinds;
use fleetplane_store::{ObjectKey, Precondition, Scope, WriteExt};
use fleetplane_wasm_host::{Digest, HostConfig, SimCloud, SystemClock, WasmHost, components};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

struct Env {
    api: Api,
    dir: tempfile::TempDir,
    registry: Arc<ProviderRegistry>,
}

async fn env() -> Env {
    let api = Api::new().await;
    let dir = tempfile::tempdir().unwrap();
    let sim = SimCloud::in_memory(Arc::new(SystemClock)).unwrap();
    let host = WasmHost::new(HostConfig::default(), Some(Arc::new(sim))).unwrap();
    let registry = Arc::new(
        ProviderRegistry::new(
            host,
            dir.path().join("providers"),
            SecretCipher::from_key([3; 32]),
        )
        .unwrap(),
    );
    registry.install_builtin().await.unwrap();
    assert!(api.state.set_providers(registry.clone()));
    Env { api, dir, registry }
}

fn manifest(name: &str) -> Value {
    let mut m: Value = serde_json::from_str(components::SIMULATOR_MANIFEST).unwrap();
    m["name"] = name.into();
    m["secrets"] = json!(["token"]);
    m
}

fn upload(name: &str, bytes: &[u8], digest: Option<&str>) -> Value {
    let mut body = json!({
        "manifest": manifest(name),
        "component": base64::engine::general_purpose::STANDARD.encode(bytes),
    });
    if let Some(d) = digest {
        body["digest"] = d.into();
    }
    body
}

fn account(provider: &str, config: Value, secrets: Value) -> Value {
    json!({"spec": {"provider": provider, "config": config, "secrets": secrets}})
}

fn fields(body: &Value) -> Vec<String> {
    let mut f: Vec<String> = body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect();
    f.sort();
    f
}

const ACCOUNTS: &str = "/v1/projects/default/cloud-accounts";

#[tokio::test]
async fn the_builtin_simulator_is_listed_healthy_and_cannot_be_removed_or_replaced() {
    let e = env().await;
    let r = e.api.admin(Method::GET, "/v1/providers", None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let sim = &r.body["items"][0];
    assert_eq!(sim["metadata"]["name"], "simulator");
    assert_eq!(sim["spec"]["builtin"], true);
    assert_eq!(sim["spec"]["witVersion"], "0.1.0");
    assert_eq!(sim["spec"]["cloudTypes"], json!(["*"]));
    assert_eq!(
        sim["spec"]["digest"],
        components::simulator_digest().to_string()
    );
    assert_eq!(sim["status"]["health"], "healthy");
    let r = e
        .api
        .admin(Method::DELETE, "/v1/providers/simulator", None)
        .await;
    assert_problem(&r, StatusCode::CONFLICT, "InvalidState");
    let r = e
        .api
        .admin(
            Method::POST,
            "/v1/providers",
            Some(upload("simulator", components::SIMULATOR_WASM, None)),
        )
        .await;
    assert_problem(&r, StatusCode::CONFLICT, "InvalidState");
}

#[tokio::test]
async fn a_component_is_installed_by_digest_and_a_changed_byte_is_refused() {
    let e = env().await;
    let bytes = components::SIMULATOR_WASM;
    let digest = Digest::of(bytes).to_string();
    let mut changed = bytes.to_vec();
    let mid = changed.len() / 2;
    changed[mid] ^= 1;
    let r = e
        .api
        .admin(
            Method::POST,
            "/v1/providers",
            Some(upload("sim2", &changed, Some(&digest))),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(fields(&r.body), ["digest"]);
    assert!(fleetplane_wasm_host::ProviderRuntime::provider(e.registry.host(), "sim2").is_none());

    let r = e
        .api
        .admin(
            Method::POST,
            "/v1/providers",
            Some(upload("sim2", bytes, Some(&digest))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["spec"]["digest"], digest);
    assert_eq!(r.body["status"]["health"], "healthy");
    let file = e
        .dir
        .path()
        .join("providers")
        .join(format!("{}.wasm", Digest::of(bytes).hex()));
    assert_eq!(std::fs::read(&file).unwrap(), bytes);

    let r = e.api.admin(Method::GET, "/v1/providers", None).await;
    let names: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["simulator", "sim2"]);
    let r = e.api.admin(Method::GET, "/v1/providers/sim2", None).await;
    assert_eq!(r.body["status"]["health"], "healthy", "{:?}", r.body);

    // Not a component at all, and an invalid manifest: field paths.
    let r = e
        .api
        .admin(
            Method::POST,
            "/v1/providers",
            Some(upload("junk", b"not wasm", None)),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(fields(&r.body), ["component"]);
    let mut bad = upload("Bad_Name", bytes, None);
    bad["manifest"]["cloudTypes"] = json!(["mars"]);
    let r = e.api.admin(Method::POST, "/v1/providers", Some(bad)).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(fields(&r.body), ["manifest.cloudTypes[0]", "manifest.name"]);
}

#[tokio::test]
async fn a_changed_component_file_is_refused_at_start_and_shown_unhealthy() {
    let e = env().await;
    let bytes = components::SIMULATOR_WASM;
    let r = e
        .api
        .admin(
            Method::POST,
            "/v1/providers",
            Some(upload("sim2", bytes, None)),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let file = e.registry.component_path(&Digest::of(bytes));
    let mut changed = bytes.to_vec();
    changed[100] ^= 0xff;
    std::fs::write(&file, &changed).unwrap();
    e.registry.host().remove("sim2");
    let refused = e.registry.install_recorded(&e.api.state).await.unwrap();
    assert_eq!(refused.len(), 1);
    assert_eq!(refused[0].0, "sim2");
    assert!(refused[0].1.contains("digest"), "{}", refused[0].1);
    let r = e.api.admin(Method::GET, "/v1/providers/sim2", None).await;
    assert_eq!(r.body["status"]["health"], "unhealthy", "{:?}", r.body);
    assert!(
        r.body["status"]["reason"]
            .as_str()
            .unwrap()
            .contains("digest")
    );
    // Restoring the bytes makes it load again.
    std::fs::write(&file, bytes).unwrap();
    assert!(
        e.registry
            .install_recorded(&e.api.state)
            .await
            .unwrap()
            .is_empty()
    );
    let r = e.api.admin(Method::GET, "/v1/providers/sim2", None).await;
    assert_eq!(r.body["status"]["health"], "healthy", "{:?}", r.body);
}

#[tokio::test]
async fn install_by_multipart_upload() {
    let e = env().await;
    let boundary = "XfleetplaneX";
    let mut body = Vec::new();
    let part = |body: &mut Vec<u8>, name: &str, file: bool, data: &[u8]| {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        let filename = if file { "; filename=\"p.wasm\"" } else { "" };
        body.extend_from_slice(
            format!("Content-Disposition: form-data; name=\"{name}\"{filename}\r\n\r\n").as_bytes(),
        );
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    };
    part(
        &mut body,
        "manifest",
        false,
        manifest("multi").to_string().as_bytes(),
    );
    part(&mut body, "component", true, components::SIMULATOR_WASM);
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/providers")
        .header("authorization", format!("Bearer {ADMIN}"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap();
    let res = fleetplane_api::router(e.api.state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, StatusCode::CREATED, "{v}");
    assert_eq!(v["metadata"]["name"], "multi");
}

#[tokio::test]
async fn installing_needs_provider_create() {
    let e = env().await;
    let key = e
        .api
        .user_with_role("vera", "project-admin", Some("default"))
        .await;
    let r = e
        .api
        .call(
            Method::POST,
            "/v1/providers",
            Some(&key),
            Some(upload("sim2", components::SIMULATOR_WASM, None)),
            &[],
        )
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "Forbidden");
}

#[tokio::test]
async fn account_configuration_is_checked_with_field_paths() {
    let e = env().await;
    let r = e
        .api
        .admin(
            Method::PUT,
            &format!("{ACCOUNTS}/bad"),
            Some(json!({"spec": {
                "provider": "simulator",
                "cloudTypes": ["aws", "mars"],
                "config": {"timeScale": "fast", "colour": "red"},
                "secrets": {"token": "********"},
            }})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(
        fields(&r.body),
        [
            "spec.cloudTypes[1]",
            "spec.config",
            "spec.config.timeScale",
            "spec.secrets.token"
        ]
    );
    let r = e
        .api
        .admin(
            Method::PUT,
            &format!("{ACCOUNTS}/bad"),
            Some(account("nope", json!({}), json!({}))),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(fields(&r.body), ["spec.provider"]);
    let r = e
        .api
        .admin(
            Method::PUT,
            &format!("{ACCOUNTS}/sim"),
            Some(json!({"spec": {"provider": "simulator", "simulator": {"timeScale": 0.5}}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["spec"]["config"], json!({"timeScale": 0.5}));
    assert_eq!(r.body["spec"]["simulator"], json!({"timeScale": 0.5}));
    assert_eq!(r.body["status"]["phase"], "Valid", "{:?}", r.body);
    // What GET returned goes back unchanged.
    let got = e
        .api
        .admin(Method::GET, &format!("{ACCOUNTS}/sim"), None)
        .await;
    let r = e
        .api
        .admin(Method::PUT, &format!("{ACCOUNTS}/sim"), Some(got.body))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
}

#[tokio::test]
async fn secrets_are_write_only_kept_on_round_trip_and_sealed_at_rest() {
    let e = env().await;
    let r = e
        .api
        .admin(
            Method::POST,
            "/v1/providers",
            Some(upload("sim2", components::SIMULATOR_WASM, None)),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    // The manifest declares secret `token`.
    let r = e
        .api
        .admin(
            Method::PUT,
            &format!("{ACCOUNTS}/a"),
            Some(account("sim2", json!({}), json!({}))),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(fields(&r.body), ["spec.secrets.token"]);
    let r = e
        .api
        .admin(
            Method::PUT,
            &format!("{ACCOUNTS}/a"),
            Some(account(
                "sim2",
                json!({"timeScale": 0}),
                json!({"token": "s3cret-value"}),
            )),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["spec"]["secrets"]["token"], "********");
    let got = e
        .api
        .admin(Method::GET, &format!("{ACCOUNTS}/a"), None)
        .await;
    assert_eq!(got.body["spec"]["secrets"]["token"], "********");
    let mut changed = got.body.clone();
    changed["metadata"]["description"] = "edited".into();
    let r = e
        .api
        .admin(Method::PUT, &format!("{ACCOUNTS}/a"), Some(changed))
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    let registry = e.registry.clone();
    let (obj, raw) = e
        .api
        .state
        .read(|r| {
            let scope = Scope::Project("default".into());
            let raw = r
                .get(&ObjectKey::new(scope.clone(), kinds::CLOUD_ACCOUNT, "a"))?
                .unwrap();
            let obj = fleetplane_api::resource::require::<CloudAccount>(r, &scope, "a")?;
            Ok((obj, String::from_utf8_lossy(&raw.body).into_owned()))
        })
        .await
        .unwrap();
    assert!(
        !raw.contains("s3cret-value"),
        "the secret is sealed at rest: {raw}"
    );
    let ctx = cloud_accounts::account_context(registry.cipher(), "default", &obj).unwrap();
    assert_eq!(ctx.secrets.len(), 1);
    assert_eq!(ctx.secrets[0].1.expose(), "s3cret-value");
    // Audit entries carry the mask, never the value.
    let audit = e.api.admin(Method::GET, "/v1/audit-events", None).await;
    assert!(!audit.body.to_string().contains("s3cret-value"));
}

#[tokio::test]
async fn delete_rules_for_providers_and_accounts() {
    let e = env().await;
    let r = e
        .api
        .admin(
            Method::POST,
            "/v1/providers",
            Some(upload("sim2", components::SIMULATOR_WASM, None)),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = e
        .api
        .admin(
            Method::PUT,
            &format!("{ACCOUNTS}/a"),
            Some(account("sim2", json!({}), json!({"token": "t"}))),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = e
        .api
        .admin(Method::DELETE, "/v1/providers/sim2", None)
        .await;
    assert_problem(&r, StatusCode::CONFLICT, "InvalidState");
    assert!(r.body["detail"].as_str().unwrap().contains("\"a\""));

    // A cluster referencing the account blocks its deletion.
    e.api
        .state
        .write(&fleetplane_api::auth::Caller::system(), |tx| {
            let scope = Scope::Project("default".into());
            let reference = fleetplane_api::refs::to(
                fleetplane_api::refs::USES_CLOUD_ACCOUNT,
                &scope,
                kinds::CLOUD_ACCOUNT,
                "a",
            );
            tx.ops.put_as(
                &ObjectKey::new(scope, kinds::CLUSTER, "c1"),
                &json!({"metadata": {"name": "c1"}, "spec": {}}),
                Precondition::MustNotExist,
                &[reference],
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let r = e
        .api
        .admin(Method::DELETE, &format!("{ACCOUNTS}/a"), None)
        .await;
    assert_problem(&r, StatusCode::CONFLICT, "CloudAccountInUse");
    e.api
        .state
        .write(&fleetplane_api::auth::Caller::system(), |tx| {
            tx.ops.delete(
                &ObjectKey::new(Scope::Project("default".into()), kinds::CLUSTER, "c1"),
                Precondition::Any,
            )?;
            Ok(())
        })
        .await
        .unwrap();
    let r = e
        .api
        .admin(Method::DELETE, &format!("{ACCOUNTS}/a"), None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = e
        .api
        .admin(Method::DELETE, "/v1/providers/sim2", None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert!(
        !e.registry
            .component_path(&Digest::of(components::SIMULATOR_WASM))
            .exists()
    );
    let r = e.api.admin(Method::GET, "/v1/providers/sim2", None).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "NotFound");
}

#[tokio::test]
async fn without_a_provider_host_the_routes_answer_unavailable() {
    let api = Api::new().await;
    let r = api.admin(Method::GET, "/v1/providers", None).await;
    assert_problem(&r, StatusCode::SERVICE_UNAVAILABLE, "Unavailable");
    let r = api.admin(Method::GET, ACCOUNTS, None).await;
    assert_eq!(r.status, StatusCode::OK, "reads of accounts need no host");
}
