//! `fleetplane pack …`: the pack catalog. Packs are tenant-wide (built-in and custom), so
//! `--project` does not apply to them.

use super::{Ctx, named, note};
use crate::args::pack::PackCommand;
use crate::output::{Column, field};
use anyhow::Context as _;
use fleetplane_client::encode_segment;
use serde_json::Value;

/// Table columns of packs.
const COLUMNS: &[Column] = &[
    Column::new("NAME", |v| field(v, "/metadata/name")),
    Column::new("LAYER", |v| field(v, "/spec/layer")),
    Column::new("TYPE", |v| field(v, "/spec/type")),
    Column::new("CLOUDS", |v| {
        let clouds = strings(v.pointer("/spec/cloudTypes"), |c| {
            c.as_str().map(str::to_owned)
        });
        if clouds.is_empty() {
            "all".to_owned()
        } else {
            clouds.join(", ")
        }
    }),
    Column::new("BUILT-IN", |v| {
        (field(v, "/metadata/labels/fleetplane.io~1builtin") == "true").to_string()
    }),
    Column::new("VERSIONS", |v| {
        strings(v.pointer("/spec/versions"), |p| {
            p.get("version").and_then(Value::as_str).map(str::to_owned)
        })
        .join(", ")
    }),
];

fn strings(list: Option<&Value>, each: fn(&Value) -> Option<String>) -> Vec<String> {
    list.and_then(Value::as_array)
        .map(|items| items.iter().filter_map(each).collect())
        .unwrap_or_default()
}

/// Runs `fleetplane pack …`.
///
/// # Errors
/// The API call fails or output cannot be written.
pub async fn run(ctx: &Ctx, cmd: PackCommand) -> anyhow::Result<()> {
    if let Some(p) = ctx
        .global
        .project
        .as_deref()
        .filter(|p| !p.trim().is_empty())
    {
        note(&format!(
            "note: packs are tenant-wide; the project {p:?} does not apply"
        ));
    }
    match cmd {
        PackCommand::List(args) => {
            let items = ctx
                .list("/v1/packs", &args)
                .await
                .context("cannot list packs")?;
            ctx.print_list(&items, COLUMNS)
        }
        PackCommand::Get { name } => {
            ctx.show(
                &format!("/v1/packs/{}", encode_segment(&name)),
                &named("pack", &name),
                COLUMNS,
            )
            .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::output;
    use serde_json::json;

    #[test]
    fn the_table_shows_layer_clouds_and_versions() {
        let builtin = json!({"metadata": {"name": "kubernetes",
                                          "labels": {"fleetplane.io/builtin": "true"}},
                             "spec": {"layer": "k8s", "type": "catalog",
                                      "versions": [{"version": "1.32.8"}, {"version": "1.33.4"}]}});
        let custom = json!({"metadata": {"name": "mine"},
                            "spec": {"layer": "addon", "type": "helm",
                                     "cloudTypes": ["aws", "azure"],
                                     "versions": [{"version": "0.1.0"}]}});
        let t = output::table(&[builtin, custom], COLUMNS);
        let rows: Vec<Vec<&str>> = t
            .lines()
            .map(|l| {
                l.split("   ")
                    .map(str::trim)
                    .filter(|c| !c.is_empty())
                    .collect()
            })
            .collect();
        assert_eq!(
            rows[0],
            ["NAME", "LAYER", "TYPE", "CLOUDS", "BUILT-IN", "VERSIONS"]
        );
        assert_eq!(
            rows[1],
            [
                "kubernetes",
                "k8s",
                "catalog",
                "all",
                "true",
                "1.32.8, 1.33.4"
            ]
        );
        assert_eq!(
            rows[2],
            ["mine", "addon", "helm", "aws, azure", "false", "0.1.0"]
        );
    }
}
