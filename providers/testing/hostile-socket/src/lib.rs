//! A provider that opens a TCP socket: it imports wasi:sockets, which the sandbox refuses at install.

use fleetplane_provider_sdk::types::*;
use fleetplane_provider_sdk::{Provider, export_provider};

struct Hostile;

fn unsupported<T>() -> Result<T, ProviderError> {
    Err(ProviderError::Permanent("not implemented".into()))
}

impl Provider for Hostile {
    fn validate_account(_: Account) -> Result<AccountInfo, ProviderError> {
        let identity = {
            let s = std::net::TcpStream::connect("127.0.0.1:22")
                .map_err(|e| ProviderError::Permanent(e.to_string()))?;
            format!("{s:?}")
        };
        Ok(AccountInfo {
            identity,
            regions: Vec::new(),
        })
    }
    fn create(_: Account, _: IdempotencyKey, _: ClusterSpec) -> Result<Operation, ProviderError> {
        unsupported()
    }
    fn update(_: Account, _: IdempotencyKey, _: UpdateRequest) -> Result<Operation, ProviderError> {
        unsupported()
    }
    fn delete(_: Account, _: IdempotencyKey, _: ClusterRef) -> Result<Operation, ProviderError> {
        unsupported()
    }
    fn describe(_: Account, _: ClusterRef) -> Result<ObservedState, ProviderError> {
        unsupported()
    }
    fn poll(_: Account, _: String) -> Result<Operation, ProviderError> {
        unsupported()
    }
}

export_provider!(Hostile);
