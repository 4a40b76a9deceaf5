//! The plan preview of a template's rollout (DESIGN §5.4): `GET …/cluster-templates/{t}/plan`
//! says, for each cluster of the template, where it is and where the current revision takes it:
//! current and target revision, wave, expected start, pending variables, the layer changes
//! (pack versions and a unified diff of the rendered values) and whether machines are replaced.
//!
//! Only the template's own clusters are examined (through the reference index), one page at a
//! time. A cluster that cannot render says so in its row; the plan as a whole still answers.
//! Sensitive values never appear: see [`redacted_layers`] and [`mask_lines`] (docs/cli.md).

use crate::Routes;
use crate::auth::Caller;
use crate::clusters;
use crate::error::{ApiError, ApiResult};
use crate::json::Query;
use crate::profiles;
use crate::resource::{self, ObjectPath, load};
use crate::rollouts;
use crate::state::AppState;
use crate::templates::{self, ClusterTemplate, MemberView};
use axum::Json;
use axum::extract::{Path, State};
use fleetplane_domain::LabelSelector;
use fleetplane_domain::authz::{Permission, Resource, Verb};
use fleetplane_domain::cluster::{ClusterPhase, DesiredLayer, replaces_machines};
use fleetplane_domain::error::FieldError;
use fleetplane_domain::profile::{Layer, LayerSpec, MASK, ProfileVersionSpec};
use fleetplane_domain::template::{Assignment, RefScope, RolloutStrategy};
use fleetplane_store::{ObjectKey, ReadOps, Scope};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// The most clusters one page of the plan renders.
const MAX_PAGE: usize = 500;

/// The name of the wave of clusters no wave selects (as the fan-out names it).
const REST_WAVE: &str = "rest";

/// Where a cluster stands against the target revision.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PlanState {
    /// It runs the target revision.
    Applied,
    /// It is being changed now.
    InProgress,
    /// It will move (or cannot yet): see `reason`.
    Pending,
}

/// One layer that changes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LayerChange {
    /// The profile the layer belongs to.
    pub profile: String,
    /// The layer (`os`, `k8s`, `cni`, `csi`, `addon`).
    pub layer: Layer,
    /// The pack.
    pub pack: String,
    /// The pack version the cluster runs (`None`: the layer is new).
    pub from_version: Option<String>,
    /// The pack version of the target (`None`: the layer goes away).
    pub to_version: Option<String>,
    /// Unified diff of the rendered values (`None` when they are equal, redacted, or the
    /// target could not be rendered).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values_diff: Option<String>,
    /// The values diff is left out because the layer uses a sensitive variable.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub values_redacted: bool,
    /// The layer's extra manifests change.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub manifests_changed: bool,
}

/// Why a cluster's target could not be rendered.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanError {
    /// The error code (`ValidationFailed`, …).
    pub code: String,
    /// What went wrong.
    pub message: String,
    /// Every field problem (variable paths, layer values and lines).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// The plan of one cluster.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ClusterPlan {
    /// The cluster, named as the variables view names it (`project/name` for a tenant template).
    pub cluster: String,
    /// The template revision it runs (`None` before its first deploy).
    pub current_revision: Option<u64>,
    /// The template's current revision.
    pub target_revision: u64,
    /// The strategy's wave that takes it (`rest` when no wave selects it).
    pub wave: String,
    /// When its update is expected to start: now when its window is open or an Upgrade now
    /// covers it, else the start of its next window (in its own zone); `None` without a window
    /// or when it is at the target.
    pub expected_start: Option<jiff::Timestamp>,
    /// Its maintenance window is open now.
    pub window_open: bool,
    /// The current rollout is an Upgrade now that covers it (windows ignored).
    pub upgrade_now: bool,
    /// `profile.variable` of every Pending variable for the target revision.
    pub pending_variables: Vec<String>,
    /// Whether the change replaces machines (§5.3); `None` when it cannot be told (the
    /// target does not render and no os/k8s pack version changes).
    pub replace_machines: Option<bool>,
    /// The layers that change.
    pub changes: Vec<LayerChange>,
    /// Where it stands.
    pub state: PlanState,
    /// Why it is Pending or InProgress.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    /// Why its target could not be rendered.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<PlanError>,
}

