//! Authentication (API keys, console sessions) and the [`Caller`] every handler acts as.
//!
//! API keys are `fpk_` plus 32 random bytes (base64url). They are high-entropy, so the store
//! keeps a SHA-256 of the key (its first 24 hex digits name the record, the whole digest is
//! compared in constant time). Passwords are low-entropy and use argon2id.

use crate::error::{ApiError, ApiResult};
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use base64::Engine;
use fleetplane_domain::authz::{Decision, Grant, Permission, decide};
use fleetplane_domain::{ErrorCode, Object};
use fleetplane_store::tables::kinds;
use fleetplane_store::{ObjectKey, ReadExt, ReadOps, Reference};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::net::SocketAddr;

/// Who is calling, resolved once per request by [`authenticate`].
#[derive(Debug, Clone)]
pub struct Caller {
    /// The user name.
    pub user: String,
    /// The user's role grants.
    pub grants: Vec<Grant>,
    /// The API key id, when authenticated by key.
    pub key_id: Option<String>,
    /// The request id, for the audit log.
    pub request_id: String,
}

impl Caller {
    /// The name written to the audit log.
    pub fn audit_name(&self) -> String {
        format!("user:{}", self.user)
    }

    /// The system itself (bootstrap, workflows).
    pub fn system() -> Self {
        Self {
            user: "system".into(),
            grants: vec![Grant {
                role: fleetplane_domain::authz::Role::TenantAdmin,
                project: None,
            }],
            key_id: None,
            request_id: String::new(),
        }
    }

    /// Checks a permission on an object in `project` (None: tenant scope).
    ///
    /// # Errors
    /// `Forbidden` (403) when the caller sees the object but lacks the permission; `NotFound`
    /// (404) when the caller may not know the object exists.
    pub fn require(&self, p: Permission, project: Option<&str>) -> ApiResult<()> {
        match decide(&self.grants, p, project) {
            Decision::Allow => Ok(()),
            Decision::Forbid => Err(ApiError::forbidden(p)),
            Decision::Invisible => Err(ApiError::new(
                ErrorCode::NotFound,
                format!("project \"{}\" not found", project.unwrap_or_default()),
            )),
        }
    }

    /// Whether the permission is granted (no error).
    pub fn can(&self, p: Permission, project: Option<&str>) -> bool {
        decide(&self.grants, p, project) == Decision::Allow
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        parts
            .extensions
            .get::<Caller>()
            .cloned()
            .ok_or_else(|| ApiError::unauthorized("authentication required"))
    }
}

/// A stored API key (kind `apiKey`, named by key id).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ApiKeySpec {
    /// The owner.
    pub user: String,
    /// A label chosen by the owner.
    pub name: String,
    /// When it stops working.
    pub expires_at: jiff::Timestamp,
}

/// Status of an API key.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyStatus {
    /// Revoked keys never authenticate again.
    #[serde(default)]
    pub revoked: bool,
    /// When it was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<jiff::Timestamp>,
}

/// An API key record as stored: the object plus the digest of the key.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StoredApiKey {
    /// The object shown by the API.
    #[serde(flatten)]
    pub object: Object<ApiKeySpec, ApiKeyStatus>,
    /// SHA-256 of the key, hex.
    pub digest: String,
}

/// Makes a new random API key.
pub fn generate_key() -> String {
    let bytes: [u8; 32] = rand::random();
    format!(
        "fpk_{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The record id and digest of a key.
pub fn key_digest(key: &str) -> (String, String) {
    let digest = hex::encode(Sha256::digest(key.as_bytes()));
    (digest[..24].to_owned(), digest)
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Relation from a role binding to its user.
pub const BINDING_OF_USER: &str = "binding-of-user";
/// Relation from a role binding to its project.
pub const BINDING_IN_PROJECT: &str = "binding-in-project";
/// Relation from an API key to its user.
pub const KEY_OF_USER: &str = "key-of-user";
/// Relation from a console session to its user.
pub const SESSION_OF_USER: &str = "session-of-user";

/// The grants of `user`, from its role bindings.
///
/// # Errors
/// Store failures.
pub fn grants_of(r: &dyn ReadOps, user: &str) -> ApiResult<Vec<Grant>> {
    let reference = Reference {
        relation: BINDING_OF_USER,
        target: user.to_owned(),
    };
    let mut grants = Vec::new();
    for key in r.referrers(&reference, 10_000)? {
        if let Some((b, _)) =
            r.get_as::<Object<crate::identity::RoleBindingSpec, serde_json::Value>>(&key)?
        {
            grants.push(Grant {
                role: b.spec.role,
                project: b.spec.project,
            });
        }
    }
    Ok(grants)
}

/// Resolves a bearer key to its user, if the key is valid now.
fn user_of_key(
    r: &dyn ReadOps,
    key: &str,
    now: jiff::Timestamp,
) -> ApiResult<Option<(String, String)>> {
    let (id, digest) = key_digest(key);
    let Some((stored, _)) = r.get_as::<StoredApiKey>(&ObjectKey::tenant(kinds::API_KEY, &id))?
    else {
        return Ok(None);
    };
    let valid = constant_time_eq(stored.digest.as_bytes(), digest.as_bytes())
        && !stored.object.status.revoked
        && stored.object.spec.expires_at > now;
    Ok(valid.then(|| (stored.object.spec.user.clone(), id)))
}

/// Name of the console session cookie.
pub const SESSION_COOKIE: &str = "fp_session";
/// Header carrying the CSRF token for cookie-authenticated unsafe requests.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A console session (kind `session`, named by the digest of the session id).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    /// The user.
    pub user: String,
    /// The CSRF token forms and scripts must send back.
    pub csrf: String,
    /// When it expires.
    pub expires_at: jiff::Timestamp,
}

/// Finds the session named by the cookie header, if valid now.
///
/// # Errors
/// Store failures.
pub fn session_from_cookies(
    r: &dyn ReadOps,
    cookies: Option<&str>,
    now: jiff::Timestamp,
) -> ApiResult<Option<Session>> {
    let Some(id) = cookie(cookies, SESSION_COOKIE) else {
        return Ok(None);
    };
    let (name, _) = key_digest(id);
    let Some((s, _)) = r.get_as::<Session>(&ObjectKey::tenant(kinds::SESSION, name))? else {
        return Ok(None);
    };
    Ok((s.expires_at > now).then_some(s))
}

/// The value of cookie `name` in a `Cookie` header.
pub fn cookie<'a>(header: Option<&'a str>, name: &str) -> Option<&'a str> {
    header?.split(';').find_map(|c| {
        let (k, v) = c.trim().split_once('=')?;
        (k == name).then_some(v)
    })
}

