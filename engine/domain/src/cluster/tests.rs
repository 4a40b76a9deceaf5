use super::desired::*;
use super::*;
use crate::error::ErrorCode;
use crate::profile::{
    Catalog, CloudType, Layer, Macros, PackType, ProfileType, ProfileVersion, RenderedLayer,
    import_document,
};
use crate::template::ProfileRef;
use std::collections::BTreeMap;

fn pool(name: &str, control_plane: bool, count: u32) -> NodePool {
    NodePool {
        name: name.into(),
        control_plane,
        count,
        instance_type: "m5.large".into(),
    }
}

fn template_spec() -> ClusterSpec {
    ClusterSpec {
        template: Some(TemplateRef {
            name: "edge".into(),
            scope: None,
        }),
        cloud_account: "simulator".into(),
        time_zone: Some("Europe/Berlin".into()),
        labels: [("env".to_owned(), "prod".to_owned())].into(),
        node_pools: vec![pool("cp", true, 3), pool("workers", false, 5)],
        ..ClusterSpec::default()
    }
}

fn standalone_spec() -> ClusterSpec {
    ClusterSpec {
        template: None,
        profiles: vec![
            pref("aws-standard", "1.0.0"),
            pref("observability", "1.0.0"),
        ],
        time_zone: None,
        ..template_spec()
    }
}

fn pref(name: &str, version: &str) -> ProfileRef {
    ProfileRef {
        name: name.into(),
        version: version.into(),
        scope: None,
        variables: vec![],
    }
}

fn fields(e: &crate::DomainError) -> Vec<&str> {
    e.errors.iter().map(|f| f.field.as_str()).collect()
}

#[test]
fn valid_specs_pass() {
    validate_spec(&template_spec()).unwrap();
    validate_spec(&standalone_spec()).unwrap();
    let mut utc = standalone_spec();
    for zone in [
        "UTC",
        "utc",
        "Asia/Kolkata",
        "america/new_york",
        "Etc/GMT+5",
    ] {
        utc.time_zone = Some(zone.into());
        validate_spec(&utc).unwrap();
    }
}

