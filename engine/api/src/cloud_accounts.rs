//! Cloud accounts (`/v1/projects/{p}/cloud-accounts/{name}`): which provider a project's
//! clusters use, with the provider configuration (checked against the provider manifest's
//! account schema) and write-only secrets, sealed at rest with a key from the data directory.

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::providers::{self, BUILTIN};
use crate::refs;
use crate::resource::{self, ApiKind, ObjectOf, ObjectPath};
use crate::state::{AppState, Tx};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use base64::Engine;
use chacha20poly1305::aead::{Aead, Payload};
use chacha20poly1305::{KeyInit, XChaCha20Poly1305, XNonce};
use fleetplane_domain::authz::{Permission, Resource, Verb};
use fleetplane_domain::{ErrorCode, FieldError, Object, Problems};
use fleetplane_store::tables::kinds;
use fleetplane_store::{ObjectKey, Precondition, Reference, Scope};
use fleetplane_wasm_host::{
    AccountContext, CallError, OpResult, ProviderManifest, ProviderOp, ProviderRuntime,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path as FsPath;

/// What `GET` shows instead of a secret value; a `PUT` carrying it keeps the stored value.
pub const MASK: &str = "********";
/// The cloud types an account may name.
const CLOUD_TYPES: [&str; 4] = ["aws", "azure", "gcp", "vsphere"];
/// Prefix of a sealed secret value.
const SEALED_PREFIX: &str = "sealed:v1:";

/// The reference a cloud account holds to its provider.
pub fn uses_provider(provider: &str) -> Reference {
    refs::to(
        refs::USES_PROVIDER,
        &Scope::Tenant,
        kinds::PROVIDER,
        provider,
    )
}

/// Errors of [`SecretCipher`].
#[derive(Debug, thiserror::Error)]
pub enum SecretError {
    /// The key file cannot be read or written.
    #[error("secret key file {path}: {message}")]
    KeyFile {
        /// The file.
        path: String,
        /// What failed.
        message: String,
    },
    /// A stored value is not sealed with this key (or was tampered with).
    #[error("a stored secret cannot be unsealed (wrong key or damaged value)")]
    Unseal,
}

/// Seals secret values at rest with XChaCha20-Poly1305 (a random 192-bit nonce per value; the
/// account path and secret name are authenticated, so a value cannot be moved to another field).
#[derive(Clone)]
pub struct SecretCipher(XChaCha20Poly1305);

impl std::fmt::Debug for SecretCipher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretCipher(<key>)")
    }
}

impl SecretCipher {
    /// A cipher with `key`.
    pub fn from_key(key: [u8; 32]) -> Self {
        Self(XChaCha20Poly1305::new(&key.into()))
    }

    /// Reads the key from `path` (base64 of 32 bytes), creating it (mode 0600) when missing.
    ///
    /// # Errors
    /// [`SecretError::KeyFile`] when the file cannot be read, written or holds no valid key.
    pub fn load_or_create(path: &FsPath) -> Result<Self, SecretError> {
        let err = |message: String| SecretError::KeyFile {
            path: path.display().to_string(),
            message,
        };
        let b64 = base64::engine::general_purpose::STANDARD;
        match std::fs::read_to_string(path) {
            Ok(text) => {
                let bytes = b64.decode(text.trim()).map_err(|e| err(e.to_string()))?;
                let key: [u8; 32] = bytes
                    .try_into()
                    .map_err(|_| err("the key must be 32 bytes".into()))?;
                Ok(Self::from_key(key))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                use std::io::Write;
                let key: [u8; 32] = rand::random();
                let mut opts = std::fs::OpenOptions::new();
                opts.write(true).create_new(true);
                #[cfg(unix)]
                {
                    use std::os::unix::fs::OpenOptionsExt;
                    opts.mode(0o600);
                }
                let mut f = opts.open(path).map_err(|e| err(e.to_string()))?;
                f.write_all(format!("{}\n", b64.encode(key)).as_bytes())
                    .and_then(|()| f.sync_all())
                    .map_err(|e| err(e.to_string()))?;
                Ok(Self::from_key(key))
            }
            Err(e) => Err(err(e.to_string())),
        }
    }

