//! The ModelArts client against the simulator over real loopback HTTP: paging, every
//! error class, retries, the loop guard and timeouts.

use modelarts_operator::{
    Error,
    client::{ClientOptions, ListStats, ModelArtsClient, NodePoolRef},
    credentials::Credentials,
    summary::{PoolSummary, Summarizer},
};
use modelarts_simulator::{
    CredentialSpec, Fault, FaultKind, SimData, SimHandle, SimOptions, Simulator,
    data::{
        DEMO_ACCESS_KEY, DEMO_LARGE_NODEPOOL, DEMO_NODEPOOL, DEMO_POOL, DEMO_PROJECT_ID, DEMO_SECRET_KEY,
        DEMO_TOKEN,
    },
};
#[path = "support/expected.rs"]
mod expected;

use secrecy::SecretString;
use std::time::{Duration, Instant};
use url::Url;

fn fast() -> ClientOptions {
    ClientOptions {
        backoff_base: Duration::from_millis(10),
        backoff_max: Duration::from_millis(50),
        request_timeout: Duration::from_secs(10),
        ..Default::default()
    }
}

async fn sim() -> SimHandle {
    Simulator::start(SimData::embedded_default(), SimOptions::default())
        .await
        .expect("simulator starts")
}

fn demo_creds() -> Credentials {
    Credentials::aksk(DEMO_ACCESS_KEY, DEMO_SECRET_KEY, None).unwrap()
}

fn pool(nodepool: &str) -> NodePoolRef {
    NodePoolRef {
        project_id: DEMO_PROJECT_ID.into(),
        pool_name: DEMO_POOL.into(),
        nodepool_name: nodepool.into(),
    }
}

async fn list(
    s: &SimHandle,
    opts: ClientOptions,
    creds: &Credentials,
    nodepool: &str,
    page_size: u32,
) -> Result<(PoolSummary, ListStats), Error> {
    let client = ModelArtsClient::new(opts).unwrap();
    let url = Url::parse(&s.endpoint()).unwrap();
    let mut summarizer = Summarizer::new(200);
    let stats = client
        .list_nodes(&url, creds, &pool(nodepool), page_size, |_, nodes| {
            summarizer.add_page(nodes)
        })
        .await?;
    Ok((summarizer.finish(), stats))
}

/// The expected summary, worked out from the demo data by hand (`support/expected.rs`), never
/// by the summary code under test.
fn want(nodepool: &str) -> expected::Want {
    assert_eq!(
        nodepool, DEMO_LARGE_NODEPOOL,
        "only the large pool is compared whole"
    );
    expected::large()
}

fn api_code(e: &Error) -> (u16, Option<&str>) {
    match e {
        Error::Api(a) => (a.status, a.code.as_deref()),
        other => panic!("expected an API error, got {other:?}"),
    }
}

#[tokio::test]
async fn the_seed_example_in_one_page() {
    let s = sim().await;
    let (summary, stats) = list(&s, fast(), &demo_creds(), DEMO_NODEPOOL, 500).await.unwrap();
    assert_eq!(
        stats,
        ListStats {
            pages: 1,
            nodes: 1,
            retries: 0
        }
    );
    assert_eq!(summary.capacity["cpu"], "1930m");
    assert_eq!(summary.capacity["memory"], "1912Mi");
    assert_eq!(summary.nodes[0].name, "node-dly-4");
}

#[tokio::test]
async fn pages_through_a_large_pool_with_exact_sums() {
    let s = sim().await;
    let (summary, stats) = list(&s, fast(), &demo_creds(), DEMO_LARGE_NODEPOOL, 100)
        .await
        .unwrap();
    assert_eq!((stats.pages, stats.nodes), (30, 3000));
    expected::assert_pool(&summary, &want(DEMO_LARGE_NODEPOOL), DEMO_LARGE_NODEPOOL);
    assert_eq!(s.state().stats().last_limit.as_deref(), Some("100"));
}

