//! Prometheus metrics: reconcile counts and latency, ModelArts paging, and per-pool
//! gauges (nodes by phase, resources) so dashboards need no kubectl.

use crate::{crd::ModelArtsNodePoolStatus, quantity::Quantity, status};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use std::{
    collections::{BTreeSet, HashMap},
    sync::{Mutex, atomic::AtomicU64},
};

/// Labels of reconcile outcomes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `synced`, `skipped`, `suspended`, or a failure reason.
    pub result: String,
}

/// Labels naming one custom resource.
/// Labels of the credential metrics: the keyless source and, for refreshes, the result.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct SourceLabels {
    /// `PodIdentity`, `OIDC`, `Metadata`, `File`.
    pub source: String,
    /// `ok` or `error` (refreshes only; empty for the expiry gauge).
    pub result: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PoolLabels {
    /// Namespace of the resource.
    pub namespace: String,
    /// Name of the resource.
    pub name: String,
}

/// Labels of per-phase node counts.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct PhaseLabels {
    /// Namespace of the resource.
    pub namespace: String,
    /// Name of the resource.
    pub name: String,
    /// `available`, `creating`, ...
    pub phase: String,
}

/// Labels of per-resource totals.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResourceLabels {
    /// Namespace of the resource.
    pub namespace: String,
    /// Name of the resource.
    pub name: String,
    /// `cpu`, `memory`, `nvidia.com/gpu`, ...
    pub resource: String,
    /// `capacity` or `available`.
    pub kind: String,
}

/// Records a reconcile's duration when dropped.
pub struct ReconcileTimer<'a> {
    histogram: &'a Histogram,
    started: std::time::Instant,
}

impl Drop for ReconcileTimer<'_> {
    fn drop(&mut self) {
        self.histogram.observe(self.started.elapsed().as_secs_f64());
    }
}

