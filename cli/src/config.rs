//! The client configuration: the user's config file (`fleetplane login` writes it) and how the
//! flags and `FLEETPLANE_*` variables override it.

use anyhow::{Context as _, anyhow};
use serde::{Deserialize, Serialize};
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The endpoint used when neither flag, variable nor file names one: `fleetplane server`'s
/// default listen address.
pub const DEFAULT_ENDPOINT: &str = "http://127.0.0.1:8080";

/// The contents of the config file (TOML, kebab-case keys).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", deny_unknown_fields)]
pub struct FileConfig {
    /// Server URL.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub endpoint: Option<String>,
    /// API key.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub api_key: Option<String>,
    /// Default project.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
}

/// Where the config file is: `FLEETPLANE_CLIENT_CONFIG`, else
/// `$XDG_CONFIG_HOME/fleetplane/config.toml`, else `$HOME/.config/fleetplane/config.toml`.
/// `None` when no variable says.
pub fn config_path(env: &dyn Fn(&str) -> Option<String>) -> Option<PathBuf> {
    let non_empty = |name: &str| env(name).filter(|v| !v.is_empty());
    if let Some(p) = non_empty("FLEETPLANE_CLIENT_CONFIG") {
        return Some(PathBuf::from(p));
    }
    // The XDG spec says relative values are invalid and must be ignored.
    if let Some(xdg) = non_empty("XDG_CONFIG_HOME").filter(|p| Path::new(p).is_absolute()) {
        return Some(Path::new(&xdg).join("fleetplane").join("config.toml"));
    }
    non_empty("HOME").map(|home| {
        Path::new(&home)
            .join(".config")
            .join("fleetplane")
            .join("config.toml")
    })
}

/// Reads the config file; an absent file is an empty configuration.
///
/// # Errors
/// The file exists but cannot be read or is not valid (unknown keys included).
pub fn read(path: &Path) -> anyhow::Result<FileConfig> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(FileConfig::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    toml::from_str(&text).with_context(|| format!("invalid config file {}", path.display()))
}

/// Writes the config file readable by its owner only (0600; its directory 0700 when created),
/// replacing it atomically.
///
/// # Errors
/// The directory or file cannot be written.
pub fn write(path: &Path, config: &FileConfig) -> anyhow::Result<()> {
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    create_private_dir(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let text = toml::to_string(config).context("cannot encode the configuration")?;
    let file_name = path
        .file_name()
        .ok_or_else(|| anyhow!("{} is not a file path", path.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp{}",
        file_name.to_string_lossy(),
        std::process::id()
    ));
    let result = (|| {
        let mut f = open_private(&tmp)?;
        f.write_all(text.as_bytes())?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result.with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(unix)]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
}

#[cfg(not(unix))]
fn create_private_dir(dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)
}

#[cfg(unix)]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::OpenOptionsExt;
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)
}

#[cfg(not(unix))]
fn open_private(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .open(path)
}

/// Where a setting's value came from (for messages).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// A flag or its environment variable.
    Override,
    /// The config file.
    File,
    /// Built in.
    Default,
}

/// The settings a client command runs with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// Server URL.
    pub endpoint: String,
    /// Where the endpoint came from.
    pub endpoint_source: Source,
    /// API key, if any.
    pub api_key: Option<String>,
    /// Project, if any.
    pub project: Option<String>,
}

/// Merges the layers: flag or variable (`--endpoint`/`FLEETPLANE_ENDPOINT`,
/// `FLEETPLANE_API_KEY`, `--project`/`FLEETPLANE_PROJECT`) over the file over the default.
pub fn resolve(
    endpoint: Option<&str>,
    api_key: Option<&str>,
    project: Option<&str>,
    file: &FileConfig,
) -> Settings {
    let given = |v: Option<&str>| {
        v.map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    };
    let (endpoint, endpoint_source) = match (given(endpoint), given(file.endpoint.as_deref())) {
        (Some(e), _) => (e, Source::Override),
        (None, Some(e)) => (e, Source::File),
        (None, None) => (DEFAULT_ENDPOINT.to_owned(), Source::Default),
    };
    Settings {
        endpoint,
        endpoint_source,
        api_key: given(api_key).or_else(|| given(file.api_key.as_deref())),
        project: given(project).or_else(|| given(file.project.as_deref())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env_of(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let owned: Vec<(String, String)> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| {
            owned
                .iter()
                .find(|(k, _)| k == name)
                .map(|(_, v)| v.clone())
        }
    }

    #[test]
    fn the_config_path_follows_the_variables() {
        type Env<'a> = &'a [(&'a str, &'a str)];
        let cases: &[(Env<'_>, Option<&str>)] = &[
            (
                &[("FLEETPLANE_CLIENT_CONFIG", "/c.toml"), ("HOME", "/h")],
                Some("/c.toml"),
            ),
            (
                &[("XDG_CONFIG_HOME", "/x"), ("HOME", "/h")],
                Some("/x/fleetplane/config.toml"),
            ),
            (
                &[("XDG_CONFIG_HOME", "rel"), ("HOME", "/h")],
                Some("/h/.config/fleetplane/config.toml"),
            ),
            (
                &[("FLEETPLANE_CLIENT_CONFIG", ""), ("HOME", "/h")],
                Some("/h/.config/fleetplane/config.toml"),
            ),
            (&[], None),
        ];
        for (env, want) in cases {
            assert_eq!(
                config_path(&env_of(env)),
                want.map(PathBuf::from),
                "{env:?}"
            );
        }
    }

    #[test]
    fn overrides_beat_the_file_which_beats_the_default() {
        let file = FileConfig {
            endpoint: Some("http://file:1".into()),
            api_key: Some("fpk_file".into()),
            project: Some("fileproj".into()),
        };
        let s = resolve(
            Some("http://flag:2"),
            Some("fpk_env"),
            Some("envproj"),
            &file,
        );
        assert_eq!(
            (s.endpoint.as_str(), s.endpoint_source),
            ("http://flag:2", Source::Override)
        );
        assert_eq!(s.api_key.as_deref(), Some("fpk_env"));
        assert_eq!(s.project.as_deref(), Some("envproj"));
        let s = resolve(None, Some(" "), None, &file);
        assert_eq!(
            (s.endpoint.as_str(), s.endpoint_source),
            ("http://file:1", Source::File)
        );
        assert_eq!(s.api_key.as_deref(), Some("fpk_file"));
        assert_eq!(s.project.as_deref(), Some("fileproj"));
        let s = resolve(None, None, None, &FileConfig::default());
        assert_eq!(
            (s.endpoint.as_str(), s.endpoint_source),
            (DEFAULT_ENDPOINT, Source::Default)
        );
        assert_eq!(s.api_key, None);
    }

    #[test]
    fn the_file_round_trips_privately_and_rejects_unknown_keys() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sub").join("config.toml");
        assert_eq!(read(&path).unwrap(), FileConfig::default());
        let cfg = FileConfig {
            endpoint: Some("http://h:1".into()),
            api_key: Some("fpk_a_b".into()),
            project: None,
        };
        write(&path, &cfg).unwrap();
        write(&path, &cfg).unwrap();
        assert_eq!(read(&path).unwrap(), cfg);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(&path).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let mode = std::fs::metadata(path.parent().unwrap())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o777, 0o700);
        }
        std::fs::write(&path, "endpont = \"x\"\n").unwrap();
        let e = format!("{:#}", read(&path).unwrap_err());
        assert!(e.contains("endpont"), "{e}");
    }
}
