//! The conformance kit: the contract every provider passes, runnable against any component
//! file through the real host (`fleetplane provider test FILE`).
//!
//! It drives one cluster through create → describe → in-place update → machine-replacing
//! update → delete, with retries of the same idempotency keys, and checks typed errors for
//! unknown clusters, unknown operations and a malformed account. Operations are polled until
//! they finish, waiting as long as the provider's `poll-after-ms` hint says (bounded by
//! [`KitOptions::operation_timeout`]); against the simulator with `timeScale` 0 nothing waits.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use crate::digest::Digest;
use crate::error::{CallError, InstallError};
use crate::host::{HostConfig, ProviderPackage, ProviderRuntime, WasmHost};
use crate::manifest::ProviderManifest;
use crate::simcloud::{SimCloud, SystemClock};
use crate::types::{
    AccountContext, ClusterPhase, ClusterRef, ClusterSpec, LayerKind, NodePool, OpResult,
    Operation, OperationKind, OperationState, ProviderError, ProviderOp, RenderedLayer,
};

/// How a check ended.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "camelCase", tag = "outcome", content = "detail")]
pub enum CheckOutcome {
    /// The provider behaves as the contract says.
    Passed,
    /// It does not; the detail says how.
    Failed(String),
    /// Not run because an earlier check it depends on failed.
    Skipped(String),
}

/// One check of the report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Check {
    /// Stable check name, for example `create-idempotent`.
    pub name: &'static str,
    /// Whether failing it fails the report (others are recommendations).
    pub required: bool,
    /// The outcome.
    pub outcome: CheckOutcome,
}

/// The kit's report.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Report {
    /// Provider name from the manifest.
    pub provider: String,
    /// Component digest.
    pub digest: Digest,
    /// Every check in order.
    pub checks: Vec<Check>,
}

impl Report {
    /// Whether every required check passed.
    pub fn passed(&self) -> bool {
        self.checks
            .iter()
            .all(|c| !c.required || c.outcome == CheckOutcome::Passed)
    }

    /// The outcome of the check named `name`.
    pub fn outcome(&self, name: &str) -> Option<&CheckOutcome> {
        self.checks
            .iter()
            .find(|c| c.name == name)
            .map(|c| &c.outcome)
    }
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "conformance of provider `{}` ({})",
            self.provider, self.digest
        )?;
        for c in &self.checks {
            let tag = if c.required { "" } else { " (recommended)" };
            match &c.outcome {
                CheckOutcome::Passed => writeln!(f, "  ok    {}{tag}", c.name)?,
                CheckOutcome::Failed(d) => writeln!(f, "  FAIL  {}{tag}: {d}", c.name)?,
                CheckOutcome::Skipped(d) => writeln!(f, "  skip  {}{tag}: {d}", c.name)?,
            }
        }
        let failed = self
            .checks
            .iter()
            .filter(|c| c.required && c.outcome != CheckOutcome::Passed)
            .count();
        write!(f, "{} checks, {failed} required failed", self.checks.len())
    }
}

/// Options of a run.
#[derive(Debug, Clone)]
pub struct KitOptions {
    /// Region of the test cluster.
    pub region: String,
    /// Cloud type of the test cluster (default: the manifest's first, `aws` for `*`).
    pub cloud_type: Option<String>,
    /// Machine type of the test cluster's pools.
    pub instance_type: String,
    /// Name of the test cluster (made unique per run by the caller if needed).
    pub cluster_name: String,
    /// How long one operation may take before the check fails.
    pub operation_timeout: Duration,
    /// Host settings for the run (deadlines, outbound HTTP).
    pub host: HostConfig,
}

impl Default for KitOptions {
    fn default() -> Self {
        KitOptions {
            region: "sim-1".into(),
            cloud_type: None,
            instance_type: "standard-2".into(),
            cluster_name: "conformance".into(),
            operation_timeout: Duration::from_secs(30 * 60),
            host: HostConfig::default(),
        }
    }
}

