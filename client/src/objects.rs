//! Typed shapes of the API objects: the common envelope ([`Object`], [`Metadata`], [`ListPage`])
//! and the kinds of the foundation (projects, users, API keys, role bindings, audit events) and
//! of maintenance policies.
//!
//! Decoding is lenient on purpose: members the server adds later are ignored, so an older client
//! keeps working against a newer server.

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// An API object: `{"kind", "metadata", "spec", "status"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Object<S, St = serde_json::Value> {
    /// The kind, e.g. `Project`; set by the server, not needed on writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    /// Name, labels, description and the server-set fields.
    pub metadata: Metadata,
    /// What the user asks for.
    pub spec: S,
    /// What the server observed; ignored on writes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<St>,
}

impl<S, St> Object<S, St> {
    /// A new object to write: a name and a spec, no labels, no description.
    pub fn new(name: impl Into<String>, spec: S) -> Self {
        Self {
            kind: None,
            metadata: Metadata::named(name),
            spec,
            status: None,
        }
    }
}

/// The metadata every object has. Only `name`, `labels` and `description` are read on writes;
/// the others are set by the server.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Metadata {
    /// The name: a DNS label (lowercase, at most 63 characters).
    pub name: String,
    /// A unique id the server gives the object at creation.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uid: Option<String>,
    /// The project of a project-scoped object; absent at tenant scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Labels, selectable with `labelSelector`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When the object was created (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<String>,
    /// When the object last changed (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<String>,
    /// The version the `ETag` names; pass it to writes as a precondition.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        deserialize_with = "string_or_number"
    )]
    pub resource_version: Option<String>,
}

impl Metadata {
    /// Metadata with only a name.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

/// Accepts a version written as a JSON string or number.
fn string_or_number<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Version {
        Text(String),
        Number(serde_json::Number),
    }
    Ok(Option::<Version>::deserialize(d)?.map(|v| match v {
        Version::Text(s) => s,
        Version::Number(n) => n.to_string(),
    }))
}

/// One page of a list: `{"items": [...], "continue": "<token>"}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ListPage<T> {
    /// The objects of this page.
    #[serde(default = "Vec::new")]
    pub items: Vec<T>,
    /// The token of the next page; absent on the last page.
    #[serde(default, rename = "continue", skip_serializing_if = "Option::is_none")]
    pub continue_token: Option<String>,
}

/// Paging and selection of a list call.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListOptions {
    /// Largest page wanted (the server caps it at 500).
    pub limit: Option<u32>,
    /// The `continue` token of the previous page.
    pub continue_token: Option<String>,
    /// A label selector, e.g. `env=prod,team!=ops`.
    pub label_selector: Option<String>,
}

impl ListOptions {
    /// The query parameters these options stand for.
    pub fn to_query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(l) = self.limit {
            q.push(("limit", l.to_string()));
        }
        if let Some(c) = &self.continue_token {
            q.push(("continue", c.clone()));
        }
        if let Some(s) = &self.label_selector {
            q.push(("labelSelector", s.clone()));
        }
        q
    }
}

/// A project: `PUT /v1/projects/{name}`.
pub type Project = Object<ProjectSpec>;

/// The spec of a project.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProjectSpec {
    /// A human-friendly name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// A user of the tenant: `PUT /v1/users/{name}`.
pub type User = Object<UserSpec>;

/// The spec of a user.
#[derive(Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UserSpec {
    /// A human-friendly name.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// The e-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// The console password (at least 12 characters). Write-only: the server never returns it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

impl std::fmt::Debug for UserSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserSpec")
            .field("display_name", &self.display_name)
            .field("email", &self.email)
            .field("password", &self.password.as_ref().map(|_| "********"))
            .finish()
    }
}

/// An API key of a user, without its secret: `GET /v1/users/{user}/api-keys`. The metadata name
/// is the key id.
pub type ApiKey = Object<ApiKeySpec, ApiKeyStatus>;

/// The spec of an API key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeySpec {
    /// What the key is for, e.g. `ci`.
    #[serde(default)]
    pub name: String,
    /// When the key stops working (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_at: Option<String>,
}

/// The status of an API key.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ApiKeyStatus {
    /// Whether the key was revoked.
    #[serde(default)]
    pub revoked: bool,
    /// When the key was revoked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub revoked_at: Option<String>,
    /// When the key last authenticated a request, if the server tracks it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_used_at: Option<String>,
}

