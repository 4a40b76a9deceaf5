//! Test support: the router driven in-process (`oneshot`, no socket) over a real redb file.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use fleetplane_api::{ApiSettings, AppState, router};
use fleetplane_store::RedbStorage;
use http_body_util::BodyExt;
use serde_json::{Value, json};
use std::sync::Arc;
use tower::ServiceExt;

pub const ADMIN: &str = "fpk_test-admin-key";

pub struct Api {
    _dir: tempfile::TempDir,
    pub state: AppState,
}

pub struct Reply {
    pub status: StatusCode,
    pub headers: axum::http::HeaderMap,
    pub body: Value,
}

impl Api {
    pub async fn new() -> Self {
        Self::with(ApiSettings::default()).await
    }

    pub async fn with(settings: ApiSettings) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let store = RedbStorage::open(&dir.path().join("db.redb")).unwrap();
        Self::over(dir, store, settings).await
    }

    /// A bootstrapped API over `store` (kept in `dir`).
    pub async fn over(dir: tempfile::TempDir, store: RedbStorage, settings: ApiSettings) -> Self {
        let state = AppState::new(Arc::new(store), settings);
        fleetplane_api::identity::bootstrap(
            &state,
            Some(ADMIN.into()),
            Some("correct horse battery".into()),
        )
        .await
        .unwrap()
        .unwrap();
        Self { _dir: dir, state }
    }

    pub async fn call(
        &self,
        method: Method,
        path: &str,
        key: Option<&str>,
        body: Option<Value>,
        headers: &[(&str, &str)],
    ) -> Reply {
        let mut req = Request::builder().method(method).uri(path);
        if let Some(k) = key {
            req = req.header("authorization", format!("Bearer {k}"));
        }
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        let req = match body {
            Some(b) => req
                .header("content-type", "application/json")
                .body(Body::from(b.to_string()))
                .unwrap(),
            None => req.body(Body::empty()).unwrap(),
        };
        let res = router(self.state.clone()).oneshot(req).await.unwrap();
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.unwrap().to_bytes();
        let body = serde_json::from_slice(&bytes)
            .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into()));
        Reply {
            status,
            headers,
            body,
        }
    }

    pub async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.call(method, path, Some(ADMIN), body, &[]).await
    }

    /// Creates a user with a role and returns a key for it.
    pub async fn user_with_role(&self, user: &str, role: &str, project: Option<&str>) -> String {
        let r = self
            .admin(
                Method::PUT,
                &format!("/v1/users/{user}"),
                Some(json!({"spec": {}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let r = self
            .admin(
                Method::PUT,
                &format!("/v1/role-bindings/{user}-{role}"),
                Some(json!({"spec": {"user": user, "role": role, "project": project}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        let r = self
            .admin(
                Method::POST,
                &format!("/v1/users/{user}/api-keys"),
                Some(json!({"name": "t"})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
        r.body["key"].as_str().unwrap().to_owned()
    }
}

pub fn assert_problem(r: &Reply, status: StatusCode, code: &str) {
    assert_eq!(r.status, status, "{:?}", r.body);
    assert_eq!(r.headers["content-type"], "application/problem+json");
    assert_eq!(r.body["code"], code, "{:?}", r.body);
    assert_eq!(r.body["status"], status.as_u16());
}
