//! End-to-end harness: the real control plane, the in-process ModelArts simulator and the operator
//! binary running as a separate process under a ServiceAccount that has only the chart's RBAC.
//!
//! Each [`E2e`] owns a namespace, a ServiceAccount + ClusterRole(Binding) (or, for a namespaced
//! install, Role(Binding)) rendered by `hack/render-rbac.sh`, a simulator and an operator process sharded by `--label-selector
//! e2e=<unique>`, so tests run concurrently without seeing each other's resources.
//!
//! Include it next to `support/cluster.rs`:
//! ```ignore
//! #[path = "support/cluster.rs"]
//! mod cluster;
//! #[path = "support/operator.rs"]
//! mod operator;
//! ```
#![allow(dead_code)]

use crate::cluster;
use k8s_openapi::api::authentication::v1::{TokenRequest, TokenRequestSpec};
use k8s_openapi::api::core::v1::{Namespace, Secret, ServiceAccount};
use k8s_openapi::api::events::v1::Event;
use k8s_openapi::api::rbac::v1::{ClusterRole, ClusterRoleBinding, Role, RoleBinding};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{Api, DeleteParams, ListParams, Patch, PatchParams, PostParams};
use kube::config::Kubeconfig;
use kube::runtime::wait::{await_condition, conditions};
use kube::{Client, Config, ResourceExt};
use modelarts_operator::crd::ModelArtsNodePool;
use modelarts_simulator::{SimData, SimHandle, SimOptions, Simulator, TestCa, Validity};
use serde_json::{Value, json};
use std::io::{Read, Seek, SeekFrom};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// Default bound of every wait.
pub const TIMEOUT: Duration = Duration::from_secs(60);
/// Field manager of the tests' own writes.
pub const MANAGER: &str = "e2e-test";
/// Name of the operator's ServiceAccount in each test namespace.
pub const SA_NAME: &str = "operator";
/// The committed CRD the tests install.
pub const CRD_FILE: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/crds/modelartsnodepools.modelarts-operator.io.yaml"
);
const CRD_NAME: &str = "modelartsnodepools.modelarts-operator.io";

static CRD_INSTALLED: tokio::sync::OnceCell<()> = tokio::sync::OnceCell::const_new();

/// Server-side applies the committed CRD once per test process and waits until it is Established.
pub async fn install_crd(admin: &Client) {
    CRD_INSTALLED.get_or_init(|| apply_crd(admin)).await;
}

/// Server-side applies the committed CRD and waits until it is Established, every time (for a
/// private control plane, which [`install_crd`]'s once-per-process memo knows nothing about).
pub async fn apply_crd(admin: &Client) {
    let text = std::fs::read_to_string(CRD_FILE).unwrap_or_else(|e| panic!("reading {CRD_FILE}: {e}"));
    let crd: CustomResourceDefinition =
        serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("parsing {CRD_FILE}: {e}"));
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    crds.patch(
        CRD_NAME,
        &PatchParams::apply(MANAGER).force(),
        &Patch::Apply(&crd),
    )
    .await
    .unwrap_or_else(|e| panic!("applying the CRD: {e}"));
    tokio::time::timeout(
        TIMEOUT,
        await_condition(crds, CRD_NAME, conditions::is_crd_established()),
    )
    .await
    .expect("CRD Established within 60s")
    .expect("watching the CRD");
}

/// Panics with `what` unless `check` yields a value within `timeout`; polls every 250 ms.
/// `check` returns `Err(last observation)` while waiting, which the panic message shows.
pub async fn wait_until<T, F, Fut>(what: &str, timeout: Duration, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    let deadline = Instant::now() + timeout;
    loop {
        match check().await {
            Ok(v) => return v,
            Err(last) if Instant::now() >= deadline => {
                panic!("timed out after {timeout:?} waiting for {what}; last observed: {last}")
            }
            Err(_) => tokio::time::sleep(Duration::from_millis(250)).await,
        }
    }
}

/// `(status, reason)` of a condition of a resource, if present.
pub fn cond(obj: &ModelArtsNodePool, type_: &str) -> Option<(String, String)> {
    obj.status
        .as_ref()?
        .conditions
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| (c.status.clone(), c.reason.clone()))
}

/// Whether a condition has this status and reason.
pub fn has_cond(obj: &ModelArtsNodePool, type_: &str, status: &str, reason: &str) -> bool {
    cond(obj, type_).is_some_and(|(s, r)| s == status && r == reason)
}

/// The message of a condition, or "".
pub fn cond_message(obj: &ModelArtsNodePool, type_: &str) -> String {
    obj.status
        .as_ref()
        .and_then(|s| s.conditions.iter().find(|c| c.type_ == type_))
        .map(|c| c.message.clone())
        .unwrap_or_default()
}