#[test]
fn every_rule_of_validate_spec_names_its_field() {
    type Mutation = fn(&mut ClusterSpec);
    let cases: &[(&str, Mutation, &[&str])] = &[
        ("both", |s| s.profiles = vec![pref("a", "1.0.0")], &["spec"]),
        ("neither", |s| s.template = None, &["spec"]),
        (
            "bad template name",
            |s| {
                s.template = Some(TemplateRef {
                    name: "Edge".into(),
                    scope: None,
                })
            },
            &["spec.template.name"],
        ),
        (
            "template needs a zone",
            |s| s.time_zone = None,
            &["spec.timeZone"],
        ),
        (
            "unknown zone",
            |s| s.time_zone = Some("Mars/Olympus".into()),
            &["spec.timeZone"],
        ),
        (
            "empty zone",
            |s| s.time_zone = Some(String::new()),
            &["spec.timeZone"],
        ),
        (
            "long zone",
            |s| s.time_zone = Some("A".repeat(100)),
            &["spec.timeZone"],
        ),
        (
            "no account",
            |s| s.cloud_account = String::new(),
            &["spec.cloudAccount"],
        ),
        (
            "bad account",
            |s| s.cloud_account = "My Account".into(),
            &["spec.cloudAccount"],
        ),
        ("no pools", |s| s.node_pools.clear(), &["spec.nodePools"]),
        (
            "too many pools",
            |s| {
                s.node_pools = (0..=MAX_NODE_POOLS)
                    .map(|i| pool(&format!("p{i}"), i == 0, 1))
                    .collect();
            },
            &["spec.nodePools"],
        ),
        (
            "no control plane",
            |s| s.node_pools[0].control_plane = false,
            &["spec.nodePools"],
        ),
        (
            "two control planes",
            |s| s.node_pools[1] = pool("cp2", true, 1),
            &["spec.nodePools[1].controlPlane"],
        ),
        (
            "bad pool name",
            |s| s.node_pools[1].name = "w_1".into(),
            &["spec.nodePools[1].name"],
        ),
        (
            "duplicate pool",
            |s| s.node_pools[1].name = "cp".into(),
            &["spec.nodePools[1].name"],
        ),
        (
            "zero workers",
            |s| s.node_pools[1].count = 0,
            &["spec.nodePools[1].count"],
        ),
        (
            "too many workers",
            |s| s.node_pools[1].count = 1001,
            &["spec.nodePools[1].count"],
        ),
        (
            "even control plane",
            |s| s.node_pools[0].count = 2,
            &["spec.nodePools[0].count"],
        ),
        (
            "seven control planes",
            |s| s.node_pools[0].count = 7,
            &["spec.nodePools[0].count"],
        ),
        (
            "no instance type",
            |s| s.node_pools[0].instance_type = String::new(),
            &["spec.nodePools[0].instanceType"],
        ),
        (
            "spaced instance type",
            |s| s.node_pools[0].instance_type = "m5 large".into(),
            &["spec.nodePools[0].instanceType"],
        ),
        (
            "control char",
            |s| s.node_pools[0].instance_type = "m5\n".into(),
            &["spec.nodePools[0].instanceType"],
        ),
        (
            "long instance type",
            |s| s.node_pools[0].instance_type = "x".repeat(65),
            &["spec.nodePools[0].instanceType"],
        ),
        (
            "bad label key",
            |s| {
                s.labels.insert("-env".into(), "x".into());
            },
            &["spec.labels.-env"],
        ),
        (
            "bad label value",
            |s| {
                s.labels.insert("tier".into(), "a b".into());
            },
            &["spec.labels.tier"],
        ),
        (
            "too many labels",
            |s| {
                s.labels = (0..=MAX_CLUSTER_LABELS)
                    .map(|i| (format!("k{i}"), "v".into()))
                    .collect()
            },
            &["spec.labels"],
        ),
        (
            "bad variable profile",
            |s| {
                s.variables.insert(
                    "Bad_Profile".into(),
                    [("x".to_owned(), "1".to_owned())].into(),
                );
            },
            &["spec.variables.Bad_Profile"],
        ),
        (
            "bad variable name",
            |s| {
                s.variables.insert(
                    "aws-standard".into(),
                    [("not-ident".to_owned(), "1".to_owned())].into(),
                );
            },
            &["spec.variables.aws-standard.not-ident"],
        ),
        (
            "huge value",
            |s| {
                s.variables.insert(
                    "aws-standard".into(),
                    [("greeting".to_owned(), "x".repeat(64 * 1024 + 1))].into(),
                );
            },
            &["spec.variables.aws-standard.greeting"],
        ),
    ];
    for (what, mutate, want) in cases {
        let mut s = template_spec();
        mutate(&mut s);
        let e = validate_spec(&s).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFailed, "{what}");
        assert_eq!(fields(&e), *want, "{what}: {e:?}");
    }
    let standalone: &[(&str, Mutation, &[&str])] = &[
        ("standalone zone is optional", |s| s.time_zone = None, &[]),
        (
            "bad profile name",
            |s| s.profiles[1].name = "Obs".into(),
            &["spec.profiles[1].name"],
        ),
        (
            "duplicate profile",
            |s| {
                s.profiles[1].name = "aws-standard".into();
                s.profiles[1].scope = Some(crate::template::RefScope::Tenant);
            },
            &["spec.profiles[1].name"],
        ),
        (
            "no version",
            |s| s.profiles[0].version = String::new(),
            &["spec.profiles[0].version"],
        ),
        (
            "loose version",
            |s| s.profiles[0].version = "v1.0".into(),
            &["spec.profiles[0].version"],
        ),
        (
            "template-style variables",
            |s| {
                s.profiles[0].variables = vec![crate::template::TemplateVariable {
                    name: "greeting".into(),
                    value: "hi".into(),
                    assign_strategy: crate::template::AssignStrategy::All,
                }];
            },
            &["spec.profiles[0].variables"],
        ),
        (
            "too many profiles",
            |s| {
                s.profiles = (0..=MAX_CLUSTER_PROFILES)
                    .map(|i| pref(&format!("p{i}"), "1.0.0"))
                    .collect()
            },
            &["spec.profiles"],
        ),
    ];
    for (what, mutate, want) in standalone {
        let mut s = standalone_spec();
        mutate(&mut s);
        let got = validate_spec(&s).err();
        let got: Vec<String> = got
            .iter()
            .flat_map(|e| e.errors.iter().map(|f| f.field.clone()))
            .collect();
        assert_eq!(got, *want, "{what}");
    }
}

