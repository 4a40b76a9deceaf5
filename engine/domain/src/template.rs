//! Cluster templates (DESIGN §4.6) and the variable assignment model of template clusters
//! (§4.8): composition rules, revisions, and how each cluster's value of each variable is
//! proposed when the template's revision changes.
//!
//! Pure: the API supplies the facts (the referenced versions' types and variables, the
//! clusters' running values) and stores what these functions return.

use crate::error::{DomainError, ErrorCode, Problems, index, path};
use crate::meta::{Labels, validate_name};
use crate::profile::{CloudType, ProfileType, Variable, validate_value};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a referenced object lives, relative to the referencing one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RefScope {
    /// The tenant's catalog (a project object may use tenant profiles and policies).
    Tenant,
    /// The same project as the referencing object.
    Project,
}

/// How a template variable's value reaches clusters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssignStrategy {
    /// One fleet-wide value, set on the template.
    All,
    /// Each cluster has its own value.
    #[default]
    Cluster,
}

/// A template's setting for one variable of a linked profile.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct TemplateVariable {
    /// The variable's name.
    pub name: String,
    /// The fleet-wide value (used with `assignStrategy: all`).
    #[serde(default)]
    pub value: String,
    /// Fleet-wide or per cluster.
    #[serde(default)]
    pub assign_strategy: AssignStrategy,
}

/// A linked profile version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileRef {
    /// The profile name.
    pub name: String,
    /// The exact version.
    pub version: String,
    /// `tenant` to use a tenant profile from a project template; default: the template's scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<RefScope>,
    /// Settings of the version's variables.
    #[serde(default)]
    pub variables: Vec<TemplateVariable>,
}

/// The linked maintenance policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PolicyRef {
    /// The policy name.
    pub name: String,
    /// `tenant` to use a tenant policy from a project template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<RefScope>,
}

/// A concurrency or failure limit: a count or a percentage of the clusters.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Limit {
    /// A number of clusters.
    Count(u64),
    /// A percentage, `"25%"`.
    Percent(String),
}

/// A wave of a rollout.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Wave {
    /// Unique in the strategy.
    pub name: String,
    /// Which clusters the wave takes.
    #[serde(default)]
    pub selector: WaveSelector,
    /// At most this many clusters of the wave update at once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<Limit>,
    /// Minutes to watch the wave's clusters before the next wave starts.
    #[serde(default)]
    pub soak_minutes: u32,
}

/// Label requirements of a wave.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WaveSelector {
    /// Every label must equal its value.
    #[serde(default)]
    pub match_labels: Labels,
}

/// What a rollout does when its failure budget is exhausted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnFailure {
    /// Stop and wait for a person.
    #[default]
    Pause,
    /// Revert the clusters that moved.
    Rollback,
}

/// An operator-submitted rollout workflow.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct WorkflowRef {
    /// Definition name.
    pub name: String,
    /// Definition version.
    pub version: String,
}

/// The rollout strategy (DESIGN §5.4).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RolloutStrategy {
    /// Unlimited when absent: the whole fleet moves together.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_concurrency: Option<Limit>,
    /// Waves, in order; clusters no wave selects form a last wave.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub waves: Vec<Wave>,
    /// Failures tolerated before `onFailure` (default 0).
    #[serde(default)]
    pub max_failures: u64,
    /// Pause or roll back.
    #[serde(default)]
    pub on_failure: OnFailure,
    /// Use this rollout workflow instead of the built-in `rollout@1`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub workflow: Option<WorkflowRef>,
}

/// The spec of a cluster template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ClusterTemplateSpec {
    /// The cloud type; fixed at creation.
    pub cloud_type: CloudType,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Exactly one full or infra version, any number of add-on versions.
    #[serde(default)]
    pub profiles: Vec<ProfileRef>,
    /// Exactly one maintenance policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_policy: Option<PolicyRef>,
    /// How revisions roll out.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<RolloutStrategy>,
}

/// What the API found for one linked version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedVersion {
    /// Its type.
    pub profile_type: ProfileType,
    /// Its cloud type.
    pub cloud_type: CloudType,
    /// Its variables, in order.
    pub variables: Vec<Variable>,
}

/// One profile version of a revision: the identity that decides whether the set changed.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RevisionEntry {
    /// Profile name.
    pub name: String,
    /// Version.
    pub version: String,
    /// Where it lives.
    pub scope: RefScope,
}

