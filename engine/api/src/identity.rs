//! Projects, users, role bindings, API keys, `whoami`, and the bootstrap of an empty store.

use crate::auth::{
    self, ApiKeySpec, ApiKeyStatus, BINDING_IN_PROJECT, BINDING_OF_USER, Caller, KEY_OF_USER,
    SESSION_OF_USER, StoredApiKey,
};
use crate::error::{ApiError, ApiResult};
use crate::json::Json;
use crate::resource::{self, ApiKind, ObjectOf, new_metadata, rule, upsert};
use crate::state::{AppState, Tx};
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use fleetplane_domain::authz::{Permission, Resource, Role, Verb};
use fleetplane_domain::meta::validate_name;
use fleetplane_domain::{ErrorCode, NoStatus, Object, Problems};
use fleetplane_store::tables::{self, kinds};
use fleetplane_store::{
    ListQuery, ObjectKey, Precondition, ReadExt, ReadOps, Reference, Scope, WriteExt,
};
use serde::{Deserialize, Serialize};

/// Project spec.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProjectSpec {
    /// A name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
}

/// Projects (`/v1/projects`).
pub struct Project;

impl ApiKind for Project {
    const KIND: &'static str = "Project";
    const STORE: fleetplane_store::Kind = kinds::PROJECT;
    const RESOURCE: Resource = Resource::Project;
    type Spec = ProjectSpec;
    type Status = NoStatus;

    fn authz_project(_: &Scope, name: &str) -> Option<String> {
        Some(name.to_owned())
    }

    fn before_delete(tx: &mut Tx<'_>, _: &Scope, obj: &ObjectOf<Self>) -> ApiResult<()> {
        let scope = Scope::Project(obj.metadata.name.clone());
        for kind in tables::ALL_KINDS {
            let page = tx.ops.list(&ListQuery {
                scope: scope.clone(),
                kind: *kind,
                name_prefix: String::new(),
                after: None,
                limit: 1,
            })?;
            if let Some(rec) = page.items.first() {
                return Err(rule(
                    ErrorCode::InvalidState,
                    format!(
                        "project is not empty: it still holds {} {:?}",
                        kind.0, rec.key.name
                    ),
                ));
            }
        }
        let r = Reference {
            relation: BINDING_IN_PROJECT,
            target: obj.metadata.name.clone(),
        };
        for key in tx.ops.referrers(&r, usize::MAX)? {
            resource::remove::<RoleBinding>(tx, &Scope::Tenant, &key.name, None)?;
        }
        Ok(())
    }

    fn api_path(_: &Scope, name: &str) -> String {
        format!("projects/{name}")
    }
}

/// User spec. `password` is write-only: it is hashed (argon2id) into a separate record and
/// never returned.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct UserSpec {
    /// A name for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    /// E-mail address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// New console password (write-only; at least 12 characters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
}

/// Users (`/v1/users`).
pub struct User;

/// The shortest password accepted.
pub const MIN_PASSWORD_LEN: usize = 12;

impl ApiKind for User {
    const KIND: &'static str = "User";
    const STORE: fleetplane_store::Kind = kinds::USER;
    const RESOURCE: Resource = Resource::User;
    type Spec = UserSpec;
    type Status = NoStatus;

    fn admit(
        tx: &mut Tx<'_>,
        _: &Scope,
        new: &mut ObjectOf<Self>,
        _: Option<&ObjectOf<Self>>,
    ) -> ApiResult<()> {
        let mut p = Problems::new();
        if let Some(email) = &new.spec.email
            && (!email.contains('@') || email.len() > 254)
        {
            p.push("spec.email", "is not an e-mail address");
        }
        if let Some(pw) = &new.spec.password
            && pw.chars().count() < MIN_PASSWORD_LEN
        {
            p.push(
                "spec.password",
                format!("must be at least {MIN_PASSWORD_LEN} characters"),
            );
        }
        p.finish()?;
        if let Some(pw) = new.spec.password.take() {
            let pw: String = pw;
            let hash = auth::hash_password(&pw)?;
            let key = ObjectKey::tenant(kinds::CREDENTIAL, &new.metadata.name);
            tx.ops.put_as(&key, &hash, Precondition::Any, &[])?;
        }
        Ok(())
    }

