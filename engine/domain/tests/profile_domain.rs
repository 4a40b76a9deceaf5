//! Cluster profiles end to end inside the domain crate: every rule of DESIGN §4.2–§4.4 as a table
//! of bad inputs (code and field path), the example profiles, the Palette fixture, rendering
//! snapshots, the export→import round trip, and property tests for the fuzzing entry points.

use fleetplane_domain::profile::import::rewrite_palette;
use fleetplane_domain::profile::macros::{Macro, Macros, SystemValues};
use fleetplane_domain::profile::pack::{Layer, Pack, PackSpec, PackType, PackVersion};
use fleetplane_domain::profile::variable::{Format, InputType, MASK, Variable, VariableOption};
use fleetplane_domain::profile::version::{
    CloudType, LayerSpec, Manifest, ProfileType, ProfileVersion, ProfileVersionSpec,
    ProfileVersionStatus,
};
use fleetplane_domain::profile::{
    Catalog, ImportFormat, TemplateContext, check_profile_type, check_template, compile_regex,
    copy_version, export_document, import_document, render_template, render_version,
    validate_format, validate_value, validate_version,
};
use fleetplane_domain::{DomainError, ErrorCode, Metadata};
use proptest::prelude::*;
use std::collections::BTreeMap;

const AWS_EXAMPLE: &str = include_str!("../../../examples/profiles/aws-standard-1.0.0.json");
const OBSERVABILITY_EXAMPLE: &str =
    include_str!("../../../examples/profiles/observability-1.0.0.json");
const PALETTE_FIXTURE: &str = include_str!("fixtures/palette-edge-web.json");

// ---- helpers --------------------------------------------------------------------------------

fn layer(name: &str, layer: Layer, version: &str, values: &str) -> LayerSpec {
    LayerSpec {
        name: name.into(),
        layer,
        pack_type: PackType::Catalog,
        version: version.into(),
        values: values.into(),
        manifests: vec![],
    }
}

fn var(name: &str) -> Variable {
    Variable {
        name: name.into(),
        display_name: name.to_uppercase(),
        ..Variable::default()
    }
}

/// A valid full AWS version to break one rule at a time.
fn base() -> ProfileVersion {
    ProfileVersion {
        kind: String::new(),
        metadata: Metadata {
            name: "aws-base".into(),
            ..Metadata::default()
        },
        spec: ProfileVersionSpec {
            version: "1.0.0".into(),
            profile_type: ProfileType::Full,
            cloud_type: CloudType::Aws,
            layers: vec![
                layer("ubuntu-aws", Layer::Os, "24.04", "pack: {}\n"),
                layer(
                    "kubernetes",
                    Layer::K8s,
                    "1.33.4",
                    "pack:\n  podCIDR: \"{{ var.cidr }}\"\n",
                ),
                layer("cni-calico", Layer::Cni, "3.30.2", ""),
                layer("csi-aws-ebs", Layer::Csi, "1.45.0", ""),
                layer(
                    "hello-universe",
                    Layer::Addon,
                    "1.2.0",
                    "greeting: {{ var.greeting | quote }}\n",
                ),
            ],
            variables: vec![
                Variable {
                    required: true,
                    ..var("greeting")
                },
                Variable {
                    format: Format::Ipv4cidr,
                    default_value: "10.0.0.0/16".into(),
                    ..var("cidr")
                },
            ],
        },
        status: ProfileVersionStatus::default(),
    }
}

fn addon_base() -> ProfileVersion {
    let mut v = base();
    v.spec.profile_type = ProfileType::Addon;
    v.spec.cloud_type = CloudType::All;
    v.spec.layers = vec![layer("cert-manager", Layer::Addon, "1.18.2", "a: 1\n")];
    v.spec.variables.clear();
    v
}

fn fields(e: &DomainError) -> Vec<&str> {
    e.errors.iter().map(|f| f.field.as_str()).collect()
}

/// Checks that `result` failed with `code` and has a problem at every field of `want`.
fn expect(case: &str, result: Result<(), DomainError>, code: ErrorCode, want: &[&str]) {
    let e = result.expect_err(case);
    assert_eq!(e.code, code, "{case}: {e:?}");
    for f in want {
        assert!(
            fields(&e).contains(f),
            "{case}: no problem at {f}; got {:?}",
            e.errors
        );
    }
}

// ---- §4.2 profile versions ------------------------------------------------------------------

#[test]
fn the_base_version_is_valid() {
    validate_version(&base(), &Catalog::builtin()).unwrap();
    validate_version(&addon_base(), &Catalog::builtin()).unwrap();
}

