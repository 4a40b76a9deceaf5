//! Reading the account configuration and secrets a call carries.

use serde::de::DeserializeOwned;

use crate::error::invalid;
use crate::types::{Account, ProviderError};

/// A secret value taken from the account. Its `Debug` and `Display` never show the value, so
/// it cannot end up in a log line or an error message by accident.
#[derive(Clone)]
pub struct Secret(String);

impl Secret {
    /// The secret value. Use it only to sign or authenticate a request.
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Secret(<redacted>)")
    }
}

impl std::fmt::Display for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("<redacted>")
    }
}

/// Parses the account configuration (a JSON object) into `T`.
///
/// # Errors
/// `invalid-config` at field `config` when the JSON does not parse or does not match `T`.
pub fn config<T: DeserializeOwned>(account: &Account) -> Result<T, ProviderError> {
    let text = if account.config.trim().is_empty() {
        "{}"
    } else {
        account.config.as_str()
    };
    serde_json::from_str(text).map_err(|e| invalid("config", format!("{e}")))
}

/// Returns the secret named `name`.
///
/// # Errors
/// `invalid-config` at field `secrets.<name>` when the account has no such secret.
pub fn secret(account: &Account, name: &str) -> Result<Secret, ProviderError> {
    account
        .secrets
        .iter()
        .find(|s| s.name == name)
        .map(|s| Secret(s.value.clone()))
        .ok_or_else(|| invalid(&format!("secrets.{name}"), "required secret is missing"))
}
