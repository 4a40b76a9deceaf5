//! Profile variables (DESIGN §4.4): definitions, the formats a value may take, and the checks
//! applied to defaults (when a version is saved) and to per-cluster values (when a cluster or a
//! template assigns them).
//!
//! Error messages never repeat the value: it may be sensitive.

use super::limits::{
    MAX_DESCRIPTION, MAX_REGEX_LEN, MAX_SHORT_TEXT, MAX_VALUE_BYTES, REGEX_SIZE_LIMIT,
};
use crate::cache::TextCache;
use crate::error::{Problems, index, path};
use base64::Engine as _;
use regex::{Regex, RegexBuilder};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::net::{Ipv4Addr, Ipv6Addr};
use std::sync::{Arc, LazyLock};

/// What API output shows instead of a sensitive value.
pub const MASK: &str = "********";

/// The most characters a variable or macro name may have.
pub const MAX_IDENTIFIER_LEN: usize = 63;

/// The form a variable's value must take.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Format {
    /// Any text.
    #[default]
    String,
    /// A JSON-style number: `-12`, `0.5`, `1e9` (no `+`, no leading zeros, finite).
    Number,
    /// Exactly `true` or `false`.
    Boolean,
    /// A dotted-quad IPv4 address.
    Ipv4,
    /// An IPv4 address with a prefix length, `10.0.0.0/16`.
    Ipv4cidr,
    /// An IPv6 address.
    Ipv6,
    /// A SemVer 2.0 version, `1.2.3` or `1.2.3-rc.1`.
    Version,
    /// Standard base64 with padding.
    Base64,
}

impl Format {
    /// Every format.
    pub const ALL: &'static [Format] = &[
        Format::String,
        Format::Number,
        Format::Boolean,
        Format::Ipv4,
        Format::Ipv4cidr,
        Format::Ipv6,
        Format::Version,
        Format::Base64,
    ];

    /// The name on the wire (`"ipv4cidr"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Format::String => "string",
            Format::Number => "number",
            Format::Boolean => "boolean",
            Format::Ipv4 => "ipv4",
            Format::Ipv4cidr => "ipv4cidr",
            Format::Ipv6 => "ipv6",
            Format::Version => "version",
            Format::Base64 => "base64",
        }
    }

    /// Parses a wire name, case-insensitively (Palette exports vary in case).
    pub fn parse(s: &str) -> Option<Format> {
        Format::ALL
            .iter()
            .copied()
            .find(|f| f.as_str().eq_ignore_ascii_case(s))
    }
}

/// How the console asks for the value.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum InputType {
    /// A one-line text box.
    #[default]
    Text,
    /// A text area.
    Multiline,
    /// A choice among `options`.
    Dropdown,
}

impl InputType {
    /// Parses a wire name, case-insensitively.
    pub fn parse(s: &str) -> Option<InputType> {
        match s.to_ascii_lowercase().as_str() {
            "text" => Some(InputType::Text),
            "multiline" => Some(InputType::Multiline),
            "dropdown" => Some(InputType::Dropdown),
            _ => None,
        }
    }
}

/// One choice of a dropdown variable.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct VariableOption {
    /// The value the variable takes.
    pub value: String,
    /// What the console shows; the value when empty.
    #[serde(default)]
    pub label: String,
    /// Help text.
    #[serde(default)]
    pub description: String,
}

/// A variable of a profile version. Layer values reference it as `{{ var.NAME }}`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Variable {
    /// An identifier, unique in the version.
    pub name: String,
    /// What people see, unique in the version.
    #[serde(default)]
    pub display_name: String,
    /// Help text.
    #[serde(default)]
    pub description: String,
    /// The form values must take.
    #[serde(default)]
    pub format: Format,
    /// How the console asks for it.
    #[serde(default)]
    pub input_type: InputType,
    /// The choices of a dropdown.
    #[serde(default)]
    pub options: Vec<VariableOption>,
    /// An RE2-syntax pattern the whole value must match; empty for none.
    #[serde(default)]
    pub regex: String,
    /// Whether every cluster must have a non-empty value.
    #[serde(default)]
    pub required: bool,
    /// The value used when a cluster gives none; empty for no default.
    #[serde(default)]
    pub default_value: String,
    /// Whether values are write-only in the API and encrypted at rest.
    #[serde(default)]
    pub sensitive: bool,
    /// Whether the console hides it (it then needs a default).
    #[serde(default)]
    pub hidden: bool,
    /// Whether a cluster's value can no longer change once set (it then needs a default).
    #[serde(default)]
    pub immutable: bool,
}