fn client_ip(req: &Request) -> Option<std::net::IpAddr> {
    req.extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

fn too_many(wait: std::time::Duration) -> ApiError {
    let mut e = ApiError::new(ErrorCode::RateLimited, "too many requests");
    e.retry_after = Some(wait.as_secs().max(1));
    e
}

/// Charges one request to the client's address; `RateLimited` (429 + Retry-After) when its
/// budget is spent. Requests without a known address (in-process tests) are not limited here.
fn check_address(state: &AppState, req: &Request) -> Result<(), ApiError> {
    use governor::clock::Clock;
    if let Some(ip) = client_ip(req)
        && let Err(not_until) = state.addr_limiter.check_key(&ip)
    {
        let now = governor::clock::DefaultClock::default().now();
        return Err(too_many(not_until.wait_time_from(now)));
    }
    Ok(())
}

/// Middleware for routes outside the API (the console, its sign-in form): the per-address
/// rate limit alone.
pub async fn limit_by_address(
    State(state): State<AppState>,
    req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    check_address(&state, &req)?;
    Ok(next.run(req).await)
}

/// Middleware: rate-limits by client address, authenticates the request (bearer key or
/// console session + CSRF), rate-limits by key, and stores the [`Caller`] in the request.
pub async fn authenticate(
    State(state): State<AppState>,
    mut req: Request,
    next: Next,
) -> Result<Response, ApiError> {
    check_address(&state, &req)?;
    let request_id = req
        .headers()
        .get(crate::error::REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned();
    let bearer = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
                .map(str::to_owned)
        });
    let cookies = req
        .headers()
        .get(header::COOKIE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let csrf = req
        .headers()
        .get(CSRF_HEADER)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let unsafe_method = !matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS);
    let now = jiff::Timestamp::now();
    let resolved = state.read_now(move |r| {
        let (user, key_id) = match bearer {
            Some(Some(key)) => match user_of_key(r, key.trim(), now)? {
                Some((user, id)) => (user, Some(id)),
                None => {
                    return Err(ApiError::unauthorized(
                        "invalid, expired or revoked API key",
                    ));
                }
            },
            Some(None) => {
                return Err(ApiError::unauthorized(
                    "expected `Authorization: Bearer <api key>`",
                ));
            }
            None => match session_from_cookies(r, cookies.as_deref(), now)? {
                Some(s) => {
                    if unsafe_method
                        && csrf
                            .as_deref()
                            .is_none_or(|t| !constant_time_eq(t.as_bytes(), s.csrf.as_bytes()))
                    {
                        return Err(ApiError::forbidden("a valid CSRF token (x-csrf-token)"));
                    }
                    (s.user, None)
                }
                None => {
                    return Err(ApiError::unauthorized(
                        "authentication required: send `Authorization: Bearer <api key>`",
                    ));
                }
            },
        };
        if r.get(&ObjectKey::tenant(kinds::USER, &user))?.is_none() {
            return Err(ApiError::unauthorized("the key's user no longer exists"));
        }
        let grants = grants_of(r, &user)?;
        Ok((user, key_id, grants))
    })?;
    let (user, key_id, grants) = resolved;
    let limiter_key = key_id.clone().unwrap_or_else(|| format!("user:{user}"));
    if let Err(not_until) = state.key_limiter.check_key(&limiter_key) {
        use governor::clock::Clock;
        let now = governor::clock::DefaultClock::default().now();
        return Err(too_many(not_until.wait_time_from(now)));
    }
    req.extensions_mut().insert(Caller {
        user,
        grants,
        key_id,
        request_id,
    });
    Ok(next.run(req).await)
}

/// Hashes a password with argon2id.
///
/// # Errors
/// `Internal` if hashing fails.
pub fn hash_password(password: &str) -> ApiResult<String> {
    use argon2::password_hash::PasswordHasher;
    argon2::Argon2::default()
        .hash_password(password.as_bytes())
        .map(|h| h.to_string())
        .map_err(|e| ApiError::internal(format!("password hashing failed: {e}")))
}

/// Checks a password against an argon2 hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    use argon2::password_hash::{PasswordVerifier, phc::PasswordHash};
    PasswordHash::new(hash).is_ok_and(|h| {
        argon2::Argon2::default()
            .verify_password(password.as_bytes(), &h)
            .is_ok()
    })
}
