//! The real components in the real host: the sandbox, the registry and the simulator.

use std::collections::HashSet;
use std::net::IpAddr;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use fleetplane_wasm_host::components::{self, paths};
use fleetplane_wasm_host::conformance::{self, CheckOutcome, KitOptions};
use fleetplane_wasm_host::outbound::StaticResolver;
use fleetplane_wasm_host::*;
use http_body_util::Full;
use hyper::body::Bytes;

fn manifest(name: &str, allowed: &[String]) -> ProviderManifest {
    ProviderManifest {
        name: name.into(),
        version: "1.0.0".into(),
        wit_version: WIT_VERSION.into(),
        cloud_types: vec!["aws".into()],
        allowed_hosts: allowed.to_vec(),
        account_schema: serde_json::json!({"type": "object"}),
        secrets: Vec::new(),
        description: None,
    }
}

fn read(path: &str) -> Vec<u8> {
    std::fs::read(path).expect("component built by build.rs")
}

async fn install(
    host: &WasmHost,
    path: &str,
    name: &str,
    allowed: &[String],
) -> Result<ProviderInfo, InstallError> {
    let bytes = read(path);
    let package = ProviderPackage::verify(manifest(name, allowed), Digest::of(&bytes), bytes)?;
    host.install(package).await
}

fn host(config: HostConfig) -> WasmHost {
    WasmHost::new(config, None).expect("host starts")
}

fn attack(kind: &str, url: &str) -> AccountContext {
    AccountContext::new("acct", serde_json::json!({"attack": kind, "url": url}))
}

/// The host keeps serving: a call to the no-op provider still works.
async fn assert_still_serving(host: &WasmHost) {
    if host.provider("noop").is_none() {
        install(host, paths::NOOP, "noop", &[])
            .await
            .expect("noop installs");
    }
    let r = host
        .call(
            "noop",
            &AccountContext::new("other", serde_json::json!({})),
            ProviderOp::ValidateAccount,
        )
        .await;
    assert!(
        matches!(r, Ok(OpResult::Account(_))),
        "host stopped serving: {r:?}"
    );
}

/// A tiny HTTP server on 127.0.0.1 recording the Host header of every request.
struct TestServer {
    port: u16,
    seen: Arc<Mutex<Vec<(String, String)>>>,
    gate: Arc<Gate>,
}

/// Holds every `/gated` request until `threshold` of them have arrived, then lets all through;
/// records how many were held at once.
struct Gate {
    threshold: usize,
    arrived: AtomicUsize,
    in_flight: AtomicUsize,
    max_in_flight: AtomicUsize,
    open: tokio::sync::watch::Sender<bool>,
}

impl Gate {
    async fn pass(&self) {
        let mut open = self.open.subscribe();
        let now = self.in_flight.fetch_add(1, Ordering::SeqCst) + 1;
        self.max_in_flight.fetch_max(now, Ordering::SeqCst);
        if self.arrived.fetch_add(1, Ordering::SeqCst) + 1 >= self.threshold {
            self.open.send_replace(true);
        }
        let _ = open.wait_for(|o| *o).await;
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
    }
}

async fn test_server() -> TestServer {
    gated_server(usize::MAX).await
}

