//! One reconcile of one `ModelArtsNodePool`, the imperative shell around [`decide`]:
//! read credentials, list the node pool, write status when it changed, publish the
//! events the change deserves, record metrics and the memo.

use crate::{
    capacity::{Demand, Load},
    client::{ModelArtsClient, NodePoolRef},
    crd::{API_VERSION, CredentialSource, ModelArtsNodePool, ModelArtsNodePoolStatus, parse_duration},
    credential_cache::{CachedSource, Keyless},
    credentials::Credentials,
    decide::{self, Decision, Policy, SyncResult},
    endpoint,
    error::{CredentialsProblem, Error, Result},
    fetch,
    health::Liveness,
    memo::{Memo, Memos},
    metrics::{Metrics, PoolLabels, ResultLabels},
    reason,
    status::{NodePoolRead, Observed, Outcome, Transition, event_note},
    trim,
};
use k8s_openapi::api::core::v1::Secret;
use kube::{
    Api, Client, Resource, ResourceExt,
    api::{Patch, PatchParams},
    runtime::{
        controller::Action,
        events::{Event, EventType, Recorder},
    },
};
use rand::Rng;
use std::{sync::Arc, time::Duration};
use tokio::time::Instant;
use tracing::{info, warn};

/// Field manager of the operator's status writes.
pub const FIELD_MANAGER: &str = "modelarts-operator";

/// Settings derived from the flags, validated once at start.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Host suffixes a `spec.endpoint` may use.
    pub allowed_suffixes: Vec<String>,
    /// Accept plain http:// endpoints.
    pub allow_http: bool,
    /// Domain that `spec.region` resolves under instead of the public one.
    pub region_domain: Option<String>,
    /// Heartbeat and backoff cap.
    pub policy: Policy,
}

/// Everything a reconcile needs.
pub struct Context {
    /// Kubernetes client (Secrets, status).
    pub kube: Client,
    /// ModelArts client, rate limited across all resources.
    pub modelarts: ModelArtsClient,
    /// Validated flags.
    pub settings: Settings,
    /// Publishes events.
    pub recorder: Recorder,
    /// The operator's metrics.
    pub metrics: Arc<Metrics>,
    /// The operator's own credentials, when resources may fall back to them.
    pub default_credentials: Option<Credentials>,
    /// The operator's keyless sources (cached, shared by all resources), when resources may
    /// use the operator's identity.
    pub keyless: Option<Keyless>,
    /// Per-resource memory, by UID.
    pub memos: Arc<Memos>,
    /// Told of every reconcile, for `/healthz`.
    pub liveness: Arc<Liveness>,
    /// What each resource's syncs cost, for the rate-limit check.
    pub demand: Arc<Demand>,
}

/// Reconciles one resource. Sync failures are part of the state machine (they land in
/// status and back off); only a refused status write is returned as an error.
#[tracing::instrument(skip_all, fields(namespace = obj.namespace().unwrap_or_default(), name = obj.name_any()))]
pub async fn reconcile(obj: Arc<ModelArtsNodePool>, ctx: Arc<Context>) -> Result<Action> {
    ctx.liveness.progressed();
    let uid = obj.uid().unwrap_or_default();
    let generation = obj.metadata.generation;
    let memo = ctx.memos.get(&uid);
    if let Some(wait) = decide::wait_before_sync(memo.as_ref(), generation, Instant::now()) {
        count(&ctx.metrics, "skipped");
        return Ok(Action::requeue(wait));
    }
    let _timer = ctx.metrics.reconcile_timer();
    let lag = memo
        .as_ref()
        .filter(|m| m.generation == generation)
        .map_or(Duration::ZERO, |m| {
            Instant::now().saturating_duration_since(m.next_due)
        });
    ctx.metrics
        .sync_lag
        .get_or_create(&PoolLabels {
            namespace: obj.namespace().unwrap_or_default(),
            name: obj.name_any(),
        })
        .set(lag.as_secs_f64());
    let failures_before = decide::failures_so_far(memo.as_ref(), generation);
    let result = sync_once(&obj, &ctx).await;
    let (now, jitter) = (jiff::Timestamp::now(), unit());
    let decide_from = |stored: Option<&ModelArtsNodePoolStatus>| {
        decide::after_sync(
            stored,
            generation,
            SyncResult {
                outcome: &result.outcome,
                retry_after: result.retry_after,
                interval: result.interval,
            },
            failures_before,
            now,
            &ctx.settings.policy,
            jitter,
        )
    };
    let decision = decide_from(obj.status.as_ref());
    let action = act(
        &obj,
        &ctx,
        &uid,
        failures_before,
        decision,
        decide_from,
        &result.outcome,
    )
    .await;
    ctx.liveness.progressed();
    action
}

