//! Reading the documents of `apply -f` and `diff -f`: files, directories and standard input,
//! JSON or multi-document YAML, each document checked (kind, name, version, scope) before any
//! request is sent.

use super::kinds::{KindSpec, ScopeRule};
use anyhow::{Context as _, bail};
use serde_json::Value;
use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// Where a document comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The file as given (`-` is standard input).
    pub file: String,
    /// The position of the document in the file, from 1 (empty YAML documents do not count).
    pub index: usize,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let file = if self.file == "-" {
            "standard input"
        } else {
            &self.file
        };
        write!(f, "{file}, document {}", self.index)
    }
}

/// One checked document.
#[derive(Debug, Clone)]
pub struct Document {
    /// Where it comes from.
    pub source: Source,
    /// Its kind.
    pub kind: &'static KindSpec,
    /// The project it goes to; `None` at tenant scope.
    pub project: Option<String>,
    /// `metadata.name`.
    pub name: String,
    /// The version of a versioned kind.
    pub version: Option<String>,
    /// The document as read.
    pub body: Value,
}

impl Document {
    /// `short/name[@version]`.
    pub fn id(&self) -> String {
        self.kind.id(&self.name, self.version.as_deref())
    }

    /// The API path of the object.
    pub fn path(&self) -> String {
        self.kind
            .path(self.project.as_deref(), &self.name, self.version.as_deref())
    }
}

/// The projects a document may take its scope from.
#[derive(Debug, Clone, Default)]
pub struct ScopeInput {
    /// `--project` or `FLEETPLANE_PROJECT`.
    pub explicit: Option<String>,
    /// The config file's project (used only by kinds that live only in projects, as the noun
    /// commands do).
    pub configured: Option<String>,
}

/// The text at `pointer`: a non-empty string, or a number as its text (`version: 1.0`).
pub fn text(doc: &Value, pointer: &str) -> Option<String> {
    match doc.pointer(pointer) {
        Some(Value::String(s)) if !s.trim().is_empty() => Some(s.trim().to_owned()),
        Some(Value::Number(n)) => Some(n.to_string()),
        _ => None,
    }
}

/// The project of a document of `kind` whose `metadata.project` is `own`.
///
/// # Errors
/// The document names a project other than `--project`, a tenant-wide kind names a project, or
/// a project-only kind has none.
pub fn resolve_scope(
    kind: &KindSpec,
    own: Option<&str>,
    input: &ScopeInput,
) -> anyhow::Result<Option<String>> {
    let explicit = input.explicit.as_deref().filter(|p| !p.is_empty());
    if let (Some(own), Some(flag)) = (own, explicit)
        && own != flag
    {
        bail!(
            "metadata.project is {own:?} but --project or FLEETPLANE_PROJECT is {flag:?}: \
             remove one or make them agree"
        );
    }
    match kind.scope {
        ScopeRule::TenantOnly => match own {
            Some(p) => bail!(
                "metadata.project: {} objects are tenant-wide and cannot live in project {p:?}",
                kind.kind
            ),
            None => Ok(None),
        },
        ScopeRule::TenantOrProject => Ok(own.or(explicit).map(str::to_owned)),
        ScopeRule::ProjectOnly => own
            .or(explicit)
            .or(input.configured.as_deref().filter(|p| !p.is_empty()))
            .map(|p| Some(p.to_owned()))
            .with_context(|| {
                format!(
                    "{} objects live in a project: set metadata.project or pass --project",
                    kind.kind
                )
            }),
    }
}

/// Checks one parsed document.
///
/// # Errors
/// It is not a mapping, its kind is missing or unknown, its name or version is missing, or its
/// scope cannot be resolved.
pub fn check(source: Source, body: Value, scope: &ScopeInput) -> anyhow::Result<Document> {
    let inner = || -> anyhow::Result<Document> {
        if !body.is_object() {
            bail!("a document must be a mapping with kind, metadata and spec");
        }
        let kind = match body.get("kind") {
            Some(Value::String(k)) => KindSpec::find(k).with_context(|| {
                format!("unknown kind {k:?}; expected one of {}", KindSpec::names())
            })?,
            _ => bail!("kind is missing; expected one of {}", KindSpec::names()),
        };
        let name = text(&body, "/metadata/name").context("metadata.name is missing")?;
        let version = match kind.version {
            Some(at) => Some(text(&body, at.pointer()).with_context(|| {
                format!(
                    "{} is missing: name the version",
                    at.pointer().trim_start_matches('/').replace('/', ".")
                )
            })?),
            None => None,
        };
        let own = match body.pointer("/metadata/project") {
            None | Some(Value::Null) => None,
            Some(_) => Some(
                text(&body, "/metadata/project")
                    .context("metadata.project must be a project name")?,
            ),
        };
        let project = resolve_scope(kind, own.as_deref(), scope)?;
        Ok(Document {
            source: source.clone(),
            kind,
            project,
            name,
            version,
            body: body.clone(),
        })
    };
    inner().with_context(|| format!("{source}: invalid document"))
}