async fn gated_server(threshold: usize) -> TestServer {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let seen: Arc<Mutex<Vec<(String, String)>>> = Arc::default();
    let gate = Arc::new(Gate {
        threshold,
        arrived: AtomicUsize::new(0),
        in_flight: AtomicUsize::new(0),
        max_in_flight: AtomicUsize::new(0),
        open: tokio::sync::watch::channel(false).0,
    });
    let log = seen.clone();
    let server_gate = gate.clone();
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                return;
            };
            let log = log.clone();
            let gate = server_gate.clone();
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    move |req: hyper::Request<hyper::body::Incoming>| {
                        let log = log.clone();
                        let gate = gate.clone();
                        async move {
                            let host = req
                                .headers()
                                .get(hyper::header::HOST)
                                .and_then(|v| v.to_str().ok())
                                .unwrap_or("")
                                .to_string();
                            let path = req.uri().path().to_string();
                            log.lock().unwrap().push((host.clone(), path.clone()));
                            if path == "/gated" {
                                gate.pass().await;
                            }
                            let response = match path.as_str() {
                                "/redirect" => hyper::Response::builder()
                                    .status(302)
                                    .header("location", format!("http://evil.test:{port}/ok"))
                                    .body(Full::new(Bytes::new())),
                                "/big" => hyper::Response::builder()
                                    .body(Full::new(Bytes::from(vec![b'x'; 256 * 1024]))),
                                _ => hyper::Response::builder()
                                    .body(Full::new(Bytes::from(format!("host={host}")))),
                            };
                            Ok::<_, std::convert::Infallible>(response.unwrap())
                        }
                    },
                );
                let io = wasmtime_wasi_http::io::TokioIo::new(stream);
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(io, service)
                    .await;
            });
        }
    });
    TestServer { port, seen, gate }
}

fn loopback() -> IpAddr {
    "127.0.0.1".parse().unwrap()
}

/// A host whose resolver maps `api.test` and `evil.test` to 127.0.0.1; only `api.test` may
/// resolve to a private address (a host-side test setting).
fn http_host(audit: Option<AuditSink>, max_response_bytes: u64) -> WasmHost {
    host(http_config(audit, max_response_bytes))
}

/// The settings of [`http_host`].
fn http_config(audit: Option<AuditSink>, max_response_bytes: u64) -> HostConfig {
    let resolver = StaticResolver::new()
        .with("api.test", &[loopback()])
        .with("evil.test", &[loopback()])
        .with("metadata.test", &["169.254.169.254".parse().unwrap()])
        .with("v6.test", &["::1".parse().unwrap()]);
    let outbound = OutboundSettings {
        resolver: Arc::new(resolver),
        private_hosts_allowed: HashSet::from(["api.test".to_string()]),
        max_response_bytes,
        audit,
        ..Default::default()
    };
    HostConfig {
        outbound,
        ..Default::default()
    }
}

fn provider_error(r: Result<OpResult, CallError>) -> ProviderError {
    match r {
        Err(CallError::Provider { error, .. }) => error,
        other => panic!("expected a provider error, got {other:?}"),
    }
}

fn identity(r: Result<OpResult, CallError>) -> String {
    match r {
        Ok(OpResult::Account(a)) => a.identity,
        other => panic!("expected account info, got {other:?}"),
    }
}

#[tokio::test]
async fn environment_variables_and_arguments_are_empty() {
    // The test process has PATH and friends; none of it reaches the component.
    let host = host(HostConfig::default());
    install(&host, paths::HOSTILE, "hostile", &[])
        .await
        .unwrap();
    let seen = identity(
        host.call("hostile", &attack("env", ""), ProviderOp::ValidateAccount)
            .await,
    );
    assert_eq!(seen, "vars=[] args=[] path=None");
    assert_still_serving(&host).await;
}

#[tokio::test]
async fn a_component_that_reads_files_is_refused_at_install() {
    let host = host(HostConfig::default());
    let err = install(&host, paths::HOSTILE_FS, "hostile-fs", &[])
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, InstallError::Interface(_)), "{text}");
    assert!(
        text.contains("wasi:filesystem") && text.contains("no filesystem"),
        "{text}"
    );
    assert!(host.provider("hostile-fs").is_none());
    assert_still_serving(&host).await;
}

#[tokio::test]
async fn a_component_that_opens_sockets_is_refused_at_install() {
    let host = host(HostConfig::default());
    let err = install(&host, paths::HOSTILE_SOCKET, "hostile-socket", &[])
        .await
        .unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, InstallError::Interface(_)), "{text}");
    assert!(
        text.contains("wasi:sockets") && text.contains("no sockets"),
        "{text}"
    );
    assert_still_serving(&host).await;
}