#[test]
fn version_rules_table() {
    type Edit = fn(&mut ProfileVersion);
    let cases: &[(&str, Edit, ErrorCode, &[&str])] = &[
        (
            "v prefix",
            |v| v.spec.version = "v1.2".into(),
            ErrorCode::ValidationFailed,
            &["spec.version"],
        ),
        (
            "four parts",
            |v| v.spec.version = "1.2.3.4".into(),
            ErrorCode::ValidationFailed,
            &["spec.version"],
        ),
        (
            "build metadata",
            |v| v.spec.version = "1.0.0+b1".into(),
            ErrorCode::ValidationFailed,
            &["spec.version"],
        ),
        (
            "missing version",
            |v| v.spec.version.clear(),
            ErrorCode::ValidationFailed,
            &["spec.version"],
        ),
        (
            "bad name",
            |v| v.metadata.name = "Aws_Base".into(),
            ErrorCode::ValidationFailed,
            &["metadata.name"],
        ),
        (
            "all for full",
            |v| v.spec.cloud_type = CloudType::All,
            ErrorCode::ValidationFailed,
            &["spec.cloudType"],
        ),
        (
            "infra with an add-on",
            |v| v.spec.profile_type = ProfileType::Infra,
            ErrorCode::ValidationFailed,
            &["spec.layers[4].layer"],
        ),
        (
            "infra without csi",
            |v| {
                v.spec.profile_type = ProfileType::Infra;
                v.spec.layers.truncate(3);
            },
            ErrorCode::ValidationFailed,
            &["spec.layers"],
        ),
        (
            "full without os",
            |v| {
                v.spec.layers.remove(0);
            },
            ErrorCode::ValidationFailed,
            &["spec.layers"],
        ),
        (
            "two k8s layers",
            |v| {
                let mut dup = v.spec.layers[1].clone();
                dup.name = "k8s-two".into();
                v.spec.layers.push(dup);
            },
            ErrorCode::ValidationFailed,
            &["spec.layers[5].layer"],
        ),
        (
            "addon with a core layer",
            |v| {
                v.spec.profile_type = ProfileType::Addon;
                v.spec.cloud_type = CloudType::All;
            },
            ErrorCode::ValidationFailed,
            &[
                "spec.layers[0].layer",
                "spec.layers[1].layer",
                "spec.layers[2].layer",
                "spec.layers[3].layer",
            ],
        ),
        (
            "addon without layers",
            |v| {
                v.spec.profile_type = ProfileType::Addon;
                v.spec.layers.clear();
            },
            ErrorCode::ValidationFailed,
            &["spec.layers"],
        ),
        (
            "same pack twice",
            |v| v.spec.layers.push(v.spec.layers[4].clone()),
            ErrorCode::ValidationFailed,
            &["spec.layers[5].name"],
        ),
        (
            "pack on the wrong layer",
            |v| v.spec.layers[2].layer = Layer::Csi,
            ErrorCode::ValidationFailed,
            &["spec.layers[2].layer"],
        ),
        (
            "pack of the wrong type",
            |v| v.spec.layers[4].pack_type = PackType::Helm,
            ErrorCode::ValidationFailed,
            &["spec.layers[4].type"],
        ),
        (
            "pack for another cloud",
            |v| v.spec.layers[0] = layer("ubuntu-azure", Layer::Os, "24.04", ""),
            ErrorCode::ValidationFailed,
            &["spec.layers[0].name"],
        ),
        (
            "unknown pack",
            |v| v.spec.layers[4].name = "no-such-pack".into(),
            ErrorCode::PackNotFound,
            &["spec.layers[4].name"],
        ),
        (
            "unknown pack version",
            |v| v.spec.layers[1].version = "1.99.0".into(),
            ErrorCode::PackNotFound,
            &["spec.layers[1].version"],
        ),
        (
            "values not YAML",
            |v| v.spec.layers[0].values = "a: 1\n  b: [{{ system.cluster.name }}\n".into(),
            ErrorCode::ValidationFailed,
            &["spec.layers[0].values"],
        ),
        (
            "values two documents",
            |v| v.spec.layers[0].values = "a: 1\n---\nb: 2\n".into(),
            ErrorCode::ValidationFailed,
            &["spec.layers[0].values"],
        ),
        (
            "template syntax",
            |v| v.spec.layers[0].values = "a: {{ var.greeting | }}\n".into(),
            ErrorCode::ValidationFailed,
            &["spec.layers[0].values"],
        ),
        (
            "sandbox",
            |v| v.spec.layers[0].values = "a: {{ var.greeting ~ 'x' }}\n".into(),
            ErrorCode::ValidationFailed,
            &["spec.layers[0].values"],
        ),
        (
            "unknown system value",
            |v| v.spec.layers[0].values = "a: {{ system.cluster.colour }}\n".into(),
            ErrorCode::ValidationFailed,
            &["spec.layers[0].values"],
        ),
        (
            "unknown name",
            |v| v.spec.layers[0].values = "a: {{ greeting }}\n".into(),
            ErrorCode::ValidationFailed,
            &["spec.layers[0].values"],
        ),
        (
            "undefined variable",
            |v| v.spec.layers[4].values = "greeting: {{ var.greting }}\n".into(),
            ErrorCode::UndefinedVariable,
            &["spec.layers[4].values"],
        ),
        (
            "undefined variable in a manifest",
            |v| {
                v.spec.layers[4].manifests = vec![Manifest {
                    name: "m".into(),
                    content: "kind: X\nx: {{ var.nope }}\n".into(),
                }]
            },
            ErrorCode::UndefinedVariable,
            &["spec.layers[4].manifests[0].content"],
        ),
        (
            "manifest not YAML",
            |v| {
                v.spec.layers[4].manifests = vec![Manifest {
                    name: "m".into(),
                    content: "a: [\n".into(),
                }]
            },
            ErrorCode::ValidationFailed,
            &["spec.layers[4].manifests[0].content"],
        ),
        (
            "manifest names repeat",
            |v| {
                let m = Manifest {
                    name: "m".into(),
                    content: "kind: X\n".into(),
                };
                v.spec.layers[4].manifests = vec![m.clone(), m];
            },
            ErrorCode::ValidationFailed,
            &["spec.layers[4].manifests[1].name"],
        ),
        (
            "empty manifest",
            |v| {
                v.spec.layers[4].manifests = vec![Manifest {
                    name: "m".into(),
                    content: " \n".into(),
                }]
            },
            ErrorCode::ValidationFailed,
            &["spec.layers[4].manifests[0].content"],
        ),
        (
            "mixed problems answer ValidationFailed with all of them",
            |v| {
                v.spec.version = "1".into();
                v.spec.layers[4].name = "no-such-pack".into();
                v.spec.layers[1].values = "a: {{ var.undefined_one }}\n".into();
            },
            ErrorCode::ValidationFailed,
            &[
                "spec.version",
                "spec.layers[4].name",
                "spec.layers[1].values",
            ],
        ),
    ];
    for (case, edit, code, want) in cases {
        let mut v = base();
        edit(&mut v);
        expect(case, validate_version(&v, &Catalog::builtin()), *code, want);
    }
}

