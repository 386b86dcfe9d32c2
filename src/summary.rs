//! Pure aggregation of ModelArts nodes into the pool summary the status carries.
//!
//! Pages are folded in one at a time, so memory is bounded by the capped node list,
//! not by the size of the pool.

use crate::{
    quantity::Quantity,
    wire::{Node, NodePhase},
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BinaryHeap};

/// Default cap on the per-node list kept in status.
pub const DEFAULT_MAX_NODES: usize = 200;
/// Cap on `abnormalNodes`, independent of `maxNodesInStatus`: conditions and events
/// name abnormal nodes even when status lists no nodes. 1,000 names stay far below the
/// API server's object size limit.
pub const MAX_ABNORMAL_NAMES: usize = 1000;
/// Cap on the number of unparsable-quantity reports kept.
pub const MAX_QUANTITY_ERRORS: usize = 20;

/// Node counts per phase; every phase is always present.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PhaseCounts {
    /// Nodes in `Available`.
    pub available: i64,
    /// Nodes in `Creating`.
    pub creating: i64,
    /// Nodes in `Deleting`.
    pub deleting: i64,
    /// Nodes in `Abnormal`.
    pub abnormal: i64,
    /// Nodes in `Checking`.
    pub checking: i64,
    /// Nodes in any other (or no) phase.
    pub other: i64,
}

impl PhaseCounts {
    fn count(&mut self, phase: &NodePhase) {
        let slot = match phase {
            NodePhase::Available => &mut self.available,
            NodePhase::Creating => &mut self.creating,
            NodePhase::Deleting => &mut self.deleting,
            NodePhase::Abnormal => &mut self.abnormal,
            NodePhase::Checking => &mut self.checking,
            NodePhase::Other(_) | NodePhase::Missing => &mut self.other,
        };
        *slot += 1;
    }
}

/// One node as shown in status.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct NodeSummary {
    /// Node name.
    pub name: String,
    /// Phase as ModelArts reports it.
    pub phase: String,
    /// Availability zone.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub az: Option<String>,
    /// Private IP address.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub private_ip: Option<String>,
    /// Flavor ID.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub flavor: Option<String>,
    /// Total resources, as reported.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub resources: BTreeMap<String, String>,
    /// Available resources, as reported.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub available_resources: BTreeMap<String, String>,
}

/// Display-ready `available/total` strings for the printer columns.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct ResourceColumns {
    /// CPU cores, e.g. `3860m/7720m`.
    pub cpu: String,
    /// Memory, e.g. `1912Mi/3824Mi`.
    pub memory: String,
    /// NVIDIA GPUs (`nvidia.com/gpu`), e.g. `8/16`.
    pub gpu: String,
    /// Ascend NPUs (all `huawei.com/ascend-*`), e.g. `8/16`.
    pub npu: String,
}

impl Default for ResourceColumns {
    fn default() -> Self {
        let zero = "0/0".to_string();
        ResourceColumns {
            cpu: zero.clone(),
            memory: zero.clone(),
            gpu: zero.clone(),
            npu: zero,
        }
    }
}

/// Everything one successful sync learns about a node pool.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "camelCase")]
pub struct PoolSummary {
    /// Number of nodes in the pool.
    pub node_count: i64,
    /// Node counts per phase.
    pub phases: PhaseCounts,
    /// Sum of every node's `resources` (resource name → exact quantity).
    pub capacity: BTreeMap<String, String>,
    /// Sum of every node's `availableResources`.
    pub available: BTreeMap<String, String>,
    /// `available/total` strings for `kubectl get` columns.
    pub columns: ResourceColumns,
    /// Per-node details sorted by name, capped; non-`Available` nodes are kept first.
    pub nodes: Vec<NodeSummary>,
    /// Nodes left out of `nodes` by the cap.
    pub omitted_nodes: i64,
    /// Names of `Abnormal` nodes, sorted; the first 1,000 when there are more
    /// (`phases.abnormal` has the count). Not limited by `maxNodesInStatus`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub abnormal_nodes: Vec<String>,
    /// Resource values that are not quantities and were left out of the sums.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub invalid_quantities: Vec<String>,
    /// Only on the watch cache's copies, which drop `nodes` to save memory: the digest of
    /// the list that was there ([`crate::trim`]). Never serialized.
    #[serde(skip)]
    #[schemars(skip)]
    pub trimmed_nodes: Option<crate::trim::NodesDigest>,
}

