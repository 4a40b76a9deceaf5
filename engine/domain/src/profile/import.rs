//! Import and export of profile versions (DESIGN §4.3).
//!
//! Two dialects share one JSON shape (`{metadata, spec: {version, template: {type, cloudType,
//! packs[]}, variables[]}}`):
//!
//! - **Fleetplane's own export** carries `"apiVersion": "fleetplane.io/v1"` and
//!   `"kind": "ClusterProfile"`, uses Fleetplane's words (`full`, `catalog`, `sensitive`) and
//!   template syntax, and is parsed strictly: an unknown field is an error.
//! - **Palette's export** (no `apiVersion`) is parsed tolerantly: unknown fields are ignored, words
//!   are mapped (`cluster` → `full`, `add-on` → `addon`, `spectro` → `catalog`, `isHidden` →
//!   `hidden`, `isSensitive` → `sensitive`), and Go-template references (`{{ .spectro.var.X }}`,
//!   `.spectro.macro.X`, `.spectro.system.X.Y`, with `| default "x"` and a few other pipes) are
//!   rewritten to Fleetplane's syntax and counted. Anything else in `{{ }}` is refused, naming the
//!   layer and the text.

use super::limits::MAX_IMPORT_BYTES;
use super::pack::{Catalog, Layer, PackType};
use super::variable::{Format, InputType, MASK, Variable, VariableOption, is_identifier};
use super::version::{
    CloudType, LayerSpec, Manifest, ProfileType, ProfileVersion, ProfileVersionSpec,
    ProfileVersionStatus, validate_version,
};
use crate::error::{DomainError, ErrorCode, FieldError, Problems, index, path};
use crate::meta::{Labels, Metadata};
use serde::{Deserialize, Serialize};

/// `apiVersion` of Fleetplane's export format.
pub const EXPORT_API_VERSION: &str = "fleetplane.io/v1";
/// `kind` of Fleetplane's export format.
pub const EXPORT_KIND: &str = "ClusterProfile";

/// Which dialect a document was written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ImportFormat {
    /// Spectro Cloud Palette's export.
    Palette,
    /// Fleetplane's own export.
    Fleetplane,
}

/// Fleetplane's export document (and the strict import format).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportDocument {
    /// Always [`EXPORT_API_VERSION`].
    pub api_version: String,
    /// Always [`EXPORT_KIND`].
    pub kind: String,
    /// The profile's name, description and labels.
    pub metadata: ExportMetadata,
    /// The version.
    pub spec: ExportSpec,
}

/// `metadata` of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportMetadata {
    /// The profile's name.
    pub name: String,
    /// Free text.
    #[serde(default)]
    pub description: String,
    /// Labels.
    #[serde(default)]
    pub labels: Labels,
}

/// `spec` of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportSpec {
    /// The version.
    pub version: String,
    /// Type, cloud type and packs.
    pub template: ExportTemplate,
    /// Variables (sensitive defaults masked).
    #[serde(default)]
    pub variables: Vec<Variable>,
}

/// `spec.template` of an export.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ExportTemplate {
    /// The profile type.
    #[serde(rename = "type")]
    pub profile_type: ProfileType,
    /// The cloud type.
    pub cloud_type: CloudType,
    /// The layers.
    #[serde(default)]
    pub packs: Vec<LayerSpec>,
}

/// A parsed import document, ready for the API: check that the name and version are new (409
/// `AlreadyExists`), [`validate`](ImportedProfile::validate) against the catalog, check the type
/// against an existing profile, save.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ImportedProfile {
    /// The dialect it was written in.
    pub format: ImportFormat,
    /// The version to create.
    pub version: ProfileVersion,
    /// How many Palette references were rewritten.
    pub rewrites: usize,
    /// Things the importer changed that a person should know.
    pub warnings: Vec<String>,
}

