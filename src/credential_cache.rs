//! One cached credential per keyless source, shared by every resource: refreshed ahead of
//! expiry, single-flight (the first caller exchanges, the others wait for its answer), with
//! backoff after a failed exchange, and a chain that tries the sources in the SDKs' order.

use crate::credentials::Credentials;
use crate::error::{CredentialsProblem, Error, Result};
use crate::keyless::{self, Issued, Source};
use crate::metrics::Metrics;
use std::sync::Arc;
use std::time::{Duration, SystemTime};
use tokio::sync::Mutex;
use tracing::{info, warn};

/// The SDKs refresh 40 min (Go) to 2 h (Python) before expiry; short-lived credentials get a
/// third of their lifetime instead, so 30 s credentials refresh with 10 s left.
const MAX_MARGIN: Duration = Duration::from_secs(40 * 60);
/// Longest wait between failed exchanges of one source.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

/// Whether credentials fetched at `fetched` and expiring at `expires` should be replaced `now`.
pub fn refresh_due(now: jiff::Timestamp, fetched: jiff::Timestamp, expires: Option<jiff::Timestamp>) -> bool {
    let Some(expires) = expires else {
        return false;
    };
    let lifetime = expires.duration_since(fetched).unsigned_abs();
    let margin = (lifetime / 3).min(MAX_MARGIN);
    let left = expires.duration_since(now);
    left.is_negative() || left.unsigned_abs() <= margin
}

/// Delay before the next exchange after `failures` consecutive failures: 1 s doubling to a minute.
pub fn backoff(failures: u32) -> Duration {
    let exp = failures.saturating_sub(1).min(6);
    Duration::from_secs(1u64 << exp).min(MAX_BACKOFF)
}

#[derive(Default)]
struct Slot {
    current: Option<(Issued, jiff::Timestamp)>,
    file_stamp: Option<SystemTime>,
    failures: u32,
    retry_at: Option<jiff::Timestamp>,
    last_error: Option<String>,
}

impl Slot {
    /// The cached credentials if they have not expired yet (refresh may be due already).
    fn unexpired(&self, now: jiff::Timestamp) -> Option<Credentials> {
        let (issued, _) = self.current.as_ref()?;
        issued
            .expires_at
            .is_none_or(|e| now < e)
            .then(|| issued.credentials.clone())
    }
}

/// One source and its cached credential.
pub struct CachedSource {
    source: Source,
    http: reqwest::Client,
    metrics: Arc<Metrics>,
    slot: Mutex<Slot>,
}

impl CachedSource {
    /// A cache for `source`, exchanging with `http`.
    pub fn new(source: Source, http: reqwest::Client, metrics: Arc<Metrics>) -> Self {
        CachedSource {
            source,
            http,
            metrics,
            slot: Mutex::default(),
        }
    }

    /// The source's kind (`PodIdentity`, `OIDC`, ...).
    pub fn kind(&self) -> &'static str {
        self.source.kind()
    }

    /// Valid credentials: cached, or exchanged now by this caller while concurrent callers wait.
    pub async fn get(&self) -> Result<Credentials> {
        let mut slot = self.slot.lock().await;
        let now = jiff::Timestamp::now();
        let stamp = keyless::file_stamp(&self.source);
        if let Some((issued, fetched)) = &slot.current
            && !refresh_due(now, *fetched, issued.expires_at)
            && stamp == slot.file_stamp
        {
            return Ok(issued.credentials.clone());
        }
        if let Some(at) = slot.retry_at
            && now < at
        {
            // Backing off: still-valid credentials stay in use; otherwise the last failure.
            return slot
                .unexpired(now)
                .ok_or_else(|| self.error(slot.last_error.clone().unwrap_or_default()));
        }
        match keyless::exchange(&self.source, &self.http).await {
            Ok(issued) => {
                let kind = self.kind();
                if let Some(e) = issued.expires_at {
                    self.metrics.credential_expiry(kind, e.as_second());
                    info!(source = kind, expires_at = %e, "obtained temporary credentials");
                }
                self.metrics.credential_refresh(kind, "ok");
                let creds = issued.credentials.clone();
                *slot = Slot {
                    current: Some((issued, now)),
                    file_stamp: stamp,
                    ..Slot::default()
                };
                Ok(creds)
            }
            Err(e) => {
                self.metrics.credential_refresh(self.kind(), "error");
                slot.failures += 1;
                let wait = backoff(slot.failures);
                slot.retry_at = now.checked_add(wait).ok();
                let msg = match &e {
                    Error::Credentials { message, .. } => message.clone(),
                    other => other.to_string(),
                };
                warn!(source = self.kind(), error = %msg, retry_in = ?wait, "credential exchange failed");
                slot.last_error = Some(msg.clone());
                slot.unexpired(now).ok_or_else(|| self.error(msg))
            }
        }
    }

    /// Drops the cached credential if it is still the one with this access key (ModelArts
    /// refused it), so the next [`CachedSource::get`] exchanges again; no backoff applies.
    pub async fn invalidate(&self, access_key: &str) {
        let mut slot = self.slot.lock().await;
        if let Some((
            Issued {
                credentials: Credentials::AkSk { access_key: ak, .. },
                ..
            },
            _,
        )) = &slot.current
            && ak == access_key
        {
            slot.current = None;
            slot.retry_at = None;
        }
    }

    fn error(&self, msg: String) -> Error {
        Error::Credentials {
            problem: CredentialsProblem::ExchangeFailed,
            message: if msg.starts_with(self.kind()) {
                msg
            } else {
                format!("{}: {msg}", self.kind())
            },
        }
    }
}

