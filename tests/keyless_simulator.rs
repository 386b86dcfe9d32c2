//! The keyless sources against the simulator's identity endpoints (plain http on loopback):
//! faults, expiry enforced by the ModelArts API, metadata without session tokens, and the
//! cache's single flight.

use modelarts_operator::client::{ClientOptions, ModelArtsClient, NodePoolRef};
use modelarts_operator::credential_cache::CachedSource;
use modelarts_operator::keyless::{Source, exchange};
use modelarts_operator::metrics::Metrics;
use modelarts_operator::{ApiError, Error};
use modelarts_simulator::identity::{IdentityConfig, IdentityFault, POD_IDENTITY_PATH};
use modelarts_simulator::{
    DEMO_NODEPOOL, DEMO_POOL, DEMO_PROJECT_ID, SimData, SimHandle, SimOptions, Simulator,
};
use std::sync::Arc;
use url::Url;

const TOKEN: &str = "eyJhbGciOiJSUzI1NiJ9.keyless-sim.sig";

async fn sim(config: IdentityConfig) -> SimHandle {
    let s = Simulator::start(SimData::embedded_default(), SimOptions::default())
        .await
        .expect("simulator");
    s.state().identity().lock().expect("identity").set_config(config);
    s
}

fn pod_identity(s: &SimHandle, dir: &tempfile::TempDir) -> Source {
    let file = dir.path().join("token");
    std::fs::write(&file, TOKEN).expect("token file");
    Source::PodIdentity {
        uri: format!("{}{POD_IDENTITY_PATH}", s.endpoint()),
        token_file: file,
    }
}

fn config(fault: Option<IdentityFault>) -> IdentityConfig {
    IdentityConfig {
        pod_token: TOKEN.into(),
        fault,
        ..IdentityConfig::default()
    }
}

async fn list(s: &SimHandle, creds: &modelarts_operator::credentials::Credentials) -> Result<usize, Error> {
    let client = ModelArtsClient::new(ClientOptions {
        max_attempts: 1,
        ..Default::default()
    })
    .expect("client");
    let pool = NodePoolRef {
        project_id: DEMO_PROJECT_ID.into(),
        pool_name: DEMO_POOL.into(),
        nodepool_name: DEMO_NODEPOOL.into(),
    };
    let url = Url::parse(&s.endpoint()).expect("url");
    client
        .list_nodes(&url, creds, &pool, 500, |_, _| {})
        .await
        .map(|st| st.nodes)
}

#[tokio::test]
async fn issued_credentials_work_until_they_expire() {
    let s = sim(config(None)).await;
    let dir = tempfile::tempdir().expect("dir");
    let http = reqwest::Client::new();
    let issued = exchange(&pod_identity(&s, &dir), &http).await.expect("exchange");
    assert_eq!(list(&s, &issued.credentials).await.expect("listing"), 1);

    s.state()
        .identity()
        .lock()
        .expect("identity")
        .set_config(config(Some(IdentityFault::Expired)));
    let expired = exchange(&pod_identity(&s, &dir), &http).await.expect("exchange");
    assert!(expired.expires_at.expect("expiry") < jiff::Timestamp::now());
    match list(&s, &expired.credentials).await {
        Err(Error::Api(ApiError {
            status: 401, message, ..
        })) => {
            assert!(message.unwrap_or_default().contains("expired"))
        }
        other => panic!("expired credentials were not refused: {other:?}"),
    }
}

#[tokio::test]
async fn exchange_faults_name_the_source_and_status() {
    let dir = tempfile::tempdir().expect("dir");
    let http = reqwest::Client::new();
    for (fault, want) in [
        (IdentityFault::Unavailable, "HTTP 500"),
        (IdentityFault::Unauthorized, "HTTP 401"),
    ] {
        let s = sim(config(Some(fault))).await;
        let e = exchange(&pod_identity(&s, &dir), &http).await.expect_err("fault");
        let text = e.to_string();
        assert!(text.contains("PodIdentity") && text.contains(want), "{text}");
        assert!(!text.contains(TOKEN), "{text}");
    }
    // Slower than the 5 s exchange timeout.
    let s = sim(config(Some(IdentityFault::SlowMs(6_000)))).await;
    let e = exchange(&pod_identity(&s, &dir), &http).await.expect_err("slow");
    assert!(e.to_string().contains("timed out"), "{e}");
}

#[tokio::test]
async fn metadata_works_with_and_without_session_tokens() {
    for session in [true, false] {
        let s = sim(IdentityConfig {
            metadata_session_tokens: session,
            ..IdentityConfig::default()
        })
        .await;
        let source = Source::Metadata { base: s.endpoint() };
        let issued = exchange(&source, &reqwest::Client::new())
            .await
            .expect("metadata");
        assert_eq!(
            list(&s, &issued.credentials).await.expect("listing"),
            1,
            "session tokens {session}"
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn a_hundred_callers_at_once_cause_one_exchange() {
    let s = sim(config(Some(IdentityFault::SlowMs(300)))).await;
    let dir = tempfile::tempdir().expect("dir");
    let cache = Arc::new(CachedSource::new(
        pod_identity(&s, &dir),
        reqwest::Client::new(),
        Arc::new(Metrics::default()),
    ));
    let calls: Vec<_> = (0..100)
        .map(|_| {
            let c = cache.clone();
            tokio::spawn(async move { c.get().await })
        })
        .collect();
    for c in calls {
        c.await.expect("task").expect("credentials");
    }
    let ex = s.state().identity().lock().expect("identity").exchanges();
    assert_eq!(ex.get("podIdentity"), Some(&1), "{ex:?}");
}
