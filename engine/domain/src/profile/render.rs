//! Rendering layer values per cluster (DESIGN §4.4) with minijinja in strict-undefined mode:
//! `{{ var.NAME }}`, `{{ macro.NAME }}`, `{{ system.… }}` and the filters `default`, `upper`,
//! `lower`, `trim`, `quote`, `b64encode`, `b64decode`, `indent` and `tojson`.
//!
//! The environment is a sandbox: no loader (no includes), no globals, only Fleetplane's filters
//! (each refusing non-text input and counting its output against a per-render budget), a fuel
//! limit on instructions, a recursion limit, an output cap, and the syntax rules of the `template`
//! module. Any template, however hostile, renders or fails quickly within bounded memory.

use super::limits::{
    MAX_FILTER_BYTES, MAX_RENDERED_BYTES, MAX_TEMPLATE_BYTES, RENDER_FUEL, RENDER_RECURSION,
};
use super::macros::{Macros, SYSTEM_VALUE_NAMES, SystemValues, is_system_path};
use super::pack::{Layer, PackType};
use super::template::{self, Spot, Tag};
use super::variable::ValueChecker;
use super::version::{CloudType, Manifest, ProfileVersion};
use crate::cache::TextCache;
use crate::error::{DomainError, Problems, index, path};
use base64::Engine as _;
use minijinja::value::{Value, ValueKind};
use minijinja::{Environment, Error, ErrorKind, UndefinedBehavior};
use serde::{Deserialize, Serialize};
use std::borrow::Cow;
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, BTreeSet};
use std::io;
use std::sync::{Arc, LazyLock};

pub use super::template::TemplateError;

/// One layer of a profile version, rendered for one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RenderedLayer {
    /// The pack name.
    pub name: String,
    /// The layer.
    pub layer: Layer,
    /// The pack type.
    #[serde(rename = "type")]
    pub pack_type: PackType,
    /// The pack version.
    pub version: String,
    /// The rendered values (YAML).
    pub values: String,
    /// The rendered manifests.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<Manifest>,
}

/// What a template sees: `var`, `macro` and `system` (given flat, as `cluster.name`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TemplateContext {
    /// Variable values by name.
    pub variables: BTreeMap<String, String>,
    /// Macro values by name (precedence already resolved).
    pub macros: BTreeMap<String, String>,
    /// System values by dotted path without `system.` (see [`SystemValues::to_map`]).
    pub system: BTreeMap<String, String>,
}

impl TemplateContext {
    fn to_value(&self) -> Value {
        let strings = |m: &BTreeMap<String, String>| -> Value {
            Value::from(
                m.iter()
                    .map(|(k, v)| (k.clone(), Value::from(v.as_str())))
                    .collect::<BTreeMap<_, _>>(),
            )
        };
        let mut root: BTreeMap<String, Value> = BTreeMap::new();
        root.insert("var".into(), strings(&self.variables));
        root.insert("macro".into(), strings(&self.macros));
        root.insert("system".into(), nest(&self.system));
        Value::from(root)
    }
}

/// Turns `{"cluster.name": "dev"}` into `{"cluster": {"name": "dev"}}`; a leaf wins over a group
/// of the same name.
fn nest(flat: &BTreeMap<String, String>) -> Value {
    let mut leaves: BTreeMap<String, Value> = BTreeMap::new();
    let mut groups: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();
    for (k, v) in flat {
        match k.split_once('.') {
            Some((head, rest)) => {
                groups
                    .entry(head)
                    .or_default()
                    .insert(rest.to_owned(), v.clone());
            }
            None => {
                leaves.insert(k.clone(), Value::from(v.as_str()));
            }
        }
    }
    for (head, sub) in groups {
        leaves.entry(head.to_owned()).or_insert_with(|| nest(&sub));
    }
    Value::from(leaves)
}

/// What a template references.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct TemplateRefs {
    /// Variable names (`var.NAME`).
    pub variables: BTreeSet<String>,
    /// Macro names (`macro.NAME`).
    pub macros: BTreeSet<String>,
    /// System paths without `system.` (`cluster.name`).
    pub system: BTreeSet<String>,
}

thread_local! {
    /// Bytes filters produced in the render running on this thread.
    static FILTER_BYTES: Cell<usize> = const { Cell::new(0) };
    /// Whether the render running on this thread printed a value that could change the YAML
    /// structure checked when the version was saved.
    static STRUCTURAL_OUTPUT: Cell<bool> = const { Cell::new(false) };
    /// For the render running on this thread: where each of its expressions prints
    /// ([`template::expression_spots`]), and how many it has printed so far. A statement-free
    /// template prints each `{{ … }}` once, in order.
    static SPOTS: RefCell<Option<Arc<Vec<Spot>>>> = const { RefCell::new(None) };
    static PRINTED: Cell<usize> = const { Cell::new(0) };
}

/// [`template::expression_spots`] by template source: the same few layer templates render for
/// every cluster, and finding the spots parses the template's YAML.
static SPOTS_BY_SOURCE: LazyLock<TextCache<Vec<Spot>>> = LazyLock::new(|| TextCache::new(1024));

