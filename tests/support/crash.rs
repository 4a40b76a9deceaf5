//! Helpers of the kill -9 tests at fleet scale (tests/crash.rs, tests/crash_rollout.rs): a
//! seeded generator for the kill schedule, bounded-concurrency jobs over raw HTTP, journals read
//! page by page, their sequence check, and the cluster phase counts.

use super::{ADMIN_KEY, Server, ServerOptions};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

/// The project every crash test works in.
pub const P: &str = "/v1/projects/default";

/// Requests in flight while creating clusters and reading journals.
pub const CONCURRENCY: usize = 16;

/// SplitMix64: a tiny seeded generator (a kill schedule must be reproducible from its seed).
pub struct Rng(pub u64);

impl Rng {
    /// The next number.
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// A whole number in `lo..=hi`.
    pub fn between(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
}

/// A server whose rate limits do not get in the way of thousands of requests.
pub async fn unthrottled_server() -> Server {
    let options = ServerOptions::default()
        .env("FLEETPLANE_RATE_LIMIT_PER_KEY", "1000000")
        .env("FLEETPLANE_RATE_LIMIT_PER_ADDRESS", "1000000")
        .env("FLEETPLANE_RATE_LIMIT_BURST", "1000000");
    Server::start_with(options).await
}

/// `examples/profiles/<file>` as JSON.
pub fn profile_example(file: &str) -> Value {
    let path = format!("{}/examples/profiles/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// Why a journal's sequence numbers are not exactly 1..=n, or `None` when they are.
pub fn seq_problem(seqs: &[u64]) -> Option<String> {
    seqs.iter().zip(1u64..).find_map(|(&got, want)| {
        (got != want).then(|| format!("entry #{want} has seq {got} (expected {want})"))
    })
}

/// The sequence numbers of journal entries (0 where one has none).
pub fn seqs(entries: &[Value]) -> Vec<u64> {
    entries
        .iter()
        .map(|e| e["seq"].as_u64().unwrap_or(0))
        .collect()
}

/// Runs `job(i)` for every `i` in `0..n`, [`CONCURRENCY`] at a time; returns the errors.
pub async fn bounded<F, Fut>(n: usize, job: F) -> Vec<String>
where
    F: Fn(usize) -> Fut + Clone + Send + 'static,
    Fut: Future<Output = Result<(), String>> + Send,
{
    let next = Arc::new(AtomicUsize::new(0));
    let mut workers = Vec::new();
    for _ in 0..CONCURRENCY {
        let (next, job) = (next.clone(), job.clone());
        workers.push(tokio::spawn(async move {
            let mut errors = Vec::new();
            loop {
                let i = next.fetch_add(1, Ordering::Relaxed);
                if i >= n {
                    return errors;
                }
                if let Err(e) = job(i).await {
                    errors.push(e);
                }
            }
        }));
    }
    let mut errors = Vec::new();
    for w in workers {
        errors.extend(w.await.expect("worker"));
    }
    errors
}

/// `PUT {P}/clusters/{name(i)}` with `body(i)` for every `i` in `0..n`, [`CONCURRENCY`] at a
/// time; returns the failures (anything but 201).
pub async fn create_clusters<N, B>(server: &Server, n: usize, name: N, body: B) -> Vec<String>
where
    N: Fn(usize) -> String + Send + Sync + 'static,
    B: Fn(usize) -> Value + Send + Sync + 'static,
{
    let (http, base) = (server.http().clone(), server.base_url.clone());
    let (name, body) = (Arc::new(name), Arc::new(body));
    bounded(n, move |i| {
        let (http, base) = (http.clone(), base.clone());
        let (url, body) = (format!("{base}{P}/clusters/{}", name(i)), body(i));
        async move {
            let r = http
                .put(&url)
                .bearer_auth(ADMIN_KEY)
                .json(&body)
                .send()
                .await
                .map_err(|e| format!("PUT {url}: {e}"))?;
            let status = r.status();
            let text = r.text().await.unwrap_or_default();
            (status == 201)
                .then_some(())
                .ok_or_else(|| format!("PUT {url}: HTTP {status}: {text}"))
        }
    })
    .await
}

/// `GET url` as the admin, as JSON; an error names the status and body.
pub async fn get_json(http: &reqwest::Client, url: &str) -> Result<Value, String> {
    let r = http
        .get(url)
        .bearer_auth(ADMIN_KEY)
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    let status = r.status();
    let text = r.text().await.map_err(|e| format!("GET {url}: {e}"))?;
    if !status.is_success() {
        return Err(format!("GET {url}: HTTP {status}: {text}"));
    }
    serde_json::from_str(&text).map_err(|e| format!("GET {url}: {e}: {text}"))
}

/// Every entry of a run's journal, page by page (`after` = the last seq read).
pub async fn journal(http: &reqwest::Client, base: &str, run: &str) -> Result<Vec<Value>, String> {
    let mut entries = Vec::new();
    let mut after = 0;
    loop {
        let url = format!("{base}{P}/runs/{run}/journal?after={after}&limit=500");
        let page = get_json(http, &url).await?;
        let items = page["items"]
            .as_array()
            .ok_or_else(|| format!("{url}: no items: {page}"))?;
        entries.extend(items.iter().cloned());
        match page["next"].as_u64() {
            Some(n) => after = n,
            None => return Ok(entries),
        }
    }
}

/// Every cluster of the project, reading every page of the list.
pub async fn all_clusters(server: &Server) -> Vec<Value> {
    let mut out = Vec::new();
    let mut cont: Option<String> = None;
    loop {
        let mut path = format!("{P}/clusters?limit=500");
        if let Some(c) = &cont {
            path.push_str(&format!("&continue={c}"));
        }
        let page = server.get(&path).await;
        assert_eq!(page.status, 200, "{}", page.text);
        let page = page.json();
        out.extend(page["items"].as_array().expect("items").iter().cloned());
        match page["continue"].as_str() {
            Some(c) if !c.is_empty() => cont = Some(c.to_owned()),
            _ => return out,
        }
    }
}

/// Counts the clusters per phase.
pub async fn phases(server: &Server) -> BTreeMap<String, usize> {
    let mut out = BTreeMap::new();
    for c in all_clusters(server).await {
        let phase = c["status"]["phase"].as_str().unwrap_or("?").to_owned();
        *out.entry(phase).or_default() += 1;
    }
    out
}

/// The idempotency keys a journal intended the provider's `update-cluster` under.
pub fn update_keys(entries: &[Value]) -> BTreeSet<String> {
    entries
        .iter()
        .map(|e| &e["record"])
        .filter(|r| r["type"] == "providerCallIntended" && r["operation"] == "update-cluster")
        .filter_map(|r| r["idempotencyKey"].as_str().map(str::to_owned))
        .collect()
}