/// The set of linked versions of a spec, in a canonical order; a different set is a new
/// revision (DESIGN §4.6).
pub fn revision_set(spec: &ClusterTemplateSpec, own_scope: RefScope) -> Vec<RevisionEntry> {
    let mut set: Vec<RevisionEntry> = spec
        .profiles
        .iter()
        .map(|p| RevisionEntry {
            name: p.name.clone(),
            version: p.version.clone(),
            scope: p.scope.unwrap_or(own_scope),
        })
        .collect();
    set.sort();
    set.dedup();
    set
}

/// Validates a template against the facts of the versions it links (`linked[i]` is the version
/// of `spec.profiles[i]`, `None` when it does not exist) and the existence of its policy.
/// Every problem is reported; the code is the specific one when there is only one kind.
///
/// # Errors
/// `TemplateRequiresBaseProfile`, `CloudTypeMismatch`, `TemplateRequiresPolicy`, or
/// `ValidationFailed` (missing versions, bad names, bad variables, bad strategy).
pub fn validate_template(
    spec: &ClusterTemplateSpec,
    linked: &[Option<LinkedVersion>],
    policy_exists: bool,
) -> Result<(), DomainError> {
    let mut p = Problems::new();
    let mut codes = Vec::new();
    let mut bases = 0;
    for (i, r) in spec.profiles.iter().enumerate() {
        let at = index("spec.profiles", i);
        p.check(validate_name(&path(&at, "name"), &r.name));
        if spec.profiles[..i]
            .iter()
            .any(|o| o.name == r.name && o.scope == r.scope)
        {
            p.push(
                path(&at, "name"),
                format!("profile {:?} is linked twice", r.name),
            );
        }
        match linked.get(i).and_then(Option::as_ref) {
            None => p.push(
                at.clone(),
                format!("profile version {}@{} does not exist", r.name, r.version),
            ),
            Some(v) => {
                if v.profile_type != ProfileType::Addon {
                    bases += 1;
                }
                let cloud_ok = v.cloud_type == spec.cloud_type
                    || (v.profile_type == ProfileType::Addon && v.cloud_type == CloudType::All);
                if !cloud_ok {
                    codes.push(ErrorCode::CloudTypeMismatch);
                    p.push(
                        at.clone(),
                        format!(
                            "{}@{} is for cloud type {}, the template for {}",
                            r.name,
                            r.version,
                            v.cloud_type.as_str(),
                            spec.cloud_type.as_str()
                        ),
                    );
                }
                validate_template_variables(&at, r, &v.variables, &mut p);
            }
        }
    }
    if bases != 1 {
        codes.push(ErrorCode::TemplateRequiresBaseProfile);
        p.push(
            "spec.profiles",
            format!("link exactly one full or infra profile version (found {bases})"),
        );
    }
    if spec.maintenance_policy.is_none() {
        codes.push(ErrorCode::TemplateRequiresPolicy);
        p.push(
            "spec.maintenancePolicy",
            "a template needs a maintenance policy",
        );
    } else if !policy_exists {
        p.push("spec.maintenancePolicy.name", "no such maintenance policy");
    }
    if let Some(r) = &spec.rollout {
        validate_strategy(r, &mut p);
    }
    let all = p.errors().len();
    let code = match codes.first() {
        Some(c) if codes.len() == all && codes.iter().all(|x| x == c) => *c,
        _ => ErrorCode::ValidationFailed,
    };
    p.finish_with(code)
}

fn validate_template_variables(at: &str, r: &ProfileRef, defs: &[Variable], p: &mut Problems) {
    for (j, tv) in r.variables.iter().enumerate() {
        let vat = index(&path(at, "variables"), j);
        match defs.iter().find(|d| d.name == tv.name) {
            None => p.push(
                path(&vat, "name"),
                format!("{}@{} has no variable {:?}", r.name, r.version, tv.name),
            ),
            Some(def) => {
                if r.variables[..j].iter().any(|o| o.name == tv.name) {
                    p.push(
                        path(&vat, "name"),
                        format!("variable {:?} appears twice", tv.name),
                    );
                }
                if tv.assign_strategy == AssignStrategy::All
                    && !tv.value.is_empty()
                    && let Err(e) = validate_value(def, &tv.value)
                {
                    p.push(path(&vat, "value"), e);
                }
            }
        }
    }
}

