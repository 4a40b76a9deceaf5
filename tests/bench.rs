//! End-to-end test of `fleetplane bench`: the real binary starts its own server child process,
//! runs the `create` scenario at a small N and writes its JSON report. Only counts and the
//! presence of positive figures are asserted, never timings.

use serde_json::Value;
use std::process::Command;

fn number(report: &Value, pointer: &str) -> f64 {
    report
        .pointer(pointer)
        .and_then(Value::as_f64)
        .unwrap_or_else(|| panic!("no number at {pointer}: {report:#}"))
}

/// `fleetplane bench` without the caller's `FLEETPLANE_*` settings.
fn bench() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fleetplane"));
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("FLEETPLANE_") {
            cmd.env_remove(name);
        }
    }
    cmd.arg("bench");
    cmd
}

#[test]
fn bench_create_reports_every_figure_for_a_small_fleet() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let json = dir.path().join("report.json");
    let data = dir.path().join("data");
    let out = bench()
        .args(["--clusters", "20", "--scenario", "create"])
        .args(["--concurrency", "4", "--probe-commits", "50", "--json"])
        .arg(&json)
        .arg("--data-dir")
        .arg(&data)
        .output()
        .expect("run fleetplane bench");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "stdout:\n{stdout}\nstderr:\n{stderr}");
    for row in [
        "time to all running",
        "cluster PUT latency",
        "database size",
    ] {
        assert!(
            stdout.contains(row),
            "{row} missing from the table:\n{stdout}"
        );
    }
    let text = std::fs::read_to_string(&json).expect("the JSON report");
    let r: Value = serde_json::from_str(&text).expect("JSON");
    assert_eq!(r["clusters"], 20, "{r:#}");
    assert_eq!(r["create"]["created"], 20, "{r:#}");
    assert_eq!(r["create"]["running"], 20, "{r:#}");
    assert_eq!(r["create"]["putLatency"]["count"], 20, "{r:#}");
    assert_eq!(r["create"]["rateLimited"], 0, "{r:#}");
    assert_eq!(r["commitProbe"]["commits"], 50, "{r:#}");
    for pointer in [
        "/create/secondsToAllCreated",
        "/create/secondsToAllRunning",
        "/create/createdPerSecond",
        "/create/runningPerSecond",
        "/create/putLatency/p50Ms",
        "/create/putLatency/p99Ms",
        "/create/listPageLatency/p99Ms",
        "/create/transitions/perRun",
        "/create/transitions/perSecond",
        "/serverMemory/rssBytes",
        "/database/totalBytes",
        "/commitProbe/commitsPerSecond",
        "/transitionsPerCommitRate",
    ] {
        assert!(number(&r, pointer) > 0.0, "{pointer} not positive: {r:#}");
    }
    assert!(
        number(&r, "/create/secondsToAllRunning") >= number(&r, "/create/secondsToAllCreated"),
        "{r:#}"
    );
    assert!(
        number(&r, "/create/putLatency/p50Ms") <= number(&r, "/create/putLatency/p99Ms"),
        "{r:#}"
    );
    assert_eq!(r["create"]["transitions"]["sampledRuns"], 20, "{r:#}");
    // The data directory the user gave is kept, with the server's database in it.
    assert!(data.join("fleetplane.redb").is_file());

    // A data directory in use is refused rather than benchmarked over.
    let again = bench()
        .args(["--clusters", "1", "--data-dir"])
        .arg(&data)
        .output()
        .expect("run fleetplane bench");
    assert!(!again.status.success());
    assert!(
        String::from_utf8_lossy(&again.stderr).contains("not empty"),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
}
