//! Object metadata, names, labels and label selectors (DESIGN §7).

use crate::error::{FieldError, Problems, path};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Labels of an object: short key/value pairs used by selectors.
pub type Labels = BTreeMap<String, String>;

/// Metadata every object carries. On writes, server-set fields (`uid`, `project`, `createdAt`,
/// `updatedAt`, `resourceVersion`) are accepted and ignored, so a `PUT` accepts exactly what the
/// `GET` returned; unknown fields are rejected.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Metadata {
    /// The object's name, a DNS label.
    #[serde(default)]
    pub name: String,
    /// Server-assigned unique id.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub uid: String,
    /// The project, absent at tenant scope.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub project: Option<String>,
    /// Labels, for selectors.
    #[serde(default)]
    pub labels: Labels,
    /// Free text for people.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub description: String,
    /// When the object was created (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_at: Option<jiff::Timestamp>,
    /// When the object last changed (RFC 3339, UTC).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub updated_at: Option<jiff::Timestamp>,
    /// Opaque version for optimistic concurrency; the `ETag`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub resource_version: String,
}

/// The most characters a name may have.
pub const MAX_NAME_LEN: usize = 63;

/// Checks that `value` is a DNS label: 1–63 characters of `a-z`, `0-9` and `-`, starting and
/// ending with a letter or digit.
///
/// # Errors
/// A [`FieldError`] at `field` saying what is wrong.
pub fn validate_name(field: &str, value: &str) -> Result<(), FieldError> {
    let problem = if value.is_empty() {
        Some("is required".to_owned())
    } else if value.len() > MAX_NAME_LEN {
        Some(format!("must be at most {MAX_NAME_LEN} characters"))
    } else if !value
        .bytes()
        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
    {
        Some("must contain only lowercase letters, digits and '-'".to_owned())
    } else if value.starts_with('-') || value.ends_with('-') {
        Some("must start and end with a letter or digit".to_owned())
    } else {
        None
    };
    match problem {
        Some(p) => Err(FieldError::new(field, format!("{p} (got {value:?})"))),
        None => Ok(()),
    }
}

fn valid_label_part(s: &str, max: usize) -> bool {
    !s.is_empty()
        && s.len() <= max
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
        && s.as_bytes()[0].is_ascii_alphanumeric()
        && s.as_bytes()[s.len() - 1].is_ascii_alphanumeric()
}

/// Checks a label key: an optional DNS-subdomain prefix and `/`, then a name of at most 63
/// characters of alphanumerics, `-`, `_` and `.`.
///
/// # Errors
/// A [`FieldError`] at `field`.
pub fn validate_label_key(field: &str, key: &str) -> Result<(), FieldError> {
    let (prefix, name) = match key.split_once('/') {
        Some((p, n)) => (Some(p), n),
        None => (None, key),
    };
    let prefix_ok = prefix
        .is_none_or(|p| p.len() <= 253 && p.split('.').all(|part| validate_name("", part).is_ok()));
    if prefix_ok && valid_label_part(name, 63) {
        Ok(())
    } else {
        Err(FieldError::new(field, format!("invalid label key {key:?}")))
    }
}

/// Checks a label value: empty, or at most 63 characters of alphanumerics, `-`, `_` and `.`.
///
/// # Errors
/// A [`FieldError`] at `field`.
pub fn validate_label_value(field: &str, value: &str) -> Result<(), FieldError> {
    if value.is_empty() || valid_label_part(value, 63) {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!("invalid label value {value:?}"),
        ))
    }
}

impl Metadata {
    /// Validates what a client may set: the name and the labels.
    pub fn validate(&self, problems: &mut Problems) {
        problems.check(validate_name("metadata.name", &self.name));
        for (k, v) in &self.labels {
            let field = path("metadata.labels", k);
            problems.check(validate_label_key(&field, k));
            problems.check(validate_label_value(&field, v));
        }
        if self.description.chars().count() > 1024 {
            problems.push("metadata.description", "must be at most 1024 characters");
        }
    }
}

/// One requirement of a label selector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Requirement {
    /// `key=value` or `key==value`.
    Equals(String, String),
    /// `key!=value` (also true when the key is absent).
    NotEquals(String, String),
    /// `key in (a,b)`.
    In(String, Vec<String>),
    /// `key notin (a,b)` (also true when the key is absent).
    NotIn(String, Vec<String>),
    /// `key`: the label exists.
    Exists(String),
    /// `!key`: the label does not exist.
    NotExists(String),
}

/// A parsed label selector in the Kubernetes syntax: requirements separated by commas, all of
/// which must hold (`env=prod,tier in (web,api),!canary`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    /// The requirements; empty selects everything.
    pub requirements: Vec<Requirement>,
}

