//! How the simulated cloud carries a large fleet: creates N clusters at time scale 0 through the
//! simulated cloud's own API (no component in between), describes them all, updates them all,
//! and prints wall time, rates, the database size and the resident memory.
//!
//! `cargo run --release -p fleetplane-wasm-host --example simcloud_scale -- 100000`

use fleetplane_wasm_host::{
    ClusterRef, ClusterSpec, LayerKind, NodePool, RenderedLayer, SimCloud, SystemClock,
};
use std::sync::Arc;
use std::time::Instant;

fn spec(i: usize, k8s: &str) -> ClusterSpec {
    let layer = |name: &str, layer, pack: &str, version: &str| RenderedLayer {
        name: name.into(),
        layer,
        pack: pack.into(),
        version: version.into(),
        values: format!("cluster: c{i}\n"),
    };
    ClusterSpec {
        cluster: ClusterRef {
            id: format!("id-{i}"),
            name: format!("c{i}"),
            region: "eu-west-1".into(),
        },
        cloud_type: "aws".into(),
        labels: vec![("ring".into(), (i % 4).to_string())],
        node_pools: vec![
            NodePool {
                name: "cp".into(),
                control_plane: true,
                count: 1,
                instance_type: "m5.large".into(),
            },
            NodePool {
                name: "workers".into(),
                control_plane: false,
                count: 2,
                instance_type: "m5.xlarge".into(),
            },
        ],
        os_image: "ubuntu-22.04".into(),
        kubernetes_version: k8s.into(),
        layers: vec![
            layer("os", LayerKind::Os, "ubuntu-aws", "22.04"),
            layer("k8s", LayerKind::K8s, "kubernetes", k8s),
            layer("cni", LayerKind::Cni, "cni-calico", "3.28.0"),
            layer("csi", LayerKind::Csi, "csi-aws-ebs", "1.35.0"),
            layer("hello", LayerKind::Addon, "hello-universe", "1.2.0"),
        ],
        revision: format!("r-{k8s}"),
    }
}

fn rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| {
                l.split_whitespace()
                    .nth(1)
                    .and_then(|kb| kb.parse::<f64>().ok())
            })
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

#[allow(clippy::print_stdout)]
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|s| s.parse())
        .transpose()?
        .unwrap_or(10_000);
    let dir = tempfile::tempdir()?;
    let path = dir.path().join("simcloud.redb");
    let cloud = SimCloud::open(&path, Arc::new(SystemClock))?;

    let t = Instant::now();
    for i in 0..n {
        cloud.create("bench/sim", 0.0, &format!("create-{i}"), spec(i, "1.33.4"))?;
    }
    let create = t.elapsed();

    let t = Instant::now();
    let mut running = 0;
    for i in 0..n {
        let r = ClusterRef {
            id: format!("id-{i}"),
            name: format!("c{i}"),
            region: "eu-west-1".into(),
        };
        let s = cloud.describe("bench/sim", &r)?;
        if format!("{:?}", s.phase) == "Running" {
            running += 1;
        }
    }
    let describe = t.elapsed();

    let t = Instant::now();
    for i in 0..n {
        cloud.update(
            "bench/sim",
            0.0,
            &format!("update-{i}"),
            spec(i, "1.34.1"),
            true,
        )?;
    }
    let update = t.elapsed();
    let rss = rss_mib();
    drop(cloud);
    let size = std::fs::metadata(&path)?.len() as f64 / (1024.0 * 1024.0);

    let rate = |d: std::time::Duration| n as f64 / d.as_secs_f64();
    println!("simulated clusters      {n}");
    println!(
        "create (time scale 0)   {:>8.2} s  {:>10.0} clusters/s",
        create.as_secs_f64(),
        rate(create)
    );
    println!(
        "describe                {:>8.2} s  {:>10.0} clusters/s  ({running} Running)",
        describe.as_secs_f64(),
        rate(describe)
    );
    println!(
        "update with repave      {:>8.2} s  {:>10.0} clusters/s",
        update.as_secs_f64(),
        rate(update)
    );
    println!("resident memory         {rss:>8.1} MiB");
    println!("simcloud.redb size      {size:>8.1} MiB");
    Ok(())
}
