//! The operator process: flags, clients, the controller loop, the health/metrics server,
//! and the sweeper that forgets deleted resources. Reconciling lives in [`crate::reconcile`].

use crate::{
    capacity::{self, Load},
    client::{ClientOptions, ModelArtsClient},
    crd::{API_VERSION, ModelArtsNodePool, parse_duration},
    credential_cache::Keyless,
    credentials::Credentials,
    decide::Policy,
    endpoint,
    error::{CredentialsProblem, Error, Result},
    health::{self, Liveness},
    keyless::Source,
    leader::{Election, ElectionConfig, LeaderArgs},
    memo::Memos,
    metrics::Metrics,
    reconcile::{Context, FIELD_MANAGER, Settings, error_policy, reconcile},
    telemetry::LogFormat,
    tls::{Roots, Trust},
};
use futures::StreamExt;
use governor::{Quota, RateLimiter};
use kube::{
    Api, Client, ResourceExt,
    api::ListParams,
    runtime::{
        Controller, WatchStreamExt,
        controller::Config as ControllerConfig,
        events::{Recorder, Reporter},
        reflector::{self, Store},
        watcher,
    },
};
use std::{
    collections::HashSet,
    net::SocketAddr,
    num::NonZeroU32,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
    time::Duration,
};
use tokio::sync::watch;
use tracing::{info, warn};

/// How long in-flight reconciles may finish after SIGTERM before they are dropped.
const SHUTDOWN_DRAIN: Duration = Duration::from_secs(5);

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
    /// Also take credentials from the ECS/BMS metadata service (the node's agency); off by
    /// default because every Pod on the node could use the same identity.
    #[arg(long, env = "MODELARTS_OPERATOR_METADATA_CREDENTIALS")]
    pub metadata_credentials: bool,
    /// Base URL of the metadata service (tests point it at a simulator).
    #[arg(long, env = "MODELARTS_OPERATOR_METADATA_ENDPOINT", default_value = crate::keyless::DEFAULT_METADATA_ENDPOINT)]
    pub metadata_endpoint: String,
    /// Host suffixes a `spec.endpoint` may use (repeatable; default: public ModelArts domains).
    #[arg(
        long = "allowed-endpoint-suffix",
        value_delimiter = ',',
        env = "MODELARTS_OPERATOR_ALLOWED_ENDPOINT_SUFFIXES"
    )]
    pub allowed_endpoint_suffixes: Vec<String>,
    /// Resolve `spec.region` to `https://modelarts.{region}.DOMAIN` (a Huawei Cloud Stack or
    /// other private cloud) instead of the public Huawei Cloud endpoints.
    #[arg(long, value_name = "DOMAIN", env = "MODELARTS_OPERATOR_REGION_DOMAIN")]
    pub region_domain: Option<String>,
    /// Accept plain http:// endpoints (only for a local simulator: credentials travel in clear).
    #[arg(long, env = "MODELARTS_OPERATOR_ALLOW_HTTP_ENDPOINTS")]
    pub allow_http_endpoints: bool,
    /// PEM bundle of extra CAs trusted for ModelArts endpoints (private CA, TLS-inspecting
    /// proxy); re-read when the file changes.
    #[arg(long, value_name = "FILE", env = "MODELARTS_OPERATOR_CA_FILE")]
    pub modelarts_ca_file: Option<std::path::PathBuf>,
    /// Built-in roots trusted for ModelArts endpoints besides --modelarts-ca-file.
    #[arg(long, value_enum, env = "MODELARTS_OPERATOR_TRUST_ROOTS", default_value_t = Roots::Public)]
    pub modelarts_trust_roots: Roots,
    /// Refresh `status.lastSyncTime` at least this often even when nothing changed.
    #[arg(long, env = "MODELARTS_OPERATOR_STATUS_HEARTBEAT", default_value = "5m")]
    pub status_heartbeat: String,
    /// Longest wait between retries of a failing resource.
    #[arg(long, env = "MODELARTS_OPERATOR_MAX_BACKOFF", default_value = "5m")]
    pub max_backoff: String,
    /// How long fewer nodes than desired may be listed before `Healthy` turns False.
    #[arg(long, env = "MODELARTS_OPERATOR_DESIRED_GRACE_PERIOD", default_value = "30m")]
    pub desired_grace_period: String,
    /// `/healthz` fails when a sync is overdue by this much and no reconcile ran for as long.
    #[arg(long, env = "MODELARTS_OPERATOR_STALL_TIMEOUT", default_value = "15m")]
    pub stall_timeout: String,
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
    /// Leader election.
    #[command(flatten)]
    pub leader: LeaderArgs,
    /// Log format.
    #[arg(long, env = "MODELARTS_OPERATOR_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
}

