//! The node pool's own view, pure: what it should have (desired count, ceiling, zones)
//! against what was listed, folded into `status.nodePool`, the `Scaling` condition and
//! the node-pool half of `Healthy`.
//!
//! Listed nodes are the ground truth for "how many exist"; the pool's own buckets
//! (`creating`, `creationFailed`, ...) explain why they differ from the desired count.

use crate::{summary::PoolSummary, wire_pool::NodePool};
use jiff::Timestamp;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::time::Duration;

/// `status.nodePool`: the node pool's desired shape and its own node counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodePoolState {
    /// Flavor of the node pool's nodes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavor: Option<String>,
    /// Desired node count (`spec.resources.count`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub desired: Option<i64>,
    /// Largest count the node pool may grow to (`spec.resources.maxCount`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_count: Option<i64>,
    /// Desired nodes per availability zone, when pinned, sorted by zone.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub azs: Vec<AzDesired>,
    /// Nodes the node pool reports as being created.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creating: Option<i64>,
    /// Nodes the node pool reports as available.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub available: Option<i64>,
    /// Nodes the node pool reports as abnormal.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub abnormal: Option<i64>,
    /// Nodes the node pool reports as being deleted.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deleting: Option<i64>,
    /// Nodes whose creation failed, as the node pool reports them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub creation_failed: Option<i64>,
    /// Since when fewer nodes are listed than desired; absent when not short.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub below_desired_since: Option<String>,
}

/// Desired nodes in one availability zone.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
pub struct AzDesired {
    /// Zone ID.
    pub az: String,
    /// Nodes wanted there.
    pub desired: i64,
}

/// Folds a `ShowNodePool` answer and the listed nodes into `status.nodePool`.
/// `belowDesiredSince` survives from `prev` while the shortfall lasts.
pub fn observe(
    np: &NodePool,
    listed: &PoolSummary,
    prev: Option<&NodePoolState>,
    now: Timestamp,
) -> NodePoolState {
    let r = &np.spec.resources;
    let s = &np.status;
    let short = r.count.is_some_and(|d| listed.node_count < d);
    NodePoolState {
        flavor: r.flavor.clone(),
        desired: r.count,
        max_count: r.max_count,
        azs: r
            .azs
            .iter()
            .map(|a| AzDesired {
                az: a.az.clone(),
                desired: a.count,
            })
            .collect(),
        creating: s.creating,
        available: s.available,
        abnormal: s.abnormal,
        deleting: s.deleting,
        creation_failed: s.creation_failed,
        below_desired_since: short.then(|| {
            prev.and_then(|p| p.below_desired_since.clone())
                .unwrap_or_else(|| crate::status::rfc3339(now))
        }),
    }
}

/// The `Scaling` condition's status, reason and message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scaling {
    /// `True` while converging, `False` when converged or stuck, `Unknown` without data.
    pub status: &'static str,
    /// `ScalingUp`, `ScalingDown`, `Converged`, `CreationFailed`, `DesiredCountUnknown`.
    pub reason: &'static str,
    /// Counts that explain it.
    pub message: String,
}

/// Whether the node pool is converging on its desired count, from both views: nodes
/// listed (and their phases) and the pool's own `creating`/`deleting`/`creationFailed`.
pub fn scaling(state: &NodePoolState, listed: &PoolSummary) -> Scaling {
    let Some(desired) = state.desired else {
        return Scaling {
            status: "Unknown",
            reason: "DesiredCountUnknown",
            message: "ModelArts did not report the node pool's desired count".into(),
        };
    };
    let n = listed.node_count;
    let creating = state.creating.unwrap_or(0).max(listed.phases.creating);
    let deleting = state.deleting.unwrap_or(0).max(listed.phases.deleting);
    let failed = state.creation_failed.unwrap_or(0);
    let counts = format!("{n} of {desired} desired nodes listed");
    let mut extra = Vec::new();
    if creating > 0 {
        extra.push(format!("{creating} creating"));
    }
    if deleting > 0 {
        extra.push(format!("{deleting} deleting"));
    }
    if failed > 0 {
        extra.push(format!("{failed} failed to create"));
    }
    let message = if extra.is_empty() {
        counts
    } else {
        format!("{counts}; {}", extra.join(", "))
    };
    let (status, reason) = if creating > 0 || (n < desired && failed == 0) {
        ("True", "ScalingUp")
    } else if deleting > 0 || n > desired {
        ("True", "ScalingDown")
    } else if failed > 0 {
        ("False", "CreationFailed")
    } else {
        ("False", "Converged")
    };
    Scaling {
        status,
        reason,
        message,
    }
}

