//! The world: the in-memory pools, node pools and nodes the simulator serves, built from
//! [`SimData`] and mutated at run time (by the control API).
//!
//! Plain data and its mutations, no locking, auth or faults: those belong to
//! [`state`](crate::state), and the file format to [`data`](crate::data).

use crate::data::{NodePoolSpec, ScalingSpec, SimData, nodepool_name_problem};
use crate::generate::generate_nodes;
use modelarts_operator::wire::{Node, NodePhase};
use serde::Deserialize;
use std::collections::BTreeMap;

/// A lookup or change the simulator state refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StateError {
    /// Unknown project or pool (ModelArts says "Pool {name} not found.").
    #[error("Pool {0} not found.")]
    PoolNotFound(String),
    /// Unknown node pool in a known pool.
    #[error("Nodepool {0} not found.")]
    NodePoolNotFound(String),
    /// Unknown node in a known node pool.
    #[error("Node {0} not found.")]
    NodeNotFound(String),
    /// A value that cannot be used; names the field and the value.
    #[error("invalid {field} {value:?}: {reason}")]
    Invalid {
        /// The field at fault.
        field: String,
        /// Its value.
        value: String,
        /// Why it was refused.
        reason: String,
    },
}

/// A node pool as served.
#[derive(Debug, Clone)]
pub struct NodePoolRt {
    /// Node-pool name.
    pub name: String,
    /// Flavor for the node-pool endpoints.
    pub flavor: Option<String>,
    /// The nodes, in list order.
    pub nodes: Vec<Node>,
    /// Bumped on every change, so tokens record which version they were minted for.
    pub generation: u64,
    /// The node-pool object's own view (desired count, failures, response shape).
    pub scaling: ScalingSpec,
}

impl NodePoolRt {
    fn from_spec(spec: NodePoolSpec) -> Self {
        let mut nodes: Vec<Node> = spec.nodes.into_iter().map(normalize).collect();
        if let Some(g) = &spec.generate {
            nodes.extend(generate_nodes(&spec.name, g));
        }
        let flavor = spec
            .flavor
            .or_else(|| nodes.first().and_then(|n| n.spec.flavor.clone()));
        NodePoolRt {
            name: spec.name,
            flavor,
            nodes,
            generation: 1,
            scaling: spec.scaling,
        }
    }

    /// Node count per phase name.
    pub fn phase_counts(&self) -> BTreeMap<String, usize> {
        let mut out = BTreeMap::new();
        for n in &self.nodes {
            *out.entry(n.status.phase.as_str().to_string()).or_insert(0) += 1;
        }
        out
    }

    fn node_mut(&mut self, name: &str) -> Result<&mut Node, StateError> {
        self.nodes
            .iter_mut()
            .find(|n| n.metadata.name == name)
            .ok_or_else(|| StateError::NodeNotFound(name.into()))
    }
}

/// A pool as served.
#[derive(Debug, Clone)]
pub struct PoolRt {
    /// Pool ID.
    pub name: String,
    /// Display name.
    pub display_name: String,
    /// Its node pools, in data-file order.
    pub node_pools: Vec<NodePoolRt>,
}

/// Projects → pools → node pools → nodes.
#[derive(Debug, Clone, Default)]
pub struct World {
    /// Pools by project ID.
    pub projects: BTreeMap<String, Vec<PoolRt>>,
}

/// Fills in `kind`/`apiVersion` so data-file nodes look like live ones.
fn normalize(mut n: Node) -> Node {
    n.kind.get_or_insert_with(|| "Node".into());
    n.api_version.get_or_insert_with(|| "v2".into());
    n
}

/// Body of `PATCH /_sim/nodes/...`: set fields; in the maps a `null` value removes the key.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
pub struct NodePatch {
    /// New phase (any string; unknown ones are served verbatim).
    #[serde(default)]
    pub phase: Option<String>,
    /// Merged into `status.resources`.
    #[serde(default)]
    pub resources: Option<BTreeMap<String, Option<String>>>,
    /// Merged into `status.availableResources`.
    #[serde(default)]
    pub available_resources: Option<BTreeMap<String, Option<String>>>,
    /// Merged into `metadata.labels`.
    #[serde(default)]
    pub labels: Option<BTreeMap<String, Option<String>>>,
}

