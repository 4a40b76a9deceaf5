//! Cluster templates: composition rules, revisions, locking, delete rules and the variable
//! assignments of their clusters (DESIGN §4.6, §4.8). Clusters are written to the store as the
//! minimal records templates read (docs/templates.md), until the clusters API exists.

use crate::support::*;
use axum::http::{Method, StatusCode};
use fleetplane_api::{refs, templates};
use fleetplane_store::tables::kinds;
use fleetplane_store::{ObjectKey, Precondition, Scope};
use serde_json::{Value, json};

const P: &str = "/v1/projects/default";

fn fixture(path: &str) -> Value {
    let text = std::fs::read_to_string(format!("{}/../../{path}", env!("CARGO_MANIFEST_DIR")))
        .unwrap_or_else(|e| panic!("{path}: {e}"));
    serde_json::from_str(&text).unwrap()
}

fn fields(r: &Reply) -> Vec<String> {
    r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap().to_owned())
        .collect()
}

/// `aws-standard` 1.0.0 and 1.1.0 (1.1.0 adds a required `region` with default `eu`) in project
/// `default`, `observability` 1.0.0 at tenant scope, policy `weekly` in the project.
async fn setup(api: &Api) {
    let aws = fixture("examples/profiles/aws-standard-1.0.0.json");
    let r = api
        .admin(Method::POST, &format!("{P}/profiles:import"), Some(aws))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let obs = fixture("examples/profiles/observability-1.0.0.json");
    let r = api
        .admin(Method::POST, "/v1/profiles:import", Some(obs))
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let r = api
        .admin(
            Method::POST,
            &format!("{P}/profiles/aws-standard/versions"),
            Some(json!({"version": "1.1.0", "from": "1.0.0"})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let path = format!("{P}/profiles/aws-standard/versions/1.1.0");
    let mut v = api.admin(Method::GET, &path, None).await.body;
    v["spec"]["variables"].as_array_mut().unwrap().push(json!({
        "name": "region", "displayName": "Region", "required": true, "defaultValue": "eu"
    }));
    let r = api.admin(Method::PUT, &path, Some(v)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    for (name, cron) in [("weekly", "0 0 * * 0"), ("daily", "0 2 * * *")] {
        let r = api
            .admin(
                Method::PUT,
                &format!("{P}/maintenance-policies/{name}"),
                Some(json!({"spec": {"schedules": [{"name": "w", "cron": cron, "durationHours": 4}]}})),
            )
            .await;
        assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    }
}

fn template(base_version: &str) -> Value {
    json!({"spec": {"cloudType": "aws",
        "profiles": [{"name": "aws-standard", "version": base_version},
                     {"name": "observability", "version": "1.0.0", "scope": "tenant"}],
        "maintenancePolicy": {"name": "weekly"}}})
}

async fn put(api: &Api, name: &str, body: Value) -> Reply {
    api.admin(
        Method::PUT,
        &format!("{P}/cluster-templates/{name}"),
        Some(body),
    )
    .await
}

/// Writes a template cluster record (project `default`) running revision `revision`.
fn cluster(api: &Api, name: &str, template: &str, values: Value, revision: u64) {
    let mut w = api.state.store.write().unwrap();
    let key = ObjectKey::project("default", kinds::CLUSTER, name);
    let body = json!({"metadata": {"name": name},
        "spec": {"template": {"name": template}, "timeZone": "Europe/Berlin", "variables": values},
        "status": {"revision": revision}});
    let member = templates::member_reference(&Scope::Project("default".into()), template);
    w.put(
        &key,
        body.to_string().as_bytes(),
        Precondition::Any,
        &[member],
    )
    .unwrap();
    w.commit().unwrap();
}

fn remove_cluster(api: &Api, name: &str) {
    let mut w = api.state.store.write().unwrap();
    w.delete(
        &ObjectKey::project("default", kinds::CLUSTER, name),
        Precondition::Any,
    )
    .unwrap();
    w.commit().unwrap();
}

#[tokio::test]
async fn composition_rules_answer_their_codes_and_fields() {
    let api = Api::new().await;
    setup(&api).await;

    let mut only_addon = template("1.0.0");
    only_addon["spec"]["profiles"]
        .as_array_mut()
        .unwrap()
        .remove(0);
    let r = put(&api, "t", only_addon).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "TemplateRequiresBaseProfile");
    assert_eq!(fields(&r), ["spec.profiles"]);

    let mut azure = template("1.0.0");
    azure["spec"]["cloudType"] = json!("azure");
    let r = put(&api, "t", azure).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "CloudTypeMismatch");
    assert_eq!(fields(&r), ["spec.profiles[0]"]);

    let mut no_policy = template("1.0.0");
    no_policy["spec"]
        .as_object_mut()
        .unwrap()
        .remove("maintenancePolicy");
    let r = put(&api, "t", no_policy).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "TemplateRequiresPolicy");
    assert_eq!(fields(&r), ["spec.maintenancePolicy"]);

    let mut unknown = template("9.9.9");
    unknown["spec"]["maintenancePolicy"]["name"] = json!("nope");
    let r = put(&api, "t", unknown).await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(
        fields(&r),
        [
            "spec.profiles[0]",
            "spec.profiles",
            "spec.maintenancePolicy.name"
        ]
    );

    // A tenant template may not reference project objects; a project profile is not visible
    // from tenant scope.
    let tenant = json!({"spec": {"cloudType": "aws",
        "profiles": [{"name": "aws-standard", "version": "1.0.0", "scope": "project"}],
        "maintenancePolicy": {"name": "weekly", "scope": "project"}}});
    let r = api
        .admin(Method::PUT, "/v1/cluster-templates/t", Some(tenant))
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(
        fields(&r),
        ["spec.profiles[0].scope", "spec.maintenancePolicy.scope"]
    );

    // A version a standalone cluster uses cannot be linked.
    {
        let mut w = api.state.store.write().unwrap();
        let r = refs::to(
            refs::STANDALONE_USES_PROFILE_VERSION,
            &Scope::Project("default".into()),
            kinds::PROFILE_VERSION,
            "aws-standard/1.1.0",
        );
        w.put(
            &ObjectKey::project("default", kinds::CLUSTER, "edge-1"),
            b"{}",
            Precondition::Any,
            &[r],
        )
        .unwrap();
        w.commit().unwrap();
    }
    let r = put(&api, "t", template("1.1.0")).await;
    assert_problem(
        &r,
        StatusCode::CONFLICT,
        "ProfileVersionUsedByStandaloneCluster",
    );
    assert!(r.body["detail"].as_str().unwrap().contains("edge-1"));

    let r = put(&api, "t", template("1.0.0")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["status"]["revision"], 1);
    assert_eq!(r.body["status"]["state"], "Applied");
    assert_eq!(
        r.body["status"]["profiles"],
        json!([{"name": "aws-standard", "version": "1.0.0", "scope": "project"},
               {"name": "observability", "version": "1.0.0", "scope": "tenant"}])
    );
    // No clusters: the policy's next window in UTC (Sunday 00:00).
    let start = r.body["status"]["nextWindow"]["start"].as_str().unwrap();
    let start: jiff::Timestamp = start.parse().unwrap();
    assert_eq!(
        start.to_zoned(jiff::tz::TimeZone::UTC).weekday(),
        jiff::civil::Weekday::Sunday
    );

    let mut gcp = template("1.0.0");
    gcp["spec"]["cloudType"] = json!("gcp");
    let r = put(&api, "t", gcp).await;
    assert_problem(&r, StatusCode::CONFLICT, "CloudTypeImmutable");
    assert_eq!(fields(&r), ["spec.cloudType"]);
}

