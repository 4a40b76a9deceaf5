//! A fleet in one process for scenario tests: the API over a real redb file, the provider host
//! with the built-in simulator component (real wasmtime, real component) over a simulated cloud,
//! and the workflow runtime with the server's executors and lifecycle hook — all on one
//! [`ManualClock`] that starts at [`START`] (a Wednesday).
//!
//! Time moves only when a test says so, timer by timer ([`Fleet::advance_to`]): between two
//! timers nothing can happen, so a week with a poll every few seconds costs one runtime batch per
//! timer and nothing per idle minute.
//!
//! The simulated cloud reads the same clock as the runtime (the server gives each the system
//! clock), so at a non-zero `timeScale` provisioning progresses exactly as far as the runtime's
//! polls see it.

use crate::support::{ADMIN, Api, Reply};
use axum::http::{Method, StatusCode};
use fleetplane_api::cloud_accounts::{SecretCipher, host_account_name};
use fleetplane_api::clusters::{self, Stacks};
use fleetplane_api::effects::{ApiEffects, ClusterResolver};
use fleetplane_api::lifecycle::Lifecycle;
use fleetplane_api::providers::ProviderRegistry;
use fleetplane_runtime::{Clock as _, ManualClock, ProviderExecutor, Runtime, RuntimeConfig};
use fleetplane_store::ObjectKey;
use fleetplane_store::tables::kinds;
use fleetplane_wasm_host::types::{ClusterRef, ObservedState};
use fleetplane_wasm_host::{HostConfig, SimCloud, WasmHost};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

/// The instant every fleet starts at: Wednesday 2026-03-04 10:00 UTC.
pub(crate) const START: &str = "2026-03-04T10:00:00Z";
/// The project every helper works in.
pub(crate) const PROJECT: &str = "default";
/// Its API prefix.
pub(crate) const P: &str = "/v1/projects/default";
/// The account whose simulated cloud is instant (`timeScale` 0).
pub(crate) const SIM0: &str = "sim0";
/// The account whose simulated cloud takes real (simulated) time: `timeScale` 1.0, so
/// provisioning takes about 60 s and replacing a machine about 20 s of the manual clock.
pub(crate) const SIMSLOW: &str = "simslow";
/// `SIMSLOW`'s time scale.
pub(crate) const SLOW_SCALE: f64 = 1.0;
/// Timers a single `advance_to` may fire before the harness calls it a runaway.
const MAX_TIMERS: usize = 200_000;

/// The simulated cloud's view of the runtime's clock.
struct SimTime(Arc<ManualClock>);

impl fleetplane_wasm_host::Clock for SimTime {
    fn now_ms(&self) -> u64 {
        u64::try_from(self.0.now().as_millisecond()).unwrap_or(0)
    }
}

/// The fleet under test.
pub(crate) struct Fleet {
    pub(crate) api: Api,
    pub(crate) runtime: Runtime,
    pub(crate) clock: Arc<ManualClock>,
    /// The simulated cloud behind the simulator component (to read what it was asked to run).
    pub(crate) sim: Arc<SimCloud>,
    pub(crate) start: Timestamp,
    _dir: tempfile::TempDir,
}

/// A cluster to deploy from template `web` (builder; [`ClusterDef::body`] is the PUT body).
#[derive(Debug, Clone)]
pub(crate) struct ClusterDef {
    pub(crate) name: String,
    pub(crate) zone: String,
    pub(crate) account: String,
    pub(crate) template: String,
    pub(crate) labels: Value,
    pub(crate) values: Value,
    pub(crate) pools: Value,
}

impl ClusterDef {
    /// `name` in `zone` on [`SIM0`] from template `web`, one control-plane machine and two
    /// workers (`m5.large`), no labels, no values.
    pub(crate) fn new(name: &str, zone: &str) -> Self {
        Self {
            name: name.to_owned(),
            zone: zone.to_owned(),
            account: SIM0.to_owned(),
            template: "web".to_owned(),
            labels: json!({}),
            values: json!({}),
            pools: pools(&[
                ("cp", true, 1, "m5.large"),
                ("workers", false, 2, "m5.large"),
            ]),
        }
    }