/// A compact view of a resource's status for failure messages.
pub fn brief(obj: &ModelArtsNodePool) -> String {
    let Some(s) = &obj.status else {
        return format!("rv={} (no status)", obj.resource_version().unwrap_or_default());
    };
    let conds: Vec<String> = s
        .conditions
        .iter()
        .map(|c| format!("{}={}/{} ({})", c.type_, c.status, c.reason, c.message))
        .collect();
    format!(
        "rv={} gen={:?} observedGeneration={:?} lastSync={:?} nodeCount={:?} conditions=[{}]",
        obj.resource_version().unwrap_or_default(),
        obj.metadata.generation,
        s.observed_generation,
        s.last_sync_time,
        s.pool.as_ref().map(|p| p.node_count),
        conds.join("; ")
    )
}

/// A free loopback port (bound and released; good enough for a test's metrics listener).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("binding an ephemeral port")
}

/// How the harness starts the operator: the flags that differ between tests, and extra
/// environment. The default is what every test runs with unless it says otherwise.
#[derive(Debug, Clone)]
pub struct OperatorConfig {
    /// `--allow-http-endpoints` (off: the simulator speaks HTTPS).
    pub allow_http: bool,
    /// `--modelarts-ca-file`: the test's private CA, which issued the simulator's certificate.
    pub ca_file: Option<PathBuf>,
    /// `--allowed-endpoint-suffix` values; empty leaves the operator's default (public ModelArts
    /// domains only).
    pub allowed_suffixes: Vec<String>,
    /// `--allow-default-credentials`.
    pub allow_default_credentials: bool,
    /// `--namespace`, for a namespaced install.
    pub namespace: Option<String>,
    /// Environment variables beyond `KUBECONFIG` and `RUST_LOG` (the rest is cleared).
    pub env: Vec<(String, String)>,
    /// Further flags, e.g. `["--modelarts-timeout", "2s"]`. A `--max-backoff` here replaces the
    /// harness' default `--max-backoff 10s`.
    pub extra_args: Vec<String>,
}

impl Default for OperatorConfig {
    fn default() -> Self {
        OperatorConfig {
            allow_http: false,
            ca_file: None,
            allowed_suffixes: vec!["127.0.0.1".into()],
            allow_default_credentials: false,
            namespace: None,
            env: Vec::new(),
            extra_args: Vec::new(),
        }
    }
}

impl OperatorConfig {
    fn args(&self) -> Vec<String> {
        let mut args = Vec::new();
        if self.allow_http {
            args.push("--allow-http-endpoints".to_string());
        }
        if let Some(f) = &self.ca_file {
            args.extend(["--modelarts-ca-file".to_string(), f.display().to_string()]);
        }
        for s in &self.allowed_suffixes {
            args.extend(["--allowed-endpoint-suffix".to_string(), s.clone()]);
        }
        if self.allow_default_credentials {
            args.push("--allow-default-credentials".to_string());
        }
        if let Some(ns) = &self.namespace {
            args.extend(["--namespace".to_string(), ns.clone()]);
        }
        if !self.extra_args.iter().any(|a| a == "--max-backoff") {
            args.extend(["--max-backoff".to_string(), "10s".to_string()]);
        }
        args.extend(self.extra_args.iter().cloned());
        args
    }
}

/// The operator binary running as a child process. Dropping it kills the process (SIGTERM, then
/// SIGKILL after a bounded wait), so a panicking test never leaks an operator; on panic the tail of
/// its log is printed.
pub struct OperatorProcess {
    child: Option<Child>,
    pid: u32,
    /// Where its stdout and stderr go.
    pub log: PathBuf,
    /// Its `/metrics`, `/healthz` and `/readyz` address.
    pub metrics_addr: SocketAddr,
}

