//! End-to-end tests of `fleetplane apply -f`, `diff -f` and `get KIND NAME` against a real
//! server process: a directory with one document of each kind is created, then unchanged, one
//! edit configures exactly that object, `get -o yaml` of each kind applies back unchanged,
//! `diff` shows an edit (exit 1) or nothing (exit 0), and bad documents are named with their
//! file, index and field path.

mod support;

use serde_json::Value;
use std::path::{Path, PathBuf};
use support::{ADMIN_KEY, CliRun, Server};

/// The test data of this file.
fn data(rel: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/apply")
        .join(rel)
        .display()
        .to_string()
}

/// Every object of `tests/apply/fleet`, in apply order.
const FLEET: [&str; 7] = [
    "policy/sundays",
    "macro/registry_mirror",
    "profileversion/base@1.0.0",
    "workflow/greet@1.0.0",
    "cloudaccount/sim",
    "template/web",
    "cluster/dev",
];

/// The result lines `apply` prints, as `(object, outcome)`.
fn outcomes(run: &CliRun) -> Vec<(String, String)> {
    run.ok()
        .lines()
        .map(|l| {
            let (id, outcome) = l
                .rsplit_once(' ')
                .unwrap_or_else(|| panic!("not `ID OUTCOME`: {l}"));
            (id.to_owned(), outcome.to_owned())
        })
        .collect()
}

/// `FLEET` with `outcome` for each object, except `other` for the objects of `except`.
fn expect(outcome: &str, except: &[(&str, &str)]) -> Vec<(String, String)> {
    FLEET
        .iter()
        .map(|id| {
            let o = except
                .iter()
                .find(|(e, _)| e == id)
                .map_or(outcome, |(_, o)| o);
            ((*id).to_owned(), o.to_owned())
        })
        .collect()
}

/// A copy of `tests/apply/fleet` in a fresh directory of the server's scratch space.
fn copy_fleet(server: &Server, name: &str) -> PathBuf {
    let dir = server.scratch().join(name);
    std::fs::create_dir_all(&dir).unwrap();
    for entry in std::fs::read_dir(data("fleet")).unwrap() {
        let path = entry.unwrap().path();
        std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
    }
    dir
}

/// Runs the CLI as the admin with `stdin` on standard input.
fn piped(server: &Server, args: &[&str], stdin: &str) -> CliRun {
    let env = [
        ("FLEETPLANE_ENDPOINT".to_owned(), server.base_url.clone()),
        ("FLEETPLANE_API_KEY".to_owned(), ADMIN_KEY.to_owned()),
    ];
    server.cli_with(args, &env, Some(stdin))
}

#[track_caller]
fn assert_has(text: &str, part: &str) {
    assert!(text.contains(part), "{part:?} is not in:\n{text}");
}

