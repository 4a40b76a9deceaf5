//! The rollout scenarios: after `create`, a new version of the template's full profile with an
//! add-on values change (no new variable), linked to template `web`, rolled out with Upgrade now
//! and no concurrency limit — in one go (`rollout`) or in two label waves (`waves`) — while
//! concurrent readers measure a single-object GET and a list page.

use super::report::{Latency, RolloutFigures, RolloutTransitions};
use super::{PAGE, STALL_DEADLINE, cluster_name, in_project, per_second};
use anyhow::Context as _;
use fleetplane_client::{Client, ListOptions, Precondition};
use serde::Serialize;
use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

/// The profile whose versions the rollouts move (the template's full profile).
pub const PROFILE: &str = "aws-standard";
/// The template the bench's clusters are created from.
pub const TEMPLATE: &str = "web";
/// The label that splits the fleet into the two waves, and its values.
pub const RING_LABEL: &str = "ring";
/// Pause between two reads of the template while waiting for `Applied`.
const POLL_PAUSE: Duration = Duration::from_millis(200);
/// Child runs read to count transitions.
const CHILD_SAMPLE: usize = 200;
/// How long the rollout run may take to end once the template is `Applied`.
const END_DEADLINE: Duration = Duration::from_secs(120);

/// How the revision rolls out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// Upgrade now, no `spec.rollout` (no concurrency limit, one wave).
    UpgradeNow,
    /// Upgrade now with two waves, `ring=a` then `ring=b`, soak 0, no concurrency limit.
    Waves,
}

impl Strategy {
    /// The scenario's name in the report.
    pub fn name(self) -> &'static str {
        match self {
            Strategy::UpgradeNow => "rollout",
            Strategy::Waves => "waves",
        }
    }

    /// `spec.rollout` of the template for this strategy.
    fn spec(self) -> Option<Value> {
        match self {
            Strategy::UpgradeNow => None,
            Strategy::Waves => Some(json!({"waves": [
                {"name": "ring-a", "selector": {"matchLabels": {RING_LABEL: "a"}}, "soakMinutes": 0},
                {"name": "ring-b", "selector": {"matchLabels": {RING_LABEL: "b"}}, "soakMinutes": 0},
            ]})),
        }
    }
}

/// The `ring` label of cluster `i`: half the fleet each.
pub fn ring(i: u32) -> &'static str {
    if i.is_multiple_of(2) { "a" } else { "b" }
}

/// The top-level values key the bench sets to the version it makes.
const VALUES_KEY: &str = "fleetplaneBench";

/// `values` with the top-level key [`VALUES_KEY`] set to `version` (an add-on values change
/// that needs no variable); an earlier bench version's line is replaced.
fn changed_values(values: &str, version: &str) -> String {
    let mut out: String = values
        .lines()
        .filter(|l| !l.starts_with(&format!("{VALUES_KEY}:")))
        .flat_map(|l| [l, "\n"])
        .collect();
    out.push_str(&format!("{VALUES_KEY}: \"{version}\"\n"));
    out
}

/// Creates version `version` of [`PROFILE`] from `from` with a changed add-on layer.
async fn new_version(
    client: &Client,
    project: &str,
    from: &str,
    version: &str,
) -> anyhow::Result<()> {
    let versions = in_project(project, &format!("/profiles/{PROFILE}/versions"));
    client
        .post(&versions, &json!({"version": version, "from": from}))
        .await
        .with_context(|| format!("cannot create {PROFILE} {version} from {from}"))?;
    let path = format!("{versions}/{version}");
    let mut v = client
        .get(&path)
        .await
        .context("cannot read the new version")?;
    let layer = v
        .pointer_mut("/spec/layers")
        .and_then(Value::as_array_mut)
        .and_then(|layers| layers.iter_mut().rev().find(|l| l["layer"] == "addon"))
        .with_context(|| format!("{PROFILE} {from} has no add-on layer to change"))?;
    let values = layer["values"].as_str().unwrap_or_default().to_owned();
    layer["values"] = json!(changed_values(&values, version));
    client
        .put(&path, &v, &Precondition::None)
        .await
        .with_context(|| format!("cannot change the add-on values of {PROFILE} {version}"))?;
    Ok(())
}