/// One sync's outcome and what decides the next one.
struct SyncOnce {
    outcome: Outcome,
    retry_after: Option<Duration>,
    interval: Duration,
}

async fn sync_once(obj: &ModelArtsNodePool, ctx: &Context) -> SyncOnce {
    let interval = parse_duration("spec.syncInterval", &obj.spec.sync_interval)
        .unwrap_or(Duration::from_secs(60))
        .max(Duration::from_secs(10));
    if obj.spec.suspend {
        return SyncOnce {
            outcome: Outcome::Suspended,
            retry_after: None,
            interval,
        };
    }
    match sync_pool(obj, ctx).await {
        Ok(observed) => SyncOnce {
            outcome: Outcome::Synced(Box::new(observed)),
            retry_after: None,
            interval,
        },
        Err(e) => {
            let reason = reason::for_error(&e);
            warn!(reason, error = %e, "sync failed");
            SyncOnce {
                outcome: Outcome::Failed {
                    reason: reason.to_string(),
                    message: e.to_string(),
                },
                retry_after: e.retry_after(),
                interval,
            }
        }
    }
}

/// Carries a decision out: the status write first, then (only once it is stored) the
/// events, metrics and memo. A refused write backs off like any failure and says so.
/// `decide_from` decides again from another stored status (see [`write_status`]).
async fn act(
    obj: &ModelArtsNodePool,
    ctx: &Context,
    uid: &str,
    failures_before: u32,
    mut decision: Decision,
    decide_from: impl Fn(Option<&ModelArtsNodePoolStatus>) -> Decision,
    outcome: &Outcome,
) -> Result<Action> {
    let ns = obj.namespace().unwrap_or_default();
    let name = obj.name_any();
    let generation = obj.metadata.generation;
    if decision.write.is_some() {
        let api: Api<ModelArtsNodePool> = Api::namespaced(ctx.kube.clone(), &ns);
        if let Err(e) = write_status(&api, obj, &name, &mut decision, decide_from).await {
            ctx.metrics.status_write_failures.inc();
            let (wait, failures, event) =
                decide::after_write_failure(failures_before, &e.to_string(), &ctx.settings.policy, unit());
            warn!(error = %e, retry_in_s = wait.as_secs(), "status write refused");
            publish(ctx, obj, &event).await;
            remember(ctx, uid, generation, wait, failures);
            return Err(Error::StatusWrite {
                source: e,
                retry_in: wait,
            });
        }
    }
    if decision.write.is_some() {
        ctx.metrics.status_writes.inc();
    }
    for event in &decision.events {
        publish(ctx, obj, event).await;
    }
    if let Some(status) = decision.write.as_ref().or(obj.status.as_ref()) {
        ctx.metrics.observe_status(&ns, &name, status);
    }
    if matches!(outcome, Outcome::Synced(_)) {
        ctx.metrics.synced_at(&ns, &name, jiff::Timestamp::now());
    }
    let result = match outcome {
        Outcome::Synced(_) => "synced",
        Outcome::Suspended => "suspended",
        Outcome::Failed { reason, .. } => reason.as_str(),
    };
    count(&ctx.metrics, result);
    remember(ctx, uid, generation, decision.requeue, decision.failures);
    Ok(Action::requeue(decision.requeue))
}

/// Writes `decision.write` by server-side apply. A status decided from the watch cache's
/// trimmed copy carries no node list when the sync failed or is suspended (it keeps the last
/// pool); applying it would erase the nodes on the server. So the full status is read first
/// and the decision made again from it: it may then need no write at all. This costs one read
/// per write of a failing resource (a lasting failure rewrites its message at most once a
/// minute); a successful sync decides a complete status and skips it.
async fn write_status(
    api: &Api<ModelArtsNodePool>,
    obj: &ModelArtsNodePool,
    name: &str,
    decision: &mut Decision,
    decide_from: impl Fn(Option<&ModelArtsNodePoolStatus>) -> Decision,
) -> std::result::Result<(), kube::Error> {
    if decision.write.as_ref().is_some_and(trim::is_trimmed) {
        let full = api.get_status(name).await?;
        if full.uid() != obj.uid() {
            // Deleted and created again since the watch saw it: the next event reconciles the new one.
            decision.write = None;
            decision.events.clear();
            return Ok(());
        }
        *decision = decide_from(full.status.as_ref());
    }
    let Some(status) = &decision.write else {
        return Ok(());
    };
    if trim::is_trimmed(status) {
        // Unreachable: a status decided from the full one carries the full node list.
        return Err(kube::Error::Service(
            "refusing to write a status without its node list".into(),
        ));
    }
    let body =
        serde_json::json!({ "apiVersion": API_VERSION, "kind": "ModelArtsNodePool", "status": status });
    api.patch_status(
        name,
        &PatchParams::apply(FIELD_MANAGER).force(),
        &Patch::Apply(&body),
    )
    .await
    .map(drop)
}