#[tokio::test]
async fn a_directory_is_created_then_unchanged_then_configured_where_edited() {
    let server = Server::start().await;
    let admin = |args: &[&str]| server.cli(Some(ADMIN_KEY), args);
    let dir = copy_fleet(&server, "fleet");
    let dir_arg = dir.display().to_string();

    // Nothing exists yet: diff shows every document as new and exits 1.
    let before = admin(&["diff", "-f", &dir_arg]);
    assert_eq!(before.code, 1, "{before:?}");
    for id in FLEET {
        assert_has(&before.stdout, &format!("--- {id} (absent)"));
    }

    let first = admin(&["apply", "-f", &dir_arg]);
    assert_eq!(outcomes(&first), expect("created", &[]));

    // The objects are on the server as written (spot checks of each scope and kind).
    let account = server.get("/v1/projects/default/cloud-accounts/sim").await;
    assert_eq!(account.status, 200, "{}", account.text);
    assert_eq!(account.json()["spec"]["secrets"]["token"], "********");
    let template = server.get("/v1/cluster-templates/web").await.json();
    assert_eq!(template["metadata"]["labels"]["team"], "shop");
    assert_eq!(template["spec"]["profiles"][0]["version"], "1.0.0");
    let version = server.get("/v1/profiles/base/versions/1.0.0").await.json();
    assert_eq!(version["spec"]["variables"][1]["defaultValue"], "********");

    // Server defaults, masked secrets and normalized durations (`24h` is stored as `1d`) do
    // not count as changes.
    let second = admin(&["apply", "-f", &dir_arg]);
    assert_eq!(outcomes(&second), expect("unchanged", &[]));
    let clean = admin(&["diff", "-f", &dir_arg]);
    assert_eq!(clean.code, 0, "{clean:?}");
    assert_eq!(clean.stdout, "");
    let rv = |t: &Value| t["metadata"]["resourceVersion"].clone();
    let still = server.get("/v1/cluster-templates/web").await.json();
    assert_eq!(rv(&still), rv(&template), "an unchanged apply wrote");

    // One edit: the policy's window grows; diff shows exactly that line, apply configures
    // exactly that object.
    let others = dir.join("c-others.yaml");
    let text = std::fs::read_to_string(&others).unwrap();
    std::fs::write(
        &others,
        text.replace("durationHours: 4", "durationHours: 6"),
    )
    .unwrap();
    let diff = admin(&["diff", "-f", &dir_arg]);
    assert_eq!(diff.code, 1, "{diff:?}");
    assert_has(&diff.stdout, "--- policy/sundays (server)");
    assert_has(&diff.stdout, "c-others.yaml, document 4)");
    assert_has(
        &diff.stdout,
        "\n-    durationHours: 4\n+    durationHours: 6\n",
    );
    let headers = diff
        .stdout
        .lines()
        .filter(|l| l.starts_with("--- "))
        .count();
    assert_eq!(headers, 1, "{}", diff.stdout);
    let third = admin(&["apply", "-f", &dir_arg]);
    assert_eq!(
        outcomes(&third),
        expect("unchanged", &[("policy/sundays", "configured")])
    );
    let policy = server.get("/v1/maintenance-policies/sundays").await.json();
    assert_eq!(policy["spec"]["schedules"][0]["durationHours"], 6);

    // A removed label is a change too (labels are compared whole).
    std::fs::write(&others, text.replace("  labels: {owner: ops}\n", "")).unwrap();
    let fourth = admin(&["apply", "-f", &others.display().to_string()]);
    assert_eq!(
        outcomes(&fourth),
        [
            ("policy/sundays", "configured"),
            ("macro/registry_mirror", "unchanged"),
            ("workflow/greet@1.0.0", "unchanged"),
            ("cloudaccount/sim", "unchanged"),
        ]
        .map(|(a, b)| (a.to_owned(), b.to_owned()))
    );
    let policy = server.get("/v1/maintenance-policies/sundays").await.json();
    assert_eq!(policy["metadata"]["labels"], serde_json::json!({}));
}