/// Query of the plan.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PlanQuery {
    /// Clusters per page (default and maximum 500).
    limit: Option<usize>,
    /// The last cluster of the previous page.
    #[serde(rename = "continue")]
    cont: Option<String>,
}

/// What the caller of [`plan_cluster`] knows of the template once per page.
struct Context<'a> {
    view: &'a MemberView,
    strategy: RolloutStrategy,
    /// The current rollout if it is an Upgrade now: its clusters (empty: all).
    upgrade_now: Option<Vec<String>>,
    now: jiff::Timestamp,
}

/// `GET …/cluster-templates/{t}/plan?limit=&continue=`.
///
/// # Errors
/// 403 without `clusterTemplate.get`, 404 for an unknown template, 400 for a bad query; store
/// errors. A cluster that cannot render is reported in its row.
pub async fn plan(
    State(state): State<AppState>,
    caller: Caller,
    Path(path): Path<ObjectPath>,
    Query(q): Query<PlanQuery>,
) -> ApiResult<Json<serde_json::Value>> {
    let scope = path.scope();
    let name = path.name.clone().unwrap_or_default();
    caller.require(
        Permission::new(Resource::ClusterTemplate, Verb::Get),
        scope.project(),
    )?;
    let limit = q.limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
    let out = state
        .read(move |r| {
            resource::require::<ClusterTemplate>(r, &scope, &name)?;
            let view = templates::member_view(r, &scope, &name)?
                .ok_or_else(|| ApiError::not_found("cluster template", &name))?;
            page(r, &view, limit, q.cont.as_deref(), jiff::Timestamp::now())
        })
        .await?;
    Ok(Json(out))
}

/// One page of the plan of `view`'s template at `now`.
fn page(
    r: &dyn ReadOps,
    view: &MemberView,
    limit: usize,
    after: Option<&str>,
    now: jiff::Timestamp,
) -> ApiResult<serde_json::Value> {
    let ctx = Context {
        view,
        strategy: view.spec.rollout.clone().unwrap_or_default(),
        upgrade_now: current_upgrade_now(r, view)?,
        now,
    };
    let mut members = templates::member_names(r, &view.scope, &view.name)?;
    members.sort_by(|a, b| a.0.cmp(&b.0));
    let mut items = Vec::new();
    let mut next = None;
    for (display, cluster) in members
        .into_iter()
        .filter(|(d, _)| after.is_none_or(|a| d.as_str() > a))
    {
        if items.len() == limit {
            next = items.last().map(|p: &ClusterPlan| p.cluster.clone());
            break;
        }
        let project = cluster.metadata.project.clone().unwrap_or_default();
        let key = ObjectKey::new(
            Scope::Project(project),
            fleetplane_store::tables::kinds::CLUSTER,
            cluster.metadata.name.clone(),
        );
        items.push(plan_cluster(r, &ctx, &display, &key, &cluster)?);
    }
    Ok(serde_json::json!({
        "template": view.name,
        "revision": view.revision,
        "generatedAt": now,
        "items": items,
        "continue": next,
    }))
}

/// The clusters of the current rollout when it is a running Upgrade now (empty: all).
fn current_upgrade_now(r: &dyn ReadOps, view: &MemberView) -> ApiResult<Option<Vec<String>>> {
    let rec = rollouts::read(r, &view.scope, &view.name)?;
    let Some(cur) = rec.current else {
        return Ok(None);
    };
    let running = r.run(&cur.run)?.is_some_and(|run| !run.header.terminal);
    Ok((running && cur.upgrade_now && cur.revision == view.revision).then_some(cur.clusters))
}

/// The wave of a cluster with `labels`: the first wave whose selector matches, else `rest`.
fn wave_of(strategy: &RolloutStrategy, labels: &BTreeMap<String, String>) -> String {
    strategy
        .waves
        .iter()
        .find(|w| LabelSelector::match_labels(&w.selector.match_labels).matches(labels))
        .map_or_else(|| REST_WAVE.to_owned(), |w| w.name.clone())
}