/// All metrics of the operator.
pub struct Metrics {
    registry: Registry,
    /// Reconciles by result.
    pub reconciles: Family<ResultLabels, Counter>,
    /// Reconcile latency in seconds.
    pub reconcile_duration: Histogram,
    /// ModelArts pages fetched.
    pub pages: Counter,
    /// ModelArts retries made.
    pub retries: Counter,
    /// Status writes made (an unchanged pool makes none).
    pub status_writes: Counter,
    /// Status writes the API server refused (the status itself cannot say so).
    pub status_write_failures: Counter,
    /// Events the API server refused.
    pub event_failures: Counter,
    /// Nodes per phase per pool.
    pub nodes: Family<PhaseLabels, Gauge>,
    /// Resource totals per pool (in base units: cores, bytes, cards).
    pub resources: Family<ResourceLabels, Gauge<f64, AtomicU64>>,
    /// 1 when the last sync of a pool succeeded.
    pub synced: Family<PoolLabels, Gauge>,
    /// Unix time of the last successful sync per pool, for staleness alerts.
    pub last_success: Family<PoolLabels, Gauge<f64, AtomicU64>>,
    /// Failed `ShowNodePool` reads by reason (the sync itself still succeeds).
    pub node_pool_read_failures: Family<ResultLabels, Counter>,
    /// How late each pool's last sync started after it was due (0 when on time).
    pub sync_lag: Family<PoolLabels, Gauge<f64, AtomicU64>>,
    /// ModelArts requests per second all resources' intervals need together.
    pub required_qps: Gauge<f64, AtomicU64>,
    /// `--modelarts-qps`, beside the demand.
    pub qps_limit: Gauge<f64, AtomicU64>,
    /// Desired node count per pool (`status.nodePool.desired`).
    pub desired: Family<PoolLabels, Gauge>,
    /// Nodes whose creation failed, per pool (`status.nodePool.creationFailed`).
    pub creation_failed: Family<PoolLabels, Gauge>,
    /// 1 while this replica runs the controller (holds the Lease, or election is off), else 0.
    pub leader: Gauge,
    /// Expiry (Unix seconds) of each keyless source's current credentials.
    pub credential_expiry: Family<SourceLabels, Gauge>,
    /// Credential exchanges by source and result.
    pub credential_refreshes: Family<SourceLabels, Counter>,
    /// Resource names exported per pool, so a deleted pool's series can be removed.
    exported: Mutex<HashMap<PoolLabels, BTreeSet<String>>>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("modelarts_operator");
        let reconciles = Family::<ResultLabels, Counter>::default();
        let reconcile_duration = Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0]);
        let pages = Counter::default();
        let retries = Counter::default();
        let status_writes = Counter::default();
        let status_write_failures = Counter::default();
        let event_failures = Counter::default();
        let nodes = Family::<PhaseLabels, Gauge>::default();
        let resources = Family::<ResourceLabels, Gauge<f64, AtomicU64>>::default();
        let synced = Family::<PoolLabels, Gauge>::default();
        let last_success = Family::<PoolLabels, Gauge<f64, AtomicU64>>::default();
        let desired = Family::<PoolLabels, Gauge>::default();
        let sync_lag = Family::<PoolLabels, Gauge<f64, AtomicU64>>::default();
        let node_pool_read_failures = Family::<ResultLabels, Counter>::default();
        registry.register(
            "nodepool_read_failures",
            "Failed node-pool (ShowNodePool) reads by reason",
            node_pool_read_failures.clone(),
        );
        let required_qps = Gauge::<f64, AtomicU64>::default();
        let qps_limit = Gauge::<f64, AtomicU64>::default();
        let creation_failed = Family::<PoolLabels, Gauge>::default();
        let leader = Gauge::default();
        let credential_expiry = Family::<SourceLabels, Gauge>::default();
        let credential_refreshes = Family::<SourceLabels, Counter>::default();
        registry.register(
            "credential_expiry_timestamp_seconds",
            "When the current temporary credentials of a keyless source expire",
            credential_expiry.clone(),
        );
        registry.register(
            "credential_refreshes",
            "Credential exchanges with a keyless source, by result",
            credential_refreshes.clone(),
        );
        registry.register("reconciles", "Reconciles by result", reconciles.clone());
        registry.register(
            "reconcile_duration_seconds",
            "Reconcile latency",
            reconcile_duration.clone(),
        );
        registry.register(
            "modelarts_pages",
            "ModelArts node-list pages fetched",
            pages.clone(),
        );
        registry.register("modelarts_retries", "ModelArts requests retried", retries.clone());
        registry.register("status_writes", "Status patches sent", status_writes.clone());
        registry.register(
            "status_write_failures",
            "Status patches the API server refused",
            status_write_failures.clone(),
        );
        registry.register(
            "event_failures",
            "Events the API server refused",
            event_failures.clone(),
        );
        registry.register("nodepool_nodes", "Nodes per phase", nodes.clone());
        registry.register(
            "nodepool_resources",
            "Resource totals in base units",
            resources.clone(),
        );
        registry.register(
            "nodepool_synced",
            "1 when the last sync succeeded",
            synced.clone(),
        );
        registry.register(
            "nodepool_last_successful_sync_timestamp_seconds",
            "Unix time of the last successful sync",
            last_success.clone(),
        );
        registry.register(
            "nodepool_sync_lag_seconds",
            "How late the last sync started after it was due",
            sync_lag.clone(),
        );
        registry.register(
            "modelarts_required_qps",
            "ModelArts requests per second the resources' sync intervals need",
            required_qps.clone(),
        );
        registry.register(
            "modelarts_qps_limit",
            "The --modelarts-qps rate limit",
            qps_limit.clone(),
        );
        registry.register(
            "nodepool_desired_nodes",
            "Desired node count of the node pool",
            desired.clone(),
        );
        registry.register(
            "nodepool_creation_failed_nodes",
            "Nodes whose creation failed, as the node pool reports",
            creation_failed.clone(),
        );
        registry.register(
            "leader",
            "1 while this replica runs the controller (leads, or election is off), 0 on a standby",
            leader.clone(),
        );
        Metrics {
            leader,
            credential_expiry,
            credential_refreshes,
            registry,
            reconciles,
            reconcile_duration,
            pages,
            retries,
            status_writes,
            status_write_failures,
            event_failures,
            nodes,
            resources,
            synced,
            last_success,
            desired,
            creation_failed,
            sync_lag,
            node_pool_read_failures,
            required_qps,
            qps_limit,
            exported: Mutex::new(HashMap::new()),
        }
    }
}

