//! The simulated cloud the built-in simulator provider drives (DESIGN §8.4).
//!
//! State lives in its own redb file (`<data-dir>/simcloud.redb`), so clusters survive a
//! restart of the control plane as they would in a real cloud. Progress is computed lazily
//! from timestamps ([`model::project`]); time comes from a [`Clock`] so tests control it.
//! Mutations are idempotent by key: the same key and request return the same operation, the
//! same key with a different request is a conflict.

pub mod model;

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use sha2::{Digest as _, Sha256};

pub use model::{FAULT_LABELS, Fault, Faults};
use model::{OpOutcome, OpRecord, Record, Snapshot, Target};

use crate::types::{
    ClusterPhase, ClusterRef, ClusterSpec, ObservedState, Operation, OperationKind, OperationState,
};

/// A source of the current time, in milliseconds since the Unix epoch.
pub trait Clock: Send + Sync {
    /// Now.
    fn now_ms(&self) -> u64;
}

/// The system clock.
#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> u64 {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_millis() as u64)
    }
}

/// A clock that moves only when told to (tests).
#[derive(Debug, Default)]
pub struct ManualClock(AtomicU64);

impl ManualClock {
    /// A clock reading `start_ms`.
    pub fn new(start_ms: u64) -> Self {
        ManualClock(AtomicU64::new(start_ms))
    }

    /// Moves the clock forward.
    pub fn advance(&self, by: std::time::Duration) {
        self.0.fetch_add(by.as_millis() as u64, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> u64 {
        self.0.load(Ordering::SeqCst)
    }
}

/// Errors of the simulated cloud.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// No such cluster or operation in the account.
    #[error("not found: {0}")]
    NotFound(String),
    /// The cluster is busy or the key was reused for another request.
    #[error("conflict: {0}")]
    Conflict(String),
    /// The request is malformed.
    #[error("invalid request: {0}")]
    Invalid(String),
    /// The simulated cloud's storage failed.
    #[error("simulated cloud storage: {0}")]
    Storage(String),
}

impl From<redb::Error> for SimError {
    fn from(e: redb::Error) -> Self {
        SimError::Storage(e.to_string())
    }
}

macro_rules! storage_from {
    ($($t:ty),*) => {$(
        impl From<$t> for SimError {
            fn from(e: $t) -> Self {
                SimError::Storage(e.to_string())
            }
        }
    )*};
}
storage_from!(
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);

impl From<SimError> for crate::bindings::fleetplane::simulator::cloud::CloudError {
    fn from(e: SimError) -> Self {
        use crate::bindings::fleetplane::simulator::cloud::CloudError as C;
        match e {
            SimError::NotFound(m) => C::NotFound(m),
            SimError::Conflict(m) => C::Conflict(m),
            SimError::Invalid(m) => C::Invalid(m),
            SimError::Storage(m) => C::Unavailable(m),
        }
    }
}

// Every table of the simulated cloud, in one place. Keys are `<account>\0<id>`.
/// Cluster records (versioned JSON).
const CLUSTERS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("clusters");
/// Idempotency keys → `{cluster id, operation id, fingerprint}` JSON.
const KEYS: TableDefinition<'_, &str, &[u8]> = TableDefinition::new("idempotency_keys");
/// Operation id → cluster id.
const OPERATIONS: TableDefinition<'_, &str, &str> = TableDefinition::new("operations");

#[derive(serde::Serialize, serde::Deserialize)]
struct KeyEntry {
    cluster: String,
    operation: String,
    fingerprint: String,
}

fn key(account: &str, id: &str) -> String {
    format!("{account}\0{id}")
}

/// The simulated cloud.
pub struct SimCloud {
    db: Arc<Database>,
    clock: Arc<dyn Clock>,
    /// Set when a commit was made without fsync; the flusher makes it durable.
    dirty: Arc<AtomicBool>,
    stop: Arc<AtomicBool>,
    flusher: Option<std::thread::JoinHandle<()>>,
}

/// How often non-durable commits are made durable (group commit): a crash loses at most this
/// much, and a retried call with the same idempotency key then yields the same operation id.
const FLUSH_EVERY: std::time::Duration = std::time::Duration::from_millis(50);
/// The simulated cloud's page cache.
const SIM_CACHE_BYTES: usize = 32 * 1024 * 1024;

impl Drop for SimCloud {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(handle) = self.flusher.take() {
            let _ = handle.join();
        }
        if let Err(e) = flush(&self.db, &self.dirty) {
            tracing::warn!("simulated cloud final flush failed: {e}");
        }
    }
}