#[test]
fn pack_not_found_lists_every_missing_pack() {
    let mut v = base();
    v.spec.layers[0].version = "20.04".into();
    v.spec.layers[1].version = "1.29.0".into();
    v.spec.layers[4].name = "my-app".into();
    let e = validate_version(&v, &Catalog::builtin()).unwrap_err();
    assert_eq!(e.code, ErrorCode::PackNotFound);
    assert_eq!(
        fields(&e),
        [
            "spec.layers[0].version",
            "spec.layers[1].version",
            "spec.layers[4].name"
        ]
    );
    for id in ["ubuntu-aws@20.04", "kubernetes@1.29.0", "my-app@1.2.0"] {
        assert!(e.detail.contains(id), "{id} missing from {:?}", e.detail);
    }
}

#[test]
fn undefined_variables_name_the_layer_and_the_variable() {
    let mut v = base();
    v.spec.layers[4].values = "a: {{ var.one }}\nb: {{ var.two }}\nc: {{ var.greeting }}\n".into();
    let e = validate_version(&v, &Catalog::builtin()).unwrap_err();
    assert_eq!(e.code, ErrorCode::UndefinedVariable);
    let messages: Vec<&str> = e.errors.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "layer \"hello-universe\" references undefined variable \"one\"",
            "layer \"hello-universe\" references undefined variable \"two\""
        ]
    );
    assert!(e.errors.iter().all(|f| f.field == "spec.layers[4].values"));
}

#[test]
fn manifest_layers_come_from_registered_manifest_packs() {
    let custom = [Pack {
        kind: String::new(),
        status: fleetplane_domain::meta::NoStatus {},
        metadata: Metadata {
            name: "team-config".into(),
            ..Metadata::default()
        },
        spec: PackSpec {
            layer: Layer::Addon,
            pack_type: PackType::Manifest,
            cloud_types: vec![],
            registry: String::new(),
            versions: vec![PackVersion {
                version: "1.0.0".into(),
                default_values: String::new(),
            }],
        },
    }];
    let catalog = Catalog::with_custom(&custom);
    let mut v = addon_base();
    let mut l = layer("team-config", Layer::Addon, "1.0.0", "");
    l.pack_type = PackType::Manifest;
    v.spec.layers.push(l);
    expect(
        "manifest layer without manifests",
        validate_version(&v, &catalog),
        ErrorCode::ValidationFailed,
        &["spec.layers[1].manifests"],
    );
    v.spec.layers[1].manifests = vec![Manifest {
        name: "quota".into(),
        content: "apiVersion: v1\nkind: ResourceQuota\nmetadata:\n  name: {{ system.cluster.name }}\n---\napiVersion: v1\nkind: LimitRange\n".into(),
    }];
    validate_version(&v, &catalog).unwrap();
    // The built-in catalog alone lacks it.
    expect(
        "custom pack unknown",
        validate_version(&v, &Catalog::builtin()),
        ErrorCode::PackNotFound,
        &["spec.layers[1].name"],
    );
}

#[test]
fn type_and_cloud_type_must_match_the_profile() {
    let spec = base().spec;
    check_profile_type("aws-base", ProfileType::Full, CloudType::Aws, &spec).unwrap();
    expect(
        "type",
        check_profile_type("aws-base", ProfileType::Infra, CloudType::Aws, &spec),
        ErrorCode::ProfileTypeMismatch,
        &["spec.type"],
    );
    expect(
        "cloud",
        check_profile_type("aws-base", ProfileType::Full, CloudType::Gcp, &spec),
        ErrorCode::ProfileTypeMismatch,
        &["spec.cloudType"],
    );
    let e = check_profile_type("aws-base", ProfileType::Addon, CloudType::All, &spec).unwrap_err();
    assert_eq!(fields(&e), ["spec.type", "spec.cloudType"]);
}

#[test]
fn copying_a_version_keeps_everything_but_the_version() {
    let mut source = base();
    source.metadata.uid = "u-1".into();
    source.metadata.resource_version = "7".into();
    source.status.locked = true;
    let copy = copy_version(&source, "1.1.0").unwrap();
    assert_eq!(copy.spec.version, "1.1.0");
    assert_eq!(copy.spec.layers, source.spec.layers);
    assert_eq!(copy.spec.variables, source.spec.variables);
    assert!(copy.metadata.uid.is_empty() && copy.metadata.resource_version.is_empty());
    assert!(!copy.status.locked);
    validate_version(&copy, &Catalog::builtin()).unwrap();
    let e = copy_version(&source, "v1.1").unwrap_err();
    assert_eq!(
        (e.code, fields(&e)),
        (ErrorCode::ValidationFailed, vec!["version"])
    );
}

