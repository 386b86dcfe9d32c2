//! End-to-end: the operator binary, as a separate process under a ServiceAccount with only the
//! chart's RBAC, against a real kube-apiserver and the in-process ModelArts simulator.
//!
//! Run:
//! ```text
//! eval "$(CONTROL_PLANE_DIR=/tmp/mo/e2e-plane hack/control-plane.sh up)" && \
//!   MODELARTS_REQUIRE_CLUSTER=1 cargo test --test e2e_operator -- --test-threads=8
//! ```
//! Without KUBECONFIG every test prints SKIPPED and passes (unless MODELARTS_REQUIRE_CLUSTER=1).
//! Each test has its own namespace, simulator and operator shard (`--label-selector e2e=<id>`).

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/expected.rs"]
mod expected;
#[path = "support/operator.rs"]
mod operator;

use kube::api::{Api, PostParams};
use modelarts_operator::crd::ModelArtsNodePool;
use modelarts_operator::summary::PoolSummary;
use modelarts_simulator::{
    CredentialSpec, DEMO_ACCESS_KEY, DEMO_GPU_NODEPOOL, DEMO_LARGE_COUNT, DEMO_LARGE_NODEPOOL, DEMO_NODE,
    DEMO_NODEPOOL, DEMO_POOL, DEMO_PROJECT_ID, DEMO_SECRET_KEY, Fault, FaultKind, GenerateSpec, NodePoolSpec,
    ScalingSpec, SimData, SimOptions, Simulator,
};
use operator::{E2e, TIMEOUT, cond, cond_message, has_cond, summarize_events, wait_until};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::Duration;

const READY: &[(&str, &str, &str)] = &[
    ("Synced", "True", "Synced"),
    ("Healthy", "True", "NoAbnormalNodes"),
    ("Ready", "True", "Ready"),
];

/// The expected summary of a demo node pool, worked out from the demo data by hand
/// (`support/expected.rs`), never by the summary code under test.
fn want(nodepool: &str) -> expected::Want {
    match nodepool {
        DEMO_NODEPOOL => expected::seed(),
        DEMO_GPU_NODEPOOL => expected::gpu(),
        DEMO_LARGE_NODEPOOL => expected::large(),
        // `GenerateSpec::new(3)`, added by unknown_nodepool_fails_then_recovers.
        "not-there-yet" => expected::generated(3, 200),
        other => panic!("no expected summary for node pool {other}"),
    }
}

fn pool_of(obj: &ModelArtsNodePool) -> PoolSummary {
    obj.status
        .as_ref()
        .and_then(|s| s.pool.clone())
        .expect("status carries node data")
}

fn last_sync(obj: &ModelArtsNodePool) -> Option<String> {
    obj.status.as_ref().and_then(|s| s.last_sync_time.clone())
}

/// Splits `kubectl get -o wide` output into (header, value) pairs per row, by the header's column
/// starts (kubectl left-aligns every column at its header).
fn table(text: &str) -> Vec<Vec<(String, String)>> {
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().expect("kubectl printed a header");
    let mut starts = Vec::new();
    let bytes = header.as_bytes();
    for i in 0..bytes.len() {
        let starts_word =
            bytes[i] != b' ' && (i == 0 || (i >= 2 && bytes[i - 1] == b' ' && bytes[i - 2] == b' '));
        if starts_word {
            starts.push(i);
        }
    }
    let cell = |line: &str, k: usize| -> String {
        let from = starts[k].min(line.len());
        let to = starts.get(k + 1).copied().unwrap_or(line.len()).min(line.len());
        line[from..to].trim().to_string()
    };
    let names: Vec<String> = (0..starts.len()).map(|k| cell(header, k)).collect();
    lines
        .map(|l| {
            names
                .iter()
                .enumerate()
                .map(|(k, n)| (n.clone(), cell(l, k)))
                .collect()
        })
        .collect()
}

/// (1a) The seed example: status, conditions and every printer column of `kubectl get -o wide`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_example_status_and_printer_columns() {
    let Some(e) = E2e::start("seed_example_status_and_printer_columns", "e2e-seed").await else {
        return;
    };
    let ns = e.ns.clone();
    e.put_secret(&ns, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY).await;
    e.create_pool(&ns, "seed", DEMO_NODEPOOL, "creds", json!({}))
        .await;
    let obj = e.wait_conds(&ns, "seed", READY).await;

    let status = obj.status.clone().unwrap();
    assert_eq!(status.observed_generation, obj.metadata.generation);
    assert!(status.last_sync_time.is_some(), "lastSyncTime set");
    let pool = pool_of(&obj);
    assert_eq!(pool.node_count, 1);
    assert_eq!(pool.phases.available, 1);
    assert_eq!(
        pool.capacity,
        BTreeMap::from([
            ("cpu".to_string(), "1930m".to_string()),
            ("memory".into(), "1912Mi".into())
        ])
    );
    assert_eq!(pool.columns.cpu, "0/1930m");
    assert_eq!(pool.columns.memory, "0/1912Mi");
    assert_eq!(
        (pool.columns.gpu.as_str(), pool.columns.npu.as_str()),
        ("0/0", "0/0")
    );
    assert_eq!(pool.nodes.len(), 1);
    assert_eq!(pool.nodes[0].name, DEMO_NODE);
    assert_eq!(pool.nodes[0].private_ip.as_deref(), Some("192.168.1.132"));
    expected::assert_pool(&pool, &want(DEMO_NODEPOOL), DEMO_NODEPOOL);
    for c in &status.conditions {
        assert_eq!(c.observed_generation, obj.metadata.generation, "{c:?}");
    }

    // kubectl, as a person would look at it: every column, wide, has a value.
    let out = std::process::Command::new(operator::kubectl())
        .args(["get", "mann", "-n", &ns, "-o", "wide"])
        .output()
        .unwrap_or_else(|err| panic!("running {}: {err}", operator::kubectl().display()));
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "kubectl failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows = table(&text);
    assert_eq!(rows.len(), 1, "one row:\n{text}");
    let row: BTreeMap<String, String> = rows[0].iter().cloned().collect();
    let headers: Vec<&str> = rows[0].iter().map(|(h, _)| h.as_str()).collect();
    assert_eq!(
        headers,
        [
            "NAME",
            "POOL",
            "NODEPOOL",
            "DESIRED",
            "NODES",
            "AVAILABLE",
            "ABNORMAL",
            "READY",
            "AGE",
            "SCALING",
            "CREATING",
            "DELETING",
            "CHECKING",
            "CPU",
            "MEMORY",
            "GPU",
            "NPU",
            "LAST SYNC"
        ],
        "\n{text}"
    );
    for (h, v) in &rows[0] {
        assert!(!v.is_empty() && v != "<none>", "column {h} has no value:\n{text}");
    }
    let want = [
        ("NAME", "seed"),
        ("POOL", DEMO_POOL),
        ("NODEPOOL", DEMO_NODEPOOL),
        ("DESIRED", "1"),
        ("NODES", "1"),
        ("AVAILABLE", "1"),
        ("ABNORMAL", "0"),
        ("READY", "True"),
        ("SCALING", "Converged"),
        ("CREATING", "0"),
        ("DELETING", "0"),
        ("CHECKING", "0"),
        ("CPU", "0/1930m"),
        ("MEMORY", "0/1912Mi"),
        ("GPU", "0/0"),
        ("NPU", "0/0"),
    ];
    for (h, v) in want {
        assert_eq!(row[h], v, "column {h}:\n{text}");
    }
    e.finish().await;
}

