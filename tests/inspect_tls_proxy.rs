//! `modelarts-operator inspect` over HTTPS: the private CA through `--ca-file`, a refused
//! certificate's message, and `HTTPS_PROXY`/`NO_PROXY` through a real CONNECT proxy on
//! loopback that counts the tunnels it opens.

use modelarts_simulator::{
    ConnectProxy, SimData, SimHandle, SimOptions, Simulator, TestCa, Validity,
    data::{DEMO_ACCESS_KEY, DEMO_NODEPOOL, DEMO_POOL, DEMO_PROJECT_ID, DEMO_SECRET_KEY},
};
use std::path::{Path, PathBuf};
use std::process::Output;

struct World {
    sim: SimHandle,
    ca_file: PathBuf,
    _dir: tempfile::TempDir,
}

async fn world() -> World {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::generate("inspect test CA").unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca.pem()).unwrap();
    let cert = ca.issue(&["127.0.0.1".into()], Validity::Current).unwrap();
    let sim = Simulator::start(
        SimData::embedded_default(),
        SimOptions {
            tls: Some(cert),
            ..Default::default()
        },
    )
    .await
    .unwrap();
    World {
        sim,
        ca_file,
        _dir: dir,
    }
}

/// Runs inspect with a clean proxy environment plus `env`.
async fn inspect(endpoint: &str, ca_file: Option<&Path>, env: &[(&str, &str)]) -> Output {
    inspect_with(endpoint, ca_file, &[], env).await
}

async fn inspect_with(
    endpoint: &str,
    ca_file: Option<&Path>,
    extra: &[&str],
    env: &[(&str, &str)],
) -> Output {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_modelarts-operator"));
    cmd.args([
        "inspect",
        "--endpoint",
        endpoint,
        "--project-id",
        DEMO_PROJECT_ID,
        "--pool",
        DEMO_POOL,
        "--nodepool",
        DEMO_NODEPOOL,
        "-o",
        "json",
    ]);
    if let Some(f) = ca_file {
        cmd.arg("--ca-file").arg(f);
    }
    cmd.args(extra);
    for var in [
        "SSL_CERT_FILE",
        "SSL_CERT_DIR",
        "HTTPS_PROXY",
        "https_proxy",
        "HTTP_PROXY",
        "http_proxy",
        "ALL_PROXY",
        "all_proxy",
        "NO_PROXY",
        "no_proxy",
    ] {
        cmd.env_remove(var);
    }
    cmd.env("HUAWEICLOUD_SDK_AK", DEMO_ACCESS_KEY)
        .env("HUAWEICLOUD_SDK_SK", DEMO_SECRET_KEY)
        .envs(env.iter().copied());
    cmd.output().await.expect("inspect runs")
}

fn node_count(out: &Output) -> u64 {
    assert!(
        out.status.success(),
        "inspect failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON status");
    v["nodeCount"].as_u64().expect("nodeCount")
}

#[tokio::test]
async fn inspect_trusts_the_ca_file_and_names_a_refused_certificate() {
    let w = world().await;
    let endpoint = w.sim.endpoint();
    assert!(endpoint.starts_with("https://"));
    let ok = inspect(&endpoint, Some(&w.ca_file), &[]).await;
    assert_eq!(node_count(&ok), 1, "nodepool-1 of the demo data holds one node");

    let refused = inspect(&endpoint, None, &[]).await;
    assert!(!refused.status.success());
    let err = String::from_utf8_lossy(&refused.stderr);
    assert!(
        err.contains(&endpoint)
            && err.contains("untrusted certificate authority")
            && err.contains("--ca-file"),
        "{err}"
    );
}

#[tokio::test]
async fn https_proxy_tunnels_the_listing_and_no_proxy_bypasses_it() {
    let w = world().await;
    let proxy = ConnectProxy::start().await.unwrap();
    let endpoint = w.sim.endpoint();
    let target = endpoint.trim_start_matches("https://").to_string();

    let out = inspect(&endpoint, Some(&w.ca_file), &[("HTTPS_PROXY", &proxy.url())]).await;
    assert_eq!(node_count(&out), 1);
    let tunnels = proxy.tunnels();
    assert!(!tunnels.is_empty(), "the proxy saw no CONNECT");
    assert!(tunnels.iter().all(|t| *t == target), "{tunnels:?} vs {target}");
    let after_proxy = w.sim.state().stats().requests;
    assert!(after_proxy >= 1);

    let out = inspect(
        &endpoint,
        Some(&w.ca_file),
        &[("HTTPS_PROXY", &proxy.url()), ("NO_PROXY", "127.0.0.1")],
    )
    .await;
    assert_eq!(node_count(&out), 1);
    assert_eq!(
        proxy.tunnels().len(),
        tunnels.len(),
        "NO_PROXY must bypass the proxy"
    );
    assert!(
        w.sim.state().stats().requests > after_proxy,
        "the listing went direct"
    );
}

/// The platform store is read through rustls-native-certs, which takes `SSL_CERT_FILE` as the
/// whole store: pointing it at the test CA shows `platform` uses that store and `public` does not.
#[tokio::test]
async fn platform_roots_come_from_the_platform_store_and_none_needs_a_ca_file() {
    let w = world().await;
    let endpoint = w.sim.endpoint();
    let store = w.ca_file.to_str().unwrap();
    let platform = inspect_with(
        &endpoint,
        None,
        &["--trust-roots", "platform"],
        &[("SSL_CERT_FILE", store)],
    )
    .await;
    assert_eq!(node_count(&platform), 1);

    let public = inspect_with(
        &endpoint,
        None,
        &["--trust-roots", "public"],
        &[("SSL_CERT_FILE", store)],
    )
    .await;
    assert!(
        !public.status.success(),
        "the public roots must not include the platform store"
    );
    assert!(String::from_utf8_lossy(&public.stderr).contains("untrusted certificate authority"));

    let none = inspect_with(&endpoint, None, &["--trust-roots", "none"], &[]).await;
    assert!(!none.status.success());
    let err = String::from_utf8_lossy(&none.stderr);
    assert!(err.contains("--ca-file"), "{err}");
    let only_file = inspect_with(&endpoint, Some(&w.ca_file), &["--trust-roots", "none"], &[]).await;
    assert_eq!(node_count(&only_file), 1);
}