#[test]
fn versions_deserialize_strictly() {
    let good = serde_json::to_string(&base()).unwrap();
    let back: ProfileVersion = serde_json::from_str(&good).unwrap();
    assert_eq!(back, base());
    let bad = good.replacen("\"cloudType\"", "\"cloudTyp\": \"aws\", \"cloudType\"", 1);
    assert!(serde_json::from_str::<ProfileVersion>(&bad).is_err());
}

// ---- §4.4 variables -------------------------------------------------------------------------

#[test]
fn variable_rules_table() {
    type Edit = fn(&mut Vec<Variable>);
    let cases: &[(&str, Edit, &str)] = &[
        (
            "name not an identifier",
            |v| v[0].name = "my-var".into(),
            "spec.variables[0].name",
        ),
        (
            "name starts with a digit",
            |v| v[0].name = "1x".into(),
            "spec.variables[0].name",
        ),
        (
            "duplicate name",
            |v| {
                v.push(Variable {
                    display_name: "Other".into(),
                    ..v[0].clone()
                })
            },
            "spec.variables[2].name",
        ),
        (
            "duplicate display name",
            |v| v[1].display_name = v[0].display_name.clone(),
            "spec.variables[1].displayName",
        ),
        (
            "no display name",
            |v| v[0].display_name.clear(),
            "spec.variables[0].displayName",
        ),
        (
            "regex does not compile",
            |v| v[0].regex = "(".into(),
            "spec.variables[0].regex",
        ),
        (
            "hostile regex",
            |v| v[0].regex = r"\w{1000}\w{1000}\w{1000}".into(),
            "spec.variables[0].regex",
        ),
        (
            "default breaks regex",
            |v| {
                v[0].regex = "[a-z]+".into();
                v[0].default_value = "Hello".into();
            },
            "spec.variables[0].defaultValue",
        ),
        (
            "number default",
            |v| {
                v[0].format = Format::Number;
                v[0].default_value = "ten".into();
            },
            "spec.variables[0].defaultValue",
        ),
        (
            "boolean default",
            |v| {
                v[0].format = Format::Boolean;
                v[0].default_value = "yes".into();
            },
            "spec.variables[0].defaultValue",
        ),
        (
            "ipv4 default",
            |v| {
                v[0].format = Format::Ipv4;
                v[0].default_value = "10.0.0".into();
            },
            "spec.variables[0].defaultValue",
        ),
        (
            "ipv4cidr default",
            |v| v[1].default_value = "10.0.0.0/33".into(),
            "spec.variables[1].defaultValue",
        ),
        (
            "ipv6 default",
            |v| {
                v[0].format = Format::Ipv6;
                v[0].default_value = "10.0.0.1".into();
            },
            "spec.variables[0].defaultValue",
        ),
        (
            "version default",
            |v| {
                v[0].format = Format::Version;
                v[0].default_value = "v1.0".into();
            },
            "spec.variables[0].defaultValue",
        ),
        (
            "base64 default",
            |v| {
                v[0].format = Format::Base64;
                v[0].default_value = "not base64!".into();
            },
            "spec.variables[0].defaultValue",
        ),
        (
            "hidden without default",
            |v| v[0].hidden = true,
            "spec.variables[0].defaultValue",
        ),
        (
            "immutable without default",
            |v| v[0].immutable = true,
            "spec.variables[0].defaultValue",
        ),
        (
            "dropdown without options",
            |v| v[0].input_type = InputType::Dropdown,
            "spec.variables[0].options",
        ),
        (
            "options without dropdown",
            |v| {
                v[0].options = vec![VariableOption {
                    value: "a".into(),
                    ..Default::default()
                }]
            },
            "spec.variables[0].options",
        ),
        (
            "default not an option",
            |v| {
                v[0].input_type = InputType::Dropdown;
                v[0].options = vec![VariableOption {
                    value: "Hi".into(),
                    ..Default::default()
                }];
                v[0].default_value = "Hello".into();
            },
            "spec.variables[0].defaultValue",
        ),
        (
            "option breaks the format",
            |v| {
                v[1].input_type = InputType::Dropdown;
                v[1].options = vec![
                    VariableOption {
                        value: "10.0.0.0/16".into(),
                        ..Default::default()
                    },
                    VariableOption {
                        value: "wide".into(),
                        ..Default::default()
                    },
                ];
            },
            "spec.variables[1].options[1].value",
        ),
        (
            "options repeat",
            |v| {
                v[0].input_type = InputType::Dropdown;
                v[0].options = vec![
                    VariableOption {
                        value: "a".into(),
                        ..Default::default()
                    },
                    VariableOption {
                        value: "a".into(),
                        ..Default::default()
                    },
                ];
            },
            "spec.variables[0].options[1].value",
        ),
    ];
    for (case, edit, field) in cases {
        let mut v = base();
        edit(&mut v.spec.variables);
        expect(
            case,
            validate_version(&v, &Catalog::builtin()),
            ErrorCode::ValidationFailed,
            &[field],
        );
    }
}

