//! Real HTTP against a simulator on loopback: paging, authentication and ModelArts errors.

mod simulator_common;

use modelarts_operator::credentials::Credentials;
use modelarts_operator::signer;
use modelarts_operator::wire::NodeList;
use modelarts_simulator::{
    DEMO_ACCESS_KEY, DEMO_LARGE_COUNT, DEMO_LARGE_NODEPOOL, DEMO_NODEPOOL, DEMO_POOL, DEMO_PROJECT_ID,
    DEMO_SECRET_KEY, DEMO_TOKEN, Lockout, SimData, SimOptions, Simulator,
};
use serde_json::{Value, json};
use simulator_common::*;
use std::collections::BTreeSet;
use std::time::Duration;

#[tokio::test]
async fn pages_through_the_large_pool_with_aksk_and_with_a_token() {
    let sim = start().await;
    let token = Credentials::Token(DEMO_TOKEN.to_string().into());
    for creds in [demo_creds(), token] {
        let mut names = BTreeSet::new();
        let mut token: Option<String> = None;
        let mut pages = 0;
        loop {
            let mut q = vec![("limit", "500")];
            if let Some(t) = &token {
                q.push(("continue", t));
            }
            let resp = get(&sim, &creds, &nodes_path(DEMO_LARGE_NODEPOOL), &q).await;
            assert_eq!(resp.status(), 200, "{:?}", resp.text().await);
            let page: NodeList = resp.json().await.unwrap();
            pages += 1;
            names.extend(page.items.iter().map(|n| n.metadata.name.clone()));
            match page.metadata.next_token() {
                Some(t) => {
                    assert!(t.ends_with('='), "padded token {t}");
                    assert_eq!(
                        page.metadata.remaining_item_count,
                        Some((DEMO_LARGE_COUNT - names.len()) as i64)
                    );
                    token = Some(t.to_string());
                }
                None => break,
            }
        }
        assert_eq!((pages, names.len()), (6, DEMO_LARGE_COUNT));
    }
    let stats = sim.state().stats();
    assert_eq!(stats.requests, 12);
    assert_eq!(stats.by_status.get("200"), Some(&12));
    assert_eq!(stats.last_limit.as_deref(), Some("500"));
    assert!(
        stats.recent.iter().any(|r| r.query.contains("%3D")),
        "continue sent percent-encoded"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn seed_node_is_served_as_documented() {
    let sim = start().await;
    let resp = get(&sim, &demo_creds(), &nodes_path(DEMO_NODEPOOL), &[]).await;
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["kind"], "NodeList");
    assert_eq!(body["metadata"], json!({}));
    let node = &body["items"][0];
    assert_eq!(body["items"].as_array().map(Vec::len), Some(1));
    assert_eq!(node["metadata"]["name"], "node-dly-4");
    assert_eq!(
        node["spec"]["hostNetwork"]["vpc"],
        "277e9abc-0e6b-431a-9232-cfd25d5fc566"
    );
    assert_eq!(
        node["status"]["resources"],
        json!({"cpu": "1930m", "memory": "1912Mi"})
    );
    let pools: Value = get(&sim, &demo_creds(), &format!("/v2/{DEMO_PROJECT_ID}/pools"), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(pools["items"][0]["metadata"]["name"], DEMO_POOL);
    let np_path = format!("/v2/{DEMO_PROJECT_ID}/pools/{DEMO_POOL}/nodepools/gpu-a100");
    let np: Value = get(&sim, &demo_creds(), &np_path, &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(np["spec"]["resources"]["count"], 4);
}

#[tokio::test]
async fn authentication_failures_answer_401_apigw_0301_with_request_id() {
    let sim = start().await;
    let url = format!("{}{}", sim.endpoint(), nodes_path(DEMO_NODEPOOL));
    let (id, body) = error_body(reqwest::get(&url).await.unwrap(), 401).await;
    assert_eq!(body["error_code"], "APIGW.0301");
    assert_eq!(
        body["error_msg"],
        "Incorrect IAM authentication information: x-auth-token not found"
    );
    assert_eq!(body["request_id"], id.as_str());

    let bad_token = Credentials::Token("nope".to_string().into());
    let (_, body) = error_body(get(&sim, &bad_token, &nodes_path(DEMO_NODEPOOL), &[]).await, 401).await;
    assert_eq!(
        body["error_msg"],
        "Incorrect IAM authentication information: decrypt token fail"
    );

    let wrong_sk = Credentials::aksk(DEMO_ACCESS_KEY, "wrong-secret", None).unwrap();
    let (_, body) = error_body(get(&sim, &wrong_sk, &nodes_path(DEMO_NODEPOOL), &[]).await, 401).await;
    assert_eq!(
        body["error_msg"],
        "Incorrect IAM authentication information: verify aksk signature fail"
    );

    let unknown = Credentials::aksk("UNKNOWNAK0000000", DEMO_SECRET_KEY, None).unwrap();
    let (_, body) = error_body(get(&sim, &unknown, &nodes_path(DEMO_NODEPOOL), &[]).await, 401).await;
    assert_eq!(
        body["error_msg"],
        "Incorrect IAM authentication information: ak not found"
    );

    // Signed for one query, sent with another: the server re-canonicalizes and notices.
    let q = signer::canonical_query(&[("limit", "10")]);
    let path = nodes_path(DEMO_NODEPOOL);
    let headers = demo_creds().auth_headers(
        "GET",
        &sim.addr().to_string(),
        &path,
        &q,
        DEMO_PROJECT_ID,
        jiff::Timestamp::now(),
    );
    let mut req = reqwest::Client::new().get(format!("{}{path}?limit=11", sim.endpoint()));
    for (k, v) in headers {
        req = req.header(k, v);
    }
    assert_eq!(req.send().await.unwrap().status(), 401);
    assert_eq!(sim.state().stats().auth_failures, 5);
}

#[tokio::test]
async fn ak_locks_after_five_failures_and_unlocks_on_control_call() {
    let opts = SimOptions {
        lockout: Some(Lockout {
            failures: 5,
            duration: Duration::from_secs(300),
        }),
        ..Default::default()
    };
    let sim = Simulator::start(SimData::embedded_default(), opts).await.unwrap();
    let wrong = Credentials::aksk(DEMO_ACCESS_KEY, "wrong-secret", None).unwrap();
    for _ in 0..5 {
        assert_eq!(
            get(&sim, &wrong, &nodes_path(DEMO_NODEPOOL), &[]).await.status(),
            401
        );
    }
    let (_, body) = error_body(
        get(&sim, &demo_creds(), &nodes_path(DEMO_NODEPOOL), &[]).await,
        401,
    )
    .await;
    assert_eq!(
        body["error_msg"],
        "Incorrect IAM authentication information: ak locked"
    );
    assert_eq!(
        control(&sim, reqwest::Method::DELETE, "/_sim/lockouts", None)
            .await
            .status(),
        204
    );
    assert_eq!(
        get(&sim, &demo_creds(), &nodes_path(DEMO_NODEPOOL), &[])
            .await
            .status(),
        200
    );
}

#[tokio::test]
async fn modelarts_errors_for_bad_names_limits_tokens_and_routes() {
    let sim = start().await;
    let c = demo_creds();
    let check = |code: &'static str, msg: String| {
        move |body: Value| {
            assert_eq!(
                (body["error_code"].as_str(), body["error_msg"].as_str()),
                (Some(code), Some(msg.as_str()))
            );
        }
    };
    let (_, b) = error_body(
        get(&sim, &c, &nodes_path(DEMO_NODEPOOL), &[("limit", "abc")]).await,
        400,
    )
    .await;
    check("ModelArts.50004000", "Bad request. invalid limit".into())(b);
    let (_, b) = error_body(
        get(&sim, &c, &nodes_path(DEMO_NODEPOOL), &[("continue", "garbage==")]).await,
        400,
    )
    .await;
    check("ModelArts.50004000", "Bad request. invalid continue".into())(b);
    let (_, b) = error_body(get(&sim, &c, &nodes_path("Bad_Name"), &[]).await, 400).await;
    check("ModelArts.50004000", "Bad request. invalid nodepool name".into())(b);
    let (_, b) = error_body(get(&sim, &c, &nodes_path("no-such-np"), &[]).await, 404).await;
    check("ModelArts.50015001", "Nodepool no-such-np not found.".into())(b);
    let other_pool =
        format!("/v2/{DEMO_PROJECT_ID}/pools/pool-missing-0000000000000000000000000000/nodepools/np/nodes");
    let (_, b) = error_body(get(&sim, &c, &other_pool, &[]).await, 404).await;
    check(
        "ModelArts.50015001",
        "Pool pool-missing-0000000000000000000000000000 not found.".into(),
    )(b);
    let (_, b) = error_body(
        get(&sim, &c, &format!("/v2/{DEMO_PROJECT_ID}/jobs"), &[]).await,
        404,
    )
    .await;
    assert_eq!(b["error_code"], "APIGW.0101");
    // A signed X-Project-Id for another project than the URL's.
    let path =
        format!("/v2/ffffffffffffffffffffffffffffffff/pools/{DEMO_POOL}/nodepools/{DEMO_NODEPOOL}/nodes");
    let (_, b) = error_body(get(&sim, &c, &path, &[]).await, 403).await;
    assert_eq!(b["error_code"], "ModelArts.0210");
    // limit above 500 is capped.
    let page: NodeList = get(&sim, &c, &nodes_path(DEMO_LARGE_NODEPOOL), &[("limit", "9999")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(page.items.len(), 500);
}

#[tokio::test]
async fn credential_rotation_through_the_control_api() {
    let sim = start().await;
    let new_creds = Credentials::aksk("ROTATEDAK000000000001", "rotated-secret", Some("sts-token")).unwrap();
    assert_eq!(
        get(&sim, &new_creds, &nodes_path(DEMO_NODEPOOL), &[])
            .await
            .status(),
        401
    );
    let body = json!({"accessKey": "ROTATEDAK000000000001", "secretKey": "rotated-secret", "securityToken": "sts-token"});
    assert_eq!(
        control(&sim, reqwest::Method::POST, "/_sim/credentials", Some(body))
            .await
            .status(),
        204
    );
    assert_eq!(
        get(&sim, &new_creds, &nodes_path(DEMO_NODEPOOL), &[])
            .await
            .status(),
        200
    );
    let path = format!("/_sim/credentials/{DEMO_ACCESS_KEY}");
    assert_eq!(
        control(&sim, reqwest::Method::DELETE, &path, None).await.status(),
        204
    );
    let (_, b) = error_body(
        get(&sim, &demo_creds(), &nodes_path(DEMO_NODEPOOL), &[]).await,
        401,
    )
    .await;
    assert_eq!(
        b["error_msg"],
        "Incorrect IAM authentication information: ak not found"
    );
    let resp = control(
        &sim,
        reqwest::Method::POST,
        "/_sim/credentials",
        Some(json!({"secretKey": 12345})),
    )
    .await;
    assert_eq!(resp.status(), 400);
    assert!(
        !resp.text().await.unwrap().contains("12345"),
        "secrets are not echoed"
    );
    let tok = Credentials::Token("rotated-token".to_string().into());
    control(
        &sim,
        reqwest::Method::POST,
        "/_sim/credentials",
        Some(json!({"token": "rotated-token"})),
    )
    .await;
    assert_eq!(
        get(&sim, &tok, &nodes_path(DEMO_NODEPOOL), &[]).await.status(),
        200
    );
}