#[test]
fn validate_spec_reports_every_problem_at_once() {
    let s = ClusterSpec {
        template: None,
        profiles: vec![],
        cloud_account: String::new(),
        time_zone: Some("Nowhere/Town".into()),
        labels: [("ok".to_owned(), "bad value".to_owned())].into(),
        variables: BTreeMap::new(),
        node_pools: vec![pool("w", false, 0)],
    };
    let e = validate_spec(&s).unwrap_err();
    assert_eq!(
        fields(&e),
        [
            "spec",
            "spec.timeZone",
            "spec.cloudAccount",
            "spec.nodePools[0].count",
            "spec.nodePools",
            "spec.labels.ok"
        ]
    );
}

#[test]
fn specs_are_strict_camel_case_json() {
    let json = serde_json::json!({
        "template": {"name": "edge"},
        "cloudAccount": "simulator",
        "timeZone": "UTC",
        "nodePools": [{"name": "cp", "controlPlane": true, "count": 1, "instanceType": "m5.large"}]
    });
    let spec: ClusterSpec = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(serde_json::to_value(&spec).unwrap(), json);
    let mut extra = json.clone();
    extra["nodepools"] = serde_json::json!([]);
    assert!(serde_json::from_value::<ClusterSpec>(extra).is_err());
    let mut extra = json;
    extra["nodePools"][0]["size"] = 3.into();
    assert!(serde_json::from_value::<ClusterSpec>(extra).is_err());
}

#[test]
fn status_serializes_sparsely_and_conditions_keep_their_transition_time() {
    let t0: jiff::Timestamp = "2025-01-01T00:00:00Z".parse().unwrap();
    let t1: jiff::Timestamp = "2025-01-01T00:05:00Z".parse().unwrap();
    let t2: jiff::Timestamp = "2025-01-01T00:10:00Z".parse().unwrap();
    let mut s = ClusterStatus::provisioning();
    assert_eq!(
        serde_json::to_value(&s).unwrap(),
        serde_json::json!({"phase": "Provisioning", "health": "Unknown"})
    );
    s.set_condition("Ready", false, "Provisioning", "creating machines", t0);
    s.set_condition("Ready", false, "Provisioning", "3 of 8 machines", t1);
    assert_eq!(s.conditions.len(), 1);
    assert_eq!(s.conditions[0].last_transition_time, t0);
    assert_eq!(s.conditions[0].message, "3 of 8 machines");
    s.set_condition("Ready", true, "Running", "", t2);
    assert_eq!(s.condition("Ready").unwrap().last_transition_time, t2);
    s.set_condition("Healthy", true, "Checked", "", t2);
    assert_eq!(s.conditions.len(), 2);
    s.phase = ClusterPhase::Running;
    s.revision = Some(2);
    s.next_window = Some(NextWindow { start: t1, end: t2 });
    let v = serde_json::to_value(&s).unwrap();
    assert_eq!(v["phase"], "Running");
    assert_eq!(v["conditions"][0]["type"], "Ready");
    assert_eq!(v["nextWindow"]["start"], "2025-01-01T00:05:00Z");
    assert_eq!(
        v["conditions"][0]["lastTransitionTime"],
        "2025-01-01T00:10:00Z"
    );
    assert!(v.get("desiredRevision").is_none() && v.get("nodes").is_none());
    let back: ClusterStatus = serde_json::from_value(v).unwrap();
    assert_eq!(back, s);
}

