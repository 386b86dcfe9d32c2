//! Leader election over a `coordination.k8s.io` Lease (through `kube-lease-manager`), so that
//! of several replicas only one runs the controller. The flag checks, the Lease namespace and
//! the identity are pure functions; [`Election`] is the shell that campaigns in the background.

use crate::error::{Error, Result};
use k8s_openapi::api::coordination::v1::Lease;
use kube::{Api, Client};
use kube_lease_manager::{LeaseManager, LeaseManagerBuilder};
use std::time::{Duration, SystemTime};
use tokio::{sync::watch, task::JoinHandle};
use tracing::{info, warn};

/// Where a Pod's ServiceAccount namespace is mounted.
pub const SA_NAMESPACE_FILE: &str = "/var/run/secrets/kubernetes.io/serviceaccount/namespace";

/// Longest identity; the Lease's field manager (`kube-lease-manager-<identity>`) must fit 128.
const MAX_IDENTITY: usize = 100;

/// Flags of leader election (part of `modelarts-operator run`).
#[derive(Debug, Clone, clap::Args)]
pub struct LeaderArgs {
    /// Elect a leader through a Lease; only the leader reconciles. Needed for more than one replica.
    #[arg(long, env = "MODELARTS_OPERATOR_LEADER_ELECT")]
    pub leader_elect: bool,
    /// Namespace of the Lease (default: $POD_NAMESPACE, then the ServiceAccount's namespace).
    #[arg(long, env = "MODELARTS_OPERATOR_LEADER_ELECTION_NAMESPACE")]
    pub leader_election_namespace: Option<String>,
    /// Name of the Lease; replicas sharing it elect one leader.
    #[arg(
        long,
        env = "MODELARTS_OPERATOR_LEADER_ELECTION_LEASE_NAME",
        default_value = "modelarts-operator"
    )]
    pub leader_election_lease_name: String,
    /// How long the Lease holds without renewal: a standby takes over at most this long after
    /// the leader dies. Whole seconds, at least 3s; renewed when a third of it is left.
    #[arg(
        long,
        env = "MODELARTS_OPERATOR_LEADER_ELECTION_LEASE_DURATION",
        default_value = "15s"
    )]
    pub leader_election_lease_duration: String,
}

/// Checked settings of one election.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ElectionConfig {
    /// Namespace of the Lease.
    pub namespace: String,
    /// Name of the Lease.
    pub lease_name: String,
    /// This replica's holder identity.
    pub identity: String,
    /// Lease duration in seconds.
    pub duration: u64,
    /// Seconds before expiry at which the holder renews.
    pub grace: u64,
}

/// Lease duration and renewal grace from the flag: whole seconds, at least 3, grace a third.
pub fn lease_timing(value: &str) -> Result<(u64, u64)> {
    let flag = "--leader-election-lease-duration";
    let d = crate::crd::parse_duration(flag, value)?;
    if d.subsec_nanos() != 0 {
        return Err(Error::invalid(flag, value, "must be whole seconds"));
    }
    let secs = d.as_secs();
    if secs < 3 {
        return Err(Error::invalid(flag, value, "must be at least 3s"));
    }
    Ok((secs, (secs / 3).max(1)))
}

/// The Lease namespace: the flag, else `POD_NAMESPACE`, else the ServiceAccount file's content.
pub fn lease_namespace(
    flag: Option<&str>,
    pod_namespace: Option<&str>,
    sa_file: Option<&str>,
) -> Result<String> {
    let pick = |v: Option<&str>| v.map(str::trim).filter(|v| !v.is_empty()).map(str::to_string);
    let ns = pick(flag)
        .or_else(|| pick(pod_namespace))
        .or_else(|| pick(sa_file))
        .ok_or_else(|| {
            Error::invalid(
                "--leader-election-namespace",
                "",
                "not set, no POD_NAMESPACE and no ServiceAccount namespace file; set the flag",
            )
        })?;
    let dns_label = ns.len() <= 63
        && ns
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        && !ns.starts_with('-')
        && !ns.ends_with('-');
    if !dns_label {
        return Err(Error::invalid(
            "--leader-election-namespace",
            ns,
            "not a namespace name",
        ));
    }
    Ok(ns)
}

