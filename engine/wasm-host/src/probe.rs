//! Call overhead by phase: store and WASI context creation, instantiation, the
//! host → component → host round trip and teardown, timed on the real call path (the same
//! function every call goes through), for `fleetplane bench` and `docs/performance.md`.

use std::time::{Duration, Instant};

use serde::ser::SerializeStruct;

use crate::error::CallError;
use crate::host::{Allocator, WasmHost};
use crate::types::{AccountContext, ProviderOp};

/// How long each phase of one call took.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct PhaseSample {
    /// The call's state (WASI and HTTP contexts, limits, hooks) and its `Store`.
    pub(crate) store: Duration,
    /// Instantiating the component in the store and looking up its exports.
    pub(crate) instantiate: Duration,
    /// Lowering the arguments, running the export, lifting the result.
    pub(crate) round_trip: Duration,
    /// Dropping the store: the instance's slot goes back to the pool (or is unmapped).
    pub(crate) teardown: Duration,
}

/// Mean and percentiles of one phase over a series of calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PhaseStats {
    /// Arithmetic mean.
    pub mean: Duration,
    /// Median (nearest rank).
    pub p50: Duration,
    /// 99th percentile (nearest rank).
    pub p99: Duration,
}

impl PhaseStats {
    /// The statistics of `samples` (all zero when there are none).
    pub fn of(samples: &[Duration]) -> PhaseStats {
        if samples.is_empty() {
            return PhaseStats::default();
        }
        let mut sorted = samples.to_vec();
        sorted.sort_unstable();
        let total: Duration = sorted.iter().sum();
        let count = u32::try_from(sorted.len()).unwrap_or(u32::MAX);
        PhaseStats {
            mean: total / count,
            p50: nearest_rank(&sorted, 50),
            p99: nearest_rank(&sorted, 99),
        }
    }
}

/// The `percent`th percentile of sorted, non-empty `sorted` by the nearest-rank method.
fn nearest_rank(sorted: &[Duration], percent: usize) -> Duration {
    let rank = (sorted.len() * percent).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

/// Serialised in microseconds: `{"meanUs": …, "p50Us": …, "p99Us": …}`.
impl serde::Serialize for PhaseStats {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let us = |d: Duration| d.as_secs_f64() * 1e6;
        let mut s = serializer.serialize_struct("PhaseStats", 3)?;
        s.serialize_field("meanUs", &us(self.mean))?;
        s.serialize_field("p50Us", &us(self.p50))?;
        s.serialize_field("p99Us", &us(self.p99))?;
        s.end()
    }
}

/// What [`WasmHost::probe`] measured: each phase of a provider call, and the whole call.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct CallPhases {
    /// Calls timed.
    pub calls: usize,
    /// How the host allocated the instances.
    pub allocator: Allocator,
    /// (a) Creating the call's state (WASI and HTTP contexts, limits, outbound hooks) and store.
    pub store: PhaseStats,
    /// (b) Instantiating the component (a fresh instance per call) and finding its exports.
    pub instantiate: PhaseStats,
    /// (c) The `validate-account` round trip: arguments lowered, guest run, result lifted.
    pub round_trip: PhaseStats,
    /// Dropping the store, which returns the instance's slot to the pool.
    pub teardown: PhaseStats,
    /// The whole call as the engine sees it: permits, the phases above, error mapping.
    pub total: PhaseStats,
}

impl WasmHost {
    /// Makes `calls` (at least one) sequential `validate-account` calls to `provider` for
    /// `account` through the path every call takes, and returns the time of each phase. The
    /// calls count in the provider's statistics like any other.
    ///
    /// # Errors
    /// The first call that fails, as [`crate::ProviderRuntime::call`] returns it
    /// ([`CallError::UnknownProvider`], a provider error for an account it refuses, a sandbox
    /// failure).
    pub async fn probe(
        &self,
        provider: &str,
        account: &AccountContext,
        calls: usize,
    ) -> Result<CallPhases, CallError> {
        let calls = calls.max(1);
        let mut samples = Vec::with_capacity(calls);
        let mut totals = Vec::with_capacity(calls);
        for _ in 0..calls {
            let mut sample = PhaseSample::default();
            let started = Instant::now();
            self.call_timed(
                provider,
                account,
                ProviderOp::ValidateAccount,
                Some(&mut sample),
            )
            .await?;
            totals.push(started.elapsed());
            samples.push(sample);
        }
        let stats = |phase: fn(&PhaseSample) -> Duration| {
            PhaseStats::of(&samples.iter().map(phase).collect::<Vec<_>>())
        };
        Ok(CallPhases {
            calls,
            allocator: self.allocator(),
            store: stats(|s| s.store),
            instantiate: stats(|s| s.instantiate),
            round_trip: stats(|s| s.round_trip),
            teardown: stats(|s| s.teardown),
            total: PhaseStats::of(&totals),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn us(v: &[u64]) -> Vec<Duration> {
        v.iter().map(|&n| Duration::from_micros(n)).collect()
    }

    #[test]
    fn statistics_of_known_series() {
        // (samples in µs, mean, p50, p99)
        let table: [(&[u64], u64, u64, u64); 4] = [
            (&[], 0, 0, 0),
            (&[7], 7, 7, 7),
            (&[3, 1, 2], 2, 2, 3),
            (&[10, 20, 30, 40], 25, 20, 40),
        ];
        for (samples, mean, p50, p99) in table {
            let s = PhaseStats::of(&us(samples));
            assert_eq!(
                (s.mean, s.p50, s.p99),
                (
                    Duration::from_micros(mean),
                    Duration::from_micros(p50),
                    Duration::from_micros(p99)
                ),
                "{samples:?}"
            );
        }
        // 1..=100 µs: mean 50.5 µs; nearest rank 50 is 50, rank 99 is 99.
        let s = PhaseStats::of(&us(&(1..=100).collect::<Vec<u64>>()));
        assert_eq!(
            (s.mean, s.p50, s.p99),
            (
                Duration::from_nanos(50_500),
                Duration::from_micros(50),
                Duration::from_micros(99)
            )
        );
    }

    #[test]
    fn serialised_in_microseconds() {
        let s = PhaseStats::of(&us(&[2, 4]));
        assert_eq!(
            serde_json::to_value(s).unwrap(),
            serde_json::json!({"meanUs": 3.0, "p50Us": 2.0, "p99Us": 4.0})
        );
    }

    proptest! {
        #[test]
        fn percentiles_are_ordered_samples_and_the_mean_is_bounded(
            samples in prop::collection::vec(0u64..1_000_000, 1..300)
        ) {
            let d = us(&samples);
            let s = PhaseStats::of(&d);
            let (min, max) = (d.iter().min().unwrap(), d.iter().max().unwrap());
            prop_assert!(*min <= s.p50 && s.p50 <= s.p99 && s.p99 <= *max);
            prop_assert!(*min <= s.mean && s.mean <= *max);
            prop_assert!(d.contains(&s.p50) && d.contains(&s.p99));
        }
    }
}
