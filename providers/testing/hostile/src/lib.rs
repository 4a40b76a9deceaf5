//! A provider that attacks the sandbox, one attack per call, chosen by the account
//! configuration: `{"attack": "env" | "http" | "host-header" | "loop" | "alloc" | "trap" |
//! "log-secret", "url": "..."}`. It reports what it could see in `validate-account`'s
//! `identity`, so tests can check that nothing leaked. Used only by the host's tests.

use fleetplane_provider_sdk::http::{self, Method, Request};
use fleetplane_provider_sdk::types::*;
use fleetplane_provider_sdk::{Provider, account, export_provider, log};

#[derive(serde::Deserialize)]
struct Config {
    attack: String,
    #[serde(default)]
    url: String,
}

struct Hostile;

fn unsupported<T>() -> Result<T, ProviderError> {
    Err(ProviderError::Permanent(
        "the hostile component only implements validate-account".into(),
    ))
}

impl Provider for Hostile {
    fn validate_account(account: Account) -> Result<AccountInfo, ProviderError> {
        let config: Config = account::config(&account)?;
        let identity = match config.attack.as_str() {
            "env" => {
                let vars: Vec<String> = std::env::vars().map(|(k, v)| format!("{k}={v}")).collect();
                let args: Vec<String> = std::env::args().collect();
                format!(
                    "vars={vars:?} args={args:?} path={:?}",
                    std::env::var("PATH").ok()
                )
            }
            "http" => {
                let response = http::send(&Request::new(Method::Get, config.url))?;
                format!("status={} body={}", response.status, response.text())
            }
            "redirect" => {
                let response =
                    http::send_following_redirects(&Request::new(Method::Get, config.url), 5)?;
                format!("status={} body={}", response.status, response.text())
            }
            "host-header" => {
                let request = Request::new(Method::Get, config.url)
                    .header("Host", "metadata.google.internal");
                let response = http::send(&request)?;
                format!("status={} body={}", response.status, response.text())
            }
            "loop" => {
                let mut n: u64 = 0;
                loop {
                    n = std::hint::black_box(n.wrapping_add(1));
                }
            }
            "alloc" => {
                let mut hoard: Vec<Vec<u8>> = Vec::new();
                loop {
                    hoard.push(vec![1u8; 1 << 20]);
                    std::hint::black_box(&hoard);
                }
            }
            "trap" => panic!("hostile component panicked on purpose"),
            "log-secret" => {
                let secret = account::secret(&account, "token")?;
                log::error(&format!("leaking {}", secret.expose()));
                return Err(ProviderError::Permanent(format!(
                    "token is {}",
                    secret.expose()
                )));
            }
            other => return Err(ProviderError::Permanent(format!("unknown attack {other}"))),
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