/// (1b) A 3000-node pool read 100 at a time: 30 requests, sums equal to the simulator's data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn large_pool_pages_and_exact_sums() {
    let Some(e) = E2e::start("large_pool_pages_and_exact_sums", "e2e-large").await else {
        return;
    };
    let ns = e.ns.clone();
    e.put_secret(&ns, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY).await;
    e.create_pool(
        &ns,
        "large",
        DEMO_LARGE_NODEPOOL,
        "creds",
        json!({"pageSize": 100}),
    )
    .await;
    let obj = e
        .wait_pool(&ns, "large", "Synced True", |o| {
            has_cond(o, "Synced", "True", "Synced")
        })
        .await;
    // Read right away: the next sync is ≥ 9 s away.
    let stats = e.sim.state().stats();
    assert_eq!(stats.requests, 30, "3000 nodes / 100 per page: {stats:?}");
    assert_eq!(
        stats.by_status,
        BTreeMap::from([("200".to_string(), 30)]),
        "every page answered 200"
    );
    assert_eq!(stats.last_limit.as_deref(), Some("100"));

    let pool = pool_of(&obj);
    assert_eq!(pool.node_count, DEMO_LARGE_COUNT as i64);
    assert_eq!(pool.phases.abnormal, 4);
    // 3000 nodes × 7800m / 29000Mi, available 5200m / 21000Mi (the demo data's generator
    // parameters), in plain integer arithmetic: 23,400,000m = 23400 cores exactly; 87,000,000Mi is
    // no whole number of Gi, so it stays in Mi.
    let (cpu_m, mem_mi, acpu_m, amem_mi) = (3000 * 7800, 3000 * 29_000, 3000 * 5200, 3000 * 21_000);
    assert_eq!((cpu_m, acpu_m), (23_400_000, 15_600_000));
    assert_eq!(
        pool.capacity,
        BTreeMap::from([
            ("cpu".to_string(), format!("{}", cpu_m / 1000)),
            ("memory".to_string(), format!("{mem_mi}Mi")),
        ]),
        "exact capacity sums"
    );
    assert_eq!(
        pool.available,
        BTreeMap::from([
            ("cpu".to_string(), format!("{}", acpu_m / 1000)),
            ("memory".to_string(), format!("{amem_mi}Mi")),
        ]),
        "exact available sums"
    );
    assert_eq!(pool.columns.cpu, "15600/23400");
    assert_eq!(pool.columns.memory, "63000000Mi/87000000Mi");
    expected::assert_pool(&pool, &want(DEMO_LARGE_NODEPOOL), DEMO_LARGE_NODEPOOL);
    assert_eq!(pool.nodes.len(), 200, "maxNodesInStatus default");
    assert_eq!(pool.omitted_nodes, 2800);
    assert!(has_cond(&obj, "Healthy", "False", "NodesAbnormal"));
    assert!(has_cond(&obj, "Ready", "False", "NodesAbnormal"));
    e.finish().await;
}

/// (2) A node turns Abnormal and back: phases, conditions, one event each way.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_abnormal_and_recovered_emit_one_event_each() {
    let Some(e) = E2e::start("node_abnormal_and_recovered_emit_one_event_each", "e2e-abn").await else {
        return;
    };
    let ns = e.ns.clone();
    e.put_secret(&ns, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY).await;
    e.create_pool(&ns, "np", DEMO_NODEPOOL, "creds", json!({})).await;
    e.wait_conds(&ns, "np", READY).await;

    e.set_node_phase(DEMO_NODE, "Abnormal");
    let obj = e
        .wait_conds(
            &ns,
            "np",
            &[
                ("Synced", "True", "Synced"),
                ("Healthy", "False", "NodesAbnormal"),
                ("Ready", "False", "NodesAbnormal"),
            ],
        )
        .await;
    let pool = pool_of(&obj);
    assert_eq!((pool.phases.abnormal, pool.phases.available), (1, 0));
    assert_eq!(pool.abnormal_nodes, vec![DEMO_NODE.to_string()]);
    assert!(cond_message(&obj, "Healthy").contains(DEMO_NODE));
    let ev = e.wait_event_count(&ns, "np", "NodeAbnormal", 1).await;
    let ev = &ev[0];
    assert_eq!(ev.type_.as_deref(), Some("Warning"));
    assert!(ev.note.as_deref().unwrap_or("").contains(DEMO_NODE), "{ev:?}");
    assert_eq!(ev.reporting_controller.as_deref(), Some("modelarts-operator"));
    let regarding = ev.regarding.as_ref().unwrap();
    assert_eq!(regarding.uid, obj.metadata.uid, "regards this very object");
    assert_eq!(
        regarding.api_version.as_deref(),
        Some("modelarts-operator.io/v1alpha1")
    );

    e.set_node_phase(DEMO_NODE, "Available");
    let obj = e.wait_conds(&ns, "np", READY).await;
    let pool = pool_of(&obj);
    assert_eq!((pool.phases.abnormal, pool.phases.available), (0, 1));
    assert!(pool.abnormal_nodes.is_empty());
    let ev = e.wait_event_count(&ns, "np", "NodeRecovered", 1).await;
    assert_eq!(ev[0].type_.as_deref(), Some("Normal"));
    assert!(ev[0].note.as_deref().unwrap_or("").contains(DEMO_NODE));

    // Two more unchanged syncs: still exactly one event each way, none repeated as a series.
    let seen = e.sim.state().stats().requests;
    e.wait_requests(seen + 2).await;
    let all = e.events(&ns, "np").await;
    let reasons: Vec<&str> = all.iter().map(|e| e.reason.as_deref().unwrap_or("")).collect();
    assert_eq!(
        reasons,
        ["NodeAbnormal", "NodeRecovered"],
        "{:?}",
        summarize_events(&all)
    );
    assert!(
        all.iter().all(|e| e.series.is_none()),
        "{:?}",
        summarize_events(&all)
    );
    e.finish().await;
}

/// Asserts the failure condition, then returns once the events are exactly `[SyncFailed]`.
async fn expect_failed(e: &E2e, ns: &str, name: &str, reason: &str) -> ModelArtsNodePool {
    let obj = e
        .wait_pool(ns, name, &format!("Synced False/{reason}"), |o| {
            has_cond(o, "Synced", "False", reason)
        })
        .await;
    assert!(
        has_cond(&obj, "Ready", "False", reason),
        "Ready mirrors the sync failure: {:?}",
        cond(&obj, "Ready")
    );
    let ev = e.wait_event_count(ns, name, "SyncFailed", 1).await;
    assert_eq!(ev[0].type_.as_deref(), Some("Warning"));
    assert!(ev[0].note.as_deref().unwrap_or("").starts_with(reason), "{ev:?}");
    obj
}

/// Waits for recovery and the event pair `[.., SyncFailed, SyncRecovered]`.
async fn expect_recovered(e: &E2e, ns: &str, name: &str, before: &[&str]) -> ModelArtsNodePool {
    let obj = e
        .wait_pool(ns, name, "Synced True again", |o| {
            has_cond(o, "Synced", "True", "Synced")
        })
        .await;
    e.wait_event_count(ns, name, "SyncRecovered", 1).await;
    let all = e.events(ns, name).await;
    let reasons: Vec<&str> = all.iter().map(|e| e.reason.as_deref().unwrap_or("")).collect();
    let mut want = before.to_vec();
    want.extend(["SyncFailed", "SyncRecovered"]);
    assert_eq!(reasons, want, "{:?}", summarize_events(&all));
    obj
}