/// Points the template at `version` with `strategy`'s `spec.rollout`; returns the new revision.
async fn link(
    client: &Client,
    project: &str,
    version: &str,
    strategy: Strategy,
) -> anyhow::Result<u64> {
    let path = in_project(project, &format!("/cluster-templates/{TEMPLATE}"));
    let mut t = client
        .get(&path)
        .await
        .context("cannot read the template")?;
    let linked = t
        .pointer_mut("/spec/profiles")
        .and_then(Value::as_array_mut)
        .and_then(|p| p.iter_mut().find(|p| p["name"] == PROFILE))
        .with_context(|| format!("template {TEMPLATE} does not link {PROFILE}"))?;
    linked["version"] = json!(version);
    match strategy.spec() {
        Some(rollout) => t["spec"]["rollout"] = rollout,
        None => {
            if let Some(spec) = t["spec"].as_object_mut() {
                spec.remove("rollout");
            }
        }
    }
    let written = client
        .put(&path, &t, &Precondition::None)
        .await
        .with_context(|| format!("cannot point template {TEMPLATE} at {PROFILE} {version}"))?;
    written
        .object
        .pointer("/status/revision")
        .and_then(Value::as_u64)
        .context("the saved template has no status.revision")
}

/// The readers a rollout runs alongside: how many of each kind and, per kind, whether they
/// wait for a schedule.
#[derive(Debug, Clone, Copy, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ReadLoad {
    /// Readers of each kind (single-object GET, list page).
    pub readers: u16,
    /// GETs per second across the GET readers (open loop); `None`: closed loop.
    pub gets_per_second: Option<u32>,
    /// List pages per second across the list readers (open loop); `None`: closed loop.
    pub pages_per_second: Option<u32>,
}

impl ReadLoad {
    /// One reader's pause between scheduled requests when its kind has a rate.
    fn pace(self, rate: Option<u32>) -> Option<Duration> {
        rate.map(|r| Duration::from_secs_f64(f64::from(self.readers) / f64::from(r.max(1))))
    }

    /// How the report names it, e.g. `2 GET readers at 200/s, 2 list readers closed loop`.
    pub fn describe(self) -> String {
        let kind = |what: &str, rate: Option<u32>| match rate {
            Some(r) => format!("{} {what} readers at {r}/s (open loop)", self.readers),
            None => format!("{} {what} readers (closed loop)", self.readers),
        };
        format!(
            "{}, {}",
            kind("GET", self.gets_per_second),
            kind("list", self.pages_per_second)
        )
    }
}

/// When a reader sends its requests. Closed loop: each as soon as the previous answered, its
/// latency timed from the send. Open loop: on a fixed schedule, its latency timed from the
/// *scheduled* instant, so a server that stalls is charged for every request it held up, not
/// only the one in flight (a closed-loop reader stops asking while it waits, which hides the
/// stall: "coordinated omission").
struct Schedule {
    pace: Option<Duration>,
    due: Instant,
}

impl Schedule {
    fn new(pace: Option<Duration>, offset: Duration) -> Self {
        Self {
            pace,
            due: Instant::now() + offset,
        }
    }

    /// Waits for the next request's turn; returns the instant its latency counts from.
    async fn next(&mut self) -> Instant {
        let Some(pace) = self.pace else {
            return Instant::now();
        };
        tokio::time::sleep_until(self.due.into()).await;
        let at = self.due;
        self.due += pace;
        at
    }
}

/// Readers running until told to stop; each makes at least one request.
struct Readers {
    stop: Arc<AtomicBool>,
    gets: tokio::task::JoinSet<anyhow::Result<Vec<Duration>>>,
    lists: tokio::task::JoinSet<anyhow::Result<Vec<Duration>>>,
}

impl Readers {
    fn start(client: &Client, project: &str, n: u32, load: ReadLoad) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let (mut gets, mut lists) = (tokio::task::JoinSet::new(), tokio::task::JoinSet::new());
        let (get_pace, list_pace) = (
            load.pace(load.gets_per_second),
            load.pace(load.pages_per_second),
        );
        for k in 0..u32::from(load.readers) {
            // Open-loop readers of a kind start a fraction of the pace apart, so the kind's
            // requests are spread evenly rather than sent in bursts.
            let offset = |pace: Option<Duration>| {
                pace.map_or(Duration::ZERO, |p| p * k / u32::from(load.readers))
            };
            gets.spawn(get_reader(
                client.clone(),
                project.to_owned(),
                n,
                k,
                Schedule::new(get_pace, offset(get_pace)),
                stop.clone(),
            ));
            lists.spawn(list_reader(
                client.clone(),
                project.to_owned(),
                Schedule::new(list_pace, offset(list_pace)),
                stop.clone(),
            ));
        }
        Self { stop, gets, lists }
    }

    /// Stops the readers; returns (GET latency, list page latency).
    async fn finish(self) -> anyhow::Result<(Latency, Latency)> {
        self.stop.store(true, Ordering::Relaxed);
        let collect = |mut set: tokio::task::JoinSet<anyhow::Result<Vec<Duration>>>| async move {
            let mut all = Vec::new();
            while let Some(done) = set.join_next().await {
                all.extend(done.context("a reader panicked")??);
            }
            anyhow::Ok(Latency::of(all))
        };
        Ok((collect(self.gets).await?, collect(self.lists).await?))
    }
}

