//! Rollout scenarios on a whole fleet in one process (`crate::fleet`, DESIGN §4.8, §5, §6):
//! template `web` with policy `weekly` (Sunday 00:00 for 4 h in each cluster's zone) and
//! clusters in Berlin, New York and Tokyo, the manual clock starting on Wednesday
//! 2026-03-04 10:00Z. The next Sunday 00:00 is 2026-03-07T15:00Z in Tokyo, 23:00Z in Berlin and
//! 2026-03-08T05:00Z in New York (still on standard time).
//!
//! Assertions are on runs, journals, cluster revisions and the template's `state` (the API's
//! own timestamps and `nextWindow` use the wall clock, not the manual one).

use crate::fleet::*;
use axum::http::{Method, StatusCode};
use jiff::{SignedDuration, Timestamp};
use serde_json::{Value, json};

const PASSWORD: &str = "correct horse battery";
const BERLIN: &str = "Europe/Berlin";
const NEW_YORK: &str = "America/New_York";
const TOKYO: &str = "Asia/Tokyo";
/// Sunday 00:00 in each zone, the first window after [`START`].
const TOKYO_SUNDAY: &str = "2026-03-07T15:00:00Z";
const BERLIN_SUNDAY: &str = "2026-03-07T23:00:00Z";
const NEW_YORK_SUNDAY: &str = "2026-03-08T05:00:00Z";

fn at(t: &str) -> Timestamp {
    t.parse().expect("RFC 3339")
}

fn mins(m: i64) -> SignedDuration {
    SignedDuration::from_mins(m)
}

fn values(greeting: &str) -> Value {
    json!({"aws-standard": {"greeting": greeting},
           "observability": {"grafana_admin_password": PASSWORD}})
}

/// Clusters `berlin`, `new-york` and `tokyo` on `account`, each labelled `zone: <name>`, deployed
/// and Running on revision 1.
async fn three_clusters(f: &mut Fleet, account: &str) {
    let mut runs = Vec::new();
    for (name, zone) in [("berlin", BERLIN), ("new-york", NEW_YORK), ("tokyo", TOKYO)] {
        let c = f
            .deploy(
                &ClusterDef::new(name, zone)
                    .account(account)
                    .labels(json!({"zone": name}))
                    .values(values(&format!("Hello {name}"))),
            )
            .await;
        runs.push(
            c["status"]["run"]
                .as_str()
                .expect("a deploy run")
                .to_owned(),
        );
    }
    for run in runs {
        let r = f.finish(&run, SignedDuration::from_hours(12)).await;
        assert_eq!(r["status"], "Succeeded", "{r}");
    }
    for name in ["berlin", "new-york", "tokyo"] {
        assert_eq!(f.get_cluster(name).await["status"]["revision"], 1, "{name}");
    }
}

/// A copy of aws-standard 1.0.0 as `version`, changed by `edit` (its `spec`).
async fn new_version(f: &Fleet, version: &str, edit: impl FnOnce(&mut Value)) {
    f.ok(
        Method::POST,
        &format!("{P}/profiles/aws-standard/versions"),
        Some(json!({"version": version, "from": "1.0.0"})),
    )
    .await;
    let path = format!("{P}/profiles/aws-standard/versions/{version}");
    let mut v = f.ok(Method::GET, &path, None).await;
    edit(&mut v["spec"]);
    f.ok(Method::PUT, &path, Some(v)).await;
}

/// Adds the required variable `team` to a version's spec, used by its add-on layer.
fn with_team(spec: &mut Value) {
    spec["variables"]
        .as_array_mut()
        .expect("variables")
        .push(json!({"name": "team", "displayName": "Team", "format": "string", "required": true}));
    let addon = spec["layers"]
        .as_array_mut()
        .expect("layers")
        .iter_mut()
        .find(|l| l["layer"] == "addon")
        .expect("an add-on layer");
    let values = addon["values"].as_str().expect("values").to_owned();
    addon["values"] = json!(format!("{values}team: \"{{{{ var.team }}}}\"\n"));
}

/// Sets the Kubernetes version of a version's `k8s` layer.
fn kubernetes(version: &'static str) -> impl FnOnce(&mut Value) {
    move |spec| {
        let k8s = spec["layers"]
            .as_array_mut()
            .expect("layers")
            .iter_mut()
            .find(|l| l["layer"] == "k8s")
            .expect("a k8s layer");
        k8s["version"] = json!(version);
    }
}

/// `GET` of template `web`.
async fn template(f: &Fleet) -> Value {
    f.ok(Method::GET, &format!("{P}/cluster-templates/web"), None)
        .await
}

/// Template `web` changed by `edit` (its `spec`), saved; the answer.
async fn save_template(f: &Fleet, edit: impl FnOnce(&mut Value)) -> crate::support::Reply {
    let mut t = template(f).await;
    edit(&mut t["spec"]);
    f.admin(Method::PUT, &format!("{P}/cluster-templates/web"), Some(t))
        .await
}