/// `<pod name or hostname>-<suffix>`: readable in `kubectl get lease`, and unique even when a
/// restarted Pod keeps its name (the suffix is fresh per process).
pub fn identity(pod_name: Option<&str>, hostname: Option<&str>, suffix: &str) -> String {
    let base = [pod_name, hostname]
        .into_iter()
        .flatten()
        .map(str::trim)
        .find(|v| !v.is_empty())
        .unwrap_or("modelarts-operator");
    let room = MAX_IDENTITY.saturating_sub(suffix.len() + 1);
    let base: String = base.chars().take(room).collect();
    format!("{base}-{suffix}")
}

impl ElectionConfig {
    /// Reads the flags and the Pod's environment; `Ok(None)` when election is off.
    pub fn from_args(args: &LeaderArgs) -> Result<Option<Self>> {
        if !args.leader_elect {
            return Ok(None);
        }
        let (duration, grace) = lease_timing(&args.leader_election_lease_duration)?;
        let env = |k: &str| std::env::var(k).ok();
        let sa = std::fs::read_to_string(SA_NAMESPACE_FILE).ok();
        let namespace = lease_namespace(
            args.leader_election_namespace.as_deref(),
            env("POD_NAMESPACE").as_deref(),
            sa.as_deref(),
        )?;
        let lease_name = args.leader_election_lease_name.trim().to_string();
        if lease_name.is_empty() || lease_name.len() > 253 {
            return Err(Error::invalid(
                "--leader-election-lease-name",
                &args.leader_election_lease_name,
                "must be 1-253 characters",
            ));
        }
        let hostname = env("HOSTNAME").or_else(|| std::fs::read_to_string("/etc/hostname").ok());
        let suffix: String = {
            use rand::Rng;
            let mut rng = rand::rng();
            (0..8)
                .map(|_| char::from(b"abcdefghijklmnopqrstuvwxyz0123456789"[rng.random_range(0..36)]))
                .collect()
        };
        Ok(Some(ElectionConfig {
            namespace,
            lease_name,
            identity: identity(env("POD_NAME").as_deref(), hostname.as_deref(), &suffix),
            duration,
            grace,
        }))
    }
}

/// A background campaign for the Lease; [`Election::leading`] tells whether we hold it.
pub struct Election {
    leading: watch::Receiver<bool>,
    stop: watch::Sender<bool>,
    task: JoinHandle<()>,
}

impl Election {
    /// Starts campaigning; the first answer comes once the Lease has been read.
    pub fn start(client: Client, cfg: ElectionConfig) -> Self {
        let (lead_tx, leading) = watch::channel(false);
        let (stop, stop_rx) = watch::channel(false);
        info!(
            namespace = %cfg.namespace,
            lease = %cfg.lease_name,
            identity = %cfg.identity,
            duration_secs = cfg.duration,
            "leader election: campaigning"
        );
        let task = tokio::spawn(campaign(client, cfg, lead_tx, stop_rx));
        Election { leading, stop, task }
    }

    /// Whether this replica holds the Lease; changes as it is won and lost.
    pub fn leading(&self) -> watch::Receiver<bool> {
        self.leading.clone()
    }

    /// Stops campaigning and releases the Lease if held, so a standby takes over at once.
    /// Call only after the controller has stopped (never two writers).
    pub async fn step_down(self) {
        let _ = self.stop.send(true);
        let _ = self.task.await;
    }
}

async fn build(client: &Client, cfg: &ElectionConfig) -> Result<LeaseManager> {
    Ok(LeaseManagerBuilder::new(client.clone(), &cfg.lease_name)
        .with_namespace(&cfg.namespace)
        .with_identity(&cfg.identity)
        .with_duration(cfg.duration)
        .with_grace(cfg.grace)
        .build()
        .await?)
}

