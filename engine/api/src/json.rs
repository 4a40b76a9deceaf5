//! Request bodies: JSON decoded with the path of the offending field in every error.

use crate::error::ApiError;
use axum::body::Bytes;
use axum::extract::{FromRequest, Request};
use axum::http::header;
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
        Bytes::from_request(req, state)
            .await
            .map_err(body_error)
            .map(JsonBytes)
    }
}

impl<S: Send + Sync, T: DeserializeOwned> FromRequest<S> for Json<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, Self::Rejection> {
        let JsonBytes(bytes) = JsonBytes::from_request(req, state).await?;
        decode(&bytes).map(Json)
    }
}

/// Maps a body-reading failure (mostly the size limit) to a problem.
pub fn body_error(e: axum::extract::rejection::BytesRejection) -> ApiError {
    if e.status() == axum::http::StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            "request body is larger than the limit",
        )
    } else {
        ApiError::field("", format!("cannot read request body: {e}"))
    }
}
