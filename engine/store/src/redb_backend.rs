//! The embedded backend: one redb file.

use crate::key::SEP;
use crate::tables::{
    self, AUDIT, CLUSTER_LOCKS, EVENTS, INBOX, JOURNAL, META, OBJECT_REFS, OBJECTS, OUTBOX, REFS,
    RUN_INDEX, RUN_ITEMS, RUNS, TIMER_IDS, TIMERS, meta_keys,
};
use crate::{
    Envelope, InboxEntry, ListQuery, Log, LogEntry, ObjectKey, OutboxEntry, Page, Precondition,
    ReadOps, Record, Reference, Result, RunHeader, RunIndex, RunRecord, Storage, StoreError,
    TimerEntry, WriteOps,
};
use redb::{Database, ReadableDatabase, ReadableTable, ReadableTableMetadata, TableDefinition};
use std::path::Path;

/// The redb-backed [`Storage`].
pub struct RedbStorage {
    db: Database,
    /// The I/O error after which redb refuses every write until reopened ([`Storage::poisoned`]).
    poisoned: std::sync::Mutex<Option<String>>,
}

/// A redb error as a store error: I/O errors (and redb's refusal after one) make the storage
/// [`StoreError::Unavailable`], anything else is a backend failure.
fn backend(e: impl Into<redb::Error>) -> StoreError {
    match e.into() {
        e @ (redb::Error::Io(_) | redb::Error::PreviousIo) => {
            StoreError::Unavailable(e.to_string())
        }
        e => StoreError::Backend(e.to_string()),
    }
}

/// The page cache [`RedbStorage::open`] gives redb. redb's own default is 1 GiB per database,
/// which a 100,000-cluster store fills: resident memory then counts the cache, not the work.
pub const DEFAULT_CACHE_BYTES: usize = 256 * 1024 * 1024;

impl RedbStorage {
    /// Opens (or creates) the database file at `path` with a [`DEFAULT_CACHE_BYTES`] page
    /// cache and makes sure every table exists.
    ///
    /// # Errors
    /// [`StoreError::Backend`] when the file cannot be opened or was written by a newer format.
    pub fn open(path: &Path) -> Result<Self> {
        Self::open_with_cache(path, DEFAULT_CACHE_BYTES)
    }

    /// Like [`RedbStorage::open`] with a page cache of `cache_bytes`.
    ///
    /// # Errors
    /// As [`RedbStorage::open`].
    pub fn open_with_cache(path: &Path, cache_bytes: usize) -> Result<Self> {
        let db = Database::builder()
            .set_cache_size(cache_bytes)
            .create(path)
            .map_err(backend)?;
        Self::prepare(db)
    }

    /// Opens (or creates) a database over a redb storage backend of the caller's (tests wrap
    /// the real file backend to inject I/O failures), with a [`DEFAULT_CACHE_BYTES`] cache.
    ///
    /// # Errors
    /// As [`RedbStorage::open`].
    pub fn with_backend(backend_impl: impl redb::StorageBackend) -> Result<Self> {
        let db = Database::builder()
            .set_cache_size(DEFAULT_CACHE_BYTES)
            .create_with_backend(backend_impl)
            .map_err(backend)?;
        Self::prepare(db)
    }

