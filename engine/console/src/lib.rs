//! The web console: server-rendered HTML from the same binary, hand-written CSS, no front-end
//! build step. Console users sign in with user name and password (argon2id); the session lives
//! in an HttpOnly, SameSite=Strict cookie, and every form post carries a CSRF token.
//!
//! API calls made by the console's own scripts authenticate with the same cookie and send the
//! session's CSRF token in `x-csrf-token` (checked by the API's authentication middleware).
//!
//! The read-only pages (projects, profiles and their versions, maintenance policies, cluster
//! templates, clusters, audit) call the API's own handlers with the signed-in user as the caller and
//! render their JSON answers, so a page shows exactly what `GET /v1/...` would (same permission
//! checks, 404 for invisible projects, sensitive values masked). `static/console.js` subscribes
//! to `/v1/events` and re-fetches the live region of a list page when an event concerns it.

use axum::Router;
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::get;
use base64::Engine;
use fleetplane_api::auth::{self, Caller, SESSION_COOKIE, SESSION_OF_USER, Session};
use fleetplane_api::clusters::{self, Cluster};
use fleetplane_api::identity::Project;
use fleetplane_api::policies::MaintenancePolicy;
use fleetplane_api::profiles::ProfilePath;
use fleetplane_api::resource::{ListParams, ObjectPath};
use fleetplane_api::{ApiError, ApiResult, AppState};
use fleetplane_domain::authz::{Permission, Resource, Verb};
use fleetplane_store::tables::kinds;
use fleetplane_store::{ObjectKey, Precondition, ReadExt, Reference, Scope, WriteExt};
use minijinja::{Environment, context};
use serde::Deserialize;
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::LazyLock;

/// Cookie holding the login form's CSRF token (double-submit: it must equal the form field).
const LOGIN_CSRF_COOKIE: &str = "fp_login_csrf";
/// How long a console session lasts.
const SESSION_HOURS: i64 = 12;

static TEMPLATES: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    // API answers omit empty optional members: allow `{% if x.missing %}`, fail on printing them.
    env.set_undefined_behavior(minijinja::UndefinedBehavior::SemiStrict);
    env.add_filter("in_zone", |ts: String, zone: String| in_zone(&ts, &zone));
    for (name, src) in [
        ("layout.html", include_str!("../templates/layout.html")),
        ("login.html", include_str!("../templates/login.html")),
        ("home.html", include_str!("../templates/home.html")),
        ("profiles.html", include_str!("../templates/profiles.html")),
        ("version.html", include_str!("../templates/version.html")),
        ("policies.html", include_str!("../templates/policies.html")),
        (
            "templates.html",
            include_str!("../templates/templates.html"),
        ),
        ("clusters.html", include_str!("../templates/clusters.html")),
        ("cluster.html", include_str!("../templates/cluster.html")),
        ("audit.html", include_str!("../templates/audit.html")),
        ("error.html", include_str!("../templates/error.html")),
    ] {
        if let Err(e) = env.add_template(name, src) {
            tracing::error!(template = name, error = %e, "console template does not compile");
        }
    }
    env
});

const CSS: &str = include_str!("../static/console.css");
const JS: &str = include_str!("../static/console.js");

/// The console routes, to merge into the application router.
pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { Redirect::to("/console") }))
        .route("/console", get(home))
        .route("/console/login", get(login_page).post(login))
        .route("/console/logout", axum::routing::post(logout))
        .route("/console/profiles", get(profiles_page))
        .route(
            "/console/profiles/{name}/versions/{version}",
            get(version_page),
        )
        .route("/console/policies", get(policies_page))
        .route("/console/templates", get(templates_page))
        .route("/console/clusters", get(clusters_page))
        .route("/console/clusters/{name}", get(cluster_page))
        .route("/console/audit", get(audit_page))
        .route("/console/static/console.css", get(css))
        .route("/console/static/console.js", get(js))
}