    /// Seals `value`, binding it to `context` (which must be given again to unseal).
    pub fn seal(&self, context: &str, value: &str) -> String {
        let nonce: [u8; 24] = rand::random();
        let sealed = self
            .0
            .encrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: value.as_bytes(),
                    aad: context.as_bytes(),
                },
            )
            // Encryption only fails for messages beyond 256 GiB.
            .unwrap_or_default();
        let mut out = nonce.to_vec();
        out.extend_from_slice(&sealed);
        format!(
            "{SEALED_PREFIX}{}",
            base64::engine::general_purpose::STANDARD.encode(out)
        )
    }

    /// Unseals a value made by [`SecretCipher::seal`] with the same `context`.
    ///
    /// # Errors
    /// [`SecretError::Unseal`] for a value sealed with another key or context, or damaged.
    pub fn unseal(&self, context: &str, sealed: &str) -> Result<String, SecretError> {
        let body = sealed
            .strip_prefix(SEALED_PREFIX)
            .ok_or(SecretError::Unseal)?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(body)
            .map_err(|_| SecretError::Unseal)?;
        if bytes.len() < 24 {
            return Err(SecretError::Unseal);
        }
        let (nonce, ct) = bytes.split_at(24);
        let nonce: [u8; 24] = nonce.try_into().map_err(|_| SecretError::Unseal)?;
        let plain = self
            .0
            .decrypt(
                &XNonce::from(nonce),
                Payload {
                    msg: ct,
                    aad: context.as_bytes(),
                },
            )
            .map_err(|_| SecretError::Unseal)?;
        String::from_utf8(plain).map_err(|_| SecretError::Unseal)
    }
}

/// The desired state of a cloud account.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CloudAccountSpec {
    /// The provider (`simulator`, `aws`, …).
    pub provider: String,
    /// The cloud types clusters of this account may use; absent: every type the provider serves.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cloud_types: Option<Vec<String>>,
    /// The provider configuration, checked against the manifest's account schema.
    #[serde(default = "empty_object")]
    pub config: serde_json::Value,
    /// For `provider: simulator`, the same as `config` (`{"timeScale": 0.1}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub simulator: Option<serde_json::Value>,
    /// Secret values by name; write-only (`GET` shows `"********"`), sealed at rest.
    #[serde(default)]
    pub secrets: BTreeMap<String, String>,
    /// The validation outcome computed before the write, moved into the status by `admit`.
    #[serde(skip)]
    checked: Option<CloudAccountStatus>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(serde_json::Map::new())
}

/// The outcome of the provider's `validate-account`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CloudAccountStatus {
    /// `Valid`, `Invalid` (the provider refused the configuration or credentials) or
    /// `Unverified` (the check could not run: provider unavailable, throttled, transient).
    pub phase: String,
    /// The identity the credentials resolve to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<String>,
    /// Regions the account may use.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub regions: Vec<String>,
    /// Problems the provider reported, with field paths (`spec.config.region`).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// What went wrong, for people.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    /// When the provider was asked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub validated_at: Option<jiff::Timestamp>,
}

/// Cloud accounts.
pub struct CloudAccount;

impl ApiKind for CloudAccount {
    const KIND: &'static str = "CloudAccount";
    const STORE: fleetplane_store::Kind = kinds::CLOUD_ACCOUNT;
    const RESOURCE: Resource = Resource::CloudAccount;
    type Spec = CloudAccountSpec;
    type Status = CloudAccountStatus;

    fn admit(
        _: &mut Tx<'_>,
        _: &Scope,
        new: &mut ObjectOf<Self>,
        _: Option<&ObjectOf<Self>>,
    ) -> ApiResult<()> {
        // Only `put` (below) writes accounts, and it always checks them first.
        match new.spec.checked.take() {
            Some(status) => {
                new.status = status;
                Ok(())
            }
            None => Err(ApiError::internal("cloud account written without a check")),
        }
    }

    fn references(_: &Scope, obj: &ObjectOf<Self>) -> Vec<Reference> {
        vec![uses_provider(&obj.spec.provider)]
    }

    fn before_delete(tx: &mut Tx<'_>, scope: &Scope, obj: &ObjectOf<Self>) -> ApiResult<()> {
        let uses = refs::to(
            refs::USES_CLOUD_ACCOUNT,
            scope,
            kinds::CLOUD_ACCOUNT,
            &obj.metadata.name,
        );
        if let Some(cluster) = tx.ops.referrers(&uses, 1)?.first() {
            return Err(resource::rule(
                ErrorCode::CloudAccountInUse,
                format!(
                    "cluster \"{}\" uses cloud account \"{}\"",
                    cluster.name, obj.metadata.name
                ),
            ));
        }
        Ok(())
    }