fn expression_spots(src: &str, tags: &[Tag<'_>]) -> Arc<Vec<Spot>> {
    SPOTS_BY_SOURCE.get_or(src, || template::expression_spots(src, tags))
}

/// Whether YAML takes `c` unescaped inside a quoted scalar: printable, not a line break.
fn yaml_printable(c: char) -> bool {
    matches!(c, ' '..='~' | '\u{A0}'..='\u{D7FF}' | '\u{E000}'..='\u{FEFE}' | '\u{FF00}'..='\u{FFFD}')
        || u32::from(c) >= 0x1_0000
}

/// Whether printing `s` at `spot` keeps the YAML structure the save-time check saw (beyond
/// what [`is_structurally_inert`] output keeps everywhere).
fn fits(spot: Spot, s: &str) -> bool {
    match spot {
        Spot::Other => false,
        Spot::Value => is_quoted_scalar(s),
        Spot::InDoubleQuoted => s
            .chars()
            .all(|c| yaml_printable(c) && c != '"' && c != '\\'),
        Spot::InSingleQuoted => s.chars().all(|c| yaml_printable(c) && c != '\''),
    }
}

/// Whether `s` is one complete double-quoted YAML scalar on one line, as the `quote` filter
/// prints it (a JSON string): a `"` at each end and none unescaped between, only JSON escapes
/// (no `\\u` of a lone surrogate) and only characters YAML takes unescaped.
fn is_quoted_scalar(s: &str) -> bool {
    let Some(inner) = s.strip_prefix('"').and_then(|r| r.strip_suffix('"')) else {
        return false;
    };
    let mut chars = inner.chars();
    while let Some(c) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some('"' | '\\' | '/' | 'b' | 'f' | 'n' | 'r' | 't') => {}
                Some('u') => {
                    let hex: String = chars.by_ref().take(4).collect();
                    match u32::from_str_radix(&hex, 16) {
                        Ok(u)
                            if hex.len() == 4
                                && hex.chars().all(|h| h.is_ascii_hexdigit())
                                && !(0xD800..=0xDFFF).contains(&u) => {}
                        _ => return false,
                    }
                }
                _ => return false,
            },
            '"' => return false,
            c if yaml_printable(c) => {}
            _ => return false,
        }
    }
    true
}

/// Whether printing `s` where the save-time check saw a placeholder scalar keeps the YAML valid in
/// any position (plain, quoted, block scalar, flow, key): non-empty, only letters, digits, `.`,
/// `_`, `/` and `-`, not starting with `-` or `.` (no `---`, `...` or sequence indicator).
fn is_structurally_inert(s: &str) -> bool {
    !s.is_empty()
        && !s.starts_with(['-', '.'])
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'/' | b'-'))
}

fn filter_budget_left() -> usize {
    MAX_FILTER_BYTES.saturating_sub(FILTER_BYTES.with(Cell::get))
}

fn charge(bytes: usize) -> Result<(), Error> {
    FILTER_BYTES.with(|used| {
        let total = used.get().saturating_add(bytes);
        used.set(total);
        if total > MAX_FILTER_BYTES {
            Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("filters produced more than {MAX_FILTER_BYTES} bytes"),
            ))
        } else {
            Ok(())
        }
    })
}

/// Refuses a result larger than what is left of the budget before building it.
fn ensure_budget(expected: usize) -> Result<(), Error> {
    if expected > filter_budget_left() {
        Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("filters produced more than {MAX_FILTER_BYTES} bytes"),
        ))
    } else {
        Ok(())
    }
}

/// The text of a scalar; sequences and maps are refused (their text form could be huge).
fn text<'v>(value: &'v Value, filter: &str) -> Result<Cow<'v, str>, Error> {
    match value.kind() {
        ValueKind::Undefined => Err(Error::new(
            ErrorKind::UndefinedError,
            format!("the {filter} filter got an undefined value"),
        )),
        ValueKind::String => Ok(Cow::Borrowed(value.as_str().unwrap_or_default())),
        ValueKind::Number | ValueKind::Bool | ValueKind::None => Ok(Cow::Owned(value.to_string())),
        other => Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("the {filter} filter expects text, not {other}"),
        )),
    }
}

fn f_default(value: &Value, fallback: Option<Value>) -> Value {
    // Like Palette's (sprig's) default: an empty string counts as missing, so an optional variable
    // without a value can fall back.
    if value.is_undefined() || value.is_none() || value.as_str() == Some("") {
        fallback.unwrap_or_else(|| Value::from(""))
    } else {
        value.clone()
    }
}

fn f_upper(value: &Value) -> Result<Value, Error> {
    let s = text(value, "upper")?;
    ensure_budget(s.len().saturating_mul(3))?;
    let out = s.to_uppercase();
    charge(out.len())?;
    Ok(Value::from(out))
}

fn f_lower(value: &Value) -> Result<Value, Error> {
    let s = text(value, "lower")?;
    ensure_budget(s.len().saturating_mul(3))?;
    let out = s.to_lowercase();
    charge(out.len())?;
    Ok(Value::from(out))
}

