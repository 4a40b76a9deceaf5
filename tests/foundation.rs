//! End-to-end tests of the foundation against a real `fleetplane server` process: bootstrap,
//! authentication, authorization and project isolation, preconditions, rate limits, body
//! limits, input validation, the audit log, change events, crash safety, and the CLI.

mod support;

use fleetplane_client::{ClientError, ListOptions, Precondition, Project, ProjectSpec};
use reqwest::Method;
use serde_json::{Value, json};
use support::{ADMIN_KEY, Server, ServerOptions, problem_fields, run_cli};

fn project(name: &str) -> Value {
    json!({"metadata": {"name": name}, "spec": {}})
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

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

// ----- bootstrap, health, authentication -----

#[tokio::test]
async fn bootstrap_writes_a_private_admin_key_that_lists_the_default_project() {
    let server = Server::start_with(ServerOptions::default().generated_key()).await;
    let key_file = server.data_dir().join("admin-api-key");
    let key = std::fs::read_to_string(&key_file)
        .expect("admin-api-key written")
        .trim()
        .to_owned();
    assert!(key.starts_with("fpk_"), "{key}");
    assert_ne!(key, ADMIN_KEY);
    #[cfg(unix)]
    {
        assert_eq!(mode(&key_file), 0o600);
        assert_eq!(mode(&server.data_dir().join("admin-password")), 0o600);
    }
    let list = server
        .call(Method::GET, "/v1/projects", Some(&key), None)
        .await;
    assert_eq!(list.status, 200, "{}", list.text);
    assert_eq!(names(&list.json()), ["default"]);
    let me = server
        .call(Method::GET, "/v1/whoami", Some(&key), None)
        .await
        .json();
    assert_eq!(me["user"], "admin");
    assert_eq!(
        me["grants"],
        json!([{"role": "tenant-admin", "project": null}])
    );
    assert!(
        me["permissions"]
            .as_array()
            .is_some_and(|p| p.contains(&json!("project.create"))),
        "{me}"
    );
}

#[tokio::test]
async fn the_bootstrap_key_variable_is_used_and_never_logged() {
    let server = Server::start().await;
    let key = std::fs::read_to_string(server.data_dir().join("admin-api-key")).unwrap();
    assert_eq!(key.trim(), ADMIN_KEY);
    // The log says where the key is but never prints it.
    assert!(server.log().contains("admin-api-key"), "{}", server.log());
    assert!(!server.log().contains(ADMIN_KEY));
}

#[tokio::test]
async fn health_readiness_metrics_and_openapi_answer_without_a_key() {
    let server = Server::start().await;
    for path in ["/healthz", "/readyz", "/metrics", "/openapi.json"] {
        let a = server.call(Method::GET, path, None, None).await;
        assert_eq!(a.status, 200, "{path}: {}", a.text);
        assert!(
            a.header("x-request-id").is_some(),
            "{path} has no x-request-id"
        );
    }
    let doc = server
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .json();
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    for path in [
        "/v1/projects",
        "/v1/projects/{name}",
        "/v1/users/{user}/api-keys",
        "/v1/audit-events",
    ] {
        assert!(
            doc["paths"].get(path).is_some(),
            "openapi.json lacks {path}"
        );
    }
    // A request was made above, so the request counter is not empty.
    let metrics = server.call(Method::GET, "/metrics", None, None).await.text;
    assert!(
        metrics
            .lines()
            .any(|l| !l.starts_with('#') && !l.trim().is_empty()),
        "{metrics}"
    );
}

#[tokio::test]
async fn requests_without_a_valid_key_get_401_problem_json() {
    let server = Server::start().await;
    let a = server.call(Method::GET, "/v1/projects", None, None).await;
    a.assert_problem(401, "Unauthorized");
    let a = server
        .call(
            Method::GET,
            "/v1/projects",
            Some("fpk_not-a-real-key"),
            None,
        )
        .await;
    a.assert_problem(401, "Unauthorized");
    let a = server
        .call(Method::PUT, "/v1/projects/x", None, Some(&project("x")))
        .await;
    a.assert_problem(401, "Unauthorized");
    // Nothing was created.
    server
        .get("/v1/projects/x")
        .await
        .assert_problem(404, "NotFound");
}

#[tokio::test]
async fn revoked_keys_stop_working() {
    let server = Server::start().await;
    let admin = server.client(ADMIN_KEY);
    let key = server.user_with_role("carol", "tenant-viewer", None).await;
    assert_eq!(server.client(&key).whoami().await.unwrap().user, "carol");
    let keys = admin
        .list_api_keys("carol", &ListOptions::default())
        .await
        .unwrap();
    assert_eq!(keys.items.len(), 1);
    assert!(!keys.items[0].status.as_ref().is_some_and(|s| s.revoked));
    admin
        .revoke_api_key("carol", &keys.items[0].metadata.name)
        .await
        .unwrap();
    let e = server.client(&key).whoami().await.unwrap_err();
    assert_eq!(e.code(), Some("Unauthorized"), "{e}");
    let keys = admin
        .list_api_keys("carol", &ListOptions::default())
        .await
        .unwrap();
    assert!(
        keys.items[0].status.as_ref().is_some_and(|s| s.revoked),
        "{keys:?}"
    );
}

// ----- authorization and isolation -----

#[tokio::test]
async fn a_project_viewer_can_read_but_not_write() {
    let server = Server::start().await;
    let key = server
        .user_with_role("vera", "project-viewer", Some("default"))
        .await;
    let a = server
        .call(Method::GET, "/v1/projects/default", Some(&key), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let cases = [
        (
            Method::PUT,
            "/v1/projects/default",
            Some(project("default")),
        ),
        (Method::DELETE, "/v1/projects/default", None),
        (
            Method::PUT,
            "/v1/users/mallory",
            Some(json!({"metadata": {"name": "mallory"}, "spec": {}})),
        ),
        (
            Method::PUT,
            "/v1/role-bindings/escalate",
            Some(json!({"metadata": {"name": "escalate"},
                        "spec": {"user": "vera", "role": "tenant-admin"}})),
        ),
    ];
    for (method, path, body) in cases {
        let a = server
            .call(method.clone(), path, Some(&key), body.as_ref())
            .await;
        a.assert_problem(403, "Forbidden");
    }
    // Creating a project needs `project.create` at tenant scope, which the viewer lacks.
    let create = server
        .call(
            Method::PUT,
            "/v1/projects/new",
            Some(&key),
            Some(&project("new")),
        )
        .await;
    create.assert_problem(403, "Forbidden");
    // Still there, still a viewer.
    server.get("/v1/projects/default").await;
    let me = server.client(&key).whoami().await.unwrap();
    assert_eq!(me.grants.len(), 1);
    assert_eq!(me.grants[0].role, "project-viewer");
}

#[tokio::test]
async fn a_user_of_project_a_cannot_see_project_b() {
    let server = Server::start().await;
    for p in ["a", "b"] {
        assert_eq!(
            server
                .put(&format!("/v1/projects/{p}"), &project(p))
                .await
                .status,
            201
        );
    }
    let key = server
        .user_with_role("alice", "project-admin", Some("a"))
        .await;
    let a = server
        .call(Method::GET, "/v1/projects/a", Some(&key), None)
        .await;
    assert_eq!(a.status, 200, "{}", a.text);
    let list = server
        .call(Method::GET, "/v1/projects", Some(&key), None)
        .await;
    assert_eq!(names(&list.json()), ["a"]);
    // Existence of b does not leak: 404 like a project that does not exist, never 403.
    for path in ["/v1/projects/b", "/v1/projects/nonexistent"] {
        let get = server.call(Method::GET, path, Some(&key), None).await;
        get.assert_problem(404, "NotFound");
    }
    let del = server
        .call(Method::DELETE, "/v1/projects/b", Some(&key), None)
        .await;
    del.assert_problem(404, "NotFound");
    let put = server
        .call(
            Method::PUT,
            "/v1/projects/b",
            Some(&key),
            Some(&json!({"metadata": {"name": "b"}, "spec": {"displayName": "mine"}})),
        )
        .await;
    assert!(
        put.status == 404 || put.status == 403,
        "PUT of an invisible project: {}",
        put.text
    );
    assert_eq!(
        server.get("/v1/projects/b").await.json()["spec"],
        json!({}),
        "b was changed"
    );
}

// ----- preconditions, limits, validation -----

#[tokio::test]
async fn a_stale_if_match_is_412() {
    let server = Server::start().await;
    let created = server.put("/v1/projects/p", &project("p")).await;
    assert_eq!(created.status, 201, "{}", created.text);
    let rv1 = created.json()["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(created.header("etag"), Some(format!("\"{rv1}\"").as_str()));
    let got = server.get("/v1/projects/p").await;
    assert_eq!(got.header("etag"), created.header("etag"));

    let update = json!({"metadata": {"name": "p"}, "spec": {"displayName": "P"}});
    let ok = server
        .request(Method::PUT, "/v1/projects/p", Some(ADMIN_KEY))
        .header("if-match", format!("\"{rv1}\""))
        .json(&update)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let stale = server
        .request(Method::PUT, "/v1/projects/p", Some(ADMIN_KEY))
        .header("if-match", format!("\"{rv1}\""))
        .json(&project("p"))
        .send()
        .await
        .unwrap();
    support::Answer::read(stale)
        .await
        .assert_problem(412, "PreconditionFailed");
    let stale_delete = server
        .request(Method::DELETE, "/v1/projects/p", Some(ADMIN_KEY))
        .header("if-match", format!("\"{rv1}\""))
        .send()
        .await
        .unwrap();
    support::Answer::read(stale_delete)
        .await
        .assert_problem(412, "PreconditionFailed");
    assert_eq!(
        server.get("/v1/projects/p").await.json()["spec"]["displayName"],
        "P"
    );

    // The typed client says the same, and read-modify-write with the current version works.
    let client = server.client(ADMIN_KEY);
    let mut p = client.get_project("p").await.unwrap();
    let e = client
        .put_project(&p, &Precondition::Match(rv1.clone()))
        .await
        .unwrap_err();
    assert_eq!(e.code(), Some("PreconditionFailed"), "{e}");
    let current = p.metadata.resource_version.clone().unwrap();
    p.spec.display_name = Some("P2".into());
    let written = client
        .put_project(&p, &Precondition::Match(current))
        .await
        .unwrap();
    assert!(!written.created);
    assert_eq!(written.object.spec.display_name.as_deref(), Some("P2"));
}