/// The operator's keyless sources, in chain order.
#[derive(Clone, Default)]
pub struct Keyless {
    sources: Vec<Arc<CachedSource>>,
}

impl Keyless {
    /// Caches for these sources (in chain order).
    pub fn new(sources: Vec<Source>, http: reqwest::Client, metrics: Arc<Metrics>) -> Self {
        Keyless {
            sources: sources
                .into_iter()
                .map(|s| Arc::new(CachedSource::new(s, http.clone(), metrics.clone())))
                .collect(),
        }
    }

    /// Whether any source is configured.
    pub fn is_empty(&self) -> bool {
        self.sources.is_empty()
    }

    /// The configured kinds, in chain order.
    pub fn kinds(&self) -> Vec<&'static str> {
        self.sources.iter().map(|s| s.kind()).collect()
    }

    /// The source of this kind (`spec.credentialSource`), if configured.
    pub fn source(&self, kind: &str) -> Option<Arc<CachedSource>> {
        self.sources
            .iter()
            .find(|s| s.kind().eq_ignore_ascii_case(kind))
            .cloned()
    }

    /// The first source that gives credentials; the error lists every source tried and why.
    pub async fn first(&self) -> Result<(Credentials, Arc<CachedSource>)> {
        let mut why = Vec::new();
        for s in &self.sources {
            match s.get().await {
                Ok(c) => return Ok((c, s.clone())),
                Err(Error::Credentials { message, .. }) => why.push(message),
                Err(e) => why.push(format!("{}: {e}", s.kind())),
            }
        }
        Err(Error::Credentials {
            problem: CredentialsProblem::ExchangeFailed,
            message: if why.is_empty() {
                "no keyless credential source is configured".into()
            } else {
                format!(
                    "no credential source worked (tried {}): {}",
                    self.kinds().join(", "),
                    why.join("; ")
                )
            },
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: i64) -> jiff::Timestamp {
        jiff::Timestamp::from_second(1_764_320_000 + s).expect("time")
    }

    #[test]
    fn short_credentials_refresh_with_a_third_of_their_life_left() {
        // 30 s credentials fetched at 0: fine at 19 s, due from 20 s (10 s left), and after expiry.
        assert!(!refresh_due(t(19), t(0), Some(t(30))));
        assert!(refresh_due(t(20), t(0), Some(t(30))));
        assert!(refresh_due(t(31), t(0), Some(t(30))));
    }

    #[test]
    fn long_credentials_refresh_forty_minutes_ahead_like_the_go_sdk() {
        let six_h = 6 * 3600;
        assert!(!refresh_due(t(six_h - 41 * 60), t(0), Some(t(six_h))));
        assert!(refresh_due(t(six_h - 40 * 60), t(0), Some(t(six_h))));
        // A permanent key (a profile file) never expires.
        assert!(!refresh_due(t(10 * six_h), t(0), None));
    }

    #[test]
    fn failed_exchanges_back_off_to_a_minute() {
        let got: Vec<u64> = (1..=9).map(|n| backoff(n).as_secs()).collect();
        assert_eq!(got, [1, 2, 4, 8, 16, 32, 60, 60, 60]);
    }
}