fn merge(target: &mut BTreeMap<String, String>, patch: Option<BTreeMap<String, Option<String>>>) {
    for (k, v) in patch.unwrap_or_default() {
        match v {
            Some(v) => target.insert(k, v),
            None => target.remove(&k),
        };
    }
}

impl World {
    /// Materializes the data (generators run here).
    pub fn from_data(data: SimData) -> Self {
        let mut projects = BTreeMap::new();
        for p in data.projects {
            let pools = p
                .pools
                .into_iter()
                .map(|pool| PoolRt {
                    display_name: pool.display_name.unwrap_or_else(|| pool.name.clone()),
                    name: pool.name,
                    node_pools: pool.node_pools.into_iter().map(NodePoolRt::from_spec).collect(),
                })
                .collect();
            projects.insert(p.id, pools);
        }
        World { projects }
    }

    /// The pools of a project (`None` if the project is unknown).
    pub fn pools(&self, project: &str) -> Option<&[PoolRt]> {
        self.projects.get(project).map(Vec::as_slice)
    }

    /// A pool; unknown project or pool → [`StateError::PoolNotFound`].
    pub fn pool(&self, project: &str, pool: &str) -> Result<&PoolRt, StateError> {
        self.pools(project)
            .and_then(|ps| ps.iter().find(|p| p.name == pool))
            .ok_or_else(|| StateError::PoolNotFound(pool.into()))
    }

    fn pool_mut(&mut self, project: &str, pool: &str) -> Result<&mut PoolRt, StateError> {
        self.projects
            .get_mut(project)
            .and_then(|ps| ps.iter_mut().find(|p| p.name == pool))
            .ok_or_else(|| StateError::PoolNotFound(pool.into()))
    }

    /// A node pool.
    pub fn node_pool(&self, project: &str, pool: &str, np: &str) -> Result<&NodePoolRt, StateError> {
        self.pool(project, pool)?
            .node_pools
            .iter()
            .find(|n| n.name == np)
            .ok_or_else(|| StateError::NodePoolNotFound(np.into()))
    }

    fn node_pool_mut(&mut self, project: &str, pool: &str, np: &str) -> Result<&mut NodePoolRt, StateError> {
        self.pool_mut(project, pool)?
            .node_pools
            .iter_mut()
            .find(|n| n.name == np)
            .ok_or_else(|| StateError::NodePoolNotFound(np.into()))
    }

    /// Applies a [`NodePatch`] and returns the node as now served.
    pub fn patch_node(
        &mut self,
        at: (&str, &str, &str),
        node: &str,
        patch: NodePatch,
    ) -> Result<Node, StateError> {
        let np = self.node_pool_mut(at.0, at.1, at.2)?;
        let n = np.node_mut(node)?;
        if let Some(p) = patch.phase {
            n.status.phase = NodePhase::parse(&p);
        }
        merge(&mut n.status.resources, patch.resources);
        merge(&mut n.status.available_resources, patch.available_resources);
        merge(&mut n.metadata.labels, patch.labels);
        let out = n.clone();
        np.generation += 1;
        Ok(out)
    }

    /// Adds a node at the end or replaces the one with the same name; true if added.
    pub fn put_node(&mut self, at: (&str, &str, &str), node: Node) -> Result<bool, StateError> {
        if node.metadata.name.is_empty() {
            let reason = "a node needs a name".to_string();
            return Err(StateError::Invalid {
                field: "metadata.name".into(),
                value: String::new(),
                reason,
            });
        }
        let np = self.node_pool_mut(at.0, at.1, at.2)?;
        np.generation += 1;
        let node = normalize(node);
        match np
            .nodes
            .iter_mut()
            .find(|n| n.metadata.name == node.metadata.name)
        {
            Some(existing) => {
                *existing = node;
                Ok(false)
            }
            None => {
                np.nodes.push(node);
                Ok(true)
            }
        }
    }

    /// Removes a node and returns it.
    pub fn delete_node(&mut self, at: (&str, &str, &str), node: &str) -> Result<Node, StateError> {
        let np = self.node_pool_mut(at.0, at.1, at.2)?;
        let i = np
            .nodes
            .iter()
            .position(|n| n.metadata.name == node)
            .ok_or_else(|| StateError::NodeNotFound(node.into()))?;
        np.generation += 1;
        Ok(np.nodes.remove(i))
    }