/// The body of `POST /v1/users/{user}/api-keys`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct NewApiKey {
    /// What the key is for, e.g. `ci`.
    pub name: String,
    /// Lifetime in days; the server's default (365) when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expires_in_days: Option<u32>,
}

/// The answer to creating an API key: the key object and the secret, shown only this once.
#[derive(Clone, PartialEq, Serialize, Deserialize)]
pub struct CreatedApiKey {
    /// The key object.
    #[serde(flatten)]
    pub api_key: ApiKey,
    /// The whole key (`fpk_…`), to send as `Authorization: Bearer <key>`.
    pub key: String,
}

impl std::fmt::Debug for CreatedApiKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("CreatedApiKey")
            .field("api_key", &self.api_key)
            .field("key", &"********")
            .finish()
    }
}

/// A role binding: `PUT /v1/role-bindings/{name}`.
pub type RoleBinding = Object<RoleBindingSpec>;

/// The built-in roles, as the API names them.
pub const BUILTIN_ROLES: &[&str] = &[
    "tenant-admin",
    "tenant-viewer",
    "project-admin",
    "project-editor",
    "project-viewer",
];

/// The spec of a role binding: a role given to a user at tenant scope, or in one project.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RoleBindingSpec {
    /// The user.
    pub user: String,
    /// One of [`BUILTIN_ROLES`].
    pub role: String,
    /// The project of a project-scoped role; absent at tenant scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// A maintenance policy: `PUT /v1[/projects/{p}]/maintenance-policies/{name}`.
pub type MaintenancePolicy = Object<MaintenancePolicySpec, MaintenancePolicyStatus>;

/// The spec of a maintenance policy: schedules that open windows, exclusions that freeze them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaintenancePolicySpec {
    /// The schedules; each fire time opens a window.
    #[serde(default)]
    pub schedules: Vec<ScheduleSpec>,
    /// Freezes: no update starts inside one.
    #[serde(default)]
    pub exclusions: Vec<ExclusionSpec>,
}

/// One schedule of a maintenance policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ScheduleSpec {
    /// Unique in the policy.
    pub name: String,
    /// Five cron fields, or `@daily`, `@weekly`, `@monthly`; evaluated in each cluster's zone.
    pub cron: String,
    /// How long each window lasts (the server accepts 1–24).
    pub duration_hours: u32,
}

/// A freeze of a maintenance policy: no update starts in `[start, end)`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExclusionSpec {
    /// Unique in the policy.
    pub name: String,
    /// RFC 3339 instant.
    pub start: String,
    /// RFC 3339 instant, after `start`.
    pub end: String,
}

/// The status of a maintenance policy.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct MaintenancePolicyStatus {
    /// The next windows, schedules evaluated in UTC.
    #[serde(default)]
    pub next_windows: Vec<Window>,
    /// How many cluster templates link the policy.
    #[serde(default)]
    pub templates: u64,
}

/// A maintenance window `[start, end)` (RFC 3339, UTC).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Window {
    /// When the window opens.
    pub start: String,
    /// When it closes.
    pub end: String,
}

/// A ready-made policy spec: `GET /v1/maintenance-policies:presets` lists them.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyPreset {
    /// Stable name, e.g. `weekly-sunday-midnight`.
    pub name: String,
    /// For people.
    #[serde(default)]
    pub description: String,
    /// The spec it stands for.
    pub spec: MaintenancePolicySpec,
}

/// The answer of `GET .../maintenance-policies/{name}/windows`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyWindows {
    /// The IANA zone the schedules were evaluated in.
    pub zone: String,
    /// The windows, earliest first.
    #[serde(default)]
    pub windows: Vec<LocalWindow>,
}

/// A window with its bounds in UTC and in the zone asked for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LocalWindow {
    /// When the window opens (UTC).
    pub start: String,
    /// When it closes (UTC).
    pub end: String,
    /// The opening in the zone, e.g. `2026-11-22T00:00:00+01:00[Europe/Berlin]`.
    pub local_start: String,
    /// The closing in the zone.
    pub local_end: String,
}

/// Query of `GET .../maintenance-policies/{name}/windows`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WindowsQuery {
    /// IANA zone the schedules are evaluated in (the server's default: `UTC`).
    pub zone: Option<String>,
    /// How many windows (the server's default: 5; it accepts 1–100).
    pub count: Option<u32>,
    /// Windows after this instant (RFC 3339; the server's default: now).
    pub after: Option<String>,
}

