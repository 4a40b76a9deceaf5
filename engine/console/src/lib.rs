//! The web console: server-rendered HTML from the same binary, hand-written CSS, no front-end
//! build step. Console users sign in with user name and password (argon2id); the session lives
//! in an HttpOnly, SameSite=Strict cookie, and every form post carries a CSRF token.
//!
//! API calls made by the console's own scripts authenticate with the same cookie and send the
//! session's CSRF token in `x-csrf-token` (checked by the API's authentication middleware).

use axum::Router;
use axum::extract::{Form, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use base64::Engine;
use fleetplane_api::auth::{self, Caller, SESSION_COOKIE, SESSION_OF_USER, Session};
use fleetplane_api::identity::Project;
use fleetplane_api::resource::{ListParams, list_page};
use fleetplane_api::{ApiError, AppState};
use fleetplane_domain::authz::{Permission, Resource, Verb};
use fleetplane_store::tables::kinds;
use fleetplane_store::{ObjectKey, Precondition, ReadExt, Reference, Scope, WriteExt};
use minijinja::{Environment, context};
use serde::Deserialize;
use std::sync::LazyLock;

/// Cookie holding the login form's CSRF token (double-submit: it must equal the form field).
const LOGIN_CSRF_COOKIE: &str = "fp_login_csrf";
/// How long a console session lasts.
const SESSION_HOURS: i64 = 12;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
    for (name, src) in [
        ("layout.html", include_str!("../templates/layout.html")),
        ("login.html", include_str!("../templates/login.html")),
        ("home.html", include_str!("../templates/home.html")),
    ] {
        if let Err(e) = env.add_template(name, src) {
            tracing::error!(template = name, error = %e, "console template does not compile");
        }
    }
    env
});

const CSS: &str = include_str!("../static/console.css");

/// The console routes, to merge into the application router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(home))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", axum::routing::post(logout))
        .route("/console/static/console.css", get(css))
}

fn random_token() -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 32]>())
}

fn render(name: &str, ctx: minijinja::Value) -> Response {
    match TEMPLATES.get_template(name).and_then(|t| t.render(ctx)) {
        Ok(html) => Html(html).into_response(),
        Err(e) => ApiError::internal(format!("console template {name}: {e}")).into_response(),
    }
}

fn cookie_header(name: &str, value: &str, max_age: i64) -> HeaderValue {
    let v = format!("{name}={value}; Path=/; HttpOnly; SameSite=Strict; Max-Age={max_age}");
    HeaderValue::from_str(&v).unwrap_or_else(|_| HeaderValue::from_static(""))
}

fn cookies(headers: &HeaderMap) -> Option<String> {
    headers
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn current_session(
    state: &AppState,
    headers: &HeaderMap,
) -> Result<Option<Session>, ApiError> {
    let c = cookies(headers);
    let now = jiff::Timestamp::now();
    state
        .read(move |r| auth::session_from_cookies(r, c.as_deref(), now))
        .await
}

async fn css() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8")], CSS).into_response()
}

fn login_form(error: Option<&str>, username: &str, status: StatusCode) -> Response {
    let token = random_token();
    let mut res = render(
        "login.html",
        context! { login_csrf => token.clone(), error => error, username => username, user => (), csrf => () },
    );
    *res.status_mut() = status;
    res.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(LOGIN_CSRF_COOKIE, &token, 3600),
    );
    res
}

async fn login_page() -> Response {
    login_form(None, "", StatusCode::OK)
}

/// The login form's fields.
#[derive(Deserialize)]
struct LoginForm {
    username: String,
    password: String,
    csrf: String,
}

fn tokens_match(a: &str, b: &str) -> bool {
    a.len() == b.len()
        && a.bytes()
            .zip(b.bytes())
            .fold(0u8, |acc, (x, y)| acc | (x ^ y))
            == 0
}