    fn present(mut obj: ObjectOf<Self>) -> ObjectOf<Self> {
        for v in obj.spec.secrets.values_mut() {
            MASK.clone_into(v);
        }
        if obj.spec.provider == BUILTIN {
            obj.spec.simulator = Some(obj.spec.config.clone());
        }
        obj
    }

    fn api_path(scope: &Scope, name: &str) -> String {
        format!(
            "projects/{}/cloud-accounts/{name}",
            scope.project().unwrap_or_default()
        )
    }
}

/// The context a secret of an account is sealed with.
fn seal_context(project: &str, account: &str, secret: &str) -> String {
    format!("cloudAccount/{project}/{account}/{secret}")
}

/// The name the provider host knows an account by (its concurrency key; the simulated cloud's
/// namespace): `<project>/<name>`.
pub fn host_account_name(project: &str, name: &str) -> String {
    format!("{project}/{name}")
}

/// The account as the provider host receives it: configuration and unsealed secrets. The
/// workflow engine builds every provider call's account with this.
///
/// # Errors
/// `Internal` when a stored secret cannot be unsealed (another key).
pub fn account_context(
    cipher: &SecretCipher,
    project: &str,
    obj: &ObjectOf<CloudAccount>,
) -> ApiResult<AccountContext> {
    let name = &obj.metadata.name;
    let mut ctx = AccountContext::new(host_account_name(project, name), obj.spec.config.clone());
    for (k, v) in &obj.spec.secrets {
        let plain = cipher
            .unseal(&seal_context(project, name, k), v)
            .map_err(|e| ApiError::internal(format!("cloud account {project}/{name}: {e}")))?;
        ctx = ctx.with_secret(k.clone(), plain);
    }
    Ok(ctx)
}

/// `spec.config…` from a JSON pointer (`/a/0/b` → `spec.config.a[0].b`).
fn config_path(pointer: &str) -> String {
    let mut out = String::from("spec.config");
    for seg in pointer.split('/').skip(1) {
        let seg = seg.replace("~1", "/").replace("~0", "~");
        if !seg.is_empty() && seg.bytes().all(|b| b.is_ascii_digit()) {
            out.push_str(&format!("[{seg}]"));
        } else {
            out.push('.');
            out.push_str(&seg);
        }
    }
    out
}

/// Checks `config` against the manifest's account schema, reporting every problem.
fn check_config(manifest: &ProviderManifest, config: &serde_json::Value, problems: &mut Problems) {
    if !config.is_object() {
        problems.push("spec.config", "must be an object");
        return;
    }
    match jsonschema::validator_for(&manifest.account_schema) {
        Ok(v) => {
            for e in v.iter_errors(config) {
                problems.push(config_path(e.instance_path().as_str()), e.to_string());
            }
        }
        Err(e) => problems.push(
            "spec.provider",
            format!(
                "provider \"{}\" has an unusable account schema: {e}",
                manifest.name
            ),
        ),
    }
}

/// Checks everything that does not need the provider to run, completing masked secrets from
/// `old` and folding the simulator alias into `config`.
fn check(
    manifest: Option<&ProviderManifest>,
    spec: &mut CloudAccountSpec,
    old_secrets: &BTreeMap<String, String>,
) -> ApiResult<()> {
    let mut problems = Problems::new();
    if let Some(sim) = spec.simulator.take() {
        if spec.provider != BUILTIN {
            problems.push(
                "spec.simulator",
                "only accounts of provider \"simulator\" take simulator settings; use spec.config",
            );
        } else if spec.config == empty_object() {
            spec.config = sim;
        } else if spec.config != sim {
            problems.push(
                "spec.simulator",
                "is the same as spec.config for the simulator; give one of them",
            );
        }
    }
    for (k, v) in spec.secrets.iter_mut() {
        if v == MASK {
            match old_secrets.get(k) {
                Some(plain) => v.clone_from(plain),
                None => problems.push(
                    format!("spec.secrets.{k}"),
                    format!("\"{MASK}\" keeps the stored value, but there is none"),
                ),
            }
        } else if v.is_empty() {
            problems.push(format!("spec.secrets.{k}"), "must not be empty");
        }
    }
    match manifest {
        None => problems.push(
            "spec.provider",
            format!("no provider named \"{}\" is installed", spec.provider),
        ),
        Some(m) => {
            for (i, c) in spec.cloud_types.iter().flatten().enumerate() {
                if !CLOUD_TYPES.contains(&c.as_str()) {
                    problems.push(
                        format!("spec.cloudTypes[{i}]"),
                        format!("unknown cloud type \"{c}\" (aws, azure, gcp, vsphere)"),
                    );
                } else if !m.serves(c) {
                    problems.push(
                        format!("spec.cloudTypes[{i}]"),
                        format!("provider \"{}\" does not serve \"{c}\"", m.name),
                    );
                }
            }
            check_config(m, &spec.config, &mut problems);
            for s in &m.secrets {
                if !spec.secrets.contains_key(s) {
                    problems.push(
                        format!("spec.secrets.{s}"),
                        format!("provider \"{}\" needs this secret", m.name),
                    );
                }
            }
        }
    }
    problems.finish()?;
    Ok(())
}