/// Validates a duration flag that must be at least one second.
fn duration_flag(flag: &str, value: &str) -> Result<Duration> {
    let d = parse_duration(flag, value)?;
    if d < Duration::from_secs(1) {
        return Err(Error::invalid(flag, value, "must be at least 1s"));
    }
    Ok(d)
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
        region_domain: args
            .region_domain
            .as_deref()
            .map(|d| endpoint::validate_domain("--region-domain", d))
            .transpose()?,
        policy: Policy {
            heartbeat: duration_flag("--status-heartbeat", &args.status_heartbeat)?,
            max_backoff: duration_flag("--max-backoff", &args.max_backoff)?,
            desired_grace: parse_duration("--desired-grace-period", &args.desired_grace_period)?,
        },
    };
    let stall_after = duration_flag("--stall-timeout", &args.stall_timeout)?;
    if !(args.modelarts_qps.is_finite() && args.modelarts_qps > 0.0) {
        return Err(Error::invalid(
            "--modelarts-qps",
            args.modelarts_qps.to_string(),
            "must be > 0",
        ));
    }
    let period = Duration::try_from_secs_f64(1.0 / args.modelarts_qps)
        .map_err(|_| Error::invalid("--modelarts-qps", args.modelarts_qps.to_string(), "out of range"))?;
    let burst = NonZeroU32::new(args.modelarts_burst).unwrap_or(NonZeroU32::MIN);
    let quota = Quota::with_period(period)
        .ok_or_else(|| Error::invalid("--modelarts-qps", args.modelarts_qps.to_string(), "too large"))?
        .allow_burst(burst);
    let modelarts = ModelArtsClient::new(ClientOptions {
        request_timeout: parse_duration("--modelarts-timeout", &args.modelarts_timeout)?,
        trust: Trust {
            ca_file: args.modelarts_ca_file.clone(),
            roots: args.modelarts_trust_roots,
            ca_flag: "--modelarts-ca-file",
        },
        ..Default::default()
    })?
    .with_rate_limiter(Arc::new(RateLimiter::direct(quota)));
    let metrics = Arc::new(Metrics::default());
    // The operator's identity: its AK/SK environment if set, then the keyless sources the SDK
    // environment variables configure (Pod Identity, OIDC, a credentials file, metadata).
    let (default_credentials, keyless) = if args.allow_default_credentials {
        let sources = Source::from_lookup(
            |k| std::env::var(k).ok(),
            args.metadata_credentials.then(|| args.metadata_endpoint.clone()),
        );
        for s in &sources {
            s.check_endpoint(settings.allow_http, "--allow-http-endpoints")?;
        }
        let keyless = Keyless::new(sources, modelarts.http(), metrics.clone());
        let env = match Credentials::from_env() {
            Ok(c) => Some(c),
            Err(Error::Credentials {
                problem: CredentialsProblem::Missing,
                ..
            }) if !keyless.is_empty() => None,
            Err(e) => return Err(e),
        };
        info!(sources = ?keyless.kinds(), environment = env.is_some(), "default credentials allowed");
        (env, Some(keyless))
    } else {
        (None, None)
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
    let election = ElectionConfig::from_args(&args.leader)?;
    let reporter = Reporter {
        controller: FIELD_MANAGER.into(),
        instance: std::env::var("POD_NAME")
            .or_else(|_| std::env::var("CONTROLLER_POD_NAME"))
            .ok(),
    };
    let memos = Arc::new(Memos::default());
    let liveness = Arc::new(Liveness::new(memos.clone(), stall_after));
    let ctx = Arc::new(Context {
        recorder: Recorder::new(kube.clone(), reporter),
        kube: kube.clone(),
        modelarts,
        settings,
        metrics: metrics.clone(),
        default_credentials,
        keyless,
        memos,
        liveness: liveness.clone(),
        demand: Default::default(),
    });

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
    let ready = Arc::new(AtomicBool::new(false));
    let app = health::router(health::Health {
        metrics: metrics.clone(),
        ready: ready.clone(),
        liveness: liveness.clone(),
    });
    let http = tokio::spawn(async move {
        let _ = axum::serve(listener, app)
            .with_graceful_shutdown(crate::signal::terminated())
            .await;
    });

    info!(
        namespace = args.namespace.as_deref().unwrap_or("<all>"),
        concurrency = args.concurrency,
        leader_elect = election.is_some(),
        "starting"
    );
    let term = Term {
        api,
        wc,
        ready,
        ctx,
        concurrency: args.concurrency,
        qps: args.modelarts_qps,
    };
    match election {
        None => {
            metrics.leader.set(1);
            let (stop, stopped) = watch::channel(false);
            tokio::spawn(async move {
                crate::signal::terminated().await;
                let _ = stop.send(true);
            });
            term.serve(stopped).await;
        }
        Some(cfg) => lead_when_elected(term, Election::start(kube, cfg)).await,
    }
    metrics.leader.set(0);
    liveness.stop();
    info!("controller stopped; shutting down");
    let _ = http.await;
    Ok(())
}