#[test]
fn every_variable_problem_is_reported_at_once() {
    let mut v = base();
    v.spec.variables[0].name = "bad-name".into();
    v.spec.variables[1].hidden = true;
    v.spec.variables[1].default_value = "nope".into();
    v.spec.variables.push(Variable {
        input_type: InputType::Dropdown,
        ..var("choice")
    });
    let e = validate_version(&v, &Catalog::builtin()).unwrap_err();
    assert_eq!(e.code, ErrorCode::ValidationFailed);
    for f in [
        "spec.variables[0].name",
        "spec.variables[1].defaultValue",
        "spec.variables[2].options",
    ] {
        assert!(fields(&e).contains(&f), "{f}: {:?}", e.errors);
    }
    // The greeting reference now dangles too, and is reported alongside.
    assert!(fields(&e).contains(&"spec.layers[4].values"));
}

#[test]
fn per_cluster_values_are_validated() {
    let v = base();
    let greeting = &v.spec.variables[0];
    let cidr = &v.spec.variables[1];
    assert!(validate_value(greeting, "Hi").is_ok());
    assert_eq!(validate_value(greeting, "").unwrap_err(), "is required");
    assert!(validate_value(cidr, "172.16.0.0/12").is_ok());
    assert!(validate_value(cidr, "172.16.0.0").is_err());
    for f in Format::ALL {
        assert!(validate_format(*f, "definitely not valid \u{0}").is_err() || *f == Format::String);
    }
}

// ---- examples, import, export ---------------------------------------------------------------

fn import_valid(doc: &str) -> fleetplane_domain::profile::ImportedProfile {
    let imported = import_document(doc.as_bytes()).unwrap();
    imported.validate(&Catalog::builtin()).unwrap();
    imported
}

#[test]
fn examples_import_and_validate() {
    let aws = import_valid(AWS_EXAMPLE);
    assert_eq!(aws.format, ImportFormat::Fleetplane);
    assert_eq!(aws.rewrites, 0);
    assert!(aws.warnings.is_empty());
    assert_eq!(aws.version.metadata.name, "aws-standard");
    assert_eq!(aws.version.spec.profile_type, ProfileType::Full);
    assert_eq!(aws.version.spec.kubernetes_version(), Some("1.33.4"));
    assert!(aws.version.spec.variable("greeting").unwrap().required);

    let obs = import_valid(OBSERVABILITY_EXAMPLE);
    assert_eq!(
        (obs.version.spec.profile_type, obs.version.spec.cloud_type),
        (ProfileType::Addon, CloudType::All)
    );
}

#[test]
fn exporting_an_example_reproduces_the_file() {
    // The examples are written in exactly the form export produces.
    for doc in [AWS_EXAMPLE, OBSERVABILITY_EXAMPLE] {
        let imported = import_valid(doc);
        let exported =
            serde_json::to_string_pretty(&export_document(&imported.version)).unwrap() + "\n";
        assert_eq!(exported, doc);
    }
}

#[test]
fn export_then_import_under_a_new_version_recreates_the_version() {
    let mut original = import_valid(AWS_EXAMPLE).version;
    original.spec.variables.push(Variable {
        sensitive: true,
        default_value: "s3cret-token".into(),
        ..var("token")
    });
    let doc = export_document(&original);
    assert_eq!(
        doc.spec.variables[3].default_value, MASK,
        "sensitive defaults are masked"
    );

    let mut json: serde_json::Value = serde_json::to_value(&doc).unwrap();
    json["spec"]["version"] = "1.0.1".into();
    let again = import_document(&serde_json::to_vec(&json).unwrap()).unwrap();
    again.validate(&Catalog::builtin()).unwrap();
    assert_eq!(again.warnings.len(), 1, "{:?}", again.warnings);
    assert!(again.warnings[0].contains("\"token\""));

    let mut expected = original.clone();
    expected.spec.version = "1.0.1".into();
    expected.spec.variables[3].default_value.clear();
    assert_eq!(again.version, expected);

    // Without sensitive defaults the round trip is exact.
    let plain = import_valid(OBSERVABILITY_EXAMPLE).version;
    let back = import_document(&serde_json::to_vec(&export_document(&plain)).unwrap()).unwrap();
    assert_eq!(back.version, plain);
}

#[test]
fn fleetplane_format_is_strict_and_palette_format_is_tolerant() {
    let mut json: serde_json::Value = serde_json::from_str(AWS_EXAMPLE).unwrap();
    json["spec"]["template"]["packs"][0]["uid"] = "x".into();
    let e = import_document(&serde_json::to_vec(&json).unwrap()).unwrap_err();
    assert_eq!(e.code, ErrorCode::ValidationFailed);
    assert!(e.detail.contains("unknown field `uid`"), "{}", e.detail);

    json["apiVersion"] = "fleetplane.io/v9".into();
    let e = import_document(&serde_json::to_vec(&json).unwrap()).unwrap_err();
    assert_eq!(fields(&e), ["apiVersion"]);

    // The Palette fixture is full of fields Fleetplane does not know.
    import_document(PALETTE_FIXTURE.as_bytes()).unwrap();
}

