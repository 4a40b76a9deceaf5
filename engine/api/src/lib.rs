//! The REST API of the Fleetplane control plane (DESIGN §7): routing, authentication,
//! problem+json errors, the generic object API, the audit log and change events.
//!
//! [`router`] builds the whole application from an [`AppState`]; tests drive it with `oneshot`.

pub mod audit;
pub mod auth;
pub mod cloud_accounts;
pub mod clusters;
pub mod effects;
pub mod error;
pub mod identity;
pub mod json;
pub mod lifecycle;
pub mod macros;
mod memo;
pub mod metrics;
pub mod openapi;
pub mod packs;
pub mod plan;
pub mod policies;
pub mod profiles;
pub mod providers;
pub mod refs;
pub mod resource;
pub mod rollouts;
pub mod state;
pub mod templates;
pub mod workflows;

pub use error::{ApiError, ApiResult};
pub use state::{ApiSettings, AppState, Tx};

use axum::Router;
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::{HeaderValue, Method, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get};
use fleetplane_domain::ErrorCode;
use resource::ApiKind;
use std::time::Instant;
use tower_http::request_id::{MakeRequestUuid, PropagateRequestIdLayer, SetRequestIdLayer};

/// Routes being assembled, with a record of every (method, path) for the OpenAPI check.
pub struct Routes {
    router: Router<AppState>,
    /// Every registered operation.
    pub operations: Vec<(Method, String)>,
}

impl Routes {
    fn new() -> Self {
        Self {
            router: Router::new(),
            operations: Vec::new(),
        }
    }

    /// Adds one method router at `path`, recording `methods`.
    pub fn add(&mut self, path: &str, methods: &[Method], route: MethodRouter<AppState>) {
        for m in methods {
            self.operations.push((m.clone(), path.to_owned()));
        }
        let r = std::mem::take(&mut self.router);
        self.router = r.route(path, route);
    }

    /// Adds list, get, put and delete for kind `K` under `collection` (a path without the
    /// trailing `/{name}`).
    pub fn crud<K: ApiKind>(&mut self, collection: &str) {
        self.add(collection, &[Method::GET], get(resource::list::<K>));
        self.add(
            &format!("{collection}/{{name}}"),
            &[Method::GET, Method::PUT, Method::DELETE],
            get(resource::get::<K>)
                .put(resource::put::<K>)
                .delete(resource::delete::<K>),
        );
    }
}

/// Every authenticated API route.
fn api_routes() -> Routes {
    use axum::routing::delete;
    let mut r = Routes::new();
    r.add("/v1/whoami", &[Method::GET], get(identity::whoami));
    r.crud::<identity::Project>("/v1/projects");
    r.crud::<identity::User>("/v1/users");
    r.add(
        "/v1/users/{user}/api-keys",
        &[Method::GET, Method::POST],
        get(identity::list_api_keys).post(identity::create_api_key),
    );
    r.add(
        "/v1/users/{user}/api-keys/{id}",
        &[Method::DELETE],
        delete(identity::revoke_api_key),
    );
    r.crud::<identity::RoleBinding>("/v1/role-bindings");
    for base in ["/v1", "/v1/projects/{project}"] {
        let c = format!("{base}/maintenance-policies");
        r.crud::<policies::MaintenancePolicy>(&c);
        r.add(
            &format!("{c}/{{name}}/windows"),
            &[Method::GET],
            get(policies::windows),
        );
    }
    r.add(
        "/v1/maintenance-policies:presets",
        &[Method::GET],
        get(policies::presets),
    );
    packs::routes(&mut r);
    profiles::routes(&mut r);
    templates::routes(&mut r);
    clusters::routes(&mut r);
    rollouts::routes(&mut r);
    macros::routes(&mut r);
    provider_routes(&mut r);
    workflows::routes(&mut r);
    r.add("/v1/audit-events", &[Method::GET], get(audit::list));
    r.add("/v1/events", &[Method::GET], get(audit::stream));
    r
}

/// Providers and cloud accounts (DESIGN §8.3).
fn provider_routes(r: &mut Routes) {
    r.add(
        "/v1/providers",
        &[Method::GET, Method::POST],
        get(providers::list)
            .post(providers::install)
            .layer(DefaultBodyLimit::max(providers::MAX_UPLOAD_BYTES)),
    );
    r.add(
        "/v1/providers/{name}",
        &[Method::GET, Method::DELETE],
        get(providers::get).delete(providers::remove),
    );
    let c = "/v1/projects/{project}/cloud-accounts";
    r.add(
        c,
        &[Method::GET],
        get(resource::list::<cloud_accounts::CloudAccount>),
    );
    r.add(
        &format!("{c}/{{name}}"),
        &[Method::GET, Method::PUT, Method::DELETE],
        get(resource::get::<cloud_accounts::CloudAccount>)
            .put(cloud_accounts::put)
            .delete(resource::delete::<cloud_accounts::CloudAccount>),
    );
}

