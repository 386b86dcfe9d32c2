//! What the operator remembers of each resource between reconciles, keyed by UID.
//!
//! The key is the UID, not the name: a resource deleted and created again under the
//! same name is a new object (its generation starts at 1 again) and must not inherit
//! the old one's due time or failure count.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
};
use tokio::time::Instant;

/// One resource's memory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Memo {
    /// `metadata.generation` the last reconcile acted on.
    pub generation: Option<i64>,
    /// When the next sync is due.
    pub next_due: Instant,
    /// Consecutive failed reconciles (sync or status write).
    pub failures: u32,
}

/// Every resource's memo, shared by reconciles, the health check and the sweeper.
#[derive(Debug, Default)]
pub struct Memos(Mutex<HashMap<String, Memo>>);

impl Memos {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Memo>> {
        // A panic while holding the lock leaves plain data behind; keep using it.
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The memo of the resource with this UID.
    pub fn get(&self, uid: &str) -> Option<Memo> {
        self.lock().get(uid).cloned()
    }

    /// Remembers a resource's memo.
    pub fn put(&self, uid: &str, memo: Memo) {
        self.lock().insert(uid.to_string(), memo);
    }

    /// Forgets every resource for which `keep` says no; returns how many were dropped.
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) -> usize {
        let mut m = self.lock();
        let before = m.len();
        m.retain(|uid, _| keep(uid));
        before - m.len()
    }

    /// The earliest due time of all resources, for the liveness check.
    pub fn earliest_due(&self) -> Option<Instant> {
        self.lock().values().map(|m| m.next_due).min()
    }
}
