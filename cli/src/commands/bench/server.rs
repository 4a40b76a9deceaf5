//! The server the bench measures when no `--endpoint` is given: this same executable started as
//! a `fleetplane server` child process on `127.0.0.1:0`, in its own data directory, with a
//! generated bootstrap key and the per-client rate limits lifted (the bench is one client doing
//! the work of many).

use anyhow::Context as _;
use serde::Serialize;
use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

/// How long the server may take to listen (it compiles the built-in simulator component on
/// its first start).
const START_DEADLINE: Duration = Duration::from_secs(180);
/// How long a stopping server may take before it is killed.
const STOP_DEADLINE: Duration = Duration::from_secs(30);
/// Rate limits high enough never to answer the bench 429.
const UNLIMITED: &str = "1000000";
/// Name of the server's log file (next to the data directory, or in it when given).
const LOG_FILE: &str = "bench-server.log";

/// A running `fleetplane server` child process.
pub struct ChildServer {
    child: tokio::process::Child,
    /// `http://127.0.0.1:<port>`.
    pub base_url: String,
    /// The tenant admin key it was bootstrapped with.
    pub api_key: String,
    /// Its data directory.
    pub data_dir: PathBuf,
    log: PathBuf,
    /// The temporary directory to remove at the end (none when the user gave the directory).
    temp_root: Option<PathBuf>,
}

/// Resident memory of a process (Linux `/proc/<pid>/status`).
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct Memory {
    /// `VmRSS`: resident now, bytes.
    pub rss_bytes: u64,
    /// `VmHWM`: the peak resident size, bytes.
    pub peak_rss_bytes: u64,
}