#[tokio::test]
async fn revisions_locking_and_delete_rules() {
    let api = Api::new().await;
    setup(&api).await;
    let r = put(&api, "web", template("1.0.0")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);

    // Metadata and policy changes keep the revision; a new set of versions makes a new one.
    let mut body = r.body.clone();
    body["metadata"]["description"] = json!("the web fleet");
    body["spec"]["maintenancePolicy"]["name"] = json!("daily");
    let r = put(&api, "web", body).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"]["revision"], 1);
    let mut body = r.body.clone();
    body["spec"]["profiles"][0]["version"] = json!("1.1.0");
    let r = put(&api, "web", body.clone()).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"]["revision"], 2);
    let r = put(&api, "web", r.body.clone()).await;
    assert_eq!(r.body["status"]["revision"], 2);

    // The linked version is locked and cannot be deleted; the unlinked one can.
    let v = format!("{P}/profiles/aws-standard/versions/1.1.0");
    let got = api.admin(Method::GET, &v, None).await;
    assert_eq!(got.body["status"]["locked"], true);
    let r = api.admin(Method::PUT, &v, Some(got.body.clone())).await;
    assert_problem(&r, StatusCode::CONFLICT, "ProfileVersionLocked");
    let r = api.admin(Method::DELETE, &v, None).await;
    assert_problem(&r, StatusCode::CONFLICT, "ProfileVersionInUse");
    let r = api
        .admin(
            Method::DELETE,
            "/v1/profiles/observability/versions/1.0.0",
            None,
        )
        .await;
    assert_problem(&r, StatusCode::CONFLICT, "ProfileVersionInUse");
    let r = api
        .admin(
            Method::DELETE,
            &format!("{P}/profiles/aws-standard/versions/1.0.0"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    let r = api
        .admin(
            Method::DELETE,
            &format!("{P}/maintenance-policies/daily"),
            None,
        )
        .await;
    assert_problem(&r, StatusCode::CONFLICT, "PolicyInUse");

    // A template with clusters cannot be deleted; deleting it keeps profiles and policy.
    cluster(
        &api,
        "c1",
        "web",
        json!({"aws-standard": {"greeting": "hi"}}),
        2,
    );
    let t = format!("{P}/cluster-templates/web");
    let r = api.admin(Method::DELETE, &t, None).await;
    assert_problem(&r, StatusCode::CONFLICT, "TemplateInUse");
    assert!(r.body["detail"].as_str().unwrap().contains("c1"));
    // Its policy now serves a cluster, so it must keep a schedule.
    let daily = format!("{P}/maintenance-policies/daily");
    let r = api
        .admin(
            Method::PUT,
            &daily,
            Some(json!({"spec": {"schedules": []}})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "PolicyNeedsSchedule");
    assert_eq!(fields(&r), ["spec.schedules"]);
    let r = api.admin(Method::GET, &t, None).await;
    assert_eq!(r.body["status"]["clusters"]["total"], 1);
    let r = api
        .admin(Method::GET, &format!("{P}/cluster-templates"), None)
        .await;
    assert_eq!(r.body["items"][0]["status"]["clusters"]["total"], 1);
    remove_cluster(&api, "c1");
    let r = api.admin(Method::DELETE, &t, None).await;
    assert_eq!(r.status, StatusCode::NO_CONTENT, "{:?}", r.body);
    assert_eq!(
        api.admin(Method::GET, &v, None).await.status,
        StatusCode::OK
    );
    let r = api
        .admin(
            Method::GET,
            &format!("{P}/maintenance-policies/daily"),
            None,
        )
        .await;
    assert_eq!(r.status, StatusCode::OK);
    // Unlinked now: editable again.
    let got = api.admin(Method::GET, &v, None).await;
    assert_eq!(got.body["status"]["locked"], false);
}

fn row<'a>(view: &'a Value, profile: &str, variable: &str, cluster: &str) -> &'a Value {
    let item = view["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["profile"] == profile && i["variable"]["name"] == variable)
        .unwrap_or_else(|| panic!("no {profile}.{variable} in {view}"));
    item["clusters"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["cluster"] == cluster)
        .unwrap_or_else(|| panic!("no {cluster} in {item}"))
}

fn state(r: &Value) -> (&str, &str, &str, &str) {
    (
        r["assignment"].as_str().unwrap(),
        r["assignedBy"].as_str().unwrap(),
        r["runningValue"].as_str().unwrap_or("<none>"),
        r["newValue"].as_str().unwrap(),
    )
}

#[tokio::test]
async fn variable_assignments_follow_section_4_8() {
    let api = Api::new().await;
    setup(&api).await;
    let r = put(&api, "web", template("1.0.0")).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    cluster(
        &api,
        "c1",
        "web",
        json!({"aws-standard": {"greeting": "hi"},
               "observability": {"grafana_admin_password": "supersecret123"}}),
        1,
    );
    cluster(
        &api,
        "c2",
        "web",
        json!({"aws-standard": {"greeting": "hello"}}),
        1,
    );
    let vars = format!("{P}/cluster-templates/web/variables");
    let view = api.admin(Method::GET, &vars, None).await;
    assert_eq!(view.status, StatusCode::OK, "{:?}", view.body);
    let v = &view.body;
    assert_eq!(
        state(row(v, "aws-standard", "greeting", "c1")),
        ("Assigned", "cluster", "hi", "hi")
    );
    // Sensitive values are masked, in the definition too.
    assert_eq!(
        state(row(v, "observability", "grafana_admin_password", "c1")),
        ("Assigned", "cluster", "********", "********")
    );
    assert_eq!(
        state(row(v, "observability", "grafana_admin_password", "c2")),
        ("Pending", "cluster", "<none>", "")
    );
    let t = api
        .admin(Method::GET, &format!("{P}/cluster-templates/web"), None)
        .await;
    assert_eq!(
        t.body["status"]["clusters"],
        json!({"total": 2, "upToDate": 2, "pendingVariables": 1})
    );
    assert_eq!(t.body["status"]["variables"]["unresolved"], 1);
    assert_eq!(t.body["status"]["state"], "Applied");
    assert!(t.body["status"]["nextWindow"]["start"].is_string());

    // A new set is refused while c2 has a Pending variable.
    let r = put(&api, "web", template("1.1.0")).await;
    assert_problem(&r, StatusCode::CONFLICT, "VariablesPending");
    assert!(r.body["detail"].as_str().unwrap().contains("c2"));

    // Bad patches name their fields and change nothing.
    let r = api
        .admin(
            Method::PATCH,
            &vars,
            Some(json!({"assignments": [
                {"profile": "observability", "variable": "grafana_admin_password",
                 "value": "anothersecret1", "clusters": ["c2"]},
                {"profile": "observability", "variable": "retention", "value": "1y"},
                {"profile": "observability", "variable": "nope", "value": "x"},
                {"profile": "aws-standard", "variable": "greeting", "value": "x", "clusters": ["c9"]},
                {"profile": "ghost", "variable": "x", "value": "x"},
                {"profile": "aws-standard", "variable": "greeting"}
            ]})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(
        fields(&r),
        [
            "assignments[1].value",
            "assignments[2].variable",
            "assignments[3].clusters[0]",
            "assignments[4].profile",
            "assignments[5].value"
        ]
    );
    let view = api.admin(Method::GET, &vars, None).await;
    assert_eq!(
        row(&view.body, "observability", "grafana_admin_password", "c2")["assignment"],
        "Pending"
    );

    let r = api
        .admin(
            Method::PATCH,
            &vars,
            Some(json!({"assignments": [{"profile": "observability",
                "variable": "grafana_admin_password", "value": "anothersecret1", "clusters": ["c2"]}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(
        state(row(
            &r.body,
            "observability",
            "grafana_admin_password",
            "c2"
        )),
        ("Assigned", "cluster", "<none>", "********")
    );

    // Now the new set is accepted: a new required variable whose value would be its default is
    // Pending; carried-over values are Assigned.
    let r = put(&api, "web", template("1.1.0")).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body["status"]["revision"], 2);
    assert_eq!(r.body["status"]["state"], "Pending");
    assert_eq!(r.body["status"]["clusters"]["pendingVariables"], 2);
    let view = api.admin(Method::GET, &vars, None).await;
    let v = &view.body;
    assert_eq!(v["revision"], 2);
    for c in ["c1", "c2"] {
        assert_eq!(
            state(row(v, "aws-standard", "region", c)),
            ("Pending", "cluster", "<none>", "eu")
        );
    }
    assert_eq!(
        state(row(v, "aws-standard", "greeting", "c2")),
        ("Assigned", "cluster", "hello", "hello")
    );
    assert_eq!(
        state(row(v, "aws-standard", "replicas", "c1")),
        ("Assigned", "cluster", "1", "1")
    );
    assert_eq!(
        state(row(v, "observability", "grafana_admin_password", "c2")),
        ("Assigned", "cluster", "********", "********")
    );

    // keepRunning needs a running value.
    let r = api
        .admin(
            Method::PATCH,
            &vars,
            Some(
                json!({"assignments": [{"profile": "aws-standard", "variable": "region",
                "keepRunning": true}]}),
            ),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(fields(&r), ["assignments[0].keepRunning"]);
    // Assigning the default explicitly to every cluster settles it; keepRunning confirms.
    let r = api
        .admin(
            Method::PATCH,
            &vars,
            Some(json!({"assignments": [
                {"profile": "aws-standard", "variable": "region", "value": "eu"},
                {"profile": "aws-standard", "variable": "greeting", "keepRunning": true,
                 "clusters": ["c1"]}]})),
        )
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    for item in r.body["items"].as_array().unwrap() {
        for c in item["clusters"].as_array().unwrap() {
            assert_eq!(c["assignment"], "Assigned", "{item}");
        }
    }
    assert_eq!(
        state(row(&r.body, "aws-standard", "greeting", "c1")),
        ("Assigned", "cluster", "hi", "hi")
    );
    let t = api
        .admin(Method::GET, &format!("{P}/cluster-templates/web"), None)
        .await;
    assert_eq!(t.body["status"]["variables"]["unresolved"], 0);
    assert_eq!(t.body["status"]["clusters"]["pendingVariables"], 0);
}