// ---- profile versions -------------------------------------------------------------------------

fn example(bytes: &[u8]) -> ProfileVersion {
    let imported = import_document(bytes).unwrap();
    imported.validate(&Catalog::builtin()).unwrap();
    imported.version
}

fn aws_standard() -> ProfileVersion {
    example(include_bytes!(
        "../../../../examples/profiles/aws-standard-1.0.0.json"
    ))
}

fn observability() -> ProfileVersion {
    example(include_bytes!(
        "../../../../examples/profiles/observability-1.0.0.json"
    ))
}

fn with_type(v: &ProfileVersion, name: &str, t: ProfileType, c: CloudType) -> ProfileVersion {
    let mut v = v.clone();
    v.metadata.name = name.into();
    v.spec.profile_type = t;
    v.spec.cloud_type = c;
    v
}

#[test]
fn standalone_sets_follow_the_template_rules() {
    let base = aws_standard();
    let obs = observability();
    assert!(check_standalone_set(&[&obs, &base]).is_ok());
    assert_eq!(base_cloud_type(&[&obs, &base]), Some(CloudType::Aws));
    let aws_addon = with_type(&obs, "aws-addon", ProfileType::Addon, CloudType::Aws);
    assert!(check_standalone_set(&[&base, &aws_addon]).is_ok());

    let e = check_standalone_set(&[&obs]).unwrap_err();
    assert_eq!(
        (e.code, fields(&e)),
        (
            ErrorCode::TemplateRequiresBaseProfile,
            vec!["spec.profiles"]
        )
    );
    let infra = with_type(&base, "infra", ProfileType::Infra, CloudType::Aws);
    let e = check_standalone_set(&[&base, &infra]).unwrap_err();
    assert_eq!(
        (e.code, fields(&e)),
        (
            ErrorCode::TemplateRequiresBaseProfile,
            vec!["spec.profiles"]
        )
    );

    let gcp_addon = with_type(&obs, "gcp-addon", ProfileType::Addon, CloudType::Gcp);
    let e = check_standalone_set(&[&base, &obs, &gcp_addon]).unwrap_err();
    assert_eq!(
        (e.code, fields(&e)),
        (ErrorCode::CloudTypeMismatch, vec!["spec.profiles[2]"])
    );
    // without a base, add-ons must still agree with each other; both problems are reported
    let e = check_standalone_set(&[&aws_addon, &gcp_addon]).unwrap_err();
    assert_eq!(e.code, ErrorCode::ValidationFailed);
    assert_eq!(fields(&e), ["spec.profiles[1]", "spec.profiles"]);
    assert!(check_standalone_set(&[]).is_err());
}

fn linked<'a>(v: &'a ProfileVersion, template: &[(&str, &str)]) -> LinkedProfile<'a> {
    LinkedProfile {
        version: v,
        scope: None,
        template_values: template
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
    }
}

fn given(entries: &[(&str, &str, &str)]) -> ClusterVariables {
    let mut m = ClusterVariables::new();
    for (p, v, val) in entries {
        m.entry((*p).to_owned())
            .or_default()
            .insert((*v).to_owned(), (*val).to_owned());
    }
    m
}