/// Points template `web` at aws-standard `version`; the template as read after the save (the
/// save's own answer is computed before the rollout is scheduled).
async fn link(f: &Fleet, version: &str) -> Value {
    let r = save_template(f, |s| s["profiles"][0]["version"] = json!(version)).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    template(f).await
}

fn state(t: &Value) -> &str {
    t["status"]["state"].as_str().unwrap_or_default()
}

/// The template's current rollout run.
fn rollout_run(t: &Value) -> String {
    t["status"]["rollout"]["run"]
        .as_str()
        .unwrap_or_else(|| panic!("no current rollout: {t:#}"))
        .to_owned()
}

async fn revision(f: &Fleet, name: &str) -> Value {
    f.get_cluster(name).await["status"]["revision"].clone()
}

/// `(name, revision)` of each cluster.
async fn revisions(f: &Fleet, names: &[&str]) -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for n in names {
        out.push(((*n).to_owned(), revision(f, n).await));
    }
    out
}

fn expect(pairs: &[(&str, u64)]) -> Vec<(String, Value)> {
    pairs
        .iter()
        .map(|(n, r)| ((*n).to_owned(), json!(r)))
        .collect()
}

/// When cluster `name` started each update (its `provider update-cluster requested` events).
async fn update_starts(f: &Fleet, name: &str) -> Vec<Timestamp> {
    f.events(name)
        .await
        .iter()
        .filter(|e| {
            e["reason"] == "UpdateStarted" && e["message"] == "provider update-cluster requested"
        })
        .map(|e| {
            e["time"]
                .as_str()
                .and_then(|t| t.parse().ok())
                .expect("an instant")
        })
        .collect()
}

/// How many updates cluster `name` started.
async fn updates(f: &Fleet, name: &str) -> usize {
    update_starts(f, name).await.len()
}

async fn upgrade(f: &Fleet, body: Value) -> crate::support::Reply {
    f.admin(
        Method::POST,
        &format!("{P}/cluster-templates/web:upgrade"),
        Some(body),
    )
    .await
}

const ALL: [&str; 3] = ["berlin", "new-york", "tokyo"];

