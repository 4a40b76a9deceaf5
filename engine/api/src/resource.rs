//! The generic object API: `PUT` (create or replace), `GET`, list and `DELETE` for every kind,
//! with ETags, `If-Match`, pagination, label selectors, audit entries and change events.
//!
//! A kind plugs in by implementing [`ApiKind`]: its spec and status types, its permission
//! resource, and hooks that run inside the write transaction (validation, references, delete
//! rules). Everything else is shared, so every kind behaves the same way.

use crate::audit::ChangeEvent;
use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json;
use crate::json::Query;
use crate::state::{AppState, Tx};
use axum::Json;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use base64::Engine;
use fleetplane_domain::authz::{Permission, Resource, Verb};
use fleetplane_domain::{DomainError, ErrorCode, LabelSelector, Metadata, Object, Problems};
use fleetplane_store::{
    Kind, ListQuery, ObjectKey, Precondition, ReadOps, Record, Reference, Scope, WriteExt,
};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// An object of kind `K` as the API shows it.
pub type ObjectOf<K> = Object<<K as ApiKind>::Spec, <K as ApiKind>::Status>;

/// A kind served by the generic object API.
pub trait ApiKind: Send + Sync + 'static {
    /// The API kind name (`Project`).
    const KIND: &'static str;
    /// The store collection.
    const STORE: Kind;
    /// The permission resource.
    const RESOURCE: Resource;
    /// The user's desired state.
    type Spec: Serialize + DeserializeOwned + Clone + Send + Sync + 'static;
    /// The observed state.
    type Status: Serialize + DeserializeOwned + Default + Clone + Send + Sync + 'static;

    /// Validates and completes `new` inside the write transaction; `old` is the stored object
    /// when replacing. Return every problem at once.
    ///
    /// # Errors
    /// A domain error with its code and field paths.
    fn admit(
        _tx: &mut Tx<'_>,
        _scope: &Scope,
        _new: &mut ObjectOf<Self>,
        _old: Option<&ObjectOf<Self>>,
    ) -> ApiResult<()> {
        Ok(())
    }

    /// Runs after the object was stored, in the same transaction: starts the work the change
    /// needs (a cluster's deploy run, a template's rollout). `obj` is the stored object (not
    /// masked); a hook that writes it again returns the new resource version.
    ///
    /// # Errors
    /// A domain error; nothing of the transaction is written then.
    fn after_write(
        _tx: &mut Tx<'_>,
        _scope: &Scope,
        _obj: &mut ObjectOf<Self>,
        _old: Option<&ObjectOf<Self>>,
    ) -> ApiResult<Option<u64>> {
        Ok(None)
    }

    /// The references the object holds (for "in use" checks without scans).
    fn references(_scope: &Scope, _obj: &ObjectOf<Self>) -> Vec<Reference> {
        Vec::new()
    }

    /// Checks (and cascades) a delete inside the write transaction.
    ///
    /// # Errors
    /// A domain error (for example `PolicyInUse`).
    fn before_delete(_tx: &mut Tx<'_>, _scope: &Scope, _obj: &ObjectOf<Self>) -> ApiResult<()> {
        Ok(())
    }

    /// Whether [`ApiKind::observe`] reads a bounded handful of objects, so that `GET` runs
    /// it on the request's own thread ([`AppState::read_now`]). A kind whose observation can
    /// grow with the fleet says `false` and is read on the blocking pool.
    const OBSERVE_IS_SMALL: bool = true;

    /// Completes an object read for a client with what is computed at read time (status from
    /// the reference index or other objects), inside the read snapshot of `GET` and list.
    ///
    /// # Errors
    /// Store failures.
    fn observe(_r: &dyn ReadOps, _scope: &Scope, obj: ObjectOf<Self>) -> ApiResult<ObjectOf<Self>> {
        Ok(obj)
    }

    /// [`ApiKind::observe`] over a list page, in the same snapshot. Kinds whose observation
    /// reads other objects shared by many items (a cluster's template and policy) override it
    /// to read them once per page.
    ///
    /// # Errors
    /// Store failures.
    fn observe_page(
        r: &dyn ReadOps,
        scope: &Scope,
        objs: Vec<ObjectOf<Self>>,
    ) -> ApiResult<Vec<ObjectOf<Self>>> {
        objs.into_iter()
            .map(|o| Self::observe(r, scope, o))
            .collect()
    }

    /// The object as shown to clients and the audit log (sensitive values masked).
    fn present(obj: ObjectOf<Self>) -> ObjectOf<Self> {
        obj
    }

    /// The project an access check is made against (the object's own project by default).
    fn authz_project(scope: &Scope, _name: &str) -> Option<String> {
        scope.project().map(str::to_owned)
    }

    /// The API path of an object, for audit entries and events.
    fn api_path(scope: &Scope, name: &str) -> String;
}

