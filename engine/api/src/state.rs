//! Shared state of the API and the transaction helper every handler writes through.

use crate::audit::{AuditEntry, ChangeEvent};
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::metrics::Metrics;
use fleetplane_store::{Log, Store, WriteOps};
use governor::{DefaultKeyedRateLimiter, Quota};
use std::num::NonZeroU32;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio::sync::broadcast;

/// Limits and sizes the API enforces.
#[derive(Debug, Clone)]
pub struct ApiSettings {
    /// Largest request body, bytes.
    pub max_body_bytes: usize,
    /// Sustained requests per second per API key.
    pub rate_per_key: u32,
    /// Sustained requests per second per client address.
    pub rate_per_address: u32,
    /// Burst on top of the sustained rates.
    pub burst: u32,
    /// Largest list page.
    pub max_page: usize,
    /// How many change events the store keeps for reconnecting clients.
    pub event_retention: u64,
}

impl Default for ApiSettings {
    fn default() -> Self {
        Self {
            max_body_bytes: 4 * 1024 * 1024,
            rate_per_key: 200,
            rate_per_address: 400,
            burst: 400,
            max_page: 500,
            event_retention: 100_000,
        }
    }
}

/// The state every handler sees. Cheap to clone.
#[derive(Clone)]
pub struct AppState(Arc<Inner>);

/// What [`AppState`] holds.
pub struct Inner {
    /// The durable store.
    pub store: Store,
    /// Limits.
    pub settings: ApiSettings,
    /// Committed change events, for `/v1/events`.
    pub events: broadcast::Sender<Arc<ChangeEvent>>,
    /// Rate limiter keyed by API key id.
    pub key_limiter: DefaultKeyedRateLimiter<String>,
    /// Rate limiter keyed by client address.
    pub addr_limiter: DefaultKeyedRateLimiter<std::net::IpAddr>,
    /// Request counters for `/metrics`.
    pub metrics: Metrics,
    ready: AtomicBool,
    /// The provider registry (host, component files, secret cipher), once the server set it.
    providers: std::sync::OnceLock<Arc<crate::providers::ProviderRegistry>>,
    /// The workflow runtime's client and the built-in definitions, once the server set them.
    workflows: std::sync::OnceLock<crate::workflows::Workflows>,
    /// Stacks rendered lately, for the runtime's hook ([`crate::clusters::desired_noted`]).
    pub(crate) renders: crate::clusters::RecentRenders,
}

impl std::ops::Deref for AppState {
    type Target = Inner;
    fn deref(&self) -> &Inner {
        &self.0
    }
}

fn quota(per_second: u32, burst: u32) -> Quota {
    let rate = NonZeroU32::new(per_second.max(1)).unwrap_or(NonZeroU32::MIN);
    let burst = NonZeroU32::new(burst.max(1)).unwrap_or(NonZeroU32::MIN);
    Quota::per_second(rate).allow_burst(burst)
}

impl AppState {
    /// State over `store` with `settings`.
    pub fn new(store: Store, settings: ApiSettings) -> Self {
        let (events, _) = broadcast::channel(4096);
        Self(Arc::new(Inner {
            key_limiter: DefaultKeyedRateLimiter::keyed(quota(
                settings.rate_per_key,
                settings.burst,
            )),
            addr_limiter: DefaultKeyedRateLimiter::keyed(quota(
                settings.rate_per_address,
                settings.burst,
            )),
            store,
            settings,
            events,
            metrics: Metrics::default(),
            ready: AtomicBool::new(false),
            providers: std::sync::OnceLock::new(),
            workflows: std::sync::OnceLock::new(),
            renders: crate::clusters::RecentRenders::default(),
        }))
    }

    /// Attaches the provider registry; the provider and cloud-account routes answer 503
    /// `Unavailable` until then. A second call is ignored (returns `false`).
    pub fn set_providers(&self, registry: Arc<crate::providers::ProviderRegistry>) -> bool {
        self.0.providers.set(registry).is_ok()
    }

    /// The provider registry.
    ///
    /// # Errors
    /// `Unavailable` when the server runs without a provider host.
    pub fn providers(&self) -> ApiResult<&Arc<crate::providers::ProviderRegistry>> {
        self.0.providers.get().ok_or_else(|| {
            ApiError::new(
                fleetplane_domain::ErrorCode::Unavailable,
                "this server runs without a provider host",
            )
        })
    }

    /// Attaches the workflow engine (see [`crate::workflows::attach`]); the workflow and run
    /// routes answer 503 `Unavailable` until then. A second call is ignored (returns `false`).
    pub fn set_workflows(&self, workflows: crate::workflows::Workflows) -> bool {
        self.0.workflows.set(workflows).is_ok()
    }

    /// The workflow engine.
    ///
    /// # Errors
    /// `Unavailable` when the server runs without a workflow runtime.
    pub fn workflows(&self) -> ApiResult<&crate::workflows::Workflows> {
        self.0.workflows.get().ok_or_else(|| {
            ApiError::new(
                fleetplane_domain::ErrorCode::Unavailable,
                "this server runs without a workflow runtime",
            )
        })
    }

    /// Marks the server ready (or not) for `/readyz`.
    pub fn set_ready(&self, ready: bool) {
        self.0.ready.store(ready, Ordering::SeqCst);
    }