    /// Makes sure every table exists and the format is one this build reads.
    fn prepare(db: Database) -> Result<Self> {
        let txn = db.begin_write().map_err(backend)?;
        {
            txn.open_table(OBJECTS).map_err(backend)?;
            txn.open_table(REFS).map_err(backend)?;
            txn.open_table(OBJECT_REFS).map_err(backend)?;
            txn.open_table(AUDIT).map_err(backend)?;
            txn.open_table(EVENTS).map_err(backend)?;
            txn.open_table(RUNS).map_err(backend)?;
            txn.open_table(RUN_INDEX).map_err(backend)?;
            txn.open_table(JOURNAL).map_err(backend)?;
            txn.open_table(RUN_ITEMS).map_err(backend)?;
            txn.open_table(OUTBOX).map_err(backend)?;
            txn.open_table(TIMERS).map_err(backend)?;
            txn.open_table(TIMER_IDS).map_err(backend)?;
            txn.open_table(INBOX).map_err(backend)?;
            txn.open_table(CLUSTER_LOCKS).map_err(backend)?;
            let mut meta = txn.open_table(META).map_err(backend)?;
            let stored = meta
                .get(meta_keys::FORMAT)
                .map_err(backend)?
                .map(|v| be_u32(v.value()));
            match stored {
                None => {
                    meta.insert(
                        meta_keys::FORMAT,
                        &tables::DATABASE_FORMAT.to_be_bytes()[..],
                    )
                    .map_err(backend)?;
                }
                Some(f) if f <= tables::DATABASE_FORMAT => {}
                Some(f) => {
                    return Err(StoreError::Backend(format!(
                        "database format {f} is newer than this build ({}); upgrade fleetplane",
                        tables::DATABASE_FORMAT
                    )));
                }
            }
        }
        txn.commit().map_err(backend)?;
        Ok(Self {
            db,
            poisoned: std::sync::Mutex::new(None),
        })
    }

    /// Remembers an I/O failure of a write: redb refuses every later write until reopened.
    fn note(&self, e: StoreError) -> StoreError {
        if let StoreError::Unavailable(why) = &e {
            let mut p = self
                .poisoned
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            if p.is_none() {
                tracing::error!(error = %why, "the database refuses writes until the server restarts");
                *p = Some(why.clone());
            }
        }
        e
    }
}

fn be_u32(b: &[u8]) -> u32 {
    let mut a = [0u8; 4];
    if b.len() == 4 {
        a.copy_from_slice(b);
    }
    u32::from_be_bytes(a)
}

fn be_u64(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    if b.len() == 8 {
        a.copy_from_slice(b);
    }
    u64::from_be_bytes(a)
}

fn log_table(log: Log) -> TableDefinition<'static, u64, &'static [u8]> {
    match log {
        Log::Audit => AUDIT,
        Log::Events => EVENTS,
    }
}

fn ref_key(r: &Reference, source: &str) -> String {
    format!("{}{SEP}{}{SEP}{source}", r.relation, r.target)
}

