//! Reconcile-level tests without a cluster: a fake Kubernetes API (a tower service
//! behind a real `kube::Client`) and the ModelArts simulator on loopback.

use super::*;
use crate::{client::ClientOptions, crd::ModelArtsNodePoolStatus, status::condition};
// The simulator links its own copy of this library here (a dev-dependency of a unit test),
// so it is reached over HTTP and through its own types only.
use http::{Request, Response, StatusCode};
use kube::client::Body;
use modelarts_simulator::{
    DEMO_ACCESS_KEY, DEMO_GPU_NODEPOOL, DEMO_NODEPOOL, DEMO_POOL, DEMO_PROJECT_ID, DEMO_SECRET_KEY, SimData,
    SimHandle, SimOptions, Simulator,
    faults::{Fault, FaultKind},
};
use serde_json::{Value, json};
use std::sync::Mutex;

const NS: &str = "ml";
const NAME: &str = "gpus";
const MAX_BACKOFF: Duration = Duration::from_secs(300);

/// What the fake API server holds and saw.
#[derive(Default)]
struct FakeApi {
    /// Refuse status patches (as a ValidatingAdmissionPolicy would).
    refuse_status: bool,
    /// Bodies of the status patches accepted.
    status_patches: Vec<Value>,
    /// Status patches refused.
    refused: usize,
    /// Events created or patched: (reason, type, note).
    events: Vec<(String, String, String)>,
    /// The object as last written, served to `GET .../status`.
    stored: Option<Value>,
    /// `GET .../status` requests answered.
    status_reads: usize,
}

type Shared = Arc<Mutex<FakeApi>>;

fn respond(code: StatusCode, body: Value) -> Response<Body> {
    Response::builder()
        .status(code)
        .header("content-type", "application/json")
        .body(Body::from(serde_json::to_vec(&body).unwrap_or_default()))
        .unwrap_or_else(|_| Response::new(Body::from(Vec::new())))
}

fn failure(code: StatusCode, reason: &str, message: &str) -> Response<Body> {
    respond(
        code,
        json!({"kind": "Status", "apiVersion": "v1", "status": "Failure", "reason": reason,
               "message": message, "code": code.as_u16()}),
    )
}

async fn serve(api: Shared, req: Request<Body>) -> Response<Body> {
    let method = req.method().clone();
    let path = req.uri().path().to_string();
    let body: Value = match req.into_body().collect_bytes().await {
        Ok(b) if !b.is_empty() => serde_json::from_slice(&b).unwrap_or(Value::Null),
        _ => Value::Null,
    };
    let status_path =
        format!("/apis/modelarts-operator.io/v1alpha1/namespaces/{NS}/modelartsnodepools/{NAME}/status");
    let secret_path = format!("/api/v1/namespaces/{NS}/secrets/modelarts-cred");
    let mut api = api.lock().unwrap();
    if method == "GET" && path == secret_path {
        return respond(
            StatusCode::OK,
            json!({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": "modelarts-cred", "namespace": NS},
                   "stringData": {}, "data": {
                       "accessKey": base64_of(DEMO_ACCESS_KEY), "secretKey": base64_of(DEMO_SECRET_KEY)}}),
        );
    }
    if method == "PATCH" && path == status_path {
        if api.refuse_status {
            api.refused += 1;
            return failure(
                StatusCode::UNPROCESSABLE_ENTITY,
                "Invalid",
                "ValidatingAdmissionPolicy 'freeze-status' denied request",
            );
        }
        api.status_patches.push(body.clone());
        let mut obj = match &api.stored {
            Some(stored) => stored.clone(),
            None => object(Some(1), "uid-echo"),
        };
        obj["status"] = body["status"].clone();
        if api.stored.is_some() {
            api.stored = Some(obj.clone());
        }
        return respond(StatusCode::OK, obj);
    }
    if method == "GET" && path == status_path {
        api.status_reads += 1;
        return match &api.stored {
            Some(obj) => respond(StatusCode::OK, obj.clone()),
            None => failure(StatusCode::NOT_FOUND, "NotFound", "no object"),
        };
    }
    if path.starts_with(&format!("/apis/events.k8s.io/v1/namespaces/{NS}/events")) {
        api.events.push((
            body["reason"].as_str().unwrap_or_default().to_string(),
            body["type"].as_str().unwrap_or_default().to_string(),
            body["note"].as_str().unwrap_or_default().to_string(),
        ));
        return respond(StatusCode::CREATED, body);
    }
    failure(
        StatusCode::NOT_FOUND,
        "NotFound",
        &format!("fake API has no {method} {path}"),
    )
}

