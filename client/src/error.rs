//! Errors of the client: problems the server reported (problem+json) apart from failures to reach
//! it or to understand its answer.

use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::time::Duration;

/// One problem with one field of a request, as reported by the server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Path of the field in the request body, e.g. `spec.password` or `metadata.name`.
    #[serde(default)]
    pub field: String,
    /// What is wrong with it.
    #[serde(default)]
    pub message: String,
}

/// The body of an `application/problem+json` answer (RFC 9457 plus Fleetplane's `code`,
/// `errors` and `requestId`). Every member is optional so that a partial body still decodes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Problem {
    /// A URI naming the problem type.
    #[serde(default, rename = "type", skip_serializing_if = "Option::is_none")]
    pub problem_type: Option<String>,
    /// A short summary.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub title: Option<String>,
    /// The HTTP status repeated.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    /// What went wrong in this request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The stable error code, e.g. `ValidationFailed`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// Every field that is wrong, each with its path.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// The request id, for the server's logs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Everything a call of [`crate::Client`] can fail with.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ClientError {
    /// The server answered with an error status (4xx or 5xx).
    #[error("{code} (HTTP {status}): {detail}{}", format_fields(.detail, .errors))]
    Api {
        /// The HTTP status.
        status: u16,
        /// The stable error code (`NotFound`, `ValidationFailed`, …); when the body was not
        /// problem+json, the canonical reason phrase of the status without spaces.
        code: String,
        /// What went wrong.
        detail: String,
        /// Every field that is wrong, each with its path.
        errors: Vec<FieldError>,
        /// The request id (body `requestId` or the `x-request-id` header).
        request_id: Option<String>,
        /// How long to wait before retrying (the `Retry-After` header of a 429 or 503).
        retry_after: Option<Duration>,
    },
    /// The request did not get an answer: connection refused, DNS, TLS, timeout, broken body.
    #[error("cannot reach {url}")]
    Transport {
        /// The URL requested.
        url: String,
        /// The underlying failure.
        #[source]
        source: reqwest::Error,
    },
    /// The server answered with success but the body is not the JSON expected.
    #[error("unexpected answer from {url} (HTTP {status})")]
    InvalidResponse {
        /// The URL requested.
        url: String,
        /// The HTTP status.
        status: u16,
        /// Why it does not decode.
        #[source]
        source: serde_json::Error,
    },
    /// The endpoint is not an absolute `http` or `https` URL.
    #[error("invalid endpoint `{endpoint}`: {reason}")]
    InvalidEndpoint {
        /// The endpoint given.
        endpoint: String,
        /// What is wrong with it.
        reason: String,
    },
    /// A path given to a generic method is not an absolute path (`/v1/...`).
    #[error("invalid request path `{0}`: it must start with `/`")]
    InvalidPath(String),
    /// The API key contains characters that cannot go into an HTTP header.
    #[error("the API key contains characters that are not allowed in an HTTP header")]
    InvalidApiKey,
    /// A project-scoped call was made without a project configured.
    #[error("no project selected: pass --project or set FLEETPLANE_PROJECT")]
    NoProject,
    /// A request body could not be serialized.
    #[error("cannot encode the request body")]
    Encode(#[source] serde_json::Error),
    /// The HTTP client could not be built (TLS setup).
    #[error("cannot set up the HTTP client")]
    Build(#[source] reqwest::Error),
}

impl ClientError {
    /// The HTTP status when the server answered with an error.
    pub fn status(&self) -> Option<u16> {
        match self {
            Self::Api { status, .. } => Some(*status),
            _ => None,
        }
    }

    /// The stable error code when the server answered with an error.
    pub fn code(&self) -> Option<&str> {
        match self {
            Self::Api { code, .. } => Some(code),
            _ => None,
        }
    }

    /// True when the server said the request is wrong (4xx) or the request could not even be
    /// built from what the caller gave (bad endpoint, path, key, missing project): the caller must
    /// change something. False for 5xx answers and transport failures, which may pass on retry.
    pub fn is_caller_error(&self) -> bool {
        match self {
            Self::Api { status, .. } => (400..500).contains(status),
            Self::InvalidEndpoint { .. }
            | Self::InvalidPath(_)
            | Self::InvalidApiKey
            | Self::NoProject
            | Self::Encode(_) => true,
            Self::Transport { .. } | Self::InvalidResponse { .. } | Self::Build(_) => false,
        }
    }

    /// Builds [`ClientError::Api`] from an error answer: its status, `Retry-After` and
    /// `x-request-id` headers and its body, which is problem+json when the Fleetplane API answered
    /// and may be anything when a proxy did.
    pub(crate) fn from_answer(
        status: reqwest::StatusCode,
        headers: &reqwest::header::HeaderMap,
        body: &[u8],
    ) -> Self {
        let problem: Option<Problem> = serde_json::from_slice(body).ok();
        let header_str = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
        let retry_after = header_str("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        let fallback_code = || {
            status.canonical_reason().map_or_else(
                || format!("Http{}", status.as_u16()),
                |r| r.replace([' ', '-'], ""),
            )
        };
        match problem {
            Some(p) => Self::Api {
                status: status.as_u16(),
                code: p.code.unwrap_or_else(fallback_code),
                detail: p.detail.or(p.title).unwrap_or_default(),
                errors: p.errors,
                request_id: p
                    .request_id
                    .or_else(|| header_str("x-request-id").map(str::to_owned)),
                retry_after,
            },
            None => {
                // Not problem+json: keep the start of the body, printable, as the detail.
                let text = String::from_utf8_lossy(body);
                let detail: String = text
                    .chars()
                    .filter(|c| !c.is_control() || *c == ' ')
                    .take(300)
                    .collect();
                Self::Api {
                    status: status.as_u16(),
                    code: fallback_code(),
                    detail: detail.trim().to_owned(),
                    errors: Vec::new(),
                    request_id: header_str("x-request-id").map(str::to_owned),
                    retry_after,
                }
            }
        }
    }
}

/// The field problems, one per line, each introduced by its path; a problem the detail already
/// states word for word (the server's detail of a single-field error) is not repeated.
fn format_fields(detail: &str, errors: &[FieldError]) -> String {
    let mut out = String::new();
    for e in errors {
        let field = if e.field.is_empty() {
            "(request)"
        } else {
            e.field.as_str()
        };
        let line = format!("{field}: {}", e.message);
        if line != detail {
            let _ = write!(out, "\n  {line}");
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use reqwest::StatusCode;
    use reqwest::header::{HeaderMap, HeaderValue};

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_static(v));
        }
        h
    }

    #[test]
    fn problem_json_becomes_api_error_with_field_paths() {
        let body = br#"{"type":"about:blank","title":"Validation failed","status":400,
            "detail":"the request has 2 problems","code":"ValidationFailed",
            "errors":[{"field":"metadata.name","message":"must be a DNS label"},
                      {"field":"spec.password","message":"must have at least 12 characters"}],
            "requestId":"r-1"}"#;
        let e = ClientError::from_answer(StatusCode::BAD_REQUEST, &headers(&[]), body);
        assert_eq!(e.status(), Some(400));
        assert_eq!(e.code(), Some("ValidationFailed"));
        assert!(e.is_caller_error());
        assert_eq!(
            e.to_string(),
            "ValidationFailed (HTTP 400): the request has 2 problems\n  \
             metadata.name: must be a DNS label\n  spec.password: must have at least 12 characters"
        );
        let ClientError::Api { request_id, .. } = e else {
            panic!("not Api")
        };
        assert_eq!(request_id.as_deref(), Some("r-1"));
    }

    #[test]
    fn retry_after_and_request_id_come_from_headers() {
        let body = br#"{"status":429,"code":"RateLimited","detail":"slow down"}"#;
        let h = headers(&[("retry-after", "3"), ("x-request-id", "abc")]);
        let e = ClientError::from_answer(StatusCode::TOO_MANY_REQUESTS, &h, body);
        let ClientError::Api {
            retry_after,
            request_id,
            code,
            ..
        } = e
        else {
            panic!("not Api")
        };
        assert_eq!(retry_after, Some(Duration::from_secs(3)));
        assert_eq!(request_id.as_deref(), Some("abc"));
        assert_eq!(code, "RateLimited");
    }

    #[test]
    fn non_json_bodies_keep_a_printable_detail() {
        let cases: &[(StatusCode, &[u8], &str, &str)] = &[
            (
                StatusCode::BAD_GATEWAY,
                b"<html>\nbad gateway\n</html>",
                "BadGateway",
                "<html>bad gateway</html>",
            ),
            (StatusCode::METHOD_NOT_ALLOWED, b"", "MethodNotAllowed", ""),
            (StatusCode::from_u16(599).unwrap(), b"x", "Http599", "x"),
            (
                StatusCode::INTERNAL_SERVER_ERROR,
                b"{\"code\":",
                "InternalServerError",
                "{\"code\":",
            ),
        ];
        for (status, body, code, detail) in cases {
            let e = ClientError::from_answer(*status, &HeaderMap::new(), body);
            assert_eq!(e.code(), Some(*code), "{status}");
            let ClientError::Api { detail: d, .. } = &e else {
                panic!("not Api")
            };
            assert_eq!(d, detail, "{status}");
            assert_eq!(e.is_caller_error(), status.is_client_error(), "{status}");
        }
    }

    #[test]
    fn a_detail_that_is_the_only_field_problem_is_not_repeated() {
        let body = br#"{"detail":"spec.email: is not an e-mail address","code":"ValidationFailed",
            "errors":[{"field":"spec.email","message":"is not an e-mail address"}]}"#;
        let e = ClientError::from_answer(StatusCode::BAD_REQUEST, &HeaderMap::new(), body);
        assert_eq!(
            e.to_string(),
            "ValidationFailed (HTTP 400): spec.email: is not an e-mail address"
        );
        let body = br#"{"detail":"bad","code":"ValidationFailed","errors":[{"field":"","message":"bad body"}]}"#;
        let e = ClientError::from_answer(StatusCode::BAD_REQUEST, &HeaderMap::new(), body);
        assert_eq!(
            e.to_string(),
            "ValidationFailed (HTTP 400): bad\n  (request): bad body"
        );
    }

    #[test]
    fn title_stands_in_for_a_missing_detail() {
        let e = ClientError::from_answer(
            StatusCode::NOT_FOUND,
            &HeaderMap::new(),
            br#"{"title":"Not found","code":"NotFound"}"#,
        );
        assert_eq!(e.to_string(), "NotFound (HTTP 404): Not found");
    }
}
