//! The provider host: runs provider WebAssembly components (the `fleetplane:provider` WIT
//! world in `wit/`) in a sandbox, and hosts the simulated cloud the built-in simulator drives.
//!
//! The engine calls [`ProviderRuntime::call`] on a [`WasmHost`]; wasmtime stays behind it.
//! See `docs/providers.md` for the sandbox rules, the manifest and the conformance kit.

mod bindings;
pub mod components;
pub mod conformance;
pub mod digest;
pub mod error;
mod host;
pub mod manifest;
pub mod outbound;
pub mod probe;
pub mod simcloud;
pub mod types;

pub use digest::{Digest, DigestMismatch};
pub use error::{CallError, InstallError};
pub use host::{
    Allocator, HostConfig, HostStartError, ProviderInfo, ProviderPackage, ProviderRuntime, WasmHost,
};
pub use manifest::{AllowedHost, ManifestError, ProviderManifest, WIT_VERSION};
pub use outbound::{AuditSink, OutboundOutcome, OutboundRecord, OutboundSettings};
pub use probe::{CallPhases, PhaseStats};
pub use simcloud::{Clock, Fault, ManualClock, SimCloud, SystemClock};
pub use types::*;
