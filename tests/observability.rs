//! The observability stack users already run, for real: a Prometheus (built from the Go module
//! proxy) scraping the operator and evaluating the chart's alert rules, and kube-state-metrics
//! exporting the CR's status with docs/kube-state-metrics.yaml, both against the local plane.
//!
//! Needs the plane (as tests/e2e_operator.rs) and `hack/observability-tools.sh`; without the
//! tools each test prints SKIPPED and passes, unless MODELARTS_REQUIRE_OBSERVABILITY=1.

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/operator.rs"]
mod operator;

use modelarts_simulator::{DEMO_ACCESS_KEY, DEMO_NODE, DEMO_NODEPOOL, DEMO_POOL, DEMO_SECRET_KEY};
use operator::{E2e, free_port, tools_bin, wait_until};
use serde_json::{Value, json};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::Duration,
};

const READY: &[(&str, &str, &str)] = &[("Ready", "True", "Ready")];
/// Scrape, evaluation and the operator's 10 s sync: an alert needs a few of each.
const ALERT_TIMEOUT: Duration = Duration::from_secs(90);

/// A tool from the cache, or `None` (SKIPPED) unless the tools are required.
fn tool(name: &str) -> Option<PathBuf> {
    let path = tools_bin().join(name);
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("MODELARTS_REQUIRE_OBSERVABILITY").as_deref() == Ok("1") {
        panic!("{} missing: run hack/observability-tools.sh", path.display());
    }
    use std::io::Write;
    let _ = writeln!(
        std::io::stderr(),
        "SKIPPED: {} missing (hack/observability-tools.sh builds it)",
        path.display()
    );
    None
}

/// A child process killed (by its own handle, so by PID) and reaped when dropped.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn(bin: &Path, args: &[String], log: &Path) -> Proc {
    let out = std::fs::File::create(log).expect("log file");
    let err = out.try_clone().expect("log handle");
    let child = Command::new(bin)
        .args(args)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(out)
        .stderr(err)
        .spawn()
        .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
    Proc(child)
}

