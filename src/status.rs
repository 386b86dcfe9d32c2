//! Pure status logic: from the previous status and one sync's outcome to the next
//! status, and from two statuses to the events their difference deserves.
//!
//! Events are derived from persisted status rather than from memory, so an operator
//! restart (or a second replica) never repeats them.

use crate::{
    crd::ModelArtsNodePoolStatus,
    decide::Policy,
    nodepool::{self, NodePoolState},
    summary::PoolSummary,
    wire_pool::NodePool,
};
use jiff::Timestamp;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::{Condition, Time};

/// Condition: the last fetch from ModelArts succeeded.
pub const SYNCED: &str = "Synced";
/// Condition: no node is `Abnormal`.
pub const HEALTHY: &str = "Healthy";
/// Condition: synced and healthy.
pub const READY: &str = "Ready";
/// Condition: the node pool is converging on its desired count.
pub const SCALING: &str = "Scaling";

/// How many node names a message or event lists before saying "and N more".
const NAMES_IN_MESSAGE: usize = 10;

/// What one sync produced.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    /// Every page was read and summarized.
    Synced(Box<Observed>),
    /// The sync failed; `reason` is a CamelCase condition reason.
    Failed {
        /// e.g. `AuthenticationFailed`, `Throttled`.
        reason: String,
        /// Human text with the ModelArts code, message and request id.
        message: String,
    },
    /// `spec.suspend` is set: nothing was fetched.
    Suspended,
}

/// What a successful sync read: every node, and the node-pool object beside them.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Observed {
    /// The listed nodes, summarized.
    pub nodes: PoolSummary,
    /// `ShowNodePool`'s answer; its failure does not fail the sync.
    pub node_pool: NodePoolRead,
}

impl From<PoolSummary> for Observed {
    /// Nodes with an empty node-pool answer (no desired count known).
    fn from(nodes: PoolSummary) -> Self {
        Observed {
            nodes,
            node_pool: NodePoolRead::default(),
        }
    }
}

/// The outcome of reading the node-pool object.
#[derive(Debug, Clone, PartialEq)]
pub enum NodePoolRead {
    /// The node pool as ModelArts reported it.
    Read(Box<NodePool>),
    /// The read failed; `status.nodePool` keeps its last value.
    Failed {
        /// CamelCase reason.
        reason: String,
        /// Human text.
        message: String,
    },
}

impl Default for NodePoolRead {
    fn default() -> Self {
        NodePoolRead::Read(Box::default())
    }
}