/// Path parameters of object routes.
#[derive(Debug, Deserialize)]
pub struct ObjectPath {
    /// The project, on project-scope routes.
    pub project: Option<String>,
    /// The object name, on single-object routes.
    pub name: Option<String>,
}

impl ObjectPath {
    /// The scope named by the path.
    pub fn scope(&self) -> Scope {
        Scope::from_project(self.project.as_deref())
    }

    fn name(&self) -> ApiResult<&str> {
        self.name
            .as_deref()
            .ok_or_else(|| ApiError::internal("route without a name"))
    }
}

/// Decodes a stored record into the API object, filling server-owned metadata.
///
/// # Errors
/// `Internal` when the record does not decode.
pub fn from_record<K: ApiKind>(rec: &Record) -> ApiResult<ObjectOf<K>> {
    let mut obj: ObjectOf<K> = rec.decode()?;
    obj.kind = K::KIND.to_owned();
    obj.metadata.resource_version = rec.resource_version.to_string();
    obj.metadata.project = rec.key.scope.project().map(str::to_owned);
    Ok(obj)
}

/// Reads one object of kind `K`.
///
/// # Errors
/// `Internal` on decode failures; store errors.
pub fn load<K: ApiKind>(
    r: &dyn ReadOps,
    scope: &Scope,
    name: &str,
) -> ApiResult<Option<ObjectOf<K>>> {
    r.get(&ObjectKey::new(scope.clone(), K::STORE, name))?
        .map(|rec| from_record::<K>(&rec))
        .transpose()
}

/// A decoded object shared by every reader of the same stored record, with that record's
/// digest. It dereferences to the object and serializes as the digest (hex), which names the
/// content exactly: a memo key built from it needs no serialization of the object.
#[derive(Debug)]
pub(crate) struct Shared<T> {
    value: std::sync::Arc<T>,
    digest: [u8; 32],
}

impl<T> Clone for Shared<T> {
    fn clone(&self) -> Self {
        Self {
            value: self.value.clone(),
            digest: self.digest,
        }
    }
}

impl<T> std::ops::Deref for Shared<T> {
    type Target = T;
    fn deref(&self) -> &T {
        &self.value
    }
}

impl<T> Serialize for Shared<T> {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&hex::encode(self.digest))
    }
}

/// Reads one object of kind `K` and makes it a `T` through `memo`, which holds what was made
/// from each stored record by the record's digest (its key, resource version and bytes): for
/// objects read far more often than written — a template and its profile versions, read by
/// every cluster's render — the JSON is decoded once per content, not once per read. A hit is
/// exactly what a miss would make: a record written by a transaction that was then rolled back
/// has other bytes or another key, so it cannot be mistaken for a committed one.
///
/// # Errors
/// `Internal` on decode failures; store errors.
pub(crate) fn load_shared<K: ApiKind, T: Send + Sync + 'static>(
    memo: &crate::memo::Memo<[u8; 32], std::sync::Arc<T>>,
    r: &dyn ReadOps,
    scope: &Scope,
    name: &str,
    make: impl FnOnce(ObjectOf<K>) -> T,
) -> ApiResult<Option<Shared<T>>> {
    let Some(rec) = r.get(&ObjectKey::new(scope.clone(), K::STORE, name))? else {
        return Ok(None);
    };
    let digest = crate::memo::record_digest(&rec);
    let value = memo.get_or_try(digest, || {
        from_record::<K>(&rec).map(|obj| std::sync::Arc::new(make(obj)))
    })?;
    Ok(Some(Shared { value, digest }))
}