/// Aborts a background task when the future that owns it ends or is dropped.
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// What one term of the controller needs; a replica may lead several terms in its life.
struct Term {
    api: Api<ModelArtsNodePool>,
    wc: watcher::Config,
    ready: Arc<AtomicBool>,
    ctx: Arc<Context>,
    concurrency: u16,
    qps: f64,
}

impl Term {
    /// Watches and reconciles until `stop` turns true, then lets running reconciles finish
    /// for at most [`SHUTDOWN_DRAIN`].
    async fn serve(&self, stop: watch::Receiver<bool>) {
        // Our own reflector (rather than `Controller::new`'s) so readiness can be read off the
        // watch itself: kube 5's `Store::wait_until_ready` wakes only the last of several
        // waiters, and the controller is already one.
        let listed = Arc::new(AtomicBool::new(false));
        self.ready.store(false, Ordering::Relaxed);
        let (store, writer) = reflector::store();
        let (seen, ready) = (listed.clone(), self.ready.clone());
        let objects = watcher(self.api.clone(), self.wc.clone())
            .default_backoff()
            .modify(crate::trim::trim)
            .reflect(writer)
            .inspect(move |event| {
                if let Ok(watcher::Event::InitDone) = event
                    && !seen.swap(true, Ordering::Relaxed)
                {
                    ready.store(true, Ordering::Relaxed);
                    info!("watch has listed the resources; ready");
                }
            })
            .applied_objects();
        // Aborted on drop too: losing the Lease drops this future mid-way.
        let _sweeper = AbortOnDrop(tokio::spawn(forget_deleted(
            store.clone(),
            self.ctx.clone(),
            listed,
            self.qps,
        )));
        let mut graceful = stop.clone();
        let run = Controller::for_stream(objects, store)
            .with_config(ControllerConfig::default().concurrency(self.concurrency))
            .graceful_shutdown_on(async move {
                let _ = graceful.wait_for(|s| *s).await;
            })
            .run(reconcile, error_policy, self.ctx.clone())
            .for_each(|res| async move {
                if let Err(e) = res {
                    warn!(error = %e, "reconcile loop");
                }
            });
        // The controller drains in-flight reconciles after the signal, but one may be waiting
        // for a rate-limit token far ahead (a low --modelarts-qps): cut the drain short rather
        // than overrun the Pod's termination grace period. A cut status write either happened
        // or did not; the next leader or start resyncs either way.
        let mut cut = stop;
        tokio::select! {
            _ = run => {}
            _ = async {
                let _ = cut.wait_for(|s| *s).await;
                tokio::time::sleep(SHUTDOWN_DRAIN).await;
            } => {
                warn!(drain_s = SHUTDOWN_DRAIN.as_secs(), "in-flight reconciles did not finish after the signal; stopping them");
            }
        }
    }

    /// Drops what only a leader should hold, so a standby exports no stale pool series and
    /// its liveness does not wait for syncs that are no longer its job.
    fn forget_all(&self) {
        self.ctx.memos.retain(|_| false);
        self.ctx.metrics.retain_pools(|_, _| false);
    }
}