/// Computes the next status. `policy.heartbeat` bounds how stale `lastSyncTime` may get
/// while nothing else changes, so an unchanged pool costs no write in between.
pub fn next_status(
    prev: Option<&ModelArtsNodePoolStatus>,
    generation: Option<i64>,
    outcome: &Outcome,
    now: Timestamp,
    policy: &Policy,
) -> ModelArtsNodePoolStatus {
    let empty = ModelArtsNodePoolStatus::default();
    let prev = prev.unwrap_or(&empty);
    let mut next = ModelArtsNodePoolStatus {
        observed_generation: generation,
        ..prev.clone()
    };
    let (synced, healthy_from): (Condition, Option<&PoolSummary>) = match outcome {
        Outcome::Synced(seen) => {
            let summary = &seen.nodes;
            next.pool = Some(summary.clone());
            let msg = format!("Listed {} nodes from ModelArts", summary.node_count);
            (cond(SYNCED, "True", "Synced", &msg), Some(summary))
        }
        Outcome::Failed { reason, message } => {
            let msg = match &prev.last_sync_time {
                Some(t) => format!(
                    "{message}; showing node data from the last successful sync at {t}{}",
                    age(t, now)
                ),
                None => format!("{message}; no successful sync yet"),
            };
            (cond(SYNCED, "False", reason, &msg), prev.pool.as_ref())
        }
        Outcome::Suspended => {
            let msg = match &prev.last_sync_time {
                Some(t) => format!("Polling is suspended (spec.suspend); node data is from {t}"),
                None => "Polling is suspended (spec.suspend); no sync yet".to_string(),
            };
            (cond(SYNCED, "Unknown", "Suspended", &msg), prev.pool.as_ref())
        }
    };
    let scaling = match outcome {
        Outcome::Synced(seen) => match &seen.node_pool {
            NodePoolRead::Read(np) => {
                let state = nodepool::observe(np, &seen.nodes, prev.node_pool.as_ref(), now);
                let s = nodepool::scaling(&state, &seen.nodes);
                next.node_pool = Some(state);
                cond(SCALING, s.status, s.reason, &s.message)
            }
            NodePoolRead::Failed { reason, message } => cond(
                SCALING,
                "Unknown",
                reason,
                &format!("Reading the node pool failed: {message}"),
            ),
        },
        _ => match prev.conditions.iter().find(|c| c.type_ == SCALING) {
            Some(c) => c.clone(),
            None => cond(SCALING, "Unknown", "NotSynced", "Node pool not read yet"),
        },
    };
    let fresh_pool: Option<&NodePoolState> = match outcome {
        Outcome::Synced(seen) if matches!(seen.node_pool, NodePoolRead::Read(_)) => next.node_pool.as_ref(),
        _ => None,
    };
    let pool_problem = fresh_pool
        .zip(healthy_from)
        .and_then(|(state, listed)| nodepool::health_problem(state, listed, now, policy.desired_grace));
    let healthy = match healthy_from {
        None => cond(HEALTHY, "Unknown", "NotSynced", "Node pool not read yet"),
        Some(s) if s.phases.abnormal == 0 => match &pool_problem {
            Some((reason, message)) => cond(HEALTHY, "False", reason, message),
            None => cond(HEALTHY, "True", "NoAbnormalNodes", "No node is Abnormal"),
        },
        Some(s) => {
            let counts = format!("{} of {} nodes Abnormal", s.phases.abnormal, s.node_count);
            let listed = names(&s.abnormal_nodes, s.phases.abnormal);
            let mut msg = if listed.is_empty() {
                counts
            } else {
                format!("{counts}: {listed}")
            };
            if let Some((_, also)) = &pool_problem {
                msg = format!("{msg}; also {also}");
            }
            cond(HEALTHY, "False", "NodesAbnormal", &msg)
        }
    };
    let ready = match (synced.status.as_str(), healthy.status.as_str()) {
        ("True", "True") => cond(READY, "True", "Ready", "Node pool synced and healthy"),
        ("True", _) => cond(READY, "False", &healthy.reason, &healthy.message),
        _ => cond(READY, "False", &synced.reason, &synced.message),
    };
    let conditions = [synced, healthy, ready, scaling]
        .into_iter()
        .map(|c| carry_transition_time(c, &prev.conditions, generation, now))
        .collect();
    next.conditions = conditions;

    if matches!(outcome, Outcome::Synced(_)) {
        let mut candidate = next.clone();
        candidate.last_sync_time = prev.last_sync_time.clone();
        let stale = prev
            .last_sync_time
            .as_deref()
            .and_then(|t| t.parse::<Timestamp>().ok())
            .is_none_or(|t| now.duration_since(t).unsigned_abs() >= policy.heartbeat);
        // `prev` may be the watch cache's trimmed copy: `same` compares as `!=` would the full one.
        next.last_sync_time = if !crate::trim::same(&candidate, prev) || stale {
            Some(rfc3339(now))
        } else {
            prev.last_sync_time.clone()
        };
    }
    next
}

