//! End-to-end keyless credentials: the operator (under the chart's RBAC, against a real
//! kube-apiserver) gets temporary AK/SK from the simulator's Pod Identity, IAM OIDC and metadata
//! endpoints and from a credentials file, configured by the SDKs' environment variables.
//!
//! Run:
//! ```text
//! eval "$(hack/control-plane.sh up)" && MODELARTS_REQUIRE_CLUSTER=1 cargo test --test e2e_keyless -- --nocapture
//! ```

#[path = "support/cluster.rs"]
mod cluster;
#[path = "support/operator.rs"]
mod operator;

use modelarts_simulator::identity::{IdentityConfig, IdentityFault, POD_IDENTITY_PATH};
use modelarts_simulator::{DEMO_ACCESS_KEY, DEMO_NODEPOOL, DEMO_SECRET_KEY};
use operator::{E2e, TIMEOUT, cond_message, has_cond, wait_until};
use serde_json::json;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const POD_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.pod-identity-e2e.sig";
const ID_TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.oidc-e2e.sig";
const IDP: &str = "cce-oidc-e2e";

/// Configures the simulator's identity endpoints and the operator's environment for all four
/// keyless sources; returns the secrets the test put in files (checked for leaks later).
fn configure(e: &mut E2e, ttl_seconds: u64) -> Vec<String> {
    set_identity(e, ttl_seconds, None);
    let dir = e.dir.path().to_path_buf();
    std::fs::write(dir.join("pod-token"), POD_TOKEN).expect("pod token");
    std::fs::write(dir.join("id-token"), ID_TOKEN).expect("id token");
    std::fs::write(
        dir.join("credentials"),
        format!("[basic]\nak = {DEMO_ACCESS_KEY}\nsk = {DEMO_SECRET_KEY}\n"),
    )
    .expect("credentials file");
    let endpoint = e.sim.endpoint();
    let path = |f: &str| dir.join(f).display().to_string();
    e.config.allow_default_credentials = true;
    e.config.env.extend([
        (
            "HC_CONTAINER_CREDENTIALS_FULL_URI".into(),
            format!("{endpoint}{POD_IDENTITY_PATH}"),
        ),
        ("HC_CONTAINER_AUTHORIZATION_TOKEN_FILE".into(), path("pod-token")),
        ("HUAWEICLOUD_SDK_IDP_ID".into(), IDP.into()),
        ("HUAWEICLOUD_SDK_ID_TOKEN_FILE".into(), path("id-token")),
        ("HUAWEICLOUD_SDK_IAM_ENDPOINT".into(), endpoint.clone()),
        ("HUAWEICLOUD_SDK_CREDENTIALS_FILE".into(), path("credentials")),
    ]);
    e.config.extra_args.extend([
        "--metadata-credentials".into(),
        "--metadata-endpoint".into(),
        endpoint,
        "--modelarts-qps".into(),
        "60".into(),
        "--modelarts-burst".into(),
        "60".into(),
        "--concurrency".into(),
        "16".into(),
    ]);
    vec![POD_TOKEN.into(), ID_TOKEN.into(), DEMO_SECRET_KEY.into()]
}

fn exchanges(e: &E2e) -> BTreeMap<String, u64> {
    e.sim.state().identity().lock().expect("identity").exchanges()
}

/// Everything a user or a log collector sees: operator log, events, statuses, metrics.
async fn observable(e: &E2e, names: &[String]) -> String {
    let mut all = std::fs::read_to_string(&e.op().log).unwrap_or_default();
    all.push_str(&e.op().metrics().await);
    for n in names {
        let p = e.get(&e.ns, n).await;
        all.push_str(&serde_json::to_string(&p).unwrap_or_default());
        for ev in e.events(&e.ns, n).await {
            all.push_str(&serde_json::to_string(&ev).unwrap_or_default());
        }
    }
    all
}

fn assert_no_secret(text: &str, secrets: &[String]) {
    for s in secrets {
        assert!(!s.is_empty());
        assert!(
            !text.contains(s.as_str()),
            "a secret ({}…) appears in logs, events, status or metrics",
            &s[..4]
        );
    }
}