#[tokio::test]
async fn get_prints_documents_that_apply_back_unchanged() {
    let server = Server::start().await;
    let admin = |args: &[&str]| server.cli(Some(ADMIN_KEY), args);
    admin(&["apply", "-f", &data("fleet")]).ok();

    let cases: [(&[&str], &str); 7] = [
        (&["get", "policy", "sundays"], "MaintenancePolicy"),
        (&["get", "macros", "registry_mirror"], "Macro"),
        (&["get", "profileversion", "base@1.0.0"], "ProfileVersion"),
        (&["get", "workflow", "greet@1.0.0"], "Workflow"),
        (
            &["get", "cloudaccount", "sim", "-p", "default"],
            "CloudAccount",
        ),
        (&["get", "template", "web", "-o", "yaml"], "ClusterTemplate"),
        (&["get", "clusters", "dev", "-p", "default"], "Cluster"),
    ];
    for (args, kind) in cases {
        let got = admin(args);
        let doc: Value = serde_saphyr::from_str(got.ok())
            .unwrap_or_else(|e| panic!("{args:?}: not YAML ({e}): {}", got.stdout));
        assert_eq!(doc["kind"], kind, "{args:?}");
        assert!(doc.get("status").is_none(), "{args:?}: {doc}");
        for server_set in ["uid", "resourceVersion", "createdAt", "updatedAt"] {
            assert!(doc["metadata"].get(server_set).is_none(), "{args:?}: {doc}");
        }
        let back = piped(&server, &["apply", "-f", "-"], &got.stdout);
        assert_has(back.ok(), " unchanged\n");
        let diff = piped(&server, &["diff", "-f", "-"], &got.stdout);
        assert_eq!(diff.code, 0, "{args:?}: {diff:?}");
    }

    // The project of a project object is in its document.
    let account: Value =
        serde_saphyr::from_str(admin(&["get", "cloud-account", "sim", "-p", "default"]).ok())
            .unwrap();
    assert_eq!(account["metadata"]["project"], "default");
    assert_eq!(account["spec"]["secrets"]["token"], "********");

    // JSON too, and the usual errors.
    let json = admin(&["get", "policy", "sundays", "-o", "json"]).json();
    assert_eq!(json["kind"], "MaintenancePolicy");
    let missing = admin(&["get", "policy", "nosuch"]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert_has(&missing.stderr, "NotFound (HTTP 404)");
    let unknown = admin(&["get", "pod", "x"]);
    assert_eq!(unknown.code, 1, "{unknown:?}");
    assert_has(&unknown.stderr, "unknown kind \"pod\"");
    let no_version = admin(&["get", "workflow", "greet"]);
    assert_eq!(no_version.code, 1, "{no_version:?}");
    assert_has(&no_version.stderr, "NAME@VERSION");
}

#[tokio::test]
async fn bad_documents_are_named_and_earlier_ones_stay_applied() {
    let server = Server::start().await;
    let admin = |args: &[&str]| server.cli(Some(ADMIN_KEY), args);

    // The server rejects the second document: the error names the file, the document and the
    // field; the first document stays applied.
    let stream = data("bad/stream.yaml");
    let failed = admin(&["apply", "-f", &stream]);
    assert_eq!(failed.code, 1, "{failed:?}");
    assert_eq!(failed.stdout, "policy/kept created\n");
    assert_has(
        &failed.stderr,
        &format!("error: cannot apply macro/broken ({stream}, document 2)"),
    );
    assert_has(&failed.stderr, "ValidationFailed (HTTP 400)");
    assert_has(&failed.stderr, "spec.colour");
    assert_eq!(
        server.get("/v1/maintenance-policies/kept").await.status,
        200
    );
    assert_eq!(server.get("/v1/macros/broken").await.status, 404);
    // diff does not send the document: it shows it as new.
    let diff = admin(&["diff", "-f", &stream]);
    assert_eq!(diff.code, 1, "{diff:?}");
    assert_has(&diff.stdout, "--- macro/broken (absent)");

    // An unknown kind is found before any request: nothing is applied.
    let unknown = data("bad/unknown.yaml");
    let run = admin(&["apply", "-f", &unknown]);
    assert_eq!(run.code, 1, "{run:?}");
    assert_eq!(run.stdout, "");
    assert_has(
        &run.stderr,
        &format!("error: {unknown}, document 2: invalid document"),
    );
    assert_has(
        &run.stderr,
        "unknown kind \"Pod\"; expected one of MaintenancePolicy",
    );
    assert_eq!(server.get("/v1/macros/never-applied").await.status, 404);
    let diff = admin(&["diff", "-f", &unknown]);
    assert_eq!(diff.code, 2, "{diff:?}");
    assert_has(&diff.stderr, "unknown kind \"Pod\"");

    // A project-only kind without a project, and a project that disagrees with --project.
    let account = "kind: CloudAccount\nmetadata: {name: a}\nspec: {provider: simulator}\n";
    let run = piped(&server, &["apply", "-f", "-"], account);
    assert_eq!(run.code, 1, "{run:?}");
    assert_has(&run.stderr, "CloudAccount objects live in a project");
    let in_other = "kind: Macro\nmetadata: {name: m, project: default}\nspec: {value: v}\n";
    let run = piped(&server, &["apply", "-p", "other", "-f", "-"], in_other);
    assert_eq!(run.code, 1, "{run:?}");
    assert_has(&run.stderr, "metadata.project is \"default\" but --project");
    // With the project in the document, the macro goes there.
    let run = piped(&server, &["apply", "-f", "-"], in_other);
    assert_eq!(run.ok(), "macro/m created\n");
    assert_eq!(
        server.get("/v1/projects/default/macros/m").await.status,
        200
    );
}
