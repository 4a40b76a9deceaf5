//! Remembering what a computation read, to check later — in another snapshot — that it would
//! read the same again (optimistic validation): a result computed from one snapshot can then
//! be reused in a later one without being computed again, when nothing it depends on changed.
//!
//! Objects are remembered by key and resource version (every write gives a new one; a missing
//! object is remembered as missing), list pages by their query and the keys and versions they
//! returned. Any other read (runs, logs, references, metadata) makes the set *opaque*: it can
//! never be found unchanged.

use crate::{
    InboxEntry, ListQuery, Log, LogEntry, ObjectKey, OutboxEntry, Page, ReadOps, Record, Reference,
    Result, RunIndex, RunRecord, TimerEntry,
};
use std::cell::RefCell;

/// What a computation read through a [`Recording`].
#[derive(Debug, Clone, Default)]
pub struct ReadSet {
    objects: Vec<(ObjectKey, Option<u64>)>,
    lists: Vec<Listed>,
    opaque: bool,
}

/// A list page read: its query, the keys and versions it returned, its `next`.
#[derive(Debug, Clone)]
struct Listed {
    query: ListQuery,
    items: Vec<(ObjectKey, u64)>,
    next: Option<String>,
}

fn listed(page: &Page) -> Vec<(ObjectKey, u64)> {
    page.items
        .iter()
        .map(|r| (r.key.clone(), r.resource_version))
        .collect()
}

impl ReadSet {
    /// Whether every read of the set gives the same answer in `r`: the same objects at the
    /// same versions (or still missing), the same list pages.
    ///
    /// # Errors
    /// Store errors of `r`.
    pub fn unchanged_in(&self, r: &dyn ReadOps) -> Result<bool> {
        if self.opaque {
            return Ok(false);
        }
        for (key, version) in &self.objects {
            if r.get(key)?.map(|rec| rec.resource_version) != *version {
                return Ok(false);
            }
        }
        for l in &self.lists {
            let page = r.list(&l.query)?;
            if page.next != l.next || listed(&page) != l.items {
                return Ok(false);
            }
        }
        Ok(true)
    }
}

/// A [`ReadOps`] that answers from `inner` and remembers what was read.
pub struct Recording<'a> {
    inner: &'a dyn ReadOps,
    set: RefCell<ReadSet>,
}

impl<'a> Recording<'a> {
    /// Records the reads made through it from `inner`.
    pub fn new(inner: &'a dyn ReadOps) -> Self {
        Self {
            inner,
            set: RefCell::default(),
        }
    }

    /// What was read.
    pub fn finish(self) -> ReadSet {
        self.set.into_inner()
    }

    fn opaque<T>(&self, answer: Result<T>) -> Result<T> {
        self.set.borrow_mut().opaque = true;
        answer
    }
}