    /// Adds or replaces a node pool, creating the project and pool if needed.
    pub fn put_node_pool(&mut self, project: &str, pool: &str, spec: NodePoolSpec) -> Result<(), StateError> {
        if let Some(reason) = nodepool_name_problem(&spec.name) {
            let (field, value) = ("nodePool.name".into(), spec.name.clone());
            return Err(StateError::Invalid {
                field,
                value,
                reason: reason.into(),
            });
        }
        let mut data = SimData::default();
        data.upsert_node_pool(project, pool, spec);
        data.validate().map_err(|e| StateError::Invalid {
            field: "nodePool".into(),
            value: format!("{project}/{pool}"),
            reason: e.to_string(),
        })?;
        let fresh = World::from_data(data);
        for (proj, pools) in fresh.projects {
            for new_pool in pools {
                let list = self.projects.entry(proj.clone()).or_default();
                let target = match list.iter().position(|p| p.name == new_pool.name) {
                    Some(i) => &mut list[i],
                    None => {
                        list.push(PoolRt {
                            node_pools: vec![],
                            ..new_pool.clone()
                        });
                        let last = list.len() - 1;
                        &mut list[last]
                    }
                };
                for mut np in new_pool.node_pools {
                    match target.node_pools.iter_mut().find(|n| n.name == np.name) {
                        Some(old) => {
                            np.generation = old.generation + 1;
                            *old = np;
                        }
                        None => target.node_pools.push(np),
                    }
                }
            }
        }
        Ok(())
    }

    /// Changes a node pool's own view (desired count, failures, shape), keeping its nodes.
    pub fn set_scaling(&mut self, at: (&str, &str, &str), scaling: ScalingSpec) -> Result<(), StateError> {
        let np = self.node_pool_mut(at.0, at.1, at.2)?;
        np.scaling = scaling;
        Ok(())
    }

    /// Removes a node pool.
    pub fn delete_node_pool(&mut self, project: &str, pool: &str, np: &str) -> Result<(), StateError> {
        let p = self.pool_mut(project, pool)?;
        let before = p.node_pools.len();
        p.node_pools.retain(|n| n.name != np);
        if p.node_pools.len() == before {
            Err(StateError::NodePoolNotFound(np.into()))
        } else {
            Ok(())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::*;

    #[test]
    fn default_world_and_mutations() {
        let mut w = World::from_data(SimData::embedded_default());
        let at = (DEMO_PROJECT_ID, DEMO_POOL, DEMO_LARGE_NODEPOOL);
        assert_eq!(
            w.node_pool(at.0, at.1, at.2).unwrap().nodes.len(),
            DEMO_LARGE_COUNT
        );
        assert_eq!(
            w.pool("nope", DEMO_POOL).unwrap_err(),
            StateError::PoolNotFound(DEMO_POOL.into())
        );
        assert_eq!(
            w.node_pool(at.0, at.1, "np-x").unwrap_err(),
            StateError::NodePoolNotFound("np-x".into())
        );
        let patch: NodePatch =
            serde_json::from_str(r#"{"phase":"Abnormal","resources":{"cpu":"1","memory":null}}"#).unwrap();
        let n = w.patch_node(at, "node-large-0001", patch).unwrap();
        assert_eq!(n.status.phase, NodePhase::Abnormal);
        assert_eq!(n.status.resources.get("cpu").map(String::as_str), Some("1"));
        assert!(!n.status.resources.contains_key("memory"));
        assert_eq!(w.node_pool(at.0, at.1, at.2).unwrap().generation, 2);
        let removed = w.delete_node(at, "node-large-0002").unwrap();
        assert!(w.put_node(at, removed).unwrap());
        assert_eq!(
            w.node_pool(at.0, at.1, at.2)
                .unwrap()
                .nodes
                .last()
                .unwrap()
                .kind
                .as_deref(),
            Some("Node")
        );
        w.put_node_pool(
            "p2",
            DEMO_POOL,
            NodePoolSpec {
                name: "np2".into(),
                ..Default::default()
            },
        )
        .unwrap();
        assert!(w.node_pool("p2", DEMO_POOL, "np2").unwrap().nodes.is_empty());
        w.delete_node_pool("p2", DEMO_POOL, "np2").unwrap();
        assert!(
            w.put_node_pool(
                "p2",
                "short",
                NodePoolSpec {
                    name: "np2".into(),
                    ..Default::default()
                }
            )
            .is_err()
        );
    }
}
