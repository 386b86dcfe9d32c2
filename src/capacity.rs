//! Whether `--modelarts-qps` can sustain every resource's `syncInterval`, pure.
//!
//! Each resource needs `requests per sync ÷ syncInterval` requests per second (one per page
//! plus one `ShowNodePool`); their sum above the rate limit means every resource is really
//! synced less often than its status and spec promise. The operator says so with numbers.

use std::{
    collections::HashMap,
    sync::{Mutex, MutexGuard},
    time::Duration,
};

/// What one resource costs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Load {
    /// ModelArts requests per sync: pages + the node-pool read.
    pub requests_per_sync: u32,
    /// `spec.syncInterval`.
    pub interval: Duration,
}

impl Load {
    /// The cost of a resource not synced yet: one page and the node-pool read.
    pub fn first_guess(interval: Duration) -> Self {
        Load {
            requests_per_sync: 2,
            interval,
        }
    }

    fn rate(&self) -> f64 {
        f64::from(self.requests_per_sync) / self.interval.as_secs_f64().max(1.0)
    }
}

/// All resources' demand against the limit.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Verdict {
    /// Resources counted.
    pub resources: usize,
    /// Requests per second they need together.
    pub required_qps: f64,
    /// `--modelarts-qps`.
    pub qps: f64,
}

impl Verdict {
    /// True when the limit covers the demand.
    pub fn sustainable(&self) -> bool {
        self.required_qps <= self.qps
    }

    /// How many times longer than its interval a resource really waits, at least 1.
    pub fn stretch(&self) -> f64 {
        (self.required_qps / self.qps).max(1.0)
    }

    /// The warning for an unsustainable demand, with the numbers and what to change.
    pub fn warning(&self) -> String {
        format!(
            "--modelarts-qps {qps} cannot sustain the sync intervals: {n} resources need {req:.2} ModelArts requests/s \
             (pages + 1 per sync, divided by spec.syncInterval), so each is really synced about every {s:.1}x its interval; \
             raise --modelarts-qps to at least {min:.2}, lengthen spec.syncInterval, or shard resources across operators (--label-selector)",
            qps = self.qps,
            n = self.resources,
            req = self.required_qps,
            s = self.stretch(),
            min = self.required_qps,
        )
    }
}

/// Sums the loads against the limit.
pub fn assess(loads: impl IntoIterator<Item = Load>, qps: f64) -> Verdict {
    let (resources, required_qps) = loads
        .into_iter()
        .fold((0usize, 0f64), |(n, r), l| (n + 1, r + l.rate()));
    Verdict {
        resources,
        required_qps,
        qps,
    }
}

/// The last measured load of each resource, by UID, fed by reconciles.
#[derive(Debug, Default)]
pub struct Demand(Mutex<HashMap<String, Load>>);

impl Demand {
    fn lock(&self) -> MutexGuard<'_, HashMap<String, Load>> {
        self.0.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Records what a resource's last sync cost.
    pub fn record(&self, uid: &str, load: Load) {
        self.lock().insert(uid.to_string(), load);
    }

    /// The recorded load of a resource.
    pub fn get(&self, uid: &str) -> Option<Load> {
        self.lock().get(uid).copied()
    }

    /// Forgets resources for which `keep` says no.
    pub fn retain(&self, mut keep: impl FnMut(&str) -> bool) {
        self.lock().retain(|uid, _| keep(uid));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(requests: u32, secs: u64) -> Load {
        Load {
            requests_per_sync: requests,
            interval: Duration::from_secs(secs),
        }
    }

    #[test]
    fn the_issue_s_example_is_unsustainable_by_a_factor_of_three_and_a_third() {
        // 1,000 resources at 60 s, one page each (+1 node-pool read): 2000/60 = 33.3 req/s.
        let v = assess((0..1000).map(|_| load(2, 60)), 5.0);
        assert_eq!(v.resources, 1000);
        assert!((v.required_qps - 2000.0 / 60.0).abs() < 1e-9, "{v:?}");
        assert!(!v.sustainable());
        assert!((v.stretch() - 2000.0 / 60.0 / 5.0).abs() < 1e-9);
        let w = v.warning();
        assert!(
            w.contains("1000 resources need 33.33 ModelArts requests/s"),
            "{w}"
        );
        assert!(w.contains("every 6.7x its interval"), "{w}");
        assert!(w.contains("--modelarts-qps 5 "), "{w}");
    }

    #[test]
    fn a_sustainable_mix_and_the_empty_case() {
        let v = assess([load(2, 60), load(31, 300), load(2, 10)], 5.0);
        assert!((v.required_qps - (2.0 / 60.0 + 31.0 / 300.0 + 0.2)).abs() < 1e-9);
        assert!(v.sustainable());
        assert_eq!(v.stretch(), 1.0);
        let empty = assess([], 5.0);
        assert!(empty.sustainable() && empty.resources == 0);
    }

    #[test]
    fn demand_is_bounded_by_the_resources_kept() {
        let d = Demand::default();
        d.record("a", load(2, 60));
        d.record("b", load(3, 60));
        d.record("a", load(4, 60));
        d.retain(|uid| uid == "a");
        assert_eq!(d.get("a"), Some(load(4, 60)));
        assert_eq!(d.get("b"), None);
    }
}