#[tokio::test]
async fn a_host_not_on_the_allowlist_is_denied_and_audited() {
    let server = test_server().await;
    let records: Arc<Mutex<Vec<OutboundRecord>>> = Arc::default();
    let sink = records.clone();
    let audit: AuditSink = Arc::new(move |r| sink.lock().unwrap().push(r));
    let host = http_host(Some(audit), 1 << 20);
    let allowed = [format!("http://api.test:{}", server.port)];
    install(&host, paths::HOSTILE, "hostile", &allowed)
        .await
        .unwrap();

    // Allowed: reaches the server.
    let url = format!("http://api.test:{}/ok", server.port);
    let seen = identity(
        host.call(
            "hostile",
            &attack("http", &url),
            ProviderOp::ValidateAccount,
        )
        .await,
    );
    assert_eq!(
        seen,
        format!("status=200 body=host=api.test:{}", server.port)
    );

    // Not allowed: a different host, and the same host on another port.
    for url in [
        format!("http://evil.test:{}/ok", server.port),
        "http://api.test:1/ok".to_string(),
    ] {
        let e = provider_error(
            host.call(
                "hostile",
                &attack("http", &url),
                ProviderOp::ValidateAccount,
            )
            .await,
        );
        assert!(e.to_string().contains("denied by the sandbox"), "{e}");
    }
    assert_eq!(
        server.seen.lock().unwrap().len(),
        1,
        "denied requests never reach the network"
    );
    {
        let records = records.lock().unwrap();
        let outcomes: Vec<_> = records
            .iter()
            .map(|r| (r.host.clone(), r.outcome.clone()))
            .collect();
        assert_eq!(
            outcomes[0],
            (
                "api.test".into(),
                OutboundOutcome::Completed { status: 200 }
            )
        );
        assert!(
            matches!(&outcomes[1], (h, OutboundOutcome::Denied { reason }) if h == "evil.test" && reason.contains("allowedHosts"))
        );
        assert!(matches!(&outcomes[2], (_, OutboundOutcome::Denied { .. })));
        assert!(
            records.iter().all(|r| r.provider == "hostile"
                && r.account == "acct"
                && r.op == "validate-account")
        );
    }
    assert_still_serving(&host).await;
}

#[tokio::test]
async fn allowed_names_resolving_to_loopback_link_local_or_metadata_are_denied() {
    let server = test_server().await;
    let host = http_host(None, 1 << 20);
    let p = server.port;
    let allowed = [
        format!("http://evil.test:{p}"),
        format!("http://metadata.test:{p}"),
        format!("http://v6.test:{p}"),
        format!("http://127.0.0.1:{p}"),
    ];
    install(&host, paths::HOSTILE, "hostile", &allowed)
        .await
        .unwrap();
    for url in [
        format!("http://evil.test:{p}/ok"),
        format!("http://metadata.test:{p}/latest/meta-data"),
        format!("http://v6.test:{p}/ok"),
        format!("http://127.0.0.1:{p}/ok"),
    ] {
        let e = provider_error(
            host.call(
                "hostile",
                &attack("http", &url),
                ProviderOp::ValidateAccount,
            )
            .await,
        );
        assert!(
            e.to_string().contains("DestinationIpProhibited"),
            "{url}: {e}"
        );
    }
    assert!(server.seen.lock().unwrap().is_empty());
    assert_still_serving(&host).await;
}

#[tokio::test]
async fn the_guest_cannot_set_the_host_header() {
    let server = test_server().await;
    let host = http_host(None, 1 << 20);
    install(
        &host,
        paths::HOSTILE,
        "hostile",
        &[format!("http://api.test:{}", server.port)],
    )
    .await
    .unwrap();
    let url = format!("http://api.test:{}/ok", server.port);
    let e = provider_error(
        host.call(
            "hostile",
            &attack("host-header", &url),
            ProviderOp::ValidateAccount,
        )
        .await,
    );
    assert!(e.to_string().contains("header rejected: Host"), "{e}");
    assert!(
        server
            .seen
            .lock()
            .unwrap()
            .iter()
            .all(|(h, _)| !h.contains("metadata"))
    );
    assert_still_serving(&host).await;
}