fn flush(db: &Database, dirty: &AtomicBool) -> Result<(), SimError> {
    if dirty.swap(false, Ordering::SeqCst) {
        let tx = db.begin_write()?;
        tx.commit()?;
    }
    Ok(())
}

impl std::fmt::Debug for SimCloud {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SimCloud").finish_non_exhaustive()
    }
}

enum Mutation<'a> {
    Create(&'a ClusterSpec),
    Update(&'a ClusterSpec, bool),
    Delete(&'a ClusterRef),
}

impl SimCloud {
    /// Opens (or creates) the simulated cloud's redb file.
    ///
    /// # Errors
    /// [`SimError::Storage`] when the file cannot be opened.
    pub fn open(path: &Path, clock: Arc<dyn Clock>) -> Result<Self, SimError> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|e| SimError::Storage(e.to_string()))?;
        }
        // A small page cache: the simulated cloud's records are read back rarely (polls and
        // describes of recent operations); redb's 1 GiB default would count in the server's
        // resident memory at fleet scale.
        Self::init(
            Database::builder()
                .set_cache_size(SIM_CACHE_BYTES)
                .create(path)?,
            clock,
        )
    }

    /// A simulated cloud kept in memory only (tests and benchmarks).
    ///
    /// # Errors
    /// [`SimError::Storage`] if redb cannot set up its in-memory backend.
    pub fn in_memory(clock: Arc<dyn Clock>) -> Result<Self, SimError> {
        let db = Database::builder().create_with_backend(redb::backends::InMemoryBackend::new())?;
        Self::init(db, clock)
    }

    fn init(db: Database, clock: Arc<dyn Clock>) -> Result<Self, SimError> {
        let tx = db.begin_write()?;
        tx.open_table(CLUSTERS)?;
        tx.open_table(KEYS)?;
        tx.open_table(OPERATIONS)?;
        tx.commit()?;
        let db = Arc::new(db);
        let dirty = Arc::new(AtomicBool::new(false));
        let stop = Arc::new(AtomicBool::new(false));
        let (weak, flag, halt) = (Arc::downgrade(&db), dirty.clone(), stop.clone());
        let flusher = std::thread::Builder::new()
            .name("simcloud-flush".into())
            .spawn(move || {
                while !halt.load(Ordering::SeqCst) {
                    std::thread::sleep(FLUSH_EVERY);
                    let Some(db) = weak.upgrade() else { break };
                    if let Err(e) = flush(&db, &flag) {
                        tracing::warn!("simulated cloud flush failed: {e}");
                    }
                }
            })
            .map_err(|e| SimError::Storage(e.to_string()))?;
        Ok(SimCloud {
            db,
            clock,
            dirty,
            stop,
            flusher: Some(flusher),
        })
    }

    /// A write transaction committed without fsync; the flusher makes it durable.
    fn begin_write(&self) -> Result<redb::WriteTransaction, SimError> {
        let mut tx = self.db.begin_write()?;
        tx.set_durability(redb::Durability::None)
            .map_err(|e| SimError::Storage(e.to_string()))?;
        self.dirty.store(true, Ordering::SeqCst);
        Ok(tx)
    }

    /// The number of clusters ever created and not purged (deleted ones included).
    ///
    /// # Errors
    /// [`SimError::Storage`].
    pub fn cluster_count(&self) -> Result<u64, SimError> {
        let tx = self.db.begin_read()?;
        Ok(tx.open_table(CLUSTERS)?.len()?)
    }

    fn load(&self, account: &str, cluster_id: &str) -> Result<Option<Record>, SimError> {
        let tx = self.db.begin_read()?;
        let table = tx.open_table(CLUSTERS)?;
        let value = table.get(key(account, cluster_id).as_str())?;
        value.map(|v| decode(v.value())).transpose()
    }

    /// Starts building a cluster.
    ///
    /// # Errors
    /// [`SimError::Invalid`] for a bad spec or time scale, [`SimError::Conflict`] when the
    /// cluster exists (and is not deleted) or the key was used for another request.
    pub fn create(
        &self,
        account: &str,
        time_scale: f64,
        idempotency_key: &str,
        spec: ClusterSpec,
    ) -> Result<Operation, SimError> {
        self.mutate(
            account,
            time_scale,
            idempotency_key,
            Mutation::Create(&spec),
        )
    }

    /// Starts converging a cluster to `spec`.
    ///
    /// # Errors
    /// As [`SimCloud::create`], plus [`SimError::NotFound`] for an unknown cluster and
    /// [`SimError::Conflict`] while another operation runs.
    pub fn update(
        &self,
        account: &str,
        time_scale: f64,
        idempotency_key: &str,
        spec: ClusterSpec,
        replace_machines: bool,
    ) -> Result<Operation, SimError> {
        self.mutate(
            account,
            time_scale,
            idempotency_key,
            Mutation::Update(&spec, replace_machines),
        )
    }

    /// Starts deleting a cluster (an unknown or deleted one yields a finished operation).
    ///
    /// # Errors
    /// [`SimError::Conflict`] when the key was used for another request.
    pub fn delete(
        &self,
        account: &str,
        time_scale: f64,
        idempotency_key: &str,
        cluster: &ClusterRef,
    ) -> Result<Operation, SimError> {
        self.mutate(
            account,
            time_scale,
            idempotency_key,
            Mutation::Delete(cluster),
        )
    }

    fn mutate(
        &self,
        account: &str,
        time_scale: f64,
        idem: &str,
        m: Mutation<'_>,
    ) -> Result<Operation, SimError> {
        if !(time_scale.is_finite() && (0.0..=1000.0).contains(&time_scale)) {
            return Err(SimError::Invalid(format!(
                "timeScale {time_scale} is not in 0..=1000"
            )));
        }
        if idem.is_empty() {
            return Err(SimError::Invalid("the idempotency key is empty".into()));
        }
        let (kind, cluster, fingerprint) = match &m {
            Mutation::Create(spec) => {
                validate_spec(spec)?;
                (
                    OperationKind::Create,
                    spec.cluster.clone(),
                    fingerprint("create", spec),
                )
            }
            Mutation::Update(spec, r) => {
                validate_spec(spec)?;
                (
                    OperationKind::Update,
                    spec.cluster.clone(),
                    fingerprint("update", &(spec, r)),
                )
            }
            Mutation::Delete(c) => (
                OperationKind::Delete,
                (*c).clone(),
                fingerprint("delete", c),
            ),
        };
        let now = self.clock.now_ms();
        let tx = self.begin_write()?;
        let op = {
            let mut keys = tx.open_table(KEYS)?;
            let mut clusters = tx.open_table(CLUSTERS)?;
            let mut ops = tx.open_table(OPERATIONS)?;
            let idem_key = key(account, idem);
            let seen: Option<KeyEntry> = keys
                .get(idem_key.as_str())?
                .map(|v| serde_json::from_slice(v.value()))
                .transpose()
                .map_err(|e| SimError::Storage(e.to_string()))?;
            if let Some(entry) = seen {
                if entry.fingerprint != fingerprint || entry.cluster != cluster.id {
                    return Err(SimError::Conflict(format!(
                        "idempotency key `{idem}` was used for a different request"
                    )));
                }
                drop((keys, clusters, ops));
                tx.abort()?;
                return self.operation(account, &entry.operation);
            }
            let ckey = key(account, &cluster.id);
            let existing: Option<Record> = clusters
                .get(ckey.as_str())?
                .map(|v| decode(v.value()))
                .transpose()?;
            let op_id = operation_id(account, idem);
            let record = match (kind, existing) {
                // A cluster whose provisioning failed may be created again (a re-driven
                // deploy): the provider contract's "create retries a failed create".
                (OperationKind::Create, Some(rec))
                    if !matches!(
                        model::project(&rec, now).snapshot.phase,
                        ClusterPhase::Deleted | ClusterPhase::Failed
                    ) =>
                {
                    return Err(SimError::Conflict(format!(
                        "cluster {} already exists",
                        cluster.id
                    )));
                }
                (OperationKind::Create, previous) => {
                    let Mutation::Create(spec) = m else {
                        return Err(SimError::Storage("internal: mutation kind mismatch".into()));
                    };
                    let mut faults = previous.as_ref().map(|r| r.faults).unwrap_or_default();
                    // Labels a failed earlier attempt carried have fired already.
                    let seen: Vec<(String, String)> = previous
                        .as_ref()
                        .filter(|r| model::project(r, now).snapshot.phase == ClusterPhase::Failed)
                        .map(|r| r.labels.clone())
                        .unwrap_or_default();
                    faults.arm_from_labels(&spec.labels, &seen);
                    let target = Target::of(spec);
                    let steps =
                        model::plan(kind, &Snapshot::empty(), Some(&target), false, time_scale);
                    let fail_at = faults.fail_provisioning.then_some(2);
                    faults.fail_provisioning = false;
                    Record {
                        v: model::RECORD_VERSION,
                        account: account.to_string(),
                        cluster: cluster.clone(),
                        labels: spec.labels.clone(),
                        base: Snapshot::empty(),
                        events: previous.map(|r| r.events).unwrap_or_default(),
                        current: Some(OpRecord {
                            id: op_id.clone(),
                            kind,
                            key: idem.to_string(),
                            fingerprint: fingerprint.clone(),
                            started_ms: now,
                            steps,
                            target: Some(target),
                            fail_at,
                            unhealthy_after: false,
                        }),
                        history: Vec::new(),
                        faults,
                    }
                }
                (OperationKind::Update, None) => {
                    return Err(SimError::NotFound(format!("cluster {}", cluster.id)));
                }
                (OperationKind::Delete, None) => {
                    // Deleting what does not exist succeeds at once.
                    let mut rec = Record {
                        v: model::RECORD_VERSION,
                        account: account.to_string(),
                        cluster: cluster.clone(),
                        labels: Vec::new(),
                        base: Snapshot {
                            phase: ClusterPhase::Deleted,
                            ..Snapshot::empty()
                        },
                        events: Vec::new(),
                        current: None,
                        history: Vec::new(),
                        faults: Faults::default(),
                    };
                    rec.current = Some(OpRecord {
                        id: op_id.clone(),
                        kind,
                        key: idem.to_string(),
                        fingerprint: fingerprint.clone(),
                        started_ms: now,
                        steps: Vec::new(),
                        target: None,
                        fail_at: None,
                        unhealthy_after: false,
                    });
                    rec
                }
                (_, Some(mut rec)) => {
                    let view = model::project(&rec, now);
                    let running = view
                        .op
                        .as_ref()
                        .is_some_and(|o| o.state == OperationState::Running);
                    if kind == OperationKind::Update {
                        if running {
                            return Err(SimError::Conflict(format!(
                                "cluster {} is busy with operation {}",
                                cluster.id,
                                rec.current.as_ref().map_or("", |o| o.id.as_str())
                            )));
                        }
                        if view.snapshot.phase == ClusterPhase::Deleted {
                            return Err(SimError::NotFound(format!(
                                "cluster {} was deleted",
                                cluster.id
                            )));
                        }
                    }
                    // Settle the finished (or, for delete, interrupted) operation.
                    if let (Some(old), Some(ov)) = (rec.current.take(), view.op.as_ref()) {
                        rec.history.push(OpOutcome {
                            id: old.id,
                            kind: old.kind,
                            state: if ov.state == OperationState::Running {
                                OperationState::Failed
                            } else {
                                ov.state
                            },
                            message: if ov.state == OperationState::Running {
                                "interrupted by a delete".into()
                            } else {
                                ov.message.clone()
                            },
                            error: ov.error.clone(),
                        });
                        if rec.history.len() > model::MAX_HISTORY {
                            rec.history.remove(0);
                        }
                    }
                    rec.base = view.snapshot;
                    rec.events = view.events;
                    let (target, replace) = match m {
                        Mutation::Update(spec, r) => {
                            let previous = std::mem::replace(&mut rec.labels, spec.labels.clone());
                            rec.faults.arm_from_labels(&spec.labels, &previous);
                            (Some(Target::of(spec)), r)
                        }
                        _ => (None, false),
                    };
                    let steps = model::plan(kind, &rec.base, target.as_ref(), replace, time_scale);
                    let (fail_at, unhealthy_after) = if kind == OperationKind::Update {
                        let f = rec.faults.fail_next_update.then_some(0);
                        let u = rec.faults.unhealthy_after_update;
                        rec.faults.fail_next_update = false;
                        if f.is_none() {
                            rec.faults.unhealthy_after_update = false;
                        }
                        (f, u && f.is_none())
                    } else {
                        (None, false)
                    };
                    rec.current = Some(OpRecord {
                        id: op_id.clone(),
                        kind,
                        key: idem.to_string(),
                        fingerprint: fingerprint.clone(),
                        started_ms: now,
                        steps,
                        target,
                        fail_at,
                        unhealthy_after,
                    });
                    rec
                }
            };
            let bytes =
                serde_json::to_vec(&record).map_err(|e| SimError::Storage(e.to_string()))?;
            clusters.insert(ckey.as_str(), bytes.as_slice())?;
            ops.insert(key(account, &op_id).as_str(), cluster.id.as_str())?;
            let entry = KeyEntry {
                cluster: cluster.id.clone(),
                operation: op_id,
                fingerprint,
            };
            let entry = serde_json::to_vec(&entry).map_err(|e| SimError::Storage(e.to_string()))?;
            keys.insert(idem_key.as_str(), entry.as_slice())?;
            current_operation(&record, now)
        };
        tx.commit()?;
        op
    }

    /// A cluster's state now.
    ///
    /// # Errors
    /// [`SimError::NotFound`] for a cluster the account never created.
    pub fn describe(&self, account: &str, cluster: &ClusterRef) -> Result<ObservedState, SimError> {
        let rec = self
            .load(account, &cluster.id)?
            .ok_or_else(|| SimError::NotFound(format!("cluster {}", cluster.id)))?;
        let view = model::project(&rec, self.clock.now_ms());
        Ok(model::observed(&rec, &view))
    }

    /// An operation's state now.
    ///
    /// # Errors
    /// [`SimError::NotFound`] for an unknown operation id.
    pub fn operation(&self, account: &str, operation_id: &str) -> Result<Operation, SimError> {
        let cluster_id = {
            let tx = self.db.begin_read()?;
            let ops = tx.open_table(OPERATIONS)?;
            let found = ops.get(key(account, operation_id).as_str())?;
            found
                .map(|v| v.value().to_string())
                .ok_or_else(|| SimError::NotFound(format!("operation {operation_id}")))?
        };
        let rec = self
            .load(account, &cluster_id)?
            .ok_or_else(|| SimError::NotFound(format!("operation {operation_id}")))?;
        let now = self.clock.now_ms();
        if rec.current.as_ref().is_some_and(|o| o.id == operation_id) {
            return current_operation(&rec, now);
        }
        rec.history
            .iter()
            .find(|o| o.id == operation_id)
            .map(|o| Operation {
                id: o.id.clone(),
                kind: o.kind,
                cluster: rec.cluster.clone(),
                state: o.state,
                progress: 100,
                message: o.message.clone(),
                error: o.error.clone(),
                poll_after_ms: 0,
            })
            .ok_or_else(|| SimError::NotFound(format!("operation {operation_id} is too old")))
    }

    /// Arms a fault on a cluster (deterministic: it fires on the next matching operation).
    ///
    /// # Errors
    /// [`SimError::NotFound`] for an unknown cluster.
    pub fn inject_fault(
        &self,
        account: &str,
        cluster_id: &str,
        fault: Fault,
    ) -> Result<(), SimError> {
        let tx = self.begin_write()?;
        {
            let mut clusters = tx.open_table(CLUSTERS)?;
            let ckey = key(account, cluster_id);
            let mut rec: Record = match clusters.get(ckey.as_str())? {
                Some(v) => decode(v.value())?,
                None => return Err(SimError::NotFound(format!("cluster {cluster_id}"))),
            };
            rec.faults.arm(fault);
            let bytes = serde_json::to_vec(&rec).map_err(|e| SimError::Storage(e.to_string()))?;
            clusters.insert(ckey.as_str(), bytes.as_slice())?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The faults currently armed on a cluster.
    ///
    /// # Errors
    /// [`SimError::NotFound`] for an unknown cluster.
    pub fn faults(&self, account: &str, cluster_id: &str) -> Result<Faults, SimError> {
        self.load(account, cluster_id)?
            .map(|r| r.faults)
            .ok_or_else(|| SimError::NotFound(format!("cluster {cluster_id}")))
    }
}

fn current_operation(rec: &Record, now: u64) -> Result<Operation, SimError> {
    let op = rec
        .current
        .as_ref()
        .ok_or_else(|| SimError::NotFound(format!("no operation on cluster {}", rec.cluster.id)))?;
    let view = model::project(rec, now);
    let ov = view
        .op
        .ok_or_else(|| SimError::Storage("operation without a view".into()))?;
    Ok(model::operation(rec, op, &ov))
}

fn decode(bytes: &[u8]) -> Result<Record, SimError> {
    let rec: Record = serde_json::from_slice(bytes)
        .map_err(|e| SimError::Storage(format!("corrupt record: {e}")))?;
    if rec.v != model::RECORD_VERSION {
        return Err(SimError::Storage(format!(
            "unsupported record version {}",
            rec.v
        )));
    }
    Ok(rec)
}

fn fingerprint<T: serde::Serialize>(kind: &str, value: &T) -> String {
    let json = serde_json::to_vec(value).unwrap_or_default();
    let mut h = Sha256::new();
    h.update(kind.as_bytes());
    h.update([0]);
    h.update(&json);
    hex::encode(&h.finalize()[..16])
}

fn operation_id(account: &str, idem: &str) -> String {
    let mut h = Sha256::new();
    h.update(account.as_bytes());
    h.update([0]);
    h.update(idem.as_bytes());
    format!("simop-{}", hex::encode(&h.finalize()[..12]))
}

fn validate_spec(spec: &ClusterSpec) -> Result<(), SimError> {
    let cps = spec.node_pools.iter().filter(|p| p.control_plane).count();
    if cps != 1 {
        return Err(SimError::Invalid(format!(
            "exactly one control-plane pool is required, got {cps}"
        )));
    }
    if spec.cluster.id.is_empty() || spec.cluster.name.is_empty() {
        return Err(SimError::Invalid("cluster id and name are required".into()));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
