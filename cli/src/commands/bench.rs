//! `fleetplane bench`: measures the product as users experience it at scale (docs/performance.md).
//!
//! Without `--endpoint` it starts this executable as a `fleetplane server` child process in a
//! fresh data directory, so the server's memory is its own and the numbers are those of the
//! binary users run; the bench's clients share the machine with it. Scenario `create` sets up the
//! example profiles, a policy, a template and an instant simulator account in a new project,
//! creates N clusters from the template with C concurrent clients, and waits (list pages) until
//! every one is Running. Scenarios `rollout` and `waves` then roll a new profile version out to
//! the fleet with Upgrade now (in one go, or in two label waves) while concurrent readers
//! measure API latency. A durable-commit probe on the same disk and a provider-call probe run
//! in this process before the server starts.

mod probe;
mod provider;
mod report;
mod rollout;
mod server;

use crate::args::GlobalArgs;
use crate::args::bench::{BenchArgs, Scenario};
use anyhow::Context as _;
use fleetplane_client::{Client, ClientConfig, ClientError, ListOptions, Precondition};
use report::{CreateFigures, DatabaseSize, Latency, Report, RolloutFigures, Transitions};
use serde_json::{Value, json};
use server::ChildServer;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// The example profiles the scenario imports (the same files as `examples/profiles`).
const EXAMPLE_PROFILES: [(&str, &str); 2] = [
    (
        "aws-standard-1.0.0.json",
        include_str!("../../../examples/profiles/aws-standard-1.0.0.json"),
    ),
    (
        "observability-1.0.0.json",
        include_str!("../../../examples/profiles/observability-1.0.0.json"),
    ),
];
/// Clusters per list page while waiting (the server's largest page).
const PAGE: u32 = 500;
/// Pause between two list scans while waiting for Running.
const SCAN_PAUSE: Duration = Duration::from_millis(250);
/// How long the wait may go without one more cluster reaching Running.
const STALL_DEADLINE: Duration = Duration::from_secs(300);
/// How often the wait tells how many clusters are running.
const PROGRESS_EVERY: Duration = Duration::from_secs(10);
/// Deploy runs read to count transitions.
const TRANSITION_SAMPLE: u32 = 200;

