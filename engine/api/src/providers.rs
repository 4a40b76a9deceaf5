//! Installed providers (`/v1/providers`, DESIGN §8.3): install by upload, list with health,
//! remove. Component bytes are kept content-addressed at `<providers dir>/<sha256>.wasm`; the
//! store keeps the manifest and the digest (kind `provider`), and every load re-checks the digest.

use crate::auth::Caller;
use crate::cloud_accounts::{self, SecretCipher};
use crate::error::{ApiError, ApiResult};
use crate::json::Query;
use crate::resource::{self, ApiKind, ListParams, ObjectOf};
use crate::state::AppState;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{StatusCode, header};
use axum::response::Response;
use base64::Engine;
use bytes::Bytes;
use fleetplane_domain::authz::{Permission, Resource, Verb};
use fleetplane_domain::{DomainError, ErrorCode, FieldError, Object};
use fleetplane_store::tables::kinds;
use fleetplane_store::{ReadOps, Scope};
use fleetplane_wasm_host::{
    Digest, InstallError, ProviderInfo, ProviderManifest, ProviderPackage, ProviderRuntime,
    WasmHost, components,
};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

/// The built-in provider's name; it is embedded in the binary and cannot be replaced or removed.
pub const BUILTIN: &str = "simulator";
/// Largest install request (the component and its manifest).
pub const MAX_UPLOAD_BYTES: usize = 64 * 1024 * 1024;

/// What the store keeps for an installed provider (and what the API shows as `spec`).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderSpec {
    /// The provider's version.
    pub version: String,
    /// The WIT version it targets.
    pub wit_version: String,
    /// The cloud types it serves (`*`: all).
    pub cloud_types: Vec<String>,
    /// `sha256:<hex>` of the component.
    pub digest: String,
    /// Whether it is the built-in simulator.
    #[serde(default)]
    pub builtin: bool,
    /// The whole manifest.
    pub manifest: ProviderManifest,
}

/// Health of a provider as the host sees it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ProviderStatus {
    /// `healthy` (loaded, digest verified) or `unhealthy` (refused or not loaded; see `reason`).
    pub health: String,
    /// Why it is unhealthy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Calls since the server started.
    #[serde(default)]
    pub calls: u64,
    /// Calls that failed in the sandbox (trap, deadline, memory, interface).
    #[serde(default)]
    pub sandbox_failures: u64,
    /// The last sandbox failure.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_failure: Option<String>,
}

/// Providers in the store.
pub struct Provider;

impl ApiKind for Provider {
    const KIND: &'static str = "Provider";
    const STORE: fleetplane_store::Kind = kinds::PROVIDER;
    const RESOURCE: Resource = Resource::Provider;
    type Spec = ProviderSpec;
    type Status = ProviderStatus;

    fn authz_project(_: &Scope, _: &str) -> Option<String> {
        None
    }

    fn api_path(_: &Scope, name: &str) -> String {
        format!("providers/{name}")
    }
}

/// The provider host with the files behind it, shared by the provider and cloud-account routes.
pub struct ProviderRegistry {
    host: WasmHost,
    dir: PathBuf,
    cipher: SecretCipher,
    refused: Mutex<BTreeMap<String, String>>,
}

impl std::fmt::Debug for ProviderRegistry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProviderRegistry")
            .field("dir", &self.dir)
            .finish_non_exhaustive()
    }
}

fn component_error(e: InstallError) -> ApiError {
    match e {
        InstallError::Manifest(m) => DomainError::validation(
            m.problems()
                .into_iter()
                .map(|p| FieldError::new(format!("manifest.{}", p.field), p.message))
                .collect(),
        )
        .into(),
        InstallError::Digest(d) => ApiError::field("digest", d.to_string()),
        InstallError::Compile(_) | InstallError::Interface(_) => {
            ApiError::field("component", e.to_string())
        }
        InstallError::Io { .. } => ApiError::internal(e.to_string()),
    }
}