#[tokio::test]
async fn redirects_are_not_followed_by_the_host_and_each_hop_is_rechecked() {
    let server = test_server().await;
    let host = http_host(None, 1 << 20);
    install(
        &host,
        paths::HOSTILE,
        "hostile",
        &[format!("http://api.test:{}", server.port)],
    )
    .await
    .unwrap();
    let url = format!("http://api.test:{}/redirect", server.port);
    let seen = identity(
        host.call(
            "hostile",
            &attack("http", &url),
            ProviderOp::ValidateAccount,
        )
        .await,
    );
    assert!(seen.starts_with("status=302"), "{seen}");
    let e = provider_error(
        host.call(
            "hostile",
            &attack("redirect", &url),
            ProviderOp::ValidateAccount,
        )
        .await,
    );
    assert!(e.to_string().contains("denied by the sandbox"), "{e}");
    let paths: Vec<String> = server
        .seen
        .lock()
        .unwrap()
        .iter()
        .map(|(_, p)| p.clone())
        .collect();
    assert_eq!(
        paths,
        ["/redirect", "/redirect"],
        "the redirect target was never requested"
    );
}

#[tokio::test]
async fn responses_larger_than_the_cap_fail() {
    let server = test_server().await;
    let host = http_host(None, 64 * 1024);
    install(
        &host,
        paths::HOSTILE,
        "hostile",
        &[format!("http://api.test:{}", server.port)],
    )
    .await
    .unwrap();
    let url = format!("http://api.test:{}/big", server.port);
    let e = provider_error(
        host.call(
            "hostile",
            &attack("http", &url),
            ProviderOp::ValidateAccount,
        )
        .await,
    );
    assert!(e.to_string().contains("HttpResponseBodySize"), "{e}");
    assert!(e.is_retryable(), "transport errors are transient");
}

#[tokio::test]
async fn an_endless_loop_is_stopped_at_the_deadline() {
    let host = host(HostConfig {
        call_deadline: Duration::from_millis(500),
        ..Default::default()
    });
    install(&host, paths::HOSTILE, "hostile", &[])
        .await
        .unwrap();
    let err = host
        .call("hostile", &attack("loop", ""), ProviderOp::ValidateAccount)
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::Deadline { .. }), "{err}");
    assert!(err.is_retryable());
    assert_eq!(host.provider("hostile").unwrap().sandbox_failures, 1);
    assert_still_serving(&host).await;
}

#[tokio::test]
async fn unbounded_allocation_is_stopped_at_the_memory_limit() {
    let host = host(HostConfig {
        memory_limit_bytes: 32 << 20,
        ..Default::default()
    });
    install(&host, paths::HOSTILE, "hostile", &[])
        .await
        .unwrap();
    let err = host
        .call("hostile", &attack("alloc", ""), ProviderOp::ValidateAccount)
        .await
        .unwrap_err();
    assert!(
        matches!(err, CallError::MemoryLimit { limit_bytes, .. } if limit_bytes == 32 << 20),
        "{err}"
    );
    assert!(!err.is_retryable());
    assert_still_serving(&host).await;
}

#[tokio::test]
async fn a_trap_fails_the_call_with_the_panic_message() {
    let host = host(HostConfig::default());
    install(&host, paths::HOSTILE, "hostile", &[])
        .await
        .unwrap();
    let err = host
        .call("hostile", &attack("trap", ""), ProviderOp::ValidateAccount)
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::Trap { .. }), "{err}");
    assert!(err.to_string().contains("panicked on purpose"), "{err}");
    assert!(!err.is_retryable());
    assert_eq!(err.code(), "ProviderTrapped");
    assert_still_serving(&host).await;
}

