//! Fleetplane's durable store. Callers speak in objects (kind, scope, name), resource versions,
//! references between objects, audit entries and change events; [`Storage`] hides the backend,
//! and [`RedbStorage`] is the embedded one (one redb file in the data directory).
//!
//! Every request or workflow step runs in one transaction; a committed write is durable
//! (`Durability::Immediate`) before it is acknowledged.

mod envelope;
mod key;
mod readset;
mod redb_backend;
mod runs;
pub mod tables;

pub use envelope::{ENVELOPE_FORMAT, Envelope};
pub use key::{Kind, ObjectKey, Scope, TENANT_DEFAULT};
pub use readset::{ReadSet, Recording};
pub use redb_backend::RedbStorage;
pub use runs::{
    InboxEntry, OutboxEntry, RUN_RECORD_FORMAT, RunHeader, RunIndex, RunRecord, TimerEntry,
};

use serde::{Serialize, de::DeserializeOwned};
use std::sync::Arc;

/// What can go wrong in the store. Callers map these to API errors.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The object does not exist.
    #[error("{0} not found")]
    NotFound(ObjectKey),
    /// The object already exists.
    #[error("{0} already exists")]
    AlreadyExists(ObjectKey),
    /// The object's resource version is not the expected one (lost compare-and-swap).
    #[error("{key} changed: expected resource version {expected}, found {found}")]
    VersionMismatch {
        /// The object.
        key: ObjectKey,
        /// The version the caller expected.
        expected: u64,
        /// The version stored.
        found: u64,
    },
    /// A stored record cannot be decoded (written by a newer format, or damaged).
    #[error("record {key} cannot be decoded: {reason}")]
    Corrupt {
        /// Where.
        key: String,
        /// Why.
        reason: String,
    },
    /// The storage cannot be used now: an I/O error (a full disk, a lost device). Transient
    /// from the caller's view: nothing of the transaction was committed; see
    /// [`Storage::poisoned`] for whether the backend recovers without a restart.
    #[error("storage unavailable: {0}")]
    Unavailable(String),
    /// The backend failed (I/O, database).
    #[error("storage backend: {0}")]
    Backend(String),
}

/// Result of store operations.
pub type Result<T, E = StoreError> = std::result::Result<T, E>;

/// A stored object: its key, its resource version and its JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Where it is.
    pub key: ObjectKey,
    /// Its version; changes on every write (a store-wide, increasing revision).
    pub resource_version: u64,
    /// The body as JSON bytes.
    pub body: Vec<u8>,
}

impl Record {
    /// Decodes the body.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the body does not decode as `T`.
    pub fn decode<T: DeserializeOwned>(&self) -> Result<T> {
        serde_json::from_slice(&self.body).map_err(|e| StoreError::Corrupt {
            key: self.key.to_string(),
            reason: e.to_string(),
        })
    }
}

/// A condition a write must meet, checked inside the transaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Precondition {
    /// Write whatever is there.
    Any,
    /// Create only.
    MustNotExist,
    /// Replace only.
    MustExist,
    /// Replace only if the stored resource version is this one.
    Version(u64),
}

/// A reference from one object to another, indexed so "who uses X?" needs no scan.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Reference {
    /// What kind of reference (`uses-profile-version`, `member-of-template`).
    pub relation: &'static str,
    /// The referenced thing, as a stable string (usually an [`ObjectKey`]'s string form).
    pub target: String,
}

/// A page of a listing.
#[derive(Debug, Clone, Default)]
pub struct Page {
    /// The records, in key order.
    pub items: Vec<Record>,
    /// Pass as `after` to get the next page; `None` when this was the last.
    pub next: Option<String>,
}

/// A range of objects of one kind in one scope, in name order.
#[derive(Debug, Clone)]
pub struct ListQuery {
    /// Kind and scope to list (the key's name is ignored).
    pub scope: Scope,
    /// The kind.
    pub kind: Kind,
    /// Only names starting with this.
    pub name_prefix: String,
    /// Start after this name (exclusive), from a previous page's `next`.
    pub after: Option<String>,
    /// At most this many.
    pub limit: usize,
}

/// An entry appended to a log (audit or change events): its sequence number and JSON body.
#[derive(Debug, Clone, PartialEq)]
pub struct LogEntry {
    /// Position in the log, increasing from 1.
    pub seq: u64,
    /// The entry as JSON bytes.
    pub body: Vec<u8>,
}