impl Metrics {
    /// Records the expiry of a keyless source's new credentials.
    pub fn credential_expiry(&self, source: &str, unix_seconds: i64) {
        self.credential_expiry
            .get_or_create(&SourceLabels {
                source: source.to_string(),
                result: String::new(),
            })
            .set(unix_seconds);
    }

    /// Counts one exchange with a keyless source.
    pub fn credential_refresh(&self, source: &str, result: &str) {
        self.credential_refreshes
            .get_or_create(&SourceLabels {
                source: source.to_string(),
                result: result.to_string(),
            })
            .inc();
    }

    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// Starts timing a reconcile; the time is recorded when the guard drops, so failed
    /// and early-returning reconciles are measured too.
    pub fn reconcile_timer(&self) -> ReconcileTimer<'_> {
        ReconcileTimer {
            histogram: &self.reconcile_duration,
            started: std::time::Instant::now(),
        }
    }

    /// Refreshes the per-pool gauges from a status.
    pub fn observe_status(&self, namespace: &str, name: &str, s: &ModelArtsNodePoolStatus) {
        let pool = PoolLabels {
            namespace: namespace.into(),
            name: name.into(),
        };
        let ok = status::condition(s, status::SYNCED).is_some_and(|c| c.status == "True");
        self.synced.get_or_create(&pool).set(i64::from(ok));
        // lastSyncTime lags a sync by up to the heartbeat, so it only seeds the gauge
        // (after a restart); `synced_at` moves it on every successful sync.
        if let Some(t) = s
            .last_sync_time
            .as_deref()
            .and_then(|t| t.parse::<jiff::Timestamp>().ok())
        {
            self.synced_at(namespace, name, t);
        }
        match s.node_pool.as_ref().and_then(|np| np.desired) {
            Some(d) => {
                self.desired.get_or_create(&pool).set(d);
            }
            None => {
                self.desired.remove(&pool);
            }
        }
        match s.node_pool.as_ref() {
            Some(np) => {
                self.creation_failed
                    .get_or_create(&pool)
                    .set(np.creation_failed.unwrap_or(0));
            }
            None => {
                self.creation_failed.remove(&pool);
            }
        }
        if let Ok(mut e) = self.exported.lock() {
            e.entry(pool.clone()).or_default();
        }
        let Some(p) = &s.pool else { return };
        let ph = &p.phases;
        for (phase, n) in [
            ("available", ph.available),
            ("creating", ph.creating),
            ("deleting", ph.deleting),
            ("abnormal", ph.abnormal),
            ("checking", ph.checking),
            ("other", ph.other),
        ] {
            let l = PhaseLabels {
                namespace: namespace.into(),
                name: name.into(),
                phase: phase.into(),
            };
            self.nodes.get_or_create(&l).set(n);
        }
        let stale: BTreeSet<String> = self
            .exported
            .lock()
            .map(|mut e| {
                let now: BTreeSet<String> = p.capacity.keys().chain(p.available.keys()).cloned().collect();
                let before = e.insert(pool.clone(), now.clone()).unwrap_or_default();
                before.difference(&now).cloned().collect()
            })
            .unwrap_or_default();
        for resource in stale {
            self.remove_resource(namespace, name, &resource);
        }
        for (kind, map) in [("capacity", &p.capacity), ("available", &p.available)] {
            for (resource, value) in map {
                let Ok(q) = Quantity::parse(value) else { continue };
                let l = ResourceLabels {
                    namespace: namespace.into(),
                    name: name.into(),
                    resource: resource.clone(),
                    kind: kind.into(),
                };
                self.resources.get_or_create(&l).set(q.nanos() as f64 / 1e9);
            }
        }
    }

    /// Records a successful sync at `t` (never moving the gauge backwards).
    pub fn synced_at(&self, namespace: &str, name: &str, t: jiff::Timestamp) {
        let pool = PoolLabels {
            namespace: namespace.into(),
            name: name.into(),
        };
        let secs = t.as_millisecond() as f64 / 1e3;
        let g = self.last_success.get_or_create(&pool);
        if g.get() < secs {
            g.set(secs);
        }
    }

    /// Forgets the series of every pool for which `keep(namespace, name)` says no.
    pub fn retain_pools(&self, keep: impl Fn(&str, &str) -> bool) {
        let gone: Vec<PoolLabels> = self
            .exported
            .lock()
            .map(|e| {
                e.keys()
                    .filter(|p| !keep(&p.namespace, &p.name))
                    .cloned()
                    .collect()
            })
            .unwrap_or_default();
        for p in gone {
            self.forget(&p.namespace, &p.name);
        }
    }

    /// Removes every series of a pool whose resource is gone, so deleted pools do not
    /// linger on dashboards or grow the registry.
    pub fn forget(&self, namespace: &str, name: &str) {
        let pool = PoolLabels {
            namespace: namespace.into(),
            name: name.into(),
        };
        self.synced.remove(&pool);
        self.last_success.remove(&pool);
        self.desired.remove(&pool);
        self.creation_failed.remove(&pool);
        self.sync_lag.remove(&pool);
        for phase in [
            "available",
            "creating",
            "deleting",
            "abnormal",
            "checking",
            "other",
        ] {
            self.nodes.remove(&PhaseLabels {
                namespace: namespace.into(),
                name: name.into(),
                phase: phase.into(),
            });
        }
        let resources = self
            .exported
            .lock()
            .ok()
            .and_then(|mut e| e.remove(&pool))
            .unwrap_or_default();
        for resource in resources {
            self.remove_resource(namespace, name, &resource);
        }
    }

    fn remove_resource(&self, namespace: &str, name: &str, resource: &str) {
        for kind in ["capacity", "available"] {
            self.resources.remove(&ResourceLabels {
                namespace: namespace.into(),
                name: name.into(),
                resource: resource.into(),
                kind: kind.into(),
            });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{
        status::{Outcome, next_status},
        summary::summarize,
    };

    fn status_with(resources: &[(&str, &str)]) -> ModelArtsNodePoolStatus {
        let mut node = crate::wire::Node::default();
        node.metadata.name = "n".into();
        node.status.phase = crate::wire::NodePhase::Available;
        node.status.resources = resources
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let summary = summarize(&[node], 10);
        next_status(
            None,
            Some(1),
            &Outcome::Synced(Box::new(summary.into())),
            jiff::Timestamp::UNIX_EPOCH,
            &crate::decide::Policy {
                heartbeat: Default::default(),
                max_backoff: Default::default(),
                desired_grace: Default::default(),
            },
        )
    }

    #[test]
    fn exports_pool_gauges_and_forgets_deleted_pools() {
        let m = Metrics::default();
        m.observe_status(
            "ml",
            "a100",
            &status_with(&[("cpu", "1930m"), ("nvidia.com/gpu", "8")]),
        );
        let text = m.encode();
        assert!(text.contains(r#"modelarts_operator_nodepool_resources{namespace="ml",name="a100",resource="cpu",kind="capacity"} 1.93"#), "{text}");
        assert!(
            text.contains(
                r#"modelarts_operator_nodepool_nodes{namespace="ml",name="a100",phase="available"} 1"#
            ),
            "{text}"
        );
        assert!(
            text.contains(r#"modelarts_operator_nodepool_synced{namespace="ml",name="a100"} 1"#),
            "{text}"
        );
        m.observe_status("ml", "a100", &status_with(&[("cpu", "2")]));
        assert!(
            !m.encode().contains("nvidia.com/gpu"),
            "a resource that disappeared is dropped"
        );
        m.forget("ml", "a100");
        assert!(!m.encode().contains("a100"), "{}", m.encode());
    }
}