impl OperatorProcess {
    /// Starts `modelarts-operator run` for the shard `e2e=<shard>` with the given kubeconfig and
    /// configuration; waits until `/readyz` answers.
    pub async fn start(kubeconfig: &Path, shard: &str, config: &OperatorConfig, log: PathBuf) -> Self {
        let metrics_addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().expect("address");
        let out = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log)
            .unwrap_or_else(|e| panic!("opening {}: {e}", log.display()));
        let err = out.try_clone().expect("cloning the log file handle");
        // E2E_OPERATOR_BIN runs the suite against another build (e.g. to show a test fails on
        // an older operator).
        let bin = std::env::var_os("E2E_OPERATOR_BIN")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_modelarts-operator")));
        let child = Command::new(bin)
            .arg("run")
            .args(config.args())
            .args(["--metrics-addr", &metrics_addr.to_string()])
            .args(["--label-selector", &format!("e2e={shard}")])
            // Nothing from the test's environment (WATCH_NAMESPACE, HUAWEICLOUD_SDK_*, in-cluster
            // variables, a developer's KUBECONFIG) may leak into the operator.
            .env_clear()
            .env("KUBECONFIG", kubeconfig)
            .env("RUST_LOG", "info")
            .envs(config.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(out))
            .stderr(Stdio::from(err))
            .spawn()
            .expect("spawning the operator binary");
        let pid = child.id();
        let mut op = OperatorProcess {
            child: Some(child),
            pid,
            log,
            metrics_addr,
        };
        op.wait_ready().await;
        op
    }

    /// The process ID.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    fn exited(&mut self) -> Option<ExitStatus> {
        self.child.as_mut().and_then(|c| c.try_wait().ok().flatten())
    }

    /// The exit status if the process has exited (e.g. after a panic), `None` while it runs.
    pub fn exit_status(&mut self) -> Option<ExitStatus> {
        self.exited()
    }

    async fn wait_ready(&mut self) {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(2))
            .build()
            .expect("http client");
        let url = format!("http://{}/readyz", self.metrics_addr);
        let deadline = Instant::now() + TIMEOUT;
        loop {
            if let Some(status) = self.exited() {
                panic!(
                    "operator exited during start ({status}); log:\n{}",
                    self.log_tail(60)
                );
            }
            if let Ok(r) = http.get(&url).send().await
                && r.status().is_success()
            {
                return;
            }
            if Instant::now() >= deadline {
                panic!(
                    "operator not ready within {TIMEOUT:?}; log:\n{}",
                    self.log_tail(60)
                );
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// The body of `/metrics`.
    pub async fn metrics(&self) -> String {
        let url = format!("http://{}/metrics", self.metrics_addr);
        reqwest::get(&url)
            .await
            .and_then(|r| r.error_for_status())
            .expect("GET /metrics")
            .text()
            .await
            .expect("metrics body")
    }

    /// The value of the counter whose sample name ends in `suffix` (e.g. `status_writes_total`).
    pub async fn counter(&self, suffix: &str) -> f64 {
        let text = self.metrics().await;
        sample(&text, suffix).unwrap_or_else(|| panic!("no metric ending in {suffix} in:\n{text}"))
    }

    /// Like [`OperatorProcess::counter`], but 0 while the series does not exist yet (labelled
    /// series appear on first increment).
    pub async fn counter_or_zero(&self, suffix: &str) -> f64 {
        sample(&self.metrics().await, suffix).unwrap_or(0.0)
    }

    /// The last `lines` lines of the operator's log.
    pub fn log_tail(&self, lines: usize) -> String {
        let mut text = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.log) {
            let len = f.metadata().map(|m| m.len()).unwrap_or(0);
            let _ = f.seek(SeekFrom::Start(len.saturating_sub(64 * 1024)));
            let _ = f.read_to_string(&mut text);
        }
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Sends SIGTERM to the recorded PID, waits up to `grace` for the exit, then SIGKILLs.
    /// Returns the exit status and whether it exited within the grace period.
    pub fn stop(&mut self, grace: Duration) -> Option<(ExitStatus, bool)> {
        let mut child = self.child.take()?;
        if let Ok(Some(status)) = child.try_wait() {
            return Some((status, true));
        }
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.pid.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        let deadline = Instant::now() + grace;
        while Instant::now() < deadline {
            if let Ok(Some(status)) = child.try_wait() {
                return Some((status, true));
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        child.wait().ok().map(|s| (s, false))
    }
}

impl Drop for OperatorProcess {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- operator (pid {}) log tail, {} ---\n{}\n--- end of operator log ---",
                self.pid,
                self.log.display(),
                self.log_tail(80)
            );
        }
        self.stop(Duration::from_secs(10));
    }
}

/// Sets the phase of a node of the demo node pool in a simulator.
pub fn set_demo_node_phase(state: &modelarts_simulator::SimState, node: &str, phase: &str) {
    use modelarts_simulator::{DEMO_NODEPOOL, DEMO_POOL, DEMO_PROJECT_ID, NodePatch};
    state
        .patch_node(
            (DEMO_PROJECT_ID, DEMO_POOL, DEMO_NODEPOOL),
            node,
            NodePatch {
                phase: Some(phase.into()),
                ..Default::default()
            },
        )
        .expect("patching the simulator's node");
}

/// The value of the first sample whose name (labels included) ends in `suffix`.
fn sample(text: &str, suffix: &str) -> Option<f64> {
    text.lines().filter(|l| !l.starts_with('#')).find_map(|l| {
        let (name, value) = l.split_once(' ')?;
        name.ends_with(suffix).then(|| value.trim().parse::<f64>().ok())?
    })
}