    pub(crate) fn account(mut self, account: &str) -> Self {
        self.account = account.to_owned();
        self
    }

    pub(crate) fn labels(mut self, labels: Value) -> Self {
        self.labels = labels;
        self
    }

    /// `{"<profile>": {"<variable>": "<value>"}}`.
    pub(crate) fn values(mut self, values: Value) -> Self {
        self.values = values;
        self
    }

    pub(crate) fn pools(mut self, pools: Value) -> Self {
        self.pools = pools;
        self
    }

    pub(crate) fn body(&self) -> Value {
        json!({"spec": {
            "template": {"name": self.template},
            "cloudAccount": self.account,
            "timeZone": self.zone,
            "labels": self.labels,
            "variables": self.values,
            "nodePools": self.pools,
        }})
    }
}

/// Node pools from `(name, controlPlane, count, instanceType)`.
pub(crate) fn pools(p: &[(&str, bool, u32, &str)]) -> Value {
    Value::Array(
        p.iter()
            .map(|(name, cp, count, it)| {
                json!({"name": name, "controlPlane": cp, "count": count, "instanceType": it})
            })
            .collect(),
    )
}

fn fixture(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

impl Fleet {
    /// An empty fleet: bootstrap done, the simulator installed, the built-in workflows loaded,
    /// the clock at [`START`]; no accounts, profiles, policies or templates.
    pub(crate) async fn new() -> Self {
        let start: Timestamp = START.parse().expect("START is RFC 3339");
        let clock = Arc::new(ManualClock::new(start));
        let api = Api::new().await;
        let dir = tempfile::tempdir().expect("temp dir");
        let sim = Arc::new(
            SimCloud::open(
                &dir.path().join("simcloud.redb"),
                Arc::new(SimTime(clock.clone())),
            )
            .expect("simulated cloud"),
        );
        let host = WasmHost::new(
            HostConfig {
                // Compiled once for the whole test binary (wasmtime's cache is keyed by hash).
                cache_dir: Some(
                    std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("wasm-cache"),
                ),
                ..HostConfig::default()
            },
            Some(sim.clone()),
        )
        .expect("provider host");
        let registry = Arc::new(
            ProviderRegistry::new(
                host,
                dir.path().join("providers"),
                SecretCipher::from_key([5; 32]),
            )
            .expect("providers directory"),
        );
        registry
            .install_builtin()
            .await
            .expect("the built-in simulator installs");
        assert!(api.state.set_providers(registry.clone()));
        let executor = ProviderExecutor::new(
            Arc::new(registry.host().clone()),
            Arc::new(ClusterResolver::new(api.state.clone())),
            Arc::new(ApiEffects::new(api.state.clone())),
        );
        let runtime = Runtime::open(
            api.state.store.clone(),
            clock.clone(),
            Arc::new(executor),
            RuntimeConfig::default(),
        )
        .expect("runtime")
        .with_hook(Lifecycle::new(api.state.clone()));
        fleetplane_api::workflows::attach(&api.state, runtime.client())
            .await
            .expect("built-in workflows load");
        Self {
            api,
            runtime,
            clock,
            sim,
            start,
            _dir: dir,
        }
    }

    /// [`Fleet::new`] with [`Fleet::setup`] done.
    pub(crate) async fn ready() -> Self {
        let f = Self::new().await;
        f.setup().await;
        f
    }

    /// Profiles `aws-standard` 1.0.0 (project) and `observability` 1.0.0 (tenant), policy
    /// `weekly` (Sunday 00:00 for 4 h), template `web` (both profiles, `retention: 30d` for the
    /// whole fleet), accounts [`SIM0`] and [`SIMSLOW`].
    pub(crate) async fn setup(&self) {
        self.import_profiles().await;
        self.policy_weekly().await;
        self.template_web().await;
        self.account(SIM0, 0.0).await;
        self.account(SIMSLOW, SLOW_SCALE).await;
    }

    pub(crate) async fn import_profiles(&self) {
        self.ok(
            Method::POST,
            &format!("{P}/profiles:import"),
            Some(fixture("examples/profiles/aws-standard-1.0.0.json")),
        )
        .await;
        self.ok(
            Method::POST,
            "/v1/profiles:import",
            Some(fixture("examples/profiles/observability-1.0.0.json")),
        )
        .await;
    }

    pub(crate) async fn policy_weekly(&self) {
        self.ok(
            Method::PUT,
            &format!("{P}/maintenance-policies/weekly"),
            Some(json!({"spec": {"schedules": [
                {"name": "sunday-night", "cron": "0 0 * * 0", "durationHours": 4}
            ]}})),
        )
        .await;
    }

    pub(crate) async fn template_web(&self) {
        self.ok(
            Method::PUT,
            &format!("{P}/cluster-templates/web"),
            Some(json!({"spec": {
                "cloudType": "aws",
                "profiles": [
                    {"name": "aws-standard", "version": "1.0.0"},
                    {"name": "observability", "version": "1.0.0", "scope": "tenant",
                     "variables": [{"name": "retention", "value": "30d", "assignStrategy": "all"}]}
                ],
                "maintenancePolicy": {"name": "weekly"}
            }})),
        )
        .await;
    }

    /// A cloud account of the built-in simulator with `timeScale`.
    pub(crate) async fn account(&self, name: &str, time_scale: f64) {
        self.ok(
            Method::PUT,
            &format!("{P}/cloud-accounts/{name}"),
            Some(json!({"spec": {"provider": "simulator", "config": {"timeScale": time_scale}}})),
        )
        .await;
    }

    /// A call as the tenant admin.
    pub(crate) async fn admin(&self, method: Method, path: &str, body: Option<Value>) -> Reply {
        self.api.call(method, path, Some(ADMIN), body, &[]).await
    }

    /// A `PUT` as the tenant admin with a raw body of `content_type` (a YAML workflow).
    pub(crate) async fn put_raw(&self, path: &str, content_type: &str, body: &str) -> Reply {
        use axum::body::Body;
        use http_body_util::BodyExt;
        use tower::ServiceExt;
        let req = axum::http::Request::builder()
            .method(Method::PUT)
            .uri(path)
            .header("authorization", format!("Bearer {ADMIN}"))
            .header("content-type", content_type)
            .body(Body::from(body.to_owned()))
            .expect("a request");
        let res = fleetplane_api::router(self.api.state.clone())
            .oneshot(req)
            .await
            .expect("infallible");
        let status = res.status();
        let headers = res.headers().clone();
        let bytes = res.into_body().collect().await.expect("a body").to_bytes();
        Reply {
            status,
            headers,
            body: serde_json::from_slice(&bytes)
                .unwrap_or(Value::String(String::from_utf8_lossy(&bytes).into())),
        }
    }

    /// A call as the tenant admin that must succeed (2xx); its body.
    pub(crate) async fn ok(&self, method: Method, path: &str, body: Option<Value>) -> Value {
        let m = method.clone();
        let r = self.admin(method, path, body).await;
        assert!(r.status.is_success(), "{m} {path}: {} {}", r.status, r.body);
        r.body
    }

    /// Creates cluster `name` from template `web` on [`SIM0`] with `labels` and `values`; the
    /// created object (its deploy run is `status.run`). Nothing runs until the clock settles.
    pub(crate) async fn cluster(
        &self,
        name: &str,
        zone: &str,
        labels: Value,
        values: Value,
    ) -> Value {
        self.deploy(&ClusterDef::new(name, zone).labels(labels).values(values))
            .await
    }

    /// Creates the cluster `def` describes; the created object.
    pub(crate) async fn deploy(&self, def: &ClusterDef) -> Value {
        let r = self
            .admin(
                Method::PUT,
                &format!("{P}/clusters/{}", def.name),
                Some(def.body()),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{}: {}", def.name, r.body);
        r.body
    }

    /// `GET` of cluster `name`.
    pub(crate) async fn get_cluster(&self, name: &str) -> Value {
        self.ok(Method::GET, &format!("{P}/clusters/{name}"), None)
            .await
    }

    /// Cluster `name`'s events, oldest first.
    pub(crate) async fn events(&self, name: &str) -> Vec<Value> {
        let v = self
            .ok(
                Method::GET,
                &format!("{P}/clusters/{name}/events?limit=200"),
                None,
            )
            .await;
        let mut items = v["items"].as_array().cloned().unwrap_or_default();
        items.reverse();
        items
    }

    /// `GET` of run `id` (any project).
    pub(crate) async fn run(&self, id: &str) -> Value {
        self.ok(Method::GET, &format!("/v1/runs/{id}"), None).await
    }

    /// The stacks recorded for cluster `name` (what its provider calls carried).
    pub(crate) fn stacks(&self, name: &str) -> Stacks {
        let r = self.api.state.store.read().expect("read");
        clusters::read_stacks(&*r, &ObjectKey::project(PROJECT, kinds::CLUSTER, name))
            .expect("stacks")
    }

    /// Cluster `name`'s desired stack now, reusing `recorded` when it was rendered from the
    /// same inputs (what a provider call of the recording run sends).
    pub(crate) fn desired_reusing(
        &self,
        name: &str,
        recorded: &clusters::StackRecord,
    ) -> clusters::Desired {
        let r = self.api.state.store.read().expect("read");
        let key = ObjectKey::project(PROJECT, kinds::CLUSTER, name);
        let obj = clusters::load_key(&*r, &key)
            .expect("load")
            .expect("the cluster");
        clusters::desired_reusing(&*r, &key, &obj.spec, Some(recorded)).expect("desired")
    }

    /// Asserts that template `template`'s kept member summary equals a recount of its members.
    pub(crate) fn assert_summary_current(&self, template: &str) {
        let r = self.api.state.store.read().expect("read");
        let scope = fleetplane_store::Scope::Project(PROJECT.into());
        let kept = fleetplane_api::templates::read_summary(&*r, &scope, template).expect("read");
        let counted = fleetplane_api::templates::recounted(&*r, &scope, template).expect("count");
        assert!(kept.is_some(), "template {template} has no summary");
        assert_eq!(kept, counted, "template {template}");
    }

    /// What the simulated cloud says about cluster `name` of account `account` now.
    pub(crate) async fn observed(&self, account: &str, name: &str) -> ObservedState {
        let c = self.get_cluster(name).await;
        let id = c["metadata"]["uid"].as_str().expect("uid").to_owned();
        self.sim
            .describe(
                &host_account_name(PROJECT, account),
                &ClusterRef {
                    id,
                    name: name.to_owned(),
                    region: String::new(),
                },
            )
            .expect("the simulated cloud knows the cluster")
    }

    /// The clock.
    pub(crate) fn now(&self) -> Timestamp {
        self.clock.now()
    }

    /// Time since [`START`].
    pub(crate) fn elapsed(&self) -> SignedDuration {
        self.now().duration_since(self.start)
    }

    /// Applies everything ready at the current instant — inbox events, due timers, effects and
    /// their answers — until nothing is left; returns the next armed timer.
    pub(crate) async fn settle(&mut self) -> Option<Timestamp> {
        loop {
            let idle = self.runtime.run_until_idle().await.expect("runtime batch");
            if idle.applied == 0 && !self.runtime.busy() {
                return idle.next_timer;
            }
        }
    }

    /// Moves the clock to `t` timer by timer, settling at each one, so polls, retries and
    /// windows fire in order and at their instants; returns the next timer after `t`.
    pub(crate) async fn advance_to(&mut self, t: Timestamp) -> Option<Timestamp> {
        for _ in 0..MAX_TIMERS {
            match self.settle().await {
                Some(next) if next <= t => self.clock.set(next),
                _ => {
                    self.clock.set(t);
                    return self.settle().await;
                }
            }
        }
        panic!("more than {MAX_TIMERS} timers before {t}: a runaway loop?");
    }

    /// [`Fleet::advance_to`] now + `d`.
    pub(crate) async fn advance(&mut self, d: SignedDuration) -> Option<Timestamp> {
        let t = self.now().saturating_add(d).expect("in range");
        self.advance_to(t).await
    }

    /// Advances timer by timer until run `id` ends or `within` has passed; the run.
    pub(crate) async fn finish(&mut self, id: &str, within: SignedDuration) -> Value {
        let deadline = self.now().saturating_add(within).expect("in range");
        loop {
            let next = self.settle().await;
            let run = self.run(id).await;
            let terminal = matches!(
                run["status"].as_str(),
                Some("Succeeded" | "Failed" | "Cancelled")
            );
            match next {
                Some(t) if !terminal && t <= deadline => self.clock.set(t),
                _ => return run,
            }
        }
    }

    /// Run `id`'s journal as compact, deterministic text: one line per entry with the time
    /// since [`START`], the sequence number, the record type and its fields; run ids become
    /// `run#N` (the run itself `run#1`), other UUIDs `id#N`, simulated-cloud operation ids
    /// `op#N`, instants `T+<since start>`. A cycle of entries repeated three times or more (a
    /// poll loop) is printed once and then folded into one `⋮` line saying how often it
    /// repeated and until when.
    pub(crate) async fn journal_log(&self, id: &str) -> String {
        let mut names = Names::default();
        names.name(id, "run");
        let store = self.api.state.store.clone();
        let is_run = move |id: &str| {
            store
                .read()
                .ok()
                .and_then(|r| r.run(id).ok().flatten())
                .is_some()
        };
        let mut lines = Vec::new();
        let mut after = 0;
        loop {
            let page = self
                .ok(
                    Method::GET,
                    &format!("/v1/runs/{id}/journal?after={after}&limit=500"),
                    None,
                )
                .await;
            for e in page["items"].as_array().into_iter().flatten() {
                let at = e["at"]
                    .as_str()
                    .and_then(|s| s.parse::<Timestamp>().ok())
                    .map_or_else(|| "?".to_owned(), |t| since(self.start, t));
                let seq = e["seq"].as_u64().unwrap_or(0);
                let mut record = e["record"].clone();
                names.scrub(&mut record, self.start, &is_run);
                lines.push(Line::new(at, seq, &record));
            }
            match page["next"].as_u64() {
                Some(n) => after = n,
                None => break,
            }
        }
        fold(&lines)
    }
}

/// One rendered journal entry.
struct Line {
    at: String,
    seq: u64,
    text: String,
    /// The entry without what changes from one poll to the next (tokens, instants).
    shape: String,
}

impl Line {
    fn new(at: String, seq: u64, record: &Value) -> Self {
        let kind = record["type"].as_str().unwrap_or("?");
        let (mut text, mut shape) = (kind.to_owned(), kind.to_owned());
        if let Value::Object(fields) = record {
            for (k, v) in fields.iter().filter(|(k, _)| *k != "type") {
                let field = format!(" {k}={}", compact(v));
                text.push_str(&field);
                if !matches!(k.as_str(), "call" | "timer" | "at") {
                    shape.push_str(&field);
                }
            }
        }
        Self {
            at,
            seq,
            text,
            shape,
        }
    }
}

/// Prints `lines`, folding a cycle of up to 8 entries that repeats three times or more.
fn fold(lines: &[Line]) -> String {
    let mut out = String::new();
    let mut i = 0;
    while i < lines.len() {
        let cycle = (1..=8).find_map(|k| {
            let same = |r: usize| {
                i + (r + 1) * k <= lines.len()
                    && (0..k).all(|j| lines[i + r * k + j].shape == lines[i + j].shape)
            };
            let repeats = (1..).take_while(|r| same(*r)).count();
            (repeats >= 2).then_some((k, repeats))
        });
        let (k, repeats) = cycle.unwrap_or((1, 0));
        for l in &lines[i..i + k] {
            let _ = writeln!(out, "{:>12} {:>3} {}", l.at, l.seq, l.text);
        }
        if repeats > 0 {
            let (first, last) = (&lines[i + k], &lines[i + (repeats + 1) * k - 1]);
            let _ = writeln!(
                out,
                "{:>12} {:>3} ⋮ the {k} entries above {repeats} more times (seq {}–{}), until {}",
                "", "", first.seq, last.seq, last.at
            );
        }
        i += (repeats + 1) * k;
    }
    out
}

/// `+[Nd ]HH:MM:SS[.mmm]` from `start` to `t`.
pub(crate) fn since(start: Timestamp, t: Timestamp) -> String {
    let d = t.duration_since(start);
    let sign = if d.is_negative() { "-" } else { "+" };
    let ms = d.as_millis().unsigned_abs();
    let (days, rest) = (ms / 86_400_000, ms % 86_400_000);
    let (h, m, s, milli) = (
        rest / 3_600_000,
        rest / 60_000 % 60,
        rest / 1000 % 60,
        rest % 1000,
    );
    let mut out = sign.to_owned();
    if days > 0 {
        let _ = write!(out, "{days}d ");
    }
    let _ = write!(out, "{h:02}:{m:02}:{s:02}");
    if milli > 0 {
        let _ = write!(out, ".{milli:03}");
    }
    out
}

/// A scalar bare when it reads unambiguously, anything else as JSON.
fn compact(v: &Value) -> String {
    match v {
        Value::String(s)
            if !s.is_empty()
                && !s.contains(|c: char| c.is_whitespace() || c == '"' || c == '=') =>
        {
            s.clone()
        }
        other => other.to_string(),
    }
}

/// Stable names for the run-specific ids of a journal.
#[derive(Default)]
struct Names {
    map: HashMap<String, String>,
    counters: HashMap<&'static str, usize>,
}

impl Names {
    fn name(&mut self, id: &str, prefix: &'static str) -> String {
        if let Some(n) = self.map.get(id) {
            return n.clone();
        }
        let c = self.counters.entry(prefix).or_default();
        *c += 1;
        let n = format!("{prefix}#{c}");
        self.map.insert(id.to_owned(), n.clone());
        n
    }

    fn scrub(&mut self, v: &mut Value, start: Timestamp, is_run: &dyn Fn(&str) -> bool) {
        match v {
            Value::String(s) => *s = self.scrub_str(s, start, is_run),
            Value::Array(a) => a.iter_mut().for_each(|x| self.scrub(x, start, is_run)),
            Value::Object(o) => {
                let old = std::mem::take(o);
                let mut new = Map::new();
                for (k, mut x) in old {
                    self.scrub(&mut x, start, is_run);
                    new.insert(k, x);
                }
                *o = new;
            }
            _ => {}
        }
    }

    fn scrub_str(&mut self, s: &str, start: Timestamp, is_run: &dyn Fn(&str) -> bool) -> String {
        if s.len() >= 20
            && let Ok(t) = s.parse::<Timestamp>()
        {
            return format!("T{}", since(start, t));
        }
        let b = s.as_bytes();
        let mut out = String::new();
        let mut i = 0;
        while i < b.len() {
            if i + 36 <= b.len() && is_uuid(&b[i..i + 36]) {
                let id = &s[i..i + 36];
                let prefix = if is_run(id) { "run" } else { "id" };
                out.push_str(&self.name(id, prefix));
                i += 36;
            } else if s[i..].starts_with("simop-") {
                let end = b[i + 6..]
                    .iter()
                    .position(|c| !c.is_ascii_hexdigit())
                    .map_or(b.len(), |p| i + 6 + p);
                out.push_str(&self.name(&s[i..end], "op"));
                i = end;
            } else {
                let ch = s[i..].chars().next().unwrap_or(' ');
                out.push(ch);
                i += ch.len_utf8();
            }
        }
        out
    }
}

fn is_uuid(b: &[u8]) -> bool {
    b.iter().enumerate().all(|(i, c)| match i {
        8 | 13 | 18 | 23 => *c == b'-',
        _ => c.is_ascii_hexdigit(),
    })
}

#[test]
fn journal_text_is_stable() {
    let start: Timestamp = START.parse().unwrap();
    let mut n = Names::default();
    n.name("0195d3a8-7a6b-7000-8000-000000000001", "run");
    let runs = |id: &str| id == "0195d3a8-7a6b-7000-8000-000000000002";
    let mut v = json!({
        "type": "x",
        "key": "0195d3a8-7a6b-7000-8000-0000000000ff/0195d3a8-7a6b-7000-8000-000000000001",
        "child": "0195d3a8-7a6b-7000-8000-000000000002",
        "op": "simop-0a1b2c and simop-0a1b2c",
        "at": "2026-03-05T12:00:01.5Z",
        "nested": [{"again": "0195d3a8-7a6b-7000-8000-0000000000ff"}],
    });
    n.scrub(&mut v, start, &runs);
    assert_eq!(
        v,
        json!({
            "type": "x", "key": "id#1/run#1", "child": "run#2", "op": "op#1 and op#1",
            "at": "T+1d 02:00:01.500", "nested": [{"again": "id#1"}],
        })
    );
    assert_eq!(compact(&json!("a b")), "\"a b\"");
    assert_eq!(compact(&json!("ab")), "ab");
    assert_eq!(compact(&json!(3)), "3");
}

#[test]
fn a_repeated_poll_cycle_is_folded() {
    let at = |s: u64| format!("+00:00:{s:02}");
    let mut lines = vec![Line::new(
        at(0),
        1,
        &json!({"type": "stepStarted", "step": "s"}),
    )];
    let mut seq = 2;
    for i in 0..5u64 {
        for r in [
            json!({"type": "timerFired", "timer": i}),
            json!({"type": "providerCallResult", "call": i, "outcome": "in-progress"}),
        ] {
            lines.push(Line::new(at(i * 10), seq, &r));
            seq += 1;
        }
    }
    lines.push(Line::new(at(50), seq, &json!({"type": "runSucceeded"})));
    insta::assert_snapshot!(fold(&lines), @r"
    +00:00:00   1 stepStarted step=s
    +00:00:00   2 timerFired timer=0
    +00:00:00   3 providerCallResult call=0 outcome=in-progress
                  ⋮ the 2 entries above 4 more times (seq 4–11), until +00:00:40
    +00:00:50  12 runSucceeded
    ");
}

#[tokio::test]
async fn an_idle_week_passes_without_a_batch() {
    let mut f = Fleet::ready().await;
    let c = f
        .cluster(
            "idle",
            "UTC",
            json!({}),
            json!({"aws-standard": {"greeting": "hi"},
                   "observability": {"grafana_admin_password": "correct horse battery"}}),
        )
        .await;
    let run = c["status"]["run"].as_str().unwrap().to_owned();
    assert_eq!(f.settle().await, None, "an instant deploy leaves no timer");
    assert_eq!(f.run(&run).await["status"], "Succeeded");
    let commits = f.runtime.commits();
    let before = *commits.borrow();
    assert_eq!(f.advance(SignedDuration::from_hours(7 * 24)).await, None);
    assert_eq!(*commits.borrow(), before, "no timer, no batch");
    assert_eq!(since(f.start, f.now()), "+7d 00:00:00");
}