/// Runs the bench and prints its report.
///
/// # Errors
/// The server cannot be started or reached, a setup call or a cluster create fails, a cluster
/// fails or the clusters stop making progress, or the report cannot be written.
pub async fn run(global: &GlobalArgs, args: BenchArgs) -> anyhow::Result<()> {
    let project = format!(
        "bench-{}",
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or_default()
    );
    let (scenario, rollouts) = match args.scenario {
        Scenario::Create => ("create", Vec::new()),
        Scenario::Rollout => ("rollout", vec![rollout::Strategy::UpgradeNow]),
        Scenario::Waves => ("waves", vec![rollout::Strategy::Waves]),
        Scenario::All => (
            "all (create, rollout, waves)",
            vec![rollout::Strategy::UpgradeNow, rollout::Strategy::Waves],
        ),
    };
    if let (None, Some(d)) = (&global.endpoint, &args.data_dir) {
        server::check_fresh(d)?;
    }
    // The probe first, alone on the machine, on the disk of the data directory.
    let probe_dir = match &args.data_dir {
        Some(d) => {
            std::fs::create_dir_all(d).with_context(|| format!("cannot create {}", d.display()))?;
            d.clone()
        }
        None => std::env::temp_dir(),
    };
    let probe_path = probe_dir.join(format!("bench-commit-probe-{}.redb", std::process::id()));
    let commits = args.probe_commits;
    super::note(&format!(
        "probe: {commits} durable redb commits in {}",
        probe_dir.display()
    ));
    let commit_probe =
        tokio::task::spawn_blocking(move || probe::run(&probe_path, commits)).await??;
    super::note(&format!(
        "probe: {} provider calls of each kind (simulator, empty component, native)",
        args.probe_calls
    ));
    let provider_probe = provider::run(args.probe_calls).await?;

    let (server, endpoint, api_key) = match &global.endpoint {
        Some(endpoint) => {
            let key = args
                .api_key
                .clone()
                .context("--endpoint needs --api-key (or FLEETPLANE_API_KEY)")?;
            anyhow::ensure!(
                args.server_config.is_none(),
                "--server-config configures the server the bench starts; not with --endpoint"
            );
            (None, endpoint.clone(), key)
        }
        None => {
            super::note("starting `fleetplane server` (child process)");
            let s =
                ChildServer::start(args.data_dir.as_deref(), args.server_config.as_deref()).await?;
            let (url, key) = (s.base_url.clone(), s.api_key.clone());
            (Some(s), url, key)
        }
    };
    let target = match &server {
        Some(s) => format!(
            "child process `fleetplane server` (pid {}) at {}",
            s.pid().unwrap_or_default(),
            s.base_url
        ),
        None => endpoint.clone(),
    };
    let client = Client::new(
        ClientConfig::new(&endpoint)
            .api_key(api_key)
            .project(project.clone())
            .timeout(Duration::from_secs(120))
            .user_agent(concat!("fleetplane-bench/", env!("CARGO_PKG_VERSION"))),
    )?;
    let outcome = scenarios(
        &client,
        &project,
        &args,
        &rollouts,
        (commit_probe.commits_per_second, server.as_ref()),
    )
    .await;
    let (create, rollouts) = match outcome {
        Ok(c) => c,
        Err(e) => {
            if let Some(s) = &server {
                super::note(&format!("server log (end):\n{}", s.log_tail()));
            }
            return Err(e);
        }
    };
    let (server_memory, database) = match &server {
        Some(s) => (s.memory(), Some(database_size(&s.data_dir))),
        None => (None, None),
    };
    if let Some(s) = server {
        s.stop().await?;
    }
    let transitions_per_commit_rate =
        create.transitions.per_second / commit_probe.commits_per_second.max(f64::MIN_POSITIVE);
    let report = Report {
        version: env!("CARGO_PKG_VERSION").to_owned(),
        scenario: scenario.to_owned(),
        target,
        project,
        clusters: args.clusters,
        concurrency: args.concurrency,
        create,
        rollouts,
        server_memory,
        database,
        commit_probe,
        transitions_per_commit_rate,
        provider_probe,
    };
    if let Some(path) = &args.json {
        write_json(path, &report)?;
    }
    super::print(&report.table())
}

/// `create`, then each rollout scenario in order, each rolling out the next profile version.
async fn scenarios(
    client: &Client,
    project: &str,
    args: &BenchArgs,
    rollouts: &[rollout::Strategy],
    (commits_per_second, server): (f64, Option<&ChildServer>),
) -> anyhow::Result<(CreateFigures, Vec<RolloutFigures>)> {
    let create = create_scenario(client, project, args.clusters, args.concurrency).await?;
    let mut figures = Vec::new();
    for (i, strategy) in rollouts.iter().enumerate() {
        let (from, version) = (format!("1.{i}.0"), format!("1.{}.0", i + 1));
        figures.push(
            rollout::run(rollout::Plan {
                client,
                project,
                clusters: args.clusters,
                from: &from,
                version: &version,
                strategy: *strategy,
                load: rollout::ReadLoad {
                    readers: args.readers,
                    gets_per_second: args.get_rate,
                    pages_per_second: args.list_rate,
                },
                commits_per_second,
                server,
            })
            .await?,
        );
    }
    Ok((create, figures))
}

fn write_json(path: &Path, report: &Report) -> anyhow::Result<()> {
    let mut text = serde_json::to_string_pretty(report)?;
    text.push('\n');
    std::fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))
}

