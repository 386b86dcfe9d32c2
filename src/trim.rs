//! What the watch cache keeps of each resource.
//!
//! The reflector holds every watched `ModelArtsNodePool` for the operator's whole life, and a
//! full copy is mostly what reconciling never reads: `managedFields` (a field path for every
//! status entry the operator wrote), `kubectl.kubernetes.io/last-applied-configuration` (the
//! spec a second time) and `status.nodes` (up to `maxNodesInStatus` nodes, each with two
//! resource maps). [`trim`] drops them from the cached copy as the watch delivers it.
//!
//! Deciding whether status changed still needs the node list, so the cache keeps its SHA-256
//! in its place ([`NodesDigest`]); [`same`] compares a freshly computed status with a trimmed
//! stored one exactly as `==` compared it with the full one (up to a SHA-256 collision). A
//! trimmed status is never written: see [`is_trimmed`].

use crate::{
    crd::{ModelArtsNodePool, ModelArtsNodePoolStatus},
    summary::{NodeSummary, PoolSummary},
};
use sha2::{Digest, Sha256};

/// SHA-256 of the JSON of a `status.nodes` list that the watch cache dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct NodesDigest([u8; 32]);

impl NodesDigest {
    /// The digest of `nodes`. JSON of the parsed list rather than the bytes the API server
    /// sent, so that two lists digest alike exactly when they compare equal.
    pub fn of(nodes: &[NodeSummary]) -> Self {
        let mut hasher = Sha256::new();
        // Serializing plain strings and maps cannot fail; if it ever did, hashing what was
        // written so far still separates most lists, and a wrong "changed" only costs a write.
        let _ = serde_json::to_writer(HashWriter(&mut hasher), nodes);
        NodesDigest(hasher.finalize().into())
    }
}

/// Feeds serialized bytes to the hasher without building the JSON in memory.
struct HashWriter<'a>(&'a mut Sha256);

