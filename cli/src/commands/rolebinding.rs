//! `fleetplane rolebinding …`.

use super::{Ctx, named, note};
use crate::args::rolebinding::RoleBindingCommand;
use crate::output::{Column, field};
use fleetplane_client::{Metadata, RoleBinding, RoleBindingSpec, encode_segment};

/// Table columns of role bindings.
pub const COLUMNS: &[Column] = &[
    Column::new("NAME", |v| field(v, "/metadata/name")),
    Column::new("USER", |v| field(v, "/spec/user")),
    Column::new("ROLE", |v| field(v, "/spec/role")),
    Column::new("PROJECT", |v| field(v, "/spec/project")),
];

fn path(name: &str) -> String {
    format!("/v1/role-bindings/{}", encode_segment(name))
}

/// The project a role is bound in: project roles need one, tenant roles take none.
///
/// # Errors
/// A project role without a project.
fn binding_project(role: &str, project: Option<&str>) -> anyhow::Result<Option<String>> {
    if role.starts_with("project-") {
        let p = project.ok_or_else(|| {
            anyhow::anyhow!(
                "role {role} is bound in a project: pass --project or set FLEETPLANE_PROJECT"
            )
        })?;
        Ok(Some(p.to_owned()))
    } else {
        if let Some(p) = project {
            note(&format!(
                "note: {role} is tenant-wide; project {p:?} is not used"
            ));
        }
        Ok(None)
    }
}

/// Runs `fleetplane rolebinding …`.
///
/// # Errors
/// The API call fails or output cannot be written.
pub async fn run(ctx: &Ctx, cmd: RoleBindingCommand) -> anyhow::Result<()> {
    match cmd {
        RoleBindingCommand::List(args) => {
            let items = ctx.list("/v1/role-bindings", &args).await?;
            ctx.print_list(&items, COLUMNS)
        }
        RoleBindingCommand::Get { name } => {
            ctx.show(&path(&name), &named("role binding", &name), COLUMNS)
                .await
        }
        RoleBindingCommand::Create(args) => {
            let project = binding_project(&args.role, ctx.settings.project.as_deref())?;
            let binding = RoleBinding {
                kind: None,
                metadata: Metadata::named(&args.name),
                spec: RoleBindingSpec {
                    user: args.user,
                    role: args.role,
                    project,
                },
                status: None,
            };
            let body = serde_json::to_value(&binding)?;
            ctx.create(
                &path(&args.name),
                &body,
                &named("role binding", &args.name),
                COLUMNS,
            )
            .await
        }
        RoleBindingCommand::Delete(args) => {
            ctx.delete(&path(&args.name), &args, &named("role binding", &args.name))
                .await
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_role_decides_the_scope() {
        assert_eq!(
            binding_project("project-viewer", Some("web")).unwrap(),
            Some("web".into())
        );
        assert!(binding_project("project-admin", None).is_err());
        assert_eq!(binding_project("tenant-admin", Some("web")).unwrap(), None);
        assert_eq!(binding_project("tenant-viewer", None).unwrap(), None);
    }
}
