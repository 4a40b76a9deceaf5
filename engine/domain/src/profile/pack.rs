//! Packs and the pack catalog (DESIGN §4.1): named, versioned software for one layer, with default
//! values. The built-in catalog ships in the binary (`engine/domain/catalog/*.yaml`); tenant admins
//! register more (`helm`, `manifest` or `oci` packs), which the store keeps and the API passes to
//! [`Catalog::with_custom`].

use super::limits::{MAX_PACK_VERSIONS, MAX_TEMPLATE_BYTES};
use super::template;
use super::version::CloudType;
use crate::error::{DomainError, FieldError, Problems, index, path};
use crate::meta::{NoStatus, Object};
use serde::{Deserialize, Serialize};
use std::cmp::Ordering;
use std::collections::HashMap;
use std::fmt;
use std::sync::LazyLock;

/// The label every built-in pack carries, so `labelSelector=fleetplane.io/builtin` finds them.
pub const BUILTIN_LABEL: &str = "fleetplane.io/builtin";

/// The layer of the cluster stack a pack belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Layer {
    /// The operating system image and its bootstrap configuration.
    Os,
    /// Kubernetes itself.
    K8s,
    /// The network plugin.
    Cni,
    /// The storage plugin.
    Csi,
    /// Anything installed on top.
    Addon,
}

impl Layer {
    /// The four core layers, in stack order.
    pub const CORE: [Layer; 4] = [Layer::Os, Layer::K8s, Layer::Cni, Layer::Csi];

    /// The name on the wire (`"k8s"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Layer::Os => "os",
            Layer::K8s => "k8s",
            Layer::Cni => "cni",
            Layer::Csi => "csi",
            Layer::Addon => "addon",
        }
    }

    /// Parses a wire name, case-insensitively.
    pub fn parse(s: &str) -> Option<Layer> {
        [Layer::Os, Layer::K8s, Layer::Cni, Layer::Csi, Layer::Addon]
            .into_iter()
            .find(|l| l.as_str().eq_ignore_ascii_case(s))
    }
}

impl fmt::Display for Layer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a pack comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PackType {
    /// A pack of the built-in catalog (Palette calls these `spectro`).
    Catalog,
    /// A Helm chart from a chart repository.
    Helm,
    /// Plain Kubernetes manifests carried by the profile layer.
    Manifest,
    /// An artifact in an OCI registry.
    Oci,
}

impl PackType {
    /// The name on the wire (`"catalog"`).
    pub fn as_str(self) -> &'static str {
        match self {
            PackType::Catalog => "catalog",
            PackType::Helm => "helm",
            PackType::Manifest => "manifest",
            PackType::Oci => "oci",
        }
    }

    /// Parses a name as Palette writes it: `spectro` is `catalog`; case-insensitive.
    pub fn parse_palette(s: &str) -> Option<PackType> {
        match s.to_ascii_lowercase().as_str() {
            "spectro" | "catalog" => Some(PackType::Catalog),
            "helm" => Some(PackType::Helm),
            "manifest" => Some(PackType::Manifest),
            "oci" => Some(PackType::Oci),
            _ => None,
        }
    }
}

impl fmt::Display for PackType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One version of a pack and its default values (a YAML document).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackVersion {
    /// The version, as the software names it (`1.33.4`, `22.04`).
    pub version: String,
    /// The values a new layer starts from.
    #[serde(default)]
    pub default_values: String,
}

/// What a pack is: its layer, type and versions (oldest first).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct PackSpec {
    /// The layer it belongs to.
    pub layer: Layer,
    /// Where it comes from.
    #[serde(rename = "type")]
    pub pack_type: PackType,
    /// The clouds it runs on; empty for every cloud.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub cloud_types: Vec<CloudType>,
    /// Where the deployer fetches it: a Helm repository (`https://…`) for `helm` packs, an OCI
    /// reference (`oci://…`) for `oci` packs; empty for `catalog` and `manifest` packs.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub registry: String,
    /// The versions, oldest first.
    pub versions: Vec<PackVersion>,
}

