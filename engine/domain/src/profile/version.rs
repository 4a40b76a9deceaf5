//! Profile versions (DESIGN §4.2): the spec, its structural rules, and the helpers the API calls
//! for type consistency, locking and deletion.

use super::limits::{MAX_LAYERS, MAX_MANIFESTS, MAX_TEMPLATE_BYTES};
use super::pack::{Catalog, Layer, PackType, validate_pack_version};
use super::render::check_template;
use super::template;
use super::variable::{MASK, Variable, validate_variables};
use crate::error::{DomainError, ErrorCode, FieldError, Problems, index, path};
use crate::meta::{Metadata, Object, validate_name};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::{BTreeSet, HashMap};
use std::fmt;

/// What a profile contains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProfileType {
    /// The four core layers plus add-ons.
    Full,
    /// Exactly the four core layers: os, k8s, cni, csi.
    Infra,
    /// Add-on layers only.
    Addon,
}

impl ProfileType {
    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            ProfileType::Full => "full",
            ProfileType::Infra => "infra",
            ProfileType::Addon => "addon",
        }
    }
}

impl fmt::Display for ProfileType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The cloud a profile deploys to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CloudType {
    /// Amazon Web Services.
    Aws,
    /// Microsoft Azure.
    Azure,
    /// Google Cloud.
    Gcp,
    /// VMware vSphere.
    Vsphere,
    /// Any cloud (add-on profiles only).
    All,
}

impl CloudType {
    /// Every cloud type.
    pub const ALL: &'static [CloudType] = &[
        CloudType::Aws,
        CloudType::Azure,
        CloudType::Gcp,
        CloudType::Vsphere,
        CloudType::All,
    ];

    /// The name on the wire.
    pub fn as_str(self) -> &'static str {
        match self {
            CloudType::Aws => "aws",
            CloudType::Azure => "azure",
            CloudType::Gcp => "gcp",
            CloudType::Vsphere => "vsphere",
            CloudType::All => "all",
        }
    }

    /// Parses a wire name, case-insensitively.
    pub fn parse(s: &str) -> Option<CloudType> {
        CloudType::ALL
            .iter()
            .copied()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for CloudType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A Kubernetes manifest carried by a layer (a template, like values).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct Manifest {
    /// A DNS label, unique in the layer.
    pub name: String,
    /// YAML documents.
    pub content: String,
}

/// One layer of a profile version: a pack at a version, with values.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct LayerSpec {
    /// The pack name, unique in the version.
    pub name: String,
    /// The layer; must be the pack's.
    pub layer: Layer,
    /// The pack type; must be the pack's.
    #[serde(rename = "type")]
    pub pack_type: PackType,
    /// The pack version; must exist in the catalog.
    pub version: String,
    /// The values: a YAML template rendered per cluster.
    #[serde(default)]
    pub values: String,
    /// Extra manifests (required for `manifest` packs).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub manifests: Vec<Manifest>,
}

/// The `spec` of a profile version.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileVersionSpec {
    /// The strict SemVer version. On `PUT .../versions/{v}` it may be omitted (the path gives it);
    /// when given it must equal the path's.
    #[serde(default)]
    pub version: String,
    /// The profile's type (the same for every version of a name).
    #[serde(rename = "type")]
    pub profile_type: ProfileType,
    /// The profile's cloud type (the same for every version of a name).
    pub cloud_type: CloudType,
    /// The layers, in deployment order.
    #[serde(default)]
    pub layers: Vec<LayerSpec>,
    /// The variables, in the order the console shows them.
    #[serde(default)]
    pub variables: Vec<Variable>,
}

impl ProfileVersionSpec {
    /// The version of the `k8s` layer, if any.
    pub fn kubernetes_version(&self) -> Option<&str> {
        self.layers
            .iter()
            .find(|l| l.layer == Layer::K8s)
            .map(|l| l.version.as_str())
    }