fn validate_limit(field: &str, l: &Limit, p: &mut Problems) {
    match l {
        Limit::Count(0) => p.push(field, "must be at least 1"),
        Limit::Count(_) => {}
        Limit::Percent(s) => {
            let ok = s
                .strip_suffix('%')
                .and_then(|n| n.parse::<u32>().ok())
                .is_some_and(|n| (1..=100).contains(&n));
            if !ok {
                p.push(
                    field,
                    format!("{s:?} is neither a count nor a percentage like \"25%\""),
                );
            }
        }
    }
}

fn validate_strategy(r: &RolloutStrategy, p: &mut Problems) {
    if let Some(l) = &r.max_concurrency {
        validate_limit("spec.rollout.maxConcurrency", l, p);
    }
    for (i, w) in r.waves.iter().enumerate() {
        let at = index("spec.rollout.waves", i);
        p.check(validate_name(&path(&at, "name"), &w.name));
        if r.waves[..i].iter().any(|o| o.name == w.name) {
            p.push(
                path(&at, "name"),
                format!("wave {:?} appears twice", w.name),
            );
        }
        if let Some(l) = &w.max_concurrency {
            validate_limit(&path(&at, "maxConcurrency"), l, p);
        }
        if w.soak_minutes > 7 * 24 * 60 {
            p.push(path(&at, "soakMinutes"), "at most one week");
        }
    }
    if let Some(wf) = &r.workflow {
        p.check(validate_name("spec.rollout.workflow.name", &wf.name));
        if semver::Version::parse(&wf.version).is_err() {
            p.push("spec.rollout.workflow.version", "must be a SemVer version");
        }
    }
}

/// Refuses changing a template's cloud type.
///
/// # Errors
/// `CloudTypeImmutable`.
pub fn check_cloud_type_unchanged(old: CloudType, new: CloudType) -> Result<(), DomainError> {
    if old == new {
        return Ok(());
    }
    Err(DomainError::at(
        ErrorCode::CloudTypeImmutable,
        "spec.cloudType",
        format!(
            "the cloud type is fixed at creation ({}); create another template",
            old.as_str()
        ),
    ))
}

/// Whether a variable's value for a cluster is settled for the current revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Assignment {
    /// Someone must assign a value before the cluster moves to the revision.
    Pending,
    /// The value is settled.
    Assigned,
}

/// Where an assigned value came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AssignedBy {
    /// The cluster's own value (carried over, the default, or assigned for the cluster).
    Cluster,
    /// The template's fleet-wide value.
    Template,
}

/// One cluster's value of one variable for the template's current revision.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariableAssignment {
    /// Pending or Assigned.
    pub assignment: Assignment,
    /// Who settled it.
    pub assigned_by: AssignedBy,
    /// The value the cluster runs now (absent when the variable is new to it).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_value: Option<String>,
    /// The value it will run on the new revision.
    pub new_value: String,
}

/// Proposes a cluster's value of `def` for a new revision (DESIGN §4.8): the template's
/// fleet-wide value; else the cluster's running value if the variable existed before and the
/// value still validates; else the default. A required variable whose proposal is the default
/// or empty is Pending; every other one is Assigned.
pub fn propose(
    def: &Variable,
    template: Option<&TemplateVariable>,
    running: Option<&str>,
) -> VariableAssignment {
    let running_value = running.map(str::to_owned);
    if let Some(t) =
        template.filter(|t| t.assign_strategy == AssignStrategy::All && !t.value.is_empty())
        && validate_value(def, &t.value).is_ok()
    {
        return VariableAssignment {
            assignment: Assignment::Assigned,
            assigned_by: AssignedBy::Template,
            running_value,
            new_value: t.value.clone(),
        };
    }
    if let Some(v) = running
        && validate_value(def, v).is_ok()
    {
        return VariableAssignment {
            assignment: Assignment::Assigned,
            assigned_by: AssignedBy::Cluster,
            running_value,
            new_value: v.to_owned(),
        };
    }
    let new_value = def.default_value.clone();
    let assignment = if def.required {
        Assignment::Pending
    } else {
        Assignment::Assigned
    };
    VariableAssignment {
        assignment,
        assigned_by: AssignedBy::Cluster,
        running_value,
        new_value,
    }
}

