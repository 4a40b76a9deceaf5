//! The provider manifest a vendor ships beside the `.wasm` component.

use std::fmt;

use serde::{Deserialize, Serialize};

/// The WIT package version this host implements (`fleetplane:provider@0.1.0`).
pub const WIT_VERSION: &str = "0.1.0";

/// A provider manifest, as JSON:
///
/// ```json
/// {
///   "name": "aws",
///   "version": "1.2.0",
///   "witVersion": "0.1.0",
///   "cloudTypes": ["aws"],
///   "allowedHosts": ["https://ec2.*.amazonaws.com", "https://sts.amazonaws.com"],
///   "accountSchema": {"type": "object", "properties": {"region": {"type": "string"}}}
/// }
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProviderManifest {
    /// The provider name (a DNS label), the name cloud accounts refer to.
    pub name: String,
    /// The provider's own version (SemVer).
    pub version: String,
    /// The `fleetplane:provider` WIT version the component targets (SemVer).
    pub wit_version: String,
    /// The cloud types it serves (`aws`, `azure`, `gcp`, `vsphere`, or `*` for all).
    pub cloud_types: Vec<String>,
    /// Where the component may send HTTP requests: `scheme://host[:port]`, where `host` may
    /// start with `*.` to allow every subdomain. Nothing else is reachable.
    #[serde(default)]
    pub allowed_hosts: Vec<String>,
    /// The JSON Schema of the cloud account configuration (an object schema).
    pub account_schema: serde_json::Value,
    /// Names of the account secrets the provider expects (documentation and UI hints).
    #[serde(default)]
    pub secrets: Vec<String>,
    /// A one-line description.
    #[serde(default)]
    pub description: Option<String>,
}

/// One problem found in a manifest, with the path of the offending field.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ManifestProblem {
    /// The field path, for example `allowedHosts[1]`.
    pub field: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for ManifestProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.field, self.message)
    }
}

/// Errors of [`ProviderManifest::parse`] and [`ProviderManifest::validate`].
#[derive(Debug, thiserror::Error)]
pub enum ManifestError {
    /// The document is not a manifest (syntax or shape).
    #[error("manifest is not valid JSON for a provider manifest: {0}")]
    Syntax(String),
    /// The manifest parsed but breaks rules; every problem is listed.
    #[error("invalid provider manifest: {}", .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
    Invalid(Vec<ManifestProblem>),
}

impl ManifestError {
    /// Every problem with its field path (one `$` problem for a syntax error).
    pub fn problems(&self) -> Vec<ManifestProblem> {
        match self {
            ManifestError::Syntax(m) => {
                vec![ManifestProblem {
                    field: "$".into(),
                    message: m.clone(),
                }]
            }
            ManifestError::Invalid(p) => p.clone(),
        }
    }
}

/// A parsed `allowedHosts` entry.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct AllowedHost {
    /// `http` or `https`.
    pub scheme: String,
    /// The host in lowercase; with `wildcard`, the suffix after `*.`.
    pub host: String,
    /// Whether the entry was `*.host` (any subdomain of `host`, not `host` itself).
    pub wildcard: bool,
    /// The port (the scheme's default when not written).
    pub port: u16,
}

impl AllowedHost {
    /// Parses `scheme://host[:port]` (host may be `*.suffix`, an IPv4 literal or `[v6]`).
    ///
    /// # Errors
    /// A message saying what is wrong with the entry.
    pub fn parse(entry: &str) -> Result<AllowedHost, String> {
        let (scheme, rest) = entry
            .split_once("://")
            .ok_or_else(|| format!("`{entry}` must look like https://host[:port]"))?;
        let scheme = scheme.to_ascii_lowercase();
        let default_port = match scheme.as_str() {
            "https" => 443,
            "http" => 80,
            other => return Err(format!("scheme `{other}` is not http or https")),
        };
        if rest.is_empty() || rest.contains(['/', '?', '#', '@']) {
            return Err(format!(
                "`{entry}` must be scheme://host[:port] with no path or user"
            ));
        }
        let (host, port) = split_host_port(rest)?;
        let port = port.unwrap_or(default_port);
        let host = host.to_ascii_lowercase();
        let (wildcard, host) = match host.strip_prefix("*.") {
            Some(suffix) => (true, suffix.to_string()),
            None => (false, host),
        };
        if host.is_empty() || host.contains('*') {
            return Err(format!(
                "`{entry}`: only a leading `*.` wildcard is allowed"
            ));
        }
        let valid_name = host.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
        });
        if !valid_name && host.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("`{host}` is not a host name or IP address"));
        }
        if wildcard && host.parse::<std::net::IpAddr>().is_ok() {
            return Err("a wildcard cannot apply to an IP address".to_string());
        }
        Ok(AllowedHost {
            scheme,
            host,
            wildcard,
            port,
        })
    }

    /// Whether a request to `scheme://host:port` matches this entry. `host` must be lowercase
    /// and without brackets.
    pub fn matches(&self, scheme: &str, host: &str, port: u16) -> bool {
        if self.scheme != scheme || self.port != port {
            return false;
        }
        if self.wildcard {
            host.len() > self.host.len() + 1
                && host.ends_with(&self.host)
                && host.as_bytes()[host.len() - self.host.len() - 1] == b'.'
        } else {
            host == self.host
        }
    }
}