    /// Whether the server is ready.
    pub fn is_ready(&self) -> bool {
        self.0.ready.load(Ordering::SeqCst)
    }

    /// Runs `f` in one write transaction on a blocking thread, commits it durably, then
    /// publishes the change events it recorded. Nothing is written when `f` fails.
    ///
    /// # Errors
    /// Whatever `f` returns; `Internal` when the commit fails.
    pub async fn write<R, F>(&self, caller: &Caller, f: F) -> ApiResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&mut Tx<'_>) -> ApiResult<R> + Send + 'static,
    {
        let state = self.clone();
        let actor = caller.audit_name();
        let request_id = caller.request_id.clone();
        let (result, events) = tokio::task::spawn_blocking(move || {
            let ops = state.store.write()?;
            let mut tx = Tx {
                ops,
                actor,
                request_id,
                now: jiff::Timestamp::now(),
                events: Vec::new(),
                retention: state.settings.event_retention,
                workflows: state.0.workflows.get().cloned(),
            };
            let r = f(&mut tx)?;
            let events = tx.finish()?;
            Ok::<_, ApiError>((r, events))
        })
        .await
        .map_err(|e| ApiError::internal(format!("write task failed: {e}")))??;
        for e in events {
            // No subscriber is fine: events are also in the durable log.
            let _ = self.events.send(Arc::new(e));
        }
        Ok(result)
    }

    /// Runs `f` against a read snapshot on the calling thread, for reads bounded by a few
    /// objects (a key lookup, one object and what it shows): they take tens of microseconds,
    /// less than the two thread switches of [`AppState::read`], which under load are where a
    /// single-object request's time goes (each switch waits for a core; docs/performance.md,
    /// "Fifth round"). Anything proportional to a page, a render or a scan uses `read`.
    ///
    /// # Errors
    /// Whatever `f` returns.
    pub fn read_now<R>(
        &self,
        f: impl FnOnce(&dyn fleetplane_store::ReadOps) -> ApiResult<R>,
    ) -> ApiResult<R> {
        let r = self.store.read()?;
        f(&*r)
    }

    /// Runs `f` against a read snapshot on a blocking thread.
    ///
    /// # Errors
    /// Whatever `f` returns.
    pub async fn read<R, F>(&self, f: F) -> ApiResult<R>
    where
        R: Send + 'static,
        F: FnOnce(&dyn fleetplane_store::ReadOps) -> ApiResult<R> + Send + 'static,
    {
        let state = self.clone();
        tokio::task::spawn_blocking(move || {
            let r = state.store.read()?;
            f(&*r)
        })
        .await
        .map_err(|e| ApiError::internal(format!("read task failed: {e}")))?
    }
}

/// One write transaction with its audit trail and change events.
pub struct Tx<'a> {
    /// The store operations.
    pub ops: Box<dyn WriteOps + 'a>,
    /// Who is acting (for the audit log).
    pub actor: String,
    /// The request being served.
    pub request_id: String,
    /// The instant the transaction started; every timestamp it writes uses it.
    pub now: jiff::Timestamp,
    events: Vec<ChangeEvent>,
    retention: u64,
    /// The workflow engine, when the server runs one (runs started in this transaction).
    pub workflows: Option<crate::workflows::Workflows>,
}

impl Tx<'_> {
    /// Records an audit entry in this transaction.
    ///
    /// # Errors
    /// `Internal` when the log cannot be written.
    pub fn audit(
        &mut self,
        action: &str,
        resource: &str,
        project: Option<&str>,
        before: Option<serde_json::Value>,
        after: Option<serde_json::Value>,
    ) -> ApiResult<()> {
        let entry = AuditEntry {
            seq: 0,
            time: self.now,
            actor: self.actor.clone(),
            action: action.to_owned(),
            resource: resource.to_owned(),
            project: project.map(str::to_owned),
            before,
            after,
            request_id: self.request_id.clone(),
        };
        let body = serde_json::to_vec(&entry).map_err(|e| ApiError::internal(e.to_string()))?;
        self.ops.append(Log::Audit, &body)?;
        Ok(())
    }

    /// The workflow engine.
    ///
    /// # Errors
    /// `Unavailable` when the server runs without a workflow runtime.
    pub fn workflows(&self) -> ApiResult<crate::workflows::Workflows> {
        self.workflows.clone().ok_or_else(|| {
            ApiError::new(
                fleetplane_domain::ErrorCode::Unavailable,
                "this server runs without a workflow runtime",
            )
        })
    }

    /// Records a change event, published after commit.
    pub fn changed(&mut self, event: ChangeEvent) {
        self.events.push(event);
    }

    fn finish(mut self) -> ApiResult<Vec<ChangeEvent>> {
        for e in &mut self.events {
            let body = serde_json::to_vec(&*e).map_err(|e| ApiError::internal(e.to_string()))?;
            e.id = self.ops.append(Log::Events, &body)?;
        }
        if !self.events.is_empty() {
            self.ops.trim(Log::Events, self.retention)?;
        }
        self.ops.commit()?;
        if let Some(w) = &self.workflows {
            w.client().wake();
        }
        Ok(self.events)
    }
}
