//! The bench report: figures, latency percentiles, and the table printed for people (the JSON
//! file is the same structure, serialized).

use super::probe::CommitProbe;
use super::server::Memory;
use serde::Serialize;
use std::fmt::Write as _;
use std::time::Duration;

/// Everything one bench run measured.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// The `fleetplane` version that ran the bench.
    pub version: String,
    /// The scenario asked for.
    pub scenario: String,
    /// What was measured: `child process` or the endpoint URL.
    pub target: String,
    /// The project the bench created its objects in.
    pub project: String,
    /// Clusters asked for.
    pub clusters: u32,
    /// Concurrent API clients.
    pub concurrency: u16,
    /// The `create` scenario.
    pub create: CreateFigures,
    /// Server memory at the end (child process only).
    pub server_memory: Option<Memory>,
    /// Database files of the server at the end (child process only).
    pub database: Option<DatabaseSize>,
    /// The durable-commit probe on the disk of the data directory.
    pub commit_probe: CommitProbe,
    /// Workflow transitions per second as a fraction of the probe's commits per second.
    pub transitions_per_commit_rate: f64,
}

/// Figures of the `create` scenario.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CreateFigures {
    /// Clusters the API acknowledged as created (201).
    pub created: u64,
    /// Clusters seen Running with no run in progress at the end.
    pub running: u64,
    /// Seconds from the first PUT to the last acknowledged one.
    pub seconds_to_all_created: f64,
    /// Seconds from the first PUT to the list pages showing every cluster Running.
    pub seconds_to_all_running: f64,
    /// `created / seconds_to_all_created`.
    pub created_per_second: f64,
    /// `running / seconds_to_all_running`.
    pub running_per_second: f64,
    /// Latency of the cluster PUT.
    pub put_latency: Latency,
    /// Answers 429 that were retried (always 0 against the bench's own server).
    pub rate_limited: u64,
    /// Full list scans made while waiting for Running.
    pub list_scans: u64,
    /// Latency of one list page (500 clusters) during those scans.
    pub list_page_latency: Latency,
    /// Workflow transitions (run journal entries) of the deploy runs.
    pub transitions: Transitions,
}

/// Workflow transitions, counted as run journal entries (`journalSeq`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Transitions {
    /// Deploy runs read (evenly spaced over the clusters).
    pub sampled_runs: u64,
    /// Mean journal entries per deploy run in the sample.
    pub per_run: f64,
    /// `per_run × running` (exact when every run was read).
    pub total: f64,
    /// `total / seconds_to_all_running`.
    pub per_second: f64,
}

/// Latency percentiles, milliseconds.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct Latency {
    /// Requests measured.
    pub count: u64,
    /// Median.
    pub p50_ms: f64,
    /// 95th percentile.
    pub p95_ms: f64,
    /// 99th percentile.
    pub p99_ms: f64,
    /// Slowest.
    pub max_ms: f64,
}

impl Latency {
    /// Nearest-rank percentiles of `samples` (all zero when empty).
    pub fn of(mut samples: Vec<Duration>) -> Self {
        samples.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1000.0;
        let at = |p: f64| -> f64 {
            if samples.is_empty() {
                return 0.0;
            }
            // Nearest rank: the smallest sample with at least p% of the samples at or below it.
            let rank = (p / 100.0 * samples.len() as f64).ceil() as usize;
            ms(samples[rank.clamp(1, samples.len()) - 1])
        };
        Self {
            count: samples.len() as u64,
            p50_ms: at(50.0),
            p95_ms: at(95.0),
            p99_ms: at(99.0),
            max_ms: samples.last().copied().map_or(0.0, ms),
        }
    }
}

/// Sizes of the server's database files.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct DatabaseSize {
    /// Each file and its size in bytes.
    pub files: Vec<(String, u64)>,
    /// Their sum.
    pub total_bytes: u64,
}

fn mib(bytes: u64) -> String {
    format!("{:.1} MiB", bytes as f64 / (1024.0 * 1024.0))
}

