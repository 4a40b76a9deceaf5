//! A bounded cache of what is computed from a text — a compiled pattern, a template's
//! expression positions — shared by every thread: the same few texts come back for every
//! cluster. When full it starts over (the texts in use come back at once).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};

pub(crate) struct TextCache<V> {
    capacity: usize,
    map: Mutex<HashMap<String, Arc<V>>>,
}

impl<V> TextCache<V> {
    /// An empty cache holding at most `capacity` texts.
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            capacity: capacity.max(1),
            map: Mutex::default(),
        }
    }

    /// The value for `text`, computed by `f` when absent.
    pub(crate) fn get_or(&self, text: &str, f: impl FnOnce() -> V) -> Arc<V> {
        self.get_or_try(text, || Ok::<_, std::convert::Infallible>(f()))
            .unwrap_or_else(|never| match never {})
    }

    /// The value for `text`, computed by `f` when absent (errors are not kept). `f` runs
    /// without the cache locked, so two threads may compute the same text once each.
    pub(crate) fn get_or_try<E>(
        &self,
        text: &str,
        f: impl FnOnce() -> Result<V, E>,
    ) -> Result<Arc<V>, E> {
        if let Some(v) = self
            .map
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(text)
        {
            return Ok(Arc::clone(v));
        }
        let v = Arc::new(f()?);
        let mut map = self.map.lock().unwrap_or_else(PoisonError::into_inner);
        if map.len() >= self.capacity {
            map.clear();
        }
        map.insert(text.to_owned(), Arc::clone(&v));
        Ok(v)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn computes_once_keeps_no_errors_and_starts_over_when_full() {
        let cache = TextCache::new(2);
        let calls = std::cell::Cell::new(0);
        let get = |t: &str| {
            cache
                .get_or_try(t, || {
                    calls.set(calls.get() + 1);
                    if t == "bad" { Err("no") } else { Ok(t.len()) }
                })
                .map(|v| *v)
        };
        assert_eq!(get("a"), Ok(1));
        assert_eq!(get("a"), Ok(1));
        assert_eq!(get("bad"), Err("no"));
        assert_eq!(get("bad"), Err("no"));
        assert_eq!(get("bb"), Ok(2));
        assert_eq!(get("ccc"), Ok(3)); // full: starts over
        assert_eq!(get("a"), Ok(1));
        assert_eq!(calls.get(), 6);
    }
}
