//! Outbound HTTP for components: the `wasi:http` send-request hook that enforces the sandbox.
//!
//! Every request a component makes goes through [`OutboundPolicy::send`]:
//! 1. the scheme, host and port must match an `allowedHosts` entry of the provider manifest;
//! 2. the host name is resolved by the host, and the request is refused when any address is
//!    loopback, link-local, private, unique-local, CGNAT, multicast, unspecified or a cloud
//!    metadata address, unless the host name is in the host-side
//!    [`OutboundSettings::private_hosts_allowed`] (tests, never the manifest);
//! 3. the connection goes to the checked address (no second resolution), `Host` is set from the
//!    checked authority (the guest cannot set it), redirects are returned to the component
//!    (which must issue a new request, checked again), and the response is capped in time and
//!    size;
//! 4. each request, allowed or denied, is reported to the audit callback.

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::pin::Pin;
use std::sync::{Arc, OnceLock};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use http_body::{Body, Frame, SizeHint};
use http_body_util::BodyExt;
use wasmtime_wasi_http::io::TokioIo;
use wasmtime_wasi_http::{
    DEFAULT_FORBIDDEN_HEADERS, Error as HttpError, ForbiddenHeaderFilter, RequestOptions, WasiBody,
    WasiHttpHooks,
};

use crate::manifest::{AllowedHost, split_host_port};

/// Resolves host names for outbound requests.
pub trait Resolver: Send + Sync {
    /// The addresses of `host`.
    fn resolve(&self, host: String, port: u16) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>>;
}

/// The operating system's resolver.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemResolver;

impl Resolver for SystemResolver {
    fn resolve(&self, host: String, port: u16) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        Box::pin(async move {
            Ok(tokio::net::lookup_host((host.as_str(), port))
                .await?
                .map(|a| a.ip())
                .collect())
        })
    }
}

/// A fixed name → addresses table (for tests), falling back to the system resolver for names
/// it does not know.
#[derive(Debug, Default, Clone)]
pub struct StaticResolver {
    names: HashMap<String, Vec<IpAddr>>,
}

impl StaticResolver {
    /// An empty table.
    pub fn new() -> Self {
        StaticResolver::default()
    }

    /// Maps `name` (lowercase) to `addrs`.
    pub fn with(mut self, name: &str, addrs: &[IpAddr]) -> Self {
        self.names.insert(name.to_ascii_lowercase(), addrs.to_vec());
        self
    }
}

impl Resolver for StaticResolver {
    fn resolve(&self, host: String, port: u16) -> BoxFuture<'static, std::io::Result<Vec<IpAddr>>> {
        match self.names.get(&host) {
            Some(addrs) => {
                let addrs = addrs.clone();
                Box::pin(async move { Ok(addrs) })
            }
            None => SystemResolver.resolve(host, port),
        }
    }
}

/// What happened to one outbound request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboundOutcome {
    /// The response headers arrived with this status.
    Completed {
        /// HTTP status.
        status: u16,
    },
    /// The sandbox refused the request.
    Denied {
        /// Why (never contains secrets: only scheme, host, port and addresses).
        reason: String,
    },
    /// The request was allowed but failed (DNS, connect, TLS, timeout).
    Failed {
        /// The error.
        error: String,
    },
}

/// One outbound request, for the audit log. Carries no headers, body or query string, so no
/// credential a component sends can end up in it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboundRecord {
    /// Provider name.
    pub provider: String,
    /// Cloud account name.
    pub account: String,
    /// Provider operation (`create`...).
    pub op: &'static str,
    /// HTTP method.
    pub method: String,
    /// `http` or `https`.
    pub scheme: String,
    /// Host as requested.
    pub host: String,
    /// Port.
    pub port: u16,
    /// Path without the query string.
    pub path: String,
    /// What happened.
    pub outcome: OutboundOutcome,
    /// Time from the request to its outcome.
    pub duration: Duration,
}

/// Receives every outbound request record (the server turns them into audit entries).
pub type AuditSink = Arc<dyn Fn(OutboundRecord) + Send + Sync>;