    /// The variable named `name`.
    pub fn variable(&self, name: &str) -> Option<&Variable> {
        self.variables.iter().find(|v| v.name == name)
    }

    /// This spec with sensitive defaults masked, for API output.
    pub fn masked(&self) -> ProfileVersionSpec {
        let mut s = self.clone();
        s.variables = self.variables.iter().map(Variable::masked).collect();
        s
    }

    /// Puts back stored defaults where a client sent [`MASK`] for a sensitive variable's default
    /// (so a client can `PUT` what it read). A mask with no stored default becomes empty.
    pub fn restore_masked_defaults(&mut self, stored: &ProfileVersionSpec) {
        for v in &mut self.variables {
            if v.sensitive && v.default_value == MASK {
                v.default_value = stored
                    .variable(&v.name)
                    .map(|s| s.default_value.clone())
                    .unwrap_or_default();
            }
        }
    }
}

/// Server-set facts about a version, ignored on writes.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct ProfileVersionStatus {
    /// Linked to a template: no edit is possible any more.
    #[serde(default)]
    pub locked: bool,
}

/// A profile version as the API shows it (`{kind, metadata, spec, status}`): `metadata.name` is
/// the profile's name.
pub type ProfileVersion = Object<ProfileVersionSpec, ProfileVersionStatus>;

/// The body of `POST .../profiles/{name}/versions`: a new version, optionally a copy of `from`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct CreateVersionRequest {
    /// The new version.
    pub version: String,
    /// The version to copy.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
}

/// The most characters a profile version may have.
pub const MAX_VERSION_LEN: usize = 64;

/// Parses a profile version: strict SemVer 2.0 (`1.0.0`, `1.2.3-rc.1`), no `v` prefix, no missing
/// or extra parts, no leading zeros, and no build metadata (`+…` does not order versions, so two
/// versions could not be told apart by precedence).
///
/// # Errors
/// A sentence saying what is wrong.
pub fn parse_version(s: &str) -> Result<semver::Version, String> {
    let rule = "must be a strict SemVer version like 1.0.0 or 1.2.3-rc.1";
    if s.is_empty() {
        return Err("is required".to_owned());
    }
    if s.len() > MAX_VERSION_LEN {
        return Err(format!("must be at most {MAX_VERSION_LEN} characters"));
    }
    let v = semver::Version::parse(s).map_err(|e| format!("{rule} (got {s:?}: {e})"))?;
    if !v.build.is_empty() {
        return Err(format!("{rule}, without build metadata (got {s:?})"));
    }
    Ok(v)
}

/// Orders version strings by SemVer precedence; unparsable ones sort first, by text.
pub fn compare_versions(a: &str, b: &str) -> Ordering {
    match (semver::Version::parse(a), semver::Version::parse(b)) {
        (Ok(x), Ok(y)) => x.cmp(&y),
        (Ok(_), Err(_)) => Ordering::Greater,
        (Err(_), Ok(_)) => Ordering::Less,
        (Err(_), Err(_)) => a.cmp(b),
    }
}

/// Problems sorted by the code they answer with.
#[derive(Default)]
struct Findings {
    invalid: Problems,
    missing_packs: Vec<FieldError>,
    missing_pack_names: Vec<String>,
    undefined: Vec<FieldError>,
}

impl Findings {
    /// One code when every problem shares it (`PackNotFound`, `UndefinedVariable`), otherwise
    /// `ValidationFailed` carrying every problem.
    fn finish(self) -> Result<(), DomainError> {
        let Findings {
            invalid,
            missing_packs,
            missing_pack_names,
            undefined,
        } = self;
        let result = match (
            invalid.is_empty(),
            missing_packs.is_empty(),
            undefined.is_empty(),
        ) {
            (true, true, true) => Ok(()),
            (true, false, true) => Err(DomainError {
                code: ErrorCode::PackNotFound,
                detail: format!("the catalog lacks {}", missing_pack_names.join(", ")),
                errors: missing_packs,
            }),
            (true, true, false) => {
                let detail = match undefined.as_slice() {
                    [one] => one.message.clone(),
                    many => format!("{} references to undefined variables", many.len()),
                };
                Err(DomainError {
                    code: ErrorCode::UndefinedVariable,
                    detail,
                    errors: undefined,
                })
            }
            _ => {
                let mut all = invalid.errors().to_vec();
                all.extend(missing_packs);
                all.extend(undefined);
                Err(DomainError::validation(all))
            }
        };
        result.map_err(cap_problems)
    }
}