/// `, 12m old`: how old the shown data is, in whole minutes (so a persisting failure
/// rewrites its message at most once a minute).
fn age(last_sync: &str, now: Timestamp) -> String {
    let Ok(t) = last_sync.parse::<Timestamp>() else {
        return String::new();
    };
    let secs = now.duration_since(t).as_secs().max(0) as u64;
    let minutes = std::time::Duration::from_secs(secs / 60 * 60);
    if minutes.is_zero() {
        ", less than a minute old".into()
    } else {
        format!(", {} old", nodepool::humantime(minutes))
    }
}

/// An RFC 3339 timestamp with second precision, as Kubernetes writes them.
pub fn rfc3339(t: Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%SZ").to_string()
}

fn cond(type_: &str, status: &str, reason: &str, message: &str) -> Condition {
    Condition {
        type_: type_.to_string(),
        status: status.to_string(),
        reason: reason.to_string(),
        message: message.chars().take(32 * 1024).collect(),
        observed_generation: None,
        last_transition_time: Time(Timestamp::UNIX_EPOCH),
    }
}

/// Keeps `lastTransitionTime` unless the condition's status flipped.
fn carry_transition_time(
    mut c: Condition,
    prev: &[Condition],
    generation: Option<i64>,
    now: Timestamp,
) -> Condition {
    c.observed_generation = generation;
    c.last_transition_time = match prev.iter().find(|p| p.type_ == c.type_) {
        Some(p) if p.status == c.status => p.last_transition_time.clone(),
        _ => Time(now.round(jiff::Unit::Second).unwrap_or(now)),
    };
    c
}

fn names(list: &[String], total: i64) -> String {
    let shown: Vec<&str> = list.iter().take(NAMES_IN_MESSAGE).map(String::as_str).collect();
    let more = total - shown.len() as i64;
    if more > 0 && !shown.is_empty() {
        format!("{} and {more} more", shown.join(", "))
    } else {
        shown.join(", ")
    }
}

/// Looks a condition up by type.
pub fn condition<'a>(status: &'a ModelArtsNodePoolStatus, type_: &str) -> Option<&'a Condition> {
    status.conditions.iter().find(|c| c.type_ == type_)
}

/// An event the transition from one status to the next deserves.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Transition {
    /// `Warning` or `Normal`.
    pub warning: bool,
    /// CamelCase reason, e.g. `NodeAbnormal`.
    pub reason: &'static str,
    /// Human text.
    pub note: String,
}

/// Events for what changed between two statuses: nodes turning Abnormal or recovering,
/// and syncing starting to fail or recovering. Nothing for an unchanged pair.
pub fn transitions(
    prev: Option<&ModelArtsNodePoolStatus>,
    next: &ModelArtsNodePoolStatus,
) -> Vec<Transition> {
    let mut out = Vec::new();
    let was = |t| prev.and_then(|p| condition(p, t)).map(|c| c.status.as_str());
    let now = |t| condition(next, t).map(|c| c.status.as_str());
    if now(SYNCED) == Some("False") && was(SYNCED) != Some("False") {
        let c = condition(next, SYNCED)
            .map(|c| (c.reason.clone(), c.message.clone()))
            .unwrap_or_default();
        out.push(Transition {
            warning: true,
            reason: "SyncFailed",
            note: format!("{}: {}", c.0, c.1),
        });
    }
    if now(SYNCED) == Some("True") && was(SYNCED) == Some("False") {
        out.push(Transition {
            warning: false,
            reason: "SyncRecovered",
            note: "Listing ModelArts nodes works again".into(),
        });
    }
    let Some(new_pool) = next.pool.as_ref() else {
        return out;
    };
    let was_abnormal = KnownAbnormal::of(prev.and_then(|p| p.pool.as_ref()));
    let is_abnormal = KnownAbnormal::of(Some(new_pool));
    let turned: Vec<String> = is_abnormal
        .names
        .iter()
        .filter(|n| was_abnormal.contains(n) == Some(false))
        .map(|n| n.to_string())
        .collect();
    let recovered: Vec<String> = was_abnormal
        .names
        .iter()
        .filter(|n| is_abnormal.contains(n) == Some(false))
        .map(|n| n.to_string())
        .collect();
    if !turned.is_empty() {
        let plural = if turned.len() == 1 { "node" } else { "nodes" };
        out.push(Transition {
            warning: true,
            reason: "NodeAbnormal",
            note: format!(
                "{} {plural} turned Abnormal: {}",
                turned.len(),
                names(&turned, turned.len() as i64)
            ),
        });
    }
    if !recovered.is_empty() {
        let plural = if recovered.len() == 1 { "node" } else { "nodes" };
        out.push(Transition {
            warning: false,
            reason: "NodeRecovered",
            note: format!(
                "{} {plural} no longer Abnormal: {}",
                recovered.len(),
                names(&recovered, recovered.len() as i64)
            ),
        });
    }
    out
}