#[tokio::test]
async fn a_server_that_ignores_limit_is_fine() {
    let s = sim().await;
    s.state().set_faults(vec![Fault::new(FaultKind::IgnoreLimit)]);
    let (summary, stats) = list(&s, fast(), &demo_creds(), DEMO_LARGE_NODEPOOL, 100)
        .await
        .unwrap();
    assert_eq!((stats.pages, stats.nodes), (1, 3000));
    expected::assert_pool(&summary, &want(DEMO_LARGE_NODEPOOL), DEMO_LARGE_NODEPOOL);
}

#[tokio::test]
async fn bad_requests_carry_code_message_and_request_id_and_are_not_retried() {
    let s = sim().await;
    let e = list(&s, fast(), &demo_creds(), "Bad_Name", 500)
        .await
        .unwrap_err();
    assert_eq!(api_code(&e), (400, Some("ModelArts.50004000")));
    let text = e.to_string();
    assert!(
        text.starts_with("ModelArts.50004000: Bad request. invalid nodepool name (HTTP 400, request id "),
        "{text}"
    );
    let e = list(&s, fast(), &demo_creds(), "no-such-pool", 500)
        .await
        .unwrap_err();
    assert_eq!(api_code(&e), (404, Some("ModelArts.50015001")));
    assert_eq!(s.state().stats().requests, 2, "no retries on 400/404");
}

#[tokio::test]
async fn a_wrong_secret_key_is_401_once_and_never_leaks() {
    let s = sim().await;
    let bad = Credentials::aksk(DEMO_ACCESS_KEY, "wrong-secret-key-value", None).unwrap();
    let e = list(&s, fast(), &bad, DEMO_NODEPOOL, 500).await.unwrap_err();
    assert_eq!(api_code(&e), (401, Some("APIGW.0301")));
    assert_eq!(
        s.state().stats().requests,
        1,
        "no retry on 401: AK/SK lock after five failures"
    );
    let shown = format!("{e} {e:?}");
    assert!(!shown.contains("wrong-secret-key-value"), "{shown}");
}

#[tokio::test]
async fn temporary_credentials_and_tokens() {
    let s = sim().await;
    s.state().upsert_credential(
        CredentialSpec::new("TEMPAK00000000000001", "temp-sk").with_security_token("sts+/=tok"),
    );
    let temp = Credentials::aksk("TEMPAK00000000000001", "temp-sk", Some("sts+/=tok")).unwrap();
    assert!(list(&s, fast(), &temp, DEMO_NODEPOOL, 500).await.is_ok());
    let without = Credentials::aksk("TEMPAK00000000000001", "temp-sk", None).unwrap();
    assert_eq!(
        api_code(&list(&s, fast(), &without, DEMO_NODEPOOL, 500).await.unwrap_err()).0,
        401
    );
    let token = Credentials::Token(SecretString::from(DEMO_TOKEN.to_string()));
    assert!(list(&s, fast(), &token, DEMO_NODEPOOL, 500).await.is_ok());
    let bad_token = Credentials::Token(SecretString::from("not-a-token".to_string()));
    assert_eq!(
        api_code(
            &list(&s, fast(), &bad_token, DEMO_NODEPOOL, 500)
                .await
                .unwrap_err()
        )
        .0,
        401
    );
}

#[tokio::test]
async fn throttling_is_retried_honouring_retry_after() {
    let s = sim().await;
    s.state().set_faults(vec![
        Fault::new(FaultKind::Throttle { retry_after: Some(1) })
            .times(2)
            .from_page(2),
    ]);
    let started = Instant::now();
    let (summary, stats) = list(&s, fast(), &demo_creds(), DEMO_LARGE_NODEPOOL, 500)
        .await
        .unwrap();
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "waited {:?}",
        started.elapsed()
    );
    assert_eq!((stats.pages, stats.retries), (6, 2));
    expected::assert_pool(&summary, &want(DEMO_LARGE_NODEPOOL), DEMO_LARGE_NODEPOOL);
    assert_eq!(s.state().stats().by_status.get("429"), Some(&2));
}

