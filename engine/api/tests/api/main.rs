//! The API driven in-process (`oneshot`, no socket) over a real redb file.

mod clusters;
mod fleet;
mod foundation;
mod policies;
mod profiles;
mod providers;
mod rollouts;
mod support;
mod templates;
mod workflows;
