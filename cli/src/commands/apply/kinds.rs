//! The kinds `apply`, `diff` and `get` know: one row per kind with its names, its scope rule,
//! how its API path is built and how its documents are compared. Adding a kind is one row.

use fleetplane_client::encode_segment;
use serde_json::Value;

/// Where objects of a kind may live.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScopeRule {
    /// At tenant scope, or in a project when one is named (policies, profiles, templates,
    /// macros).
    TenantOrProject,
    /// Only in a project (cloud accounts, clusters).
    ProjectOnly,
    /// Only tenant-wide (workflow definitions).
    TenantOnly,
}

/// Where a versioned kind's document names its version.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VersionAt {
    /// `spec.version` (profile versions).
    Spec,
    /// `metadata.version` (workflow definitions).
    Metadata,
}

impl VersionAt {
    /// The JSON pointer of the version in a document.
    pub fn pointer(self) -> &'static str {
        match self {
            Self::Spec => "/spec/version",
            Self::Metadata => "/metadata/version",
        }
    }
}

/// One kind of object in documents.
#[derive(Debug)]
pub struct KindSpec {
    /// The `kind:` of documents and of `get`'s output (`MaintenancePolicy`).
    pub kind: &'static str,
    /// The kind the server shows and accepts in bodies (`ClusterProfileVersion`).
    pub api_kind: &'static str,
    /// The short name of result lines (`policy/weekly created`).
    pub short: &'static str,
    /// Other names accepted by `get` and in `kind:`, lowercase (the kind, `api_kind` and
    /// `short` are always accepted, in any case).
    pub aliases: &'static [&'static str],
    /// Where objects live.
    pub scope: ScopeRule,
    /// The collection under `/v1` or `/v1/projects/{p}`.
    pub collection: &'static str,
    /// For versioned kinds, where the version is; the path gets `/versions/{version}`.
    pub version: Option<VersionAt>,
    /// The member of `GET`'s answer that holds the document (workflows answer
    /// `{definition, digest, …}`); `None` when the answer is the object.
    pub wrapped_in: Option<&'static str>,
    /// Members compared exactly: a key of the object the file leaves out counts as removed
    /// (maps of user data, and metadata fields a `PUT` clears when absent). Elsewhere only the
    /// members the file sets are compared.
    pub exact: &'static [&'static str],
    /// Puts a document into the form the server stores, where the client can do it exactly
    /// (workflow definitions: durations, defaults); `None` when it cannot (the document is then
    /// compared as written).
    pub normalize: Option<fn(&Value) -> Option<Value>>,
}

/// A workflow definition in the server's canonical form (`24h` is `1d`, defaults filled), by
/// the same parser the server uses.
fn normalize_workflow(doc: &Value) -> Option<Value> {
    fleetplane_workflow::definition::from_value(doc.clone())
        .ok()
        .map(|d| d.to_json())
}

/// Members of every kind that a `PUT` clears when the document leaves them out.
const METADATA_EXACT: [&str; 2] = ["/metadata/labels", "/metadata/description"];

/// Every kind, in apply order: a kind comes after the kinds its objects may reference
/// (templates link policies and profile versions; clusters use templates and cloud accounts).
pub static KINDS: &[KindSpec] = &[
    KindSpec {
        kind: "MaintenancePolicy",
        api_kind: "MaintenancePolicy",
        short: "policy",
        aliases: &[
            "policies",
            "maintenancepolicies",
            "maintenance-policy",
            "maintenance-policies",
            "mp",
        ],
        scope: ScopeRule::TenantOrProject,
        collection: "maintenance-policies",
        version: None,
        wrapped_in: None,
        exact: &METADATA_EXACT,
        normalize: None,
    },
    KindSpec {
        kind: "Macro",
        api_kind: "Macro",
        short: "macro",
        aliases: &["macros"],
        scope: ScopeRule::TenantOrProject,
        collection: "macros",
        version: None,
        wrapped_in: None,
        exact: &METADATA_EXACT,
        normalize: None,
    },
    KindSpec {
        kind: "ProfileVersion",
        api_kind: "ClusterProfileVersion",
        short: "profileversion",
        aliases: &[
            "profileversions",
            "profile-version",
            "profile-versions",
            "profile",
            "profiles",
            "pv",
        ],
        scope: ScopeRule::TenantOrProject,
        collection: "profiles",
        version: Some(VersionAt::Spec),
        wrapped_in: None,
        exact: &METADATA_EXACT,
        normalize: None,
    },
    KindSpec {
        kind: "Workflow",
        api_kind: "Workflow",
        short: "workflow",
        aliases: &["workflows", "wf"],
        scope: ScopeRule::TenantOnly,
        collection: "workflows",
        version: Some(VersionAt::Metadata),
        wrapped_in: Some("definition"),
        exact: &["/metadata/description", "/spec/inputs"],
        normalize: Some(normalize_workflow),
    },
    KindSpec {
        kind: "CloudAccount",
        api_kind: "CloudAccount",
        short: "cloudaccount",
        aliases: &[
            "cloudaccounts",
            "cloud-account",
            "cloud-accounts",
            "account",
            "accounts",
            "ca",
        ],
        scope: ScopeRule::ProjectOnly,
        collection: "cloud-accounts",
        version: None,
        wrapped_in: None,
        exact: &[
            "/metadata/labels",
            "/metadata/description",
            "/spec/config",
            "/spec/secrets",
        ],
        normalize: None,
    },
    KindSpec {
        kind: "ClusterTemplate",
        api_kind: "ClusterTemplate",
        short: "template",
        aliases: &[
            "templates",
            "clustertemplates",
            "cluster-template",
            "cluster-templates",
            "ct",
        ],
        scope: ScopeRule::TenantOrProject,
        collection: "cluster-templates",
        version: None,
        wrapped_in: None,
        exact: &METADATA_EXACT,
        normalize: None,
    },
    KindSpec {
        kind: "Cluster",
        api_kind: "Cluster",
        short: "cluster",
        aliases: &["clusters"],
        scope: ScopeRule::ProjectOnly,
        collection: "clusters",
        version: None,
        wrapped_in: None,
        exact: &[
            "/metadata/labels",
            "/metadata/description",
            "/spec/labels",
            "/spec/variables",
        ],
        normalize: None,
    },
];