/// One test's world: namespace, RBAC, ServiceAccount kubeconfig, simulator and operator.
pub struct E2e {
    /// The running operator, if any. First, so it is dropped (killed, its log printed on panic)
    /// before the simulator and the directory holding its log.
    pub operator: Option<OperatorProcess>,
    /// Test name, for messages.
    pub test: String,
    /// Admin client (client certificate, system:masters).
    pub admin: Client,
    /// Admin config (server URL and CA reused for the ServiceAccount).
    pub admin_config: Config,
    /// Namespace holding the operator's ServiceAccount and the test's first resources.
    pub ns: String,
    /// Label value selecting this test's resources: `e2e=<shard>`.
    pub shard: String,
    /// The ModelArts simulator, with the embedded default data, serving HTTPS with a
    /// certificate for 127.0.0.1 from [`E2e::ca`].
    pub sim: SimHandle,
    /// The test's private CA; the operator trusts it through `--modelarts-ca-file`.
    pub ca: TestCa,
    /// Where the CA certificate is written (`config.ca_file`).
    pub ca_file: PathBuf,
    /// Holds the ServiceAccount kubeconfig and the operator log.
    pub dir: tempfile::TempDir,
    /// Kubeconfig of the operator's ServiceAccount (token only).
    pub sa_kubeconfig: PathBuf,
    /// How [`E2e::start_operator`] starts the operator; change it before a (re)start.
    pub config: OperatorConfig,
    /// Set for a namespaced install: the chart's Role variant in this namespace only.
    pub watch_namespace: Option<String>,
    /// The admin kubeconfig everything here targets (`$KUBECONFIG`, or a private plane's).
    pub admin_kubeconfig: PathBuf,
    namespaces: Vec<String>,
    cluster_rbac: Vec<String>,
    starts: u32,
}

impl E2e {
    /// Sets the phase of a node of the demo node pool in this test's simulator.
    pub fn set_node_phase(&self, node: &str, phase: &str) {
        set_demo_node_phase(self.sim.state(), node, phase);
    }

    /// Sets everything up and starts the operator, or returns `None` (SKIPPED) without a cluster.
    pub async fn start(test: &str, prefix: &str) -> Option<E2e> {
        let mut e = Self::without_operator(test, prefix).await?;
        e.start_operator().await;
        Some(e)
    }

    /// Like [`E2e::start`] but leaves the operator stopped.
    pub async fn without_operator(test: &str, prefix: &str) -> Option<E2e> {
        Self::setup(test, prefix, false).await
    }

    /// A namespaced install: the chart rendered with `watchNamespace` = the test's namespace, so
    /// the ServiceAccount has a Role (and RoleBinding) there and nothing cluster-wide; the operator
    /// is configured with `--namespace` but left stopped.
    pub async fn namespaced_without_operator(test: &str, prefix: &str) -> Option<E2e> {
        Self::setup(test, prefix, true).await
    }

    /// Like [`E2e::without_operator`], but against the control plane of this admin kubeconfig
    /// (e.g. a private plane of `support/plane.rs`) instead of `$KUBECONFIG`; installs the CRD there.
    pub async fn on_kubeconfig_without_operator(test: &str, prefix: &str, kubeconfig: &Path) -> E2e {
        let admin_config = cluster::config_from_path(test, kubeconfig).await;
        let admin = cluster::client_from_config(test, admin_config.clone()).await;
        apply_crd(&admin).await;
        Self::setup_with(test, prefix, false, admin_config, admin, kubeconfig.to_path_buf()).await
    }

    async fn setup(test: &str, prefix: &str, namespaced: bool) -> Option<E2e> {
        let admin_config = cluster::config_or_skip(test).await?;
        let admin = cluster::client_or_skip(test).await?;
        install_crd(&admin).await;
        let path = std::env::var_os("KUBECONFIG").expect("KUBECONFIG");
        let first = std::env::split_paths(&path).next().expect("KUBECONFIG entry");
        Some(Self::setup_with(test, prefix, namespaced, admin_config, admin, first).await)
    }

    async fn setup_with(
        test: &str,
        prefix: &str,
        namespaced: bool,
        admin_config: Config,
        admin: Client,
        admin_kubeconfig: PathBuf,
    ) -> E2e {
        let id = cluster::unique_name(prefix);
        let ca = TestCa::generate(&format!("{id} test CA")).expect("test CA");
        let cert = ca
            .issue(&["127.0.0.1".to_string()], Validity::Current)
            .expect("simulator certificate");
        let sim = Simulator::start(
            SimData::embedded_default(),
            SimOptions {
                tls: Some(cert),
                ..Default::default()
            },
        )
        .await
        .expect("simulator starts");
        let dir = tempfile::Builder::new()
            .prefix(&format!("{id}-"))
            .tempdir()
            .expect("temp dir");
        let ca_file = dir.path().join("modelarts-ca.pem");
        std::fs::write(&ca_file, ca.pem()).expect("writing the CA file");
        let sa_kubeconfig = dir.path().join("operator.kubeconfig");
        let mut e = E2e {
            operator: None,
            test: test.to_string(),
            admin,
            admin_config,
            ns: id.clone(),
            shard: id.clone(),
            sim,
            ca,
            ca_file: ca_file.clone(),
            dir,
            sa_kubeconfig,
            config: OperatorConfig {
                namespace: namespaced.then(|| id.clone()),
                ca_file: Some(ca_file),
                ..Default::default()
            },
            watch_namespace: namespaced.then(|| id.clone()),
            admin_kubeconfig,
            namespaces: Vec::new(),
            cluster_rbac: Vec::new(),
            starts: 0,
        };
        e.create_namespace(&id).await;
        e.apply_chart_rbac().await;
        e.write_sa_kubeconfig().await;
        e
    }

