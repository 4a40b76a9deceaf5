//! How a failed command ends: the message on standard error (the error, its field problems and
//! its whole chain of causes) and the exit code that tells user errors from server failures.

use fleetplane_client::ClientError;

/// Exit code of success.
pub const OK: u8 = 0;
/// The request or its input is wrong: a 4xx answer, a bad flag value, a bad config file.
pub const USER_ERROR: u8 = 1;
/// Command-line usage error (clap's code).
pub const USAGE: u8 = 2;
/// The server failed (5xx) or could not be reached.
pub const SERVER_ERROR: u8 = 3;

/// The exit code an error stands for.
pub fn code_of(error: &anyhow::Error) -> u8 {
    match error.chain().find_map(|e| e.downcast_ref::<ClientError>()) {
        Some(e) if !e.is_caller_error() => SERVER_ERROR,
        _ => USER_ERROR,
    }
}

/// Whether the error is only standard output being closed early (`fleetplane … | head`).
pub fn is_broken_pipe(error: &anyhow::Error) -> bool {
    error.chain().any(|e| {
        e.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}

/// The text printed for an error: `error: …`, then one `caused by:` line per cause, then hints.
pub fn report(error: &anyhow::Error, has_api_key: bool) -> String {
    let mut out = format!("error: {}", error.to_string().replace('\n', "\n    "));
    for cause in error.chain().skip(1) {
        let text = cause.to_string().replace('\n', "\n    ");
        out.push_str(&format!("\n  caused by: {text}"));
    }
    if let Some(ClientError::Api {
        status, request_id, ..
    }) = error.chain().find_map(|e| e.downcast_ref::<ClientError>())
    {
        if let Some(id) = request_id {
            out.push_str(&format!("\n  request id: {id}"));
        }
        if *status == 401 {
            out.push_str(if has_api_key {
                "\n  hint: the API key is invalid, expired or revoked; run `fleetplane login`"
            } else {
                "\n  hint: no API key is configured; run `fleetplane login` or set FLEETPLANE_API_KEY"
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetplane_client::FieldError;

    fn api(status: u16, code: &str) -> ClientError {
        ClientError::Api {
            status,
            code: code.into(),
            detail: "it failed".into(),
            errors: vec![FieldError {
                field: "spec.email".into(),
                message: "not an address".into(),
            }],
            request_id: Some("req-1".into()),
            retry_after: None,
        }
    }

    #[test]
    fn codes_tell_user_errors_from_server_failures() {
        let cases = [
            (anyhow::Error::from(api(404, "NotFound")), USER_ERROR),
            (anyhow::Error::from(api(429, "RateLimited")), USER_ERROR),
            (anyhow::Error::from(api(500, "Internal")), SERVER_ERROR),
            (anyhow::Error::from(api(503, "Unavailable")), SERVER_ERROR),
            (anyhow::Error::from(ClientError::NoProject), USER_ERROR),
            (
                anyhow::Error::from(api(502, "BadGateway")).context("cannot list projects"),
                SERVER_ERROR,
            ),
            (anyhow::anyhow!("bad config file"), USER_ERROR),
        ];
        for (e, want) in cases {
            assert_eq!(code_of(&e), want, "{e:#}");
        }
    }

    #[test]
    fn reports_show_the_chain_fields_and_hints() {
        let e =
            anyhow::Error::from(api(400, "ValidationFailed")).context("cannot create user \"x\"");
        assert_eq!(
            report(&e, true),
            "error: cannot create user \"x\"\n  caused by: ValidationFailed (HTTP 400): it failed\n      \
             spec.email: not an address\n  request id: req-1"
        );
        let e = anyhow::Error::from(api(401, "Unauthorized"));
        assert!(report(&e, false).ends_with("set FLEETPLANE_API_KEY"));
        assert!(report(&e, true).contains("invalid, expired or revoked"));
    }

    #[test]
    fn broken_pipes_are_recognised() {
        let e = anyhow::Error::from(std::io::Error::from(std::io::ErrorKind::BrokenPipe))
            .context("write");
        assert!(is_broken_pipe(&e));
        assert!(!is_broken_pipe(&anyhow::anyhow!("x")));
    }
}
