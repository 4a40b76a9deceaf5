//! Macros and system values (DESIGN §4.4): what `{{ macro.NAME }}` and `{{ system.… }}` resolve to
//! when a cluster's layers are rendered.
//!
//! Macros are defined at system scope (by the server's operator), tenant scope and project scope;
//! a project macro overrides a tenant macro of the same name, which overrides a system macro.

use super::limits::MAX_VALUE_BYTES;
use super::variable::{IDENTIFIER_RULE, is_identifier};
use super::version::CloudType;
use crate::error::{DomainError, Problems};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Where a macro is defined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MacroScope {
    /// Server-wide, set by the operator.
    System,
    /// The tenant's (`/v1/macros`).
    Tenant,
    /// One project's (`/v1/projects/{p}/macros`).
    Project,
}

/// A macro: a name and its value.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Macro {
    /// An identifier.
    pub name: String,
    /// The text it stands for.
    pub value: String,
}

/// The `spec` of a macro object (`PUT /v1[/projects/{p}]/macros/{name}`); the name is
/// `metadata.name`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct MacroSpec {
    /// The text it stands for.
    pub value: String,
}

/// Checks a macro name: an identifier (not a DNS label: templates write `macro.NAME`).
///
/// # Errors
/// A message saying what is wrong.
pub fn validate_macro_name(name: &str) -> Result<(), String> {
    if is_identifier(name) {
        Ok(())
    } else {
        Err(format!("{IDENTIFIER_RULE} (got {name:?})"))
    }
}

/// Validates a macro object: `metadata.name` is an identifier and `spec.value` at most
/// [`MAX_VALUE_BYTES`] bytes.
///
/// # Errors
/// `ValidationFailed` with every problem.
pub fn validate_macro(name: &str, spec: &MacroSpec) -> Result<(), DomainError> {
    let mut problems = Problems::new();
    if let Err(e) = validate_macro_name(name) {
        problems.push("metadata.name", e);
    }
    if spec.value.len() > MAX_VALUE_BYTES {
        problems.push(
            "spec.value",
            format!("must be at most {MAX_VALUE_BYTES} bytes"),
        );
    }
    problems.finish()
}

/// The macros visible to a cluster, after precedence.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Macros(pub BTreeMap<String, String>);

impl Macros {
    /// Resolves precedence: project overrides tenant overrides system.
    pub fn resolve(system: &[Macro], tenant: &[Macro], project: &[Macro]) -> Macros {
        let mut map = BTreeMap::new();
        for m in system.iter().chain(tenant).chain(project) {
            map.insert(m.name.clone(), m.value.clone());
        }
        Macros(map)
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).map(String::as_str)
    }
}

/// Every system value a template may reference, as `system.<name>`.
pub const SYSTEM_VALUE_NAMES: &[&str] = &[
    "cluster.name",
    "cluster.uid",
    "cluster.region",
    "cluster.timezone",
    "project.name",
    "project.uid",
    "tenant.name",
    "cloudaccount.name",
    "clusterprofile.name",
    "clusterprofile.version",
    "kubernetes.version",
    "cloud.type",
    "cloud.region",
];

/// Facts about the cluster being rendered. The renderer adds the profile's own name and version
/// (`system.clusterprofile.*`), and the Kubernetes version from the `k8s` layer when the profile
/// has one. A value left `None` is undefined in templates: using it is a render error naming it.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct SystemValues {
    /// `system.cluster.name`
    #[serde(default)]
    pub cluster_name: String,
    /// `system.cluster.uid`
    #[serde(default)]
    pub cluster_uid: String,
    /// `system.cluster.region` and `system.cloud.region`
    #[serde(default)]
    pub region: Option<String>,
    /// `system.cluster.timezone` (IANA name)
    #[serde(default)]
    pub time_zone: Option<String>,
    /// `system.project.name`
    #[serde(default)]
    pub project_name: Option<String>,
    /// `system.project.uid`
    #[serde(default)]
    pub project_uid: Option<String>,
    /// `system.tenant.name`
    #[serde(default)]
    pub tenant_name: Option<String>,
    /// `system.cloudaccount.name`
    #[serde(default)]
    pub cloud_account_name: Option<String>,
    /// `system.cloud.type`; the profile's cloud type when `None` and the profile is not `all`.
    #[serde(default)]
    pub cloud_type: Option<CloudType>,
    /// `system.kubernetes.version`, for add-on profiles (a profile with a `k8s` layer uses that
    /// layer's version).
    #[serde(default)]
    pub kubernetes_version: Option<String>,
}