async fn login(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LoginForm>,
) -> Response {
    let c = cookies(&headers);
    let expected = auth::cookie(c.as_deref(), LOGIN_CSRF_COOKIE)
        .unwrap_or_default()
        .to_owned();
    if expected.is_empty() || !tokens_match(&expected, &form.csrf) {
        return login_form(
            Some("The form expired; please sign in again."),
            &form.username,
            StatusCode::FORBIDDEN,
        );
    }
    let user = form.username.trim().to_owned();
    let u = user.clone();
    let hash = state
        .read(move |r| {
            Ok(
                r.get_as::<String>(&ObjectKey::tenant(kinds::CREDENTIAL, &u))?
                    .map(|(h, _)| h),
            )
        })
        .await;
    let hash = match hash {
        Ok(h) => h,
        Err(e) => return e.into_response(),
    };
    let password = form.password;
    // argon2 is deliberately slow: keep it off the async workers.
    let ok = tokio::task::spawn_blocking(move || {
        hash.is_some_and(|h| auth::verify_password(&password, &h))
    })
    .await
    .unwrap_or(false);
    if !ok {
        return login_form(
            Some("Unknown user name or wrong password."),
            &user,
            StatusCode::UNAUTHORIZED,
        );
    }
    let session_id = random_token();
    let (name, _) = auth::key_digest(&session_id);
    let caller = Caller {
        user: user.clone(),
        grants: Vec::new(),
        key_id: None,
        request_id: String::new(),
    };
    let written = state
        .write(&caller, move |tx| {
            let expires_at = tx
                .now
                .checked_add(jiff::SignedDuration::from_hours(SESSION_HOURS))
                .map_err(|e| ApiError::internal(e.to_string()))?;
            let session = Session {
                user: user.clone(),
                csrf: random_token(),
                expires_at,
            };
            let refs = [Reference {
                relation: SESSION_OF_USER,
                target: user.clone(),
            }];
            tx.ops.put_as(
                &ObjectKey::tenant(kinds::SESSION, &name),
                &session,
                Precondition::MustNotExist,
                &refs,
            )?;
            tx.audit("login", &format!("users/{user}"), None, None, None)
        })
        .await;
    if let Err(e) = written {
        return e.into_response();
    }
    let mut res = Redirect::to("/console").into_response();
    *res.status_mut() = StatusCode::SEE_OTHER;
    res.headers_mut().append(
        header::SET_COOKIE,
        cookie_header(SESSION_COOKIE, &session_id, SESSION_HOURS * 3600),
    );
    res.headers_mut()
        .append(header::SET_COOKIE, cookie_header(LOGIN_CSRF_COOKIE, "", 0));
    res
}

/// The logout form's fields.
#[derive(Deserialize)]
struct LogoutForm {
    csrf: String,
}

async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Form(form): Form<LogoutForm>,
) -> Response {
    let session = match current_session(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return Redirect::to("/console/login").into_response(),
        Err(e) => return e.into_response(),
    };
    if !tokens_match(&session.csrf, &form.csrf) {
        return ApiError::forbidden("a valid CSRF token").into_response();
    }
    let c = cookies(&headers);
    let id = auth::cookie(c.as_deref(), SESSION_COOKIE)
        .unwrap_or_default()
        .to_owned();
    let (name, _) = auth::key_digest(&id);
    let caller = Caller {
        user: session.user.clone(),
        grants: Vec::new(),
        key_id: None,
        request_id: String::new(),
    };
    let user = session.user.clone();
    let r = state
        .write(&caller, move |tx| {
            tx.ops
                .delete(&ObjectKey::tenant(kinds::SESSION, &name), Precondition::Any)?;
            tx.audit("logout", &format!("users/{user}"), None, None, None)
        })
        .await;
    if let Err(e) = r {
        return e.into_response();
    }
    let mut res = Redirect::to("/console/login").into_response();
    *res.status_mut() = StatusCode::SEE_OTHER;
    res.headers_mut()
        .append(header::SET_COOKIE, cookie_header(SESSION_COOKIE, "", 0));
    res
}

async fn home(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let session = match current_session(&state, &headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return Redirect::to("/console/login").into_response(),
        Err(e) => return e.into_response(),
    };
    let user = session.user.clone();
    let max = state.settings.max_page;
    let data = state
        .read(move |r| {
            let grants = auth::grants_of(r, &user)?;
            let caller = Caller {
                user: user.clone(),
                grants: grants.clone(),
                key_id: None,
                request_id: String::new(),
            };
            let keep = |p: &fleetplane_api::resource::ObjectOf<Project>| {
                caller.can(
                    Permission::new(Resource::Project, Verb::Get),
                    Some(&p.metadata.name),
                )
            };
            let (projects, _) =
                list_page::<Project>(r, &Scope::Tenant, "", &ListParams::default(), max, &keep)?;
            Ok((grants, projects))
        })
        .await;
    let (grants, projects) = match data {
        Ok(d) => d,
        Err(e) => return e.into_response(),
    };
    let projects: Vec<_> = projects
        .iter()
        .map(|p| {
            context! {
                name => p.metadata.name.clone(),
                display_name => p.spec.display_name.clone().unwrap_or_default(),
                created_at => p.metadata.created_at.map(|t| t.to_string()).unwrap_or_default(),
            }
        })
        .collect();
    let grants: Vec<String> = grants
        .iter()
        .map(|g| match &g.project {
            Some(p) => format!("{} in project {p}", g.role.as_str()),
            None => format!("{} (whole tenant)", g.role.as_str()),
        })
        .collect();
    render(
        "home.html",
        context! { user => session.user, csrf => session.csrf, projects => projects, grants => grants },
    )
}
