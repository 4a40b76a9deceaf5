//! The bench report: figures, latency percentiles, and the table printed for people (the JSON
//! file is the same structure, serialized).

use super::probe::CommitProbe;
use super::provider::{ProviderProbe, Series};
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
    /// The rollout scenarios that ran after it, in order (`rollout`, `waves`).
    pub rollouts: Vec<RolloutFigures>,
    /// Server memory at the end (child process only).
    pub server_memory: Option<Memory>,
    /// Database files of the server at the end (child process only).
    pub database: Option<DatabaseSize>,
    /// The durable-commit probe on the disk of the data directory.
    pub commit_probe: CommitProbe,
    /// Workflow transitions per second as a fraction of the probe's commits per second.
    pub transitions_per_commit_rate: f64,
    /// The provider-call probe (in the bench's process).
    pub provider_probe: ProviderProbe,
}

/// Figures of one rollout scenario (`rollout` or `waves`).
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutFigures {
    /// `rollout` or `waves`.
    pub scenario: String,
    /// The profile version rolled out.
    pub profile_version: String,
    /// The template revision rolled out.
    pub revision: u64,
    /// Wave names, in order (empty: one wave).
    pub waves: Vec<String>,
    /// The rollout run.
    pub run: String,
    /// What `:upgrade` did (`started`, `signalled`, `queued`).
    pub scheduled: String,
    /// Seconds from the 202 of `:upgrade` to the template read `Applied` at the revision.
    pub seconds_to_applied: f64,
    /// Seconds from the 202 to the rollout run read as ended.
    pub seconds_to_run_ended: f64,
    /// Children that succeeded (the rollout's `counts.succeeded`).
    pub clusters_updated: u64,
    /// Children that failed.
    pub clusters_failed: u64,
    /// Clusters the fan-out skipped.
    pub clusters_skipped: u64,
    /// `clusters_updated / seconds_to_applied`.
    pub updates_per_second: f64,
    /// CPU time the server used from the 202 to `Applied`, all threads, readers' requests
    /// included (child process only).
    pub server_cpu_seconds: Option<f64>,
    /// Latency of the template GETs that watched for `Applied`.
    pub template_polls: Latency,
    /// The readers during the rollout.
    pub readers: super::rollout::ReadLoad,
    /// Single-object GET (a cluster) from the concurrent readers during the rollout.
    pub get_latency: Latency,
    /// List page (500 clusters) from the concurrent readers during the rollout.
    pub list_page_latency: Latency,
    /// Workflow transitions of the rollout run and its children.
    pub transitions: RolloutTransitions,
    /// `transitions.per_second` / the commit probe's commits per second.
    pub transitions_per_commit_rate: f64,
}

/// Transitions of a rollout: the run's own journal entries plus its children's.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RolloutTransitions {
    /// Journal entries of the rollout run itself (`journalSeq`).
    pub root_entries: u64,
    /// Child runs (one per updated cluster) in the rollout's timeline.
    pub children: u64,
    /// Child runs read (evenly spaced).
    pub sampled_children: u64,
    /// Mean journal entries per child in the sample.
    pub per_child: f64,
    /// `root_entries + per_child × children`.
    pub total: f64,
    /// `total / seconds_to_applied`.
    pub per_second: f64,
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

