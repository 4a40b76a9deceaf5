//! From a cluster's spec and its profile versions to the desired stack a provider applies:
//! effective variable values, rendering, the stack's digest, and the rules of §5.3 (which changes
//! replace machines, and that Kubernetes never goes down a minor version).

use super::{AppliedProfile, ClusterSpec, ClusterVariables, NodePool};
use crate::error::{DomainError, ErrorCode, FieldError, Problems, path};
use crate::profile::{
    CloudType, Layer, Macros, ProfileType, ProfileVersion, RenderedLayer, SystemValues,
    render_version, variable::ValueChecker,
};
use crate::template::RefScope;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// A profile version a cluster uses, resolved by the API.
#[derive(Debug, Clone, PartialEq)]
pub struct LinkedProfile<'a> {
    /// The version.
    pub version: &'a ProfileVersion,
    /// Where it lives, as the cluster or its template referenced it.
    pub scope: Option<RefScope>,
    /// The template's fleet-wide values (`assignStrategy: all`) for this profile; empty for a
    /// standalone cluster. An empty value does not fix the variable.
    pub template_values: BTreeMap<String, String>,
}

impl LinkedProfile<'_> {
    fn name(&self) -> &str {
        &self.version.metadata.name
    }

    fn is_base(&self) -> bool {
        self.version.spec.profile_type != ProfileType::Addon
    }

    fn template_value(&self, variable: &str) -> Option<&str> {
        self.template_values
            .get(variable)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }
}

/// Every variable's value for a cluster (DESIGN §4.8): the template's fleet-wide value when it
/// sets one, else the cluster's given value, else the default. An empty given value means
/// "unset". Each value is checked against its definition.
///
/// Returns `{profile: {variable: value}}` for every variable of every profile that has
/// variables (optional ones without a value are present and empty), ready for rendering.
///
/// # Errors
/// `ValidationFailed` with every problem: a profile the cluster does not use
/// (`spec.variables.<p>`), a variable its version does not define, a value for a variable the
/// template sets, an invalid value, or a required variable without a value and without a default
/// (`spec.variables.<p>.<v>` "is required").
pub fn effective_values(
    profiles: &[LinkedProfile<'_>],
    given: &ClusterVariables,
) -> Result<ClusterVariables, DomainError> {
    let mut p = Problems::new();
    for (name, vars) in given {
        let at = path("spec.variables", name);
        let Some(linked) = profiles.iter().find(|l| l.name() == name) else {
            let known: Vec<&str> = profiles.iter().map(LinkedProfile::name).collect();
            p.push(
                at,
                format!(
                    "the cluster uses no profile {name:?} (it uses {})",
                    known.join(", ")
                ),
            );
            continue;
        };
        for var in vars.keys() {
            let field = path(&at, var);
            if linked.version.spec.variable(var).is_none() {
                p.push(
                    field,
                    format!(
                        "profile {name:?} {} has no variable {var:?}",
                        linked.version.spec.version
                    ),
                );
            } else if linked.template_value(var).is_some() {
                p.push(
                    field,
                    "is set by the template (assignStrategy all); change it on the template",
                );
            }
        }
    }

    let mut out = ClusterVariables::new();
    for linked in profiles {
        let name = linked.name();
        let mine = given.get(name);
        let mut values = BTreeMap::new();
        for def in &linked.version.spec.variables {
            let field = path(&path("spec.variables", name), &def.name);
            let (value, from_template) = match linked.template_value(&def.name) {
                Some(v) => (v, true),
                None => {
                    let v = mine
                        .and_then(|m| m.get(&def.name))
                        .map(String::as_str)
                        .filter(|v| !v.is_empty())
                        .unwrap_or(&def.default_value);
                    (v, false)
                }
            };
            match ValueChecker::new(def).and_then(|c| c.check(value)) {
                Ok(()) => {
                    values.insert(def.name.clone(), value.to_owned());
                }
                Err(e) if from_template => p.push(field, format!("the template's value {e}")),
                Err(e) => p.push(field, e),
            }
        }
        if !values.is_empty() {
            out.insert(name.to_owned(), values);
        }
    }
    p.finish()?;
    Ok(out)
}

/// One rendered layer of the desired stack, with the profile it comes from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredLayer {
    /// The profile's name.
    pub profile: String,
    /// The rendered layer.
    pub layer: RenderedLayer,
}

/// What a cluster should run: the input of a provider's create or update.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct DesiredCluster {
    /// The cloud type.
    pub cloud_type: CloudType,
    /// The cluster's labels.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// The machines.
    pub node_pools: Vec<NodePool>,
    /// `{pack}-{version}` of the `os` layer (`ubuntu-aws-24.04`).
    pub os_image: String,
    /// The version of the `k8s` layer (`1.33.4`).
    pub kubernetes_version: String,
    /// Every layer: the base profile's first, then the add-on profiles' in the given order.
    pub layers: Vec<DesiredLayer>,
    /// The profile versions, in the same order.
    pub profiles: Vec<AppliedProfile>,
}

