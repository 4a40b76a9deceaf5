//! End-to-end tests of `fleetplane template` against a real server process: create, list, get
//! and delete in every output format and scope, composition errors with their codes and field
//! paths, `set-profiles` (a new revision, kept variable settings, `If-Match`), the variables view
//! and `assign` errors. Clusters cannot be created through the API yet, so the view is tested
//! without clusters; its cluster rows are covered by the unit tests of the table.

mod support;

use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN_KEY, CliRun, Server};

const P: &str = "/v1/projects/default";

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

fn example(file: &str) -> Value {
    let path = format!("{}/examples/profiles/{file}", env!("CARGO_MANIFEST_DIR"));
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// `aws-standard` 1.0.0 in project `default`, `observability` 1.0.0 at tenant scope, policy
/// `weekly` in the project.
async fn setup(server: &Server) {
    for (path, file) in [
        (format!("{P}/profiles:import"), "aws-standard-1.0.0.json"),
        ("/v1/profiles:import".to_owned(), "observability-1.0.0.json"),
    ] {
        let r = server
            .call(Method::POST, &path, Some(ADMIN_KEY), Some(&example(file)))
            .await;
        assert_eq!(r.status, 201, "import {file}: {}", r.text);
    }
    let policy = json!({"spec": {"schedules": [
        {"name": "w", "cron": "0 0 * * 0", "durationHours": 4}]}});
    let r = server
        .put(&format!("{P}/maintenance-policies/weekly"), &policy)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
}

/// `template create web` in project `default` with both profiles and the policy.
fn create_web(server: &Server, extra: &[&str]) -> CliRun {
    let mut args = vec![
        "template",
        "create",
        "web",
        "-p",
        "default",
        "--cloud-type",
        "aws",
        "--profile",
        "aws-standard@1.0.0",
        "--profile",
        "tenant:observability@1.0.0",
        "--policy",
        "weekly",
    ];
    args.extend_from_slice(extra);
    server.cli(Some(ADMIN_KEY), &args)
}

#[tokio::test]
async fn templates_are_created_listed_shown_and_deleted() {
    let server = Server::start().await;
    setup(&server).await;
    let admin = |args: &[&str]| server.cli(Some(ADMIN_KEY), args);

    let created = create_web(
        &server,
        &[
            "--label",
            "team=web",
            "--description",
            "web fleet",
            "-o",
            "json",
        ],
    );
    assert_has(
        &created.stderr,
        "cluster template \"web\" in project \"default\" created",
    );
    let web = created.json();
    assert_eq!(web["kind"], "ClusterTemplate");
    assert_eq!(web["metadata"]["project"], "default");
    assert_eq!(web["metadata"]["labels"], json!({"team": "web"}));
    assert_eq!(web["metadata"]["description"], "web fleet");
    assert_eq!(web["spec"]["cloudType"], "aws");
    assert_eq!(
        web["spec"]["profiles"],
        json!([{"name": "aws-standard", "version": "1.0.0", "variables": []},
               {"name": "observability", "version": "1.0.0", "scope": "tenant",
                "variables": []}])
    );
    assert_eq!(web["spec"]["maintenancePolicy"], json!({"name": "weekly"}));
    assert_eq!(web["status"]["revision"], 1);

    let again = create_web(&server, &[]);
    assert_eq!(again.code, 1, "a second create must not replace: {again:?}");
    assert_has(&again.stderr, "already exists");

    // A second template, tenant policy linked with the prefix, to list two rows.
    let tenant_policy = json!({"spec": {"schedules": []}});
    let r = server
        .put("/v1/maintenance-policies/none", &tenant_policy)
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    admin(&[
        "template",
        "create",
        "batch",
        "-p",
        "default",
        "--cloud-type",
        "aws",
        "--profile",
        "aws-standard@1.0.0",
        "--policy",
        "tenant:none",
    ])
    .ok();

    // Table: name, cloud, revision, profiles with their scope, policy, clusters, state.
    let table = admin(&["template", "list", "-p", "default"]);
    let lines: Vec<&str> = table.ok().lines().collect();
    assert_eq!(lines.len(), 3, "{}", table.stdout);
    for header in [
        "NAME",
        "CLOUD",
        "REVISION",
        "PROFILES",
        "POLICY",
        "CLUSTERS",
        "STATE",
        "NEXT WINDOW (UTC)",
    ] {
        assert_has(lines[0], header);
    }
    let web_row = lines
        .iter()
        .find(|l| l.starts_with("web "))
        .unwrap_or_else(|| panic!("no web row:\n{}", table.stdout));
    assert_has(web_row, "aws-standard@1.0.0, tenant:observability@1.0.0");
    assert_has(web_row, " weekly ");
    assert_has(web_row, "Applied");
    let next = &web["status"]["nextWindow"];
    assert_has(
        web_row,
        &format!(
            "{} to {}",
            next["start"].as_str().unwrap(),
            next["end"].as_str().unwrap()
        ),
    );
    let batch_row = lines
        .iter()
        .find(|l| l.starts_with("batch "))
        .unwrap_or_else(|| panic!("no batch row:\n{}", table.stdout));
    assert_has(batch_row, "tenant:none");

    let listed = admin(&["template", "list", "-p", "default", "-o", "json"]).json();
    assert_eq!(names(&listed), ["batch", "web"]);
    assert_eq!(
        yaml(&admin(&["template", "ls", "-p", "default", "-o", "yaml"])),
        listed
    );
    let selected = admin(&[
        "template", "list", "-p", "default", "-l", "team=web", "-o", "json",
    ])
    .json();
    assert_eq!(names(&selected), ["web"]);
    // Tenant scope has no templates: the scope is only --project / FLEETPLANE_PROJECT.
    assert_eq!(
        names(&admin(&["template", "list", "-o", "json"]).json()),
        Vec::<String>::new()
    );

    let got = admin(&["template", "get", "web", "-p", "default", "-o", "json"]).json();
    assert_eq!(got["spec"], web["spec"]);
    assert_eq!(
        yaml(&admin(&[
            "template", "get", "web", "-p", "default", "-o", "yaml"
        ]))["spec"],
        web["spec"]
    );
    let row = admin(&["template", "get", "web", "-p", "default"]);
    assert_eq!(row.ok().lines().count(), 2, "{}", row.stdout);
    assert_has(row.ok(), "tenant:observability@1.0.0");
    let wrong_scope = admin(&["template", "get", "web"]);
    assert_eq!(wrong_scope.code, 1, "{wrong_scope:?}");
    assert_has(&wrong_scope.stderr, "NotFound (HTTP 404)");

    let deleted = admin(&["template", "delete", "web", "-p", "default"]);
    assert_has(
        &deleted.stderr,
        "cluster template \"web\" in project \"default\" deleted",
    );
    assert!(deleted.ok().is_empty());
    let gone = admin(&["template", "get", "web", "-p", "default"]);
    assert_eq!(gone.code, 1, "{gone:?}");
    assert_has(&gone.stderr, "NotFound (HTTP 404)");
    admin(&["template", "rm", "batch", "-p", "default"]).ok();
    assert_eq!(
        names(&admin(&["template", "list", "-p", "default", "-o", "json"]).json()),
        Vec::<String>::new()
    );
    // Deleting templates never deletes what they linked.
    assert_eq!(
        server
            .get(&format!("{P}/profiles/aws-standard/versions/1.0.0"))
            .await
            .status,
        200
    );
}

#[tokio::test]
async fn composition_errors_name_their_code_and_field() {
    let server = Server::start().await;
    setup(&server).await;
    let admin = |args: &[&str]| server.cli(Some(ADMIN_KEY), args);

    let no_base = admin(&[
        "template",
        "create",
        "addons",
        "-p",
        "default",
        "--cloud-type",
        "aws",
        "--profile",
        "tenant:observability@1.0.0",
        "--policy",
        "weekly",
    ]);
    assert_eq!(no_base.code, 1, "{no_base:?}");
    assert!(no_base.stdout.is_empty(), "{no_base:?}");
    assert_has(&no_base.stderr, "cannot create cluster template \"addons\"");
    assert_has(&no_base.stderr, "TemplateRequiresBaseProfile (HTTP 400)");
    assert_has(&no_base.stderr, "spec.profiles: ");

    let mismatch = admin(&[
        "template",
        "create",
        "az",
        "-p",
        "default",
        "--cloud-type",
        "azure",
        "--profile",
        "aws-standard@1.0.0",
        "--policy",
        "weekly",
    ]);
    assert_eq!(mismatch.code, 1, "{mismatch:?}");
    assert_has(&mismatch.stderr, "CloudTypeMismatch (HTTP 400)");
    assert_has(&mismatch.stderr, "spec.profiles[0]: ");

    // Without the prefix, observability is looked up in the project, where it does not exist.
    let unscoped = admin(&[
        "template",
        "create",
        "t",
        "-p",
        "default",
        "--cloud-type",
        "aws",
        "--profile",
        "aws-standard@1.0.0",
        "--profile",
        "observability@1.0.0",
        "--policy",
        "weekly",
    ]);
    assert_eq!(unscoped.code, 1, "{unscoped:?}");
    assert_has(&unscoped.stderr, "spec.profiles[1]");

    // Bad shapes are usage errors (exit 2) before any request.
    let usage = admin(&[
        "template",
        "create",
        "t",
        "--cloud-type",
        "aws",
        "--profile",
        "project:aws-standard@1.0.0",
        "--policy",
        "weekly",
    ]);
    assert_eq!(usage.code, 2, "{usage:?}");
    assert_has(&usage.stderr, "unknown scope `project:`");
    assert_eq!(
        names(&admin(&["template", "list", "-p", "default", "-o", "json"]).json()),
        Vec::<String>::new()
    );
}

#[tokio::test]
async fn set_profiles_makes_a_new_revision_and_keeps_variable_settings() {
    let server = Server::start().await;
    setup(&server).await;
    let admin = |args: &[&str]| server.cli(Some(ADMIN_KEY), args);
    let r = server
        .call(
            Method::POST,
            &format!("{P}/profiles/aws-standard/versions"),
            Some(ADMIN_KEY),
            Some(&json!({"version": "1.1.0", "from": "1.0.0"})),
        )
        .await;
    assert_eq!(r.status, 201, "{}", r.text);
    create_web(&server, &[]).ok();

    // A fleet-wide value on aws-standard, set through the API.
    let path = format!("{P}/cluster-templates/web");
    let mut t = server.get(&path).await.json();
    let setting = json!([{"name": "replicas", "value": "3", "assignStrategy": "all"}]);
    t["spec"]["profiles"][0]["variables"] = setting.clone();
    let r = server.put(&path, &t).await;
    assert_eq!(r.status, 200, "{}", r.text);
    let stale = r.json()["metadata"]["resourceVersion"].to_string();

    let set = |versions: &[&str], extra: &[&str]| {
        let mut args = vec!["template", "set-profiles", "web", "-p", "default"];
        for v in versions {
            args.push("--profile");
            args.push(v);
        }
        args.extend_from_slice(extra);
        admin(&args)
    };
    let bumped = set(
        &["aws-standard@1.1.0", "tenant:observability@1.0.0"],
        &["-o", "json"],
    );
    assert_has(
        &bumped.stderr,
        "cluster template \"web\" in project \"default\" updated: revision 1 -> 2",
    );
    let web = bumped.json();
    assert_eq!(web["status"]["revision"], 2);
    assert_eq!(web["spec"]["profiles"][0]["version"], "1.1.0");
    assert_eq!(web["spec"]["profiles"][0]["variables"], setting);
    assert_eq!(web["spec"]["profiles"][1]["scope"], "tenant");
    assert_eq!(web["spec"]["maintenancePolicy"]["name"], "weekly");
    // The old version is no longer linked, so it is editable and deletable again.
    let old = server
        .get(&format!("{P}/profiles/aws-standard/versions/1.0.0"))
        .await
        .json();
    assert_eq!(old["status"]["locked"], false, "{old}");

    // The same set again: no new revision.
    let same = set(&["tenant:observability@1.0.0", "aws-standard@1.1.0"], &[]);
    assert_has(&same.stderr, "same set of versions, revision 2");
    assert_has(same.ok(), "aws-standard@1.1.0");

    // A version read before the last write is refused (If-Match).
    let conflict = set(
        &["aws-standard@1.0.0", "tenant:observability@1.0.0"],
        &["--if-match", &stale],
    );
    assert_eq!(conflict.code, 1, "{conflict:?}");
    assert_has(&conflict.stderr, "(HTTP 412)");
    // Removing the base profile is refused with the composition rule's code.
    let no_base = set(&["tenant:observability@1.0.0"], &[]);
    assert_eq!(no_base.code, 1, "{no_base:?}");
    assert_has(&no_base.stderr, "TemplateRequiresBaseProfile");
    assert_has(&no_base.stderr, "spec.profiles: ");
    let missing = admin(&[
        "template",
        "set-profiles",
        "nope",
        "-p",
        "default",
        "--profile",
        "aws-standard@1.1.0",
    ]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert_has(&missing.stderr, "NotFound (HTTP 404)");
    assert_eq!(
        server.get(&path).await.json()["status"]["revision"],
        2,
        "failed writes changed the template"
    );
}

#[tokio::test]
async fn the_variables_view_lists_variables_and_assign_reports_each_problem() {
    let server = Server::start().await;
    setup(&server).await;
    let admin = |args: &[&str]| server.cli(Some(ADMIN_KEY), args);
    create_web(&server, &[]).ok();

    let view = admin(&[
        "template",
        "variables",
        "web",
        "-p",
        "default",
        "-o",
        "json",
    ])
    .json();
    assert_eq!(view["revision"], 1);
    let items = view["items"].as_array().expect("items");
    let aws_vars = example("aws-standard-1.0.0.json")["spec"]["variables"]
        .as_array()
        .map_or(0, Vec::len);
    let obs_vars = example("observability-1.0.0.json")["spec"]["variables"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(items.len(), aws_vars + obs_vars, "{view}");
    assert_eq!(items[0]["profile"], "aws-standard");
    assert_eq!(items[0]["variable"]["name"], "greeting");
    assert!(
        items.iter().all(|i| i["clusters"] == json!([])),
        "no clusters, no assignment rows: {view}"
    );
    assert_eq!(
        yaml(&admin(&[
            "template", "vars", "web", "-p", "default", "-o", "yaml"
        ])),
        view
    );

    // The table lists every variable, with empty cluster cells while there are no clusters.
    let table = admin(&["template", "variables", "web", "-p", "default"]);
    let lines: Vec<&str> = table.ok().lines().collect();
    assert_eq!(
        lines[0].split_whitespace().collect::<Vec<_>>(),
        [
            "PROFILE",
            "VARIABLE",
            "CLUSTER",
            "ASSIGNMENT",
            "RUNNING",
            "NEW"
        ]
    );
    assert_eq!(lines.len(), 1 + items.len(), "{}", table.stdout);
    assert_eq!(
        lines[1].split_whitespace().collect::<Vec<_>>(),
        ["aws-standard", "greeting"]
    );
    assert!(
        lines
            .iter()
            .any(|l| l.split_whitespace().collect::<Vec<_>>()
                == ["observability", "grafana_admin_password"]),
        "{}",
        table.stdout
    );
    assert_has(&table.stderr, "revision 1: the template has no clusters");

    // Every problem is reported at once, with its path; nothing is written.
    let wrong = admin(&[
        "template",
        "assign",
        "web",
        "-p",
        "default",
        "--var",
        "aws-standard.nosuch=1",
        "--var",
        "nope.greeting=hi",
        "--var",
        "aws-standard.greeting",
    ]);
    assert_eq!(wrong.code, 1, "{wrong:?}");
    assert!(wrong.stdout.is_empty(), "{wrong:?}");
    assert_has(
        &wrong.stderr,
        "cannot assign variables of cluster template \"web\"",
    );
    assert_has(&wrong.stderr, "(HTTP 400)");
    assert_has(&wrong.stderr, "assignments[0].variable: ");
    assert_has(&wrong.stderr, "\"nosuch\"");
    assert_has(&wrong.stderr, "assignments[1].profile: ");
    assert_has(&wrong.stderr, "assignments[2].value: ");
    let unknown_cluster = admin(&[
        "template",
        "assign",
        "web",
        "-p",
        "default",
        "--var",
        "aws-standard.greeting=hi",
        "--cluster",
        "c1",
    ]);
    assert_eq!(unknown_cluster.code, 1, "{unknown_cluster:?}");
    assert_has(&unknown_cluster.stderr, "assignments[0].clusters[0]: ");
    let both = admin(&[
        "template",
        "assign",
        "web",
        "-p",
        "default",
        "--var",
        "aws-standard.greeting=hi",
        "--keep-running",
    ]);
    assert_eq!(both.code, 1, "{both:?}");
    assert_has(
        &both.stderr,
        "assignments[0].value: give a value or keepRunning",
    );

    // A valid assignment to every cluster (there are none) succeeds and prints the view.
    let ok = admin(&[
        "template",
        "assign",
        "web",
        "-p",
        "default",
        "--var",
        "aws-standard.greeting=hello",
        "-o",
        "json",
    ]);
    assert_eq!(ok.json(), view);
    assert_has(&ok.stderr, "1 assignment(s) applied");
    let missing = admin(&["template", "variables", "nope", "-p", "default"]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert_has(&missing.stderr, "NotFound (HTTP 404)");
}
