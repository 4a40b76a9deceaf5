//! Performing the effects that leave the runtime: provider calls, renders, observations,
//! window and item resolution, published events.

use fleetplane_workflow::{Effect, Event};
use futures::future::BoxFuture;

/// Performs external effects and answers them. Implementations must be safe to call twice
/// with the same effect (after a crash the outbox is performed again): provider calls carry
/// their idempotency key, emitted events their `key`.
pub trait EffectExecutor: Send + Sync + 'static {
    /// Performs `effect` for `run` and returns the event answering it (`None` for effects that
    /// expect no answer, such as `Emit`). Failures are answers too (`StepFailed`), so this
    /// never errors.
    fn perform(&self, run: &str, effect: Effect) -> BoxFuture<'static, Option<Event>>;
}

/// Whether the runtime performs `effect` itself, inside the transaction that produced it
/// (timers, child runs, signals to children, notifications to parents), rather than through
/// the outbox and an [`EffectExecutor`].
pub fn is_internal(effect: &Effect) -> bool {
    matches!(
        effect,
        Effect::SetTimer { .. }
            | Effect::CancelTimer { .. }
            | Effect::StartChild(_)
            | Effect::SignalChild { .. }
            | Effect::NotifyParent { .. }
    )
}