fn f_trim(value: &Value) -> Result<Value, Error> {
    let s = text(value, "trim")?;
    let out = s.trim().to_owned();
    charge(out.len())?;
    Ok(Value::from(out))
}

fn f_quote(value: &Value) -> Result<Value, Error> {
    let s = text(value, "quote")?;
    ensure_budget(s.len().saturating_mul(6).saturating_add(2))?;
    // A JSON string is a valid YAML double-quoted scalar, with every special character escaped.
    let out = serde_json::to_string(s.as_ref())
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    charge(out.len())?;
    Ok(Value::from(out))
}

fn f_b64encode(value: &Value) -> Result<Value, Error> {
    let s = text(value, "b64encode")?;
    ensure_budget(s.len().saturating_mul(4) / 3 + 4)?;
    let out = base64::engine::general_purpose::STANDARD.encode(s.as_bytes());
    charge(out.len())?;
    Ok(Value::from(out))
}

fn f_b64decode(value: &Value) -> Result<Value, Error> {
    let s = text(value, "b64decode")?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(s.as_bytes())
        .map_err(|_| Error::new(ErrorKind::InvalidOperation, "b64decode got invalid base64"))?;
    let out = String::from_utf8(bytes).map_err(|_| {
        Error::new(
            ErrorKind::InvalidOperation,
            "b64decode produced non-UTF-8 bytes",
        )
    })?;
    charge(out.len())?;
    Ok(Value::from(out))
}

/// The most spaces `indent` adds per line.
const MAX_INDENT: usize = 32;

fn f_indent(value: &Value, width: Option<usize>, first: Option<bool>) -> Result<Value, Error> {
    let s = text(value, "indent")?;
    let width = width.unwrap_or(4);
    if width > MAX_INDENT {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            format!("indent width must be at most {MAX_INDENT}"),
        ));
    }
    let lines = s.lines().count();
    ensure_budget(s.len().saturating_add(lines.saturating_mul(width)))?;
    let pad = " ".repeat(width);
    let mut out = String::with_capacity(s.len() + lines * width);
    for (i, line) in s.split('\n').enumerate() {
        if i > 0 {
            out.push('\n');
        }
        if (i > 0 || first.unwrap_or(false)) && !line.trim().is_empty() {
            out.push_str(&pad);
        }
        out.push_str(line);
    }
    charge(out.len())?;
    Ok(Value::from(out))
}

/// An upper bound of the JSON size of `value`, stopping once it exceeds `limit`.
fn json_size_bound(value: &Value, limit: usize, depth: usize) -> Result<usize, Error> {
    let too_big = || {
        Error::new(
            ErrorKind::InvalidOperation,
            format!("filters produced more than {MAX_FILTER_BYTES} bytes"),
        )
    };
    if depth > 32 {
        return Err(Error::new(
            ErrorKind::InvalidOperation,
            "tojson: value nested too deeply",
        ));
    }
    let size = match value.kind() {
        ValueKind::Undefined => {
            return Err(Error::new(
                ErrorKind::UndefinedError,
                "the tojson filter got an undefined value",
            ));
        }
        ValueKind::None | ValueKind::Bool | ValueKind::Number => 48,
        ValueKind::String => value
            .as_str()
            .unwrap_or_default()
            .len()
            .saturating_mul(6)
            .saturating_add(2),
        ValueKind::Seq | ValueKind::Map => {
            let is_map = value.kind() == ValueKind::Map;
            let mut total = 2usize;
            for item in value.try_iter()? {
                total = total.saturating_add(1).saturating_add(json_size_bound(
                    &item,
                    limit,
                    depth + 1,
                )?);
                if is_map {
                    let v = value.get_item(&item)?;
                    total = total.saturating_add(1).saturating_add(json_size_bound(
                        &v,
                        limit,
                        depth + 1,
                    )?);
                }
                if total > limit {
                    return Err(too_big());
                }
            }
            total
        }
        other => {
            return Err(Error::new(
                ErrorKind::InvalidOperation,
                format!("the tojson filter cannot serialize {other}"),
            ));
        }
    };
    if size > limit {
        Err(too_big())
    } else {
        Ok(size)
    }
}

fn f_tojson(value: &Value) -> Result<Value, Error> {
    json_size_bound(value, filter_budget_left(), 0)?;
    let out = serde_json::to_string(value)
        .map_err(|e| Error::new(ErrorKind::InvalidOperation, e.to_string()))?;
    charge(out.len())?;
    Ok(Value::from(out))
}

