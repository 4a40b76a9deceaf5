//! Console sign-in, sessions and CSRF, in-process over a real redb file.

use axum::body::Body;
use axum::http::{Method, Request, StatusCode, header};
use fleetplane_api::{ApiSettings, AppState};
use fleetplane_store::RedbStorage;
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
    let page = send(state, Method::GET, "/console/login", "", None, &[]).await;
    let login_csrf = cookie_value(&page, "fp_login_csrf");
    assert_eq!(csrf_in(&page.body), login_csrf);
    let r = send(
        state,
        Method::POST,
        "/console/login",
        &format!("fp_login_csrf={login_csrf}"),
        Some(&format!(
            "username=admin&password={}&csrf={login_csrf}",
            PASSWORD.replace(' ', "+")
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