#[tokio::test]
async fn throttling_without_retry_after_and_5xx_are_retried() {
    let s = sim().await;
    s.state().set_faults(vec![
        Fault::new(FaultKind::Throttle { retry_after: None }).times(1),
        Fault::new(FaultKind::ServerError {
            status: 503,
            retry_after: None,
        })
        .times(1),
    ]);
    let (_, stats) = list(&s, fast(), &demo_creds(), DEMO_NODEPOOL, 500).await.unwrap();
    assert_eq!(stats.retries, 2);
}

#[tokio::test]
async fn retries_are_bounded() {
    let s = sim().await;
    s.state().set_faults(vec![Fault::new(FaultKind::ServerError {
        status: 502,
        retry_after: None,
    })]);
    let opts = ClientOptions {
        max_attempts: 3,
        ..fast()
    };
    let e = list(&s, opts, &demo_creds(), DEMO_NODEPOOL, 500)
        .await
        .unwrap_err();
    assert_eq!(api_code(&e), (502, Some("APIGW.0201")));
    assert_eq!(s.state().stats().requests, 3);
    // A Retry-After longer than the client waits within a listing ends it at once,
    // carrying the hint for the caller's requeue.
    s.state().set_faults(vec![Fault::new(FaultKind::Throttle {
        retry_after: Some(11),
    })]);
    s.state().reset_stats();
    let e = list(&s, fast(), &demo_creds(), DEMO_NODEPOOL, 500)
        .await
        .unwrap_err();
    assert_eq!(e.retry_after(), Some(Duration::from_secs(11)));
    assert_eq!(s.state().stats().requests, 1);
}

#[tokio::test]
async fn malformed_and_truncated_json_are_invalid_responses() {
    let s = sim().await;
    s.state()
        .set_faults(vec![Fault::new(FaultKind::MalformedJson).times(1)]);
    let e = list(&s, fast(), &demo_creds(), DEMO_NODEPOOL, 500)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidResponse(_)), "{e:?}");
    s.state()
        .set_faults(vec![Fault::new(FaultKind::TruncatedJson).times(1)]);
    let e = list(&s, fast(), &demo_creds(), DEMO_LARGE_NODEPOOL, 500)
        .await
        .unwrap_err();
    assert!(matches!(e, Error::InvalidResponse(_)), "{e:?}");
}

#[tokio::test]
async fn a_repeating_continue_token_is_refused() {
    let s = sim().await;
    s.state().set_faults(vec![Fault::new(FaultKind::RepeatContinue)]);
    let e = list(&s, fast(), &demo_creds(), DEMO_LARGE_NODEPOOL, 100)
        .await
        .unwrap_err();
    assert!(
        e.to_string().contains("repeated an earlier continue token"),
        "{e}"
    );
    assert!(
        s.state().stats().requests <= 3,
        "stopped at once: {}",
        s.state().stats().requests
    );
}

#[tokio::test]
async fn the_page_count_is_bounded() {
    let s = sim().await;
    let opts = ClientOptions {
        max_pages: 5,
        ..fast()
    };
    let e = list(&s, opts, &demo_creds(), DEMO_LARGE_NODEPOOL, 100)
        .await
        .unwrap_err();
    assert!(e.to_string().contains("did not end after 5 pages"), "{e}");
}

#[tokio::test]
async fn slow_answers_time_out_and_are_retried_within_bounds() {
    let s = sim().await;
    s.state()
        .set_faults(vec![Fault::new(FaultKind::Latency { ms: 3000 })]);
    let opts = ClientOptions {
        request_timeout: Duration::from_millis(300),
        max_attempts: 2,
        ..fast()
    };
    let started = Instant::now();
    let e = list(&s, opts, &demo_creds(), DEMO_NODEPOOL, 500)
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Transport { reason, .. } if reason.starts_with("timed out")),
        "{e:?}"
    );
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "gave up before the server answered"
    );
}

#[tokio::test]
async fn connection_refused_is_a_transport_error() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let client = ModelArtsClient::new(ClientOptions {
        max_attempts: 2,
        ..fast()
    })
    .unwrap();
    let url = Url::parse(&format!("http://127.0.0.1:{port}")).unwrap();
    let e = client
        .list_nodes(&url, &demo_creds(), &pool(DEMO_NODEPOOL), 500, |_, _| {})
        .await
        .unwrap_err();
    assert!(
        matches!(&e, Error::Transport { reason, .. } if reason.starts_with("could not connect")),
        "{e:?}"
    );
}

