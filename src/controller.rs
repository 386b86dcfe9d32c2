//! The reconciler: for each `ModelArtsNodePool`, read its credentials, list its node
//! pool, and write status (only when it changed), events and metrics.

use crate::{
    client::{ClientOptions, ModelArtsClient, NodePoolRef},
    crd::{API_VERSION, ModelArtsNodePool, parse_duration},
    credentials::Credentials,
    endpoint,
    error::{Error, Result},
    metrics::{Metrics, ResultLabels},
    server,
    status::{Outcome, next_status, transitions},
    sync,
    telemetry::LogFormat,
};
use futures::StreamExt;
use governor::{Quota, RateLimiter};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{ListParams, Patch, PatchParams},
    runtime::{
        Controller,
        controller::{Action, Config as ControllerConfig},
        events::{Event, EventType, Recorder, Reporter},
        reflector::{ObjectRef, Store},
        watcher,
    },
};
use rand::Rng;
use std::{
    collections::HashMap,
    net::SocketAddr,
    num::NonZeroU32,
    sync::{Arc, Mutex, atomic::AtomicBool},
    time::Duration,
};
use tokio::time::Instant;
use tracing::{Instrument, info, info_span, warn};

/// Field manager of the operator's status writes.
pub const FIELD_MANAGER: &str = "modelarts-operator";

/// Flags of `modelarts-operator run`.
#[derive(Debug, Clone, clap::Args)]
pub struct RunArgs {
    /// Watch only this namespace (default: all namespaces).
    #[arg(long, env = "MODELARTS_OPERATOR_NAMESPACE")]
    pub namespace: Option<String>,
    /// Only reconcile resources matching this label selector (sharding).
    #[arg(long, env = "MODELARTS_OPERATOR_LABEL_SELECTOR")]
    pub label_selector: Option<String>,
    /// Resources reconciled at the same time.
    #[arg(long, env = "MODELARTS_OPERATOR_CONCURRENCY", default_value_t = 4, value_parser = clap::value_parser!(u16).range(1..))]
    pub concurrency: u16,
    /// Sustained ModelArts requests per second, across all resources.
    #[arg(long, env = "MODELARTS_OPERATOR_QPS", default_value_t = 5.0)]
    pub modelarts_qps: f64,
    /// ModelArts requests allowed in a burst.
    #[arg(long, env = "MODELARTS_OPERATOR_BURST", default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..))]
    pub modelarts_burst: u32,
    /// Use HUAWEICLOUD_SDK_AK/SK (and _SECURITY_TOKEN) from the operator's environment for
    /// resources without `spec.credentialsSecretRef`.
    #[arg(long, env = "MODELARTS_OPERATOR_ALLOW_DEFAULT_CREDENTIALS")]
    pub allow_default_credentials: bool,
    /// Host suffixes a `spec.endpoint` may use (repeatable; default: public ModelArts domains).
    #[arg(
        long = "allowed-endpoint-suffix",
        value_delimiter = ',',
        env = "MODELARTS_OPERATOR_ALLOWED_ENDPOINT_SUFFIXES"
    )]
    pub allowed_endpoint_suffixes: Vec<String>,
    /// Accept plain http:// endpoints (only for a local simulator: credentials travel in clear).
    #[arg(long, env = "MODELARTS_OPERATOR_ALLOW_HTTP_ENDPOINTS")]
    pub allow_http_endpoints: bool,
    /// Refresh `status.lastSyncTime` at least this often even when nothing changed.
    #[arg(long, env = "MODELARTS_OPERATOR_STATUS_HEARTBEAT", default_value = "5m")]
    pub status_heartbeat: String,
    /// Longest wait between retries of a failing resource.
    #[arg(long, env = "MODELARTS_OPERATOR_MAX_BACKOFF", default_value = "5m")]
    pub max_backoff: String,
    /// Timeout of one ModelArts HTTP request.
    #[arg(long, env = "MODELARTS_OPERATOR_TIMEOUT", default_value = "30s")]
    pub modelarts_timeout: String,
    /// Address of /metrics, /healthz and /readyz.
    #[arg(
        long,
        env = "MODELARTS_OPERATOR_METRICS_ADDR",
        default_value = "127.0.0.1:8080"
    )]
    pub metrics_addr: SocketAddr,
    /// Log format.
    #[arg(long, env = "MODELARTS_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Settings derived from the flags, validated once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    allowed_suffixes: Vec<String>,
    allow_http: bool,
    heartbeat: Duration,
    max_backoff: Duration,
}