fn series(s: &Series) -> String {
    format!(
        "mean {:.2} µs; p50 {:.2} µs, p99 {:.2} µs",
        s.mean_us,
        s.latency.p50_ms * 1e3,
        s.latency.p99_ms * 1e3
    )
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
        let base: Vec<(&str, String)> = vec![
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
        let mut rows: Vec<(String, String)> =
            base.into_iter().map(|(k, v)| (k.to_owned(), v)).collect();
        for r in &self.rollouts {
            let t = &r.transitions;
            let row = |what: &str| format!("{}: {what}", r.scenario);
            rows.extend([
                (
                    row("revision"),
                    format!(
                        "{} ({} {}), run {} ({}){}",
                        r.revision,
                        super::rollout::PROFILE,
                        r.profile_version,
                        r.run,
                        r.scheduled,
                        if r.waves.is_empty() {
                            String::new()
                        } else {
                            format!(", waves {}", r.waves.join(" → "))
                        }
                    ),
                ),
                (
                    row("clusters updated"),
                    format!(
                        "{} ({} failed, {} skipped)",
                        r.clusters_updated, r.clusters_failed, r.clusters_skipped
                    ),
                ),
                (
                    row("202 to Applied"),
                    format!(
                        "{:.2} s (run ended after {:.2} s)",
                        r.seconds_to_applied, r.seconds_to_run_ended
                    ),
                ),
                (
                    row("cluster updates/s"),
                    format!("{:.1}", r.updates_per_second),
                ),
                (
                    row("server CPU"),
                    r.server_cpu_seconds.map_or_else(
                        || "not measured (remote server)".to_owned(),
                        |cpu| {
                            format!(
                                "{cpu:.1} s ({:.2} cores busy; {:.2} ms per cluster update)",
                                cpu / r.seconds_to_applied.max(f64::MIN_POSITIVE),
                                1000.0 * cpu / r.clusters_updated.max(1) as f64
                            )
                        },
                    ),
                ),
                (
                    row("transitions"),
                    format!(
                        "{:.0} ({} root + {:.1} per child × {} children, {} read)",
                        t.total, t.root_entries, t.per_child, t.children, t.sampled_children
                    ),
                ),
                (
                    row("transitions/s"),
                    format!(
                        "{:.1} ({:.2} × commits/s)",
                        t.per_second, r.transitions_per_commit_rate
                    ),
                ),
                (row("readers"), r.readers.describe()),
                (row("GET cluster latency"), latency(&r.get_latency)),
                (row("list page latency"), latency(&r.list_page_latency)),
                (row("template GET latency"), latency(&r.template_polls)),
            ]);
        }
        rows.push((
            "server memory".to_owned(),
            self.server_memory.map_or_else(
                || "not measured (remote server)".to_owned(),
                |m| format!("RSS {}, peak {}", mib(m.rss_bytes), mib(m.peak_rss_bytes)),
            ),
        ));
        rows.push((
            "database size".to_owned(),
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
            "durable commits/s (probe)".to_owned(),
            format!(
                "{:.1} ({} commits of {} B in {:.2} s)",
                p.commits_per_second, p.commits, p.bytes_per_commit, p.seconds
            ),
        ));
        rows.push((
            "transitions/s ÷ commits/s".to_owned(),
            format!("{:.2}", self.transitions_per_commit_rate),
        ));
        let pp = &self.provider_probe;
        rows.push((
            "provider install (simulator)".to_owned(),
            format!(
                "{:.1} ms (compile + link, no cache)",
                pp.simulator_install_ms
            ),
        ));
        rows.push((
            "provider call (simulator)".to_owned(),
            format!(
                "{} — validate-account, instantiation included ({} calls)",
                series(&pp.simulator_validate),
                pp.calls
            ),
        ));
        let ph = &pp.simulator_phases;
        let phase = |s: &fleetplane_server::wasm_host::PhaseStats| {
            format!(
                "{:.2} / {:.2} µs",
                s.p50.as_secs_f64() * 1e6,
                s.p99.as_secs_f64() * 1e6
            )
        };
        rows.push((
            "  phases p50 / p99".to_owned(),
            format!(
                "store {}, instantiate {}, round trip {}, teardown {} ({} allocator)",
                phase(&ph.store),
                phase(&ph.instantiate),
                phase(&ph.round_trip),
                phase(&ph.teardown),
                ph.allocator
            ),
        ));
        rows.push((
            "provider call (empty component)".to_owned(),
            pp.noop_validate.as_ref().map_or_else(
                || "not measured (test component not present)".to_owned(),
                series,
            ),
        ));
        rows.push((
            "native call (empty async fn)".to_owned(),
            series(&pp.native),
        ));
        rows.push((
            "simulator call ÷ native call".to_owned(),
            format!("{:.0}", pp.simulator_over_native),
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