/// GETs clusters spread over the fleet (a stride prime to most fleet sizes).
async fn get_reader(
    client: Client,
    project: String,
    n: u32,
    start: u32,
    mut schedule: Schedule,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Vec<Duration>> {
    let mut samples = Vec::new();
    let mut i = u64::from(start) * 7_919;
    loop {
        let name = cluster_name((i % u64::from(n.max(1))) as u32);
        let path = in_project(&project, &format!("/clusters/{name}"));
        let t = schedule.next().await;
        client
            .get(&path)
            .await
            .with_context(|| format!("GET {path}"))?;
        samples.push(t.elapsed());
        i = i.wrapping_add(7_919);
        if stop.load(Ordering::Relaxed) {
            return Ok(samples);
        }
    }
}

/// Walks the cluster list in pages of [`PAGE`], starting over at the end.
async fn list_reader(
    client: Client,
    project: String,
    mut schedule: Schedule,
    stop: Arc<AtomicBool>,
) -> anyhow::Result<Vec<Duration>> {
    let path = in_project(&project, "/clusters");
    let mut samples = Vec::new();
    let mut options = ListOptions {
        limit: Some(PAGE),
        ..ListOptions::default()
    };
    loop {
        let t = schedule.next().await;
        let page = client
            .list(&path, &options)
            .await
            .context("list clusters")?;
        samples.push(t.elapsed());
        options.continue_token = page
            .continue_token
            .filter(|t| Some(t) != options.continue_token.as_ref());
        if stop.load(Ordering::Relaxed) {
            return Ok(samples);
        }
    }
}

fn terminal(status: Option<&str>) -> bool {
    matches!(status, Some("Succeeded" | "Failed" | "Cancelled"))
}

/// Mean `journalSeq` of up to [`CHILD_SAMPLE`] of `runs`, evenly spaced; `(read, mean)`.
async fn sample_children(
    client: &Client,
    project: &str,
    runs: &[String],
) -> anyhow::Result<(u64, f64)> {
    let step = runs.len().div_ceil(CHILD_SAMPLE).max(1);
    let (mut read, mut entries) = (0u64, 0u64);
    for id in runs.iter().step_by(step) {
        let r = client
            .get(&in_project(
                project,
                &format!("/runs/{}", fleetplane_client::encode_segment(id)),
            ))
            .await?;
        if let Some(seq) = r.get("journalSeq").and_then(Value::as_u64) {
            read += 1;
            entries += seq;
        }
    }
    let mean = if read == 0 {
        0.0
    } else {
        entries as f64 / read as f64
    };
    Ok((read, mean))
}

/// What one rollout scenario needs.
pub struct Plan<'a> {
    /// The bench's client (project-scoped paths are built explicitly).
    pub client: &'a Client,
    /// The bench's project.
    pub project: &'a str,
    /// Clusters in the fleet.
    pub clusters: u32,
    /// The version the fleet runs.
    pub from: &'a str,
    /// The version to make and roll out.
    pub version: &'a str,
    /// Upgrade now in one go or in waves.
    pub strategy: Strategy,
    /// The readers while the rollout runs.
    pub load: ReadLoad,
    /// The durable-commit probe's rate, for the fraction.
    pub commits_per_second: f64,
    /// The server the bench started (its CPU time is read), if it started one.
    pub server: Option<&'a super::server::ChildServer>,
}