/// The plan of one cluster.
fn plan_cluster(
    r: &dyn ReadOps,
    ctx: &Context<'_>,
    display: &str,
    key: &ObjectKey,
    cluster: &resource::ObjectOf<clusters::Cluster>,
) -> ApiResult<ClusterPlan> {
    let view = ctx.view;
    let target = view.revision;
    let stored = templates::stored_assignments(r, &view.scope, &view.name, key, target)?;
    let pending_variables: Vec<String> = stored
        .iter()
        .flat_map(|a| a.iter())
        .flat_map(|(p, vars)| {
            vars.iter()
                .filter(|(_, a)| a.assignment == Assignment::Pending)
                .map(move |(v, _)| format!("{p}.{v}"))
        })
        .collect();
    let applied = clusters::applied_stack(r, key)?;
    let current: &[DesiredLayer] = applied
        .as_ref()
        .map_or(&[][..], |s| s.desired.layers.as_slice());
    let (changes, replace_machines, error) = match clusters::desired_of(r, key, &cluster.spec) {
        Ok(d) => {
            let redacted = redacted_layers(r, view, applied.as_ref().map(|s| &s.desired));
            let secrets = sensitive_values(view, stored.as_ref(), &cluster.spec.variables);
            let changes = layer_changes(current, &d.desired.layers, &redacted, &secrets);
            let repave = replaces_machines(current, &d.desired.layers);
            (changes, Some(repave), None)
        }
        Err(e) => {
            let (changes, repave) = version_changes(current, view);
            let error = PlanError {
                code: e.error.code.to_string(),
                message: e.error.detail.clone(),
                errors: e.error.errors.clone(),
            };
            (changes, repave, Some(error))
        }
    };
    let window = clusters::next_window(r, &key.scope, &cluster.spec, ctx.now)?;
    let window_open = window.as_ref().is_some_and(|w| w.start <= ctx.now);
    let upgrade_now = ctx
        .upgrade_now
        .as_ref()
        .is_some_and(|only| only.is_empty() || only.iter().any(|c| c == display));
    let phase = cluster.status.phase;
    let at_target = cluster.status.revision == Some(target);
    let (state, reason, expected_start) = if at_target {
        (PlanState::Applied, None, None)
    } else if phase == ClusterPhase::Updating {
        (PlanState::InProgress, Some("updating".to_owned()), None)
    } else if !pending_variables.is_empty() {
        (
            PlanState::Pending,
            Some("pending variables".to_owned()),
            None,
        )
    } else if phase != ClusterPhase::Running {
        (
            PlanState::Pending,
            Some(format!("cluster not running ({phase:?})")),
            None,
        )
    } else if error.is_some() {
        (
            PlanState::Pending,
            Some("the target revision does not render for this cluster".to_owned()),
            None,
        )
    } else if upgrade_now {
        (
            PlanState::Pending,
            Some("starts now (Upgrade now)".to_owned()),
            Some(ctx.now),
        )
    } else if window_open {
        (
            PlanState::Pending,
            Some("window open".to_owned()),
            Some(ctx.now),
        )
    } else if let Some(w) = &window {
        (
            PlanState::Pending,
            Some("waiting for window".to_owned()),
            Some(w.start),
        )
    } else {
        (
            PlanState::Pending,
            Some("no maintenance window (only Upgrade now moves it)".to_owned()),
            None,
        )
    };
    Ok(ClusterPlan {
        cluster: display.to_owned(),
        current_revision: cluster.status.revision,
        target_revision: target,
        wave: wave_of(&ctx.strategy, &cluster.spec.labels),
        expected_start,
        window_open,
        upgrade_now,
        pending_variables,
        replace_machines,
        changes,
        state,
        reason,
        error,
    })
}

/// `(profile, pack)` identifies a layer across revisions.
type LayerId = (String, String);

