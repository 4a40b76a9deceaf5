//! Definitions: built-ins and examples validate (also against the JSON Schema), parse errors
//! carry paths, and every static rule reports at its step path.

use fleetplane_workflow::definition::{STEP_KINDS, parse_unchecked};
use fleetplane_workflow::{parse_definition, schema};
use std::path::PathBuf;

fn workflow_files() -> Vec<PathBuf> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../workflows");
    let mut files = Vec::new();
    for dir in [root.clone(), root.join("examples")] {
        for e in std::fs::read_dir(&dir).unwrap() {
            let p = e.unwrap().path();
            if p.extension()
                .is_some_and(|x| x == "yaml" || x == "yml" || x == "json")
            {
                files.push(p);
            }
        }
    }
    files.sort();
    files
}

#[test]
fn every_shipped_definition_validates_and_matches_the_schema() {
    let validator = jsonschema::validator_for(schema()).expect("the schema compiles");
    let files = workflow_files();
    assert!(files.len() >= 4, "{files:?}");
    for f in files {
        let bytes = std::fs::read(&f).unwrap();
        let def = parse_definition(&bytes).unwrap_or_else(|e| panic!("{}: {e:?}", f.display()));
        // The document as written and its canonical form both satisfy the schema.
        let raw: serde_json::Value = serde_saphyr::from_slice(&bytes).unwrap();
        let errors: Vec<String> = validator
            .iter_errors(&raw)
            .map(|e| format!("{}: {e}", e.instance_path()))
            .collect();
        assert!(errors.is_empty(), "{}: {errors:#?}", f.display());
        let canonical = def.to_json();
        assert!(
            validator.is_valid(&canonical),
            "{}: canonical form",
            f.display()
        );
        // And the canonical form parses back to the same definition.
        let again = parse_definition(&serde_json::to_vec(&canonical).unwrap()).unwrap();
        assert_eq!(again, def);
        assert_eq!(again.digest(), def.digest());
    }
}

#[test]
fn builtins_are_one_per_purpose() {
    let defs = fleetplane_workflow::builtin::builtin().unwrap();
    let refs: Vec<String> = defs.iter().map(|d| d.reference()).collect();
    assert_eq!(
        refs,
        [
            "deploy@1.0.0",
            "stage-update@1.0.0",
            "rollout@1.0.0",
            "update@1.0.0",
            "delete@1.0.0"
        ]
    );
    let purposes: Vec<String> = defs
        .iter()
        .map(|d| {
            serde_json::to_value(d.spec.purpose)
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned()
        })
        .collect();
    assert_eq!(
        purposes,
        ["deploy", "stage-update", "rollout", "update", "delete"]
    );
}

#[test]
fn schema_rejects_what_the_parser_rejects() {
    let validator = jsonschema::validator_for(schema()).unwrap();
    let bad = [
        serde_json::json!({"kind": "Workflow", "metadata": {"name": "x", "version": "1"}, "spec": {"purpose": "rollout", "steps": []}}),
        serde_json::json!({"kind": "Workflow", "metadata": {"name": "x", "version": "1.0.0"}, "spec": {"purpose": "rollout", "steps": [{"shell": {}}]}}),
        serde_json::json!({"kind": "Workflow", "metadata": {"name": "x", "version": "1.0.0"}, "spec": {"purpose": "rollout", "steps": [{"wait": {"duration": "1h"}, "fail": {"message": "m"}}]}}),
        serde_json::json!({"kind": "Workflow", "metadata": {"name": "x", "version": "1.0.0"}, "spec": {"purpose": "rollout", "steps": [{"wait": {"duration": "1 hour"}}]}}),
    ];
    for b in bad {
        assert!(!validator.is_valid(&b), "{b}");
        assert!(
            parse_definition(&serde_json::to_vec(&b).unwrap()).is_err(),
            "{b}"
        );
    }
    for kind in STEP_KINDS {
        assert!(
            schema().to_string().contains(&format!("\"{kind}\"")),
            "{kind}"
        );
    }
}

const HEAD: &str =
    "kind: Workflow\nmetadata: {name: t, version: 1.0.0}\nspec:\n  purpose: rollout\n";