/// An RFC 3339 instant as wall-clock time in IANA zone `zone` (`2025-06-08 02:00 CEST`); the
/// zone's name is left to the page. An unknown zone shows UTC, an unparsable instant as given.
fn in_zone(ts: &str, zone: &str) -> String {
    let Ok(t) = ts.parse::<jiff::Timestamp>() else {
        return ts.to_owned();
    };
    let tz = jiff::tz::TimeZone::get(zone).unwrap_or(jiff::tz::TimeZone::UTC);
    t.to_zoned(tz).strftime("%Y-%m-%d %H:%M %Z").to_string()
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

async fn js() -> Response {
    (
        [(header::CONTENT_TYPE, "text/javascript; charset=utf-8")],
        JS,
    )
        .into_response()
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

/// Query of every console page: the current project (`?project=`), and on a version page the
/// scope of the profile (`?scope=tenant` for a tenant profile while a project is selected).
#[derive(Debug, Default, Deserialize)]
struct PageQuery {
    project: Option<String>,
    scope: Option<String>,
}

impl PageQuery {
    fn project(&self) -> Option<String> {
        self.project
            .as_deref()
            .map(str::trim)
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
    }
}

/// The signed-in user as the API sees them, and the projects they may see.
struct Viewer {
    session: Session,
    caller: Caller,
    projects: Vec<Value>,
}

/// Largest API answer a page renders.
const MAX_ANSWER: usize = 64 << 20;

/// The JSON body of an API handler's answer.
async fn answer(r: ApiResult<Response>) -> ApiResult<Value> {
    let res = r?;
    let bytes = axum::body::to_bytes(res.into_body(), MAX_ANSWER)
        .await
        .map_err(|e| ApiError::internal(format!("reading an API answer: {e}")))?;
    serde_json::from_slice(&bytes)
        .map_err(|e| ApiError::internal(format!("an API answer is not JSON: {e}")))
}

/// Lists kind `K` at tenant scope (`None`) or in a project through the API's own handler, so the
/// page sees exactly what the API would answer this user.
async fn list_kind<K: fleetplane_api::resource::ApiKind>(
    state: &AppState,
    caller: &Caller,
    project: Option<String>,
) -> ApiResult<Value> {
    let path: BTreeMap<String, String> = project
        .map(|p| BTreeMap::from([("project".to_owned(), p)]))
        .unwrap_or_default();
    answer(
        fleetplane_api::resource::list::<K>(
            State(state.clone()),
            caller.clone(),
            Path(path),
            fleetplane_api::json::Query(ListParams::default()),
        )
        .await,
    )
    .await
}

/// A JSON answer as a template value.
fn mj<T: serde::Serialize>(v: &T) -> minijinja::Value {
    minijinja::Value::from(minijinja::value::Serde(v))
}

fn items(v: Value) -> Value {
    match v {
        Value::Object(mut m) => m.remove("items").unwrap_or(Value::Array(Vec::new())),
        _ => Value::Array(Vec::new()),
    }
}

/// The session's user with their grants and visible projects, or the response to send instead
/// (a redirect to the login page, or an error).
async fn signed_in(state: &AppState, headers: &HeaderMap) -> Result<Viewer, Response> {
    let session = match current_session(state, headers).await {
        Ok(Some(s)) => s,
        Ok(None) => return Err(Redirect::to("/console/login").into_response()),
        Err(e) => return Err(e.into_response()),
    };
    let user = session.user.clone();
    let grants = state
        .read(move |r| auth::grants_of(r, &user))
        .await
        .map_err(IntoResponse::into_response)?;
    let caller = Caller {
        user: session.user.clone(),
        grants,
        key_id: None,
        request_id: String::new(),
    };
    let projects = answer(
        fleetplane_api::resource::list::<Project>(
            State(state.clone()),
            caller.clone(),
            Path(BTreeMap::new()),
            fleetplane_api::json::Query(ListParams::default()),
        )
        .await,
    )
    .await
    .map_err(IntoResponse::into_response)?;
    Ok(Viewer {
        session,
        caller,
        projects: match items(projects) {
            Value::Array(a) => a,
            _ => Vec::new(),
        },
    })
}

/// Renders a page inside the layout: the navigation (with `active` marked) and the project
/// selector come from the viewer.
fn page(
    viewer: &Viewer,
    template: &str,
    active: &str,
    project: Option<&str>,
    extra: minijinja::Value,
) -> Response {
    let names: Vec<String> = viewer
        .projects
        .iter()
        .filter_map(|p| p["metadata"]["name"].as_str().map(str::to_owned))
        .collect();
    let can_audit = viewer
        .caller
        .can(Permission::new(Resource::Audit, Verb::List), None);
    render(
        template,
        context! {
            user => viewer.session.user.clone(),
            csrf => viewer.session.csrf.clone(),
            nav => active,
            project => project,
            project_names => names,
            can_audit => can_audit,
            ..extra
        },
    )
}

/// An error page with the API error's status (404 for an invisible project, 403, …).
fn error_page(viewer: &Viewer, active: &str, project: Option<&str>, e: &ApiError) -> Response {
    let status = StatusCode::from_u16(e.error.code.http_status())
        .unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut res = page(
        viewer,
        "error.html",
        active,
        project,
        context! { status => status.as_u16(), reason => status.canonical_reason().unwrap_or("Error"), detail => e.error.detail.clone() },
    );
    *res.status_mut() = status;
    res
}

/// A tenant-scope listing: its items, or why the user may not see it (403 is shown as a note;
/// other errors fail the page).
fn tenant_section(r: ApiResult<Value>) -> ApiResult<minijinja::Value> {
    match r {
        Ok(v) => Ok(context! { items => mj(&items(v)), denied => false }),
        Err(e) if e.error.code.http_status() == 403 => {
            Ok(context! { items => Vec::<String>::new(), denied => true })
        }
        Err(e) => Err(e),
    }
}

async fn home(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let viewer = match signed_in(&state, &headers).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let grants: Vec<String> = viewer
        .caller
        .grants
        .iter()
        .map(|g| match &g.project {
            Some(p) => format!("{} in project {p}", g.role.as_str()),
            None => format!("{} (whole tenant)", g.role.as_str()),
        })
        .collect();
    let project = q.project();
    page(
        &viewer,
        "home.html",
        "projects",
        project.as_deref(),
        context! { projects => mj(&viewer.projects), grants => grants },
    )
}

/// A list page of kind `K`: the tenant section and, when a project is chosen, its section.
async fn kind_page<K: fleetplane_api::resource::ApiKind>(
    state: &AppState,
    headers: &HeaderMap,
    q: &PageQuery,
    template: &str,
    nav: &str,
) -> Response {
    let viewer = match signed_in(state, headers).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let project = q.project();
    let sections = async {
        let tenant = tenant_section(list_kind::<K>(state, &viewer.caller, None).await)?;
        let in_project = match &project {
            Some(p) => Some(items(
                list_kind::<K>(state, &viewer.caller, Some(p.clone())).await?,
            )),
            None => None,
        };
        Ok::<_, ApiError>((tenant, in_project))
    };
    match sections.await {
        Ok((tenant, in_project)) => page(
            &viewer,
            template,
            nav,
            project.as_deref(),
            context! { tenant => tenant, in_project => mj(&in_project) },
        ),
        Err(e) => error_page(&viewer, nav, project.as_deref(), &e),
    }
}

async fn profiles_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    kind_page::<fleetplane_api::profiles::Profile>(
        &state,
        &headers,
        &q,
        "profiles.html",
        "profiles",
    )
    .await
}

async fn version_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path((name, version)): Path<(String, String)>,
    Query(q): Query<PageQuery>,
) -> Response {
    let viewer = match signed_in(&state, &headers).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let project = q.project();
    let scope_project = match q.scope.as_deref() {
        Some("tenant") => None,
        _ => project.clone(),
    };
    // `:export` and other action suffixes are API-only.
    if version.contains(':') {
        let e = ApiError::not_found("profile version", &format!("{name}@{version}"));
        return error_page(&viewer, "profiles", project.as_deref(), &e);
    }
    let got = answer(
        fleetplane_api::profiles::get_version(
            State(state.clone()),
            viewer.caller.clone(),
            Path(ProfilePath {
                project: scope_project.clone(),
                name: Some(name.clone()),
                version: Some(version.clone()),
            }),
        )
        .await,
    )
    .await;
    match got {
        Ok(v) => page(
            &viewer,
            "version.html",
            "profiles",
            project.as_deref(),
            context! { v => mj(&v), scope_project => scope_project },
        ),
        Err(e) => error_page(&viewer, "profiles", project.as_deref(), &e),
    }
}

