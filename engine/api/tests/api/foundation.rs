//! Identity, errors, limits, audit and OpenAPI of the foundation.

use crate::support::*;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use fleetplane_api::{ApiSettings, router};
use serde_json::json;
use std::sync::Arc;
use tower::ServiceExt;

#[tokio::test]
async fn bootstrap_creates_default_project_and_admin() {
    let api = Api::new().await;
    let r = api.admin(Method::GET, "/v1/projects", None).await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["items"][0]["metadata"]["name"], "default");
    let r = api.admin(Method::GET, "/v1/whoami", None).await;
    assert_eq!(r.body["user"], "admin");
    assert_eq!(r.body["grants"][0]["role"], "tenant-admin");
    // a second bootstrap does nothing
    assert!(
        fleetplane_api::identity::bootstrap(&api.state, None, None)
            .await
            .unwrap()
            .is_none()
    );
}

#[tokio::test]
async fn missing_or_bad_credentials_answer_401_problem() {
    let api = Api::new().await;
    assert_problem(
        &api.call(Method::GET, "/v1/projects", None, None, &[]).await,
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
    );
    assert_problem(
        &api.call(Method::GET, "/v1/projects", Some("fpk_nope"), None, &[])
            .await,
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
    );
    let r = api
        .call(
            Method::GET,
            "/v1/projects",
            None,
            None,
            &[("authorization", "Basic abc")],
        )
        .await;
    assert_problem(&r, StatusCode::UNAUTHORIZED, "Unauthorized");
    // public endpoints need nothing
    assert_eq!(
        api.call(Method::GET, "/healthz", None, None, &[])
            .await
            .status,
        StatusCode::OK
    );
    assert!(
        api.call(Method::GET, "/healthz", None, None, &[])
            .await
            .headers
            .contains_key("x-request-id")
    );
}

