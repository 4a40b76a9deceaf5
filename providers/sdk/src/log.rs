//! Logging to the host. The host tags each line with the provider, account and call, and caps
//! how much one call may log. Never log secrets.

use crate::bindings::fleetplane::provider::log::{Level, log};

/// Logs at `debug`.
pub fn debug(message: &str) {
    log(Level::Debug, message);
}

/// Logs at `info`.
pub fn info(message: &str) {
    log(Level::Info, message);
}

/// Logs at `warn`.
pub fn warn(message: &str) {
    log(Level::Warn, message);
}

/// Logs at `error`.
pub fn error(message: &str) {
    log(Level::Error, message);
}
