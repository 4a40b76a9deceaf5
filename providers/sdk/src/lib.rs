//! SDK for Fleetplane provider components.
//!
//! A provider is a WebAssembly component targeting the `fleetplane:provider` world (see
//! `wit/provider.wit`). This crate carries the generated bindings, HTTP helpers over
//! `wasi:http` (every request is checked by the host against the provider manifest's allowed
//! hosts), error mapping, account helpers that keep secrets out of `Debug` output, and sample
//! records for tests. See `docs/providers.md` for the whole workflow.
//!
//! ```ignore
//! use fleetplane_provider_sdk::{Provider, export_provider, types::*};
//! struct MyCloud;
//! impl Provider for MyCloud { /* validate_account, create, update, delete, describe, poll */ }
//! export_provider!(MyCloud);
//! ```

#![allow(missing_docs)] // the generated bindings carry the WIT documentation

/// Bindings generated from `wit/provider.wit` (and the WASI packages it imports).
pub mod bindings {
    wit_bindgen::generate!({
        path: "../../wit",
        world: "fleetplane:provider/provider@0.1.0",
        pub_export_macro: true,
        export_macro_name: "export_provider",
        default_bindings_module: "fleetplane_provider_sdk::bindings",
        generate_all,
    });
}

#[warn(missing_docs)]
pub mod account;
#[warn(missing_docs)]
pub mod error;
#[warn(missing_docs)]
pub mod http;
#[warn(missing_docs)]
pub mod log;
#[warn(missing_docs)]
pub mod testing;

pub use bindings::export_provider;
pub use bindings::exports::fleetplane::provider::operations::Guest as Provider;
/// The records of the `fleetplane:provider/types` interface.
pub use bindings::fleetplane::provider::types;
pub use error::ProviderResult;
