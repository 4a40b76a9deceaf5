//! Macros at tenant and project scope (`/v1[/projects/{p}]/macros/{name}`, DESIGN §4.4): named
//! values that layer templates reference as `{{ macro.NAME }}`. A project macro overrides a tenant
//! macro of the same name, which overrides a system macro.
//!
//! Macro names are identifiers (`region_name`, `DNS_ZONE`), not DNS labels, because templates
//! write `macro.NAME`; so `PUT` has its own decoding, and the rest is the generic object API.

use crate::Routes;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json;
use crate::resource::{
    self, ApiKind, ObjectOf, ObjectPath, from_record, object_response, precondition,
    require_project, upsert,
};
use crate::state::{AppState, Tx};
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use fleetplane_domain::authz::{Permission, Resource, Verb};
use fleetplane_domain::profile::macros::validate_macro;
use fleetplane_domain::profile::{Macro, MacroSpec, Macros};
use fleetplane_domain::{NoStatus, Problems};
use fleetplane_store::tables::kinds;
use fleetplane_store::{ListQuery, ObjectKey, ReadOps, Scope};

/// Macros.
pub struct MacroKind;

impl ApiKind for MacroKind {
    const KIND: &'static str = "Macro";
    const STORE: fleetplane_store::Kind = kinds::MACRO;
    const RESOURCE: Resource = Resource::Macro;
    type Spec = MacroSpec;
    type Status = NoStatus;

    fn admit(
        _: &mut Tx<'_>,
        _: &Scope,
        new: &mut ObjectOf<Self>,
        _: Option<&ObjectOf<Self>>,
    ) -> ApiResult<()> {
        validate_macro(&new.metadata.name, &new.spec)?;
        Ok(())
    }

    fn api_path(scope: &Scope, name: &str) -> String {
        match scope {
            Scope::Tenant => format!("macros/{name}"),
            Scope::Project(p) => format!("projects/{p}/macros/{name}"),
        }
    }
}

/// The macros of one scope.
fn scope_macros(r: &dyn ReadOps, scope: &Scope) -> ApiResult<Vec<Macro>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = r.list(&ListQuery {
            scope: scope.clone(),
            kind: kinds::MACRO,
            name_prefix: String::new(),
            after: after.take(),
            limit: 1000,
        })?;
        for rec in &page.items {
            let m = from_record::<MacroKind>(rec)?;
            out.push(Macro {
                name: m.metadata.name,
                value: m.spec.value,
            });
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

/// The macros a render in `scope` sees: the project's over the tenant's. No system macros are
/// configured yet.
///
/// # Errors
/// Store errors.
pub fn resolved_macros(r: &dyn ReadOps, scope: &Scope) -> ApiResult<Macros> {
    let tenant = scope_macros(r, &Scope::Tenant)?;
    let project = match scope {
        Scope::Tenant => Vec::new(),
        Scope::Project(_) => scope_macros(r, scope)?,
    };
    Ok(Macros::resolve(&[], &tenant, &project))
}

/// Decodes a macro `PUT` body: like [`resource::decode_put`], but the name is an identifier.
fn decode(body: &[u8], name: &str) -> ApiResult<ObjectOf<MacroKind>> {
    let mut value: serde_json::Value = json::decode(body)?;
    if let Some(map) = value.as_object_mut() {
        map.remove("status");
    }
    let mut obj: ObjectOf<MacroKind> = json::decode_value(value)?;
    let mut problems = Problems::new();
    if !obj.kind.is_empty() && obj.kind != MacroKind::KIND {
        problems.push(
            "kind",
            format!("expected {:?}, got {:?}", MacroKind::KIND, obj.kind),
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
    // Labels and description as for every object; the name is checked by `validate_macro`.
    let mut meta = obj.metadata.clone();
    meta.name = "x".to_owned();
    meta.validate(&mut problems);
    problems.finish()?;
    validate_macro(name, &obj.spec)?;
    Ok(obj)
}

/// `PUT .../macros/{name}`: 201 created, 200 replaced.
pub async fn put(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ObjectPath>,
    headers: HeaderMap,
    json::JsonBytes(body): json::JsonBytes,
) -> ApiResult<Response> {
    let scope = path.scope();
    let name = path.name.clone().unwrap_or_default();
    let exists = {
        let key = ObjectKey::new(scope.clone(), kinds::MACRO, name.clone());
        state.read(move |r| Ok(r.get(&key)?.is_some())).await?
    };
    let verb = if exists { Verb::Update } else { Verb::Create };
    caller.require(Permission::new(Resource::Macro, verb), scope.project())?;
    let obj = decode(&body, &name)?;
    let pre = precondition(&headers)?;
    let (shown, created) = state
        .write(&caller, move |tx| {
            require_project(&*tx.ops, &scope)?;
            upsert::<MacroKind>(tx, &scope, obj, pre)
        })
        .await?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok(object_response(status, &shown))
}

/// Registers the macro routes at tenant and project scope.
pub fn routes(r: &mut Routes) {
    use axum::http::Method;
    use axum::routing::get;
    for base in ["/v1", "/v1/projects/{project}"] {
        let c = format!("{base}/macros");
        r.add(&c, &[Method::GET], get(resource::list::<MacroKind>));
        r.add(
            &format!("{c}/{{name}}"),
            &[Method::GET, Method::PUT, Method::DELETE],
            get(resource::get::<MacroKind>)
                .put(put)
                .delete(resource::delete::<MacroKind>),
        );
    }
}