async fn policies_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    kind_page::<MaintenancePolicy>(&state, &headers, &q, "policies.html", "policies").await
}

async fn templates_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    kind_page::<fleetplane_api::templates::ClusterTemplate>(
        &state,
        &headers,
        &q,
        "templates.html",
        "templates",
    )
    .await
}

/// Cluster events shown on a cluster page (the API keeps up to [`clusters::MAX_EVENTS`]).
const EVENTS_SHOWN: usize = 50;

/// The clusters of the selected project (clusters live in projects; without one the page says
/// so).
async fn clusters_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let viewer = match signed_in(&state, &headers).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let Some(project) = q.project() else {
        return page(
            &viewer,
            "clusters.html",
            "clusters",
            None,
            context! { clusters => () },
        );
    };
    match list_kind::<Cluster>(&state, &viewer.caller, Some(project.clone())).await {
        Ok(v) => {
            // One page of the API's answer; the rest would need `?continue=` paging.
            let more = v.get("continue").is_some();
            page(
                &viewer,
                "clusters.html",
                "clusters",
                Some(&project),
                context! { clusters => mj(&items(v)), more => more },
            )
        }
        Err(e) => error_page(&viewer, "clusters", Some(&project), &e),
    }
}

/// One cluster of the selected project: what `GET …/clusters/{name}` answers, and its latest
/// events (newest first) when the user may read the cluster.
async fn cluster_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Path(name): Path<String>,
    Query(q): Query<PageQuery>,
) -> Response {
    let viewer = match signed_in(&state, &headers).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let project = q.project();
    // Clusters live in projects; `:attach` and other action suffixes are API-only.
    let Some(p) = project.clone().filter(|_| !name.contains(':')) else {
        let e = ApiError::not_found("cluster", &name);
        return error_page(&viewer, "clusters", project.as_deref(), &e);
    };
    let got = async {
        let c = answer(
            fleetplane_api::resource::get::<Cluster>(
                State(state.clone()),
                viewer.caller.clone(),
                Path(ObjectPath {
                    project: Some(p.clone()),
                    name: Some(name.clone()),
                }),
            )
            .await,
        )
        .await?;
        // Read after the API's own permission check passed.
        let key = ObjectKey::new(Scope::Project(p.clone()), kinds::CLUSTER, name.clone());
        let mut events = state.read(move |r| clusters::read_events(r, &key)).await?;
        events.reverse();
        events.truncate(EVENTS_SHOWN);
        Ok::<_, ApiError>((c, events))
    };
    match got.await {
        Ok((c, events)) => page(
            &viewer,
            "cluster.html",
            "clusters",
            Some(&p),
            context! { c => mj(&c), events => mj(&events) },
        ),
        Err(e) => error_page(&viewer, "clusters", Some(&p), &e),
    }
}

