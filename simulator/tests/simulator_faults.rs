//! Real HTTP against a simulator on loopback: faults, the /_sim control API and the binary.

mod simulator_common;

use modelarts_operator::wire::{NodeList, NodePhase};
use modelarts_simulator::{DEMO_LARGE_NODEPOOL, DEMO_NODEPOOL, DEMO_POOL, DEMO_PROJECT_ID};
use serde_json::{Value, json};
use simulator_common::*;
use std::time::Duration;

#[tokio::test]
async fn throttle_with_retry_after_then_recovers() {
    let sim = start().await;
    let spec = json!({"faults": [{"type": "throttle", "retryAfter": 3, "times": 1}]});
    assert_eq!(
        control(&sim, reqwest::Method::PUT, "/_sim/faults", Some(spec))
            .await
            .status(),
        200
    );
    let resp = get(&sim, &demo_creds(), &nodes_path(DEMO_NODEPOOL), &[]).await;
    assert_eq!(
        resp.headers().get("retry-after").and_then(|v| v.to_str().ok()),
        Some("3")
    );
    let (id, body) = error_body(resp, 429).await;
    assert_eq!(body["error_code"], "APIGW.0308");
    assert_eq!(body["request_id"], id.as_str());
    assert!(
        body["error_msg"]
            .as_str()
            .unwrap()
            .starts_with("The throttling threshold has been reached")
    );
    assert_eq!(
        get(&sim, &demo_creds(), &nodes_path(DEMO_NODEPOOL), &[])
            .await
            .status(),
        200
    );
    let faults: Value = control(&sim, reqwest::Method::GET, "/_sim/faults", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(faults, json!({"faults": []}));
    let bad = json!({"faults": [{"type": "serverError", "status": 418}]});
    let resp = control(&sim, reqwest::Method::PUT, "/_sim/faults", Some(bad)).await;
    assert_eq!(resp.status(), 400);
    assert!(resp.text().await.unwrap().contains("418"));
}

#[tokio::test]
async fn truncated_json_on_page_two_only() {
    let sim = start().await;
    let spec = json!({"faults": [{"type": "truncatedJson", "fromPage": 2, "times": 1}]});
    control(&sim, reqwest::Method::PUT, "/_sim/faults", Some(spec)).await;
    let path = nodes_path(DEMO_LARGE_NODEPOOL);
    let first: NodeList = get(&sim, &demo_creds(), &path, &[("limit", "100")])
        .await
        .json()
        .await
        .unwrap();
    let token = first.metadata.next_token().unwrap().to_string();
    let resp = get(
        &sim,
        &demo_creds(),
        &path,
        &[("limit", "100"), ("continue", &token)],
    )
    .await;
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(
        serde_json::from_str::<NodeList>(&text).is_err(),
        "truncated: {}",
        &text[text.len().saturating_sub(40)..]
    );
    let again: NodeList = get(
        &sim,
        &demo_creds(),
        &path,
        &[("limit", "100"), ("continue", &token)],
    )
    .await
    .json()
    .await
    .unwrap();
    assert_eq!(again.items[0].metadata.name, "node-large-0101");
}

#[tokio::test]
async fn node_patch_is_visible_on_the_next_list() {
    let sim = start().await;
    let node_url = format!("/_sim/nodes/{DEMO_PROJECT_ID}/{DEMO_POOL}/{DEMO_NODEPOOL}/node-dly-4");
    let patch = json!({"phase": "Abnormal", "availableResources": {"cpu": "0"}});
    assert_eq!(
        control(&sim, reqwest::Method::PATCH, &node_url, Some(patch))
            .await
            .status(),
        200
    );
    let list: NodeList = get(&sim, &demo_creds(), &nodes_path(DEMO_NODEPOOL), &[])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(list.items[0].status.phase, NodePhase::Abnormal);
    assert_eq!(
        list.items[0]
            .status
            .available_resources
            .get("cpu")
            .map(String::as_str),
        Some("0")
    );
    let missing = format!("/_sim/nodes/{DEMO_PROJECT_ID}/{DEMO_POOL}/{DEMO_NODEPOOL}/ghost");
    assert_eq!(
        control(
            &sim,
            reqwest::Method::PATCH,
            &missing,
            Some(json!({"phase": "Available"}))
        )
        .await
        .status(),
        404
    );
    assert_eq!(
        control(
            &sim,
            reqwest::Method::PATCH,
            &node_url,
            Some(json!({"phaze": "x"}))
        )
        .await
        .status(),
        400
    );
    let new_node =
        json!({"metadata": {"name": "node-dly-5"}, "spec": {"flavor": "f"}, "status": {"phase": "Creating"}});
    let new_url = format!("/_sim/nodes/{DEMO_PROJECT_ID}/{DEMO_POOL}/{DEMO_NODEPOOL}/node-dly-5");
    assert_eq!(
        control(&sim, reqwest::Method::PUT, &new_url, Some(new_node))
            .await
            .status(),
        201
    );
    assert_eq!(
        control(&sim, reqwest::Method::DELETE, &node_url, None)
            .await
            .status(),
        204
    );
    let list: NodeList = get(&sim, &demo_creds(), &nodes_path(DEMO_NODEPOOL), &[])
        .await
        .json()
        .await
        .unwrap();
    let names: Vec<_> = list.items.iter().map(|n| n.metadata.name.as_str()).collect();
    assert_eq!(names, ["node-dly-5"]);
}

#[tokio::test]
async fn stats_reset_and_health() {
    let sim = start().await;
    let health: Value = control(&sim, reqwest::Method::GET, "/_sim/health", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(health["status"], "ok");
    get(&sim, &demo_creds(), &nodes_path(DEMO_NODEPOOL), &[("limit", "7")]).await;
    let stats: Value = control(&sim, reqwest::Method::GET, "/_sim/stats", None)
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        (stats["requests"].as_u64(), stats["lastLimit"].as_str()),
        (Some(1), Some("7"))
    );
    assert_eq!(stats["recent"][0]["status"], 200);
    assert_eq!(
        control(&sim, reqwest::Method::POST, "/_sim/stats/reset", None)
            .await
            .status(),
        204
    );
    assert_eq!(sim.state().stats().requests, 0);
}

#[tokio::test]
async fn the_binary_announces_its_port_and_stops_on_sigterm() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_modelarts-simulator"))
        .args(["--port", "0", "--data", "../examples/simulator-data.yaml"])
        .args([
            "--generate",
            &format!("p1/{DEMO_POOL}/extra=42"),
            "--fault",
            "throttle:times=1",
        ])
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(20),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .unwrap()
    .unwrap();
    let endpoint = line
        .trim()
        .strip_prefix("simulator listening on ")
        .expect("announcement")
        .to_string();
    assert!(endpoint.starts_with("http://127.0.0.1:"), "{endpoint}");
    let health = reqwest::get(format!("{endpoint}/_sim/health")).await.unwrap();
    assert_eq!(health.status(), 200);
    let nodes: Value = reqwest::get(format!("{endpoint}/_sim/nodes/p1/{DEMO_POOL}/extra"))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(nodes.as_array().map(Vec::len), Some(42));
    // The data file replaced the demo data; the --fault throttles the first node list.
    let url = format!(
        "{endpoint}/v2/{DEMO_PROJECT_ID}/pools/pool-example-0000-1111-2222-333344445555/nodepools/train-gpu/nodes"
    );
    let first = reqwest::Client::new()
        .get(&url)
        .header("X-Auth-Token", "example-iam-token")
        .send()
        .await
        .unwrap();
    assert_eq!(first.status(), 429, "{:?}", first.text().await);
    let list: NodeList = reqwest::Client::new()
        .get(&url)
        .header("X-Auth-Token", "example-iam-token")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list.items.len(), 500);
    let pid = child.id().unwrap().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-TERM", &pid])
            .status()
            .unwrap()
            .success()
    );
    let status = tokio::time::timeout(Duration::from_secs(10), child.wait())
        .await
        .unwrap()
        .unwrap();
    assert!(status.success(), "{status:?}");
}