/// Heap entry ordered so that the heap's maximum is the entry to drop first:
/// `Available` nodes go before the others, and later names before earlier ones.
#[derive(PartialEq, Eq)]
struct Kept(NodeSummary);

impl Kept {
    fn key(&self) -> (bool, &str) {
        (self.0.phase == "Available", &self.0.name)
    }
}

impl Ord for Kept {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.key().cmp(&other.key())
    }
}

impl PartialOrd for Kept {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// Folds nodes page by page into a [`PoolSummary`].
pub struct Summarizer {
    max_nodes: usize,
    node_count: i64,
    phases: PhaseCounts,
    capacity: BTreeMap<String, Quantity>,
    available: BTreeMap<String, Quantity>,
    kept: BinaryHeap<Kept>,
    abnormal: BinaryHeap<String>,
    invalid: Vec<String>,
    invalid_total: usize,
}

impl Summarizer {
    /// A summarizer keeping at most `max_nodes` per-node entries.
    pub fn new(max_nodes: usize) -> Self {
        Summarizer {
            max_nodes,
            node_count: 0,
            phases: PhaseCounts::default(),
            capacity: BTreeMap::new(),
            available: BTreeMap::new(),
            kept: BinaryHeap::new(),
            abnormal: BinaryHeap::new(),
            invalid: Vec::new(),
            invalid_total: 0,
        }
    }

    /// Adds every node of one page.
    pub fn add_page(&mut self, nodes: &[Node]) {
        for node in nodes {
            self.add(node);
        }
    }

    /// Adds one node.
    pub fn add(&mut self, node: &Node) {
        let name = &node.metadata.name;
        let status = &node.status;
        self.node_count += 1;
        self.phases.count(&status.phase);
        self.sum_into(true, name, &status.resources);
        self.sum_into(false, name, &status.available_resources);
        if status.phase == NodePhase::Abnormal {
            push_capped(&mut self.abnormal, name.clone(), MAX_ABNORMAL_NAMES);
        }
        // Most nodes of a large pool are not kept: decide before cloning their details.
        let key = (status.phase == NodePhase::Available, name.as_str());
        if self.max_nodes == 0
            || (self.kept.len() >= self.max_nodes && self.kept.peek().is_some_and(|w| key >= w.key()))
        {
            return;
        }
        let entry = Kept(NodeSummary {
            name: name.clone(),
            phase: status.phase.as_str().to_string(),
            az: status.az.clone(),
            private_ip: status.private_ip.clone(),
            flavor: node.spec.flavor.clone(),
            resources: status.resources.clone(),
            available_resources: status.available_resources.clone(),
        });
        push_capped(&mut self.kept, entry, self.max_nodes);
    }

    fn sum_into(&mut self, capacity: bool, node: &str, values: &BTreeMap<String, String>) {
        let field = if capacity {
            "resources"
        } else {
            "availableResources"
        };
        for (resource, raw) in values {
            let parsed = Quantity::parse(raw).map_err(|e| e.to_string()).and_then(|q| {
                let sums = if capacity {
                    &mut self.capacity
                } else {
                    &mut self.available
                };
                // Look up before inserting: the key is allocated once per resource name,
                // not once per node.
                let slot = match sums.get_mut(resource) {
                    Some(slot) => slot,
                    None => sums.entry(resource.clone()).or_insert(Quantity::ZERO),
                };
                slot.checked_add(q)
                    .map(|total| *slot = total)
                    .ok_or_else(|| "sum overflows".to_string())
            });
            if let Err(reason) = parsed {
                self.invalid_total += 1;
                if self.invalid.len() < MAX_QUANTITY_ERRORS {
                    self.invalid
                        .push(format!("node {node}: {field}[{resource}]={raw:?}: {reason}"));
                }
            }
        }
    }

