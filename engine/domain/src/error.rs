//! Stable error codes and field-level problems shared by every layer.
//!
//! The API turns a [`DomainError`] into `application/problem+json` in exactly one place; the CLI,
//! the console and the Terraform provider show the same `code` and field paths.

use serde::{Deserialize, Serialize};
use std::fmt;

macro_rules! codes {
    ($( $(#[$doc:meta])* $name:ident = $status:literal ),+ $(,)?) => {
        /// A stable, machine-readable error code. Clients switch on these; never rename one.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
        pub enum ErrorCode { $( $(#[$doc])* $name ),+ }

        impl ErrorCode {
            /// Every code, for documentation and exhaustive tests.
            pub const ALL: &'static [ErrorCode] = &[$(ErrorCode::$name),+];

            /// The code as it appears on the wire (`"ProfileVersionLocked"`).
            pub fn as_str(self) -> &'static str {
                match self { $(ErrorCode::$name => stringify!($name)),+ }
            }

            /// The HTTP status this code is answered with.
            pub fn http_status(self) -> u16 {
                match self { $(ErrorCode::$name => $status),+ }
            }
        }
    };
}

codes! {
    /// The request is malformed or a field is invalid; `errors[]` names each field.
    ValidationFailed = 400,
    /// The object does not exist, or the caller may not know that it exists.
    NotFound = 404,
    /// No valid credentials were presented.
    Unauthorized = 401,
    /// The caller is authenticated but lacks the permission.
    Forbidden = 403,
    /// An object with that name (and version) already exists.
    AlreadyExists = 409,
    /// Too many requests; retry after the `Retry-After` header.
    RateLimited = 429,
    /// `If-Match` did not match the current `resourceVersion`.
    PreconditionFailed = 412,
    /// The request body exceeds the configured limit.
    PayloadTooLarge = 413,
    /// The request's content type is not accepted by this endpoint.
    UnsupportedMediaType = 415,
    /// The HTTP method is not allowed on this path.
    MethodNotAllowed = 405,
    /// A concurrent writer changed the object; re-read and retry.
    Conflict = 409,
    /// An unexpected server-side failure; the body never carries internals.
    Internal = 500,
    /// The server is not ready to serve (starting or shutting down).
    Unavailable = 503,
    /// A profile version's type or cloud type differs from the profile's.
    ProfileTypeMismatch = 400,
    /// The profile version is linked to a template and can no longer change.
    ProfileVersionLocked = 409,
    /// A standalone cluster uses the version, so it cannot be linked to a template.
    ProfileVersionUsedByStandaloneCluster = 409,
    /// A template or cluster still references the version.
    ProfileVersionInUse = 409,
    /// Layer values reference a variable the version does not define.
    UndefinedVariable = 400,
    /// Packs (name and version) that the catalog lacks.
    PackNotFound = 400,
    /// A policy linked to a template with clusters must keep a schedule.
    PolicyNeedsSchedule = 400,
    /// A template still links the policy.
    PolicyInUse = 409,
    /// A template's cloud type is fixed at creation.
    CloudTypeImmutable = 409,
    /// A template needs exactly one full or infra profile version.
    TemplateRequiresBaseProfile = 400,
    /// A profile's cloud type does not match the template's.
    CloudTypeMismatch = 400,
    /// A template needs exactly one maintenance policy.
    TemplateRequiresPolicy = 400,
    /// Clusters still have Pending variables for the current revision.
    VariablesPending = 409,
    /// The template still has clusters.
    TemplateInUse = 409,
    /// The cluster is already attached to a template.
    ClusterAlreadyAttached = 409,
    /// The cluster is managed by its template; change the template instead.
    ManagedByTemplate = 409,
    /// Every cluster already runs the template's revision.
    NothingToUpgrade = 409,
    /// Clusters of the template are updating.
    RolloutInProgress = 409,
    /// Kubernetes may not go down a minor version.
    KubernetesDowngrade = 409,
    /// A workflow definition version that a run used cannot change.
    WorkflowVersionInUse = 409,
    /// Another run is changing the cluster.
    ClusterBusy = 409,
    /// A cloud account still serves clusters.
    CloudAccountInUse = 409,
    /// The object is in a state that does not allow the action.
    InvalidState = 409,
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One problem with one field of the input, named by its path (`spec.schedules[1].cron`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldError {
    /// Path of the offending field, JSON-style (`spec.layers[2].values`); empty for the body.
    pub field: String,
    /// What is wrong, for a person.
    pub message: String,
}

impl FieldError {
    /// A problem with `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// A rule was broken: a stable code, a sentence for people, and the fields involved.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {detail}")]
pub struct DomainError {
    /// The stable code.
    pub code: ErrorCode,
    /// A sentence for people.
    pub detail: String,
    /// Every offending field (validation returns all problems at once).
    pub errors: Vec<FieldError>,
}

impl DomainError {
    /// An error with a code and a detail, no field.
    pub fn new(code: ErrorCode, detail: impl Into<String>) -> Self {
        Self {
            code,
            detail: detail.into(),
            errors: Vec::new(),
        }
    }

    /// An error with a code that concerns one field.
    pub fn at(code: ErrorCode, field: impl Into<String>, message: impl Into<String>) -> Self {
        let message = message.into();
        Self {
            code,
            detail: message.clone(),
            errors: vec![FieldError::new(field, message)],
        }
    }

    /// `ValidationFailed` carrying every field problem.
    pub fn validation(errors: Vec<FieldError>) -> Self {
        let detail = match errors.as_slice() {
            [one] if one.field.is_empty() => one.message.clone(),
            [one] => format!("{}: {}", one.field, one.message),
            many => format!("{} fields are invalid", many.len()),
        };
        Self {
            code: ErrorCode::ValidationFailed,
            detail,
            errors,
        }
    }

    /// `NotFound` for an object of `kind` named `name`.
    pub fn not_found(kind: &str, name: &str) -> Self {
        Self::new(ErrorCode::NotFound, format!("{kind} \"{name}\" not found"))
    }

    /// `AlreadyExists` for an object of `kind` named `name`.
    pub fn already_exists(kind: &str, name: &str) -> Self {
        Self::new(
            ErrorCode::AlreadyExists,
            format!("{kind} \"{name}\" already exists"),
        )
    }

    /// `Internal`, for failures that are not the caller's; `detail` is logged, not shown.
    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(ErrorCode::Internal, detail)
    }

    /// Extra fields to attach, keeping the code.
    pub fn with_errors(mut self, errors: Vec<FieldError>) -> Self {
        self.errors.extend(errors);
        self
    }
}

/// Collects field problems so validation can report all of them at once.
#[derive(Debug, Default, Clone)]
pub struct Problems {
    errors: Vec<FieldError>,
}

impl Problems {
    /// No problems yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a problem with `field`.
    pub fn push(&mut self, field: impl Into<String>, message: impl Into<String>) {
        self.errors.push(FieldError::new(field, message));
    }

    /// Records the problem of a `Result`, if any, and returns its value.
    pub fn check<T>(&mut self, r: Result<T, FieldError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.errors.push(e);
                None
            }
        }
    }

    /// Adds every problem of another collection.
    pub fn extend(&mut self, other: impl IntoIterator<Item = FieldError>) {
        self.errors.extend(other);
    }

    /// Whether nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.errors.is_empty()
    }

    /// The problems recorded so far.
    pub fn errors(&self) -> &[FieldError] {
        &self.errors
    }

    /// `Ok(())` when empty, else `ValidationFailed` with every problem.
    pub fn finish(self) -> Result<(), DomainError> {
        self.finish_with(ErrorCode::ValidationFailed)
    }

    /// `Ok(())` when empty, else an error with `code` and every problem.
    pub fn finish_with(self, code: ErrorCode) -> Result<(), DomainError> {
        if self.errors.is_empty() {
            return Ok(());
        }
        let mut e = DomainError::validation(self.errors);
        e.code = code;
        Err(e)
    }
}

/// Joins a path and a child field (`path("spec", "name")` is `spec.name`).
pub fn path(parent: &str, child: &str) -> String {
    if parent.is_empty() {
        child.to_owned()
    } else {
        format!("{parent}.{child}")
    }
}

/// Joins a path and an index (`index("spec.layers", 2)` is `spec.layers[2]`).
pub fn index(parent: &str, i: usize) -> String {
    format!("{parent}[{i}]")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_have_statuses() {
        for code in ErrorCode::ALL {
            let json = serde_json::to_string(code).unwrap();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
            assert!((400..600).contains(&code.http_status()), "{code}");
        }
        assert_eq!(ErrorCode::ProfileVersionLocked.http_status(), 409);
        assert_eq!(ErrorCode::UndefinedVariable.http_status(), 400);
    }

    #[test]
    fn problems_collect_every_field() {
        let mut p = Problems::new();
        p.push(index("spec.schedules", 1), "bad cron");
        p.push("metadata.name", "too long");
        let e = p.finish().unwrap_err();
        assert_eq!(e.code, ErrorCode::ValidationFailed);
        assert_eq!(e.errors.len(), 2);
        assert_eq!(e.errors[0].field, "spec.schedules[1]");
    }
}
