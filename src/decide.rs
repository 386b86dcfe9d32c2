//! The per-resource state machine, pure: what the last reconcile left (memo, stored
//! status) plus one sync's outcome and the clock → the status to write, the events its
//! change deserves, and when to look again. `reconcile` only carries these out.
//!
//! Every wait is bounded: failures back off exponentially up to `--max-backoff`, a
//! server's `Retry-After` can lengthen a wait but never past that cap, and no wait
//! exceeds [`MAX_REQUEUE`], so no time arithmetic downstream can overflow.

use crate::{
    crd::ModelArtsNodePoolStatus,
    memo::Memo,
    reason,
    status::{Outcome, Transition, next_status, transitions},
};
use jiff::Timestamp;
use std::time::Duration;
use tokio::time::Instant;

/// Longest wait ever handed to the scheduler: beyond any sane interval, far below
/// where `Instant + Duration` could overflow.
pub const MAX_REQUEUE: Duration = Duration::from_secs(7 * 24 * 3600);
/// First step of the failure backoff; it doubles per consecutive failure.
pub const BACKOFF_BASE: Duration = Duration::from_secs(5);
/// AK/SK lock after five failed signatures in a row, so authentication failures wait
/// at least this long (still within `--max-backoff`).
pub const AUTH_FAILURE_WAIT: Duration = Duration::from_secs(60);
/// Reason of the event emitted when a status write is refused.
pub const STATUS_WRITE_FAILED: &str = "StatusWriteFailed";

/// Operator-wide settings the decisions depend on.
#[derive(Debug, Clone, Copy)]
pub struct Policy {
    /// Longest `lastSyncTime` may go unrefreshed while nothing else changes.
    pub heartbeat: Duration,
    /// Longest wait between retries of a failing resource.
    pub max_backoff: Duration,
    /// How long fewer nodes than desired may be listed before `Healthy` turns False.
    pub desired_grace: Duration,
}

/// The wait left before a reconcile may sync again, or `None` to sync now. A reconcile
/// triggered by the operator's own status write (or any edit that leaves the
/// generation alone) waits for the due time; a spec change syncs at once.
pub fn wait_before_sync(memo: Option<&Memo>, generation: Option<i64>, now: Instant) -> Option<Duration> {
    let m = memo?;
    (m.generation == generation && now < m.next_due).then(|| m.next_due - now)
}

/// Consecutive failures so far; a new generation starts counting afresh.
pub fn failures_so_far(memo: Option<&Memo>, generation: Option<i64>) -> u32 {
    memo.filter(|m| m.generation == generation)
        .map_or(0, |m| m.failures)
}

/// What to do after one sync.
#[derive(Debug, Clone, PartialEq)]
pub struct Decision {
    /// The status to write, when it differs from the stored one.
    pub write: Option<ModelArtsNodePoolStatus>,
    /// Events the change deserves; publish them only once the write has succeeded,
    /// so a refused write cannot repeat them.
    pub events: Vec<Transition>,
    /// When to sync again.
    pub requeue: Duration,
    /// Consecutive failures, this sync included.
    pub failures: u32,
}

/// One sync's input to [`after_sync`].
#[derive(Debug, Clone, Copy)]
pub struct SyncResult<'a> {
    /// What the sync produced.
    pub outcome: &'a Outcome,
    /// The server's `Retry-After`, when it sent one.
    pub retry_after: Option<Duration>,
    /// `spec.syncInterval`, parsed.
    pub interval: Duration,
}

/// Decides the next status, events and requeue after a sync. `unit` is a uniform
/// sample from `[0, 1)` for jitter, so resources created together drift apart.
pub fn after_sync(
    stored: Option<&ModelArtsNodePoolStatus>,
    generation: Option<i64>,
    sync: SyncResult<'_>,
    failures_before: u32,
    now: Timestamp,
    policy: &Policy,
    unit: f64,
) -> Decision {
    let next = next_status(stored, generation, sync.outcome, now, policy);
    let events = transitions(stored, &next);
    let write = (!stored.is_some_and(|s| crate::trim::same(&next, s))).then_some(next);
    let interval = sync.interval.min(MAX_REQUEUE);
    let (requeue, failures) = match sync.outcome {
        Outcome::Synced(_) => (spread(interval, 0.1, unit), 0),
        Outcome::Suspended => (interval, 0),
        Outcome::Failed { reason, .. } => {
            let failures = failures_before.saturating_add(1);
            (
                failure_backoff(reason, failures, sync.retry_after, policy.max_backoff, unit),
                failures,
            )
        }
    };
    Decision {
        write,
        events,
        requeue,
        failures,
    }
}