/// Host-wide settings of outbound HTTP.
#[derive(Clone)]
pub struct OutboundSettings {
    /// Name resolution.
    pub resolver: Arc<dyn Resolver>,
    /// Host names that may resolve to loopback or private addresses. For tests and local
    /// development only; a manifest can never add to it.
    pub private_hosts_allowed: HashSet<String>,
    /// Maximum time to connect (the guest may ask for less).
    pub connect_timeout: Duration,
    /// Maximum time to the response headers (the guest may ask for less).
    pub first_byte_timeout: Duration,
    /// Maximum time between two body chunks (the guest may ask for less).
    pub between_bytes_timeout: Duration,
    /// Maximum response body size in bytes.
    pub max_response_bytes: u64,
    /// Where records of outbound requests go.
    pub audit: Option<AuditSink>,
}

impl Default for OutboundSettings {
    fn default() -> Self {
        OutboundSettings {
            resolver: Arc::new(SystemResolver),
            private_hosts_allowed: HashSet::new(),
            connect_timeout: Duration::from_secs(10),
            first_byte_timeout: Duration::from_secs(30),
            between_bytes_timeout: Duration::from_secs(30),
            max_response_bytes: 16 * 1024 * 1024,
            audit: None,
        }
    }
}

impl std::fmt::Debug for OutboundSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundSettings")
            .field("private_hosts_allowed", &self.private_hosts_allowed)
            .field("connect_timeout", &self.connect_timeout)
            .field("first_byte_timeout", &self.first_byte_timeout)
            .field("between_bytes_timeout", &self.between_bytes_timeout)
            .field("max_response_bytes", &self.max_response_bytes)
            .finish_non_exhaustive()
    }
}

/// Whether `ip` must never be reached by a component: loopback, unspecified, link-local
/// (including 169.254.169.254), private, CGNAT (including 100.100.100.200), benchmarking,
/// multicast, broadcast, unique-local IPv6 (including fd00:ec2::254), IPv4-mapped or
/// -translated forms of those, and Azure's 168.63.129.16.
pub fn is_forbidden_address(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => forbidden_v4(v4),
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return forbidden_v4(v4);
            }
            let seg = v6.segments();
            // 64:ff9b::/96 NAT64 embeds an IPv4 address.
            if seg[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                let v4 = Ipv4Addr::new(
                    (seg[6] >> 8) as u8,
                    seg[6] as u8,
                    (seg[7] >> 8) as u8,
                    seg[7] as u8,
                );
                return forbidden_v4(v4);
            }
            v6.is_loopback()
                || v6.is_unspecified()
                || v6.is_multicast()
                || (seg[0] & 0xfe00) == 0xfc00 // unique local fc00::/7
                || (seg[0] & 0xffc0) == 0xfe80 // link-local fe80::/10
                || (seg[0] & 0xffc0) == 0xfec0 // site-local fec0::/10 (deprecated)
                || seg[..6] == [0, 0, 0, 0, 0, 0] // IPv4-compatible ::/96
        }
    }
}

fn forbidden_v4(v4: Ipv4Addr) -> bool {
    let o = v4.octets();
    v4.is_loopback()
        || v4.is_unspecified()
        || v4.is_private()
        || v4.is_link_local()
        || v4.is_multicast()
        || v4.is_broadcast()
        || o[0] == 0
        || (o[0] == 100 && (o[1] & 0xc0) == 64) // CGNAT 100.64.0.0/10
        || (o[0] == 198 && (o[1] & 0xfe) == 18) // benchmarking 198.18.0.0/15
        || o[0] >= 240 // reserved
        || v4 == Ipv4Addr::new(168, 63, 129, 16)
}

/// The outbound policy of one installed provider.
pub struct OutboundPolicy {
    provider: String,
    allowed: Vec<AllowedHost>,
    settings: Arc<OutboundSettings>,
}

impl std::fmt::Debug for OutboundPolicy {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OutboundPolicy")
            .field("provider", &self.provider)
            .field("allowed", &self.allowed)
            .finish_non_exhaustive()
    }
}

/// The checked destination of a request.
struct Target {
    scheme: String,
    host: String,
    port: u16,
    authority: String,
}

