//! Cluster profiles and their versions at tenant and project scope (DESIGN §4.2–§4.4):
//! `/v1[/projects/{p}]/profiles`, `…/profiles:import`, `…/profiles/{name}/versions[/{version}]`,
//! `…/versions/{version}:export` and `…/versions/{version}:render`.
//!
//! A version is stored under the name `profile/version` (kind `profile/version`); the API shows
//! `metadata.name` = the profile's name and `spec.version`. The first version of a name creates the
//! name-level record (kind `profile`: type and cloud type), the last one deleted removes it.
//! Locking and use come from the references templates and clusters hold to the version key.

use crate::Routes;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::Query;
use crate::json::{self, JsonBytes};
use crate::macros::resolved_macros;
use crate::packs::{self, custom_packs};
use crate::refs;
use crate::resource::{
    self, ApiKind, ListParams, ObjectOf, list_page, list_response, load, object_response,
    precondition, remove, require, require_project, upsert,
};
use crate::state::{AppState, Tx};
use axum::Json;
use axum::extract::{FromRequest, Multipart, Path, Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use fleetplane_domain::authz::{Permission, Resource, Verb};
use fleetplane_domain::meta::validate_name;
use fleetplane_domain::profile::{
    Catalog, CloudType, MASK, ProfileType, ProfileVersion, ProfileVersionSpec,
    ProfileVersionStatus, SystemValues, check_profile_type, copy_version, ensure_deletable,
    ensure_editable, export_document, import_document, parse_version, render_version,
    validate_value, validate_version,
};
use fleetplane_domain::{DomainError, ErrorCode, FieldError, Metadata, Object};
use fleetplane_store::tables::kinds;
use fleetplane_store::{ListQuery, ObjectKey, Precondition, ReadOps, Reference, Scope};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// How many referrers of one relation a usage count examines; past it the count is capped.
const USAGE_LIMIT: usize = 10_000;

/// The name-level record of a profile: its type and cloud type, shared by every version.
pub struct Profile;

/// The `spec` of a profile record (set by its first version, never changed).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileSpec {
    /// `full`, `infra` or `addon`.
    #[serde(rename = "type")]
    pub profile_type: ProfileType,
    /// The cloud type.
    pub cloud_type: CloudType,
}

/// The `status` of a profile record: its versions, oldest first (computed on read).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileStatus {
    /// The versions, by SemVer precedence.
    #[serde(default)]
    pub versions: Vec<String>,
}

impl ApiKind for Profile {
    const KIND: &'static str = "ClusterProfile";
    const STORE: fleetplane_store::Kind = kinds::PROFILE;
    const RESOURCE: Resource = Resource::ClusterProfile;
    type Spec = ProfileSpec;
    type Status = ProfileStatus;

    fn observe(r: &dyn ReadOps, scope: &Scope, obj: ObjectOf<Self>) -> ApiResult<ObjectOf<Self>> {
        with_versions(r, scope, obj)
    }

    fn api_path(scope: &Scope, name: &str) -> String {
        format!("{}profiles/{name}", scope_prefix(scope))
    }
}

/// Profile versions, stored as `profile/version`.
pub struct Version;

/// The `status` of a version as the API shows it (computed on read, never stored).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VersionStatus {
    /// Linked to a template: every edit answers 409 `ProfileVersionLocked`.
    #[serde(default)]
    pub locked: bool,
    /// Templates that link or use the version.
    #[serde(default)]
    pub templates: usize,
    /// Clusters that use the version.
    #[serde(default)]
    pub clusters: usize,
}

fn scope_prefix(scope: &Scope) -> String {
    match scope {
        Scope::Tenant => String::new(),
        Scope::Project(p) => format!("projects/{p}/"),
    }
}

/// The store name of a version.
pub fn version_key_name(profile: &str, version: &str) -> String {
    format!("{profile}/{version}")
}

/// The store key of a version, the target of template and cluster references.
pub fn version_key(scope: &Scope, profile: &str, version: &str) -> ObjectKey {
    ObjectKey::new(
        scope.clone(),
        kinds::PROFILE_VERSION,
        version_key_name(profile, version),
    )
}

fn split_key(key_name: &str) -> (&str, &str) {
    key_name.split_once('/').unwrap_or((key_name, ""))
}

impl ApiKind for Version {
    const KIND: &'static str = "ClusterProfileVersion";
    const STORE: fleetplane_store::Kind = kinds::PROFILE_VERSION;
    const RESOURCE: Resource = Resource::ClusterProfile;
    type Spec = ProfileVersionSpec;
    type Status = VersionStatus;