async fn audit_page(
    State(state): State<AppState>,
    headers: HeaderMap,
    Query(q): Query<PageQuery>,
) -> Response {
    let viewer = match signed_in(&state, &headers).await {
        Ok(v) => v,
        Err(res) => return res,
    };
    let project = q.project();
    let got = fleetplane_api::audit::list(
        State(state.clone()),
        viewer.caller.clone(),
        fleetplane_api::json::Query(Default::default()),
    )
    .await;
    match got {
        Ok(axum::Json(v)) => page(
            &viewer,
            "audit.html",
            "audit",
            project.as_deref(),
            context! { entries => mj(&items(v)) },
        ),
        Err(e) => error_page(&viewer, "audit", project.as_deref(), &e),
    }
}

#[cfg(test)]
mod tests {
    use super::{TEMPLATES, in_zone};

    #[test]
    fn every_template_compiles() {
        for name in [
            "layout.html",
            "login.html",
            "home.html",
            "profiles.html",
            "version.html",
            "policies.html",
            "templates.html",
            "clusters.html",
            "cluster.html",
            "audit.html",
            "error.html",
        ] {
            if let Err(e) = TEMPLATES.get_template(name) {
                panic!("{name}: {e:#}");
            }
        }
    }

    #[test]
    fn instants_show_in_the_clusters_zone() {
        for (ts, zone, shown) in [
            (
                "2025-06-08T00:00:00Z",
                "Europe/Berlin",
                "2025-06-08 02:00 CEST",
            ),
            (
                "2025-01-05T00:00:00Z",
                "Europe/Berlin",
                "2025-01-05 01:00 CET",
            ),
            (
                "2025-06-08T00:00:00Z",
                "America/New_York",
                "2025-06-07 20:00 EDT",
            ),
            ("2025-06-08T00:00:00Z", "UTC", "2025-06-08 00:00 UTC"),
            // Unknown zones fall back to UTC; what does not parse is shown as given.
            (
                "2025-06-08T00:00:00Z",
                "Etc/Unknown",
                "2025-06-08 00:00 UTC",
            ),
            ("soon", "UTC", "soon"),
        ] {
            assert_eq!(in_zone(ts, zone), shown, "{ts} in {zone}");
        }
    }
}
