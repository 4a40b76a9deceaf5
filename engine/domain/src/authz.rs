//! Permissions, built-in roles and the access decision (DESIGN §3).
//!
//! The decision is pure: given the caller's role bindings, a permission and the project the
//! object lives in, it answers allow, forbid, or "invisible" (answered as 404 so that existence
//! does not leak across projects).

use serde::{Deserialize, Serialize};
use std::fmt;

/// A resource that permissions talk about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Resource {
    /// Cluster profiles and their versions.
    ClusterProfile,
    /// Maintenance policies.
    MaintenancePolicy,
    /// Cluster templates.
    ClusterTemplate,
    /// Clusters.
    Cluster,
    /// Cloud accounts.
    CloudAccount,
    /// Macros.
    Macro,
    /// Projects.
    Project,
    /// Users.
    User,
    /// API keys.
    ApiKey,
    /// Workflow definitions.
    Workflow,
    /// Workflow runs.
    Run,
    /// Provider components.
    Provider,
    /// The audit log.
    Audit,
    /// Role bindings (managed like users).
    RoleBinding,
}

impl Resource {
    /// Every resource.
    pub const ALL: &'static [Resource] = &[
        Resource::ClusterProfile,
        Resource::MaintenancePolicy,
        Resource::ClusterTemplate,
        Resource::Cluster,
        Resource::CloudAccount,
        Resource::Macro,
        Resource::Project,
        Resource::User,
        Resource::ApiKey,
        Resource::Workflow,
        Resource::Run,
        Resource::Provider,
        Resource::Audit,
        Resource::RoleBinding,
    ];

    /// The name used in permission strings.
    pub fn as_str(self) -> &'static str {
        match self {
            Resource::ClusterProfile => "clusterProfile",
            Resource::MaintenancePolicy => "maintenancePolicy",
            Resource::ClusterTemplate => "clusterTemplate",
            Resource::Cluster => "cluster",
            Resource::CloudAccount => "cloudAccount",
            Resource::Macro => "macro",
            Resource::Project => "project",
            Resource::User => "user",
            Resource::ApiKey => "apiKey",
            Resource::Workflow => "workflow",
            Resource::Run => "run",
            Resource::Provider => "provider",
            Resource::Audit => "audit",
            Resource::RoleBinding => "roleBinding",
        }
    }

    /// Whether objects of this resource live in projects (and so project roles apply to them).
    pub fn project_scoped(self) -> bool {
        matches!(
            self,
            Resource::ClusterProfile
                | Resource::MaintenancePolicy
                | Resource::ClusterTemplate
                | Resource::Cluster
                | Resource::CloudAccount
                | Resource::Macro
                | Resource::Run
        )
    }
}

/// What is done to a resource.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub enum Verb {
    /// Create.
    Create,
    /// Read one.
    Get,
    /// List.
    List,
    /// Change, including actions such as Upgrade now, pause and resume.
    Update,
    /// Delete.
    Delete,
}

impl Verb {
    /// Every verb.
    pub const ALL: &'static [Verb] = &[
        Verb::Create,
        Verb::Get,
        Verb::List,
        Verb::Update,
        Verb::Delete,
    ];

    /// The name used in permission strings.
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Create => "create",
            Verb::Get => "get",
            Verb::List => "list",
            Verb::Update => "update",
            Verb::Delete => "delete",
        }
    }

    fn reads(self) -> bool {
        matches!(self, Verb::Get | Verb::List)
    }
}

/// A permission `<resource>.<verb>` such as `clusterTemplate.update`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Permission {
    /// The resource.
    pub resource: Resource,
    /// The verb.
    pub verb: Verb,
}

impl Permission {
    /// `resource.verb`.
    pub const fn new(resource: Resource, verb: Verb) -> Self {
        Self { resource, verb }
    }
}

impl fmt::Display for Permission {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.resource.as_str(), self.verb.as_str())
    }
}

/// The built-in roles.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub enum Role {
    /// Everything in the tenant.
    #[serde(rename = "tenant-admin")]
    TenantAdmin,
    /// Read everything in the tenant.
    #[serde(rename = "tenant-viewer")]
    TenantViewer,
    /// Everything in one project.
    #[serde(rename = "project-admin")]
    ProjectAdmin,
    /// Read and update in one project; create and delete everything but templates and policies.
    #[serde(rename = "project-editor")]
    ProjectEditor,
    /// Read in one project.
    #[serde(rename = "project-viewer")]
    ProjectViewer,
}

impl Role {
    /// Every built-in role.
    pub const ALL: &'static [Role] = &[
        Role::TenantAdmin,
        Role::TenantViewer,
        Role::ProjectAdmin,
        Role::ProjectEditor,
        Role::ProjectViewer,
    ];

    /// Whether the role is bound at tenant scope (otherwise it needs a project).
    pub fn tenant_scoped(self) -> bool {
        matches!(self, Role::TenantAdmin | Role::TenantViewer)
    }

    /// The wire name (`project-editor`).
    pub fn as_str(self) -> &'static str {
        match self {
            Role::TenantAdmin => "tenant-admin",
            Role::TenantViewer => "tenant-viewer",
            Role::ProjectAdmin => "project-admin",
            Role::ProjectEditor => "project-editor",
            Role::ProjectViewer => "project-viewer",
        }
    }

    /// Whether the role grants `p` on objects in its scope.
    pub fn grants(self, p: Permission) -> bool {
        use Resource as R;
        match self {
            Role::TenantAdmin => true,
            Role::TenantViewer => p.verb.reads(),
            Role::ProjectAdmin => p.resource.project_scoped() || p == PROJECT_GET,
            Role::ProjectEditor => {
                (p.resource.project_scoped()
                    && (p.verb.reads()
                        || p.verb == Verb::Update
                        || !matches!(p.resource, R::ClusterTemplate | R::MaintenancePolicy)))
                    || p == PROJECT_GET
            }
            Role::ProjectViewer => {
                (p.resource.project_scoped() && p.verb.reads()) || p == PROJECT_GET
            }
        }
    }

    /// Every permission the role grants, as strings, for display.
    pub fn permissions(self) -> Vec<String> {
        let mut out = Vec::new();
        for r in Resource::ALL {
            for v in Verb::ALL {
                let p = Permission::new(*r, *v);
                if *r == Resource::Audit && *v != Verb::List {
                    continue;
                }
                if self.grants(p) {
                    out.push(p.to_string());
                }
            }
        }
        out
    }
}