/// Values given to a cluster at creation: `{profile: {variable: value}}`.
pub type ClusterValues = BTreeMap<String, BTreeMap<String, String>>;

/// The assignment of a value explicitly given for a cluster (at creation or by `PATCH`): it is
/// Assigned even when it equals the default (assigning the default explicitly is allowed).
///
/// # Errors
/// The validation message when the value does not fit the definition.
pub fn assign(
    def: &Variable,
    value: &str,
    running: Option<&str>,
) -> Result<VariableAssignment, String> {
    if def.required && value.is_empty() {
        return Err("is required".to_owned());
    }
    if !value.is_empty() {
        validate_value(def, value)?;
    }
    if def.immutable && running.is_some_and(|r| r != value) {
        return Err("is immutable: it cannot change once set".to_owned());
    }
    Ok(VariableAssignment {
        assignment: Assignment::Assigned,
        assigned_by: AssignedBy::Cluster,
        running_value: running.map(str::to_owned),
        new_value: value.to_owned(),
    })
}

/// Confirms the running value (`keepRunning: true`).
///
/// # Errors
/// When the cluster has no running value, or it does not validate against the new definition.
pub fn keep_running(def: &Variable, running: Option<&str>) -> Result<VariableAssignment, String> {
    let Some(v) = running else {
        return Err("the cluster has no running value to keep".to_owned());
    };
    assign(def, v, running)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(name: &str, required: bool, default: &str) -> Variable {
        Variable {
            name: name.into(),
            display_name: name.into(),
            required,
            default_value: default.into(),
            ..Variable::default()
        }
    }

    fn linked(t: ProfileType, c: CloudType) -> Option<LinkedVersion> {
        Some(LinkedVersion {
            profile_type: t,
            cloud_type: c,
            variables: vec![var("greeting", true, "")],
        })
    }

    fn spec(profiles: &[(&str, &str)]) -> ClusterTemplateSpec {
        ClusterTemplateSpec {
            cloud_type: CloudType::Aws,
            description: String::new(),
            profiles: profiles
                .iter()
                .map(|(n, v)| ProfileRef {
                    name: (*n).into(),
                    version: (*v).into(),
                    scope: None,
                    variables: vec![],
                })
                .collect(),
            maintenance_policy: Some(PolicyRef {
                name: "weekly".into(),
                scope: None,
            }),
            rollout: None,
        }
    }

    #[test]
    fn composition_rules_have_their_codes() {
        let ok = spec(&[("base", "1.0.0"), ("obs", "1.0.0")]);
        let facts = [
            linked(ProfileType::Full, CloudType::Aws),
            linked(ProfileType::Addon, CloudType::All),
        ];
        assert!(validate_template(&ok, &facts, true).is_ok());

        let only_addon = spec(&[("obs", "1.0.0")]);
        let e = validate_template(
            &only_addon,
            &[linked(ProfileType::Addon, CloudType::All)],
            true,
        )
        .unwrap_err();
        assert_eq!(
            (e.code, e.errors[0].field.as_str()),
            (ErrorCode::TemplateRequiresBaseProfile, "spec.profiles")
        );

        let two = spec(&[("a", "1.0.0"), ("b", "1.0.0")]);
        let e = validate_template(
            &two,
            &[
                linked(ProfileType::Full, CloudType::Aws),
                linked(ProfileType::Infra, CloudType::Aws),
            ],
            true,
        )
        .unwrap_err();
        assert_eq!(e.code, ErrorCode::TemplateRequiresBaseProfile);

        let e = validate_template(
            &spec(&[("a", "1.0.0")]),
            &[linked(ProfileType::Full, CloudType::Azure)],
            true,
        )
        .unwrap_err();
        assert_eq!(
            (e.code, e.errors[0].field.as_str()),
            (ErrorCode::CloudTypeMismatch, "spec.profiles[0]")
        );

        let mut no_policy = ok.clone();
        no_policy.maintenance_policy = None;
        let e = validate_template(&no_policy, &facts, true).unwrap_err();
        assert_eq!(
            (e.code, e.errors[0].field.as_str()),
            (ErrorCode::TemplateRequiresPolicy, "spec.maintenancePolicy")
        );

        let e = validate_template(&ok, &[None, facts[1].clone()], false).unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFailed);
        let fields: Vec<&str> = e.errors.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.profiles[0]",
                "spec.profiles",
                "spec.maintenancePolicy.name"
            ]
        );
        assert_eq!(
            check_cloud_type_unchanged(CloudType::Aws, CloudType::Gcp)
                .unwrap_err()
                .code,
            ErrorCode::CloudTypeImmutable
        );
    }

    #[test]
    fn strategy_and_template_variables_are_checked() {
        let mut s = spec(&[("base", "1.0.0")]);
        s.profiles[0].variables = vec![TemplateVariable {
            name: "nope".into(),
            value: String::new(),
            assign_strategy: AssignStrategy::Cluster,
        }];
        s.rollout = Some(RolloutStrategy {
            max_concurrency: Some(Limit::Percent("250%".into())),
            waves: vec![Wave {
                name: "canary".into(),
                selector: WaveSelector::default(),
                max_concurrency: Some(Limit::Count(0)),
                soak_minutes: 10,
            }],
            ..RolloutStrategy::default()
        });
        let e =
            validate_template(&s, &[linked(ProfileType::Full, CloudType::Aws)], true).unwrap_err();
        let fields: Vec<&str> = e.errors.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.profiles[0].variables[0].name",
                "spec.rollout.maxConcurrency",
                "spec.rollout.waves[0].maxConcurrency"
            ]
        );
    }

    #[test]
    fn revisions_change_only_with_the_set_of_versions() {
        let a = spec(&[("base", "1.0.0"), ("obs", "1.0.0")]);
        let mut b = spec(&[("obs", "1.0.0"), ("base", "1.0.0")]);
        b.description = "changed".into();
        b.maintenance_policy = Some(PolicyRef {
            name: "other".into(),
            scope: None,
        });
        assert_eq!(
            revision_set(&a, RefScope::Project),
            revision_set(&b, RefScope::Project)
        );
        let c = spec(&[("base", "1.1.0"), ("obs", "1.0.0")]);
        assert_ne!(
            revision_set(&a, RefScope::Project),
            revision_set(&c, RefScope::Project)
        );
    }

    #[test]
    fn proposals_follow_the_order_of_section_4_8() {
        let required_no_default = var("greeting", true, "");
        let required_with_default = var("replicas", true, "1");
        let optional = var("region", false, "eu");
        let all = TemplateVariable {
            name: "greeting".into(),
            value: "hi".into(),
            assign_strategy: AssignStrategy::All,
        };

        // template value first
        let p = propose(&required_no_default, Some(&all), Some("hello"));
        assert_eq!(
            (p.assignment, p.assigned_by, p.new_value.as_str()),
            (Assignment::Assigned, AssignedBy::Template, "hi")
        );
        // then the running value
        let p = propose(&required_no_default, None, Some("hello"));
        assert_eq!(
            (p.assignment, p.assigned_by, p.new_value.as_str()),
            (Assignment::Assigned, AssignedBy::Cluster, "hello")
        );
        // a new required variable whose value would be its default is Pending
        let p = propose(&required_with_default, None, None);
        assert_eq!(
            (p.assignment, p.new_value.as_str()),
            (Assignment::Pending, "1")
        );
        let p = propose(&required_no_default, None, None);
        assert_eq!(p.assignment, Assignment::Pending);
        // optional ones take the default and are Assigned
        let p = propose(&optional, None, None);
        assert_eq!(
            (p.assignment, p.new_value.as_str()),
            (Assignment::Assigned, "eu")
        );
        // a running value that no longer validates falls back to the default
        let mut numeric = var("replicas", true, "3");
        numeric.format = crate::profile::Format::Number;
        let p = propose(&numeric, None, Some("many"));
        assert_eq!(
            (p.assignment, p.new_value.as_str()),
            (Assignment::Pending, "3")
        );
        // assigning the default explicitly settles it
        let a = assign(&numeric, "3", None).unwrap();
        assert_eq!(a.assignment, Assignment::Assigned);
        assert!(assign(&numeric, "many", None).is_err());
        assert!(assign(&required_no_default, "", None).is_err());
        let k = keep_running(&numeric, Some("5")).unwrap();
        assert_eq!(k.new_value, "5");
        assert!(keep_running(&numeric, None).is_err());
        let mut imm = var("id", false, "a");
        imm.immutable = true;
        assert!(assign(&imm, "b", Some("a")).is_err());
    }
}