/// Holds or waits for the Lease until stopped. Any error reading or renewing it counts as
/// lost leadership at once (we may no longer hold it); a fresh manager then re-reads the
/// Lease and reports leadership again if it is still ours.
///
/// A standby's manager sleeps until the expiry it last read, so it would not notice a
/// leader stepping down early; the standby also polls the Lease once a second and, when it
/// is released, starts a fresh manager that takes it at once.
async fn campaign(
    client: Client,
    cfg: ElectionConfig,
    lead: watch::Sender<bool>,
    mut stop: watch::Receiver<bool>,
) {
    let retry = Duration::from_secs(1);
    let leases: Api<Lease> = Api::namespaced(client.clone(), &cfg.namespace);
    loop {
        let manager = tokio::select! {
            biased;
            _ = stop.changed() => return,
            m = build(&client, &cfg) => m,
        };
        let manager = match manager {
            Ok(m) => m,
            Err(e) => {
                warn!(error = %e, "leader election: cannot read the Lease; retrying");
                tokio::select! {
                    _ = stop.changed() => return,
                    _ = tokio::time::sleep(retry) => continue,
                }
            }
        };
        let failed = loop {
            let standby = !*lead.borrow();
            tokio::select! {
                biased;
                _ = stop.changed() => {
                    lead.send_replace(false);
                    match manager.release().await {
                        Ok(()) => info!("leader election: released the Lease"),
                        Err(e) => warn!(error = %e, "leader election: cannot release the Lease; it expires on its own"),
                    }
                    return;
                }
                changed = manager.changed() => match changed {
                    Ok(now) => {
                        info!(leading = now, "leader election: leadership changed");
                        lead.send_replace(now);
                    }
                    Err(e) => {
                        if lead.send_replace(false) {
                            warn!(error = %e, "leader election: lost touch with the Lease; stepping down");
                        } else {
                            warn!(error = %e, "leader election: Lease error; retrying");
                        }
                        break true;
                    }
                },
                _ = lapsed(&leases, &cfg), if !standby => {
                    lead.send_replace(false);
                    warn!("leader election: cannot confirm the Lease before it expires; stepping down");
                    break true;
                }
                _ = released(&leases, &cfg.lease_name), if standby => {
                    info!("leader election: the Lease was released; taking it");
                    break false;
                }
            }
        };
        if failed {
            tokio::select! {
                _ = stop.changed() => return,
                _ = tokio::time::sleep(retry) => {}
            }
        }
    }
}

/// Resolves once the Lease exists with no holder (its leader stepped down).
async fn released(leases: &Api<Lease>, name: &str) {
    loop {
        tokio::time::sleep(Duration::from_secs(1)).await;
        if let Ok(Some(lease)) = leases.get_opt(name).await
            && is_free(&lease)
        {
            return;
        }
    }
}

/// While leading: resolves when the Lease is no longer ours, or when we cannot confirm it
/// before it would expire (a renewal hanging on an unreachable API server keeps the library
/// waiting, while a standby may already take over). Gives up half the renewal grace before
/// expiry, so a renewal (due a full grace before expiry) has had time to show; re-reads the
/// Lease every quarter grace.
async fn lapsed(leases: &Api<Lease>, cfg: &ElectionConfig) {
    let margin = Duration::from_millis(cfg.grace * 500);
    let every = Duration::from_millis(cfg.grace * 250).max(Duration::from_millis(250));
    let mut until = SystemTime::now() + Duration::from_secs(cfg.duration);
    loop {
        let wait = until
            .checked_sub(margin)
            .and_then(|t| t.duration_since(SystemTime::now()).ok())
            .unwrap_or_default()
            .min(every);
        if wait.is_zero() {
            return;
        }
        tokio::time::sleep(wait).await;
        if let Ok(Ok(Some(lease))) = tokio::time::timeout(every, leases.get_opt(&cfg.lease_name)).await {
            match held_until(&lease, &cfg.identity) {
                Some(t) => until = until.max(t),
                None => return,
            }
        }
    }
}