/// A pack as the API shows it (`GET /v1/packs/{name}`): `{kind, metadata, spec, status}`.
pub type Pack = Object<PackSpec, NoStatus>;

impl Pack {
    /// The given version, if the pack has it.
    pub fn pack_version(&self, version: &str) -> Option<&PackVersion> {
        self.spec.versions.iter().find(|v| v.version == version)
    }

    /// The newest version.
    pub fn latest_version(&self) -> Option<&PackVersion> {
        self.spec
            .versions
            .iter()
            .max_by(|a, b| compare_pack_versions(&a.version, &b.version))
    }

    /// Sorts the versions oldest first, as the API lists them.
    pub fn sort_versions(&mut self) {
        self.spec
            .versions
            .sort_by(|a, b| compare_pack_versions(&a.version, &b.version));
    }

    /// Whether the pack runs on `cloud` (`all` matches only cloud-neutral packs).
    pub fn supports_cloud(&self, cloud: CloudType) -> bool {
        self.spec.cloud_types.is_empty() || self.spec.cloud_types.contains(&cloud)
    }
}

/// Orders pack versions: SemVer precedence when both parse as SemVer, otherwise by their
/// dot/dash-separated parts, numeric parts numerically (`22.04` < `24.04`, `1.31.4` < `1.31.12`).
pub fn compare_pack_versions(a: &str, b: &str) -> Ordering {
    if let (Ok(x), Ok(y)) = (semver::Version::parse(a), semver::Version::parse(b)) {
        return x.cmp(&y).then_with(|| a.cmp(b));
    }
    let parts =
        |s: &'_ str| -> Vec<String> { s.split(['.', '-', '+', '_']).map(str::to_owned).collect() };
    let (pa, pb) = (parts(a), parts(b));
    for (x, y) in pa.iter().zip(pb.iter()) {
        let both_numeric = !x.is_empty()
            && !y.is_empty()
            && x.bytes().all(|c| c.is_ascii_digit())
            && y.bytes().all(|c| c.is_ascii_digit());
        let ord = if both_numeric {
            let (tx, ty) = (x.trim_start_matches('0'), y.trim_start_matches('0'));
            tx.len().cmp(&ty.len()).then_with(|| tx.cmp(ty))
        } else {
            x.cmp(y)
        };
        if ord != Ordering::Equal {
            return ord;
        }
    }
    pa.len().cmp(&pb.len()).then_with(|| a.cmp(b))
}

/// Checks a pack version string: 1–64 characters of letters, digits, `.`, `-`, `+` and `_`,
/// starting with a letter or digit.
///
/// # Errors
/// A [`FieldError`] at `field`.
pub fn validate_pack_version(field: &str, version: &str) -> Result<(), FieldError> {
    let ok = !version.is_empty()
        && version.len() <= 64
        && version.as_bytes()[0].is_ascii_alphanumeric()
        && version
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'-' | b'+' | b'_'));
    if ok {
        Ok(())
    } else {
        Err(FieldError::new(
            field,
            format!(
                "must be 1-64 letters, digits, '.', '-', '+' or '_', starting with a letter or digit (got {version:?})"
            ),
        ))
    }
}

const BUILTIN_SOURCES: &[(&str, &str)] = &[
    ("os.yaml", include_str!("../../catalog/os.yaml")),
    ("k8s.yaml", include_str!("../../catalog/k8s.yaml")),
    ("cni.yaml", include_str!("../../catalog/cni.yaml")),
    ("csi.yaml", include_str!("../../catalog/csi.yaml")),
    ("addons.yaml", include_str!("../../catalog/addons.yaml")),
];

/// Parses the embedded catalog files.
fn load_builtin() -> Result<Vec<Pack>, String> {
    let mut packs = Vec::new();
    for (file, text) in BUILTIN_SOURCES {
        let mut parsed: Vec<Pack> =
            serde_saphyr::from_str(text).map_err(|e| format!("catalog/{file}: {e}"))?;
        for p in &mut parsed {
            p.metadata
                .labels
                .insert(BUILTIN_LABEL.to_owned(), "true".to_owned());
            p.sort_versions();
        }
        packs.extend(parsed);
    }
    packs.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
    Ok(packs)
}

