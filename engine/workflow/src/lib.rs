//! Fleetplane's durable workflow engine, pure core: workflow definitions (parsing, JSON Schema,
//! static checks, CEL expressions) and the run state machine `apply(state, def, event, now) ->
//! Transition`. No I/O: the runtime (persistence, timers, provider calls) is built on top.
//!
//! The contract for runtime authors is in `docs/workflows.md`.

pub mod builtin;
pub mod definition;
pub mod duration;
pub mod expr;
pub mod run;
pub mod schema;
pub mod validate;

pub use definition::{Definition, Purpose, Step, StepKind, StepPath, parse_definition};
pub use duration::Duration;
pub use run::{
    ChildOutcome, ChildSpec, Effect, Event, Item, JournalEntry, Principal, Record, RunError,
    RunState, RunStatus, Signal, Transition, apply, stuck_steps,
};
pub use schema::schema;