/// When our hold on `lease` ends (`renewTime + leaseDurationSeconds`), or `None` if another
/// identity (or nobody) holds it.
pub fn held_until(lease: &Lease, identity: &str) -> Option<SystemTime> {
    let spec = lease.spec.as_ref()?;
    if spec.holder_identity.as_deref() != Some(identity) {
        return None;
    }
    let renewed = SystemTime::from(spec.renew_time.as_ref()?.0);
    let secs = u64::try_from(spec.lease_duration_seconds?).ok()?;
    Some(renewed + Duration::from_secs(secs))
}

/// A Lease nobody holds: no spec or an empty holder identity.
pub fn is_free(lease: &Lease) -> bool {
    lease
        .spec
        .as_ref()
        .and_then(|s| s.holder_identity.as_deref())
        .is_none_or(str::is_empty)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lease_timing_takes_whole_seconds_and_renews_at_a_third() {
        assert_eq!(lease_timing("15s").ok(), Some((15, 5)));
        assert_eq!(lease_timing("3s").ok(), Some((3, 1)));
        assert_eq!(lease_timing("1m").ok(), Some((60, 20)));
        for bad in ["2s", "0s", "1500ms", "soon"] {
            let err = lease_timing(bad).err().map(|e| e.to_string()).unwrap_or_default();
            assert!(err.contains("--leader-election-lease-duration"), "{bad}: {err}");
        }
    }

    #[test]
    fn namespace_prefers_flag_then_pod_env_then_service_account() {
        let ns = |f, p, s| lease_namespace(f, p, s).ok();
        assert_eq!(ns(Some("ops"), Some("pod"), Some("sa")), Some("ops".into()));
        assert_eq!(ns(None, Some("pod"), Some("sa")), Some("pod".into()));
        assert_eq!(ns(None, Some(" "), Some("sa\n")), Some("sa".into()));
        assert_eq!(ns(None, None, None), None);
        let err = lease_namespace(Some("Bad_NS"), None, None)
            .err()
            .map(|e| e.to_string());
        assert!(err.unwrap_or_default().contains("Bad_NS"));
    }

    #[test]
    fn a_lease_is_free_without_a_holder() {
        let lease = |holder: Option<&str>| -> Lease {
            serde_json::from_value(serde_json::json!({
                "metadata": {"name": "l"},
                "spec": {"holderIdentity": holder, "leaseDurationSeconds": 15},
            }))
            .unwrap_or_default()
        };
        assert!(is_free(&lease(None)));
        assert!(is_free(&lease(Some(""))));
        assert!(!is_free(&lease(Some("op-a-x1"))));
        assert!(is_free(&Lease::default()));
    }

    #[test]
    fn our_hold_ends_a_lease_duration_after_the_renewal() {
        let lease: Lease = serde_json::from_value(serde_json::json!({
            "metadata": {"name": "l"},
            "spec": {"holderIdentity": "me-1", "leaseDurationSeconds": 15,
                     "renewTime": "2026-01-01T00:00:00.000000Z"},
        }))
        .unwrap_or_default();
        // 2026-01-01T00:00:15Z as seconds since the epoch, worked out by hand.
        let want = SystemTime::UNIX_EPOCH + Duration::from_secs(1_767_225_615);
        assert_eq!(held_until(&lease, "me-1"), Some(want));
        assert_eq!(held_until(&lease, "other"), None);
        assert_eq!(held_until(&Lease::default(), "me-1"), None);
    }

    #[test]
    fn identity_names_the_pod_and_stays_short() {
        assert_eq!(identity(Some("op-7f9-abc"), Some("host"), "x1"), "op-7f9-abc-x1");
        assert_eq!(identity(None, Some("host\n"), "x1"), "host-x1");
        assert_eq!(identity(Some(""), None, "x1"), "modelarts-operator-x1");
        let long = "p".repeat(300);
        let id = identity(Some(&long), None, "abcdefgh");
        assert_eq!(id.len(), MAX_IDENTITY);
        assert!(id.ends_with("-abcdefgh"));
    }
}