/// After a refused status write: the wait before trying again (the whole sync, since
/// nothing of it is kept), the failure count, and the Warning event that says so.
pub fn after_write_failure(
    failures_before: u32,
    error: &str,
    policy: &Policy,
    unit: f64,
) -> (Duration, u32, Transition) {
    let (wait, failures) = next_failure(failures_before, STATUS_WRITE_FAILED, policy, unit);
    let event = Transition {
        warning: true,
        reason: STATUS_WRITE_FAILED,
        note: format!(
            "Status could not be written ({error}); retrying in {}s. Node data in status is from the last successful write.",
            wait.as_secs()
        ),
    };
    (wait, failures, event)
}

/// One more consecutive failure with `reason`: the wait before the next try, and the new count.
pub fn next_failure(failures_before: u32, reason: &str, policy: &Policy, unit: f64) -> (Duration, u32) {
    let failures = failures_before.saturating_add(1);
    (
        failure_backoff(reason, failures, None, policy.max_backoff, unit),
        failures,
    )
}

/// Exponential backoff per resource: 5 s doubling to `max`, ±20 % jitter, at least a
/// minute for authentication failures, at least `Retry-After` — and never above `max`.
pub fn failure_backoff(
    reason: &str,
    failures: u32,
    retry_after: Option<Duration>,
    max: Duration,
    unit: f64,
) -> Duration {
    let max = max.min(MAX_REQUEUE);
    let exp = BACKOFF_BASE.saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let mut wait = spread(exp.min(max), 0.2, unit).min(max);
    if reason == reason::AUTHENTICATION_FAILED {
        wait = wait.max(AUTH_FAILURE_WAIT.min(max));
    }
    if let Some(ra) = retry_after {
        wait = wait.max(ra.min(max));
    }
    wait
}

