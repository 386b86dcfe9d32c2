//! End-to-end leader election: two operator processes (`--leader-elect`, one Lease) under the
//! chart's RBAC, against a real kube-apiserver and one ModelArts simulator.
//!
//! Run:
//! ```text
//! eval "$(CONTROL_PLANE_DIR=/tmp/mo/e2e-plane hack/control-plane.sh up)" && \
//!   MODELARTS_REQUIRE_CLUSTER=1 cargo test --test e2e_leader -- --nocapture
//! ```
//! Failover figures are printed as `FAILOVER ...` lines (docs/reliability.md records them).

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/operator.rs"]
mod operator;

use k8s_openapi::api::coordination::v1::Lease;
use kube::Api;
use modelarts_simulator::{DEMO_ACCESS_KEY, DEMO_NODE, DEMO_NODEPOOL, DEMO_SECRET_KEY};
use operator::{E2e, OperatorConfig, OperatorProcess, TIMEOUT, has_cond, wait_until};
use serde_json::json;
use std::time::{Duration, Instant, SystemTime};

const LEASE: &str = "modelarts-operator-e2e";

fn replica_config(e: &E2e, name: &str, lease_secs: u64) -> OperatorConfig {
    let mut c = e.config.clone();
    c.env.push(("POD_NAME".into(), name.into()));
    c.extra_args.extend([
        "--leader-elect".into(),
        "--leader-election-namespace".into(),
        e.ns.clone(),
        "--leader-election-lease-name".into(),
        LEASE.into(),
        "--leader-election-lease-duration".into(),
        format!("{lease_secs}s"),
    ]);
    c
}

async fn gauge(op: &OperatorProcess) -> f64 {
    op.counter_or_zero("modelarts_operator_leader").await
}

async fn writes(op: &OperatorProcess) -> f64 {
    op.counter_or_zero("status_writes_total").await
}

/// Starts two replicas, waits until exactly one leads and the pool is Ready; returns
/// (leader, standby).
async fn two_replicas(e: &E2e, lease_secs: u64) -> (OperatorProcess, OperatorProcess) {
    let mut ops = Vec::new();
    for name in ["replica-a", "replica-b"] {
        let log = e.dir.path().join(format!("{name}.log"));
        let cfg = replica_config(e, name, lease_secs);
        ops.push(OperatorProcess::start(&e.sa_kubeconfig, &e.shard, &cfg, log).await);
    }
    let leader = wait_until("exactly one replica to lead", TIMEOUT, || async {
        let (a, b) = (gauge(&ops[0]).await, gauge(&ops[1]).await);
        match (a, b) {
            (1.0, 0.0) => Ok(0),
            (0.0, 1.0) => Ok(1),
            other => Err(format!("leader gauges {other:?}")),
        }
    })
    .await;
    let standby = ops.remove(1 - leader);
    let leader = ops.remove(0);
    e.put_secret(&e.ns, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY)
        .await;
    e.create_pool(&e.ns, "pool", DEMO_NODEPOOL, "creds", json!({}))
        .await;
    wait_until("the pool Ready", TIMEOUT, || async {
        let obj = e.get(&e.ns, "pool").await;
        has_cond(&obj, "Ready", "True", "Ready")
            .then_some(())
            .ok_or_else(|| operator::brief(&obj))
    })
    .await;
    (leader, standby)
}

/// Waits until the pool shows the node `phase` change (Healthy False/True) and `op` wrote it.
async fn synced_by(e: &E2e, op: &OperatorProcess, healthy: &str, before: f64) {
    wait_until("the change synced by the expected replica", TIMEOUT, || async {
        let obj = e.get(&e.ns, "pool").await;
        let w = writes(op).await;
        let seen = obj
            .status
            .as_ref()
            .and_then(|s| s.conditions.iter().find(|c| c.type_ == "Healthy"))
            .is_some_and(|c| c.status == healthy);
        (seen && w > before)
            .then_some(())
            .ok_or_else(|| format!("Healthy={healthy}? {seen}; writes {w} (before {before})"))
    })
    .await;
}