/// Which append-only log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Log {
    /// Who did what, when, before and after. Never pruned by the store.
    Audit,
    /// Change events for live views (`/v1/events`); pruned to a bounded tail.
    Events,
}

/// Reads inside one consistent snapshot.
pub trait ReadOps {
    /// The object at `key`, if any.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn get(&self, key: &ObjectKey) -> Result<Option<Record>>;

    /// A page of objects of one kind in one scope.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn list(&self, query: &ListQuery) -> Result<Page>;

    /// Keys of the objects holding `reference`, at most `limit` of them.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn referrers(&self, reference: &Reference, limit: usize) -> Result<Vec<ObjectKey>>;

    /// Log entries with `seq > after`, at most `limit`, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn log_after(&self, log: Log, after: u64, limit: usize) -> Result<Vec<LogEntry>>;

    /// Log entries with `seq < before` (or the newest when `None`), newest first.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn log_before(&self, log: Log, before: Option<u64>, limit: usize) -> Result<Vec<LogEntry>>;

    /// The newest sequence number of a log (0 when empty).
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn log_head(&self, log: Log) -> Result<u64>;

    /// A small named value kept by the store itself (bootstrap markers, counters).
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>>;

    /// The stored run `id`, if any.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for an undecodable record; [`StoreError::Backend`] on I/O failures.
    fn run(&self, id: &str) -> Result<Option<RunRecord>>;

    /// Ids of the runs in `index`, in id order, after `after` (exclusive), at most `limit`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn runs_by(&self, index: &RunIndex, after: Option<&str>, limit: usize) -> Result<Vec<String>>;

    /// The journal entries of `run` with `seq > after`, at most `limit`, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn journal(&self, run: &str, after: u64, limit: usize) -> Result<Vec<LogEntry>>;

    /// Items `0..count` of `run`'s fan-out, stored apart from its state, in index order.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when one of them is missing; [`StoreError::Backend`] on I/O
    /// failures.
    fn run_items(&self, run: &str, count: u32) -> Result<Vec<Vec<u8>>>;

    /// The last journal sequence number of `run` (0 when it has none).
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn journal_head(&self, run: &str) -> Result<u64>;

    /// Outbox entries with `seq > after`, at most `limit`, oldest first.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] for undecodable entries; [`StoreError::Backend`] on I/O failures.
    fn outbox(&self, after: u64, limit: usize) -> Result<Vec<OutboxEntry>>;

    /// Timers firing at or before `at_ms` (Unix ms), earliest first, at most `limit`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn timers_due(&self, at_ms: u64, limit: usize) -> Result<Vec<TimerEntry>>;

    /// The earliest armed timer, if any.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn next_timer(&self) -> Result<Option<TimerEntry>>;

    /// Inbox events of every run, grouped by run and in each run's order, at most `limit`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn inbox(&self, limit: usize) -> Result<Vec<InboxEntry>>;

    /// The run holding the lock on `cluster`, if any.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn cluster_lock(&self, cluster: &str) -> Result<Option<String>>;
}

/// Writes inside one transaction; nothing is visible or durable until [`WriteOps::commit`].
pub trait WriteOps: ReadOps {
    /// Writes the object body if `pre` holds, replacing its references with `refs`, and returns
    /// the new resource version.
    ///
    /// # Errors
    /// [`StoreError::AlreadyExists`], [`StoreError::NotFound`] or
    /// [`StoreError::VersionMismatch`] when `pre` fails; [`StoreError::Backend`] on I/O failures.
    fn put(
        &mut self,
        key: &ObjectKey,
        body: &[u8],
        pre: Precondition,
        refs: &[Reference],
    ) -> Result<u64>;

    /// Deletes the object (and its references) if `pre` holds; returns the deleted record.
    ///
    /// # Errors
    /// [`StoreError::NotFound`] or [`StoreError::VersionMismatch`] when `pre` fails.
    fn delete(&mut self, key: &ObjectKey, pre: Precondition) -> Result<Record>;

    /// Appends to a log; returns the entry's sequence number.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn append(&mut self, log: Log, body: &[u8]) -> Result<u64>;

    /// Drops the oldest entries of a log so that at most `keep` remain.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn trim(&mut self, log: Log, keep: u64) -> Result<()>;

    /// Sets a store-level named value.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn set_meta(&mut self, name: &str, value: &[u8]) -> Result<()>;

    /// Writes run `header.id` (creating or replacing it) and keeps the run index in step.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when the stored record cannot be decoded; backend errors.
    fn put_run(&mut self, header: &RunHeader, state: &[u8]) -> Result<()>;

