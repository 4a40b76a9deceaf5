//! End-to-end test of `fleetplane bench`: the real binary starts its own server child process,
//! runs every scenario (`create`, `rollout`, `waves`) at a small N and writes its JSON report.
//! Only counts, consistency and the presence of positive figures are asserted, never timings.

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
fn bench_all_reports_every_figure_for_a_small_fleet() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let json = dir.path().join("report.json");
    let data = dir.path().join("data");
    let out = bench()
        .args(["--clusters", "20", "--scenario", "all"])
        .args([
            "--concurrency",
            "4",
            "--probe-commits",
            "50",
            "--probe-calls",
            "20",
        ])
        // GETs on a schedule (open loop), list pages as fast as answered (closed loop).
        .args(["--readers", "1", "--get-rate", "200", "--json"])
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
        "rollout: 202 to Applied",
        "waves: GET cluster latency",
        "provider call (simulator)",
        "native call (empty async fn)",
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

    // Both rollouts moved every cluster to their revision, one after the other.
    let rollouts = r["rollouts"].as_array().expect("rollouts");
    let names: Vec<&str> = rollouts
        .iter()
        .filter_map(|x| x["scenario"].as_str())
        .collect();
    assert_eq!(names, ["rollout", "waves"], "{r:#}");
    assert_eq!(rollouts[0]["profileVersion"], "1.1.0", "{r:#}");
    assert_eq!(rollouts[1]["profileVersion"], "1.2.0", "{r:#}");
    assert!(
        rollouts[1]["revision"].as_u64() > rollouts[0]["revision"].as_u64(),
        "{r:#}"
    );
    assert_eq!(
        rollouts[1]["waves"],
        serde_json::json!(["ring-a", "ring-b"]),
        "{r:#}"
    );
    for (i, x) in rollouts.iter().enumerate() {
        assert_eq!(x["clustersUpdated"], 20, "{r:#}");
        assert_eq!(x["clustersFailed"], 0, "{r:#}");
        assert_eq!(x["transitions"]["children"], 20, "{r:#}");
        assert_eq!(x["transitions"]["sampledChildren"], 20, "{r:#}");
        for pointer in [
            "secondsToApplied",
            "updatesPerSecond",
            "getLatency/p99Ms",
            "listPageLatency/p99Ms",
            "templatePolls/p99Ms",
            "transitions/rootEntries",
            "transitions/perChild",
            "transitions/perSecond",
            "transitionsPerCommitRate",
        ] {
            let p = format!("/rollouts/{i}/{pointer}");
            assert!(number(&r, &p) > 0.0, "{p} not positive: {r:#}");
        }
        // The server's CPU time: present, and no more than its cores could give in the time.
        let cpu = number(&r, &format!("/rollouts/{i}/serverCpuSeconds"));
        let cores = std::thread::available_parallelism().map_or(1, usize::from) as f64;
        assert!(
            cpu >= 0.0
                && cpu <= number(&r, &format!("/rollouts/{i}/secondsToApplied")) * cores + 0.05,
            "serverCpuSeconds {cpu}: {r:#}"
        );
        assert!(
            number(&r, &format!("/rollouts/{i}/secondsToRunEnded"))
                >= number(&r, &format!("/rollouts/{i}/secondsToApplied")),
            "{r:#}"
        );
        assert_eq!(x["readers"]["getsPerSecond"], 200, "{r:#}");
        assert!(x["readers"]["pagesPerSecond"].is_null(), "{r:#}");
        for what in ["getLatency", "listPageLatency"] {
            let l = &x[what];
            assert!(l["count"].as_u64() >= Some(1), "{r:#}");
            assert!(l["p50Ms"].as_f64() <= l["p99Ms"].as_f64(), "{r:#}");
        }
    }

    // The provider-call probe measured the simulator and the native call.
    assert_eq!(r["providerProbe"]["calls"], 20, "{r:#}");
    for pointer in [
        "/providerProbe/simulatorInstallMs",
        "/providerProbe/simulatorValidate/meanUs",
        "/providerProbe/simulatorValidate/latency/p99Ms",
        "/providerProbe/native/latency/p99Ms",
        "/providerProbe/simulatorOverNative",
        "/providerProbe/simulatorPhases/instantiate/p50Us",
        "/providerProbe/simulatorPhases/roundTrip/p50Us",
        "/providerProbe/simulatorPhases/total/meanUs",
    ] {
        assert!(number(&r, pointer) > 0.0, "{pointer} not positive: {r:#}");
    }
    assert_eq!(
        r["providerProbe"]["simulatorValidate"]["latency"]["count"], 20,
        "{r:#}"
    );
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