/// One resource per source syncs; each source is exchanged with once, not per sync.
#[tokio::test]
async fn each_keyless_source_authenticates_a_resource() {
    let Some(mut e) = E2e::without_operator("each_keyless_source_authenticates_a_resource", "kl-src").await
    else {
        return;
    };
    let mut secrets = configure(&mut e, 3600);
    e.start_operator().await;
    let sources = ["PodIdentity", "OIDC", "Metadata", "File"];
    let mut names = Vec::new();
    for s in sources {
        let name = format!("via-{}", s.to_lowercase());
        create_keyless_pool(&e, &name, Some(s)).await;
        names.push(name);
    }
    for n in &names {
        e.wait_conds(&e.ns, n, &[("Synced", "True", "Synced")]).await;
    }
    let got = exchanges(&e);
    for k in ["podIdentity", "oidc", "metadata"] {
        assert_eq!(got.get(k), Some(&1), "one exchange per source: {got:?}");
    }
    // A resource without a Secret and without a source uses the chain: OIDC comes first.
    create_keyless_pool(&e, "via-chain", None).await;
    e.wait_conds(&e.ns, "via-chain", &[("Synced", "True", "Synced")])
        .await;
    names.push("via-chain".into());
    assert_eq!(
        exchanges(&e).get("oidc"),
        Some(&1),
        "the chain reused the cached OIDC credentials"
    );
    secrets.extend(
        e.sim
            .state()
            .identity()
            .lock()
            .expect("identity")
            .issued_secrets(),
    );
    assert_no_secret(&observable(&e, &names).await, &secrets);
    e.finish().await;
}

/// 100 resources on 30 s credentials for 3 minutes: refreshed ahead of expiry (one exchange per
/// refresh period, not per resource), and ModelArts never refuses a request.
#[tokio::test]
async fn short_lived_credentials_refresh_once_per_period_for_a_hundred_resources() {
    let Some(mut e) = E2e::without_operator(
        "short_lived_credentials_refresh_once_per_period_for_a_hundred_resources",
        "kl-100",
    )
    .await
    else {
        return;
    };
    let mut secrets = configure(&mut e, 30);
    e.start_operator().await;
    let names: Vec<String> = (0..100).map(|i| format!("p{i:03}")).collect();
    for n in &names {
        create_keyless_pool(&e, n, Some("PodIdentity")).await;
    }
    for n in &names {
        e.wait_conds(&e.ns, n, &[("Synced", "True", "Synced")]).await;
    }
    let start = Instant::now();
    let before = e.sim.state().stats();
    let ex_before = exchanges(&e).get("podIdentity").copied().unwrap_or(0);
    let watch = Duration::from_secs(180);
    // Every few seconds: all 100 still Synced (a refused call would flip one to False).
    while start.elapsed() < watch {
        tokio::time::sleep(Duration::from_secs(5)).await;
        for n in names.iter().step_by(10) {
            let p = e.get(&e.ns, n).await;
            assert!(
                has_cond(&p, "Synced", "True", "Synced"),
                "{n}: {}",
                cond_message(&p, "Synced")
            );
        }
    }
    let after = e.sim.state().stats();
    let ex = exchanges(&e).get("podIdentity").copied().unwrap_or(0) - ex_before;
    let lists = after.requests - before.requests;
    let refused = after.auth_failures - before.auth_failures;
    println!(
        "FIGURE keyless 100 resources, ttl 30s, {watch:?}: {lists} node-list requests, {refused} refused, {ex} exchanges"
    );
    assert_eq!(
        refused, 0,
        "ModelArts refused requests: credentials were used past expiry"
    );
    assert!(
        lists >= 1700,
        "the resources kept syncing: {lists} node-list requests"
    );
    // Refresh with a third (10 s) left: one exchange every ~20 s, so 9 in 180 s; a per-resource
    // exchange would be hundreds.
    assert!((7..=12).contains(&ex), "{ex} exchanges in {watch:?}");
    secrets.extend(
        e.sim
            .state()
            .identity()
            .lock()
            .expect("identity")
            .issued_secrets(),
    );
    assert_no_secret(&observable(&e, &names[..5]).await, &secrets);
    e.finish().await;
}