/// The layers whose values diff must not be shown: those whose values or manifests template,
/// in the target version or in the version the cluster runs, names one of its profile's
/// sensitive variables (as a whole word, whatever the syntax around it). A version the
/// cluster runs that cannot be read redacts every layer of that profile.
fn redacted_layers(
    r: &dyn ReadOps,
    view: &MemberView,
    applied: Option<&fleetplane_domain::cluster::DesiredCluster>,
) -> BTreeSet<LayerId> {
    let mut out = BTreeSet::new();
    let mark = |out: &mut BTreeSet<LayerId>, profile: &str, spec: &ProfileVersionSpec| {
        for l in &spec.layers {
            if uses_sensitive(l, spec) {
                out.insert((profile.to_owned(), l.name.clone()));
            }
        }
    };
    for (p, v) in &view.versions {
        mark(&mut out, &p.name, &v.spec);
    }
    let (profiles_run, layers_run) = applied.map_or((&[][..], &[][..]), |a| {
        (a.profiles.as_slice(), a.layers.as_slice())
    });
    for p in profiles_run {
        let scope = match p.scope {
            Some(RefScope::Tenant) => Scope::Tenant,
            _ => view.scope.clone(),
        };
        let name = profiles::version_key_name(&p.name, &p.version);
        match load::<profiles::Version>(r, &scope, &name) {
            Ok(Some(v)) => mark(&mut out, &p.name, &v.spec),
            // Unknown: hide every layer of the profile rather than guess.
            _ => {
                for l in layers_run.iter().filter(|l| l.profile == p.name) {
                    out.insert((p.name.clone(), l.layer.name.clone()));
                }
            }
        }
    }
    out
}

/// Whether a layer's templates name a sensitive variable of `spec`.
fn uses_sensitive(layer: &LayerSpec, spec: &ProfileVersionSpec) -> bool {
    spec.variables.iter().filter(|v| v.sensitive).any(|v| {
        mentions(&layer.values, &v.name)
            || layer
                .manifests
                .iter()
                .any(|m| mentions(&m.content, &v.name))
    })
}

/// Whether `word` occurs in `text` as a whole identifier.
fn mentions(text: &str, word: &str) -> bool {
    let ident = |c: char| c.is_ascii_alphanumeric() || c == '_';
    text.match_indices(word).any(|(i, _)| {
        let before = text[..i].chars().next_back();
        let after = text[i + word.len()..].chars().next();
        !before.is_some_and(ident) && !after.is_some_and(ident)
    })
}

/// Every value of a sensitive variable this cluster has or had (assignments' new and running
/// values, its own values, the template's fleet-wide ones); empty values are left out.
fn sensitive_values(
    view: &MemberView,
    stored: Option<&templates::Assignments>,
    own: &BTreeMap<String, BTreeMap<String, String>>,
) -> Vec<String> {
    let mut out = BTreeSet::new();
    for (p, v) in &view.versions {
        let fixed = view.template_values(&p.name);
        for def in v.spec.variables.iter().filter(|d| d.sensitive) {
            let assigned = stored
                .and_then(|a| a.get(&p.name))
                .and_then(|m| m.get(&def.name));
            let candidates = [
                assigned.map(|a| a.new_value.clone()),
                assigned.and_then(|a| a.running_value.clone()),
                own.get(&p.name).and_then(|m| m.get(&def.name)).cloned(),
                fixed.get(&def.name).cloned(),
            ];
            out.extend(candidates.into_iter().flatten());
        }
    }
    out.into_iter()
        .filter(|v| !v.trim().is_empty() && v != MASK)
        .collect()
}

/// Replaces every line holding one of `secrets` by the mask (defence in depth: redaction by
/// template misses values that reach a layer through a macro or a filter chain).
fn mask_lines(text: &str, secrets: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    for line in text.split_inclusive('\n') {
        if secrets.iter().any(|s| line.contains(s.as_str())) {
            out.push_str(MASK);
            if line.ends_with('\n') {
                out.push('\n');
            }
        } else {
            out.push_str(line);
        }
    }
    out
}

/// Unified diff of two values texts (`current` → `target`), `None` when equal.
fn values_diff(current: &str, target: &str) -> Option<String> {
    if current == target {
        return None;
    }
    Some(
        similar::TextDiff::from_lines(current, target)
            .unified_diff()
            .context_radius(3)
            .header("current", "target")
            .to_string(),
    )
}

fn id_of(l: &DesiredLayer) -> LayerId {
    (l.profile.clone(), l.layer.name.clone())
}

