//! Deterministic identities: idempotency keys and child run ids.
//!
//! Both are UUIDs (version 8, the bits of a SHA-256 digest) so every cloud accepts them as
//! client tokens (GCP request ids must be UUIDs; AWS client tokens are at most 64 characters).
//! They depend on the run, the re-drive generation, the step and the cluster — never on the
//! attempt, so a retried or repeated call after a crash carries the same key.

use crate::definition::StepPath;
use sha2::{Digest, Sha256};

fn uuid_of(parts: &[&str]) -> String {
    let mut h = Sha256::new();
    for p in parts {
        // Length-prefix each part so ("ab","c") and ("a","bc") differ.
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    let digest = h.finalize();
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes)
        .into_uuid()
        .to_string()
}

/// The idempotency key of a provider call of `step` in `run` about `cluster`, for re-drive
/// `generation` (0 until a person re-drives the run).
pub fn idempotency_key(
    run: &str,
    generation: u32,
    step: &StepPath,
    cluster: Option<&str>,
) -> String {
    uuid_of(&[
        "idempotency",
        run,
        &generation.to_string(),
        &step.to_string(),
        cluster.unwrap_or(""),
    ])
}

/// The id of the child run of `parent`'s fan-out `fanout` for item `item`. The same inputs give
/// the same id, so starting a child twice (after a crash) finds the existing one.
pub fn child_run_id(parent: &str, fanout: &StepPath, item: &str) -> String {
    uuid_of(&["child", parent, &fanout.to_string(), item])
}

/// The key of an event emitted by `step` (de-duplicates at-least-once delivery).
pub(crate) fn emit_key(run: &str, generation: u32, step: &StepPath) -> String {
    uuid_of(&["emit", run, &generation.to_string(), &step.to_string()])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_stable_uuids_that_change_with_their_inputs() {
        let s = StepPath::root(1);
        let k = idempotency_key("run-1", 0, &s, Some("dev"));
        assert_eq!(k, idempotency_key("run-1", 0, &s, Some("dev")));
        assert_eq!(k.len(), 36);
        assert_eq!(
            uuid::Uuid::parse_str(&k).map(|u| u.get_version_num()),
            Ok(8)
        );
        for other in [
            idempotency_key("run-2", 0, &s, Some("dev")),
            idempotency_key("run-1", 1, &s, Some("dev")),
            idempotency_key("run-1", 0, &StepPath::root(2), Some("dev")),
            idempotency_key("run-1", 0, &s, Some("prod")),
            idempotency_key("run-1", 0, &s, None),
        ] {
            assert_ne!(k, other);
        }
        // Snapshot of the derivation: changing it would re-issue every in-flight cloud call.
        insta::assert_snapshot!(k, @"3e065144-37e5-8da0-b85a-6b1c5a234a1a");
    }
}