impl ProviderRegistry {
    /// A registry over `host`, keeping component files in `components_dir` (created when
    /// missing) and sealing cloud-account secrets with `cipher`.
    ///
    /// # Errors
    /// The directory cannot be created.
    pub fn new(
        host: WasmHost,
        components_dir: PathBuf,
        cipher: SecretCipher,
    ) -> std::io::Result<Self> {
        std::fs::create_dir_all(&components_dir)?;
        Ok(Self {
            host,
            dir: components_dir,
            cipher,
            refused: Mutex::new(BTreeMap::new()),
        })
    }

    /// The provider host.
    pub fn host(&self) -> &WasmHost {
        &self.host
    }

    /// The cipher of cloud-account secrets.
    pub fn cipher(&self) -> &SecretCipher {
        &self.cipher
    }

    /// Where the component with `digest` is kept.
    pub fn component_path(&self, digest: &Digest) -> PathBuf {
        self.dir.join(format!("{}.wasm", digest.hex()))
    }

    fn refused(&self) -> std::sync::MutexGuard<'_, BTreeMap<String, String>> {
        match self.refused.lock() {
            Ok(g) => g,
            Err(p) => p.into_inner(),
        }
    }

    /// Installs the built-in simulator embedded in the binary.
    ///
    /// # Errors
    /// [`InstallError`] (a build defect).
    pub async fn install_builtin(&self) -> Result<ProviderInfo, InstallError> {
        self.host.install(components::simulator_package()?).await
    }

    /// Installs every provider recorded in the store, re-checking each file's digest. A provider
    /// whose file is missing, changed (digest differs) or no longer loads is refused: it is
    /// logged, left out of the host and shown `unhealthy` with the reason. Returns the refused
    /// providers with their reasons.
    ///
    /// # Errors
    /// Store failures.
    pub async fn install_recorded(&self, state: &AppState) -> ApiResult<Vec<(String, String)>> {
        let records = state.read(|r| all_recorded(r)).await?;
        let mut refused = Vec::new();
        for p in records {
            let name = p.metadata.name.clone();
            match self.load_recorded(&p.spec).await {
                Ok(info) => {
                    self.refused().remove(&name);
                    tracing::info!(provider = %name, digest = %info.digest, "provider loaded");
                }
                Err(reason) => {
                    tracing::error!(provider = %name, %reason, "provider refused");
                    self.refused().insert(name.clone(), reason.clone());
                    refused.push((name, reason));
                }
            }
        }
        Ok(refused)
    }

    async fn load_recorded(&self, spec: &ProviderSpec) -> Result<ProviderInfo, String> {
        let digest: Digest = spec
            .digest
            .parse()
            .map_err(|e| format!("recorded digest is invalid: {e}"))?;
        let path = self.component_path(&digest);
        let p = path.clone();
        let bytes = tokio::task::spawn_blocking(move || std::fs::read(&p))
            .await
            .map_err(|e| e.to_string())?
            .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
        let package = ProviderPackage::verify(spec.manifest.clone(), digest, bytes)
            .map_err(|e| format!("{}: {e}", path.display()))?;
        self.host.install(package).await.map_err(|e| e.to_string())
    }

    async fn write_component(&self, digest: &Digest, bytes: Arc<[u8]>) -> ApiResult<()> {
        let path = self.component_path(digest);
        let tmp = self.dir.join(format!(".{}.tmp", uuid::Uuid::new_v4()));
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            std::fs::write(&tmp, &bytes)?;
            std::fs::File::open(&tmp)?.sync_all()?;
            std::fs::rename(&tmp, &path)
        })
        .await
        .map_err(|e| ApiError::internal(e.to_string()))?
        .map_err(|e| ApiError::internal(format!("cannot store the component: {e}")))
    }

    /// The status of a provider whose recorded digest is `digest`.
    pub fn status_of(&self, name: &str, digest: &str) -> ProviderStatus {
        if let Some(reason) = self.refused().get(name) {
            return unhealthy(reason.clone());
        }
        match self.host.provider(name) {
            Some(info) if info.digest.to_string() == digest => ProviderStatus {
                health: "healthy".into(),
                reason: None,
                calls: info.calls,
                sandbox_failures: info.sandbox_failures,
                last_failure: info.last_failure,
            },
            Some(info) => unhealthy(format!(
                "the loaded component is {}, not the recorded {digest}",
                info.digest
            )),
            None => unhealthy("not loaded".into()),
        }
    }

    fn with_status(&self, mut obj: ObjectOf<Provider>) -> ObjectOf<Provider> {
        obj.status = self.status_of(&obj.metadata.name, &obj.spec.digest);
        obj
    }
}