/// Per-resource memory of the last sync, to absorb self-triggered reconciles and to
/// count consecutive failures for backoff.
#[derive(Debug, Clone)]
struct Memo {
    generation: Option<i64>,
    next_due: Instant,
    failures: u32,
}

/// Everything a reconcile needs.
pub struct Context {
    kube: Client,
    modelarts: ModelArtsClient,
    settings: Settings,
    recorder: Recorder,
    metrics: Arc<Metrics>,
    default_credentials: Option<Credentials>,
    memo: Mutex<HashMap<ObjectRef<ModelArtsNodePool>, Memo>>,
}

/// Starts the controller and the health/metrics server; returns on SIGTERM/SIGINT.
pub async fn run(args: RunArgs) -> Result<()> {
    crate::telemetry::init(args.log_format);
    let settings = Settings {
        allowed_suffixes: if args.allowed_endpoint_suffixes.is_empty() {
            endpoint::DEFAULT_ALLOWED_SUFFIXES
                .iter()
                .map(|s| s.to_string())
                .collect()
        } else {
            args.allowed_endpoint_suffixes.clone()
        },
        allow_http: args.allow_http_endpoints,
        heartbeat: parse_duration("--status-heartbeat", &args.status_heartbeat)?,
        max_backoff: parse_duration("--max-backoff", &args.max_backoff)?,
    };
    if !(args.modelarts_qps.is_finite() && args.modelarts_qps > 0.0) {
        return Err(Error::invalid(
            "--modelarts-qps",
            args.modelarts_qps.to_string(),
            "must be > 0",
        ));
    }
    let period = Duration::from_secs_f64(1.0 / args.modelarts_qps);
    let burst = NonZeroU32::new(args.modelarts_burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period)
        .ok_or_else(|| Error::invalid("--modelarts-qps", args.modelarts_qps.to_string(), "too large"))?
        .allow_burst(burst);
    let modelarts = ModelArtsClient::new(ClientOptions {
        request_timeout: parse_duration("--modelarts-timeout", &args.modelarts_timeout)?,
        ..Default::default()
    })?
    .with_rate_limiter(Arc::new(RateLimiter::direct(quota)));
    let default_credentials = if args.allow_default_credentials {
        Some(Credentials::from_env()?)
    } else {
        None
    };

    let kube = Client::try_default().await?;
    let api: Api<ModelArtsNodePool> = match &args.namespace {
        Some(ns) => Api::namespaced(kube.clone(), ns),
        None => Api::all(kube.clone()),
    };
    if let Err(e) = api.list(&ListParams::default().limit(1)).await {
        return Err(Error::invalid(
            "ModelArtsNodePool CRD",
            API_VERSION,
            format!(
                "cannot list ModelArtsNodePools ({e}); install the CRD: modelarts-operator crd | kubectl apply --server-side -f -"
            ),
        ));
    }
    let mut wc = watcher::Config::default();
    if let Some(sel) = &args.label_selector {
        wc = wc.labels(sel);
    }
    let controller = Controller::new(api, wc);
    let reporter = Reporter {
        controller: FIELD_MANAGER.into(),
        instance: std::env::var("CONTROLLER_POD_NAME").ok(),
    };
    let metrics = Arc::new(Metrics::default());
    let ctx = Arc::new(Context {
        recorder: Recorder::new(kube.clone(), reporter),
        kube,
        modelarts,
        settings,
        metrics: metrics.clone(),
        default_credentials,
        memo: Mutex::new(HashMap::new()),
    });

    let ready = Arc::new(AtomicBool::new(false));
    let listener = tokio::net::TcpListener::bind(args.metrics_addr)
        .await
        .map_err(|e| Error::Io {
            context: format!("binding --metrics-addr {}", args.metrics_addr),
            source: e,
        })?;
    let bound = listener
        .local_addr()
        .map_or_else(|_| args.metrics_addr.to_string(), |a| a.to_string());
    info!(addr = %bound, "serving /metrics, /healthz, /readyz");
    let app = server::router(server::Health {
        metrics,
        ready: ready.clone(),
    });
    let http = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(crate::signal::terminated())
            .await;
    });

    info!(
        namespace = args.namespace.as_deref().unwrap_or("<all>"),
        concurrency = args.concurrency,
        "starting controller"
    );
    ready.store(true, std::sync::atomic::Ordering::Relaxed);
    tokio::spawn(forget_deleted(controller.store(), ctx.clone()));
    controller
        .with_config(ControllerConfig::default().concurrency(args.concurrency))
        .shutdown_on_signal()
        .run(reconcile, error_policy, ctx)
        .for_each(|res| async move {
            if let Err(e) = res {
                warn!(error = %e, "reconcile loop");
            }
        })
        .await;
    info!("controller stopped; shutting down");
    let _ = http.await;
    Ok(())
}