#[tokio::test]
async fn create_only_puts_do_not_replace() {
    let server = Server::start().await;
    let client = server.client(ADMIN_KEY);
    let new = Project::new(
        "once",
        ProjectSpec {
            display_name: Some("first".into()),
        },
    );
    assert!(
        client
            .put_project(&new, &Precondition::Absent)
            .await
            .unwrap()
            .created
    );
    let again = Project::new(
        "once",
        ProjectSpec {
            display_name: Some("second".into()),
        },
    );
    let e = client
        .put_project(&again, &Precondition::Absent)
        .await
        .unwrap_err();
    assert!(matches!(e.status(), Some(409 | 412)), "{e}");
    let stored = client.get_project("once").await.unwrap();
    assert_eq!(stored.spec.display_name.as_deref(), Some("first"));
}

#[tokio::test]
async fn a_flooded_key_is_limited_while_another_key_is_served() {
    // One request per second per key with a burst of 10; the per-address limit is out of the way.
    let server = Server::start_with(
        ServerOptions::default()
            .env("FLEETPLANE_RATE_LIMIT_PER_KEY", "1")
            .env("FLEETPLANE_RATE_LIMIT_BURST", "10")
            .env("FLEETPLANE_RATE_LIMIT_PER_ADDRESS", "1000000"),
    )
    .await;
    // Made before the flood, while the admin key still has its burst.
    let other = server.user_with_role("other", "tenant-viewer", None).await;
    let flooded = server.user_with_role("flood", "tenant-viewer", None).await;
    let mut limited = None;
    for _ in 0..200 {
        let a = server
            .call(Method::GET, "/v1/whoami", Some(&flooded), None)
            .await;
        if a.status == 429 {
            limited = Some(a);
            break;
        }
        assert_eq!(a.status, 200, "{}", a.text);
    }
    let limited = limited.expect("200 requests in a row on one key were never limited");
    limited.assert_problem(429, "RateLimited");
    let retry_after: u64 = limited
        .header("retry-after")
        .expect("Retry-After")
        .parse()
        .expect("seconds");
    assert!(retry_after >= 1);
    let a = server
        .call(Method::GET, "/v1/whoami", Some(&other), None)
        .await;
    assert_eq!(a.status, 200, "the other key was limited too: {}", a.text);
    // The typed client exposes the wait.
    let e = server.client(&flooded).whoami().await.unwrap_err();
    let ClientError::Api {
        status: 429,
        retry_after: Some(_),
        ..
    } = e
    else {
        panic!("{e:?}")
    };
}