/// Reads one object of kind `K` or answers `NotFound`.
///
/// # Errors
/// `NotFound`; store errors.
pub fn require<K: ApiKind>(r: &dyn ReadOps, scope: &Scope, name: &str) -> ApiResult<ObjectOf<K>> {
    load::<K>(r, scope, name)?.ok_or_else(|| ApiError::not_found(K::KIND, name))
}

/// Checks that the project of a project-scope path exists (404 otherwise, like any object the
/// caller cannot see).
///
/// # Errors
/// `NotFound`.
pub fn require_project(r: &dyn ReadOps, scope: &Scope) -> ApiResult<()> {
    if let Scope::Project(p) = scope
        && r.get(&ObjectKey::tenant(
            fleetplane_store::tables::kinds::PROJECT,
            p,
        ))?
        .is_none()
    {
        return Err(ApiError::not_found("project", p));
    }
    Ok(())
}

/// Serializes a value for the audit log.
pub fn to_json<T: Serialize>(v: &T) -> ApiResult<serde_json::Value> {
    serde_json::to_value(v).map_err(|e| ApiError::internal(e.to_string()))
}

/// An object response with its `ETag`.
pub fn object_response<T: Serialize>(
    status: StatusCode,
    obj: &Object<T, impl Serialize>,
) -> Response {
    let mut res = (status, Json(obj)).into_response();
    if let Ok(v) = HeaderValue::from_str(&format!("\"{}\"", obj.metadata.resource_version)) {
        res.headers_mut().insert(header::ETAG, v);
    }
    res
}

/// The precondition of `If-Match` / `If-None-Match`.
///
/// # Errors
/// `ValidationFailed` for an unparsable header.
pub fn precondition(headers: &HeaderMap) -> ApiResult<Option<Precondition>> {
    if let Some(v) = headers.get(header::IF_MATCH) {
        let s = v.to_str().unwrap_or_default().trim();
        if s == "*" {
            return Ok(Some(Precondition::MustExist));
        }
        let rv = s
            .trim_start_matches("W/")
            .trim_matches('"')
            .parse::<u64>()
            .map_err(|_| {
                ApiError::field(
                    "If-Match",
                    "expected the ETag (resourceVersion) of the object",
                )
            })?;
        return Ok(Some(Precondition::Version(rv)));
    }
    if headers
        .get(header::IF_NONE_MATCH)
        .is_some_and(|v| v.as_bytes() == b"*")
    {
        return Ok(Some(Precondition::MustNotExist));
    }
    Ok(None)
}

fn stale(e: ApiError) -> ApiError {
    match e.error.code {
        ErrorCode::Conflict => ApiError::new(
            ErrorCode::PreconditionFailed,
            "the object changed since you read it (If-Match)",
        ),
        ErrorCode::AlreadyExists => ApiError::new(
            ErrorCode::PreconditionFailed,
            format!("{} (If-None-Match: *)", e.error.detail),
        ),
        _ => e,
    }
}

/// The change event of object `name` of kind `K` (`dev.fleetplane.<kind>.<verb>`).
pub fn change_event<K: ApiKind>(
    tx: &Tx<'_>,
    scope: &Scope,
    name: &str,
    verb: &str,
    rv: Option<u64>,
) -> ChangeEvent {
    ChangeEvent {
        id: 0,
        event_type: format!("dev.fleetplane.{}.{verb}", K::KIND.to_ascii_lowercase()),
        subject: K::api_path(scope, name),
        time: tx.now,
        project: scope.project().map(str::to_owned),
        resource: K::RESOURCE,
        data: serde_json::json!({
            "kind": K::KIND,
            "name": name,
            "project": scope.project(),
            "resourceVersion": rv.map(|v| v.to_string()),
        }),
    }
}

