//! The pack catalog (DESIGN §4.1): `GET /v1/packs` and `/v1/packs/{name}` show the built-in packs
//! merged with the tenant's custom ones; `PUT`/`DELETE /v1/packs/{name}` manage custom packs.
//!
//! There is no `pack` permission resource: packs are part of the profile catalog, so reading
//! needs `clusterProfile.list`/`get` (every tenant member) and writing `clusterProfile.create`,
//! `update` or `delete` at tenant scope (tenant admins).

use crate::Routes;
use crate::auth::Caller;
use crate::error::ApiResult;
use crate::json::Query;
use crate::resource::{
    self, ApiKind, ListParams, ObjectOf, decode_continue, encode_continue, from_record,
    list_response, object_response, require,
};
use crate::state::{AppState, Tx};
use axum::extract::{Path, State};
use axum::http::{Method, StatusCode};
use axum::response::Response;
use axum::routing::get;
use fleetplane_domain::authz::{Permission, Resource, Verb};
use fleetplane_domain::profile::{Catalog, Pack, PackSpec, validate_custom_pack};
use fleetplane_domain::{ErrorCode, LabelSelector, NoStatus};
use fleetplane_store::tables::kinds;
use fleetplane_store::{ListQuery, ReadOps, Reference, Scope};

/// The reference a version holds to the pack named `name`.
pub fn uses_pack(name: &str) -> Reference {
    crate::refs::to(crate::refs::USES_PACK, &Scope::Tenant, kinds::PACK, name)
}

/// Custom packs registered by tenant admins.
pub struct CustomPack;

impl ApiKind for CustomPack {
    const KIND: &'static str = "Pack";
    const STORE: fleetplane_store::Kind = kinds::PACK;
    const RESOURCE: Resource = Resource::ClusterProfile;
    type Spec = PackSpec;
    type Status = NoStatus;

    fn admit(
        _: &mut Tx<'_>,
        _: &Scope,
        new: &mut ObjectOf<Self>,
        _: Option<&ObjectOf<Self>>,
    ) -> ApiResult<()> {
        validate_custom_pack(new)?;
        new.sort_versions();
        Ok(())
    }

    fn before_delete(tx: &mut Tx<'_>, _: &Scope, obj: &ObjectOf<Self>) -> ApiResult<()> {
        let users = tx.ops.referrers(&uses_pack(&obj.metadata.name), 10)?;
        if let Some(first) = users.first() {
            let (profile, version) = first.name.split_once('/').unwrap_or((&first.name, ""));
            return Err(resource::rule(
                ErrorCode::Conflict,
                format!(
                    "pack {:?} is used by profile {profile:?} version {version}{}; delete those \
                     versions first",
                    obj.metadata.name,
                    if users.len() > 1 { " and others" } else { "" }
                ),
            ));
        }
        Ok(())
    }

    fn api_path(_: &Scope, name: &str) -> String {
        format!("packs/{name}")
    }
}

/// Every custom pack of the tenant.
///
/// # Errors
/// Store errors; `Internal` when a record does not decode.
pub fn custom_packs(r: &dyn ReadOps) -> ApiResult<Vec<Pack>> {
    let mut out = Vec::new();
    let mut after = None;
    loop {
        let page = r.list(&ListQuery {
            scope: Scope::Tenant,
            kind: kinds::PACK,
            name_prefix: String::new(),
            after: after.take(),
            limit: 1000,
        })?;
        for rec in &page.items {
            out.push(from_record::<CustomPack>(rec)?);
        }
        match page.next {
            Some(n) => after = Some(n),
            None => return Ok(out),
        }
    }
}

fn shown(p: &Pack) -> Pack {
    let mut p = p.clone();
    p.kind = CustomPack::KIND.to_owned();
    p
}

/// `GET /v1/packs`: built-in and custom packs by name, with `limit`, `continue` and
/// `labelSelector` (built-ins carry `fleetplane.io/builtin: "true"`).
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(params): Query<ListParams>,
) -> ApiResult<Response> {
    caller.require(Permission::new(Resource::ClusterProfile, Verb::List), None)?;
    let max = state.settings.max_page;
    let limit = params.limit.unwrap_or(max).clamp(1, max);
    let selector = match &params.label_selector {
        Some(s) => LabelSelector::parse("labelSelector", s)?,
        None => LabelSelector::default(),
    };
    let after = params.cont.as_deref().map(decode_continue).transpose()?;
    let custom = state.read(|r| custom_packs(r)).await?;
    let catalog = Catalog::with_custom(&custom);
    let mut matching = catalog
        .packs()
        .into_iter()
        .filter(|p| {
            after
                .as_deref()
                .is_none_or(|a| p.metadata.name.as_str() > a)
        })
        .filter(|p| selector.matches(&p.metadata.labels));
    let items: Vec<Pack> = matching.by_ref().take(limit).map(shown).collect();
    let next = match (matching.next(), items.last()) {
        (Some(_), Some(last)) => Some(encode_continue(&last.metadata.name)),
        _ => None,
    };
    Ok(list_response(items, next))
}

/// `GET /v1/packs/{name}`: a built-in pack, else a custom one.
pub async fn get_pack(
    State(state): State<AppState>,
    caller: Caller,
    Path(name): Path<String>,
) -> ApiResult<Response> {
    caller.require(Permission::new(Resource::ClusterProfile, Verb::Get), None)?;
    if let Some(p) = Catalog::builtin().get(&name) {
        return Ok(object_response(StatusCode::OK, &shown(p)));
    }
    let p = state
        .read(move |r| require::<CustomPack>(r, &Scope::Tenant, &name))
        .await?;
    Ok(object_response(StatusCode::OK, &p))
}

/// `DELETE /v1/packs/{name}`: built-in packs cannot be deleted.
pub async fn delete_pack(
    state: State<AppState>,
    caller: Caller,
    path: Path<resource::ObjectPath>,
    headers: axum::http::HeaderMap,
) -> ApiResult<StatusCode> {
    if let Some(name) = path.name.as_deref()
        && Catalog::is_builtin(name)
    {
        caller.require(
            Permission::new(Resource::ClusterProfile, Verb::Delete),
            None,
        )?;
        return Err(resource::rule(
            ErrorCode::Conflict,
            format!("{name:?} is a built-in pack and cannot be deleted"),
        ));
    }
    resource::delete::<CustomPack>(state, caller, path, headers).await
}

/// Registers the pack routes (tenant scope only).
pub fn routes(r: &mut Routes) {
    r.add("/v1/packs", &[Method::GET], get(list));
    r.add(
        "/v1/packs/{name}",
        &[Method::GET, Method::PUT, Method::DELETE],
        get(get_pack)
            .put(resource::put::<CustomPack>)
            .delete(delete_pack),
    );
}