/// Sizes of the server's redb files in `data_dir`.
fn database_size(data_dir: &Path) -> DatabaseSize {
    let files: Vec<(String, u64)> = [
        fleetplane_server::DATABASE_FILE,
        fleetplane_server::SIMCLOUD_FILE,
    ]
    .iter()
    .filter_map(|name| {
        let len = std::fs::metadata(data_dir.join(name)).ok()?.len();
        Some(((*name).to_owned(), len))
    })
    .collect();
    let total_bytes = files.iter().map(|(_, b)| b).sum();
    DatabaseSize { files, total_bytes }
}

/// `/v1/projects/{project}{rest}`.
fn in_project(project: &str, rest: &str) -> String {
    format!(
        "/v1/projects/{}{rest}",
        fleetplane_client::encode_segment(project)
    )
}

/// The name of cluster `i` (sorted names follow creation order).
fn cluster_name(i: u32) -> String {
    format!("c{i:07}")
}

/// The project, the example profiles, policy `weekly`, template `web` and the instant
/// simulator account `sim0`.
async fn setup(client: &Client, project: &str) -> anyhow::Result<()> {
    let p = |rest: &str| in_project(project, rest);
    client
        .put(
            &format!(
                "/v1/projects/{}",
                fleetplane_client::encode_segment(project)
            ),
            &json!({"spec": {"displayName": "fleetplane bench"}}),
            &Precondition::Absent,
        )
        .await
        .with_context(|| format!("cannot create project {project}"))?;
    for (file, text) in EXAMPLE_PROFILES {
        let body: Value = serde_json::from_str(text).with_context(|| format!("example {file}"))?;
        client
            .post(&p("/profiles:import"), &body)
            .await
            .with_context(|| format!("cannot import {file}"))?;
    }
    let steps = [
        (
            "/maintenance-policies/weekly",
            // A window only on 29 February: no window opens during a bench, so a revision's
            // window-gated run waits and only Upgrade now moves clusters.
            json!({"spec": {"schedules": [
                {"name": "w", "cron": "0 0 29 2 *", "durationHours": 4}]}}),
        ),
        (
            "/cluster-templates/web",
            json!({"spec": {"cloudType": "aws",
                "profiles": [{"name": "aws-standard", "version": "1.0.0"},
                             {"name": "observability", "version": "1.0.0"}],
                "maintenancePolicy": {"name": "weekly"}}}),
        ),
        (
            "/cloud-accounts/sim0",
            json!({"spec": {"provider": "simulator", "simulator": {"timeScale": 0}}}),
        ),
    ];
    for (rest, body) in steps {
        client
            .put(&p(rest), &body, &Precondition::Absent)
            .await
            .with_context(|| format!("cannot create {}", rest.trim_start_matches('/')))?;
    }
    Ok(())
}

/// The body of the bench clusters in ring `ring` (label `ring`, which the waves select on).
fn cluster_body(ring: &str) -> Value {
    json!({"spec": {"template": {"name": "web"}, "cloudAccount": "sim0", "timeZone": "UTC",
        "labels": {rollout::RING_LABEL: ring},
        "variables": {"aws-standard": {"greeting": "Hello bench"},
                      "observability": {"grafana_admin_password": "a-long-s3cret-pass"}},
        "nodePools": [
            {"name": "cp", "controlPlane": true, "count": 1, "instanceType": "m5.large"},
            {"name": "workers", "count": 2, "instanceType": "m5.xlarge"}]}})
}

/// What one creating client did.
#[derive(Default)]
struct Worker {
    latencies: Vec<Duration>,
    rate_limited: u64,
}