impl OutboundPolicy {
    /// A policy allowing exactly `allowed`.
    pub fn new(provider: &str, allowed: Vec<AllowedHost>, settings: Arc<OutboundSettings>) -> Self {
        OutboundPolicy {
            provider: provider.to_string(),
            allowed,
            settings,
        }
    }

    fn target(&self, uri: &http::Uri) -> Result<Target, String> {
        let scheme = uri.scheme_str().unwrap_or("https").to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            other => return Err(format!("scheme `{other}` is not allowed")),
        };
        let authority = uri.authority().ok_or("the request has no host")?.as_str();
        if authority.contains('@') {
            return Err("user information in the URL is not allowed".into());
        }
        let (host, port) = split_host_port(authority)?;
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        if host.is_empty() {
            return Err("the request has no host".into());
        }
        let port = port.unwrap_or(default_port);
        if !self.allowed.iter().any(|a| a.matches(&scheme, &host, port)) {
            return Err(format!(
                "{scheme}://{host}:{port} is not in provider `{}`'s allowedHosts",
                self.provider
            ));
        }
        let authority = if host.contains(':') {
            format!("[{host}]:{port}")
        } else {
            format!("{host}:{port}")
        };
        Ok(Target {
            scheme,
            host,
            port,
            authority,
        })
    }

    async fn addresses(&self, t: &Target) -> Result<Vec<IpAddr>, (bool, String)> {
        let addrs = match t.host.parse::<IpAddr>() {
            Ok(ip) => vec![ip],
            Err(_) => {
                let lookup = self.settings.resolver.resolve(t.host.clone(), t.port);
                match tokio::time::timeout(self.settings.connect_timeout, lookup).await {
                    Err(_) => return Err((false, format!("resolving {} timed out", t.host))),
                    Ok(Err(e)) => return Err((false, format!("resolving {}: {e}", t.host))),
                    Ok(Ok(a)) if a.is_empty() => {
                        return Err((false, format!("{} has no address", t.host)));
                    }
                    Ok(Ok(a)) => a,
                }
            }
        };
        if !self.settings.private_hosts_allowed.contains(&t.host)
            && let Some(bad) = addrs.iter().find(|ip| is_forbidden_address(**ip))
        {
            return Err((
                true,
                format!(
                    "{} resolves to {bad}, a loopback/private/metadata address",
                    t.host
                ),
            ));
        }
        Ok(addrs)
    }

    fn record(
        &self,
        tag: &CallTag,
        req: &RequestSummary,
        outcome: OutboundOutcome,
        start: Instant,
    ) {
        match &outcome {
            OutboundOutcome::Denied { reason } => tracing::warn!(
                provider = %self.provider, account = %tag.account, op = tag.op,
                "outbound request denied: {reason}"
            ),
            OutboundOutcome::Failed { error } => tracing::debug!(
                provider = %self.provider, account = %tag.account, op = tag.op,
                "outbound request failed: {error}"
            ),
            OutboundOutcome::Completed { .. } => {}
        }
        if let Some(audit) = &self.settings.audit {
            audit(OutboundRecord {
                provider: self.provider.clone(),
                account: tag.account.clone(),
                op: tag.op,
                method: req.method.clone(),
                scheme: req.scheme.clone(),
                host: req.host.clone(),
                port: req.port,
                path: req.path.clone(),
                outcome,
                duration: start.elapsed(),
            });
        }
    }

    /// Sends `req` if the policy allows it.
    async fn send(
        self: Arc<Self>,
        mut req: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        tag: CallTag,
    ) -> Result<
        (
            http::Response<WasiBody>,
            BoxFuture<'static, Result<(), HttpError>>,
        ),
        HttpError,
    > {
        let start = Instant::now();
        let mut summary = RequestSummary::of(&req);
        let target = match self.target(req.uri()) {
            Ok(t) => t,
            Err(reason) => {
                self.record(&tag, &summary, OutboundOutcome::Denied { reason }, start);
                return Err(HttpError::HttpRequestDenied);
            }
        };
        summary.host = target.host.clone();
        summary.port = target.port;
        let addrs = match self.addresses(&target).await {
            Ok(a) => a,
            Err((denied, reason)) => {
                return Err(if denied {
                    self.record(&tag, &summary, OutboundOutcome::Denied { reason }, start);
                    HttpError::DestinationIpProhibited
                } else {
                    self.record(
                        &tag,
                        &summary,
                        OutboundOutcome::Failed { error: reason },
                        start,
                    );
                    HttpError::DnsError {
                        rcode: Some("lookup failed".into()),
                        info_code: None,
                    }
                });
            }
        };
        let s = &self.settings;
        let cap = |guest: Option<Duration>, ours: Duration| guest.map_or(ours, |g| g.min(ours));
        let connect_timeout = cap(options.and_then(|o| o.connect_timeout), s.connect_timeout);
        let first_byte = cap(
            options.and_then(|o| o.first_byte_timeout),
            s.first_byte_timeout,
        );
        let between = cap(
            options.and_then(|o| o.between_bytes_timeout),
            s.between_bytes_timeout,
        );

        let result = async {
            let stream = connect(&addrs, target.port, connect_timeout).await?;
            // Host is always the checked authority: never what the guest wrote.
            let host_value = if target.port == default_port(&target.scheme) {
                if target.host.contains(':') {
                    format!("[{}]", target.host)
                } else {
                    target.host.clone()
                }
            } else {
                target.authority.clone()
            };
            req.headers_mut().remove(http::header::HOST);
            let host_header = http::HeaderValue::from_str(&host_value)
                .map_err(|_| HttpError::HttpRequestUriInvalid)?;
            req.headers_mut().insert(http::header::HOST, host_header);
            let path = req
                .uri()
                .path_and_query()
                .map_or("/", |p| p.as_str())
                .to_string();
            *req.uri_mut() = http::Uri::builder()
                .path_and_query(path)
                .build()
                .map_err(|_| HttpError::HttpRequestUriInvalid)?;
            let io: Box<dyn IoStream> = if target.scheme == "https" {
                let server_name = match target.host.parse::<IpAddr>() {
                    Ok(ip) => rustls::pki_types::ServerName::from(ip),
                    Err(_) => rustls::pki_types::ServerName::try_from(target.host.clone())
                        .map_err(HttpError::InvalidDnsNameError)?,
                };
                let tls =
                    tokio_rustls::TlsConnector::from(tls_config()).connect(server_name, stream);
                Box::new(
                    tokio::time::timeout(connect_timeout, tls)
                        .await
                        .map_err(|_| HttpError::ConnectionTimeout)?
                        .map_err(HttpError::Tls)?,
                )
            } else {
                Box::new(stream)
            };
            let (mut sender, conn) = tokio::time::timeout(
                connect_timeout,
                hyper::client::conn::http1::Builder::new().handshake(TokioIo::new(io)),
            )
            .await
            .map_err(|_| HttpError::ConnectionTimeout)??;
            let driver = tokio::spawn(conn);
            let response = tokio::time::timeout(first_byte, sender.send_request(req))
                .await
                .map_err(|_| HttpError::ConnectionReadTimeout)??;
            if let Some(len) = response
                .headers()
                .get(http::header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.parse::<u64>().ok())
                && len > s.max_response_bytes
            {
                driver.abort();
                return Err(HttpError::HttpResponseBodySize(Some(len)));
            }
            let io_future: BoxFuture<'static, Result<(), HttpError>> = Box::pin(async move {
                match driver.await {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(HttpError::from(e)),
                    Err(_) => Ok(()),
                }
            });
            let limit = s.max_response_bytes;
            let response =
                response.map(|incoming| CappedBody::new(incoming, limit, between).boxed_unsync());
            Ok::<_, HttpError>((response, io_future))
        }
        .await;
        match &result {
            Ok((response, _)) => self.record(
                &tag,
                &summary,
                OutboundOutcome::Completed {
                    status: response.status().as_u16(),
                },
                start,
            ),
            Err(e) => self.record(
                &tag,
                &summary,
                OutboundOutcome::Failed {
                    error: e.to_string(),
                },
                start,
            ),
        }
        result
    }
}

