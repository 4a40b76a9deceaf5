//! Request bodies and query strings, decoded with the offending field named in every error.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, FromRequestParts, Request};
use axum::http::header;
use axum::http::request::Parts;
use fleetplane_domain::{ErrorCode, FieldError};
use serde::de::DeserializeOwned;

/// A JSON body. Malformed JSON, wrong types and unknown fields answer 400 `ValidationFailed`
/// naming the field; an oversized body answers 413; a non-JSON content type answers 415.
pub struct Json<T>(pub T);

/// Decodes JSON bytes, reporting the path of the first offending field.
///
/// # Errors
/// `ValidationFailed` with the field path (`spec.schedules[0].durationHours`).
pub fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Result<T, ApiError> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    serde_path_to_error::deserialize(de).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        let inner = e.into_inner();
        let message = if inner.is_syntax() || inner.is_eof() {
            format!("malformed JSON: {inner}")
        } else {
            // serde's message carries " at line X column Y"; keep it, it helps with big bodies.
            inner.to_string()
        };
        FieldError::new(field, message).into()
    })
}

/// Decodes an already-parsed JSON value, reporting the path of the first offending field.
///
/// # Errors
/// `ValidationFailed` with the field path.
pub fn decode_value<T: DeserializeOwned>(value: serde_json::Value) -> Result<T, ApiError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let field = e.path().to_string();
        let field = if field == "." { String::new() } else { field };
        FieldError::new(field, e.into_inner().to_string()).into()
    })
}

impl From<FieldError> for ApiError {
    fn from(e: FieldError) -> Self {
        fleetplane_domain::DomainError::validation(vec![e]).into()
    }
}

/// A query string decoded as `T`. An unknown parameter (`T` denies unknown fields) or a bad
/// value answers 400 `ValidationFailed` naming the parameter, as a problem like every other
/// error (axum's own extractor answers plain text).
pub struct Query<T>(pub T);

impl<S: Send + Sync, T: DeserializeOwned> FromRequestParts<S> for Query<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        let query = parts.uri.query().unwrap_or_default();
        let de = serde_urlencoded::Deserializer::new(form_urlencoded::parse(query.as_bytes()));
        serde_path_to_error::deserialize(de)
            .map(Query)
            .map_err(|e| {
                let field = e.path().to_string();
                let field = if field == "." {
                    "query".to_owned()
                } else {
                    field
                };
                FieldError::new(field, format!("query string: {}", e.into_inner())).into()
            })
    }
}

/// A raw JSON body: the content type is checked and size errors become problems, but decoding
/// is left to the handler (which may need the path first).
pub struct JsonBytes(pub Bytes);

impl<S: Send + Sync> FromRequest<S> for JsonBytes {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let ct = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok());
        if let Some(ct) = ct {
            let mime = ct
                .split(';')
                .next()
                .unwrap_or("")
                .trim()
                .to_ascii_lowercase();
            if mime != "application/json" && !mime.ends_with("+json") {
                return Err(ApiError::new(
                    ErrorCode::UnsupportedMediaType,
                    format!("expected application/json, got {mime}"),
                ));
            }
        }
        let _ = state;
        read_limited(req).await.map(JsonBytes)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        decode(&bytes).map(Json)
    }
}

/// How much of an oversized body is read and thrown away so the client sees the 413 instead of
/// a reset connection; past this the connection is closed.
const DRAIN_LIMIT: usize = 64 * 1024 * 1024;

/// The largest request body the API accepts, placed in request extensions by the router.
#[derive(Debug, Clone, Copy)]
pub struct BodyLimit(pub usize);

/// Reads a body up to the [`BodyLimit`] in the request's extensions. An oversized body is
/// drained (up to [`DRAIN_LIMIT`]) and answered 413.
async fn read_limited(req: Request) -> Result<Bytes, ApiError> {
    use http_body_util::BodyExt;
    let limit = req
        .extensions()
        .get::<BodyLimit>()
        .map_or(usize::MAX, |l| l.0);
    let mut body = req.into_body();
    let mut buf = bytes::BytesMut::new();
    let mut seen = 0usize;
    while let Some(frame) = body.frame().await {
        let frame =
            frame.map_err(|e| ApiError::field("", format!("cannot read request body: {e}")))?;
        if let Ok(data) = frame.into_data() {
            seen = seen.saturating_add(data.len());
            if seen > DRAIN_LIMIT {
                break;
            }
            if seen <= limit {
                buf.extend_from_slice(&data);
            }
        }
    }
    if seen > limit {
        return Err(ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body is larger than the limit ({limit} bytes)"),
        ));
    }
    Ok(buf.freeze())
}