/// (3a) Wrong secretKey → AuthenticationFailed; fixing the Secret recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_credentials_fail_then_recover() {
    let Some(e) = E2e::start("bad_credentials_fail_then_recover", "e2e-auth").await else {
        return;
    };
    let ns = e.ns.clone();
    e.put_secret(&ns, "creds", DEMO_ACCESS_KEY, "not-the-secret-key")
        .await;
    e.create_pool(&ns, "np", DEMO_NODEPOOL, "creds", json!({})).await;
    let obj = expect_failed(&e, &ns, "np", "AuthenticationFailed").await;
    assert!(has_cond(&obj, "Healthy", "Unknown", "NotSynced"));
    assert_eq!(
        obj.status.as_ref().unwrap().pool,
        None,
        "no node data before any success"
    );
    assert!(cond_message(&obj, "Synced").contains("no successful sync yet"));
    assert!(e.sim.state().stats().auth_failures >= 1);

    e.update_secret(&ns, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY)
        .await;
    let obj = expect_recovered(&e, &ns, "np", &[]).await;
    expected::assert_pool(&pool_of(&obj), &want(DEMO_NODEPOOL), DEMO_NODEPOOL);
    e.finish().await;
}

/// (3b) Missing Secret → CredentialsNotFound; creating it recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn missing_secret_fails_then_recovers() {
    let Some(e) = E2e::start("missing_secret_fails_then_recovers", "e2e-nosecret").await else {
        return;
    };
    let ns = e.ns.clone();
    e.create_pool(&ns, "np", DEMO_NODEPOOL, "absent", json!({})).await;
    let obj = expect_failed(&e, &ns, "np", "CredentialsNotFound").await;
    let msg = cond_message(&obj, "Synced");
    assert!(msg.contains("absent") && msg.contains("not found"), "{msg}");
    assert_eq!(
        e.sim.state().stats().all_requests,
        0,
        "nothing sent without credentials"
    );

    e.put_secret(&ns, "absent", DEMO_ACCESS_KEY, DEMO_SECRET_KEY)
        .await;
    expect_recovered(&e, &ns, "np", &[]).await;
    e.finish().await;
}

/// (3c) Unknown node pool → NodePoolNotFound; once it exists in ModelArts, it recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_nodepool_fails_then_recovers() {
    let Some(e) = E2e::start("unknown_nodepool_fails_then_recovers", "e2e-nopool").await else {
        return;
    };
    let ns = e.ns.clone();
    e.put_secret(&ns, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY).await;
    e.create_pool(&ns, "np", "not-there-yet", "creds", json!({}))
        .await;
    let obj = expect_failed(&e, &ns, "np", "NodePoolNotFound").await;
    assert_eq!(obj.status.as_ref().unwrap().pool, None);

    e.sim
        .state()
        .put_node_pool(
            DEMO_PROJECT_ID,
            DEMO_POOL,
            NodePoolSpec {
                name: "not-there-yet".into(),
                generate: Some(GenerateSpec::new(3)),
                ..Default::default()
            },
        )
        .expect("adding the node pool");
    let obj = expect_recovered(&e, &ns, "np", &[]).await;
    assert_eq!(pool_of(&obj).node_count, 3);
    expected::assert_pool(&pool_of(&obj), &want("not-there-yet"), "not-there-yet");
    e.finish().await;
}

/// Shared by (3d) and (3e): a persistent fault after a good sync keeps the last node data, and
/// clearing it recovers.
async fn fault_after_success(test: &str, prefix: &str, fault: FaultKind, reason: &str) {
    let Some(e) = E2e::start(test, prefix).await else {
        return;
    };
    let ns = e.ns.clone();
    e.put_secret(&ns, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY).await;
    e.create_pool(&ns, "np", DEMO_GPU_NODEPOOL, "creds", json!({}))
        .await;
    let good = e
        .wait_pool(&ns, "np", "Synced True", |o| {
            has_cond(o, "Synced", "True", "Synced")
        })
        .await;
    assert_eq!(pool_of(&good).node_count, 4);
    // gpu-a100 has one Abnormal node: NodeAbnormal comes with the first sync.
    e.wait_event_count(&ns, "np", "NodeAbnormal", 1).await;

    e.sim.state().set_faults(vec![Fault::new(fault)]);
    let obj = expect_failed(&e, &ns, "np", reason).await;
    assert_eq!(pool_of(&obj), pool_of(&good), "last good node data kept");
    assert_eq!(
        last_sync(&obj),
        last_sync(&good),
        "lastSyncTime is that of the last success"
    );
    assert!(
        has_cond(&obj, "Healthy", "False", "NodesAbnormal"),
        "health still from the last data"
    );
    let msg = cond_message(&obj, "Synced");
    let when = last_sync(&good).unwrap();
    assert!(msg.contains(&when), "message names the data's age: {msg}");

    e.sim.state().clear_faults();
    let obj = expect_recovered(&e, &ns, "np", &["NodeAbnormal"]).await;
    expected::assert_pool(&pool_of(&obj), &want(DEMO_GPU_NODEPOOL), DEMO_GPU_NODEPOOL);
    e.finish().await;
}

/// (3d) 429 → Throttled, data kept, recovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn throttling_keeps_last_data_then_recovers() {
    fault_after_success(
        "throttling_keeps_last_data_then_recovers",
        "e2e-429",
        FaultKind::Throttle { retry_after: None },
        "Throttled",
    )
    .await;
}

/// (3e) 503 → ModelArtsUnavailable, data kept, recovery.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn server_errors_keep_last_data_then_recover() {
    fault_after_success(
        "server_errors_keep_last_data_then_recover",
        "e2e-5xx",
        FaultKind::ServerError {
            status: 503,
            retry_after: None,
        },
        "ModelArtsUnavailable",
    )
    .await;
}

/// (4) Rotation: new credential added in ModelArts, Secret updated, old credential removed →
/// syncs keep succeeding, which they can only do with the new key.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rotated_secret_keeps_syncing() {
    let Some(e) = E2e::start("rotated_secret_keeps_syncing", "e2e-rotate").await else {
        return;
    };
    let ns = e.ns.clone();
    let (old_ak, old_sk) = ("ROTATEOLDAK000000001", "old-secret-key-0000000000000000000000000");
    let (new_ak, new_sk) = ("ROTATENEWAK000000002", "new-secret-key-1111111111111111111111111");
    let sim = e.sim.state().clone();
    sim.upsert_credential(CredentialSpec::new(old_ak, old_sk));
    assert!(
        sim.remove_credential(DEMO_ACCESS_KEY),
        "only the rotated keys are accepted"
    );
    e.put_secret(&ns, "creds", old_ak, old_sk).await;
    e.create_pool(&ns, "np", DEMO_NODEPOOL, "creds", json!({})).await;
    e.wait_conds(&ns, "np", READY).await;

    sim.upsert_credential(CredentialSpec::new(new_ak, new_sk));
    e.update_secret(&ns, "creds", new_ak, new_sk).await;
    assert!(sim.remove_credential(old_ak));
    let ok = |s: &modelarts_simulator::Stats| s.by_status.get("200").copied().unwrap_or(0);
    let ok_at_removal = ok(&sim.stats());

    // Two successful node-list requests after the old key is gone: only the new one can sign them.
    wait_until("two successful syncs with the rotated key", TIMEOUT, || async {
        let s = sim.stats();
        if ok(&s) >= ok_at_removal + 2 {
            Ok(())
        } else {
            Err(format!("{s:?}"))
        }
    })
    .await;
    let obj = e.wait_conds(&ns, "np", READY).await;
    expected::assert_pool(&pool_of(&obj), &want(DEMO_NODEPOOL), DEMO_NODEPOOL);
    e.finish().await;
}

