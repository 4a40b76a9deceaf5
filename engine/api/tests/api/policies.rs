//! Maintenance policies: schedules, exclusions, windows, presets and their rules.

use crate::support::*;
use axum::http::{Method, StatusCode};
use serde_json::json;

fn weekly() -> serde_json::Value {
    json!({"spec": {"schedules": [{"name": "weekly", "cron": "0 0 * * 0", "durationHours": 4}]}})
}

#[tokio::test]
async fn policies_at_both_scopes_show_next_windows() {
    let api = Api::new().await;
    let r = api
        .admin(
            Method::PUT,
            "/v1/maintenance-policies/weekly",
            Some(weekly()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["status"]["nextWindows"].as_array().unwrap().len(), 3);
    let r = api
        .admin(
            Method::PUT,
            "/v1/projects/default/maintenance-policies/weekly",
            Some(weekly()),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["metadata"]["project"], "default");
    let r = api
        .admin(
            Method::GET,
            "/v1/projects/default/maintenance-policies",
            None,
        )
        .await;
    assert_eq!(r.body["items"].as_array().unwrap().len(), 1);
    let r = api
        .admin(
            Method::PUT,
            "/v1/projects/nope/maintenance-policies/weekly",
            Some(weekly()),
        )
        .await;
    assert_problem(&r, StatusCode::NOT_FOUND, "NotFound");
}

#[tokio::test]
async fn windows_are_computed_in_the_requested_zone() {
    let api = Api::new().await;
    api.admin(
        Method::PUT,
        "/v1/maintenance-policies/weekly",
        Some(weekly()),
    )
    .await;
    let r = api
        .admin(Method::GET, "/v1/maintenance-policies/weekly/windows?zone=Europe/Berlin&count=2&after=2026-11-21T12:00:00Z", None)
        .await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    // Sunday 2026-11-22 00:00 in Berlin (UTC+1) is Saturday 23:00 UTC.
    assert_eq!(r.body["windows"][0]["start"], "2026-11-21T23:00:00Z");
    assert_eq!(r.body["windows"][0]["end"], "2026-11-22T03:00:00Z");
    assert_eq!(r.body["windows"].as_array().unwrap().len(), 2);
    let r = api
        .admin(
            Method::GET,
            "/v1/maintenance-policies/weekly/windows?zone=Mars/Olympus",
            None,
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(r.body["errors"][0]["field"], "zone");
}

#[tokio::test]
async fn bad_schedules_and_exclusions_name_their_fields() {
    let api = Api::new().await;
    let body = json!({"spec": {
        "schedules": [{"name": "a", "cron": "0 0 * *", "durationHours": 30}],
        "exclusions": [{"name": "xmas", "start": "2026-12-24T00:00:00Z", "end": "2026-12-23T00:00:00Z"}],
    }});
    let r = api
        .admin(Method::PUT, "/v1/maintenance-policies/bad", Some(body))
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    let fields: Vec<&str> = r.body["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["field"].as_str().unwrap())
        .collect();
    assert_eq!(
        fields,
        [
            "spec.schedules[0].cron",
            "spec.schedules[0].durationHours",
            "spec.exclusions[0].end"
        ]
    );
    let r = api
        .admin(
            Method::PUT,
            "/v1/maintenance-policies/bad",
            Some(json!({"spec": {"schedules": [{"name": "a", "cron": "@daily"}]}})),
        )
        .await;
    assert_problem(&r, StatusCode::BAD_REQUEST, "ValidationFailed");
    assert_eq!(r.body["errors"][0]["field"], "spec.schedules[0]");
    // nothing was written
    assert_problem(
        &api.admin(Method::GET, "/v1/maintenance-policies/bad", None)
            .await,
        StatusCode::NOT_FOUND,
        "NotFound",
    );
}

#[tokio::test]
async fn presets_are_offered() {
    let api = Api::new().await;
    let r = api
        .admin(Method::GET, "/v1/maintenance-policies:presets", None)
        .await;
    let names: Vec<&str> = r.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["daily", "weekly-sunday-midnight", "monthly", "bimonthly"]
    );
    let spec = r.body["items"][1]["spec"].clone();
    let r = api
        .admin(
            Method::PUT,
            "/v1/maintenance-policies/from-preset",
            Some(json!({"spec": spec})),
        )
        .await;
    assert_eq!(r.status, StatusCode::CREATED);
}