impl KindSpec {
    /// The kind named `name`: its `kind`, API kind, short name or an alias, in any case.
    pub fn find(name: &str) -> Option<&'static Self> {
        let lower = name.trim().to_ascii_lowercase();
        KINDS.iter().find(|k| {
            k.kind.eq_ignore_ascii_case(&lower)
                || k.api_kind.eq_ignore_ascii_case(&lower)
                || k.short == lower
                || k.aliases.contains(&lower.as_str())
        })
    }

    /// The kinds' document names, for messages (`MaintenancePolicy, Macro, …`).
    pub fn names() -> String {
        KINDS.iter().map(|k| k.kind).collect::<Vec<_>>().join(", ")
    }

    /// The position of the kind in apply order.
    pub fn rank(&self) -> usize {
        KINDS
            .iter()
            .position(|k| std::ptr::eq(k, self))
            .unwrap_or(KINDS.len())
    }

    /// The API path of the object `name` (at `version` for versioned kinds) in `project`, or
    /// at tenant scope.
    pub fn path(&self, project: Option<&str>, name: &str, version: Option<&str>) -> String {
        let base = match project {
            Some(p) => format!("/v1/projects/{}/{}", encode_segment(p), self.collection),
            None => format!("/v1/{}", self.collection),
        };
        match version {
            Some(v) => format!(
                "{base}/{}/versions/{}",
                encode_segment(name),
                encode_segment(v)
            ),
            None => format!("{base}/{}", encode_segment(name)),
        }
    }

    /// `short/name` or `short/name@version`, as result lines show an object.
    pub fn id(&self, name: &str, version: Option<&str>) -> String {
        match version {
            Some(v) => format!("{}/{name}@{v}", self.short),
            None => format!("{}/{name}", self.short),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_finds_its_kind_and_no_name_is_shared() {
        let mut seen = std::collections::BTreeMap::new();
        for k in KINDS {
            let names = [k.kind, k.api_kind, k.short]
                .into_iter()
                .map(str::to_ascii_lowercase)
                .chain(k.aliases.iter().map(|a| (*a).to_owned()));
            for n in names {
                assert!(
                    KindSpec::find(&n).is_some_and(|f| std::ptr::eq(f, k)),
                    "{n} -> {}",
                    k.kind
                );
                if let Some(other) = seen.insert(n.clone(), k.kind) {
                    assert_eq!(other, k.kind, "{n} names two kinds");
                }
            }
        }
        let cases = [
            ("policy", "MaintenancePolicy"),
            ("Policies", "MaintenancePolicy"),
            ("template", "ClusterTemplate"),
            ("ClusterProfileVersion", "ProfileVersion"),
            ("profileversion", "ProfileVersion"),
            ("cloudaccount", "CloudAccount"),
            ("macro", "Macro"),
            ("workflow", "Workflow"),
        ];
        for (name, kind) in cases {
            assert_eq!(KindSpec::find(name).map(|k| k.kind), Some(kind), "{name}");
        }
        assert!(KindSpec::find("Pod").is_none());
        assert!(KindSpec::find("").is_none());
    }

    #[test]
    fn ranks_follow_dependencies() {
        let rank = |n: &str| KindSpec::find(n).map(KindSpec::rank);
        assert!(rank("policy") < rank("template"));
        assert!(rank("macro") < rank("profileversion"));
        assert!(rank("profileversion") < rank("template"));
        assert!(rank("workflow") < rank("cloudaccount"));
        assert!(rank("cloudaccount") < rank("template"));
        assert!(rank("template") < rank("cluster"));
    }

    #[test]
    fn paths_follow_scope_and_version() {
        let find = |n: &str| KindSpec::find(n).unwrap();
        let cases = [
            (
                find("policy").path(None, "weekly", None),
                "/v1/maintenance-policies/weekly",
            ),
            (
                find("policy").path(Some("shop"), "weekly", None),
                "/v1/projects/shop/maintenance-policies/weekly",
            ),
            (
                find("profileversion").path(Some("a b"), "aws", Some("1.0.0")),
                "/v1/projects/a%20b/profiles/aws/versions/1.0.0",
            ),
            (
                find("workflow").path(None, "w", Some("1.0.0")),
                "/v1/workflows/w/versions/1.0.0",
            ),
            (
                find("cloudaccount").path(Some("p"), "sim", None),
                "/v1/projects/p/cloud-accounts/sim",
            ),
            (
                find("cluster").path(Some("p"), "dev", None),
                "/v1/projects/p/clusters/dev",
            ),
            (
                find("template").path(None, "../x", None),
                "/v1/cluster-templates/..%2Fx",
            ),
        ];
        for (got, want) in cases {
            assert_eq!(got, want);
        }
        assert_eq!(
            find("profileversion").id("aws", Some("1.0.0")),
            "profileversion/aws@1.0.0"
        );
        assert_eq!(find("policy").id("weekly", None), "policy/weekly");
    }
}