/// (5) Suspend: Synced Unknown/Suspended, no more requests for that pool, node data kept;
/// unsuspending resumes polling.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn suspend_stops_polling_and_keeps_data() {
    let Some(e) = E2e::start("suspend_stops_polling_and_keeps_data", "e2e-suspend").await else {
        return;
    };
    let ns = e.ns.clone();
    e.put_secret(&ns, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY).await;
    e.create_pool(&ns, "paused", DEMO_NODEPOOL, "creds", json!({}))
        .await;
    // A second resource on another node pool keeps polling: evidence that time and resyncs pass.
    e.create_pool(&ns, "control", DEMO_GPU_NODEPOOL, "creds", json!({}))
        .await;
    let good = e.wait_conds(&ns, "paused", READY).await;
    e.wait_pool(&ns, "control", "Synced True", |o| {
        has_cond(o, "Synced", "True", "Synced")
    })
    .await;

    e.patch_spec(&ns, "paused", json!({"suspend": true})).await;
    let obj = e
        .wait_pool(&ns, "paused", "Synced Unknown/Suspended", |o| {
            has_cond(o, "Synced", "Unknown", "Suspended")
                && o.status.as_ref().unwrap().observed_generation == o.metadata.generation
        })
        .await;
    assert!(
        has_cond(&obj, "Ready", "False", "Suspended"),
        "{:?}",
        cond(&obj, "Ready")
    );
    assert!(has_cond(&obj, "Healthy", "True", "NoAbnormalNodes"));
    assert_eq!(pool_of(&obj), pool_of(&good), "node data kept");
    assert_eq!(last_sync(&obj), last_sync(&good));

    let paused_before = e.requests_for(DEMO_NODEPOOL);
    let control_before = e.requests_for(DEMO_GPU_NODEPOOL);
    wait_until("three more syncs of the control resource", TIMEOUT, || async {
        let n = e.requests_for(DEMO_GPU_NODEPOOL);
        if n >= control_before + 3 {
            Ok(())
        } else {
            Err(format!("{n}"))
        }
    })
    .await;
    assert_eq!(
        e.requests_for(DEMO_NODEPOOL),
        paused_before,
        "no ModelArts request for the suspended pool"
    );
    let still = e.get(&ns, "paused").await;
    assert_eq!(
        still.metadata.resource_version, obj.metadata.resource_version,
        "no writes while suspended"
    );

    e.patch_spec(&ns, "paused", json!({"suspend": false})).await;
    e.wait_conds(&ns, "paused", READY).await;
    assert!(e.requests_for(DEMO_NODEPOOL) > paused_before, "polling resumed");
    e.finish().await;
}

/// (6) The API server refuses invalid specs and names the field.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn invalid_specs_are_rejected_with_the_field_named() {
    let Some(e) =
        E2e::without_operator("invalid_specs_are_rejected_with_the_field_named", "e2e-invalid").await
    else {
        return;
    };
    let ns = e.ns.clone();
    let api: Api<ModelArtsNodePool> = e.pools(&ns);
    let try_create = |name: &str, extra: serde_json::Value| {
        let obj: ModelArtsNodePool =
            serde_json::from_value(e.pool_object(&ns, name, DEMO_NODEPOOL, "creds", extra)).unwrap();
        let api = api.clone();
        async move { api.create(&PostParams::default(), &obj).await }
    };
    // A valid object is accepted, so the refusals below are about the one bad field.
    try_create("valid", json!({}))
        .await
        .expect("a valid spec is accepted");

    let cases: &[(&str, serde_json::Value, &[&str])] = &[
        (
            "both",
            json!({"region": "cn-north-4"}),
            &[
                "spec.region",
                "exactly one of spec.region or spec.endpoint must be set",
            ],
        ),
        ("page0", json!({"pageSize": 0}), &["spec.pageSize"]),
        ("page501", json!({"pageSize": 501}), &["spec.pageSize"]),
        (
            "sync5s",
            json!({"syncInterval": "5s"}),
            &["spec.syncInterval", "at least 10s"],
        ),
        ("badpool", json!({"poolName": "Bad_Pool"}), &["spec.poolName"]),
    ];
    for (name, extra, needles) in cases {
        match try_create(name, extra.clone()).await {
            Err(kube::Error::Api(s)) => {
                assert_eq!(s.code, 422, "{name}: {s:?}");
                for n in *needles {
                    assert!(
                        s.message.contains(n),
                        "{name}: message lacks {n:?}: {}",
                        s.message
                    );
                }
            }
            other => panic!("{name}: expected a 422 refusal, got {other:?}"),
        }
    }
    // Neither region nor endpoint is refused too.
    let mut neither = e.pool_object(&ns, "neither", DEMO_NODEPOOL, "creds", json!({}));
    neither["spec"].as_object_mut().unwrap().remove("endpoint");
    let obj: ModelArtsNodePool = serde_json::from_value(neither).unwrap();
    match api.create(&PostParams::default(), &obj).await {
        Err(kube::Error::Api(s)) => assert!(
            s.code == 422 && s.message.contains("exactly one of spec.region or spec.endpoint"),
            "{s:?}"
        ),
        other => panic!("neither: expected a 422 refusal, got {other:?}"),
    }
    e.finish().await;
}

/// (7) Unchanged resyncs write nothing: resourceVersion and the status-write counter stay put
/// while the simulator answers at least three more syncs.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unchanged_resyncs_write_no_status() {
    let Some(e) = E2e::start("unchanged_resyncs_write_no_status", "e2e-nowrite").await else {
        return;
    };
    let ns = e.ns.clone();
    e.put_secret(&ns, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY).await;
    e.create_pool(&ns, "np", DEMO_NODEPOOL, "creds", json!({})).await;
    let obj = e.wait_conds(&ns, "np", READY).await;
    let rv = obj.metadata.resource_version.clone();
    let requests = e.sim.state().stats().requests;
    let writes = e.op().counter("status_writes_total").await;
    assert_eq!(writes, 1.0, "one write for the first sync");

    e.wait_requests(requests + 3).await;
    let now = e.get(&ns, "np").await;
    assert_eq!(
        now.metadata.resource_version,
        rv,
        "status rewritten without a change: {}",
        operator::brief(&now)
    );
    assert_eq!(e.op().counter("status_writes_total").await, writes);
    assert_eq!(last_sync(&now), last_sync(&obj));
    e.finish().await;
}