#[tokio::test]
async fn list_modifiers_malformed_json_and_gateway_errors() {
    let sim = start().await;
    let path = nodes_path(DEMO_LARGE_NODEPOOL);
    let set = |faults: Value| sim.state().set_faults(serde_json::from_value(faults).unwrap());

    set(json!([{"type": "repeatContinue"}]));
    let p1: NodeList = get(&sim, &demo_creds(), &path, &[("limit", "10")])
        .await
        .json()
        .await
        .unwrap();
    let tok = p1.metadata.next_token().unwrap().to_string();
    let p2: NodeList = get(&sim, &demo_creds(), &path, &[("limit", "10"), ("continue", &tok)])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(
        p2.metadata.next_token(),
        Some(tok.as_str()),
        "the same token again"
    );

    set(json!([{"type": "ignoreLimit", "times": 1}]));
    let all: NodeList = get(&sim, &demo_creds(), &path, &[("limit", "10")])
        .await
        .json()
        .await
        .unwrap();
    assert_eq!((all.items.len(), all.metadata.next_token()), (3000, None));

    set(json!([{"type": "malformedJson", "times": 1}]));
    let resp = get(&sim, &demo_creds(), &path, &[]).await;
    assert_eq!(resp.status(), 200);
    assert!(serde_json::from_str::<Value>(&resp.text().await.unwrap()).is_err());

    for (status, code) in [
        (500, "ModelArts.0010"),
        (502, "APIGW.0201"),
        (503, "APIGW.0613"),
        (504, "APIGW.0201"),
    ] {
        set(json!([{"type": "serverError", "status": status, "retryAfter": 1, "times": 1}]));
        let resp = get(&sim, &demo_creds(), &path, &[]).await;
        assert_eq!(
            resp.headers().get("retry-after").and_then(|v| v.to_str().ok()),
            Some("1")
        );
        let (_, body) = error_body(resp, status).await;
        assert_eq!(body["error_code"], code);
    }

    // Latency, and allRoutes reaching the pool routes.
    set(json!([{"type": "latency", "ms": 300, "times": 1, "allRoutes": true}]));
    let started = std::time::Instant::now();
    let pool_path = format!("/v2/{DEMO_PROJECT_ID}/pools/{DEMO_POOL}");
    assert_eq!(get(&sim, &demo_creds(), &pool_path, &[]).await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert!(sim.state().faults().is_empty());
}

#[tokio::test]
async fn the_binary_serves_https_from_a_generated_ca_it_writes_out() {
    use tokio::io::{AsyncBufReadExt, BufReader};
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_modelarts-simulator"))
        .args(["--port", "0", "--tls-generate"])
        .arg(dir.path())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut line = String::new();
    tokio::time::timeout(
        Duration::from_secs(20),
        BufReader::new(stdout).read_line(&mut line),
    )
    .await
    .unwrap()
    .unwrap();
    let endpoint = line
        .trim()
        .strip_prefix("simulator listening on ")
        .expect("announcement")
        .to_string();
    assert!(endpoint.starts_with("https://127.0.0.1:"), "{endpoint}");
    for f in ["ca.pem", "server.pem", "server-key.pem"] {
        assert!(dir.path().join(f).is_file(), "{f} written");
    }
    let ca = reqwest::Certificate::from_pem(&std::fs::read(dir.path().join("ca.pem")).unwrap()).unwrap();
    let trusting = reqwest::Client::builder()
        .tls_built_in_root_certs(false)
        .add_root_certificate(ca)
        .build()
        .unwrap();
    let health = trusting
        .get(format!("{endpoint}/_sim/health"))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    // Without the CA the handshake is refused; over plain http the TLS port answers nothing usable.
    assert!(reqwest::get(format!("{endpoint}/_sim/health")).await.is_err());
    let plain = endpoint.replacen("https://", "http://", 1);
    assert!(
        reqwest::get(format!("{plain}/_sim/health"))
            .await
            .map(|r| r.status() != 200)
            .unwrap_or(true)
    );
    child.kill().await.unwrap();
}
