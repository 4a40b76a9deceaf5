//! End-to-end tests of providers and cloud accounts against a real server process: the
//! bootstrap simulator and account, `provider test` (conformance kit, locally), install through
//! the CLI, and a component file changed on disk refused at the next start.

mod support;

use fleetplane_server::wasm_host::{Digest, components};
use serde_json::Value;
use support::{ADMIN_KEY, Server, run_cli};

fn names(list: &Value) -> Vec<String> {
    list["items"]
        .as_array()
        .unwrap_or_else(|| panic!("not a list: {list}"))
        .iter()
        .map(|i| {
            i["metadata"]["name"]
                .as_str()
                .unwrap_or_default()
                .to_owned()
        })
        .collect()
}

#[tokio::test]
async fn bootstrap_installs_the_simulator_and_its_account() {
    let server = Server::start().await;
    let providers = server
        .cli(Some(ADMIN_KEY), &["provider", "list", "-o", "json"])
        .json();
    assert_eq!(names(&providers), ["simulator"]);
    assert_eq!(providers["items"][0]["status"]["health"], "healthy");
    let accounts = server
        .cli(
            Some(ADMIN_KEY),
            &["cloud-account", "list", "-p", "default", "-o", "json"],
        )
        .json();
    assert_eq!(names(&accounts), ["simulator"]);
    let sim = &accounts["items"][0];
    assert_eq!(sim["spec"]["provider"], "simulator");
    assert_eq!(sim["spec"]["config"]["timeScale"], 0.1);
    assert_eq!(sim["status"]["phase"], "Valid", "{sim}");
    let key = std::fs::metadata(server.data_dir().join("secret-key")).unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(key.permissions().mode() & 0o777, 0o600);
    }
}

#[test]
fn provider_test_passes_the_simulator_and_fails_a_broken_file() {
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("simulator.wasm");
    std::fs::write(&good, components::SIMULATOR_WASM).unwrap();
    let run = run_cli(
        &[
            "provider",
            "test",
            good.to_str().unwrap(),
            "--config",
            "timeScale=0",
        ],
        &[],
        None,
    );
    let out = run.ok();
    assert!(
        out.contains("required failed") || out.contains("checks"),
        "{out}"
    );
    let broken = dir.path().join("broken.wasm");
    std::fs::write(&broken, b"\0asm garbage").unwrap();
    let run = run_cli(&["provider", "test", broken.to_str().unwrap()], &[], None);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("cannot install"), "{}", run.stderr);
}

#[tokio::test]
async fn install_through_the_cli_and_refuse_a_changed_file_after_restart() {
    let mut server = Server::start().await;
    let wasm = server.scratch().join("sim2.wasm");
    std::fs::write(&wasm, components::SIMULATOR_WASM).unwrap();
    let mut manifest: Value = serde_json::from_str(components::SIMULATOR_MANIFEST).unwrap();
    manifest["name"] = "sim2".into();
    let manifest_path = server.scratch().join("sim2.json");
    std::fs::write(&manifest_path, manifest.to_string()).unwrap();
    let digest = Digest::of(components::SIMULATOR_WASM);
    let (w, m) = (wasm.to_str().unwrap(), manifest_path.to_str().unwrap());

    // A wrong expected digest is refused.
    let wrong = Digest::of(b"something else").to_string();
    let run = server.cli(
        Some(ADMIN_KEY),
        &[
            "provider",
            "install",
            w,
            "--manifest",
            m,
            "--digest",
            &wrong,
        ],
    );
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(run.stderr.contains("digest"), "{}", run.stderr);

    let run = server.cli(
        Some(ADMIN_KEY),
        &[
            "provider",
            "install",
            w,
            "--manifest",
            m,
            "--digest",
            &digest.to_string(),
            "-o",
            "json",
        ],
    );
    let installed = run.json();
    assert_eq!(installed["spec"]["digest"], digest.to_string());
    assert_eq!(installed["status"]["health"], "healthy");
    let run = server.cli(
        Some(ADMIN_KEY),
        &[
            "cloud-account",
            "create",
            "acct",
            "-p",
            "default",
            "--provider",
            "sim2",
            "--config",
            "timeScale=0",
            "-o",
            "json",
        ],
    );
    assert_eq!(run.json()["status"]["phase"], "Valid");
    let run = server.cli(Some(ADMIN_KEY), &["provider", "remove", "sim2"]);
    assert_eq!(run.code, 1, "in use: {}", run.stderr);
    assert!(run.stderr.contains("InvalidState"), "{}", run.stderr);

    // One changed byte in the stored component: refused at the next start.
    let stored = server
        .data_dir()
        .join("providers")
        .join(format!("{}.wasm", digest.hex()));
    let mut bytes = std::fs::read(&stored).unwrap();
    bytes[200] ^= 1;
    std::fs::write(&stored, bytes).unwrap();
    server.restart().await;
    let got = server
        .cli(Some(ADMIN_KEY), &["provider", "get", "sim2", "-o", "json"])
        .json();
    assert_eq!(got["status"]["health"], "unhealthy", "{got}");
    assert!(
        got["status"]["reason"].as_str().unwrap().contains("digest"),
        "{got}"
    );
    assert!(
        server.log().contains("provider refused"),
        "{}",
        server.log()
    );
    let list = server.cli(Some(ADMIN_KEY), &["provider", "list"]);
    assert!(list.ok().contains("unhealthy"), "{}", list.stdout);
}
