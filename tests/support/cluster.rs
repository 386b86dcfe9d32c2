//! Shared helper for integration tests that need a real API server.
//!
//! Start one with `eval "$(hack/control-plane.sh up)"` (see docs/control-plane.md). Tests then read
//! `KUBECONFIG`. Without it they print a `SKIPPED` line and pass, so a plain `cargo test` works on a
//! laptop with no cluster. CI sets `MODELARTS_REQUIRE_CLUSTER=1`, which turns a missing cluster into a
//! failure so a pipeline can never go green without having run these tests.
//!
//! Include it from a test file with:
//! ```ignore
//! #[path = "support/cluster.rs"]
//! mod cluster;
//! ```
#![allow(dead_code)]

use kube::config::{KubeConfigOptions, Kubeconfig};
use kube::{Client, Config};

/// Env var that makes a missing or unreachable control plane a hard failure (set in CI).
pub const REQUIRE_ENV: &str = "MODELARTS_REQUIRE_CLUSTER";

fn required() -> bool {
    std::env::var(REQUIRE_ENV).is_ok_and(|v| v == "1" || v.eq_ignore_ascii_case("true"))
}

/// Admin `kube::Config` from `$KUBECONFIG`, or `None` (with a `SKIPPED` line on stderr) when no
/// control plane is configured. Panics instead of skipping when `MODELARTS_REQUIRE_CLUSTER=1`.
pub async fn config_or_skip(test_name: &str) -> Option<Config> {
    let path = match std::env::var_os("KUBECONFIG") {
        Some(p) if !p.is_empty() => p,
        _ => {
            if required() {
                panic!(
                    "{test_name}: {REQUIRE_ENV}=1 but KUBECONFIG is unset; \
                     run `eval \"$(hack/control-plane.sh up)\"` first"
                );
            }
            // Written straight to fd 2: libtest captures eprintln! of passing tests, and a skip must
            // be visible in every `cargo test` log.
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test_name}: no control plane (KUBECONFIG unset); run hack/control-plane.sh up"
            );
            return None;
        }
    };
    // Read exactly the file named by KUBECONFIG (first entry if it is a list) so a stray
    // in-cluster environment or ~/.kube/config can never be picked up by accident.
    let first = std::env::split_paths(&path)
        .next()
        .expect("KUBECONFIG has no entries");
    Some(config_from_path(test_name, &first).await)
}

/// The admin `kube::Config` of exactly this kubeconfig file (e.g. a private plane's).
pub async fn config_from_path(test_name: &str, path: &std::path::Path) -> Config {
    let kubeconfig = Kubeconfig::read_from(path)
        .unwrap_or_else(|e| panic!("{test_name}: cannot read kubeconfig {}: {e}", path.display()));
    Config::from_custom_kubeconfig(kubeconfig, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{test_name}: invalid kubeconfig {}: {e}", path.display()))
}

/// A client for `config` whose server must answer.
pub async fn client_from_config(test_name: &str, config: Config) -> Client {
    let url = config.cluster_url.clone();
    let client = Client::try_from(config)
        .unwrap_or_else(|e| panic!("{test_name}: cannot build client for {url}: {e}"));
    if let Err(e) = client.apiserver_version().await {
        panic!("{test_name}: {url} does not answer: {e}");
    }
    client
}

/// True when a missing control plane must fail the test (`MODELARTS_REQUIRE_CLUSTER=1`).
pub fn cluster_required() -> bool {
    required()
}

/// Admin client for the test control plane, or `None` when the test should be skipped.
///
/// Once KUBECONFIG is set the cluster must answer: an unreachable server is a failure, not a skip,
/// because a configured-but-broken cluster is a real problem.
pub async fn client_or_skip(test_name: &str) -> Option<Client> {
    let config = config_or_skip(test_name).await?;
    let url = config.cluster_url.clone();
    let client = Client::try_from(config)
        .unwrap_or_else(|e| panic!("{test_name}: cannot build client for {url}: {e}"));
    if let Err(e) = client.apiserver_version().await {
        panic!("{test_name}: KUBECONFIG is set but {url} does not answer: {e}; is the control plane up?");
    }
    Some(client)
}

/// A name that is unique per test run (DNS-1123 label safe), e.g. `smoke-1a2b3c4d`.
pub fn unique_name(prefix: &str) -> String {
    use std::time::{SystemTime, UNIX_EPOCH};
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    let mix = (nanos as u64) ^ ((std::process::id() as u64) << 32);
    format!("{prefix}-{:08x}", (mix ^ (mix >> 29)) as u32)
}
