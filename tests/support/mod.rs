//! The end-to-end harness: a real `fleetplane server` process per test (own temporary data
//! directory, own port, bootstrap key fixed through `FLEETPLANE_BOOTSTRAP_API_KEY`), raw HTTP
//! helpers, the typed client, and a runner of the `fleetplane` CLI pointed at the server.
//! The process is killed when the [`Server`] is dropped.

// Each test binary uses a different subset of these helpers.
#![allow(dead_code)]

pub mod crash;

use serde_json::Value;
use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// The admin API key every test server is bootstrapped with.
pub const ADMIN_KEY: &str = "fpk_e2e-admin-0123456789abcdefghijklmnopqrstuvwxyz";

/// How long a server may take to answer `/healthz` before the test fails.
const START_DEADLINE: Duration = Duration::from_secs(30);

/// The `fleetplane` binary under test.
pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_fleetplane")
}

/// Whether an external tool is on `PATH`. When it is not, the test should return early: this
/// prints why, unless `FLEETPLANE_TEST_REQUIRE_ALL=1` (CI), where a missing tool fails the test.
pub fn require_tool(name: &str) -> bool {
    let found = std::env::var_os("PATH").is_some_and(|paths| {
        std::env::split_paths(&paths).any(|dir| is_executable(&dir.join(name)))
    });
    if found {
        return true;
    }
    assert!(
        std::env::var("FLEETPLANE_TEST_REQUIRE_ALL").as_deref() != Ok("1"),
        "`{name}` is required (FLEETPLANE_TEST_REQUIRE_ALL=1) but is not on PATH; `.ci/run` installs it"
    );
    let _ = writeln!(
        std::io::stderr(),
        "skipped: `{name}` is not installed (`.ci/run` installs it)"
    );
    false
}

fn is_executable(path: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        path.metadata()
            .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        path.is_file()
    }
}

/// A port free at the time of the call (the OS picks it; the listener is dropped so the server
/// can bind it).
fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local address").port()
}

/// Environment for a `fleetplane` child process: the parent's, minus every `FLEETPLANE_*`
/// variable (the server rejects unknown ones and the tests must not inherit a user's settings).
fn clean_command() -> Command {
    let mut cmd = Command::new(bin());
    for (name, _) in std::env::vars_os() {
        if name.to_string_lossy().starts_with("FLEETPLANE_") {
            cmd.env_remove(name);
        }
    }
    cmd
}

/// Options of a test server.
#[derive(Debug, Clone, Default)]
pub struct ServerOptions {
    /// Extra environment (`FLEETPLANE_RATE_LIMIT_PER_KEY`, …).
    pub env: Vec<(String, String)>,
    /// Let the bootstrap generate the admin key instead of using [`ADMIN_KEY`].
    pub generated_key: bool,
}

impl ServerOptions {
    /// Adds an environment variable.
    pub fn env(mut self, name: &str, value: &str) -> Self {
        self.env.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Lets the bootstrap generate the admin key (read it from `<data-dir>/admin-api-key`).
    pub fn generated_key(mut self) -> Self {
        self.generated_key = true;
        self
    }
}

/// A running `fleetplane server` with its own data directory.
pub struct Server {
    child: Option<Child>,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    options: ServerOptions,
    dir: tempfile::TempDir,
    http: reqwest::Client,
    starts: u32,
}

impl Server {
    /// Starts a server with default settings and waits until it answers.
    pub async fn start() -> Self {
        Self::start_with(ServerOptions::default()).await
    }

    /// Starts a server with `options` and waits until it answers.
    pub async fn start_with(options: ServerOptions) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        std::fs::create_dir_all(dir.path().join("data")).expect("data directory");
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .expect("HTTP client");
        let mut server = Self {
            child: None,
            base_url: String::new(),
            options,
            dir,
            http,
            starts: 0,
        };
        server.spawn().await;
        server
    }

    /// The data directory.
    pub fn data_dir(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    /// A scratch directory of this test (outside the data directory).
    pub fn scratch(&self) -> &Path {
        self.dir.path()
    }

    fn log_path(&self) -> PathBuf {
        self.dir.path().join(format!("server-{}.log", self.starts))
    }

    /// The server's log (standard error) of the current run.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.log_path()).unwrap_or_default()
    }

