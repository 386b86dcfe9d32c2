//! `inspect` gets credentials the way the operator's Pod would: with no AK/SK in the
//! environment it follows the SDK chain to the (simulated) Pod Identity endpoint.

use modelarts_simulator::identity::{IdentityConfig, POD_IDENTITY_PATH};
use modelarts_simulator::{DEMO_NODEPOOL, DEMO_POOL, DEMO_PROJECT_ID, SimData, SimOptions, Simulator};
use std::process::Command;

fn inspect(endpoint: &str, env: &[(&str, String)]) -> std::process::Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_modelarts-operator"));
    cmd.args([
        "inspect",
        "--project-id",
        DEMO_PROJECT_ID,
        "--pool",
        DEMO_POOL,
        "--nodepool",
        DEMO_NODEPOOL,
    ])
    .args(["--endpoint", endpoint, "--allow-http", "-o", "json"])
    .env_clear()
    .env("NO_PROXY", "127.0.0.1");
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd.output().expect("inspect runs")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn inspect_follows_the_sdk_chain_to_pod_identity() {
    let sim = Simulator::start(SimData::embedded_default(), SimOptions::default())
        .await
        .expect("simulator");
    let token = "eyJhbGciOiJSUzI1NiJ9.inspect.sig";
    sim.state()
        .identity()
        .lock()
        .expect("identity")
        .set_config(IdentityConfig {
            pod_token: token.into(),
            ..IdentityConfig::default()
        });
    let dir = tempfile::tempdir().expect("temp dir");
    let file = dir.path().join("token");
    std::fs::write(&file, token).expect("token file");
    let endpoint = sim.endpoint();
    let env = [
        (
            "HC_CONTAINER_CREDENTIALS_FULL_URI",
            format!("{endpoint}{POD_IDENTITY_PATH}"),
        ),
        (
            "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE",
            file.display().to_string(),
        ),
    ];
    let out = inspect(&endpoint, &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "inspect failed: {stderr}");
    assert!(stderr.contains("from PodIdentity"), "{stderr}");
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(status["nodeCount"], 1, "the demo node pool has one node");

    // A wrong token: the error names what was tried and why, and never the token.
    std::fs::write(&file, "wrong-token-value").expect("token file");
    let out = inspect(&endpoint, &env);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(
        stderr.contains("PodIdentity") && stderr.contains("HTTP 401"),
        "{stderr}"
    );
    assert!(
        stderr.contains("HUAWEICLOUD_SDK_AK"),
        "the environment was tried too: {stderr}"
    );
    assert!(!stderr.contains("wrong-token-value"), "{stderr}");
}