    /// Creates a namespace (remembered for cleanup).
    pub async fn create_namespace(&mut self, name: &str) {
        let nss: Api<Namespace> = Api::all(self.admin.clone());
        let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": name}})).unwrap();
        nss.create(&PostParams::default(), &ns)
            .await
            .unwrap_or_else(|e| panic!("creating namespace {name}: {e}"));
        self.namespaces.push(name.to_string());
    }

    /// Renders the chart's ServiceAccount + RBAC with `hack/render-rbac.sh` (with
    /// `--set watchNamespace=` for a namespaced install) and applies it as admin.
    async fn apply_chart_rbac(&mut self) {
        let mut args = vec![self.ns.clone(), SA_NAME.to_string()];
        if let Some(ns) = &self.watch_namespace {
            args.extend(["--set".to_string(), format!("watchNamespace={ns}")]);
        }
        let root = env!("CARGO_MANIFEST_DIR");
        let tools_bin = tools_bin();
        let path = match std::env::var_os("PATH") {
            Some(p) => format!("{}:{}", tools_bin.display(), p.to_string_lossy()),
            None => tools_bin.display().to_string(),
        };
        let out = Command::new(format!("{root}/hack/render-rbac.sh"))
            .args(&args)
            .env("PATH", path)
            .stdin(Stdio::null())
            .output()
            .expect("running hack/render-rbac.sh");
        assert!(
            out.status.success(),
            "hack/render-rbac.sh failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let text = String::from_utf8(out.stdout).expect("render-rbac output is UTF-8");
        let docs: Vec<Value> = serde_saphyr::from_multiple(&text).expect("render-rbac output is YAML");
        let pp = PatchParams::apply(MANAGER).force();
        let mut kinds = Vec::new();
        for doc in docs.into_iter().filter(|d| d.is_object()) {
            let kind = doc["kind"].as_str().unwrap_or_default().to_string();
            let name = doc["metadata"]["name"].as_str().unwrap_or_default().to_string();
            let ns = doc["metadata"]["namespace"].as_str().map(str::to_string);
            let c = self.admin.clone();
            let res = match kind.as_str() {
                "ServiceAccount" => {
                    let ns = ns.clone().unwrap_or_else(|| self.ns.clone());
                    Api::<ServiceAccount>::namespaced(c, &ns)
                        .patch(&name, &pp, &Patch::Apply(&doc))
                        .await
                        .map(|_| ())
                }
                "ClusterRole" => {
                    self.cluster_rbac.push(format!("ClusterRole/{name}"));
                    Api::<ClusterRole>::all(c)
                        .patch(&name, &pp, &Patch::Apply(&doc))
                        .await
                        .map(|_| ())
                }
                "ClusterRoleBinding" => {
                    self.cluster_rbac.push(format!("ClusterRoleBinding/{name}"));
                    Api::<ClusterRoleBinding>::all(c)
                        .patch(&name, &pp, &Patch::Apply(&doc))
                        .await
                        .map(|_| ())
                }
                "Role" => {
                    let ns = ns.clone().unwrap_or_else(|| self.ns.clone());
                    Api::<Role>::namespaced(c, &ns)
                        .patch(&name, &pp, &Patch::Apply(&doc))
                        .await
                        .map(|_| ())
                }
                "RoleBinding" => {
                    let ns = ns.clone().unwrap_or_else(|| self.ns.clone());
                    Api::<RoleBinding>::namespaced(c, &ns)
                        .patch(&name, &pp, &Patch::Apply(&doc))
                        .await
                        .map(|_| ())
                }
                other => panic!("hack/render-rbac.sh rendered an unexpected kind {other:?}"),
            };
            res.unwrap_or_else(|e| panic!("applying {kind}/{name}: {e}"));
            kinds.push(kind);
        }
        let want: &[&str] = if self.watch_namespace.is_some() {
            &["ServiceAccount", "Role", "RoleBinding"]
        } else {
            &["ServiceAccount", "ClusterRole", "ClusterRoleBinding"]
        };
        for want in want {
            assert!(
                kinds.iter().any(|k| k == want),
                "render-rbac rendered no {want}: {kinds:?}"
            );
        }
        if self.watch_namespace.is_some() {
            assert!(
                !kinds.iter().any(|k| k.starts_with("Cluster")),
                "a namespaced install rendered cluster-scoped RBAC: {kinds:?}"
            );
        }
    }

    /// Mints a token for the operator's ServiceAccount and writes a kubeconfig with the admin's
    /// server and CA but only that token; waits until RBAC lets it list ModelArtsNodePools.
    async fn write_sa_kubeconfig(&mut self) {
        let sas: Api<ServiceAccount> = Api::namespaced(self.admin.clone(), &self.ns);
        let tr = TokenRequest {
            spec: TokenRequestSpec {
                expiration_seconds: Some(3600),
                ..Default::default()
            },
            ..Default::default()
        };
        let token = sas
            .create_token_request(SA_NAME, &PostParams::default(), &tr)
            .await
            .expect("TokenRequest")
            .status
            .expect("TokenRequest status")
            .token;
        let admin_kc = Kubeconfig::read_from(&self.admin_kubeconfig).expect("reading the admin kubeconfig");
        let ctx_name = admin_kc
            .current_context
            .clone()
            .expect("admin kubeconfig has a current context");
        let cluster_name = admin_kc
            .contexts
            .iter()
            .find(|c| c.name == ctx_name)
            .and_then(|c| c.context.as_ref())
            .map(|c| c.cluster.clone())
            .expect("current context names a cluster");
        let cluster = admin_kc
            .clusters
            .iter()
            .find(|c| c.name == cluster_name)
            .and_then(|c| c.cluster.clone())
            .expect("admin cluster entry");
        // JSON is YAML. The user entry carries the token and nothing else.
        let sa_kc = json!({
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "e2e", "cluster": serde_json::to_value(&cluster).expect("cluster as JSON")}],
            "users": [{"name": "operator", "user": {"token": token}}],
            "contexts": [{"name": "operator", "context": {"cluster": "e2e", "user": "operator", "namespace": self.ns}}],
            "current-context": "operator",
        });
        std::fs::write(&self.sa_kubeconfig, serde_json::to_vec_pretty(&sa_kc).unwrap())
            .expect("writing the ServiceAccount kubeconfig");