#[tokio::test]
async fn secrets_are_scrubbed_from_what_a_component_reports() {
    let host = host(HostConfig::default());
    install(&host, paths::HOSTILE, "hostile", &[])
        .await
        .unwrap();
    let account = attack("log-secret", "").with_secret("token", "s3cr3t-value-42");
    assert_eq!(
        format!("{account:?}").matches("s3cr3t").count(),
        0,
        "Debug never shows secrets"
    );
    let e = provider_error(
        host.call("hostile", &account, ProviderOp::ValidateAccount)
            .await,
    );
    assert_eq!(e.to_string(), "permanent failure: token is <redacted>");
}

#[tokio::test]
async fn a_changed_byte_is_refused() {
    let bytes = read(paths::NOOP);
    let recorded = Digest::of(&bytes);
    let dir = tempfile::tempdir().unwrap();
    let wasm = dir.path().join("noop.wasm");
    let manifest_path = dir.path().join("provider.json");
    std::fs::write(
        &manifest_path,
        serde_json::to_vec(&manifest("noop", &[])).unwrap(),
    )
    .unwrap();
    std::fs::write(&wasm, &bytes).unwrap();
    let host = host(HostConfig::default());
    let package = ProviderPackage::load(&manifest_path, &wasm, recorded).unwrap();
    host.install(package).await.unwrap();

    let mut tampered = bytes.clone();
    let middle = tampered.len() / 2;
    tampered[middle] ^= 0x01;
    std::fs::write(&wasm, &tampered).unwrap();
    let err = ProviderPackage::load(&manifest_path, &wasm, recorded).unwrap_err();
    match err {
        InstallError::Digest(m) => {
            assert_eq!(m.expected, recorded);
            assert_eq!(m.actual, Digest::of(&tampered));
        }
        other => panic!("expected a digest mismatch, got {other}"),
    }
}

#[tokio::test]
async fn bytes_that_are_not_a_component_are_refused() {
    let host = host(HostConfig::default());
    let core_module = b"\0asm\x01\0\0\0".to_vec();
    let package =
        ProviderPackage::verify(manifest("x", &[]), Digest::of(&core_module), core_module).unwrap();
    assert!(matches!(
        host.install(package).await,
        Err(InstallError::Compile(_))
    ));
}

#[tokio::test]
async fn only_the_builtin_simulator_is_linked_to_the_simulated_cloud() {
    let simcloud = SimCloud::in_memory(Arc::new(ManualClock::new(0))).unwrap();
    let host = WasmHost::new(HostConfig::default(), Some(Arc::new(simcloud))).unwrap();
    // The same component with a custom section appended: valid, but not the built-in bytes.
    let mut bytes = components::SIMULATOR_WASM.to_vec();
    bytes.extend_from_slice(&[0x00, 0x05, 0x04, b't', b'e', b's', b't']);
    let package =
        ProviderPackage::verify(manifest("copycat", &[]), Digest::of(&bytes), bytes).unwrap();
    let err = host.install(package).await.unwrap_err();
    assert!(
        err.to_string().contains("only the built-in simulator"),
        "{err}"
    );
    let info = host
        .install(components::simulator_package().unwrap())
        .await
        .unwrap();
    assert!(info.simulated_cloud);
}

#[tokio::test]
async fn unknown_providers_are_a_typed_error() {
    let host = host(HostConfig::default());
    let err = host
        .call(
            "nope",
            &AccountContext::new("a", serde_json::json!({})),
            ProviderOp::ValidateAccount,
        )
        .await
        .unwrap_err();
    assert!(matches!(err, CallError::UnknownProvider(_)));
    assert!(!err.is_retryable());
}

fn sim_account(time_scale: f64) -> AccountContext {
    AccountContext::new("simulator", serde_json::json!({"timeScale": time_scale}))
}

#[tokio::test]
async fn the_simulator_passes_the_conformance_kit() {
    let manifest = ProviderManifest::parse(components::SIMULATOR_MANIFEST.as_bytes()).unwrap();
    let report = conformance::run_component(
        components::SIMULATOR_WASM,
        manifest,
        &sim_account(0.0),
        KitOptions::default(),
    )
    .await
    .unwrap();
    assert!(report.passed(), "{report}");
    assert!(
        report
            .checks
            .iter()
            .all(|c| c.outcome == CheckOutcome::Passed),
        "{report}"
    );
    assert!(report.checks.len() >= 15, "{report}");
}

