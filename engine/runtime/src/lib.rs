//! Fleetplane's durable workflow runtime (DESIGN §6, `docs/runtime.md`): it drives the pure
//! state machine of `fleetplane-workflow` over the store. Each batch collects ready events (new
//! runs and signals from inboxes, due timers, effect answers), applies them, commits the new
//! states, journal entries, timers, child runs and outbox in **one** transaction, and only then
//! performs the external effects (bounded concurrency) and feeds their answers back.

mod clock;
mod executor;
mod hook;
#[cfg(feature = "wasm-host")]
mod provider;
mod runtime;
mod state;

pub use clock::{Clock, ManualClock, SystemClock};
pub use executor::{EffectExecutor, is_internal};
pub use hook::{Applied, NoHook, TransitionHook};
#[cfg(feature = "wasm-host")]
pub use provider::{CallResolver, ProviderCall, ProviderExecutor, provider_answer, provider_op};
pub use runtime::{Idle, NewRun, Runtime, RuntimeClient, RuntimeConfig, TickReport};
pub use state::load_state;

use fleetplane_store::StoreError;

/// What can go wrong in the runtime.
#[derive(Debug, thiserror::Error)]
pub enum RuntimeError {
    /// The store failed (the batch was not committed; nothing was performed).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// A run with this id exists already.
    #[error("run {0} already exists")]
    RunExists(String),
    /// The run does not exist.
    #[error("run {0} not found")]
    RunNotFound(String),
    /// Another run holds the cluster (409 `ClusterBusy`).
    #[error("cluster {cluster} is busy with run {holder}")]
    ClusterBusy {
        /// The cluster key.
        cluster: String,
        /// The run holding it.
        holder: String,
    },
    /// No definition with this digest is registered.
    #[error("workflow definition {0} is not registered")]
    UnknownDefinition(String),
    /// A stored state, event or effect cannot be decoded.
    #[error("cannot decode {what}: {reason}")]
    Corrupt {
        /// What.
        what: String,
        /// Why.
        reason: String,
    },
}

/// Result of runtime operations.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