impl SystemValues {
    /// The values as `system.` paths without the prefix (`cluster.name` → `dev`), for a profile
    /// named `profile` at `version`.
    pub fn to_map(&self, profile: &str, version: &str) -> BTreeMap<String, String> {
        let mut m = BTreeMap::new();
        let mut put = |k: &str, v: Option<&str>| {
            if let Some(v) = v {
                m.insert(k.to_owned(), v.to_owned());
            }
        };
        put("cluster.name", Some(&self.cluster_name));
        put("cluster.uid", Some(&self.cluster_uid));
        put("cluster.region", self.region.as_deref());
        put("cloud.region", self.region.as_deref());
        put("cluster.timezone", self.time_zone.as_deref());
        put("project.name", self.project_name.as_deref());
        put("project.uid", self.project_uid.as_deref());
        put("tenant.name", self.tenant_name.as_deref());
        put("cloudaccount.name", self.cloud_account_name.as_deref());
        put("cloud.type", self.cloud_type.map(CloudType::as_str));
        put("kubernetes.version", self.kubernetes_version.as_deref());
        put("clusterprofile.name", Some(profile));
        put("clusterprofile.version", Some(version));
        m
    }
}

/// Whether `path` (without `system.`) names a system value or a group of them (`cluster`).
pub fn is_system_path(path: &str) -> bool {
    SYSTEM_VALUE_NAMES.iter().any(|n| {
        *n == path
            || n.strip_prefix(path)
                .is_some_and(|rest| rest.starts_with('.'))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(name: &str, value: &str) -> Macro {
        Macro {
            name: name.into(),
            value: value.into(),
        }
    }

    #[test]
    fn project_overrides_tenant_overrides_system() {
        let resolved = Macros::resolve(
            &[m("a", "sys"), m("b", "sys"), m("c", "sys")],
            &[m("b", "tenant"), m("c", "tenant")],
            &[m("c", "project")],
        );
        assert_eq!(resolved.get("a"), Some("sys"));
        assert_eq!(resolved.get("b"), Some("tenant"));
        assert_eq!(resolved.get("c"), Some("project"));
        assert_eq!(resolved.get("d"), None);
    }

    #[test]
    fn macro_objects_are_validated() {
        assert!(
            validate_macro(
                "registry_host",
                &MacroSpec {
                    value: "r.example.com".into()
                }
            )
            .is_ok()
        );
        let e = validate_macro(
            "bad-name",
            &MacroSpec {
                value: "x".repeat(MAX_VALUE_BYTES + 1),
            },
        )
        .unwrap_err();
        let fields: Vec<&str> = e.errors.iter().map(|f| f.field.as_str()).collect();
        assert_eq!(fields, ["metadata.name", "spec.value"]);
    }

    #[test]
    fn system_paths() {
        assert!(is_system_path("cluster.name"));
        assert!(is_system_path("cluster"));
        assert!(!is_system_path("clust"));
        assert!(!is_system_path("cluster.nam"));
        assert!(!is_system_path("cluster.name.x"));
        let map = SystemValues {
            cluster_name: "dev".into(),
            ..Default::default()
        }
        .to_map("p", "1.0.0");
        assert_eq!(map["cluster.name"], "dev");
        assert_eq!(map["clusterprofile.version"], "1.0.0");
        assert!(!map.contains_key("cluster.region"));
        for k in map.keys() {
            assert!(SYSTEM_VALUE_NAMES.contains(&k.as_str()), "{k}");
        }
    }
}