/// The layers that differ between the stack a cluster runs and its rendered target.
fn layer_changes(
    current: &[DesiredLayer],
    target: &[DesiredLayer],
    redacted: &BTreeSet<LayerId>,
    secrets: &[String],
) -> Vec<LayerChange> {
    let old: BTreeMap<LayerId, &DesiredLayer> = current.iter().map(|l| (id_of(l), l)).collect();
    let new_ids: BTreeSet<LayerId> = target.iter().map(id_of).collect();
    let mut out = Vec::new();
    for t in target {
        let id = id_of(t);
        let before = old.get(&id);
        let (from_values, from_version, from_manifests) = match before {
            Some(b) => (
                b.layer.values.as_str(),
                Some(b.layer.version.clone()),
                Some(&b.layer.manifests),
            ),
            None => ("", None, None),
        };
        let manifests_changed = from_manifests.is_some_and(|m| *m != t.layer.manifests)
            || (before.is_none() && !t.layer.manifests.is_empty());
        let version_changed = from_version.as_deref() != Some(t.layer.version.as_str());
        let values_changed = from_values != t.layer.values;
        if !version_changed && !values_changed && !manifests_changed {
            continue;
        }
        let is_redacted = redacted.contains(&id);
        let values_diff = if is_redacted {
            None
        } else {
            values_diff(
                &mask_lines(from_values, secrets),
                &mask_lines(&t.layer.values, secrets),
            )
        };
        out.push(LayerChange {
            profile: t.profile.clone(),
            layer: t.layer.layer,
            pack: t.layer.name.clone(),
            from_version,
            to_version: Some(t.layer.version.clone()),
            values_diff,
            values_redacted: is_redacted && values_changed,
            manifests_changed,
        });
    }
    for c in current.iter().filter(|c| !new_ids.contains(&id_of(c))) {
        out.push(LayerChange {
            profile: c.profile.clone(),
            layer: c.layer.layer,
            pack: c.layer.name.clone(),
            from_version: Some(c.layer.version.clone()),
            to_version: None,
            values_diff: None,
            values_redacted: false,
            manifests_changed: !c.layer.manifests.is_empty(),
        });
    }
    out
}

/// When the target does not render: the pack version changes from the linked versions alone,
/// and whether machines are replaced when an os or k8s pack changes (`None`: unknown).
fn version_changes(
    current: &[DesiredLayer],
    view: &MemberView,
) -> (Vec<LayerChange>, Option<bool>) {
    let old: BTreeMap<LayerId, &DesiredLayer> = current.iter().map(|l| (id_of(l), l)).collect();
    let mut seen = BTreeSet::new();
    let mut out = Vec::new();
    for (p, v) in &view.versions {
        for l in &v.spec.layers {
            let id = (p.name.clone(), l.name.clone());
            seen.insert(id.clone());
            let from = old.get(&id).map(|o| o.layer.version.clone());
            if from.as_deref() != Some(l.version.as_str()) {
                out.push(LayerChange {
                    profile: p.name.clone(),
                    layer: l.layer,
                    pack: l.name.clone(),
                    from_version: from,
                    to_version: Some(l.version.clone()),
                    values_diff: None,
                    values_redacted: false,
                    manifests_changed: false,
                });
            }
        }
    }
    for c in current.iter().filter(|c| !seen.contains(&id_of(c))) {
        out.push(LayerChange {
            profile: c.profile.clone(),
            layer: c.layer.layer,
            pack: c.layer.name.clone(),
            from_version: Some(c.layer.version.clone()),
            to_version: None,
            values_diff: None,
            values_redacted: false,
            manifests_changed: false,
        });
    }
    let machines = out
        .iter()
        .any(|c| matches!(c.layer, Layer::Os | Layer::K8s));
    (out, machines.then_some(true))
}