/// The reads shared by read and write transactions, over any table source.
macro_rules! impl_reads {
    ($ty:ty) => {
        impl ReadOps for $ty {
            fn get(&self, key: &ObjectKey) -> Result<Option<Record>> {
                let t = self.txn.open_table(OBJECTS).map_err(backend)?;
                let enc = key.encode();
                let Some(v) = t.get(enc.as_str()).map_err(backend)? else {
                    return Ok(None);
                };
                let env = Envelope::decode(&enc, v.value())?;
                Ok(Some(Record {
                    key: key.clone(),
                    resource_version: env.resource_version,
                    body: env.body.to_vec(),
                }))
            }

            fn list(&self, q: &ListQuery) -> Result<Page> {
                let t = self.txn.open_table(OBJECTS).map_err(backend)?;
                let base = ObjectKey::range_prefix(crate::TENANT_DEFAULT, &q.scope, q.kind);
                let prefix = format!("{base}{}", q.name_prefix);
                let start = match &q.after {
                    Some(after) if after.as_str() >= q.name_prefix.as_str() => {
                        format!("{base}{after}\u{0}")
                    }
                    _ => prefix.clone(),
                };
                let limit = q.limit.max(1);
                let mut items = Vec::new();
                let mut next = None;
                for entry in t.range(start.as_str()..).map_err(backend)? {
                    let (k, v) = entry.map_err(backend)?;
                    let k = k.value();
                    if !k.starts_with(&prefix) {
                        break;
                    }
                    if items.len() == limit {
                        next = items.last().map(|r: &Record| r.key.name.clone());
                        break;
                    }
                    let env = Envelope::decode(k, v.value())?;
                    let key = ObjectKey::decode(k).ok_or_else(|| StoreError::Corrupt {
                        key: k.to_owned(),
                        reason: "undecodable key".into(),
                    })?;
                    items.push(Record {
                        key,
                        resource_version: env.resource_version,
                        body: env.body.to_vec(),
                    });
                }
                Ok(Page { items, next })
            }

            fn referrers(&self, r: &Reference, limit: usize) -> Result<Vec<ObjectKey>> {
                let t = self.txn.open_table(REFS).map_err(backend)?;
                let prefix = ref_key(r, "");
                let mut out = Vec::new();
                for entry in t.range(prefix.as_str()..).map_err(backend)? {
                    let (k, _) = entry.map_err(backend)?;
                    let k = k.value();
                    let Some(source) = k.strip_prefix(prefix.as_str()) else {
                        break;
                    };
                    if out.len() >= limit {
                        break;
                    }
                    if let Some(key) = ObjectKey::decode(source) {
                        out.push(key);
                    }
                }
                Ok(out)
            }

            fn log_after(&self, log: Log, after: u64, limit: usize) -> Result<Vec<LogEntry>> {
                let t = self.txn.open_table(log_table(log)).map_err(backend)?;
                let mut out = Vec::new();
                for entry in t.range(after.saturating_add(1)..).map_err(backend)? {
                    let (k, v) = entry.map_err(backend)?;
                    if out.len() >= limit {
                        break;
                    }
                    out.push(LogEntry {
                        seq: k.value(),
                        body: v.value().to_vec(),
                    });
                }
                Ok(out)
            }

            fn log_before(
                &self,
                log: Log,
                before: Option<u64>,
                limit: usize,
            ) -> Result<Vec<LogEntry>> {
                let t = self.txn.open_table(log_table(log)).map_err(backend)?;
                let end = before.unwrap_or(u64::MAX);
                let mut out = Vec::new();
                for entry in t.range(..end).map_err(backend)?.rev() {
                    let (k, v) = entry.map_err(backend)?;
                    if out.len() >= limit {
                        break;
                    }
                    out.push(LogEntry {
                        seq: k.value(),
                        body: v.value().to_vec(),
                    });
                }
                Ok(out)
            }

            fn log_head(&self, log: Log) -> Result<u64> {
                let t = self.txn.open_table(log_table(log)).map_err(backend)?;
                Ok(t.last()
                    .map_err(backend)?
                    .map(|(k, _)| k.value())
                    .unwrap_or(0))
            }

            fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
                let t = self.txn.open_table(META).map_err(backend)?;
                Ok(t.get(name).map_err(backend)?.map(|v| v.value().to_vec()))
            }

            fn run(&self, id: &str) -> Result<Option<RunRecord>> {
                let t = self.txn.open_table(RUNS).map_err(backend)?;
                t.get(id)
                    .map_err(backend)?
                    .map(|v| RunRecord::decode(id, v.value()))
                    .transpose()
            }

            fn runs_by(
                &self,
                index: &RunIndex,
                after: Option<&str>,
                limit: usize,
            ) -> Result<Vec<String>> {
                let t = self.txn.open_table(RUN_INDEX).map_err(backend)?;
                let prefix = index.prefix();
                let start = match after {
                    Some(a) => format!("{prefix}{a}\u{0}"),
                    None => prefix.clone(),
                };
                let mut out = Vec::new();
                for entry in t.range(start.as_str()..).map_err(backend)? {
                    let (k, _) = entry.map_err(backend)?;
                    let Some(id) = k.value().strip_prefix(prefix.as_str()) else {
                        break;
                    };
                    if out.len() >= limit {
                        break;
                    }
                    out.push(id.to_owned());
                }
                Ok(out)
            }

            fn run_items(&self, run: &str, count: u32) -> Result<Vec<Vec<u8>>> {
                let t = self.txn.open_table(RUN_ITEMS).map_err(backend)?;
                let mut out = Vec::with_capacity(count as usize);
                if count == 0 {
                    return Ok(out);
                }
                for entry in t.range((run, 0)..=(run, count - 1)).map_err(backend)? {
                    let (k, v) = entry.map_err(backend)?;
                    if k.value().1 as usize != out.len() {
                        break;
                    }
                    out.push(v.value().to_vec());
                }
                if out.len() != count as usize {
                    return Err(StoreError::Corrupt {
                        key: format!("run-items/{run}/{}", out.len()),
                        reason: format!("{count} items expected, item {} missing", out.len()),
                    });
                }
                Ok(out)
            }

            fn journal(&self, run: &str, after: u64, limit: usize) -> Result<Vec<LogEntry>> {
                let t = self.txn.open_table(JOURNAL).map_err(backend)?;
                let mut out = Vec::new();
                let range = t
                    .range((run, after.saturating_add(1))..=(run, u64::MAX))
                    .map_err(backend)?;
                for entry in range {
                    let (k, v) = entry.map_err(backend)?;
                    if out.len() >= limit {
                        break;
                    }
                    out.push(LogEntry {
                        seq: k.value().1,
                        body: v.value().to_vec(),
                    });
                }
                Ok(out)
            }

            fn journal_head(&self, run: &str) -> Result<u64> {
                let t = self.txn.open_table(JOURNAL).map_err(backend)?;
                let mut range = t.range((run, 0)..=(run, u64::MAX)).map_err(backend)?;
                Ok(match range.next_back() {
                    Some(e) => e.map_err(backend)?.0.value().1,
                    None => 0,
                })
            }

            fn outbox(&self, after: u64, limit: usize) -> Result<Vec<OutboxEntry>> {
                let t = self.txn.open_table(OUTBOX).map_err(backend)?;
                let mut out = Vec::new();
                for entry in t.range(after.saturating_add(1)..).map_err(backend)? {
                    let (k, v) = entry.map_err(backend)?;
                    if out.len() >= limit {
                        break;
                    }
                    out.push(OutboxEntry::decode(k.value(), v.value())?);
                }
                Ok(out)
            }

            fn timers_due(&self, at_ms: u64, limit: usize) -> Result<Vec<TimerEntry>> {
                let t = self.txn.open_table(TIMERS).map_err(backend)?;
                let mut out = Vec::new();
                for entry in t.range(..(at_ms.saturating_add(1), "")).map_err(backend)? {
                    let (k, v) = entry.map_err(backend)?;
                    if out.len() >= limit {
                        break;
                    }
                    let (at_ms, id) = k.value();
                    out.push(TimerEntry {
                        at_ms,
                        id: id.to_owned(),
                        run: v.value().to_owned(),
                    });
                }
                Ok(out)
            }

            fn next_timer(&self) -> Result<Option<TimerEntry>> {
                let t = self.txn.open_table(TIMERS).map_err(backend)?;
                Ok(t.first().map_err(backend)?.map(|(k, v)| {
                    let (at_ms, id) = k.value();
                    TimerEntry {
                        at_ms,
                        id: id.to_owned(),
                        run: v.value().to_owned(),
                    }
                }))
            }

            fn inbox(&self, limit: usize) -> Result<Vec<InboxEntry>> {
                let t = self.txn.open_table(INBOX).map_err(backend)?;
                let mut out = Vec::new();
                for entry in t.iter().map_err(backend)? {
                    let (k, v) = entry.map_err(backend)?;
                    if out.len() >= limit {
                        break;
                    }
                    let (run, seq) = k.value();
                    out.push(InboxEntry {
                        run: run.to_owned(),
                        seq,
                        event: v.value().to_vec(),
                    });
                }
                Ok(out)
            }

            fn cluster_lock(&self, cluster: &str) -> Result<Option<String>> {
                let t = self.txn.open_table(CLUSTER_LOCKS).map_err(backend)?;
                Ok(t.get(cluster)
                    .map_err(backend)?
                    .map(|v| v.value().to_owned()))
            }
        }
    };
}

