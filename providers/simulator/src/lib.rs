//! The built-in simulator provider: validates the account and the spec, then drives the
//! simulated cloud the server hosts through the `fleetplane:simulator/cloud` import.

#![allow(missing_docs)] // generated bindings

#[allow(unsafe_code)] // the generated canonical-ABI glue
mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "fleetplane:simulator/simulator@0.1.0",
        with: {
            "fleetplane:provider/types@0.1.0": fleetplane_provider_sdk::types,
            "fleetplane:provider/log@0.1.0": fleetplane_provider_sdk::bindings::fleetplane::provider::log,
            "wasi:http/types@0.2.12": fleetplane_provider_sdk::bindings::wasi::http::types,
            "wasi:http/outgoing-handler@0.2.12": fleetplane_provider_sdk::bindings::wasi::http::outgoing_handler,
            "wasi:io/poll@0.2.12": fleetplane_provider_sdk::bindings::wasi::io::poll,
            "wasi:io/error@0.2.12": fleetplane_provider_sdk::bindings::wasi::io::error,
            "wasi:io/streams@0.2.12": fleetplane_provider_sdk::bindings::wasi::io::streams,
            "wasi:clocks/monotonic-clock@0.2.12": fleetplane_provider_sdk::bindings::wasi::clocks::monotonic_clock,
            "wasi:clocks/wall-clock@0.2.12": fleetplane_provider_sdk::bindings::wasi::clocks::wall_clock,
            "wasi:random/random@0.2.12": fleetplane_provider_sdk::bindings::wasi::random::random,
            "fleetplane:provider/operations@0.1.0": generate,
            "fleetplane:simulator/cloud@0.1.0": generate,
        },
    });
}

use bindings::exports::fleetplane::provider::operations::Guest;
use bindings::fleetplane::simulator::cloud::{self, AccountSettings, CloudError};
use fleetplane_provider_sdk::account;
use fleetplane_provider_sdk::error::Problems;
use fleetplane_provider_sdk::log;
use fleetplane_provider_sdk::types::*;

/// The simulator account configuration.
#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct Config {
    #[serde(default = "one")]
    time_scale: f64,
}

fn one() -> f64 {
    1.0
}

fn settings(account: &Account) -> Result<AccountSettings, ProviderError> {
    let value: serde_json::Value = account::config(account)?;
    if !value.is_object() {
        return Err(fleetplane_provider_sdk::error::invalid(
            "config",
            "must be a JSON object",
        ));
    }
    let config: Config = account::config(account)?;
    let mut problems = Problems::default();
    if !(config.time_scale.is_finite() && (0.0..=1000.0).contains(&config.time_scale)) {
        problems.push("config.timeScale", "must be a number from 0 to 1000");
    }
    problems.finish()?;
    Ok(AccountSettings {
        account: account.name.clone(),
        time_scale: config.time_scale,
    })
}

fn check_spec(spec: &ClusterSpec) -> Result<(), ProviderError> {
    let mut problems = Problems::default();
    if spec.cluster.id.is_empty() {
        problems.push("spec.cluster.id", "is required");
    }
    if spec.cluster.name.is_empty() {
        problems.push("spec.cluster.name", "is required");
    }
    if spec.cluster.region.is_empty() {
        problems.push("spec.cluster.region", "is required");
    }
    let control_planes = spec.node_pools.iter().filter(|p| p.control_plane).count();
    if control_planes != 1 {
        problems.push(
            "spec.node-pools",
            format!("exactly one control-plane pool is required, got {control_planes}"),
        );
    }
    for (i, pool) in spec.node_pools.iter().enumerate() {
        if pool.name.is_empty() {
            problems.push(format!("spec.node-pools[{i}].name"), "is required");
        }
        if pool.count == 0 || pool.count > 1000 {
            problems.push(
                format!("spec.node-pools[{i}].count"),
                "must be from 1 to 1000",
            );
        }
        if spec.node_pools[..i].iter().any(|p| p.name == pool.name) {
            problems.push(format!("spec.node-pools[{i}].name"), "is used twice");
        }
    }
    problems.finish()
}

fn map_error(e: CloudError) -> ProviderError {
    match e {
        CloudError::NotFound(m) => ProviderError::NotFound(m),
        CloudError::Conflict(m) => ProviderError::Conflict(m),
        CloudError::Invalid(m) => fleetplane_provider_sdk::error::invalid("spec", m),
        CloudError::Unavailable(m) => ProviderError::Transient(m),
    }
}

struct Simulator;

impl Guest for Simulator {
    fn validate_account(account: Account) -> Result<AccountInfo, ProviderError> {
        let s = settings(&account)?;
        Ok(AccountInfo {
            identity: format!(
                "simulated account {} (timeScale {})",
                s.account, s.time_scale
            ),
            regions: vec!["sim-1".into(), "sim-2".into(), "sim-3".into()],
        })
    }

    fn create(
        account: Account,
        key: IdempotencyKey,
        spec: ClusterSpec,
    ) -> Result<Operation, ProviderError> {
        let s = settings(&account)?;
        check_spec(&spec)?;
        log::debug(&format!(
            "create {} ({})",
            spec.cluster.name, spec.cluster.id
        ));
        cloud::create_cluster(&s, &key, &spec).map_err(map_error)
    }

    fn update(
        account: Account,
        key: IdempotencyKey,
        request: UpdateRequest,
    ) -> Result<Operation, ProviderError> {
        let s = settings(&account)?;
        check_spec(&request.spec)?;
        log::debug(&format!(
            "update {} to {} ({})",
            request.spec.cluster.name,
            request.spec.revision,
            if request.replace_machines {
                "replacing machines"
            } else {
                "in place"
            }
        ));
        cloud::update_cluster(&s, &key, &request.spec, request.replace_machines).map_err(map_error)
    }

    fn delete(
        account: Account,
        key: IdempotencyKey,
        cluster: ClusterRef,
    ) -> Result<Operation, ProviderError> {
        let s = settings(&account)?;
        cloud::delete_cluster(&s, &key, &cluster).map_err(map_error)
    }

    fn describe(account: Account, cluster: ClusterRef) -> Result<ObservedState, ProviderError> {
        let s = settings(&account)?;
        cloud::get_cluster(&s, &cluster).map_err(map_error)
    }

    fn poll(account: Account, operation_id: String) -> Result<Operation, ProviderError> {
        let s = settings(&account)?;
        cloud::get_operation(&s, &operation_id).map_err(map_error)
    }
}

#[allow(unsafe_code)] // the generated canonical-ABI glue
mod exported {
    use super::Simulator;
    crate::bindings::export!(Simulator with_types_in crate::bindings);
}