impl LabelSelector {
    /// Parses a selector.
    ///
    /// # Errors
    /// A [`FieldError`] at `field` naming the requirement that does not parse.
    pub fn parse(field: &str, input: &str) -> Result<Self, FieldError> {
        let mut requirements = Vec::new();
        for raw in split_top_level(input) {
            let req = raw.trim();
            if req.is_empty() {
                if input.trim().is_empty() {
                    continue;
                }
                return Err(FieldError::new(field, "empty requirement in selector"));
            }
            let bad = || FieldError::new(field, format!("cannot parse requirement {req:?}"));
            let key_ok = |k: &str| validate_label_key(field, k).is_ok();
            let parsed = if let Some(k) = req.strip_prefix('!') {
                let k = k.trim();
                key_ok(k).then(|| Requirement::NotExists(k.to_owned()))
            } else if let Some((k, v)) = req.split_once("!=") {
                let (k, v) = (k.trim(), v.trim());
                (key_ok(k) && validate_label_value(field, v).is_ok())
                    .then(|| Requirement::NotEquals(k.to_owned(), v.to_owned()))
            } else if let Some((k, v)) = req.split_once("==").or_else(|| req.split_once('=')) {
                let (k, v) = (k.trim(), v.trim());
                (key_ok(k) && validate_label_value(field, v).is_ok())
                    .then(|| Requirement::Equals(k.to_owned(), v.to_owned()))
            } else if let Some((k, rest)) = split_set_op(req, " notin ") {
                parse_set(field, rest)?
                    .and_then(|vs| key_ok(k).then(|| Requirement::NotIn(k.to_owned(), vs)))
            } else if let Some((k, rest)) = split_set_op(req, " in ") {
                parse_set(field, rest)?
                    .and_then(|vs| key_ok(k).then(|| Requirement::In(k.to_owned(), vs)))
            } else {
                key_ok(req).then(|| Requirement::Exists(req.to_owned()))
            };
            requirements.push(parsed.ok_or_else(bad)?);
        }
        Ok(Self { requirements })
    }

    /// A selector requiring every given label to equal its value.
    pub fn match_labels(labels: &Labels) -> Self {
        Self {
            requirements: labels
                .iter()
                .map(|(k, v)| Requirement::Equals(k.clone(), v.clone()))
                .collect(),
        }
    }

    /// Whether `labels` satisfy every requirement.
    pub fn matches(&self, labels: &Labels) -> bool {
        self.requirements.iter().all(|r| match r {
            Requirement::Equals(k, v) => labels.get(k) == Some(v),
            Requirement::NotEquals(k, v) => labels.get(k) != Some(v),
            Requirement::In(k, vs) => labels.get(k).is_some_and(|l| vs.contains(l)),
            Requirement::NotIn(k, vs) => labels.get(k).is_none_or(|l| !vs.contains(l)),
            Requirement::Exists(k) => labels.contains_key(k),
            Requirement::NotExists(k) => !labels.contains_key(k),
        })
    }
}

/// Splits on commas that are not inside parentheses.
fn split_top_level(input: &str) -> Vec<&str> {
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, c) in input.char_indices() {
        match c {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&input[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&input[start..]);
    parts
}

fn split_set_op<'a>(req: &'a str, op: &str) -> Option<(&'a str, &'a str)> {
    req.split_once(op).map(|(k, rest)| (k.trim(), rest.trim()))
}

fn parse_set(field: &str, rest: &str) -> Result<Option<Vec<String>>, FieldError> {
    let Some(inner) = rest.strip_prefix('(').and_then(|r| r.strip_suffix(')')) else {
        return Ok(None);
    };
    let mut values = Vec::new();
    for v in inner.split(',') {
        let v = v.trim();
        validate_label_value(field, v)?;
        values.push(v.to_owned());
    }
    Ok(Some(values))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_dns_labels() {
        for ok in ["a", "dev", "prod-eu-1", &"a".repeat(63)] {
            assert!(validate_name("n", ok).is_ok(), "{ok}");
        }
        for bad in ["", "Dev", "-a", "a-", "a_b", "a.b", &"a".repeat(64), "é"] {
            assert!(validate_name("n", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn selectors_parse_and_match() {
        let labels: Labels = [
            ("env".to_owned(), "prod".to_owned()),
            ("tier".to_owned(), "web".to_owned()),
        ]
        .into();
        let cases = [
            ("", true),
            ("env=prod", true),
            ("env==prod", true),
            ("env!=prod", false),
            ("env in (prod,stage)", true),
            ("env notin (prod)", false),
            ("tier,env=prod", true),
            ("!canary", true),
            ("canary", false),
            ("env=prod,tier in (api)", false),
        ];
        for (sel, want) in cases {
            let s = LabelSelector::parse("labelSelector", sel).unwrap();
            assert_eq!(s.matches(&labels), want, "{sel}");
        }
        for bad in ["env=pr od", "=x", "env in prod", ",", "a b"] {
            assert!(LabelSelector::parse("labelSelector", bad).is_err(), "{bad}");
        }
    }
}

/// The status of kinds that have nothing to report: serialized as `{}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoStatus {}

/// An API object: `{kind, metadata, spec, status}` (DESIGN §7).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Object<S, St = serde_json::Value> {
    /// The kind (`Project`, `ClusterTemplate`); optional on input, checked when given.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub kind: String,
    /// Metadata.
    #[serde(default)]
    pub metadata: Metadata,
    /// What the user wants.
    pub spec: S,
    /// What the server observed; ignored on input.
    #[serde(default)]
    pub status: St,
}