/// The public routes (no authentication).
fn public_routes() -> Routes {
    let mut r = Routes::new();
    r.add("/healthz", &[Method::GET], get(healthz));
    r.add("/readyz", &[Method::GET], get(readyz));
    r.add("/metrics", &[Method::GET], get(metrics_text));
    r.add(
        "/openapi.json",
        &[Method::GET],
        get(|| async { axum::Json(openapi::document()) }),
    );
    r
}

/// Liveness: fails only when the process cannot recover by itself — its database refuses
/// every write after an I/O error until it is opened again — so a supervisor restarts it
/// (once the disk has room again, the restart is the recovery).
async fn healthz(State(state): State<AppState>) -> Response {
    match state.store.poisoned() {
        None => "ok".into_response(),
        Some(why) => ApiError::new(
            ErrorCode::Unavailable,
            format!("the database refuses writes until the server restarts: {why}"),
        )
        .into_response(),
    }
}

async fn readyz(State(state): State<AppState>) -> Response {
    if let Some(why) = state.store.poisoned() {
        ApiError::new(ErrorCode::Unavailable, format!("storage failed: {why}")).into_response()
    } else if state.is_ready() {
        "ready".into_response()
    } else {
        ApiError::new(ErrorCode::Unavailable, "not ready").into_response()
    }
}

async fn metrics_text(State(state): State<AppState>) -> Response {
    let mut res = state.metrics.render().into_response();
    res.headers_mut().insert(
        "content-type",
        HeaderValue::from_static("text/plain; version=0.0.4"),
    );
    res
}

/// Every (method, path) the router serves, for the OpenAPI consistency test.
pub fn registered_operations() -> Vec<(Method, String)> {
    let mut ops = api_routes().operations;
    ops.extend(public_routes().operations);
    ops
}

/// Access log and metrics for every request.
async fn observe(State(state): State<AppState>, req: Request, next: Next) -> Response {
    let start = Instant::now();
    let method = req.method().clone();
    let path = req.uri().path().to_owned();
    let id = req
        .headers()
        .get(error::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let res = error::CURRENT_REQUEST_ID
        .scope(id.clone(), next.run(req))
        .await;
    let elapsed = start.elapsed();
    state.metrics.observe(res.status().as_u16(), elapsed);
    tracing::info!(
        target: "fleetplane::access",
        request_id = %id,
        method = %method,
        path = %path,
        status = res.status().as_u16(),
        micros = elapsed.as_micros() as u64,
        "request"
    );
    res
}

async fn not_found() -> ApiError {
    ApiError::new(ErrorCode::NotFound, "no such route")
}

async fn method_not_allowed() -> ApiError {
    ApiError::new(
        ErrorCode::MethodNotAllowed,
        "method not allowed on this path",
    )
}

/// Turns a handler panic into a 500 problem (the panic message stays in the log).
fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let msg = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("panic");
    ApiError::internal(format!("handler panicked: {msg}")).into_response()
}

/// Builds the whole API application.
pub fn router(state: AppState) -> Router {
    router_with(state, Router::new())
}

/// Builds the application with `extra` routes (the console) sharing the same middleware
/// (request ids, access log, body limit, panic guard) but not the API's authentication.
pub fn router_with(state: AppState, extra: Router<AppState>) -> Router {
    let api = api_routes().router.layer(middleware::from_fn_with_state(
        state.clone(),
        auth::authenticate,
    ));
    let public = public_routes().router;
    let request_id = axum::http::HeaderName::from_static(error::REQUEST_ID);
    Router::new()
        .merge(api)
        .merge(public)
        .merge(extra.layer(middleware::from_fn_with_state(
            state.clone(),
            auth::limit_by_address,
        )))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::Extension(json::BodyLimit(
            state.settings.max_body_bytes,
        )))
        .layer(DefaultBodyLimit::max(state.settings.max_body_bytes))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            panic_response,
        ))
        .layer(middleware::from_fn_with_state(state.clone(), observe))
        .layer(PropagateRequestIdLayer::new(request_id.clone()))
        .layer(SetRequestIdLayer::new(request_id, MakeRequestUuid))
        .with_state(state)
}

/// Answers 500 for requests whose status is not a success without a body, for tests.
pub fn is_problem(status: StatusCode) -> bool {
    status.is_client_error() || status.is_server_error()
}