static ENV: LazyLock<Environment<'static>> = LazyLock::new(|| {
    let mut env = Environment::empty();
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_fuel(Some(RENDER_FUEL));
    env.set_recursion_limit(RENDER_RECURSION);
    // Statement lines vanish entirely and the final newline stays, which is what YAML wants.
    if let Ok(syntax) = minijinja::syntax::SyntaxConfig::builder()
        .trim_blocks(true)
        .lstrip_blocks(true)
        .keep_trailing_newline(true)
        .build()
    {
        env.set_syntax(syntax);
    }
    env.set_formatter(|out, state, value| {
        let inert = match value.kind() {
            ValueKind::String => is_structurally_inert(value.as_str().unwrap_or_default()),
            ValueKind::Number | ValueKind::Bool => is_structurally_inert(&value.to_string()),
            _ => false,
        };
        let at = PRINTED.with(|p| p.replace(p.get() + 1));
        let safe = inert
            || (value.kind() == ValueKind::String
                && SPOTS.with(|s| {
                    s.borrow().as_ref().is_some_and(|v| {
                        v.get(at)
                            .is_some_and(|&spot| fits(spot, value.as_str().unwrap_or_default()))
                    })
                }));
        if !safe {
            STRUCTURAL_OUTPUT.with(|c| c.set(true));
        }
        minijinja::escape_formatter(out, state, value)
    });
    env.add_filter("default", f_default);
    env.add_filter("upper", f_upper);
    env.add_filter("lower", f_lower);
    env.add_filter("trim", f_trim);
    env.add_filter("quote", f_quote);
    env.add_filter("b64encode", f_b64encode);
    env.add_filter("b64decode", f_b64decode);
    env.add_filter("indent", f_indent);
    env.add_filter("tojson", f_tojson);
    env.add_test("defined", |v: &Value| !v.is_undefined());
    env.add_test("undefined", |v: &Value| v.is_undefined());
    env.add_test("none", |v: &Value| v.is_none());
    env.add_test("string", |v: &Value| v.kind() == ValueKind::String);
    env.add_test("number", |v: &Value| v.kind() == ValueKind::Number);
    env
});

fn convert(e: &Error) -> TemplateError {
    let message = match e.kind() {
        ErrorKind::OutOfFuel => {
            format!("the template does too much work (more than {RENDER_FUEL} steps)")
        }
        kind => match e.detail() {
            Some(d) => format!("{kind}: {d}"),
            None => kind.to_string(),
        },
    };
    TemplateError::new(e.line(), message)
}

/// Size, tag and sandbox checks shared by checking and rendering.
fn prepare(src: &str) -> Result<Vec<Tag<'_>>, TemplateError> {
    if src.len() > MAX_TEMPLATE_BYTES {
        return Err(TemplateError::new(
            None,
            format!("must be at most {MAX_TEMPLATE_BYTES} bytes"),
        ));
    }
    let tags = template::scan(src)?;
    template::guard(src, &tags)?;
    Ok(tags)
}

