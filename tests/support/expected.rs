//! What the simulator's embedded demo data (`simulator/src/default-data.yaml`) must summarize to,
//! worked out by hand from that file with plain integer arithmetic, never by the summary code
//! under test (`summarize`, `Summarizer`, `Quantity`). Each figure says where it comes from.
//!
//! Include it from a test file with:
//! ```ignore
//! #[path = "support/expected.rs"]
//! mod expected;
//! ```
#![allow(dead_code)]

use modelarts_operator::summary::PoolSummary;
use std::collections::BTreeMap;

/// The expected summary of a node pool, field by field.
#[derive(Debug, Clone)]
pub struct Want {
    pub node_count: i64,
    /// available, creating, deleting, abnormal, checking, other
    pub phases: [i64; 6],
    pub capacity: BTreeMap<String, String>,
    pub available: BTreeMap<String, String>,
    /// cpu, memory, gpu, npu (`available/total`)
    pub columns: [String; 4],
    /// Names in `status.nodes`, in order; `None` to check only the count.
    pub node_names: Option<Vec<String>>,
    pub nodes_in_status: usize,
    pub omitted_nodes: i64,
    pub abnormal_nodes: Vec<String>,
}

fn map(pairs: &[(&str, String)]) -> BTreeMap<String, String> {
    pairs.iter().map(|(k, v)| (k.to_string(), v.clone())).collect()
}

/// `nodepool-1`: the one node of the API documentation's example, `1930m` / `1912Mi`, no
/// `availableResources` (so the available sums are empty and the columns read `0/...`).
pub fn seed() -> Want {
    Want {
        node_count: 1,
        phases: [1, 0, 0, 0, 0, 0],
        capacity: map(&[("cpu", "1930m".into()), ("memory", "1912Mi".into())]),
        available: BTreeMap::new(),
        columns: ["0/1930m".into(), "0/1912Mi".into(), "0/0".into(), "0/0".into()],
        node_names: Some(vec!["node-dly-4".into()]),
        nodes_in_status: 1,
        omitted_nodes: 0,
        abnormal_nodes: vec![],
    }
}

/// `gpu-a100`: four nodes of cpu `190`, memory `1900Gi`, `nvidia.com/gpu: 8`; node 4 Abnormal.
/// Available: cpu 150 + 62 + 0 + 190 = 402, memory 1500 + 700 + 100 + 1900 = 4200Gi,
/// gpu 8 + 2 + 0 + 0 = 10.
pub fn gpu() -> Want {
    let (cpu, mem, gpu) = (4 * 190, 4 * 1900, 4 * 8);
    let (acpu, amem, agpu) = (150 + 62 + 190, 1500 + 700 + 100 + 1900, 8 + 2);
    Want {
        node_count: 4,
        phases: [3, 0, 0, 1, 0, 0],
        capacity: map(&[
            ("cpu", format!("{cpu}")),
            ("memory", format!("{mem}Gi")),
            ("nvidia.com/gpu", format!("{gpu}")),
        ]),
        available: map(&[
            ("cpu", format!("{acpu}")),
            ("memory", format!("{amem}Gi")),
            ("nvidia.com/gpu", format!("{agpu}")),
        ]),
        columns: [
            format!("{acpu}/{cpu}"),
            format!("{amem}Gi/{mem}Gi"),
            format!("{agpu}/{gpu}"),
            "0/0".into(),
        ],
        node_names: Some((1..=4).map(|i| format!("gpu-a100-node-{i}")).collect()),
        nodes_in_status: 4,
        omitted_nodes: 0,
        abnormal_nodes: vec!["gpu-a100-node-4".into()],
    }
}

/// `count` nodes of `GenerateSpec::new(count)`: each cpu `7800m`, memory `29000Mi`, available =
/// resources (no `availableResources` given), all Available, at most `cap` in status.
pub fn generated(count: i64, cap: usize) -> Want {
    let cpu_m = count * 7800;
    let mem_mi = count * 29_000;
    let cpu = cores_or_milli(cpu_m);
    let mem = format!("{mem_mi}Mi");
    Want {
        node_count: count,
        phases: [count, 0, 0, 0, 0, 0],
        capacity: map(&[("cpu", cpu.clone()), ("memory", mem.clone())]),
        available: map(&[("cpu", cpu.clone()), ("memory", mem.clone())]),
        columns: [
            format!("{cpu}/{cpu}"),
            format!("{mem}/{mem}"),
            "0/0".into(),
            "0/0".into(),
        ],
        node_names: None,
        nodes_in_status: (count as usize).min(cap),
        omitted_nodes: (count - cap as i64).max(0),
        abnormal_nodes: vec![],
    }
}