#[tokio::test]
async fn a_5_mib_body_is_413() {
    let server = Server::start().await;
    let big = "x".repeat(5 * 1024 * 1024);
    let body = json!({"metadata": {"name": "big", "description": big}, "spec": {}}).to_string();
    // The server drains an oversized body before answering, so an ordinary client sees the 413.
    let res = server
        .request(Method::PUT, "/v1/projects/big", Some(ADMIN_KEY))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("the server answers instead of resetting the connection");
    let status = res.status().as_u16();
    let answer = res.text().await.unwrap();
    assert_eq!(status, 413, "{answer}");
    let problem: Value = serde_json::from_str(&answer).unwrap_or_else(|e| panic!("{e}: {answer}"));
    assert_eq!(problem["code"], "PayloadTooLarge");
    server
        .get("/v1/projects/big")
        .await
        .assert_problem(404, "NotFound");
}

#[tokio::test]
async fn bad_input_is_400_with_field_paths() {
    let server = Server::start().await;
    let raw = |path: &'static str, body: &'static str| {
        server
            .request(Method::PUT, path, Some(ADMIN_KEY))
            .header("content-type", "application/json")
            .body(body)
            .send()
    };
    let malformed =
        support::Answer::read(raw("/v1/projects/m", "{\"metadata\": {").await.unwrap()).await;
    let p = malformed.assert_problem(400, "ValidationFailed");
    assert!(!p["errors"].as_array().is_none_or(Vec::is_empty), "{p}");

    let cases: &[(&str, Value, &str)] = &[
        (
            "/v1/projects/u",
            json!({"metadata": {"name": "u"}, "spec": {"displayNam": "x"}}),
            "spec",
        ),
        (
            "/v1/projects/u",
            json!({"metadata": {"name": "u", "colour": "red"}, "spec": {}}),
            "metadata",
        ),
        (
            "/v1/projects/Bad_Name",
            json!({"metadata": {"name": "Bad_Name"}, "spec": {}}),
            "metadata.name",
        ),
        (
            "/v1/projects/x",
            json!({"metadata": {"name": "x"}, "spec": {"displayName": 5}}),
            "spec.displayName",
        ),
        (
            "/v1/users/shorty",
            json!({"metadata": {"name": "shorty"}, "spec": {"password": "short"}}),
            "spec.password",
        ),
        (
            "/v1/role-bindings/rb",
            json!({"metadata": {"name": "rb"}, "spec": {"user": "admin", "role": "emperor"}}),
            "spec.role",
        ),
    ];
    for (path, body, field) in cases {
        let a = server.put(path, body).await;
        let p = a.assert_problem(400, "ValidationFailed");
        let fields = problem_fields(&p);
        assert!(
            fields.iter().any(|f| f.starts_with(field)),
            "{path} {body}: fields {fields:?} lack {field}"
        );
    }
    // Bad input never created anything.
    let list = server.get("/v1/projects").await.json();
    assert_eq!(names(&list), ["default"]);
}