/// (8) One operator, resources in two namespaces.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_operator_two_namespaces() {
    let Some(mut e) = E2e::start("one_operator_two_namespaces", "e2e-twons").await else {
        return;
    };
    let ns1 = e.ns.clone();
    let ns2 = format!("{ns1}-b");
    e.create_namespace(&ns2).await;
    e.put_secret(&ns1, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY)
        .await;
    e.put_secret(&ns2, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY)
        .await;
    e.create_pool(&ns1, "np", DEMO_NODEPOOL, "creds", json!({})).await;
    e.create_pool(&ns2, "np", DEMO_GPU_NODEPOOL, "creds", json!({}))
        .await;

    let a = e.wait_conds(&ns1, "np", READY).await;
    let b = e
        .wait_pool(&ns2, "np", "Synced True", |o| {
            has_cond(o, "Synced", "True", "Synced")
        })
        .await;
    expected::assert_pool(&pool_of(&a), &want(DEMO_NODEPOOL), DEMO_NODEPOOL);
    expected::assert_pool(&pool_of(&b), &want(DEMO_GPU_NODEPOOL), DEMO_GPU_NODEPOOL);
    assert!(has_cond(&b, "Healthy", "False", "NodesAbnormal"));
    // Each resource's events land in its own namespace.
    e.wait_event_count(&ns2, "np", "NodeAbnormal", 1).await;
    assert!(e.events(&ns1, "np").await.is_empty());
    e.finish().await;
}

/// (9) Restarting the operator repeats no event.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn restart_emits_no_duplicate_events() {
    let Some(mut e) = E2e::start("restart_emits_no_duplicate_events", "e2e-restart").await else {
        return;
    };
    let ns = e.ns.clone();
    e.put_secret(&ns, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY).await;
    e.create_pool(&ns, "np", DEMO_NODEPOOL, "creds", json!({})).await;
    e.wait_conds(&ns, "np", READY).await;
    e.set_node_phase(DEMO_NODE, "Abnormal");
    e.wait_pool(&ns, "np", "Healthy False", |o| {
        has_cond(o, "Healthy", "False", "NodesAbnormal")
    })
    .await;
    e.wait_event_count(&ns, "np", "NodeAbnormal", 1).await;

    let first_pid = e.op().pid();
    e.stop_operator().await;
    let before = e.sim.state().stats().requests;
    e.start_operator().await;
    assert_ne!(e.op().pid(), first_pid, "a new process");
    e.wait_requests(before + 2).await;
    // The first resync after the restart (where a repeated event would come from) finished its
    // event handling before the second one started.
    e.wait_pool(&ns, "np", "still Healthy False", |o| {
        has_cond(o, "Healthy", "False", "NodesAbnormal")
    })
    .await;
    let all = e.events(&ns, "np").await;
    let reasons: Vec<&str> = all.iter().map(|e| e.reason.as_deref().unwrap_or("")).collect();
    assert_eq!(reasons, ["NodeAbnormal"], "{:?}", summarize_events(&all));
    assert!(all[0].series.is_none(), "{:?}", summarize_events(&all));
    e.finish().await;
}

/// The harness itself: the operator runs with only the chart's RBAC, so the ServiceAccount may
/// not list Secrets (the chart grants `get` only) — proving the tests are not running as admin.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn operator_identity_has_only_chart_rbac() {
    let Some(e) = E2e::without_operator("operator_identity_has_only_chart_rbac", "e2e-rbac").await else {
        return;
    };
    let sa = e.sa_client().await;
    let secrets: Api<k8s_openapi::api::core::v1::Secret> = Api::namespaced(sa.clone(), &e.ns);
    match secrets.list(&Default::default()).await {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => panic!("listing Secrets must be forbidden, got {other:?}"),
    }
    let pools: Api<ModelArtsNodePool> = Api::namespaced(sa, &e.ns);
    let obj: ModelArtsNodePool =
        serde_json::from_value(e.pool_object(&e.ns, "x", DEMO_NODEPOOL, "creds", json!({}))).unwrap();
    match pools.create(&PostParams::default(), &obj).await {
        Err(kube::Error::Api(s)) if s.code == 403 => {}
        other => panic!("creating ModelArtsNodePools must be forbidden, got {other:?}"),
    }
    e.finish().await;
}

/// Waits until the operator has reconciled the shard's failing resource at least twice with
/// `reason` (the first sync and a backoff retry), then asserts the simulator never saw a request:
/// the refusal happens before anything is signed or sent, every time.
async fn assert_refused_twice_without_requests(e: &E2e, reason: &str) {
    let series = format!("reconciles_total{{result=\"{reason}\"}}");
    wait_until(&format!("two reconciles ending in {reason}"), TIMEOUT, || async {
        let n = e.op().counter_or_zero(&series).await;
        if n >= 2.0 { Ok(()) } else { Err(format!("{n}")) }
    })
    .await;
    let stats = e.sim.state().stats();
    assert_eq!(
        stats.all_requests, 0,
        "no request may leave the operator: {stats:?}"
    );
}

/// (10) An endpoint whose host is not in the operator's allow-list (here the default one: public
/// ModelArts domains only) is an InvalidSpec, and no signed request is sent to it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn endpoint_outside_the_allow_list_is_invalid_spec() {
    let Some(mut e) =
        E2e::without_operator("endpoint_outside_the_allow_list_is_invalid_spec", "e2e-allowlist").await
    else {
        return;
    };
    // No --allowed-endpoint-suffix: the default allow-list applies; the endpoint is https with a
    // trusted CA, so the allow-list is the only reason to refuse.
    e.config.allowed_suffixes.clear();
    assert!(e.sim.endpoint().starts_with("https://"));
    e.start_operator().await;
    let ns = e.ns.clone();
    e.put_secret(&ns, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY).await;
    e.create_pool(&ns, "np", DEMO_NODEPOOL, "creds", json!({})).await;
    let obj = expect_failed(&e, &ns, "np", "InvalidSpec").await;
    let msg = cond_message(&obj, "Synced");
    assert!(
        msg.contains("spec.endpoint")
            && msg.contains("allow-list")
            && msg.contains(&e.sim.endpoint())
            && msg.contains(".myhuaweicloud.com"),
        "{msg}"
    );
    assert!(has_cond(&obj, "Healthy", "Unknown", "NotSynced"));
    assert_refused_twice_without_requests(&e, "InvalidSpec").await;
    e.finish().await;
}

/// (11) A plain http endpoint is refused unless the operator opted in, even when its host is
/// allowed: signed headers would travel in clear.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plain_http_endpoint_is_refused_without_the_opt_in() {
    let Some(mut e) =
        E2e::without_operator("plain_http_endpoint_is_refused_without_the_opt_in", "e2e-nohttp").await
    else {
        return;
    };
    assert!(!e.config.allow_http);
    assert_eq!(e.config.allowed_suffixes, ["127.0.0.1"], "the host is allowed");
    let plain = Simulator::start(SimData::embedded_default(), SimOptions::default())
        .await
        .expect("plain http simulator");
    assert!(plain.endpoint().starts_with("http://"));
    e.start_operator().await;
    let ns = e.ns.clone();
    e.put_secret(&ns, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY).await;
    e.create_pool(
        &ns,
        "np",
        DEMO_NODEPOOL,
        "creds",
        json!({"endpoint": plain.endpoint()}),
    )
    .await;
    let obj = expect_failed(&e, &ns, "np", "InvalidSpec").await;
    let msg = cond_message(&obj, "Synced");
    assert!(
        msg.contains("spec.endpoint") && msg.contains(&plain.endpoint()) && msg.contains("clear"),
        "{msg}"
    );
    assert_refused_twice_without_requests(&e, "InvalidSpec").await;
    assert_eq!(plain.state().stats().all_requests, 0, "nothing was sent in clear");
    e.finish().await;
}