impl Variable {
    /// This definition with its default masked when the variable is sensitive (API output,
    /// export, audit).
    pub fn masked(&self) -> Variable {
        let mut v = self.clone();
        if v.sensitive && !v.default_value.is_empty() {
            v.default_value = MASK.to_owned();
        }
        v
    }

    /// The value a cluster renders with: the one it gave, else the default.
    pub fn effective_value<'a>(&'a self, given: Option<&'a str>) -> &'a str {
        given.unwrap_or(&self.default_value)
    }
}

/// Whether `s` is an identifier: ASCII letters, digits and `_`, not starting with a digit, at
/// most [`MAX_IDENTIFIER_LEN`] characters. Variable and macro names must be, so that templates can
/// write `var.NAME`.
pub fn is_identifier(s: &str) -> bool {
    let mut bytes = s.bytes();
    matches!(bytes.next(), Some(b) if b.is_ascii_alphabetic() || b == b'_')
        && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
        && s.len() <= MAX_IDENTIFIER_LEN
}

/// The message for a name that is not an identifier.
pub(crate) const IDENTIFIER_RULE: &str = "must be an identifier: letters, digits and '_', not starting with a digit, at most 63 characters";

/// Checks that `value` has `format`. An empty value is checked like any other (callers decide
/// whether empty means "unset").
///
/// # Errors
/// A sentence saying what form the value must take; it never repeats the value.
pub fn validate_format(format: Format, value: &str) -> Result<(), String> {
    let (ok, rule) = match format {
        Format::String => (true, ""),
        Format::Number => (is_number(value), "must be a number, like 3, -1.5 or 2e6"),
        Format::Boolean => (value == "true" || value == "false", "must be true or false"),
        Format::Ipv4 => (
            value.parse::<Ipv4Addr>().is_ok(),
            "must be an IPv4 address, like 10.0.0.1",
        ),
        Format::Ipv4cidr => (
            is_ipv4_cidr(value),
            "must be an IPv4 CIDR, like 10.0.0.0/16",
        ),
        Format::Ipv6 => (
            value.parse::<Ipv6Addr>().is_ok(),
            "must be an IPv6 address, like fd00::1",
        ),
        Format::Version => (
            semver::Version::parse(value).is_ok(),
            "must be a SemVer version, like 1.2.3 or 1.2.3-rc.1",
        ),
        Format::Base64 => (
            base64::engine::general_purpose::STANDARD
                .decode(value)
                .is_ok(),
            "must be standard, padded base64",
        ),
    };
    if ok { Ok(()) } else { Err(rule.to_owned()) }
}

/// JSON's number grammar: `-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?`.
fn is_number(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    let digits = |i: &mut usize| {
        let start = *i;
        while *i < b.len() && b[*i].is_ascii_digit() {
            *i += 1;
        }
        *i - start
    };
    if b.get(i) == Some(&b'-') {
        i += 1;
    }
    match b.get(i) {
        Some(b'0') => i += 1,
        Some(c) if c.is_ascii_digit() => {
            digits(&mut i);
        }
        _ => return false,
    }
    if b.get(i) == Some(&b'.') {
        i += 1;
        if digits(&mut i) == 0 {
            return false;
        }
    }
    if matches!(b.get(i), Some(b'e' | b'E')) {
        i += 1;
        if matches!(b.get(i), Some(b'+' | b'-')) {
            i += 1;
        }
        if digits(&mut i) == 0 {
            return false;
        }
    }
    i == b.len() && s.parse::<f64>().is_ok_and(f64::is_finite)
}

