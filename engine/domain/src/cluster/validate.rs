//! The shape of a cluster spec, and the composition of a standalone cluster's profile versions.

use super::{ClusterSpec, NodePool};
use crate::error::{DomainError, ErrorCode, Problems, index, path};
use crate::meta::{validate_label_key, validate_label_value, validate_name};
use crate::profile::limits::{MAX_VALUE_BYTES, MAX_VARIABLES};
use crate::profile::variable::is_identifier;
use crate::profile::{CloudType, ProfileType, ProfileVersion, parse_version};
use std::collections::HashMap;

/// The most node pools a cluster may have.
pub const MAX_NODE_POOLS: usize = 32;
/// The most machines one pool may have.
pub const MAX_POOL_COUNT: u32 = 1000;
/// The sizes a control-plane pool may have: an odd number of etcd members keeps a quorum.
pub const CONTROL_PLANE_COUNTS: [u32; 3] = [1, 3, 5];
/// The most characters an instance type may have.
pub const MAX_INSTANCE_TYPE_LEN: usize = 64;
/// The most labels a cluster may have.
pub const MAX_CLUSTER_LABELS: usize = 64;
/// The most profile versions a standalone cluster may list.
pub const MAX_CLUSTER_PROFILES: usize = 32;
/// The most characters a time zone name may have (the longest IANA name is 32).
const MAX_TIME_ZONE_LEN: usize = 64;

/// Validates the shape of a cluster spec, without consulting anything else (whether the
/// template, profiles and cloud account exist is the API's business). Every problem is reported:
///
/// - `template` xor `profiles` (field `spec`);
/// - `template.name` a DNS label;
/// - `timeZone` required for template clusters, an IANA zone when given;
/// - `cloudAccount` a DNS label;
/// - `nodePools`: 1–[`MAX_NODE_POOLS`], names unique DNS labels, exactly one control-plane pool,
///   counts 1–[`MAX_POOL_COUNT`] (control plane: 1, 3 or 5), instance types 1–64 printable ASCII
///   characters without spaces;
/// - `labels`: Kubernetes label syntax, at most [`MAX_CLUSTER_LABELS`];
/// - `profiles[i]`: a DNS-label name, a strict SemVer version, no name twice, no `variables`
///   (a cluster sets values in `spec.variables`);
/// - `variables`: keys are profile names (DNS labels) and variable names (identifiers), values at
///   most 64 KiB.
///
/// # Errors
/// `ValidationFailed` with every problem, each at its field path (`spec.nodePools[1].count`).
pub fn validate_spec(spec: &ClusterSpec) -> Result<(), DomainError> {
    let mut p = Problems::new();
    match (&spec.template, spec.profiles.is_empty()) {
        (Some(_), false) => p.push(
            "spec",
            "set either template (a template cluster) or profiles (a standalone cluster), not both",
        ),
        (None, true) => p.push(
            "spec",
            "set template (a template cluster) or profiles (a standalone cluster)",
        ),
        _ => {}
    }
    if let Some(t) = &spec.template {
        p.check(validate_name("spec.template.name", &t.name));
    }
    match &spec.time_zone {
        None if spec.template.is_some() => p.push(
            "spec.timeZone",
            "is required for template clusters: maintenance windows open in it",
        ),
        Some(z) if !is_time_zone(z) => p.push(
            "spec.timeZone",
            format!("{z:?} is not an IANA time zone (like Europe/Berlin or UTC)"),
        ),
        _ => {}
    }
    p.check(validate_name("spec.cloudAccount", &spec.cloud_account));
    validate_node_pools(&spec.node_pools, &mut p);
    validate_labels(spec, &mut p);
    validate_profiles(spec, &mut p);
    validate_variables(spec, &mut p);
    p.finish()
}

/// Whether `z` names an IANA zone of the bundled database, ignoring ASCII case (as the scheduler
/// looks it up). `Etc/Unknown`, jiff's marker for a zone it could not determine, is not one.
fn is_time_zone(z: &str) -> bool {
    z.len() <= MAX_TIME_ZONE_LEN && jiff::tz::TimeZone::get(z).is_ok_and(|tz| !tz.is_unknown())
}