fn default_port(scheme: &str) -> u16 {
    if scheme == "https" { 443 } else { 80 }
}

trait IoStream: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static {}
impl<T> IoStream for T where T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Send + Unpin + 'static
{}

async fn connect(
    addrs: &[IpAddr],
    port: u16,
    timeout: Duration,
) -> Result<tokio::net::TcpStream, HttpError> {
    let mut last = None;
    for ip in addrs {
        let addr = SocketAddr::new(*ip, port);
        match tokio::time::timeout(timeout, tokio::net::TcpStream::connect(addr)).await {
            Ok(Ok(stream)) => return Ok(stream),
            Ok(Err(e)) => last = Some(HttpError::Connect(e)),
            Err(_) => last = Some(HttpError::ConnectionTimeout),
        }
    }
    Err(last.unwrap_or(HttpError::DestinationUnavailable))
}

fn tls_config() -> Arc<rustls::ClientConfig> {
    static CONFIG: OnceLock<Arc<rustls::ClientConfig>> = OnceLock::new();
    CONFIG
        .get_or_init(|| {
            let roots = rustls::RootCertStore {
                roots: webpki_roots::TLS_SERVER_ROOTS.to_vec(),
            };
            // The provider is explicit so that another crate enabling aws-lc-rs cannot make
            // the process-default provider ambiguous.
            let config = rustls::ClientConfig::builder_with_provider(Arc::new(
                rustls::crypto::ring::default_provider(),
            ))
            .with_safe_default_protocol_versions()
            .map(|b| b.with_root_certificates(roots).with_no_client_auth());
            match config {
                Ok(c) => Arc::new(c),
                // The ring provider always supports the default versions; keep a usable
                // value rather than a panic if that ever changes.
                Err(_) => Arc::new(
                    rustls::ClientConfig::builder_with_provider(Arc::new(
                        rustls::crypto::ring::default_provider(),
                    ))
                    .with_protocol_versions(&[&rustls::version::TLS13])
                    .map(|b| {
                        b.with_root_certificates(rustls::RootCertStore::empty())
                            .with_no_client_auth()
                    })
                    .unwrap_or_else(|_| unreachable_config()),
                ),
            }
        })
        .clone()
}

