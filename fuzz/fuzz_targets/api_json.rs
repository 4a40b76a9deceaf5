//! Decodes arbitrary bytes the way the API decodes request bodies, as any JSON value and as a
//! maintenance policy spec whose calendar is then built and evaluated. Must never panic or hang.
//!
//! The API's `fleetplane_api::json::decode` is `serde_path_to_error::deserialize` over a
//! `serde_json::Deserializer`; this target drives that same stack directly, because the
//! fleetplane-api crate depends on fleetplane-wasm-host (wasmtime, and a build.rs that builds
//! the provider components), far too heavy for a sanitizer build in CI.
#![no_main]

use std::sync::LazyLock;

use fleetplane_domain::policy::MaintenancePolicySpec;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use libfuzzer_sys::fuzz_target;
use serde::de::DeserializeOwned;

static ZONE: LazyLock<TimeZone> =
    LazyLock::new(|| TimeZone::get("Europe/Berlin").unwrap_or(TimeZone::UTC));

static INSTANTS: LazyLock<Vec<Timestamp>> = LazyLock::new(|| {
    ["2025-03-30T00:59:30Z", "9999-12-30T00:00:00Z"]
        .iter()
        .filter_map(|text| text.parse().ok())
        .chain([Timestamp::MIN])
        .collect()
});

/// As the API decodes a body: the error carries the path of the offending field.
fn decode<T: DeserializeOwned>(bytes: &[u8]) -> Option<T> {
    let de = &mut serde_json::Deserializer::from_slice(bytes);
    match serde_path_to_error::deserialize(de) {
        Ok(v) => Some(v),
        Err(e) => {
            // Building the message is part of the API's error path.
            let _ = (e.path().to_string(), e.into_inner().to_string());
            None
        }
    }
}

fn policy(spec: &MaintenancePolicySpec) {
    if let Ok(calendar) = spec.calendar() {
        for &at in INSTANTS.iter() {
            let _ = calendar.upcoming(at, &ZONE, 2);
        }
    }
}

fuzz_target!(|data: &[u8]| {
    let value = decode::<serde_json::Value>(data);
    if let Some(spec) = decode::<MaintenancePolicySpec>(data) {
        policy(&spec);
    }
    // A full resource body: its `spec`, decoded from the parsed value as handlers do.
    if let Some(serde_json::Value::Object(mut body)) = value
        && let Some(spec) = body.remove("spec")
        && let Ok(spec) = serde_path_to_error::deserialize::<_, MaintenancePolicySpec>(spec)
    {
        policy(&spec);
    }
});