    fn admit(
        tx: &mut Tx<'_>,
        scope: &Scope,
        new: &mut ObjectOf<Self>,
        old: Option<&ObjectOf<Self>>,
    ) -> ApiResult<()> {
        let key_name = new.metadata.name.clone();
        let (name, version) = split_key(&key_name);
        match old {
            Some(o) => {
                let usage = usage(&*tx.ops, scope, name, version)?;
                ensure_editable(name, version, usage.locked)?;
                new.spec.restore_masked_defaults(&o.spec);
            }
            None => {
                let blank = ProfileVersionSpec {
                    variables: Vec::new(),
                    ..new.spec.clone()
                };
                new.spec.restore_masked_defaults(&blank);
            }
        }
        if let Some(p) = load::<Profile>(&*tx.ops, scope, name)? {
            check_profile_type(name, p.spec.profile_type, p.spec.cloud_type, &new.spec)?;
        }
        let custom = custom_packs(&*tx.ops)?;
        validate_version(&domain_version(new), &Catalog::with_custom(&custom))?;
        Ok(())
    }

    fn references(_: &Scope, obj: &ObjectOf<Self>) -> Vec<Reference> {
        obj.spec
            .layers
            .iter()
            .map(|l| packs::uses_pack(&l.name))
            .collect()
    }

    fn before_delete(tx: &mut Tx<'_>, scope: &Scope, obj: &ObjectOf<Self>) -> ApiResult<()> {
        let (name, version) = split_key(&obj.metadata.name);
        let users = users(&*tx.ops, scope, name, version)?;
        ensure_deletable(name, version, &users.templates, &users.clusters)?;
        Ok(())
    }

    fn present(mut obj: ObjectOf<Self>) -> ObjectOf<Self> {
        let name = split_key(&obj.metadata.name).0.to_owned();
        obj.metadata.name = name;
        obj.spec = obj.spec.masked();
        obj
    }

    fn api_path(scope: &Scope, name: &str) -> String {
        let (profile, version) = split_key(name);
        format!(
            "{}profiles/{profile}/versions/{version}",
            scope_prefix(scope)
        )
    }
}

/// The domain's view of a stored version (`metadata.name` = the profile's name), unmasked.
pub(crate) fn domain_version(obj: &ObjectOf<Version>) -> ProfileVersion {
    let mut metadata = obj.metadata.clone();
    metadata.name = split_key(&obj.metadata.name).0.to_owned();
    ProfileVersion {
        kind: String::new(),
        metadata,
        spec: obj.spec.clone(),
        status: ProfileVersionStatus { locked: false },
    }
}

/// Decoded versions by their record's digest ([`resource::load_shared`]): every render of a
/// template's clusters reads the same few versions.
static VERSIONS: std::sync::LazyLock<crate::memo::Memo<[u8; 32], std::sync::Arc<ProfileVersion>>> =
    std::sync::LazyLock::new(|| crate::memo::Memo::new(256));

/// The domain's view of version `version` of profile `profile` in `scope`, decoded once per
/// stored content.
///
/// # Errors
/// `Internal` on decode failures; store errors.
pub(crate) fn load_version(
    r: &dyn ReadOps,
    scope: &Scope,
    profile: &str,
    version: &str,
) -> ApiResult<Option<resource::Shared<ProfileVersion>>> {
    resource::load_shared::<Version, _>(
        &VERSIONS,
        r,
        scope,
        &version_key_name(profile, version),
        |obj| domain_version(&obj),
    )
}

/// Who references a version: template and cluster names (`project/name` for project objects).
#[derive(Debug, Default)]
struct Users {
    linked: bool,
    templates: Vec<String>,
    clusters: Vec<String>,
}

fn display(k: &ObjectKey) -> String {
    match k.scope.project() {
        Some(p) => format!("{p}/{}", k.name),
        None => k.name.clone(),
    }
}

