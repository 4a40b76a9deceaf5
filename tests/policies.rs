//! End-to-end tests of `fleetplane policy` against a real server process: create from schedules
//! and from presets, list and get in every output format, tenant and project scope, windows in
//! time zones (local midnight, across daylight saving), errors with field paths, delete.

mod support;

use serde_json::{Value, json};
use support::{ADMIN_KEY, CliRun, Server};

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|i| {
            i["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

fn yaml(run: &CliRun) -> Value {
    serde_saphyr::from_str(run.ok()).unwrap_or_else(|e| panic!("not YAML ({e}): {}", run.stdout))
}

#[track_caller]
fn assert_has(text: &str, part: &str) {
    assert!(text.contains(part), "{part:?} is not in:\n{text}");
}

const WEEKLY: &str = "name=weekly,cron=0 0 * * 0,hours=4";
const MIDWEEK: &str = "name=midweek,cron=0 2 * * 1,3,hours=2";
const XMAS: &str = "name=xmas,start=2026-12-24T00:00:00Z,end=2026-12-27T00:00:00Z";

#[tokio::test]
async fn policies_are_created_listed_shown_and_deleted() {
    let server = Server::start().await;
    let admin = |args: &[&str]| server.cli(Some(ADMIN_KEY), args);

    let created = admin(&[
        "policy",
        "create",
        "ops",
        "--schedule",
        WEEKLY,
        "--schedule",
        MIDWEEK,
        "--exclusion",
        XMAS,
        "--label",
        "team=ops",
        "--description",
        "ops windows",
        "-o",
        "json",
    ]);
    assert_has(&created.stderr, "maintenance policy \"ops\" created");
    let ops = created.json();
    assert_eq!(
        ops["spec"]["schedules"],
        json!([
            {"name": "weekly", "cron": "0 0 * * 0", "durationHours": 4},
            {"name": "midweek", "cron": "0 2 * * 1,3", "durationHours": 2}
        ])
    );
    assert_eq!(
        ops["spec"]["exclusions"],
        json!([{"name": "xmas", "start": "2026-12-24T00:00:00Z", "end": "2026-12-27T00:00:00Z"}])
    );
    assert_eq!(ops["metadata"]["labels"], json!({"team": "ops"}));
    assert_eq!(ops["metadata"]["description"], "ops windows");
    assert!(ops["metadata"].get("project").is_none(), "{ops}");
    assert_eq!(
        ops["status"]["nextWindows"].as_array().map(Vec::len),
        Some(3)
    );

    // A preset's spec is the server's, unchanged.
    let presets = server.get("/v1/maintenance-policies:presets").await.json();
    let sunday = admin(&[
        "policy",
        "create",
        "sunday",
        "--preset",
        "weekly-sunday-midnight",
        "-o",
        "yaml",
    ]);
    let sunday = yaml(&sunday);
    assert_eq!(sunday["spec"], presets["items"][1]["spec"]);
    assert_eq!(sunday["spec"]["schedules"][0]["cron"], "0 0 * * 0");

    let unknown = admin(&["policy", "create", "x", "--preset", "hourly"]);
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert_has(&unknown.stderr, "there is no preset \"hourly\"");
    assert_has(
        &unknown.stderr,
        "daily, weekly-sunday-midnight, monthly, bimonthly",
    );
    let again = admin(&["policy", "create", "ops", "--schedule", WEEKLY]);
    assert_eq!(again.code, 1, "a second create must not replace: {again:?}");
    assert_has(&again.stderr, "already exists");

    // Table: name, schedules (cron and hours), exclusions, next window (the server's).
    let table = admin(&["policy", "list"]);
    let lines: Vec<&str> = table.ok().lines().collect();
    assert_eq!(lines.len(), 3, "{}", table.stdout);
    for header in ["NAME", "SCHEDULES", "EXCLUSIONS", "NEXT WINDOW (UTC)"] {
        assert_has(lines[0], header);
    }
    let next = &ops["status"]["nextWindows"][0];
    let ops_row = lines
        .iter()
        .find(|l| l.starts_with("ops "))
        .unwrap_or_else(|| panic!("no ops row:\n{}", table.stdout));
    assert_has(ops_row, "0 0 * * 0 (4h); 0 2 * * 1,3 (2h)");
    assert_has(
        ops_row,
        &format!(
            "{} to {}",
            next["start"].as_str().unwrap(),
            next["end"].as_str().unwrap()
        ),
    );
    assert!(lines.iter().any(|l| l.starts_with("sunday ")), "{lines:?}");

    let listed = admin(&["policy", "list", "-o", "json"]).json();
    assert_eq!(names(&listed), ["ops", "sunday"]);
    assert_eq!(yaml(&admin(&["policy", "ls", "-o", "yaml"])), listed);
    let selected = admin(&["policy", "list", "-l", "team=ops", "-o", "json"]).json();
    assert_eq!(names(&selected), ["ops"]);

    let got = admin(&["policy", "get", "ops", "-o", "json"]).json();
    assert_eq!(got["spec"], ops["spec"]);
    assert_eq!(got["kind"], "MaintenancePolicy");
    assert_eq!(
        yaml(&admin(&["policy", "get", "ops", "-o", "yaml"]))["spec"],
        ops["spec"]
    );
    let row = admin(&["policy", "get", "sunday"]);
    assert_eq!(row.ok().lines().count(), 2, "{}", row.stdout);
    assert_has(row.ok(), "0 0 * * 0 (4h)");

    let deleted = admin(&["policy", "delete", "ops"]);
    assert_has(&deleted.stderr, "maintenance policy \"ops\" deleted");
    assert!(deleted.ok().is_empty());
    let gone = admin(&["policy", "get", "ops"]);
    assert_eq!(gone.code, 1, "{gone:?}");
    assert_has(&gone.stderr, "NotFound (HTTP 404)");
    assert!(
        admin(&["policy", "rm", "sunday", "-o", "json"])
            .ok()
            .is_empty()
    );
    assert_eq!(
        names(&admin(&["policy", "list", "-o", "json"]).json()),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn only_an_explicit_project_scopes_policies() {
    let server = Server::start().await;
    let admin = |args: &[&str]| server.cli(Some(ADMIN_KEY), args);
    admin(&["policy", "create", "shared", "--preset", "daily"]).ok();
    let local = admin(&[
        "policy", "create", "local", "--preset", "monthly", "-p", "default", "-o", "json",
    ])
    .json();
    assert_eq!(local["metadata"]["project"], "default");
    assert_eq!(
        names(&admin(&["policy", "list", "-p", "default", "-o", "json"]).json()),
        ["local"]
    );
    assert_eq!(
        names(&admin(&["policy", "list", "-o", "json"]).json()),
        ["shared"]
    );
    let env = [
        ("FLEETPLANE_ENDPOINT".to_owned(), server.base_url.clone()),
        ("FLEETPLANE_API_KEY".to_owned(), ADMIN_KEY.to_owned()),
        ("FLEETPLANE_PROJECT".to_owned(), "default".to_owned()),
    ];
    let by_env = server.cli_with(&["policy", "get", "local", "-o", "json"], &env, None);
    assert_eq!(by_env.json()["metadata"]["project"], "default");
    let wrong_scope = admin(&["policy", "get", "local"]);
    assert_eq!(wrong_scope.code, 1, "{wrong_scope:?}");
    assert_has(&wrong_scope.stderr, "NotFound");
    let no_project = admin(&["policy", "list", "-p", "nope"]);
    assert_eq!(no_project.code, 1, "{no_project:?}");

    // The config file's project is a default for project-only kinds, not for policies.
    let config = server.client_config_path();
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "project = \"default\"\n").unwrap();
    let tenant = admin(&["policy", "list", "-o", "json"]);
    assert_eq!(names(&tenant.json()), ["shared"]);
    assert_has(&tenant.stderr, "note: tenant scope");
    assert_has(&tenant.stderr, "\"default\"");

    admin(&["policy", "delete", "local", "-p", "default"]).ok();
    assert_eq!(
        names(&admin(&["policy", "list", "-p", "default", "-o", "json"]).json()),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn windows_open_at_local_midnight_in_each_zone() {
    let server = Server::start().await;
    let admin = |args: &[&str]| server.cli(Some(ADMIN_KEY), args);
    admin(&["policy", "create", "weekly", "--schedule", WEEKLY]).ok();
    admin(&[
        "policy",
        "create",
        "weekly",
        "-p",
        "default",
        "--preset",
        "weekly-sunday-midnight",
    ])
    .ok();
    let windows = |scope: &[&str], zone: &str, after: &str, count: &str| -> Value {
        let mut args = vec![
            "policy", "windows", "weekly", "--zone", zone, "--after", after, "--count", count,
            "-o", "json",
        ];
        args.extend_from_slice(scope);
        admin(&args).json()
    };
    let starts = |doc: &Value, key: &str| -> Vec<String> {
        doc["windows"]
            .as_array()
            .unwrap_or_else(|| panic!("no windows: {doc}"))
            .iter()
            .map(|w| w[key].as_str().unwrap_or_default().to_owned())
            .collect()
    };

    // Sunday 2026-11-22 00:00 is 23:00 UTC the day before in Berlin (UTC+1), 05:00 UTC in
    // New York (UTC-5).
    let berlin = windows(&[], "Europe/Berlin", "2026-11-21T12:00:00Z", "2");
    assert_eq!(berlin["zone"], "Europe/Berlin");
    assert_eq!(
        starts(&berlin, "start"),
        ["2026-11-21T23:00:00Z", "2026-11-28T23:00:00Z"]
    );
    assert_eq!(berlin["windows"][0]["end"], "2026-11-22T03:00:00Z");
    assert!(
        berlin["windows"][0]["localStart"]
            .as_str()
            .is_some_and(|s| s.starts_with("2026-11-22T00:00:00+01:00")),
        "{berlin}"
    );
    let new_york = windows(&[], "America/New_York", "2026-11-21T12:00:00Z", "1");
    assert_eq!(starts(&new_york, "start"), ["2026-11-22T05:00:00Z"]);
    assert!(
        new_york["windows"][0]["localStart"]
            .as_str()
            .is_some_and(|s| s.starts_with("2026-11-22T00:00:00-05:00")),
        "{new_york}"
    );

    // Across the spring change the window stays at local midnight, so its UTC time moves:
    // New York switches on 2026-03-08, Berlin on 2026-03-29.
    let ny_spring = windows(&[], "America/New_York", "2026-03-01T12:00:00Z", "3");
    assert_eq!(
        starts(&ny_spring, "start"),
        [
            "2026-03-08T05:00:00Z",
            "2026-03-15T04:00:00Z",
            "2026-03-22T04:00:00Z"
        ]
    );
    let berlin_spring = windows(
        &["-p", "default"],
        "Europe/Berlin",
        "2026-03-22T12:00:00Z",
        "2",
    );
    assert_eq!(
        starts(&berlin_spring, "start"),
        ["2026-03-28T23:00:00Z", "2026-04-04T22:00:00Z"]
    );
    for doc in [&ny_spring, &berlin_spring] {
        for local in starts(doc, "localStart") {
            assert_eq!(local.get(10..19), Some("T00:00:00"), "{doc}");
        }
    }

    // The table shows local and UTC bounds; YAML is the server's document.
    let table = admin(&[
        "policy",
        "windows",
        "weekly",
        "-z",
        "Europe/Berlin",
        "-n",
        "2",
        "--after",
        "2026-11-21T12:00:00Z",
    ]);
    let lines: Vec<&str> = table.ok().lines().collect();
    assert_eq!(lines.len(), 3, "{}", table.stdout);
    assert!(lines[0].starts_with("LOCAL START"), "{}", lines[0]);
    assert!(
        lines[1].starts_with("2026-11-22T00:00:00+01:00   2026-11-22T04:00:00+01:00"),
        "{}",
        lines[1]
    );
    assert_has(lines[1], "2026-11-21T23:00:00Z");
    let y = admin(&[
        "policy",
        "windows",
        "weekly",
        "--zone",
        "Europe/Berlin",
        "--count",
        "2",
        "--after",
        "2026-11-21T12:00:00Z",
        "-o",
        "yaml",
    ]);
    assert_eq!(yaml(&y), berlin);

    // Defaults: UTC, five windows from now.
    let utc = admin(&["policy", "windows", "weekly", "-o", "json"]).json();
    assert_eq!(utc["zone"], "UTC");
    assert_eq!(utc["windows"].as_array().map(Vec::len), Some(5));

    let bad_zone = admin(&["policy", "windows", "weekly", "--zone", "Mars/Olympus"]);
    assert_eq!(bad_zone.code, 1, "{bad_zone:?}");
    assert_has(&bad_zone.stderr, "ValidationFailed (HTTP 400)");
    assert_has(
        &bad_zone.stderr,
        "zone: \"Mars/Olympus\" is not an IANA time zone",
    );
    let bad_after = admin(&["policy", "windows", "weekly", "--after", "tomorrow"]);
    assert_eq!(bad_after.code, 1, "{bad_after:?}");
    assert_has(&bad_after.stderr, "after:");
    let missing = admin(&["policy", "windows", "nope"]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert_has(
        &missing.stderr,
        "cannot compute the windows of maintenance policy \"nope\"",
    );
    let too_many = admin(&["policy", "windows", "weekly", "--count", "101"]);
    assert_eq!(too_many.code, 2, "{too_many:?}");
}

#[tokio::test]
async fn bad_schedules_fail_with_field_paths_and_write_nothing() {
    let server = Server::start().await;
    let admin = |args: &[&str]| server.cli(Some(ADMIN_KEY), args);
    let bad = admin(&[
        "policy",
        "create",
        "bad",
        "--schedule",
        WEEKLY,
        "--schedule",
        "name=b,cron=0 0 * *,hours=30",
        "--schedule",
        "name=c,cron=0 0 * * 1,9,hours=2",
        "--exclusion",
        "name=xmas,start=2026-12-24T00:00:00Z,end=2026-12-23T00:00:00Z",
    ]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stdout.is_empty(), "{}", bad.stdout);
    assert_has(
        &bad.stderr,
        "error: cannot create maintenance policy \"bad\"",
    );
    assert_has(&bad.stderr, "ValidationFailed (HTTP 400)");
    for field in [
        "spec.schedules[1].cron:",
        "spec.schedules[1].durationHours:",
        "spec.schedules[2].cron:",
        "spec.exclusions[0].end:",
    ] {
        assert_has(&bad.stderr, field);
    }
    assert!(!bad.stderr.contains("spec.schedules[0]"), "{}", bad.stderr);
    assert_has(&bad.stderr, "request id:");
    assert_eq!(
        admin(&["policy", "get", "bad"]).code,
        1,
        "nothing was written"
    );

    // The shape of a flag value is checked before anything is sent (a usage error, 2); its
    // contents by the server (1, with the field).
    let cases = [
        (
            "name=Not_A_Label,cron=@daily,hours=1",
            1,
            "spec.schedules[0].name:",
        ),
        ("cron=0 0 * * 1,3,hours=4", 2, "`name=` is missing"),
        (
            "name=a,cron=@daily,zone=UTC,hours=1",
            2,
            "unknown key `zone`",
        ),
    ];
    for (schedule, code, part) in cases {
        let run = admin(&["policy", "create", "p", "--schedule", schedule]);
        assert_eq!(run.code, code, "{schedule}: {run:?}");
        assert_has(&run.stderr, part);
    }

    // A viewer may read but not create.
    let viewer = server.user_with_role("vera", "tenant-viewer", None).await;
    let denied = server.cli(
        Some(&viewer),
        &["policy", "create", "v", "--preset", "daily"],
    );
    assert_eq!(denied.code, 1, "{denied:?}");
    assert_has(&denied.stderr, "Forbidden");
    assert_eq!(server.cli(Some(&viewer), &["policy", "list"]).code, 0);
}

#[tokio::test]
async fn presets_are_listed_in_every_format() {
    let server = Server::start().await;
    let admin = |args: &[&str]| server.cli(Some(ADMIN_KEY), args);
    let served = server.get("/v1/maintenance-policies:presets").await.json();
    let json = admin(&["policy", "presets", "-o", "json"]).json();
    assert_eq!(json, served);
    let preset_names: Vec<&str> = json["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        preset_names,
        ["daily", "weekly-sunday-midnight", "monthly", "bimonthly"]
    );
    assert_eq!(yaml(&admin(&["policy", "presets", "-o", "yaml"])), served);
    let table = admin(&["policy", "presets"]);
    let lines: Vec<&str> = table.ok().lines().collect();
    assert_eq!(lines.len(), 5, "{}", table.stdout);
    assert!(lines[0].starts_with("NAME"), "{}", lines[0]);
    let bimonthly = lines
        .iter()
        .find(|l| l.starts_with("bimonthly "))
        .unwrap_or_else(|| panic!("{}", table.stdout));
    assert_has(bimonthly, "0 0 1 */2 * (4h)");
}