#[tokio::test]
async fn put_get_replace_with_etags_and_if_match() {
    let api = Api::new().await;
    let r = api
        .admin(
            Method::PUT,
            "/v1/projects/team-a",
            Some(
                json!({"metadata": {"labels": {"env": "dev"}}, "spec": {"displayName": "Team A"}}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let etag = r.headers["etag"].to_str().unwrap().to_owned();
    assert_eq!(
        etag,
        format!(
            "\"{}\"",
            r.body["metadata"]["resourceVersion"].as_str().unwrap()
        )
    );

    // PUT accepts exactly what GET returned
    let got = api.admin(Method::GET, "/v1/projects/team-a", None).await;
    let mut edited = got.body.clone();
    edited["spec"]["displayName"] = json!("Team A!");
    let r = api
        .call(
            Method::PUT,
            "/v1/projects/team-a",
            Some(ADMIN),
            Some(edited.clone()),
            &[("if-match", &etag)],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["metadata"]["uid"], got.body["metadata"]["uid"]);
    assert_eq!(
        r.body["metadata"]["createdAt"],
        got.body["metadata"]["createdAt"]
    );

    // the old ETag is now stale
    let r = api
        .call(
            Method::PUT,
            "/v1/projects/team-a",
            Some(ADMIN),
            Some(edited),
            &[("if-match", &etag)],
        )
        .await;
    assert_problem(&r, StatusCode::PRECONDITION_FAILED, "PreconditionFailed");
    let r = api
        .call(
            Method::DELETE,
            "/v1/projects/team-a",
            Some(ADMIN),
            None,
            &[("if-match", &etag)],
        )
        .await;
    assert_problem(&r, StatusCode::PRECONDITION_FAILED, "PreconditionFailed");
    let r = api.admin(Method::DELETE, "/v1/projects/team-a", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    assert_problem(
        &api.admin(Method::GET, "/v1/projects/team-a", None).await,
        StatusCode::NOT_FOUND,
        "NotFound",
    );
}

#[tokio::test]
async fn bad_input_gets_400_with_field_paths() {
    let api = Api::new().await;
    let r = api
        .call(
            Method::PUT,
            "/v1/projects/x",
            Some(ADMIN),
            None,
            &[("content-type", "application/json")],
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    let r = api
        .admin(
            Method::PUT,
            "/v1/projects/x",
            Some(json!({"spec": {"displayName": 3}})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(r.body["errors"][0]["field"], "spec.displayName");
    let r = api
        .admin(
            Method::PUT,
            "/v1/projects/x",
            Some(json!({"spec": {}, "metadata": {"nmae": "x"}})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(r.body["errors"][0]["field"], "metadata.nmae");
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("unknown field")
    );
    let r = api
        .admin(
            Method::PUT,
            "/v1/projects/Bad_Name",
            Some(json!({"spec": {}})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(r.body["errors"][0]["field"], "metadata.name");
    let r = api.admin(Method::PUT, "/v1/projects/x", Some(json!({"kind": "User", "metadata": {"name": "y", "labels": {"bad key!": "v"}}, "spec": {}}))).await;
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        ["kind", "metadata.name", "metadata.labels.bad key!"],
        "{:?}",
        r.body
    );
    let raw = Request::builder()
        .method(Method::PUT)
        .uri("/v1/projects/x")
        .header("authorization", format!("Bearer {ADMIN}"))
        .header("content-type", "application/json")
        .body(Body::from("{not json"))
        .unwrap();
    let res = router(api.state.clone()).oneshot(raw).await.unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    let r = api
        .call(
            Method::PUT,
            "/v1/projects/x",
            Some(ADMIN),
            None,
            &[("content-type", "text/plain")],
        )
        .await;
    assert_problem(
        &r,
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        "UnsupportedMediaType",
    );
    assert_problem(
        &api.admin(Method::GET, "/v1/nothing-here", None).await,
        StatusCode::NOT_FOUND,
        "NotFound",
    );
    assert_problem(
        &api.admin(Method::PATCH, "/v1/projects/x", None).await,
        StatusCode::METHOD_NOT_ALLOWED,
        "MethodNotAllowed",
    );
    let r = api.admin(Method::GET, "/v1/projects?limit=abc", None).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    let r = api
        .admin(Method::GET, "/v1/projects?labelSelector=a%20b", None)
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(r.body["errors"][0]["field"], "labelSelector");
}

#[tokio::test]
async fn oversized_bodies_get_413() {
    let api = Api::with(ApiSettings {
        max_body_bytes: 1024,
        ..ApiSettings::default()
    })
    .await;
    let big = json!({"spec": {"displayName": "x".repeat(4096)}});
    assert_problem(
        &api.admin(Method::PUT, "/v1/projects/x", Some(big)).await,
        StatusCode::PAYLOAD_TOO_LARGE,
        "PayloadTooLarge",
    );
}

#[tokio::test]
async fn project_roles_limit_what_users_see_and_do() {
    let api = Api::new().await;
    for p in ["a", "b"] {
        assert_eq!(
            api.admin(
                Method::PUT,
                &format!("/v1/projects/{p}"),
                Some(json!({"spec": {}}))
            )
            .await
            .status,
            StatusCode::CREATED
        );
    }
    let viewer = api
        .user_with_role("vera", "project-viewer", Some("a"))
        .await;
    let r = api
        .call(Method::GET, "/v1/projects/a", Some(&viewer), None, &[])
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // project B does not exist for her
    assert_problem(
        &api.call(Method::GET, "/v1/projects/b", Some(&viewer), None, &[])
            .await,
        StatusCode::NOT_FOUND,
        "NotFound",
    );
    assert_problem(
        &api.call(Method::DELETE, "/v1/projects/b", Some(&viewer), None, &[])
            .await,
        StatusCode::NOT_FOUND,
        "NotFound",
    );
    let list = api
        .call(Method::GET, "/v1/projects", Some(&viewer), None, &[])
        .await;
    let names: Vec<&str> = list.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["a"]);
    // a viewer cannot change or create
    let r = api
        .call(
            Method::PUT,
            "/v1/projects/a",
            Some(&viewer),
            Some(json!({"spec": {}})),
            &[],
        )
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "Forbidden");
    let r = api
        .call(
            Method::PUT,
            "/v1/users/mallory",
            Some(&viewer),
            Some(json!({"spec": {}})),
            &[],
        )
        .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "Forbidden");
    assert_problem(
        &api.call(Method::GET, "/v1/audit-events", Some(&viewer), None, &[])
            .await,
        StatusCode::FORBIDDEN,
        "Forbidden",
    );
    // everyone manages their own keys
    let r = api
        .call(
            Method::GET,
            "/v1/users/vera/api-keys",
            Some(&viewer),
            None,
            &[],
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert!(r.body["items"][0].get("digest").is_none());
    assert_problem(
        &api.call(
            Method::GET,
            "/v1/users/admin/api-keys",
            Some(&viewer),
            None,
            &[],
        )
        .await,
        StatusCode::FORBIDDEN,
        "Forbidden",
    );
}

#[tokio::test]
async fn revoked_keys_and_deleted_users_stop_working() {
    let api = Api::new().await;
    let key = api.user_with_role("ops", "tenant-viewer", None).await;
    assert_eq!(
        api.call(Method::GET, "/v1/projects", Some(&key), None, &[])
            .await
            .status,
        StatusCode::OK
    );
    let keys = api.admin(Method::GET, "/v1/users/ops/api-keys", None).await;
    let id = keys.body["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(
        api.admin(
            Method::DELETE,
            &format!("/v1/users/ops/api-keys/{id}"),
            None
        )
        .await
        .status,
        StatusCode::NO_CONTENT
    );
    assert_problem(
        &api.call(Method::GET, "/v1/projects", Some(&key), None, &[])
            .await,
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
    );

    let key2 = api.user_with_role("ops2", "tenant-viewer", None).await;
    assert_eq!(
        api.admin(Method::DELETE, "/v1/users/ops2", None)
            .await
            .status,
        StatusCode::NO_CONTENT
    );
    assert_problem(
        &api.call(Method::GET, "/v1/projects", Some(&key2), None, &[])
            .await,
        StatusCode::UNAUTHORIZED,
        "Unauthorized",
    );
    // its bindings went with it
    let b = api.admin(Method::GET, "/v1/role-bindings", None).await;
    assert!(
        b.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .all(|b| b["spec"]["user"] != "ops2")
    );
}

#[tokio::test]
async fn role_bindings_are_validated() {
    let api = Api::new().await;
    let r = api
        .admin(
            Method::PUT,
            "/v1/role-bindings/x",
            Some(json!({"spec": {"user": "ghost", "role": "project-admin"}})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(fields, ["spec.user", "spec.project"]);
    let r = api
        .admin(
            Method::PUT,
            "/v1/role-bindings/x",
            Some(json!({"spec": {"user": "admin", "role": "superuser"}})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(r.body["errors"][0]["field"], "spec.role");
}

#[tokio::test]
async fn every_mutation_is_audited_with_before_and_after() {
    let api = Api::new().await;
    api.admin(
        Method::PUT,
        "/v1/projects/p1",
        Some(json!({"spec": {"displayName": "one"}})),
    )
    .await;
    api.admin(
        Method::PUT,
        "/v1/projects/p1",
        Some(json!({"spec": {"displayName": "two"}})),
    )
    .await;
    api.admin(
        Method::PUT,
        "/v1/users/u1",
        Some(json!({"spec": {"password": "a very long secret"}})),
    )
    .await;
    api.admin(Method::DELETE, "/v1/projects/p1", None).await;
    let r = api
        .admin(Method::GET, "/v1/audit-events?resource=projects/p1", None)
        .await;
    let items = r.body["items"].as_array().unwrap();
    let actions: Vec<&str> = items
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["delete", "update", "create"]);
    assert_eq!(items[1]["before"]["spec"]["displayName"], "one");
    assert_eq!(items[1]["after"]["spec"]["displayName"], "two");
    assert_eq!(items[1]["actor"], "user:admin");
    assert!(
        items[1]["requestId"]
            .as_str()
            .is_some_and(|s| !s.is_empty())
    );
    // passwords never reach the log
    let r = api
        .admin(Method::GET, "/v1/audit-events?resource=users/u1", None)
        .await;
    assert!(!r.body.to_string().contains("a very long secret"));
    let page = api
        .admin(Method::GET, "/v1/audit-events?limit=2", None)
        .await;
    assert_eq!(page.body["items"].as_array().unwrap().len(), 2);
    let next = page.body["continue"].as_str().unwrap();
    let page2 = api
        .admin(
            Method::GET,
            &format!("/v1/audit-events?limit=2&continue={next}"),
            None,
        )
        .await;
    assert!(page2.body["items"][0]["seq"].as_u64() < page.body["items"][1]["seq"].as_u64());
}

#[tokio::test]
async fn floods_get_429_while_other_keys_are_served() {
    let api = Api::with(ApiSettings {
        rate_per_key: 1,
        burst: 5,
        ..ApiSettings::default()
    })
    .await;
    let other = {
        // create the second key through the store before the flood
        let r = api
            .admin(
                Method::POST,
                "/v1/users/admin/api-keys",
                Some(json!({"name": "second"})),
            )
            .await;
        r.body["key"].as_str().unwrap().to_owned()
    };
    let mut limited = None;
    for _ in 0..20 {
        let r = api.admin(Method::GET, "/v1/projects", None).await;
        if r.status == StatusCode::TOO_MANY_REQUESTS {
            limited = Some(r);
            break;
        }
    }
    let r = limited.expect("the flood was never limited");
    assert_problem(&r, StatusCode::TOO_MANY_REQUESTS, "RateLimited");
    assert!(
        r.headers["retry-after"]
            .to_str()
            .unwrap()
            .parse::<u64>()
            .unwrap()
            >= 1
    );
    assert_eq!(
        api.call(Method::GET, "/v1/projects", Some(&other), None, &[])
            .await
            .status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn lists_paginate_and_select_by_label() {
    let api = Api::new().await;
    for i in 0..7 {
        let env = if i % 2 == 0 { "prod" } else { "dev" };
        api.admin(
            Method::PUT,
            &format!("/v1/projects/p{i}"),
            Some(json!({"metadata": {"labels": {"env": env}}, "spec": {}})),
        )
        .await;
    }
    let mut names = Vec::new();
    let mut url = "/v1/projects?limit=3&labelSelector=env%3Dprod".to_owned();
    loop {
        let r = api.admin(Method::GET, &url, None).await;
        assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        names.extend(
            r.body["items"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned()),
        );
        match r.body["continue"].as_str() {
            Some(c) => url = format!("/v1/projects?limit=3&labelSelector=env%3Dprod&continue={c}"),
            None => break,
        }
    }
    assert_eq!(names, ["p0", "p2", "p4", "p6"]);
}

#[tokio::test]
async fn projects_with_content_cannot_be_deleted_and_metrics_count() {
    let api = Api::new().await;
    let r = api.admin(Method::GET, "/metrics", None).await;
    assert!(
        r.body
            .as_str()
            .unwrap()
            .contains("fleetplane_http_requests_total")
    );
    let r = api.admin(Method::GET, "/readyz", None).await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE);
    api.state.set_ready(true);
    assert_eq!(
        api.admin(Method::GET, "/readyz", None).await.status,
        StatusCode::OK
    );
}

#[tokio::test]
async fn bad_query_strings_are_problems_naming_the_parameter() {
    let api = Api::new().await;
    for (path, field, says) in [
        ("/v1/runs?bogus=1", "bogus", "unknown field `bogus`"),
        (
            "/v1/projects/default/clusters?limit=many",
            "limit",
            "invalid digit",
        ),
        ("/v1/audit-events?since=yesterday", "since", "query string"),
    ] {
        let r = api.admin(Method::GET, path, None).await;
        assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
        assert_eq!(r.body["errors"][0]["field"], field, "{path}: {:?}", r.body);
        let message = r.body["errors"][0]["message"].as_str().unwrap();
        assert!(message.contains(says), "{path}: {message}");
    }
}

/// The real database file, whose writes fail with "No space left on device" once `full` is
/// set (a full disk cannot be made on demand here; the failure is injected under redb).
#[derive(Debug)]
struct DiskThatFills {
    file: redb::backends::FileBackend,
    full: Arc<std::sync::atomic::AtomicBool>,
}

impl DiskThatFills {
    fn check(&self) -> std::io::Result<()> {
        if self.full.load(std::sync::atomic::Ordering::SeqCst) {
            Err(std::io::Error::from_raw_os_error(28))
        } else {
            Ok(())
        }
    }
}

impl redb::StorageBackend for DiskThatFills {
    fn len(&self) -> std::io::Result<u64> {
        self.file.len()
    }
    fn read(&self, offset: u64, out: &mut [u8]) -> std::io::Result<()> {
        self.file.read(offset, out)
    }
    fn set_len(&self, len: u64) -> std::io::Result<()> {
        self.check()?;
        self.file.set_len(len)
    }
    fn sync_data(&self) -> std::io::Result<()> {
        self.check()?;
        self.file.sync_data()
    }
    fn write(&self, offset: u64, data: &[u8]) -> std::io::Result<()> {
        self.check()?;
        self.file.write(offset, data)
    }
}

#[tokio::test]
async fn a_full_disk_answers_503_keeps_reads_and_fails_liveness_until_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let full = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(dir.path().join("db.redb"))
        .unwrap();
    let disk = DiskThatFills {
        file: redb::backends::FileBackend::new(file).unwrap(),
        full: full.clone(),
    };
    let store = fleetplane_store::RedbStorage::with_backend(disk).unwrap();
    let api = Api::over(dir, store, ApiSettings::default()).await;
    api.state.set_ready(true);
    let body = json!({"spec": {"displayName": "Before"}});
    let r = api
        .admin(Method::PUT, "/v1/projects/before", Some(body))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    full.store(true, std::sync::atomic::Ordering::SeqCst);
    let body = json!({"spec": {"displayName": "After"}});
    let r = api
        .admin(Method::PUT, "/v1/projects/after", Some(body.clone()))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    assert_eq!(r.body["code"], "Unavailable", "{:?}", r.body);
    let detail = r.body["detail"].as_str().unwrap();
    assert!(detail.contains("nothing was written"), "{detail}");
    assert!(detail.contains("No space left on device"), "{detail}");
    assert_eq!(r.headers["retry-after"], "10");
    // Reads go on; liveness and readiness say the process needs a restart.
    let r = api.admin(Method::GET, "/v1/projects/before", None).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    for probe in ["/healthz", "/readyz"] {
        let r = api.admin(Method::GET, probe, None).await;
        assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{probe}");
        assert!(
            r.body["detail"].as_str().unwrap().contains("No space left"),
            "{probe}: {:?}",
            r.body
        );
    }
    // Room again: redb still refuses writes on this handle (only reopening recovers), and
    // says so rather than a 500.
    full.store(false, std::sync::atomic::Ordering::SeqCst);
    let r = api
        .admin(Method::PUT, "/v1/projects/after", Some(body))
        .await;
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{:?}", r.body);
    assert_eq!(
        api.admin(Method::GET, "/v1/projects/after", None)
            .await
            .status,
        StatusCode::NOT_FOUND
    );
}

#[test]
fn openapi_documents_exactly_the_routes_that_exist() {
    let mut served: Vec<(String, String)> = fleetplane_api::registered_operations()
        .into_iter()
        .map(|(m, p)| (m.as_str().to_owned(), p))
        .collect();
    let mut documented = fleetplane_api::openapi::documented_operations();
    served.sort();
    documented.sort();
    let missing: Vec<_> = served.iter().filter(|o| !documented.contains(o)).collect();
    let phantom: Vec<_> = documented.iter().filter(|o| !served.contains(o)).collect();
    assert!(
        missing.is_empty(),
        "routes missing from /openapi.json: {missing:?}"
    );
    assert!(
        phantom.is_empty(),
        "/openapi.json names routes that do not exist: {phantom:?}"
    );
    let doc = fleetplane_api::openapi::document();
    assert_eq!(doc["openapi"], "3.1.0");
}
