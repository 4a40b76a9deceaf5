//! A provider that does nothing and answers at once: it measures the host's call overhead.

use fleetplane_provider_sdk::types::*;
use fleetplane_provider_sdk::{Provider, export_provider};

struct Noop;

fn op(kind: OperationKind, cluster: ClusterRef) -> Operation {
    Operation {
        id: String::new(),
        kind,
        cluster,
        state: OperationState::Succeeded,
        progress: 100,
        message: String::new(),
        error: None,
        poll_after_ms: 0,
    }
}

impl Provider for Noop {
    fn validate_account(_account: Account) -> Result<AccountInfo, ProviderError> {
        Ok(AccountInfo {
            identity: String::new(),
            regions: Vec::new(),
        })
    }
    fn create(
        _a: Account,
        _k: IdempotencyKey,
        spec: ClusterSpec,
    ) -> Result<Operation, ProviderError> {
        Ok(op(OperationKind::Create, spec.cluster))
    }
    fn update(
        _a: Account,
        _k: IdempotencyKey,
        r: UpdateRequest,
    ) -> Result<Operation, ProviderError> {
        Ok(op(OperationKind::Update, r.spec.cluster))
    }
    fn delete(_a: Account, _k: IdempotencyKey, c: ClusterRef) -> Result<Operation, ProviderError> {
        Ok(op(OperationKind::Delete, c))
    }
    fn describe(_a: Account, _c: ClusterRef) -> Result<ObservedState, ProviderError> {
        Err(ProviderError::NotFound(String::new()))
    }
    fn poll(_a: Account, _id: String) -> Result<Operation, ProviderError> {
        Err(ProviderError::NotFound(String::new()))
    }
}

export_provider!(Noop);
