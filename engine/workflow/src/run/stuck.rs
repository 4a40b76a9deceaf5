//! Stuck detection: a step running far beyond what its kind is expected to take.

use super::{Awaiting, RunState};
use crate::definition::{Definition, StepKind, StepPath, WaitFor};
use crate::duration::Duration;
use jiff::Timestamp;
use serde::{Deserialize, Serialize};

/// How late a timer may fire before its step counts as stuck (the runtime lost it).
pub const TIMER_GRACE: Duration = Duration::from_secs(5 * 60);
/// How long a reply to one call (provider, render, observe, resolve) is expected to take.
pub const CALL_EXPECTED: Duration = Duration::from_secs(15 * 60);
/// How long an approval without expiry is expected to be awaited.
pub const APPROVAL_EXPECTED: Duration = Duration::from_secs(24 * 3600);

/// A step flagged as stuck.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Stuck {
    /// The step.
    pub step: StepPath,
    /// Its kind.
    pub kind: String,
    /// Since when it waits for what it waits for.
    pub since: Timestamp,
    /// What it was expected to take.
    pub expected: Duration,
    /// Why it is flagged, for people.
    pub reason: String,
}

fn elapsed(since: Timestamp, now: Timestamp) -> u64 {
    let ms = now.duration_since(since).as_millis();
    u64::try_from(ms).unwrap_or(0)
}

/// The expected duration of a step of this kind, from its definition: the longest it can take
/// when everything works (`None` for fan-outs, whose children are judged one by one).
pub fn expected_duration(kind: &StepKind) -> Option<Duration> {
    let d = |ms: u64| Some(Duration::from_millis(ms));
    match kind {
        StepKind::Provider(p) => {
            let r = &p.retry;
            let retries = r.maximum_total.map_or_else(
                || {
                    r.maximum_interval
                        .as_millis()
                        .saturating_mul(u64::from(r.maximum_attempts))
                },
                Duration::as_millis,
            );
            let calls = CALL_EXPECTED
                .as_millis()
                .saturating_mul(u64::from(r.maximum_attempts));
            let poll = p.poll.as_ref().map_or(3_600_000, |p| p.timeout.as_millis());
            d(retries.saturating_add(calls).saturating_add(poll))
        }
        StepKind::Render(_) => Some(CALL_EXPECTED),
        StepKind::Wait(w) => match (&w.for_, w.max_wait) {
            (WaitFor::Duration(x), _) => d(x.as_millis() + CALL_EXPECTED.as_millis()),
            (_, Some(m)) => d(m.as_millis() + CALL_EXPECTED.as_millis()),
            // Until an instant or a window: judged by their timers.
            _ => None,
        },
        StepKind::Soak(s) => d(s.duration.as_millis() + CALL_EXPECTED.as_millis()),
        StepKind::Gate(g) => d(g.timeout.as_millis() + CALL_EXPECTED.as_millis()),
        StepKind::Approve(a) => Some(a.expires.unwrap_or(APPROVAL_EXPECTED)),
        _ => None,
    }
}

/// The run's steps that are stuck at `now`: a call unanswered for longer than
/// [`CALL_EXPECTED`], a timer overdue by more than [`TIMER_GRACE`], or a step running longer
/// than [`expected_duration`]. Runs that are paused or finished are never stuck.
pub fn stuck_steps(state: &RunState, def: &Definition, now: Timestamp) -> Vec<Stuck> {
    if state.status.is_terminal() || state.paused.is_some() {
        return Vec::new();
    }
    let Some(a) = &state.active else {
        return Vec::new();
    };
    let Some(step) = def.step(&a.step) else {
        return Vec::new();
    };
    let flag = |since: Timestamp, expected: Duration, reason: String| Stuck {
        step: a.step.clone(),
        kind: a.kind.clone(),
        since,
        expected,
        reason,
    };
    let waited = elapsed(a.awaiting_since, now);
    let mut out = Vec::new();
    match &a.awaiting {
        Awaiting::Call { call } if waited > CALL_EXPECTED.as_millis() => out.push(flag(
            a.awaiting_since,
            CALL_EXPECTED,
            format!(
                "no reply to call {call} for {}",
                Duration::from_millis(waited)
            ),
        )),
        Awaiting::Timer { timer, at }
            if elapsed(*at, now) > TIMER_GRACE.as_millis() && now > *at =>
        {
            out.push(flag(
                *at,
                TIMER_GRACE,
                format!("timer {timer} is overdue since {at}"),
            ))
        }
        _ => {}
    }
    if out.is_empty()
        && let Some(expected) = expected_duration(&step.kind)
    {
        let ran = elapsed(a.started_at, now);
        if ran > expected.as_millis() {
            out.push(flag(
                a.started_at,
                expected,
                format!(
                    "running for {}, expected at most {expected}",
                    Duration::from_millis(ran)
                ),
            ));
        }
    }
    out
}