fn find_line(src: &str, tags: &[Tag<'_>], needle: &str) -> Option<usize> {
    tags.iter()
        .find(|t| t.body.contains(needle))
        .map(|t| template::line_of(src, t.start))
}

/// Checks a template without rendering it: size, syntax, the sandbox rules, and that it only
/// references `var.NAME`, `macro.NAME` and known `system.…` values. Returns what it references.
///
/// # Errors
/// The first problem, with its line.
pub fn check_template(src: &str) -> Result<TemplateRefs, TemplateError> {
    let tags = prepare(src)?;
    let tmpl = ENV.template_from_str(src).map_err(|e| convert(&e))?;
    let mut names: Vec<String> = tmpl.undeclared_variables(true).into_iter().collect();
    names.sort();
    let mut refs = TemplateRefs::default();
    for name in names {
        // Only an error needs the line; searching for every name would be quadratic.
        let err = |msg: String| TemplateError::new(find_line(src, &tags, &name), msg);
        let (head, rest) = match name.split_once('.') {
            Some((h, r)) => (h, Some(r)),
            None => (name.as_str(), None),
        };
        match (head, rest) {
            ("var", None) => {
                return Err(err(
                    "write var.NAME: variables cannot be looked up dynamically".into(),
                ));
            }
            ("var" | "macro", Some(r)) if r.contains('.') => {
                let (n, attr) = r.split_once('.').unwrap_or((r, ""));
                return Err(err(format!(
                    "{head}.{n} is text; it has no attribute {attr:?}"
                )));
            }
            ("var", Some(r)) => {
                refs.variables.insert(r.to_owned());
            }
            ("macro", Some(r)) => {
                refs.macros.insert(r.to_owned());
            }
            // `macro[name]`: which macros exist is only known per cluster.
            ("macro", None) | ("system", None) => {}
            ("system", Some(r)) if is_system_path(r) => {
                refs.system.insert(r.to_owned());
            }
            ("system", Some(r)) => {
                return Err(err(format!(
                    "unknown system value system.{r} (known: {})",
                    SYSTEM_VALUE_NAMES
                        .iter()
                        .map(|n| format!("system.{n}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
            _ => {
                return Err(err(format!(
                    "unknown name {head:?}: templates see var.NAME, macro.NAME and system.…"
                )));
            }
        }
    }
    Ok(refs)
}

/// The variables a template references (`var.NAME`), for the `UndefinedVariable` check.
///
/// # Errors
/// The template does not pass [`check_template`].
pub fn referenced_variables(src: &str) -> Result<BTreeSet<String>, TemplateError> {
    check_template(src).map(|r| r.variables)
}

/// A writer that refuses to grow past a cap.
struct CappedWriter {
    buf: Vec<u8>,
    overflowed: bool,
}

impl io::Write for CappedWriter {
    fn write(&mut self, data: &[u8]) -> io::Result<usize> {
        if self.buf.len().saturating_add(data.len()) > MAX_RENDERED_BYTES {
            self.overflowed = true;
            return Err(io::Error::other("output cap reached"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A rendered template, and whether its YAML must be checked again: it has statements, or printed
/// a value that is not [structurally inert](is_structurally_inert). Otherwise the output has the
/// structure the save-time check accepted.
struct Rendered {
    text: String,
    recheck: bool,
}

fn render_with(src: &str, ctx: &Value) -> Result<Rendered, TemplateError> {
    let tags = prepare(src)?;
    let tmpl = ENV.template_from_str(src).map_err(|e| convert(&e))?;
    FILTER_BYTES.with(|b| b.set(0));
    STRUCTURAL_OUTPUT.with(|c| c.set(false));
    let statements = template::has_statements(&tags);
    let exprs = tags
        .iter()
        .filter(|t| t.kind == template::TagKind::Expr)
        .count();
    SPOTS.with(|s| *s.borrow_mut() = (!statements).then(|| expression_spots(src, &tags)));
    PRINTED.with(|p| p.set(0));
    let mut out = CappedWriter {
        buf: Vec::new(),
        overflowed: false,
    };
    let result = tmpl.render_captured_to(ctx.clone(), &mut out);
    SPOTS.with(|s| *s.borrow_mut() = None);
    // Each expression printed exactly once, or the positions do not say which print was where.
    let recheck =
        statements || STRUCTURAL_OUTPUT.with(Cell::get) || PRINTED.with(Cell::get) != exprs;
    match result {
        Ok(_) => String::from_utf8(out.buf)
            .map(|text| Rendered { text, recheck })
            .map_err(|_| TemplateError::new(None, "the rendered output is not UTF-8")),
        Err(_) if out.overflowed => Err(TemplateError::new(
            None,
            format!("the rendered output exceeds {MAX_RENDERED_BYTES} bytes"),
        )),
        Err(e) => Err(convert(&e)),
    }
}

/// Renders one template with `ctx`, in the sandbox. Pure and bounded for any input, which makes
/// it a fuzzing entry point.
///
/// # Errors
/// The template is too large, breaks a sandbox rule, does not parse, references something
/// undefined, or exceeds a limit; with its line when known.
pub fn render_template(src: &str, ctx: &TemplateContext) -> Result<String, TemplateError> {
    render_with(src, &ctx.to_value()).map(|r| r.text)
}

/// Renders a layer's template and parses the output again when what it printed could have
/// changed the YAML structure checked when the version was saved.
fn render_checked(src: &str, ctx: &Value, multi: bool) -> Result<String, TemplateError> {
    let out = render_with(src, ctx)?;
    if out.recheck {
        template::check_yaml(&out.text, multi, true).map_err(|e| TemplateError {
            line: e.line,
            message: format!("after rendering, {}", e.message),
        })?;
    }
    Ok(out.text)
}

/// Renders a values template as a layer's values are rendered: `None` when the template fails
/// the YAML check a version's values get when saved, else the render, its output parsed again
/// only when what it printed could have changed that structure. A fuzzing oracle: whenever
/// this skipped the parse, its output must still be one valid YAML document.
#[doc(hidden)]
pub fn render_values_as_saved(
    src: &str,
    ctx: &TemplateContext,
) -> Option<Result<String, TemplateError>> {
    template::check_values(src).ok()?;
    Some(render_checked(src, &ctx.to_value(), false))
}

/// Whether `text` is one YAML document, duplicate keys refused (the post-render check).
#[doc(hidden)]
#[must_use]
pub fn is_valid_values_yaml(text: &str) -> bool {
    template::check_yaml(text, false, true).is_ok()
}

/// Renders every layer (values and manifests) of a profile version for one cluster.
///
/// `values` are the cluster's variable values for this profile (absent ones take the default;
/// names the version does not define are ignored), `macros` the resolved macros, `system` the
/// cluster's facts. Each value is checked against its definition, and each rendered template must
/// be valid YAML (duplicate keys are errors). The version is expected to have passed
/// [`validate_version`](super::validate_version): a rendered template is parsed again only when its
/// statements or printed values could have changed the structure checked then.
///
/// # Errors
/// `ValidationFailed` with every problem: a variable value that is missing or invalid (field
/// `spec.variables.<profile>.<variable>`, as in a cluster's spec), or a template that fails (field
/// `spec.layers[i].values` or `spec.layers[i].manifests[j].content`), each message naming the
/// cluster, profile, layer and line.
pub fn render_version(
    version: &ProfileVersion,
    values: &BTreeMap<String, String>,
    macros: &Macros,
    system: &SystemValues,
) -> Result<Vec<RenderedLayer>, DomainError> {
    let name = &version.metadata.name;
    let spec = &version.spec;
    let who = if system.cluster_name.is_empty() {
        format!("profile {name:?} {}", spec.version)
    } else {
        format!(
            "cluster {:?}, profile {name:?} {}",
            system.cluster_name, spec.version
        )
    };

    let mut problems = Problems::new();
    let mut vars = BTreeMap::new();
    for def in &spec.variables {
        let value = def.effective_value(values.get(&def.name).map(String::as_str));
        let field = path(&path(&path("spec", "variables"), name), &def.name);
        match ValueChecker::new(def).and_then(|c| c.check(value)) {
            Ok(()) => {
                vars.insert(def.name.clone(), value.to_owned());
            }
            Err(e) => problems.push(field, format!("{who}: variable {:?} {e}", def.name)),
        }
    }
    // Rendering without the values would only repeat these problems as undefined names.
    std::mem::take(&mut problems).finish()?;

    let mut sys = system.clone();
    if let Some(k8s) = spec.kubernetes_version() {
        sys.kubernetes_version = Some(k8s.to_owned());
    }
    if sys.cloud_type.is_none() && spec.cloud_type != CloudType::All {
        sys.cloud_type = Some(spec.cloud_type);
    }
    let ctx = TemplateContext {
        variables: vars,
        macros: macros.0.clone(),
        system: sys.to_map(name, &spec.version),
    }
    .to_value();

    let mut rendered = Vec::with_capacity(spec.layers.len());
    for (i, layer) in spec.layers.iter().enumerate() {
        let at = index("spec.layers", i);
        let render = |src: &str, multi: bool| render_checked(src, &ctx, multi);
        let values = render(&layer.values, false).unwrap_or_else(|e| {
            problems.push(
                path(&at, "values"),
                format!("{who}, layer {:?}: {e}", layer.name),
            );
            String::new()
        });
        let mut manifests = Vec::with_capacity(layer.manifests.len());
        for (j, m) in layer.manifests.iter().enumerate() {
            let content = render(&m.content, true).unwrap_or_else(|e| {
                problems.push(
                    path(&index(&path(&at, "manifests"), j), "content"),
                    format!("{who}, layer {:?}, manifest {:?}: {e}", layer.name, m.name),
                );
                String::new()
            });
            manifests.push(Manifest {
                name: m.name.clone(),
                content,
            });
        }
        rendered.push(RenderedLayer {
            name: layer.name.clone(),
            layer: layer.layer,
            pack_type: layer.pack_type,
            version: layer.version.clone(),
            values,
            manifests,
        });
    }
    problems.finish()?;
    Ok(rendered)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx() -> TemplateContext {
        TemplateContext {
            variables: [
                ("greeting".into(), "Hello".into()),
                ("empty".into(), String::new()),
            ]
            .into(),
            macros: [("registry".into(), "r.example.com".into())].into(),
            system: [("cluster.name".into(), "dev".into())].into(),
        }
    }

    #[test]
    fn filters_and_references_render() {
        let cases = [
            ("{{ var.greeting }}", "Hello"),
            (
                "{{ var.greeting | upper }}-{{ var.greeting | lower }}",
                "HELLO-hello",
            ),
            ("{{ macro.registry }}", "r.example.com"),
            ("{{ macro.missing | default(\"z\") }}", "z"),
            ("{{ var.empty | default(\"fallback\") }}", "fallback"),
            ("{{ system.cluster.name | quote }}", "\"dev\""),
            ("{{ 'a\"b' | quote }}", "\"a\\\"b\""),
            ("{{ var.greeting | b64encode }}", "SGVsbG8="),
            ("{{ 'SGVsbG8=' | b64decode }}", "Hello"),
            ("{{ var.greeting | tojson }}", "\"Hello\""),
            ("{{ [1, 'a'] | tojson }}", "[1,\"a\"]"),
            ("{{ '  x ' | trim }}", "x"),
            ("a:\n  {{ 'x\\ny' | indent(2) }}\n", "a:\n  x\n  y\n"),
            (
                "{% if var.greeting == 'Hello' %}\nyes: 1\n{% endif %}\nend: 2\n",
                "yes: 1\nend: 2\n",
            ),
            ("{% if macro.nope is defined %}a{% else %}b{% endif %}", "b"),
        ];
        for (src, want) in cases {
            assert_eq!(render_template(src, &ctx()).unwrap(), want, "{src}");
        }
    }

    #[test]
    fn strict_undefined_names_what_is_missing() {
        let e = render_template("a: 1\nb: {{ var.nope }}\n", &ctx()).unwrap_err();
        assert_eq!(e.line, Some(2));
        assert!(e.message.contains("var.nope"), "{e}");
        let e = render_template("{{ macro.nope }}", &ctx()).unwrap_err();
        assert!(e.message.contains("macro.nope"), "{e}");
        assert!(render_template("{{ macro.nope | upper }}", &ctx()).is_err());
    }

    #[test]
    fn hostile_templates_stop() {
        let loops = "{% for a in var.greeting * 1 %}{% endfor %}";
        assert!(render_template(loops, &ctx()).is_err());
        let long = "x".repeat(60_000);
        let mut c = ctx();
        c.variables.insert("long".into(), long);
        let nested =
            "{% for a in var.long %}{% for b in var.long %}{{ b }}{% endfor %}{% endfor %}";
        let e = render_template(nested, &c).unwrap_err();
        assert!(
            e.message.contains("too much work") || e.message.contains("exceeds"),
            "{e}"
        );
        let blowup = "{% for a in var.long %}{% set x = var.long | b64encode %}{% endfor %}";
        assert!(
            render_template(blowup, &c)
                .unwrap_err()
                .message
                .contains("filters produced")
        );
        let json = format!("{{{{ [{}] | tojson }}}}", vec!["var.long"; 200].join(","));
        assert!(
            render_template(&json, &c)
                .unwrap_err()
                .message
                .contains("filters produced")
        );
        assert!(render_template("{{ var.long | indent(1000) }}", &c).is_err());
        assert!(render_template("{{ [var.long, var.long] | upper }}", &c).is_err());
        let deep = format!(
            "{}x{}",
            "{% if true %}".repeat(200),
            "{% endif %}".repeat(200)
        );
        assert!(render_template(&deep, &c).is_err());
        assert!(render_template("{{ range(10) }}", &c).is_err());
        assert!(render_template("{{ namespace() }}", &c).is_err());
    }

    #[test]
    fn inert_values() {
        for ok in [
            "dev",
            "10.0.0.0/16",
            "1.33.4",
            "eu-west-1",
            "a_b",
            "v1",
            "0",
        ] {
            assert!(is_structurally_inert(ok), "{ok}");
        }
        for bad in [
            "", "-1", "...", "---", "a b", "a: b", "a#b", "\"", "'", "a\nb", "[x]", "*a", "&a", "é",
        ] {
            assert!(!is_structurally_inert(bad), "{bad:?}");
        }
    }

    /// Templates printing `{{ var.v | quote }}` where a quoted scalar may stand for the whole
    /// value, and where it may not (inside a plain scalar, as a key, trimmed, after
    /// statements); and plain `{{ var.v }}` inside quoted scalars.
    const QUOTE_STANDALONE: [&str; 8] = [
        "a: {{ var.v | quote }}\n",
        "a: {{ var.v | quote }} # note\nb: 2\n",
        "l:\n  - {{ var.v | quote }}\n  - x\n",
        "f: [{{ var.v | quote }}, {a: {{ var.v | quote }}}]\n",
        "m:\n  k:\n    {{ var.v | quote }}\n",
        "{{ var.v | quote }}\n",
        "? k\n: {{ var.v | quote }}\n",
        "a: &x 1\nb: {{ var.v | quote }}\n",
    ];
    const QUOTE_ELSEWHERE: [&str; 8] = [
        "a: \"x{{ var.v | quote }}\"\n",
        "a: x{{ var.v | quote }}\n",
        "a: {{ var.v | quote }}{{ var.v | quote }}\n",
        "{{ var.v | quote }}: 1\n",
        "a: \"first\n  {{ var.v | quote }}\n  end\"\n",
        "a: |\n  {{ var.v | quote }}\n",
        "a: {{- var.v | quote }}\n",
        "{% if true %}a: {{ var.v | quote }}{% endif %}\n",
    ];
    const IN_DOUBLE_QUOTES: [&str; 3] = [
        "a: \"{{ var.v }}\"\n",
        "a: \"x {{ var.v }} y\" # c\n",
        "l: [\"{{ var.v }}\", \"first\n  {{ var.v }} end\"]\n",
    ];
    const IN_SINGLE_QUOTES: [&str; 2] = ["a: '{{ var.v }}'\n", "a: 'x {{ var.v | quote }} y'\n"];
    /// Unquoted output where a whole value stands: only inert or quoted output skips the parse.
    const RAW_VALUES: [&str; 3] = ["a: {{ var.v }}\n", "l:\n  - {{ var.v }}\n", "{{ var.v }}\n"];

    fn quoted_ctx(v: &str) -> Value {
        let mut c = ctx();
        c.variables.insert("v".into(), v.to_owned());
        c.to_value()
    }

    fn rechecked(t: &str, v: &str) -> bool {
        let out = render_with(t, &quoted_ctx(v)).unwrap();
        if !out.recheck {
            template::check_yaml(&out.text, false, true).expect(&out.text);
        }
        out.recheck
    }

    #[test]
    fn output_is_parsed_again_only_where_it_could_change_the_structure() {
        let tricky = "a: b # c ' \\ \u{e9} [x]";
        for t in QUOTE_STANDALONE
            .iter()
            .chain(&QUOTE_ELSEWHERE)
            .chain(&IN_DOUBLE_QUOTES)
            .chain(&IN_SINGLE_QUOTES)
            .chain(&RAW_VALUES)
        {
            template::check_values(t).expect(t);
        }
        for t in RAW_VALUES {
            assert!(!rechecked(t, "plain"), "{t}");
            assert!(rechecked(t, "a: b"), "{t}");
            assert!(rechecked(t, "\"half"), "{t}");
        }
        for t in QUOTE_STANDALONE {
            assert!(!rechecked(t, tricky), "{t}");
            assert!(!rechecked(t, "with \"quotes\" and \n a line break"), "{t}");
        }
        for t in QUOTE_ELSEWHERE {
            assert!(rechecked(t, "plain text"), "{t}");
        }
        for t in IN_DOUBLE_QUOTES {
            assert!(!rechecked(t, "a: b # c ' [x] \u{e9}"), "{t}");
            assert!(!rechecked(t, ""), "{t}: empty");
            for bad in ["a\"b", "a\\b", "a\nb", "a\tb"] {
                assert!(rechecked(t, bad), "{t}: {bad:?}");
            }
        }
        for t in IN_SINGLE_QUOTES {
            assert!(!rechecked(t, "a: b # c [x] \\ \u{e9}"), "{t}");
            assert!(rechecked(t, "it's"), "{t}");
        }
        // Not the `quote` filter's form: a bare quote, a quote inside, a control character,
        // escapes JSON does not have.
        for printed in [
            "\"",
            "\"a\"b\"",
            "\"a\u{7f}\"",
            "\"\\x41\"",
            "\"\\u+041\"",
            "\"\\ud800\"",
        ] {
            assert!(!is_quoted_scalar(printed), "{printed}");
        }
        assert!(is_quoted_scalar("\"a \\\"b\\\" \\u00e9 \\n\""));
    }

    proptest::proptest! {
        /// Skipping the post-render parse is sound wherever it is skipped: any value, quoted by
        /// the filter or printed as it is, keeps every one of these templates valid YAML.
        #[test]
        fn output_that_skips_the_parse_keeps_templates_valid(value in "\\PC{0,24}|[\"'\\\\:#{}\\[\\],&*!|>%@` \\n-]{0,12}") {
            for t in QUOTE_STANDALONE.iter().chain(&QUOTE_ELSEWHERE).chain(&IN_DOUBLE_QUOTES).chain(&IN_SINGLE_QUOTES).chain(&RAW_VALUES) {
                let out = render_with(t, &quoted_ctx(&value)).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
                if !out.recheck {
                    let parsed = template::check_yaml(&out.text, false, true);
                    proptest::prop_assert!(parsed.is_ok(), "{t} with {value:?}: {parsed:?}");
                }
            }
        }

        /// Skipping the post-render parse is sound: an inert value printed where the save-time
        /// check saw a placeholder keeps every valid template valid.
        #[test]
        fn inert_values_keep_valid_templates_valid(value in "[A-Za-z0-9_/][A-Za-z0-9._/-]{0,20}") {
            let templates = [
                "a: {{ var.v }}\n",
                "{{ var.v }}: 1\nb: 2\n",
                "a: \"{{ var.v }}\"\nb: '{{ var.v }}'\n",
                "l:\n  - {{ var.v }}\n  - x{{ var.v }}y\n",
                "f: [{{ var.v }}, {a: {{ var.v }}}]\n",
                "s: |\n  {{ var.v }}\n  more\n",
                "k: &{{ var.v }} 1\n# {{ var.v }}\n",
                "u: http://{{ var.v }}:8080/{{ var.v }}\n",
            ];
            let mut c = ctx();
            c.variables.insert("v".into(), value.clone());
            proptest::prop_assume!(value != "-" && is_structurally_inert(&value));
            for t in templates {
                template::check_values(t).map_err(|e| proptest::test_runner::TestCaseError::fail(format!("{t}: {e}")))?;
                let out = render_with(t, &c.to_value()).map_err(|e| proptest::test_runner::TestCaseError::fail(e.to_string()))?;
                proptest::prop_assert!(!out.recheck);
                let parsed = template::check_yaml(&out.text, false, false);
                proptest::prop_assert!(parsed.is_ok(), "{t} with {value:?}: {parsed:?}");
            }
        }
    }

    #[test]
    fn check_template_classifies_references() {
        let refs = check_template(
            "a: {{ var.x }}\nb: {{ macro.m | default('d') }}\nc: {{ system.cluster.name }}\n{% set l = var.y %}{{ l }}\n{% for c in var.z %}{{ loop.index }}{% endfor %}",
        )
        .unwrap();
        assert_eq!(refs.variables, ["x", "y", "z"].map(String::from).into());
        assert_eq!(refs.macros, ["m"].map(String::from).into());
        assert_eq!(refs.system, ["cluster.name"].map(String::from).into());
        for (src, needle, line) in [
            ("a: 1\n{{ var['x'] }}", "dynamically", 2),
            ("{{ var.x.y }}", "no attribute", 1),
            ("\n\n{{ system.cluster.nam }}", "unknown system value", 3),
            ("{{ foo }}", "unknown name", 1),
            ("{{ .spectro.var.x }}", "syntax error", 1),
        ] {
            let e = check_template(src).unwrap_err();
            assert!(e.message.contains(needle), "{src}: {e}");
            assert_eq!(e.line, Some(line), "{src}: {e}");
        }
    }
}