/// A broken identity endpoint: once the cached credentials expire the resource reports
/// `CredentialExchangeFailed` naming the source and the failure; fixed, it recovers.
#[tokio::test]
async fn a_broken_identity_endpoint_is_reported_and_recovers() {
    let Some(mut e) =
        E2e::without_operator("a_broken_identity_endpoint_is_reported_and_recovers", "kl-broken").await
    else {
        return;
    };
    configure(&mut e, 15);
    e.start_operator().await;
    create_keyless_pool(&e, "oidc", Some("OIDC")).await;
    e.wait_conds(&e.ns, "oidc", &[("Synced", "True", "Synced")]).await;
    set_identity(&e, 15, Some(IdentityFault::Unavailable));
    let p = wait_until("CredentialExchangeFailed", TIMEOUT, || async {
        let p = e.get(&e.ns, "oidc").await;
        if has_cond(&p, "Synced", "False", "CredentialExchangeFailed") {
            Ok(p)
        } else {
            Err(operator::brief(&p))
        }
    })
    .await;
    let msg = cond_message(&p, "Synced");
    assert!(msg.contains("OIDC") && msg.contains("HTTP 500"), "{msg}");
    set_identity(&e, 15, None);
    e.wait_conds(&e.ns, "oidc", &[("Synced", "True", "Synced")]).await;
    e.finish().await;
}

/// Temporary credentials revoked before they expire: ModelArts answers 401, the operator
/// exchanges once and retries within the same sync, so the resource never leaves Synced.
#[tokio::test]
async fn revoked_temporary_credentials_are_exchanged_and_retried_once() {
    let Some(mut e) = E2e::without_operator(
        "revoked_temporary_credentials_are_exchanged_and_retried_once",
        "kl-401",
    )
    .await
    else {
        return;
    };
    configure(&mut e, 3600);
    e.start_operator().await;
    create_keyless_pool(&e, "pod", Some("PodIdentity")).await;
    e.wait_conds(&e.ns, "pod", &[("Synced", "True", "Synced")]).await;
    let ak = e
        .sim
        .state()
        .identity()
        .lock()
        .expect("identity")
        .last_access_key()
        .expect("issued");
    let before = e.sim.state().stats();
    assert!(e.sim.state().remove_credential(&ak), "revoking {ak}");
    // Two more syncs (10 s interval) after the revocation.
    let lists = before.requests;
    wait_until("two syncs after the revocation", TIMEOUT, || async {
        let now = e.sim.state().stats().requests;
        (now >= lists + 3)
            .then_some(())
            .ok_or(format!("{now} node-list requests"))
    })
    .await;
    let after = e.sim.state().stats();
    assert_eq!(
        after.auth_failures - before.auth_failures,
        1,
        "one refused request, then fresh credentials"
    );
    assert_eq!(
        exchanges(&e).get("podIdentity"),
        Some(&2),
        "exactly one new exchange"
    );
    let p = e.get(&e.ns, "pod").await;
    assert!(
        has_cond(&p, "Synced", "True", "Synced"),
        "{}",
        cond_message(&p, "Synced")
    );
    e.finish().await;
}

/// The simulator's identity endpoints: this test's IdP, tokens, lifetime and fault.
fn set_identity(e: &E2e, ttl_seconds: u64, fault: Option<IdentityFault>) {
    e.sim
        .state()
        .identity()
        .lock()
        .expect("identity")
        .set_config(IdentityConfig {
            ttl_seconds,
            idp_id: IDP.into(),
            id_token: ID_TOKEN.into(),
            pod_token: POD_TOKEN.into(),
            fault,
            ..IdentityConfig::default()
        });
}

/// Creates a resource without a Secret reference, with `credentialSource` when given.
async fn create_keyless_pool(e: &E2e, name: &str, source: Option<&str>) {
    let extra = source.map_or(json!({}), |s| json!({"credentialSource": s}));
    let mut obj = e.pool_object(&e.ns, name, DEMO_NODEPOOL, "unused", extra);
    obj["spec"]
        .as_object_mut()
        .expect("spec")
        .remove("credentialsSecretRef");
    e.create_pool_object(&obj).await;
}
