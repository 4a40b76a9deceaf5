//! Blocking HTTP helpers over `wasi:http/outgoing-handler`.
//!
//! The host checks every request against the provider manifest's allowed hosts (scheme, host,
//! port), refuses private and metadata addresses, sets the `Host` header itself, caps the
//! response size and does not follow redirects: [`send_following_redirects`] follows them in
//! the component, so every hop is checked again by the host.

use crate::bindings::wasi::http::outgoing_handler;
use crate::bindings::wasi::http::types as wasi;
use crate::bindings::wasi::io::streams::StreamError;
use crate::types::ProviderError;

/// An HTTP method.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    /// GET
    Get,
    /// HEAD
    Head,
    /// POST
    Post,
    /// PUT
    Put,
    /// PATCH
    Patch,
    /// DELETE
    Delete,
}

/// An outgoing request.
#[derive(Debug, Clone)]
pub struct Request {
    /// The method.
    pub method: Method,
    /// An absolute `http://` or `https://` URL.
    pub url: String,
    /// Header names and values. `Host` is set by the host and refused here.
    pub headers: Vec<(String, String)>,
    /// The body (empty for none).
    pub body: Vec<u8>,
    /// Connect timeout in milliseconds (the host clamps it to its own maximum).
    pub connect_timeout_ms: Option<u64>,
    /// Time to the first response byte in milliseconds (clamped by the host).
    pub first_byte_timeout_ms: Option<u64>,
}

impl Request {
    /// A request with no headers and no body.
    pub fn new(method: Method, url: impl Into<String>) -> Self {
        Request {
            method,
            url: url.into(),
            headers: Vec::new(),
            body: Vec::new(),
            connect_timeout_ms: None,
            first_byte_timeout_ms: None,
        }
    }

    /// Adds a header.
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.push((name.into(), value.into()));
        self
    }

    /// Sets the body.
    pub fn body(mut self, body: impl Into<Vec<u8>>) -> Self {
        self.body = body.into();
        self
    }
}

/// A response read in full.
#[derive(Debug, Clone)]
pub struct Response {
    /// The status code.
    pub status: u16,
    /// Header names (lowercase) and values.
    pub headers: Vec<(String, Vec<u8>)>,
    /// The body.
    pub body: Vec<u8>,
}

impl Response {
    /// The first value of header `name` (case-insensitive) as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| std::str::from_utf8(v).ok())
    }

    /// `Retry-After` in milliseconds, when given in seconds.
    pub fn retry_after_ms(&self) -> Option<u64> {
        self.header("retry-after")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(|s| s.saturating_mul(1_000))
    }

    /// The body as text (lossy).
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// Why a request failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HttpError {
    /// The URL is not an absolute http(s) URL.
    InvalidUrl(String),
    /// A header was refused (for example `Host`, which only the host may set).
    HeaderRejected(String),
    /// The host refused the request: the destination is not allowed.
    Denied(String),
    /// The network failed (connect, TLS, timeout, response too large...).
    Transport(String),
    /// Too many redirects.
    TooManyRedirects(u32),
}

impl std::fmt::Display for HttpError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HttpError::InvalidUrl(m) => write!(f, "invalid URL: {m}"),
            HttpError::HeaderRejected(m) => write!(f, "header rejected: {m}"),
            HttpError::Denied(m) => write!(f, "request denied by the sandbox: {m}"),
            HttpError::Transport(m) => write!(f, "transport error: {m}"),
            HttpError::TooManyRedirects(n) => write!(f, "more than {n} redirects"),
        }
    }
}

impl From<HttpError> for ProviderError {
    /// A denied destination or a malformed request will not get better: `permanent`.
    /// Network failures are `transient`.
    fn from(e: HttpError) -> Self {
        match e {
            HttpError::Transport(_) => ProviderError::Transient(e.to_string()),
            _ => ProviderError::Permanent(e.to_string()),
        }
    }
}

/// The parts of an absolute URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Url {
    /// `http` or `https`.
    pub scheme: String,
    /// `host` or `host:port`.
    pub authority: String,
    /// Path and query, starting with `/`.
    pub path_and_query: String,
}