/// Creates or replaces an object inside a transaction: runs the kind's hooks, writes it with
/// its references, and records the audit entry and the change event. Returns the object as
/// shown to clients and whether it was created.
///
/// # Errors
/// Validation and rule errors from the kind; `PreconditionFailed` on a stale `If-Match`.
pub fn upsert<K: ApiKind>(
    tx: &mut Tx<'_>,
    scope: &Scope,
    mut obj: ObjectOf<K>,
    pre: Option<Precondition>,
) -> ApiResult<(ObjectOf<K>, bool)> {
    let name = obj.metadata.name.clone();
    let key = ObjectKey::new(scope.clone(), K::STORE, name.clone());
    let old = match tx.ops.get(&key)? {
        Some(rec) => Some(from_record::<K>(&rec)?),
        None => None,
    };
    let pre = match (pre, &old) {
        (Some(p), _) => p,
        (None, Some(o)) => Precondition::Version(o.metadata.resource_version.parse().unwrap_or(0)),
        (None, None) => Precondition::MustNotExist,
    };
    match (&pre, &old) {
        (Precondition::Version(_) | Precondition::MustExist, None) => {
            return Err(ApiError::new(
                ErrorCode::PreconditionFailed,
                format!("{} \"{name}\" does not exist (If-Match)", K::KIND),
            ));
        }
        (Precondition::MustNotExist, Some(_))
            if pre == Precondition::MustNotExist && old.is_some() => {}
        _ => {}
    }
    // Server-owned metadata.
    obj.kind = K::KIND.to_owned();
    obj.metadata.project = scope.project().map(str::to_owned);
    match &old {
        Some(o) => {
            obj.metadata.uid = o.metadata.uid.clone();
            obj.metadata.created_at = o.metadata.created_at;
            obj.status = o.status.clone();
        }
        None => {
            obj.metadata.uid = uuid::Uuid::now_v7().to_string();
            obj.metadata.created_at = Some(tx.now);
            obj.status = K::Status::default();
        }
    }
    obj.metadata.updated_at = Some(tx.now);
    K::admit(tx, scope, &mut obj, old.as_ref())?;
    let refs = K::references(scope, &obj);
    let mut stored = obj.clone();
    stored.metadata.resource_version = String::new();
    let mut rv = tx
        .ops
        .put_as(&key, &stored, pre, &refs)
        .map_err(|e| stale(e.into()))?;
    obj.metadata.resource_version = rv.to_string();
    if let Some(again) = K::after_write(tx, scope, &mut obj, old.as_ref())? {
        rv = again;
        obj.metadata.resource_version = rv.to_string();
    }
    let shown = K::present(obj);
    let before = old.map(|o| to_json(&K::present(o))).transpose()?;
    let created = before.is_none();
    let action = if created { "create" } else { "update" };
    tx.audit(
        action,
        &K::api_path(scope, &name),
        scope.project(),
        before,
        Some(to_json(&shown)?),
    )?;
    let ev = change_event::<K>(
        tx,
        scope,
        &name,
        if created { "created" } else { "updated" },
        Some(rv),
    );
    tx.changed(ev);
    Ok((shown, created))
}

/// Deletes an object inside a transaction after the kind's checks, with audit and event.
///
/// # Errors
/// `NotFound`, `PreconditionFailed`, or the kind's rule errors.
pub fn remove<K: ApiKind>(
    tx: &mut Tx<'_>,
    scope: &Scope,
    name: &str,
    pre: Option<Precondition>,
) -> ApiResult<ObjectOf<K>> {
    let key = ObjectKey::new(scope.clone(), K::STORE, name);
    let old = require::<K>(&*tx.ops, scope, name)?;
    K::before_delete(tx, scope, &old)?;
    tx.ops
        .delete(&key, pre.unwrap_or(Precondition::Any))
        .map_err(|e| stale(e.into()))?;
    let shown = K::present(old);
    tx.audit(
        "delete",
        &K::api_path(scope, name),
        scope.project(),
        Some(to_json(&shown)?),
        None,
    )?;
    let ev = change_event::<K>(tx, scope, name, "deleted", None);
    tx.changed(ev);
    Ok(shown)
}

