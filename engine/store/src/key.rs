//! Object keys: tenant, scope, kind and name, encoded so that one kind in one scope is a
//! contiguous, name-ordered range.

use std::fmt;

/// The only tenant today; keys carry it so more tenants need no migration.
pub const TENANT_DEFAULT: &str = "default";

/// A collection of objects (`project`, `clusterTemplate`, `profileVersion`, …).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Kind(pub &'static str);

/// Where an object lives: the tenant itself or one of its projects.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Scope {
    /// Tenant scope (`/v1/<kind>`).
    Tenant,
    /// Project scope (`/v1/projects/{project}/<kind>`).
    Project(String),
}

impl Scope {
    /// The project, if any.
    pub fn project(&self) -> Option<&str> {
        match self {
            Scope::Tenant => None,
            Scope::Project(p) => Some(p),
        }
    }

    /// Scope from an optional project name.
    pub fn from_project(project: Option<&str>) -> Self {
        match project {
            None => Scope::Tenant,
            Some(p) => Scope::Project(p.to_owned()),
        }
    }
}

/// The address of one object.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ObjectKey {
    /// The tenant.
    pub tenant: String,
    /// Tenant or project scope.
    pub scope: Scope,
    /// The collection.
    pub kind: Kind,
    /// The name within the collection (may contain `/` for nested names such as
    /// `profile/1.0.0`).
    pub name: String,
}

/// Stands for "no project" in encoded keys; not a valid DNS label, so no project collides.
const TENANT_MARK: &str = "-";
pub(crate) const SEP: char = '\u{1f}';

impl ObjectKey {
    /// A key in the default tenant.
    pub fn new(scope: Scope, kind: Kind, name: impl Into<String>) -> Self {
        Self {
            tenant: TENANT_DEFAULT.to_owned(),
            scope,
            kind,
            name: name.into(),
        }
    }

    /// A tenant-scope key in the default tenant.
    pub fn tenant(kind: Kind, name: impl Into<String>) -> Self {
        Self::new(Scope::Tenant, kind, name)
    }

    /// A project-scope key in the default tenant.
    pub fn project(project: &str, kind: Kind, name: impl Into<String>) -> Self {
        Self::new(Scope::Project(project.to_owned()), kind, name)
    }

    /// The prefix shared by every object of `kind` in `scope` of `tenant`.
    pub fn range_prefix(tenant: &str, scope: &Scope, kind: Kind) -> String {
        let p = scope.project().unwrap_or(TENANT_MARK);
        format!("{tenant}{SEP}{p}{SEP}{}{SEP}", kind.0)
    }

    /// The encoded form used as the database key.
    pub fn encode(&self) -> String {
        let mut s = Self::range_prefix(&self.tenant, &self.scope, self.kind);
        s.push_str(&self.name);
        s
    }

    /// Decodes a database key; `None` for keys of unknown kinds or other shapes.
    pub fn decode(encoded: &str) -> Option<Self> {
        let mut parts = encoded.splitn(4, SEP);
        let tenant = parts.next()?.to_owned();
        let scope = match parts.next()? {
            TENANT_MARK => Scope::Tenant,
            p => Scope::Project(p.to_owned()),
        };
        let kind = crate::tables::kind_named(parts.next()?)?;
        Some(Self {
            tenant,
            scope,
            kind,
            name: parts.next()?.to_owned(),
        })
    }
}

impl fmt::Display for ObjectKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.scope {
            Scope::Tenant => write!(f, "{}/{}", self.kind.0, self.name),
            Scope::Project(p) => write!(f, "projects/{p}/{}/{}", self.kind.0, self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_and_group_by_kind_and_scope() {
        use crate::tables::kinds;
        let k = ObjectKey::project("default", kinds::CLUSTER, "prod");
        assert_eq!(ObjectKey::decode(&k.encode()), Some(k.clone()));
        let t = ObjectKey::tenant(kinds::PROFILE_VERSION, "base/1.0.0");
        assert_eq!(ObjectKey::decode(&t.encode()), Some(t.clone()));
        assert_eq!(ObjectKey::decode("default\u{1f}-\u{1f}nope\u{1f}x"), None);
        assert!(
            k.encode()
                .starts_with(&ObjectKey::range_prefix("default", &k.scope, k.kind))
        );
        assert!(
            !t.encode()
                .starts_with(&ObjectKey::range_prefix("default", &k.scope, t.kind))
        );
    }
}