fn is_ipv4_cidr(s: &str) -> bool {
    let Some((addr, prefix)) = s.split_once('/') else {
        return false;
    };
    let prefix_ok = !prefix.is_empty()
        && prefix.len() <= 2
        && prefix.bytes().all(|b| b.is_ascii_digit())
        && !(prefix.len() == 2 && prefix.starts_with('0'))
        && prefix.parse::<u8>().is_ok_and(|p| p <= 32);
    prefix_ok && addr.parse::<Ipv4Addr>().is_ok()
}

/// Compiles a variable's `regex` (RE2 syntax, which the `regex` crate implements with linear-time
/// matching). The whole value must match: the pattern is anchored at both ends. Compilation is
/// bounded by [`REGEX_SIZE_LIMIT`] and the pattern by [`MAX_REGEX_LEN`] characters, so a hostile
/// pattern cannot exhaust memory or time.
///
/// # Errors
/// A sentence saying why the pattern is not accepted.
pub fn compile_regex(pattern: &str) -> Result<Regex, String> {
    if pattern.chars().count() > MAX_REGEX_LEN {
        return Err(format!("must be at most {MAX_REGEX_LEN} characters"));
    }
    let build = |p: &str| {
        RegexBuilder::new(p)
            .size_limit(REGEX_SIZE_LIMIT)
            .dfa_size_limit(REGEX_SIZE_LIMIT)
            .nest_limit(64)
            .build()
            .map_err(|e| format!("does not compile: {}", regex_error_summary(&e)))
    };
    // The pattern must stand on its own; otherwise `a)|(b` would escape the anchoring group.
    build(pattern)?;
    build(&format!("^(?:{pattern})$"))
}

fn regex_error_summary(e: &regex::Error) -> String {
    let text = e.to_string();
    text.lines()
        .rev()
        .find_map(|l| l.trim().strip_prefix("error: "))
        .map(str::to_owned)
        .unwrap_or_else(|| text.split_whitespace().collect::<Vec<_>>().join(" "))
}

/// Compiled patterns, shared: the same few patterns check the values of many clusters. Shared
/// by `Arc`, not cloned: a cloned `Regex` starts with an empty pool of matching caches, so
/// every checker built from a clone allocated and warmed its own caches on its first match
/// (measured at 2.3 % of a rollout's CPU, docs/performance.md "Seventh round").
static REGEX_CACHE: LazyLock<TextCache<Regex>> = LazyLock::new(|| TextCache::new(512));

/// [`compile_regex`], remembering the result.
fn compile_regex_cached(pattern: &str) -> Result<Arc<Regex>, String> {
    REGEX_CACHE.get_or_try(pattern, || compile_regex(pattern))
}

/// A variable definition with its pattern compiled once, for checking many values.
#[derive(Debug, Clone)]
pub struct ValueChecker<'a> {
    def: &'a Variable,
    regex: Option<Arc<Regex>>,
}

impl<'a> ValueChecker<'a> {
    /// Prepares the checks of `def`.
    ///
    /// # Errors
    /// The definition's `regex` does not compile.
    pub fn new(def: &'a Variable) -> Result<Self, String> {
        let regex = if def.regex.is_empty() {
            None
        } else {
            Some(compile_regex_cached(&def.regex)?)
        };
        Ok(Self { def, regex })
    }

    /// Checks a value: size, required, format, pattern and (for dropdowns) options. An empty value
    /// means "unset" and is accepted unless the variable is required.
    ///
    /// # Errors
    /// A sentence saying what is wrong; it never repeats the value.
    pub fn check(&self, value: &str) -> Result<(), String> {
        if value.len() > MAX_VALUE_BYTES {
            return Err(format!("must be at most {MAX_VALUE_BYTES} bytes"));
        }
        if value.is_empty() {
            return if self.def.required {
                Err("is required".to_owned())
            } else {
                Ok(())
            };
        }
        self.check_non_empty(value)
    }