    /// Appends journal entries `(seq, body)` to `run`; the first `seq` must follow the run's
    /// last one and the rest must be consecutive (a journal has no gaps).
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] naming the gap when the sequence numbers do not follow on.
    fn append_journal(&mut self, run: &str, entries: &[(u64, &[u8])]) -> Result<()>;

    /// Writes (creates or replaces) fan-out items `(index, body)` of `run`.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn put_run_items(&mut self, run: &str, items: &[(u32, &[u8])]) -> Result<()>;

    /// Adds an effect of `run` to the outbox; returns its sequence number.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn push_outbox(&mut self, run: &str, effect: &[u8]) -> Result<u64>;

    /// Removes an outbox entry (answered or performed); absent entries are ignored.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn remove_outbox(&mut self, seq: u64) -> Result<()>;

    /// Arms timer `id` of `run` at `at_ms` (re-arming an existing id moves it).
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn set_timer(&mut self, id: &str, run: &str, at_ms: u64) -> Result<()>;

    /// Disarms timer `id`; returns whether it was armed.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn remove_timer(&mut self, id: &str) -> Result<bool>;

    /// Appends an event to `run`'s inbox; returns its sequence number.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn push_inbox(&mut self, run: &str, event: &[u8]) -> Result<u64>;

    /// Removes `run`'s inbox event `seq` (applied).
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn remove_inbox(&mut self, run: &str, seq: u64) -> Result<()>;

    /// Takes the lock on `cluster` for `run`. Returns `None` when `run` now holds it (it was
    /// free or already its own), or `Some(holder)` when another run holds it (409 ClusterBusy).
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn lock_cluster(&mut self, cluster: &str, run: &str) -> Result<Option<String>>;

    /// Releases the lock on `cluster` if `run` holds it; returns whether it did.
    ///
    /// # Errors
    /// [`StoreError::Backend`] on I/O failures.
    fn unlock_cluster(&mut self, cluster: &str, run: &str) -> Result<bool>;

    /// Makes every write of this transaction durable and visible, atomically.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the commit fails; nothing was written then.
    fn commit(self: Box<Self>) -> Result<()>;
}

/// A storage backend. The embedded one is [`RedbStorage`]; a distributed one can be added
/// without touching callers.
pub trait Storage: Send + Sync + 'static {
    /// Starts a read-only snapshot.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot start one.
    fn read(&self) -> Result<Box<dyn ReadOps + '_>>;

    /// Starts the (single) write transaction, waiting for the current one to finish.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the backend cannot start one.
    fn write(&self) -> Result<Box<dyn WriteOps + '_>>;

    /// Why the backend refuses every write until it is opened again (the process restarted),
    /// if it does: an I/O error left the database handle unusable (redb after a failed write
    /// or fsync). `None` while writes can succeed. Liveness reports it so a supervisor
    /// restarts the server once the cause (say, a full disk) is fixed.
    fn poisoned(&self) -> Option<String> {
        None
    }
}

/// A shared handle to a backend.
pub type Store = Arc<dyn Storage>;

/// Typed conveniences over [`ReadOps`].
pub trait ReadExt: ReadOps {
    /// The object at `key` decoded as `T`, with its resource version.
    ///
    /// # Errors
    /// [`StoreError::Corrupt`] when it does not decode; backend errors.
    fn get_as<T: DeserializeOwned>(&self, key: &ObjectKey) -> Result<Option<(T, u64)>> {
        self.get(key)?
            .map(|r| Ok((r.decode()?, r.resource_version)))
            .transpose()
    }

    /// Whether anything holds `reference`.
    ///
    /// # Errors
    /// Backend errors.
    fn is_referenced(&self, reference: &Reference) -> Result<bool> {
        Ok(!self.referrers(reference, 1)?.is_empty())
    }
}

impl<T: ReadOps + ?Sized> ReadExt for T {}

/// Typed conveniences over [`WriteOps`].
pub trait WriteExt: WriteOps {
    /// Encodes `value` as JSON and writes it; see [`WriteOps::put`].
    ///
    /// # Errors
    /// As [`WriteOps::put`].
    fn put_as<T: Serialize>(
        &mut self,
        key: &ObjectKey,
        value: &T,
        pre: Precondition,
        refs: &[Reference],
    ) -> Result<u64> {
        let body = serde_json::to_vec(value).map_err(|e| StoreError::Backend(e.to_string()))?;
        self.put(key, &body, pre, refs)
    }
}

impl<T: WriteOps + ?Sized> WriteExt for T {}