/// Creates clusters `next..n` with one client until none are left; retries 429 answers after
/// their `Retry-After`.
async fn create_worker(
    client: Client,
    project: Arc<str>,
    next: Arc<AtomicU32>,
    n: u32,
    bodies: Arc<[Value; 2]>,
) -> anyhow::Result<Worker> {
    let mut w = Worker::default();
    loop {
        let i = next.fetch_add(1, Ordering::Relaxed);
        if i >= n {
            return Ok(w);
        }
        let path = in_project(&project, &format!("/clusters/{}", cluster_name(i)));
        let body = &bodies[usize::from(rollout::ring(i) == "b")];
        loop {
            let started = Instant::now();
            match client.put(&path, body, &Precondition::Absent).await {
                Ok(written) => {
                    w.latencies.push(started.elapsed());
                    anyhow::ensure!(written.created, "{path} existed already");
                    break;
                }
                Err(ClientError::Api {
                    status: 429,
                    retry_after,
                    ..
                }) => {
                    w.rate_limited += 1;
                    tokio::time::sleep(retry_after.unwrap_or(Duration::from_secs(1))).await;
                }
                Err(e) => return Err(anyhow::Error::from(e).context(format!("PUT {path}"))),
            }
        }
    }
}

/// One full scan of the project's clusters.
struct Scan {
    running: u64,
    failed: Vec<String>,
    pages: Vec<Duration>,
}

async fn scan(client: &Client, project: &str) -> anyhow::Result<Scan> {
    let path = in_project(project, "/clusters");
    let mut options = ListOptions {
        limit: Some(PAGE),
        ..ListOptions::default()
    };
    let mut s = Scan {
        running: 0,
        failed: Vec::new(),
        pages: Vec::new(),
    };
    loop {
        let started = Instant::now();
        let page = client
            .list(&path, &options)
            .await
            .context("cannot list clusters")?;
        s.pages.push(started.elapsed());
        for c in &page.items {
            let phase = c.pointer("/status/phase").and_then(Value::as_str);
            let idle = c.pointer("/status/run").is_none_or(Value::is_null);
            match phase {
                Some("Running") if idle => s.running += 1,
                Some("Failed") => s.failed.push(crate::output::field(c, "/metadata/name")),
                _ => {}
            }
        }
        match page.continue_token {
            Some(t) if Some(&t) != options.continue_token.as_ref() => {
                options.continue_token = Some(t);
            }
            _ => return Ok(s),
        }
    }
}

/// Mean journal entries of the deploy runs of up to [`TRANSITION_SAMPLE`] clusters, evenly
/// spaced; returns `(runs read, mean)`.
async fn sample_transitions(client: &Client, project: &str, n: u32) -> anyhow::Result<(u64, f64)> {
    let step = n.div_ceil(TRANSITION_SAMPLE).max(1);
    let (mut runs, mut entries) = (0u64, 0u64);
    for i in (0..n).step_by(step as usize) {
        let c = client
            .get(&in_project(
                project,
                &format!("/clusters/{}", cluster_name(i)),
            ))
            .await?;
        let Some(run) = c.pointer("/status/lastRun").and_then(Value::as_str) else {
            continue;
        };
        let r = client
            .get(&in_project(
                project,
                &format!("/runs/{}", fleetplane_client::encode_segment(run)),
            ))
            .await?;
        if let Some(seq) = r.get("journalSeq").and_then(Value::as_u64) {
            runs += 1;
            entries += seq;
        }
    }
    let mean = if runs == 0 {
        0.0
    } else {
        entries as f64 / runs as f64
    };
    Ok((runs, mean))
}

fn per_second(count: u64, seconds: f64) -> f64 {
    count as f64 / seconds.max(f64::MIN_POSITIVE)
}

