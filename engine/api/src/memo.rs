//! Bounded memo tables for pure computations that the runtime's hook, the effect executor and
//! request paths repeat with the same inputs: a cluster's rendered stack (rendered by the
//! `render` step, again for the provider call, again when the call is recorded) and a
//! maintenance policy's next window in a zone (once per cluster of a list page).
//!
//! Keys are digests of *every* input (content-addressed), so an entry can never be stale and
//! one table serves every store in the process (tests run many servers in one process). The
//! one table keyed otherwise, `clusters::RecentRenders` (by cluster), belongs to one server's
//! state and checks each entry against the store before using it.

use sha2::Digest as _;
use std::collections::{HashMap, VecDeque};
use std::hash::Hash;
use std::sync::Mutex;

/// A memo table holding at most `capacity` entries; the oldest entry goes first.
pub(crate) struct Memo<K, V> {
    capacity: usize,
    inner: Mutex<Inner<K, V>>,
}

struct Inner<K, V> {
    map: HashMap<K, V>,
    order: VecDeque<K>,
}

impl<K: Hash + Eq + Clone, V: Clone> Memo<K, V> {
    /// An empty table for at most `capacity` entries.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            inner: Mutex::new(Inner {
                map: HashMap::new(),
                order: VecDeque::new(),
            }),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner<K, V>> {
        self.inner
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// The value stored for `key`.
    pub(crate) fn get(&self, key: &K) -> Option<V> {
        self.lock().map.get(key).cloned()
    }

    /// Stores `value` for `key`, evicting the oldest entries beyond the capacity.
    pub(crate) fn insert(&self, key: K, value: V) {
        let mut inner = self.lock();
        if inner.map.insert(key.clone(), value).is_none() {
            inner.order.push_back(key);
        }
        while inner.order.len() > self.capacity {
            if let Some(old) = inner.order.pop_front() {
                inner.map.remove(&old);
            }
        }
    }

    /// The value for `key`, computing and storing it with `f` when absent. Errors are not
    /// stored. `f` runs without the table locked (two threads may compute the same entry).
    pub(crate) fn get_or_try<E>(&self, key: K, f: impl FnOnce() -> Result<V, E>) -> Result<V, E> {
        if let Some(v) = self.get(&key) {
            return Ok(v);
        }
        let v = f()?;
        self.insert(key, v.clone());
        Ok(v)
    }
}

/// A SHA-256 digest of `value`'s JSON: the key of an entry computed from `value` alone.
pub(crate) fn digest_of<T: serde::Serialize + ?Sized>(value: &T) -> [u8; 32] {
    let mut hasher = sha2::Sha256::new();
    // Serializing into a hasher cannot fail for our types (string map keys); a failure would
    // only make the digest of a partial value, which still covers what was written, so treat
    // it as a distinct key by mixing in a marker.
    if serde_json::to_writer(&mut hasher, value).is_err() {
        hasher.update(b"\0unserializable");
    }
    hasher.finalize().into()
}

/// A SHA-256 digest of a stored record: its key, resource version and bytes.
pub(crate) fn record_digest(rec: &fleetplane_store::Record) -> [u8; 32] {
    let mut hasher = sha2::Sha256::new();
    hasher.update(rec.key.to_string().as_bytes());
    hasher.update([0]);
    hasher.update(rec.resource_version.to_le_bytes());
    hasher.update(&rec.body);
    hasher.finalize().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_at_most_capacity_entries_and_evicts_the_oldest() {
        let m: Memo<u32, u32> = Memo::new(2);
        m.insert(1, 10);
        m.insert(2, 20);
        m.insert(1, 11);
        assert_eq!(m.get(&1), Some(11));
        m.insert(3, 30);
        assert_eq!(m.get(&1), None, "1 was the oldest key");
        assert_eq!(m.get(&2), Some(20));
        assert_eq!(m.get(&3), Some(30));
    }

    #[test]
    fn errors_are_not_stored() {
        let m: Memo<u32, u32> = Memo::new(4);
        assert_eq!(m.get_or_try(7, || Err::<u32, &str>("boom")), Err("boom"));
        assert_eq!(m.get(&7), None);
        assert_eq!(m.get_or_try(7, || Ok::<u32, &str>(70)), Ok(70));
        assert_eq!(m.get_or_try(7, || Err::<u32, &str>("not called")), Ok(70));
    }

    #[test]
    fn record_digests_differ_with_the_key_the_version_or_the_bytes() {
        use fleetplane_store::{Kind, ObjectKey, Record, Scope};
        let rec = |name: &str, rv: u64, body: &[u8]| Record {
            key: ObjectKey::new(Scope::Tenant, Kind("profile-version"), name),
            resource_version: rv,
            body: body.to_vec(),
        };
        let a = record_digest(&rec("p/1.0.0", 7, b"{}"));
        assert_eq!(a, record_digest(&rec("p/1.0.0", 7, b"{}")));
        assert_ne!(a, record_digest(&rec("p/1.0.1", 7, b"{}")));
        assert_ne!(a, record_digest(&rec("p/1.0.0", 8, b"{}")));
        // The same key and version with other bytes (a write that was rolled back, then
        // another one) is another entry.
        assert_ne!(a, record_digest(&rec("p/1.0.0", 7, b"{ }")));
    }

    #[test]
    fn digests_differ_with_any_input() {
        assert_eq!(digest_of(&("a", 1)), digest_of(&("a", 1)));
        assert_ne!(digest_of(&("a", 1)), digest_of(&("a", 2)));
        assert_ne!(digest_of(&("a", 1)), digest_of(&("b", 1)));
    }
}
