//! Cluster profiles (DESIGN §4.1–§4.4): the pack catalog, profile versions and their structural
//! rules, variables, macros, the sandboxed values renderer, and import/export of Palette's and
//! Fleetplane's profile documents.
//!
//! Everything here is pure: the API layer supplies the facts (does the profile exist, is the
//! version linked to a template, which custom packs the tenant registered) and gets back either
//! the value it needs or a [`DomainError`](crate::DomainError) carrying a stable code and every
//! offending field.

pub mod import;
pub mod macros;
pub mod pack;
pub mod render;
mod template;
pub mod variable;
pub mod version;

pub use import::{ExportDocument, ImportFormat, ImportedProfile, export_document, import_document};
pub use macros::{Macro, MacroScope, MacroSpec, Macros, SystemValues};
pub use pack::{Catalog, Layer, Pack, PackSpec, PackType, PackVersion, validate_custom_pack};
pub use render::{
    RenderedLayer, TemplateContext, TemplateError, TemplateRefs, check_template,
    is_valid_values_yaml, referenced_variables, render_template, render_values_as_saved,
    render_version,
};
pub use variable::{
    Format, InputType, MASK, Variable, VariableOption, compile_regex, validate_format,
    validate_value,
};
pub use version::{
    CloudType, CreateVersionRequest, LayerSpec, Manifest, ProfileType, ProfileVersion,
    ProfileVersionSpec, ProfileVersionStatus, check_profile_type, copy_version, ensure_deletable,
    ensure_editable, ensure_linkable, parse_version, validate_version,
};

/// Size and effort limits. They keep one tenant's profile from exhausting the server: every
/// limit is checked before the work it bounds, and each answers a 400 naming the field.
pub mod limits {
    /// Layers in one profile version.
    pub const MAX_LAYERS: usize = 64;
    /// Manifests in one layer.
    pub const MAX_MANIFESTS: usize = 32;
    /// Variables in one profile version.
    pub const MAX_VARIABLES: usize = 256;
    /// Bytes of one layer's values template, or of one manifest's content.
    pub const MAX_TEMPLATE_BYTES: usize = 1024 * 1024;
    /// Bytes of one variable value, default, option value or macro value.
    pub const MAX_VALUE_BYTES: usize = 64 * 1024;
    /// Characters of a variable's `regex`.
    pub const MAX_REGEX_LEN: usize = 1024;
    /// Bytes the compiled form of one `regex` may take (the `regex` crate's size limit).
    pub const REGEX_SIZE_LIMIT: usize = 1024 * 1024;
    /// Template instructions one render of one template may execute (minijinja fuel).
    pub const RENDER_FUEL: u64 = 100_000;
    /// Nesting depth of a template at run time (minijinja recursion limit).
    pub const RENDER_RECURSION: usize = 64;
    /// Bytes one rendered template (values or a manifest) may produce.
    pub const MAX_RENDERED_BYTES: usize = 2 * 1024 * 1024;
    /// Bytes that filters (`b64encode`, `tojson`, …) may produce in one render, in total.
    pub const MAX_FILTER_BYTES: usize = 4 * 1024 * 1024;
    /// Bytes of an import document.
    pub const MAX_IMPORT_BYTES: usize = 4 * 1024 * 1024;
    /// Versions of one pack.
    pub const MAX_PACK_VERSIONS: usize = 256;
    /// Characters of a display name, label or short text field.
    pub const MAX_SHORT_TEXT: usize = 256;
    /// Characters of a description.
    pub const MAX_DESCRIPTION: usize = 1024;
}
