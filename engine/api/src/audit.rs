//! The audit log (`GET /v1/audit-events`) and change events (`GET /v1/events`, Server-Sent
//! Events carrying CloudEvents JSON).

use crate::auth::Caller;
use crate::error::{ApiError, ApiResult};
use crate::json::Query;
use crate::state::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use fleetplane_domain::authz::{Decision, Permission, Resource, Verb, decide};
use fleetplane_store::Log;
use futures::{Stream, StreamExt};
use serde::{Deserialize, Serialize};
use std::convert::Infallible;
use std::sync::Arc;
use tokio_stream::wrappers::BroadcastStream;

/// One audit record: who did what to which object, when, and the object before and after
/// (sensitive values masked).
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AuditEntry {
    /// Position in the log (filled when read).
    #[serde(default)]
    pub seq: u64,
    /// When.
    pub time: jiff::Timestamp,
    /// Who: `user:<name>` or `system`.
    pub actor: String,
    /// What: `create`, `update`, `delete`, `revoke`, `login`, …
    pub action: String,
    /// Which object, as its API path (`projects/default/clusters/dev`).
    pub resource: String,
    /// The object's project, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The object before.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<serde_json::Value>,
    /// The object after.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub after: Option<serde_json::Value>,
    /// The request that did it.
    pub request_id: String,
}

/// A change to an object, as a CloudEvents 1.0 JSON event.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct ChangeEvent {
    /// Position in the event log (the SSE id); filled at commit.
    #[serde(skip)]
    pub id: u64,
    /// `dev.fleetplane.<kind>.<created|updated|deleted>`, or a run lifecycle type.
    #[serde(rename = "type")]
    pub event_type: String,
    /// The object's API path.
    pub subject: String,
    /// When.
    pub time: jiff::Timestamp,
    /// The object's project (decides who may see the event).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// The permission resource of the object.
    pub resource: Resource,
    /// Details: kind, name, resourceVersion, and whatever the producer adds.
    pub data: serde_json::Value,
}

impl ChangeEvent {
    /// The CloudEvents JSON form.
    pub fn cloud_event(&self) -> serde_json::Value {
        serde_json::json!({
            "specversion": "1.0",
            "id": self.id.to_string(),
            "source": "/v1",
            "type": self.event_type,
            "subject": self.subject,
            "time": self.time,
            "datacontenttype": "application/json",
            "data": self.data,
        })
    }

    fn visible_to(&self, caller: &Caller) -> bool {
        let p = Permission::new(self.resource, Verb::Get);
        decide(&caller.grants, p, self.project.as_deref()) == Decision::Allow
    }
}

/// Filters of the audit listing.
#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct AuditQuery {
    actor: Option<String>,
    action: Option<String>,
    /// Prefix of the resource path.
    resource: Option<String>,
    project: Option<String>,
    since: Option<jiff::Timestamp>,
    until: Option<jiff::Timestamp>,
    limit: Option<usize>,
    #[serde(rename = "continue")]
    cont: Option<String>,
}

/// How many entries one audit query scans at most, so a narrow filter cannot make a request
/// walk the whole log; the answer then carries a `continue` token.
const AUDIT_SCAN_BUDGET: usize = 20_000;

/// `GET /v1/audit-events`: newest first.
pub async fn list(
    State(state): State<AppState>,
    caller: Caller,
    Query(q): Query<AuditQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    caller.require(Permission::new(Resource::Audit, Verb::List), None)?;
    let limit = q.limit.unwrap_or(100).clamp(1, state.settings.max_page);
    let before = match &q.cont {
        Some(c) => Some(
            c.parse::<u64>()
                .map_err(|_| ApiError::field("continue", "invalid token"))?,
        ),
        None => None,
    };
    state
        .read(move |r| {
            let mut items = Vec::new();
            let mut cursor = before;
            let mut scanned = 0;
            let mut next = None;
            'scan: loop {
                let batch = r.log_before(Log::Audit, cursor, 500)?;
                if batch.is_empty() {
                    break;
                }
                for e in batch {
                    cursor = Some(e.seq);
                    scanned += 1;
                    let mut entry: AuditEntry = serde_json::from_slice(&e.body)
                        .map_err(|e| ApiError::internal(e.to_string()))?;
                    entry.seq = e.seq;
                    let too_old = q.since.is_some_and(|s| entry.time < s);
                    if matches(&q, &entry) {
                        items.push(entry);
                    }
                    if too_old {
                        break 'scan;
                    }
                    if items.len() == limit || scanned >= AUDIT_SCAN_BUDGET {
                        next = (e.seq > 1).then(|| e.seq.to_string());
                        break 'scan;
                    }
                }
            }
            let mut body = serde_json::json!({ "items": items });
            if let Some(n) = next {
                body["continue"] = n.into();
            }
            Ok(Json(body))
        })
        .await
}

fn matches(q: &AuditQuery, e: &AuditEntry) -> bool {
    q.actor
        .as_ref()
        .is_none_or(|a| e.actor == *a || e.actor == format!("user:{a}"))
        && q.action.as_ref().is_none_or(|a| e.action == *a)
        && q.resource
            .as_ref()
            .is_none_or(|r| e.resource.starts_with(r.as_str()))
        && q.project
            .as_ref()
            .is_none_or(|p| e.project.as_deref() == Some(p.as_str()))
        && q.since.is_none_or(|s| e.time >= s)
        && q.until.is_none_or(|u| e.time < u)
}

/// How many stored events a reconnecting client may replay.
const REPLAY_LIMIT: usize = 1000;

/// `GET /v1/events`: Server-Sent Events of changes the caller may see. Honours
/// `Last-Event-ID` by replaying from the durable event log first.
pub async fn stream(
    State(state): State<AppState>,
    caller: Caller,
    headers: HeaderMap,
) -> ApiResult<Sse<impl Stream<Item = Result<Event, Infallible>>>> {
    let live = state.events.subscribe();
    let last: Option<u64> = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let replay: Vec<Arc<ChangeEvent>> = match last {
        Some(after) => {
            state
                .read(move |r| {
                    let mut out = Vec::new();
                    for e in r.log_after(Log::Events, after, REPLAY_LIMIT)? {
                        let mut ev: ChangeEvent = serde_json::from_slice(&e.body)
                            .map_err(|e| ApiError::internal(e.to_string()))?;
                        ev.id = e.seq;
                        out.push(Arc::new(ev));
                    }
                    Ok(out)
                })
                .await?
        }
        None => Vec::new(),
    };
    let seen = replay.last().map(|e| e.id).unwrap_or(0);
    let caller = Arc::new(caller);
    let live = BroadcastStream::new(live)
        // A lagging client skips what it missed; it can reconnect with Last-Event-ID.
        .filter_map(|r| futures::future::ready(r.ok()))
        .filter(move |e| futures::future::ready(e.id > seen));
    let stream = futures::stream::iter(replay)
        .chain(live)
        .filter_map(move |e| {
            let visible = e.visible_to(&caller);
            futures::future::ready(visible.then(|| {
                Ok(Event::default()
                    .id(e.id.to_string())
                    .event(e.event_type.clone())
                    .data(e.cloud_event().to_string()))
            }))
        });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}