#[allow(clippy::panic)]
fn unreachable_config() -> rustls::ClientConfig {
    // ring supports TLS 1.3 unconditionally.
    panic!("rustls with ring supports no TLS version")
}

struct RequestSummary {
    method: String,
    scheme: String,
    host: String,
    port: u16,
    path: String,
}

impl RequestSummary {
    fn of(req: &http::Request<WasiBody>) -> Self {
        let uri = req.uri();
        RequestSummary {
            method: req.method().to_string(),
            scheme: uri.scheme_str().unwrap_or("https").to_string(),
            host: uri.host().unwrap_or("").to_string(),
            port: uri.port_u16().unwrap_or(0),
            path: uri.path().to_string(),
        }
    }
}

/// A response body that fails when it grows past a limit or stalls between chunks.
struct CappedBody {
    inner: hyper::body::Incoming,
    remaining: u64,
    limit: u64,
    between: Duration,
    sleep: Pin<Box<tokio::time::Sleep>>,
}

impl CappedBody {
    fn new(inner: hyper::body::Incoming, limit: u64, between: Duration) -> Self {
        CappedBody {
            inner,
            remaining: limit,
            limit,
            between,
            sleep: Box::pin(tokio::time::sleep(between)),
        }
    }
}

impl Body for CappedBody {
    type Data = Bytes;
    type Error = HttpError;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, HttpError>>> {
        let this = &mut *self;
        match Pin::new(&mut this.inner).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    let n = data.len() as u64;
                    if n > this.remaining {
                        return Poll::Ready(Some(Err(HttpError::HttpResponseBodySize(Some(
                            this.limit,
                        )))));
                    }
                    this.remaining -= n;
                }
                let deadline = tokio::time::Instant::now() + this.between;
                this.sleep.as_mut().reset(deadline);
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(Some(Err(e))) => Poll::Ready(Some(Err(HttpError::from(e)))),
            Poll::Ready(None) => Poll::Ready(None),
            Poll::Pending => match this.sleep.as_mut().poll(cx) {
                Poll::Ready(()) => Poll::Ready(Some(Err(HttpError::ConnectionReadTimeout))),
                Poll::Pending => Poll::Pending,
            },
        }
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> SizeHint {
        self.inner.size_hint()
    }
}