        // The RBAC authorizer learns new bindings through informers: wait until the token works.
        let sa_client = self.sa_client().await;
        let mann: Api<ModelArtsNodePool> = match &self.watch_namespace {
            Some(ns) => Api::namespaced(sa_client, ns),
            None => Api::all(sa_client),
        };
        wait_until(
            "the ServiceAccount to be allowed to list ModelArtsNodePools",
            TIMEOUT,
            || {
                let mann = mann.clone();
                async move {
                    mann.list(&ListParams::default().limit(1))
                        .await
                        .map(|_| ())
                        .map_err(|e| e.to_string())
                }
            },
        )
        .await;
    }

    /// A client authenticated as the operator's ServiceAccount, read from its kubeconfig file.
    pub async fn sa_client(&self) -> Client {
        let kc = Kubeconfig::read_from(&self.sa_kubeconfig).expect("reading the SA kubeconfig");
        let cfg = Config::from_custom_kubeconfig(kc, &Default::default())
            .await
            .expect("SA kubeconfig is valid");
        assert!(
            cfg.auth_info.client_certificate_data.is_none() && cfg.auth_info.token.is_some(),
            "the SA kubeconfig must authenticate by token only"
        );
        Client::try_from(cfg).expect("SA client")
    }

    /// Starts (or restarts after [`E2e::stop_operator`]) the operator for this shard.
    pub async fn start_operator(&mut self) {
        assert!(self.operator.is_none(), "operator already running");
        self.starts += 1;
        let log = self.dir.path().join(format!("operator-{}.log", self.starts));
        self.operator =
            Some(OperatorProcess::start(&self.sa_kubeconfig, &self.shard, &self.config, log).await);
    }

    /// Stops the operator with SIGTERM; asserts it exited cleanly within 15 s.
    pub async fn stop_operator(&mut self) {
        let mut op = self.operator.take().expect("operator running");
        let tail = op.log_tail(40);
        let (status, graceful) = tokio::task::spawn_blocking(move || op.stop(Duration::from_secs(15)))
            .await
            .expect("stop task")
            .expect("operator had a child process");
        assert!(
            graceful && status.success(),
            "operator did not exit cleanly on SIGTERM within 15s: {status}; log tail:\n{tail}"
        );
    }

    /// The running operator.
    pub fn op(&self) -> &OperatorProcess {
        self.operator.as_ref().expect("operator running")
    }

    /// The API of ModelArtsNodePools in a namespace, as admin.
    pub fn pools(&self, ns: &str) -> Api<ModelArtsNodePool> {
        Api::namespaced(self.admin.clone(), ns)
    }

    /// Creates or replaces a credentials Secret (server-side apply as admin).
    pub async fn put_secret(&self, ns: &str, name: &str, ak: &str, sk: &str) {
        let secret = json!({
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": name, "namespace": ns},
            "stringData": {"accessKey": ak, "secretKey": sk},
        });
        // stringData is write-only; replace data wholesale so a rotation leaves no stale keys.
        let secrets: Api<Secret> = Api::namespaced(self.admin.clone(), ns);
        let _ = secrets.delete(name, &DeleteParams::default()).await;
        let s: Secret = serde_json::from_value(secret).unwrap();
        secrets
            .create(&PostParams::default(), &s)
            .await
            .unwrap_or_else(|e| panic!("creating Secret {ns}/{name}: {e}"));
    }

    /// Updates an existing credentials Secret in place (a rotation, as `kubectl apply` would do).
    pub async fn update_secret(&self, ns: &str, name: &str, ak: &str, sk: &str) {
        let secrets: Api<Secret> = Api::namespaced(self.admin.clone(), ns);
        let patch = json!({"stringData": {"accessKey": ak, "secretKey": sk}});
        secrets
            .patch(name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .unwrap_or_else(|e| panic!("updating Secret {ns}/{name}: {e}"));
    }

    /// Simulator options serving HTTPS on `port` with a fresh valid certificate from the
    /// test's CA (for a simulator restarted in place).
    pub fn sim_options(&self, port: u16) -> SimOptions {
        let cert = self
            .ca
            .issue(&["127.0.0.1".to_string()], Validity::Current)
            .expect("simulator certificate");
        SimOptions {
            port,
            tls: Some(cert),
            ..Default::default()
        }
    }

    /// The spec of a resource pointing at this test's simulator, labelled for this shard.
    pub fn pool_object(&self, ns: &str, name: &str, nodepool: &str, secret: &str, extra: Value) -> Value {
        use modelarts_simulator::{DEMO_POOL, DEMO_PROJECT_ID};
        let mut spec = json!({
            "projectId": DEMO_PROJECT_ID,
            "poolName": DEMO_POOL,
            "nodePoolName": nodepool,
            "endpoint": self.sim.endpoint(),
            "credentialsSecretRef": {"name": secret},
            "syncInterval": "10s",
        });
        if let (Some(s), Some(x)) = (spec.as_object_mut(), extra.as_object()) {
            for (k, v) in x {
                s.insert(k.clone(), v.clone());
            }
        }
        json!({
            "apiVersion": "modelarts-operator.io/v1alpha1",
            "kind": "ModelArtsNodePool",
            "metadata": {"name": name, "namespace": ns, "labels": {"e2e": self.shard}},
            "spec": spec,
        })
    }

    /// Creates a ModelArtsNodePool for this shard (see [`E2e::pool_object`]).
    pub async fn create_pool(&self, ns: &str, name: &str, nodepool: &str, secret: &str, extra: Value) {
        let obj: ModelArtsNodePool =
            serde_json::from_value(self.pool_object(ns, name, nodepool, secret, extra))
                .expect("valid object");
        self.pools(ns)
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("creating ModelArtsNodePool {ns}/{name}: {e}"));
    }

    /// Creates a ModelArtsNodePool from a whole object (e.g. [`E2e::pool_object`] edited).
    pub async fn create_pool_object(&self, obj: &Value) {
        let ns = obj["metadata"]["namespace"]
            .as_str()
            .expect("namespace")
            .to_string();
        let obj: ModelArtsNodePool = serde_json::from_value(obj.clone()).expect("valid object");
        self.pools(&ns)
            .create(&PostParams::default(), &obj)
            .await
            .unwrap_or_else(|e| panic!("creating ModelArtsNodePool {ns}/{}: {e}", obj.name_any()));
    }

    /// Merge-patches a resource's spec as admin.
    pub async fn patch_spec(&self, ns: &str, name: &str, spec: Value) {
        self.pools(ns)
            .patch(
                name,
                &PatchParams::default(),
                &Patch::Merge(&json!({"spec": spec})),
            )
            .await
            .unwrap_or_else(|e| panic!("patching {ns}/{name}: {e}"));
    }

    /// Reads a resource as admin.
    pub async fn get(&self, ns: &str, name: &str) -> ModelArtsNodePool {
        self.pools(ns)
            .get(name)
            .await
            .unwrap_or_else(|e| panic!("reading {ns}/{name}: {e}"))
    }

    /// Waits (60 s) until the resource satisfies `pred`; returns it.
    pub async fn wait_pool(
        &self,
        ns: &str,
        name: &str,
        what: &str,
        pred: impl Fn(&ModelArtsNodePool) -> bool,
    ) -> ModelArtsNodePool {
        let api = self.pools(ns);
        let what = format!("{ns}/{name}: {what}");
        let pred = &pred;
        wait_until(&what, TIMEOUT, || {
            let api = api.clone();
            async move {
                let obj = api.get(name).await.map_err(|e| e.to_string())?;
                if pred(&obj) { Ok(obj) } else { Err(brief(&obj)) }
            }
        })
        .await
    }

    /// Waits until the resource's conditions have these `(type, status, reason)`s.
    pub async fn wait_conds(&self, ns: &str, name: &str, want: &[(&str, &str, &str)]) -> ModelArtsNodePool {
        let what = format!("conditions {want:?}");
        self.wait_pool(ns, name, &what, |o| {
            want.iter().all(|(t, s, r)| has_cond(o, t, s, r))
        })
        .await
    }

    /// events.k8s.io/v1 Events regarding the resource `ns/name`, oldest first.
    pub async fn events(&self, ns: &str, name: &str) -> Vec<Event> {
        let events: Api<Event> = Api::namespaced(self.admin.clone(), ns);
        let mut list: Vec<Event> = events
            .list(&ListParams::default())
            .await
            .expect("listing events")
            .items
            .into_iter()
            .filter(|e| {
                e.regarding.as_ref().is_some_and(|r| {
                    r.kind.as_deref() == Some("ModelArtsNodePool")
                        && r.name.as_deref() == Some(name)
                        && r.namespace.as_deref() == Some(ns)
                })
            })
            .collect();
        list.sort_by_key(|e| {
            e.event_time
                .as_ref()
                .map(|t| t.0)
                .or(e.metadata.creation_timestamp.as_ref().map(|t| t.0))
        });
        list
    }

    /// Event reasons regarding the resource, oldest first.
    pub async fn event_reasons(&self, ns: &str, name: &str) -> Vec<String> {
        self.events(ns, name)
            .await
            .into_iter()
            .map(|e| e.reason.unwrap_or_default())
            .collect()
    }

    /// Waits until exactly `n` Events with `reason` regard the resource (more fails at once).
    pub async fn wait_event_count(&self, ns: &str, name: &str, reason: &str, n: usize) -> Vec<Event> {
        let what = format!("{n} {reason} event(s) regarding {ns}/{name}");
        wait_until(&what, TIMEOUT, || async {
            let all = self.events(ns, name).await;
            let matching: Vec<Event> = all
                .iter()
                .filter(|e| e.reason.as_deref() == Some(reason))
                .cloned()
                .collect();
            assert!(
                matching.len() <= n,
                "more than {n} {reason} events: {:?}",
                summarize_events(&all)
            );
            if matching.len() == n {
                Ok(matching)
            } else {
                Err(format!("{:?}", summarize_events(&all)))
            }
        })
        .await
    }

    /// Node-list requests the simulator answered for a node pool (any status), from its log of
    /// recent requests.
    pub fn requests_for(&self, nodepool: &str) -> usize {
        let needle = format!("/nodepools/{nodepool}/nodes");
        self.sim
            .state()
            .stats()
            .recent
            .iter()
            .filter(|r| r.path.ends_with(&needle))
            .count()
    }

    /// Waits until the simulator counted at least `n` node-list requests in total.
    pub async fn wait_requests(&self, n: u64) -> u64 {
        let what = format!("simulator to see at least {n} node-list requests");
        wait_until(&what, TIMEOUT, || async {
            let got = self.sim.state().stats().requests;
            if got >= n {
                Ok(got)
            } else {
                Err(format!("{got} requests"))
            }
        })
        .await
    }

    /// Best-effort cleanup of what the cluster keeps after the test: stops the operator, deletes
    /// the resources, namespaces and cluster-scoped RBAC. (Without a namespace controller the
    /// namespaces stay Terminating, which is harmless on a throwaway plane.)
    pub async fn finish(mut self) {
        if let Some(op) = &self.operator
            && std::env::var_os("E2E_PRINT_LOGS").is_some()
        {
            eprintln!("--- {} operator log ---\n{}", self.test, op.log_tail(200));
        }
        if self.operator.is_some() {
            self.stop_operator().await;
        }
        for ns in self.namespaces.clone() {
            let _ = self
                .pools(&ns)
                .delete_collection(&DeleteParams::default(), &ListParams::default())
                .await;
            let _ = Api::<Namespace>::all(self.admin.clone())
                .delete(&ns, &DeleteParams::default())
                .await;
        }
        for item in self.cluster_rbac.clone() {
            let (kind, name) = item.split_once('/').unwrap_or_default();
            let _ = match kind {
                "ClusterRole" => Api::<ClusterRole>::all(self.admin.clone())
                    .delete(name, &DeleteParams::default())
                    .await
                    .map(|_| ()),
                _ => Api::<ClusterRoleBinding>::all(self.admin.clone())
                    .delete(name, &DeleteParams::default())
                    .await
                    .map(|_| ()),
            };
        }
    }
}

/// `reason(count)` per event, for messages.
pub fn summarize_events(events: &[Event]) -> Vec<String> {
    events
        .iter()
        .map(|e| {
            let series = e.series.as_ref().map(|s| s.count).unwrap_or(1);
            format!(
                "{}x{} [{}] {}",
                e.reason.as_deref().unwrap_or(""),
                series,
                e.type_.as_deref().unwrap_or(""),
                e.note.as_deref().unwrap_or("")
            )
        })
        .collect()
}

/// Directory of the pinned kubectl/helm (`MODELARTS_OPERATOR_TOOLS` or the default cache).
pub fn tools_bin() -> PathBuf {
    if let Some(t) = std::env::var_os("MODELARTS_OPERATOR_TOOLS") {
        return PathBuf::from(t).join("bin");
    }
    let cache = std::env::var_os("XDG_CACHE_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cache")))
        .unwrap_or_else(|| PathBuf::from("/tmp"));
    cache.join("modelarts-operator/tools/bin")
}

/// The kubectl to use: `$KUBECTL`, else the pinned one in the tools cache.
pub fn kubectl() -> PathBuf {
    std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| tools_bin().join("kubectl"))
}