impl WindowsQuery {
    /// The query parameters this query stands for.
    pub fn to_query(&self) -> Vec<(&'static str, String)> {
        let mut q = Vec::new();
        if let Some(z) = &self.zone {
            q.push(("zone", z.clone()));
        }
        if let Some(c) = self.count {
            q.push(("count", c.to_string()));
        }
        if let Some(a) = &self.after {
            q.push(("after", a.clone()));
        }
        q
    }
}

/// A cluster template: `PUT /v1[/projects/{p}]/cluster-templates/{name}`. Its status (revision,
/// profiles, cluster and variable counts, next window) is kept as JSON.
pub type ClusterTemplate = Object<ClusterTemplateSpec>;

/// The spec of a cluster template (DESIGN §4.6).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterTemplateSpec {
    /// `aws`, `azure`, `gcp`, …; fixed at creation.
    pub cloud_type: String,
    /// Free text.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// Exactly one `full` or `infra` version and any number of `addon` versions.
    #[serde(default)]
    pub profiles: Vec<TemplateProfileRef>,
    /// Exactly one maintenance policy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub maintenance_policy: Option<TemplatePolicyRef>,
    /// The rollout strategy, as the server defines it (kept as JSON).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rollout: Option<serde_json::Value>,
}

/// A profile version a template links.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateProfileRef {
    /// The profile name.
    pub name: String,
    /// The exact version.
    pub version: String,
    /// `tenant` for a tenant profile from a project template; absent: the template's scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    /// The template's settings of the version's variables.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variables: Vec<TemplateVariable>,
}

/// A template's setting of one variable of a linked profile.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateVariable {
    /// The variable.
    pub name: String,
    /// The fleet-wide value (used with `assignStrategy: all`).
    #[serde(default)]
    pub value: String,
    /// `all` (one fleet-wide value) or `cluster` (the server's default).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub assign_strategy: Option<String>,
}

/// The maintenance policy a template links.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplatePolicyRef {
    /// The policy name.
    pub name: String,
    /// `tenant` for a tenant policy from a project template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
}

/// Body of `PATCH .../cluster-templates/{name}/variables`: applied together or not at all.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VariablesPatch {
    /// The assignments.
    pub assignments: Vec<VariableAssignmentPatch>,
}

/// One assignment of a [`VariablesPatch`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct VariableAssignmentPatch {
    /// The linked profile's name.
    pub profile: String,
    /// The variable.
    pub variable: String,
    /// The value to assign (absent with `keep_running`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    /// The clusters (names in a project template, `project/name` in a tenant template);
    /// absent: every cluster of the template.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub clusters: Option<Vec<String>>,
    /// Confirm each cluster's running value instead of assigning `value`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub keep_running: bool,
}

/// The caller as the server sees it: `GET /v1/whoami`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WhoAmI {
    /// The user the API key belongs to.
    pub user: String,
    /// The roles bound to the user.
    #[serde(default)]
    pub grants: Vec<Grant>,
    /// The permissions those roles give, e.g. `project.list`.
    #[serde(default)]
    pub permissions: Vec<String>,
}

/// A role held by the caller.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The role.
    pub role: String,
    /// The project of a project-scoped role; `None` at tenant scope.
    #[serde(default)]
    pub project: Option<String>,
}

/// One entry of the audit log.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEvent {
    /// Position in the log (increasing).
    pub seq: u64,
    /// When it happened (RFC 3339, UTC).
    pub time: String,
    /// Who did it: `user:<name>` or `system`.
    pub actor: String,
    /// What was done: `create`, `update`, `delete`, `revoke`, …
    pub action: String,
    /// The object, as its API path without `/v1/` (e.g. `projects/web`).
    pub resource: String,
    /// The object before (null on create); sensitive values masked.
    #[serde(default)]
    pub before: serde_json::Value,
    /// The object after (null on delete); sensitive values masked.
    #[serde(default)]
    pub after: serde_json::Value,
    /// The request that did it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
}

/// Filters of `GET /v1/audit-events`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AuditQuery {
    /// Only events of this actor.
    pub actor: Option<String>,
    /// Only events of this action.
    pub action: Option<String>,
    /// Only events of resources whose path starts with this, e.g. `projects/web`.
    pub resource: Option<String>,
    /// Only events of objects in this project.
    pub project: Option<String>,
    /// Only events at or after this time (RFC 3339).
    pub since: Option<String>,
    /// Only events before this time (RFC 3339).
    pub until: Option<String>,
    /// Largest page wanted.
    pub limit: Option<u32>,
    /// The `continue` token of the previous page.
    pub continue_token: Option<String>,
}