#[test]
fn effective_values_prefer_template_then_cluster_then_default() {
    let base = aws_standard();
    let obs = observability();
    let profiles = [
        linked(&base, &[("greeting", "Hello fleet"), ("pod_cidr", "")]),
        linked(&obs, &[]),
    ];
    let values = effective_values(
        &profiles,
        &given(&[
            ("aws-standard", "replicas", "3"),
            ("aws-standard", "pod_cidr", "10.10.0.0/16"),
            (
                "observability",
                "grafana_admin_password",
                "correct horse battery",
            ),
            ("observability", "retention", ""),
        ]),
    )
    .unwrap();
    let want = given(&[
        ("aws-standard", "greeting", "Hello fleet"), // the template's
        ("aws-standard", "replicas", "3"),           // the cluster's
        ("aws-standard", "pod_cidr", "10.10.0.0/16"), // an empty template value fixes nothing
        (
            "observability",
            "grafana_admin_password",
            "correct horse battery",
        ),
        ("observability", "retention", "10d"), // empty means unset: the default
        ("observability", "storage_gib", "50"), // the default
    ]);
    assert_eq!(values, want);
}

#[test]
fn effective_values_report_every_problem() {
    let base = aws_standard();
    let obs = observability();
    let profiles = [linked(&base, &[("greeting", "Hello")]), linked(&obs, &[])];
    let e = effective_values(
        &profiles,
        &given(&[
            ("aws-standard", "greeting", "Hi"),
            ("aws-standard", "replicas", "2"),
            ("aws-standard", "nope", "1"),
            ("logging", "level", "debug"),
            ("observability", "storage_gib", "0"),
        ]),
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::ValidationFailed);
    let got: Vec<(&str, &str)> = e
        .errors
        .iter()
        .map(|f| (f.field.as_str(), f.message.as_str()))
        .collect();
    assert_eq!(got.len(), 6, "{got:#?}");
    let has = |field: &str, needle: &str| {
        assert!(
            got.iter().any(|(f, m)| *f == field && m.contains(needle)),
            "{field} {needle}: {got:#?}"
        );
    };
    has(
        "spec.variables.aws-standard.greeting",
        "set by the template",
    );
    has("spec.variables.aws-standard.nope", "has no variable");
    has("spec.variables.logging", "uses no profile");
    has("spec.variables.aws-standard.replicas", "one of the options");
    has("spec.variables.observability.storage_gib", "must match");
    has(
        "spec.variables.observability.grafana_admin_password",
        "is required",
    );
    // messages never repeat a value (it may be sensitive)
    assert!(got.iter().all(|(_, m)| !m.contains("\"0\"")));
}

#[test]
fn a_template_value_that_no_longer_fits_is_reported_as_the_templates() {
    let base = aws_standard();
    let profiles = [linked(&base, &[("greeting", "x"), ("replicas", "7")])];
    let e = effective_values(&profiles, &ClusterVariables::new()).unwrap_err();
    assert_eq!(fields(&e), ["spec.variables.aws-standard.replicas"]);
    assert!(
        e.errors[0].message.starts_with("the template's value"),
        "{e:?}"
    );
}

fn render_example() -> (ProfileVersion, ProfileVersion) {
    (aws_standard(), observability())
}

fn desired_for(
    base: &ProfileVersion,
    obs: &ProfileVersion,
    greeting: &str,
) -> Result<DesiredCluster, crate::DomainError> {
    let mut spec = standalone_spec();
    spec.time_zone = Some("America/New_York".into());
    // the add-on first: the base still renders first
    let profiles = [linked(obs, &[]), linked(base, &[])];
    let values = effective_values(
        &profiles,
        &given(&[
            ("aws-standard", "greeting", greeting),
            (
                "observability",
                "grafana_admin_password",
                "correct horse battery",
            ),
        ]),
    )?;
    let macros = Macros(
        [(
            "registry_mirror".to_owned(),
            "mirror.example.com".to_owned(),
        )]
        .into(),
    );
    desired_cluster(
        "edge-1",
        "retail",
        &spec,
        &profiles,
        &values,
        &macros,
        CloudType::Aws,
    )
}

