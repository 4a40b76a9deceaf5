//! Cluster templates: composition rules, revisions, locking, delete rules and the variable
//! assignments of their clusters (DESIGN §4.6, §4.8). Clusters are written to the store through
//! `clusters::save` with only the fields templates read (no cloud account, no deploy run).

use crate::support::*;
use axum::http::{Method, StatusCode};
use fleetplane_api::resource::ObjectOf;
use fleetplane_api::{clusters, refs, templates};
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

/// Writes a template cluster record (project `default`) running revision `revision`, as the
/// server writes clusters (`clusters::save`, which keeps the template's summary current).
fn cluster(api: &Api, name: &str, template: &str, values: Value, revision: u64) {
    let mut w = api.state.store.write().unwrap();
    let key = ObjectKey::project("default", kinds::CLUSTER, name);
    let body = json!({"metadata": {"name": name},
        "spec": {"template": {"name": template}, "timeZone": "Europe/Berlin", "variables": values},
        "status": {"revision": revision, "phase": "Running"}});
    let obj: ObjectOf<clusters::Cluster> = serde_json::from_value(body).unwrap();
    clusters::save(&mut *w, &key, &obj).unwrap();
    w.commit().unwrap();
}

/// Deletes a cluster as the server does once its delete run ends (`clusters::forget`).
fn remove_cluster(api: &Api, name: &str) {
    let mut w = api.state.store.write().unwrap();
    let key = ObjectKey::project("default", kinds::CLUSTER, name);
    let obj = clusters::load_key(&*w, &key).unwrap().unwrap();
    clusters::forget(&mut *w, &key, &obj).unwrap();
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

/// One change to a template's members, as the server makes them.
#[derive(Debug, Clone)]
enum MemberOp {
    /// Writes cluster `c` (new, or replacing it) attached to the template.
    Put {
        c: usize,
        zone: usize,
        revision: Option<u64>,
        phase: usize,
        greeting: Option<u8>,
    },
    /// A lifecycle transition: revision and phase only.
    Status {
        c: usize,
        revision: Option<u64>,
        phase: usize,
    },
    /// Another time zone.
    Zone { c: usize, zone: usize },
    /// The cluster's own values change.
    Values {
        c: usize,
        greeting: Option<u8>,
        region: Option<u8>,
    },
    /// Deleted (its delete run ended).
    Forget { c: usize },
    /// Detached: standalone, its assignments gone.
    Detach { c: usize },
    /// A standalone cluster attached again.
    Attach { c: usize },
    /// The template links the other base version: a new revision (refused while variables
    /// are Pending).
    Revision,
    /// The template's fleet-wide greeting (`assignStrategy: all`) set or removed: no new
    /// revision, but the proposals change.
    FleetValue { value: Option<u8> },
    /// `PATCH …/variables` of a variable for one cluster or all.
    Assign {
        variable: usize,
        value: u8,
        only: Option<usize>,
    },
}

const ZONES: [&str; 3] = ["Europe/Berlin", "Asia/Tokyo", "America/New_York"];
const PHASES: [&str; 5] = ["Provisioning", "Running", "Updating", "Failed", "Deleting"];
const MEMBERS: usize = 5;

fn member_op() -> impl proptest::strategy::Strategy<Value = MemberOp> {
    use proptest::prelude::*;
    let c = 0..MEMBERS;
    let revision = proptest::option::of(1u64..4);
    prop_oneof![
        3 => (c.clone(), 0..ZONES.len(), revision.clone(), 0..PHASES.len(),
              proptest::option::of(0u8..3))
            .prop_map(|(c, zone, revision, phase, greeting)| MemberOp::Put {
                c, zone, revision, phase, greeting
            }),
        4 => (c.clone(), revision, 0..PHASES.len())
            .prop_map(|(c, revision, phase)| MemberOp::Status { c, revision, phase }),
        1 => (c.clone(), 0..ZONES.len()).prop_map(|(c, zone)| MemberOp::Zone { c, zone }),
        2 => (c.clone(), proptest::option::of(0u8..3), proptest::option::of(0u8..3))
            .prop_map(|(c, greeting, region)| MemberOp::Values { c, greeting, region }),
        1 => c.clone().prop_map(|c| MemberOp::Forget { c }),
        1 => c.clone().prop_map(|c| MemberOp::Detach { c }),
        1 => c.clone().prop_map(|c| MemberOp::Attach { c }),
        2 => Just(MemberOp::Revision),
        1 => proptest::option::of(0u8..3).prop_map(|value| MemberOp::FleetValue { value }),
        2 => (0usize..2, 0u8..3, proptest::option::of(c))
            .prop_map(|(variable, value, only)| MemberOp::Assign { variable, value, only }),
    ]
}

/// Applies `op` to template `t`'s members (names prefixed with `t`).
async fn apply_member_op(api: &Api, t: &str, op: &MemberOp, base: &mut &'static str) {
    let scope = Scope::Project("default".into());
    let name = |c: usize| format!("{t}-c{c}");
    let key = |c: usize| ObjectKey::project("default", kinds::CLUSTER, name(c));
    let load = |c: usize| {
        let r = api.state.store.read().unwrap();
        clusters::load_key(&*r, &key(c)).unwrap()
    };
    let save = |c: usize, obj: &ObjectOf<clusters::Cluster>| {
        let mut w = api.state.store.write().unwrap();
        clusters::save(&mut *w, &key(c), obj).unwrap();
        w.commit().unwrap();
    };
    let values = |greeting: Option<u8>, region: Option<u8>| {
        let mut m = serde_json::Map::new();
        if let Some(g) = greeting {
            m.insert("greeting".into(), json!(format!("g{g}")));
        }
        if let Some(r) = region {
            m.insert("region".into(), json!(format!("r{r}")));
        }
        if m.is_empty() {
            json!({})
        } else {
            json!({ "aws-standard": m })
        }
    };
    match op {
        MemberOp::Put {
            c,
            zone,
            revision,
            phase,
            greeting,
        } => {
            let body = json!({"metadata": {"name": name(*c)},
                "spec": {"template": {"name": t}, "timeZone": ZONES[*zone],
                         "variables": values(*greeting, None)},
                "status": {"revision": revision, "phase": PHASES[*phase]}});
            save(*c, &serde_json::from_value(body).unwrap());
        }
        MemberOp::Status { c, revision, phase } => {
            if let Some(mut obj) = load(*c) {
                obj.status.revision = *revision;
                obj.status.phase = serde_json::from_value(json!(PHASES[*phase])).unwrap();
                save(*c, &obj);
            }
        }
        MemberOp::Zone { c, zone } => {
            if let Some(mut obj) = load(*c) {
                obj.spec.time_zone = Some(ZONES[*zone].to_owned());
                save(*c, &obj);
            }
        }
        MemberOp::Values {
            c,
            greeting,
            region,
        } => {
            if let Some(mut obj) = load(*c) {
                obj.spec.variables = serde_json::from_value(values(*greeting, *region)).unwrap();
                save(*c, &obj);
            }
        }
        MemberOp::Forget { c } => {
            if let Some(obj) = load(*c) {
                let mut w = api.state.store.write().unwrap();
                clusters::forget(&mut *w, &key(*c), &obj).unwrap();
                w.commit().unwrap();
            }
        }
        MemberOp::Detach { c } => {
            if let Some(mut obj) = load(*c)
                && obj.spec.template.take().is_some()
            {
                let mut w = api.state.store.write().unwrap();
                clusters::save(&mut *w, &key(*c), &obj).unwrap();
                let a = templates::assignment_key(&scope, t, &key(*c));
                if w.get(&a).unwrap().is_some() {
                    w.delete(&a, Precondition::Any).unwrap();
                }
                w.commit().unwrap();
            }
        }
        MemberOp::Attach { c } => {
            if let Some(mut obj) = load(*c)
                && obj.spec.template.is_none()
            {
                obj.spec.template = serde_json::from_value(json!({"name": t})).unwrap();
                save(*c, &obj);
            }
        }
        MemberOp::Revision => {
            let next = if *base == "1.0.0" { "1.1.0" } else { "1.0.0" };
            let path = format!("{P}/cluster-templates/{t}");
            let mut body = api.admin(Method::GET, &path, None).await.body;
            body["spec"]["profiles"][0]["version"] = json!(next);
            if put(api, t, body).await.status == StatusCode::OK {
                *base = next;
            }
        }
        MemberOp::FleetValue { value } => {
            let path = format!("{P}/cluster-templates/{t}");
            let mut body = api.admin(Method::GET, &path, None).await.body;
            body["spec"]["profiles"][0]["variables"] = match value {
                Some(v) => json!([{"name": "greeting", "value": format!("all{v}"),
                                   "assignStrategy": "all"}]),
                None => json!([]),
            };
            let r = put(api, t, body).await;
            assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
        }
        MemberOp::Assign {
            variable,
            value,
            only,
        } => {
            let variable = ["greeting", "region"][*variable];
            let mut e = json!({"profile": "aws-standard",
                "variable": variable, "value": format!("v{value}")});
            if let Some(c) = only {
                e["clusters"] = json!([name(*c)]);
            }
            // Refused (400) when the revision has no such variable or the cluster is not a
            // member: nothing is written then.
            api.admin(
                Method::PATCH,
                &format!("{P}/cluster-templates/{t}/variables"),
                Some(json!({ "assignments": [e] })),
            )
            .await;
        }
    }
}

/// The kept summary equals a full recount after any sequence of member changes, and the
/// template's status shows it.
#[test]
fn the_member_summary_always_equals_a_recount() {
    use proptest::test_runner::{Config, TestRunner};
    let rt = tokio::runtime::Runtime::new().unwrap();
    let api = rt.block_on(async {
        let api = Api::new().await;
        setup(&api).await;
        api
    });
    let case = std::sync::atomic::AtomicUsize::new(0);
    let mut runner = TestRunner::new(Config {
        cases: 40,
        ..Config::default()
    });
    let ops = proptest::collection::vec(member_op(), 1..24);
    runner
        .run(&ops, |ops| {
            let t = format!(
                "p{}",
                case.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
            );
            rt.block_on(async {
                let r = put(&api, &t, template("1.0.0")).await;
                assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
                let scope = Scope::Project("default".into());
                let mut base = "1.0.0";
                for (i, op) in ops.iter().enumerate() {
                    apply_member_op(&api, &t, op, &mut base).await;
                    let r = api.state.store.read().unwrap();
                    let kept = templates::read_summary(&*r, &scope, &t).unwrap();
                    let counted = templates::recounted(&*r, &scope, &t).unwrap();
                    assert_eq!(kept, counted, "after op {i} {op:?} of {ops:?}");
                }
                let counted = {
                    let r = api.state.store.read().unwrap();
                    templates::recounted(&*r, &scope, &t).unwrap().unwrap()
                };
                let shown = api
                    .admin(Method::GET, &format!("{P}/cluster-templates/{t}"), None)
                    .await
                    .body;
                assert_eq!(
                    shown["status"]["clusters"],
                    json!({"total": counted.total, "upToDate": counted.up_to_date(),
                           "pendingVariables": counted.pending_variables})
                );
                assert_eq!(
                    shown["status"]["variables"],
                    json!({"resolved": counted.variables.resolved,
                           "unresolved": counted.variables.unresolved})
                );
            });
            Ok(())
        })
        .unwrap();
}