/// (12) A resource without credentialsSecretRef fails with CredentialsNotFound unless the
/// operator allows default credentials; with `--allow-default-credentials` and
/// HUAWEICLOUD_SDK_AK/SK in the operator's environment it syncs with those.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn default_credentials_only_when_allowed() {
    let Some(mut e) = E2e::start("default_credentials_only_when_allowed", "e2e-defcreds").await else {
        return;
    };
    let ns = e.ns.clone();
    let mut obj = e.pool_object(&ns, "np", DEMO_NODEPOOL, "unused", json!({}));
    obj["spec"]
        .as_object_mut()
        .unwrap()
        .remove("credentialsSecretRef");
    let obj: ModelArtsNodePool = serde_json::from_value(obj).unwrap();
    e.pools(&ns)
        .create(&PostParams::default(), &obj)
        .await
        .expect("creating the resource");

    // (a) Not allowed: nothing to sign with, nothing sent.
    let obj = expect_failed(&e, &ns, "np", "CredentialsNotFound").await;
    let msg = cond_message(&obj, "Synced");
    assert!(
        msg.contains("credentialsSecretRef") && msg.contains("default credentials"),
        "{msg}"
    );
    assert_refused_twice_without_requests(&e, "CredentialsNotFound").await;

    // (b) Allowed, with the demo credentials in the operator's (and only the operator's)
    // environment: the restarted operator signs with them and the resource recovers.
    e.stop_operator().await;
    e.config.allow_default_credentials = true;
    e.config.env = vec![
        ("HUAWEICLOUD_SDK_AK".into(), DEMO_ACCESS_KEY.into()),
        ("HUAWEICLOUD_SDK_SK".into(), DEMO_SECRET_KEY.into()),
    ];
    e.start_operator().await;
    let obj = expect_recovered(&e, &ns, "np", &[]).await;
    expected::assert_pool(&pool_of(&obj), &want(DEMO_NODEPOOL), DEMO_NODEPOOL);
    let stats = e.sim.state().stats();
    assert!(
        stats.by_status.get("200").copied().unwrap_or(0) >= 1 && stats.auth_failures == 0,
        "{stats:?}"
    );
    e.finish().await;
}

/// (13) A namespaced install (the chart's Role variant, `--namespace`): resources in the watched
/// namespace sync; one in another namespace, with the same shard label and a readable Secret,
/// is never touched and its node pool never requested.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn namespaced_install_sees_only_its_namespace() {
    let Some(mut e) =
        E2e::namespaced_without_operator("namespaced_install_sees_only_its_namespace", "e2e-nsonly").await
    else {
        return;
    };
    let ns_a = e.ns.clone();
    let ns_b = format!("{ns_a}-b");
    e.create_namespace(&ns_b).await;
    assert_eq!(e.config.namespace.as_deref(), Some(ns_a.as_str()));

    // The ServiceAccount's reach is ns-a alone.
    let sa = e.sa_client().await;
    for (what, api) in [
        ("all namespaces", Api::<ModelArtsNodePool>::all(sa.clone())),
        ("ns-b", Api::<ModelArtsNodePool>::namespaced(sa.clone(), &ns_b)),
    ] {
        match api.list(&Default::default()).await {
            Err(kube::Error::Api(s)) if s.code == 403 => {}
            other => panic!("listing ModelArtsNodePools in {what} must be forbidden, got {other:?}"),
        }
    }
    Api::<ModelArtsNodePool>::namespaced(sa, &ns_a)
        .list(&Default::default())
        .await
        .expect("listing in ns-a is allowed");

    e.start_operator().await;
    e.put_secret(&ns_a, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY)
        .await;
    e.put_secret(&ns_b, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY)
        .await;
    // ns-b's first, so it has been there for the whole time ns-a's was watched and synced.
    e.create_pool(&ns_b, "np", DEMO_GPU_NODEPOOL, "creds", json!({}))
        .await;
    let b_created = e.get(&ns_b, "np").await;
    e.create_pool(&ns_a, "np", DEMO_NODEPOOL, "creds", json!({}))
        .await;
    let a = e.wait_conds(&ns_a, "np", READY).await;
    expected::assert_pool(&pool_of(&a), &want(DEMO_NODEPOOL), DEMO_NODEPOOL);

    // One more sync of ns-a's resource: time passes in which ns-b's would have been handled.
    let seen = e.requests_for(DEMO_NODEPOOL);
    wait_until("another sync of ns-a's resource", TIMEOUT, || async {
        let n = e.requests_for(DEMO_NODEPOOL);
        if n > seen { Ok(()) } else { Err(format!("{n}")) }
    })
    .await;

    let b = e.get(&ns_b, "np").await;
    assert!(
        b.status.is_none(),
        "ns-b's resource got a status: {}",
        operator::brief(&b)
    );
    assert_eq!(
        b.metadata.resource_version, b_created.metadata.resource_version,
        "ns-b's resource was written to"
    );
    assert_eq!(
        e.requests_for(DEMO_GPU_NODEPOOL),
        0,
        "ns-b's node pool was requested"
    );
    let recent = e.sim.state().stats().recent;
    // Each sync reads ns-a's node list and its node-pool object, nothing else.
    let nodes = format!("/nodepools/{DEMO_NODEPOOL}/nodes");
    let object = format!("/nodepools/{DEMO_NODEPOOL}");
    assert!(
        !recent.is_empty()
            && recent
                .iter()
                .all(|r| r.path.ends_with(&nodes) || r.path.ends_with(&object)),
        "only ns-a's node pool is requested: {:?}",
        recent.iter().map(|r| &r.path).collect::<Vec<_>>()
    );
    assert!(
        e.events(&ns_b, "np").await.is_empty(),
        "no events about ns-b's resource"
    );
    let log = e.op().log_tail(10_000);
    assert!(!log.contains(&ns_b), "the operator's log mentions {ns_b}:\n{log}");
    e.finish().await;
}