#[test]
fn desired_cluster_renders_the_example_profiles() {
    let (base, obs) = render_example();
    let d = desired_for(&base, &obs, "Hello").unwrap();
    assert_eq!(d.os_image, "ubuntu-aws-24.04");
    assert_eq!(d.kubernetes_version, "1.33.4");
    let order: Vec<(&str, &str)> = d
        .layers
        .iter()
        .map(|l| (l.profile.as_str(), l.layer.name.as_str()))
        .collect();
    assert_eq!(
        order,
        [
            ("aws-standard", "ubuntu-aws"),
            ("aws-standard", "kubernetes"),
            ("aws-standard", "cni-calico"),
            ("aws-standard", "csi-aws-ebs"),
            ("aws-standard", "hello-universe"),
            ("observability", "prometheus-operator"),
        ]
    );
    let k8s = &d.layers[1].layer.values;
    assert!(k8s.contains("kubernetesVersion: v1.33.4"), "{k8s}");
    assert!(k8s.contains("imageRepository: mirror.example.com"), "{k8s}");
    assert!(k8s.contains("podCIDR: \"192.168.0.0/16\""), "{k8s}");
    let prom = &d.layers[5].layer.values;
    assert!(prom.contains("project: \"retail\""), "{prom}");
    assert!(prom.contains("cluster: \"edge-1\""), "{prom}");
    insta::assert_json_snapshot!("desired_cluster_aws_standard_observability", d);
}

#[test]
fn desired_cluster_errors_keep_render_field_paths() {
    let (base, obs) = render_example();
    let profiles = [linked(&base, &[]), linked(&obs, &[])];
    // values that bypassed effective_values: render_version still checks them
    let values = given(&[("aws-standard", "replicas", "5")]);
    let e = desired_cluster(
        "edge-1",
        "retail",
        &standalone_spec(),
        &profiles,
        &values,
        &Macros::default(),
        CloudType::Aws,
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::ValidationFailed);
    assert_eq!(
        fields(&e),
        [
            "spec.variables.aws-standard.greeting",
            "spec.variables.aws-standard.replicas",
            "spec.variables.observability.grafana_admin_password"
        ]
    );
    assert!(e.errors[0].message.contains("cluster \"edge-1\""), "{e:?}");

    let only_addon = [linked(&obs, &[])];
    let e = desired_cluster(
        "edge-1",
        "retail",
        &standalone_spec(),
        &only_addon,
        &ClusterVariables::new(),
        &Macros::default(),
        CloudType::Aws,
    )
    .unwrap_err();
    assert_eq!(e.code, ErrorCode::TemplateRequiresBaseProfile);
}

#[test]
fn system_values_come_from_the_caller_and_the_spec() {
    let mut base = aws_standard();
    base.spec.layers[0].values = "tz: {{ system.cluster.timezone }}\nuid: {{ system.cluster.uid }}\naccount: {{ system.cloudaccount.name }}\ncloud: {{ system.cloud.type }}\nk8s: {{ system.kubernetes.version }}\n".into();
    let mut obs = observability();
    obs.spec.layers[0].values =
        "k8s: {{ system.kubernetes.version }}\ntz: {{ system.cluster.timezone }}\n".into();
    obs.spec.variables.clear();
    let profiles = [linked(&base, &[]), linked(&obs, &[])];
    let values = given(&[("aws-standard", "greeting", "Hi")]);
    let system = crate::profile::SystemValues {
        cluster_name: "edge-1".into(),
        cluster_uid: "0191-uid".into(),
        ..Default::default()
    };
    let mut spec = standalone_spec();
    spec.time_zone = Some("Asia/Tokyo".into());
    let d = desired_cluster_with(
        &system,
        &spec,
        &profiles,
        &values,
        &Macros::default(),
        CloudType::Aws,
    )
    .unwrap();
    assert_eq!(
        d.layers[0].layer.values,
        "tz: Asia/Tokyo\nuid: 0191-uid\naccount: simulator\ncloud: aws\nk8s: 1.33.4\n"
    );
    // an add-on sees the base profile's Kubernetes version
    assert_eq!(d.layers[5].layer.values, "k8s: 1.33.4\ntz: Asia/Tokyo\n");
    spec.time_zone = None;
    let d = desired_cluster(
        "edge-1",
        "",
        &spec,
        &profiles,
        &values,
        &Macros::default(),
        CloudType::Aws,
    )
    .unwrap();
    assert_eq!(d.layers[5].layer.values, "k8s: 1.33.4\ntz: UTC\n");
}