struct RedbRead {
    txn: redb::ReadTransaction,
}

struct RedbWrite<'a> {
    txn: redb::WriteTransaction,
    revision: Option<u64>,
    storage: &'a RedbStorage,
}

impl_reads!(RedbRead);
impl_reads!(RedbWrite<'_>);

impl RedbWrite<'_> {
    fn next_revision(&mut self) -> Result<u64> {
        let current = match self.revision {
            Some(r) => r,
            None => self
                .meta(meta_keys::REVISION)?
                .map(|b| be_u64(&b))
                .unwrap_or(0),
        };
        let next = current + 1;
        self.revision = Some(next);
        Ok(next)
    }

    fn check(&self, key: &ObjectKey, pre: Precondition) -> Result<Option<u64>> {
        let current = self.get(key)?.map(|r| r.resource_version);
        match (pre, current) {
            (Precondition::Any, c) => Ok(c),
            (Precondition::MustNotExist, Some(_)) => Err(StoreError::AlreadyExists(key.clone())),
            (Precondition::MustNotExist, None) => Ok(None),
            (Precondition::MustExist | Precondition::Version(_), None) => {
                Err(StoreError::NotFound(key.clone()))
            }
            (Precondition::MustExist, c) => Ok(c),
            (Precondition::Version(want), Some(found)) if want != found => {
                Err(StoreError::VersionMismatch {
                    key: key.clone(),
                    expected: want,
                    found,
                })
            }
            (Precondition::Version(_), c) => Ok(c),
        }
    }

    /// Makes `refs` the references `source` holds. Most writes keep an object's references
    /// (a cluster's status changes, its events and stacks hold none): the list stored for
    /// the object is compared first and nothing is rewritten when it is the same.
    fn set_refs(&mut self, source: &str, refs: &[Reference]) -> Result<()> {
        let mut sorted: Vec<&Reference> = refs.iter().collect();
        sorted.sort();
        sorted.dedup();
        let list: Vec<(&str, &str)> = sorted
            .iter()
            .map(|r| (r.relation, r.target.as_str()))
            .collect();
        let bytes = if list.is_empty() {
            None
        } else {
            Some(serde_json::to_vec(&list).map_err(|e| StoreError::Backend(e.to_string()))?)
        };
        let mut held = self.txn.open_table(OBJECT_REFS).map_err(backend)?;
        let old = held
            .get(source)
            .map_err(backend)?
            .map(|v| v.value().to_vec());
        if old == bytes {
            return Ok(());
        }
        let old: Vec<(String, String)> = match &old {
            Some(v) => serde_json::from_slice(v).map_err(|e| StoreError::Corrupt {
                key: source.to_owned(),
                reason: e.to_string(),
            })?,
            None => Vec::new(),
        };
        match &bytes {
            Some(b) => held.insert(source, b.as_slice()).map_err(backend)?,
            None => held.remove(source).map_err(backend)?,
        };
        drop(held);
        let mut rows = self.txn.open_table(REFS).map_err(backend)?;
        for (relation, target) in old {
            rows.remove(format!("{relation}{SEP}{target}{SEP}{source}").as_str())
                .map_err(backend)?;
        }
        for r in sorted {
            rows.insert(ref_key(r, source).as_str(), ())
                .map_err(backend)?;
        }
        Ok(())
    }
}