/// (14) Retry-After end to end: under a persistent 429 with `Retry-After: 15` the requests for
/// the pool come `--max-backoff` (10 s in the harness) apart: the Retry-After lengthens the
/// first backoff step (4–6 s) but never pushes a wait past the cap. A Retry-After that long ends
/// the sync at once (the client waits at most 10 s in a sync), so the gap is the controller's
/// requeue. Clearing the fault recovers.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_end_to_end() {
    let Some(e) = E2e::start("retry_after_is_honoured_end_to_end", "e2e-retryafter").await else {
        return;
    };
    let ns = e.ns.clone();
    let sim = e.sim.state().clone();
    e.put_secret(&ns, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY).await;
    e.create_pool(&ns, "np", DEMO_NODEPOOL, "creds", json!({})).await;
    let good = e.wait_conds(&ns, "np", READY).await;

    let fault_from = u64::try_from(sim.uptime().as_millis()).unwrap();
    sim.set_faults(vec![Fault::new(FaultKind::Throttle {
        retry_after: Some(15),
    })]);
    // The next sync is ≤ 11 s away and retries in-sync for up to 45 s (4 attempts, 15 s apart).
    let api = e.pools(&ns);
    let obj = wait_until(
        "Synced False/Throttled",
        std::time::Duration::from_secs(75),
        || async {
            let o = api.get("np").await.map_err(|e| e.to_string())?;
            if has_cond(&o, "Synced", "False", "Throttled") {
                Ok(o)
            } else {
                Err(operator::brief(&o))
            }
        },
    )
    .await;
    // Two throttled syncs give a 429-to-429 gap as well as the 429-to-200 one below.
    let needle = format!("/nodepools/{DEMO_NODEPOOL}/nodes");
    let throttled_since = |sim: &modelarts_simulator::SimState| {
        sim.stats()
            .recent
            .iter()
            .filter(|r| r.path.ends_with(&needle) && r.at_ms >= fault_from && r.status == 429)
            .count()
    };
    wait_until(
        "a second throttled sync",
        std::time::Duration::from_secs(40),
        || async {
            let n = throttled_since(&sim);
            if n >= 2 {
                Ok(())
            } else {
                Err(format!("{n} throttled requests so far"))
            }
        },
    )
    .await;
    sim.clear_faults();
    assert_eq!(pool_of(&obj), pool_of(&good), "last good node data kept");
    let msg = cond_message(&obj, "Synced");
    assert!(msg.contains("429"), "{msg}");

    let recovered = e
        .wait_pool(&ns, "np", "Synced True again", |o| {
            has_cond(o, "Synced", "True", "Synced")
        })
        .await;
    expected::assert_pool(&pool_of(&recovered), &want(DEMO_NODEPOOL), DEMO_NODEPOOL);

    let since: Vec<(u64, u16)> = sim
        .stats()
        .recent
        .iter()
        .filter(|r| r.path.ends_with(&needle) && r.at_ms >= fault_from)
        .map(|r| (r.at_ms, r.status))
        .collect();
    let throttled = since.iter().take_while(|(_, s)| *s == 429).count();
    assert!(
        throttled >= 2 && since.get(throttled).is_some_and(|(_, s)| *s == 200),
        "429s, then a 200: {since:?}"
    );
    // --max-backoff (10 s) less the millisecond truncation of two timestamps and timer slack,
    // above the first step of the exponential backoff (at most 6 s); and well under the 15 s
    // the server asked for.
    const MIN_GAP_MS: u64 = 9_500;
    const MAX_GAP_MS: u64 = 13_000;
    for w in since[..=throttled].windows(2) {
        let gap = w[1].0 - w[0].0;
        assert!(
            (MIN_GAP_MS..=MAX_GAP_MS).contains(&gap),
            "requests {gap} ms apart under Retry-After: 15 and --max-backoff 10s: {since:?}"
        );
    }
    e.finish().await;
}