fn users(r: &dyn ReadOps, scope: &Scope, name: &str, version: &str) -> ApiResult<Users> {
    let target = |rel| {
        refs::to(
            rel,
            scope,
            kinds::PROFILE_VERSION,
            &version_key_name(name, version),
        )
    };
    let links = r.referrers(&target(refs::TEMPLATE_LINKS_PROFILE_VERSION), USAGE_LIMIT)?;
    let uses = r.referrers(&target(refs::USES_PROFILE_VERSION), USAGE_LIMIT)?;
    let standalone = r.referrers(&target(refs::STANDALONE_USES_PROFILE_VERSION), USAGE_LIMIT)?;
    let mut templates = BTreeSet::new();
    let mut clusters = BTreeSet::new();
    for k in links.iter().chain(&uses).chain(&standalone) {
        if k.kind == kinds::CLUSTER_TEMPLATE {
            templates.insert(display(k));
        } else {
            clusters.insert(display(k));
        }
    }
    Ok(Users {
        linked: !links.is_empty(),
        templates: templates.into_iter().collect(),
        clusters: clusters.into_iter().collect(),
    })
}

fn usage(r: &dyn ReadOps, scope: &Scope, name: &str, version: &str) -> ApiResult<VersionStatus> {
    let u = users(r, scope, name, version)?;
    Ok(VersionStatus {
        locked: u.linked,
        templates: u.templates.len(),
        clusters: u.clusters.len(),
    })
}

/// A version as shown, with its computed status.
fn with_status(
    r: &dyn ReadOps,
    scope: &Scope,
    mut shown: ObjectOf<Version>,
) -> ApiResult<ObjectOf<Version>> {
    shown.status = usage(r, scope, &shown.metadata.name, &shown.spec.version)?;
    Ok(shown)
}

/// The version names of a profile, by SemVer precedence.
fn version_names(r: &dyn ReadOps, scope: &Scope, name: &str) -> ApiResult<Vec<String>> {
    let prefix = format!("{name}/");
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = r.list(&ListQuery {
            scope: scope.clone(),
            kind: kinds::PROFILE_VERSION,
            name_prefix: prefix.clone(),
            after: after.take(),
            limit: 1000,
        })?;
        for rec in &page.items {
            out.push(split_key(&rec.key.name).1.to_owned());
        }
        match page.next {
            Some(n) => after = Some(n),
            None => break,
        }
    }
    out.sort_by(|a, b| fleetplane_domain::profile::version::compare_versions(a, b));
    Ok(out)
}

fn with_versions(
    r: &dyn ReadOps,
    scope: &Scope,
    mut p: ObjectOf<Profile>,
) -> ApiResult<ObjectOf<Profile>> {
    p.status.versions = version_names(r, scope, &p.metadata.name)?;
    Ok(p)
}

/// Saves a version: writes it (validated by [`Version::admit`]), then creates the profile record
/// when this is the first version of the name. Returns the version as shown, with its status.
///
/// # Errors
/// Those of [`Version::admit`] and [`upsert`].
fn save_version(
    tx: &mut Tx<'_>,
    scope: &Scope,
    obj: ObjectOf<Version>,
    pre: Option<Precondition>,
) -> ApiResult<(ObjectOf<Version>, bool)> {
    let (name, _) = split_key(&obj.metadata.name);
    let name = name.to_owned();
    let record = Object {
        kind: String::new(),
        metadata: Metadata {
            name: name.clone(),
            labels: obj.metadata.labels.clone(),
            description: obj.metadata.description.clone(),
            ..Metadata::default()
        },
        spec: ProfileSpec {
            profile_type: obj.spec.profile_type,
            cloud_type: obj.spec.cloud_type,
        },
        status: ProfileStatus::default(),
    };
    let (shown, created) = upsert::<Version>(tx, scope, obj, pre)?;
    if load::<Profile>(&*tx.ops, scope, &name)?.is_none() {
        upsert::<Profile>(tx, scope, record, Some(Precondition::MustNotExist))?;
    }
    let shown = with_status(&*tx.ops, scope, shown)?;
    Ok((shown, created))
}

/// Path parameters of profile routes.
#[derive(Debug, Deserialize)]
pub struct ProfilePath {
    /// The project, on project-scope routes.
    pub project: Option<String>,
    /// The profile name.
    pub name: Option<String>,
    /// The version, possibly with an `:export` / `:render` suffix.
    pub version: Option<String>,
}

impl ProfilePath {
    fn scope(&self) -> Scope {
        Scope::from_project(self.project.as_deref())
    }

    fn name(&self) -> ApiResult<String> {
        self.name
            .clone()
            .ok_or_else(|| ApiError::internal("route without a profile name"))
    }

    /// The version and the action suffix (`export`, `render`), if any.
    fn version(&self) -> ApiResult<(String, Option<String>)> {
        let v = self
            .version
            .as_deref()
            .ok_or_else(|| ApiError::internal("route without a version"))?;
        Ok(match v.split_once(':') {
            Some((v, action)) => (v.to_owned(), Some(action.to_owned())),
            None => (v.to_owned(), None),
        })
    }
}

