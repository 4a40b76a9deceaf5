//! Maintenance policies at tenant and project scope (`/v1[/projects/{p}]/maintenance-policies`).

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::Query;
use crate::refs;
use crate::resource::{self, ApiKind, ObjectOf, ObjectPath};
use crate::state::{AppState, Tx};
use axum::Json;
use axum::extract::{Path, State};
use fleetplane_domain::authz::{Permission, Resource, Verb};
use fleetplane_domain::policy::{self, MaintenancePolicySpec, MaintenancePolicyStatus};
use fleetplane_store::tables::kinds;
use fleetplane_store::{ObjectKey, ReadOps, Scope};
use serde::Deserialize;

/// Maintenance policies.
pub struct MaintenancePolicy;

/// How many windows a policy shows in its status.
const STATUS_WINDOWS: usize = 3;

/// Whether any template linking the policy has clusters.
fn serves_clusters(r: &dyn ReadOps, scope: &Scope, name: &str) -> ApiResult<bool> {
    let uses = refs::to(refs::USES_POLICY, scope, kinds::MAINTENANCE_POLICY, name);
    for template in r.referrers(&uses, 10_000)? {
        let member = refs::to(
            refs::MEMBER_OF_TEMPLATE,
            &template.scope,
            kinds::CLUSTER_TEMPLATE,
            &template.name,
        );
        if !r.referrers(&member, 1)?.is_empty() {
            return Ok(true);
        }
    }
    Ok(false)
}

impl ApiKind for MaintenancePolicy {
    const KIND: &'static str = "MaintenancePolicy";
    const STORE: fleetplane_store::Kind = kinds::MAINTENANCE_POLICY;
    const RESOURCE: Resource = Resource::MaintenancePolicy;
    type Spec = MaintenancePolicySpec;
    type Status = MaintenancePolicyStatus;

    fn admit(
        tx: &mut Tx<'_>,
        scope: &Scope,
        new: &mut ObjectOf<Self>,
        _: Option<&ObjectOf<Self>>,
    ) -> ApiResult<()> {
        new.spec.calendar()?;
        let serving = serves_clusters(&*tx.ops, scope, &new.metadata.name)?;
        new.spec.check_in_use(serving)?;
        Ok(())
    }

    fn before_delete(tx: &mut Tx<'_>, scope: &Scope, obj: &ObjectOf<Self>) -> ApiResult<()> {
        let uses = refs::to(
            refs::USES_POLICY,
            scope,
            kinds::MAINTENANCE_POLICY,
            &obj.metadata.name,
        );
        let linking = tx.ops.referrers(&uses, 1)?;
        policy::check_delete(linking.first().map(|k| k.name.as_str()))?;
        Ok(())
    }

    fn present(mut obj: ObjectOf<Self>) -> ObjectOf<Self> {
        if let Ok(cal) = obj.spec.calendar() {
            obj.status.next_windows = cal.upcoming(
                jiff::Timestamp::now(),
                &jiff::tz::TimeZone::UTC,
                STATUS_WINDOWS,
            );
        }
        obj
    }

    fn api_path(scope: &Scope, name: &str) -> String {
        match scope {
            Scope::Tenant => format!("maintenance-policies/{name}"),
            Scope::Project(p) => format!("projects/{p}/maintenance-policies/{name}"),
        }
    }
}

/// The window of `policy` open at `at`, or else the next one, in zone `zone` (exclusions
/// honoured); `None` without a schedule or for an unknown zone.
pub fn window_at(
    policy: &fleetplane_domain::policy::MaintenancePolicySpec,
    zone: &str,
    at: jiff::Timestamp,
) -> Option<(jiff::Timestamp, jiff::Timestamp)> {
    let key = crate::memo::digest_of(&(policy, zone));
    // The answer computed at `from` holds for every instant in [from, end): the window was open
    // at `from` or the next one to open, so no other window starts before it ends.
    if let Some(known) = WINDOWS.get(&key)
        && known.from <= at
        && known.window.is_none_or(|(_, end)| at < end)
    {
        return known.window;
    }
    let cal = policy.calendar().ok()?;
    let tz = jiff::tz::TimeZone::get(zone).ok()?;
    let window = cal
        .open_at(at, &tz)
        .or_else(|| cal.next_start(at, &tz))
        .map(|w| (w.start, w.end));
    WINDOWS.insert(key, KnownWindow { from: at, window });
    window
}

/// A [`window_at`] answer and the instant it was computed for.
#[derive(Clone, Copy)]
struct KnownWindow {
    from: jiff::Timestamp,
    window: Option<(jiff::Timestamp, jiff::Timestamp)>,
}

/// The last answer per (policy, zone): a list page asks once per cluster, mostly for the same
/// few zones, and a far window takes a long calendar search (years of cron instants).
static WINDOWS: std::sync::LazyLock<crate::memo::Memo<[u8; 32], KnownWindow>> =
    std::sync::LazyLock::new(|| crate::memo::Memo::new(1024));

/// Query of the windows endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WindowsQuery {
    /// IANA zone the schedules are evaluated in (default UTC).
    zone: Option<String>,
    /// How many windows (default 5, at most 100).
    count: Option<usize>,
    /// Start from this instant (default now).
    after: Option<String>,
}

/// Parses an IANA zone name.
///
/// # Errors
/// `ValidationFailed` at `field`.
pub fn parse_zone(field: &str, zone: &str) -> ApiResult<jiff::tz::TimeZone> {
    jiff::tz::TimeZone::get(zone)
        .map_err(|_| ApiError::field(field, format!("{zone:?} is not an IANA time zone")))
}

/// `GET .../maintenance-policies/{name}/windows?zone=&count=&after=`: the next windows in a zone.
pub async fn windows(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ObjectPath>,
    Query(q): Query<WindowsQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let scope = path.scope();
    let name = path.name.clone().unwrap_or_default();
    caller.require(
        Permission::new(Resource::MaintenancePolicy, Verb::Get),
        scope.project(),
    )?;
    let zone_name = q.zone.unwrap_or_else(|| "UTC".to_owned());
    let tz = parse_zone("zone", &zone_name)?;
    let count = q.count.unwrap_or(5);
    if !(1..=100).contains(&count) {
        return Err(ApiError::field("count", "must be between 1 and 100"));
    }
    let after = match q.after {
        Some(a) => a
            .parse::<jiff::Timestamp>()
            .map_err(|_| ApiError::field("after", "is not an RFC 3339 instant"))?,
        None => jiff::Timestamp::now(),
    };
    let policy = state
        .read(move |r| resource::require::<MaintenancePolicy>(r, &scope, &name))
        .await?;
    let cal = policy.spec.calendar()?;
    let windows: Vec<serde_json::Value> = cal
        .upcoming(after, &tz, count)
        .into_iter()
        .map(|w| {
            serde_json::json!({
                "start": w.start,
                "end": w.end,
                "localStart": w.start.to_zoned(tz.clone()).to_string(),
                "localEnd": w.end.to_zoned(tz.clone()).to_string(),
            })
        })
        .collect();
    Ok(Json(
        serde_json::json!({ "zone": zone_name, "windows": windows }),
    ))
}

/// `GET /v1/maintenance-policies:presets`.
pub async fn presets(_caller: Caller) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "items": policy::presets() }))
}

/// The key of a policy named by a template's reference.
pub fn key(scope: &Scope, name: &str) -> ObjectKey {
    ObjectKey::new(scope.clone(), kinds::MAINTENANCE_POLICY, name)
}