/// Installs `bytes` with `manifest` in a fresh host and runs the contract.
///
/// The simulator component gets an in-memory simulated cloud.
///
/// # Errors
/// [`InstallError`] when the component cannot be installed at all (the report would be empty).
pub async fn run_component(
    bytes: &[u8],
    manifest: ProviderManifest,
    account: &AccountContext,
    options: KitOptions,
) -> Result<Report, InstallError> {
    let simcloud = SimCloud::in_memory(Arc::new(SystemClock))
        .map_err(|e| InstallError::Interface(e.to_string()))?;
    let host = WasmHost::new(options.host.clone(), Some(Arc::new(simcloud)))
        .map_err(|e| InstallError::Interface(e.to_string()))?;
    let package = ProviderPackage::verify(manifest, Digest::of(bytes), bytes.to_vec())?;
    let info = host.install(package).await?;
    Ok(run(&host, &info.name, account, &options).await)
}

/// Runs the contract against a provider installed in `runtime`.
pub async fn run(
    runtime: &dyn ProviderRuntime,
    provider: &str,
    account: &AccountContext,
    options: &KitOptions,
) -> Report {
    let info = runtime.provider(provider);
    let digest = info.as_ref().map_or(Digest::of(b""), |i| i.digest);
    let cloud_type = options.cloud_type.clone().unwrap_or_else(|| {
        info.as_ref()
            .and_then(|i| i.cloud_types.first().cloned())
            .filter(|c| c != "*")
            .unwrap_or_else(|| "aws".into())
    });
    let mut kit = Kit {
        runtime,
        provider,
        account,
        options,
        checks: Vec::new(),
    };
    let run_id = Digest::of(format!("{provider}{}", std::process::id()).as_bytes()).hex();
    let spec = sample_spec(
        &options.cluster_name,
        &run_id,
        &options.region,
        &cloud_type,
        &options.instance_type,
    );
    let key = |step: &str| format!("conformance-{}-{step}", &run_id[..16]);

    // validate-account
    let valid = kit.call(ProviderOp::ValidateAccount).await;
    kit.record(
        "validate-account",
        true,
        match &valid {
            Ok(OpResult::Account(_)) => Ok(()),
            Ok(other) => Err(format!("unexpected result {other:?}")),
            Err(e) => Err(e.to_string()),
        },
    );
    let bad_account = AccountContext {
        config: serde_json::json!(["not", "an", "object"]),
        ..account.clone()
    };
    let rejected = kit
        .runtime
        .call(provider, &bad_account, ProviderOp::ValidateAccount)
        .await;
    kit.record(
        "validate-account-rejects-non-object-config",
        true,
        expect_error(
            rejected,
            |e| matches!(e, ProviderError::InvalidConfig { .. }),
            "invalid-config",
        ),
    );

    // unknown things are typed not-found errors
    let unknown = ClusterRef {
        id: format!("00000000-0000-4000-8000-{}", &run_id[..12]),
        name: "never-created".into(),
        region: options.region.clone(),
    };
    let r = kit.call(ProviderOp::Describe { cluster: unknown }).await;
    kit.record(
        "describe-unknown-is-not-found",
        true,
        expect_error(
            r,
            |e| matches!(e, ProviderError::NotFound { .. }),
            "not-found",
        ),
    );
    let r = kit
        .call(ProviderOp::Poll {
            operation_id: "no-such-operation".into(),
        })
        .await;
    kit.record(
        "poll-unknown-is-not-found",
        true,
        expect_error(
            r,
            |e| matches!(e, ProviderError::NotFound { .. }),
            "not-found",
        ),
    );

    if valid.is_err() {
        kit.skip_rest("validate-account failed");
        return kit.report(provider, digest);
    }

    // create, retried with the same key
    let create = ProviderOp::Create {
        key: key("create"),
        spec: spec.clone(),
    };
    let Some(op) = kit
        .mutation(
            "create",
            create.clone(),
            OperationKind::Create,
            &spec.cluster,
        )
        .await
    else {
        kit.skip_rest("create failed");
        return kit.report(provider, digest);
    };
    let again = kit.call(create).await;
    kit.record("create-idempotent", true, same_operation(&op, again));
    let mut conflicting = spec.clone();
    conflicting.node_pools[1].count += 1;
    let r = kit
        .call(ProviderOp::Create {
            key: key("create"),
            spec: conflicting,
        })
        .await;
    kit.record(
        "create-key-reuse-is-conflict",
        false,
        expect_error(
            r,
            |e| matches!(e, ProviderError::Conflict { .. }),
            "conflict",
        ),
    );
    if !kit.finish("create-completes", &op).await {
        kit.skip_rest("create did not complete");
        return kit.report(provider, digest);
    }
    kit.describe_check("describe-after-create", &spec, None)
        .await;

    // in-place update: a new add-on layer
    let mut in_place = spec.clone();
    in_place.revision = "conformance-r2".into();
    in_place
        .layers
        .push(layer("hello-universe", LayerKind::Addon, "1.2.0"));
    let before = kit.node_names(&spec.cluster).await;
    let update = ProviderOp::Update {
        key: key("update-1"),
        spec: in_place.clone(),
        replace_machines: false,
    };
    if let Some(op) = kit
        .mutation(
            "update-in-place",
            update,
            OperationKind::Update,
            &spec.cluster,
        )
        .await
        && kit.finish("update-in-place-completes", &op).await
    {
        kit.describe_check(
            "describe-after-in-place-update",
            &in_place,
            before.as_deref(),
        )
        .await;
    }

    // machine-replacing update: a new Kubernetes version, retried with the same key
    let mut repave = in_place.clone();
    repave.revision = "conformance-r3".into();
    repave.kubernetes_version = "1.33.1".into();
    for l in &mut repave.layers {
        if l.layer == LayerKind::K8s {
            l.version = "1.33.1".into();
        }
    }
    let update = ProviderOp::Update {
        key: key("update-2"),
        spec: repave.clone(),
        replace_machines: true,
    };
    if let Some(op) = kit
        .mutation(
            "update-replacing-machines",
            update.clone(),
            OperationKind::Update,
            &spec.cluster,
        )
        .await
    {
        let again = kit.call(update).await;
        kit.record("update-idempotent", true, same_operation(&op, again));
        if kit.finish("update-replacing-machines-completes", &op).await {
            kit.describe_check("describe-after-replacing-update", &repave, None)
                .await;
        }
    }

    // delete, retried with the same key
    let delete = ProviderOp::Delete {
        key: key("delete"),
        cluster: spec.cluster.clone(),
    };
    if let Some(op) = kit
        .mutation(
            "delete",
            delete.clone(),
            OperationKind::Delete,
            &spec.cluster,
        )
        .await
    {
        let again = kit.call(delete).await;
        kit.record("delete-idempotent", true, same_operation(&op, again));
        if kit.finish("delete-completes", &op).await {
            let r = kit
                .call(ProviderOp::Describe {
                    cluster: spec.cluster.clone(),
                })
                .await;
            kit.record(
                "describe-after-delete",
                true,
                match r {
                    Ok(OpResult::State(s)) if s.phase == ClusterPhase::Deleted => Ok(()),
                    Ok(OpResult::State(s)) => Err(format!(
                        "phase is {:?}, expected deleted or not-found",
                        s.phase
                    )),
                    Err(CallError::Provider {
                        error: ProviderError::NotFound { .. },
                        ..
                    }) => Ok(()),
                    Ok(other) => Err(format!("unexpected result {other:?}")),
                    Err(e) => Err(e.to_string()),
                },
            );
        }
    }
    kit.report(provider, digest)
}