fn check_path_version(version: &str) -> ApiResult<()> {
    parse_version(version).map_err(|e| ApiError::field("version", e))?;
    Ok(())
}

fn check_path_name(name: &str) -> ApiResult<()> {
    validate_name("name", name)?;
    Ok(())
}

fn require_perm(caller: &Caller, verb: Verb, scope: &Scope) -> ApiResult<()> {
    caller.require(
        Permission::new(Resource::ClusterProfile, verb),
        scope.project(),
    )
}

fn already_exists(name: &str, version: &str) -> ApiError {
    DomainError::new(
        ErrorCode::AlreadyExists,
        format!("profile {name:?} version {version} already exists"),
    )
    .into()
}

fn no_action(action: &str) -> ApiError {
    ApiError::new(
        ErrorCode::NotFound,
        format!("no action {action:?} on this path"),
    )
}

/// `GET .../profiles/{name}/versions`: one page of versions (store order), with status.
pub async fn list_versions(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ProfilePath>,
    Query(params): Query<ListParams>,
) -> ApiResult<Response> {
    let scope = path.scope();
    let name = path.name()?;
    require_perm(&caller, Verb::List, &scope)?;
    let max = state.settings.max_page;
    let (items, next) = state
        .read(move |r| {
            require_project(r, &scope)?;
            require::<Profile>(r, &scope, &name)?;
            let prefix = format!("{name}/");
            let (items, next) = list_page::<Version>(r, &scope, &prefix, &params, max, &|_| true)?;
            let items = items
                .into_iter()
                .map(|v| with_status(r, &scope, v))
                .collect::<ApiResult<Vec<_>>>()?;
            Ok((items, next))
        })
        .await?;
    Ok(list_response(items, next))
}

/// Body of `POST .../profiles/{name}/versions`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NewVersion {
    /// The new version.
    pub version: String,
    /// The version of the same profile to copy (required: a version made from a full spec is
    /// created with `PUT .../versions/{version}`).
    #[serde(default)]
    pub from: Option<String>,
}

/// `POST .../profiles/{name}/versions` `{version, from}`: a copy of `from` under a new version.
pub async fn create_version(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ProfilePath>,
    json::Json(body): json::Json<NewVersion>,
) -> ApiResult<Response> {
    let scope = path.scope();
    let name = path.name()?;
    require_perm(&caller, Verb::Create, &scope)?;
    parse_version(&body.version).map_err(|e| ApiError::field("version", e))?;
    let Some(from) = body.from else {
        return Err(ApiError::field(
            "from",
            "is required: POST copies a version; PUT .../versions/{version} creates one from a full spec",
        ));
    };
    let shown = state
        .write(&caller, move |tx| {
            require_project(&*tx.ops, &scope)?;
            let source = load::<Version>(&*tx.ops, &scope, &version_key_name(&name, &from))?
                .ok_or_else(|| {
                    ApiError::from(DomainError::validation(vec![FieldError::new(
                        "from",
                        format!("profile {name:?} has no version {from:?}"),
                    )]))
                })?;
            let key = version_key(&scope, &name, &body.version);
            if tx.ops.get(&key)?.is_some() {
                return Err(already_exists(&name, &body.version));
            }
            let copy = copy_version(&domain_version(&source), &body.version)?;
            let mut obj = ObjectOf::<Version> {
                kind: String::new(),
                metadata: copy.metadata,
                spec: copy.spec,
                status: VersionStatus::default(),
            };
            obj.metadata.name = key.name;
            save_version(tx, &scope, obj, None).map(|(s, _)| s)
        })
        .await?;
    Ok(object_response(StatusCode::CREATED, &shown))
}