    async fn spawn(&mut self) {
        // A port picked free can be taken by someone else before the server binds it: retry.
        for _ in 0..3 {
            self.starts += 1;
            let port = free_port();
            self.base_url = format!("http://127.0.0.1:{port}");
            let log = std::fs::File::create(self.log_path()).expect("log file");
            let mut cmd = clean_command();
            cmd.arg("server")
                .arg("--listen")
                .arg(format!("127.0.0.1:{port}"))
                .arg("--data-dir")
                .arg(self.data_dir())
                .env("RUST_BACKTRACE", "1")
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(log);
            if !self.options.generated_key {
                cmd.env("FLEETPLANE_BOOTSTRAP_API_KEY", ADMIN_KEY);
            }
            for (k, v) in &self.options.env {
                cmd.env(k, v);
            }
            let child = cmd.spawn().expect("spawn fleetplane server");
            self.child = Some(child);
            match self.wait_healthy().await {
                Ok(()) => return,
                Err(exited) if exited && self.log().contains("cannot listen") => continue,
                Err(_) => panic!(
                    "the server did not become healthy; its log:\n{}",
                    self.log()
                ),
            }
        }
        panic!(
            "the server could not bind a free port three times; last log:\n{}",
            self.log()
        );
    }

    /// Polls `/healthz` until 200, the process exits (`Err(true)`) or the deadline passes
    /// (`Err(false)`).
    async fn wait_healthy(&mut self) -> Result<(), bool> {
        let deadline = Instant::now() + START_DEADLINE;
        let url = self.url("/healthz");
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && child.try_wait().ok().flatten().is_some()
            {
                self.child = None;
                return Err(true);
            }
            if let Ok(r) = self
                .http
                .get(&url)
                .timeout(Duration::from_secs(2))
                .send()
                .await
                && r.status() == 200
            {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Err(false)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("the server runs").id()
    }

    /// Kills the server with SIGKILL (no shutdown work at all) and waits for it to be gone.
    pub fn kill9(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Starts the server again on the same data directory (after [`Server::kill9`]).
    pub async fn restart(&mut self) {
        self.kill9();
        self.spawn().await;
    }

    /// The URL of an API path.
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base_url)
    }

    /// A raw HTTP client (no default headers).
    pub fn http(&self) -> &reqwest::Client {
        &self.http
    }

    /// A request with the given key (`None`: unauthenticated).
    pub fn request(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
    ) -> reqwest::RequestBuilder {
        let req = self.http.request(method, self.url(path));
        match key {
            Some(k) => req.bearer_auth(k),
            None => req,
        }
    }

    /// Sends a request with an optional JSON body and reads the whole answer.
    pub async fn call(
        &self,
        method: reqwest::Method,
        path: &str,
        key: Option<&str>,
        body: Option<&Value>,
    ) -> Answer {
        let mut req = self.request(method, path, key);
        if let Some(b) = body {
            req = req.json(b);
        }
        Answer::read(req.send().await.expect("request sent")).await
    }

    /// `GET path` as the admin.
    pub async fn get(&self, path: &str) -> Answer {
        self.call(reqwest::Method::GET, path, Some(ADMIN_KEY), None)
            .await
    }

    /// `PUT path` as the admin.
    pub async fn put(&self, path: &str, body: &Value) -> Answer {
        self.call(reqwest::Method::PUT, path, Some(ADMIN_KEY), Some(body))
            .await
    }

    /// The typed client with `key`.
    pub fn client(&self, key: &str) -> fleetplane_client::Client {
        fleetplane_client::Client::new(
            fleetplane_client::ClientConfig::new(&self.base_url).api_key(key),
        )
        .expect("client")
    }

    /// Creates a user with a role (tenant-wide, or in `project`) and an API key; returns the key.
    pub async fn user_with_role(&self, user: &str, role: &str, project: Option<&str>) -> String {
        use fleetplane_client::{
            NewApiKey, Precondition, RoleBinding, RoleBindingSpec, User, UserSpec,
        };
        let admin = self.client(ADMIN_KEY);
        admin
            .put_user(&User::new(user, UserSpec::default()), &Precondition::None)
            .await
            .expect("create user");
        let spec = RoleBindingSpec {
            user: user.to_owned(),
            role: role.to_owned(),
            project: project.map(str::to_owned),
        };
        admin
            .put_role_binding(
                &RoleBinding::new(format!("{user}-{role}"), spec),
                &Precondition::None,
            )
            .await
            .expect("bind role");
        let key = admin
            .create_api_key(
                user,
                &NewApiKey {
                    name: "e2e".into(),
                    expires_in_days: None,
                },
            )
            .await
            .expect("create key");
        key.key
    }