#[tokio::test]
async fn the_conformance_kit_fails_a_provider_that_does_nothing() {
    let report = conformance::run_component(
        &read(paths::NOOP),
        manifest("noop", &[]),
        &sim_account(0.0),
        KitOptions::default(),
    )
    .await
    .unwrap();
    assert!(!report.passed());
    assert!(matches!(
        report.outcome("validate-account-rejects-non-object-config"),
        Some(CheckOutcome::Failed(_))
    ));
    // Its operations have no id, so the lifecycle stops after `create`.
    assert!(
        matches!(report.outcome("create"), Some(CheckOutcome::Failed(d)) if d.contains("no id"))
    );
    assert!(matches!(
        report.outcome("lifecycle"),
        Some(CheckOutcome::Skipped(_))
    ));
}

#[tokio::test]
async fn the_simulator_provisions_and_repaves_on_the_injected_clock() {
    let clock = Arc::new(ManualClock::new(1_700_000_000_000));
    let simcloud = Arc::new(SimCloud::in_memory(clock.clone()).unwrap());
    let host = WasmHost::new(HostConfig::default(), Some(simcloud.clone())).unwrap();
    host.install(components::simulator_package().unwrap())
        .await
        .unwrap();
    let account = sim_account(1.0);
    let spec = conformance::sample_spec(
        "dev",
        &Digest::of(b"dev").hex(),
        "sim-1",
        "aws",
        "sim.large",
    );
    let cluster = spec.cluster.clone();
    let describe = || {
        host.call(
            "simulator",
            &account,
            ProviderOp::Describe {
                cluster: cluster.clone(),
            },
        )
    };

    let create = ProviderOp::Create {
        key: "k1".into(),
        spec: spec.clone(),
    };
    let Ok(OpResult::Operation(op)) = host.call("simulator", &account, create.clone()).await else {
        panic!()
    };
    let Ok(OpResult::Operation(again)) = host.call("simulator", &account, create).await else {
        panic!()
    };
    assert_eq!(op.id, again.id);
    assert_eq!(
        simcloud.cluster_count().unwrap(),
        1,
        "a retried create never makes a second cluster"
    );

    let Ok(OpResult::State(s)) = describe().await else {
        panic!()
    };
    assert_eq!(s.phase, ClusterPhase::Provisioning);
    clock.advance(Duration::from_secs(60));
    let Ok(OpResult::State(s)) = describe().await else {
        panic!()
    };
    assert_eq!(s.phase, ClusterPhase::Running);
    assert_eq!(s.nodes.len(), 3);
    assert_eq!(s.health, Health::Healthy);

    let mut next = spec.clone();
    next.revision = "r2".into();
    next.kubernetes_version = "1.33.0".into();
    let update = ProviderOp::Update {
        key: "k2".into(),
        spec: next,
        replace_machines: true,
    };
    let Ok(OpResult::Operation(op)) = host.call("simulator", &account, update).await else {
        panic!()
    };
    assert_eq!(op.state, OperationState::Running);
    // Two rounds (workers has two machines): after 20 s one node per pool was replaced.
    clock.advance(Duration::from_secs(20));
    let Ok(OpResult::State(s)) = describe().await else {
        panic!()
    };
    let upgraded = s
        .nodes
        .iter()
        .filter(|n| n.kubernetes_version == "1.33.0" && n.phase == NodePhase::Ready)
        .count();
    assert_eq!(upgraded, 2, "{:#?}", s.nodes);
    clock.advance(Duration::from_secs(40));
    let Ok(OpResult::Operation(done)) = host
        .call(
            "simulator",
            &account,
            ProviderOp::Poll {
                operation_id: op.id,
            },
        )
        .await
    else {
        panic!()
    };
    assert_eq!(done.state, OperationState::Succeeded);
}