static BUILTIN: LazyLock<Vec<Pack>> = LazyLock::new(|| {
    // The catalog is data compiled into the binary and checked by the tests
    // (`builtin_catalog_is_valid`), never user input.
    load_builtin().unwrap_or_else(|e| panic!("the built-in pack catalog does not parse: {e}"))
});

static BUILTIN_INDEX: LazyLock<HashMap<&'static str, &'static Pack>> = LazyLock::new(|| {
    BUILTIN
        .iter()
        .map(|p| (p.metadata.name.as_str(), p))
        .collect()
});

/// The packs a profile may use: the built-in catalog plus the tenant's custom packs. A custom pack
/// never shadows a built-in one ([`validate_custom_pack`] refuses built-in names).
#[derive(Debug, Clone, Copy)]
pub struct Catalog<'a> {
    custom: &'a [Pack],
}

impl Catalog<'static> {
    /// The built-in catalog alone.
    pub fn builtin() -> Catalog<'static> {
        Catalog { custom: &[] }
    }

    /// The built-in packs, sorted by name.
    pub fn builtin_packs() -> &'static [Pack] {
        &BUILTIN
    }
}

impl<'a> Catalog<'a> {
    /// The built-in catalog plus `custom` packs (as registered by tenant admins).
    pub fn with_custom(custom: &'a [Pack]) -> Self {
        Catalog { custom }
    }

    /// Whether `name` is a built-in pack.
    pub fn is_builtin(name: &str) -> bool {
        BUILTIN_INDEX.contains_key(name)
    }

    /// The pack named `name`.
    pub fn get(&self, name: &str) -> Option<&'a Pack> {
        BUILTIN_INDEX
            .get(name)
            .copied()
            .or_else(|| self.custom.iter().find(|p| p.metadata.name == name))
    }

    /// Version `version` of pack `name`.
    pub fn version(&self, name: &str, version: &str) -> Option<&'a PackVersion> {
        self.get(name).and_then(|p| p.pack_version(version))
    }

    /// Every pack, sorted by name (`GET /v1/packs`).
    pub fn packs(&self) -> Vec<&'a Pack> {
        let mut all: Vec<&'a Pack> = BUILTIN.iter().collect();
        all.extend(
            self.custom
                .iter()
                .filter(|p| !Catalog::is_builtin(&p.metadata.name)),
        );
        all.sort_by(|a, b| a.metadata.name.cmp(&b.metadata.name));
        all
    }
}

/// Validates a pack a tenant admin registers: its name is a DNS label that no built-in pack uses,
/// its type is `helm` (with an `https://` registry), `oci` (with an `oci://` registry) or
/// `manifest`, and its versions are unique, well-formed and carry valid YAML default values.
///
/// # Errors
/// `ValidationFailed` with every problem.
pub fn validate_custom_pack(pack: &Pack) -> Result<(), DomainError> {
    let mut problems = Problems::new();
    pack.metadata.validate(&mut problems);
    if Catalog::is_builtin(&pack.metadata.name) {
        problems.push(
            "metadata.name",
            format!("{:?} is a built-in pack", pack.metadata.name),
        );
    }
    let spec = &pack.spec;
    let registry = spec.registry.as_str();
    match spec.pack_type {
        PackType::Catalog => problems.push(
            "spec.type",
            "catalog packs are built in; register a helm, manifest or oci pack",
        ),
        PackType::Helm if !is_url(registry, "https://") => {
            problems.push(
                "spec.registry",
                "a helm pack needs its chart repository, https://…",
            );
        }
        PackType::Oci if !is_url(registry, "oci://") => {
            problems.push(
                "spec.registry",
                "an oci pack needs its OCI reference, oci://…",
            );
        }
        PackType::Manifest if !registry.is_empty() => {
            problems.push("spec.registry", "a manifest pack has no registry");
        }
        _ => {}
    }
    if spec.versions.is_empty() {
        problems.push("spec.versions", "at least one version is required");
    }
    if spec.versions.len() > MAX_PACK_VERSIONS {
        problems.push(
            "spec.versions",
            format!("at most {MAX_PACK_VERSIONS} versions"),
        );
    }
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, v) in spec.versions.iter().enumerate() {
        let at = index("spec.versions", i);
        let vfield = path(&at, "version");
        if problems
            .check(validate_pack_version(&vfield, &v.version))
            .is_some()
            && let Some(j) = seen.insert(&v.version, i)
        {
            seen.insert(&v.version, j);
            problems.push(vfield, format!("repeats spec.versions[{j}]"));
        }
        let dfield = path(&at, "defaultValues");
        if v.default_values.len() > MAX_TEMPLATE_BYTES {
            problems.push(
                dfield,
                format!("must be at most {MAX_TEMPLATE_BYTES} bytes"),
            );
        } else if let Err(e) = template::check_values(&v.default_values) {
            problems.push(dfield, e.to_string());
        }
    }
    problems.finish()
}