/// Asks the provider to validate the account.
async fn validate_with_provider(
    state: &AppState,
    provider: &str,
    ctx: &AccountContext,
) -> ApiResult<CloudAccountStatus> {
    let reg = state.providers()?;
    let mut status = CloudAccountStatus {
        validated_at: Some(jiff::Timestamp::now()),
        ..CloudAccountStatus::default()
    };
    match reg
        .host()
        .call(provider, ctx, ProviderOp::ValidateAccount)
        .await
    {
        Ok(OpResult::Account(info)) => {
            status.phase = "Valid".into();
            status.identity = Some(info.identity);
            status.regions = info.regions;
        }
        Ok(_) => {
            status.phase = "Unverified".into();
            status.message = Some("the provider answered validate-account with no account".into());
        }
        Err(e) => {
            status.message = Some(e.to_string());
            status.phase = if e.is_retryable() || !matches!(e, CallError::Provider { .. }) {
                "Unverified".into()
            } else {
                "Invalid".into()
            };
            if let Some(fleetplane_wasm_host::ProviderError::InvalidConfig { problems }) =
                e.provider_error()
            {
                status.errors = problems
                    .iter()
                    .map(|p| {
                        let field =
                            if p.field.starts_with("config") || p.field.starts_with("secrets") {
                                format!("spec.{}", p.field)
                            } else {
                                p.field.clone()
                            };
                        FieldError::new(field, p.message.clone())
                    })
                    .collect();
            }
        }
    }
    Ok(status)
}

/// Creates or replaces a cloud account the way `PUT` does (checks, provider validation, sealed
/// secrets) and returns it as shown to clients, with whether it was created.
///
/// # Errors
/// `ValidationFailed` with field paths; `NotFound` for an unknown project; `PreconditionFailed`
/// on a stale `If-Match`; `Unavailable` without a provider host.
pub async fn apply(
    state: &AppState,
    caller: &Caller,
    project: &str,
    mut obj: ObjectOf<CloudAccount>,
    pre: Option<Precondition>,
) -> ApiResult<(ObjectOf<CloudAccount>, bool)> {
    let reg = state.providers()?.clone();
    let scope = Scope::Project(project.to_owned());
    let name = obj.metadata.name.clone();
    let (s, n, p) = (scope.clone(), name.clone(), obj.spec.provider.clone());
    let (old, manifest) = state
        .read(move |r| {
            resource::require_project(r, &s)?;
            Ok((
                resource::load::<CloudAccount>(r, &s, &n)?,
                providers::manifest_of(r, &p)?,
            ))
        })
        .await?;
    let old_secrets = match &old {
        Some(o) => account_context(reg.cipher(), project, o)?
            .secrets
            .into_iter()
            .map(|(k, v)| (k, v.expose().to_owned()))
            .collect(),
        None => BTreeMap::new(),
    };
    check(manifest.as_ref(), &mut obj.spec, &old_secrets)?;
    let mut ctx = AccountContext::new(host_account_name(project, &name), obj.spec.config.clone());
    for (k, v) in &obj.spec.secrets {
        ctx = ctx.with_secret(k.clone(), v.clone());
    }
    obj.spec.checked = Some(validate_with_provider(state, &obj.spec.provider, &ctx).await?);
    for (k, v) in obj.spec.secrets.iter_mut() {
        *v = reg.cipher().seal(&seal_context(project, &name, k), v);
    }
    // Without If-Match, the write must meet the object the secrets were completed from.
    let pre = pre.or_else(|| {
        Some(match &old {
            Some(o) => Precondition::Version(o.metadata.resource_version.parse().unwrap_or(0)),
            None => Precondition::MustNotExist,
        })
    });
    state
        .write(caller, move |tx| {
            resource::require_project(&*tx.ops, &scope)?;
            resource::upsert::<CloudAccount>(tx, &scope, obj, pre)
        })
        .await
}