fn base64_of(s: &str) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(s)
}

fn object(generation: Option<i64>, uid: &str) -> Value {
    json!({
        "apiVersion": API_VERSION, "kind": "ModelArtsNodePool",
        "metadata": {"name": NAME, "namespace": NS, "uid": uid, "generation": generation},
        "spec": {"projectId": DEMO_PROJECT_ID, "poolName": DEMO_POOL, "nodePoolName": DEMO_GPU_NODEPOOL,
                 "endpoint": "http://127.0.0.1", "credentialsSecretRef": {"name": "modelarts-cred"}}
    })
}

/// The resource as the watch would hand it to the reconciler.
struct Obj {
    value: Value,
}

impl Obj {
    fn new(uid: &str, generation: i64) -> Self {
        Obj {
            value: object(Some(generation), uid),
        }
    }
    fn endpoint(mut self, sim: &SimHandle) -> Self {
        self.value["spec"]["endpoint"] = json!(sim.endpoint());
        self
    }
    fn spec(mut self, key: &str, v: Value) -> Self {
        self.value["spec"][key] = v;
        self
    }
    fn status(mut self, s: &ModelArtsNodePoolStatus) -> Self {
        self.value["status"] = serde_json::to_value(s).unwrap();
        self
    }
    fn arc(&self) -> Arc<ModelArtsNodePool> {
        Arc::new(serde_json::from_value(self.value.clone()).expect("valid ModelArtsNodePool"))
    }
    /// As the operator's watch cache holds it.
    fn trimmed(&self) -> Arc<ModelArtsNodePool> {
        let mut obj: ModelArtsNodePool =
            serde_json::from_value(self.value.clone()).expect("valid ModelArtsNodePool");
        trim::trim(&mut obj);
        Arc::new(obj)
    }
}

struct Harness {
    sim: SimHandle,
    api: Shared,
    ctx: Arc<Context>,
}

impl Harness {
    async fn start() -> Self {
        let sim = Simulator::start(SimData::embedded_default(), SimOptions::default())
            .await
            .expect("simulator starts");
        let api: Shared = Arc::default();
        let ctx = Self::context(api.clone());
        Harness { sim, api, ctx }
    }

    /// A fresh operator process against the same API server and ModelArts: nothing
    /// remembered, as after a restart.
    fn restart(&mut self) {
        self.ctx = Self::context(self.api.clone());
    }

    fn context(api: Shared) -> Arc<Context> {
        let svc = tower::service_fn(move |req: Request<Body>| {
            let api = api.clone();
            async move { Ok::<_, std::convert::Infallible>(serve(api, req).await) }
        });
        let kube = Client::new(svc, "default");
        let memos = Arc::new(Memos::default());
        Arc::new(Context {
            recorder: Recorder::new(kube.clone(), "modelarts-operator-test".into()),
            kube,
            modelarts: ModelArtsClient::new(ClientOptions::default()).expect("client"),
            settings: Settings {
                allowed_suffixes: vec!["127.0.0.1".into()],
                region_domain: None,
                allow_http: true,
                policy: Policy {
                    heartbeat: Duration::from_secs(300),
                    max_backoff: MAX_BACKOFF,
                    desired_grace: Duration::from_secs(1800),
                },
            },
            metrics: Arc::new(Metrics::default()),
            default_credentials: None,
            keyless: None,
            liveness: Arc::new(Liveness::new(memos.clone(), Duration::from_secs(900))),
            demand: Default::default(),
            memos,
        })
    }

