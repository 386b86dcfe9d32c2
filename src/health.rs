//! Health and metrics HTTP: the operator's `/metrics`, `/healthz` (liveness) and `/readyz`.
//!
//! `/readyz` turns true once the watch has listed every resource, so a rollout waits for
//! a replica that can act. `/healthz` turns false when the controller loop has stopped
//! making progress: a sync is overdue by more than the stall timeout and no reconcile
//! has started or finished for as long, or the loop has ended.

use crate::{memo::Memos, metrics::Metrics};
use axum::{Router, extract::State, http::StatusCode, response::IntoResponse, routing::get};
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::time::Instant;

/// Shared state of the endpoints.
#[derive(Clone)]
pub struct Health {
    /// Metrics to expose.
    pub metrics: Arc<Metrics>,
    /// Set once the watch has listed the resources.
    pub ready: Arc<AtomicBool>,
    /// Progress of the controller loop.
    pub liveness: Arc<Liveness>,
}

/// Whether the controller loop still makes progress.
#[derive(Debug)]
pub struct Liveness {
    memos: Arc<Memos>,
    last_progress: Mutex<Instant>,
    stall_after: Duration,
    stopped: AtomicBool,
}

impl Liveness {
    /// Tracks the resources in `memos`; a loop is stalled after `stall_after` without progress.
    pub fn new(memos: Arc<Memos>, stall_after: Duration) -> Self {
        Liveness {
            memos,
            last_progress: Mutex::new(Instant::now()),
            stall_after,
            stopped: AtomicBool::new(false),
        }
    }

    /// A reconcile started or finished.
    pub fn progressed(&self) {
        *self.last_progress.lock().unwrap_or_else(|p| p.into_inner()) = Instant::now();
    }

    /// The controller loop has ended; the process is about to exit.
    pub fn stop(&self) {
        self.stopped.store(true, Ordering::Relaxed);
    }

    /// `Err` with the reason when the loop is not live.
    pub fn check(&self, now: Instant) -> Result<(), String> {
        if self.stopped.load(Ordering::Relaxed) {
            return Err("controller loop stopped".into());
        }
        let last = *self.last_progress.lock().unwrap_or_else(|p| p.into_inner());
        if stalled(self.memos.earliest_due(), last, now, self.stall_after) {
            return Err(format!(
                "no reconcile for {}s while a sync is overdue",
                now.saturating_duration_since(last).as_secs()
            ));
        }
        Ok(())
    }
}

/// Stalled: some sync is overdue by more than `stall_after`, and no reconcile has
/// started or finished for as long. Idle with nothing due is not stalled.
pub fn stalled(
    earliest_due: Option<Instant>,
    last_progress: Instant,
    now: Instant,
    stall_after: Duration,
) -> bool {
    earliest_due.is_some_and(|due| now.saturating_duration_since(due) > stall_after)
        && now.saturating_duration_since(last_progress) > stall_after
}

/// The router serving the three endpoints.
pub fn router(health: Health) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
        .with_state(health)
}

async fn metrics(State(h): State<Health>) -> impl IntoResponse {
    (
        [(
            "content-type",
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        h.metrics.encode(),
    )
}

async fn healthz(State(h): State<Health>) -> impl IntoResponse {
    match h.liveness.check(Instant::now()) {
        Ok(()) => (StatusCode::OK, "ok".to_string()),
        Err(why) => (StatusCode::SERVICE_UNAVAILABLE, why),
    }
}

async fn readyz(State(h): State<Health>) -> impl IntoResponse {
    if h.ready.load(Ordering::Relaxed) {
        (StatusCode::OK, "ok")
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "watch has not listed the resources yet",
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::memo::Memo;

    const STALL: Duration = Duration::from_secs(600);

    #[test]
    fn stalled_needs_overdue_work_and_no_progress() {
        let t0 = Instant::now();
        let at = |s: u64| t0 + Duration::from_secs(s);
        assert!(!stalled(None, t0, at(10_000), STALL), "idle with nothing due");
        assert!(
            !stalled(Some(at(0)), at(500), at(700), STALL),
            "reconciles still happen"
        );
        assert!(
            !stalled(Some(at(200)), t0, at(700), STALL),
            "overdue for only 500 s"
        );
        assert!(stalled(Some(at(0)), t0, at(700), STALL));
        assert!(!stalled(Some(at(800)), t0, at(700), STALL), "due in the future");
    }

    #[tokio::test]
    async fn healthz_and_readyz_answer_for_the_loop() {
        let memos = Arc::new(Memos::default());
        let liveness = Arc::new(Liveness::new(memos.clone(), STALL));
        let now = Instant::now();
        assert_eq!(liveness.check(now), Ok(()));
        memos.put(
            "uid-1",
            Memo {
                generation: Some(1),
                next_due: now,
                failures: 0,
            },
        );
        let later = now + Duration::from_secs(601);
        let err = liveness.check(later + Duration::from_secs(1)).unwrap_err();
        assert!(err.contains("while a sync is overdue"), "{err}");
        liveness.stop();
        assert_eq!(liveness.check(now), Err("controller loop stopped".to_string()));

        let health = Health {
            metrics: Arc::new(Metrics::default()),
            ready: Arc::new(AtomicBool::new(false)),
            liveness,
        };
        let ready = readyz(State(health.clone())).await.into_response();
        assert_eq!(ready.status(), StatusCode::SERVICE_UNAVAILABLE);
        health.ready.store(true, Ordering::Relaxed);
        let ready = readyz(State(health.clone())).await.into_response();
        assert_eq!(ready.status(), StatusCode::OK);
        let live = healthz(State(health)).await.into_response();
        assert_eq!(live.status(), StatusCode::SERVICE_UNAVAILABLE);
    }
}