/// `PUT .../profiles/{name}/versions/{version}`: create (201) or replace (200) from a full spec.
pub async fn put_version(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ProfilePath>,
    headers: HeaderMap,
    JsonBytes(body): JsonBytes,
) -> ApiResult<Response> {
    let scope = path.scope();
    let name = path.name()?;
    let (version, action) = path.version()?;
    if let Some(a) = action {
        return Err(no_action(&a));
    }
    check_path_name(&name)?;
    check_path_version(&version)?;
    let key = version_key(&scope, &name, &version);
    let exists = {
        let key = key.clone();
        state.read(move |r| Ok(r.get(&key)?.is_some())).await?
    };
    require_perm(
        &caller,
        if exists { Verb::Update } else { Verb::Create },
        &scope,
    )?;
    let mut obj = resource::decode_put::<Version>(&body, &name)?;
    if obj.spec.version.is_empty() {
        obj.spec.version = version.clone();
    } else if obj.spec.version != version {
        return Err(ApiError::field(
            "spec.version",
            format!("does not match the version in the path ({version:?})"),
        ));
    }
    obj.metadata.name = key.name;
    let pre = precondition(&headers)?;
    let (shown, created) = state
        .write(&caller, move |tx| {
            require_project(&*tx.ops, &scope)?;
            save_version(tx, &scope, obj, pre)
        })
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(object_response(status, &shown))
}

/// `GET .../versions/{version}`, and `GET .../versions/{version}:export` (the export document).
pub async fn get_version(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ProfilePath>,
) -> ApiResult<Response> {
    let scope = path.scope();
    let name = path.name()?;
    let (version, action) = path.version()?;
    require_perm(&caller, Verb::Get, &scope)?;
    let export = match action.as_deref() {
        None => false,
        Some("export") => true,
        Some(a) => return Err(no_action(a)),
    };
    let v = state
        .read(move |r| {
            let v = require::<Version>(r, &scope, &version_key_name(&name, &version))?;
            if export {
                return Ok(Err(v));
            }
            with_status(r, &scope, Version::present(v)).map(Ok)
        })
        .await?;
    match v {
        Ok(shown) => Ok(object_response(StatusCode::OK, &shown)),
        Err(stored) => Ok(Json(export_document(&domain_version(&stored))).into_response()),
    }
}

