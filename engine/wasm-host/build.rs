//! Builds the provider components (the `providers/` workspace, for wasm32-wasip2) so that
//! `cargo build`/`cargo test` of the root workspace need nothing else. The nested cargo uses
//! its own target directory (`<outer target>/wasm-providers`) so it never waits on the lock the
//! outer build holds, and it is stripped of the outer build's environment (flags for the host
//! target, wrappers such as clippy-driver) that would confuse it.

use std::path::{Path, PathBuf};
use std::process::Command;

/// (crate name in providers/, env var carrying the built component's path)
const COMPONENTS: [(&str, &str); 5] = [
    ("fleetplane_provider_simulator", "FLEETPLANE_SIMULATOR_WASM"),
    ("fleetplane_test_noop", "FLEETPLANE_NOOP_WASM"),
    ("fleetplane_test_hostile", "FLEETPLANE_HOSTILE_WASM"),
    ("fleetplane_test_hostile_fs", "FLEETPLANE_HOSTILE_FS_WASM"),
    (
        "fleetplane_test_hostile_socket",
        "FLEETPLANE_HOSTILE_SOCKET_WASM",
    ),
];

fn main() {
    let manifest_dir = PathBuf::from(std::env::var_os("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir.join("../..");
    let providers = root.join("providers");
    for p in [
        providers.join("Cargo.toml"),
        providers.join("Cargo.lock"),
        providers.join(".cargo"),
        providers.join("sdk"),
        providers.join("simulator"),
        providers.join("testing"),
        root.join("wit"),
    ] {
        println!("cargo:rerun-if-changed={}", p.display());
    }

    let out_dir = PathBuf::from(std::env::var_os("OUT_DIR").expect("set by cargo"));
    let target_dir = wasm_target_dir(&out_dir);
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(cargo);
    cmd.current_dir(&providers)
        .args([
            "build",
            "--release",
            "--workspace",
            "--target",
            "wasm32-wasip2",
        ])
        .arg("--manifest-path")
        .arg(providers.join("Cargo.toml"))
        .arg("--target-dir")
        .arg(&target_dir);
    for (key, _) in std::env::vars_os() {
        let Some(k) = key.to_str() else { continue };
        let inherited_build_state = k.starts_with("CARGO_CFG_")
            || k.starts_with("CARGO_FEATURE_")
            || k.starts_with("CARGO_PKG_")
            || k.starts_with("CARGO_MANIFEST_")
            || k.starts_with("DEP_");
        let confusing = matches!(
            k,
            "RUSTFLAGS"
                | "CARGO_ENCODED_RUSTFLAGS"
                | "CARGO_BUILD_RUSTFLAGS"
                | "CARGO_TARGET_DIR"
                | "CARGO_BUILD_TARGET"
                | "CARGO_BUILD_TARGET_DIR"
                | "RUSTC_WORKSPACE_WRAPPER"
                | "RUSTC_WRAPPER"
                | "CLIPPY_ARGS"
                | "CARGO_PRIMARY_PACKAGE"
                | "CARGO_TARGET_TMPDIR"
                | "OUT_DIR"
                | "TARGET"
                | "HOST"
                | "PROFILE"
                | "OPT_LEVEL"
                | "DEBUG"
                | "NUM_JOBS"
                | "RUSTC_LINKER"
                | "CARGO_ENCODED_RUSTDOCFLAGS"
                | "RUSTDOCFLAGS"
        );
        if inherited_build_state || confusing {
            cmd.env_remove(&key);
        }
    }
    let status = cmd
        .status()
        .unwrap_or_else(|e| panic!("running cargo for providers/: {e}"));
    assert!(
        status.success(),
        "building the provider components failed (see above); is the wasm32-wasip2 target \
         installed? (`rustup target add wasm32-wasip2`)"
    );
    let release = target_dir.join("wasm32-wasip2").join("release");
    for (name, var) in COMPONENTS {
        let path = release.join(format!("{name}.wasm"));
        assert!(path.exists(), "{} was not built", path.display());
        println!("cargo:rustc-env={var}={}", path.display());
    }
}

/// `<outer target dir>/wasm-providers`: OUT_DIR is `<target>[/<triple>]/<profile>/build/<pkg>/out`.
fn wasm_target_dir(out_dir: &Path) -> PathBuf {
    out_dir
        .ancestors()
        .nth(4)
        .map(|t| t.join("wasm-providers"))
        .unwrap_or_else(|| out_dir.join("wasm-providers"))
}