#[test]
fn import_errors_table() {
    let palette = |edit: fn(&mut serde_json::Value)| {
        let mut json: serde_json::Value = serde_json::from_str(PALETTE_FIXTURE).unwrap();
        edit(&mut json);
        serde_json::to_vec(&json).unwrap()
    };
    type Edit = fn(&mut serde_json::Value);
    let cases: &[(&str, Edit, ErrorCode, &[&str])] = &[
        (
            "unknown type",
            |j| j["spec"]["template"]["type"] = "edge".into(),
            ErrorCode::ValidationFailed,
            &["spec.template.type"],
        ),
        (
            "unknown cloud",
            |j| j["spec"]["template"]["cloudType"] = "maas".into(),
            ErrorCode::ValidationFailed,
            &["spec.template.cloudType"],
        ),
        (
            "unknown layer",
            |j| j["spec"]["template"]["packs"][1]["layer"] = "kernel".into(),
            ErrorCode::ValidationFailed,
            &["spec.template.packs[1].layer"],
        ),
        (
            "unknown pack type",
            |j| j["spec"]["template"]["packs"][1]["type"] = "git".into(),
            ErrorCode::ValidationFailed,
            &["spec.template.packs[1].type"],
        ),
        (
            "unknown format",
            |j| j["spec"]["variables"][0]["format"] = "email".into(),
            ErrorCode::ValidationFailed,
            &["spec.variables[0].format"],
        ),
        (
            "go template if",
            |j| {
                j["spec"]["template"]["packs"][4]["values"] =
                    "a: {{ if .spectro.var.x }}b{{ end }}\n".into()
            },
            ErrorCode::ValidationFailed,
            &["spec.template.packs[4].values"],
        ),
        (
            "go template in a manifest",
            |j| {
                j["spec"]["template"]["packs"][4]["manifests"][0]["content"] =
                    "a: {{ .Release.Name }}\n".into()
            },
            ErrorCode::ValidationFailed,
            &["spec.template.packs[4].manifests[0].content"],
        ),
    ];
    for (case, edit, code, want) in cases {
        expect(
            case,
            import_document(&palette(*edit)).map(|_| ()),
            *code,
            want,
        );
    }

    // The message names the layer and the text.
    let e = import_document(&palette(|j| {
        j["spec"]["template"]["packs"][4]["values"] =
            "a: {{ range .spectro.var.x }}{{ end }}\n".into()
    }))
    .unwrap_err();
    assert!(
        e.errors[0].message.contains("layer \"hello-universe\""),
        "{:?}",
        e.errors
    );
    assert!(
        e.errors[0].message.contains("{{ range .spectro.var.x }}"),
        "{:?}",
        e.errors
    );

    // Missing packs are found by validation, every one listed, with document paths.
    let imported = import_document(&palette(|j| {
        j["spec"]["template"]["packs"][0]["version"] = "18.04".into();
        j["spec"]["template"]["packs"][4]["name"] = "hello-multiverse".into();
    }))
    .unwrap();
    let e = imported.validate(&Catalog::builtin()).unwrap_err();
    assert_eq!(e.code, ErrorCode::PackNotFound);
    assert_eq!(
        fields(&e),
        [
            "spec.template.packs[0].version",
            "spec.template.packs[4].name"
        ]
    );
    assert!(
        e.detail.contains("ubuntu-aws@18.04") && e.detail.contains("hello-multiverse@1.1.2"),
        "{}",
        e.detail
    );

    for garbage in [
        &b""[..],
        b"[]",
        b"{",
        b"null",
        b"{\"spec\": 3}",
        b"\xff\xfe",
    ] {
        let e = import_document(garbage).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFailed, "{garbage:?}");
    }
    let huge = vec![b' '; fleetplane_domain::profile::limits::MAX_IMPORT_BYTES + 1];
    assert_eq!(
        import_document(&huge).unwrap_err().code,
        ErrorCode::PayloadTooLarge
    );
}

#[test]
fn palette_fixture_maps_every_palette_word() {
    let imported = import_valid(PALETTE_FIXTURE);
    assert_eq!(imported.format, ImportFormat::Palette);
    assert_eq!(imported.rewrites, 9);
    let v = &imported.version;
    assert_eq!(v.metadata.name, "edge-web");
    assert_eq!(v.spec.version, "2.1.0");
    assert_eq!(
        (v.spec.profile_type, v.spec.cloud_type),
        (ProfileType::Full, CloudType::Aws)
    );
    assert!(
        v.spec
            .layers
            .iter()
            .all(|l| l.pack_type == PackType::Catalog)
    );
    let cidr = v.spec.variable("pod_cidr").unwrap();
    assert!(cidr.hidden && cidr.immutable, "isHidden is hidden");
    assert!(
        v.spec.variable("api_token").unwrap().sensitive,
        "isSensitive is sensitive"
    );
    assert_eq!(
        v.spec.layers[4].values,
        "manifests:\n  hello-universe:\n    greeting: \"{{ var.x }}\"\n    owner: \"{{ macro.y | default(\"z\") }}\"\n    token: {{ var.api_token | b64encode | quote }}\n"
    );
    insta::assert_json_snapshot!("palette_fixture_imported", v);
}

// ---- rendering --------------------------------------------------------------------------------

/// The rendered stack as reviewable text: one section per layer and manifest.
fn as_text(layers: &[fleetplane_domain::profile::RenderedLayer]) -> String {
    let mut out = String::new();
    for l in layers {
        out.push_str(&format!(
            "### layer {} ({}, {} {})\n",
            l.name, l.layer, l.pack_type, l.version
        ));
        out.push_str(&l.values);
        for m in &l.manifests {
            out.push_str(&format!("### manifest {}/{}\n", l.name, m.name));
            out.push_str(&m.content);
        }
    }
    out
}

