//! Measures the profile hot paths: importing (parse, rewrite, validate against the catalog) and
//! rendering a version for one cluster. Run with
//! `cargo run -p fleetplane-domain --release --example profile_bench [iterations]`.
//! Timings are printed, never asserted.

#![allow(clippy::print_stdout)]

use fleetplane_domain::profile::{
    Catalog, Macro, Macros, SystemValues, import_document, render_version,
};
use std::collections::BTreeMap;
use std::hint::black_box;
use std::time::{Duration, Instant};

const AWS_EXAMPLE: &str = include_str!("../../../examples/profiles/aws-standard-1.0.0.json");
const OBSERVABILITY_EXAMPLE: &str =
    include_str!("../../../examples/profiles/observability-1.0.0.json");
const PALETTE_FIXTURE: &str = include_str!("../tests/fixtures/palette-edge-web.json");

fn per_iteration(total: Duration, n: usize) -> String {
    let us = total.as_secs_f64() * 1e6 / n as f64;
    format!("{us:9.1} µs")
}

fn time<F: FnMut(usize)>(n: usize, mut f: F) -> Duration {
    for i in 0..n.min(50) {
        f(i);
    }
    let start = Instant::now();
    for i in 0..n {
        f(i);
    }
    start.elapsed()
}

fn main() {
    let n: usize = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2000);
    let catalog = Catalog::builtin();
    println!(
        "profile_bench: {n} iterations each ({} build)",
        if cfg!(debug_assertions) {
            "debug"
        } else {
            "release"
        }
    );

    for (label, doc) in [
        ("import aws-standard (Fleetplane)", AWS_EXAMPLE),
        ("import observability (Fleetplane)", OBSERVABILITY_EXAMPLE),
        ("import edge-web (Palette, 9 rewrites)", PALETTE_FIXTURE),
    ] {
        let total = time(n, |_| {
            let imported = import_document(black_box(doc.as_bytes())).expect("example imports");
            imported.validate(&catalog).expect("example validates");
            black_box(imported);
        });
        println!(
            "{label:<44} {} per document ({} bytes)",
            per_iteration(total, n),
            doc.len()
        );
    }

    let macros = Macros::resolve(
        &[Macro {
            name: "registry_mirror".into(),
            value: "registry.k8s.io".into(),
        }],
        &[Macro {
            name: "domain".into(),
            value: "example.com".into(),
        }],
        &[],
    );
    for (label, doc, values) in [
        (
            "render aws-standard (5 layers)",
            AWS_EXAMPLE,
            vec![("greeting", "Hello"), ("replicas", "3")],
        ),
        (
            "render observability (1 layer)",
            OBSERVABILITY_EXAMPLE,
            vec![("grafana_admin_password", "correct horse battery")],
        ),
        (
            "render edge-web (Palette, 5 layers)",
            PALETTE_FIXTURE,
            vec![("api_token", "abcdefgh12")],
        ),
    ] {
        let version = import_document(doc.as_bytes())
            .expect("example imports")
            .version;
        let values: BTreeMap<String, String> = values
            .into_iter()
            .map(|(k, v)| (k.to_owned(), v.to_owned()))
            .collect();
        let mut bytes = 0;
        let total = time(n, |i| {
            let system = SystemValues {
                cluster_name: format!("cluster-{i}"),
                cluster_uid: format!("00000000-0000-4000-8000-{i:012}"),
                region: Some("eu-west-1".into()),
                project_name: Some("default".into()),
                ..SystemValues::default()
            };
            let rendered =
                render_version(&version, &values, &macros, &system).expect("example renders");
            bytes = rendered.iter().map(|l| l.values.len()).sum::<usize>();
            black_box(rendered);
        });
        println!(
            "{label:<44} {} per cluster ({bytes} bytes of values)",
            per_iteration(total, n)
        );
    }
}