/// Only the leader writes status: the standby's write counter stays at 0 through a change.
async fn only_leader_writes(e: &E2e, leader: &OperatorProcess, standby: &OperatorProcess) {
    assert!(writes(leader).await > 0.0, "the leader wrote the status");
    let before = writes(leader).await;
    e.set_node_phase(DEMO_NODE, "Abnormal");
    synced_by(e, leader, "False", before).await;
    assert_eq!(writes(standby).await, 0.0, "the standby wrote status");
    assert_eq!(gauge(standby).await, 0.0);
}

/// kill -9 of the leader: the standby leads within the lease duration plus one sync, and
/// resumes syncing; at no point did it write before it led.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_takes_over_when_the_leader_is_killed() {
    let Some(e) = E2e::without_operator("standby_takes_over_when_the_leader_is_killed", "le-kill").await
    else {
        return;
    };
    let lease_secs = 4;
    let (leader, standby) = two_replicas(&e, lease_secs).await;
    only_leader_writes(&e, &leader, &standby).await;

    let killed = Instant::now();
    let status = std::process::Command::new("kill")
        .args(["-KILL", &leader.pid().to_string()])
        .status()
        .expect("running kill");
    assert!(status.success());
    // Lease duration plus one sync interval (10s) plus slack for a loaded machine.
    let limit = Duration::from_secs(lease_secs + 10 + 20);
    wait_until("the standby to lead", limit, || async {
        let g = gauge(&standby).await;
        (g == 1.0).then_some(()).ok_or_else(|| format!("gauge {g}"))
    })
    .await;
    let took = killed.elapsed();
    println!(
        "FAILOVER kill-9 lease={lease_secs}s takeover={:.2}s",
        took.as_secs_f64()
    );
    drop(leader);

    let before = writes(&standby).await;
    e.set_node_phase(DEMO_NODE, "Running");
    synced_by(&e, &standby, "True", before).await;
}

/// SIGTERM of the leader: it stops and releases the Lease, and the standby leads before the
/// Lease the old leader last renewed would have expired.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn standby_takes_over_at_once_when_the_leader_stops() {
    let Some(e) = E2e::without_operator("standby_takes_over_at_once_when_the_leader_stops", "le-term").await
    else {
        return;
    };
    let lease_secs = 15;
    let (mut leader, standby) = two_replicas(&e, lease_secs).await;
    only_leader_writes(&e, &leader, &standby).await;

    let leases: Api<Lease> = Api::namespaced(e.admin.clone(), &e.ns);
    let lease = leases.get(LEASE).await.expect("reading the Lease");
    let spec = lease.spec.expect("Lease spec");
    let renewed = spec.renew_time.expect("renewTime").0;
    let expires = SystemTime::from(renewed) + Duration::from_secs(lease_secs);

    let stopped = Instant::now();
    let stopper = tokio::task::spawn_blocking(move || leader.stop(Duration::from_secs(20)));
    wait_until("the standby to lead", TIMEOUT, || async {
        let g = gauge(&standby).await;
        (g == 1.0).then_some(()).ok_or_else(|| format!("gauge {g}"))
    })
    .await;
    let took = stopped.elapsed();
    let led_at = SystemTime::now();
    println!(
        "FAILOVER sigterm lease={lease_secs}s takeover={:.2}s",
        took.as_secs_f64()
    );
    let (status, graceful) = stopper.await.expect("stop task").expect("leader had a process");
    assert!(
        graceful && status.success(),
        "the leader exits cleanly on SIGTERM: {status}"
    );
    assert!(
        led_at < expires,
        "the standby led only after the old Lease expired: the leader did not release it"
    );

    let before = writes(&standby).await;
    e.set_node_phase(DEMO_NODE, "Running");
    synced_by(&e, &standby, "True", before).await;
}