fn dev_cluster() -> SystemValues {
    SystemValues {
        cluster_name: "dev".into(),
        cluster_uid: "c0ffee00-0000-4000-8000-000000000001".into(),
        region: Some("eu-west-1".into()),
        project_name: Some("default".into()),
        tenant_name: Some("default".into()),
        ..SystemValues::default()
    }
}

#[test]
fn the_example_renders_for_a_cluster() {
    let v = import_valid(AWS_EXAMPLE).version;
    let macros = Macros::resolve(
        &[Macro {
            name: "registry_mirror".into(),
            value: "registry.k8s.io".into(),
        }],
        &[],
        &[Macro {
            name: "registry_mirror".into(),
            value: "mirror.example.com".into(),
        }],
    );
    let values: BTreeMap<String, String> = [
        ("greeting".into(), "Hello from dev".into()),
        ("replicas".into(), "3".into()),
    ]
    .into();
    let rendered = render_version(&v, &values, &macros, &dev_cluster()).unwrap();
    assert_eq!(rendered.len(), 5);
    assert!(
        rendered[1]
            .values
            .contains("imageRepository: mirror.example.com"),
        "project macro wins"
    );
    assert!(rendered[1].values.contains("kubernetesVersion: v1.33.4"));
    assert!(rendered[3].values.contains("region: \"eu-west-1\""));
    insta::assert_snapshot!("aws_standard_rendered_dev", as_text(&rendered));

    let obs = import_valid(OBSERVABILITY_EXAMPLE).version;
    let values: BTreeMap<String, String> = [(
        "grafana_admin_password".into(),
        "correct horse battery".into(),
    )]
    .into();
    let rendered = render_version(&obs, &values, &Macros::default(), &dev_cluster()).unwrap();
    insta::assert_snapshot!("observability_rendered_dev", as_text(&rendered));
}

#[test]
fn the_palette_fixture_renders_correctly() {
    let v = import_valid(PALETTE_FIXTURE).version;
    let values: BTreeMap<String, String> = [("api_token".into(), "abcdefgh12".into())].into();
    // No macro y: the default applies.
    let rendered = render_version(&v, &values, &Macros::default(), &dev_cluster()).unwrap();
    let hello = &rendered[4];
    assert!(
        hello.values.contains("greeting: \"Hello\""),
        "{}",
        hello.values
    );
    assert!(hello.values.contains("owner: \"z\""), "{}", hello.values);
    assert!(
        hello.values.contains("token: \"YWJjZGVmZ2gxMg==\""),
        "{}",
        hello.values
    );
    assert_eq!(
        hello.manifests[0].content.lines().last(),
        Some("  text: \"HELLO\"")
    );
    assert!(
        rendered[1].values.contains("- \"dev.example.com\""),
        "{}",
        rendered[1].values
    );
    assert!(rendered[0].values.contains("echo \"dev is up\""));

    let macros = Macros::resolve(
        &[],
        &[Macro {
            name: "y".into(),
            value: "web-team".into(),
        }],
        &[],
    );
    let rendered = render_version(&v, &values, &macros, &dev_cluster()).unwrap();
    assert!(rendered[4].values.contains("owner: \"web-team\""));
    insta::assert_snapshot!("palette_fixture_rendered_dev", as_text(&rendered));
}

#[test]
fn render_errors_name_cluster_profile_layer_and_line() {
    let v = import_valid(AWS_EXAMPLE).version;
    // The required greeting has no value.
    let e = render_version(&v, &BTreeMap::new(), &Macros::default(), &dev_cluster()).unwrap_err();
    assert_eq!(fields(&e), ["spec.variables.aws-standard.greeting"]);
    assert!(
        e.errors[0]
            .message
            .contains("cluster \"dev\", profile \"aws-standard\" 1.0.0"),
        "{:?}",
        e.errors
    );
    assert!(e.errors[0].message.contains("is required"));

    let bad: BTreeMap<String, String> = [
        ("greeting".into(), "hi".into()),
        ("replicas".into(), "2".into()),
        ("pod_cidr".into(), "x".into()),
    ]
    .into();
    let e = render_version(&v, &bad, &Macros::default(), &dev_cluster()).unwrap_err();
    assert_eq!(
        fields(&e),
        [
            "spec.variables.aws-standard.replicas",
            "spec.variables.aws-standard.pod_cidr"
        ]
    );

    // A macro that is not defined anywhere, used without a default, on line 3.
    let mut v2 = v.clone();
    v2.spec.layers[2].values = "a: 1\nb: 2\nc: {{ macro.dns_zone }}\n".into();
    let ok: BTreeMap<String, String> = [("greeting".into(), "hi".into())].into();
    let e = render_version(&v2, &ok, &Macros::default(), &dev_cluster()).unwrap_err();
    assert_eq!(fields(&e), ["spec.layers[2].values"]);
    let msg = &e.errors[0].message;
    for part in [
        "cluster \"dev\"",
        "profile \"aws-standard\" 1.0.0",
        "layer \"cni-calico\"",
        "line 3",
        "macro.dns_zone",
    ] {
        assert!(msg.contains(part), "{part} missing from {msg}");
    }

    // Rendered output that is not YAML is caught after rendering.
    let tricky: BTreeMap<String, String> = [("greeting".into(), "a: b: c".into())].into();
    let mut v3 = v.clone();
    v3.spec.layers[4].values = "greeting: {{ var.greeting }}\n".into();
    let e = render_version(&v3, &tricky, &Macros::default(), &dev_cluster()).unwrap_err();
    assert!(
        e.errors[0].message.contains("after rendering"),
        "{:?}",
        e.errors
    );
}