/// Drops the memo and metric series of resources that left the watch (deleted, or no
/// longer matching the selector), so neither grows with every resource ever seen.
async fn forget_deleted(store: Store<ModelArtsNodePool>, ctx: Arc<Context>) {
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    loop {
        tick.tick().await;
        if store.wait_until_ready().await.is_err() {
            return;
        }
        let gone: Vec<ObjectRef<ModelArtsNodePool>> = match ctx.memo.lock() {
            Ok(mut memo) => {
                let gone = memo
                    .keys()
                    .filter(|k| store.get(k).is_none())
                    .cloned()
                    .collect::<Vec<_>>();
                for k in &gone {
                    memo.remove(k);
                }
                gone
            }
            Err(_) => return,
        };
        for k in gone {
            ctx.metrics
                .forget(k.namespace.as_deref().unwrap_or_default(), &k.name);
        }
    }
}

async fn reconcile(obj: Arc<ModelArtsNodePool>, ctx: Arc<Context>) -> Result<Action> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let span = info_span!("reconcile", namespace = %ns, name = %name);
    reconcile_inner(obj, ctx, ns, name).instrument(span).await
}

async fn reconcile_inner(
    obj: Arc<ModelArtsNodePool>,
    ctx: Arc<Context>,
    ns: String,
    name: String,
) -> Result<Action> {
    let started = Instant::now();
    let key = ObjectRef::from_obj(&*obj);
    let generation = obj.metadata.generation;

    // Our own status patch triggers a watch event and so a reconcile; absorb it (and any
    // metadata-only edit) until the next sync is due, so each change costs one fetch.
    let memo = ctx.memo.lock().ok().and_then(|m| m.get(&key).cloned());
    if let Some(m) = &memo
        && m.generation == generation
        && started < m.next_due
    {
        ctx.metrics
            .reconciles
            .get_or_create(&ResultLabels {
                result: "skipped".into(),
            })
            .inc();
        return Ok(Action::requeue(m.next_due - started));
    }

    let interval = parse_duration("spec.syncInterval", &obj.spec.sync_interval)
        .unwrap_or(Duration::from_secs(60))
        .max(Duration::from_secs(10));
    let mut retry_after = None;
    let outcome = if obj.spec.suspend {
        Outcome::Suspended
    } else {
        match sync_pool(&obj, &ctx).await {
            Ok(summary) => Outcome::Synced(Box::new(summary)),
            Err(e) => {
                let reason = sync::reason(&e);
                warn!(reason, error = %e, "sync failed");
                retry_after = e.retry_after();
                Outcome::Failed {
                    reason: reason.to_string(),
                    message: e.to_string(),
                }
            }
        }
    };

    let prev = obj.status.as_ref();
    let next = next_status(
        prev,
        generation,
        &outcome,
        jiff::Timestamp::now(),
        ctx.settings.heartbeat,
    );
    if prev != Some(&next) {
        let api: Api<ModelArtsNodePool> = Api::namespaced(ctx.kube.clone(), &ns);
        let body =
            serde_json::json!({ "apiVersion": API_VERSION, "kind": "ModelArtsNodePool", "status": next });
        api.patch_status(
            &name,
            &PatchParams::apply(FIELD_MANAGER).force(),
            &Patch::Apply(&body),
        )
        .await?;
        ctx.metrics.status_writes.inc();
    }
    let reference = obj.object_ref(&());
    for t in transitions(prev, &next) {
        info!(reason = t.reason, note = %t.note, "event");
        let ev = Event {
            type_: if t.warning {
                EventType::Warning
            } else {
                EventType::Normal
            },
            reason: t.reason.into(),
            note: Some(t.note.chars().take(1000).collect()),
            action: "Sync".into(),
            secondary: None,
        };
        if let Err(e) = ctx.recorder.publish(&ev, &reference).await {
            warn!(error = %e, "could not publish event");
        }
    }
    ctx.metrics.observe_status(&ns, &name, &next);

    let (result, wait, failures) = match &outcome {
        Outcome::Synced(_) => ("synced".to_string(), jitter(interval, 0.1), 0),
        Outcome::Suspended => ("suspended".to_string(), interval, 0),
        Outcome::Failed { reason, .. } => {
            let failures = memo.as_ref().map_or(0, |m| m.failures) + 1;
            (
                reason.clone(),
                failure_backoff(reason, failures, retry_after, ctx.settings.max_backoff),
                failures,
            )
        }
    };
    ctx.metrics
        .reconciles
        .get_or_create(&ResultLabels { result })
        .inc();
    ctx.metrics
        .reconcile_duration
        .observe(started.elapsed().as_secs_f64());
    if let Ok(mut m) = ctx.memo.lock() {
        m.insert(
            key,
            Memo {
                generation,
                next_due: Instant::now() + wait,
                failures,
            },
        );
    }
    Ok(Action::requeue(wait))
}

