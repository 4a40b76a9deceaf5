//! Layered configuration: built-in defaults, then a TOML file, then `FLEETPLANE_*` environment
//! variables, then command-line flags. Unknown keys are errors at every layer, so a typo never
//! silently falls back to a default.

use serde::{Deserialize, Serialize};
use std::net::SocketAddr;
use std::path::PathBuf;

/// Flags of `fleetplane server`. Every flag also has a `FLEETPLANE_*` variable and a file key.
#[derive(Debug, Clone, Default, clap::Args)]
pub struct ServerArgs {
    /// TOML configuration file (keys as in `docs/configuration.md`).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Address to listen on [default: 127.0.0.1:8080].
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Directory holding the database, keys and provider components [default: ./fleetplane-data].
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Log filter, e.g. `info` or `fleetplane=debug,info` [default: info].
    #[arg(long, value_name = "FILTER")]
    pub log_level: Option<String>,
    /// Log format [default: text].
    #[arg(long, value_enum)]
    pub log_format: Option<LogFormat>,
}

/// How logs are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// The effective server configuration.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields, default)]
pub struct Config {
    /// Listen address.
    pub listen: SocketAddr,
    /// Data directory.
    pub data_dir: PathBuf,
    /// Log filter.
    pub log_level: String,
    /// Log format.
    pub log_format: LogFormat,
    /// Largest request body accepted, in bytes.
    pub max_body_bytes: usize,
    /// Sustained requests per second allowed per API key.
    pub rate_limit_per_key: u32,
    /// Sustained requests per second allowed per client address.
    pub rate_limit_per_address: u32,
    /// Burst allowance on top of the sustained rates.
    pub rate_limit_burst: u32,
    /// Largest page a list answers.
    pub max_page_size: usize,
    /// The database's page cache, in MiB (resident memory; the operating system's file cache
    /// serves the rest).
    pub db_cache_mib: usize,
    /// How much lower than the API's the workflow runtime's threads run (a nice increment,
    /// 0 to 19; 10 by default, 0 for the same priority): above 0, the cores go to requests
    /// first under load (docs/configuration.md, "The runtime's threads").
    pub runtime_nice: i32,
}

/// The runtime's default nice increment: measured at 100,000 clusters, it keeps reads under the
/// targets of DESIGN §9 while a rollout runs, for a rollout ~12 % slower (docs/configuration.md).
pub const DEFAULT_RUNTIME_NICE: i32 = 10;

impl Default for Config {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            data_dir: PathBuf::from("fleetplane-data"),
            log_level: "info".to_owned(),
            log_format: LogFormat::Text,
            max_body_bytes: 4 * 1024 * 1024,
            rate_limit_per_key: 200,
            rate_limit_per_address: 400,
            rate_limit_burst: 400,
            max_page_size: 500,
            db_cache_mib: 256,
            runtime_nice: DEFAULT_RUNTIME_NICE,
        }
    }
}

/// A configuration problem, named by where it came from.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file cannot be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The file is not valid TOML for this configuration (unknown key, wrong type).
    #[error("config file {path}: {message}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
    /// A setting has a value outside its range (from whichever layer set it).
    #[error("setting {key}: {message}")]
    Value {
        /// The setting (file key).
        key: &'static str,
        /// What is wrong.
        message: String,
    },
    /// An environment variable is unknown or has a bad value.
    #[error("environment variable {name}: {message}")]
    Env {
        /// The variable.
        name: String,
        /// What is wrong.
        message: String,
    },
}

/// `FLEETPLANE_*` variables that are not server configuration (client, bootstrap, tests).
const OTHER_VARIABLES: &[&str] = &[
    "FLEETPLANE_CONFIG",
    "FLEETPLANE_BOOTSTRAP_API_KEY",
    "FLEETPLANE_BOOTSTRAP_PASSWORD",
    "FLEETPLANE_ENDPOINT",
    "FLEETPLANE_API_KEY",
    "FLEETPLANE_PROJECT",
    "FLEETPLANE_OUTPUT",
    "FLEETPLANE_CLIENT_CONFIG",
    "FLEETPLANE_TEST_REQUIRE_ALL",
    "FLEETPLANE_BIN",
];