// ----- audit, events, paging -----

#[tokio::test]
async fn the_audit_log_records_every_mutation() {
    let server = Server::start().await;
    let client = server.client(ADMIN_KEY);
    server
        .put("/v1/projects/audited", &project("audited"))
        .await;
    server
        .put(
            "/v1/projects/audited",
            &json!({"metadata": {"name": "audited"}, "spec": {"displayName": "A"}}),
        )
        .await;
    let del = server
        .call(
            Method::DELETE,
            "/v1/projects/audited",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(del.status, 204, "{}", del.text);

    let query = fleetplane_client::AuditQuery {
        resource: Some("projects/audited".into()),
        ..Default::default()
    };
    let events = client.list_audit_events(&query).await.unwrap().items;
    // Newest first.
    let mut events = events;
    assert!(
        events.windows(2).all(|w| w[0].seq > w[1].seq),
        "{events:#?}"
    );
    events.reverse();
    let actions: Vec<&str> = events.iter().map(|e| e.action.as_str()).collect();
    assert_eq!(actions, ["create", "update", "delete"], "{events:#?}");
    for e in &events {
        assert_eq!(e.actor, "user:admin");
        assert!(e.request_id.as_deref().is_some_and(|r| !r.is_empty()));
    }
    assert!(events[0].before.is_null());
    assert_eq!(events[0].after["metadata"]["name"], "audited");
    assert_eq!(events[1].before["spec"], json!({}));
    assert_eq!(events[1].after["spec"]["displayName"], "A");
    assert_eq!(events[2].before["spec"]["displayName"], "A");
    assert!(events[2].after.is_null());

    // Passwords never reach the log.
    server
        .put(
            "/v1/users/pw",
            &json!({"metadata": {"name": "pw"}, "spec": {"password": "correct horse battery"}}),
        )
        .await;
    let all = server.get("/v1/audit-events?resource=users/pw").await;
    assert_eq!(
        all.json()["items"].as_array().map(Vec::len),
        Some(1),
        "{}",
        all.text
    );
    assert!(!all.text.contains("correct horse"), "{}", all.text);
}

#[tokio::test]
async fn changes_stream_as_cloud_events() {
    let server = Server::start().await;
    let client = server.client(ADMIN_KEY);
    let mut stream = client.events().await.unwrap();
    server
        .put("/v1/projects/streamed", &project("streamed"))
        .await;
    let wait = std::time::Duration::from_secs(20);
    let found = tokio::time::timeout(wait, async {
        while let Some(event) = stream.next().await {
            let event = event.expect("stream event");
            let ce = event.json().expect("CloudEvents JSON");
            if ce["subject"]
                .as_str()
                .is_some_and(|s| s.contains("streamed"))
            {
                return ce;
            }
        }
        panic!("the stream ended");
    })
    .await
    .expect("no event for the new project");
    assert_eq!(found["specversion"], "1.0");
    assert!(
        found["type"]
            .as_str()
            .is_some_and(|t| t.contains("project")),
        "{found}"
    );
}

#[tokio::test]
async fn lists_page_with_continue_tokens_and_select_by_label() {
    let server = Server::start().await;
    for i in 0..7 {
        let env = if i % 2 == 0 { "prod" } else { "dev" };
        let body =
            json!({"metadata": {"name": format!("p{i}"), "labels": {"env": env}}, "spec": {}});
        assert_eq!(
            server
                .put(&format!("/v1/projects/p{i}"), &body)
                .await
                .status,
            201
        );
    }
    let first = server.get("/v1/projects?limit=3").await.json();
    assert_eq!(first["items"].as_array().map(Vec::len), Some(3));
    let token = first["continue"].as_str().expect("a continue token");
    let second = server
        .get(&format!("/v1/projects?limit=3&continue={token}"))
        .await
        .json();
    let mut seen = names(&first);
    seen.extend(names(&second));
    assert_eq!(seen.len(), 6);
    let client = server.client(ADMIN_KEY);
    let all = client
        .list_all(
            "/v1/projects",
            &ListOptions {
                limit: Some(2),
                ..Default::default()
            },
        )
        .await
        .unwrap();
    let mut all: Vec<String> = all
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap().to_owned())
        .collect();
    all.sort();
    assert_eq!(all, ["default", "p0", "p1", "p2", "p3", "p4", "p5", "p6"]);
    let prod = client
        .list_projects(&ListOptions {
            label_selector: Some("env=prod".into()),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut prod: Vec<String> = prod.items.into_iter().map(|p| p.metadata.name).collect();
    prod.sort();
    assert_eq!(prod, ["p0", "p2", "p4", "p6"]);
}

// ----- crash safety -----

#[tokio::test]
async fn kill_9_right_after_acknowledged_writes_loses_nothing() {
    let mut server = Server::start().await;
    let mut acknowledged = Vec::new();
    for i in 0..20 {
        let name = format!("durable{i}");
        let a = server
            .put(&format!("/v1/projects/{name}"), &project(&name))
            .await;
        assert_eq!(a.status, 201, "{}", a.text);
        acknowledged.push(name);
    }
    let del = server
        .call(
            Method::DELETE,
            "/v1/projects/durable0",
            Some(ADMIN_KEY),
            None,
        )
        .await;
    assert_eq!(del.status, 204);
    server.kill9();
    server.restart().await;
    // The bootstrap did not run again: the same key works and the key file is unchanged.
    let key = std::fs::read_to_string(server.data_dir().join("admin-api-key")).unwrap();
    assert_eq!(key.trim(), ADMIN_KEY);
    let list = server.get("/v1/projects?limit=500").await.json();
    let present = names(&list);
    for name in &acknowledged[1..] {
        assert!(present.contains(name), "{name} was lost: {present:?}");
    }
    assert!(
        !present.contains(&"durable0".to_owned()),
        "a deletion was lost"
    );
    let audit = server
        .get("/v1/audit-events?resource=projects/durable&limit=500")
        .await
        .json();
    assert_eq!(
        audit["items"].as_array().map(Vec::len),
        Some(21),
        "audit entries were lost"
    );
}

// ----- the CLI -----

#[tokio::test]
async fn cli_login_stores_a_private_config_then_lists_projects_in_every_format() {
    let server = Server::start().await;
    let endpoint = vec![("FLEETPLANE_ENDPOINT".to_owned(), server.base_url.clone())];
    // A wrong key is refused and nothing is stored.
    let bad = server.cli_with(&["login", "--api-key", "fpk_wrong"], &endpoint, None);
    assert_eq!(bad.code, 1, "{bad:?}");
    assert!(bad.stderr.contains("Unauthorized"), "{}", bad.stderr);
    assert!(!server.client_config_path().exists());
    // The key from standard input.
    let login = server.cli_with(&["login"], &endpoint, Some(&format!("{ADMIN_KEY}\n")));
    login.ok();
    assert!(login.stderr.contains("as admin"), "{}", login.stderr);
    assert!(
        login.stdout.is_empty(),
        "login printed data: {}",
        login.stdout
    );
    let stored = std::fs::read_to_string(server.client_config_path()).unwrap();
    assert!(
        stored.contains(ADMIN_KEY) && stored.contains(&server.base_url),
        "{stored}"
    );
    #[cfg(unix)]
    assert_eq!(mode(&server.client_config_path()), 0o600);

    // From now on only the config file says where and who.
    let json_out = server
        .cli_with(&["project", "list", "-o", "json"], &[], None)
        .json();
    assert_eq!(names(&json_out), ["default"]);
    let yaml_out = server.cli_with(&["-o", "yaml", "project", "list"], &[], None);
    let yaml: Value = serde_saphyr::from_str(yaml_out.ok()).unwrap();
    assert_eq!(yaml, json_out);
    let table = server.cli_with(&["project", "list"], &[], None);
    let lines: Vec<&str> = table.ok().lines().collect();
    assert!(
        lines[0].starts_with("NAME") && lines[0].contains("DISPLAY NAME"),
        "{lines:?}"
    );
    assert!(lines[1].starts_with("default "), "{lines:?}");
    let one = server
        .cli_with(&["project", "get", "default", "-o", "json"], &[], None)
        .json();
    assert_eq!(one["metadata"]["name"], "default");
    let me = server.cli_with(&["whoami"], &[], None);
    assert!(me.ok().contains("tenant-admin"), "{}", me.stdout);

    // Variables override the file.
    let env = vec![
        ("FLEETPLANE_API_KEY".to_owned(), "fpk_overridden".to_owned()),
        ("FLEETPLANE_OUTPUT".to_owned(), "json".to_owned()),
    ];
    let overridden = server.cli_with(&["project", "list"], &env, None);
    assert_eq!(overridden.code, 1, "{overridden:?}");
    assert!(
        overridden.stderr.contains("Unauthorized"),
        "{}",
        overridden.stderr
    );
}

#[tokio::test]
async fn cli_errors_carry_codes_details_field_paths_and_exit_codes() {
    let server = Server::start().await;
    let missing = server.cli(Some(ADMIN_KEY), &["project", "get", "nope"]);
    assert_eq!(missing.code, 1, "{missing:?}");
    assert!(missing.stdout.is_empty());
    assert!(
        missing
            .stderr
            .contains("error: cannot get project \"nope\""),
        "{}",
        missing.stderr
    );
    assert!(
        missing.stderr.contains("caused by: NotFound (HTTP 404)"),
        "{}",
        missing.stderr
    );

    let short = server.cli_with(
        &["user", "create", "shorty", "--password-stdin"],
        &[
            ("FLEETPLANE_ENDPOINT".to_owned(), server.base_url.clone()),
            ("FLEETPLANE_API_KEY".to_owned(), ADMIN_KEY.to_owned()),
        ],
        Some("short\n"),
    );
    assert_eq!(short.code, 1, "{short:?}");
    assert!(
        short.stderr.contains("ValidationFailed"),
        "{}",
        short.stderr
    );
    assert!(short.stderr.contains("spec.password:"), "{}", short.stderr);

    let bad_name = server.cli(Some(ADMIN_KEY), &["project", "create", "Bad_Name"]);
    assert_eq!(bad_name.code, 1);
    assert!(
        bad_name.stderr.contains("metadata.name"),
        "{}",
        bad_name.stderr
    );

    let anonymous = server.cli(None, &["project", "list"]);
    assert_eq!(anonymous.code, 1);
    assert!(
        anonymous.stderr.contains("hint: no API key is configured"),
        "{}",
        anonymous.stderr
    );

    let forbidden_key = server.user_with_role("viewer", "tenant-viewer", None).await;
    let forbidden = server.cli(Some(&forbidden_key), &["project", "create", "nope"]);
    assert_eq!(forbidden.code, 1);
    assert!(
        forbidden.stderr.contains("Forbidden"),
        "{}",
        forbidden.stderr
    );

    // Nothing listens on a port that was just free: a transport error, exit 3.
    let dead = format!(
        "http://127.0.0.1:{}",
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    );
    let env = [
        ("FLEETPLANE_ENDPOINT".to_owned(), dead),
        ("FLEETPLANE_API_KEY".to_owned(), ADMIN_KEY.to_owned()),
    ];
    let unreachable = run_cli(&["project", "list"], &env, None);
    assert_eq!(unreachable.code, 3, "{unreachable:?}");
    assert!(
        unreachable.stderr.contains("cannot reach"),
        "{}",
        unreachable.stderr
    );

    let usage = server.cli(Some(ADMIN_KEY), &["project", "frobnicate"]);
    assert_eq!(usage.code, 2, "{usage:?}");
    let bad_format = server.cli(Some(ADMIN_KEY), &["project", "list", "-o", "xml"]);
    assert_eq!(bad_format.code, 2, "{bad_format:?}");
}

#[tokio::test]
async fn cli_manages_projects_users_keys_and_bindings() {
    let server = Server::start().await;
    let admin = |args: &[&str]| server.cli(Some(ADMIN_KEY), args);
    let created = admin(&[
        "project",
        "create",
        "web",
        "--display-name",
        "Web",
        "--label",
        "env=prod",
        "--description",
        "shop",
        "-o",
        "json",
    ])
    .json();
    assert_eq!(created["metadata"]["labels"], json!({"env": "prod"}));
    assert_eq!(created["metadata"]["description"], "shop");
    assert_eq!(created["spec"]["displayName"], "Web");
    let again = admin(&["project", "create", "web"]);
    assert_eq!(again.code, 1, "a second create must not replace: {again:?}");
    let selected = admin(&["project", "list", "-l", "env=prod", "-o", "json"]).json();
    assert_eq!(names(&selected), ["web"]);

    admin(&["user", "create", "dave", "--email", "dave@example.com"]).ok();
    let users = admin(&["user", "list"]);
    assert!(
        users
            .ok()
            .lines()
            .any(|l| l.starts_with("dave ") && l.contains("dave@example.com")),
        "{}",
        users.stdout
    );
    let bound = admin(&[
        "rolebinding",
        "create",
        "dave-web",
        "--user",
        "dave",
        "--role",
        "project-viewer",
        "-p",
        "web",
    ]);
    bound.ok();
    let no_project = admin(&[
        "rolebinding",
        "create",
        "dave-x",
        "--user",
        "dave",
        "--role",
        "project-admin",
    ]);
    assert_eq!(no_project.code, 1);
    let key = admin(&["apikey", "create", "--user", "dave", "--name", "laptop"]);
    let dave_key = key.ok().trim().to_owned();
    assert!(dave_key.starts_with("fpk_"), "{}", key.stdout);
    assert!(
        key.stderr.contains("shown only this once"),
        "{}",
        key.stderr
    );
    let who = server
        .cli(Some(&dave_key), &["whoami", "-o", "json"])
        .json();
    assert_eq!(who["user"], "dave");
    assert_eq!(
        who["grants"],
        json!([{"role": "project-viewer", "project": "web"}])
    );
    let dave_sees = server
        .cli(Some(&dave_key), &["project", "list", "-o", "json"])
        .json();
    assert_eq!(names(&dave_sees), ["web"]);

    let keys = admin(&["apikey", "list", "--user", "dave", "-o", "json"]).json();
    let id = keys["items"][0]["metadata"]["name"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        !keys.to_string().contains(&dave_key),
        "a list showed a secret"
    );
    admin(&["apikey", "revoke", "--user", "dave", &id]).ok();
    assert_eq!(server.cli(Some(&dave_key), &["whoami"]).code, 1);

    let deleted = admin(&["rolebinding", "delete", "dave-web"]);
    assert!(deleted.stderr.contains("deleted"), "{deleted:?}");
    assert!(deleted.stdout.is_empty());
    admin(&["user", "delete", "dave"]).ok();
    admin(&["project", "delete", "web"]).ok();
    assert_eq!(
        names(&admin(&["project", "list", "-o", "json"]).json()),
        ["default"]
    );

    let audit = admin(&["audit", "list", "--resource", "projects/web", "-o", "json"]).json();
    let actions: Vec<&str> = audit["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["action"].as_str().unwrap())
        .collect();
    assert_eq!(actions, ["delete", "create"], "newest first");
    let limited = admin(&["audit", "list", "--limit", "2", "-o", "json"]).json();
    assert_eq!(limited["items"].as_array().map(Vec::len), Some(2));
}

#[test]
fn cli_completion_scripts_are_generated() {
    for shell in ["bash", "zsh", "fish"] {
        let run = run_cli(&["completion", shell], &[], None);
        let script = run.ok();
        for word in ["fleetplane", "rolebinding", "apikey", "audit"] {
            assert!(script.contains(word), "{shell} completion lacks {word}");
        }
    }
    if support::require_tool("bash") {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("fleetplane.bash");
        std::fs::write(&path, run_cli(&["completion", "bash"], &[], None).stdout).unwrap();
        let check = std::process::Command::new("bash")
            .arg("-n")
            .arg(&path)
            .output()
            .unwrap();
        assert!(
            check.status.success(),
            "{}",
            String::from_utf8_lossy(&check.stderr)
        );
    }
    let help = run_cli(&["--help"], &[], None);
    assert!(help.ok().contains("project"), "{}", help.stdout);
    assert_eq!(run_cli(&[], &[], None).code, 2);
}

#[tokio::test]
async fn console_sign_in_is_rate_limited_per_address() {
    let server = Server::start_with(
        ServerOptions::default()
            .env("FLEETPLANE_RATE_LIMIT_PER_ADDRESS", "1")
            .env("FLEETPLANE_RATE_LIMIT_BURST", "5"),
    )
    .await;
    let mut limited = None;
    for _ in 0..50 {
        let res = server
            .request(Method::POST, "/console/login", None)
            .header("content-type", "application/x-www-form-urlencoded")
            .body("username=admin&password=guess&csrf=x")
            .send()
            .await
            .expect("answer");
        if res.status().as_u16() == 429 {
            limited = Some(res);
            break;
        }
    }
    let res = limited.expect("50 sign-in attempts from one address were never limited");
    assert!(res.headers().get("retry-after").is_some());
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["code"], "RateLimited");
}