/// `DELETE .../versions/{version}`: 204; deleting the last version deletes the profile.
pub async fn delete_version(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ProfilePath>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let scope = path.scope();
    let name = path.name()?;
    let (version, action) = path.version()?;
    if let Some(a) = action {
        return Err(no_action(&a));
    }
    require_perm(&caller, Verb::Delete, &scope)?;
    let pre = precondition(&headers)?;
    state
        .write(&caller, move |tx| {
            remove::<Version>(tx, &scope, &version_key_name(&name, &version), pre)?;
            if version_names(&*tx.ops, &scope, &name)?.is_empty()
                && load::<Profile>(&*tx.ops, &scope, &name)?.is_some()
            {
                remove::<Profile>(tx, &scope, &name, None)?;
            }
            Ok(())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Body of `POST .../versions/{version}:render`.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct RenderRequest {
    /// Variable values by name (absent ones take the default).
    #[serde(default)]
    pub values: BTreeMap<String, String>,
    /// The cluster's system values.
    #[serde(default)]
    pub cluster: Option<SystemValues>,
}

/// `POST .../versions/{version}:render`: the layers rendered with the given values, the scope's
/// macros and the given system values. A sensitive variable the request does not give renders as
/// `********` (its stored default is write-only).
pub async fn render(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ProfilePath>,
    json::Json(body): json::Json<RenderRequest>,
) -> ApiResult<Response> {
    let scope = path.scope();
    let name = path.name()?;
    let (version, action) = path.version()?;
    match action.as_deref() {
        Some("render") => {}
        Some(a) => return Err(no_action(a)),
        None => {
            return Err(ApiError::new(
                ErrorCode::MethodNotAllowed,
                "POST on a version needs an action: .../versions/{version}:render",
            ));
        }
    }
    require_perm(&caller, Verb::Get, &scope)?;
    let (stored, macros) = state
        .read(move |r| {
            let v = require::<Version>(r, &scope, &version_key_name(&name, &version))?;
            let m = resolved_macros(r, &scope)?;
            Ok((v, m))
        })
        .await?;
    let pv = domain_version(&stored);
    let mut values = body.values;
    let mut problems = Vec::new();
    for def in pv.spec.variables.iter().filter(|d| d.sensitive) {
        if values.contains_key(&def.name) || def.default_value.is_empty() {
            continue;
        }
        if validate_value(def, MASK).is_ok() {
            values.insert(def.name.clone(), MASK.to_owned());
        } else {
            problems.push(FieldError::new(
                format!("values.{}", def.name),
                "is sensitive and its default is write-only: give a value for the preview",
            ));
        }
    }
    if !problems.is_empty() {
        return Err(DomainError::validation(problems).into());
    }
    let system = body.cluster.unwrap_or_default();
    let layers = render_version(&pv, &values, &macros, &system)?;
    Ok(Json(serde_json::json!({ "layers": layers })).into_response())
}

/// Reads an import document: a JSON body, or the first file of a `multipart/form-data` upload.
async fn import_body(req: Request, state: &AppState) -> ApiResult<bytes::Bytes> {
    let multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| {
            ct.trim_start()
                .to_ascii_lowercase()
                .starts_with("multipart/form-data")
        });
    if !multipart {
        return JsonBytes::from_request(req, state).await.map(|b| b.0);
    }
    let bad = |e: axum::extract::multipart::MultipartError| {
        let status = e.status();
        if status == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::new(ErrorCode::PayloadTooLarge, e.body_text())
        } else {
            ApiError::field("", format!("malformed multipart body: {}", e.body_text()))
        }
    };
    let mut form = Multipart::from_request(req, state)
        .await
        .map_err(|e| ApiError::field("", format!("malformed multipart body: {}", e.body_text())))?;
    while let Some(field) = form.next_field().await.map_err(bad)? {
        if field.file_name().is_some() || field.name() == Some("file") {
            return field.bytes().await.map_err(bad);
        }
    }
    Err(ApiError::field(
        "file",
        "the multipart body has no file field",
    ))
}

/// `POST .../profiles:import`: creates one version from a Palette or Fleetplane document.
pub async fn import(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ProfilePath>,
    req: Request,
) -> ApiResult<Response> {
    let scope = path.scope();
    require_perm(&caller, Verb::Create, &scope)?;
    let bytes = import_body(req, &state).await?;
    let imported = import_document(&bytes)?;
    let name = imported.version.metadata.name.clone();
    let version = imported.version.spec.version.clone();
    validate_name("metadata.name", &name)?;
    parse_version(&version).map_err(|e| ApiError::field("spec.version", e))?;
    let (shown, rewrites, warnings, format) = state
        .write(&caller, move |tx| {
            require_project(&*tx.ops, &scope)?;
            let key = version_key(&scope, &name, &version);
            if tx.ops.get(&key)?.is_some() {
                return Err(already_exists(&name, &version));
            }
            if let Some(p) = load::<Profile>(&*tx.ops, &scope, &name)? {
                check_profile_type(
                    &name,
                    p.spec.profile_type,
                    p.spec.cloud_type,
                    &imported.version.spec,
                )
                .map_err(|mut e| {
                    for f in &mut e.errors {
                        f.field = f.field.replacen("spec.", "spec.template.", 1);
                    }
                    e
                })?;
            }
            let custom = custom_packs(&*tx.ops)?;
            imported.validate(&Catalog::with_custom(&custom))?;
            let mut metadata = imported.version.metadata.clone();
            metadata.name = key.name;
            let obj = ObjectOf::<Version> {
                kind: String::new(),
                metadata,
                spec: imported.version.spec.clone(),
                status: VersionStatus::default(),
            };
            let (shown, _) = save_version(tx, &scope, obj, None)?;
            Ok((shown, imported.rewrites, imported.warnings, imported.format))
        })
        .await?;
    let body = serde_json::json!({
        "format": format,
        "rewrites": rewrites,
        "warnings": warnings,
        "version": shown,
    });
    Ok((StatusCode::CREATED, Json(body)).into_response())
}

/// Registers the profile routes at tenant and project scope.
pub fn routes(r: &mut Routes) {
    for base in ["/v1", "/v1/projects/{project}"] {
        let c = format!("{base}/profiles");
        r.add(&c, &[Method::GET], get(resource::list::<Profile>));
        r.add(
            &format!("{c}:import"),
            &[Method::POST],
            axum::routing::post(import),
        );
        r.add(
            &format!("{c}/{{name}}"),
            &[Method::GET],
            get(resource::get::<Profile>),
        );
        r.add(
            &format!("{c}/{{name}}/versions"),
            &[Method::GET, Method::POST],
            get(list_versions).post(create_version),
        );
        let v = format!("{c}/{{name}}/versions/{{version}}");
        r.add(
            &v,
            &[Method::GET, Method::PUT, Method::DELETE],
            get(get_version)
                .put(put_version)
                .delete(delete_version)
                .post(render),
        );
        // Served by the route above, which dispatches on the suffix (matchit cannot match a
        // literal after a parameter in one segment); documented as their own paths.
        r.operations.push((Method::GET, format!("{v}:export")));
        r.operations.push((Method::POST, format!("{v}:render")));
    }
}