/// The chart's alert rules as a plain rules file, rendered by the same script CI checks with
/// promtool, with `for: 0s` on the abnormal-node alert so the test waits only for scrapes.
fn render_rules(dir: &Path) -> PathBuf {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let out = Command::new(root.join("hack/render-alerts.sh"))
        .args(["--set", "metrics.prometheusRule.abnormalFor=0s"])
        .env(
            "HELM",
            std::env::var_os("HELM").map_or_else(|| tools_bin().join("helm"), PathBuf::from),
        )
        .output()
        .expect("running hack/render-alerts.sh");
    assert!(
        out.status.success(),
        "render-alerts: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let path = dir.join("rules.yaml");
    std::fs::write(&path, &out.stdout).expect("writing rules");
    path
}

async fn get_json(url: &str) -> Result<Value, String> {
    let resp = reqwest::get(url).await.map_err(|e| e.to_string())?;
    resp.json::<Value>().await.map_err(|e| e.to_string())
}

/// The state of `alert` for resource `ns/name` in Prometheus, if it is pending or firing.
async fn alert_state(prom: &str, alert: &str, ns: &str, name: &str) -> Result<Option<String>, String> {
    let body = get_json(&format!("{prom}/api/v1/alerts")).await?;
    let alerts = body["data"]["alerts"]
        .as_array()
        .ok_or(format!("no alerts array: {body}"))?;
    Ok(alerts
        .iter()
        .find(|a| {
            a["labels"]["alertname"] == alert && a["labels"]["namespace"] == ns && a["labels"]["name"] == name
        })
        .and_then(|a| a["state"].as_str().map(str::to_owned)))
}

/// A real Prometheus scrapes the operator every second and evaluates the chart's rules: the
/// abnormal-node alert fires after a node turns Abnormal in the simulator and resolves after
/// it recovers, with the resource's namespace and name as labels.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn prometheus_abnormal_node_alert_fires_and_resolves() {
    let Some(prometheus) = tool("prometheus") else {
        return;
    };
    let Some(e) = E2e::start("prometheus_abnormal_node_alert_fires_and_resolves", "e2e-prom").await else {
        return;
    };
    let ns = e.ns.clone();
    e.put_secret(&ns, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY).await;
    e.create_pool(&ns, "np", DEMO_NODEPOOL, "creds", json!({})).await;
    e.wait_conds(&ns, "np", READY).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let rules = render_rules(dir.path());
    let config = dir.path().join("prometheus.yml");
    // job_name is the chart's full name, the `job` the rules select (what a ServiceMonitor makes).
    std::fs::write(
        &config,
        format!(
            "global: {{scrape_interval: 1s, evaluation_interval: 1s}}\nrule_files: [{}]\nscrape_configs:\n  - job_name: modelarts-operator\n    static_configs: [{{targets: ['{}']}}]\n",
            rules.display(),
            e.op().metrics_addr
        ),
    )
    .expect("writing prometheus.yml");
    let port = free_port();
    let prom = format!("http://127.0.0.1:{port}");
    let _prometheus = spawn(
        &prometheus,
        &[
            format!("--config.file={}", config.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ],
        &dir.path().join("prometheus.log"),
    );
    wait_until("Prometheus scraping the operator", ALERT_TIMEOUT, || async {
        let body = get_json(&format!(
            "{prom}/api/v1/query?query=up%7Bjob%3D%22modelarts-operator%22%7D"
        ))
        .await?;
        match body["data"]["result"][0]["value"][1].as_str() {
            Some("1") => Ok(()),
            _ => Err(body.to_string()),
        }
    })
    .await;
    assert_eq!(
        alert_state(&prom, "ModelArtsNodePoolAbnormalNodes", &ns, "np")
            .await
            .unwrap(),
        None,
        "no alert while every node is Available"
    );

    e.set_node_phase(DEMO_NODE, "Abnormal");
    wait_until("the abnormal-node alert firing", ALERT_TIMEOUT, || async {
        match alert_state(&prom, "ModelArtsNodePoolAbnormalNodes", &ns, "np").await? {
            Some(s) if s == "firing" => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;

    e.set_node_phase(DEMO_NODE, "Available");
    wait_until("the abnormal-node alert resolving", ALERT_TIMEOUT, || async {
        match alert_state(&prom, "ModelArtsNodePoolAbnormalNodes", &ns, "np").await? {
            None => Ok(()),
            other => Err(format!("{other:?}")),
        }
    })
    .await;
    e.finish().await;
}

/// Samples of `metric` in a Prometheus text exposition whose labels include every `want`.
fn samples(text: &str, metric: &str, want: &[(&str, &str)]) -> Vec<(String, f64)> {
    text.lines()
        .filter(|l| l.starts_with(metric) && l[metric.len()..].starts_with('{'))
        .filter(|l| want.iter().all(|(k, v)| l.contains(&format!("{k}=\"{v}\""))))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            Some((series.to_string(), value.parse().ok()?))
        })
        .collect()
}

/// The real kube-state-metrics with docs/kube-state-metrics.yaml exports the CR's status
/// fields: node counts by phase, desired count, exact resources, conditions.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kube_state_metrics_exports_the_status_fields() {
    let Some(ksm) = tool("kube-state-metrics") else {
        return;
    };
    let Some(e) = E2e::start("kube_state_metrics_exports_the_status_fields", "e2e-ksm").await else {
        return;
    };
    let ns = e.ns.clone();
    e.put_secret(&ns, "creds", DEMO_ACCESS_KEY, DEMO_SECRET_KEY).await;
    e.create_pool(&ns, "np", DEMO_NODEPOOL, "creds", json!({})).await;
    e.wait_conds(&ns, "np", READY).await;

    let dir = tempfile::tempdir().expect("temp dir");
    let config = Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/kube-state-metrics.yaml");
    let (port, telemetry) = (free_port(), free_port());
    let _ksm = spawn(
        &ksm,
        &[
            format!("--kubeconfig={}", e.admin_kubeconfig.display()),
            "--custom-resource-state-only".into(),
            format!("--custom-resource-state-config-file={}", config.display()),
            format!("--namespaces={ns}"),
            "--host=127.0.0.1".into(),
            format!("--port={port}"),
            "--telemetry-host=127.0.0.1".into(),
            format!("--telemetry-port={telemetry}"),
        ],
        &dir.path().join("ksm.log"),
    );
    let url = format!("http://127.0.0.1:{port}/metrics");
    let ours = [("namespace", ns.as_str()), ("name", "np")];
    let text = wait_until(
        "kube-state-metrics exporting the resource",
        operator::TIMEOUT,
        || async {
            let text = reqwest::get(&url)
                .await
                .map_err(|e| e.to_string())?
                .text()
                .await
                .map_err(|e| e.to_string())?;
            if samples(&text, "modelarts_nodepool_nodes", &ours).is_empty() {
                Err(text.chars().take(2000).collect())
            } else {
                Ok(text)
            }
        },
    )
    .await;
    let one = |metric: &str, extra: &[(&str, &str)]| -> f64 {
        let mut want = ours.to_vec();
        want.extend_from_slice(extra);
        let s = samples(&text, metric, &want);
        assert_eq!(s.len(), 1, "{metric} {extra:?}: {s:?}\n{text}");
        s[0].1
    };
    // The seed node pool: one Available node of 1930m CPU and 1912Mi memory.
    assert_eq!(
        one(
            "modelarts_nodepool_nodes",
            &[("pool", DEMO_POOL), ("nodepool", DEMO_NODEPOOL)]
        ),
        1.0
    );
    assert_eq!(
        one("modelarts_nodepool_phase_nodes", &[("phase", "available")]),
        1.0
    );
    assert_eq!(
        one("modelarts_nodepool_phase_nodes", &[("phase", "abnormal")]),
        0.0
    );
    assert_eq!(one("modelarts_nodepool_desired_nodes", &[]), 1.0);
    assert_eq!(one("modelarts_nodepool_creation_failed_nodes", &[]), 0.0);
    assert_eq!(one("modelarts_nodepool_capacity", &[("resource", "cpu")]), 1.93);
    assert_eq!(
        one("modelarts_nodepool_capacity", &[("resource", "memory")]),
        1912.0 * 1024.0 * 1024.0
    );
    assert_eq!(
        one(
            "modelarts_nodepool_condition",
            &[("type", "Ready"), ("status", "True"), ("reason", "Ready")]
        ),
        1.0
    );
    assert_eq!(
        one(
            "modelarts_nodepool_condition",
            &[("type", "Scaling"), ("status", "False"), ("reason", "Converged")]
        ),
        1.0
    );
    let obj = e.get(&ns, "np").await;
    let synced: jiff::Timestamp = obj.status.unwrap().last_sync_time.unwrap().parse().unwrap();
    assert_eq!(
        one("modelarts_nodepool_last_sync_time_seconds", &[]),
        synced.as_second() as f64
    );
    e.finish().await;
}