impl ReadOps for Recording<'_> {
    fn get(&self, key: &ObjectKey) -> Result<Option<Record>> {
        let rec = self.inner.get(key)?;
        self.set
            .borrow_mut()
            .objects
            .push((key.clone(), rec.as_ref().map(|r| r.resource_version)));
        Ok(rec)
    }

    fn list(&self, query: &ListQuery) -> Result<Page> {
        let page = self.inner.list(query)?;
        self.set.borrow_mut().lists.push(Listed {
            query: query.clone(),
            items: listed(&page),
            next: page.next.clone(),
        });
        Ok(page)
    }

    fn referrers(&self, reference: &Reference, limit: usize) -> Result<Vec<ObjectKey>> {
        self.opaque(self.inner.referrers(reference, limit))
    }

    fn log_after(&self, log: Log, after: u64, limit: usize) -> Result<Vec<LogEntry>> {
        self.opaque(self.inner.log_after(log, after, limit))
    }

    fn log_before(&self, log: Log, before: Option<u64>, limit: usize) -> Result<Vec<LogEntry>> {
        self.opaque(self.inner.log_before(log, before, limit))
    }

    fn log_head(&self, log: Log) -> Result<u64> {
        self.opaque(self.inner.log_head(log))
    }

    fn meta(&self, name: &str) -> Result<Option<Vec<u8>>> {
        self.opaque(self.inner.meta(name))
    }

    fn run(&self, id: &str) -> Result<Option<RunRecord>> {
        self.opaque(self.inner.run(id))
    }

    fn runs_by(&self, index: &RunIndex, after: Option<&str>, limit: usize) -> Result<Vec<String>> {
        self.opaque(self.inner.runs_by(index, after, limit))
    }

    fn journal(&self, run: &str, after: u64, limit: usize) -> Result<Vec<LogEntry>> {
        self.opaque(self.inner.journal(run, after, limit))
    }

    fn run_items(&self, run: &str, count: u32) -> Result<Vec<Vec<u8>>> {
        self.opaque(self.inner.run_items(run, count))
    }

    fn journal_head(&self, run: &str) -> Result<u64> {
        self.opaque(self.inner.journal_head(run))
    }

    fn outbox(&self, after: u64, limit: usize) -> Result<Vec<OutboxEntry>> {
        self.opaque(self.inner.outbox(after, limit))
    }

    fn timers_due(&self, at_ms: u64, limit: usize) -> Result<Vec<TimerEntry>> {
        self.opaque(self.inner.timers_due(at_ms, limit))
    }

    fn next_timer(&self) -> Result<Option<TimerEntry>> {
        self.opaque(self.inner.next_timer())
    }

    fn inbox(&self, limit: usize) -> Result<Vec<InboxEntry>> {
        self.opaque(self.inner.inbox(limit))
    }

    fn cluster_lock(&self, cluster: &str) -> Result<Option<String>> {
        self.opaque(self.inner.cluster_lock(cluster))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Precondition, RedbStorage, Scope, Store, WriteExt, tables::kinds};
    use std::sync::Arc;

    fn put(store: &Store, key: &ObjectKey, body: &str) {
        let mut w = store.write().unwrap();
        w.put_as(key, &body, Precondition::Any, &[]).unwrap();
        w.commit().unwrap();
    }

    /// Reads `a`, `missing` and the list of `a`'s kind, as a computation would.
    fn record(store: &Store, a: &ObjectKey, missing: &ObjectKey) -> ReadSet {
        let r = store.read().unwrap();
        let rec = Recording::new(&*r);
        assert!(rec.get(a).unwrap().is_some());
        assert!(rec.get(missing).unwrap().is_none());
        rec.list(&ListQuery {
            scope: a.scope.clone(),
            kind: a.kind,
            name_prefix: String::new(),
            after: None,
            limit: 10,
        })
        .unwrap();
        rec.finish()
    }

    #[test]
    fn a_read_set_is_unchanged_until_something_it_read_is_written() {
        let dir = tempfile::tempdir().unwrap();
        let store: Store = Arc::new(RedbStorage::open(&dir.path().join("db.redb")).unwrap());
        let scope = Scope::Project("p".into());
        let a = ObjectKey::new(scope.clone(), kinds::MACRO, "a".to_owned());
        let missing = ObjectKey::new(scope.clone(), kinds::CLUSTER, "gone".to_owned());
        let other = ObjectKey::new(scope.clone(), kinds::CLUSTER, "other".to_owned());
        put(&store, &a, "one");

        let set = record(&store, &a, &missing);
        // Writes elsewhere leave it unchanged.
        put(&store, &other, "x");
        assert!(set.unchanged_in(&*store.read().unwrap()).unwrap());

        // Each kind of change is seen: a read object rewritten (same content, new version), a
        // missing one appearing, the listed range growing.
        put(&store, &a, "one");
        assert!(!set.unchanged_in(&*store.read().unwrap()).unwrap());
        let set = record(&store, &a, &missing);
        put(&store, &missing, "here");
        assert!(!set.unchanged_in(&*store.read().unwrap()).unwrap());
        let mut w = store.write().unwrap();
        w.delete(&missing, Precondition::Any).unwrap();
        w.commit().unwrap();
        let set = record(&store, &a, &missing);
        assert!(set.unchanged_in(&*store.read().unwrap()).unwrap());
        put(
            &store,
            &ObjectKey::new(scope.clone(), kinds::MACRO, "b".to_owned()),
            "two",
        );
        assert!(!set.unchanged_in(&*store.read().unwrap()).unwrap());

        // Any other read makes it opaque: never unchanged.
        let r = store.read().unwrap();
        let rec = Recording::new(&*r);
        rec.get(&a).unwrap();
        rec.run("r1").unwrap();
        assert!(!rec.finish().unchanged_in(&*r).unwrap());
    }
}