/// Runs the controller only while this replica holds the Lease. A standby reports Ready: it
/// is healthy and can take over, and a rolling update waits on new Pods being Ready while the
/// old leader still holds the Lease. Losing the Lease drops the controller at once, mid-
/// reconcile if need be; SIGTERM stops it gracefully and then releases the Lease.
async fn lead_when_elected(term: Term, election: Election) {
    let mut leading = election.leading();
    let metrics = term.ctx.metrics.clone();
    let signal = crate::signal::terminated();
    tokio::pin!(signal);
    'terms: loop {
        metrics.leader.set(0);
        term.ready.store(true, Ordering::Relaxed);
        info!("standing by for the leader Lease");
        tokio::select! {
            _ = &mut signal => break 'terms,
            won = leading.wait_for(|l| *l) => if won.is_err() { break 'terms },
        }
        metrics.leader.set(1);
        info!("leading: starting the controller");
        let (stop_tx, stop_rx) = watch::channel(false);
        // Boxed, so that dropping it below really drops the controller (and its sweeper).
        let mut serving = Box::pin(term.serve(stop_rx));
        let lost = async {
            let _ = leading.wait_for(|l| !*l).await;
        };
        tokio::pin!(lost);
        tokio::select! {
            biased;
            _ = &mut lost => {
                warn!("lost the leader Lease: controller stopped");
            }
            _ = &mut signal => {
                let _ = stop_tx.send(true);
                // Still abort at once should the Lease go while reconciles drain.
                tokio::select! {
                    _ = &mut serving => {}
                    _ = &mut lost => warn!("lost the leader Lease while stopping"),
                }
                break 'terms;
            }
            _ = &mut serving => {
                warn!("controller ended by itself; standing by");
            }
        }
        drop(serving);
        term.forget_all();
    }
    metrics.leader.set(0);
    election.step_down().await;
}

/// As soon as the watch has listed and every 30 s after: drops the memos and metric series
/// of resources that left the watch (deleted, or no longer matching the selector), so
/// neither grows with every resource ever seen, checks that `--modelarts-qps` can
/// sustain every resource's interval, and hands freed memory back to the kernel.
async fn forget_deleted(
    store: Store<ModelArtsNodePool>,
    ctx: Arc<Context>,
    listed: Arc<AtomicBool>,
    qps: f64,
) {
    let mut tick = tokio::time::interval(Duration::from_secs(1));
    let mut last_sweep: Option<tokio::time::Instant> = None;
    let mut warned: Option<tokio::time::Instant> = None;
    ctx.metrics.qps_limit.set(qps);
    loop {
        tick.tick().await;
        let due = last_sweep.is_none_or(|t| t.elapsed() >= Duration::from_secs(30));
        if !due || !listed.load(Ordering::Relaxed) {
            continue;
        }
        last_sweep = Some(tokio::time::Instant::now());
        let objects = store.state();
        check_capacity(&objects, &ctx, qps, &mut warned);
        let uids: HashSet<String> = objects.iter().filter_map(|o| o.uid()).collect();
        let names: HashSet<(String, String)> = objects
            .iter()
            .map(|o| (o.namespace().unwrap_or_default(), o.name_any()))
            .collect();
        ctx.memos.retain(|uid| uids.contains(uid));
        ctx.demand.retain(|uid| uids.contains(uid));
        ctx.metrics
            .retain_pools(|ns, name| names.contains(&(ns.to_string(), name.to_string())));
        drop((objects, uids, names));
        // The first listing and the first syncs of every resource are the peaks; what they
        // freed would otherwise stay in the process.
        crate::footprint::release_free_memory();
    }
}

/// Warns when the rate limit cannot sustain the resources' intervals: at once after the
/// first listing (estimating unsynced resources at one page each), again when it first
/// becomes true, and every 10 minutes while it stays true.
fn check_capacity(
    objects: &[Arc<ModelArtsNodePool>],
    ctx: &Context,
    qps: f64,
    warned: &mut Option<tokio::time::Instant>,
) {
    let loads = objects.iter().filter(|o| !o.spec.suspend).map(|o| {
        let recorded = o.uid().and_then(|uid| ctx.demand.get(&uid));
        let interval = parse_duration("spec.syncInterval", &o.spec.sync_interval)
            .unwrap_or(Duration::from_secs(60))
            .max(Duration::from_secs(10));
        match recorded {
            Some(l) => Load { interval, ..l },
            None => Load::first_guess(interval),
        }
    });
    let verdict = capacity::assess(loads, qps);
    ctx.metrics.required_qps.set(verdict.required_qps);
    if verdict.sustainable() {
        if warned.take().is_some() {
            info!(
                required_qps = verdict.required_qps,
                qps, "the ModelArts rate limit sustains every sync interval again"
            );
        }
    } else if warned.is_none_or(|t| t.elapsed() >= Duration::from_secs(600)) {
        warn!(
            resources = verdict.resources,
            required_qps = verdict.required_qps,
            qps,
            "{}",
            verdict.warning()
        );
        *warned = Some(tokio::time::Instant::now());
    }
}