/// The most problems one answer lists; a hostile document could otherwise produce one per byte.
pub const MAX_REPORTED_PROBLEMS: usize = 500;

fn cap_problems(mut e: DomainError) -> DomainError {
    if e.errors.len() > MAX_REPORTED_PROBLEMS {
        let more = e.errors.len() - MAX_REPORTED_PROBLEMS;
        e.errors.truncate(MAX_REPORTED_PROBLEMS);
        e.errors.push(FieldError::new(
            "",
            format!("{more} more problems are not shown"),
        ));
    }
    e
}

/// Validates a profile version against the catalog, reporting every problem at once:
///
/// - `metadata.name` is a DNS label, labels are valid;
/// - `spec.version` is strict SemVer;
/// - `cloudType: all` only for `addon` profiles;
/// - `infra` has exactly the layers os, k8s, cni, csi once each; `full` has those plus any add-on
///   layers; `addon` has add-on layers only (at least one);
/// - layer names are unique pack names, each pack exists in the catalog at that version with that
///   layer and type, and runs on the profile's cloud;
/// - values and manifests are templates that pass the sandbox, reference only defined variables
///   and known system values, and are valid YAML with their expressions neutralised;
/// - variables follow the rules of [`validate_variables`].
///
/// # Errors
/// `PackNotFound` when the only problems are missing packs (every one listed),
/// `UndefinedVariable` when the only problems are references to undefined variables (each naming
/// the layer and the variable, at `spec.layers[i].values`), otherwise `ValidationFailed` with every
/// problem.
pub fn validate_version(
    version: &ProfileVersion,
    catalog: &Catalog<'_>,
) -> Result<(), DomainError> {
    let mut f = Findings::default();
    version.metadata.validate(&mut f.invalid);
    let spec = &version.spec;
    if let Err(e) = parse_version(&spec.version) {
        f.invalid.push("spec.version", e);
    }
    if spec.cloud_type == CloudType::All && spec.profile_type != ProfileType::Addon {
        f.invalid
            .push("spec.cloudType", "cloudType all is only for addon profiles");
    }
    check_structure(spec, &mut f.invalid);
    let defined: BTreeSet<&str> = spec.variables.iter().map(|v| v.name.as_str()).collect();
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, layer) in spec.layers.iter().enumerate() {
        let at = index("spec.layers", i);
        if f.invalid
            .check(validate_name(&path(&at, "name"), &layer.name))
            .is_some()
            && let Some(j) = names.insert(&layer.name, i)
        {
            names.insert(&layer.name, j);
            f.invalid.push(
                path(&at, "name"),
                format!("pack {:?} is already spec.layers[{j}]", layer.name),
            );
        }
        let version_ok = f
            .invalid
            .check(validate_pack_version(&path(&at, "version"), &layer.version));
        if version_ok.is_some() && !layer.name.is_empty() {
            check_pack(spec, &at, layer, catalog, &mut f);
        }
        check_layer_templates(&at, layer, &defined, &mut f);
    }
    validate_variables("spec.variables", &spec.variables, &mut f.invalid);
    f.finish()
}

