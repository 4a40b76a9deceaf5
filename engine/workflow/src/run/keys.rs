//! Deterministic identities: idempotency keys and child run ids.
//!
//! Both are UUIDs (version 8: the bits of a SHA-256 digest; a child run id's first bits are
//! ordered, see [`child_run_id`]) so every cloud accepts them as client tokens (GCP request ids must be UUIDs; AWS client tokens are at most 64 characters).
//! They depend on the run, the re-drive generation, the step and the cluster — never on the
//! attempt, so a retried or repeated call after a crash carries the same key.

use crate::definition::StepPath;
use sha2::{Digest, Sha256};

fn digest_of(parts: &[&str]) -> [u8; 32] {
    let mut h = Sha256::new();
    for p in parts {
        // Length-prefix each part so ("ab","c") and ("a","bc") differ.
        h.update((p.len() as u64).to_be_bytes());
        h.update(p.as_bytes());
    }
    h.finalize().into()
}

fn uuid_of(parts: &[&str]) -> String {
    let digest = digest_of(parts);
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

/// The id of the child run of `parent`'s fan-out `fanout` for the item at `index` of its list,
/// named `item`. The same inputs give the same id, so starting a child twice (after a crash)
/// finds the existing one.
///
/// Unlike the other keys it is not a digest alone: its first 48 bits are the parent's (the
/// creation time of a UUID v7 root run; the same bits of a digest of any other id), the next
/// 32 the item's index — around the version and variant bits — and only the last 42 a digest
/// of all four inputs. A fan-out's children therefore sort, and are stored, in the order it
/// starts them: their records, journals, inbox rows and index entries are written next to each
/// other rather than at random places of tables holding every run (docs/performance.md,
/// eighth round).
pub fn child_run_id(parent: &str, fanout: &StepPath, index: u32, item: &str) -> String {
    let prefix: [u8; 6] = match uuid::Uuid::parse_str(parent) {
        Ok(u) => u.as_bytes()[..6].try_into().unwrap_or_default(),
        Err(_) => digest_of(&["parent", parent])[..6]
            .try_into()
            .unwrap_or_default(),
    };
    let mut high = [0u8; 8];
    high[2..].copy_from_slice(&prefix);
    let digest = digest_of(&[
        "child",
        parent,
        &fanout.to_string(),
        &index.to_string(),
        item,
    ]);
    let mut low = [0u8; 8];
    low.copy_from_slice(&digest[..8]);
    let index = u128::from(index);
    let id = (u128::from(u64::from_be_bytes(high)) << 80)
        | (0x8 << 76)
        | ((index >> 20) << 64)
        | (0b10 << 62)
        | ((index & 0xf_ffff) << 42)
        | (u128::from(u64::from_be_bytes(low)) & ((1 << 42) - 1));
    uuid::Builder::from_custom_bytes(id.to_be_bytes())
        .into_uuid()
        .to_string()
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

    #[test]
    fn child_ids_are_stable_uuids_sorted_by_parent_then_index() {
        let parent = "01a2028c-abb5-7711-a9a4-6938bfdd6e3d";
        let f = StepPath::root(1);
        let id = |i: u32| child_run_id(parent, &f, i, &format!("c{i}"));
        assert_eq!(id(7), id(7));
        for i in [0, 1, 0xf_ffff, 0x10_0000, u32::MAX] {
            let u = uuid::Uuid::parse_str(&id(i)).unwrap();
            assert_eq!(u.get_version_num(), 8, "{i}");
            assert_eq!(u.get_variant(), uuid::Variant::RFC4122, "{i}");
            // The parent's time prefix, then the index.
            assert!(id(i).starts_with("01a2028c-abb5-8"), "{}", id(i));
        }
        let indices = [
            0,
            1,
            2,
            255,
            256,
            0xf_ffff,
            0x10_0000,
            0x10_0001,
            70_000,
            u32::MAX,
        ];
        let mut sorted = indices.to_vec();
        sorted.sort_unstable();
        let mut by_id: Vec<(String, u32)> = indices.iter().map(|&i| (id(i), i)).collect();
        by_id.sort();
        assert_eq!(by_id.iter().map(|(_, i)| *i).collect::<Vec<_>>(), sorted);
        // Every input counts.
        let base = id(3);
        for other in [
            child_run_id("01a2028c-abb5-7711-a9a4-6938bfdd6e3e", &f, 3, "c3"),
            child_run_id(parent, &StepPath::root(2), 3, "c3"),
            child_run_id(parent, &f, 4, "c3"),
            child_run_id(parent, &f, 3, "c4"),
        ] {
            assert_ne!(base, other);
        }
        // A parent that is not a UUID still gets a stable prefix of its own.
        let a = child_run_id("run-1", &f, 0, "x");
        assert_eq!(a, child_run_id("run-1", &f, 0, "x"));
        assert_ne!(a[..13], child_run_id("run-2", &f, 0, "x")[..13]);
        insta::assert_snapshot!(base, @"01a2028c-abb5-8000-8000-0f635e411574");
    }
}
