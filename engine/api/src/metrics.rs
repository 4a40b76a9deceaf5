//! Request counters and latency histograms, written in the Prometheus text format.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

const BUCKETS_MS: [u64; 10] = [1, 2, 5, 10, 20, 50, 100, 250, 1000, 5000];
const CLASSES: [&str; 5] = ["1xx", "2xx", "3xx", "4xx", "5xx"];

/// Counters of served requests.
#[derive(Default)]
pub struct Metrics {
    by_class: [AtomicU64; 5],
    buckets: [AtomicU64; BUCKETS_MS.len()],
    sum_micros: AtomicU64,
    count: AtomicU64,
    rate_limited: AtomicU64,
}

impl Metrics {
    /// Records one finished request.
    pub fn observe(&self, status: u16, elapsed: Duration) {
        let class = usize::from(status / 100).clamp(1, 5) - 1;
        self.by_class[class].fetch_add(1, Ordering::Relaxed);
        let ms = elapsed.as_millis() as u64;
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            if ms <= *b {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.sum_micros
            .fetch_add(elapsed.as_micros() as u64, Ordering::Relaxed);
        self.count.fetch_add(1, Ordering::Relaxed);
        if status == 429 {
            self.rate_limited.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The Prometheus exposition text.
    pub fn render(&self) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP fleetplane_http_requests_total HTTP requests served."
        );
        let _ = writeln!(out, "# TYPE fleetplane_http_requests_total counter");
        for (i, c) in CLASSES.iter().enumerate() {
            let v = self.by_class[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "fleetplane_http_requests_total{{class=\"{c}\"}} {v}");
        }
        let _ = writeln!(
            out,
            "# HELP fleetplane_http_rate_limited_total Requests answered 429."
        );
        let _ = writeln!(out, "# TYPE fleetplane_http_rate_limited_total counter");
        let _ = writeln!(
            out,
            "fleetplane_http_rate_limited_total {}",
            self.rate_limited.load(Ordering::Relaxed)
        );
        let _ = writeln!(
            out,
            "# HELP fleetplane_http_request_duration_seconds Request latency."
        );
        let _ = writeln!(
            out,
            "# TYPE fleetplane_http_request_duration_seconds histogram"
        );
        for (i, b) in BUCKETS_MS.iter().enumerate() {
            let v = self.buckets[i].load(Ordering::Relaxed);
            let le = *b as f64 / 1000.0;
            let _ = writeln!(
                out,
                "fleetplane_http_request_duration_seconds_bucket{{le=\"{le}\"}} {v}"
            );
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(
            out,
            "fleetplane_http_request_duration_seconds_bucket{{le=\"+Inf\"}} {count}"
        );
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "fleetplane_http_request_duration_seconds_sum {sum}");
        let _ = writeln!(
            out,
            "fleetplane_http_request_duration_seconds_count {count}"
        );
        out
    }
}
