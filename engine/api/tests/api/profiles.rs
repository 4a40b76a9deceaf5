//! Cluster profiles, versions, import/export, render preview, packs and macros (DESIGN §4.1–§4.4).

use crate::support::*;
use axum::body::Body;
use axum::http::{Method, Request, StatusCode};
use fleetplane_api::refs;
use fleetplane_store::tables::kinds;
use fleetplane_store::{ObjectKey, Precondition, Scope};
use http_body_util::BodyExt;
use serde_json::{Value, json};
use tower::ServiceExt;

fn fixture(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn aws() -> Value {
    fixture("examples/profiles/aws-standard-1.0.0.json")
}

fn observability() -> Value {
    fixture("examples/profiles/observability-1.0.0.json")
}

fn palette() -> Value {
    fixture("engine/domain/tests/fixtures/palette-edge-web.json")
}

fn fields(r: &Reply) -> Vec<String> {
    r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

async fn import(api: &Api, base: &str, doc: Value) -> Reply {
    api.admin(Method::POST, &format!("{base}/profiles:import"), Some(doc))
        .await
}

/// A version body (`PUT`) made from an export document.
fn version_body(doc: &Value) -> Value {
    let t = &doc["spec"]["template"];
    json!({"metadata": {"labels": doc["metadata"]["labels"], "description": doc["metadata"]["description"]},
           "spec": {"type": t["type"], "cloudType": t["cloudType"], "layers": t["packs"],
                    "variables": doc["spec"]["variables"]}})
}

/// Writes a reference from a (simulated) template or cluster to a profile version.
fn reference(api: &Api, from: ObjectKey, relation: &'static str, version_key: &str) {
    let mut w = api.state.store.write().unwrap();
    let r = refs::to(
        relation,
        &Scope::Tenant,
        kinds::PROFILE_VERSION,
        version_key,
    );
    w.put(&from, b"{}", Precondition::Any, &[r]).unwrap();
    w.commit().unwrap();
}

#[tokio::test]
async fn imports_both_examples_and_palette_and_lists_profiles() {
    let api = Api::new().await;
    let r = import(&api, "/v1", aws()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["format"], "fleetplane");
    assert_eq!(r.body["rewrites"], 0);
    assert_eq!(r.body["version"]["metadata"]["name"], "aws-standard");
    assert_eq!(r.body["version"]["spec"]["version"], "1.0.0");
    assert_eq!(r.body["version"]["status"]["locked"], false);

    // The observability example as a multipart upload.
    let boundary = "XyZ";
    let doc = observability().to_string();
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"o.json\"\r\n\
         Content-Type: application/json\r\n\r\n{doc}\r\n--{boundary}--\r\n"
    );
    let req = Request::builder()
        .method(Method::POST)
        .uri("/v1/profiles:import")
        .header("authorization", format!("Bearer {ADMIN}"))
        .header(
            "content-type",
            format!("multipart/form-data; boundary={boundary}"),
        )
        .body(Body::from(body))
        .unwrap();
    let res = fleetplane_api::router(api.state.clone())
        .oneshot(req)
        .await
        .unwrap();
    let status = res.status();
    let bytes = res.into_body().collect().await.unwrap().to_bytes();
    let v: Value = serde_json::from_slice(&bytes).unwrap();
    assert_eq!(status, StatusCode::CREATED, "{v:?}");
    assert_eq!(v["version"]["metadata"]["name"], "observability");

    let r = import(&api, "/v1", palette()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["format"], "palette");
    assert!(r.body["rewrites"].as_u64().unwrap() > 0, "{:?}", r.body);
    assert_eq!(r.body["version"]["spec"]["type"], "full");

    let r = api.admin(Method::GET, "/v1/profiles", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let items: Vec<(String, String, String, Value)> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            (
                p["metadata"]["name"].as_str().unwrap().to_owned(),
                p["spec"]["type"].as_str().unwrap().to_owned(),
                p["spec"]["cloudType"].as_str().unwrap().to_owned(),
                p["status"]["versions"].clone(),
            )
        })
        .collect();
    assert_eq!(
        items,
        [
            (
                "aws-standard".into(),
                "full".into(),
                "aws".into(),
                json!(["1.0.0"])
            ),
            (
                "edge-web".into(),
                "full".into(),
                "aws".into(),
                json!(["2.1.0"])
            ),
            (
                "observability".into(),
                "addon".into(),
                "all".into(),
                json!(["1.0.0"])
            ),
        ]
    );

    // Duplicate name and version.
    let r = import(&api, "/v1", aws()).await;
    assert_problem(&r, StatusCode::CONFLICT, "AlreadyExists");
}