struct Kit<'a> {
    runtime: &'a dyn ProviderRuntime,
    provider: &'a str,
    account: &'a AccountContext,
    options: &'a KitOptions,
    checks: Vec<Check>,
}

impl Kit<'_> {
    async fn call(&self, op: ProviderOp) -> Result<OpResult, CallError> {
        self.runtime.call(self.provider, self.account, op).await
    }

    fn record(&mut self, name: &'static str, required: bool, result: Result<(), String>) {
        let outcome = match result {
            Ok(()) => CheckOutcome::Passed,
            Err(d) => CheckOutcome::Failed(d),
        };
        self.checks.push(Check {
            name,
            required,
            outcome,
        });
    }

    fn skip_rest(&mut self, why: &str) {
        self.checks.push(Check {
            name: "lifecycle",
            required: true,
            outcome: CheckOutcome::Skipped(format!("the rest of the lifecycle was not run: {why}")),
        });
    }

    fn report(self, provider: &str, digest: Digest) -> Report {
        Report {
            provider: provider.to_string(),
            digest,
            checks: self.checks,
        }
    }

    async fn mutation(
        &mut self,
        name: &'static str,
        op: ProviderOp,
        kind: OperationKind,
        cluster: &ClusterRef,
    ) -> Option<Operation> {
        let r = self.call(op).await;
        let checked = match r {
            Ok(OpResult::Operation(o)) => {
                if o.id.is_empty() {
                    Err("the operation has no id".to_string())
                } else if o.kind != kind {
                    Err(format!("operation kind is {:?}, expected {kind:?}", o.kind))
                } else if o.cluster.id != cluster.id {
                    Err(format!(
                        "operation is for cluster {}, expected {}",
                        o.cluster.id, cluster.id
                    ))
                } else {
                    Ok(o)
                }
            }
            Ok(other) => Err(format!("unexpected result {other:?}")),
            Err(e) => Err(e.to_string()),
        };
        match checked {
            Ok(o) => {
                self.record(name, true, Ok(()));
                Some(o)
            }
            Err(d) => {
                self.record(name, true, Err(d));
                None
            }
        }
    }

    /// Polls `op` until it finishes; records whether it succeeded.
    async fn finish(&mut self, name: &'static str, op: &Operation) -> bool {
        let deadline = tokio::time::Instant::now() + self.options.operation_timeout;
        let mut current = op.clone();
        let mut last_progress = 0u8;
        let result = loop {
            match current.state {
                OperationState::Succeeded => break Ok(()),
                OperationState::Failed => {
                    break Err(format!(
                        "operation failed: {}",
                        current
                            .error
                            .as_ref()
                            .map_or_else(|| current.message.clone(), ToString::to_string)
                    ));
                }
                OperationState::Running => {}
            }
            if current.progress > 100 {
                break Err(format!("progress {} is over 100", current.progress));
            }
            last_progress = last_progress.max(current.progress);
            if tokio::time::Instant::now() >= deadline {
                break Err(format!(
                    "still running after {:?}",
                    self.options.operation_timeout
                ));
            }
            let wait = Duration::from_millis(current.poll_after_ms.clamp(10, 5_000));
            tokio::time::sleep(wait).await;
            match self
                .call(ProviderOp::Poll {
                    operation_id: op.id.clone(),
                })
                .await
            {
                Ok(OpResult::Operation(o)) if o.id == op.id => current = o,
                Ok(other) => break Err(format!("poll returned {other:?}")),
                Err(e) if e.is_retryable() => continue,
                Err(e) => break Err(e.to_string()),
            }
        };
        let ok = result.is_ok();
        self.record(name, true, result);
        ok
    }

    async fn node_names(&self, cluster: &ClusterRef) -> Option<Vec<String>> {
        match self
            .call(ProviderOp::Describe {
                cluster: cluster.clone(),
            })
            .await
        {
            Ok(OpResult::State(s)) => {
                let mut names: Vec<String> = s.nodes.into_iter().map(|n| n.name).collect();
                names.sort();
                Some(names)
            }
            _ => None,
        }
    }

    /// Describes the cluster and checks it matches `spec` (and kept `same_nodes`, if given).
    async fn describe_check(
        &mut self,
        name: &'static str,
        spec: &ClusterSpec,
        same_nodes: Option<&[String]>,
    ) {
        let r = self
            .call(ProviderOp::Describe {
                cluster: spec.cluster.clone(),
            })
            .await;
        let result = match r {
            Ok(OpResult::State(s)) => {
                let mut problems = Vec::new();
                if s.phase != ClusterPhase::Running {
                    problems.push(format!("phase is {:?}, expected running", s.phase));
                }
                if s.applied_revision.as_deref() != Some(spec.revision.as_str()) {
                    problems.push(format!(
                        "applied revision is {:?}, expected {}",
                        s.applied_revision, spec.revision
                    ));
                }
                let want: u32 = spec.node_pools.iter().map(|p| p.count).sum();
                if s.nodes.len() != want as usize {
                    problems.push(format!("{} nodes, expected {want}", s.nodes.len()));
                }
                if let Some(n) = s
                    .nodes
                    .iter()
                    .find(|n| n.kubernetes_version != spec.kubernetes_version)
                {
                    problems.push(format!(
                        "node {} runs Kubernetes {}, expected {}",
                        n.name, n.kubernetes_version, spec.kubernetes_version
                    ));
                }
                for l in &spec.layers {
                    if !s
                        .applied_stack
                        .iter()
                        .any(|a| a.name == l.name && a.version == l.version)
                    {
                        problems.push(format!("layer {} {} is not applied", l.name, l.version));
                    }
                }
                if let Some(before) = same_nodes {
                    let mut now: Vec<String> = s.nodes.iter().map(|n| n.name.clone()).collect();
                    now.sort();
                    if now != before {
                        problems.push("an in-place update replaced machines".into());
                    }
                }
                if problems.is_empty() {
                    Ok(())
                } else {
                    Err(problems.join("; "))
                }
            }
            Ok(other) => Err(format!("unexpected result {other:?}")),
            Err(e) => Err(e.to_string()),
        };
        self.record(name, true, result);
    }
}

