//! The components built by `build.rs` from `providers/`: the simulator, embedded in the
//! binary, and the test components, by path.

use std::sync::{Arc, OnceLock};

use crate::digest::Digest;
use crate::error::InstallError;
use crate::host::ProviderPackage;
use crate::manifest::ProviderManifest;

/// The built-in simulator component.
pub const SIMULATOR_WASM: &[u8] = include_bytes!(env!("FLEETPLANE_SIMULATOR_WASM"));

/// The simulator's manifest (JSON).
pub const SIMULATOR_MANIFEST: &str = include_str!("../../../providers/simulator/provider.json");

/// Paths of the test components (for tests, benchmarks and the conformance kit's own tests).
pub mod paths {
    /// The simulator component.
    pub const SIMULATOR: &str = env!("FLEETPLANE_SIMULATOR_WASM");
    /// A provider that does nothing (call overhead).
    pub const NOOP: &str = env!("FLEETPLANE_NOOP_WASM");
    /// A provider that attacks the sandbox on request.
    pub const HOSTILE: &str = env!("FLEETPLANE_HOSTILE_WASM");
    /// A provider that reads a file (imports wasi:filesystem).
    pub const HOSTILE_FS: &str = env!("FLEETPLANE_HOSTILE_FS_WASM");
    /// A provider that opens a socket (imports wasi:sockets).
    pub const HOSTILE_SOCKET: &str = env!("FLEETPLANE_HOSTILE_SOCKET_WASM");
}

/// The digest of the built-in simulator.
pub fn simulator_digest() -> Digest {
    static DIGEST: OnceLock<Digest> = OnceLock::new();
    *DIGEST.get_or_init(|| Digest::of(SIMULATOR_WASM))
}

/// Whether `digest` is the built-in simulator's (the only component linked to the simulated
/// cloud).
pub fn is_builtin_simulator(digest: &Digest) -> bool {
    *digest == simulator_digest()
}

/// The simulator as a package ready to install.
///
/// # Errors
/// [`InstallError::Manifest`] if the embedded manifest is invalid (a build defect).
pub fn simulator_package() -> Result<ProviderPackage, InstallError> {
    let manifest = ProviderManifest::parse(SIMULATOR_MANIFEST.as_bytes())?;
    ProviderPackage::verify(
        manifest,
        simulator_digest(),
        Arc::<[u8]>::from(SIMULATOR_WASM),
    )
}