    fn obj(&self, uid: &str, generation: i64) -> Obj {
        Obj::new(uid, generation).endpoint(&self.sim)
    }

    async fn reconcile(&self, obj: &Obj) -> Result<Action> {
        reconcile(obj.arc(), self.ctx.clone()).await
    }

    /// Node-list requests the simulator has answered.
    fn listings(&self) -> u64 {
        self.sim.state().stats().requests
    }

    fn last_status(&self) -> ModelArtsNodePoolStatus {
        let api = self.api.lock().unwrap();
        let body = api.status_patches.last().expect("a status was written");
        serde_json::from_value(body["status"].clone()).expect("status parses")
    }

    fn patches(&self) -> usize {
        self.api.lock().unwrap().status_patches.len()
    }

    fn event_reasons(&self) -> Vec<String> {
        self.api
            .lock()
            .unwrap()
            .events
            .iter()
            .map(|e| e.0.clone())
            .collect()
    }

    /// Time passes until the resource's next sync is due.
    fn make_due(&self, uid: &str) {
        let mut m = self.ctx.memos.get(uid).expect("memo");
        m.next_due = Instant::now();
        self.ctx.memos.put(uid, m);
    }

    fn wait_left(&self, uid: &str) -> Duration {
        self.ctx
            .memos
            .get(uid)
            .expect("memo")
            .next_due
            .saturating_duration_since(Instant::now())
    }
}

fn reason_of(s: &ModelArtsNodePoolStatus, type_: &str) -> (String, String) {
    let c = condition(s, type_).expect("condition");
    (c.status.clone(), c.reason.clone())
}

#[tokio::test]
async fn a_resource_recreated_under_the_same_name_syncs_at_once() {
    let h = Harness::start().await;
    h.reconcile(&h.obj("uid-first", 1)).await.expect("first object");
    assert_eq!((h.listings(), h.patches()), (1, 1));
    // Deleted and applied again: same name, generation 1 again, a new UID and no status.
    h.reconcile(&h.obj("uid-second", 1)).await.expect("second object");
    assert_eq!(
        h.listings(),
        2,
        "the new object is synced, not skipped as the old one's echo"
    );
    assert_eq!(h.patches(), 2, "and gets its status");
    // The operator's own status write echoes back through the watch: skipped.
    h.reconcile(&h.obj("uid-second", 1)).await.expect("echo");
    assert_eq!(h.listings(), 2);
}

#[tokio::test]
async fn a_refused_status_write_backs_off_warns_and_recovers() {
    let h = Harness::start().await;
    h.api.lock().unwrap().refuse_status = true;
    let obj = h.obj("uid-1", 1);
    let err = h.reconcile(&obj).await.expect_err("the write is refused");
    let Error::StatusWrite { retry_in, .. } = &err else {
        panic!("{err}")
    };
    assert!(
        *retry_in >= Duration::from_secs(4) && *retry_in <= Duration::from_secs(6),
        "{retry_in:?}"
    );
    assert_eq!(
        error_policy(obj.arc(), &err, h.ctx.clone()),
        Action::requeue(*retry_in)
    );
    assert_eq!(h.event_reasons(), ["StatusWriteFailed"]);
    let note = h.api.lock().unwrap().events[0].2.clone();
    assert!(note.contains("freeze-status"), "{note}");
    assert_eq!(h.ctx.metrics.status_write_failures.get(), 1);
    let text = h.ctx.metrics.encode();
    assert!(
        text.contains("modelarts_operator_reconcile_duration_seconds_count 1\n"),
        "a failed reconcile is timed too:\n{text}"
    );

    // Watch events in between (e.g. someone labels the resource) do not re-list ModelArts.
    for _ in 0..5 {
        h.reconcile(&obj).await.expect("skipped");
    }
    assert_eq!(h.listings(), 1);

    // Each further refusal doubles the wait.
    h.make_due("uid-1");
    let err = h.reconcile(&obj).await.expect_err("refused again");
    let Error::StatusWrite { retry_in, .. } = err else {
        panic!("{err}")
    };
    assert!(
        retry_in >= Duration::from_secs(8) && retry_in <= Duration::from_secs(12),
        "{retry_in:?}"
    );
    assert_eq!(h.listings(), 2);
    assert_eq!(h.api.lock().unwrap().refused, 2);

    // Admission allows writes again: status lands, and only then the node events.
    h.api.lock().unwrap().refuse_status = false;
    h.make_due("uid-1");
    h.reconcile(&obj).await.expect("written");
    let s = h.last_status();
    assert_eq!(reason_of(&s, "Synced"), ("True".into(), "Synced".into()));
    assert_eq!(
        h.event_reasons(),
        ["StatusWriteFailed", "StatusWriteFailed", "NodeAbnormal"]
    );
    assert_eq!(h.ctx.memos.get("uid-1").map(|m| m.failures), Some(0));
}