impl WriteOps for RedbWrite<'_> {
    fn put(
        &mut self,
        key: &ObjectKey,
        body: &[u8],
        pre: Precondition,
        refs: &[Reference],
    ) -> Result<u64> {
        // `Any` has nothing to check: no read of the current record (most of the runtime
        // hook's writes, such as a cluster's stacks and events, are unconditional).
        if pre != Precondition::Any {
            self.check(key, pre)?;
        }
        let rv = self.next_revision()?;
        let enc = key.encode();
        {
            let mut t = self.txn.open_table(OBJECTS).map_err(backend)?;
            t.insert(enc.as_str(), Envelope::encode(rv, body).as_slice())
                .map_err(backend)?;
        }
        self.set_refs(&enc, refs)?;
        Ok(rv)
    }

    fn delete(&mut self, key: &ObjectKey, pre: Precondition) -> Result<Record> {
        let pre = if pre == Precondition::Any {
            Precondition::MustExist
        } else {
            pre
        };
        self.check(key, pre)?;
        let record = self
            .get(key)?
            .ok_or_else(|| StoreError::NotFound(key.clone()))?;
        let enc = key.encode();
        {
            let mut t = self.txn.open_table(OBJECTS).map_err(backend)?;
            t.remove(enc.as_str()).map_err(backend)?;
        }
        self.set_refs(&enc, &[])?;
        Ok(record)
    }

    fn append(&mut self, log: Log, body: &[u8]) -> Result<u64> {
        let mut t = self.txn.open_table(log_table(log)).map_err(backend)?;
        let seq = t
            .last()
            .map_err(backend)?
            .map(|(k, _)| k.value())
            .unwrap_or(0)
            + 1;
        t.insert(seq, body).map_err(backend)?;
        Ok(seq)
    }

    fn trim(&mut self, log: Log, keep: u64) -> Result<()> {
        let mut t = self.txn.open_table(log_table(log)).map_err(backend)?;
        let len = t.len().map_err(backend)?;
        if len <= keep {
            return Ok(());
        }
        let Some(first) = t.first().map_err(backend)?.map(|(k, _)| k.value()) else {
            return Ok(());
        };
        let cut = first + (len - keep);
        t.retain_in(first..cut, |_, _| false).map_err(backend)?;
        Ok(())
    }

    fn set_meta(&mut self, name: &str, value: &[u8]) -> Result<()> {
        let mut t = self.txn.open_table(META).map_err(backend)?;
        t.insert(name, value).map_err(backend)?;
        Ok(())
    }

    fn put_run(&mut self, header: &RunHeader, state: &[u8]) -> Result<()> {
        let bytes = RunRecord::encode(header, state)?;
        let old = {
            let mut t = self.txn.open_table(RUNS).map_err(backend)?;
            let old = t
                .insert(header.id.as_str(), bytes.as_slice())
                .map_err(backend)?;
            old.map(|v| RunRecord::decode_header(&header.id, v.value()))
                .transpose()?
        };
        let new_idx = RunIndex::of(header);
        let old_idx = old.as_ref().map(RunIndex::of).unwrap_or_default();
        if old_idx != new_idx {
            let mut t = self.txn.open_table(RUN_INDEX).map_err(backend)?;
            for i in old_idx.iter().filter(|i| !new_idx.contains(i)) {
                t.remove(format!("{}{}", i.prefix(), header.id).as_str())
                    .map_err(backend)?;
            }
            for i in new_idx.iter().filter(|i| !old_idx.contains(i)) {
                t.insert(format!("{}{}", i.prefix(), header.id).as_str(), ())
                    .map_err(backend)?;
            }
        }
        Ok(())
    }

    fn append_journal(&mut self, run: &str, entries: &[(u64, &[u8])]) -> Result<()> {
        // Checked before writing anything, so a refused append leaves the journal as it was.
        let head = self.journal_head(run)?;
        let mut last = head;
        for (seq, _) in entries {
            if *seq != last + 1 {
                return Err(StoreError::Corrupt {
                    key: format!("journal/{run}"),
                    reason: format!("entry {seq} does not follow {last}"),
                });
            }
            last = *seq;
        }
        let mut t = self.txn.open_table(JOURNAL).map_err(backend)?;
        for (seq, body) in entries {
            t.insert((run, *seq), *body).map_err(backend)?;
        }
        Ok(())
    }

    fn put_run_items(&mut self, run: &str, items: &[(u32, &[u8])]) -> Result<()> {
        let mut t = self.txn.open_table(RUN_ITEMS).map_err(backend)?;
        for (index, body) in items {
            t.insert((run, *index), *body).map_err(backend)?;
        }
        Ok(())
    }

    fn push_outbox(&mut self, run: &str, effect: &[u8]) -> Result<u64> {
        let bytes = OutboxEntry::encode(run, effect)?;
        // The sequence survives an empty outbox (an answered effect's seq is never reused).
        let last = self
            .meta(meta_keys::OUTBOX_SEQ)?
            .map(|b| be_u64(&b))
            .unwrap_or(0);
        let seq = last + 1;
        {
            let mut t = self.txn.open_table(OUTBOX).map_err(backend)?;
            t.insert(seq, bytes.as_slice()).map_err(backend)?;
        }
        self.set_meta(meta_keys::OUTBOX_SEQ, &seq.to_be_bytes())?;
        Ok(seq)
    }

    fn remove_outbox(&mut self, seq: u64) -> Result<()> {
        let mut t = self.txn.open_table(OUTBOX).map_err(backend)?;
        t.remove(seq).map_err(backend)?;
        Ok(())
    }

    fn set_timer(&mut self, id: &str, run: &str, at_ms: u64) -> Result<()> {
        self.remove_timer(id)?;
        let mut ids = self.txn.open_table(TIMER_IDS).map_err(backend)?;
        ids.insert(id, at_ms).map_err(backend)?;
        let mut t = self.txn.open_table(TIMERS).map_err(backend)?;
        t.insert((at_ms, id), run).map_err(backend)?;
        Ok(())
    }

    fn remove_timer(&mut self, id: &str) -> Result<bool> {
        let mut ids = self.txn.open_table(TIMER_IDS).map_err(backend)?;
        let Some(at) = ids.remove(id).map_err(backend)?.map(|v| v.value()) else {
            return Ok(false);
        };
        let mut t = self.txn.open_table(TIMERS).map_err(backend)?;
        t.remove((at, id)).map_err(backend)?;
        Ok(true)
    }

    fn push_inbox(&mut self, run: &str, event: &[u8]) -> Result<u64> {
        let mut t = self.txn.open_table(INBOX).map_err(backend)?;
        let last = {
            let mut range = t.range((run, 0)..=(run, u64::MAX)).map_err(backend)?;
            match range.next_back() {
                Some(e) => e.map_err(backend)?.0.value().1,
                None => 0,
            }
        };
        let seq = last + 1;
        t.insert((run, seq), event).map_err(backend)?;
        Ok(seq)
    }

    fn remove_inbox(&mut self, run: &str, seq: u64) -> Result<()> {
        let mut t = self.txn.open_table(INBOX).map_err(backend)?;
        t.remove((run, seq)).map_err(backend)?;
        Ok(())
    }

    fn lock_cluster(&mut self, cluster: &str, run: &str) -> Result<Option<String>> {
        let mut t = self.txn.open_table(CLUSTER_LOCKS).map_err(backend)?;
        let holder = t
            .get(cluster)
            .map_err(backend)?
            .map(|v| v.value().to_owned());
        match holder {
            Some(h) if h != run => Ok(Some(h)),
            Some(_) => Ok(None),
            None => {
                t.insert(cluster, run).map_err(backend)?;
                Ok(None)
            }
        }
    }

    fn unlock_cluster(&mut self, cluster: &str, run: &str) -> Result<bool> {
        let mut t = self.txn.open_table(CLUSTER_LOCKS).map_err(backend)?;
        let held = t.get(cluster).map_err(backend)?.map(|v| v.value() == run);
        if held == Some(true) {
            t.remove(cluster).map_err(backend)?;
            return Ok(true);
        }
        Ok(false)
    }

    fn commit(mut self: Box<Self>) -> Result<()> {
        if let Some(rev) = self.revision {
            self.set_meta(meta_keys::REVISION, &rev.to_be_bytes())?;
        }
        // Immediate durability is redb's default: the commit returns after fsync.
        let storage = self.storage;
        self.txn.commit().map_err(|e| storage.note(backend(e)))
    }
}

impl Storage for RedbStorage {
    fn read(&self) -> Result<Box<dyn ReadOps + '_>> {
        Ok(Box::new(RedbRead {
            txn: self.db.begin_read().map_err(backend)?,
        }))
    }

    fn write(&self) -> Result<Box<dyn WriteOps + '_>> {
        Ok(Box::new(RedbWrite {
            txn: self.db.begin_write().map_err(|e| self.note(backend(e)))?,
            revision: None,
            storage: self,
        }))
    }

    fn poisoned(&self) -> Option<String> {
        self.poisoned
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .clone()
    }
}