/// The demo's `large` pool: 3000 generated nodes of cpu `7800m` / memory `29000Mi`, available
/// `5200m` / `21000Mi`; phases Abnormal 4, Creating 3, Checking 2, Deleting 1, the rest (2990)
/// Available; 200 in status (the default cap), the 10 non-Available ones among them.
pub fn large() -> Want {
    let n = 3000;
    let (cpu_m, mem_mi) = (n * 7800, n * 29_000);
    let (acpu_m, amem_mi) = (n * 5200, n * 21_000);
    // 23,400,000m is a whole 23,400 cores; 87,000,000Mi is not a whole number of Gi.
    let (cpu, acpu) = (cores_or_milli(cpu_m), cores_or_milli(acpu_m));
    Want {
        node_count: n,
        phases: [n - 10, 3, 1, 4, 2, 0],
        capacity: map(&[("cpu", cpu.clone()), ("memory", format!("{mem_mi}Mi"))]),
        available: map(&[("cpu", acpu.clone()), ("memory", format!("{amem_mi}Mi"))]),
        columns: [
            format!("{acpu}/{cpu}"),
            format!("{amem_mi}Mi/{mem_mi}Mi"),
            "0/0".into(),
            "0/0".into(),
        ],
        node_names: None,
        nodes_in_status: 200,
        omitted_nodes: n - 200,
        abnormal_nodes: vec![],
    }
}

/// Kubernetes' canonical form of a millicore count (decimal SI): `Nm` unless whole cores, then
/// the largest suffix that keeps the number whole (`23400`, `78k`).
fn cores_or_milli(m: i64) -> String {
    if m % 1000 != 0 {
        return format!("{m}m");
    }
    let cores = m / 1000;
    for (suffix, unit) in [("G", 1_000_000_000), ("M", 1_000_000), ("k", 1000)] {
        if cores != 0 && cores % unit == 0 {
            return format!("{}{suffix}", cores / unit);
        }
    }
    format!("{cores}")
}

/// Asserts `pool` field by field against `want`.
pub fn assert_pool(pool: &PoolSummary, want: &Want, what: &str) {
    assert_eq!(pool.node_count, want.node_count, "{what}: nodeCount");
    let p = &pool.phases;
    assert_eq!(
        [
            p.available,
            p.creating,
            p.deleting,
            p.abnormal,
            p.checking,
            p.other
        ],
        want.phases,
        "{what}: phases (available, creating, deleting, abnormal, checking, other)"
    );
    assert_eq!(pool.capacity, want.capacity, "{what}: exact capacity sums");
    assert_eq!(pool.available, want.available, "{what}: exact available sums");
    let c = &pool.columns;
    assert_eq!(
        [&c.cpu, &c.memory, &c.gpu, &c.npu],
        [
            &want.columns[0],
            &want.columns[1],
            &want.columns[2],
            &want.columns[3]
        ],
        "{what}: columns"
    );
    assert_eq!(pool.nodes.len(), want.nodes_in_status, "{what}: nodes in status");
    assert_eq!(pool.omitted_nodes, want.omitted_nodes, "{what}: omittedNodes");
    if let Some(names) = &want.node_names {
        let got: Vec<&str> = pool.nodes.iter().map(|n| n.name.as_str()).collect();
        assert_eq!(got, *names, "{what}: node names");
    }
    if want.phases[3] <= want.nodes_in_status as i64 {
        assert_eq!(
            pool.abnormal_nodes.len() as i64,
            want.phases[3],
            "{what}: abnormalNodes"
        );
    }
    if !want.abnormal_nodes.is_empty() {
        assert_eq!(pool.abnormal_nodes, want.abnormal_nodes, "{what}: abnormalNodes");
    }
    // Non-Available nodes are kept first when the list is cut.
    let non_available = want.node_count - want.phases[0];
    let shown = pool.nodes.iter().filter(|n| n.phase != "Available").count() as i64;
    assert_eq!(
        shown,
        non_available.min(want.nodes_in_status as i64),
        "{what}: non-Available nodes kept in status"
    );
}
