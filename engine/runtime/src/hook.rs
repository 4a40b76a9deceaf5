//! Domain reactions to transitions, committed with them: the server records what runs learn
//! about clusters (status, applied stack, events) and announces run status changes, inside the
//! same transaction as the transition, so a crash can never separate the two.

use fleetplane_store::{RunHeader, StoreError, WriteOps};
use fleetplane_workflow::run::{JournalEntry, RunStatus};
use fleetplane_workflow::{Effect, Event, RunState};
use jiff::Timestamp;

/// One applied event of one run, as the hook sees it.
#[derive(Debug)]
pub struct Applied<'a> {
    /// The run's header (project, the cluster it locks) after the event.
    pub header: &'a RunHeader,
    /// The run's state after the event.
    pub state: &'a RunState,
    /// The status before the event (`Pending` for a run that just started).
    pub previous: RunStatus,
    /// The event applied.
    pub event: &'a Event,
    /// The journal entries the event produced.
    pub journal: &'a [JournalEntry],
    /// The batch's instant.
    pub now: Timestamp,
}

/// Reacts to transitions inside the batch's transaction. Implementations must be
/// deterministic in what they write for the same transition and must not fail for domain
/// reasons (log and carry on): an error aborts the whole batch, which is retried.
pub trait TransitionHook: Send + Sync + 'static {
    /// Called for every applied event, after the machine applied it, inside the transaction.
    ///
    /// # Errors
    /// Store failures only (the batch is not committed).
    fn applied(&self, w: &mut dyn WriteOps, t: &Applied<'_>) -> Result<(), StoreError>;

    /// Offered each external effect a transition produced, before it goes to the outbox. A
    /// hook that performs it inside the batch's transaction — a domain write that expects no
    /// answer, such as publishing an event — returns `true`: the effect then reaches neither
    /// the outbox nor the executor (performed exactly once, with the transition). The default
    /// performs nothing.
    ///
    /// # Errors
    /// Store failures only (the batch is not committed).
    fn perform(
        &self,
        _w: &mut dyn WriteOps,
        _run: &RunHeader,
        _effect: &Effect,
        _now: Timestamp,
    ) -> Result<bool, StoreError> {
        Ok(false)
    }

    /// Called once the batch committed: publish what [`TransitionHook::applied`] and
    /// [`TransitionHook::perform`] recorded.
    fn committed(&self) {}

    /// Called when the batch failed: forget what [`TransitionHook::applied`] recorded.
    fn aborted(&self) {}
}

/// The hook of a runtime without domain reactions (tests of the engine alone).
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHook;

impl TransitionHook for NoHook {
    fn applied(&self, _w: &mut dyn WriteOps, _t: &Applied<'_>) -> Result<(), StoreError> {
        Ok(())
    }
}