#[tokio::test]
async fn an_absurd_retry_after_neither_panics_nor_waits_past_the_cap() {
    let h = Harness::start().await;
    h.sim.state().set_faults(vec![Fault::new(FaultKind::Throttle {
        retry_after: Some(u64::MAX),
    })]);
    h.reconcile(&h.obj("uid-1", 1))
        .await
        .expect("a throttled sync is a state, not an error");
    let s = h.last_status();
    assert_eq!(reason_of(&s, "Synced"), ("False".into(), "Throttled".into()));
    let left = h.wait_left("uid-1");
    assert!(
        left <= MAX_BACKOFF && left >= MAX_BACKOFF - Duration::from_secs(5),
        "{left:?}"
    );
    assert_eq!(
        h.listings(),
        1,
        "a Retry-After beyond the client's limit is not waited out inside the listing"
    );
}

#[tokio::test]
async fn abnormal_nodes_are_named_even_when_status_lists_no_nodes() {
    let h = Harness::start().await;
    let obj = h.obj("uid-1", 1).spec("maxNodesInStatus", json!(0));
    h.reconcile(&obj).await.expect("synced");
    let s = h.last_status();
    let pool = s.pool.as_ref().expect("pool");
    assert!(pool.nodes.is_empty());
    assert_eq!(pool.abnormal_nodes, ["gpu-a100-node-4"]);
    let healthy = condition(&s, "Healthy").expect("Healthy");
    assert_eq!(healthy.message, "1 of 4 nodes Abnormal: gpu-a100-node-4");
    let events = h.api.lock().unwrap().events.clone();
    assert_eq!(
        events,
        [(
            "NodeAbnormal".to_string(),
            "Warning".to_string(),
            "1 node turned Abnormal: gpu-a100-node-4".to_string()
        )]
    );
}

#[tokio::test]
async fn a_restart_with_a_stored_status_repeats_no_event_and_writes_nothing() {
    let mut h = Harness::start().await;
    h.reconcile(&h.obj("uid-1", 1)).await.expect("synced");
    assert_eq!(h.event_reasons(), ["NodeAbnormal"]);
    let stored = h.last_status();
    h.restart();
    h.reconcile(&h.obj("uid-1", 1).status(&stored))
        .await
        .expect("synced after restart");
    assert_eq!(h.listings(), 2, "a restarted operator syncs once");
    assert_eq!(h.patches(), 1, "an unchanged pool is not written again");
    assert_eq!(h.event_reasons(), ["NodeAbnormal"], "no event repeated");
}