fn errors(body: &str) -> Vec<(String, String)> {
    let doc = format!("{HEAD}{body}");
    match parse_definition(doc.as_bytes()) {
        Ok(_) => Vec::new(),
        Err(e) => e.errors.into_iter().map(|f| (f.field, f.message)).collect(),
    }
}

#[test]
fn parse_errors_name_the_offending_path() {
    let cases = [
        (
            "  steps:\n    - fanout:\n        over: template\n        steps:\n          - wait: {duration: 10x}\n",
            "spec.steps[0].fanout.steps[0].wait.duration",
            "invalid duration",
        ),
        (
            "  steps:\n    - shell: {command: ls}\n",
            "spec.steps[0].shell",
            "unknown field `shell`",
        ),
        (
            "  steps:\n    - emit: {type: a}\n    - provider: {operation: reboot-cluster}\n",
            "spec.steps[1].provider.operation",
            "unknown variant `reboot-cluster`",
        ),
        (
            "  steps:\n    - emit: {type: a}\n      fail: {message: m}\n",
            "spec.steps[0]",
            "exactly one kind",
        ),
        ("  steps:\n    - {id: x}\n", "spec.steps[0]", "needs a kind"),
        (
            "  steps:\n    - wait: {duration: 1h, window: true}\n",
            "spec.steps[0].wait",
            "exactly one of",
        ),
        (
            "  steps:\n    - fanout: {over: template, maxConcurrency: 150%, steps: [{render: {}}]}\n",
            "spec.steps[0].fanout.maxConcurrency",
            "percentage",
        ),
    ];
    for (body, field, msg) in cases {
        let errs = errors(body);
        assert_eq!(errs.len(), 1, "{body}: {errs:?}");
        assert_eq!(errs[0].0, field, "{body}");
        assert!(errs[0].1.contains(msg), "{body}: {}", errs[0].1);
    }
    let e = parse_unchecked(b"{\"kind\": \"Workflow\",").unwrap_err();
    assert!(e.errors[0].message.starts_with("invalid JSON"));
    let e = parse_unchecked(&vec![b' '; 2 * 1024 * 1024]).unwrap_err();
    assert!(e.errors[0].message.contains("at most"));
    assert!(parse_unchecked(b"\xff\xfe").is_err());
}