    fn before_delete(tx: &mut Tx<'_>, _: &Scope, obj: &ObjectOf<Self>) -> ApiResult<()> {
        let user = obj.metadata.name.clone();
        if format!("user:{user}") == tx.actor {
            return Err(rule(ErrorCode::InvalidState, "you cannot delete yourself"));
        }
        for (relation, kind) in [
            (BINDING_OF_USER, kinds::ROLE_BINDING),
            (KEY_OF_USER, kinds::API_KEY),
            (SESSION_OF_USER, kinds::SESSION),
        ] {
            let r = Reference {
                relation,
                target: user.clone(),
            };
            for key in tx.ops.referrers(&r, usize::MAX)? {
                if kind == kinds::ROLE_BINDING {
                    resource::remove::<RoleBinding>(tx, &Scope::Tenant, &key.name, None)?;
                } else {
                    tx.ops.delete(&key, Precondition::Any)?;
                }
            }
        }
        let cred = ObjectKey::tenant(kinds::CREDENTIAL, &user);
        if tx.ops.get(&cred)?.is_some() {
            tx.ops.delete(&cred, Precondition::Any)?;
        }
        Ok(())
    }

    fn present(mut obj: ObjectOf<Self>) -> ObjectOf<Self> {
        obj.spec.password = None;
        obj
    }

    fn api_path(_: &Scope, name: &str) -> String {
        format!("users/{name}")
    }
}

/// Role binding spec: a built-in role given to a user, tenant-wide or in one project.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RoleBindingSpec {
    /// The user.
    pub user: String,
    /// The role.
    pub role: Role,
    /// The project, for project roles (must be absent for tenant roles).
    #[serde(default)]
    pub project: Option<String>,
}

/// Role bindings (`/v1/role-bindings`).
pub struct RoleBinding;

impl ApiKind for RoleBinding {
    const KIND: &'static str = "RoleBinding";
    const STORE: fleetplane_store::Kind = kinds::ROLE_BINDING;
    const RESOURCE: Resource = Resource::RoleBinding;
    type Spec = RoleBindingSpec;
    type Status = NoStatus;

    fn admit(
        tx: &mut Tx<'_>,
        _: &Scope,
        new: &mut ObjectOf<Self>,
        _: Option<&ObjectOf<Self>>,
    ) -> ApiResult<()> {
        let mut p = Problems::new();
        let s = &new.spec;
        if tx
            .ops
            .get(&ObjectKey::tenant(kinds::USER, &s.user))?
            .is_none()
        {
            p.push("spec.user", format!("user {:?} does not exist", s.user));
        }
        match (&s.project, s.role.tenant_scoped()) {
            (Some(_), true) => p.push(
                "spec.project",
                format!(
                    "role {} is tenant-wide; remove the project",
                    s.role.as_str()
                ),
            ),
            (None, false) => p.push(
                "spec.project",
                format!("role {} needs a project", s.role.as_str()),
            ),
            (Some(proj), false) => {
                if tx
                    .ops
                    .get(&ObjectKey::tenant(kinds::PROJECT, proj))?
                    .is_none()
                {
                    p.push("spec.project", format!("project {proj:?} does not exist"));
                }
            }
            (None, true) => {}
        }
        p.finish()?;
        Ok(())
    }

    fn references(_: &Scope, obj: &ObjectOf<Self>) -> Vec<Reference> {
        let mut refs = vec![Reference {
            relation: BINDING_OF_USER,
            target: obj.spec.user.clone(),
        }];
        if let Some(p) = &obj.spec.project {
            refs.push(Reference {
                relation: BINDING_IN_PROJECT,
                target: p.clone(),
            });
        }
        refs
    }

    fn api_path(_: &Scope, name: &str) -> String {
        format!("role-bindings/{name}")
    }
}

/// Body of `POST /v1/users/{u}/api-keys`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewApiKey {
    /// A label for the key.
    pub name: String,
    /// Lifetime in days (default 365, at most 3650).
    #[serde(default)]
    pub expires_in_days: Option<u32>,
}

/// Default API key lifetime.
pub const DEFAULT_KEY_DAYS: u32 = 365;

fn key_api_path(user: &str, id: &str) -> String {
    format!("users/{user}/api-keys/{id}")
}

/// May `caller` manage the keys of `user`? Everyone manages their own.
fn require_key_permission(caller: &Caller, user: &str, verb: Verb) -> ApiResult<()> {
    if caller.user == user {
        return Ok(());
    }
    caller.require(Permission::new(Resource::ApiKey, verb), None)
}

