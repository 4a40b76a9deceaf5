//! Parses arbitrary bytes as a provider manifest and, when valid, uses its allowed hosts. Must
//! never panic or hang.
//!
//! The wasm-host crate pulls in wasmtime and builds the provider components in its build.rs,
//! far too heavy for a sanitizer build, so this target compiles the crate's real
//! `src/manifest.rs` on its own (it uses only std, serde, serde_json, semver and thiserror).
#![no_main]

#[allow(dead_code, missing_docs, unreachable_pub)]
#[path = "../../engine/wasm-host/src/manifest.rs"]
mod manifest;

use libfuzzer_sys::fuzz_target;
use manifest::{AllowedHost, ProviderManifest};

const REQUESTS: [(&str, &str, u16); 4] = [
    ("https", "ec2.eu-west-1.amazonaws.com", 443),
    ("https", "amazonaws.com", 443),
    ("http", "127.0.0.1", 80),
    ("https", "::1", 8443),
];

fuzz_target!(|data: &[u8]| {
    if let Ok(m) = ProviderManifest::parse(data) {
        let hosts = m.allowed_hosts();
        assert_eq!(
            hosts.len(),
            m.allowed_hosts.len(),
            "a valid manifest's hosts all parse"
        );
        for host in &hosts {
            for (scheme, name, port) in REQUESTS {
                let _ = host.matches(scheme, name, port);
            }
        }
        let _ = m.serves("aws");
    }
    // Each line on its own as an allowedHosts entry.
    if let Ok(text) = std::str::from_utf8(data) {
        for line in text.lines().take(8) {
            if let Ok(host) = AllowedHost::parse(line) {
                for (scheme, name, port) in REQUESTS {
                    let _ = host.matches(scheme, name, port);
                }
            }
        }
    }
});