#[tokio::test]
async fn the_seed_journey_waits_for_variables_then_for_sunday_in_each_zone() {
    let mut f = Fleet::ready().await;
    three_clusters(&mut f, SIM0).await;
    assert_eq!(state(&template(&f).await), "Applied");

    // 1.1.0 adds a required variable: the clusters cannot move until it is assigned.
    new_version(&f, "1.1.0", with_team).await;
    let t = link(&f, "1.1.0").await;
    assert_eq!(t["status"]["revision"], 2, "{t:#}");
    assert_eq!(t["status"]["clusters"]["pendingVariables"], 3, "{t:#}");
    assert_eq!(state(&t), "Pending", "{t:#}");
    let view = f
        .ok(
            Method::GET,
            &format!("{P}/cluster-templates/web/variables"),
            None,
        )
        .await;
    let team = view["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["variable"]["name"] == "team")
        .unwrap_or_else(|| panic!("{view:#}"));
    let rows: Vec<(&str, &str)> = team["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["cluster"].as_str().unwrap(),
                c["assignment"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        rows,
        [
            ("berlin", "Pending"),
            ("new-york", "Pending"),
            ("tokyo", "Pending")
        ]
    );

    // The revision's rollout skips every cluster: they have pending variables.
    let skipping = rollout_run(&t);
    let done = f.finish(&skipping, SignedDuration::from_hours(1)).await;
    assert_eq!(done["status"], "Succeeded", "{done:#}");
    assert_eq!(
        done["counts"],
        json!({"total": 3, "pending": 0, "running": 0, "succeeded": 0, "failed": 0, "skipped": 3}),
        "{done:#}"
    );
    assert_eq!(done["children"], 0, "{done:#}");
    assert_eq!(f.elapsed(), SignedDuration::ZERO);

    // Assign in batch: a new window-gated rollout.
    f.ok(
        Method::PATCH,
        &format!("{P}/cluster-templates/web/variables"),
        Some(json!({"assignments": [{"profile": "aws-standard", "variable": "team", "value": "shop"}]})),
    )
    .await;
    let t = template(&f).await;
    assert_eq!(t["status"]["clusters"]["pendingVariables"], 0, "{t:#}");
    let run = rollout_run(&t);
    assert_ne!(run, skipping);
    f.settle().await;
    assert_eq!(state(&template(&f).await), "Pending");

    // Nothing moves before Sunday 00:00 in Tokyo.
    f.advance_to(at(TOKYO_SUNDAY) - mins(1)).await;
    assert_eq!(
        revisions(&f, &ALL).await,
        expect(&[("berlin", 1), ("new-york", 1), ("tokyo", 1)])
    );
    f.advance_to(at(TOKYO_SUNDAY) + mins(30)).await;
    assert_eq!(
        revisions(&f, &ALL).await,
        expect(&[("berlin", 1), ("new-york", 1), ("tokyo", 2)])
    );
    assert_eq!(state(&template(&f).await), "PartiallyApplied");

    f.advance_to(at(BERLIN_SUNDAY) - mins(1)).await;
    assert_eq!(revision(&f, "berlin").await, 1);
    f.advance_to(at(BERLIN_SUNDAY) + mins(30)).await;
    assert_eq!(
        revisions(&f, &ALL).await,
        expect(&[("berlin", 2), ("new-york", 1), ("tokyo", 2)])
    );

    f.advance_to(at(NEW_YORK_SUNDAY) - mins(1)).await;
    assert_eq!(revision(&f, "new-york").await, 1);
    let r = f.finish(&run, SignedDuration::from_hours(2)).await;
    assert_eq!(r["status"], "Succeeded", "{r:#}");
    let t = template(&f).await;
    assert_eq!(state(&t), "Applied", "{t:#}");
    for name in ALL {
        let c = f.get_cluster(name).await;
        assert_eq!(c["status"]["revision"], 2, "{c:#}");
        assert_eq!(c["status"]["profiles"][0]["version"], "1.1.0", "{c:#}");
        assert_eq!(c["status"]["phase"], "Running", "{c:#}");
        assert_eq!(updates(&f, name).await, 1, "{name}");
    }
    f.assert_summary_current("web");
    insta::assert_snapshot!(f.journal_log(&run).await);
}

/// Deploys every cluster of `defs` and waits until each runs revision 1.
async fn fleet_of(f: &mut Fleet, defs: &[ClusterDef]) {
    let mut runs = Vec::new();
    for d in defs {
        let c = f.deploy(d).await;
        runs.push(
            c["status"]["run"]
                .as_str()
                .expect("a deploy run")
                .to_owned(),
        );
    }
    for run in runs {
        let r = f.finish(&run, SignedDuration::from_hours(12)).await;
        assert_eq!(r["status"], "Succeeded", "{r}");
    }
}

fn def(name: &str, zone: &str, labels: Value) -> ClusterDef {
    ClusterDef::new(name, zone)
        .labels(labels)
        .values(values(&format!("Hello {name}")))
}

/// The rollout history of template `web`, newest first.
/// Every cluster of rollout `run` from `…/rollouts/{run}/clusters`, `limit` per page.
async fn cluster_timeline(f: &Fleet, run: &str, limit: usize) -> Vec<Value> {
    let mut out = Vec::new();
    let mut url = format!("{P}/cluster-templates/web/rollouts/{run}/clusters?limit={limit}");
    loop {
        let page = f.ok(Method::GET, &url, None).await;
        let items = page["items"].as_array().cloned().unwrap_or_default();
        assert!(items.len() <= limit, "{page:#}");
        out.extend(items);
        match page["continue"].as_str() {
            Some(c) => {
                url = format!(
                    "{P}/cluster-templates/web/rollouts/{run}/clusters?limit={limit}&continue={c}"
                );
            }
            None => return out,
        }
    }
}

async fn history(f: &Fleet) -> Vec<Value> {
    f.ok(
        Method::GET,
        &format!("{P}/cluster-templates/web/rollouts"),
        None,
    )
    .await["items"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

#[tokio::test]
async fn revisions_saved_before_a_window_are_skipped_straight_to_the_newest() {
    let mut f = Fleet::ready().await;
    three_clusters(&mut f, SIM0).await;
    new_version(&f, "2.0.0", |_| {}).await;
    new_version(&f, "3.0.0", |_| {}).await;

    let t = link(&f, "2.0.0").await;
    let first = rollout_run(&t);
    f.settle().await;
    let t = link(&f, "3.0.0").await;
    assert_eq!(t["status"]["revision"], 3, "{t:#}");
    assert!(t["status"]["rollout"]["queued"].is_string(), "{t:#}");
    f.settle().await;
    let r = f.run(&first).await;
    assert_eq!(r["status"], "Cancelled", "{r:#}");
    let t = template(&f).await;
    let second = rollout_run(&t);
    assert_ne!(second, first);
    assert_eq!(t["status"]["rollout"]["revision"], 3, "{t:#}");
    assert_eq!(state(&t), "Pending", "{t:#}");
    // The cancelled rollout changed no cluster.
    assert_eq!(
        revisions(&f, &ALL).await,
        expect(&[("berlin", 1), ("new-york", 1), ("tokyo", 1)])
    );
    for name in ALL {
        assert_eq!(f.get_cluster(name).await["status"]["phase"], "Running");
    }

    let r = f.finish(&second, SignedDuration::from_hours(5 * 24)).await;
    assert_eq!(r["status"], "Succeeded", "{r:#}");
    assert_eq!(state(&template(&f).await), "Applied");
    for name in ALL {
        let c = f.get_cluster(name).await;
        assert_eq!(c["status"]["revision"], 3, "{c:#}");
        assert_eq!(c["status"]["profiles"][0]["version"], "3.0.0", "{c:#}");
        assert_eq!(updates(&f, name).await, 1, "{name} was updated once");
    }
    let h = history(&f).await;
    let outcomes: Vec<(&Value, &Value)> =
        h.iter().map(|i| (&i["revision"], &i["outcome"])).collect();
    assert_eq!(
        outcomes,
        [
            (&json!(3), &json!("Succeeded")),
            (&json!(2), &json!("Cancelled"))
        ],
        "{h:#?}"
    );
    // One rollout per page, newest first, with a token to the next.
    let rollouts = format!("{P}/cluster-templates/web/rollouts");
    let first = f
        .ok(Method::GET, &format!("{rollouts}?limit=1"), None)
        .await;
    assert_eq!(
        first["items"].as_array().map(Vec::len),
        Some(1),
        "{first:#}"
    );
    assert_eq!(first["items"][0]["run"], h[0]["run"]);
    let token = first["continue"].as_str().expect("a continue token");
    let second = f
        .ok(
            Method::GET,
            &format!("{rollouts}?limit=1&continue={token}"),
            None,
        )
        .await;
    assert_eq!(
        second["items"].as_array().map(Vec::len),
        Some(1),
        "{second:#}"
    );
    assert_eq!(second["items"][0]["run"], h[1]["run"], "{second:#}");
    assert!(second.get("continue").is_none(), "{second:#}");
}

#[tokio::test]
async fn a_revision_saved_while_clusters_update_waits_for_the_current_rollout() {
    let mut f = Fleet::ready().await;
    three_clusters(&mut f, SIMSLOW).await;
    new_version(&f, "2.0.0", |_| {}).await;
    new_version(&f, "3.0.0", |_| {}).await;
    link(&f, "2.0.0").await;
    let r = upgrade(&f, json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let now = r.body["run"].as_str().unwrap().to_owned();
    f.settle().await;
    let t = template(&f).await;
    assert_eq!(state(&t), "InProgress", "{t:#}");
    assert_eq!(rollout_run(&t), now);
    for name in ALL {
        assert_eq!(
            f.get_cluster(name).await["status"]["phase"],
            "Updating",
            "{name}"
        );
    }
    // Another Upgrade now is refused while clusters update.
    let r = upgrade(&f, json!({})).await;
    crate::support::assert_problem(&r, StatusCode::CONFLICT, "RolloutInProgress");

    // 3.0.0 is saved mid-rollout: it queues behind the running rollout.
    let t = link(&f, "3.0.0").await;
    assert_eq!(rollout_run(&t), now, "{t:#}");
    let queued = t["status"]["rollout"]["queued"]
        .as_str()
        .unwrap_or_else(|| panic!("nothing queued: {t:#}"))
        .to_owned();
    let r = f
        .admin(Method::GET, &format!("/v1/runs/{queued}"), None)
        .await;
    assert_eq!(
        r.status,
        StatusCode::NOT_FOUND,
        "not started yet: {}",
        r.body
    );

    let done = f.finish(&now, SignedDuration::from_hours(1)).await;
    assert_eq!(done["status"], "Succeeded", "{done:#}");
    assert_eq!(
        revisions(&f, &ALL).await,
        expect(&[("berlin", 2), ("new-york", 2), ("tokyo", 2)]),
        "the current rollout finished on revision 2"
    );
    // Then the queued one started, for revision 3, waiting for the windows.
    let t = template(&f).await;
    assert_eq!(rollout_run(&t), queued, "{t:#}");
    assert_eq!(t["status"]["rollout"]["revision"], 3, "{t:#}");
    assert_eq!(t["status"]["rollout"]["upgradeNow"], false, "{t:#}");
    let r = f.finish(&queued, SignedDuration::from_hours(5 * 24)).await;
    assert_eq!(r["status"], "Succeeded", "{r:#}");
    for name in ALL {
        let c = f.get_cluster(name).await;
        assert_eq!(c["status"]["revision"], 3, "{c:#}");
        let starts = update_starts(&f, name).await;
        assert_eq!(starts.len(), 2, "{name}: {starts:?}");
        assert!(starts[1] >= at(TOKYO_SUNDAY), "{name}: {starts:?}");
    }
    assert_eq!(state(&template(&f).await), "Applied");
}

#[tokio::test]
async fn a_window_closing_mid_rollout_leaves_it_partially_applied_until_the_next_window() {
    let mut f = Fleet::ready().await;
    // Updates take about 25 minutes here, one cluster at a time, all in Tokyo: the 4-hour
    // window cannot fit a dozen.
    f.account("glacial", 100.0).await;
    let names: Vec<String> = (1..=12).map(|i| format!("t{i:02}")).collect();
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let defs: Vec<ClusterDef> = names
        .iter()
        .map(|n| def(n, TOKYO, json!({})).account("glacial"))
        .collect();
    fleet_of(&mut f, &defs).await;
    let r = save_template(&f, |s| s["rollout"] = json!({"maxConcurrency": 1})).await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    new_version(&f, "2.0.0", |_| {}).await;
    let run = rollout_run(&link(&f, "2.0.0").await);

    let (open, close) = (
        at(TOKYO_SUNDAY),
        at(TOKYO_SUNDAY) + SignedDuration::from_hours(4),
    );
    f.advance_to(close).await;
    // The cluster that started last is still updating after the window closed.
    assert_eq!(state(&template(&f).await), "InProgress");
    f.advance_to(at("2026-03-08T12:00:00Z")).await;
    let mut done = Vec::new();
    for &n in &names {
        let starts = update_starts(&f, n).await;
        if revision(&f, n).await == 2 {
            assert_eq!(starts.len(), 1, "{n}");
            assert!(
                open <= starts[0] && starts[0] < close,
                "{n} started in the window: {starts:?}"
            );
            done.push(n);
        } else {
            assert!(
                starts.is_empty(),
                "{n} did not start after the window: {starts:?}"
            );
        }
    }
    assert!(!done.is_empty() && done.len() < names.len(), "{done:?}");
    let t = template(&f).await;
    assert_eq!(state(&t), "PartiallyApplied", "{t:#}");
    assert_eq!(t["status"]["clusters"]["upToDate"], done.len(), "{t:#}");

    // The next Sunday finishes it.
    let next = at(TOKYO_SUNDAY) + SignedDuration::from_hours(7 * 24);
    f.advance_to(next - mins(1)).await;
    assert_eq!(
        template(&f).await["status"]["clusters"]["upToDate"],
        done.len()
    );
    let r = f.finish(&run, SignedDuration::from_hours(12)).await;
    assert_eq!(r["status"], "Succeeded", "{r:#}");
    for n in names.iter().filter(|n| !done.contains(n)) {
        let starts = update_starts(&f, n).await;
        assert_eq!(starts.len(), 1, "{n}");
        assert!(
            next <= starts[0] && starts[0] < next + SignedDuration::from_hours(4),
            "{n}: {starts:?}"
        );
    }
    assert_eq!(state(&template(&f).await), "Applied");
}

#[tokio::test]
async fn an_exclusion_freezes_starts_in_the_zone_it_covers() {
    let mut f = Fleet::ready().await;
    three_clusters(&mut f, SIM0).await;
    // A freeze over Berlin's Sunday window (23:00Z–03:00Z), clear of Tokyo's and New York's.
    f.ok(
        Method::PUT,
        &format!("{P}/maintenance-policies/weekly"),
        Some(json!({"spec": {
            "schedules": [{"name": "sunday-night", "cron": "0 0 * * 0", "durationHours": 4}],
            "exclusions": [{"name": "berlin-freeze", "start": "2026-03-07T22:00:00Z",
                            "end": "2026-03-08T04:00:00Z"}]
        }})),
    )
    .await;
    new_version(&f, "2.0.0", |_| {}).await;
    let run = rollout_run(&link(&f, "2.0.0").await);
    f.advance_to(at("2026-03-08T12:00:00Z")).await;
    assert_eq!(
        revisions(&f, &ALL).await,
        expect(&[("berlin", 1), ("new-york", 2), ("tokyo", 2)])
    );
    assert_eq!(update_starts(&f, "berlin").await, []);
    assert_eq!(state(&template(&f).await), "PartiallyApplied");

    let next = at(BERLIN_SUNDAY) + SignedDuration::from_hours(7 * 24);
    let r = f.finish(&run, SignedDuration::from_hours(8 * 24)).await;
    assert_eq!(r["status"], "Succeeded", "{r:#}");
    assert_eq!(update_starts(&f, "berlin").await, [next]);
    assert_eq!(state(&template(&f).await), "Applied");
}

#[tokio::test]
async fn upgrade_now_of_some_clusters_moves_only_those_at_once() {
    let mut f = Fleet::ready().await;
    three_clusters(&mut f, SIM0).await;
    new_version(&f, "2.0.0", |_| {}).await;
    let gated = rollout_run(&link(&f, "2.0.0").await);
    f.settle().await;

    let r = upgrade(&f, json!({"clusters": ["berlin", "new-york"]})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    assert_eq!(r.body["clusters"], 2, "{}", r.body);
    f.settle().await;
    assert_eq!(f.elapsed(), SignedDuration::ZERO);
    assert_eq!(
        revisions(&f, &ALL).await,
        expect(&[("berlin", 2), ("new-york", 2), ("tokyo", 1)])
    );
    let now = r.body["run"].as_str().unwrap();
    assert_eq!(f.run(now).await["status"], "Succeeded");
    assert_eq!(f.run(&gated).await["status"], "Cancelled");
    let t = template(&f).await;
    assert_eq!(state(&t), "PartiallyApplied", "{t:#}");
    // What is left waits for its window.
    let rest = rollout_run(&t);
    assert!(rest != gated && rest != now, "{t:#}");
    assert_eq!(t["status"]["rollout"]["upgradeNow"], false, "{t:#}");
    f.advance_to(at(TOKYO_SUNDAY) - mins(1)).await;
    assert_eq!(revision(&f, "tokyo").await, 1);
    let r = f.finish(&rest, SignedDuration::from_hours(1)).await;
    assert_eq!(r["status"], "Succeeded", "{r:#}");
    assert_eq!(update_starts(&f, "tokyo").await, [at(TOKYO_SUNDAY)]);
    for name in ALL {
        assert_eq!(updates(&f, name).await, 1, "{name}");
    }
    assert_eq!(state(&template(&f).await), "Applied");
    f.assert_summary_current("web");
}

#[tokio::test]
async fn waves_run_in_order_with_their_soak() {
    let mut f = Fleet::ready().await;
    three_clusters(&mut f, SIM0).await;
    let r = save_template(&f, |s| {
        s["rollout"] = json!({"waves": [
            {"name": "first", "selector": {"matchLabels": {"zone": "tokyo"}}, "soakMinutes": 60},
            {"name": "second", "selector": {"matchLabels": {"zone": "berlin"}}, "soakMinutes": 30},
        ]});
    })
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    new_version(&f, "2.0.0", |_| {}).await;
    link(&f, "2.0.0").await;
    let r = upgrade(&f, json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let run = r.body["run"].as_str().unwrap().to_owned();
    f.settle().await;
    assert_eq!(
        revisions(&f, &ALL).await,
        expect(&[("berlin", 1), ("new-york", 1), ("tokyo", 2)])
    );
    f.advance(mins(59)).await;
    assert_eq!(revision(&f, "berlin").await, 1, "wave 1 soaks for an hour");
    f.advance(mins(2)).await;
    assert_eq!(
        revisions(&f, &ALL).await,
        expect(&[("berlin", 2), ("new-york", 1), ("tokyo", 2)])
    );
    let r = f.finish(&run, SignedDuration::from_hours(2)).await;
    assert_eq!(r["status"], "Succeeded", "{r:#}");
    let start = f.start;
    assert_eq!(update_starts(&f, "tokyo").await, [start]);
    assert_eq!(update_starts(&f, "berlin").await, [start + mins(60)]);
    assert_eq!(update_starts(&f, "new-york").await, [start + mins(90)]);
    insta::assert_snapshot!(f.journal_log(&run).await);
}

/// Clusters `berlin`, `new-york` and `tokyo` in wave `early` and `edge` (UTC), whose next update
/// fails, in the last wave.
async fn fleet_with_a_failing_cluster(f: &mut Fleet) {
    let early = json!({"ring": "early"});
    fleet_of(
        f,
        &[
            def("berlin", BERLIN, early.clone()),
            def("new-york", NEW_YORK, early.clone()),
            def("tokyo", TOKYO, early),
            def(
                "edge",
                "UTC",
                json!({"simulator.fleetplane.io/fail-next-update": "true"}),
            ),
        ],
    )
    .await;
}

#[tokio::test]
async fn a_failure_beyond_the_budget_pauses_and_resume_retries_it() {
    let mut f = Fleet::ready().await;
    fleet_with_a_failing_cluster(&mut f).await;
    let r = save_template(&f, |s| {
        // One at a time in the first wave, so the journal's order is the clusters' order.
        s["rollout"] = json!({"maxFailures": 0, "onFailure": "pause", "waves": [
            {"name": "early", "selector": {"matchLabels": {"ring": "early"}}, "maxConcurrency": 1}]});
    })
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    new_version(&f, "2.0.0", |_| {}).await;
    link(&f, "2.0.0").await;
    let r = upgrade(&f, json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let run = r.body["run"].as_str().unwrap().to_owned();
    f.advance(mins(30)).await;

    let t = template(&f).await;
    assert_eq!(state(&t), "Paused", "{t:#}");
    let paused = &t["status"]["rollout"]["paused"];
    assert_eq!(paused["by"], "engine", "{t:#}");
    let failed = paused["failed"]
        .as_array()
        .unwrap_or_else(|| panic!("{t:#}"));
    assert_eq!(failed.len(), 1, "{t:#}");
    assert_eq!(failed[0]["cluster"], "default/edge", "{t:#}");
    assert!(
        !failed[0]["error"].as_str().unwrap_or_default().is_empty(),
        "{t:#}"
    );
    assert_eq!(
        paused["onResume"], "retries 1 failed cluster, then continues the rollout",
        "{t:#}"
    );
    assert_eq!(f.get_cluster("edge").await["status"]["phase"], "Failed");
    assert_eq!(
        revisions(&f, &["berlin", "edge", "new-york", "tokyo"]).await,
        expect(&[("berlin", 2), ("edge", 1), ("new-york", 2), ("tokyo", 2)])
    );

    // The paused run shows its fan-out as numbers unless asked for every item.
    let summary = f.run(&run).await;
    let fanout = &summary["active"]["fanout"];
    assert_eq!(fanout["items"], json!({"count": 4}), "{summary:#}");
    let members: Vec<&Value> = fanout["waves"]
        .as_array()
        .unwrap_or_else(|| panic!("{summary:#}"))
        .iter()
        .map(|w| &w["members"])
        .collect();
    assert!(members.iter().all(|m| m.is_u64()), "{summary:#}");
    assert_eq!(
        summary["children"], 4,
        "3 succeeded and 1 failed: {summary:#}"
    );
    let full = f.run(&format!("{run}?view=full")).await;
    let items = full["active"]["fanout"]["items"]
        .as_array()
        .unwrap_or_else(|| panic!("{full:#}"));
    assert_eq!(items.len(), 4, "{full:#}");
    assert!(
        full["active"]["fanout"]["waves"][0]["members"].is_array(),
        "{full:#}"
    );
    let r = f
        .admin(
            Method::GET,
            &format!("/v1/runs/{run}?view=everything"),
            None,
        )
        .await;
    crate::support::assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(r.body["errors"][0]["field"], "view", "{:?}", r.body);

    let r = f
        .admin(
            Method::POST,
            &format!("{P}/cluster-templates/web:resume"),
            Some(json!({"reason": "fault cleared"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let done = f.finish(&run, SignedDuration::from_hours(1)).await;
    assert_eq!(done["status"], "Succeeded", "{done:#}");
    assert_eq!(revision(&f, "edge").await, 2);
    assert_eq!(
        updates(&f, "edge").await,
        2,
        "the failed update, then the retry"
    );
    assert_eq!(state(&template(&f).await), "Applied");
    insta::assert_snapshot!(f.journal_log(&run).await);
}

#[tokio::test]
async fn a_failure_with_on_failure_rollback_reverts_the_moved_clusters() {
    let mut f = Fleet::ready().await;
    fleet_with_a_failing_cluster(&mut f).await;
    let r = save_template(&f, |s| {
        s["rollout"] = json!({"onFailure": "rollback", "waves": [
            {"name": "early", "selector": {"matchLabels": {"ring": "early"}}}]});
    })
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    new_version(&f, "2.0.0", |_| {}).await;
    link(&f, "2.0.0").await;
    let r = upgrade(&f, json!({})).await;
    assert_eq!(r.status, StatusCode::ACCEPTED, "{}", r.body);
    let run = r.body["run"].as_str().unwrap().to_owned();
    let failed = f.finish(&run, SignedDuration::from_hours(1)).await;
    assert_eq!(failed["status"], "Failed", "{failed:#}");
    f.advance(mins(30)).await;

    // Revision 3 is revision 1's set, rolled out at once to the clusters that moved.
    let t = template(&f).await;
    assert_eq!(t["status"]["revision"], 3, "{t:#}");
    assert_eq!(t["spec"]["profiles"][0]["version"], "1.0.0", "{t:#}");
    let h = history(&f).await;
    let rollback = h
        .iter()
        .find(|i| i["reason"] == "rollback")
        .unwrap_or_else(|| panic!("no rollback rollout: {h:#?}"));
    assert_eq!(rollback["revision"], 3, "{h:#?}");
    assert_eq!(rollback["upgradeNow"], true, "{h:#?}");
    assert_eq!(
        rollback["clusters"],
        json!(["berlin", "new-york", "tokyo"]),
        "{h:#?}"
    );
    assert_eq!(rollback["outcome"], "Succeeded", "{h:#?}");
    for name in ALL {
        let c = f.get_cluster(name).await;
        assert_eq!(c["status"]["revision"], 3, "{c:#}");
        assert_eq!(c["status"]["profiles"][0]["version"], "1.0.0", "{c:#}");
        assert_eq!(updates(&f, name).await, 2, "{name}: forward, then back");
    }
    // The cluster that failed never moved: it still runs revision 1's set.
    let edge = f.get_cluster("edge").await;
    assert_eq!(edge["status"]["revision"], 1, "{edge:#}");
    assert_eq!(
        edge["status"]["profiles"][0]["version"], "1.0.0",
        "{edge:#}"
    );
    f.assert_summary_current("web");
}

#[tokio::test]
async fn a_kubernetes_minor_downgrade_is_refused() {
    let mut f = Fleet::ready().await;
    three_clusters(&mut f, SIM0).await;
    new_version(&f, "2.0.0", kubernetes("1.34.1")).await;
    let t = link(&f, "2.0.0").await;
    assert_eq!(t["status"]["revision"], 2, "{t:#}");
    let r = save_template(&f, |s| s["profiles"][0]["version"] = json!("1.0.0")).await;
    crate::support::assert_problem(&r, StatusCode::CONFLICT, "KubernetesDowngrade");
    let t = template(&f).await;
    assert_eq!(t["status"]["revision"], 2, "{t:#}");
    assert_eq!(t["spec"]["profiles"][0]["version"], "2.0.0", "{t:#}");
    // Nor can a rollback take it down.
    let r = f
        .admin(
            Method::POST,
            &format!("{P}/cluster-templates/web:rollback"),
            None,
        )
        .await;
    crate::support::assert_problem(&r, StatusCode::CONFLICT, "KubernetesDowngrade");
}

const CANARY: &str = include_str!("../../../../workflows/examples/canary.yaml");

#[tokio::test]
async fn the_canary_example_waits_for_its_approval_before_the_rest() {
    let mut f = Fleet::ready().await;
    fleet_of(
        &mut f,
        &[
            def("berlin", BERLIN, json!({})),
            def("new-york", NEW_YORK, json!({})),
            def("tokyo", TOKYO, json!({"ring": "canary"})),
        ],
    )
    .await;
    let r = f
        .put_raw(
            "/v1/workflows/canary/versions/1.0.0",
            "application/yaml",
            CANARY,
        )
        .await;
    assert!(r.status.is_success(), "{}", r.body);
    let r = save_template(&f, |s| {
        s["rollout"] = json!({"workflow": {"name": "canary", "version": "1.0.0"}});
    })
    .await;
    assert_eq!(r.status, StatusCode::OK, "{}", r.body);
    new_version(&f, "2.0.0", |_| {}).await;
    let run = rollout_run(&link(&f, "2.0.0").await);
    assert_eq!(f.run(&run).await["workflow"], "canary@1.0.0");

    // The canary updates in its window and soaks; then the run waits for a person.
    f.advance_to(at(TOKYO_SUNDAY) + mins(45)).await;
    assert_eq!(
        revisions(&f, &ALL).await,
        expect(&[("berlin", 1), ("new-york", 1), ("tokyo", 2)])
    );
    let r = f.run(&run).await;
    assert_eq!(r["waitingOn"], "signal", "the approval: {r:#}");
    assert!(
        r["approvals"].as_array().is_none_or(|a| a.is_empty()),
        "{r:#}"
    );
    // Berlin's window opens and passes: nothing moves without the approval.
    f.advance_to(at(BERLIN_SUNDAY) + mins(30)).await;
    assert_eq!(revision(&f, "berlin").await, 1);

    f.ok(
        Method::POST,
        &format!("{P}/runs/{run}:approve"),
        Some(json!({"name": "promote-canary", "reason": "canary is healthy"})),
    )
    .await;
    let r = f.finish(&run, SignedDuration::from_hours(12)).await;
    assert_eq!(r["status"], "Succeeded", "{r:#}");
    assert_eq!(
        update_starts(&f, "berlin").await,
        [at(BERLIN_SUNDAY) + mins(30)]
    );
    assert_eq!(update_starts(&f, "new-york").await, [at(NEW_YORK_SUNDAY)]);
    assert_eq!(state(&template(&f).await), "Applied");
    insta::assert_snapshot!(f.journal_log(&run).await);
}

#[tokio::test]
async fn a_rollout_says_why_it_skipped_clusters() {
    let mut f = Fleet::ready().await;
    three_clusters(&mut f, SIM0).await;
    new_version(&f, "1.1.0", with_team).await;
    let run = rollout_run(&link(&f, "1.1.0").await);
    let done = f.finish(&run, SignedDuration::from_hours(1)).await;
    assert_eq!(done["status"], "Succeeded", "{done:#}");
    let h = history(&f).await;
    let run_id = h[0]["run"].as_str().unwrap_or_default().to_owned();
    let timeline = cluster_timeline(&f, &run_id, 500).await;
    // Page by page, the same clusters in the same order.
    assert_eq!(cluster_timeline(&f, &run_id, 1).await, timeline, "{h:#?}");
    let skipped: Vec<(&str, &str)> = timeline
        .iter()
        .filter(|c| c["status"] == "Skipped")
        .map(|c| {
            (
                c["cluster"].as_str().unwrap_or_default(),
                c["reason"].as_str().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        skipped,
        [
            ("default/berlin", "pending variables"),
            ("default/new-york", "pending variables"),
            ("default/tokyo", "pending variables"),
        ],
        "{h:#?}"
    );

    // Counts inline, timelines apart; bad parameters name their field.
    let rollouts = format!("{P}/cluster-templates/web/rollouts");
    assert!(
        h[0]["counts"].is_object() && h[0].get("clusterTimeline").is_none(),
        "{h:#?}"
    );
    for (query, field) in [
        ("limit=0", "limit"),
        ("limit=ten", "limit"),
        ("continue=%%%", "continue"),
        ("offset=3", "offset"),
    ] {
        let r = f
            .admin(Method::GET, &format!("{rollouts}?{query}"), None)
            .await;
        crate::support::assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
        assert_eq!(r.body["errors"][0]["field"], field, "{query}: {:?}", r.body);
    }
    let r = f
        .admin(
            Method::GET,
            &format!("{rollouts}/{run_id}/clusters?continue=bm9wZQ"),
            None,
        )
        .await;
    crate::support::assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(r.body["errors"][0]["field"], "continue", "{:?}", r.body);
    let r = f
        .admin(Method::GET, &format!("{rollouts}/nope/clusters"), None)
        .await;
    assert_eq!(r.status, StatusCode::NOT_FOUND, "{:?}", r.body);
}