#[test]
fn digests_are_stable_and_follow_every_change() {
    let (base, obs) = render_example();
    let a = desired_for(&base, &obs, "Hello").unwrap();
    let b = desired_for(&base, &obs, "Hello").unwrap();
    let da = desired_digest(&a);
    assert_eq!(da, desired_digest(&b));
    let hex = da.strip_prefix("sha256:").unwrap();
    assert_eq!(hex.len(), 64);
    assert!(
        hex.bytes()
            .all(|c| c.is_ascii_hexdigit() && !c.is_ascii_uppercase())
    );
    // the digest of the canonical JSON, not of an in-memory layout
    let via_json = {
        use sha2::Digest as _;
        format!(
            "sha256:{}",
            hex::encode(sha2::Sha256::digest(serde_json::to_vec(&a).unwrap()))
        )
    };
    assert_eq!(da, via_json);
    let c = desired_for(&base, &obs, "Hello!").unwrap();
    assert_ne!(da, desired_digest(&c));
    let mut d = a.clone();
    d.node_pools[1].count += 1;
    assert_ne!(da, desired_digest(&d));
}

fn rl(layer: Layer, name: &str, version: &str, values: &str) -> DesiredLayer {
    DesiredLayer {
        profile: "p".into(),
        layer: RenderedLayer {
            name: name.into(),
            layer,
            pack_type: PackType::Catalog,
            version: version.into(),
            values: values.into(),
            manifests: vec![],
        },
    }
}

#[test]
fn only_os_and_k8s_changes_replace_machines() {
    let stack = |os: &str, k8s: &str, k8s_values: &str, addon: &str| {
        vec![
            rl(Layer::Os, "ubuntu-aws", os, "pack:\n  release: noble\n"),
            rl(Layer::K8s, "kubernetes", k8s, k8s_values),
            rl(Layer::Cni, "cni-calico", "3.30.2", "a: 1\n"),
            rl(Layer::Addon, "hello-universe", addon, "replicas: 1\n"),
        ]
    };
    let k8s_values = "pack:\n  podCIDR: 10.0.0.0/16\n  k8sHardening: true\n";
    let old = stack("24.04", "1.33.4", k8s_values, "1.2.0");
    let cases: Vec<(&str, Vec<DesiredLayer>, bool)> = vec![
        ("same", old.clone(), false),
        (
            "add-on version",
            stack("24.04", "1.33.4", k8s_values, "1.3.0"),
            false,
        ),
        (
            "os version",
            stack("22.04", "1.33.4", k8s_values, "1.2.0"),
            true,
        ),
        (
            "k8s version",
            stack("24.04", "1.34.1", k8s_values, "1.2.0"),
            true,
        ),
        (
            "k8s values",
            stack(
                "24.04",
                "1.33.4",
                "pack:\n  podCIDR: 10.1.0.0/16\n  k8sHardening: true\n",
                "1.2.0",
            ),
            true,
        ),
        (
            "k8s comment, order and layout only",
            stack(
                "24.04",
                "1.33.4",
                "# hardened\npack: {k8sHardening: true, podCIDR: 10.0.0.0/16}\n",
                "1.2.0",
            ),
            false,
        ),
        (
            "k8s layer gone",
            old.iter()
                .filter(|l| l.layer.layer != Layer::K8s)
                .cloned()
                .collect(),
            true,
        ),
        (
            "os pack swapped",
            {
                let mut s = old.clone();
                s[0].layer.name = "rhel-aws".into();
                s
            },
            true,
        ),
        (
            "cni values",
            {
                let mut s = old.clone();
                s[2].layer.values = "a: 2\n".into();
                s
            },
            false,
        ),
    ];
    for (what, new, want) in cases {
        assert_eq!(replaces_machines(&old, &new), want, "{what}");
        assert_eq!(replaces_machines(&new, &old), want, "{what} (reversed)");
    }
    // unparsable values compare as text
    let a = vec![rl(Layer::Os, "u", "1", "a: [")];
    let b = vec![rl(Layer::Os, "u", "1", "a:  [")];
    assert!(replaces_machines(&a, &b));
    assert!(!replaces_machines(&a, &a.clone()));
}