fn latency(l: &Latency) -> String {
    format!(
        "p50 {:.1} ms, p95 {:.1} ms, p99 {:.1} ms, max {:.1} ms ({} requests)",
        l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms, l.count
    )
}

impl Report {
    /// The report as an aligned two-column table.
    pub fn table(&self) -> String {
        let c = &self.create;
        let t = &c.transitions;
        let p = &self.commit_probe;
        let mut rows: Vec<(&str, String)> = vec![
            ("target", self.target.clone()),
            ("scenario", self.scenario.clone()),
            ("project", self.project.clone()),
            ("clusters", self.clusters.to_string()),
            ("concurrency", self.concurrency.to_string()),
            ("created (API 201)", c.created.to_string()),
            ("running", c.running.to_string()),
            (
                "time to all created",
                format!("{:.2} s", c.seconds_to_all_created),
            ),
            (
                "time to all running",
                format!("{:.2} s", c.seconds_to_all_running),
            ),
            ("created/s", format!("{:.1}", c.created_per_second)),
            ("running/s", format!("{:.1}", c.running_per_second)),
            ("cluster PUT latency", latency(&c.put_latency)),
            ("rate-limited retries", c.rate_limited.to_string()),
            (
                "list page latency",
                format!(
                    "{} over {} scans",
                    latency(&c.list_page_latency),
                    c.list_scans
                ),
            ),
            (
                "transitions",
                format!(
                    "{:.0} ({:.1} per run, {} runs read)",
                    t.total, t.per_run, t.sampled_runs
                ),
            ),
            ("transitions/s", format!("{:.1}", t.per_second)),
        ];
        rows.push((
            "server memory",
            self.server_memory.map_or_else(
                || "not measured (remote server)".to_owned(),
                |m| format!("RSS {}, peak {}", mib(m.rss_bytes), mib(m.peak_rss_bytes)),
            ),
        ));
        rows.push((
            "database size",
            self.database.as_ref().map_or_else(
                || "not measured (remote server)".to_owned(),
                |d| {
                    let files: Vec<String> = d
                        .files
                        .iter()
                        .map(|(name, bytes)| format!("{name} {}", mib(*bytes)))
                        .collect();
                    format!("{} ({})", mib(d.total_bytes), files.join(", "))
                },
            ),
        ));
        rows.push((
            "durable commits/s (probe)",
            format!(
                "{:.1} ({} commits of {} B in {:.2} s)",
                p.commits_per_second, p.commits, p.bytes_per_commit, p.seconds
            ),
        ));
        rows.push((
            "transitions/s ÷ commits/s",
            format!("{:.2}", self.transitions_per_commit_rate),
        ));
        let width = rows
            .iter()
            .map(|(k, _)| k.chars().count())
            .max()
            .unwrap_or(0);
        let mut out = String::new();
        for (k, v) in rows {
            let pad = width - k.chars().count();
            let _ = writeln!(out, "{k}{}  {v}", " ".repeat(pad));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&m| Duration::from_millis(m)).collect()
    }

    #[test]
    fn percentiles_are_nearest_rank() {
        let cases: &[(&[u64], [f64; 4])] = &[
            (&[], [0.0, 0.0, 0.0, 0.0]),
            (&[7], [7.0, 7.0, 7.0, 7.0]),
            (&[1, 2], [1.0, 2.0, 2.0, 2.0]),
            (&[5, 1, 4, 2, 3], [3.0, 5.0, 5.0, 5.0]),
        ];
        for (samples, [p50, p95, p99, max]) in cases {
            let l = Latency::of(ms(samples));
            assert_eq!(l.count, samples.len() as u64);
            assert_eq!(
                [l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms],
                [*p50, *p95, *p99, *max],
                "{samples:?}"
            );
        }
        let hundred: Vec<u64> = (1..=100).rev().collect();
        let l = Latency::of(ms(&hundred));
        assert_eq!(
            [l.p50_ms, l.p95_ms, l.p99_ms, l.max_ms],
            [50.0, 95.0, 99.0, 100.0]
        );
    }
}