#[tokio::test]
async fn the_simulator_reports_invalid_accounts_with_field_paths() {
    let simcloud = Arc::new(SimCloud::in_memory(Arc::new(ManualClock::new(0))).unwrap());
    let host = WasmHost::new(HostConfig::default(), Some(simcloud)).unwrap();
    host.install(components::simulator_package().unwrap())
        .await
        .unwrap();
    let e = provider_error(
        host.call("simulator", &sim_account(-1.0), ProviderOp::ValidateAccount)
            .await,
    );
    assert_eq!(
        e,
        ProviderError::InvalidConfig {
            problems: vec![FieldProblem {
                field: "config.timeScale".into(),
                message: "must be a number from 0 to 1000".into()
            }]
        }
    );
}

#[tokio::test]
async fn calls_beyond_the_instance_pool_wait_for_a_slot_and_all_succeed() {
    const POOL: usize = 4;
    const CALLS: usize = 6 * POOL;
    // The server holds requests until POOL calls are inside the sandbox at once, so the pool
    // is full while the other calls arrive: they must wait for a slot, not fail.
    let server = gated_server(POOL).await;
    let host = host(HostConfig {
        max_instances: POOL,
        ..http_config(None, 1 << 20)
    });
    assert_eq!(host.allocator(), Allocator::Pooling);
    install(
        &host,
        paths::HOSTILE,
        "hostile",
        &[format!("http://api.test:{}", server.port)],
    )
    .await
    .unwrap();
    let url = format!("http://api.test:{}/gated", server.port);
    let accounts: Vec<AccountContext> = (0..CALLS)
        .map(|i| {
            AccountContext::new(
                format!("acct-{i}"),
                serde_json::json!({"attack": "http", "url": url}),
            )
        })
        .collect();
    let results = futures::future::join_all(
        accounts
            .iter()
            .map(|a| host.call("hostile", a, ProviderOp::ValidateAccount)),
    )
    .await;
    for r in results {
        assert!(identity(r).starts_with("status=200"));
    }
    assert_eq!(server.gate.arrived.load(Ordering::SeqCst), CALLS);
    assert_eq!(server.gate.max_in_flight.load(Ordering::SeqCst), POOL);
    assert_eq!(host.provider("hostile").unwrap().sandbox_failures, 0);
}

#[tokio::test]
async fn the_probe_times_each_phase_on_the_call_path() {
    for pooling in [true, false] {
        let host = host(HostConfig {
            pooling,
            ..Default::default()
        });
        install(&host, paths::NOOP, "noop", &[]).await.unwrap();
        let account = AccountContext::new("probe", serde_json::json!({}));
        let phases = host.probe("noop", &account, 5).await.unwrap();
        assert_eq!(phases.calls, 5);
        assert_eq!(
            phases.allocator,
            if pooling {
                Allocator::Pooling
            } else {
                Allocator::OnDemand
            }
        );
        // The calls went through the real path (counted), and the phases fit in the calls.
        assert_eq!(host.provider("noop").unwrap().calls, 5);
        assert!(phases.instantiate.mean > Duration::ZERO);
        assert!(phases.round_trip.mean > Duration::ZERO);
        let parts = phases.store.mean
            + phases.instantiate.mean
            + phases.round_trip.mean
            + phases.teardown.mean;
        assert!(parts <= phases.total.mean, "{phases:?}");
    }
    let host = host(HostConfig::default());
    let account = AccountContext::new("probe", serde_json::json!({}));
    assert!(matches!(
        host.probe("missing", &account, 3).await,
        Err(CallError::UnknownProvider(_))
    ));
    // A failing call fails the probe with the call's error.
    install(&host, paths::HOSTILE, "hostile", &[])
        .await
        .unwrap();
    assert!(matches!(
        host.probe("hostile", &attack("trap", ""), 3).await,
        Err(CallError::Trap { .. })
    ));
}