fn unhealthy(reason: String) -> ProviderStatus {
    ProviderStatus {
        health: "unhealthy".into(),
        reason: Some(reason),
        ..ProviderStatus::default()
    }
}

fn all_recorded(r: &dyn ReadOps) -> ApiResult<Vec<ObjectOf<Provider>>> {
    let mut out = Vec::new();
    let mut params = ListParams::default();
    loop {
        let (items, next) =
            resource::list_page::<Provider>(r, &Scope::Tenant, "", &params, 500, &|_| true)?;
        out.extend(items);
        match next {
            Some(n) => params.cont = Some(n),
            None => return Ok(out),
        }
    }
}

/// The built-in simulator as an API object.
fn builtin_object() -> ApiResult<ObjectOf<Provider>> {
    let manifest = ProviderManifest::parse(components::SIMULATOR_MANIFEST.as_bytes())
        .map_err(|e| ApiError::internal(e.to_string()))?;
    Ok(Object {
        kind: Provider::KIND.to_owned(),
        metadata: resource::new_metadata(BUILTIN),
        spec: ProviderSpec {
            version: manifest.version.clone(),
            wit_version: manifest.wit_version.clone(),
            cloud_types: manifest.cloud_types.clone(),
            digest: components::simulator_digest().to_string(),
            builtin: true,
            manifest,
        },
        status: ProviderStatus::default(),
    })
}

/// The manifest of the provider named `name` (built-in or recorded), if there is one.
///
/// # Errors
/// Store failures.
pub fn manifest_of(r: &dyn ReadOps, name: &str) -> ApiResult<Option<ProviderManifest>> {
    if name == BUILTIN {
        return Ok(Some(builtin_object()?.spec.manifest));
    }
    Ok(resource::load::<Provider>(r, &Scope::Tenant, name)?.map(|p| p.spec.manifest))
}

/// `GET /v1/providers`: the built-in simulator first, then the installed providers by name.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> ApiResult<Response> {
    caller.require(Permission::new(Resource::Provider, Verb::List), None)?;
    let reg = state.providers()?.clone();
    let first = params.cont.is_none();
    let max = state.settings.max_page;
    let (items, next) = state
        .read(move |r| {
            resource::list_page::<Provider>(r, &Scope::Tenant, "", &params, max, &|_| true)
        })
        .await?;
    let mut out = Vec::with_capacity(items.len() + 1);
    if first {
        out.push(reg.with_status(builtin_object()?));
    }
    out.extend(items.into_iter().map(|p| reg.with_status(p)));
    Ok(resource::list_response(out, next))
}

/// `GET /v1/providers/{name}`.
pub async fn get(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    caller.require(Permission::new(Resource::Provider, Verb::Get), None)?;
    let reg = state.providers()?.clone();
    let obj = if name == BUILTIN {
        builtin_object()?
    } else {
        state
            .read(move |r| resource::require::<Provider>(r, &Scope::Tenant, &name))
            .await?
    };
    Ok(resource::object_response(
        StatusCode::OK,
        &reg.with_status(obj),
    ))
}

/// An install request: the manifest (JSON), the component bytes and, optionally, the digest the
/// vendor published.
struct Upload {
    manifest: Vec<u8>,
    component: Bytes,
    digest: Option<String>,
}