/// Credentials → every page → summary, for one resource.
async fn sync_pool(obj: &ModelArtsNodePool, ctx: &Context) -> Result<crate::summary::PoolSummary> {
    let spec = &obj.spec;
    let url = endpoint::resolve(
        spec.region.as_deref(),
        spec.endpoint.as_deref(),
        ("spec.region", "spec.endpoint"),
        ctx.settings.allow_http,
    )?;
    if let Some(e) = &spec.endpoint
        && !endpoint::host_allowed(&url, &ctx.settings.allowed_suffixes)
    {
        return Err(Error::invalid(
            "spec.endpoint",
            e.as_str(),
            format!(
                "host is not in the operator's allow-list ({})",
                ctx.settings.allowed_suffixes.join(", ")
            ),
        ));
    }
    let creds = credentials(obj, ctx).await?;
    let pool = NodePoolRef {
        project_id: spec.project_id.clone(),
        pool_name: spec.pool_name.clone(),
        nodepool_name: spec.node_pool_name.clone(),
    };
    let page_size = u32::try_from(spec.page_size.clamp(1, 500)).unwrap_or(500);
    let max_nodes = usize::try_from(spec.max_nodes_in_status.max(0)).unwrap_or(0);
    let (summary, stats) =
        sync::fetch_summary(&ctx.modelarts, &url, &creds, &pool, page_size, max_nodes, |_| {}).await?;
    ctx.metrics.pages.inc_by(stats.pages as u64);
    ctx.metrics.retries.inc_by(u64::from(stats.retries));
    info!(
        nodes = stats.nodes,
        pages = stats.pages,
        retries = stats.retries,
        "listed node pool"
    );
    Ok(summary)
}

