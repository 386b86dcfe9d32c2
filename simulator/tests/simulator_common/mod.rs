//! Helpers shared by the simulator HTTP tests: start a simulator, sign requests like the client.

// Each test crate uses a different subset of these helpers.
#![allow(dead_code)]

use modelarts_operator::credentials::Credentials;
use modelarts_operator::signer;
use modelarts_simulator::{
    DEMO_ACCESS_KEY, DEMO_POOL, DEMO_PROJECT_ID, DEMO_SECRET_KEY, SimData, SimHandle, SimOptions, Simulator,
};
use serde_json::Value;

pub fn nodes_path(nodepool: &str) -> String {
    format!("/v2/{DEMO_PROJECT_ID}/pools/{DEMO_POOL}/nodepools/{nodepool}/nodes")
}

pub async fn start() -> SimHandle {
    Simulator::start(SimData::embedded_default(), SimOptions::default())
        .await
        .expect("simulator starts")
}

pub fn demo_creds() -> Credentials {
    Credentials::aksk(DEMO_ACCESS_KEY, DEMO_SECRET_KEY, None).unwrap()
}

/// A GET signed exactly as the operator's client signs it.
pub async fn get(
    sim: &SimHandle,
    creds: &Credentials,
    path: &str,
    query: &[(&str, &str)],
) -> reqwest::Response {
    let q = signer::canonical_query(query);
    let host = sim.addr().to_string();
    let url = if q.is_empty() {
        format!("{}{path}", sim.endpoint())
    } else {
        format!("{}{path}?{q}", sim.endpoint())
    };
    let mut req = reqwest::Client::new().get(url);
    for (k, v) in creds.auth_headers("GET", &host, path, &q, DEMO_PROJECT_ID, jiff::Timestamp::now()) {
        req = req.header(k, v);
    }
    req.send().await.unwrap()
}

pub async fn control(
    sim: &SimHandle,
    method: reqwest::Method,
    path: &str,
    body: Option<Value>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new().request(method, format!("{}{path}", sim.endpoint()));
    if let Some(b) = body {
        req = req.json(&b);
    }
    req.send().await.unwrap()
}

pub fn request_id(resp: &reqwest::Response) -> String {
    let id = resp
        .headers()
        .get("x-request-id")
        .expect("X-Request-Id")
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        id.len() == 32 && id.bytes().all(|b| b.is_ascii_hexdigit()),
        "{id}"
    );
    id
}

pub async fn error_body(resp: reqwest::Response, status: u16) -> (String, Value) {
    assert_eq!(resp.status().as_u16(), status);
    let id = request_id(&resp);
    (id, resp.json::<Value>().await.unwrap())
}