/// Registers `GET …/cluster-templates/{name}/plan` at tenant and project scope.
pub fn routes(r: &mut Routes) {
    for base in ["/v1", "/v1/projects/{project}"] {
        r.add(
            &format!("{base}/cluster-templates/{{name}}/plan"),
            &[axum::http::Method::GET],
            axum::routing::get(plan),
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetplane_domain::profile::{PackType, RenderedLayer};

    fn layer(profile: &str, kind: Layer, pack: &str, version: &str, values: &str) -> DesiredLayer {
        DesiredLayer {
            profile: profile.into(),
            layer: RenderedLayer {
                name: pack.into(),
                layer: kind,
                pack_type: PackType::Catalog,
                version: version.into(),
                values: values.into(),
                manifests: Vec::new(),
            },
        }
    }

    #[test]
    fn words_are_found_whole_whatever_the_syntax_around_them() {
        let cases = [
            ("{{ var.password }}", "password", true),
            ("{{ var['password'] | b64encode }}", "password", true),
            ("{{ var.admin_password }}", "password", false),
            ("{{ var.password2 }}", "password", false),
            ("password", "password", true),
            ("", "password", false),
        ];
        for (text, word, want) in cases {
            assert_eq!(mentions(text, word), want, "{text:?} {word:?}");
        }
    }

    #[test]
    fn lines_holding_a_secret_are_masked() {
        let secrets = vec!["s3cret".to_owned()];
        assert_eq!(
            mask_lines("a: 1\npassword: s3cret\nb: 2", &secrets),
            format!("a: 1\n{MASK}\nb: 2")
        );
        assert_eq!(mask_lines("a: 1\n", &[]), "a: 1\n");
    }

    #[test]
    fn changes_diff_values_redact_sensitive_layers_and_list_added_and_removed_packs() {
        let current = vec![
            layer("aws", Layer::K8s, "kubernetes", "1.33.4", "v: 1.33.4\n"),
            layer(
                "aws",
                Layer::Addon,
                "hello",
                "1.0.0",
                "port: 8080\npw: old-s3cret\n",
            ),
            layer("obs", Layer::Addon, "grafana", "1.0.0", "password: aaaa\n"),
            layer("aws", Layer::Addon, "gone", "1.0.0", ""),
        ];
        let target = vec![
            layer("aws", Layer::K8s, "kubernetes", "1.33.4", "v: 1.33.4\n"),
            layer(
                "aws",
                Layer::Addon,
                "hello",
                "1.0.0",
                "port: 9090\npw: new-s3cret\n",
            ),
            layer("obs", Layer::Addon, "grafana", "1.0.0", "password: bbbb\n"),
            layer("aws", Layer::Addon, "new", "2.0.0", "x: 1\n"),
        ];
        let redacted = BTreeSet::from([("obs".to_owned(), "grafana".to_owned())]);
        let secrets = vec!["old-s3cret".to_owned(), "new-s3cret".to_owned()];
        let changes = layer_changes(&current, &target, &redacted, &secrets);
        let text = serde_json::to_string(&changes).unwrap();
        for secret in ["old-s3cret", "new-s3cret", "aaaa", "bbbb"] {
            assert!(!text.contains(secret), "{secret} leaked: {text}");
        }
        let packs: Vec<(&str, Option<&str>, Option<&str>)> = changes
            .iter()
            .map(|c| {
                (
                    c.pack.as_str(),
                    c.from_version.as_deref(),
                    c.to_version.as_deref(),
                )
            })
            .collect();
        assert_eq!(
            packs,
            [
                ("hello", Some("1.0.0"), Some("1.0.0")),
                ("grafana", Some("1.0.0"), Some("1.0.0")),
                ("new", None, Some("2.0.0")),
                ("gone", Some("1.0.0"), None),
            ]
        );
        assert_eq!(
            changes[0].values_diff.as_deref(),
            Some("--- current\n+++ target\n@@ -1,2 +1,2 @@\n-port: 8080\n+port: 9090\n ********\n")
        );
        assert!(changes[1].values_redacted && changes[1].values_diff.is_none());
        assert!(!replaces_machines(&current, &target));
        let mut k8s = target.clone();
        k8s[0] = layer("aws", Layer::K8s, "kubernetes", "1.34.0", "v: 1.34.0\n");
        assert!(replaces_machines(&current, &k8s));
        assert_eq!(layer_changes(&current, &current, &redacted, &[]), []);
    }

    #[test]
    fn the_wave_is_the_first_selecting_one_else_rest() {
        let strategy: RolloutStrategy = serde_json::from_value(serde_json::json!({"waves": [
            {"name": "canary", "selector": {"matchLabels": {"ring": "canary"}}},
            {"name": "eu", "selector": {"matchLabels": {"region": "eu"}}},
            {"name": "all", "selector": {"matchLabels": {}}}]}))
        .unwrap();
        let labels = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        assert_eq!(
            wave_of(&strategy, &labels(&[("ring", "canary"), ("region", "eu")])),
            "canary"
        );
        assert_eq!(wave_of(&strategy, &labels(&[("region", "eu")])), "eu");
        assert_eq!(wave_of(&strategy, &labels(&[])), "all");
        assert_eq!(wave_of(&RolloutStrategy::default(), &labels(&[])), "rest");
    }
}