fn expect_error(
    r: Result<OpResult, CallError>,
    want: impl Fn(&ProviderError) -> bool,
    what: &str,
) -> Result<(), String> {
    match r {
        Err(CallError::Provider { error, .. }) if want(&error) => Ok(()),
        Err(e) => Err(format!("expected a typed {what} error, got: {e}")),
        Ok(v) => Err(format!("expected a typed {what} error, got success: {v:?}")),
    }
}

fn same_operation(first: &Operation, again: Result<OpResult, CallError>) -> Result<(), String> {
    match again {
        Ok(OpResult::Operation(o)) if o.id == first.id => Ok(()),
        Ok(OpResult::Operation(o)) => Err(format!(
            "the retry returned operation {}, not {}",
            o.id, first.id
        )),
        Ok(other) => Err(format!("unexpected result {other:?}")),
        Err(e) => Err(format!("the retry failed: {e}")),
    }
}

fn layer(name: &str, kind: LayerKind, version: &str) -> RenderedLayer {
    RenderedLayer {
        name: name.into(),
        layer: kind,
        pack: name.into(),
        version: version.into(),
        values: String::new(),
    }
}

/// The cluster the kit creates: one control-plane machine and two workers, four core layers.
pub fn sample_spec(
    name: &str,
    run_id: &str,
    region: &str,
    cloud_type: &str,
    instance_type: &str,
) -> ClusterSpec {
    let id = format!(
        "{}-{}-4{}-8{}-{}",
        &run_id[..8],
        &run_id[8..12],
        &run_id[13..16],
        &run_id[17..20],
        &run_id[20..32]
    );
    ClusterSpec {
        cluster: ClusterRef {
            id,
            name: name.into(),
            region: region.into(),
        },
        cloud_type: cloud_type.into(),
        labels: vec![("fleetplane.io/conformance".into(), "true".into())],
        node_pools: vec![
            NodePool {
                name: "control-plane".into(),
                control_plane: true,
                count: 1,
                instance_type: instance_type.into(),
            },
            NodePool {
                name: "workers".into(),
                control_plane: false,
                count: 2,
                instance_type: instance_type.into(),
            },
        ],
        os_image: "ubuntu-22.04".into(),
        kubernetes_version: "1.32.2".into(),
        layers: vec![
            layer("ubuntu", LayerKind::Os, "22.04"),
            layer("kubernetes", LayerKind::K8s, "1.32.2"),
            layer("cni-calico", LayerKind::Cni, "3.29.0"),
            layer("csi-generic", LayerKind::Csi, "1.0.0"),
        ],
        revision: "conformance-r1".into(),
    }
}
