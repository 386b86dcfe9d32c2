//! Deterministic node generation for large simulated node pools.

use crate::data::GenerateSpec;
use modelarts_operator::wire::{Node, NodeMetadata, NodePhase, NodeSpec, NodeStatus};
use std::collections::BTreeMap;

/// Label holding the node-pool name on every node (TF and OTC read it this way).
pub const NODEPOOL_LABEL: &str = "os.modelarts.node/nodepool";
/// Second node-pool label seen in the SDK models.
pub const NODEPOOL_NAME_LABEL: &str = "os.modelarts.node/nodepoolname";

/// Builds `spec.count` nodes for node pool `nodepool`; the same spec always gives the same list.
pub fn generate_nodes(nodepool: &str, spec: &GenerateSpec) -> Vec<Node> {
    let phases = phase_plan(spec.count, &spec.phases);
    let width = digits(spec.count).max(4);
    let base = spec
        .creation_timestamp
        .parse::<jiff::Timestamp>()
        .unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let mut labels = spec.labels.clone();
    labels.insert(NODEPOOL_LABEL.into(), nodepool.into());
    labels.insert(NODEPOOL_NAME_LABEL.into(), nodepool.into());
    let available = if spec.available_resources.is_empty() {
        &spec.resources
    } else {
        &spec.available_resources
    };
    (0..spec.count)
        .map(|i| {
            let created = base
                .checked_add(jiff::SignedDuration::from_secs(60 * i as i64))
                .unwrap_or(base)
                .to_string();
            let az = spec.azs.get(i % spec.azs.len().max(1)).cloned();
            Node {
                api_version: Some("v2".into()),
                kind: Some("Node".into()),
                metadata: NodeMetadata {
                    name: format!("{}{:0width$}", spec.name_prefix, i + 1),
                    creation_timestamp: Some(created),
                    labels: labels.clone(),
                    extra: Default::default(),
                },
                spec: NodeSpec {
                    flavor: Some(spec.flavor.clone()),
                    extra: Default::default(),
                },
                status: NodeStatus {
                    phase: phases.get(&i).cloned().unwrap_or(NodePhase::Available),
                    az,
                    private_ip: Some(private_ip(i)),
                    resources: spec.resources.clone(),
                    available_resources: available.clone(),
                    extra: Default::default(),
                },
            }
        })
        .collect()
}

/// Spreads the non-`Available` phases evenly so that every page of a long list sees some.
fn phase_plan(count: usize, phases: &BTreeMap<String, usize>) -> BTreeMap<usize, NodePhase> {
    let special: Vec<&String> = phases
        .iter()
        .flat_map(|(p, n)| std::iter::repeat_n(p, *n))
        .collect();
    let k = special.len();
    if k == 0 || count == 0 {
        return BTreeMap::new();
    }
    let step = count / k;
    special
        .into_iter()
        .enumerate()
        .map(|(j, p)| ((j * count / k + step / 2).min(count - 1), NodePhase::parse(p)))
        .collect()
}

fn digits(n: usize) -> usize {
    n.to_string().len()
}

/// `10.x.y.z` from the index, never ending in `.0`.
fn private_ip(i: usize) -> String {
    let n = i + 1;
    format!("10.{}.{}.{}", (n >> 16) & 0xff, (n >> 8) & 0xff, n & 0xff)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_spreads_phases() {
        let mut spec = GenerateSpec::new(3000);
        spec.phases = BTreeMap::from([
            ("Abnormal".into(), 3),
            ("Creating".into(), 2),
            ("Frozen".into(), 1),
        ]);
        let a = generate_nodes("large", &spec);
        assert_eq!(a, generate_nodes("large", &spec));
        assert_eq!(a.len(), 3000);
        assert_eq!(a[0].metadata.name, "node-gen-0001");
        assert_eq!(a[2999].metadata.name, "node-gen-3000");
        assert_eq!(a[0].metadata.labels[NODEPOOL_LABEL], "large");
        let count = |p: &NodePhase| a.iter().filter(|n| &n.status.phase == p).count();
        assert_eq!(count(&NodePhase::Abnormal), 3);
        assert_eq!(count(&NodePhase::Creating), 2);
        assert_eq!(count(&NodePhase::Other("Frozen".into())), 1);
        assert_eq!(count(&NodePhase::Available), 2994);
        let first_special = a
            .iter()
            .position(|n| n.status.phase != NodePhase::Available)
            .unwrap();
        assert!(
            first_special > 0 && first_special < 500,
            "spread, not bunched at the start"
        );
        assert_eq!(
            a[1].metadata.creation_timestamp.as_deref(),
            Some("2024-02-01T00:01:00Z")
        );
    }

    #[test]
    fn every_node_is_special_when_asked() {
        let mut spec = GenerateSpec::new(3);
        spec.phases = BTreeMap::from([("Abnormal".into(), 3)]);
        assert!(
            generate_nodes("np", &spec)
                .iter()
                .all(|n| n.status.phase == NodePhase::Abnormal)
        );
    }
}