/// Decodes a `PUT` body for kind `K`, checking `kind` and `metadata.name` against the path and
/// validating the metadata. Every problem is reported at once.
///
/// # Errors
/// `ValidationFailed` with field paths.
pub fn decode_put<K: ApiKind>(body: &[u8], name: &str) -> ApiResult<ObjectOf<K>> {
    // `status` is the server's: accept whatever a GET returned and drop it before decoding.
    let mut value: serde_json::Value = json::decode(body)?;
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
    }
    let mut obj: ObjectOf<K> = json::decode_value(value)?;
    let mut problems = Problems::new();
    if !obj.kind.is_empty() && obj.kind != K::KIND {
        problems.push(
            "kind",
            format!("expected {:?}, got {:?}", K::KIND, obj.kind),
        );
    }
    if obj.metadata.name.is_empty() {
        obj.metadata.name = name.to_owned();
    } else if obj.metadata.name != name {
        problems.push(
            "metadata.name",
            format!("does not match the name in the path ({name:?})"),
        );
    }
    obj.metadata.validate(&mut problems);
    problems.finish()?;
    Ok(obj)
}

/// `PUT .../{name}`: 201 when created, 200 when replaced.
pub async fn put<K: ApiKind>(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ObjectPath>,
    headers: HeaderMap,
    json::JsonBytes(body): json::JsonBytes,
) -> ApiResult<Response> {
    let scope = path.scope();
    let name = path.name()?.to_owned();
    let authz = K::authz_project(&scope, &name);
    // Decide create vs update for the permission check from the current state.
    let exists = {
        let (s, n) = (scope.clone(), name.clone());
        state
            .read(move |r| Ok(r.get(&ObjectKey::new(s, K::STORE, n))?.is_some()))
            .await?
    };
    let verb = if exists { Verb::Update } else { Verb::Create };
    // Creating an object that is itself a scope (a project) is decided in the enclosing scope:
    // a caller with no role in a project that does not exist yet is forbidden, not blind.
    let authz = if exists {
        authz
    } else {
        scope.project().map(str::to_owned)
    };
    caller.require(Permission::new(K::RESOURCE, verb), authz.as_deref())?;
    let obj = decode_put::<K>(&body, &name)?;
    let pre = precondition(&headers)?;
    let (shown, created) = state
        .write(&caller, move |tx| {
            require_project(&*tx.ops, &scope)?;
            upsert::<K>(tx, &scope, obj, pre)
        })
        .await?;
    Ok(object_response(
        if created {
            StatusCode::CREATED
        } else {
            StatusCode::OK
        },
        &shown,
    ))
}

/// `GET .../{name}`.
pub async fn get<K: ApiKind>(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ObjectPath>,
) -> ApiResult<Response> {
    let scope = path.scope();
    let name = path.name()?.to_owned();
    caller.require(
        Permission::new(K::RESOURCE, Verb::Get),
        K::authz_project(&scope, &name).as_deref(),
    )?;
    let read = move |r: &dyn ReadOps| K::observe(r, &scope, require::<K>(r, &scope, &name)?);
    let obj = if K::OBSERVE_IS_SMALL {
        state.read_now(read)?
    } else {
        state.read(read).await?
    };
    Ok(object_response(StatusCode::OK, &K::present(obj)))
}

/// `DELETE .../{name}`: 204.
pub async fn delete<K: ApiKind>(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ObjectPath>,
    headers: HeaderMap,
) -> ApiResult<StatusCode> {
    let scope = path.scope();
    let name = path.name()?.to_owned();
    caller.require(
        Permission::new(K::RESOURCE, Verb::Delete),
        K::authz_project(&scope, &name).as_deref(),
    )?;
    let pre = precondition(&headers)?;
    state
        .write(&caller, move |tx| {
            remove::<K>(tx, &scope, &name, pre).map(|_| ())
        })
        .await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Query of list endpoints.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// Page size (capped).
    pub limit: Option<usize>,
    /// Token from the previous page.
    #[serde(rename = "continue")]
    pub cont: Option<String>,
    /// Kubernetes-style label selector.
    #[serde(rename = "labelSelector")]
    pub label_selector: Option<String>,
}

/// How many records one list request examines at most when a selector filters them; past it
/// the page is returned short, with a `continue` token.
const LIST_SCAN_BUDGET: usize = 5_000;

/// Encodes a continue token.
pub fn encode_continue(name: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(name)
}