#[test]
fn kubernetes_never_goes_down_a_minor() {
    let cases = [
        ("1.31.4", "1.31.4", Ok(())),
        ("1.31.4", "1.32.0", Ok(())),
        ("1.31.4", "1.33.1", Ok(())),
        ("1.31.4", "2.0.0", Ok(())),
        ("1.31.4", "1.31.2", Ok(())), // patch rollback within a minor
        ("v1.31.4", "1.31.5", Ok(())),
        ("1.31", "1.31.9", Ok(())),
        ("1.32.0-rc.1", "1.32.0", Ok(())),
        ("1.32.0", "1.31.12", Err(ErrorCode::KubernetesDowngrade)),
        ("v1.33.4", "v1.30.0", Err(ErrorCode::KubernetesDowngrade)),
        ("2.0.0", "1.99.0", Err(ErrorCode::KubernetesDowngrade)),
        ("1.31.4", "latest", Err(ErrorCode::ValidationFailed)),
        ("1.31.4.1", "1.31.4", Err(ErrorCode::ValidationFailed)),
        ("", "1.31.4", Err(ErrorCode::ValidationFailed)),
        ("1.x.0", "1.31.4", Err(ErrorCode::ValidationFailed)),
    ];
    for (from, to, want) in cases {
        let got = check_kubernetes_change(from, to).map_err(|e| e.code);
        assert_eq!(got, want, "{from} -> {to}");
    }
    let e = check_kubernetes_change("1.32.0", "1.31.12").unwrap_err();
    assert_eq!(e.code.http_status(), 409);
    assert!(e.detail.contains("1.32"), "{}", e.detail);
}

proptest::proptest! {
    #[test]
    fn validate_spec_never_panics(
        template in proptest::option::of(".{0,20}"),
        profile in ".{0,20}",
        version in ".{0,20}",
        account in ".{0,70}",
        zone in proptest::option::of(".{0,40}"),
        label in (".{0,70}", ".{0,70}"),
        var in (".{0,20}", ".{0,20}", ".{0,20}"),
        pools in proptest::collection::vec((".{0,20}", proptest::bool::ANY, proptest::num::u32::ANY, ".{0,70}"), 0..4),
    ) {
        let spec = ClusterSpec {
            template: template.map(|name| TemplateRef { name, scope: None }),
            profiles: vec![pref(&profile, &version)],
            cloud_account: account,
            time_zone: zone,
            labels: [label].into(),
            variables: given(&[(&var.0, &var.1, &var.2)]),
            node_pools: pools
                .into_iter()
                .map(|(name, control_plane, count, instance_type)| NodePool { name, control_plane, count, instance_type })
                .collect(),
        };
        let _ = validate_spec(&spec);
    }

    #[test]
    fn kubernetes_check_never_panics(from in ".{0,20}", to in ".{0,20}") {
        let _ = check_kubernetes_change(&from, &to);
    }
}