    /// The finished summary.
    pub fn finish(self) -> PoolSummary {
        let kept_len = self.kept.len();
        let mut nodes: Vec<NodeSummary> = self.kept.into_iter().map(|k| k.0).collect();
        nodes.sort_by(|a, b| a.name.cmp(&b.name));
        let mut abnormal_nodes = self.abnormal.into_vec();
        abnormal_nodes.sort();
        let mut invalid_quantities = self.invalid;
        if self.invalid_total > invalid_quantities.len() {
            invalid_quantities.push(format!(
                "... and {} more",
                self.invalid_total - invalid_quantities.len()
            ));
        }
        let render = |m: &BTreeMap<String, Quantity>| -> BTreeMap<String, String> {
            m.iter().map(|(k, v)| (k.clone(), v.to_string())).collect()
        };
        PoolSummary {
            node_count: self.node_count,
            phases: self.phases,
            columns: columns(&self.capacity, &self.available),
            capacity: render(&self.capacity),
            available: render(&self.available),
            nodes,
            omitted_nodes: self.node_count - kept_len as i64,
            abnormal_nodes,
            invalid_quantities,
            trimmed_nodes: None,
        }
    }
}

/// Keeps the `cap` smallest items of a max-heap.
fn push_capped<T: Ord>(heap: &mut BinaryHeap<T>, item: T, cap: usize) {
    if heap.len() < cap {
        heap.push(item);
    } else if heap.peek().is_some_and(|worst| item < *worst) {
        heap.pop();
        heap.push(item);
    }
}

/// Sums the resources whose name matches `pick` (several NPU kinds make one column).
fn total_of(m: &BTreeMap<String, Quantity>, pick: impl Fn(&str) -> bool) -> Quantity {
    m.iter()
        .filter(|(k, _)| pick(k))
        .fold(Quantity::ZERO, |acc, (_, v)| acc.checked_add(*v).unwrap_or(acc))
}

fn columns(capacity: &BTreeMap<String, Quantity>, available: &BTreeMap<String, Quantity>) -> ResourceColumns {
    let pair =
        |pick: &dyn Fn(&str) -> bool| format!("{}/{}", total_of(available, pick), total_of(capacity, pick));
    ResourceColumns {
        cpu: pair(&|k| k == "cpu"),
        memory: pair(&|k| k == "memory"),
        gpu: pair(&|k| k == "nvidia.com/gpu"),
        npu: pair(&|k| k.starts_with("huawei.com/ascend")),
    }
}

/// Summarizes a complete node list in one call.
pub fn summarize(nodes: &[Node], max_nodes: usize) -> PoolSummary {
    let mut s = Summarizer::new(max_nodes);
    s.add_page(nodes);
    s.finish()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::wire::NodeList;

    fn node(name: &str, phase: &str, res: &[(&str, &str)], avail: &[(&str, &str)]) -> Node {
        let mut n = Node::default();
        n.metadata.name = name.into();
        n.status.phase = NodePhase::parse(phase);
        n.status.resources = res.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
        n.status.available_resources = avail
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        n
    }

    #[test]
    fn the_seed_example() {
        let list: NodeList = serde_json::from_str(
            r#"{"kind":"NodeList","apiVersion":"v2","metadata":{},"items":[{"kind":"Node","apiVersion":"v2",
            "metadata":{"name":"node-dly-4"},"spec":{"flavor":"modelarts.vm.2u4g.dcc"},
            "status":{"phase":"Available","az":"cn-north-7c","privateIp":"192.168.1.132",
            "resources":{"cpu":"1930m","memory":"1912Mi"}}}]}"#,
        )
        .unwrap();
        let s = summarize(&list.items, DEFAULT_MAX_NODES);
        assert_eq!(s.node_count, 1);
        assert_eq!(
            s.phases,
            PhaseCounts {
                available: 1,
                ..Default::default()
            }
        );
        assert_eq!(s.capacity["cpu"], "1930m");
        assert_eq!(s.capacity["memory"], "1912Mi");
        assert!(s.available.is_empty());
        assert_eq!(s.columns.cpu, "0/1930m");
        assert_eq!(s.columns.memory, "0/1912Mi");
        assert_eq!(s.columns.gpu, "0/0");
        assert_eq!(s.nodes[0].flavor.as_deref(), Some("modelarts.vm.2u4g.dcc"));
        assert_eq!(s.nodes[0].private_ip.as_deref(), Some("192.168.1.132"));
        assert_eq!(s.omitted_nodes, 0);
    }

    #[test]
    fn counts_every_phase_and_sums_gpus_and_npus() {
        let nodes = vec![
            node(
                "a",
                "Available",
                &[("nvidia.com/gpu", "8")],
                &[("nvidia.com/gpu", "2")],
            ),
            node(
                "b",
                "Abnormal",
                &[("nvidia.com/gpu", "8")],
                &[("nvidia.com/gpu", "0")],
            ),
            node(
                "c",
                "Creating",
                &[("huawei.com/ascend-snt9", "8"), ("huawei.com/ascend-snt3", "4")],
                &[],
            ),
            node("d", "Deleting", &[], &[]),
            node("e", "Checking", &[], &[]),
            node("f", "Rebooting", &[], &[]),
            node("g", "", &[], &[]),
        ];
        let s = summarize(&nodes, 10);
        assert_eq!(
            s.phases,
            PhaseCounts {
                available: 1,
                creating: 1,
                deleting: 1,
                abnormal: 1,
                checking: 1,
                other: 2
            }
        );
        assert_eq!(s.columns.gpu, "2/16");
        assert_eq!(s.columns.npu, "0/12");
        assert_eq!(s.abnormal_nodes, vec!["b"]);
        let json = serde_json::to_value(&s.phases).unwrap();
        assert_eq!(
            json.as_object().unwrap().len(),
            6,
            "all phases always present: {json}"
        );
    }

    #[test]
    fn bad_quantities_are_reported_not_dropped_silently() {
        let nodes = vec![
            node("a", "Available", &[("cpu", "4"), ("memory", "lots")], &[]),
            node("b", "Available", &[("cpu", "4")], &[]),
        ];
        let s = summarize(&nodes, 10);
        assert_eq!(s.capacity["cpu"], "8");
        assert!(!s.capacity.contains_key("memory"));
        assert_eq!(s.invalid_quantities.len(), 1);
        assert!(s.invalid_quantities[0].contains("node a") && s.invalid_quantities[0].contains("\"lots\""));
    }

    #[test]
    fn the_cap_keeps_problem_nodes_and_sorts_by_name() {
        let mut nodes: Vec<Node> = (0..50)
            .map(|i| node(&format!("n{i:03}"), "Available", &[("cpu", "1")], &[]))
            .collect();
        nodes.push(node("z-bad", "Abnormal", &[("cpu", "1")], &[]));
        nodes.push(node("a-new", "Creating", &[("cpu", "1")], &[]));
        let s = summarize(&nodes, 5);
        let names: Vec<&str> = s.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(names, vec!["a-new", "n000", "n001", "n002", "z-bad"]);
        assert_eq!(s.omitted_nodes, 47);
        assert_eq!(s.node_count, 52);
        assert_eq!(s.capacity["cpu"], "52");
    }

    #[test]
    fn abnormal_names_do_not_follow_the_node_cap() {
        let nodes = vec![
            node("b", "Abnormal", &[], &[]),
            node("a", "Available", &[], &[]),
            node("c", "Abnormal", &[], &[]),
        ];
        let s = summarize(&nodes, 0);
        assert!(s.nodes.is_empty());
        assert_eq!(s.abnormal_nodes, vec!["b", "c"]);
        let many: Vec<Node> = (0..1500)
            .rev()
            .map(|i| node(&format!("n{i:04}"), "Abnormal", &[], &[]))
            .collect();
        let s = summarize(&many, 2);
        assert_eq!(s.phases.abnormal, 1500);
        assert_eq!(s.abnormal_nodes.len(), 1000);
        assert_eq!(s.abnormal_nodes.first().map(String::as_str), Some("n0000"));
        assert_eq!(s.abnormal_nodes.last().map(String::as_str), Some("n0999"));
    }

    #[test]
    fn paging_gives_the_same_answer_as_one_list() {
        let nodes: Vec<Node> = (0..1000)
            .map(|i| {
                node(
                    &format!("n{i:04}"),
                    if i % 7 == 0 { "Abnormal" } else { "Available" },
                    &[("cpu", "1930m"), ("memory", "1912Mi")],
                    &[("cpu", "250m")],
                )
            })
            .collect();
        let whole = summarize(&nodes, 20);
        let mut paged = Summarizer::new(20);
        for page in nodes.chunks(37) {
            paged.add_page(page);
        }
        assert_eq!(paged.finish(), whole);
        assert_eq!(whole.capacity["cpu"], "1930");
        assert_eq!(whole.capacity["memory"], format!("{}Mi", 1912 * 1000));
        assert_eq!(whole.available["cpu"], "250");
    }
}