    fn check_non_empty(&self, value: &str) -> Result<(), String> {
        validate_format(self.def.format, value)?;
        if let Some(re) = &self.regex
            && !re.is_match(value)
        {
            return Err(format!("must match the pattern {:?}", self.def.regex));
        }
        if self.def.input_type == InputType::Dropdown
            && !self.def.options.iter().any(|o| o.value == value)
        {
            let choices: Vec<&str> = self.def.options.iter().map(|o| o.value.as_str()).collect();
            return Err(format!(
                "must be one of the options: {}",
                choices.join(", ")
            ));
        }
        Ok(())
    }
}

/// Checks a per-cluster value against its definition (see [`ValueChecker::check`]).
///
/// # Errors
/// A sentence saying what is wrong, including a definition whose `regex` does not compile.
pub fn validate_value(def: &Variable, value: &str) -> Result<(), String> {
    ValueChecker::new(def)?.check(value)
}

/// Checks the variables of a version at `field` (`spec.variables`), recording every problem:
/// names are unique identifiers, display names unique, patterns compile, dropdowns have options,
/// defaults satisfy format, pattern and options, and hidden or immutable variables have defaults.
pub fn validate_variables(field: &str, vars: &[Variable], problems: &mut Problems) {
    if vars.len() > super::limits::MAX_VARIABLES {
        problems.push(
            field,
            format!("at most {} variables", super::limits::MAX_VARIABLES),
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    let mut display_names: HashMap<&str, usize> = HashMap::new();
    for (i, v) in vars.iter().enumerate() {
        let at = index(field, i);
        if !is_identifier(&v.name) {
            problems.push(
                path(&at, "name"),
                format!("{IDENTIFIER_RULE} (got {:?})", v.name),
            );
        } else if let Some(j) = names.insert(&v.name, i) {
            names.insert(&v.name, j);
            problems.push(
                path(&at, "name"),
                format!(
                    "variable {:?} is already defined by {}",
                    v.name,
                    index(field, j)
                ),
            );
        }
        if v.display_name.trim().is_empty() {
            problems.push(path(&at, "displayName"), "is required");
        } else if v.display_name.chars().count() > MAX_SHORT_TEXT {
            problems.push(
                path(&at, "displayName"),
                format!("must be at most {MAX_SHORT_TEXT} characters"),
            );
        } else if let Some(j) = display_names.insert(&v.display_name, i) {
            display_names.insert(&v.display_name, j);
            problems.push(
                path(&at, "displayName"),
                format!(
                    "display name {:?} is already used by {}",
                    v.display_name,
                    index(field, j)
                ),
            );
        }
        if v.description.chars().count() > MAX_DESCRIPTION {
            problems.push(
                path(&at, "description"),
                format!("must be at most {MAX_DESCRIPTION} characters"),
            );
        }
        validate_definition(&at, v, problems);
    }
}

/// The rules of one definition that involve its input type, pattern, options and default.
fn validate_definition(at: &str, v: &Variable, problems: &mut Problems) {
    let regex = if v.regex.is_empty() {
        None
    } else {
        // A pattern that does not compile is reported once; the other checks go on without it.
        compile_regex_cached(&v.regex)
            .map_err(|e| problems.push(path(at, "regex"), e))
            .ok()
    };
    let checker = ValueChecker { def: v, regex };
    match v.input_type {
        InputType::Dropdown if v.options.is_empty() => {
            problems.push(path(at, "options"), "a dropdown needs at least one option");
        }
        InputType::Text | InputType::Multiline if !v.options.is_empty() => {
            problems.push(
                path(at, "options"),
                "options are only allowed with inputType dropdown",
            );
        }
        _ => {}
    }

    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (k, o) in v.options.iter().enumerate() {
        let opt = index(&path(at, "options"), k);
        if o.value.is_empty() {
            problems.push(path(&opt, "value"), "is required");
        } else if o.value.len() > MAX_VALUE_BYTES {
            problems.push(
                path(&opt, "value"),
                format!("must be at most {MAX_VALUE_BYTES} bytes"),
            );
        } else if let Err(e) = validate_format(v.format, &o.value) {
            problems.push(path(&opt, "value"), e);
        } else if let Some(re) = &checker.regex
            && !re.is_match(&o.value)
        {
            problems.push(
                path(&opt, "value"),
                format!("must match the pattern {:?}", v.regex),
            );
        }
        if let Some(j) = seen.insert(&o.value, k) {
            seen.insert(&o.value, j);
            problems.push(path(&opt, "value"), format!("repeats option {j}"));
        }
        if o.label.chars().count() > MAX_SHORT_TEXT {
            problems.push(
                path(&opt, "label"),
                format!("must be at most {MAX_SHORT_TEXT} characters"),
            );
        }
        if o.description.chars().count() > MAX_DESCRIPTION {
            problems.push(
                path(&opt, "description"),
                format!("must be at most {MAX_DESCRIPTION} characters"),
            );
        }
    }

    let default_field = path(at, "defaultValue");
    if v.default_value.is_empty() {
        if v.hidden {
            problems.push(&default_field, "a hidden variable needs a default value");
        }
        if v.immutable {
            problems.push(
                &default_field,
                "an immutable variable needs a default value",
            );
        }
    } else if v.default_value.len() > MAX_VALUE_BYTES {
        problems.push(
            &default_field,
            format!("must be at most {MAX_VALUE_BYTES} bytes"),
        );
    } else if let Err(e) = checker.check_non_empty(&v.default_value) {
        problems.push(&default_field, e);
    }
}

/// A copy of per-cluster `values` with the values of sensitive variables replaced by [`MASK`]
/// (empty values stay empty, so clients can tell "unset" from "set").
pub fn mask_values(
    vars: &[Variable],
    values: &BTreeMap<String, String>,
) -> BTreeMap<String, String> {
    values
        .iter()
        .map(|(name, value)| {
            let sensitive = vars.iter().any(|v| v.sensitive && &v.name == name);
            let shown = if sensitive && !value.is_empty() {
                MASK.to_owned()
            } else {
                value.clone()
            };
            (name.clone(), shown)
        })
        .collect()
}

/// Puts back the stored value of every sensitive variable whose incoming value is [`MASK`], so a
/// client can send back what it read. A masked value with no stored value becomes empty.
pub fn restore_masked_values(
    vars: &[Variable],
    incoming: &mut BTreeMap<String, String>,
    stored: &BTreeMap<String, String>,
) {
    for (name, value) in incoming.iter_mut() {
        let sensitive = vars.iter().any(|v| v.sensitive && &v.name == name);
        if sensitive && value == MASK {
            *value = stored.get(name).cloned().unwrap_or_default();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn var(format: Format) -> Variable {
        Variable {
            name: "v".into(),
            display_name: "V".into(),
            format,
            ..Variable::default()
        }
    }

    #[test]
    fn formats_accept_and_reject() {
        let cases: &[(Format, &[&str], &[&str])] = &[
            (Format::String, &["", "anything", "ü\n"], &[]),
            (
                Format::Number,
                &["0", "-1", "3", "1.5", "-0.25", "2e6", "1E-3", "10"],
                &[
                    "", "+1", "01", "1.", ".5", "1e", "NaN", "inf", "1_000", " 1", "0x10", "1e999",
                ],
            ),
            (
                Format::Boolean,
                &["true", "false"],
                &["True", "yes", "1", "", "FALSE"],
            ),
            (
                Format::Ipv4,
                &["10.0.0.1", "0.0.0.0", "255.255.255.255"],
                &["10.0.0", "256.0.0.1", "10.0.0.01", "::1", "10.0.0.1/8", ""],
            ),
            (
                Format::Ipv4cidr,
                &["10.0.0.0/16", "0.0.0.0/0", "192.168.1.7/32"],
                &[
                    "10.0.0.0",
                    "10.0.0.0/33",
                    "10.0.0.0/016",
                    "10.0.0.0/",
                    "/8",
                    "10.0.0.0/-1",
                    "::/0",
                ],
            ),
            (
                Format::Ipv6,
                &["::1", "fd00::1", "2001:db8::8a2e:370:7334"],
                &["10.0.0.1", "fd00::g", ":::"],
            ),
            (
                Format::Version,
                &["1.0.0", "1.2.3-rc.1", "0.0.1+build.5"],
                &["v1.2.3", "1.2", "1.2.3.4", "01.2.3", ""],
            ),
            (
                Format::Base64,
                &["aGVsbG8=", "", "AAAA"],
                &["aGVsbG8", "a b", "@@@@", "aGVsbG8=\n"],
            ),
        ];
        for (format, good, bad) in cases {
            for g in *good {
                assert!(
                    validate_format(*format, g).is_ok(),
                    "{format:?} should accept {g:?}"
                );
            }
            for b in *bad {
                assert!(
                    validate_format(*format, b).is_err(),
                    "{format:?} should reject {b:?}"
                );
            }
        }
    }

    #[test]
    fn values_are_checked_against_the_whole_definition() {
        let mut v = var(Format::String);
        v.regex = "[a-z]+".into();
        assert!(validate_value(&v, "abc").is_ok());
        // The pattern is anchored: a partial match is not enough.
        assert!(validate_value(&v, "abc1").unwrap_err().contains("pattern"));
        // Empty means unset; accepted unless required.
        assert!(validate_value(&v, "").is_ok());
        v.required = true;
        assert_eq!(validate_value(&v, "").unwrap_err(), "is required");

        let mut d = var(Format::Number);
        d.input_type = InputType::Dropdown;
        d.options = vec![
            VariableOption {
                value: "1".into(),
                ..Default::default()
            },
            VariableOption {
                value: "3".into(),
                ..Default::default()
            },
        ];
        assert!(validate_value(&d, "3").is_ok());
        assert!(
            validate_value(&d, "2")
                .unwrap_err()
                .contains("one of the options: 1, 3")
        );
        assert!(validate_value(&d, "x").unwrap_err().contains("number"));
        assert!(
            validate_value(&d, &"1".repeat(MAX_VALUE_BYTES + 1))
                .unwrap_err()
                .contains("at most")
        );
    }

    #[test]
    fn hostile_or_broken_patterns_are_refused() {
        assert!(compile_regex("a)|(b").is_err());
        assert!(
            compile_regex("(")
                .unwrap_err()
                .starts_with("does not compile")
        );
        assert!(
            compile_regex(&"a".repeat(MAX_REGEX_LEN + 1))
                .unwrap_err()
                .contains("at most")
        );
        // Exceeds the compiled size limit.
        assert!(compile_regex(r"\w{1000}\w{1000}\w{1000}").is_err());
        // Backreferences and lookaround are not RE2.
        assert!(compile_regex(r"(a)\1").is_err());
        assert!(compile_regex(r"(?=a)").is_err());
        assert!(compile_regex(r"^[a-z0-9-]{1,63}$").is_ok());
    }

    #[test]
    fn identifiers() {
        for ok in ["a", "_x", "Region_1", &"a".repeat(63)] {
            assert!(is_identifier(ok), "{ok}");
        }
        for bad in ["", "1a", "a-b", "a.b", "é", "a b", &"a".repeat(64)] {
            assert!(!is_identifier(bad), "{bad}");
        }
    }

    #[test]
    fn masking_round_trips() {
        let mut secret = var(Format::String);
        secret.name = "token".into();
        secret.sensitive = true;
        let plain = Variable {
            name: "region".into(),
            ..var(Format::String)
        };
        let vars = [secret, plain];
        let stored: BTreeMap<String, String> = [
            ("token".into(), "s3cret".into()),
            ("region".into(), "eu".into()),
        ]
        .into();
        let shown = mask_values(&vars, &stored);
        assert_eq!(shown["token"], MASK);
        assert_eq!(shown["region"], "eu");
        let mut back = shown.clone();
        restore_masked_values(&vars, &mut back, &stored);
        assert_eq!(back, stored);
    }
}