/// Reads the one Secret the resource names, at every sync, so a rotation applies at
/// the next sync; falls back to the operator's credentials only when allowed.
async fn credentials(obj: &ModelArtsNodePool, ctx: &Context) -> Result<Credentials> {
    let ns = obj.namespace().unwrap_or_default();
    let Some(secret_ref) = &obj.spec.credentials_secret_ref else {
        return ctx.default_credentials.clone().ok_or_else(|| {
            Error::Credentials(
                "spec.credentialsSecretRef is not set and the operator does not allow default credentials"
                    .into(),
            )
        });
    };
    let secrets: Api<Secret> = Api::namespaced(ctx.kube.clone(), &ns);
    let secret = match secrets.get(&secret_ref.name).await {
        Ok(s) => s,
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Err(Error::Credentials(format!(
                "Secret {ns}/{} not found",
                secret_ref.name
            )));
        }
        Err(kube::Error::Api(s)) if s.code == 403 => {
            return Err(Error::Credentials(format!(
                "the operator may not read Secret {ns}/{}",
                secret_ref.name
            )));
        }
        Err(e) => return Err(e.into()),
    };
    let data = secret.data.unwrap_or_default();
    let text = |key: &str| -> Result<Option<String>> {
        data.get(key)
            .map(|v| {
                String::from_utf8(v.0.clone())
                    .map(|s| s.trim().to_string())
                    .map_err(|_| {
                        Error::Credentials(format!(
                            "key {key} of Secret {ns}/{} is not UTF-8",
                            secret_ref.name
                        ))
                    })
            })
            .transpose()
    };
    let missing = |key: &str| Error::Credentials(format!("Secret {ns}/{} has no key {key}", secret_ref.name));
    let ak = text("accessKey")?.ok_or_else(|| missing("accessKey"))?;
    let sk = text("secretKey")?.ok_or_else(|| missing("secretKey"))?;
    let token = text("securityToken")?;
    Credentials::aksk(&ak, &sk, token.as_deref())
        .map_err(|e| Error::Credentials(format!("Secret {ns}/{}: {e}", secret_ref.name)))
}

/// Kubernetes errors (status writes) are retried by the controller with a short backoff.
fn error_policy(_obj: Arc<ModelArtsNodePool>, err: &Error, ctx: Arc<Context>) -> Action {
    warn!(error = %err, "reconcile failed");
    ctx.metrics
        .reconciles
        .get_or_create(&ResultLabels {
            result: err.metric_label().into(),
        })
        .inc();
    Action::requeue(jitter(Duration::from_secs(5), 0.2))
}

/// `base` ± `fraction`, so many resources created together do not poll in lockstep.
fn jitter(base: Duration, fraction: f64) -> Duration {
    let f = rand::rng().random_range((1.0 - fraction)..=(1.0 + fraction));
    base.mul_f64(f)
}

/// Per-resource exponential backoff: 5 s doubling up to `max`, at least `Retry-After`;
/// authentication failures wait at least a minute, since AK/SK lock after five in a row.
pub fn failure_backoff(
    reason: &str,
    failures: u32,
    retry_after: Option<Duration>,
    max: Duration,
) -> Duration {
    let exp = Duration::from_secs(5).saturating_mul(1u32 << failures.saturating_sub(1).min(16));
    let mut wait = jitter(exp.min(max), 0.2).min(max);
    if reason == "AuthenticationFailed" {
        wait = wait.max(Duration::from_secs(60).min(max));
    }
    match retry_after {
        Some(ra) => wait.max(ra),
        None => wait,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_grows_to_the_cap_and_honours_retry_after() {
        let max = Duration::from_secs(300);
        let b1 = failure_backoff("Throttled", 1, None, max);
        assert!(
            b1 >= Duration::from_secs(4) && b1 <= Duration::from_secs(6),
            "{b1:?}"
        );
        let b4 = failure_backoff("ModelArtsUnavailable", 4, None, max);
        assert!(
            b4 >= Duration::from_secs(32) && b4 <= Duration::from_secs(48),
            "{b4:?}"
        );
        assert!(failure_backoff("ModelArtsUnavailable", 30, None, max) <= max);
        assert!(
            failure_backoff("Throttled", 1, Some(Duration::from_secs(42)), max) >= Duration::from_secs(42)
        );
        assert!(failure_backoff("AuthenticationFailed", 1, None, max) >= Duration::from_secs(60));
    }
}