impl std::io::Write for HashWriter<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.update(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Shrinks a watched object to what reconciling reads; the watcher calls it on every object
/// before the reflector stores it. Nothing reconciles on labels or annotations (selection is
/// done by the API server), events only need the object reference, and status keeps everything
/// the next status and the events are computed from, with the node list as its digest.
pub fn trim(obj: &mut ModelArtsNodePool) {
    obj.metadata.managed_fields = None;
    obj.metadata.annotations = None;
    obj.metadata.labels = None;
    if let Some(pool) = obj.status.as_mut().and_then(|s| s.pool.as_mut())
        && pool.trimmed_nodes.is_none()
    {
        pool.trimmed_nodes = Some(NodesDigest::of(&pool.nodes));
        pool.nodes = Vec::new();
    }
}

/// True when `status` carries a node list the cache dropped; writing it would erase that list
/// on the server, so the full status must be read first.
pub fn is_trimmed(status: &ModelArtsNodePoolStatus) -> bool {
    status.pool.as_ref().is_some_and(|p| p.trimmed_nodes.is_some())
}

/// Whether `next` equals `stored`, where either may be trimmed: `==` on the full statuses.
pub fn same(next: &ModelArtsNodePoolStatus, stored: &ModelArtsNodePoolStatus) -> bool {
    if is_trimmed(next) == is_trimmed(stored) {
        return next == stored;
    }
    let (full, trimmed) = if is_trimmed(stored) {
        (next, stored)
    } else {
        (stored, next)
    };
    compact(full) == *trimmed
}

/// `status` with its node list replaced by the digest, as [`trim`] stores it.
fn compact(status: &ModelArtsNodePoolStatus) -> ModelArtsNodePoolStatus {
    // Exhaustive literals, not `..clone()`: a field added later must be thought about here.
    let ModelArtsNodePoolStatus {
        observed_generation,
        last_sync_time,
        pool,
        node_pool,
        conditions,
    } = status;
    ModelArtsNodePoolStatus {
        observed_generation: *observed_generation,
        last_sync_time: last_sync_time.clone(),
        pool: pool.as_ref().map(compact_pool),
        node_pool: node_pool.clone(),
        conditions: conditions.clone(),
    }
}

fn compact_pool(p: &PoolSummary) -> PoolSummary {
    let PoolSummary {
        node_count,
        phases,
        capacity,
        available,
        columns,
        nodes,
        omitted_nodes,
        abnormal_nodes,
        invalid_quantities,
        trimmed_nodes,
    } = p;
    PoolSummary {
        node_count: *node_count,
        phases: phases.clone(),
        capacity: capacity.clone(),
        available: available.clone(),
        columns: columns.clone(),
        nodes: Vec::new(),
        omitted_nodes: *omitted_nodes,
        abnormal_nodes: abnormal_nodes.clone(),
        invalid_quantities: invalid_quantities.clone(),
        trimmed_nodes: Some(trimmed_nodes.unwrap_or_else(|| NodesDigest::of(nodes))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crd::ModelArtsNodePoolSpec;
    use std::collections::BTreeMap;

    fn node(name: &str, phase: &str, cpu: &str) -> NodeSummary {
        NodeSummary {
            name: name.into(),
            phase: phase.into(),
            az: Some("cn-north-4a".into()),
            private_ip: Some("192.168.0.10".into()),
            flavor: Some("modelarts.bm.gpu.8v100".into()),
            resources: BTreeMap::from([("cpu".into(), cpu.into())]),
            available_resources: BTreeMap::from([("cpu".into(), "1".into())]),
        }
    }

    /// A status as the API server returns it after the operator wrote it.
    fn stored(nodes: Vec<NodeSummary>) -> ModelArtsNodePoolStatus {
        serde_json::from_value(serde_json::json!({
            "observedGeneration": 2,
            "lastSyncTime": "2026-11-28T10:00:00Z",
            "nodeCount": nodes.len(),
            "phases": {"available": 1, "creating": 0, "deleting": 0, "abnormal": 1, "checking": 0, "other": 0},
            "capacity": {"cpu": "8"},
            "available": {"cpu": "2"},
            "columns": {"cpu": "2/8", "memory": "0/0", "gpu": "0/0", "npu": "0/0"},
            "nodes": nodes,
            "omittedNodes": 0,
            "abnormalNodes": ["b"],
            "conditions": [{"type": "Synced", "status": "True", "reason": "Synced", "message": "Listed 2 nodes",
                            "lastTransitionTime": "2026-11-28T09:00:00Z", "observedGeneration": 2}],
        }))
        .unwrap()
    }

    fn object(status: ModelArtsNodePoolStatus) -> ModelArtsNodePool {
        let spec: ModelArtsNodePoolSpec = serde_json::from_value(serde_json::json!({
            "projectId": "p", "poolName": "pool", "nodePoolName": "np",
        }))
        .unwrap();
        let mut obj = ModelArtsNodePool::new("a", spec);
        obj.metadata.annotations = Some(BTreeMap::from([(
            "kubectl.kubernetes.io/last-applied-configuration".into(),
            "{\"spec\":{}}".into(),
        )]));
        obj.metadata.labels = Some(BTreeMap::from([("team".into(), "ml".into())]));
        obj.metadata.managed_fields = Some(vec![Default::default()]);
        obj.status = Some(status);
        obj
    }

    fn trimmed(status: ModelArtsNodePoolStatus) -> ModelArtsNodePool {
        let mut obj = object(status);
        trim(&mut obj);
        obj
    }

    #[test]
    fn the_cache_keeps_spec_and_status_but_not_the_node_list_or_metadata_bulk() {
        let full = stored(vec![node("a", "Available", "4"), node("b", "Abnormal", "4")]);
        let obj = trimmed(full.clone());
        assert_eq!(obj.metadata.managed_fields, None);
        assert_eq!(obj.metadata.annotations, None);
        assert_eq!(obj.metadata.labels, None);
        assert_eq!(obj.metadata.name.as_deref(), Some("a"));
        assert_eq!(obj.spec, object(full.clone()).spec);
        let (status, pool) = (
            obj.status.as_ref().unwrap(),
            obj.status.as_ref().unwrap().pool.as_ref().unwrap(),
        );
        assert!(pool.nodes.is_empty());
        assert!(is_trimmed(status));
        assert_eq!(
            pool.abnormal_nodes,
            ["b"],
            "events name abnormal nodes from the cache"
        );
        assert_eq!(status.conditions, full.conditions);
        assert_eq!(pool.capacity, full.pool.as_ref().unwrap().capacity);
        assert!(!is_trimmed(&full));
    }

    #[test]
    fn a_trimmed_status_equals_exactly_the_statuses_equal_to_the_full_one() {
        let full = stored(vec![node("a", "Available", "4"), node("b", "Abnormal", "4")]);
        let cached = trimmed(full.clone()).status.unwrap();
        assert!(
            same(&full, &cached) && same(&cached, &full),
            "unchanged: no write"
        );
        assert!(same(&cached, &cached));

        let mut other_node = full.clone();
        other_node.pool.as_mut().unwrap().nodes[0]
            .resources
            .insert("cpu".into(), "5".into());
        assert!(!same(&other_node, &cached), "a changed node value is a change");
        let mut fewer = full.clone();
        fewer.pool.as_mut().unwrap().nodes.pop();
        assert!(!same(&fewer, &cached), "a missing node is a change");
        let mut reordered = full.clone();
        reordered.pool.as_mut().unwrap().nodes.reverse();
        assert!(!same(&reordered, &cached), "order is part of the list, as for ==");
        let mut later = full.clone();
        later.last_sync_time = Some("2026-11-28T10:05:00Z".into());
        assert!(
            !same(&later, &cached),
            "a field outside the node list is a change"
        );
        let mut no_pool = full.clone();
        no_pool.pool = None;
        assert!(!same(&no_pool, &cached));
    }

    #[test]
    fn trimming_twice_keeps_the_first_digest() {
        let full = stored(vec![node("a", "Available", "4")]);
        let mut obj = trimmed(full.clone());
        trim(&mut obj);
        assert!(same(&full, obj.status.as_ref().unwrap()));
    }

    #[test]
    fn an_empty_node_list_is_told_apart_from_a_dropped_one() {
        let empty = stored(vec![]);
        let cached = trimmed(empty.clone()).status.unwrap();
        assert!(same(&empty, &cached));
        assert!(!same(&stored(vec![node("a", "Available", "4")]), &cached));
    }
}