/// `base` scaled by a factor in `[1 - fraction, 1 + fraction]` chosen by `unit`,
/// saturating at [`MAX_REQUEUE`] instead of panicking.
fn spread(base: Duration, fraction: f64, unit: f64) -> Duration {
    let unit = if unit.is_finite() {
        unit.clamp(0.0, 1.0)
    } else {
        0.5
    };
    let factor = 1.0 - fraction + 2.0 * fraction * unit;
    Duration::try_from_secs_f64(base.as_secs_f64() * factor)
        .unwrap_or(MAX_REQUEUE)
        .min(MAX_REQUEUE)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::condition;

    const POLICY: Policy = Policy {
        heartbeat: Duration::from_secs(300),
        max_backoff: Duration::from_secs(300),
        desired_grace: Duration::from_secs(1800),
    };
    const MIN_JITTER: f64 = 0.0;
    const MAX_JITTER: f64 = 0.999_999;

    fn now() -> Timestamp {
        "2026-01-01T00:00:00Z".parse().unwrap()
    }

    fn failed(reason: &str) -> Outcome {
        Outcome::Failed {
            reason: reason.into(),
            message: "boom".into(),
        }
    }

    fn sync(outcome: &Outcome, retry_after: Option<Duration>) -> SyncResult<'_> {
        SyncResult {
            outcome,
            retry_after,
            interval: Duration::from_secs(60),
        }
    }

    #[test]
    fn own_writes_wait_for_the_due_time_but_a_spec_change_does_not() {
        let t0 = Instant::now();
        let memo = Memo {
            generation: Some(3),
            next_due: t0 + Duration::from_secs(40),
            failures: 2,
        };
        assert_eq!(
            wait_before_sync(Some(&memo), Some(3), t0 + Duration::from_secs(10)),
            Some(Duration::from_secs(30))
        );
        assert_eq!(
            wait_before_sync(Some(&memo), Some(3), t0 + Duration::from_secs(40)),
            None
        );
        assert_eq!(
            wait_before_sync(Some(&memo), Some(4), t0),
            None,
            "generation changed mid-backoff"
        );
        assert_eq!(
            wait_before_sync(None, Some(1), t0),
            None,
            "nothing remembered: sync"
        );
        assert_eq!(failures_so_far(Some(&memo), Some(3)), 2);
        assert_eq!(
            failures_so_far(Some(&memo), Some(4)),
            0,
            "a new spec is a new start"
        );
    }

    #[test]
    fn failures_back_off_exponentially_within_the_cap() {
        // 5 s · 2^(n-1) at the low and high jitter ends, capped at 300 s.
        for (n, low, high) in [(1, 4.0, 6.0), (2, 8.0, 12.0), (4, 32.0, 48.0), (6, 128.0, 192.0)] {
            let lo = failure_backoff("Throttled", n, None, POLICY.max_backoff, MIN_JITTER).as_secs_f64();
            let hi = failure_backoff("Throttled", n, None, POLICY.max_backoff, MAX_JITTER).as_secs_f64();
            assert!(
                (lo - low).abs() < 0.01 && (hi - high).abs() < 0.01,
                "{n}: {lo} {hi}"
            );
        }
        for n in [7, 10, 33, u32::MAX] {
            let w = failure_backoff("Throttled", n, None, POLICY.max_backoff, MAX_JITTER);
            assert!(w <= Duration::from_secs(300), "{n}: {w:?}");
        }
        let auth = failure_backoff("AuthenticationFailed", 1, None, POLICY.max_backoff, MIN_JITTER);
        assert_eq!(auth, Duration::from_secs(60));
        let small_cap = failure_backoff(
            "AuthenticationFailed",
            1,
            None,
            Duration::from_secs(20),
            MIN_JITTER,
        );
        assert_eq!(
            small_cap,
            Duration::from_secs(20),
            "the cap wins over the lockout guard"
        );
    }

    #[test]
    fn retry_after_lengthens_a_wait_but_never_past_the_cap() {
        let ra = |secs| {
            failure_backoff(
                "Throttled",
                1,
                Some(Duration::from_secs(secs)),
                POLICY.max_backoff,
                0.5,
            )
        };
        assert_eq!(ra(42), Duration::from_secs(42));
        assert_eq!(ra(3600), Duration::from_secs(300));
        assert_eq!(ra(u64::MAX), Duration::from_secs(300));
        let huge = failure_backoff("Throttled", 1, Some(Duration::MAX), Duration::MAX, 0.5);
        assert_eq!(huge, MAX_REQUEUE, "even an unbounded --max-backoff is bounded");
        // What the reconciler does with it must not overflow.
        assert!(Instant::now().checked_add(huge).is_some());
    }

    #[test]
    fn a_failed_sync_keeps_counting_and_a_success_resets() {
        let fail = failed("ModelArtsUnavailable");
        let d = after_sync(None, Some(1), sync(&fail, None), 3, now(), &POLICY, 0.5);
        assert_eq!(d.failures, 4);
        assert_eq!(d.requeue, Duration::from_secs(40));
        let stored = d.write.clone().expect("first status is written");
        assert_eq!(
            d.events.iter().map(|e| e.reason).collect::<Vec<_>>(),
            ["SyncFailed"]
        );
        let again = after_sync(Some(&stored), Some(1), sync(&fail, None), 4, now(), &POLICY, 0.5);
        assert_eq!(again.write, None, "the same failure writes nothing");
        assert!(again.events.is_empty());
        let ok = Outcome::Synced(Box::default());
        let d = after_sync(Some(&stored), Some(1), sync(&ok, None), 4, now(), &POLICY, 0.5);
        assert_eq!(d.failures, 0);
        assert_eq!(d.requeue, Duration::from_secs(60));
        let written = d.write.expect("recovery is written");
        assert_eq!(
            condition(&written, "Synced").map(|c| c.status.as_str()),
            Some("True")
        );
        assert_eq!(
            d.events.iter().map(|e| e.reason).collect::<Vec<_>>(),
            ["SyncRecovered"]
        );
    }

    #[test]
    fn an_absurd_retry_after_is_held_to_the_cap() {
        let fail = failed("Throttled");
        let d = after_sync(
            None,
            Some(1),
            sync(&fail, Some(Duration::from_secs(u64::MAX))),
            0,
            now(),
            &POLICY,
            0.5,
        );
        assert_eq!(d.requeue, Duration::from_secs(300));
    }

    #[test]
    fn a_refused_write_backs_off_and_says_so() {
        let (wait, failures, ev) = after_write_failure(0, "admission webhook denied", &POLICY, MIN_JITTER);
        assert_eq!((wait, failures), (Duration::from_secs(4), 1));
        assert!(ev.warning);
        assert_eq!(ev.reason, "StatusWriteFailed");
        assert!(
            ev.note.contains("admission webhook denied") && ev.note.contains("retrying in 4s"),
            "{}",
            ev.note
        );
        let (wait, failures, _) = after_write_failure(5, "x", &POLICY, MIN_JITTER);
        assert_eq!((wait, failures), (Duration::from_secs(128), 6));
    }

    #[test]
    fn intervals_are_bounded() {
        let ok = Outcome::Synced(Box::default());
        let long = SyncResult {
            outcome: &ok,
            retry_after: None,
            interval: Duration::from_secs(u64::MAX),
        };
        let d = after_sync(None, Some(1), long, 0, now(), &POLICY, MAX_JITTER);
        assert_eq!(d.requeue, MAX_REQUEUE);
    }
}
