//! Building `provider-error` values and mapping cloud answers onto them.

use crate::types::{InvalidConfigDetail, ProviderError, ThrottledDetail};

/// The result type of every provider operation.
pub type ProviderResult<T> = Result<T, ProviderError>;

/// An `invalid-config` error about one field.
pub fn invalid(field: &str, message: impl Into<String>) -> ProviderError {
    ProviderError::InvalidConfig(vec![InvalidConfigDetail {
        field: field.to_string(),
        message: message.into(),
    }])
}

/// Collects `invalid-config` problems so that a call reports every problem at once.
#[derive(Debug, Default)]
pub struct Problems(Vec<InvalidConfigDetail>);

impl Problems {
    /// Records a problem with `field`.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.0.push(InvalidConfigDetail {
            field: field.into(),
            message: message.into(),
        });
    }

    /// `Ok(())` when nothing was recorded.
    ///
    /// # Errors
    /// `invalid-config` with every recorded problem.
    pub fn finish(self) -> ProviderResult<()> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(ProviderError::InvalidConfig(self.0))
        }
    }
}

/// Maps an HTTP status from a cloud API onto the error the engine understands:
/// 429 (and 503 with `Retry-After`) is `throttled`, other 5xx and 408 are `transient`,
/// 404 `not-found`, 409 and 412 `conflict`, 400, 401, 403 and 422 `invalid-config` (the account
/// or spec is wrong), anything else `permanent`.
///
/// `retry_after_ms` is the parsed `Retry-After` header, if the response had one.
pub fn from_http_status(status: u16, retry_after_ms: Option<u64>, message: &str) -> ProviderError {
    let message = format!("HTTP {status}: {message}");
    match status {
        429 => ProviderError::Throttled(ThrottledDetail {
            retry_after_ms: retry_after_ms.unwrap_or(1_000),
            message,
        }),
        503 if retry_after_ms.is_some() => ProviderError::Throttled(ThrottledDetail {
            retry_after_ms: retry_after_ms.unwrap_or(1_000),
            message,
        }),
        408 | 500..=599 => ProviderError::Transient(message),
        404 => ProviderError::NotFound(message),
        409 | 412 => ProviderError::Conflict(message),
        400 | 401 | 403 | 422 => invalid("account", message),
        _ => ProviderError::Permanent(message),
    }
}

/// Whether the engine retries this error (the same rule the host applies).
pub fn is_retryable(error: &ProviderError) -> bool {
    matches!(
        error,
        ProviderError::Throttled(_) | ProviderError::Transient(_)
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_statuses_map_to_retryable_or_not() {
        let cases: &[(u16, Option<u64>, bool)] = &[
            (429, None, true),
            (503, Some(2_000), true),
            (502, None, true),
            (408, None, true),
            (404, None, false),
            (409, None, false),
            (403, None, false),
            (418, None, false),
        ];
        for (status, retry, retryable) in cases {
            let e = from_http_status(*status, *retry, "x");
            assert_eq!(is_retryable(&e), *retryable, "status {status}");
        }
        match from_http_status(429, Some(5), "x") {
            ProviderError::Throttled(d) => assert_eq!(d.retry_after_ms, 5),
            other => panic!("unexpected {other:?}"),
        }
    }
}