/// Parses a file's text: one JSON value, or YAML documents separated by `---` (YAML 1.2
/// booleans, duplicate keys rejected). Empty YAML documents are skipped.
///
/// # Errors
/// The text is neither.
pub fn parse(text: &str) -> anyhow::Result<Vec<Value>> {
    let trimmed = text.trim_start();
    if (trimmed.starts_with('{') || trimmed.starts_with('['))
        && let Ok(v) = serde_json::from_str::<Value>(text)
    {
        return Ok(vec![v]);
    }
    let mut options = serde_saphyr::Options::default();
    options.strict_booleans = true;
    options.duplicate_keys = serde_saphyr::DuplicateKeyPolicy::Error;
    let docs: Vec<Value> =
        serde_saphyr::from_multiple_with_options(text, options).context("invalid YAML or JSON")?;
    Ok(docs.into_iter().filter(|d| !d.is_null()).collect())
}

/// Whether a file of a directory is read: `*.yaml`, `*.yml`, `*.json`.
fn wanted(path: &Path) -> bool {
    path.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "yaml" | "yml" | "json"))
}

/// The files of `dir`, sorted by path; with `recursive`, those of its subdirectories too.
///
/// # Errors
/// A directory cannot be read.
fn files_of(dir: &Path, recursive: bool, out: &mut Vec<PathBuf>) -> anyhow::Result<()> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(dir)
        .with_context(|| format!("cannot read directory {}", dir.display()))?
        .map(|e| e.map(|e| e.path()))
        .collect::<Result<_, _>>()
        .with_context(|| format!("cannot read directory {}", dir.display()))?;
    entries.sort();
    for path in entries {
        if path.is_dir() {
            if recursive {
                files_of(&path, recursive, out)?;
            }
        } else if wanted(&path) {
            out.push(path);
        }
    }
    Ok(())
}

/// The texts named by `-f` arguments, as `(file, text)` in order: directories expand to their
/// files sorted by name, `-` reads standard input.
///
/// # Errors
/// A file or directory cannot be read, or `-` is given twice.
pub fn read(paths: &[PathBuf], recursive: bool) -> anyhow::Result<Vec<(String, String)>> {
    let mut files = Vec::new();
    let mut stdin_read = false;
    for path in paths {
        if path == Path::new("-") {
            if stdin_read {
                bail!("standard input (`-f -`) can be read only once");
            }
            stdin_read = true;
            let text =
                std::io::read_to_string(std::io::stdin()).context("cannot read standard input")?;
            files.push(("-".to_owned(), text));
        } else if path.is_dir() {
            let mut found = Vec::new();
            files_of(path, recursive, &mut found)?;
            for f in found {
                let text = std::fs::read_to_string(&f)
                    .with_context(|| format!("cannot read {}", f.display()))?;
                files.push((f.display().to_string(), text));
            }
        } else {
            let text = std::fs::read_to_string(path)
                .with_context(|| format!("cannot read {}", path.display()))?;
            files.push((path.display().to_string(), text));
        }
    }
    Ok(files)
}

