//! `fleetplane audit …`.

use super::Ctx;
use crate::args::audit::{AuditCommand, AuditListArgs};
use crate::output::{Column, field, time};
use anyhow::Context as _;
use fleetplane_client::{AuditQuery, ListPage};
use serde_json::Value;

/// Table columns of audit events.
pub const COLUMNS: &[Column] = &[
    Column::new("SEQ", |v| field(v, "/seq")),
    Column::new("TIME", |v| time(v, "/time")),
    Column::new("ACTOR", |v| field(v, "/actor")),
    Column::new("ACTION", |v| field(v, "/action")),
    Column::new("RESOURCE", |v| field(v, "/resource")),
];

/// Runs `fleetplane audit …`.
///
/// # Errors
/// The API call fails or output cannot be written.
pub async fn run(ctx: &Ctx, cmd: AuditCommand) -> anyhow::Result<()> {
    match cmd {
        AuditCommand::List(args) => {
            let items = list(ctx, args).await.context("cannot list audit events")?;
            ctx.print_list(&items, COLUMNS)
        }
    }
}

async fn list(ctx: &Ctx, args: AuditListArgs) -> anyhow::Result<Vec<Value>> {
    let wanted = args.limit.map(|l| l as usize);
    let mut query = AuditQuery {
        actor: args.actor,
        action: args.action,
        resource: args.resource,
        project: None,
        since: args.since,
        until: args.until,
        limit: args.limit.map(|l| l.min(500)),
        continue_token: None,
    };
    let mut items = Vec::new();
    loop {
        let page: ListPage<Value> = ctx
            .client
            .get_as("/v1/audit-events", &query.to_query())
            .await?;
        items.extend(page.items);
        let more = wanted.is_none_or(|w| items.len() < w);
        match page.continue_token {
            Some(t) if more && Some(&t) != query.continue_token.as_ref() => {
                query.continue_token = Some(t)
            }
            _ => break,
        }
    }
    if let Some(w) = wanted {
        items.truncate(w);
    }
    Ok(items)
}
