//! Errors of provider calls and installs.

use std::time::Duration;

use crate::digest::DigestMismatch;
use crate::manifest::ManifestError;
use crate::types::ProviderError;

/// Why a provider call failed. [`CallError::is_retryable`] tells the engine whether to retry.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The component answered with a typed `provider-error`.
    #[error("provider `{provider}` returned an error: {error}")]
    Provider {
        /// Provider name.
        provider: String,
        /// The typed error; its kind decides retries.
        error: ProviderError,
    },
    /// No provider of that name is installed.
    #[error("no provider named `{0}` is installed")]
    UnknownProvider(String),
    /// The component trapped (panic, `unreachable`, out-of-bounds access, stack overflow...).
    #[error("provider `{provider}` trapped during `{op}`: {message}")]
    Trap {
        /// Provider name.
        provider: String,
        /// Operation name.
        op: &'static str,
        /// The trap and the tail of what the component wrote to stderr.
        message: String,
    },
    /// The call ran past its deadline and was stopped.
    #[error(
        "provider `{provider}` exceeded its {deadline:?} deadline during `{op}` and was stopped"
    )]
    Deadline {
        /// Provider name.
        provider: String,
        /// Operation name.
        op: &'static str,
        /// The deadline.
        deadline: Duration,
    },
    /// The component tried to grow its memory past the limit and was stopped.
    #[error("provider `{provider}` exceeded its memory limit of {limit_bytes} bytes during `{op}`")]
    MemoryLimit {
        /// Provider name.
        provider: String,
        /// Operation name.
        op: &'static str,
        /// The limit.
        limit_bytes: usize,
    },
    /// The component does not implement the interface the host expects (a missing export, an
    /// import the sandbox does not provide, or ill-typed values).
    #[error("provider `{provider}` does not match the fleetplane:provider interface: {message}")]
    InterfaceMismatch {
        /// Provider name.
        provider: String,
        /// What does not match.
        message: String,
    },
    /// The host itself failed (for example the simulated cloud's storage).
    #[error("provider host failure calling `{provider}`: {message}")]
    Host {
        /// Provider name.
        provider: String,
        /// What failed.
        message: String,
    },
}

impl CallError {
    /// Whether the engine should retry the call (with the same idempotency key): throttled and
    /// transient provider errors, deadlines and host failures are retried; invalid input,
    /// not-found, conflicts, permanent errors, traps, memory exhaustion and interface mismatches
    /// are not, because the same call would fail the same way.
    pub fn is_retryable(&self) -> bool {
        match self {
            CallError::Provider { error, .. } => error.is_retryable(),
            CallError::Deadline { .. } | CallError::Host { .. } => true,
            CallError::UnknownProvider(_)
            | CallError::Trap { .. }
            | CallError::MemoryLimit { .. }
            | CallError::InterfaceMismatch { .. } => false,
        }
    }

    /// The minimum delay before a retry, when the provider asked for one.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            CallError::Provider { error, .. } => error.retry_after(),
            _ => None,
        }
    }

    /// The typed provider error, if that is what failed.
    pub fn provider_error(&self) -> Option<&ProviderError> {
        match self {
            CallError::Provider { error, .. } => Some(error),
            _ => None,
        }
    }

    /// A stable code for journals and problem+json.
    pub fn code(&self) -> &'static str {
        match self {
            CallError::Provider { error, .. } => error.code(),
            CallError::UnknownProvider(_) => "ProviderNotInstalled",
            CallError::Trap { .. } => "ProviderTrapped",
            CallError::Deadline { .. } => "ProviderDeadlineExceeded",
            CallError::MemoryLimit { .. } => "ProviderMemoryLimit",
            CallError::InterfaceMismatch { .. } => "ProviderInterfaceMismatch",
            CallError::Host { .. } => "ProviderHostFailure",
        }
    }
}

/// Why a provider could not be installed.
#[derive(Debug, thiserror::Error)]
pub enum InstallError {
    /// The manifest is invalid.
    #[error(transparent)]
    Manifest(#[from] ManifestError),
    /// The bytes do not have the recorded digest.
    #[error(transparent)]
    Digest(#[from] DigestMismatch),
    /// The bytes are not a valid WebAssembly component.
    #[error("not a valid WebAssembly component: {0}")]
    Compile(String),
    /// The component imports something the sandbox does not provide, or lacks the exports.
    #[error("component does not fit the provider sandbox: {0}")]
    Interface(String),
    /// Reading the component or manifest failed.
    #[error("reading {path}: {message}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        message: String,
    },
}