/// Decodes a continue token.
///
/// # Errors
/// `ValidationFailed` at `continue`.
pub fn decode_continue(token: &str) -> ApiResult<String> {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .ok()
        .and_then(|b| String::from_utf8(b).ok())
        .ok_or_else(|| ApiError::field("continue", "invalid continue token"))
}

/// Lists objects of `K` in `scope` whose names start with `prefix`, filtered by the label
/// selector and `keep`, one page at a time.
///
/// # Errors
/// `ValidationFailed` for bad parameters; store errors.
pub fn list_page<K: ApiKind>(
    r: &dyn ReadOps,
    scope: &Scope,
    prefix: &str,
    params: &ListParams,
    max_page: usize,
    keep: &dyn Fn(&ObjectOf<K>) -> bool,
) -> ApiResult<(Vec<ObjectOf<K>>, Option<String>)> {
    let limit = params.limit.unwrap_or(max_page).clamp(1, max_page);
    let selector = match &params.label_selector {
        Some(s) => LabelSelector::parse("labelSelector", s)?,
        None => LabelSelector::default(),
    };
    let mut after = params.cont.as_deref().map(decode_continue).transpose()?;
    let mut items = Vec::new();
    let mut scanned = 0;
    loop {
        let page = r.list(&ListQuery {
            scope: scope.clone(),
            kind: K::STORE,
            name_prefix: prefix.to_owned(),
            after: after.clone(),
            limit: (limit - items.len()).max(1),
        })?;
        for rec in &page.items {
            scanned += 1;
            after = Some(rec.key.name.clone());
            let obj = from_record::<K>(rec)?;
            if selector.matches(&obj.metadata.labels) && keep(&obj) {
                items.push(K::present(obj));
            }
        }
        let done = page.next.is_none();
        if done {
            return Ok((items, None));
        }
        if items.len() >= limit || scanned >= LIST_SCAN_BUDGET {
            return Ok((items, after.as_deref().map(encode_continue)));
        }
    }
}

/// A list answer: `{"items": [...], "continue": "..."}`.
pub fn list_response<T: Serialize>(items: Vec<T>, next: Option<String>) -> Response {
    /// Serialized straight to the body (no `serde_json::Value` in between: a 500-cluster page
    /// spent a quarter of its time building one).
    #[derive(Serialize)]
    struct ListBody<T> {
        items: Vec<T>,
        #[serde(rename = "continue", skip_serializing_if = "Option::is_none")]
        next: Option<String>,
    }
    Json(ListBody { items, next }).into_response()
}

/// `GET .../{kind}`.
pub async fn list<K: ApiKind>(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<BTreeMap<String, String>>,
    Query(params): Query<ListParams>,
) -> ApiResult<Response> {
    let scope = Scope::from_project(path.get("project").map(String::as_str));
    let project_gate = scope.project().map(str::to_owned);
    // Listing tenant-wide collections whose objects are projects is filtered per object.
    let per_object = scope.project().is_none() && K::authz_project(&scope, "x").is_some();
    if !per_object {
        caller.require(
            Permission::new(K::RESOURCE, Verb::List),
            project_gate.as_deref(),
        )?;
    }
    let max = state.settings.max_page;
    let c = caller.clone();
    let (items, next) = state
        .read(move |r| {
            require_project(r, &scope)?;
            let keep = |o: &ObjectOf<K>| {
                !per_object
                    || c.can(
                        Permission::new(K::RESOURCE, Verb::Get),
                        K::authz_project(&scope, &o.metadata.name).as_deref(),
                    )
            };
            let (items, next) = list_page::<K>(r, &scope, "", &params, max, &keep)?;
            Ok((K::observe_page(r, &scope, items)?, next))
        })
        .await?;
    Ok(list_response(items, next))
}

/// A rule error without a field, for kinds' hooks.
pub fn rule(code: ErrorCode, detail: impl Into<String>) -> ApiError {
    DomainError::new(code, detail).into()
}

/// Metadata helper for objects the server creates itself.
pub fn new_metadata(name: &str) -> Metadata {
    Metadata {
        name: name.to_owned(),
        ..Metadata::default()
    }
}