impl Config {
    /// Builds the configuration from all layers. `env` is the process environment (passed in
    /// so tests control it).
    ///
    /// # Errors
    /// [`ConfigError`] naming the file key or variable that is wrong.
    pub fn load(
        args: &ServerArgs,
        env: impl IntoIterator<Item = (String, String)>,
    ) -> Result<Self, ConfigError> {
        let env: Vec<(String, String)> = env
            .into_iter()
            .filter(|(k, _)| k.starts_with("FLEETPLANE_"))
            .collect();
        let file = args.config.clone().or_else(|| {
            env.iter()
                .find(|(k, _)| k == "FLEETPLANE_CONFIG")
                .map(|(_, v)| v.into())
        });
        // Start from the defaults as a TOML table so each layer overrides only what it names.
        let mut table =
            toml::Table::try_from(Config::default()).map_err(|e| ConfigError::File {
                path: PathBuf::new(),
                message: e.to_string(),
            })?;
        if let Some(path) = &file {
            let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
                path: path.clone(),
                source,
            })?;
            let layer: toml::Table =
                text.parse()
                    .map_err(|e: toml::de::Error| ConfigError::File {
                        path: path.clone(),
                        message: e.to_string(),
                    })?;
            for (k, v) in layer {
                if !table.contains_key(&k) {
                    return Err(ConfigError::File {
                        path: path.clone(),
                        message: format!("unknown key `{k}`"),
                    });
                }
                table.insert(k, v);
            }
        }
        for (name, value) in &env {
            if OTHER_VARIABLES.contains(&name.as_str()) {
                continue;
            }
            let key = name["FLEETPLANE_".len()..]
                .to_ascii_lowercase()
                .replace('_', "-");
            let Some(current) = table.get(&key) else {
                return Err(ConfigError::Env {
                    name: name.clone(),
                    message: "unknown setting".to_owned(),
                });
            };
            let parsed =
                match current {
                    toml::Value::Integer(_) => value
                        .parse::<i64>()
                        .map(toml::Value::Integer)
                        .map_err(|_| ConfigError::Env {
                            name: name.clone(),
                            message: "expected an integer".into(),
                        })?,
                    _ => toml::Value::String(value.clone()),
                };
            table.insert(key, parsed);
        }
        let mut cfg: Config = table
            .try_into()
            .map_err(|e: toml::de::Error| ConfigError::File {
                path: file.clone().unwrap_or_default(),
                message: e.to_string(),
            })?;
        if let Some(v) = args.listen {
            cfg.listen = v;
        }
        if let Some(v) = &args.data_dir {
            cfg.data_dir = v.clone();
        }
        if let Some(v) = &args.log_level {
            cfg.log_level = v.clone();
        }
        if let Some(v) = args.log_format {
            cfg.log_format = v;
        }
        if !(0..=19).contains(&cfg.runtime_nice) {
            return Err(ConfigError::Value {
                key: "runtime-nice",
                message: format!("{} is not between 0 and 19", cfg.runtime_nice),
            });
        }
        Ok(cfg)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn layers_override_in_order() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(
            f,
            "listen = \"127.0.0.1:9000\"\nlog-level = \"debug\"\nmax-body-bytes = 10"
        )
        .unwrap();
        let args = ServerArgs {
            config: Some(f.path().to_owned()),
            log_level: Some("warn".into()),
            ..Default::default()
        };
        let cfg = Config::load(
            &args,
            env(&[
                ("FLEETPLANE_LISTEN", "127.0.0.1:9001"),
                ("FLEETPLANE_API_KEY", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(cfg.listen.port(), 9001);
        assert_eq!(cfg.log_level, "warn");
        assert_eq!(cfg.max_body_bytes, 10);
        assert_eq!(cfg.data_dir, PathBuf::from("fleetplane-data"));
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let mut f = tempfile::NamedTempFile::new().unwrap();
        writeln!(f, "lisen = \"127.0.0.1:9000\"").unwrap();
        let args = ServerArgs {
            config: Some(f.path().to_owned()),
            ..Default::default()
        };
        let e = Config::load(&args, env(&[])).unwrap_err();
        assert!(e.to_string().contains("unknown key `lisen`"), "{e}");
        let e =
            Config::load(&ServerArgs::default(), env(&[("FLEETPLANE_LISTN", "x")])).unwrap_err();
        assert!(e.to_string().contains("FLEETPLANE_LISTN"), "{e}");
        let e = Config::load(
            &ServerArgs::default(),
            env(&[("FLEETPLANE_MAX_BODY_BYTES", "x")]),
        )
        .unwrap_err();
        assert!(e.to_string().contains("integer"), "{e}");
    }

    #[test]
    fn runtime_nice_is_an_increment_in_range() {
        let cfg = Config::load(&ServerArgs::default(), env(&[])).unwrap();
        assert_eq!(cfg.runtime_nice, DEFAULT_RUNTIME_NICE);
        let cfg = Config::load(
            &ServerArgs::default(),
            env(&[("FLEETPLANE_RUNTIME_NICE", "19")]),
        )
        .unwrap();
        assert_eq!(cfg.runtime_nice, 19);
        let cfg = Config::load(
            &ServerArgs::default(),
            env(&[("FLEETPLANE_RUNTIME_NICE", "0")]),
        )
        .unwrap();
        assert_eq!(cfg.runtime_nice, 0, "0 turns it off");
        for bad in ["-1", "20"] {
            let e = Config::load(
                &ServerArgs::default(),
                env(&[("FLEETPLANE_RUNTIME_NICE", bad)]),
            )
            .unwrap_err();
            assert!(
                e.to_string().starts_with("setting runtime-nice:"),
                "{bad}: {e}"
            );
        }
    }
}
