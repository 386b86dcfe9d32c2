//! The chart installed for real: `helm install` of the locally built image onto the local plane's
//! real node (containerd + kubelet, `hack/control-plane.sh up --node`), against a ModelArts
//! simulator listening on the node's bridge address over HTTPS with a private CA.
//!
//! Run (what `hack/test-node.sh` does):
//! ```text
//! hack/image.sh && eval "$(CONTROL_PLANE_DIR=/tmp/mo-node hack/control-plane.sh up --node)" && \
//!   CONTROL_PLANE_DIR=/tmp/mo-node hack/control-plane.sh load-image target/image/modelarts-operator.oci.tar && \
//!   MODELARTS_NODE_DIR=/tmp/mo-node/node MODELARTS_OPERATOR_IMAGE=localhost/modelarts-operator:0.1.0 \
//!   cargo test --test helm_node -- --nocapture --test-threads=1
//! ```
//! Without `MODELARTS_NODE_DIR` the tests print `SKIPPED` and pass, unless
//! `MODELARTS_REQUIRE_NODE=1`. Figures are printed as `FIGURE ...` lines (docs/install.md and
//! docs/reliability.md record them).

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/operator.rs"]
mod operator;

use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use modelarts_simulator::{
    DEMO_ACCESS_KEY, DEMO_NODE, DEMO_NODEPOOL, DEMO_POOL, DEMO_PROJECT_ID, DEMO_SECRET_KEY, SimData,
    SimOptions, Simulator, TestCa, Validity,
};
use operator::{has_cond, wait_until};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

const SYNC_SECS: u64 = 10;
const LONG: Duration = Duration::from_secs(180);

/// What the node setup provides, from the environment `hack/test-node.sh` sets.
struct Node {
    ip: IpAddr,
    dir: PathBuf,
    image_repo: String,
    image_tag: String,
}

fn node_or_skip(test: &str) -> Option<Node> {
    let dir = std::env::var_os("MODELARTS_NODE_DIR").map(PathBuf::from);
    let image = std::env::var("MODELARTS_OPERATOR_IMAGE").ok();
    let (Some(dir), Some(image)) = (dir, image) else {
        assert!(
            std::env::var("MODELARTS_REQUIRE_NODE").as_deref() != Ok("1"),
            "{test}: MODELARTS_REQUIRE_NODE=1 but MODELARTS_NODE_DIR/MODELARTS_OPERATOR_IMAGE are unset"
        );
        eprintln!("SKIPPED {test}: no node (run hack/test-node.sh)");
        return None;
    };
    let env = std::fs::read_to_string(dir.join("node.env")).expect("node.env of the running node");
    let ip = env
        .lines()
        .find_map(|l| l.strip_prefix("NODE_IP="))
        .expect("NODE_IP in node.env")
        .parse()
        .expect("NODE_IP is an address");
    let (repo, tag) = image
        .rsplit_once(':')
        .expect("MODELARTS_OPERATOR_IMAGE is repo:tag");
    Some(Node {
        ip,
        dir,
        image_repo: repo.into(),
        image_tag: tag.into(),
    })
}

fn tool(env: &str, name: &str) -> PathBuf {
    std::env::var_os(env)
        .map(PathBuf::from)
        .unwrap_or_else(|| operator::tools_bin().join(name))
}

