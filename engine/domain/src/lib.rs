//! Fleetplane's domain: the types and rules of profiles, policies, templates, clusters and
//! permissions, with no I/O. Everything here is deterministic and testable by tables.

pub mod authz;
mod cache;
pub mod cluster;
pub mod error;
pub mod meta;
pub mod policy;
pub mod profile;
pub mod template;

pub use error::{DomainError, ErrorCode, FieldError, Problems};
pub use meta::{LabelSelector, Labels, Metadata, NoStatus, Object};