fn is_url(s: &str, scheme: &str) -> bool {
    s.len() <= 2048
        && s.strip_prefix(scheme).is_some_and(|rest| {
            !rest.is_empty() && !rest.starts_with('/') && !rest.chars().any(char::is_whitespace)
        })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::meta::Metadata;

    #[test]
    fn builtin_catalog_is_valid() {
        let packs = load_builtin().unwrap();
        assert!(packs.len() >= 15);
        let mut names = std::collections::HashSet::new();
        for p in &packs {
            let mut problems = Problems::new();
            p.metadata.validate(&mut problems);
            assert!(
                problems.is_empty(),
                "{}: {:?}",
                p.metadata.name.as_str(),
                problems.errors()
            );
            assert!(
                names.insert(p.metadata.name.as_str()),
                "duplicate pack {}",
                p.metadata.name.as_str()
            );
            assert_eq!(
                p.spec.pack_type,
                PackType::Catalog,
                "{}",
                p.metadata.name.as_str()
            );
            assert!(
                p.spec.versions.len() >= 2,
                "{} needs several versions",
                p.metadata.name.as_str()
            );
            for w in p.spec.versions.windows(2) {
                assert_eq!(
                    compare_pack_versions(&w[0].version, &w[1].version),
                    Ordering::Less,
                    "{}: versions must be unique and oldest first",
                    p.metadata.name.as_str()
                );
            }
            for v in &p.spec.versions {
                validate_pack_version("v", &v.version).unwrap();
                template::check_values(&v.default_values)
                    .unwrap_or_else(|e| panic!("{}@{}: {e}", p.metadata.name.as_str(), v.version));
                assert!(
                    !v.default_values.trim().is_empty(),
                    "{}@{} has no defaults",
                    p.metadata.name.as_str(),
                    v.version
                );
            }
        }
    }

    #[test]
    fn builtin_catalog_covers_every_layer_and_cloud() {
        let cat = Catalog::builtin();
        for name in [
            "ubuntu-aws",
            "ubuntu-azure",
            "ubuntu-gcp",
            "ubuntu-vsphere",
            "kubernetes",
            "cni-calico",
            "cni-cilium",
            "csi-aws-ebs",
            "csi-azure-disk",
            "csi-gcp-pd",
            "csi-vsphere",
            "prometheus-operator",
            "cert-manager",
            "ingress-nginx",
            "hello-universe",
            "external-dns",
        ] {
            assert!(cat.get(name).is_some(), "{name} missing");
        }
        let k8s = cat.get("kubernetes").unwrap();
        for minor in ["1.31.", "1.32.", "1.33.", "1.34."] {
            let patches = k8s
                .spec
                .versions
                .iter()
                .filter(|v| v.version.starts_with(minor))
                .count();
            assert!(patches >= 2, "kubernetes {minor}x needs several patches");
        }
        assert_eq!(cat.get("ubuntu-aws").unwrap().spec.layer, Layer::Os);
        assert!(
            !cat.get("ubuntu-aws")
                .unwrap()
                .supports_cloud(CloudType::Azure)
        );
        assert!(
            cat.get("cert-manager")
                .unwrap()
                .supports_cloud(CloudType::All)
        );
    }

    #[test]
    fn versions_order_naturally() {
        let mut v = vec![
            "1.31.12",
            "1.31.4",
            "1.4.0",
            "24.04",
            "22.04",
            "1.0.0-rc.1",
            "1.0.0",
        ];
        v.sort_by(|a, b| compare_pack_versions(a, b));
        assert_eq!(
            v,
            [
                "1.0.0-rc.1",
                "1.0.0",
                "1.4.0",
                "1.31.4",
                "1.31.12",
                "22.04",
                "24.04"
            ]
        );
    }

    fn custom(name: &str, pack_type: PackType, registry: &str) -> Pack {
        Pack {
            kind: String::new(),
            status: NoStatus {},
            metadata: Metadata {
                name: name.into(),
                ..Metadata::default()
            },
            spec: PackSpec {
                layer: Layer::Addon,
                pack_type,
                cloud_types: vec![],
                registry: registry.into(),
                versions: vec![PackVersion {
                    version: "1.0.0".into(),
                    default_values: "a: 1\n".into(),
                }],
            },
        }
    }

    #[test]
    fn custom_packs_are_validated() {
        assert!(
            validate_custom_pack(&custom(
                "my-chart",
                PackType::Helm,
                "https://charts.example.com"
            ))
            .is_ok()
        );
        assert!(
            validate_custom_pack(&custom(
                "my-oci",
                PackType::Oci,
                "oci://registry.example.com/x"
            ))
            .is_ok()
        );
        assert!(validate_custom_pack(&custom("my-manifests", PackType::Manifest, "")).is_ok());

        let cases: &[(Pack, &str)] = &[
            (
                custom("kubernetes", PackType::Helm, "https://x"),
                "metadata.name",
            ),
            (
                custom("Bad_Name", PackType::Helm, "https://x"),
                "metadata.name",
            ),
            (custom("mine", PackType::Catalog, ""), "spec.type"),
            (
                custom("mine", PackType::Helm, "http://insecure"),
                "spec.registry",
            ),
            (custom("mine", PackType::Oci, "https://x"), "spec.registry"),
            (
                custom("mine", PackType::Manifest, "https://x"),
                "spec.registry",
            ),
            (
                {
                    let mut p = custom("mine", PackType::Manifest, "");
                    p.spec.versions.push(p.spec.versions[0].clone());
                    p
                },
                "spec.versions[1].version",
            ),
            (
                {
                    let mut p = custom("mine", PackType::Manifest, "");
                    p.spec.versions[0].version = "v 1".into();
                    p
                },
                "spec.versions[0].version",
            ),
            (
                {
                    let mut p = custom("mine", PackType::Manifest, "");
                    p.spec.versions[0].default_values = "a: [1\n".into();
                    p
                },
                "spec.versions[0].defaultValues",
            ),
            (
                {
                    let mut p = custom("mine", PackType::Manifest, "");
                    p.spec.versions.clear();
                    p
                },
                "spec.versions",
            ),
        ];
        for (pack, field) in cases {
            let e = validate_custom_pack(pack).unwrap_err();
            assert_eq!(e.code, crate::ErrorCode::ValidationFailed);
            assert!(
                e.errors.iter().any(|f| f.field == *field),
                "{field}: {:?}",
                e.errors
            );
        }
    }

    #[test]
    fn custom_packs_merge_without_shadowing() {
        let mine = [
            custom("my-chart", PackType::Helm, "https://c"),
            custom("kubernetes", PackType::Helm, "https://c"),
        ];
        let cat = Catalog::with_custom(&mine);
        assert_eq!(cat.get("my-chart").unwrap().spec.pack_type, PackType::Helm);
        assert_eq!(
            cat.get("kubernetes").unwrap().spec.pack_type,
            PackType::Catalog
        );
        assert!(cat.version("my-chart", "1.0.0").is_some());
        assert!(cat.version("my-chart", "2.0.0").is_none());
        let names: Vec<&str> = cat
            .packs()
            .iter()
            .map(|p| p.metadata.name.as_str())
            .collect();
        assert_eq!(names.iter().filter(|n| **n == "kubernetes").count(), 1);
        assert!(names.windows(2).all(|w| w[0] < w[1]));
    }
}