/// One case per static rule: the body, the path and a fragment of the message.
#[test]
fn every_static_rule_reports_at_its_path() {
    let fanout = |inner: &str| {
        format!("  steps:\n    - fanout:\n        over: template\n        steps:\n{inner}")
    };
    let cases: Vec<(String, &str, &str)> = vec![
        // waits are bounded
        ("  steps:\n    - wait: {untilExpr: '\"2026-01-01T00:00:00Z\"'}\n".into(), "spec.steps[0].wait", "needs maxWait"),
        (fanout("          - wait: {untilExpr: '\"x\"'}\n"), "spec.steps[0].fanout.steps[0].wait", "needs maxWait"),
        // expressions compile
        ("  steps:\n    - set: {name: x, value: '1 +'}\n".into(), "spec.steps[0].set.value", "does not compile"),
        ("  steps:\n    - gate: {condition: 'secrets.x', timeout: 1m}\n".into(), "spec.steps[0].gate.condition", "unknown name"),
        (format!("  steps:\n    - set: {{name: x, value: '{}'}}\n", "1+".repeat(600) + "1"), "spec.steps[0].set.value", "cost limit"),
        // references exist
        ("  steps:\n    - set: {name: x, value: inputs.nope}\n".into(), "spec.steps[0].set.value", "input \"nope\" is not declared"),
        ("  steps:\n    - set: {name: x, value: vars.y}\n".into(), "spec.steps[0].set.value", "never set"),
        ("  steps:\n    - set: {name: x, value: steps.nope.result}\n".into(), "spec.steps[0].set.value", "no step has id"),
        ("  steps:\n    - set: {name: x, value: cluster.name}\n".into(), "spec.steps[0].set.value", "only known inside a fan-out"),
        ("  steps:\n    - set: {name: x, value: result}\n".into(), "spec.steps[0].set.value", "poll.until"),
        ("  steps:\n    - set: {name: x, value: item}\n".into(), "spec.steps[0].set.value", "skip rules"),
        // unique ids and names
        ("  steps:\n    - {id: a, render: {}}\n    - {id: a, render: {}}\n".into(), "spec.steps[1].id", "used twice"),
        ("  steps:\n    - {id: a-b, render: {}}\n".into(), "spec.steps[0].id", "not an identifier"),
        ("  steps:\n    - approve: {name: ok}\n    - approve: {name: ok}\n".into(), "spec.steps[1].approve.name", "named twice"),
        // operations that exist and make sense
        ("  steps:\n    - provider: {operation: poll-operation}\n".into(), "spec.steps[0].provider.operation", "issued by the engine"),
        ("  steps:\n    - provider: {operation: update-cluster, poll: {timeout: 1h, until: 'true'}}\n".into(), "spec.steps[0].provider.poll.until", "read-only"),
        // retries are bounded
        ("  steps:\n    - provider: {operation: describe-cluster, retry: {maximumAttempts: 0}}\n".into(), "spec.steps[0].provider.retry.maximumAttempts", "between 1 and 100"),
        ("  steps:\n    - provider: {operation: describe-cluster, retry: {backoffCoefficient: 0.5}}\n".into(), "spec.steps[0].provider.retry.backoffCoefficient", "between 1 and 10"),
        ("  steps:\n    - provider: {operation: describe-cluster, retry: {initialInterval: 1m, maximumInterval: 1s}}\n".into(), "spec.steps[0].provider.retry.maximumInterval", "initialInterval"),
        ("  steps:\n    - provider: {operation: describe-cluster, poll: {interval: 2h, timeout: 1h}}\n".into(), "spec.steps[0].provider.poll.interval", "poll.timeout"),
        // fan-outs
        (fanout("          - fanout: {over: template, steps: [{render: {}}]}\n"), "spec.steps[0].fanout.steps[0].fanout", "inside a fan-out"),
        ("  steps:\n    - fanout: {over: template, steps: []}\n".into(), "spec.steps[0].fanout.steps", "at least one step"),
        ("  steps:\n    - fanout: {over: template, maxConcurrency: 0, steps: [{render: {}}]}\n".into(), "spec.steps[0].fanout.maxConcurrency", "at least 1"),
        ("  steps:\n    - fanout: {over: template, maxFailures: 1, maxFailurePercent: 5, steps: [{render: {}}]}\n".into(), "spec.steps[0].fanout", "not both"),
        ("  steps:\n    - fanout: {over: template, maxFailures: 5%, steps: [{render: {}}]}\n".into(), "spec.steps[0].fanout.maxFailures", "maxFailurePercent"),
        ("  steps:\n    - fanout: {over: template, waves: [{name: a}, {name: a}], steps: [{render: {}}]}\n".into(), "spec.steps[0].fanout.waves[1].name", "named twice"),
        // structure
        ("  steps: []\n".into(), "spec.steps", "at least one step"),
        ("  steps:\n    - choice: {when: []}\n".into(), "spec.steps[0].choice.when", "at least one branch"),
        ("  steps:\n    - emit: {type: Bad Type}\n".into(), "spec.steps[0].emit.type", "lowercase"),
        ("  steps:\n    - set: {name: 1x, value: '1'}\n".into(), "spec.steps[0].set.name", "not an identifier"),
        // inputs
        ("  inputs:\n    n: {type: integer, default: x}\n  steps:\n    - render: {}\n".into(), "spec.inputs.n.default", "type integer"),
        ("  inputs:\n    n: {type: integer, required: true, default: 1}\n  steps:\n    - render: {}\n".into(), "spec.inputs.n.default", "required input"),
        ("  inputs:\n    n: {type: string, items: {type: string}}\n  steps:\n    - render: {}\n".into(), "spec.inputs.n.items", "only arrays"),
    ];
    for (body, field, msg) in &cases {
        let errs = errors(body);
        assert!(
            errs.iter().any(|(f, m)| f == field && m.contains(msg)),
            "expected {field}: …{msg}… for\n{body}\ngot {errs:#?}"
        );
    }
}

#[test]
fn all_problems_are_reported_at_once() {
    let body = "  inputs:\n    max: {type: integer}\n  steps:\n    - {id: a, render: {}}\n    - {id: a, wait: {untilExpr: inputs.nope}}\n    - choice:\n        when:\n          - if: 'vars.z >'\n            steps: [{fail: {message: x, kind: Bad}}]\n";
    let errs = errors(body);
    insta::assert_yaml_snapshot!(errs);
}
