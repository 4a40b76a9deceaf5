//! The one place where errors become HTTP responses (`application/problem+json`).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use fleetplane_domain::{DomainError, ErrorCode, FieldError};
use fleetplane_store::StoreError;
use serde::Serialize;

/// An error answered to a client. Wraps a [`DomainError`]; 5xx answers never carry internals.
#[derive(Debug)]
pub struct ApiError {
    /// The error.
    pub error: DomainError,
    /// Seconds to wait before retrying (429).
    pub retry_after: Option<u64>,
}

impl ApiError {
    /// An error with a code and a detail.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        DomainError::new(code, detail).into()
    }

    /// `ValidationFailed` for one field.
    pub fn field(field: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::validation(vec![FieldError::new(field, message)]).into()
    }

    /// `NotFound`.
    pub fn not_found(kind: &str, name: &str) -> Self {
        DomainError::not_found(kind, name).into()
    }

    /// `Unauthorized`.
    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, detail)
    }

    /// `Forbidden` naming the missing permission.
    pub fn forbidden(permission: impl std::fmt::Display) -> Self {
        Self::new(
            ErrorCode::Forbidden,
            format!("missing permission {permission}"),
        )
    }

    /// `Internal`; the detail is logged and replaced by a generic sentence for the client.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, detail)
    }
}

impl From<DomainError> for ApiError {
    fn from(error: DomainError) -> Self {
        Self {
            error,
            retry_after: None,
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotFound(k) => Self::not_found(k.kind.0, &k.name),
            StoreError::AlreadyExists(k) => DomainError::already_exists(k.kind.0, &k.name).into(),
            StoreError::VersionMismatch { key, .. } => Self::new(
                ErrorCode::Conflict,
                format!("{key} was changed by someone else; read it again and retry"),
            ),
            // A full disk or a lost device: nothing was written; clients retry later, and
            // liveness says whether only a restart recovers (docs/operations.md).
            StoreError::Unavailable(why) => {
                let mut e = Self::new(
                    ErrorCode::Unavailable,
                    format!("storage unavailable, nothing was written: {why}"),
                );
                e.retry_after = Some(10);
                e
            }
            other => Self::internal(other.to_string()),
        }
    }
}

#[derive(Serialize)]
struct Problem<'a> {
    #[serde(rename = "type")]
    kind: String,
    title: &'a str,
    status: u16,
    detail: &'a str,
    code: &'a str,
    errors: &'a [FieldError],
    #[serde(rename = "requestId", skip_serializing_if = "Option::is_none")]
    request_id: Option<String>,
}

tokio::task_local! {
    /// The id of the request being served, so every problem body can carry it.
    pub static CURRENT_REQUEST_ID: String;
}

/// The header carrying the request id, echoed on every response.
pub const REQUEST_ID: &str = "x-request-id";

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code = self.error.code;
        let status =
            StatusCode::from_u16(code.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        if status.is_server_error() {
            tracing::error!(code = %code, detail = %self.error.detail, "request failed");
        }
        // A failure's internals stay in the log; why the server is unavailable (a full disk,
        // no provider host) is what the caller needs to know and is no secret.
        let hidden = status.is_server_error() && status != StatusCode::SERVICE_UNAVAILABLE;
        let detail = if hidden {
            "the server failed to handle the request; the request id identifies it in the logs"
        } else {
            self.error.detail.as_str()
        };
        let errors: &[FieldError] = if hidden { &[] } else { &self.error.errors };
        let body = Problem {
            kind: format!("https://fleetplane.dev/problems/{}", code.as_str()),
            title: status.canonical_reason().unwrap_or("Error"),
            status: status.as_u16(),
            detail,
            code: code.as_str(),
            errors,
            request_id: CURRENT_REQUEST_ID.try_with(Clone::clone).ok(),
        };
        let mut res = (status, axum::Json(body)).into_response();
        res.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/problem+json"),
        );
        if let Some(secs) = self.retry_after {
            res.headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        res
    }
}

/// Result of handlers.
pub type ApiResult<T> = Result<T, ApiError>;