/// Identifies the call a request belongs to.
#[derive(Debug, Clone)]
pub(crate) struct CallTag {
    pub(crate) account: String,
    pub(crate) op: &'static str,
}

/// The `wasi:http` hooks of one call's store.
pub(crate) struct OutboundHooks {
    pub(crate) policy: Arc<OutboundPolicy>,
    pub(crate) tag: CallTag,
}

impl WasiHttpHooks for OutboundHooks {
    fn forbidden_header_filter(&mut self) -> ForbiddenHeaderFilter {
        Arc::new(|name| DEFAULT_FORBIDDEN_HEADERS.contains(name))
    }

    fn set_host_header(&mut self) -> bool {
        // `send` sets Host from the checked authority.
        false
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: Box<dyn Future<Output = Result<(), HttpError>> + Send>,
    ) -> Box<
        dyn Future<
                Output = Result<
                    (
                        http::Response<WasiBody>,
                        Box<dyn Future<Output = Result<(), HttpError>> + Send>,
                    ),
                    HttpError,
                >,
            > + Send,
    > {
        let policy = self.policy.clone();
        let tag = self.tag.clone();
        Box::new(async move {
            let (response, io) = policy.send(request, options, tag).await?;
            Ok((response, Box::new(io) as Box<dyn Future<Output = _> + Send>))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn forbidden_addresses() {
        let cases = [
            ("127.0.0.1", true),
            ("169.254.169.254", true),
            ("10.1.2.3", true),
            ("172.16.0.1", true),
            ("192.168.1.1", true),
            ("100.100.100.200", true),
            ("0.0.0.0", true),
            ("168.63.129.16", true),
            ("::1", true),
            ("fd00:ec2::254", true),
            ("fe80::1", true),
            ("::ffff:127.0.0.1", true),
            ("::ffff:169.254.169.254", true),
            ("64:ff9b::a9fe:a9fe", true),
            ("::", true),
            ("93.184.216.34", false),
            ("2606:2800:220:1:248:1893:25c8:1946", false),
            ("8.8.8.8", false),
        ];
        for (ip, want) in cases {
            assert_eq!(is_forbidden_address(ip.parse().unwrap()), want, "{ip}");
        }
    }

    fn policy(allowed: &[&str], settings: OutboundSettings) -> OutboundPolicy {
        OutboundPolicy::new(
            "p",
            allowed
                .iter()
                .map(|a| AllowedHost::parse(a).unwrap())
                .collect(),
            Arc::new(settings),
        )
    }

    #[test]
    fn targets_are_checked_against_the_allowlist() {
        let p = policy(
            &["https://api.test", "http://*.svc.test:8080"],
            Default::default(),
        );
        let ok = |u: &str| p.target(&u.parse().unwrap()).is_ok();
        assert!(ok("https://api.test/x"));
        assert!(ok("https://API.test./x"));
        assert!(!ok("http://api.test/x"));
        assert!(!ok("https://api.test:444/x"));
        assert!(ok("http://a.svc.test:8080/"));
        assert!(!ok("http://svc.test:8080/"));
        assert!(!ok("https://evil.test/"));
    }

    #[tokio::test]
    async fn private_resolution_is_refused_unless_allowed_by_the_host() {
        let resolver = StaticResolver::new()
            .with("meta.test", &["169.254.169.254".parse().unwrap()])
            .with("dev.test", &["127.0.0.1".parse().unwrap()]);
        let mut settings = OutboundSettings {
            resolver: Arc::new(resolver),
            ..Default::default()
        };
        settings.private_hosts_allowed.insert("dev.test".into());
        let p = policy(&["https://meta.test", "https://dev.test"], settings);
        let t = p.target(&"https://meta.test/".parse().unwrap()).unwrap();
        assert!(matches!(p.addresses(&t).await, Err((true, _))));
        let t = p.target(&"https://dev.test/".parse().unwrap()).unwrap();
        assert_eq!(
            p.addresses(&t).await.unwrap(),
            vec!["127.0.0.1".parse::<IpAddr>().unwrap()]
        );
    }
}