const PROJECT_GET: Permission = Permission::new(Resource::Project, Verb::Get);

/// A role given to a user, at tenant scope (`project: None`) or in one project.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The role.
    pub role: Role,
    /// The project, for project roles.
    pub project: Option<String>,
}

/// The outcome of an access check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    /// Go ahead.
    Allow,
    /// The caller can see the object but may not do this (403).
    Forbid,
    /// The caller may not know the object exists (404).
    Invisible,
}

/// Decides whether a caller holding `grants` may do `p` on an object in `project` (`None` for
/// tenant-scope objects and tenant-wide collections).
///
/// Tenant-scope catalogs (profiles, policies, macros, workflows, packs) are readable by every
/// member of the tenant, because project objects reference them; changing them needs a tenant
/// role.
pub fn decide(grants: &[Grant], p: Permission, project: Option<&str>) -> Decision {
    let tenant_grants = grants.iter().filter(|g| g.project.is_none());
    if tenant_grants.clone().any(|g| g.role.grants(p)) {
        return Decision::Allow;
    }
    match project {
        Some(proj) => {
            let mut in_project = grants.iter().filter(|g| g.project.as_deref() == Some(proj));
            let sees = grants.iter().any(|g| g.project.is_none())
                || grants.iter().any(|g| g.project.as_deref() == Some(proj));
            if in_project.any(|g| g.role.grants(p)) {
                Decision::Allow
            } else if sees {
                Decision::Forbid
            } else {
                Decision::Invisible
            }
        }
        None => {
            let shared_catalog = matches!(
                p.resource,
                Resource::ClusterProfile
                    | Resource::MaintenancePolicy
                    | Resource::Macro
                    | Resource::Workflow
                    | Resource::Provider
            );
            if p.verb.reads() && shared_catalog && !grants.is_empty() {
                Decision::Allow
            } else {
                Decision::Forbid
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn g(role: Role, project: Option<&str>) -> Grant {
        Grant {
            role,
            project: project.map(str::to_owned),
        }
    }

    #[test]
    fn project_viewer_reads_but_cannot_create() {
        let grants = [g(Role::ProjectViewer, Some("a"))];
        let create = Permission::new(Resource::Cluster, Verb::Create);
        let get = Permission::new(Resource::Cluster, Verb::Get);
        assert_eq!(decide(&grants, get, Some("a")), Decision::Allow);
        assert_eq!(decide(&grants, create, Some("a")), Decision::Forbid);
        assert_eq!(decide(&grants, get, Some("b")), Decision::Invisible);
        assert_eq!(decide(&grants, create, Some("b")), Decision::Invisible);
    }

    #[test]
    fn editor_cannot_create_or_delete_templates_and_policies() {
        let grants = [g(Role::ProjectEditor, Some("a"))];
        for r in [Resource::ClusterTemplate, Resource::MaintenancePolicy] {
            for v in [Verb::Create, Verb::Delete] {
                assert_eq!(
                    decide(&grants, Permission::new(r, v), Some("a")),
                    Decision::Forbid
                );
            }
            assert_eq!(
                decide(&grants, Permission::new(r, Verb::Update), Some("a")),
                Decision::Allow
            );
        }
        let c = Permission::new(Resource::Cluster, Verb::Create);
        assert_eq!(decide(&grants, c, Some("a")), Decision::Allow);
    }

    #[test]
    fn tenant_admin_does_everything_and_viewer_only_reads() {
        let admin = [g(Role::TenantAdmin, None)];
        let viewer = [g(Role::TenantViewer, None)];
        for r in Resource::ALL {
            for v in Verb::ALL {
                let p = Permission::new(*r, *v);
                assert_eq!(decide(&admin, p, Some("x")), Decision::Allow);
                let want = if v.reads() {
                    Decision::Allow
                } else {
                    Decision::Forbid
                };
                assert_eq!(decide(&viewer, p, Some("x")), want, "{p}");
            }
        }
    }

    #[test]
    fn tenant_catalogs_are_readable_by_project_members_only() {
        let p = Permission::new(Resource::ClusterProfile, Verb::Get);
        assert_eq!(
            decide(&[g(Role::ProjectViewer, Some("a"))], p, None),
            Decision::Allow
        );
        assert_eq!(decide(&[], p, None), Decision::Forbid);
        let w = Permission::new(Resource::ClusterProfile, Verb::Create);
        assert_eq!(
            decide(&[g(Role::ProjectAdmin, Some("a"))], w, None),
            Decision::Forbid
        );
    }

    #[test]
    fn permission_strings() {
        assert_eq!(
            Permission::new(Resource::ClusterTemplate, Verb::Update).to_string(),
            "clusterTemplate.update"
        );
        assert!(
            Role::ProjectViewer
                .permissions()
                .contains(&"cluster.list".to_owned())
        );
        assert!(
            Role::TenantAdmin
                .permissions()
                .contains(&"audit.list".to_owned())
        );
    }
}