/// Stores a new key for `user` and returns the object shown once with the key.
///
/// # Errors
/// `NotFound` when the user does not exist; `ValidationFailed` for a bad body.
pub fn create_key(
    tx: &mut Tx<'_>,
    user: &str,
    req: &NewApiKey,
    key: &str,
) -> ApiResult<serde_json::Value> {
    let mut p = Problems::new();
    if req.name.trim().is_empty() || req.name.len() > 63 {
        p.push("name", "must be 1 to 63 characters");
    }
    let days = req.expires_in_days.unwrap_or(DEFAULT_KEY_DAYS);
    if !(1..=3650).contains(&days) {
        p.push("expiresInDays", "must be between 1 and 3650");
    }
    p.finish()?;
    if tx.ops.get(&ObjectKey::tenant(kinds::USER, user))?.is_none() {
        return Err(ApiError::not_found("User", user));
    }
    let (id, digest) = auth::key_digest(key);
    let expires_at = tx
        .now
        .checked_add(jiff::SignedDuration::from_hours(24 * i64::from(days)))
        .map_err(|e| ApiError::internal(e.to_string()))?;
    let mut object = Object {
        kind: "ApiKey".to_owned(),
        metadata: new_metadata(&id),
        spec: ApiKeySpec {
            user: user.to_owned(),
            name: req.name.clone(),
            expires_at,
        },
        status: ApiKeyStatus::default(),
    };
    object.metadata.uid = uuid::Uuid::now_v7().to_string();
    object.metadata.created_at = Some(tx.now);
    object.metadata.updated_at = Some(tx.now);
    let stored = StoredApiKey {
        object: object.clone(),
        digest,
    };
    let refs = [Reference {
        relation: KEY_OF_USER,
        target: user.to_owned(),
    }];
    let rv = tx.ops.put_as(
        &ObjectKey::tenant(kinds::API_KEY, &id),
        &stored,
        Precondition::MustNotExist,
        &refs,
    )?;
    object.metadata.resource_version = rv.to_string();
    let shown = resource::to_json(&object)?;
    tx.audit(
        "create",
        &key_api_path(user, &id),
        None,
        None,
        Some(shown.clone()),
    )?;
    Ok(shown)
}

/// `POST /v1/users/{user}/api-keys`: 201 with the key, shown only in this answer.
pub async fn create_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
    Json(req): Json<NewApiKey>,
) -> ApiResult<Response> {
    require_key_permission(&caller, &user, Verb::Create)?;
    let key = auth::generate_key();
    let k = key.clone();
    let mut shown = state
        .write(&caller, move |tx| create_key(tx, &user, &req, &k))
        .await?;
    shown["key"] = key.into();
    Ok((StatusCode::CREATED, axum::Json(shown)).into_response())
}

/// `GET /v1/users/{user}/api-keys`.
pub async fn list_api_keys(
    State(state): State<AppState>,
    caller: Caller,
    Path(user): Path<String>,
) -> ApiResult<Response> {
    require_key_permission(&caller, &user, Verb::List)?;
    let items = state
        .read(move |r| {
            if r.get(&ObjectKey::tenant(kinds::USER, &user))?.is_none() {
                return Err(ApiError::not_found("User", &user));
            }
            let refs = Reference {
                relation: KEY_OF_USER,
                target: user.clone(),
            };
            let mut items = Vec::new();
            for key in r.referrers(&refs, 10_000)? {
                if let Some(rec) = r.get(&key)? {
                    let mut k: StoredApiKey = rec.decode()?;
                    k.object.metadata.resource_version = rec.resource_version.to_string();
                    items.push(k.object);
                }
            }
            Ok(items)
        })
        .await?;
    Ok(resource::list_response(items, None))
}