fn validate_node_pools(pools: &[NodePool], p: &mut Problems) {
    if pools.is_empty() {
        p.push(
            "spec.nodePools",
            "at least one node pool is required, with controlPlane: true",
        );
        return;
    }
    if pools.len() > MAX_NODE_POOLS {
        p.push(
            "spec.nodePools",
            format!("at most {MAX_NODE_POOLS} node pools"),
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut control_plane: Option<usize> = None;
    for (i, pool) in pools.iter().enumerate() {
        let at = index("spec.nodePools", i);
        if p.check(validate_name(&path(&at, "name"), &pool.name))
            .is_some()
            && let Some(j) = names.insert(&pool.name, i)
        {
            names.insert(&pool.name, j);
            p.push(
                path(&at, "name"),
                format!("node pool {:?} is already spec.nodePools[{j}]", pool.name),
            );
        }
        if pool.control_plane {
            match control_plane {
                Some(j) => p.push(
                    path(&at, "controlPlane"),
                    format!("a cluster has one control-plane pool (spec.nodePools[{j}])"),
                ),
                None => control_plane = Some(i),
            }
            if !CONTROL_PLANE_COUNTS.contains(&pool.count) {
                p.push(
                    path(&at, "count"),
                    format!(
                        "a control-plane pool has 1, 3 or 5 machines, so that etcd keeps a quorum (got {})",
                        pool.count
                    ),
                );
            }
        } else if !(1..=MAX_POOL_COUNT).contains(&pool.count) {
            p.push(
                path(&at, "count"),
                format!("must be 1 to {MAX_POOL_COUNT} (got {})", pool.count),
            );
        }
        let it = &pool.instance_type;
        if it.is_empty() {
            p.push(path(&at, "instanceType"), "is required");
        } else if it.len() > MAX_INSTANCE_TYPE_LEN || !it.bytes().all(|b| b.is_ascii_graphic()) {
            p.push(
                path(&at, "instanceType"),
                format!(
                    "must be 1 to {MAX_INSTANCE_TYPE_LEN} printable ASCII characters without spaces"
                ),
            );
        }
    }
    if control_plane.is_none() {
        p.push(
            "spec.nodePools",
            "one node pool must have controlPlane: true",
        );
    }
}

fn validate_labels(spec: &ClusterSpec, p: &mut Problems) {
    if spec.labels.len() > MAX_CLUSTER_LABELS {
        p.push(
            "spec.labels",
            format!("at most {MAX_CLUSTER_LABELS} labels"),
        );
    }
    for (k, v) in &spec.labels {
        let field = path("spec.labels", k);
        p.check(validate_label_key(&field, k));
        p.check(validate_label_value(&field, v));
    }
}

fn validate_profiles(spec: &ClusterSpec, p: &mut Problems) {
    if spec.profiles.len() > MAX_CLUSTER_PROFILES {
        p.push(
            "spec.profiles",
            format!("at most {MAX_CLUSTER_PROFILES} profile versions"),
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, r) in spec.profiles.iter().enumerate() {
        let at = index("spec.profiles", i);
        // One name once, whatever the scope: values are keyed by profile name.
        if p.check(validate_name(&path(&at, "name"), &r.name))
            .is_some()
            && let Some(j) = names.insert(&r.name, i)
        {
            names.insert(&r.name, j);
            p.push(
                path(&at, "name"),
                format!("profile {:?} is already spec.profiles[{j}]", r.name),
            );
        }
        if let Err(e) = parse_version(&r.version) {
            p.push(path(&at, "version"), e);
        }
        if !r.variables.is_empty() {
            p.push(
                path(&at, "variables"),
                "a cluster sets variable values in spec.variables, not per profile reference",
            );
        }
    }
}

fn validate_variables(spec: &ClusterSpec, p: &mut Problems) {
    for (profile, vars) in &spec.variables {
        let at = path("spec.variables", profile);
        if validate_name(&at, profile).is_err() {
            p.push(
                at.clone(),
                format!("{profile:?} is not a profile name (a DNS label)"),
            );
        }
        if vars.len() > MAX_VARIABLES {
            p.push(
                at.clone(),
                format!("at most {MAX_VARIABLES} variables per profile"),
            );
        }
        for (name, value) in vars {
            let field = path(&at, name);
            if !is_identifier(name) {
                p.push(
                    field.clone(),
                    format!(
                        "{name:?} is not a variable name: letters, digits and '_', not starting with a digit, at most 63 characters"
                    ),
                );
            }
            if value.len() > MAX_VALUE_BYTES {
                p.push(field, format!("must be at most {MAX_VALUE_BYTES} bytes"));
            }
        }
    }
}

/// The cloud type of a set of profile versions: the base (full or infra) version's; `None`
/// without a base version.
pub fn base_cloud_type(versions: &[&ProfileVersion]) -> Option<CloudType> {
    versions
        .iter()
        .find(|v| v.spec.profile_type != ProfileType::Addon)
        .map(|v| v.spec.cloud_type)
}

/// Checks the composition of a standalone cluster's profile versions (`versions[i]` is the
/// version of `spec.profiles[i]`), with the rules of templates (DESIGN §4.6): exactly one full or
/// infra version, add-ons otherwise, and one cloud type — the base version's; an add-on of cloud
/// type `all` fits any. Without a base version, the add-ons must still agree with each other.
///
/// # Errors
/// `TemplateRequiresBaseProfile` (field `spec.profiles`), `CloudTypeMismatch` (fields
/// `spec.profiles[i]`), or `ValidationFailed` carrying both kinds of problem.
pub fn check_standalone_set(versions: &[&ProfileVersion]) -> Result<(), DomainError> {
    let mut p = Problems::new();
    let mut codes = Vec::new();
    let bases = versions
        .iter()
        .filter(|v| v.spec.profile_type != ProfileType::Addon)
        .count();
    let cloud = base_cloud_type(versions).or_else(|| {
        versions
            .iter()
            .map(|v| v.spec.cloud_type)
            .find(|c| *c != CloudType::All)
    });
    if let Some(cloud) = cloud {
        for (i, v) in versions.iter().enumerate() {
            let c = v.spec.cloud_type;
            if c != cloud && !(c == CloudType::All && v.spec.profile_type == ProfileType::Addon) {
                codes.push(ErrorCode::CloudTypeMismatch);
                p.push(
                    index("spec.profiles", i),
                    format!(
                        "{}@{} is for cloud type {c}, the cluster's other profiles for {cloud}",
                        v.metadata.name, v.spec.version
                    ),
                );
            }
        }
    }
    if bases != 1 {
        codes.push(ErrorCode::TemplateRequiresBaseProfile);
        p.push(
            "spec.profiles",
            format!("use exactly one full or infra profile version (found {bases})"),
        );
    }
    let code = match codes.first() {
        Some(c) if codes.iter().all(|x| x == c) => *c,
        _ => ErrorCode::ValidationFailed,
    };
    p.finish_with(code)
}
