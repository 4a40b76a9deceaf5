//! A headless Chromium driven through chromedriver with the W3C WebDriver protocol (plain JSON
//! over HTTP with `reqwest`; no WebDriver crate). Every wait is on a condition with a deadline.
//! The driver runs in its own process group, which is killed (with Chromium) on drop.

use serde_json::{Value, json};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How long chromedriver may take to accept sessions, and any page condition to come true.
pub const DEADLINE: Duration = Duration::from_secs(30);
/// How often a condition is checked.
const POLL: Duration = Duration::from_millis(100);
/// The W3C element reference key.
const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";

/// A chromedriver process with one headless Chromium session.
pub struct Browser {
    http: reqwest::Client,
    /// `http://127.0.0.1:<port>/session/<id>`.
    session: String,
    driver: Child,
    stopped: bool,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    l.local_addr().expect("local address").port()
}

fn on_path(name: &str) -> String {
    std::env::var_os("PATH")
        .and_then(|paths| {
            std::env::split_paths(&paths)
                .map(|d| d.join(name))
                .find(|p| p.is_file())
        })
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| name.to_owned())
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium session with a fresh
    /// profile directory. Panics (with the driver's log) when either does not come up in time.
    pub async fn start() -> Self {
        let profile = tempfile::tempdir().expect("profile directory");
        let log = profile.path().join("chromedriver.log");
        let port = free_port();
        let mut cmd = Command::new(on_path("chromedriver"));
        cmd.arg(format!("--port={port}"))
            .arg(format!("--log-path={}", log.display()))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null());
        #[cfg(unix)]
        {
            use std::os::unix::process::CommandExt;
            cmd.process_group(0);
        }
        let driver = cmd.spawn().expect("spawn chromedriver");
        let http = reqwest::Client::builder()
            .timeout(DEADLINE)
            .build()
            .expect("HTTP client");
        let mut b = Self {
            http,
            session: String::new(),
            driver,
            stopped: false,
            _profile: profile,
        };
        let base = format!("http://127.0.0.1:{port}");
        let deadline = Instant::now() + DEADLINE;
        loop {
            let ready = b
                .http
                .get(format!("{base}/status"))
                .timeout(Duration::from_secs(2))
                .send()
                .await;
            if let Ok(r) = ready
                && let Ok(v) = r.json::<Value>().await
                && v["value"]["ready"] == true
            {
                break;
            }
            if let Ok(Some(status)) = b.driver.try_wait() {
                panic!("chromedriver exited ({status}): {}", b.log());
            }
            assert!(
                Instant::now() < deadline,
                "chromedriver not ready in {DEADLINE:?}: {}",
                b.log()
            );
            tokio::time::sleep(POLL).await;
        }
        let data_dir = b._profile.path().join("chromium");
        let caps = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {
                "binary": on_path("chromium"),
                "args": [
                    "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1400,900",
                    format!("--user-data-dir={}", data_dir.display()),
                ],
            },
        }}});
        let r = b
            .http
            .post(format!("{base}/session"))
            .json(&caps)
            .send()
            .await
            .expect("new session");
        let v: Value = r.json().await.expect("session answer");
        let id = v["value"]["sessionId"]
            .as_str()
            .unwrap_or_else(|| panic!("no session: {v}\n{}", b.log()))
            .to_owned();
        b.session = format!("{base}/session/{id}");
        b
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self._profile.path().join("chromedriver.log"))
            .map(|l| l.lines().rev().take(40).collect::<Vec<_>>().join("\n"))
            .unwrap_or_default()
    }

    /// One WebDriver command; returns its `value`, or the WebDriver error answer.
    async fn try_cmd(
        &self,
        method: reqwest::Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, String> {
        let mut req = self
            .http
            .request(method.clone(), format!("{}{path}", self.session));
        if let Some(b) = body {
            req = req.json(&b);
        }
        let r = req
            .send()
            .await
            .unwrap_or_else(|e| panic!("{method} {path}: {e}"));
        let status = r.status();
        let v: Value = r.json().await.expect("WebDriver answer");
        if status.is_success() {
            Ok(v["value"].clone())
        } else {
            Err(format!("{method} {path}: {status} {v}"))
        }
    }

    /// One WebDriver command; returns its `value`, panicking on a WebDriver error.
    async fn cmd(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.try_cmd(method, path, body)
            .await
            .unwrap_or_else(|e| panic!("{e}"))
    }

    /// Navigates to `url` (returns when the page has loaded).
    pub async fn goto(&self, url: &str) {
        self.cmd(reqwest::Method::POST, "/url", Some(json!({"url": url})))
            .await;
    }

    /// The current URL.
    pub async fn url(&self) -> String {
        let v = self.cmd(reqwest::Method::GET, "/url", None).await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// The element matching a CSS selector (panics when there is none).
    pub async fn find(&self, css: &str) -> String {
        let v = self
            .cmd(
                reqwest::Method::POST,
                "/element",
                Some(json!({"using": "css selector", "value": css})),
            )
            .await;
        v[ELEMENT]
            .as_str()
            .unwrap_or_else(|| panic!("no element {css}: {v}"))
            .to_owned()
    }

    /// Types `text` into the element matching `css`.
    pub async fn type_into(&self, css: &str, text: &str) {
        let el = self.find(css).await;
        self.cmd(
            reqwest::Method::POST,
            &format!("/element/{el}/value"),
            Some(json!({"text": text})),
        )
        .await;
    }

    /// Clicks the element matching `css`. The console's live script may replace the element
    /// between finding and clicking it (a "stale element"); the element is then found again,
    /// a bounded number of times.
    pub async fn click(&self, css: &str) {
        let mut last = String::new();
        for _ in 0..50 {
            let el = self.find(css).await;
            match self
                .try_cmd(
                    reqwest::Method::POST,
                    &format!("/element/{el}/click"),
                    Some(json!({})),
                )
                .await
            {
                Ok(_) => return,
                Err(e) if e.contains("stale element") => {
                    last = e;
                    tokio::time::sleep(std::time::Duration::from_millis(100)).await;
                }
                Err(e) => panic!("{e}"),
            }
        }
        panic!("clicking {css} kept finding a stale element: {last}");
    }

    /// Runs a script in the page (`return ...;`) and returns its result.
    pub async fn eval(&self, script: &str) -> Value {
        self.cmd(
            reqwest::Method::POST,
            "/execute/sync",
            Some(json!({"script": script, "args": []})),
        )
        .await
    }

    /// The page's visible text.
    pub async fn text(&self) -> String {
        let v = self.eval("return document.body.innerText;").await;
        v.as_str().unwrap_or_default().to_owned()
    }

    /// Waits until `script` returns `true`, for at most [`DEADLINE`]; panics with `what` and the
    /// page text otherwise.
    pub async fn wait_for(&self, what: &str, script: &str) {
        let deadline = Instant::now() + DEADLINE;
        loop {
            if self.eval(script).await == Value::Bool(true) {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "timed out after {DEADLINE:?} waiting for {what}; page {}:\n{}",
                    self.url().await,
                    self.text().await
                );
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// Saves a PNG screenshot of the window.
    pub async fn screenshot(&self, path: &std::path::Path) {
        use base64::Engine;
        let v = self.cmd(reqwest::Method::GET, "/screenshot", None).await;
        let png = base64::engine::general_purpose::STANDARD
            .decode(v.as_str().unwrap_or_default())
            .expect("screenshot is base64");
        std::fs::write(path, png).expect("write screenshot");
    }

    /// Ends the session (closing Chromium) and stops the driver.
    pub async fn quit(mut self) {
        let _ = self
            .http
            .delete(&self.session)
            .timeout(Duration::from_secs(10))
            .send()
            .await;
        self.kill();
    }

    fn kill(&mut self) {
        if std::mem::replace(&mut self.stopped, true) {
            return;
        }
        #[cfg(unix)]
        {
            // The driver leads its own process group, Chromium included.
            let _ = Command::new("kill")
                .args(["-KILL", "--", &format!("-{}", self.driver.id())])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        self.kill();
    }
}