/// Splits an absolute http(s) URL.
///
/// # Errors
/// [`HttpError::InvalidUrl`] for anything but `http://authority[/path][?query]`.
pub fn parse_url(url: &str) -> Result<Url, HttpError> {
    let (scheme, rest) = url
        .split_once("://")
        .ok_or_else(|| HttpError::InvalidUrl(url.to_string()))?;
    let scheme = scheme.to_ascii_lowercase();
    if scheme != "http" && scheme != "https" {
        return Err(HttpError::InvalidUrl(format!(
            "unsupported scheme {scheme}"
        )));
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let authority = &rest[..end];
    if authority.is_empty() || authority.contains('@') {
        return Err(HttpError::InvalidUrl(url.to_string()));
    }
    let mut path = rest[end..].split('#').next().unwrap_or("").to_string();
    if !path.starts_with('/') {
        path.insert(0, '/');
    }
    Ok(Url {
        scheme,
        authority: authority.to_string(),
        path_and_query: path,
    })
}

/// Resolves a redirect `Location` against the URL it came from.
fn resolve_location(base: &Url, location: &str) -> String {
    if location.contains("://") {
        location.to_string()
    } else if location.starts_with("//") {
        format!("{}:{location}", base.scheme)
    } else if location.starts_with('/') {
        format!("{}://{}{location}", base.scheme, base.authority)
    } else {
        let dir = base
            .path_and_query
            .rsplit_once('/')
            .map(|(d, _)| d)
            .unwrap_or("");
        format!("{}://{}{dir}/{location}", base.scheme, base.authority)
    }
}

fn error_code(code: &wasi::ErrorCode) -> HttpError {
    match code {
        wasi::ErrorCode::HttpRequestDenied
        | wasi::ErrorCode::DestinationIpProhibited
        | wasi::ErrorCode::DestinationIpUnroutable => HttpError::Denied(format!("{code:?}")),
        wasi::ErrorCode::HttpRequestUriInvalid | wasi::ErrorCode::HttpRequestMethodInvalid => {
            HttpError::InvalidUrl(format!("{code:?}"))
        }
        other => HttpError::Transport(format!("{other:?}")),
    }
}

/// Sends one request and reads the whole response. Redirects are returned, not followed.
///
/// # Errors
/// [`HttpError`] when the URL or a header is refused, the sandbox denies the destination, or
/// the network fails.
pub fn send(req: &Request) -> Result<Response, HttpError> {
    let url = parse_url(&req.url)?;
    let fields = wasi::Fields::new();
    for (name, value) in &req.headers {
        fields
            .append(name, value.as_bytes())
            .map_err(|e| HttpError::HeaderRejected(format!("{name}: {e:?}")))?;
    }
    let out = wasi::OutgoingRequest::new(fields);
    let method = match req.method {
        Method::Get => wasi::Method::Get,
        Method::Head => wasi::Method::Head,
        Method::Post => wasi::Method::Post,
        Method::Put => wasi::Method::Put,
        Method::Patch => wasi::Method::Patch,
        Method::Delete => wasi::Method::Delete,
    };
    let invalid = |what: &str| HttpError::InvalidUrl(format!("{what} refused: {}", req.url));
    out.set_method(&method).map_err(|()| invalid("method"))?;
    let scheme = if url.scheme == "https" {
        wasi::Scheme::Https
    } else {
        wasi::Scheme::Http
    };
    out.set_scheme(Some(&scheme))
        .map_err(|()| invalid("scheme"))?;
    out.set_authority(Some(&url.authority))
        .map_err(|()| invalid("authority"))?;
    out.set_path_with_query(Some(&url.path_and_query))
        .map_err(|()| invalid("path"))?;
    let body = out
        .body()
        .map_err(|()| HttpError::Transport("request body taken".into()))?;

    let options = wasi::RequestOptions::new();
    let ms_to_ns = |ms: u64| ms.saturating_mul(1_000_000);
    if let Some(ms) = req.connect_timeout_ms {
        let _ = options.set_connect_timeout(Some(ms_to_ns(ms)));
    }
    if let Some(ms) = req.first_byte_timeout_ms {
        let _ = options.set_first_byte_timeout(Some(ms_to_ns(ms)));
    }
    let pending = outgoing_handler::handle(out, Some(options)).map_err(|e| error_code(&e))?;

    // Write the body after `handle`: the host streams it to the connection.
    {
        let stream = body
            .write()
            .map_err(|()| HttpError::Transport("body stream".into()))?;
        for chunk in req.body.chunks(4096) {
            stream
                .blocking_write_and_flush(chunk)
                .map_err(|e| HttpError::Transport(format!("writing body: {e:?}")))?;
        }
    }
    wasi::OutgoingBody::finish(body, None).map_err(|e| error_code(&e))?;

    let incoming = loop {
        match pending.get() {
            Some(result) => break result,
            None => pending.subscribe().block(),
        }
    };
    let incoming = incoming
        .map_err(|()| HttpError::Transport("response already taken".into()))?
        .map_err(|e| error_code(&e))?;

    let status = incoming.status();
    let headers = incoming.headers().entries();
    let body = incoming
        .consume()
        .map_err(|()| HttpError::Transport("response body".into()))?;
    let mut bytes = Vec::new();
    {
        let stream = body
            .stream()
            .map_err(|()| HttpError::Transport("response body".into()))?;
        loop {
            match stream.blocking_read(64 * 1024) {
                Ok(chunk) => bytes.extend_from_slice(&chunk),
                Err(StreamError::Closed) => break,
                Err(StreamError::LastOperationFailed(e)) => {
                    return Err(HttpError::Transport(format!(
                        "reading body: {}",
                        e.to_debug_string()
                    )));
                }
            }
        }
    }
    let _trailers = wasi::IncomingBody::finish(body);
    Ok(Response {
        status,
        headers,
        body: bytes,
    })
}

/// Sends a request and follows up to `max_hops` redirects (301, 302, 303, 307, 308). Every hop
/// is a new request, checked again by the host against the allowed hosts. 303 (and 301/302
/// after a POST) turn into a GET without a body, as browsers do.
///
/// # Errors
/// As [`send`], plus [`HttpError::TooManyRedirects`].
pub fn send_following_redirects(req: &Request, max_hops: u32) -> Result<Response, HttpError> {
    let mut current = req.clone();
    for _ in 0..=max_hops {
        let response = send(&current)?;
        let location = match response.status {
            301 | 302 | 303 | 307 | 308 => response.header("location").map(str::to_string),
            _ => None,
        };
        let Some(location) = location else {
            return Ok(response);
        };
        let base = parse_url(&current.url)?;
        current.url = resolve_location(&base, &location);
        if response.status == 303 || (current.method == Method::Post && response.status <= 302) {
            current.method = Method::Get;
            current.body.clear();
        }
    }
    Err(HttpError::TooManyRedirects(max_hops))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = parse_url("https://api.example.com:8443/v1/x?y=1#frag").unwrap();
        assert_eq!(u.scheme, "https");
        assert_eq!(u.authority, "api.example.com:8443");
        assert_eq!(u.path_and_query, "/v1/x?y=1");
        assert_eq!(parse_url("http://h").unwrap().path_and_query, "/");
        assert!(parse_url("ftp://h/").is_err());
        assert!(parse_url("https://user@h/").is_err());
        assert!(parse_url("nope").is_err());
    }

    #[test]
    fn resolves_redirect_locations() {
        let base = parse_url("https://a.test/v1/items?x").unwrap();
        assert_eq!(
            resolve_location(&base, "https://b.test/z"),
            "https://b.test/z"
        );
        assert_eq!(resolve_location(&base, "//c.test/z"), "https://c.test/z");
        assert_eq!(resolve_location(&base, "/z"), "https://a.test/z");
        assert_eq!(resolve_location(&base, "z"), "https://a.test/v1/z");
    }
}