fn remember(ctx: &Context, uid: &str, generation: Option<i64>, wait: Duration, failures: u32) {
    let now = Instant::now();
    ctx.memos.put(
        uid,
        Memo {
            generation,
            next_due: now.checked_add(wait).unwrap_or(now),
            failures,
        },
    );
}

fn count(metrics: &Metrics, result: &str) {
    metrics
        .reconciles
        .get_or_create(&ResultLabels {
            result: result.into(),
        })
        .inc();
}

async fn publish(ctx: &Context, obj: &ModelArtsNodePool, t: &Transition) {
    info!(reason = t.reason, note = %t.note, "event");
    let ev = Event {
        type_: if t.warning {
            EventType::Warning
        } else {
            EventType::Normal
        },
        reason: t.reason.into(),
        note: Some(event_note(&t.note)),
        action: "Sync".into(),
        secondary: None,
    };
    if let Err(e) = ctx.recorder.publish(&ev, &obj.object_ref(&())).await {
        ctx.metrics.event_failures.inc();
        warn!(error = %e, reason = t.reason, "could not publish event");
    }
}

/// Requeue after an error `reconcile` returned: the backoff it already decided.
pub fn error_policy(obj: Arc<ModelArtsNodePool>, err: &Error, ctx: Arc<Context>) -> Action {
    count(&ctx.metrics, err.metric_label());
    match err {
        Error::StatusWrite { retry_in, .. } => Action::requeue(*retry_in),
        other => {
            // Not produced by `reconcile` today; back off all the same.
            warn!(error = %other, "reconcile failed");
            let uid = obj.uid().unwrap_or_default();
            let generation = obj.metadata.generation;
            let before = decide::failures_so_far(ctx.memos.get(&uid).as_ref(), generation);
            let (wait, failures) =
                decide::next_failure(before, reason::INTERNAL_ERROR, &ctx.settings.policy, unit());
            remember(&ctx, &uid, generation, wait, failures);
            Action::requeue(wait)
        }
    }
}

/// A uniform sample from `[0, 1)` for jitter.
fn unit() -> f64 {
    rand::rng().random::<f64>()
}