/// `DELETE /v1/users/{user}/api-keys/{id}`: revokes the key (kept for the audit trail).
pub async fn revoke_api_key(
    State(state): State<AppState>,
    caller: Caller,
    Path((user, id)): Path<(String, String)>,
) -> ApiResult<StatusCode> {
    require_key_permission(&caller, &user, Verb::Delete)?;
    state
        .write(&caller, move |tx| {
            let key = ObjectKey::tenant(kinds::API_KEY, &id);
            let Some((mut stored, rv)) = tx.ops.get_as::<StoredApiKey>(&key)? else {
                return Err(ApiError::not_found("ApiKey", &id));
            };
            if stored.object.spec.user != user {
                return Err(ApiError::not_found("ApiKey", &id));
            }
            let before = resource::to_json(&stored.object)?;
            stored.object.status.revoked = true;
            stored.object.status.revoked_at = Some(tx.now);
            stored.object.metadata.updated_at = Some(tx.now);
            let refs = [Reference {
                relation: KEY_OF_USER,
                target: user.clone(),
            }];
            tx.ops
                .put_as(&key, &stored, Precondition::Version(rv), &refs)?;
            let after = resource::to_json(&stored.object)?;
            tx.audit(
                "revoke",
                &key_api_path(&user, &id),
                None,
                Some(before),
                Some(after),
            )
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// `GET /v1/whoami`: the caller, its grants and permissions.
pub async fn whoami(caller: Caller) -> axum::Json<serde_json::Value> {
    let mut perms: Vec<String> = Vec::new();
    for g in &caller.grants {
        for p in g.role.permissions() {
            let p = match &g.project {
                Some(proj) => format!("{p}@{proj}"),
                None => p,
            };
            if !perms.contains(&p) {
                perms.push(p);
            }
        }
    }
    axum::Json(serde_json::json!({
        "user": caller.user,
        "grants": caller.grants.iter().map(|g| serde_json::json!({"role": g.role, "project": g.project})).collect::<Vec<_>>(),
        "permissions": perms,
    }))
}

/// What the bootstrap created, for the server to write to files and logs.
#[derive(Debug, Clone)]
pub struct Bootstrapped {
    /// The admin API key.
    pub api_key: String,
    /// The admin console password.
    pub password: String,
}

const BOOTSTRAP_MARK: &str = "bootstrapped";

/// On an empty store, creates tenant `default`'s project `default`, user `admin` (tenant
/// admin), its API key and console password. Returns `None` when the store was already
/// bootstrapped. `key`/`password` override the generated ones.
///
/// # Errors
/// Store failures; `ValidationFailed` for a bootstrap password that is too short.
pub async fn bootstrap(
    state: &AppState,
    key: Option<String>,
    password: Option<String>,
) -> ApiResult<Option<Bootstrapped>> {
    let done = state
        .read(|r| Ok(r.meta(BOOTSTRAP_MARK)?.is_some()))
        .await?;
    if done {
        return Ok(None);
    }
    let api_key = key.unwrap_or_else(auth::generate_key);
    let password = password.unwrap_or_else(|| {
        use base64::Engine;
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(rand::random::<[u8; 18]>())
    });
    let (k, pw) = (api_key.clone(), password.clone());
    state
        .write(&Caller::system(), move |tx| {
            if tx.ops.meta(BOOTSTRAP_MARK)?.is_some() {
                return Ok(());
            }
            let project = Object {
                kind: String::new(),
                metadata: new_metadata("default"),
                spec: ProjectSpec {
                    display_name: Some("Default project".into()),
                },
                status: NoStatus::default(),
            };
            upsert::<Project>(tx, &Scope::Tenant, project, None)?;
            let admin = Object {
                kind: String::new(),
                metadata: new_metadata("admin"),
                spec: UserSpec {
                    display_name: Some("Administrator".into()),
                    email: None,
                    password: Some(pw),
                },
                status: NoStatus::default(),
            };
            upsert::<User>(tx, &Scope::Tenant, admin, None)?;
            let binding = Object {
                kind: String::new(),
                metadata: new_metadata("admin-tenant-admin"),
                spec: RoleBindingSpec {
                    user: "admin".into(),
                    role: Role::TenantAdmin,
                    project: None,
                },
                status: NoStatus::default(),
            };
            upsert::<RoleBinding>(tx, &Scope::Tenant, binding, None)?;
            create_key(
                tx,
                "admin",
                &NewApiKey {
                    name: "bootstrap".into(),
                    expires_in_days: None,
                },
                &k,
            )?;
            tx.ops.set_meta(BOOTSTRAP_MARK, b"1")?;
            Ok(())
        })
        .await?;
    Ok(Some(Bootstrapped { api_key, password }))
}

/// Checks a user name from a path.
///
/// # Errors
/// `ValidationFailed`.
pub fn check_name(field: &str, name: &str) -> ApiResult<()> {
    validate_name(field, name).map_err(ApiError::from)
}

/// Lists keys of `user` (used by the console).
///
/// # Errors
/// Store failures.
pub fn user_exists(r: &dyn ReadOps, user: &str) -> ApiResult<bool> {
    Ok(r.get(&ObjectKey::tenant(kinds::USER, user))?.is_some())
}