/// Runs a command, returns stdout; panics with its stderr when it fails.
fn run(program: &Path, args: &[&str]) -> String {
    let out = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("running {}: {e}", program.display()));
    assert!(
        out.status.success(),
        "{} {} failed: {}\n{}",
        program.display(),
        args.join(" "),
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn kubectl(args: &[&str]) -> String {
    run(&tool("KUBECTL", "kubectl"), args)
}

fn helm(args: &[&str]) -> String {
    run(&tool("HELM", "helm"), args)
}

fn chart() -> String {
    format!("{}/charts/modelarts-operator", env!("CARGO_MANIFEST_DIR"))
}

/// One release's world: namespace, simulator on the node's address, CA and credential Secrets.
struct World {
    node: Node,
    admin: Client,
    ns: String,
    release: String,
    sim: modelarts_simulator::SimHandle,
    _ca_dir: tempfile::TempDir,
}

impl World {
    async fn new(test: &str, prefix: &str) -> Option<World> {
        let node = node_or_skip(test)?;
        let admin = cluster::client_or_skip(test).await?;
        let ns = cluster::unique_name(prefix);
        let ca = TestCa::generate(&format!("{ns} CA")).expect("test CA");
        let cert = ca
            .issue(&[node.ip.to_string()], Validity::Current)
            .expect("simulator certificate");
        let sim = Simulator::start(
            SimData::embedded_default(),
            SimOptions {
                bind: node.ip,
                tls: Some(cert),
                ..Default::default()
            },
        )
        .await
        .expect("simulator on the node's bridge address");
        let ca_dir = tempfile::tempdir().expect("temp dir");
        let ca_file = ca_dir.path().join("ca.crt");
        std::fs::write(&ca_file, ca.pem()).expect("writing the CA");
        kubectl(&["create", "namespace", &ns]);
        kubectl(&[
            "-n",
            &ns,
            "create",
            "secret",
            "generic",
            "modelarts-ca",
            &format!("--from-file=ca.crt={}", ca_file.display()),
        ]);
        kubectl(&[
            "-n",
            &ns,
            "create",
            "secret",
            "generic",
            "modelarts-creds",
            &format!("--from-literal=accessKey={DEMO_ACCESS_KEY}"),
            &format!("--from-literal=secretKey={DEMO_SECRET_KEY}"),
        ]);
        Some(World {
            release: "mo".into(),
            node,
            admin,
            ns,
            sim,
            _ca_dir: ca_dir,
        })
    }

    /// `helm install` with the local image (pullPolicy Never), trusting the simulator's CA.
    fn install(&self, extra: &[&str]) {
        let mut args = vec![
            "install".to_string(),
            self.release.clone(),
            chart(),
            "-n".into(),
            self.ns.clone(),
            "--wait".into(),
            "--timeout".into(),
            "180s".into(),
        ];
        args.extend(self.values().into_iter().flat_map(|v| ["--set".to_string(), v]));
        args.extend(extra.iter().map(|s| s.to_string()));
        helm(&args.iter().map(String::as_str).collect::<Vec<_>>());
    }

    fn values(&self) -> Vec<String> {
        vec![
            format!("image.repository={}", self.node.image_repo),
            format!("image.tag={}", self.node.image_tag),
            "image.pullPolicy=Never".into(),
            format!("modelarts.allowedEndpointSuffixes={{{}}}", self.node.ip),
            "modelarts.caBundle.secretName=modelarts-ca".into(),
            "logFormat=text".into(),
        ]
    }

    fn create_pool(&self, name: &str) {
        let pool = json!({
            "apiVersion": "modelarts-operator.io/v1alpha1",
            "kind": "ModelArtsNodePool",
            "metadata": {"name": name, "namespace": self.ns},
            "spec": {
                "projectId": DEMO_PROJECT_ID,
                "poolName": DEMO_POOL,
                "nodePoolName": DEMO_NODEPOOL,
                "endpoint": self.sim.endpoint(),
                "credentialsSecretRef": {"name": "modelarts-creds"},
                "syncInterval": format!("{SYNC_SECS}s"),
            },
        });
        let dir = tempfile::tempdir().expect("temp dir");
        let file = dir.path().join("pool.json");
        std::fs::write(&file, pool.to_string()).expect("writing the pool");
        kubectl(&["apply", "-f", file.to_str().expect("utf-8 path")]);
    }

    async fn wait_ready(&self, name: &str) {
        let api: Api<modelarts_operator::crd::ModelArtsNodePool> =
            Api::namespaced(self.admin.clone(), &self.ns);
        wait_until(&format!("{}/{name} Ready", self.ns), LONG, || async {
            let p = api.get(name).await.map_err(|e| e.to_string())?;
            has_cond(&p, "Ready", "True", "Ready")
                .then_some(())
                .ok_or_else(|| operator::brief(&p))
        })
        .await
    }

    /// The operator Pods of the release: (name, IP, containerID, ready).
    fn pods(&self) -> Vec<(String, String, String, bool)> {
        let out = kubectl(&[
            "-n",
            &self.ns,
            "get",
            "pods",
            "-l",
            &format!("app.kubernetes.io/instance={}", self.release),
            "-o",
            "json",
        ]);
        let v: Value = serde_json::from_str(&out).expect("pod list JSON");
        v["items"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["metadata"]["deletionTimestamp"].is_null())
            .map(|p| {
                let cs = &p["status"]["containerStatuses"][0];
                (
                    p["metadata"]["name"].as_str().unwrap_or_default().to_string(),
                    p["status"]["podIP"].as_str().unwrap_or_default().to_string(),
                    cs["containerID"].as_str().unwrap_or_default().to_string(),
                    cs["ready"].as_bool().unwrap_or(false),
                )
            })
            .collect()
    }

    /// Node-list requests for the demo node pool, as milliseconds since the simulator started.
    fn list_times(&self) -> Vec<u64> {
        let needle = format!("/nodepools/{DEMO_NODEPOOL}/nodes");
        self.sim
            .state()
            .stats()
            .recent
            .iter()
            .filter(|r| r.path.ends_with(&needle))
            .map(|r| r.at_ms)
            .collect()
    }

    fn set_phase(&self, phase: &str) {
        operator::set_demo_node_phase(self.sim.state(), DEMO_NODE, phase);
    }

    async fn lease_holder(&self) -> Option<String> {
        let leases: Api<Lease> = Api::namespaced(self.admin.clone(), &self.ns);
        let l = leases.get_opt("mo-modelarts-operator").await.ok()??;
        l.spec?.holder_identity
    }

    fn finish(self) {
        let _ = Command::new(tool("KUBECTL", "kubectl"))
            .args(["delete", "namespace", &self.ns, "--wait=false"])
            .output();
    }
}

async fn get_text(url: &str) -> Result<String, String> {
    let r = reqwest::Client::new()
        .get(url)
        .timeout(Duration::from_secs(3))
        .send()
        .await
        .map_err(|e| format!("GET {url}: {e}"))?;
    r.text().await.map_err(|e| format!("GET {url}: {e}"))
}

/// The value of the first sample of `name` (exact metric name, any labels).
fn sample(text: &str, name: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (metric, value) = l.rsplit_once(' ')?;
        let bare = metric.split('{').next()?;
        (bare == name).then(|| value.parse().ok())?
    })
}