/// Every document of `files`, checked, in apply order: by kind (dependencies first), then as
/// given.
///
/// # Errors
/// A file does not parse, a document is invalid, an object is given twice, or there is no
/// document at all.
pub fn load(files: Vec<(String, String)>, scope: &ScopeInput) -> anyhow::Result<Vec<Document>> {
    let mut docs = Vec::new();
    for (file, text) in files {
        let values = parse(&text).with_context(|| {
            format!(
                "cannot parse {}",
                if file == "-" { "standard input" } else { &file }
            )
        })?;
        for (i, body) in values.into_iter().enumerate() {
            let source = Source {
                file: file.clone(),
                index: i + 1,
            };
            docs.push(check(source, body, scope)?);
        }
    }
    if docs.is_empty() {
        bail!("no documents found: give YAML or JSON files with kind, metadata and spec");
    }
    let mut seen: BTreeMap<(usize, Option<String>, String), &Source> = BTreeMap::new();
    for d in &docs {
        let key = (d.kind.rank(), d.project.clone(), d.id());
        if let Some(first) = seen.insert(key, &d.source) {
            bail!("{} is given twice ({first}; {})", d.id(), d.source);
        }
    }
    docs.sort_by_key(|d| d.kind.rank());
    Ok(docs)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn scope(explicit: Option<&str>, configured: Option<&str>) -> ScopeInput {
        ScopeInput {
            explicit: explicit.map(str::to_owned),
            configured: configured.map(str::to_owned),
        }
    }

    #[test]
    fn scopes_follow_the_rules_of_the_noun_commands() {
        let k = |n: &str| KindSpec::find(n).unwrap();
        /// Kind, `metadata.project`, flags, the project or a part of the error.
        type Case<'a> = (
            &'a str,
            Option<&'a str>,
            ScopeInput,
            Result<Option<&'a str>, &'a str>,
        );
        let cases: Vec<Case<'_>> = vec![
            ("policy", None, scope(None, None), Ok(None)),
            ("policy", None, scope(None, Some("cfg")), Ok(None)),
            ("policy", None, scope(Some("p"), None), Ok(Some("p"))),
            ("policy", Some("d"), scope(None, None), Ok(Some("d"))),
            ("policy", Some("d"), scope(Some("d"), None), Ok(Some("d"))),
            (
                "policy",
                Some("d"),
                scope(Some("p"), None),
                Err("but --project"),
            ),
            (
                "cloudaccount",
                None,
                scope(None, Some("cfg")),
                Ok(Some("cfg")),
            ),
            (
                "cloudaccount",
                None,
                scope(Some("p"), Some("cfg")),
                Ok(Some("p")),
            ),
            (
                "cloudaccount",
                Some("d"),
                scope(None, Some("cfg")),
                Ok(Some("d")),
            ),
            (
                "cloudaccount",
                None,
                scope(None, None),
                Err("live in a project"),
            ),
            ("workflow", None, scope(Some("p"), None), Ok(None)),
            ("workflow", Some("d"), scope(None, None), Err("tenant-wide")),
        ];
        for (kind, own, input, want) in cases {
            let got = resolve_scope(k(kind), own, &input);
            match (got, want) {
                (Ok(g), Ok(w)) => assert_eq!(g.as_deref(), w, "{kind} {own:?}"),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{kind}: {e}"),
                (g, w) => panic!("{kind} {own:?}: got {g:?}, want {w:?}"),
            }
        }
    }

    #[test]
    fn yaml_streams_and_json_parse() {
        let docs = parse("---\nkind: Macro\n---\n# only a comment\n---\nkind: X\nv: no\n").unwrap();
        assert_eq!(
            docs,
            vec![json!({"kind": "Macro"}), json!({"kind": "X", "v": "no"})]
        );
        assert_eq!(
            parse("{\"kind\": \"Macro\"}").unwrap(),
            vec![json!({"kind": "Macro"})]
        );
        assert!(parse("a: 1\na: 2\n").is_err());
        assert!(parse("a: [\n").is_err());
        assert!(parse("").unwrap().is_empty());
    }

    #[test]
    fn documents_are_checked_and_ordered() {
        let files = vec![
            (
                "a.yaml".to_owned(),
                "kind: ClusterTemplate\nmetadata: {name: t}\n---\nkind: policy\nmetadata: {name: w}\n"
                    .to_owned(),
            ),
            (
                "b.json".to_owned(),
                r#"{"kind": "ProfileVersion", "metadata": {"name": "p"}, "spec": {"version": 1.5}}"#
                    .to_owned(),
            ),
        ];
        let docs = load(files, &ScopeInput::default()).unwrap();
        let ids: Vec<String> = docs.iter().map(Document::id).collect();
        assert_eq!(ids, ["policy/w", "profileversion/p@1.5", "template/t"]);
        assert_eq!(docs[0].source.to_string(), "a.yaml, document 2");
        assert_eq!(docs[1].path(), "/v1/profiles/p/versions/1.5");

        let bad = |text: &str| {
            load(vec![("x.yaml".into(), text.into())], &ScopeInput::default())
                .map(|_| ())
                .unwrap_err()
        };
        let cases = [
            ("kind: Pod\nmetadata: {name: a}\n", "unknown kind \"Pod\""),
            ("metadata: {name: a}\n", "kind is missing"),
            ("kind: Macro\n", "metadata.name is missing"),
            (
                "kind: ProfileVersion\nmetadata: {name: a}\n",
                "spec.version is missing",
            ),
            ("- 1\n", "must be a mapping"),
            ("", "no documents"),
            (
                "kind: Macro\nmetadata: {name: a}\n---\nkind: macros\nmetadata: {name: a}\n",
                "macro/a is given twice (x.yaml, document 1; x.yaml, document 2)",
            ),
        ];
        for (text, want) in cases {
            let e = format!("{:#}", bad(text));
            assert!(e.contains(want), "{text:?}: {e}");
        }
        let e = format!("{:#}", bad("kind: Macro\n---\nkind: Pod\n"));
        assert!(e.starts_with("x.yaml, document 1: invalid document"), "{e}");
    }

    #[test]
    fn directories_list_their_documents_sorted() {
        let dir = tempfile::tempdir().unwrap();
        let sub = dir.path().join("sub");
        std::fs::create_dir(&sub).unwrap();
        for f in ["b.yaml", "a.json", "c.yml", "notes.txt", "sub/d.yaml"] {
            std::fs::write(dir.path().join(f), "").unwrap();
        }
        let names = |recursive| {
            let mut out = Vec::new();
            files_of(dir.path(), recursive, &mut out).unwrap();
            out.iter()
                .map(|p| p.strip_prefix(dir.path()).unwrap().display().to_string())
                .collect::<Vec<_>>()
        };
        assert_eq!(names(false), ["a.json", "b.yaml", "c.yml"]);
        assert_eq!(names(true), ["a.json", "b.yaml", "c.yml", "sub/d.yaml"]);
    }
}
