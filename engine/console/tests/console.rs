//! Console sign-in, sessions and CSRF, in-process over a real redb file.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use fleetplane_api::clusters::{self, Cluster, ClusterEvent};
use fleetplane_api::{ApiSettings, AppState};
use fleetplane_store::tables::kinds;
use fleetplane_store::{ObjectKey, RedbStorage, Scope};
use http_body_util::BodyExt;
use std::sync::Arc;
use tower::ServiceExt;

const PASSWORD: &str = "correct horse battery staple";

async fn app() -> (tempfile::TempDir, AppState) {
    let dir = tempfile::tempdir().unwrap();
    let store = RedbStorage::open(&dir.path().join("db.redb")).unwrap();
    let state = AppState::new(Arc::new(store), ApiSettings::default());
    fleetplane_api::identity::bootstrap(&state, Some("fpk_k".into()), Some(PASSWORD.into()))
        .await
        .unwrap();
    (dir, state)
}

struct Reply {
    status: StatusCode,
    set_cookies: Vec<String>,
    location: Option<String>,
    body: String,
}

async fn send(
    state: &AppState,
    method: Method,
    uri: &str,
    cookie: &str,
    form: Option<&str>,
    extra: &[(&str, &str)],
) -> Reply {
    let mut req = Request::builder().method(method).uri(uri);
    if !cookie.is_empty() {
        req = req.header(header::COOKIE, cookie);
    }
    for (k, v) in extra {
        req = req.header(*k, *v);
    }
    let req = match form {
        Some(f) => req
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Body::from(f.to_owned())),
        None => req.body(Body::empty()),
    }
    .unwrap();
    let res = fleetplane_api::router_with(state.clone(), fleetplane_console::routes())
        .oneshot(req)
        .await
        .unwrap();
    let status = res.status();
    let set_cookies = res
        .headers()
        .get_all(header::SET_COOKIE)
        .iter()
        .map(|v| v.to_str().unwrap().to_owned())
        .collect();
    let location = res
        .headers()
        .get(header::LOCATION)
        .map(|v| v.to_str().unwrap().to_owned());
    let body =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    Reply {
        status,
        set_cookies,
        location,
        body,
    }
}

fn cookie_value(r: &Reply, name: &str) -> String {
    r.set_cookies
        .iter()
        .find_map(|c| {
            c.strip_prefix(&format!("{name}="))
                .map(|v| v.split(';').next().unwrap().to_owned())
        })
        .unwrap_or_default()
}

fn csrf_in(html: &str) -> String {
    let marker = "name=\"csrf\" value=\"";
    let start = html.find(marker).unwrap() + marker.len();
    html[start..start + html[start..].find('"').unwrap()].to_owned()
}

async fn sign_in(state: &AppState) -> (String, String) {
    sign_in_as(state, "admin", PASSWORD).await
}

async fn sign_in_as(state: &AppState, user: &str, password: &str) -> (String, String) {
    let page = send(state, Method::GET, "/console/login", "", None, &[]).await;
    let login_csrf = cookie_value(&page, "fp_login_csrf");
    assert_eq!(csrf_in(&page.body), login_csrf);
    let r = send(
        state,
        Method::POST,
        "/console/login",
        &format!("fp_login_csrf={login_csrf}"),
        Some(&format!(
            "username={user}&password={}&csrf={login_csrf}",
            password.replace(' ', "+")
        )),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::SEE_OTHER, "{}", r.body);
    let session = cookie_value(&r, "fp_session");
    assert!(r.set_cookies.iter().any(|c| c.starts_with("fp_session=")
        && c.contains("HttpOnly")
        && c.contains("SameSite=Strict")));
    let cookie = format!("fp_session={session}");
    let home = send(state, Method::GET, "/console", &cookie, None, &[]).await;
    assert_eq!(home.status, StatusCode::OK);
    (cookie, csrf_in(&home.body))
}