/// Renders a cluster's desired stack (see [`desired_cluster_with`]) with the system values a
/// cluster always has: `system.cluster.name`, `system.project.name`,
/// `system.cloudaccount.name` (`spec.cloudAccount`), `system.cluster.timezone`
/// (`spec.timeZone`, default `UTC`) and `system.cloud.type`. Values it leaves undefined
/// (`system.cluster.uid`, region, tenant) are given through [`desired_cluster_with`].
///
/// # Errors
/// Those of [`desired_cluster_with`].
pub fn desired_cluster(
    name: &str,
    project: &str,
    spec: &ClusterSpec,
    profiles: &[LinkedProfile<'_>],
    values: &ClusterVariables,
    macros: &Macros,
    cloud_type: CloudType,
) -> Result<DesiredCluster, DomainError> {
    let system = SystemValues {
        cluster_name: name.to_owned(),
        project_name: (!project.is_empty()).then(|| project.to_owned()),
        ..SystemValues::default()
    };
    desired_cluster_with(&system, spec, profiles, values, macros, cloud_type)
}

/// Renders a cluster's desired stack: each profile version with
/// [`render_version`], the base (full or infra) profile first, then the add-ons in the given
/// order. `system` gives the cluster's facts (name, uid, project, tenant, region); those it leaves
/// `None` that the spec knows are filled in: `system.cluster.timezone` from `spec.timeZone`
/// (default `UTC`) and `system.cloudaccount.name` from `spec.cloudAccount`.
/// `system.cloud.type` is `cloud_type`, and `system.kubernetes.version` is the base profile's
/// `k8s` version for every profile. `values` are those [`effective_values`] returned.
///
/// # Errors
/// `TemplateRequiresBaseProfile` at `spec.profiles` unless exactly one profile is full or infra;
/// otherwise `ValidationFailed` with every rendering problem of every profile, each with the
/// field path [`render_version`] gave it (`spec.variables.<p>.<v>`, `spec.layers[i].values`) and
/// a message naming the cluster, profile, layer and line.
pub fn desired_cluster_with(
    system: &SystemValues,
    spec: &ClusterSpec,
    profiles: &[LinkedProfile<'_>],
    values: &ClusterVariables,
    macros: &Macros,
    cloud_type: CloudType,
) -> Result<DesiredCluster, DomainError> {
    let bases: Vec<&LinkedProfile<'_>> = profiles.iter().filter(|l| l.is_base()).collect();
    let [base] = bases.as_slice() else {
        return Err(DomainError::at(
            ErrorCode::TemplateRequiresBaseProfile,
            "spec.profiles",
            format!(
                "a cluster runs exactly one full or infra profile version (found {})",
                bases.len()
            ),
        ));
    };
    let ordered = std::iter::once(*base).chain(profiles.iter().filter(|l| !l.is_base()));

    let mut sys = system.clone();
    sys.cloud_type = (cloud_type != CloudType::All).then_some(cloud_type);
    if sys.time_zone.is_none() {
        sys.time_zone = Some(spec.time_zone.clone().unwrap_or_else(|| "UTC".to_owned()));
    }
    if sys.cloud_account_name.is_none() && !spec.cloud_account.is_empty() {
        sys.cloud_account_name = Some(spec.cloud_account.clone());
    }
    if let Some(k8s) = base.version.spec.kubernetes_version() {
        sys.kubernetes_version = Some(k8s.to_owned());
    }

    let empty = BTreeMap::new();
    let mut errors: Vec<FieldError> = Vec::new();
    let mut layers = Vec::new();
    let mut applied = Vec::new();
    for linked in ordered {
        let name = linked.name();
        applied.push(AppliedProfile {
            name: name.to_owned(),
            version: linked.version.spec.version.clone(),
            scope: linked.scope,
        });
        let mine = values.get(name).unwrap_or(&empty);
        match render_version(linked.version, mine, macros, &sys) {
            Ok(rendered) => layers.extend(rendered.into_iter().map(|layer| DesiredLayer {
                profile: name.to_owned(),
                layer,
            })),
            Err(e) => errors.extend(e.errors),
        }
    }
    if !errors.is_empty() {
        return Err(DomainError::validation(errors));
    }

    let find = |l: Layer| layers.iter().map(|d| &d.layer).find(|r| r.layer == l);
    let (Some(os), Some(k8s)) = (find(Layer::Os), find(Layer::K8s)) else {
        return Err(DomainError::validation(vec![FieldError::new(
            "spec.profiles",
            format!(
                "profile {:?} {} lacks an os or k8s layer",
                base.name(),
                base.version.spec.version
            ),
        )]));
    };
    Ok(DesiredCluster {
        cloud_type,
        labels: spec.labels.clone(),
        node_pools: spec.node_pools.clone(),
        os_image: format!("{}-{}", os.name, os.version),
        kubernetes_version: k8s.version.clone(),
        layers,
        profiles: applied,
    })
}

/// A stable digest of a desired stack: `sha256:` and 64 lowercase hex digits of SHA-256 over
/// its canonical JSON (fields in declaration order, maps sorted by key). Equal stacks have
/// equal digests across processes, platforms and releases (changing the JSON would make every
/// cluster look changed once).
pub fn desired_digest(d: &DesiredCluster) -> String {
    use sha2::Digest as _;
    // Serializing these types cannot fail: every map key is a string.
    let json = serde_json::to_vec(d).unwrap_or_default();
    format!("sha256:{}", hex::encode(sha2::Sha256::digest(&json)))
}

/// Whether going from `old` to `new` replaces machines (DESIGN §5.3): an `os` or `k8s` layer
/// appears or disappears, or its pack, version, values or manifests differ. Values are compared
/// as YAML data (comments, key order and layout do not matter) when both sides parse, as text
/// otherwise. Every other change is applied in place.
pub fn replaces_machines(old: &[DesiredLayer], new: &[DesiredLayer]) -> bool {
    let (a, b) = (machine_layers(old), machine_layers(new));
    a.len() != b.len()
        || a.iter().zip(&b).any(|(x, y)| {
            x.name != y.name
                || x.layer != y.layer
                || x.version != y.version
                || x.manifests != y.manifests
                || (x.values != y.values && !same_yaml_data(&x.values, &y.values))
        })
}

/// The `os` and `k8s` layers of a stack.
fn machine_layers(layers: &[DesiredLayer]) -> Vec<&RenderedLayer> {
    layers
        .iter()
        .map(|d| &d.layer)
        .filter(|l| matches!(l.layer, Layer::Os | Layer::K8s))
        .collect()
}

/// Whether two texts that differ are the same YAML data (comments, key order and layout do
/// not count); `false` when either does not parse. Parsing only when the texts differ keeps
/// the common case (an unchanged layer) free of YAML parsing.
fn same_yaml_data(a: &str, b: &str) -> bool {
    let parse = |t: &str| serde_saphyr::from_str::<serde_json::Value>(t).ok();
    match (parse(a), parse(b)) {
        (Some(x), Some(y)) => x == y,
        _ => false,
    }
}

/// `(major, minor, patch)` of a Kubernetes version: `1.31.4`, `v1.31.4`, `1.31`, with any
/// `-pre` or `+build` suffix ignored.
fn kubernetes_minor(v: &str) -> Option<(u64, u64, u64)> {
    let v = v.trim();
    let v = v.strip_prefix(['v', 'V']).unwrap_or(v);
    let core = v.split(['-', '+']).next().unwrap_or_default();
    let mut parts = core.split('.');
    let num = |s: Option<&str>| {
        s.filter(|s| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|s| s.parse::<u64>().ok())
    };
    let major = num(parts.next())?;
    let minor = num(parts.next())?;
    let patch = match parts.next() {
        None => 0,
        some => num(some)?,
    };
    parts.next().is_none().then_some((major, minor, patch))
}

/// Checks a change of Kubernetes version (DESIGN §5.3): it may not go down a minor (or major)
/// version. Going down a patch within the same minor (`1.33.4` → `1.33.2`) is allowed: patch
/// releases of a minor are compatible, and it is how a bad patch is rolled back. Skipping minors
/// upward is not refused here.
///
/// # Errors
/// `KubernetesDowngrade` (409) when `to` is a lower minor than `from`; `ValidationFailed` when
/// either is not a version like `1.31.4` or `v1.31.4`.
pub fn check_kubernetes_change(from: &str, to: &str) -> Result<(), DomainError> {
    let parse = |v: &str| {
        kubernetes_minor(v).ok_or_else(|| {
            DomainError::validation(vec![FieldError::new(
                "",
                format!("{v:?} is not a Kubernetes version like 1.31.4"),
            )])
        })
    };
    let (a, b) = (parse(from)?, parse(to)?);
    if (b.0, b.1) < (a.0, a.1) {
        return Err(DomainError::new(
            ErrorCode::KubernetesDowngrade,
            format!(
                "Kubernetes cannot go down a minor version ({from} to {to}); \
                 pick a {}.{} or later version",
                a.0, a.1
            ),
        ));
    }
    Ok(())
}