impl ImportedProfile {
    /// Validates the version against `catalog` ([`validate_version`]), with field paths of the
    /// import document (`spec.template.packs[2].values`) instead of the version's.
    ///
    /// # Errors
    /// Those of [`validate_version`].
    pub fn validate(&self, catalog: &Catalog<'_>) -> Result<(), DomainError> {
        validate_version(&self.version, catalog).map_err(|mut e| {
            for f in &mut e.errors {
                f.field = document_path(&f.field);
            }
            e
        })
    }
}

/// Maps a version field path to the import document's.
fn document_path(field: &str) -> String {
    if let Some(rest) = field.strip_prefix("spec.layers") {
        format!("spec.template.packs{rest}")
    } else if field == "spec.type" {
        "spec.template.type".to_owned()
    } else if field == "spec.cloudType" {
        "spec.template.cloudType".to_owned()
    } else {
        field.to_owned()
    }
}

/// Exports a version in Fleetplane's format, with sensitive defaults masked.
pub fn export_document(version: &ProfileVersion) -> ExportDocument {
    let masked = version.spec.masked();
    ExportDocument {
        api_version: EXPORT_API_VERSION.to_owned(),
        kind: EXPORT_KIND.to_owned(),
        metadata: ExportMetadata {
            name: version.metadata.name.clone(),
            description: version.metadata.description.clone(),
            labels: version.metadata.labels.clone(),
        },
        spec: ExportSpec {
            version: masked.version,
            template: ExportTemplate {
                profile_type: masked.profile_type,
                cloud_type: masked.cloud_type,
                packs: masked.layers,
            },
            variables: masked.variables,
        },
    }
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct Probe {
    #[serde(default)]
    api_version: Option<serde_json::Value>,
}

/// Parses an import document of either dialect (see the module docs). Does not consult the
/// catalog or the store; call [`ImportedProfile::validate`] next. Pure and bounded for any input,
/// which makes it a fuzzing entry point.
///
/// # Errors
/// `PayloadTooLarge` above [`MAX_IMPORT_BYTES`]; `ValidationFailed` for a document that does not
/// parse, an unknown word (type, cloud type, layer, format…), or Palette template text that
/// cannot be rewritten (each naming the layer and the text).
pub fn import_document(bytes: &[u8]) -> Result<ImportedProfile, DomainError> {
    if bytes.len() > MAX_IMPORT_BYTES {
        return Err(DomainError::new(
            ErrorCode::PayloadTooLarge,
            format!("an import document is at most {MAX_IMPORT_BYTES} bytes"),
        ));
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let bad_json = |e: serde_json::Error, what: &str| {
        DomainError::validation(vec![FieldError::new("", format!("{what}: {e}"))])
    };
    let probe: Probe =
        serde_json::from_slice(bytes).map_err(|e| bad_json(e, "not a JSON object"))?;
    match probe.api_version {
        None => import_palette(bytes),
        Some(serde_json::Value::String(v)) if v == EXPORT_API_VERSION => {
            let doc: ExportDocument = serde_json::from_slice(bytes)
                .map_err(|e| bad_json(e, "does not follow Fleetplane's export format"))?;
            import_fleetplane(doc)
        }
        Some(other) => Err(DomainError::validation(vec![FieldError::new(
            "apiVersion",
            format!(
                "unsupported apiVersion {other} (expected {EXPORT_API_VERSION:?}, or none for Palette)"
            ),
        )])),
    }
}

fn import_fleetplane(doc: ExportDocument) -> Result<ImportedProfile, DomainError> {
    if doc.kind != EXPORT_KIND {
        return Err(DomainError::validation(vec![FieldError::new(
            "kind",
            format!("must be {EXPORT_KIND:?} (got {:?})", doc.kind),
        )]));
    }
    let mut warnings = Vec::new();
    let variables = unmask_defaults(doc.spec.variables, &mut warnings);
    let version = ProfileVersion {
        kind: String::new(),
        metadata: Metadata {
            name: doc.metadata.name,
            description: doc.metadata.description,
            labels: doc.metadata.labels,
            ..Metadata::default()
        },
        spec: ProfileVersionSpec {
            version: doc.spec.version,
            profile_type: doc.spec.template.profile_type,
            cloud_type: doc.spec.template.cloud_type,
            layers: doc.spec.template.packs,
            variables,
        },
        status: ProfileVersionStatus::default(),
    };
    Ok(ImportedProfile {
        format: ImportFormat::Fleetplane,
        version,
        rewrites: 0,
        warnings,
    })
}

/// An export masks sensitive defaults; importing the mask would store `********` as the default.
fn unmask_defaults(vars: Vec<Variable>, warnings: &mut Vec<String>) -> Vec<Variable> {
    vars.into_iter()
        .map(|mut v| {
            if v.sensitive && v.default_value == MASK {
                v.default_value.clear();
                warnings.push(format!(
                    "variable {:?}: its sensitive default was masked in the export and was not \
                     imported; set it again",
                    v.name
                ));
            }
            v
        })
        .collect()
}

// ---- Palette ------------------------------------------------------------------------------

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PaletteDoc {
    #[serde(default)]
    metadata: Option<PaletteMeta>,
    #[serde(default)]
    spec: Option<PaletteSpec>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PaletteMeta {
    name: Option<String>,
    description: Option<String>,
    labels: Option<Labels>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PaletteSpec {
    version: Option<String>,
    template: Option<PaletteTemplate>,
    variables: Option<Vec<PaletteVariable>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PaletteTemplate {
    #[serde(rename = "type")]
    profile_type: Option<String>,
    cloud_type: Option<String>,
    packs: Option<Vec<PalettePack>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PalettePack {
    name: Option<String>,
    #[serde(rename = "type")]
    pack_type: Option<String>,
    layer: Option<String>,
    version: Option<String>,
    tag: Option<String>,
    values: Option<String>,
    manifests: Option<Vec<PaletteManifest>>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PaletteManifest {
    name: Option<String>,
    content: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct PaletteVariable {
    name: Option<String>,
    display_name: Option<String>,
    description: Option<String>,
    format: Option<String>,
    input_type: Option<String>,
    options: Option<Vec<PaletteOption>>,
    regex: Option<String>,
    required: Option<bool>,
    default_value: Option<serde_json::Value>,
    is_sensitive: Option<bool>,
    sensitive: Option<bool>,
    hidden: Option<bool>,
    is_hidden: Option<bool>,
    immutable: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum PaletteOption {
    Full {
        value: Option<serde_json::Value>,
        label: Option<String>,
        description: Option<String>,
    },
    Plain(serde_json::Value),
}

/// A scalar as text (Palette sometimes writes defaults as numbers or booleans).
fn scalar_text(v: Option<serde_json::Value>) -> Option<String> {
    match v? {
        serde_json::Value::Null => None,
        serde_json::Value::String(s) => Some(s),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

fn import_palette(bytes: &[u8]) -> Result<ImportedProfile, DomainError> {
    let doc: PaletteDoc = serde_json::from_slice(bytes).map_err(|e| {
        DomainError::validation(vec![FieldError::new(
            "",
            format!("does not follow Palette's export format: {e}"),
        )])
    })?;
    let mut p = Problems::new();
    let meta = doc.metadata.unwrap_or_default();
    let spec = doc.spec.unwrap_or_default();
    let template = spec.template.unwrap_or_default();

    let profile_type = match template
        .profile_type
        .as_deref()
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("cluster" | "full") => Some(ProfileType::Full),
        Some("infra") => Some(ProfileType::Infra),
        Some("add-on" | "addon") => Some(ProfileType::Addon),
        Some(other) => {
            p.push(
                "spec.template.type",
                format!("unknown profile type {other:?} (expected cluster, infra or add-on)"),
            );
            None
        }
        None => {
            p.push("spec.template.type", "is required");
            None
        }
    };
    let cloud_type = match template.cloud_type.as_deref() {
        Some(c) => CloudType::parse(c).or_else(|| {
            p.push(
                "spec.template.cloudType",
                format!("unsupported cloud type {c:?} (expected aws, azure, gcp, vsphere or all)"),
            );
            None
        }),
        None => {
            p.push("spec.template.cloudType", "is required");
            None
        }
    };

    let mut rewrites = 0;
    let mut layers = Vec::new();
    for (i, pack) in template.packs.unwrap_or_default().into_iter().enumerate() {
        let at = index("spec.template.packs", i);
        let name = pack.name.unwrap_or_default();
        let layer = match pack.layer.as_deref() {
            Some(l) => Layer::parse(l).or_else(|| {
                p.push(
                    path(&at, "layer"),
                    format!("unknown layer {l:?} (expected os, k8s, cni, csi or addon)"),
                );
                None
            }),
            None => {
                p.push(path(&at, "layer"), "is required");
                None
            }
        };
        let pack_type = match pack.pack_type.as_deref() {
            None | Some("") => Some(PackType::Catalog),
            Some(t) => PackType::parse_palette(t).or_else(|| {
                p.push(
                    path(&at, "type"),
                    format!("unknown pack type {t:?} (expected spectro, helm, manifest or oci)"),
                );
                None
            }),
        };
        let version = pack
            .version
            .filter(|v| !v.is_empty())
            .or(pack.tag)
            .unwrap_or_default();
        let mut rewrite = |field: String, text: String| match rewrite_palette(&text) {
            Ok((out, n)) => {
                rewrites += n;
                out
            }
            Err(bad) => {
                for b in bad {
                    p.push(
                        field.clone(),
                        format!("layer {name:?}: cannot rewrite {b} {REWRITE_RULE}"),
                    );
                }
                text
            }
        };
        let values = rewrite(path(&at, "values"), pack.values.unwrap_or_default());
        let manifests = pack
            .manifests
            .unwrap_or_default()
            .into_iter()
            .enumerate()
            .map(|(j, m)| Manifest {
                name: m.name.unwrap_or_default(),
                content: rewrite(
                    path(&index(&path(&at, "manifests"), j), "content"),
                    m.content.unwrap_or_default(),
                ),
            })
            .collect();
        if let (Some(layer), Some(pack_type)) = (layer, pack_type) {
            layers.push(LayerSpec {
                name,
                layer,
                pack_type,
                version,
                values,
                manifests,
            });
        }
    }

    let mut variables = Vec::new();
    for (i, v) in spec.variables.unwrap_or_default().into_iter().enumerate() {
        let at = index("spec.variables", i);
        let format = match v.format.as_deref() {
            None | Some("") => Format::String,
            Some(f) => Format::parse(f).unwrap_or_else(|| {
                p.push(path(&at, "format"), format!("unknown format {f:?}"));
                Format::String
            }),
        };
        let input_type = match v.input_type.as_deref() {
            None | Some("") => InputType::Text,
            Some(t) => InputType::parse(t).unwrap_or_else(|| {
                p.push(
                    path(&at, "inputType"),
                    format!("unknown input type {t:?} (expected text, multiline or dropdown)"),
                );
                InputType::Text
            }),
        };
        let options = v
            .options
            .unwrap_or_default()
            .into_iter()
            .map(|o| match o {
                PaletteOption::Full {
                    value,
                    label,
                    description,
                } => VariableOption {
                    value: scalar_text(value).unwrap_or_default(),
                    label: label.unwrap_or_default(),
                    description: description.unwrap_or_default(),
                },
                PaletteOption::Plain(value) => VariableOption {
                    value: scalar_text(Some(value)).unwrap_or_default(),
                    ..VariableOption::default()
                },
            })
            .collect();
        variables.push(Variable {
            name: v.name.unwrap_or_default(),
            display_name: v.display_name.unwrap_or_default(),
            description: v.description.unwrap_or_default(),
            format,
            input_type,
            options,
            regex: v.regex.unwrap_or_default(),
            required: v.required.unwrap_or(false),
            default_value: scalar_text(v.default_value).unwrap_or_default(),
            sensitive: v.is_sensitive.unwrap_or(false) || v.sensitive.unwrap_or(false),
            hidden: v.hidden.unwrap_or(false) || v.is_hidden.unwrap_or(false),
            immutable: v.immutable.unwrap_or(false),
        });
    }

    p.finish()?;
    let (Some(profile_type), Some(cloud_type)) = (profile_type, cloud_type) else {
        return Err(DomainError::internal(
            "profile type or cloud type missing without a problem",
        ));
    };
    let mut warnings = Vec::new();
    let variables = unmask_defaults(variables, &mut warnings);
    let version = ProfileVersion {
        kind: String::new(),
        metadata: Metadata {
            name: meta.name.unwrap_or_default(),
            description: meta.description.unwrap_or_default(),
            labels: meta.labels.unwrap_or_default(),
            ..Metadata::default()
        },
        spec: ProfileVersionSpec {
            version: spec.version.unwrap_or_default(),
            profile_type,
            cloud_type,
            layers,
            variables,
        },
        status: ProfileVersionStatus::default(),
    };
    Ok(ImportedProfile {
        format: ImportFormat::Palette,
        version,
        rewrites,
        warnings,
    })
}

const REWRITE_RULE: &str = "(only {{ .spectro.var.X }}, {{ .spectro.macro.X }} and \
    {{ .spectro.system.X.Y }} references, optionally piped to default \"x\", upper, lower, quote, \
    trim, b64enc or toJson, are rewritten)";

/// The most characters of offending text quoted in an error.
const QUOTE_LIMIT: usize = 120;

fn excerpt(s: &str) -> String {
    if s.chars().count() <= QUOTE_LIMIT {
        format!("{s:?}")
    } else {
        let cut: String = s.chars().take(QUOTE_LIMIT).collect();
        format!("{cut:?}…")
    }
}

/// Rewrites Palette's Go-template references to Fleetplane's syntax. Literal `{%` and `{#` (plain
/// text in Go templates, syntax in Fleetplane's) are escaped so the text renders unchanged.
/// Returns the new text and the number of references rewritten.
///
/// # Errors
/// Every action it cannot rewrite, quoted.
pub fn rewrite_palette(text: &str) -> Result<(String, usize), Vec<String>> {
    let b = text.as_bytes();
    let mut out = String::with_capacity(text.len());
    let mut errors = Vec::new();
    let mut count = 0;
    let (mut i, mut last) = (0, 0);
    while i + 1 < b.len() {
        if b[i] != b'{' {
            i += 1;
            continue;
        }
        match b[i + 1] {
            b'{' => {
                out.push_str(&text[last..i]);
                let Some(end) = find_action_end(b, i + 2) else {
                    errors.push(excerpt(&text[i..]));
                    return Err(errors);
                };
                let action = &text[i..end + 2];
                match rewrite_action(&text[i + 2..end]) {
                    Some(jinja) => {
                        out.push_str(&jinja);
                        count += 1;
                    }
                    None => errors.push(excerpt(action)),
                }
                i = end + 2;
                last = i;
            }
            c @ (b'%' | b'#') => {
                out.push_str(&text[last..i]);
                out.push_str(if c == b'%' {
                    "{{ \"{%\" }}"
                } else {
                    "{{ \"{#\" }}"
                });
                i += 2;
                last = i;
            }
            _ => i += 1,
        }
    }
    out.push_str(&text[last..]);
    if errors.is_empty() {
        Ok((out, count))
    } else {
        Err(errors)
    }
}

/// The offset of the `}}` closing an action whose inside starts at `from`, skipping Go string,
/// raw-string and rune literals.
fn find_action_end(b: &[u8], from: usize) -> Option<usize> {
    let mut j = from;
    while j + 1 < b.len() {
        match b[j] {
            q @ (b'"' | b'\'') => {
                j += 1;
                while j < b.len() && b[j] != q {
                    j += if b[j] == b'\\' { 2 } else { 1 };
                }
                j += 1;
            }
            b'`' => {
                j += 1;
                while j < b.len() && b[j] != b'`' {
                    j += 1;
                }
                j += 1;
            }
            b'}' if b[j + 1] == b'}' => return Some(j),
            _ => j += 1,
        }
    }
    None
}

/// Splits on `sep` outside string literals; `None` on an unterminated literal.
fn split_outside_quotes(s: &str, sep: impl Fn(char) -> bool) -> Option<Vec<&str>> {
    let mut parts = Vec::new();
    let mut start = 0;
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for (k, c) in s.char_indices() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' && q == '"' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        if c == '"' || c == '`' {
            quote = Some(c);
        } else if sep(c) {
            parts.push(&s[start..k]);
            start = k + c.len_utf8();
        }
    }
    if quote.is_some() {
        return None;
    }
    parts.push(&s[start..]);
    Some(parts)
}

/// Rewrites the inside of one `{{ … }}` action, keeping whitespace-control markers.
fn rewrite_action(inner: &str) -> Option<String> {
    let (trim_left, rest) = match inner.strip_prefix('-') {
        Some(r) if r.starts_with(char::is_whitespace) => (true, r),
        _ => (false, inner),
    };
    let (trim_right, body) = match rest.strip_suffix('-') {
        Some(r) if r.ends_with(char::is_whitespace) => (true, r),
        _ => (false, rest),
    };
    let commands = split_outside_quotes(body.trim(), |c| c == '|')?;
    let mut expr = String::new();
    for (k, command) in commands.iter().enumerate() {
        let words: Vec<&str> = split_outside_quotes(command.trim(), char::is_whitespace)?
            .into_iter()
            .filter(|w| !w.is_empty())
            .collect();
        if k == 0 {
            match words.as_slice() {
                [reference] => expr = reference_to_jinja(reference)?,
                ["default", fallback, reference] => {
                    expr = format!(
                        "{} | default({})",
                        reference_to_jinja(reference)?,
                        literal_to_jinja(fallback)?
                    );
                }
                _ => return None,
            }
            continue;
        }
        let filter = match words.as_slice() {
            ["default", fallback] => format!("default({})", literal_to_jinja(fallback)?),
            ["upper"] => "upper".to_owned(),
            ["lower"] => "lower".to_owned(),
            ["quote"] => "quote".to_owned(),
            ["trim"] => "trim".to_owned(),
            ["b64enc"] => "b64encode".to_owned(),
            ["toJson"] => "tojson".to_owned(),
            _ => return None,
        };
        expr.push_str(" | ");
        expr.push_str(&filter);
    }
    Some(format!(
        "{{{{{} {expr} {}}}}}",
        if trim_left { "-" } else { "" },
        if trim_right { "-" } else { "" }
    ))
}

/// `.spectro.var.X` → `var.X`, `.spectro.macro.X` → `macro.X`, `.spectro.system.X.Y` →
/// `system.X.Y`.
fn reference_to_jinja(reference: &str) -> Option<String> {
    let rest = reference.strip_prefix(".spectro.")?;
    let parts: Vec<&str> = rest.split('.').collect();
    let ok = match parts.as_slice() {
        ["var" | "macro", name] => is_identifier(name),
        ["system", tail @ ..] => !tail.is_empty() && tail.iter().all(|p| is_identifier(p)),
        _ => false,
    };
    ok.then(|| rest.to_owned())
}

/// A Go literal as a Jinja literal: strings (interpreted or raw), numbers, booleans.
fn literal_to_jinja(lit: &str) -> Option<String> {
    let text = if let Some(inner) = lit.strip_prefix('"').and_then(|s| s.strip_suffix('"')) {
        if lit.len() < 2 {
            return None;
        }
        unescape_go(inner)?
    } else if let Some(inner) = lit.strip_prefix('`').and_then(|s| s.strip_suffix('`')) {
        if lit.len() < 2 {
            return None;
        }
        inner.to_owned()
    } else if lit == "true"
        || lit == "false"
        || super::variable::validate_format(Format::Number, lit).is_ok()
    {
        return Some(lit.to_owned());
    } else {
        return None;
    };
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c => out.push(c),
        }
    }
    out.push('"');
    Some(out)
}

fn unescape_go(s: &str) -> Option<String> {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        out.push(match chars.next()? {
            '\\' => '\\',
            '"' => '"',
            '\'' => '\'',
            'n' => '\n',
            't' => '\t',
            'r' => '\r',
            _ => return None,
        });
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn palette_references_are_rewritten() {
        let cases = [
            ("{{.spectro.var.x}}", "{{ var.x }}"),
            ("{{ .spectro.var.x }}", "{{ var.x }}"),
            (
                "{{ .spectro.macro.y | default \"z\" }}",
                "{{ macro.y | default(\"z\") }}",
            ),
            (
                "{{.spectro.system.cluster.name}}",
                "{{ system.cluster.name }}",
            ),
            ("{{- .spectro.var.x -}}", "{{- var.x -}}"),
            (
                "{{ default \"a b\" .spectro.var.x }}",
                "{{ var.x | default(\"a b\") }}",
            ),
            (
                "{{ .spectro.var.x | default `raw\\n` | upper }}",
                "{{ var.x | default(\"raw\\\\n\") | upper }}",
            ),
            (
                "{{ .spectro.var.x | default 3 | quote }}",
                "{{ var.x | default(3) | quote }}",
            ),
            (
                "{{ .spectro.var.x | b64enc | toJson }}",
                "{{ var.x | b64encode | tojson }}",
            ),
            (
                "a: {{ .spectro.var.x | default \"}}\" }}",
                "a: {{ var.x | default(\"}}\") }}",
            ),
            (
                "fmt: \"{%d}\" # {#x}",
                "fmt: \"{{ \"{%\" }}d}\" # {{ \"{#\" }}x}",
            ),
            ("é: {{ .spectro.var.x }} ü", "é: {{ var.x }} ü"),
        ];
        for (palette, want) in cases {
            let (got, n) = rewrite_palette(palette).unwrap_or_else(|e| panic!("{palette}: {e:?}"));
            assert_eq!(got, want, "{palette}");
            assert_eq!(n, usize::from(palette.contains(".spectro")), "{palette}");
        }
        let (_, n) = rewrite_palette(
            "{{.spectro.var.a}} {{.spectro.macro.b}} {{.spectro.system.cloud.type}}",
        )
        .unwrap();
        assert_eq!(n, 3);
    }

    #[test]
    fn other_go_template_constructs_are_refused() {
        for bad in [
            "{{ if .spectro.var.x }}a{{ end }}",
            "{{ range .items }}{{ end }}",
            "{{ .Values.x }}",
            "{{ .spectro.var.x | nindent 4 }}",
            "{{ .spectro.var.my-var }}",
            "{{ .spectro.var.x.y }}",
            "{{ .spectro.system }}",
            "{{/* comment */}}",
            "{{ .spectro.var.x | default \"unterminated }}",
            "{{ .spectro.var.x | default \"bad\\q\" }}",
            "{{ .spectro.var.x",
        ] {
            let errors = rewrite_palette(bad).unwrap_err();
            assert!(!errors.is_empty(), "{bad}");
        }
        // Every unrewritable action is reported, not only the first.
        assert_eq!(
            rewrite_palette("{{ if .a }}{{ .spectro.var.x }}{{ end }}")
                .unwrap_err()
                .len(),
            2
        );
    }

    #[test]
    fn document_paths_map_back() {
        assert_eq!(
            document_path("spec.layers[2].values"),
            "spec.template.packs[2].values"
        );
        assert_eq!(document_path("spec.type"), "spec.template.type");
        assert_eq!(
            document_path("spec.variables[0].defaultValue"),
            "spec.variables[0].defaultValue"
        );
    }
}