/// Splits `host[:port]` / `[v6][:port]`, returning the host without brackets.
pub(crate) fn split_host_port(s: &str) -> Result<(String, Option<u16>), String> {
    let parse_port = |p: &str| p.parse::<u16>().map_err(|_| format!("`{p}` is not a port"));
    if let Some(rest) = s.strip_prefix('[') {
        let (host, after) = rest
            .split_once(']')
            .ok_or_else(|| format!("`{s}`: unclosed ["))?;
        let port = match after.strip_prefix(':') {
            Some(p) => Some(parse_port(p)?),
            None if after.is_empty() => None,
            None => return Err(format!("`{s}`: junk after ]")),
        };
        return Ok((host.to_string(), port));
    }
    match s.rsplit_once(':') {
        Some((host, port)) => Ok((host.to_string(), Some(parse_port(port)?))),
        None => Ok((s.to_string(), None)),
    }
}

fn is_dns_label(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 63
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !s.starts_with('-')
        && !s.ends_with('-')
}

const CLOUD_TYPES: [&str; 5] = ["aws", "azure", "gcp", "vsphere", "*"];

impl ProviderManifest {
    /// Parses and validates a JSON manifest.
    ///
    /// # Errors
    /// [`ManifestError::Syntax`] for bad JSON or shape, [`ManifestError::Invalid`] with every
    /// rule broken (see [`ProviderManifest::validate`]).
    pub fn parse(json: &[u8]) -> Result<ProviderManifest, ManifestError> {
        let manifest: ProviderManifest =
            serde_json::from_slice(json).map_err(|e| ManifestError::Syntax(e.to_string()))?;
        manifest.validate()?;
        Ok(manifest)
    }

    /// Checks every rule and reports every problem at once, each with its field path:
    /// `name` is a DNS label; `version` and `witVersion` are SemVer; `witVersion` has the
    /// host's major (and, while 0.x, minor) version and is not newer than [`WIT_VERSION`];
    /// `cloudTypes` is non-empty and known; each `allowedHosts[i]` parses; `accountSchema` is an
    /// object schema (`"type": "object"`).
    ///
    /// # Errors
    /// [`ManifestError::Invalid`] listing the problems.
    pub fn validate(&self) -> Result<(), ManifestError> {
        let mut problems = Vec::new();
        let mut problem = |field: String, message: String| {
            problems.push(ManifestProblem { field, message });
        };
        if !is_dns_label(&self.name) {
            problem(
                "name".into(),
                "must be a DNS label (lowercase, digits, '-', ≤63)".into(),
            );
        }
        if let Err(e) = semver::Version::parse(&self.version) {
            problem("version".into(), format!("not SemVer: {e}"));
        }
        match semver::Version::parse(&self.wit_version) {
            Err(e) => problem("witVersion".into(), format!("not SemVer: {e}")),
            Ok(v) => {
                if let Err(m) = check_wit_version(&v) {
                    problem("witVersion".into(), m);
                }
            }
        }
        if self.cloud_types.is_empty() {
            problem(
                "cloudTypes".into(),
                "at least one cloud type is required".into(),
            );
        }
        for (i, c) in self.cloud_types.iter().enumerate() {
            if !CLOUD_TYPES.contains(&c.as_str()) {
                problem(
                    format!("cloudTypes[{i}]"),
                    format!("unknown cloud type `{c}`"),
                );
            }
        }
        for (i, h) in self.allowed_hosts.iter().enumerate() {
            if let Err(m) = AllowedHost::parse(h) {
                problem(format!("allowedHosts[{i}]"), m);
            }
        }
        match &self.account_schema {
            serde_json::Value::Object(o) => {
                if o.get("type").and_then(|t| t.as_str()) != Some("object") {
                    problem("accountSchema.type".into(), "must be \"object\"".into());
                }
            }
            _ => problem(
                "accountSchema".into(),
                "must be a JSON Schema object".into(),
            ),
        }
        for (i, s) in self.secrets.iter().enumerate() {
            if s.is_empty() {
                problem(format!("secrets[{i}]"), "must not be empty".into());
            }
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(ManifestError::Invalid(problems))
        }
    }