/// What one status knows of its abnormal nodes. `abnormalNodes` is sorted and, when
/// cut, keeps the smallest names, so membership is known for every name up to the last
/// one listed and unknown beyond it: events are derived only from what is known.
struct KnownAbnormal<'a> {
    names: std::collections::BTreeSet<&'a str>,
    complete: bool,
}

impl<'a> KnownAbnormal<'a> {
    fn of(pool: Option<&'a PoolSummary>) -> Self {
        match pool {
            None => KnownAbnormal {
                names: Default::default(),
                complete: true,
            },
            Some(p) => {
                let names: std::collections::BTreeSet<&str> =
                    p.abnormal_nodes.iter().map(String::as_str).collect();
                KnownAbnormal {
                    complete: names.len() as i64 >= p.phases.abnormal,
                    names,
                }
            }
        }
    }

    /// `Some(true)`/`Some(false)` when known, `None` beyond the end of a cut list.
    fn contains(&self, name: &str) -> Option<bool> {
        if self.names.contains(name) {
            Some(true)
        } else if self.complete || self.names.last().is_some_and(|last| name < *last) {
            Some(false)
        } else {
            None
        }
    }
}

/// The API server refuses event notes over 1024 bytes: cut at a character boundary.
pub fn event_note(text: &str) -> String {
    const MAX: usize = 1024;
    if text.len() <= MAX {
        return text.to_string();
    }
    let mut end = MAX - '…'.len_utf8();
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{summary::summarize, wire::Node};
    use std::time::Duration;

    const HB: &Policy = &Policy {
        heartbeat: Duration::from_secs(300),
        max_backoff: Duration::from_secs(300),
        desired_grace: Duration::from_secs(1800),
    };

    fn pool(abnormal: &[&str], healthy: usize) -> PoolSummary {
        let mut nodes = Vec::new();
        for n in abnormal {
            let mut node = Node::default();
            node.metadata.name = n.to_string();
            node.status.phase = crate::wire::NodePhase::Abnormal;
            nodes.push(node);
        }
        for i in 0..healthy {
            let mut node = Node::default();
            node.metadata.name = format!("ok-{i}");
            node.status.phase = crate::wire::NodePhase::Available;
            node.status.resources.insert("cpu".into(), "1".into());
            nodes.push(node);
        }
        summarize(&nodes, 200)
    }

    fn t(s: &str) -> Timestamp {
        s.parse().unwrap()
    }

    fn status_of<'a>(s: &'a ModelArtsNodePoolStatus, ty: &str) -> (&'a str, &'a str) {
        let c = condition(s, ty).unwrap();
        (c.status.as_str(), c.reason.as_str())
    }

    fn with_node_pool(nodes: PoolSummary, json: &str) -> Outcome {
        Outcome::Synced(Box::new(Observed {
            nodes,
            node_pool: NodePoolRead::Read(Box::new(serde_json::from_str(json).unwrap())),
        }))
    }

    #[test]
    fn scaling_out_is_converging_until_every_desired_node_is_listed() {
        let want8 = r#"{"spec":{"resources":{"flavor":"f","count":8}},"status":{"resources":{"creating":{"count":4}}}}"#;
        let a = next_status(
            None,
            Some(1),
            &with_node_pool(pool(&[], 4), want8),
            t("2026-01-01T00:00:00Z"),
            HB,
        );
        assert_eq!(status_of(&a, SCALING), ("True", "ScalingUp"));
        assert_eq!(
            condition(&a, SCALING).unwrap().message,
            "4 of 8 desired nodes listed; 4 creating"
        );
        assert_eq!(status_of(&a, READY), ("True", "Ready"), "within the grace period");
        assert_eq!(a.node_pool.as_ref().unwrap().desired, Some(8));
        let done = r#"{"spec":{"resources":{"flavor":"f","count":8}},"status":{"resources":{"available":{"count":8}}}}"#;
        let b = next_status(
            Some(&a),
            Some(1),
            &with_node_pool(pool(&[], 8), done),
            t("2026-01-01T00:10:00Z"),
            HB,
        );
        assert_eq!(status_of(&b, SCALING), ("False", "Converged"));
        assert_eq!(b.node_pool.as_ref().unwrap().below_desired_since, None);
        assert_eq!(
            condition(&b, SCALING).unwrap().last_transition_time.0,
            t("2026-01-01T00:10:00Z")
        );
    }

    #[test]
    fn a_creation_failure_or_a_long_shortfall_is_unhealthy() {
        let failed = r#"{"spec":{"resources":{"flavor":"gpu8","count":8}},"status":{"resources":{"creationFailed":{"count":2}}}}"#;
        let s = next_status(
            None,
            Some(1),
            &with_node_pool(pool(&[], 6), failed),
            t("2026-01-01T00:00:00Z"),
            HB,
        );
        assert_eq!(status_of(&s, HEALTHY), ("False", "NodeCreationFailed"));
        assert_eq!(status_of(&s, READY), ("False", "NodeCreationFailed"));
        assert_eq!(status_of(&s, SCALING), ("False", "CreationFailed"));

        let short = r#"{"spec":{"resources":{"count":8}}}"#;
        let a = next_status(
            None,
            Some(1),
            &with_node_pool(pool(&[], 6), short),
            t("2026-01-01T00:00:00Z"),
            HB,
        );
        assert_eq!(status_of(&a, HEALTHY), ("True", "NoAbnormalNodes"));
        let b = next_status(
            Some(&a),
            Some(1),
            &with_node_pool(pool(&[], 6), short),
            t("2026-01-01T00:31:00Z"),
            HB,
        );
        assert_eq!(status_of(&b, HEALTHY), ("False", "BelowDesired"));
        assert_eq!(status_of(&b, READY), ("False", "BelowDesired"));
        let both = next_status(
            Some(&b),
            Some(1),
            &with_node_pool(pool(&["n-1"], 5), short),
            t("2026-01-01T00:32:00Z"),
            HB,
        );
        let h = condition(&both, HEALTHY).unwrap();
        assert_eq!(h.reason, "NodesAbnormal");
        assert!(
            h.message
                .contains("also 6 of 8 desired nodes listed since 2026-01-01T00:00:00Z"),
            "{}",
            h.message
        );
    }

    #[test]
    fn a_failed_node_pool_read_keeps_node_data_and_the_last_node_pool_view() {
        let want = r#"{"spec":{"resources":{"count":3}}}"#;
        let a = next_status(
            None,
            Some(1),
            &with_node_pool(pool(&[], 3), want),
            t("2026-01-01T00:00:00Z"),
            HB,
        );
        let o = Outcome::Synced(Box::new(Observed {
            nodes: pool(&[], 4),
            node_pool: NodePoolRead::Failed {
                reason: "Throttled".into(),
                message: "APIGW.0308".into(),
            },
        }));
        let b = next_status(Some(&a), Some(1), &o, t("2026-01-01T00:01:00Z"), HB);
        assert_eq!(status_of(&b, SYNCED), ("True", "Synced"));
        assert_eq!(b.pool.as_ref().unwrap().node_count, 4);
        assert_eq!(b.node_pool, a.node_pool);
        assert_eq!(status_of(&b, SCALING), ("Unknown", "Throttled"));
        assert_eq!(status_of(&b, HEALTHY), ("True", "NoAbnormalNodes"));
    }

    #[test]
    fn first_sync_sets_all_conditions() {
        let s = next_status(
            None,
            Some(1),
            &Outcome::Synced(Box::new(pool(&[], 3).into())),
            t("2026-01-01T00:00:00Z"),
            HB,
        );
        assert_eq!(status_of(&s, SYNCED), ("True", "Synced"));
        assert_eq!(status_of(&s, HEALTHY), ("True", "NoAbnormalNodes"));
        assert_eq!(status_of(&s, READY), ("True", "Ready"));
        assert_eq!(s.last_sync_time.as_deref(), Some("2026-01-01T00:00:00Z"));
        assert_eq!(s.observed_generation, Some(1));
        assert_eq!(condition(&s, READY).unwrap().observed_generation, Some(1));
    }

    #[test]
    fn an_unchanged_pool_yields_an_identical_status_until_the_heartbeat() {
        let o = Outcome::Synced(Box::new(pool(&[], 3).into()));
        let a = next_status(None, Some(1), &o, t("2026-01-01T00:00:00Z"), HB);
        let b = next_status(Some(&a), Some(1), &o, t("2026-01-01T00:01:00Z"), HB);
        assert_eq!(a, b, "no write needed");
        let c = next_status(Some(&b), Some(1), &o, t("2026-01-01T00:05:00Z"), HB);
        assert_eq!(c.last_sync_time.as_deref(), Some("2026-01-01T00:05:00Z"));
        assert_eq!(c.conditions, a.conditions, "transition times kept");
    }

    #[test]
    fn a_change_refreshes_last_sync_time() {
        let a = next_status(
            None,
            Some(1),
            &Outcome::Synced(Box::new(pool(&[], 3).into())),
            t("2026-01-01T00:00:00Z"),
            HB,
        );
        let b = next_status(
            Some(&a),
            Some(1),
            &Outcome::Synced(Box::new(pool(&[], 4).into())),
            t("2026-01-01T00:01:00Z"),
            HB,
        );
        assert_eq!(b.last_sync_time.as_deref(), Some("2026-01-01T00:01:00Z"));
    }

    #[test]
    fn failure_keeps_the_last_good_data_and_says_how_old_it_is() {
        let a = next_status(
            None,
            Some(1),
            &Outcome::Synced(Box::new(pool(&[], 3).into())),
            t("2026-01-01T00:00:00Z"),
            HB,
        );
        let fail = Outcome::Failed {
            reason: "Throttled".into(),
            message: "APIGW.0308: too many".into(),
        };
        let b = next_status(Some(&a), Some(1), &fail, t("2026-01-01T00:01:00Z"), HB);
        assert_eq!(b.pool, a.pool);
        assert_eq!(b.last_sync_time, a.last_sync_time);
        assert_eq!(status_of(&b, SYNCED), ("False", "Throttled"));
        assert_eq!(status_of(&b, READY), ("False", "Throttled"));
        assert_eq!(status_of(&b, HEALTHY), ("True", "NoAbnormalNodes"));
        let msg = &condition(&b, SYNCED).unwrap().message;
        assert_eq!(
            msg,
            "APIGW.0308: too many; showing node data from the last successful sync at 2026-01-01T00:00:00Z, 1m old"
        );
        assert_eq!(
            condition(&b, SYNCED).unwrap().last_transition_time.0,
            t("2026-01-01T00:01:00Z")
        );
        let again = next_status(Some(&b), Some(1), &fail, t("2026-01-01T00:01:59Z"), HB);
        assert_eq!(
            again, b,
            "a persisting failure within the minute writes nothing new"
        );
        assert_eq!(transitions(Some(&a), &b).len(), 1);
        assert!(transitions(Some(&b), &again).is_empty());
        // Later, only the data age in the message moves: no event, transition time kept.
        let later = next_status(Some(&b), Some(1), &fail, t("2026-01-01T01:30:00Z"), HB);
        assert!(
            condition(&later, SYNCED)
                .unwrap()
                .message
                .ends_with(", 1h30m old")
        );
        assert_eq!(
            condition(&later, SYNCED).unwrap().last_transition_time,
            condition(&b, SYNCED).unwrap().last_transition_time
        );
        assert!(transitions(Some(&b), &later).is_empty());
    }

    #[test]
    fn abnormal_nodes_make_it_unhealthy_and_emit_one_event_each_way() {
        let a = next_status(
            None,
            Some(1),
            &Outcome::Synced(Box::new(pool(&[], 3).into())),
            t("2026-01-01T00:00:00Z"),
            HB,
        );
        let b = next_status(
            Some(&a),
            Some(1),
            &Outcome::Synced(Box::new(pool(&["gpu-7"], 3).into())),
            t("2026-01-01T00:01:00Z"),
            HB,
        );
        assert_eq!(status_of(&b, HEALTHY), ("False", "NodesAbnormal"));
        assert_eq!(status_of(&b, READY), ("False", "NodesAbnormal"));
        assert!(condition(&b, HEALTHY).unwrap().message.contains("gpu-7"));
        let ev = transitions(Some(&a), &b);
        assert_eq!(
            ev,
            vec![Transition {
                warning: true,
                reason: "NodeAbnormal",
                note: "1 node turned Abnormal: gpu-7".into()
            }]
        );
        let c = next_status(
            Some(&b),
            Some(1),
            &Outcome::Synced(Box::new(pool(&[], 3).into())),
            t("2026-01-01T00:02:00Z"),
            HB,
        );
        let ev = transitions(Some(&b), &c);
        assert_eq!(ev.len(), 1);
        assert_eq!((ev[0].warning, ev[0].reason), (false, "NodeRecovered"));
        assert!(transitions(Some(&c), &c).is_empty());
    }

    fn named(list: &[&str], abnormal: i64) -> PoolSummary {
        let mut p = pool(&[], 1);
        p.abnormal_nodes = list.iter().map(|s| s.to_string()).collect();
        p.phases.abnormal = abnormal;
        p
    }

    fn status_with(p: PoolSummary) -> ModelArtsNodePoolStatus {
        next_status(
            None,
            Some(1),
            &Outcome::Synced(Box::new(p.into())),
            t("2026-01-01T00:00:00Z"),
            HB,
        )
    }

    #[test]
    fn a_node_cap_of_zero_still_names_abnormal_nodes_in_events_and_conditions() {
        let mut nodes = Vec::new();
        let mut bad = Node::default();
        bad.metadata.name = "gpu-3".into();
        bad.status.phase = crate::wire::NodePhase::Abnormal;
        nodes.push(bad);
        let a = status_with(summarize(&[], 0));
        let b = next_status(
            Some(&a),
            Some(1),
            &Outcome::Synced(Box::new(summarize(&nodes, 0).into())),
            t("2026-01-01T00:01:00Z"),
            HB,
        );
        assert_eq!(
            condition(&b, HEALTHY).unwrap().message,
            "1 of 1 nodes Abnormal: gpu-3"
        );
        assert_eq!(
            transitions(Some(&a), &b),
            vec![Transition {
                warning: true,
                reason: "NodeAbnormal",
                note: "1 node turned Abnormal: gpu-3".into()
            }]
        );
    }

    #[test]
    fn a_cut_abnormal_list_yields_only_events_it_can_prove() {
        // {b,c,d} listed as [b,c] → {a,b,c,d} listed as [a,b]: a turned; c and d are
        // beyond the new list's end, so nothing says they recovered.
        let prev = status_with(named(&["b", "c"], 3));
        let next = status_with(named(&["a", "b"], 4));
        assert_eq!(
            transitions(Some(&prev), &next),
            vec![Transition {
                warning: true,
                reason: "NodeAbnormal",
                note: "1 node turned Abnormal: a".into()
            }]
        );
        // [b,c] of 3 → [c] of 1 (complete): b recovered; the third (beyond c) is unknown.
        let next = status_with(named(&["c"], 1));
        let ev = transitions(Some(&prev), &next);
        assert_eq!(ev.len(), 1, "{ev:?}");
        assert_eq!(
            (ev[0].reason, ev[0].note.as_str()),
            ("NodeRecovered", "1 node no longer Abnormal: b")
        );
    }

    #[test]
    fn maxnodes_two_does_not_invent_a_recovery() {
        let nodes = |names: &[&str]| {
            names
                .iter()
                .map(|n| {
                    let mut node = Node::default();
                    node.metadata.name = n.to_string();
                    node.status.phase = crate::wire::NodePhase::Abnormal;
                    node
                })
                .collect::<Vec<_>>()
        };
        let a = status_with(summarize(&nodes(&["b", "c"]), 2));
        let b = next_status(
            Some(&a),
            Some(1),
            &Outcome::Synced(Box::new(summarize(&nodes(&["a", "b", "c"]), 2).into())),
            t("2026-01-01T00:01:00Z"),
            HB,
        );
        let ev = transitions(Some(&a), &b);
        assert_eq!(
            ev.iter().map(|e| e.reason).collect::<Vec<_>>(),
            ["NodeAbnormal"],
            "{ev:?}"
        );
        assert_eq!(ev[0].note, "1 node turned Abnormal: a");
    }

    #[test]
    fn event_notes_fit_the_api_servers_byte_limit() {
        assert_eq!(event_note("short"), "short");
        let wide = "节点异常".repeat(200); // 2,400 bytes of 3-byte characters
        let note = event_note(&wide);
        assert!(note.len() <= 1024, "{}", note.len());
        assert!(note.ends_with('…') && wide.starts_with(note.trim_end_matches('…')));
        assert_eq!(event_note(&"a".repeat(1024)).len(), 1024);
        assert_eq!(event_note(&"a".repeat(1025)).len(), 1024);
    }

    #[test]
    fn failure_before_any_sync_has_unknown_health() {
        let fail = Outcome::Failed {
            reason: "CredentialsNotFound".into(),
            message: "Secret x not found".into(),
        };
        let s = next_status(None, Some(2), &fail, t("2026-01-01T00:00:00Z"), HB);
        assert_eq!(s.pool, None);
        assert_eq!(status_of(&s, HEALTHY), ("Unknown", "NotSynced"));
        assert_eq!(status_of(&s, READY), ("False", "CredentialsNotFound"));
        assert_eq!(transitions(None, &s)[0].reason, "SyncFailed");
    }

    #[test]
    fn suspend_keeps_data_and_marks_synced_unknown() {
        let a = next_status(
            None,
            Some(1),
            &Outcome::Synced(Box::new(pool(&[], 3).into())),
            t("2026-01-01T00:00:00Z"),
            HB,
        );
        let s = next_status(
            Some(&a),
            Some(2),
            &Outcome::Suspended,
            t("2026-01-01T00:03:00Z"),
            HB,
        );
        assert_eq!(s.pool, a.pool);
        assert_eq!(s.last_sync_time, a.last_sync_time);
        assert_eq!(status_of(&s, SYNCED), ("Unknown", "Suspended"));
        assert_eq!(s.observed_generation, Some(2));
        assert!(transitions(Some(&a), &s).is_empty());
    }
}
