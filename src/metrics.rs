//! Prometheus metrics: reconcile counts and latency, ModelArts paging, and per-pool
//! gauges (nodes by phase, resources) so dashboards need no kubectl.

use crate::{crd::ModelArtsNodePoolStatus, quantity::Quantity, status};
use prometheus_client::{
    encoding::{EncodeLabelSet, text::encode},
    metrics::{counter::Counter, family::Family, gauge::Gauge, histogram::Histogram},
    registry::Registry,
};
use std::sync::atomic::AtomicU64;

/// Labels of reconcile outcomes.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ResultLabels {
    /// `synced`, `skipped`, `suspended`, or a failure reason.
    pub result: String,
}

/// Labels naming one custom resource.
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
    /// Nodes per phase per pool.
    pub nodes: Family<PhaseLabels, Gauge>,
    /// Resource totals per pool (in base units: cores, bytes, cards).
    pub resources: Family<ResourceLabels, Gauge<f64, AtomicU64>>,
    /// 1 when the last sync of a pool succeeded.
    pub synced: Family<PoolLabels, Gauge>,
}

impl Default for Metrics {
    fn default() -> Self {
        let mut registry = Registry::with_prefix("modelarts_operator");
        let reconciles = Family::<ResultLabels, Counter>::default();
        let reconcile_duration = Histogram::new([0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 15.0, 60.0]);
        let pages = Counter::default();
        let retries = Counter::default();
        let status_writes = Counter::default();
        let nodes = Family::<PhaseLabels, Gauge>::default();
        let resources = Family::<ResourceLabels, Gauge<f64, AtomicU64>>::default();
        let synced = Family::<PoolLabels, Gauge>::default();
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
        Metrics {
            registry,
            reconciles,
            reconcile_duration,
            pages,
            retries,
            status_writes,
            nodes,
            resources,
            synced,
        }
    }
}

impl Metrics {
    /// The OpenMetrics text exposition.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }

    /// Refreshes the per-pool gauges from a status.
    pub fn observe_status(&self, namespace: &str, name: &str, s: &ModelArtsNodePoolStatus) {
        let pool = PoolLabels {
            namespace: namespace.into(),
            name: name.into(),
        };
        let ok = status::condition(s, status::SYNCED).is_some_and(|c| c.status == "True");
        self.synced.get_or_create(&pool).set(i64::from(ok));
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
}