#[tokio::test]
async fn sign_in_shows_projects_and_sign_out_ends_the_session() {
    let (_d, state) = app().await;
    let r = send(&state, Method::GET, "/console", "", None, &[]).await;
    assert_eq!(r.location.as_deref(), Some("/console/login"));
    let (cookie, csrf) = sign_in(&state).await;
    let home = send(&state, Method::GET, "/console", &cookie, None, &[]).await;
    assert!(home.body.contains("default"));
    assert!(home.body.contains("tenant-admin"));

    let bad = send(
        &state,
        Method::POST,
        "/console/logout",
        &cookie,
        Some("csrf=wrong"),
        &[],
    )
    .await;
    assert_eq!(bad.status, StatusCode::FORBIDDEN);
    let out = send(
        &state,
        Method::POST,
        "/console/logout",
        &cookie,
        Some(&format!("csrf={csrf}")),
        &[],
    )
    .await;
    assert_eq!(out.status, StatusCode::SEE_OTHER);
    let after = send(&state, Method::GET, "/console", &cookie, None, &[]).await;
    assert_eq!(after.location.as_deref(), Some("/console/login"));
}

#[tokio::test]
async fn login_needs_the_form_token_and_the_right_password() {
    let (_d, state) = app().await;
    let page = send(&state, Method::GET, "/console/login", "", None, &[]).await;
    let token = cookie_value(&page, "fp_login_csrf");
    // a cross-site post has no matching cookie
    let r = send(
        &state,
        Method::POST,
        "/console/login",
        "",
        Some(&format!("username=admin&password=x&csrf={token}")),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::FORBIDDEN);
    let r = send(
        &state,
        Method::POST,
        "/console/login",
        &format!("fp_login_csrf={token}"),
        Some(&format!(
            "username=admin&password=wrong+password&csrf={token}"
        )),
        &[],
    )
    .await;
    assert_eq!(r.status, StatusCode::UNAUTHORIZED);
    assert!(r.body.contains("wrong password"));
    assert!(cookie_value(&r, "fp_session").is_empty());
}

#[tokio::test]
async fn the_session_cookie_authenticates_api_calls_with_csrf_on_writes() {
    let (_d, state) = app().await;
    let (cookie, csrf) = sign_in(&state).await;
    let r = send(&state, Method::GET, "/v1/whoami", &cookie, None, &[]).await;
    assert_eq!(r.status, StatusCode::OK);
    assert!(r.body.contains("\"admin\""));
    let body = r#"{"spec":{}}"#;
    let put = |extra: Vec<(&'static str, String)>| {
        let state = state.clone();
        let cookie = cookie.clone();
        async move {
            let mut req = Request::builder()
                .method(Method::PUT)
                .uri("/v1/projects/from-console")
                .header(header::COOKIE, cookie)
                .header(header::CONTENT_TYPE, "application/json");
            for (k, v) in extra {
                req = req.header(k, v);
            }
            fleetplane_api::router(state)
                .oneshot(req.body(Body::from(body)).unwrap())
                .await
                .unwrap()
                .status()
        }
    };
    assert_eq!(put(vec![]).await, StatusCode::FORBIDDEN);
    assert_eq!(
        put(vec![("x-csrf-token", "nope".into())]).await,
        StatusCode::FORBIDDEN
    );
    assert_eq!(put(vec![("x-csrf-token", csrf)]).await, StatusCode::CREATED);
}