    /// The parsed `allowedHosts` (entries that do not parse are skipped; a validated manifest
    /// has none).
    pub fn allowed_hosts(&self) -> Vec<AllowedHost> {
        self.allowed_hosts
            .iter()
            .filter_map(|h| AllowedHost::parse(h).ok())
            .collect()
    }

    /// Whether the provider serves `cloud_type`.
    pub fn serves(&self, cloud_type: &str) -> bool {
        self.cloud_types.iter().any(|c| c == "*" || c == cloud_type)
    }
}

fn check_wit_version(v: &semver::Version) -> Result<(), String> {
    let host = semver::Version::parse(WIT_VERSION).map_err(|e| e.to_string())?;
    // A minor version only adds, so a host serves components built for its own or an older
    // minor; while the major is 0, every minor is a breaking change (SemVer).
    let compatible = if host.major == 0 {
        v.major == 0 && v.minor == host.minor
    } else {
        v.major == host.major && v.minor <= host.minor
    };
    if compatible {
        Ok(())
    } else {
        Err(format!(
            "this host implements fleetplane:provider@{WIT_VERSION}; {v} is not compatible"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> serde_json::Value {
        serde_json::json!({
            "name": "aws",
            "version": "1.0.0",
            "witVersion": "0.1.0",
            "cloudTypes": ["aws"],
            "allowedHosts": ["https://*.amazonaws.com", "http://localhost:8080"],
            "accountSchema": {"type": "object"}
        })
    }

    #[test]
    fn valid_manifest_parses() {
        let m = ProviderManifest::parse(valid().to_string().as_bytes()).unwrap();
        assert_eq!(m.allowed_hosts().len(), 2);
        assert!(m.serves("aws"));
        assert!(!m.serves("gcp"));
    }

    #[test]
    fn every_problem_is_reported_with_its_path() {
        let mut v = valid();
        v["name"] = "Bad_Name".into();
        v["version"] = "1.0".into();
        v["witVersion"] = "1.0.0".into();
        v["cloudTypes"] = serde_json::json!(["aws", "mars"]);
        v["allowedHosts"] = serde_json::json!(["https://ok.test", "ftp://x", "https://a.*.b"]);
        v["accountSchema"] = serde_json::json!({"type": "string"});
        let err = ProviderManifest::parse(v.to_string().as_bytes()).unwrap_err();
        let fields: Vec<String> = err.problems().into_iter().map(|p| p.field).collect();
        assert_eq!(
            fields,
            [
                "name",
                "version",
                "witVersion",
                "cloudTypes[1]",
                "allowedHosts[1]",
                "allowedHosts[2]",
                "accountSchema.type"
            ]
        );
    }

    #[test]
    fn unknown_fields_and_bad_json_are_syntax_errors() {
        let mut v = valid();
        v["extra"] = 1.into();
        assert!(matches!(
            ProviderManifest::parse(v.to_string().as_bytes()),
            Err(ManifestError::Syntax(_))
        ));
        assert!(matches!(
            ProviderManifest::parse(b"{"),
            Err(ManifestError::Syntax(_))
        ));
    }

    #[test]
    fn allowed_host_matching() {
        let cases = [
            ("https://api.test", "https", "api.test", 443, true),
            ("https://api.test", "http", "api.test", 80, false),
            ("https://api.test", "https", "api.test", 8443, false),
            ("https://api.test:8443", "https", "api.test", 8443, true),
            ("https://*.api.test", "https", "x.api.test", 443, true),
            ("https://*.api.test", "https", "api.test", 443, false),
            ("https://*.api.test", "https", "evilapi.test", 443, false),
            ("http://[::1]:9", "http", "::1", 9, true),
            ("http://127.0.0.1", "http", "127.0.0.1", 80, true),
        ];
        for (entry, scheme, host, port, want) in cases {
            let a = AllowedHost::parse(entry).unwrap();
            assert_eq!(
                a.matches(scheme, host, port),
                want,
                "{entry} vs {scheme}://{host}:{port}"
            );
        }
    }

    proptest::proptest! {
        #[test]
        fn parse_never_panics(s in ".{0,80}") {
            let _ = AllowedHost::parse(&s);
            let _ = ProviderManifest::parse(s.as_bytes());
        }
    }
}