/// The JSON form of an install request (for clients without multipart).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct JsonUpload {
    manifest: serde_json::Value,
    /// Base64 (standard alphabet).
    component: String,
    #[serde(default)]
    digest: Option<String>,
}

async fn read_upload(req: Request, state: &AppState) -> ApiResult<Upload> {
    let mime = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase();
    if mime == "multipart/form-data" {
        let mut mp = Multipart::from_request(req, state)
            .await
            .map_err(|e| ApiError::field("", e.body_text()))?;
        let (mut manifest, mut component, mut digest) = (None, None, None);
        loop {
            let field = match mp.next_field().await {
                Ok(Some(f)) => f,
                Ok(None) => break,
                Err(e) => return Err(multipart_error(e)),
            };
            let name = field.name().unwrap_or_default().to_owned();
            let data = field.bytes().await.map_err(multipart_error)?;
            match name.as_str() {
                "manifest" => manifest = Some(data.to_vec()),
                "component" => component = Some(data),
                "digest" => digest = Some(String::from_utf8_lossy(&data).trim().to_owned()),
                other => {
                    return Err(ApiError::field(
                        other,
                        "unknown part (expected manifest, component, digest)",
                    ));
                }
            }
        }
        let mut problems = Vec::new();
        if manifest.is_none() {
            problems.push(FieldError::new("manifest", "the manifest part is required"));
        }
        if component.is_none() {
            problems.push(FieldError::new(
                "component",
                "the component part is required",
            ));
        }
        match (manifest, component) {
            (Some(manifest), Some(component)) => Ok(Upload {
                manifest,
                component,
                digest,
            }),
            _ => Err(DomainError::validation(problems).into()),
        }
    } else if mime == "application/json" {
        let body = axum::body::to_bytes(req.into_body(), MAX_UPLOAD_BYTES)
            .await
            .map_err(|_| {
                ApiError::new(
                    ErrorCode::PayloadTooLarge,
                    format!("request body is larger than the limit ({MAX_UPLOAD_BYTES} bytes)"),
                )
            })?;
        let up: JsonUpload = crate::json::decode(&body)?;
        let component = base64::engine::general_purpose::STANDARD
            .decode(up.component.as_bytes())
            .map_err(|e| ApiError::field("component", format!("not base64: {e}")))?;
        Ok(Upload {
            manifest: serde_json::to_vec(&up.manifest)
                .map_err(|e| ApiError::internal(e.to_string()))?,
            component: component.into(),
            digest: up.digest,
        })
    } else {
        Err(ApiError::new(
            ErrorCode::UnsupportedMediaType,
            format!("expected multipart/form-data or application/json, got {mime:?}"),
        ))
    }
}

fn multipart_error(e: axum::extract::multipart::MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            ErrorCode::PayloadTooLarge,
            format!("request body is larger than the limit ({MAX_UPLOAD_BYTES} bytes)"),
        )
    } else {
        ApiError::field("", e.body_text())
    }
}