impl ChildServer {
    /// Starts the server in `data_dir` (which must be empty or absent) or in a new temporary
    /// directory, with configuration file `config` if given, and waits until it listens.
    ///
    /// # Errors
    /// The directory is not empty, the executable cannot be started, or the server exits or
    /// does not listen within the deadline (the error carries the end of its log).
    pub async fn start(data_dir: Option<&Path>, config: Option<&Path>) -> anyhow::Result<Self> {
        let (temp_root, data_dir, log) = match data_dir {
            Some(d) => {
                check_fresh(d)?;
                (None, d.to_owned(), d.join(LOG_FILE))
            }
            None => {
                let root = unique_temp_dir()?;
                (Some(root.clone()), root.join("data"), root.join(LOG_FILE))
            }
        };
        std::fs::create_dir_all(&data_dir)
            .with_context(|| format!("cannot create {}", data_dir.display()))?;
        let api_key = generate_key();
        let exe = std::env::current_exe().context("cannot find the fleetplane executable")?;
        let log_file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let mut cmd = tokio::process::Command::new(exe);
        cmd.arg("server")
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--log-format")
            .arg("json")
            .arg("--log-level")
            .arg("warn,fleetplane_server=info");
        if let Some(c) = config {
            cmd.arg("--config").arg(c);
        }
        // The server refuses unknown FLEETPLANE_* variables and must not take the user's.
        for (name, _) in std::env::vars_os() {
            if name.to_string_lossy().starts_with("FLEETPLANE_") {
                cmd.env_remove(name);
            }
        }
        cmd.env("FLEETPLANE_BOOTSTRAP_API_KEY", &api_key)
            .env("FLEETPLANE_RATE_LIMIT_PER_KEY", UNLIMITED)
            .env("FLEETPLANE_RATE_LIMIT_PER_ADDRESS", UNLIMITED)
            .env("FLEETPLANE_RATE_LIMIT_BURST", UNLIMITED)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log_file)
            .kill_on_drop(true);
        let child = cmd.spawn().context("cannot start `fleetplane server`")?;
        let mut server = Self {
            child,
            base_url: String::new(),
            api_key,
            data_dir,
            log,
            temp_root,
        };
        let deadline = Instant::now() + START_DEADLINE;
        loop {
            if let Some(addr) = listening_address(&read_log(&server.log)) {
                server.base_url = format!("http://{addr}");
                return Ok(server);
            }
            if let Some(status) = server.child.try_wait()? {
                anyhow::bail!(
                    "`fleetplane server` exited ({status}) before listening:\n{}",
                    server.log_tail()
                );
            }
            anyhow::ensure!(
                Instant::now() < deadline,
                "`fleetplane server` did not listen within {}s:\n{}",
                START_DEADLINE.as_secs(),
                server.log_tail()
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// The process id.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// The resident memory of the server now (None where `/proc` is not available).
    pub fn memory(&self) -> Option<Memory> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid()?)).ok()?;
        parse_memory(&status)
    }

    /// CPU time the server has used so far, user and system, all its threads (None where
    /// `/proc` is not available).
    pub fn cpu_time(&self) -> Option<Duration> {
        let stat = std::fs::read_to_string(format!("/proc/{}/stat", self.pid()?)).ok()?;
        parse_cpu_ticks(&stat).map(|ticks| {
            Duration::from_secs_f64(
                ticks as f64 / rustix::param::clock_ticks_per_second().max(1) as f64,
            )
        })
    }

    /// The last lines of the server's log.
    pub fn log_tail(&self) -> String {
        let text = read_log(&self.log);
        let lines: Vec<&str> = text.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Stops the server (SIGTERM, then a kill after a deadline) and removes the temporary
    /// directory; a directory the user gave is kept.
    ///
    /// # Errors
    /// Waiting for the process fails.
    pub async fn stop(mut self) -> anyhow::Result<()> {
        if let Some(pid) = self.child.id() {
            // Graceful: the server finishes its requests and the runtime its batch.
            let _ = tokio::process::Command::new("kill")
                .arg("-TERM")
                .arg(pid.to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status()
                .await;
        }
        if tokio::time::timeout(STOP_DEADLINE, self.child.wait())
            .await
            .is_err()
        {
            self.child.start_kill()?;
            self.child.wait().await?;
        }
        Ok(())
    }
}

impl Drop for ChildServer {
    fn drop(&mut self) {
        let _ = self.child.start_kill();
        if let Some(root) = &self.temp_root {
            let _ = std::fs::remove_dir_all(root);
        }
    }
}

/// Checks that `dir` is empty or absent (the bench needs a fresh store it bootstraps itself).
///
/// # Errors
/// The directory has entries or cannot be read.
pub fn check_fresh(dir: &Path) -> anyhow::Result<()> {
    let empty = match std::fs::read_dir(dir) {
        Ok(mut entries) => entries.next().is_none(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => true,
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", dir.display())),
    };
    anyhow::ensure!(
        empty,
        "--data-dir {} is not empty: the bench needs a fresh store",
        dir.display()
    );
    Ok(())
}

fn read_log(path: &Path) -> String {
    let mut text = String::new();
    if let Ok(mut f) = std::fs::File::open(path) {
        let _ = f.read_to_string(&mut text);
    }
    text
}

/// The address from the server's JSON log line `listening on <addr>`.
fn listening_address(log: &str) -> Option<String> {
    log.lines().find_map(|line| {
        let v: serde_json::Value = serde_json::from_str(line).ok()?;
        let fields = v.get("fields")?;
        let message = fields.get("message")?.as_str()?;
        message.strip_prefix("listening on ")?;
        fields
            .get("addr")
            .and_then(|a| a.as_str())
            .map(str::to_owned)
    })
}

/// `VmRSS` and `VmHWM` from the text of `/proc/<pid>/status`.
fn parse_memory(status: &str) -> Option<Memory> {
    let kib = |name: &str| -> Option<u64> {
        let line = status.lines().find(|l| l.starts_with(name))?;
        let value = line[name.len()..].trim().strip_suffix("kB")?.trim();
        value.parse::<u64>().ok().map(|k| k * 1024)
    };
    Some(Memory {
        rss_bytes: kib("VmRSS:")?,
        peak_rss_bytes: kib("VmHWM:")?,
    })
}

/// `utime + stime` (clock ticks) from the text of `/proc/<pid>/stat`: fields 14 and 15, counted
/// after the command name, which is in parentheses and may hold spaces.
fn parse_cpu_ticks(stat: &str) -> Option<u64> {
    let fields: Vec<&str> = stat
        .get(stat.rfind(')')? + 1..)?
        .split_whitespace()
        .collect();
    let field = |n: usize| fields.get(n - 3)?.parse::<u64>().ok();
    Some(field(14)? + field(15)?)
}

fn unique_temp_dir() -> anyhow::Result<PathBuf> {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or_default();
    let dir = std::env::temp_dir().join(format!("fleetplane-bench-{}-{nanos}", std::process::id()));
    std::fs::create_dir_all(&dir).with_context(|| format!("cannot create {}", dir.display()))?;
    Ok(dir)
}

/// A fresh API key for the bench's own server: 32 bytes from the OS, hex.
fn generate_key() -> String {
    let mut bytes = [0u8; 32];
    let from_os = std::fs::File::open("/dev/urandom").and_then(|mut f| f.read_exact(&mut bytes));
    if from_os.is_err() {
        // No /dev/urandom: std's randomly seeded hasher keys, one per 8 bytes.
        use std::hash::{BuildHasher as _, RandomState};
        for chunk in bytes.chunks_mut(8) {
            let n = RandomState::new().hash_one(Instant::now());
            chunk.copy_from_slice(&n.to_le_bytes()[..chunk.len()]);
        }
    }
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    format!("fpk_bench_{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_listening_address_is_read_from_the_json_log() {
        let log = concat!(
            "not json\n",
            r#"{"level":"INFO","fields":{"message":"bootstrapped"}}"#,
            "\n",
            r#"{"level":"INFO","fields":{"message":"listening on 127.0.0.1:4321","addr":"127.0.0.1:4321"}}"#,
            "\n"
        );
        assert_eq!(listening_address(log).as_deref(), Some("127.0.0.1:4321"));
        assert_eq!(listening_address("{}\n"), None);
        assert_eq!(listening_address(""), None);
    }

    #[test]
    fn memory_is_read_from_proc_status() {
        let status = "Name:\tfleetplane\nVmHWM:\t  204800 kB\nVmRSS:\t  102400 kB\n";
        assert_eq!(
            parse_memory(status),
            Some(Memory {
                rss_bytes: 100 * 1024 * 1024,
                peak_rss_bytes: 200 * 1024 * 1024
            })
        );
        assert_eq!(parse_memory("VmRSS: 12 kB\n"), None);
        assert_eq!(parse_memory("VmRSS: x kB\nVmHWM: 1 kB\n"), None);
    }

    #[test]
    fn cpu_ticks_are_user_plus_system_after_the_command_name() {
        let stat = "4242 (fleet plane) S 1 4242 4242 0 -1 4194560 9 0 0 0 250 31 0 0 20 0 12 0";
        assert_eq!(parse_cpu_ticks(stat), Some(281));
        assert_eq!(parse_cpu_ticks("4242 (x) S 1"), None);
        assert_eq!(parse_cpu_ticks("no parenthesis"), None);
    }

    #[test]
    fn generated_keys_differ() {
        let (a, b) = (generate_key(), generate_key());
        assert!(a.starts_with("fpk_bench_") && a.len() == 10 + 64, "{a}");
        assert_ne!(a, b);
    }
}
