//! The reference relations between objects, in one place, so "in use" checks and cascades use
//! the same names everywhere.

use fleetplane_store::{Kind, ObjectKey, Reference, Scope};

/// A template links a maintenance policy.
pub const USES_POLICY: &str = "uses-policy";
/// A template or cluster uses a profile version.
pub const USES_PROFILE_VERSION: &str = "uses-profile-version";
/// A standalone cluster uses a profile version (it blocks linking the version to a template).
pub const STANDALONE_USES_PROFILE_VERSION: &str = "standalone-uses-profile-version";
/// A template links a profile version (the version is locked).
pub const TEMPLATE_LINKS_PROFILE_VERSION: &str = "template-links-profile-version";
/// A cluster belongs to a template.
pub const MEMBER_OF_TEMPLATE: &str = "member-of-template";
/// A profile version's layer uses a pack (target: the tenant-scope pack key).
pub const USES_PACK: &str = "uses-pack";
/// A cloud account uses a provider (it blocks removing the provider).
pub const USES_PROVIDER: &str = "uses-provider";
/// A cluster uses a cloud account.
pub const USES_CLOUD_ACCOUNT: &str = "uses-cloud-account";

/// A reference to the object of `kind` named `name` in `scope`.
pub fn to(relation: &'static str, scope: &Scope, kind: Kind, name: &str) -> Reference {
    Reference {
        relation,
        target: ObjectKey::new(scope.clone(), kind, name).encode(),
    }
}