/// `PUT /v1/projects/{p}/cloud-accounts/{name}`: 201 when created, 200 when replaced.
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ObjectPath>,
    headers: HeaderMap,
    crate::json::JsonBytes(body): crate::json::JsonBytes,
) -> ApiResult<Response> {
    let project = path.project.clone().unwrap_or_default();
    let name = path.name.clone().unwrap_or_default();
    let exists = {
        let key = ObjectKey::new(path.scope(), kinds::CLOUD_ACCOUNT, name.clone());
        state.read(move |r| Ok(r.get(&key)?.is_some())).await?
    };
    let verb = if exists { Verb::Update } else { Verb::Create };
    caller.require(
        Permission::new(Resource::CloudAccount, verb),
        Some(&project),
    )?;
    let obj = resource::decode_put::<CloudAccount>(&body, &name)?;
    let pre = resource::precondition(&headers)?;
    let (shown, created) = apply(&state, &caller, &project, obj, pre).await?;
    Ok(resource::object_response(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        &shown,
    ))
}

/// Creates the bootstrap account `name` of the built-in simulator in `project`.
///
/// # Errors
/// As [`apply`].
pub async fn create_simulator_account(
    state: &AppState,
    project: &str,
    name: &str,
    time_scale: f64,
) -> ApiResult<()> {
    let obj = Object {
        kind: String::new(),
        metadata: fleetplane_domain::Metadata {
            description: "The built-in simulated cloud".into(),
            ..resource::new_metadata(name)
        },
        spec: CloudAccountSpec {
            provider: BUILTIN.into(),
            cloud_types: None,
            config: serde_json::json!({ "timeScale": time_scale }),
            simulator: None,
            secrets: BTreeMap::new(),
            checked: None,
        },
        status: CloudAccountStatus::default(),
    };
    apply(state, &Caller::system(), project, obj, None).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pointers_become_field_paths() {
        for (pointer, path) in [
            ("", "spec.config"),
            ("/region", "spec.config.region"),
            ("/zones/0/name", "spec.config.zones[0].name"),
            ("/a~1b", "spec.config.a/b"),
        ] {
            assert_eq!(config_path(pointer), path, "{pointer}");
        }
    }

    #[test]
    fn sealed_values_round_trip_only_with_the_same_key_and_context() {
        let c = SecretCipher::from_key([7; 32]);
        let sealed = c.seal("ctx", "hunter2");
        assert!(sealed.starts_with(SEALED_PREFIX));
        assert!(!sealed.contains("hunter2"));
        assert_ne!(sealed, c.seal("ctx", "hunter2"), "nonces differ");
        assert_eq!(c.unseal("ctx", &sealed).unwrap(), "hunter2");
        assert!(c.unseal("other", &sealed).is_err());
        assert!(
            SecretCipher::from_key([8; 32])
                .unseal("ctx", &sealed)
                .is_err()
        );
        let b64 = base64::engine::general_purpose::STANDARD;
        let mut raw = b64.decode(&sealed[SEALED_PREFIX.len()..]).unwrap();
        raw[30] ^= 1;
        let tampered = format!("{SEALED_PREFIX}{}", b64.encode(raw));
        assert!(c.unseal("ctx", &tampered).is_err());
        assert!(c.unseal("ctx", "hunter2").is_err());
    }

    #[test]
    fn key_file_is_created_private_and_reused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("secret-key");
        let a = SecretCipher::load_or_create(&path).unwrap();
        let sealed = a.seal("x", "v");
        let b = SecretCipher::load_or_create(&path).unwrap();
        assert_eq!(b.unseal("x", &sealed).unwrap(), "v");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        std::fs::write(&path, "short").unwrap();
        assert!(SecretCipher::load_or_create(&path).is_err());
    }
}