    /// Runs the CLI against this server with `key` (the admin key when `None` is not wanted,
    /// pass `Some(ADMIN_KEY)`), a config file in the test's scratch directory, and no other
    /// `FLEETPLANE_*` settings.
    pub fn cli(&self, key: Option<&str>, args: &[&str]) -> CliRun {
        let mut env = vec![("FLEETPLANE_ENDPOINT".to_owned(), self.base_url.clone())];
        if let Some(k) = key {
            env.push(("FLEETPLANE_API_KEY".to_owned(), k.to_owned()));
        }
        self.cli_with(args, &env, None)
    }

    /// Runs the CLI with exactly `env` (plus the scratch config file) and optional stdin.
    pub fn cli_with(&self, args: &[&str], env: &[(String, String)], stdin: Option<&str>) -> CliRun {
        let mut all = vec![(
            "FLEETPLANE_CLIENT_CONFIG".to_owned(),
            self.client_config_path().display().to_string(),
        )];
        all.extend(env.iter().cloned());
        run_cli(args, &all, stdin)
    }

    /// The CLI config file the tests' CLI runs use.
    pub fn client_config_path(&self) -> PathBuf {
        self.dir.path().join("client").join("config.toml")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

/// A whole HTTP answer.
#[derive(Debug)]
pub struct Answer {
    /// Status code.
    pub status: u16,
    /// Headers.
    pub headers: reqwest::header::HeaderMap,
    /// Body text.
    pub text: String,
}

impl Answer {
    /// Reads an answer.
    pub async fn read(r: reqwest::Response) -> Self {
        let status = r.status().as_u16();
        let headers = r.headers().clone();
        let text = r.text().await.expect("answer body");
        Self {
            status,
            headers,
            text,
        }
    }

    /// The body as JSON (panics with the body when it is not JSON).
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text)
            .unwrap_or_else(|e| panic!("not JSON ({e}): HTTP {} {}", self.status, self.text))
    }

    /// A header as text.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }

    /// Asserts the answer is a problem+json with this status and code; returns the body.
    #[track_caller]
    pub fn assert_problem(&self, status: u16, code: &str) -> Value {
        assert_eq!(self.status, status, "status of {}", self.text);
        let ct = self.header("content-type").unwrap_or_default();
        assert!(
            ct.starts_with("application/problem+json"),
            "content-type {ct}: {}",
            self.text
        );
        let body = self.json();
        assert_eq!(body["code"], code, "{body}");
        assert_eq!(body["status"], status, "{body}");
        for member in ["type", "title", "detail"] {
            assert!(body[member].is_string(), "problem without {member}: {body}");
        }
        assert!(self.header("x-request-id").is_some(), "no x-request-id");
        body
    }
}

/// The field paths of a problem's `errors`.
pub fn problem_fields(problem: &Value) -> Vec<String> {
    problem["errors"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| e["field"].as_str().unwrap_or_default().to_owned())
        .collect()
}

/// What a CLI run left.
#[derive(Debug)]
pub struct CliRun {
    /// Exit code (-1 when killed by a signal).
    pub code: i32,
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
}

impl CliRun {
    /// Asserts success and returns standard output.
    #[track_caller]
    pub fn ok(&self) -> &str {
        assert_eq!(
            self.code, 0,
            "CLI failed:\nstdout: {}\nstderr: {}",
            self.stdout, self.stderr
        );
        &self.stdout
    }

    /// Standard output as JSON.
    #[track_caller]
    pub fn json(&self) -> Value {
        serde_json::from_str(self.ok())
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.stdout))
    }
}

/// Runs the `fleetplane` binary with `args`, exactly `env` as its `FLEETPLANE_*` settings, and
/// `stdin` (or none).
pub fn run_cli(args: &[&str], env: &[(String, String)], stdin: Option<&str>) -> CliRun {
    let mut cmd = clean_command();
    cmd.args(args).stdout(Stdio::piped()).stderr(Stdio::piped());
    // A HOME of nowhere, so a developer's own config file is never read.
    cmd.env("HOME", "/nonexistent-fleetplane-test-home")
        .env_remove("XDG_CONFIG_HOME");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let mut child = cmd.spawn().expect("spawn fleetplane");
    if let Some(input) = stdin {
        let mut pipe = child.stdin.take().expect("stdin pipe");
        pipe.write_all(input.as_bytes()).expect("write stdin");
    }
    let out = child.wait_with_output().expect("wait for fleetplane");
    CliRun {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}