/// Credentials → every page → summary, for one resource.
async fn sync_pool(obj: &ModelArtsNodePool, ctx: &Context) -> Result<Observed> {
    let spec = &obj.spec;
    let url = endpoint::resolve(
        spec.region.as_deref(),
        spec.endpoint.as_deref(),
        ("spec.region", "spec.endpoint"),
        ctx.settings.allow_http,
        ctx.settings.region_domain.as_deref(),
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
    let (creds, source) = credentials(obj, ctx).await?;
    let pool = NodePoolRef {
        project_id: spec.project_id.clone(),
        pool_name: spec.pool_name.clone(),
        nodepool_name: spec.node_pool_name.clone(),
    };
    let page_size = u32::try_from(spec.page_size.clamp(1, 500)).unwrap_or(500);
    let max_nodes = usize::try_from(spec.max_nodes_in_status.max(0)).unwrap_or(0);
    let fetch = |creds: Credentials| {
        let (url, pool) = (url.clone(), pool.clone());
        async move {
            fetch::fetch_observed(&ctx.modelarts, &url, &creds, &pool, page_size, max_nodes, |_| {}).await
        }
    };
    let (observed, stats) = match (fetch(creds.clone()).await, source) {
        // Temporary credentials refused (revoked, or expired early): exchange once and retry.
        (Err(Error::Api(e)), Some(source)) if e.status == 401 => {
            if let Credentials::AkSk { access_key, .. } = &creds {
                source.invalidate(access_key).await;
            }
            info!(
                source = source.kind(),
                "ModelArts refused temporary credentials; exchanging new ones"
            );
            fetch(source.get().await?).await?
        }
        (result, _) => result?,
    };
    ctx.metrics.pages.inc_by(stats.pages as u64);
    if let NodePoolRead::Failed { reason, .. } = &observed.node_pool {
        ctx.metrics
            .node_pool_read_failures
            .get_or_create(&ResultLabels {
                result: reason.clone(),
            })
            .inc();
    }
    if let Some(uid) = obj.uid() {
        let interval =
            parse_duration("spec.syncInterval", &spec.sync_interval).unwrap_or(Duration::from_secs(60));
        let requests_per_sync = u32::try_from(stats.pages).unwrap_or(u32::MAX).saturating_add(1);
        ctx.demand.record(
            &uid,
            Load {
                requests_per_sync,
                interval,
            },
        );
    }
    ctx.metrics.retries.inc_by(u64::from(stats.retries));
    info!(
        nodes = stats.nodes,
        pages = stats.pages,
        retries = stats.retries,
        "listed node pool"
    );
    Ok(observed)
}

/// The credentials `spec.credentialSource` and `spec.credentialsSecretRef` select, and the
/// keyless source they came from (to refresh on a 401). The Secret is read at every sync, so a
/// rotation applies at the next one; the operator's own identity is used only when allowed.
async fn credentials(
    obj: &ModelArtsNodePool,
    ctx: &Context,
) -> Result<(Credentials, Option<Arc<CachedSource>>)> {
    let choice = obj.spec.credential_source;
    match (choice, &obj.spec.credentials_secret_ref) {
        (None | Some(CredentialSource::Secret), Some(secret_ref)) => {
            return Ok((secret_credentials(obj, ctx, &secret_ref.name).await?, None));
        }
        (Some(CredentialSource::Secret), None) => {
            return Err(Error::credentials_missing(
                "spec.credentialSource is Secret but spec.credentialsSecretRef is not set",
            ));
        }
        _ => {}
    }
    let named = choice.map(CredentialSource::as_str).unwrap_or("Default");
    if !ctx.allows_default() {
        return Err(Error::credentials_missing(if choice.is_none() {
            "spec.credentialsSecretRef is not set and the operator does not allow default credentials"
                .to_string()
        } else {
            format!(
                "spec.credentialSource {named} uses the operator's identity, which the operator does not allow \
                 (--allow-default-credentials)"
            )
        }));
    }
    let keyless = ctx.keyless.clone().unwrap_or_default();
    match choice {
        None | Some(CredentialSource::Default) => {
            if let Some(c) = &ctx.default_credentials {
                return Ok((c.clone(), None));
            }
            let (c, s) = keyless.first().await?;
            Ok((c, Some(s)))
        }
        Some(kind) => {
            let source = keyless.source(kind.as_str()).ok_or_else(|| {
                Error::credentials_missing(format!(
                    "spec.credentialSource {named}: the operator has no such source configured (configured: {})",
                    if keyless.is_empty() { "none".to_string() } else { keyless.kinds().join(", ") }
                ))
            })?;
            Ok((source.get().await?, Some(source)))
        }
    }
}

impl Context {
    /// Whether resources may use the operator's own identity.
    pub fn allows_default(&self) -> bool {
        self.default_credentials.is_some() || self.keyless.as_ref().is_some_and(|k| !k.is_empty())
    }
}

/// AK/SK from the Secret `name` in the resource's namespace.
async fn secret_credentials(obj: &ModelArtsNodePool, ctx: &Context, name: &str) -> Result<Credentials> {
    let ns = obj.namespace().unwrap_or_default();
    let secret_name = format!("{ns}/{name}");
    let secrets: Api<Secret> = Api::namespaced(ctx.kube.clone(), &ns);
    let secret = match secrets.get(name).await {
        Ok(s) => s,
        Err(kube::Error::Api(s)) if s.code == 404 => {
            return Err(Error::credentials_missing(format!(
                "Secret {secret_name} not found"
            )));
        }
        Err(kube::Error::Api(s)) if s.code == 403 => {
            return Err(Error::Credentials {
                problem: CredentialsProblem::Forbidden,
                message: format!("the operator may not read Secret {secret_name}"),
            });
        }
        Err(e) => return Err(e.into()),
    };
    Credentials::from_secret_data(&secret_name, &secret.data.unwrap_or_default())
}

#[cfg(test)]
#[path = "reconcile_tests.rs"]
mod tests;