#[tokio::test]
async fn export_then_import_under_a_new_version_is_identical() {
    let api = Api::new().await;
    import(&api, "/v1", aws()).await;
    let r = api
        .admin(
            Method::GET,
            "/v1/profiles/aws-standard/versions/1.0.0:export",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body, aws(), "the example is exactly what export produces");
    let mut doc = r.body.clone();
    doc["spec"]["version"] = json!("1.0.1");
    let r = import(&api, "/v1", doc).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let a = api
        .admin(
            Method::GET,
            "/v1/profiles/aws-standard/versions/1.0.0",
            None,
        )
        .await;
    let b = api
        .admin(
            Method::GET,
            "/v1/profiles/aws-standard/versions/1.0.1",
            None,
        )
        .await;
    let mut sa = a.body["spec"].clone();
    sa["version"] = json!("1.0.1");
    assert_eq!(sa, b.body["spec"]);
    assert_eq!(a.body["metadata"]["labels"], b.body["metadata"]["labels"]);
    assert_eq!(
        a.body["metadata"]["description"],
        b.body["metadata"]["description"]
    );
    let r = api
        .admin(Method::GET, "/v1/profiles/aws-standard/versions", None)
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn version_rules_answer_their_codes_and_fields() {
    let api = Api::new().await;
    import(&api, "/v1", aws()).await;

    // Type and cloud type are the profile's.
    let r = api
        .admin(
            Method::PUT,
            "/v1/profiles/aws-standard/versions/2.0.0",
            Some(version_body(&observability())),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ProfileTypeMismatch");
    assert_eq!(fields(&r), ["spec.type", "spec.cloudType"]);
    let mut doc = observability();
    doc["metadata"]["name"] = json!("aws-standard");
    doc["spec"]["version"] = json!("2.0.0");
    let r = import(&api, "/v1", doc).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ProfileTypeMismatch");
    assert_eq!(
        fields(&r),
        ["spec.template.type", "spec.template.cloudType"]
    );

    // Every missing pack is listed.
    let mut doc = aws();
    doc["metadata"]["name"] = json!("broken");
    doc["spec"]["template"]["packs"][1]["version"] = json!("1.99.0");
    doc["spec"]["template"]["packs"][4]["name"] = json!("no-such-pack");
    let r = import(&api, "/v1", doc).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "PackNotFound");
    let f = fields(&r);
    assert!(f.len() >= 2, "{f:?}");
    assert!(f[0].starts_with("spec.template.packs[1]"), "{f:?}");
    assert!(
        f.iter().any(|x| x.starts_with("spec.template.packs[4]")),
        "{f:?}"
    );
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("kubernetes@1.99.0") && detail.contains("no-such-pack"),
        "{detail}"
    );

    // Values may only use defined variables.
    let mut body = version_body(&aws());
    body["spec"]["layers"][4]["values"] = json!("replicas: {{ var.nope }}\n");
    let r = api
        .admin(
            Method::PUT,
            "/v1/profiles/aws-standard/versions/1.1.0",
            Some(body),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "UndefinedVariable");
    assert_eq!(fields(&r), ["spec.layers[4].values"]);

    // Strict SemVer in the path; the body's version must agree with it.
    for bad in ["v1.2", "1.2", "1.2.3.4", "1.0.0+b1"] {
        let r = api
            .admin(
                Method::PUT,
                &format!("/v1/profiles/aws-standard/versions/{bad}"),
                Some(version_body(&aws())),
            )
            .await;
        assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
        assert_eq!(fields(&r), ["version"], "{bad}");
    }
    let mut body = version_body(&aws());
    body["spec"]["version"] = json!("3.0.0");
    let r = api
        .admin(
            Method::PUT,
            "/v1/profiles/aws-standard/versions/1.2.0",
            Some(body),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(fields(&r), ["spec.version"]);

    // POST copies; `from` is required and must exist.
    let r = api
        .admin(
            Method::POST,
            "/v1/profiles/aws-standard/versions",
            Some(json!({"version": "1.3.0"})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(fields(&r), ["from"]);
    let r = api
        .admin(
            Method::POST,
            "/v1/profiles/aws-standard/versions",
            Some(json!({"version": "1.3.0", "from": "9.9.9"})),
        )
        .await;
    assert_eq!(fields(&r), ["from"]);
    let r = api
        .admin(
            Method::POST,
            "/v1/profiles/aws-standard/versions",
            Some(json!({"version": "1.3.0", "from": "1.0.0"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        r.body["spec"]["layers"],
        version_body(&aws())["spec"]["layers"]
    );
    let r = api
        .admin(
            Method::POST,
            "/v1/profiles/aws-standard/versions",
            Some(json!({"version": "1.3.0", "from": "1.0.0"})),
        )
        .await;
    assert_problem(&r, StatusCode::CONFLICT, "AlreadyExists");
}

#[tokio::test]
async fn linked_versions_are_locked_and_used_versions_cannot_be_deleted() {
    let api = Api::new().await;
    import(&api, "/v1", aws()).await;
    let path = "/v1/profiles/aws-standard/versions/1.0.0";
    // Editable while nothing links it.
    let got = api.admin(Method::GET, path, None).await;
    let r = api.admin(Method::PUT, path, Some(got.body.clone())).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);

    reference(
        &api,
        ObjectKey::project("default", kinds::CLUSTER_TEMPLATE, "web"),
        refs::TEMPLATE_LINKS_PROFILE_VERSION,
        "aws-standard/1.0.0",
    );
    reference(
        &api,
        ObjectKey::project("default", kinds::CLUSTER, "edge-1"),
        refs::STANDALONE_USES_PROFILE_VERSION,
        "aws-standard/1.0.0",
    );
    let r = api.admin(Method::GET, path, None).await;
    assert_eq!(
        r.body["status"],
        json!({"locked": true, "templates": 1, "clusters": 1})
    );
    let r = api.admin(Method::PUT, path, Some(got.body.clone())).await;
    assert_problem(&r, StatusCode::CONFLICT, "ProfileVersionLocked");
    let r = api.admin(Method::DELETE, path, None).await;
    assert_problem(&r, StatusCode::CONFLICT, "ProfileVersionInUse");
    let detail = r.body["detail"].as_str().unwrap();
    assert!(
        detail.contains("default/web") && detail.contains("default/edge-1"),
        "{detail}"
    );

    // A copy of a locked version is a new, editable version.
    let r = api
        .admin(
            Method::POST,
            "/v1/profiles/aws-standard/versions",
            Some(json!({"version": "1.1.0", "from": "1.0.0"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["status"]["locked"], false);
    let r = api
        .admin(
            Method::DELETE,
            "/v1/profiles/aws-standard/versions/1.1.0",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);

    // Deleting the last version deletes the profile.
    import(&api, "/v1", observability()).await;
    let r = api
        .admin(
            Method::DELETE,
            "/v1/profiles/observability/versions/1.0.0",
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = api
        .admin(Method::GET, "/v1/profiles/observability", None)
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "NotFound");
    let r = api
        .admin(Method::GET, "/v1/profiles/aws-standard", None)
        .await;
    assert_eq!(r.body["status"]["versions"], json!(["1.0.0"]));
}

#[tokio::test]
async fn sensitive_defaults_are_write_only() {
    let api = Api::new().await;
    let mut body = version_body(&observability());
    body["spec"]["variables"][0]["defaultValue"] = json!("s3cret-password-42");
    let path = "/v1/profiles/observability/versions/1.0.0";
    let r = api.admin(Method::PUT, path, Some(body)).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["spec"]["variables"][0]["defaultValue"], "********");
    let got = api.admin(Method::GET, path, None).await;
    assert_eq!(got.body["spec"]["variables"][0]["defaultValue"], "********");
    let r = api
        .admin(Method::GET, &format!("{path}:export"), None)
        .await;
    assert_eq!(r.body["spec"]["variables"][0]["defaultValue"], "********");
    assert!(!r.body.to_string().contains("s3cret-password-42"));
    // PUT of what GET returned keeps the stored default.
    let r = api.admin(Method::PUT, path, Some(got.body)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let stored = {
        let rd = api.state.store.read().unwrap();
        let key = ObjectKey::tenant(kinds::PROFILE_VERSION, "observability/1.0.0");
        String::from_utf8(rd.get(&key).unwrap().unwrap().body).unwrap()
    };
    assert!(stored.contains("s3cret-password-42"));
    // The audit log never shows it.
    let r = api.admin(Method::GET, "/v1/audit-events", None).await;
    assert!(!r.body.to_string().contains("s3cret-password-42"));
    // Nor does the render preview: the caller gives the value (the mask itself does not match
    // this variable's pattern, so it cannot stand in).
    let r = api
        .admin(Method::POST, &format!("{path}:render"), Some(json!({})))
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(fields(&r), ["values.grafana_admin_password"]);
    let r = api
        .admin(
            Method::POST,
            &format!("{path}:render"),
            Some(
                json!({"values": {"grafana_admin_password": "given-for-preview"},
                        "cluster": {"clusterName": "c1", "projectName": "default"}}),
            ),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let values = r.body["layers"][0]["values"].as_str().unwrap();
    assert!(
        values.contains("adminPassword: \"given-for-preview\""),
        "{values}"
    );
}

#[tokio::test]
async fn render_preview_uses_values_macros_and_system_values() {
    let api = Api::new().await;
    import(&api, "/v1", aws()).await;
    let path = "/v1/profiles/aws-standard/versions/1.0.0:render";
    let r = api
        .admin(
            Method::POST,
            path,
            Some(json!({"values": {"greeting": "hi there"}, "cluster": {"clusterName": "edge-1", "clusterUid": "u-1"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    let layers = r.body["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 5);
    let text = |i: usize| r.body["layers"][i]["values"].as_str().unwrap().to_owned();
    assert!(text(0).contains("Bootstrapping edge-1"), "{}", text(0));
    assert!(
        text(1).contains("imageRepository: registry.k8s.io"),
        "{}",
        text(1)
    );
    assert!(text(1).contains("kubernetesVersion: v1.33.4"));
    assert!(text(4).contains("greeting: \"hi there\""), "{}", text(4));

    // A missing required value is a 400 naming profile and variable.
    let r = api.admin(Method::POST, path, Some(json!({}))).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(fields(&r), ["spec.variables.aws-standard.greeting"]);
    assert!(
        r.body["errors"][0]["message"]
            .as_str()
            .unwrap()
            .contains("aws-standard")
    );

    // A tenant macro, overridden by a project macro for project profiles.
    let r = api
        .admin(
            Method::PUT,
            "/v1/macros/registry_mirror",
            Some(json!({"spec": {"value": "mirror.example.com"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let body = json!({"values": {"greeting": "x"}});
    let r = api.admin(Method::POST, path, Some(body.clone())).await;
    assert!(
        r.body["layers"][1]["values"]
            .as_str()
            .unwrap()
            .contains("imageRepository: mirror.example.com")
    );
    let r = import(&api, "/v1/projects/default", aws()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = api
        .admin(
            Method::PUT,
            "/v1/projects/default/macros/registry_mirror",
            Some(json!({"spec": {"value": "proj.example.com"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = api
        .admin(
            Method::POST,
            "/v1/projects/default/profiles/aws-standard/versions/1.0.0:render",
            Some(body.clone()),
        )
        .await;
    assert!(
        r.body["layers"][1]["values"]
            .as_str()
            .unwrap()
            .contains("imageRepository: proj.example.com")
    );

    // A render error names the profile, the layer and the line.
    let mut v = version_body(&aws());
    v["spec"]["layers"][4]["values"] = json!("a: 1\nb: {{ macro.undefined_one }}\n");
    let r = api
        .admin(
            Method::PUT,
            "/v1/profiles/aws-standard/versions/1.5.0",
            Some(v),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = api
        .admin(
            Method::POST,
            "/v1/profiles/aws-standard/versions/1.5.0:render",
            Some(body),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(fields(&r), ["spec.layers[4].values"]);
    let msg = r.body["errors"][0]["message"].as_str().unwrap();
    assert!(
        msg.contains("aws-standard") && msg.contains("hello-universe") && msg.contains("line 2"),
        "{msg}"
    );

    // Unknown actions.
    let r = api
        .admin(
            Method::POST,
            "/v1/profiles/aws-standard/versions/1.0.0:explode",
            Some(json!({})),
        )
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "NotFound");
}

#[tokio::test]
async fn project_scope_and_permissions() {
    let api = Api::new().await;
    let r = import(&api, "/v1/projects/default", observability()).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["version"]["metadata"]["project"], "default");
    let r = api.admin(Method::GET, "/v1/profiles", None).await;
    assert_eq!(r.body["items"], json!([]));
    let r = api
        .admin(Method::GET, "/v1/projects/default/profiles", None)
        .await;
    assert_eq!(r.body["items"][0]["metadata"]["name"], "observability");
    let r = import(&api, "/v1/projects/nope", observability()).await;
    assert_problem(&r, StatusCode::NOT_FOUND, "NotFound");
    import(&api, "/v1", aws()).await;

    let viewer = api
        .user_with_role("val", "project-viewer", Some("default"))
        .await;
    let call = |m: Method, p: &'static str, b: Option<Value>| {
        let viewer = viewer.clone();
        let api = &api;
        async move { api.call(m, p, Some(&viewer), b, &[]).await }
    };
    let r = call(Method::GET, "/v1/projects/default/profiles", None).await;
    assert_eq!(r.status, StatusCode::OK);
    // Tenant catalogs are readable by every member.
    let r = call(
        Method::GET,
        "/v1/profiles/aws-standard/versions/1.0.0",
        None,
    )
    .await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(Method::GET, "/v1/packs", None).await;
    assert_eq!(r.status, StatusCode::OK);
    let r = call(
        Method::POST,
        "/v1/projects/default/profiles:import",
        Some(aws()),
    )
    .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "Forbidden");
    let r = call(
        Method::POST,
        "/v1/projects/default/profiles/observability/versions",
        Some(json!({"version": "1.1.0", "from": "1.0.0"})),
    )
    .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "Forbidden");
    let r = call(
        Method::PUT,
        "/v1/packs/my-chart",
        Some(json!({"spec": {"layer": "addon", "type": "helm", "registry": "https://charts.example.com", "versions": [{"version": "1.0.0"}]}})),
    )
    .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "Forbidden");
    let r = call(
        Method::DELETE,
        "/v1/profiles/aws-standard/versions/1.0.0",
        None,
    )
    .await;
    assert_problem(&r, StatusCode::FORBIDDEN, "Forbidden");
}

#[tokio::test]
async fn packs_merge_builtin_and_custom_ones() {
    let api = Api::new().await;
    let r = api.admin(Method::GET, "/v1/packs", None).await;
    let names: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["metadata"]["name"].as_str().unwrap())
        .collect();
    assert!(names.contains(&"kubernetes") && names.contains(&"hello-universe"));
    let r = api.admin(Method::GET, "/v1/packs/kubernetes", None).await;
    assert_eq!(r.body["spec"]["layer"], "k8s");
    assert_eq!(r.body["spec"]["type"], "catalog");

    let chart = json!({"spec": {"layer": "addon", "type": "helm", "registry": "https://charts.example.com",
                                "versions": [{"version": "2.0.0", "defaultValues": "a: 1\n"}, {"version": "1.0.0"}]}});
    let r = api
        .admin(Method::PUT, "/v1/packs/my-chart", Some(chart))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(
        r.body["spec"]["versions"][0]["version"], "1.0.0",
        "oldest first"
    );
    let r = api.admin(Method::GET, "/v1/packs?limit=2", None).await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 2);
    assert!(r.body["continue"].is_string());
    let r = api
        .admin(
            Method::GET,
            "/v1/packs?labelSelector=!fleetplane.io/builtin",
            None,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(r.body["items"][0]["metadata"]["name"], "my-chart");

    // A profile may use it; then it cannot be deleted.
    let mut doc = observability();
    doc["metadata"]["name"] = json!("custom");
    doc["spec"]["template"]["packs"] = json!([{"name": "my-chart", "layer": "addon", "type": "helm",
                                                "version": "1.0.0", "values": "a: 2\n"}]);
    doc["spec"]["variables"] = json!([]);
    let r = import(&api, "/v1", doc).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = api.admin(Method::DELETE, "/v1/packs/my-chart", None).await;
    assert_problem(&r, StatusCode::CONFLICT, "Conflict");
    let r = api
        .admin(Method::DELETE, "/v1/profiles/custom/versions/1.0.0", None)
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = api.admin(Method::DELETE, "/v1/packs/my-chart", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);

    // Built-in names are reserved.
    let r = api
        .admin(
            Method::PUT,
            "/v1/packs/kubernetes",
            Some(json!({"spec": {"layer": "k8s", "type": "helm", "registry": "https://x.example.com", "versions": [{"version": "1.0.0"}]}})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(fields(&r), ["metadata.name"]);
    let r = api
        .admin(Method::DELETE, "/v1/packs/kubernetes", None)
        .await;
    assert_problem(&r, StatusCode::CONFLICT, "Conflict");
}

#[tokio::test]
async fn macros_have_identifier_names() {
    let api = Api::new().await;
    let r = api
        .admin(
            Method::PUT,
            "/v1/macros/DNS_zone",
            Some(json!({"spec": {"value": "example.com"}})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = api
        .admin(
            Method::PUT,
            "/v1/macros/bad-name",
            Some(json!({"spec": {"value": "x"}})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(fields(&r), ["metadata.name"]);
    let r = api.admin(Method::GET, "/v1/macros", None).await;
    assert_eq!(r.body["items"][0]["spec"]["value"], "example.com");
    let r = api.admin(Method::DELETE, "/v1/macros/DNS_zone", None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT);
    let r = api
        .admin(
            Method::PUT,
            "/v1/projects/nope/macros/a",
            Some(json!({"spec": {"value": "x"}})),
        )
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "NotFound");
}