/// The `create` scenario.
async fn create_scenario(
    client: &Client,
    project: &str,
    n: u32,
    concurrency: u16,
) -> anyhow::Result<CreateFigures> {
    super::note(&format!(
        "setup: project {project}, example profiles, policy, template, simulator account (timeScale 0)"
    ));
    setup(client, project).await?;
    super::note(&format!(
        "creating {n} clusters with {concurrency} concurrent clients"
    ));
    let next = Arc::new(AtomicU32::new(0));
    let bodies = Arc::new([cluster_body("a"), cluster_body("b")]);
    let shared_project: Arc<str> = Arc::from(project);
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..concurrency {
        tasks.spawn(create_worker(
            client.clone(),
            shared_project.clone(),
            next.clone(),
            n,
            bodies.clone(),
        ));
    }
    let mut latencies = Vec::with_capacity(n as usize);
    let mut rate_limited = 0;
    while let Some(done) = tasks.join_next().await {
        // The first failure ends the scenario (dropping the set aborts the other clients).
        let w = done.context("a creating client panicked")??;
        latencies.extend(w.latencies);
        rate_limited += w.rate_limited;
    }
    let seconds_to_all_created = started.elapsed().as_secs_f64();
    let created = latencies.len() as u64;
    super::note(&format!(
        "all {created} created in {seconds_to_all_created:.2} s; waiting until every one is Running"
    ));
    let (mut list_pages, mut list_scans) = (Vec::new(), 0u64);
    let (mut best, mut progressed) = (0u64, Instant::now());
    let mut told = Instant::now();
    let running = loop {
        let s = scan(client, project).await?;
        list_scans += 1;
        list_pages.extend(s.pages);
        if let Some(first) = s.failed.first() {
            anyhow::bail!(
                "{} clusters failed (first: {first}); see `fleetplane run get` of its lastRun",
                s.failed.len()
            );
        }
        if s.running >= u64::from(n) {
            break s.running;
        }
        if s.running > best {
            best = s.running;
            progressed = Instant::now();
        }
        if told.elapsed() >= PROGRESS_EVERY {
            told = Instant::now();
            super::note(&format!(
                "{} of {n} running after {:.0} s",
                s.running,
                started.elapsed().as_secs_f64()
            ));
        }
        anyhow::ensure!(
            progressed.elapsed() < STALL_DEADLINE,
            "no cluster reached Running for {}s ({best} of {n} running)",
            STALL_DEADLINE.as_secs()
        );
        tokio::time::sleep(SCAN_PAUSE).await;
    };
    let seconds_to_all_running = started.elapsed().as_secs_f64();
    super::note(&format!(
        "all {running} running after {seconds_to_all_running:.2} s; reading deploy runs"
    ));
    let (sampled_runs, per_run) = sample_transitions(client, project, n).await?;
    let total = per_run * running as f64;
    Ok(CreateFigures {
        created,
        running,
        seconds_to_all_created,
        seconds_to_all_running,
        created_per_second: per_second(created, seconds_to_all_created),
        running_per_second: per_second(running, seconds_to_all_running),
        put_latency: Latency::of(latencies),
        rate_limited,
        list_scans,
        list_page_latency: Latency::of(list_pages),
        transitions: Transitions {
            sampled_runs,
            per_run,
            total,
            per_second: total / seconds_to_all_running.max(f64::MIN_POSITIVE),
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cluster_names_sort_in_creation_order() {
        let names: Vec<String> = [0, 9, 10, 999_999].into_iter().map(cluster_name).collect();
        let mut sorted = names.clone();
        sorted.sort();
        assert_eq!(names, sorted);
        assert_eq!(cluster_name(42), "c0000042");
    }

    #[test]
    fn the_embedded_examples_are_profile_versions() {
        for (file, text) in EXAMPLE_PROFILES {
            let v: Value = serde_json::from_str(text).unwrap();
            assert!(v.is_object(), "{file}");
        }
    }

    #[test]
    fn database_size_sums_the_redb_files_only() {
        let dir = std::env::temp_dir().join(format!("fp-bench-db-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join(fleetplane_server::DATABASE_FILE), [0u8; 10]).unwrap();
        std::fs::write(dir.join("other.log"), [0u8; 99]).unwrap();
        let d = database_size(&dir);
        assert_eq!(d.total_bytes, 10);
        assert_eq!(
            d.files,
            vec![(fleetplane_server::DATABASE_FILE.to_owned(), 10)]
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
