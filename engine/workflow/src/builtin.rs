//! The built-in definitions (`workflows/*.yaml`), embedded so the server loads them at start
//! without a file system lookup. They are read-only on the server.

use crate::definition::{Definition, parse_definition};
use fleetplane_domain::DomainError;

/// Source of `deploy@1`.
pub const DEPLOY: &str = include_str!("../../../workflows/deploy.yaml");
/// Source of `stage-update@1`.
pub const STAGE_UPDATE: &str = include_str!("../../../workflows/stage-update.yaml");
/// Source of `rollout@1`.
pub const ROLLOUT: &str = include_str!("../../../workflows/rollout.yaml");

/// Source of `update@1`.
pub const UPDATE: &str = include_str!("../../../workflows/update.yaml");
/// Source of `delete@1`.
pub const DELETE: &str = include_str!("../../../workflows/delete.yaml");

/// The built-in sources by file name.
pub const SOURCES: [(&str, &str); 5] = [
    ("deploy.yaml", DEPLOY),
    ("stage-update.yaml", STAGE_UPDATE),
    ("rollout.yaml", ROLLOUT),
    ("update.yaml", UPDATE),
    ("delete.yaml", DELETE),
];

/// Parses and checks every built-in definition.
///
/// # Errors
/// The first definition's `ValidationFailed` (a bug: tests check they all validate).
pub fn builtin() -> Result<Vec<Definition>, DomainError> {
    SOURCES
        .iter()
        .map(|(_, src)| parse_definition(src.as_bytes()))
        .collect()
}