#[tokio::test]
async fn a_spec_change_mid_backoff_syncs_at_once() {
    let h = Harness::start().await;
    h.sim.state().set_faults(vec![Fault::new(FaultKind::ServerError {
        status: 503,
        retry_after: None,
    })]);
    let opts = ClientOptions {
        max_attempts: 1,
        ..Default::default()
    };
    let h = Harness {
        ctx: Arc::new(Context {
            modelarts: ModelArtsClient::new(opts).expect("client"),
            kube: h.ctx.kube.clone(),
            recorder: h.ctx.recorder.clone(),
            settings: h.ctx.settings.clone(),
            metrics: h.ctx.metrics.clone(),
            default_credentials: None,
            keyless: None,
            memos: h.ctx.memos.clone(),
            liveness: h.ctx.liveness.clone(),
            demand: h.ctx.demand.clone(),
        }),
        ..h
    };
    let failing = h.obj("uid-1", 1);
    for n in 1..=3 {
        h.make_due_if_known("uid-1");
        h.reconcile(&failing).await.expect("a failed sync is a state");
        assert_eq!(h.ctx.memos.get("uid-1").map(|m| m.failures), Some(n));
    }
    let listed = h.listings();
    assert!(
        h.wait_left("uid-1") >= Duration::from_secs(16),
        "third failure waits 20 s ± 20 %"
    );
    h.reconcile(&failing).await.expect("skipped");
    assert_eq!(h.listings(), listed, "same generation: waits out the backoff");

    h.sim.state().clear_faults();
    let fixed = h.obj("uid-1", 2).spec("nodePoolName", json!(DEMO_NODEPOOL));
    h.reconcile(&fixed).await.expect("synced");
    assert_eq!(h.listings(), listed + 1, "a new generation syncs at once");
    let s = h.last_status();
    assert_eq!(reason_of(&s, "Synced"), ("True".into(), "Synced".into()));
    assert_eq!(s.observed_generation, Some(2));
    assert_eq!(h.ctx.memos.get("uid-1").map(|m| m.failures), Some(0));
}

impl Harness {
    fn make_due_if_known(&self, uid: &str) {
        if self.ctx.memos.get(uid).is_some() {
            self.make_due(uid);
        }
    }
}

#[tokio::test]
async fn the_trimmed_watch_cache_costs_no_write_when_nothing_changed_and_a_failure_keeps_the_nodes() {
    let h = Harness::start().await;
    h.reconcile(&h.obj("uid-1", 1)).await.expect("first sync");
    let written = h.last_status();
    let nodes = written.pool.as_ref().expect("pool").nodes.clone();
    // The embedded demo data's GPU node pool has 4 nodes, all within maxNodesInStatus.
    assert_eq!(nodes.len(), 4);
    let on_server = h.obj("uid-1", 1).status(&written);
    h.api.lock().unwrap().stored = Some(on_server.value.clone());

    // Nothing changed in ModelArts: the cache's digest stands in for the node list exactly.
    h.make_due("uid-1");
    reconcile(on_server.trimmed(), h.ctx.clone())
        .await
        .expect("second sync");
    assert_eq!(h.listings(), 2);
    assert_eq!(h.patches(), 1, "an unchanged pool is not written again");
    assert_eq!(
        h.api.lock().unwrap().status_reads,
        0,
        "a successful sync reads nothing back"
    );

    // The sync fails: the status written keeps the last node list, read from the server.
    h.sim.state().set_faults(vec![Fault::new(FaultKind::Throttle {
        retry_after: Some(u64::MAX),
    })]);
    h.make_due("uid-1");
    reconcile(on_server.trimmed(), h.ctx.clone())
        .await
        .expect("a failed sync is a state");
    assert_eq!(h.api.lock().unwrap().status_reads, 1);
    let failed = h.last_status();
    assert_eq!(reason_of(&failed, "Synced"), ("False".into(), "Throttled".into()));
    assert_eq!(
        failed.pool.as_ref().expect("pool kept").nodes,
        nodes,
        "no node lost"
    );
    assert_eq!(failed.last_sync_time, written.last_sync_time);
}
