//! Decodes arbitrary bytes as a cluster spec (the body of `PUT …/clusters/{name}`) and checks it
//! with the domain's shape rules; a valid spec survives a JSON round trip unchanged. The same
//! bytes, split in two, are compared as Kubernetes versions (the downgrade rule). Must never
//! panic or hang.
#![no_main]

use fleetplane_domain::cluster::{ClusterSpec, check_kubernetes_change, validate_spec};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data)
        && let Some((a, b)) = text.split_once('\n')
    {
        let _ = check_kubernetes_change(a, b);
    }
    let Ok(spec) = serde_json::from_slice::<ClusterSpec>(data) else {
        return;
    };
    if validate_spec(&spec).is_err() {
        return;
    }
    let bytes = serde_json::to_vec(&spec).expect("a cluster spec serializes");
    let again: ClusterSpec = serde_json::from_slice(&bytes).expect("its own JSON decodes");
    assert_eq!(again, spec);
});