/// Sends an API request with the session cookie and CSRF token; returns status and body.
async fn api(
    state: &AppState,
    (cookie, csrf): &(String, String),
    method: Method,
    uri: &str,
    body: &str,
) -> (StatusCode, String) {
    let req = Request::builder()
        .method(method)
        .uri(uri)
        .header(header::COOKIE, cookie)
        .header("x-csrf-token", csrf)
        .header(header::CONTENT_TYPE, "application/json")
        .body(Body::from(body.to_owned()))
        .unwrap();
    let res = fleetplane_api::router(state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = res.status();
    let body =
        String::from_utf8(res.into_body().collect().await.unwrap().to_bytes().to_vec()).unwrap();
    (status, body)
}

const AWS: &str = include_str!("../../../examples/profiles/aws-standard-1.0.0.json");
const XSS: &str = "<script>alert(1)</script>";
const XSS_SHOWN: &str = "&lt;script&gt;alert(1)&lt;&#x2f;script&gt;";

/// An admin session with a project `blue` (display name with markup), the AWS profile imported
/// at tenant scope and in `blue` (description with markup), and a policy in `blue`.
async fn seeded() -> (tempfile::TempDir, AppState, (String, String)) {
    let (d, state) = app().await;
    let s = sign_in(&state).await;
    let project = serde_json::json!({"spec": {"displayName": XSS}}).to_string();
    let (st, body) = api(&state, &s, Method::PUT, "/v1/projects/blue", &project).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let (st, body) = api(&state, &s, Method::POST, "/v1/profiles:import", AWS).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let mut doc: serde_json::Value = serde_json::from_str(AWS).unwrap();
    doc["metadata"]["description"] = XSS.into();
    let (st, body) = api(
        &state,
        &s,
        Method::POST,
        "/v1/projects/blue/profiles:import",
        &doc.to_string(),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let policy = serde_json::json!({"metadata": {"description": XSS}, "spec": {
        "schedules": [{"name": "weekly", "cron": "0 0 * * 0", "durationHours": 4}]}});
    let (st, body) = api(
        &state,
        &s,
        Method::PUT,
        "/v1/projects/blue/maintenance-policies/sundays",
        &policy.to_string(),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    (d, state, s)
}

#[track_caller]
fn assert_escaped(body: &str) {
    assert!(!body.contains(XSS), "unescaped markup in:\n{body}");
    assert!(body.contains(XSS_SHOWN), "no escaped markup in:\n{body}");
}

#[tokio::test]
async fn every_page_renders_for_a_tenant_admin_with_markup_escaped() {
    let (_d, state, s) = seeded().await;
    let cookie = &s.0;
    let get = |uri: &'static str| {
        let state = state.clone();
        let cookie = cookie.clone();
        async move { send(&state, Method::GET, uri, &cookie, None, &[]).await }
    };

    let home = get("/console?project=blue").await;
    assert_eq!(home.status, StatusCode::OK);
    assert_escaped(&home.body);
    assert!(home.body.contains(r#"data-live="dev.fleetplane.project""#));
    assert!(home.body.contains("/console/static/console.js"));
    assert!(home.body.contains(r#"<option value="blue" selected>"#));

    let profiles = get("/console/profiles?project=blue").await;
    assert_eq!(profiles.status, StatusCode::OK, "{}", profiles.body);
    assert_escaped(&profiles.body);
    assert!(profiles.body.contains("aws-standard"));
    assert!(profiles.body.contains("Project blue"));
    assert!(
        profiles.body.contains(
            "/console/profiles/aws-standard/versions/1.0.0?project=blue&amp;scope=tenant"
        ),
        "{}",
        profiles.body
    );

    let version = get("/console/profiles/aws-standard/versions/1.0.0").await;
    assert_eq!(version.status, StatusCode::OK, "{}", version.body);
    for part in [
        "ubuntu-aws",
        "24.04",
        "kubernetes",
        "1.33.4",
        "cni-calico",
        "pod_cidr",
    ] {
        assert!(
            version.body.contains(part),
            "{part} not in:\n{}",
            version.body
        );
    }
    let in_blue = get("/console/profiles/aws-standard/versions/1.0.0?project=blue").await;
    assert_eq!(in_blue.status, StatusCode::OK);
    assert_escaped(&in_blue.body);
    let missing = get("/console/profiles/aws-standard/versions/9.9.9").await;
    assert_eq!(missing.status, StatusCode::NOT_FOUND);

    let policies = get("/console/policies?project=blue").await;
    assert_eq!(policies.status, StatusCode::OK, "{}", policies.body);
    assert_escaped(&policies.body);
    assert!(policies.body.contains("sundays"));
    assert!(policies.body.contains("0 0 * * 0"));
    assert!(
        !policies.body.contains("none</span></td>\n      </tr>"),
        "no next window"
    );

    let templates = get("/console/templates?project=blue").await;
    assert_eq!(templates.status, StatusCode::OK, "{}", templates.body);
    assert!(templates.body.contains("No cluster template."));

    let audit = get("/console/audit").await;
    assert_eq!(audit.status, StatusCode::OK, "{}", audit.body);
    // minijinja's HTML escaping also escapes `/`.
    assert!(
        audit
            .body
            .contains("projects&#x2f;blue&#x2f;maintenance-policies&#x2f;sundays"),
        "{}",
        audit.body
    );
    assert!(audit.body.contains(r#"href="/console/audit""#));
}

#[tokio::test]
async fn sensitive_defaults_are_masked_on_the_version_page() {
    let (_d, state) = app().await;
    let s = sign_in(&state).await;
    let mut doc: serde_json::Value = serde_json::from_str(AWS).unwrap();
    doc["spec"]["variables"].as_array_mut().unwrap().push(
        serde_json::json!({"name": "db_password", "displayName": "DB password", "format": "string",
            "defaultValue": "hunter2-secret", "sensitive": true}),
    );
    let (st, body) = api(
        &state,
        &s,
        Method::POST,
        "/v1/profiles:import",
        &doc.to_string(),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let page = send(
        &state,
        Method::GET,
        "/console/profiles/aws-standard/versions/1.0.0",
        &s.0,
        None,
        &[],
    )
    .await;
    assert_eq!(page.status, StatusCode::OK, "{}", page.body);
    assert!(page.body.contains("db_password"));
    assert!(!page.body.contains("hunter2-secret"), "{}", page.body);
}

#[tokio::test]
async fn pages_check_permissions_like_the_api() {
    let (_d, state, s) = seeded().await;
    let (st, body) = api(
        &state,
        &s,
        Method::PUT,
        "/v1/projects/green",
        "{\"spec\":{}}",
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let pw = "viewer password 123";
    let user = serde_json::json!({"spec": {"password": pw}}).to_string();
    let (st, body) = api(&state, &s, Method::PUT, "/v1/users/vera", &user).await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let binding =
        serde_json::json!({"spec": {"user": "vera", "role": "project-viewer", "project": "green"}});
    let (st, body) = api(
        &state,
        &s,
        Method::PUT,
        "/v1/role-bindings/vera-green",
        &binding.to_string(),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    let vera = sign_in_as(&state, "vera", pw).await;
    let get = |uri: &'static str| {
        let state = state.clone();
        let cookie = vera.0.clone();
        async move { send(&state, Method::GET, uri, &cookie, None, &[]).await }
    };

    let home = get("/console").await;
    assert_eq!(home.status, StatusCode::OK);
    assert!(home.body.contains("green"));
    assert!(!home.body.contains("blue"), "{}", home.body);
    assert!(
        !home.body.contains("/console/audit"),
        "audit link for a viewer"
    );

    for uri in [
        "/console/profiles?project=blue",
        "/console/policies?project=blue",
        "/console/templates?project=blue",
        "/console/profiles/aws-standard/versions/1.0.0?project=blue",
        "/console/profiles?project=nowhere",
        "/console/clusters?project=blue",
        "/console/clusters/shop?project=blue",
    ] {
        let r = get(uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}: {}", r.body);
        assert!(!r.body.contains("sundays"));
    }
    let own = get("/console/profiles?project=green").await;
    assert_eq!(own.status, StatusCode::OK, "{}", own.body);
    // Like the API: tenant profiles are readable by project members.
    assert!(own.body.contains("aws-standard"), "{}", own.body);
    assert!(own.body.contains("Project green"), "{}", own.body);
    let policies = get("/console/policies?project=green").await;
    assert_eq!(policies.status, StatusCode::OK, "{}", policies.body);
    assert_eq!(get("/console/audit").await.status, StatusCode::FORBIDDEN);

    // Signed out: every page sends to the login form.
    for uri in [
        "/console/profiles",
        "/console/policies",
        "/console/templates",
        "/console/clusters",
        "/console/clusters/shop?project=blue",
        "/console/audit",
    ] {
        let r = send(&state, Method::GET, uri, "", None, &[]).await;
        assert_eq!(r.location.as_deref(), Some("/console/login"), "{uri}");
    }
}

#[tokio::test]
async fn static_files_are_served_with_their_types() {
    let (_d, state) = app().await;
    let js = send(
        &state,
        Method::GET,
        "/console/static/console.js",
        "",
        None,
        &[],
    )
    .await;
    assert_eq!(js.status, StatusCode::OK);
    assert!(js.body.contains("new EventSource(\"/v1/events\")"));
    let css = send(
        &state,
        Method::GET,
        "/console/static/console.css",
        "",
        None,
        &[],
    )
    .await;
    assert_eq!(css.status, StatusCode::OK);
}

/// Stores cluster `name` in `project` as the engine would after a deploy (the in-process app
/// runs no workflows): Running and Healthy, its applied versions, nodes, a condition, a last run
/// and events, with markup in its description and an event message.
async fn store_cluster(state: &AppState, project: &str, name: &str, template: Option<&str>) {
    let mut spec = serde_json::json!({"cloudAccount": "sim0", "timeZone": "Asia/Kolkata",
        "nodePools": [{"name": "cp", "controlPlane": true, "count": 1, "instanceType": "m5.large"},
                      {"name": "workers", "count": 2, "instanceType": "m5.xlarge"}]});
    match template {
        Some(t) => spec["template"] = serde_json::json!({"name": t}),
        None => {
            spec["profiles"] = serde_json::json!([{"name": "aws-standard", "version": "1.0.0"}])
        }
    }
    let node = |n: &str, pool: &str, it: &str| {
        serde_json::json!({"name": n, "pool": pool, "instanceType": it,
            "osImage": "ubuntu-aws-24.04", "kubernetesVersion": "1.33.4", "phase": "Running"})
    };
    let obj = serde_json::json!({
        "metadata": {"name": name, "description": XSS},
        "spec": spec,
        "status": {"phase": "Running", "health": "Healthy", "revision": 1, "desiredRevision": 2,
            "profiles": [{"name": "aws-standard", "version": "1.0.0", "scope": "tenant"}],
            "nodes": [node("cp-0", "cp", "m5.large"), node("workers-0", "workers", "m5.xlarge"),
                      node("workers-1", "workers", "m5.xlarge")],
            "conditions": [{"type": "Ready", "status": true, "reason": "AllNodesReady",
                "message": "3 of 3 nodes ready", "lastTransitionTime": "2025-06-01T10:00:00Z"}],
            "endpoint": "https://10.0.0.1:6443",
            "lastRun": "0197-last-run-id"}
    });
    let obj: fleetplane_api::resource::ObjectOf<Cluster> = serde_json::from_value(obj).unwrap();
    let key = ObjectKey::new(
        Scope::Project(project.to_owned()),
        kinds::CLUSTER,
        name.to_owned(),
    );
    let event = |reason: &str, message: &str, minute: i64| ClusterEvent {
        time: jiff::Timestamp::from_second(1_748_772_000 + minute * 60).unwrap(),
        kind: "Normal".to_owned(),
        reason: reason.to_owned(),
        message: message.to_owned(),
        run: Some("0197-last-run-id".to_owned()),
    };
    let caller = fleetplane_api::auth::Caller {
        user: "admin".into(),
        grants: Vec::new(),
        key_id: None,
        request_id: String::new(),
    };
    state
        .write(&caller, move |tx| {
            clusters::save(&mut *tx.ops, &key, &obj)?;
            clusters::add_event(&mut *tx.ops, &key, event("Created", "deploy started", 0))?;
            clusters::add_event(&mut *tx.ops, &key, event("ProviderEvent", XSS, 1))?;
            clusters::add_event(&mut *tx.ops, &key, event("Ready", "cluster is up", 2))
        })
        .await
        .unwrap();
}

#[tokio::test]
async fn cluster_pages_show_status_nodes_conditions_and_events() {
    let (_d, state, s) = seeded().await;
    let template = serde_json::json!({"spec": {"cloudType": "aws",
        "profiles": [{"name": "aws-standard", "version": "1.0.0"}],
        "maintenancePolicy": {"name": "sundays"}}});
    let (st, body) = api(
        &state,
        &s,
        Method::PUT,
        "/v1/projects/blue/cluster-templates/web",
        &template.to_string(),
    )
    .await;
    assert_eq!(st, StatusCode::CREATED, "{body}");
    store_cluster(&state, "blue", "edge", None).await;
    store_cluster(&state, "blue", "shop", Some("web")).await;
    let get = |uri: &'static str| {
        let state = state.clone();
        let cookie = s.0.clone();
        async move { send(&state, Method::GET, uri, &cookie, None, &[]).await }
    };

    let none = get("/console/clusters").await;
    assert_eq!(none.status, StatusCode::OK, "{}", none.body);
    assert!(none.body.contains("choose one"), "{}", none.body);
    assert!(
        none.body
            .contains(r#"href="/console/clusters" aria-current="page""#)
    );

    let list = get("/console/clusters?project=blue").await;
    assert_eq!(list.status, StatusCode::OK, "{}", list.body);
    assert!(
        list.body
            .contains(r#"data-live="dev.fleetplane.cluster" data-live-project="blue""#)
    );
    for part in [
        r#"<tr data-name="edge" data-phase="Running">"#,
        r#"<tr data-name="shop" data-phase="Running">"#,
        r#"href="/console/clusters/shop?project=blue""#,
        r#"<span class="badge phase-running">Running</span>"#,
        r#"<span class="badge health-healthy">Healthy</span>"#,
        "aws-standard@1.0.0",
        "1 / 2",
        "standalone",
        // The template's policy opens Sundays at 00:00 in the cluster's zone.
        " 00:00 IST",
        "Asia&#x2f;Kolkata",
    ] {
        assert!(list.body.contains(part), "{part} not in:\n{}", list.body);
    }

    let detail = get("/console/clusters/shop?project=blue").await;
    assert_eq!(detail.status, StatusCode::OK, "{}", detail.body);
    assert_escaped(&detail.body);
    for part in [
        r#"data-live-name="shop""#,
        "revision 1 of 2",
        r#"<tr data-name="workers-1"><td>workers-1</td><td>workers</td><td>m5.xlarge</td><td>ubuntu-aws-24.04</td><td>1.33.4</td><td>Running</td></tr>"#,
        "AllNodesReady",
        "3 of 3 nodes ready",
        // 2025-06-01T10:00:00Z in Asia/Kolkata.
        "2025-06-01 15:30 IST",
        "/console/profiles/aws-standard/versions/1.0.0?project=blue&scope=tenant",
        "/v1/projects/blue/runs/0197-last-run-id",
        "cluster is up",
        " 00:00 IST – ",
    ] {
        assert!(
            detail.body.contains(part),
            "{part} not in:\n{}",
            detail.body
        );
    }
    // Events newest first.
    let up = detail.body.find("cluster is up").unwrap();
    let started = detail.body.find("deploy started").unwrap();
    assert!(up < started, "events are not newest first");

    for uri in [
        "/console/clusters/nowhere?project=blue",
        "/console/clusters/shop",
        "/console/clusters/shop:detach?project=blue",
        "/console/clusters?project=nowhere",
    ] {
        let r = get(uri).await;
        assert_eq!(r.status, StatusCode::NOT_FOUND, "{uri}: {}", r.body);
    }
}
