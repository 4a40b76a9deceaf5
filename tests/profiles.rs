//! End-to-end tests of `fleetplane profile`, `pack` and `macro` against a real server process:
//! import (Fleetplane and Palette documents), list and get in every output format, export and
//! re-import, copying and applying versions, render previews with variables and macros, scope.

mod support;

use serde_json::{Value, json};
use support::{ADMIN_KEY, CliRun, Server};

const AWS: &str = "examples/profiles/aws-standard-1.0.0.json";
const OBSERVABILITY: &str = "examples/profiles/observability-1.0.0.json";
const PALETTE: &str = "engine/domain/tests/fixtures/palette-edge-web.json";

fn repo(path: &str) -> String {
    format!("{}/{path}", env!("CARGO_MANIFEST_DIR"))
}

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

/// The row of a table that starts with `first` (its first cell).
#[track_caller]
fn row<'a>(table: &'a str, first: &str) -> &'a str {
    table
        .lines()
        .find(|l| l.split_whitespace().next() == Some(first))
        .unwrap_or_else(|| panic!("no row {first:?} in:\n{table}"))
}

#[tokio::test]
async fn profiles_are_imported_listed_shown_exported_and_reimported() {
    let server = Server::start().await;
    let admin = |args: &[&str]| server.cli(Some(ADMIN_KEY), args);

    let aws = admin(&["profile", "import", &repo(AWS)]);
    assert_has(
        &aws.stderr,
        "profile version \"aws-standard@1.0.0\" imported from",
    );
    assert_has(&aws.stderr, "(fleetplane format, 0 references rewritten)");
    let aws_row = row(aws.ok(), "aws-standard");
    assert_has(aws_row, "1.0.0");
    assert_has(aws_row, "kubernetes");
    let obs = admin(&["profile", "import", &repo(OBSERVABILITY), "-o", "json"]).json();
    assert_eq!(obs["format"], "fleetplane");
    assert_eq!(obs["rewrites"], 0);
    assert_eq!(obs["version"]["metadata"]["name"], "observability");
    assert_eq!(obs["version"]["spec"]["version"], "1.0.0");
    let again = admin(&["profile", "import", &repo(AWS)]);
    assert_eq!(again.code, 1, "{again:?}");
    assert_has(&again.stderr, "AlreadyExists");

    // list and get: table, JSON and YAML (the server's objects).
    let served = server.get("/v1/profiles").await.json();
    let listed = admin(&["profile", "list", "-o", "json"]).json();
    assert_eq!(listed, json!({"items": served["items"]}));
    assert_eq!(names(&listed), ["aws-standard", "observability"]);
    assert_eq!(yaml(&admin(&["profile", "ls", "-o", "yaml"])), listed);
    let table = admin(&["profile", "list"]);
    let lines: Vec<&str> = table.ok().lines().collect();
    assert_eq!(lines.len(), 3, "{}", table.stdout);
    for header in ["NAME", "TYPE", "CLOUD", "VERSIONS", "LABELS", "DESCRIPTION"] {
        assert_has(lines[0], header);
    }
    let obs_row = row(table.ok(), "observability");
    for part in ["addon", "all", "1.0.0", "team=sre"] {
        assert_has(obs_row, part);
    }
    assert_eq!(
        admin(&["profile", "list", "-l", "team=sre", "-o", "json"]).json()["items"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );

    let got = admin(&["profile", "get", "aws-standard", "-o", "json"]).json();
    assert_eq!(got["kind"], "ClusterProfile");
    assert_eq!(got["status"]["versions"], json!(["1.0.0"]));
    assert_eq!(
        yaml(&admin(&["profile", "get", "aws-standard", "-o", "yaml"])),
        got
    );
    let version = admin(&[
        "profile",
        "get",
        "aws-standard",
        "--version",
        "1.0.0",
        "-o",
        "json",
    ])
    .json();
    assert_eq!(
        version,
        server
            .get("/v1/profiles/aws-standard/versions/1.0.0")
            .await
            .json()
    );
    assert_eq!(version["kind"], "ClusterProfileVersion");
    let vtable = admin(&["profile", "get", "aws-standard", "--version", "1.0.0"]);
    assert_eq!(vtable.ok().lines().count(), 2, "{}", vtable.stdout);
    assert_has(
        vtable.ok(),
        "ubuntu-aws, kubernetes, cni-calico, csi-aws-ebs, hello-universe",
    );
    let missing = admin(&["profile", "get", "aws-standard", "--version", "9.9.9"]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert_has(&missing.stderr, "NotFound (HTTP 404)");

    // Export to a file, change the version, import it: the new version's export is the edited
    // document.
    let out = server.scratch().join("aws.json");
    let exported = admin(&[
        "profile",
        "export",
        "aws-standard@1.0.0",
        "-f",
        out.to_str().unwrap(),
    ]);
    assert!(exported.ok().is_empty(), "{}", exported.stdout);
    assert_has(&exported.stderr, "exported to");
    let mut doc: Value = serde_json::from_str(&std::fs::read_to_string(&out).unwrap()).unwrap();
    assert_eq!(
        doc,
        admin(&["profile", "export", "aws-standard@1.0.0"]).json()
    );
    assert_eq!(
        yaml(&admin(&[
            "profile",
            "export",
            "aws-standard@1.0.0",
            "-o",
            "yaml"
        ])),
        doc
    );
    doc["spec"]["version"] = json!("1.0.1");
    std::fs::write(&out, serde_json::to_string(&doc).unwrap()).unwrap();
    admin(&["profile", "import", out.to_str().unwrap()]).ok();
    assert_eq!(
        admin(&["profile", "export", "aws-standard@1.0.1", "-o", "json"]).json(),
        doc
    );
    // A YAML export imports as well.
    let y = server.scratch().join("obs.yaml");
    let mut obs_doc = yaml(&admin(&[
        "profile",
        "export",
        "observability@1.0.0",
        "-o",
        "yaml",
    ]));
    obs_doc["spec"]["version"] = json!("2.0.0");
    std::fs::write(&y, serde_saphyr::to_string(&obs_doc).unwrap()).unwrap();
    admin(&["profile", "import", y.to_str().unwrap()]).ok();
    assert_eq!(
        admin(&["profile", "get", "observability", "-o", "json"]).json()["status"]["versions"],
        json!(["1.0.0", "2.0.0"])
    );

    let usage = admin(&["profile", "export", "aws-standard"]);
    assert_eq!(usage.code, 2, "{usage:?}");
    assert_has(&usage.stderr, "NAME@VERSION");
    let unreadable = admin(&["profile", "import", "/nonexistent/profile.json"]);
    assert_eq!(unreadable.code, 1, "{unreadable:?}");
    assert_has(&unreadable.stderr, "cannot read /nonexistent/profile.json");
}

#[tokio::test]
async fn versions_are_copied_applied_and_deleted() {
    let server = Server::start().await;
    let admin = |args: &[&str]| server.cli(Some(ADMIN_KEY), args);
    admin(&["profile", "import", &repo(AWS)]).ok();

    let copy = admin(&[
        "profile",
        "version",
        "create",
        "aws-standard",
        "--version",
        "1.1.0",
        "--from",
        "1.0.0",
        "-o",
        "json",
    ]);
    assert_has(
        &copy.stderr,
        "profile version \"aws-standard@1.1.0\" created from \"1.0.0\"",
    );
    let copied = copy.json();
    assert_eq!(copied["spec"]["version"], "1.1.0");
    let original = server
        .get("/v1/profiles/aws-standard/versions/1.0.0")
        .await
        .json();
    assert_eq!(copied["spec"]["layers"], original["spec"]["layers"]);
    let bad_from = admin(&[
        "profile",
        "version",
        "create",
        "aws-standard",
        "--version",
        "1.2.0",
        "--from",
        "0.9.0",
    ]);
    assert_eq!(bad_from.code, 1, "{bad_from:?}");
    assert_has(
        &bad_from.stderr,
        "from: profile \"aws-standard\" has no version",
    );
    let bad_version = admin(&[
        "profile",
        "version",
        "create",
        "aws-standard",
        "--version",
        "1.2",
        "--from",
        "1.0.0",
    ]);
    assert_eq!(bad_version.code, 1, "{bad_version:?}");
    assert_has(&bad_version.stderr, "version:");

    let versions = admin(&["profile", "version", "list", "aws-standard", "-o", "json"]).json();
    let listed: Vec<&str> = versions["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["spec"]["version"].as_str().unwrap())
        .collect();
    assert_eq!(listed, ["1.0.0", "1.1.0"]);

    // apply: a version object as `get -o yaml` prints it, edited, replaces the version.
    let file = server.scratch().join("v.yaml");
    let mut v = yaml(&admin(&[
        "profile",
        "get",
        "aws-standard",
        "--version",
        "1.1.0",
        "-o",
        "yaml",
    ]));
    v["metadata"]["description"] = json!("edited by apply");
    std::fs::write(&file, serde_saphyr::to_string(&v).unwrap()).unwrap();
    let applied = admin(&["profile", "version", "apply", "-f", file.to_str().unwrap()]);
    assert_has(
        &applied.stderr,
        "profile version \"aws-standard@1.1.0\" replaced",
    );
    assert_has(row(applied.ok(), "aws-standard"), "1.1.0");
    assert_eq!(
        server
            .get("/v1/profiles/aws-standard/versions/1.1.0")
            .await
            .json()["metadata"]["description"],
        "edited by apply"
    );
    // A new version from a file (JSON), and a bad one naming its field.
    v["spec"]["version"] = json!("1.2.0");
    std::fs::write(&file, serde_json::to_string(&v).unwrap()).unwrap();
    let created = admin(&[
        "profile",
        "version",
        "apply",
        "-f",
        file.to_str().unwrap(),
        "-o",
        "json",
    ]);
    assert_has(
        &created.stderr,
        "profile version \"aws-standard@1.2.0\" created",
    );
    assert_eq!(created.json()["spec"]["version"], "1.2.0");
    v["spec"]["version"] = json!("1.3.0");
    v["spec"]["layers"][1]["version"] = json!("0.0.1");
    std::fs::write(&file, serde_json::to_string(&v).unwrap()).unwrap();
    let invalid = admin(&["profile", "version", "apply", "-f", file.to_str().unwrap()]);
    assert_eq!(invalid.code, 1, "{invalid:?}");
    assert_has(&invalid.stderr, "PackNotFound (HTTP 400)");
    assert_has(&invalid.stderr, "spec.layers[1].version:");
    std::fs::write(&file, "metadata:\n  name: aws-standard\n").unwrap();
    let unnamed = admin(&["profile", "version", "apply", "-f", file.to_str().unwrap()]);
    assert_eq!(unnamed.code, 1, "{unnamed:?}");
    assert_has(&unnamed.stderr, "spec.version is missing");

    let deleted = admin(&["profile", "version", "delete", "aws-standard@1.1.0"]);
    assert!(deleted.ok().is_empty());
    assert_has(
        &deleted.stderr,
        "profile version \"aws-standard@1.1.0\" deleted",
    );
    assert_eq!(
        admin(&["profile", "get", "aws-standard", "-o", "json"]).json()["status"]["versions"],
        json!(["1.0.0", "1.2.0"])
    );
    admin(&["profile", "version", "rm", "aws-standard@1.2.0"]).ok();
    admin(&["profile", "version", "delete", "aws-standard@1.0.0"]).ok();
    let gone = admin(&["profile", "get", "aws-standard"]);
    assert_eq!(
        gone.code, 1,
        "the last version deletes the profile: {gone:?}"
    );
    assert_has(&gone.stderr, "NotFound");
}

#[tokio::test]
async fn render_uses_variables_values_files_and_macros() {
    let server = Server::start().await;
    let admin = |args: &[&str]| server.cli(Some(ADMIN_KEY), args);
    admin(&["profile", "import", &repo(AWS)]).ok();

    let table = admin(&[
        "profile",
        "render",
        "aws-standard@1.0.0",
        "--var",
        "greeting=hi",
    ]);
    let text = table.ok();
    assert_has(text, "# hello-universe (addon,");
    assert_has(text, "# kubernetes (k8s,");
    assert_has(text, "greeting: \"hi\"");
    assert_has(text, "imageRepository: registry.k8s.io");
    let json = admin(&[
        "profile",
        "render",
        "aws-standard@1.0.0",
        "--var",
        "greeting=hi",
        "-o",
        "json",
    ])
    .json();
    let layers = json["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 5);
    let hello = layers
        .iter()
        .find(|l| l["name"] == "hello-universe")
        .unwrap();
    assert_has(hello["values"].as_str().unwrap(), "greeting: \"hi\"");
    assert_eq!(
        yaml(&admin(&[
            "profile",
            "render",
            "aws-standard@1.0.0",
            "--var",
            "greeting=hi",
            "-o",
            "yaml"
        ])),
        json
    );

    // A values file, with --var winning over it.
    let values = server.scratch().join("values.yaml");
    std::fs::write(&values, "greeting: from-file\nreplicas: 3\n").unwrap();
    let from_file = admin(&[
        "profile",
        "render",
        "aws-standard@1.0.0",
        "--values-file",
        values.to_str().unwrap(),
    ]);
    assert_has(from_file.ok(), "greeting: \"from-file\"");
    assert_has(from_file.ok(), "replicas: 3");
    let both = admin(&[
        "profile",
        "render",
        "aws-standard@1.0.0",
        "--values-file",
        values.to_str().unwrap(),
        "--var",
        "greeting=flag",
    ]);
    assert_has(both.ok(), "greeting: \"flag\"");

    // A missing required variable: exit 1 naming the field.
    let missing = admin(&["profile", "render", "aws-standard@1.0.0"]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(missing.stdout.is_empty(), "{}", missing.stdout);
    assert_has(
        &missing.stderr,
        "cannot render profile version \"aws-standard@1.0.0\"",
    );
    assert_has(&missing.stderr, "ValidationFailed (HTTP 400)");
    assert_has(&missing.stderr, "variable \"greeting\" is required");
    assert_has(&missing.stderr, "spec.variables.aws-standard.greeting:");
    let bad_cluster = admin(&[
        "profile",
        "render",
        "aws-standard@1.0.0",
        "--var",
        "greeting=hi",
        "--cluster",
        "planet=mars",
    ]);
    assert_eq!(bad_cluster.code, 1, "{bad_cluster:?}");
    assert_has(&bad_cluster.stderr, "planet");
    let with_cluster = admin(&[
        "profile",
        "render",
        "aws-standard@1.0.0",
        "--var",
        "greeting=hi",
        "--cluster",
        "clusterName=dev",
    ]);
    assert_has(with_cluster.ok(), "dev.k8s.example.com");

    // Macros: a tenant macro changes the render; a project one overrides it in the project.
    let set = admin(&["macro", "set", "registry_mirror", "mirror.example.com"]);
    assert_has(&set.stderr, "macro \"registry_mirror\" created");
    assert_has(row(set.ok(), "registry_mirror"), "mirror.example.com");
    let replaced = admin(&["macro", "set", "registry_mirror", "mirror.example.org"]);
    assert_has(&replaced.stderr, "macro \"registry_mirror\" replaced");
    let got = admin(&["macro", "get", "registry_mirror", "-o", "json"]).json();
    assert_eq!(got["spec"]["value"], "mirror.example.org");
    assert_eq!(
        yaml(&admin(&["macro", "get", "registry_mirror", "-o", "yaml"])),
        got
    );
    assert_eq!(
        names(&admin(&["macro", "list", "-o", "json"]).json()),
        ["registry_mirror"]
    );
    let rendered = admin(&[
        "profile",
        "render",
        "aws-standard@1.0.0",
        "--var",
        "greeting=hi",
    ]);
    assert_has(rendered.ok(), "imageRepository: mirror.example.org");

    let bad = admin(&["macro", "set", "not-an-identifier", "x"]);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert_has(&bad.stderr, "metadata.name:");

    let deleted = admin(&["macro", "delete", "registry_mirror"]);
    assert_has(&deleted.stderr, "macro \"registry_mirror\" deleted");
    let rendered = admin(&[
        "profile",
        "render",
        "aws-standard@1.0.0",
        "--var",
        "greeting=hi",
    ]);
    assert_has(rendered.ok(), "imageRepository: registry.k8s.io");
    let gone = admin(&["macro", "get", "registry_mirror"]);
    assert_eq!(gone.code, 1, "{gone:?}");
}

#[tokio::test]
async fn only_an_explicit_project_scopes_profiles_and_macros() {
    let server = Server::start().await;
    let admin = |args: &[&str]| server.cli(Some(ADMIN_KEY), args);
    admin(&["profile", "import", &repo(AWS)]).ok();
    let local = admin(&[
        "profile",
        "import",
        &repo(OBSERVABILITY),
        "-p",
        "default",
        "-o",
        "json",
    ])
    .json();
    assert_eq!(local["version"]["metadata"]["project"], "default");
    assert_eq!(
        names(&admin(&["profile", "list", "-p", "default", "-o", "json"]).json()),
        ["observability"]
    );
    assert_eq!(
        names(&admin(&["profile", "list", "-o", "json"]).json()),
        ["aws-standard"]
    );

    // A project macro overrides the tenant's in renders of the project's versions.
    admin(&["macro", "set", "registry_mirror", "tenant.example.com"]).ok();
    admin(&[
        "macro",
        "set",
        "registry_mirror",
        "project.example.com",
        "-p",
        "default",
    ])
    .ok();
    let mut copy = admin(&["profile", "export", "aws-standard@1.0.0"]).json();
    copy["spec"]["version"] = json!("1.0.0");
    let file = server.scratch().join("aws.json");
    std::fs::write(&file, serde_json::to_string(&copy).unwrap()).unwrap();
    admin(&["profile", "import", file.to_str().unwrap(), "-p", "default"]).ok();
    let env = [
        ("FLEETPLANE_ENDPOINT".to_owned(), server.base_url.clone()),
        ("FLEETPLANE_API_KEY".to_owned(), ADMIN_KEY.to_owned()),
        ("FLEETPLANE_PROJECT".to_owned(), "default".to_owned()),
    ];
    let in_project = server.cli_with(
        &[
            "profile",
            "render",
            "aws-standard@1.0.0",
            "--var",
            "greeting=hi",
        ],
        &env,
        None,
    );
    assert_has(in_project.ok(), "imageRepository: project.example.com");
    let tenant = admin(&[
        "profile",
        "render",
        "aws-standard@1.0.0",
        "--var",
        "greeting=hi",
    ]);
    assert_has(tenant.ok(), "imageRepository: tenant.example.com");

    // The config file's project is not used for profiles or macros (a note says so).
    let config = server.client_config_path();
    std::fs::create_dir_all(config.parent().unwrap()).unwrap();
    std::fs::write(&config, "project = \"default\"\n").unwrap();
    let listed = admin(&["profile", "list", "-o", "json"]);
    assert_eq!(names(&listed.json()), ["aws-standard"]);
    assert_has(&listed.stderr, "note: tenant scope");
    let macro_value = admin(&["macro", "get", "registry_mirror", "-o", "json"]);
    assert_eq!(macro_value.json()["spec"]["value"], "tenant.example.com");
    assert_has(&macro_value.stderr, "used for macros only with --project");
}

#[tokio::test]
async fn packs_are_listed_and_palette_documents_report_rewrites() {
    let server = Server::start().await;
    let admin = |args: &[&str]| server.cli(Some(ADMIN_KEY), args);

    let table = admin(&["pack", "list"]);
    let k8s = row(table.ok(), "kubernetes");
    assert_has(k8s, "k8s");
    assert_has(k8s, "1.33.4");
    let served = server.get("/v1/packs").await.json();
    let listed = admin(&["pack", "list", "-o", "json"]).json();
    assert!(names(&listed).iter().any(|n| n == "kubernetes"), "{listed}");
    assert_eq!(listed["items"], served["items"]);
    assert_eq!(yaml(&admin(&["pack", "ls", "-o", "yaml"])), listed);
    let got = admin(&["pack", "get", "kubernetes", "-o", "json"]).json();
    assert_eq!(got, server.get("/v1/packs/kubernetes").await.json());
    assert_eq!(
        admin(&["pack", "get", "kubernetes"]).ok().lines().count(),
        2
    );
    let nope = admin(&["pack", "get", "no-such-pack"]);
    assert_eq!(nope.code, 1, "{nope:?}");
    assert_has(&nope.stderr, "NotFound");

    let palette = admin(&["profile", "import", &repo(PALETTE), "-o", "json"]);
    let answer = palette.json();
    assert_eq!(answer["format"], "palette");
    let rewrites = answer["rewrites"].as_u64().unwrap();
    assert!(rewrites > 0, "{answer}");
    assert_has(
        &palette.stderr,
        &format!("(palette format, {rewrites} references rewritten)"),
    );
    for w in answer["warnings"].as_array().unwrap() {
        assert_has(
            &palette.stderr,
            &format!("warning: {}", w.as_str().unwrap()),
        );
    }
    assert_eq!(answer["version"]["metadata"]["name"], "edge-web");
}