/// Runs one rollout scenario.
///
/// # Errors
/// A call fails, the rollout pauses or fails, a cluster fails, or no cluster moves to the
/// revision for [`STALL_DEADLINE`].
pub async fn run(p: Plan<'_>) -> anyhow::Result<RolloutFigures> {
    let (client, project, n) = (p.client, p.project, p.clusters);
    let name = p.strategy.name();
    super::super::note(&format!(
        "{name}: {PROFILE} {} with a changed add-on layer, linked to template {TEMPLATE}",
        p.version
    ));
    new_version(client, project, p.from, p.version).await?;
    let revision = link(client, project, p.version, p.strategy).await?;
    let template = in_project(project, &format!("/cluster-templates/{TEMPLATE}"));
    super::super::note(&format!(
        "{name}: Upgrade now of revision {revision} to {n} clusters, {}",
        p.load.describe()
    ));
    let answer = client
        .post(&format!("{template}:upgrade"), &json!({}))
        .await
        .context("POST :upgrade")?;
    let started = Instant::now();
    let cpu_before = p.server.and_then(super::server::ChildServer::cpu_time);
    let readers = Readers::start(client, project, n, p.load);
    let run = answer["run"]
        .as_str()
        .context("the :upgrade answer names no run")?
        .to_owned();
    let scheduled = answer["scheduled"].as_str().unwrap_or_default().to_owned();
    let mut polls = Vec::new();
    let (mut best, mut progressed) = (0u64, Instant::now());
    let outcome: anyhow::Result<()> = async {
        loop {
            let t0 = Instant::now();
            let t = client.get(&template).await.context("GET the template")?;
            polls.push(t0.elapsed());
            let state = t.pointer("/status/state").and_then(Value::as_str);
            let at = t.pointer("/status/revision").and_then(Value::as_u64);
            if at == Some(revision) && state == Some("Applied") {
                return Ok(());
            }
            anyhow::ensure!(
                !matches!(state, Some("Paused" | "Failed")),
                "the rollout stopped ({}): {:#}",
                state.unwrap_or_default(),
                t["status"]
            );
            let up = t
                .pointer("/status/clusters/upToDate")
                .and_then(Value::as_u64)
                .unwrap_or(0);
            if up > best {
                (best, progressed) = (up, Instant::now());
            }
            anyhow::ensure!(
                progressed.elapsed() < STALL_DEADLINE,
                "no cluster reached revision {revision} for {}s ({best} of {n}): {:#}",
                STALL_DEADLINE.as_secs(),
                t["status"]
            );
            tokio::time::sleep(POLL_PAUSE).await;
        }
    }
    .await;
    let seconds_to_applied = started.elapsed().as_secs_f64();
    let server_cpu_seconds = p
        .server
        .and_then(super::server::ChildServer::cpu_time)
        .zip(cpu_before)
        .map(|(after, before)| after.saturating_sub(before).as_secs_f64());
    let read_outcome = readers.finish().await;
    outcome?;
    let (get_latency, list_page_latency) = read_outcome?;
    super::super::note(&format!(
        "{name}: Applied after {seconds_to_applied:.2} s; reading the rollout run and its children"
    ));
    let run_path = in_project(
        project,
        &format!("/runs/{}", fleetplane_client::encode_segment(&run)),
    );
    let ended = Instant::now();
    let root = loop {
        let r = client.get(&run_path).await.context("GET the rollout run")?;
        if terminal(r["status"].as_str()) {
            break r;
        }
        anyhow::ensure!(
            ended.elapsed() < END_DEADLINE,
            "the template is Applied but rollout run {run} has not ended: {}",
            r["status"]
        );
        tokio::time::sleep(POLL_PAUSE).await;
    };
    let seconds_to_run_ended = started.elapsed().as_secs_f64();
    anyhow::ensure!(
        root["status"] == "Succeeded",
        "rollout run {run} ended {}: {:#}",
        root["status"],
        root["error"]
    );
    let history = client
        .get(&format!("{template}/rollouts"))
        .await
        .context("GET the rollout history")?;
    let item = history["items"]
        .as_array()
        .and_then(|items| items.iter().find(|i| i["run"] == run.as_str()))
        .with_context(|| format!("rollout run {run} is not in the template's history"))?;
    let count = |k: &str| item["counts"][k].as_u64().unwrap_or(0);
    // The per-cluster timeline is its own paginated resource.
    let mut children: Vec<String> = Vec::new();
    let mut url = format!("{template}/rollouts/{run}/clusters?limit=500");
    loop {
        let page = client
            .get(&url)
            .await
            .context("GET the rollout's clusters")?;
        children.extend(
            page["items"]
                .as_array()
                .into_iter()
                .flatten()
                .filter_map(|e| e["run"].as_str().map(str::to_owned)),
        );
        match page["continue"].as_str() {
            Some(c) => url = format!("{template}/rollouts/{run}/clusters?limit=500&continue={c}"),
            None => break,
        }
    }
    let (sampled_children, per_child) = sample_children(client, project, &children).await?;
    let root_entries = root["journalSeq"].as_u64().unwrap_or(0);
    let total = root_entries as f64 + per_child * children.len() as f64;
    let transitions_per_second = total / seconds_to_applied.max(f64::MIN_POSITIVE);
    let updated = count("succeeded");
    Ok(RolloutFigures {
        scenario: name.to_owned(),
        profile_version: p.version.to_owned(),
        revision,
        waves: match p.strategy {
            Strategy::UpgradeNow => Vec::new(),
            Strategy::Waves => vec!["ring-a".to_owned(), "ring-b".to_owned()],
        },
        run,
        scheduled,
        seconds_to_applied,
        seconds_to_run_ended,
        clusters_updated: updated,
        clusters_failed: count("failed"),
        clusters_skipped: count("skipped"),
        updates_per_second: per_second(updated, seconds_to_applied),
        server_cpu_seconds,
        template_polls: Latency::of(polls),
        readers: p.load,
        get_latency,
        list_page_latency,
        transitions: RolloutTransitions {
            root_entries,
            children: children.len() as u64,
            sampled_children,
            per_child,
            total,
            per_second: transitions_per_second,
        },
        transitions_per_commit_rate: transitions_per_second
            / p.commits_per_second.max(f64::MIN_POSITIVE),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_values_change_appends_one_key_on_its_own_line() {
        let cases = [
            ("", "fleetplaneBench: \"1.1.0\"\n"),
            ("a: 1\n", "a: 1\nfleetplaneBench: \"1.1.0\"\n"),
            ("a: 1", "a: 1\nfleetplaneBench: \"1.1.0\"\n"),
            (
                "a: 1\nfleetplaneBench: \"1.0.9\"\nb: 2\n",
                "a: 1\nb: 2\nfleetplaneBench: \"1.1.0\"\n",
            ),
        ];
        for (values, want) in cases {
            assert_eq!(changed_values(values, "1.1.0"), want, "{values:?}");
        }
    }

    #[test]
    fn rings_split_the_fleet_in_halves() {
        let a = (0..1_000).filter(|&i| ring(i) == "a").count();
        assert_eq!(a, 500);
        assert_ne!(ring(0), ring(1));
    }

    #[test]
    fn only_waves_sets_a_rollout_strategy_and_it_has_no_limit() {
        assert_eq!(Strategy::UpgradeNow.spec(), None);
        let w = Strategy::Waves.spec().unwrap();
        let waves = w["waves"].as_array().unwrap();
        assert_eq!(waves.len(), 2);
        assert!(w.get("maxConcurrency").is_none());
        for (wave, value) in waves.iter().zip(["a", "b"]) {
            assert_eq!(wave["selector"]["matchLabels"][RING_LABEL], value);
            assert_eq!(wave["soakMinutes"], 0);
            assert!(wave.get("maxConcurrency").is_none());
        }
    }
    #[tokio::test]
    async fn an_open_loop_schedule_counts_from_the_planned_send_not_the_late_one() {
        let pace = Duration::from_millis(5);
        let mut s = Schedule::new(Some(pace), Duration::ZERO);
        let first = s.next().await;
        // The caller is held up for four paces: the next sends were due meanwhile, and their
        // latency starts when they were due.
        tokio::time::sleep(pace * 4).await;
        let second = s.next().await;
        let third = s.next().await;
        assert_eq!(second - first, pace);
        assert_eq!(third - first, pace * 2);
        assert!(third.elapsed() >= pace * 2, "the held-up time is charged");
    }

    #[tokio::test]
    async fn a_closed_loop_schedule_counts_from_the_send() {
        let mut s = Schedule::new(None, Duration::ZERO);
        let before = Instant::now();
        tokio::time::sleep(Duration::from_millis(2)).await;
        let at = s.next().await;
        assert!(at >= before + Duration::from_millis(2));
    }

    #[test]
    fn read_loads_share_the_rate_between_readers_and_say_how() {
        let load = ReadLoad {
            readers: 2,
            gets_per_second: Some(200),
            pages_per_second: None,
        };
        assert_eq!(
            load.pace(load.gets_per_second),
            Some(Duration::from_millis(10))
        );
        assert_eq!(load.pace(load.pages_per_second), None);
        assert_eq!(
            load.describe(),
            "2 GET readers at 200/s (open loop), 2 list readers (closed loop)"
        );
    }
}
