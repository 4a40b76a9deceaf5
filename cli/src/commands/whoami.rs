//! `fleetplane whoami`.

use super::{Ctx, print};
use crate::args::OutputFormat;
use crate::output::{self, Column, field};
use anyhow::Context as _;
use serde_json::Value;

/// Table columns of the caller's grants (one row per role).
const COLUMNS: &[Column] = &[
    Column::new("USER", |v| field(v, "/user")),
    Column::new("ROLE", |v| field(v, "/role")),
    Column::new("PROJECT", |v| {
        let p = field(v, "/project");
        if p.is_empty() {
            "(tenant)".to_owned()
        } else {
            p
        }
    }),
];

/// Runs `fleetplane whoami`.
///
/// # Errors
/// The API call fails (401 without a valid key) or output cannot be written.
pub async fn run(ctx: &Ctx) -> anyhow::Result<()> {
    let me = ctx
        .client
        .get("/v1/whoami")
        .await
        .context("cannot ask the server who you are")?;
    match ctx.global.output {
        OutputFormat::Table => {
            let user = me.get("user").cloned().unwrap_or(Value::Null);
            let rows: Vec<Value> = me
                .get("grants")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|g| serde_json::json!({"user": user, "role": g.get("role"), "project": g.get("project")}))
                .collect();
            print(&output::table(&rows, COLUMNS))
        }
        format => print(&output::render_value(format, &me)?),
    }
}