/// `POST /v1/providers`: installs (or upgrades) a provider from a `manifest` and a `component`
/// part (multipart/form-data; or JSON with the component in base64). With a `digest` part, the
/// component must have that digest. 201 when new, 200 when it replaced an installed version.
pub async fn install(
    State(state): State<AppState>,
    caller: Caller,
    req: Request,
) -> ApiResult<Response> {
    caller.require(Permission::new(Resource::Provider, Verb::Create), None)?;
    let reg = state.providers()?.clone();
    let upload = read_upload(req, &state).await?;
    let manifest = ProviderManifest::parse(&upload.manifest)
        .map_err(|e| component_error(InstallError::Manifest(e)))?;
    let name = manifest.name.clone();
    if name == BUILTIN {
        return Err(resource::rule(
            ErrorCode::InvalidState,
            "the built-in simulator provider cannot be replaced; give the manifest another name",
        ));
    }
    let bytes: Arc<[u8]> = Arc::from(upload.component.as_ref());
    let digest = Digest::of(&bytes);
    if let Some(expected) = upload.digest.as_deref() {
        let expected: Digest = expected
            .parse()
            .map_err(|e| ApiError::field("digest", format!("{e}")))?;
        if expected != digest {
            return Err(ApiError::field(
                "digest",
                format!(
                    "the component's digest is {digest}, not the expected {expected}: the file \
                     changed, refused"
                ),
            ));
        }
    }
    let old = {
        let n = name.clone();
        state
            .read(move |r| resource::load::<Provider>(r, &Scope::Tenant, &n))
            .await?
    };
    let package = ProviderPackage::verify(manifest.clone(), digest, bytes.clone())
        .map_err(component_error)?;
    reg.host.install(package).await.map_err(component_error)?;
    let obj = Object {
        kind: String::new(),
        metadata: resource::new_metadata(&name),
        spec: ProviderSpec {
            version: manifest.version.clone(),
            wit_version: manifest.wit_version.clone(),
            cloud_types: manifest.cloud_types.clone(),
            digest: digest.to_string(),
            builtin: false,
            manifest,
        },
        status: ProviderStatus::default(),
    };
    let written = match reg.write_component(&digest, bytes).await {
        Ok(()) => {
            state
                .write(&caller, move |tx| {
                    resource::upsert::<Provider>(tx, &Scope::Tenant, obj, None)
                })
                .await
        }
        Err(e) => Err(e),
    };
    let (shown, created) = match written {
        Ok(w) => w,
        Err(e) => {
            // Put back what ran before, so the host matches the store.
            match old {
                Some(o) => {
                    if let Err(why) = reg.load_recorded(&o.spec).await {
                        tracing::error!(provider = %name, %why, "cannot restore the previous provider");
                        reg.host.remove(&name);
                    }
                }
                None => {
                    reg.host.remove(&name);
                }
            }
            return Err(e);
        }
    };
    reg.refused().remove(&name);
    Ok(resource::object_response(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        &reg.with_status(shown),
    ))
}

/// `DELETE /v1/providers/{name}`: refused (409 `InvalidState`) for the built-in simulator and
/// while a cloud account uses the provider.
pub async fn remove(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
) -> ApiResult<StatusCode> {
    caller.require(Permission::new(Resource::Provider, Verb::Delete), None)?;
    let reg = state.providers()?.clone();
    if name == BUILTIN {
        return Err(resource::rule(
            ErrorCode::InvalidState,
            "the built-in simulator provider cannot be removed",
        ));
    }
    let pre = resource::precondition(&headers)?;
    let n = name.clone();
    let (removed, digest_still_used) = state
        .write(&caller, move |tx| {
            let uses = cloud_accounts::uses_provider(&n);
            if let Some(account) = tx.ops.referrers(&uses, 1)?.first() {
                return Err(resource::rule(
                    ErrorCode::InvalidState,
                    format!(
                        "cloud account \"{}\" in project \"{}\" uses provider \"{n}\"; delete \
                         or move it first",
                        account.name,
                        account.scope.project().unwrap_or_default()
                    ),
                ));
            }
            let removed = resource::remove::<Provider>(tx, &Scope::Tenant, &n, pre)?;
            let others = all_recorded(&*tx.ops)?;
            let used = others.iter().any(|p| p.spec.digest == removed.spec.digest);
            Ok((removed, used))
        })
        .await?;
    reg.host.remove(&name);
    reg.refused().remove(&name);
    if !digest_still_used && let Ok(d) = removed.spec.digest.parse::<Digest>() {
        let path = reg.component_path(&d);
        if let Err(e) = std::fs::remove_file(&path)
            && e.kind() != std::io::ErrorKind::NotFound
        {
            tracing::warn!(path = %path.display(), error = %e, "cannot remove a provider component file");
        }
    }
    Ok(StatusCode::NO_CONTENT)
}