#[test]
fn sensitive_values_render_but_are_masked_for_output() {
    let obs = import_valid(OBSERVABILITY_EXAMPLE).version;
    let values: BTreeMap<String, String> = [(
        "grafana_admin_password".into(),
        "correct horse battery".into(),
    )]
    .into();
    let rendered = render_version(&obs, &values, &Macros::default(), &dev_cluster()).unwrap();
    assert!(
        rendered[0]
            .values
            .contains("adminPassword: \"correct horse battery\"")
    );
    let shown = fleetplane_domain::profile::variable::mask_values(&obs.spec.variables, &values);
    assert_eq!(shown["grafana_admin_password"], MASK);
    // Too-short password: the message never echoes the value.
    let weak: BTreeMap<String, String> =
        [("grafana_admin_password".into(), "hunter2".into())].into();
    let e = render_version(&obs, &weak, &Macros::default(), &dev_cluster()).unwrap_err();
    assert!(!e.errors[0].message.contains("hunter2"));
}

#[test]
fn a_flood_of_problems_is_capped() {
    let mut v = base();
    v.spec.layers[4].values = (0..2000)
        .map(|i| format!("k{i}: {{{{ var.u{i} }}}}\n"))
        .collect();
    let e = validate_version(&v, &Catalog::builtin()).unwrap_err();
    assert_eq!(e.code, ErrorCode::UndefinedVariable);
    assert_eq!(e.errors.len(), 501);
    assert_eq!(e.errors[500].message, "1500 more problems are not shown");
}

// ---- properties: the fuzzing entry points never panic ---------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, .. ProptestConfig::default() })]

    #[test]
    fn import_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..512)) {
        let _ = import_document(&bytes);
    }

    #[test]
    fn import_of_json_like_text_never_panics(s in r#"\{("(apiVersion|metadata|spec|template|packs|values|name)":(\{|\[|"[^"]{0,12}"|1|null),?\}?\]?){0,8}"#) {
        let _ = import_document(s.as_bytes());
    }

    #[test]
    fn palette_shaped_documents_never_panic(
        profile_type in "(cluster|infra|add-on|full|addon|x)",
        cloud in "(aws|azure|gcp|vsphere|all|eks)",
        layer in "(os|k8s|cni|csi|addon|x)",
        pack_type in "(spectro|helm|manifest|oci|catalog|)",
        name in "[a-z-]{0,12}",
        version in "[0-9.]{0,8}",
        values in r"(\{\{|\}\}|\{%|\{#|\.spectro\.(var|macro|system)\.[a-z.]{0,6}|\| default \x22z\x22|[ :\n-a-z0-9\x22`|])*",
    ) {
        let doc = serde_json::json!({
            "metadata": {"name": name},
            "spec": {"version": version, "template": {"type": profile_type, "cloudType": cloud,
                "packs": [{"name": name, "layer": layer, "type": pack_type, "version": version, "values": values,
                           "manifests": [{"name": "m", "content": values}]}]},
                     "variables": [{"name": name, "format": "number", "defaultValue": values, "isHidden": true}]}
        });
        if let Ok(imported) = import_document(&serde_json::to_vec(&doc).unwrap()) {
            let _ = imported.validate(&Catalog::builtin());
            let _ = render_version(&imported.version, &BTreeMap::new(), &Macros::default(), &SystemValues::default());
        }
    }

    #[test]
    fn formats_never_panic(s in ".{0,64}", i in 0usize..8) {
        let _ = validate_format(Format::ALL[i], &s);
    }

    #[test]
    fn cidrs_and_numbers_round_trip(a in any::<[u8; 4]>(), p in 0u8..=32, n in any::<i32>()) {
        let cidr = format!("{}.{}.{}.{}/{}", a[0], a[1], a[2], a[3], p);
        prop_assert!(validate_format(Format::Ipv4cidr, &cidr).is_ok());
        prop_assert!(validate_format(Format::Number, &n.to_string()).is_ok());
        let version = format!("{}.{}.{p}", a[0], a[1]);
        prop_assert!(validate_format(Format::Version, &version).is_ok());
    }

    #[test]
    fn regexes_compile_or_refuse(s in ".{0,48}", extra in r"[\[\](){}*+?|\\^$.a-z0-9]{0,24}") {
        let _ = compile_regex(&s);
        let _ = compile_regex(&extra);
    }

    #[test]
    fn templates_render_or_fail(s in ".{0,96}", tagged in r"(\{\{|\{%|\{#|\}\}|%\}|#\}|var\.x|macro\.m|system\.cluster\.name|[ |~+*()'\x22a-z0-9.,=-]){0,40}") {
        let ctx = TemplateContext {
            variables: [("x".into(), "abc".into())].into(),
            macros: [("m".into(), "M".into())].into(),
            system: [("cluster.name".into(), "dev".into())].into(),
        };
        for src in [&s, &tagged] {
            let _ = render_template(src, &ctx);
            let _ = check_template(src);
            let _ = rewrite_palette(src);
        }
    }

    #[test]
    fn values_of_a_definition_never_panic(value in ".{0,32}", regex in "[a-z.*+?()|]{0,8}", i in 0usize..8) {
        let def = Variable { format: Format::ALL[i], regex, ..var("v") };
        let _ = validate_value(&def, &value);
    }
}