/// The layer-count rules of the profile type.
fn check_structure(spec: &ProfileVersionSpec, problems: &mut Problems) {
    if spec.layers.len() > MAX_LAYERS {
        problems.push("spec.layers", format!("at most {MAX_LAYERS} layers"));
    }
    let t = spec.profile_type;
    let mut first: HashMap<Layer, usize> = HashMap::new();
    for (i, layer) in spec.layers.iter().enumerate() {
        let field = path(&index("spec.layers", i), "layer");
        match (t, layer.layer) {
            (ProfileType::Infra, Layer::Addon) => problems.push(
                field,
                "an infra profile has exactly the os, k8s, cni and csi layers; put add-ons in a full or addon profile",
            ),
            (ProfileType::Addon, l) if l != Layer::Addon => problems.push(
                field,
                format!("an addon profile has only addon layers, not {l}"),
            ),
            (_, Layer::Addon) => {}
            (_, l) => {
                if let Some(j) = first.insert(l, i) {
                    first.insert(l, j);
                    problems.push(field, format!("a second {l} layer (the first is spec.layers[{j}])"));
                }
            }
        }
    }
    match t {
        ProfileType::Full | ProfileType::Infra => {
            for l in Layer::CORE {
                if !first.contains_key(&l) {
                    problems.push(
                        "spec.layers",
                        format!("a {t} profile needs exactly one {l} layer; there is none"),
                    );
                }
            }
        }
        ProfileType::Addon if spec.layers.is_empty() => {
            problems.push(
                "spec.layers",
                "an addon profile needs at least one addon layer",
            );
        }
        ProfileType::Addon => {}
    }
}

/// The catalog rules of one layer.
fn check_pack(
    spec: &ProfileVersionSpec,
    at: &str,
    layer: &LayerSpec,
    catalog: &Catalog<'_>,
    f: &mut Findings,
) {
    let id = format!("{}@{}", layer.name, layer.version);
    let Some(pack) = catalog.get(&layer.name) else {
        f.missing_packs.push(FieldError::new(
            path(at, "name"),
            format!("pack {id} is not in the catalog"),
        ));
        f.missing_pack_names.push(id);
        return;
    };
    if pack.pack_version(&layer.version).is_none() {
        let available: Vec<&str> = pack
            .spec
            .versions
            .iter()
            .map(|v| v.version.as_str())
            .collect();
        f.missing_packs.push(FieldError::new(
            path(at, "version"),
            format!(
                "pack {id} is not in the catalog (versions: {})",
                available.join(", ")
            ),
        ));
        f.missing_pack_names.push(id);
    }
    if pack.spec.layer != layer.layer {
        f.invalid.push(
            path(at, "layer"),
            format!("pack {} is a {} pack", layer.name, pack.spec.layer),
        );
    }
    if pack.spec.pack_type != layer.pack_type {
        f.invalid.push(
            path(at, "type"),
            format!("pack {} is a {} pack", layer.name, pack.spec.pack_type),
        );
    }
    if !pack.supports_cloud(spec.cloud_type) {
        let clouds: Vec<&str> = pack.spec.cloud_types.iter().map(|c| c.as_str()).collect();
        f.invalid.push(
            path(at, "name"),
            format!(
                "pack {} runs on {}, not on {}",
                layer.name,
                clouds.join(", "),
                spec.cloud_type
            ),
        );
    }
}

/// The template rules of one values or manifest template at `field`.
fn check_layer_template(
    field: String,
    layer: &str,
    src: &str,
    multi: bool,
    defined: &BTreeSet<&str>,
    f: &mut Findings,
) {
    if src.len() > MAX_TEMPLATE_BYTES {
        f.invalid
            .push(field, format!("must be at most {MAX_TEMPLATE_BYTES} bytes"));
        return;
    }
    match check_template(src) {
        Ok(refs) => {
            for v in refs
                .variables
                .iter()
                .filter(|v| !defined.contains(v.as_str()))
            {
                f.undefined.push(FieldError::new(
                    field.clone(),
                    format!("layer {layer:?} references undefined variable {v:?}"),
                ));
            }
            let yaml = if multi {
                template::check_manifest(src)
            } else {
                template::check_values(src)
            };
            if let Err(e) = yaml {
                f.invalid.push(field, e.to_string());
            }
        }
        Err(e) => f.invalid.push(field, e.to_string()),
    }
}