#[tokio::test]
async fn node_changes_are_seen_on_the_next_listing() {
    let s = sim().await;
    let (before, _) = list(&s, fast(), &demo_creds(), DEMO_NODEPOOL, 500).await.unwrap();
    assert_eq!(before.phases.abnormal, 0);
    s.state()
        .patch_node(
            (DEMO_PROJECT_ID, DEMO_POOL, DEMO_NODEPOOL),
            "node-dly-4",
            serde_json::from_value(serde_json::json!({"phase": "Abnormal"})).unwrap(),
        )
        .unwrap();
    let (after, _) = list(&s, fast(), &demo_creds(), DEMO_NODEPOOL, 500).await.unwrap();
    assert_eq!(after.phases.abnormal, 1);
    assert_eq!(after.abnormal_nodes, vec!["node-dly-4"]);
}

#[tokio::test]
async fn node_pool_object_in_both_documented_shapes_and_the_pool_listing() {
    let s = sim().await;
    let client = ModelArtsClient::new(fast()).unwrap();
    let url = Url::parse(&s.endpoint()).unwrap();
    // By default a node pool wants exactly what it has: gpu-a100 has 4 nodes, node 4
    // Abnormal (support/expected.rs).
    let np = client
        .show_node_pool(&url, &demo_creds(), &pool("gpu-a100"))
        .await
        .unwrap();
    assert_eq!(np.spec.resources.count, Some(4));
    assert_eq!(
        np.spec.resources.flavor.as_deref(),
        Some("modelarts.bm.gpu.a100.8")
    );
    assert_eq!((np.status.available, np.status.abnormal), (Some(3), Some(1)));
    assert_eq!(np.status.creation_failed, None);

    // Scaling set through the control API, served first as objects, then as arrays.
    let control = format!(
        "{}/_sim/nodepools/{DEMO_PROJECT_ID}/{DEMO_POOL}/gpu-a100/scaling",
        s.endpoint()
    );
    let http = reqwest::Client::new();
    for arrays in [false, true] {
        let body = serde_json::json!({
            "desired": 8, "maxCount": 12, "creationFailed": 2,
            "azs": {"cn-north-4a": 5, "cn-north-4b": 3}, "statusAsArrays": arrays
        });
        let resp = http.put(&control).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 204);
        let np = client
            .show_node_pool(&url, &demo_creds(), &pool("gpu-a100"))
            .await
            .unwrap();
        assert_eq!(
            (np.spec.resources.count, np.spec.resources.max_count),
            (Some(8), Some(12)),
            "arrays={arrays}"
        );
        let azs: Vec<(String, i64)> = np
            .spec
            .resources
            .azs
            .iter()
            .map(|a| (a.az.clone(), a.count))
            .collect();
        assert_eq!(
            azs,
            [("cn-north-4a".to_string(), 5), ("cn-north-4b".to_string(), 3)]
        );
        assert_eq!(
            (np.status.available, np.status.creation_failed),
            (Some(3), Some(2)),
            "arrays={arrays}"
        );
    }
    let bad = http
        .put(&control)
        .json(&serde_json::json!({"desird": 8}))
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 400, "a typo in the control body is refused");
    assert!(bad.text().await.unwrap().contains("desird"));

    let pools = client
        .list_node_pools(&url, &demo_creds(), DEMO_PROJECT_ID, DEMO_POOL)
        .await
        .unwrap();
    let names: Vec<&str> = pools.iter().map(|p| p.metadata.name.as_str()).collect();
    assert!(
        names.contains(&"gpu-a100") && names.contains(&DEMO_NODEPOOL),
        "{names:?}"
    );
    let gpu = pools.iter().find(|p| p.metadata.name == "gpu-a100").unwrap();
    assert_eq!(gpu.spec.resources.count, Some(8));
    s.shutdown().await;
}