/// Resident memory of the container's main process, read on the node through containerd's state.
fn container_rss_kib(node: &Node, container_id: &str) -> u64 {
    let id = container_id.trim_start_matches("containerd://");
    let pid_file = node
        .dir
        .join("containerd/state/io.containerd.runtime.v2.task/k8s.io")
        .join(id)
        .join("init.pid");
    let pid = std::fs::read_to_string(&pid_file).unwrap_or_else(|e| panic!("{}: {e}", pid_file.display()));
    let status = std::fs::read_to_string(format!("/proc/{}/status", pid.trim())).expect("process status");
    let field = |k: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(k))
            .map(|v| v.split_whitespace().next().unwrap_or("0").to_string())
            .unwrap_or_default()
    };
    assert_eq!(field("Uid:"), "65532", "the operator runs as 65532 in its Pod");
    field("VmRSS:").parse().expect("VmRSS in KiB")
}

/// The largest pause between consecutive node-list requests at or after `from_ms`, in ms.
fn largest_gap(times: &[u64], from_ms: u64) -> u64 {
    let mut t: Vec<u64> = times.iter().copied().filter(|&t| t >= from_ms).collect();
    t.sort_unstable();
    t.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0)
}

/// Install → Ready with figures, metrics through the Service, an upgrade that keeps syncing, and
/// an uninstall that leaves only the CRD and the user's resources.
#[tokio::test]
async fn helm_install_upgrade_and_uninstall_on_a_real_node() {
    let Some(w) = World::new("helm_install_upgrade_and_uninstall_on_a_real_node", "helm").await else {
        return;
    };
    let t0 = Instant::now();
    w.install(&[]);
    let installed = t0.elapsed();
    w.create_pool("gpu");
    w.wait_ready("gpu").await;
    let ready = t0.elapsed();
    println!(
        "FIGURE helm_install_wait_s={:.1} install_to_first_ready_s={:.1}",
        installed.as_secs_f64(),
        ready.as_secs_f64()
    );

    // Deployment Available; its one Pod Ready (both probes pass) and never restarted.
    kubectl(&[
        "-n",
        &w.ns,
        "wait",
        "deployment/mo-modelarts-operator",
        "--for=condition=Available",
        "--timeout=60s",
    ]);
    let pods = w.pods();
    assert_eq!(pods.len(), 1, "one operator Pod: {pods:?}");
    assert!(pods[0].3, "the operator Pod is Ready (readiness probe): {pods:?}");
    let restarts = kubectl(&[
        "-n",
        &w.ns,
        "get",
        "pod",
        &pods[0].0,
        "-o",
        "jsonpath={.status.containerStatuses[0].restartCount}",
    ]);
    assert_eq!(restarts, "0", "liveness probe never failed");

    // Metrics through the Service's ClusterIP (kube-proxy on the node translates it).
    let ip = kubectl(&[
        "-n",
        &w.ns,
        "get",
        "service",
        "mo-modelarts-operator-metrics",
        "-o",
        "jsonpath={.spec.clusterIP}",
    ]);
    let url = format!("http://{ip}:8080/metrics");
    let text = wait_until("metrics through the Service", LONG, || async {
        let t = get_text(&url).await?;
        sample(&t, "modelarts_operator_leader")
            .filter(|&v| v == 1.0)
            .map(|_| t.clone())
            .ok_or_else(|| "leader gauge not 1 yet".to_string())
    })
    .await;
    let line = text
        .lines()
        .find(|l| {
            l.starts_with("modelarts_operator_nodepool_nodes{")
                && l.contains(&format!("namespace=\"{}\"", w.ns))
                && l.contains("phase=\"available\"")
        })
        .unwrap_or_else(|| panic!("no available-nodes series for {} in:\n{text}", w.ns));
    assert!(
        line.ends_with(" 1"),
        "the demo node pool has 1 Available node: {line}"
    );

    // Memory at rest: a few syncs after Ready.
    tokio::time::sleep(Duration::from_secs(2 * SYNC_SECS)).await;
    let rss = container_rss_kib(&w.node, &pods[0].2);
    println!("FIGURE operator_pod_rss_at_rest_kib={rss} (1 pool)");

    // helm upgrade changes a value: a new Pod rolls out, and syncing never pauses longer than one
    // interval plus the hand-over (the old leader releases the Lease on SIGTERM).
    let before = pods[0].0.clone();
    let start_ms = w.list_times().into_iter().max().unwrap_or(0);
    let mut args = vec![
        "upgrade".to_string(),
        "mo".into(),
        chart(),
        "-n".into(),
        w.ns.clone(),
        "--wait".into(),
    ];
    args.extend(w.values().into_iter().flat_map(|v| ["--set".to_string(), v]));
    args.extend(["--set".into(), "logLevel=debug".into()]);
    helm(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let after = wait_until("the old Pod to be gone after the upgrade", LONG, || async {
        let pods = w.pods();
        match pods.as_slice() {
            [(name, ..)] if *name != before => Ok(name.clone()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    // Two more syncs by the new Pod, then the gaps over the whole rollout.
    let seen = w.list_times().len();
    wait_until("two syncs after the rollout", LONG, || async {
        (w.list_times().len() >= seen + 2)
            .then_some(())
            .ok_or_else(|| "waiting".to_string())
    })
    .await;
    let gap = largest_gap(&w.list_times(), start_ms);
    println!("FIGURE upgrade_largest_sync_gap_ms={gap} (interval {SYNC_SECS}s)");
    assert!(
        gap <= (SYNC_SECS + 5) * 1000,
        "syncing paused {gap} ms during the upgrade (new Pod {after})"
    );
    let holder = w.lease_holder().await.unwrap_or_default();
    assert!(
        holder.starts_with(&after),
        "the new Pod {after} leads: holder {holder}"
    );

    // helm uninstall: only the CRD (Helm's rule) and the user's own objects remain.
    helm(&["uninstall", "mo", "-n", &w.ns, "--wait"]);
    // The garbage collector removes the ReplicaSet and Pod after the Deployment; wait for it.
    wait_until("nothing of the release left after helm uninstall", LONG, || async {
        let out = kubectl(&[
            "-n",
            &w.ns,
            "get",
            "deployments,replicasets,pods,services,serviceaccounts,roles,rolebindings,leases,poddisruptionbudgets,configmaps,secrets",
            "-o",
            "name",
        ]);
        let left: Vec<&str> = out
            .lines()
            .filter(|l| {
                // Ours to keep: the test's Secrets, the namespace's default ServiceAccount and root CA.
                !matches!(
                    *l,
                    "secret/modelarts-ca" | "secret/modelarts-creds" | "serviceaccount/default" | "configmap/kube-root-ca.crt"
                )
            })
            .collect();
        left.is_empty().then_some(()).ok_or_else(|| format!("left: {left:?}"))
    })
    .await;
    let cluster_rbac = kubectl(&["get", "clusterroles,clusterrolebindings", "-o", "name"]);
    assert!(
        !cluster_rbac
            .lines()
            .any(|l| l.ends_with(&format!("/{}-mo-modelarts-operator", w.ns))),
        "cluster RBAC left behind: {cluster_rbac}"
    );
    kubectl(&["get", "crd", "modelartsnodepools.modelarts-operator.io"]);
    w.finish();
}

/// Two replicas: deleting the leader's Pod hands over within the lease duration plus one sync,
/// several times (the median is the figure), and at no scrape do two replicas lead or does a
/// replica that never led have status writes.
#[tokio::test]
async fn two_replicas_hand_over_when_the_leader_pod_is_deleted() {
    let Some(w) = World::new("two_replicas_hand_over_when_the_leader_pod_is_deleted", "helm-ha").await else {
        return;
    };
    let lease_secs = 6;
    w.install(&[
        "--set",
        "replicas=2",
        "--set",
        &format!("leaderElection.leaseDuration={lease_secs}s"),
    ]);
    w.create_pool("gpu");
    w.wait_ready("gpu").await;

    // Status keeps changing so the leader writes all the time: a second writer could not hide.
    let flipper = {
        let state = w.sim.state().clone();
        tokio::spawn(async move {
            let mut abnormal = false;
            loop {
                abnormal = !abnormal;
                let phase = if abnormal { "Abnormal" } else { "Available" };
                operator::set_demo_node_phase(&state, DEMO_NODE, phase);
                tokio::time::sleep(Duration::from_secs(3)).await;
            }
        })
    };

    let led: Mutex<BTreeMap<String, bool>> = Mutex::default();
    let mut failovers = Vec::new();
    for round in 0..5 {
        // Both replicas Ready (the standby is Ready while it waits), exactly one leads.
        let (leader, leader_ip) = wait_until("two Ready replicas, one leading", LONG, || async {
            let pods = w.pods();
            if pods.len() != 2 || !pods.iter().all(|p| p.3) {
                return Err(format!("pods {pods:?}"));
            }
            let mut leaders = Vec::new();
            for (name, ip, ..) in &pods {
                let t = get_text(&format!("http://{ip}:8080/metrics")).await?;
                check_writer(&led, name, &t)?;
                if sample(&t, "modelarts_operator_leader") == Some(1.0) {
                    leaders.push((name.clone(), ip.clone()));
                }
            }
            match leaders.as_slice() {
                [one] => Ok(one.clone()),
                other => Err(format!("leaders {other:?}")),
            }
        })
        .await;
        let _ = leader_ip;
        let synced_before = w.list_times().len();
        let t0 = Instant::now();
        kubectl(&["-n", &w.ns, "delete", "pod", &leader, "--wait=false"]);
        // The other replica leads and syncs; meanwhile every scrape obeys the one-writer rule.
        let new_leader = wait_until("the standby to lead and sync", LONG, || async {
            let holder = w.lease_holder().await.unwrap_or_default();
            for (name, ip, ..) in w.pods() {
                if name == leader {
                    continue;
                }
                let t = get_text(&format!("http://{ip}:8080/metrics")).await?;
                check_writer(&led, &name, &t)?;
                if holder.starts_with(&name) && w.list_times().len() > synced_before {
                    return Ok(name);
                }
            }
            Err(format!("holder {holder:?}"))
        })
        .await;
        let took = t0.elapsed();
        println!(
            "FIGURE failover round={round} seconds={:.2} new_leader={new_leader}",
            took.as_secs_f64()
        );
        assert!(
            took <= Duration::from_secs(lease_secs + SYNC_SECS),
            "hand-over took {took:?}, more than the lease ({lease_secs}s) plus one sync ({SYNC_SECS}s)"
        );
        failovers.push(took.as_secs_f64());
    }
    flipper.abort();
    failovers.sort_by(f64::total_cmp);
    println!(
        "FIGURE failover_median_s={:.2} min_s={:.2} max_s={:.2} runs={}",
        failovers[failovers.len() / 2],
        failovers[0],
        failovers[failovers.len() - 1],
        failovers.len()
    );
    w.set_phase("Available");
    helm(&["uninstall", "mo", "-n", &w.ns, "--wait"]);
    w.finish();
}

/// Records whether this replica has led; a replica that never led must have written no status.
fn check_writer(led: &Mutex<BTreeMap<String, bool>>, pod: &str, metrics: &str) -> Result<(), String> {
    let leading = sample(metrics, "modelarts_operator_leader") == Some(1.0);
    let mut led = led.lock().map_err(|e| e.to_string())?;
    let has_led = led.entry(pod.to_string()).or_insert(false);
    *has_led |= leading;
    let writes: f64 = metrics
        .lines()
        .filter(|l| l.starts_with("modelarts_operator_status_writes_total"))
        .filter_map(|l| l.rsplit_once(' ')?.1.parse::<f64>().ok())
        .sum();
    if !*has_led && writes > 0.0 {
        panic!("replica {pod} wrote status {writes} times without ever leading");
    }
    Ok(())
}