/// A resource deleted and created again under the same name is a new object: it gets its
/// status at once, not after the old object's `syncInterval` (10 minutes here).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recreated_resource_gets_status_at_once() {
    let Some(e) = E2e::start("recreated_resource_gets_status_at_once", "e2e-recreate").await else {
        return;
    };
    let ns = e.ns.clone();
    e.put_secret(&ns, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY).await;
    let slow = json!({"syncInterval": "10m"});
    e.create_pool(&ns, "np", DEMO_NODEPOOL, "creds", slow.clone())
        .await;
    let first = e.wait_conds(&ns, "np", READY).await;
    e.pools(&ns)
        .delete("np", &Default::default())
        .await
        .expect("deleting the resource");
    wait_until("the old object is gone", TIMEOUT, || async {
        match e.pools(&ns).get_opt("np").await {
            Ok(None) => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    e.create_pool(&ns, "np", DEMO_NODEPOOL, "creds", slow).await;
    let second = e.wait_conds(&ns, "np", READY).await;
    assert_ne!(first.metadata.uid, second.metadata.uid, "a new object");
    assert_eq!(second.metadata.generation, Some(1));
    e.finish().await;
}

fn generated_node(i: usize, phase: &str) -> modelarts_operator::wire::Node {
    serde_json::from_value(json!({
        "metadata": {"name": format!("scale-node-{i:02}")},
        "spec": {"flavor": "modelarts.vm.8u32g"},
        "status": {"phase": phase, "resources": {"cpu": "8", "memory": "32Gi"}},
    }))
    .expect("a node")
}

/// Node-pool truth: a node pool scaling from 4 to 8 desired nodes, its nodes appearing
/// over several syncs, is `Scaling=True/ScalingUp` until all 8 are listed and Available,
/// then `Converged`; a creation failure turns `Healthy` False with the reason named;
/// `kubectl get mann` shows desired against listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scaling_out_converges_and_a_creation_failure_is_unhealthy() {
    let Some(e) = E2e::start(
        "scaling_out_converges_and_a_creation_failure_is_unhealthy",
        "e2e-scale",
    )
    .await
    else {
        return;
    };
    let ns = e.ns.clone();
    let at = (DEMO_PROJECT_ID, DEMO_POOL, "scale-out");
    let st = e.sim.state();
    st.put_node_pool(
        DEMO_PROJECT_ID,
        DEMO_POOL,
        NodePoolSpec {
            name: "scale-out".into(),
            nodes: (1..=4).map(|i| generated_node(i, "Available")).collect(),
            ..Default::default()
        },
    )
    .expect("node pool");
    e.put_secret(&ns, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY).await;
    e.create_pool(&ns, "np", "scale-out", "creds", json!({})).await;
    let obj = e
        .wait_conds(
            &ns,
            "np",
            &[("Ready", "True", "Ready"), ("Scaling", "False", "Converged")],
        )
        .await;
    assert_eq!(
        obj.status.as_ref().unwrap().node_pool.as_ref().unwrap().desired,
        Some(4)
    );

    // The user scales to 8: ModelArts now wants 8 and reports 4 being created.
    let want8 = |creation_failed: u32| ScalingSpec {
        desired: Some(8),
        creation_failed,
        ..Default::default()
    };
    st.set_scaling(at.0, at.1, at.2, want8(0)).expect("scaling");
    let obj = e
        .wait_conds(
            &ns,
            "np",
            &[("Scaling", "True", "ScalingUp"), ("Ready", "True", "Ready")],
        )
        .await;
    assert_eq!(cond_message(&obj, "Scaling"), "4 of 8 desired nodes listed");
    // Nodes appear over several syncs: two Creating, then two more, then all Available.
    for i in 5..=6 {
        st.put_node(at, generated_node(i, "Creating")).expect("node");
    }
    let obj = e
        .wait_pool(&ns, "np", "6 nodes listed", |o| {
            o.status
                .as_ref()
                .and_then(|s| s.pool.as_ref())
                .is_some_and(|p| p.node_count == 6)
        })
        .await;
    assert!(has_cond(&obj, "Scaling", "True", "ScalingUp"));
    assert_eq!(
        cond_message(&obj, "Scaling"),
        "6 of 8 desired nodes listed; 2 creating"
    );
    for i in 7..=8 {
        st.put_node(at, generated_node(i, "Creating")).expect("node");
    }
    let obj = e
        .wait_pool(&ns, "np", "8 nodes listed", |o| {
            o.status
                .as_ref()
                .and_then(|s| s.pool.as_ref())
                .is_some_and(|p| p.node_count == 8)
        })
        .await;
    assert_eq!(
        cond_message(&obj, "Scaling"),
        "8 of 8 desired nodes listed; 4 creating"
    );
    for i in 5..=8 {
        st.put_node(at, generated_node(i, "Available")).expect("node");
    }
    let obj = e
        .wait_conds(
            &ns,
            "np",
            &[("Scaling", "False", "Converged"), ("Ready", "True", "Ready")],
        )
        .await;
    assert_eq!(cond_message(&obj, "Scaling"), "8 of 8 desired nodes listed");

    let out = std::process::Command::new(operator::kubectl())
        .args(["get", "mann", "np", "-n", &ns])
        .output()
        .expect("kubectl runs");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let row: BTreeMap<String, String> = table(&text)[0].iter().cloned().collect();
    assert_eq!(
        (row["DESIRED"].as_str(), row["NODES"].as_str()),
        ("8", "8"),
        "\n{text}"
    );

    // Scaling to 9 where the ninth node fails to create: unhealthy at once, reason named.
    st.set_scaling(
        at.0,
        at.1,
        at.2,
        ScalingSpec {
            desired: Some(9),
            creation_failed: 1,
            ..Default::default()
        },
    )
    .expect("scaling");
    let obj = e
        .wait_conds(
            &ns,
            "np",
            &[
                ("Healthy", "False", "NodeCreationFailed"),
                ("Ready", "False", "NodeCreationFailed"),
                ("Scaling", "False", "CreationFailed"),
            ],
        )
        .await;
    assert_eq!(
        cond_message(&obj, "Healthy"),
        "1 node of flavor modelarts.vm.8u32g failed to create; 8 of 9 desired nodes listed"
    );
    let np = obj.status.as_ref().unwrap().node_pool.clone().unwrap();
    assert_eq!((np.desired, np.creation_failed), (Some(9), Some(1)));
    e.finish().await;
}

/// Onboarding: `inspect --pool P` without `--nodepool` lists the pool's node pools with desired
/// and actual counts; `--manifests` prints resources that the API server accepts as they are and
/// that the operator then syncs to Ready.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_lists_node_pools_and_prints_manifests_that_apply() {
    let Some(e) = E2e::start(
        "inspect_lists_node_pools_and_prints_manifests_that_apply",
        "e2e-onb",
    )
    .await
    else {
        return;
    };
    let ns = e.ns.clone();
    e.put_secret(&ns, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY).await;
    let inspect = |extra: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_modelarts-operator"))
            .args(["inspect", "--project-id", DEMO_PROJECT_ID, "--pool", DEMO_POOL])
            .args(["--endpoint", &e.sim.endpoint(), "--ca-file"])
            .arg(&e.ca_file)
            .args(extra)
            .env_clear()
            .env("HUAWEICLOUD_SDK_AK", DEMO_ACCESS_KEY)
            .env("HUAWEICLOUD_SDK_SK", DEMO_SECRET_KEY)
            .output()
            .expect("running inspect");
        assert!(
            out.status.success(),
            "inspect: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let listing = inspect(&[]);
    let rows: BTreeMap<&str, Vec<&str>> = listing
        .lines()
        .skip(1)
        .map(|l| {
            let cols: Vec<&str> = l.split_whitespace().collect();
            (cols[0], cols)
        })
        .collect();
    // The demo data (support/expected.rs): gpu-a100 has 4 nodes, one Abnormal; nodepool-1 one node.
    assert_eq!(
        rows["gpu-a100"],
        [
            "gpu-a100",
            "modelarts.bm.gpu.a100.8",
            "4",
            "4",
            "3",
            "-",
            "1",
            "-",
            "-"
        ],
        "\n{listing}"
    );
    assert_eq!(rows[DEMO_NODEPOOL][2..5], ["1", "1", "1"], "\n{listing}");

    let manifests = inspect(&["--manifests", "--namespace", &ns, "--secret", "creds"]);
    let mut kubectl = std::process::Command::new(operator::kubectl())
        .args(["apply", "-f", "-", "--kubeconfig"])
        .arg(&e.admin_kubeconfig)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("running kubectl");
    {
        use std::io::Write;
        let mut stdin = kubectl.stdin.take().expect("stdin");
        stdin.write_all(manifests.as_bytes()).expect("writing manifests");
    }
    let apply = kubectl.wait_with_output().expect("kubectl apply");
    assert!(
        apply.status.success(),
        "kubectl apply: {}\n{manifests}",
        String::from_utf8_lossy(&apply.stderr)
    );
    let applied = String::from_utf8_lossy(&apply.stdout).to_string();
    assert!(
        applied.contains("modelartsnodepool.modelarts-operator.io/gpu-a100 created"),
        "{applied}"
    );
    // The operator of this test reconciles only its shard: label the new resource into it.
    let api: kube::Api<ModelArtsNodePool> = kube::Api::namespaced(e.admin.clone(), &ns);
    api.patch(
        DEMO_NODEPOOL,
        &kube::api::PatchParams::default(),
        &kube::api::Patch::Merge(json!({"metadata": {"labels": {"e2e": e.shard}}})),
    )
    .await
    .expect("labelling the applied resource");
    let obj = e
        .wait_conds(
            &ns,
            DEMO_NODEPOOL,
            &[("Synced", "True", "Synced"), ("Scaling", "False", "Converged")],
        )
        .await;
    assert_eq!(pool_of(&obj).node_count, 1);
    e.finish().await;
}

/// Sync lag made visible: with `--modelarts-qps 0.2` and six resources at `syncInterval: 10s`
/// (6 × (1 page + 1 node-pool read) / 10 s = 1.2 requests/s needed), the operator warns with
/// the numbers, exports the demand beside the limit, and the resources' syncs run late.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rate_limit_too_low_for_the_intervals_is_reported_with_numbers() {
    let Some(mut e) = E2e::without_operator(
        "a_rate_limit_too_low_for_the_intervals_is_reported_with_numbers",
        "e2e-lag",
    )
    .await
    else {
        return;
    };
    e.config
        .extra_args
        .extend(["--modelarts-qps", "0.2", "--modelarts-burst", "1"].map(String::from));
    let ns = e.ns.clone();
    e.put_secret(&ns, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY).await;
    for i in 0..6 {
        e.create_pool(&ns, &format!("np-{i}"), DEMO_NODEPOOL, "creds", json!({}))
            .await;
    }
    e.start_operator().await;
    let needle = "6 resources need 1.20 ModelArts requests/s";
    wait_until("the rate-limit warning", TIMEOUT, || async {
        let log = e.op().log_tail(400);
        if log.contains(needle) { Ok(()) } else { Err(log) }
    })
    .await;
    let log = e.op().log_tail(400);
    assert!(
        log.contains("--modelarts-qps 0.2 cannot sustain the sync intervals")
            && log.contains("every 6.0x its interval")
            && log.contains("raise --modelarts-qps to at least 1.20"),
        "{log}"
    );
    let metrics = e.op().metrics().await;
    assert!(
        metrics.contains("modelarts_operator_modelarts_qps_limit 0.2"),
        "{metrics}"
    );
    assert!(
        metrics.contains("modelarts_operator_modelarts_required_qps 1.2"),
        "{metrics}"
    );
    // Each resource is due every 10 s but the limit serves one sync per 10 s for all six:
    // a resync starts seconds late, and the lag gauge shows it.
    wait_until("a resync that started late", Duration::from_secs(90), || async {
        let text = e.op().metrics().await;
        let late: Vec<f64> = text
            .lines()
            .filter(|l| l.starts_with("modelarts_operator_nodepool_sync_lag_seconds{"))
            .filter_map(|l| l.rsplit_once(' ')?.1.parse().ok())
            .filter(|lag: &f64| *lag > 5.0)
            .collect();
        if late.is_empty() { Err(text) } else { Ok(()) }
    })
    .await;
    e.finish().await;
}