impl AuditQuery {
    /// The query parameters this query stands for.
    pub fn to_query(&self) -> Vec<(&'static str, String)> {
        let pairs = [
            ("actor", &self.actor),
            ("action", &self.action),
            ("resource", &self.resource),
            ("project", &self.project),
            ("since", &self.since),
            ("until", &self.until),
            ("continue", &self.continue_token),
        ];
        let mut q: Vec<(&'static str, String)> = pairs
            .into_iter()
            .filter_map(|(k, v)| v.clone().map(|v| (k, v)))
            .collect();
        if let Some(l) = self.limit {
            q.push(("limit", l.to_string()));
        }
        q
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn objects_decode_leniently_and_encode_only_what_is_set() {
        let v = json!({
            "kind": "Project",
            "metadata": {"name": "web", "uid": "u1", "labels": {"env": "prod"},
                         "createdAt": "2025-01-01T00:00:00Z", "resourceVersion": 7,
                         "somethingNew": true},
            "spec": {"displayName": "Web"},
            "status": {}
        });
        let p: Project = serde_json::from_value(v).unwrap();
        assert_eq!(p.metadata.resource_version.as_deref(), Some("7"));
        assert_eq!(p.metadata.labels["env"], "prod");
        assert_eq!(p.spec.display_name.as_deref(), Some("Web"));

        let new = Project::new("web", ProjectSpec::default());
        assert_eq!(
            serde_json::to_value(&new).unwrap(),
            json!({"metadata": {"name": "web"}, "spec": {}})
        );
    }

    #[test]
    fn created_api_key_flattens_the_key_object() {
        let v = json!({"metadata": {"name": "k1"}, "spec": {"name": "ci", "expiresAt": "2026-01-01T00:00:00Z"},
                       "status": {"revoked": false}, "key": "fpk_k1_secret"});
        let k: CreatedApiKey = serde_json::from_value(v).unwrap();
        assert_eq!(k.api_key.metadata.name, "k1");
        assert_eq!(k.key, "fpk_k1_secret");
        assert!(!format!("{k:?}").contains("secret"));
        let u = UserSpec {
            password: Some("hunter2hunter2".into()),
            ..UserSpec::default()
        };
        assert!(!format!("{u:?}").contains("hunter2"));
    }

    #[test]
    fn policies_round_trip_in_the_api_shape() {
        let v = json!({
            "kind": "MaintenancePolicy",
            "metadata": {"name": "weekly"},
            "spec": {"schedules": [{"name": "w", "cron": "0 0 * * 1,3", "durationHours": 4}],
                     "exclusions": [{"name": "xmas", "start": "2026-12-24T00:00:00Z",
                                     "end": "2026-12-27T00:00:00Z"}]},
            "status": {"nextWindows": [{"start": "2026-11-23T00:00:00Z",
                                        "end": "2026-11-23T04:00:00Z"}], "templates": 2}
        });
        let p: MaintenancePolicy = serde_json::from_value(v.clone()).unwrap();
        assert_eq!(p.spec.schedules[0].duration_hours, 4);
        assert_eq!(p.status.as_ref().unwrap().templates, 2);
        assert_eq!(serde_json::to_value(&p).unwrap(), v);
        let w = WindowsQuery {
            zone: Some("Europe/Berlin".into()),
            count: Some(2),
            after: None,
        };
        assert_eq!(
            w.to_query(),
            vec![("zone", "Europe/Berlin".into()), ("count", "2".into())]
        );
        assert!(WindowsQuery::default().to_query().is_empty());
    }

    #[test]
    fn queries_name_only_what_is_set() {
        assert!(ListOptions::default().to_query().is_empty());
        let q = ListOptions {
            limit: Some(5),
            continue_token: Some("t".into()),
            label_selector: Some("a=b".into()),
        };
        assert_eq!(
            q.to_query(),
            vec![
                ("limit", "5".into()),
                ("continue", "t".into()),
                ("labelSelector", "a=b".into())
            ]
        );
        let a = AuditQuery {
            actor: Some("admin".into()),
            limit: Some(2),
            ..AuditQuery::default()
        };
        assert_eq!(
            a.to_query(),
            vec![("actor", "admin".into()), ("limit", "2".into())]
        );
    }
}