/// The node pool's reason to be un`Healthy`, if any: nodes that failed to create, or
/// fewer nodes listed than desired for longer than `grace`.
pub fn health_problem(
    state: &NodePoolState,
    listed: &PoolSummary,
    now: Timestamp,
    grace: Duration,
) -> Option<(&'static str, String)> {
    let desired = state.desired?;
    let failed = state.creation_failed.unwrap_or(0);
    if failed > 0 {
        let plural = if failed == 1 { "node" } else { "nodes" };
        let flavor = state
            .flavor
            .as_deref()
            .map(|f| format!(" of flavor {f}"))
            .unwrap_or_default();
        return Some((
            "NodeCreationFailed",
            format!(
                "{failed} {plural}{flavor} failed to create; {} of {desired} desired nodes listed",
                listed.node_count
            ),
        ));
    }
    let since_text = state.below_desired_since.as_deref()?;
    let since: Timestamp = since_text.parse().ok()?;
    let short_for = now.duration_since(since).unsigned_abs();
    (short_for >= grace).then(|| {
        (
            "BelowDesired",
            format!(
                "{} of {desired} desired nodes listed since {since_text} (longer than the {} grace period)",
                listed.node_count,
                humantime(grace)
            ),
        )
    })
}

/// `90s` → `1m30s`, as the flags are written.
pub fn humantime(d: Duration) -> String {
    let s = d.as_secs();
    let (h, m, sec) = (s / 3600, (s % 3600) / 60, s % 60);
    let mut out = String::new();
    if h > 0 {
        out.push_str(&format!("{h}h"));
    }
    if m > 0 {
        out.push_str(&format!("{m}m"));
    }
    if sec > 0 || out.is_empty() {
        out.push_str(&format!("{sec}s"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::summary::PhaseCounts;

    fn listed(n: i64, creating: i64) -> PoolSummary {
        PoolSummary {
            node_count: n,
            phases: PhaseCounts {
                available: n - creating,
                creating,
                ..Default::default()
            },
            ..Default::default()
        }
    }

    fn np(json: &str) -> NodePool {
        serde_json::from_str(json).unwrap()
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    const GRACE: Duration = Duration::from_secs(30 * 60);

    #[test]
    fn desired_shape_and_pool_counts_are_copied() {
        let n = np(r#"{"spec":{"resources":{"flavor":"f8","count":8,"maxCount":12,
              "azs":[{"az":"z2","count":3},{"az":"z1","count":5}]}},
              "status":{"resources":{"creating":{"count":2},"available":{"count":6}}}}"#);
        let s = observe(&n, &listed(6, 0), None, t("2026-01-01T00:00:00Z"));
        assert_eq!(s.flavor.as_deref(), Some("f8"));
        assert_eq!((s.desired, s.max_count), (Some(8), Some(12)));
        assert_eq!(
            s.azs,
            [
                AzDesired {
                    az: "z1".into(),
                    desired: 5
                },
                AzDesired {
                    az: "z2".into(),
                    desired: 3
                }
            ]
        );
        assert_eq!(
            (s.creating, s.available, s.creation_failed),
            (Some(2), Some(6), None)
        );
        assert_eq!(s.below_desired_since.as_deref(), Some("2026-01-01T00:00:00Z"));
    }

    #[test]
    fn shortfall_start_is_kept_until_it_ends() {
        let n = np(r#"{"spec":{"resources":{"count":8}}}"#);
        let a = observe(&n, &listed(6, 0), None, t("2026-01-01T00:00:00Z"));
        let b = observe(&n, &listed(7, 0), Some(&a), t("2026-01-01T00:10:00Z"));
        assert_eq!(b.below_desired_since.as_deref(), Some("2026-01-01T00:00:00Z"));
        let c = observe(&n, &listed(8, 0), Some(&b), t("2026-01-01T00:20:00Z"));
        assert_eq!(c.below_desired_since, None);
    }

    #[test]
    fn scaling_up_down_converged_and_stuck() {
        let state = |json: &str, n: i64| observe(&np(json), &listed(n, 0), None, Timestamp::UNIX_EPOCH);
        let up = state(r#"{"spec":{"resources":{"count":8}}}"#, 4);
        assert_eq!(
            scaling(&up, &listed(4, 0)),
            Scaling {
                status: "True",
                reason: "ScalingUp",
                message: "4 of 8 desired nodes listed".into()
            }
        );
        // All 8 listed but two still in phase Creating: still converging.
        let s = state(r#"{"spec":{"resources":{"count":8}}}"#, 8);
        assert_eq!(scaling(&s, &listed(8, 2)).reason, "ScalingUp");
        assert_eq!(
            scaling(&s, &listed(8, 2)).message,
            "8 of 8 desired nodes listed; 2 creating"
        );
        assert_eq!(scaling(&s, &listed(8, 0)).reason, "Converged");
        assert_eq!(scaling(&s, &listed(8, 0)).status, "False");
        let down = state(r#"{"spec":{"resources":{"count":2}}}"#, 3);
        assert_eq!(scaling(&down, &listed(3, 0)).reason, "ScalingDown");
        let stuck = state(
            r#"{"spec":{"resources":{"count":8}},"status":{"resources":{"creationFailed":{"count":2}}}}"#,
            6,
        );
        let sc = scaling(&stuck, &listed(6, 0));
        assert_eq!((sc.status, sc.reason), ("False", "CreationFailed"));
        assert_eq!(sc.message, "6 of 8 desired nodes listed; 2 failed to create");
        let unknown = state(r#"{}"#, 3);
        assert_eq!(scaling(&unknown, &listed(3, 0)).status, "Unknown");
    }

    #[test]
    fn unhealthy_on_creation_failure_at_once_and_on_shortfall_after_grace() {
        let failed = observe(
            &np(
                r#"{"spec":{"resources":{"flavor":"gpu8","count":8}},"status":{"resources":{"creationFailed":[{"count":1}]}}}"#,
            ),
            &listed(7, 0),
            None,
            t("2026-01-01T00:00:00Z"),
        );
        let (reason, msg) = health_problem(&failed, &listed(7, 0), t("2026-01-01T00:00:00Z"), GRACE).unwrap();
        assert_eq!(reason, "NodeCreationFailed");
        assert_eq!(
            msg,
            "1 node of flavor gpu8 failed to create; 7 of 8 desired nodes listed"
        );

        let short = observe(
            &np(r#"{"spec":{"resources":{"count":8}}}"#),
            &listed(6, 0),
            None,
            t("2026-01-01T00:00:00Z"),
        );
        assert_eq!(
            health_problem(&short, &listed(6, 0), t("2026-01-01T00:29:59Z"), GRACE),
            None
        );
        let (reason, msg) = health_problem(&short, &listed(6, 0), t("2026-01-01T00:30:00Z"), GRACE).unwrap();
        assert_eq!(reason, "BelowDesired");
        assert_eq!(
            msg,
            "6 of 8 desired nodes listed since 2026-01-01T00:00:00Z (longer than the 30m grace period)"
        );
    }

    #[test]
    fn durations_read_like_flags() {
        assert_eq!(humantime(Duration::from_secs(90)), "1m30s");
        assert_eq!(humantime(Duration::from_secs(3600)), "1h");
        assert_eq!(humantime(Duration::ZERO), "0s");
    }
}