/// The template rules of one layer's values and manifests.
fn check_layer_templates(at: &str, layer: &LayerSpec, defined: &BTreeSet<&str>, f: &mut Findings) {
    check_layer_template(
        path(at, "values"),
        &layer.name,
        &layer.values,
        false,
        defined,
        f,
    );
    if layer.manifests.len() > MAX_MANIFESTS {
        f.invalid.push(
            path(at, "manifests"),
            format!("at most {MAX_MANIFESTS} manifests"),
        );
    }
    if layer.pack_type == PackType::Manifest && layer.manifests.is_empty() {
        f.invalid.push(
            path(at, "manifests"),
            "a manifest layer needs at least one manifest",
        );
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (j, m) in layer.manifests.iter().enumerate() {
        let mat = index(&path(at, "manifests"), j);
        if f.invalid
            .check(validate_name(&path(&mat, "name"), &m.name))
            .is_some()
            && let Some(k) = names.insert(&m.name, j)
        {
            names.insert(&m.name, k);
            f.invalid.push(
                path(&mat, "name"),
                format!("manifest {:?} is already manifests[{k}]", m.name),
            );
        }
        if m.content.trim().is_empty() {
            f.invalid.push(path(&mat, "content"), "is required");
        } else {
            check_layer_template(
                path(&mat, "content"),
                &layer.name,
                &m.content,
                true,
                defined,
                f,
            );
        }
    }
}

/// Checks that a new version of an existing profile keeps its type and cloud type.
///
/// # Errors
/// `ProfileTypeMismatch` naming `spec.type` and/or `spec.cloudType`.
pub fn check_profile_type(
    name: &str,
    existing_type: ProfileType,
    existing_cloud: CloudType,
    spec: &ProfileVersionSpec,
) -> Result<(), DomainError> {
    let mut problems = Problems::new();
    if spec.profile_type != existing_type {
        problems.push(
            "spec.type",
            format!(
                "profile {name:?} is of type {existing_type}; every version must be (got {})",
                spec.profile_type
            ),
        );
    }
    if spec.cloud_type != existing_cloud {
        problems.push(
            "spec.cloudType",
            format!(
                "profile {name:?} has cloud type {existing_cloud}; every version must have it (got {})",
                spec.cloud_type
            ),
        );
    }
    problems.finish_with(ErrorCode::ProfileTypeMismatch)
}

/// Up to ten names and a count of the rest.
fn list(names: &[String]) -> String {
    let shown: Vec<&str> = names.iter().take(10).map(String::as_str).collect();
    match names.len() {
        n if n > 10 => format!("{} and {} more", shown.join(", "), n - 10),
        _ => shown.join(", "),
    }
}

/// Checks that a version may change: it must not be linked to a template.
///
/// # Errors
/// `ProfileVersionLocked` when `linked_to_template`.
pub fn ensure_editable(
    name: &str,
    version: &str,
    linked_to_template: bool,
) -> Result<(), DomainError> {
    if linked_to_template {
        return Err(DomainError::new(
            ErrorCode::ProfileVersionLocked,
            format!(
                "profile {name:?} version {version} is linked to a template and locked; create a new \
                 version (optionally copied from this one) and point the template at it"
            ),
        ));
    }
    Ok(())
}

/// Checks that a version may be linked to a template: no standalone cluster may use it.
///
/// # Errors
/// `ProfileVersionUsedByStandaloneCluster` naming the clusters.
pub fn ensure_linkable(
    name: &str,
    version: &str,
    standalone_clusters: &[String],
) -> Result<(), DomainError> {
    if standalone_clusters.is_empty() {
        return Ok(());
    }
    Err(DomainError::new(
        ErrorCode::ProfileVersionUsedByStandaloneCluster,
        format!(
            "profile {name:?} version {version} is used by standalone clusters ({}); a template \
             cannot link it",
            list(standalone_clusters)
        ),
    ))
}

/// Checks that a version may be deleted: no template or cluster may reference it.
///
/// # Errors
/// `ProfileVersionInUse` naming the templates and clusters.
pub fn ensure_deletable(
    name: &str,
    version: &str,
    templates: &[String],
    clusters: &[String],
) -> Result<(), DomainError> {
    if templates.is_empty() && clusters.is_empty() {
        return Ok(());
    }
    let mut users = Vec::new();
    if !templates.is_empty() {
        users.push(format!("templates {}", list(templates)));
    }
    if !clusters.is_empty() {
        users.push(format!("clusters {}", list(clusters)));
    }
    Err(DomainError::new(
        ErrorCode::ProfileVersionInUse,
        format!(
            "profile {name:?} version {version} is used by {}",
            users.join(" and ")
        ),
    ))
}

/// A new version copied from `source`: same name, description, labels and spec, a new version
/// string, no server-set fields, unlocked.
///
/// # Errors
/// `ValidationFailed` at `version` when `new_version` is not strict SemVer.
pub fn copy_version(
    source: &ProfileVersion,
    new_version: &str,
) -> Result<ProfileVersion, DomainError> {
    parse_version(new_version)
        .map_err(|e| DomainError::validation(vec![FieldError::new("version", e)]))?;
    let metadata = Metadata {
        name: source.metadata.name.clone(),
        project: source.metadata.project.clone(),
        labels: source.metadata.labels.clone(),
        description: source.metadata.description.clone(),
        ..Metadata::default()
    };
    let mut spec = source.spec.clone();
    spec.version = new_version.to_owned();
    Ok(ProfileVersion {
        kind: source.kind.clone(),
        metadata,
        spec,
        status: ProfileVersionStatus::default(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_strict_semver() {
        for ok in [
            "1.0.0",
            "1.2.3-rc.1",
            "0.0.1",
            "10.20.30",
            "1.0.0-alpha.beta.1",
        ] {
            assert!(parse_version(ok).is_ok(), "{ok}");
        }
        for bad in [
            "",
            "v1.2",
            "1.2",
            "1.2.3.4",
            "01.2.3",
            "1.0.0+build",
            "1.0",
            " 1.0.0",
            "1.0.0-",
            "latest",
        ] {
            assert!(parse_version(bad).is_err(), "{bad}");
        }
        let mut v = vec!["1.10.0", "1.2.0", "1.2.0-rc.1", "0.9.0"];
        v.sort_by(|a, b| compare_versions(a, b));
        assert_eq!(v, ["0.9.0", "1.2.0-rc.1", "1.2.0", "1.10.0"]);
    }

    #[test]
    fn lock_and_use_helpers_answer_the_right_codes() {
        assert!(ensure_editable("p", "1.0.0", false).is_ok());
        assert_eq!(
            ensure_editable("p", "1.0.0", true).unwrap_err().code,
            ErrorCode::ProfileVersionLocked
        );
        assert!(ensure_linkable("p", "1.0.0", &[]).is_ok());
        let e = ensure_linkable("p", "1.0.0", &["edge-1".into()]).unwrap_err();
        assert_eq!(e.code, ErrorCode::ProfileVersionUsedByStandaloneCluster);
        assert!(e.detail.contains("edge-1"));
        assert!(ensure_deletable("p", "1.0.0", &[], &[]).is_ok());
        let many: Vec<String> = (0..12).map(|i| format!("c{i}")).collect();
        let e = ensure_deletable("p", "1.0.0", &["dev".into()], &many).unwrap_err();
        assert_eq!(e.code, ErrorCode::ProfileVersionInUse);
        assert!(
            e.detail.contains("templates dev") && e.detail.contains("and 2 more"),
            "{}",
            e.detail
        );
    }
}
