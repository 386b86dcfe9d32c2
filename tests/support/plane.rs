//! A private control plane (etcd + kube-apiserver) for one disruptive test, started with
//! `hack/control-plane.sh up` in a temporary `CONTROL_PLANE_DIR` and taken down again when the
//! [`Plane`] is dropped, also when the test panics. Tests that kill the API server or etcd must use
//! one: the shared plane of `hack/test.sh` serves every other test at the same time.
//!
//! Include it next to `support/cluster.rs`:
//! ```ignore
//! #[path = "support/plane.rs"]
//! mod plane;
//! ```
#![allow(dead_code)]

use crate::cluster;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/hack/control-plane.sh");

/// The two processes of a plane.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Component {
    Etcd,
    ApiServer,
}

impl Component {
    fn arg(self) -> &'static str {
        match self {
            Component::Etcd => "etcd",
            Component::ApiServer => "kube-apiserver",
        }
    }
}

/// A running private plane. Dropping it runs `hack/control-plane.sh down` on its directory.
pub struct Plane {
    /// Its admin kubeconfig.
    pub kubeconfig: PathBuf,
    state: PathBuf,
    etcd_port: u16,
    _dir: tempfile::TempDir,
}

impl Plane {
    /// Starts a private plane, or returns `None` with a `SKIPPED` line when no control plane is
    /// configured (`KUBECONFIG` unset) and `MODELARTS_REQUIRE_CLUSTER` is not set, like
    /// `cluster::client_or_skip`: a plain `cargo test` must not start control planes.
    pub async fn up_or_skip(test: &str) -> Option<Plane> {
        if std::env::var_os("KUBECONFIG").is_none_or(|k| k.is_empty()) && !cluster::cluster_required() {
            use std::io::Write as _;
            let _ = writeln!(
                std::io::stderr(),
                "SKIPPED {test}: no control plane (KUBECONFIG unset); run hack/control-plane.sh up"
            );
            return None;
        }
        Some(Self::up(test).await)
    }

    /// Starts a private plane in a new temporary directory.
    pub async fn up(test: &str) -> Plane {
        let dir = tempfile::Builder::new()
            .prefix("modelarts-plane-")
            .tempdir()
            .expect("temp dir for a private plane");
        // The script creates (and on `down` deletes) the state dir itself; the temp dir is its parent,
        // so the script's flock on the parent never serializes two tests' planes.
        let state = dir.path().join("plane");
        let out = tokio::process::Command::new(SCRIPT)
            .arg("up")
            .env("CONTROL_PLANE_DIR", &state)
            .stdin(Stdio::null())
            .output()
            .await
            .expect("running hack/control-plane.sh up");
        let mut plane = Plane {
            kubeconfig: state.join("kubeconfig"),
            etcd_port: 0,
            state,
            _dir: dir,
        };
        assert!(
            out.status.success(),
            "{test}: hack/control-plane.sh up failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let env = std::fs::read_to_string(plane.state.join("state.env")).expect("state.env");
        let etcd_port = env
            .lines()
            .find_map(|l| l.strip_prefix("ETCD_PORT="))
            .and_then(|p| p.trim().parse().ok())
            .expect("ETCD_PORT in state.env");
        plane.etcd_port = etcd_port;
        plane
    }

    /// The state directory (logs: `etcd.log`, `kube-apiserver.log`).
    pub fn dir(&self) -> &Path {
        &self.state
    }

    async fn run(&self, args: &[&str]) -> String {
        let out = tokio::process::Command::new(SCRIPT)
            .args(args)
            .env("CONTROL_PLANE_DIR", &self.state)
            .stdin(Stdio::null())
            .output()
            .await
            .expect("running hack/control-plane.sh");
        assert!(
            out.status.success(),
            "hack/control-plane.sh {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// SIGKILLs the component (`hack/control-plane.sh kill`).
    pub async fn kill(&self, c: Component) {
        self.run(&["kill", c.arg()]).await;
    }

    /// Starts the component again on the same ports and data; returns once it is healthy.
    pub async fn start(&self, c: Component) {
        self.run(&["start", c.arg()]).await;
    }

    /// Compacts etcd to its current revision; returns that revision.
    pub async fn compact(&self) -> u64 {
        let out = self.run(&["compact"]).await;
        out.parse()
            .unwrap_or_else(|e| panic!("compact printed {out:?}, not a revision: {e}"))
    }

    fn etcd_url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.etcd_port)
    }

    /// Reads one key straight from etcd (its JSON gateway), bypassing the API server.
    pub async fn etcd_get(&self, key: &str) -> Option<Vec<u8>> {
        let body: Value = reqwest::Client::new()
            .post(self.etcd_url("/v3/kv/range"))
            .json(&json!({"key": B64.encode(key)}))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("etcd range")
            .json()
            .await
            .expect("etcd range answer");
        let value = body["kvs"].get(0)?["value"].as_str()?.to_string();
        Some(B64.decode(value).expect("etcd value is base64"))
    }

    /// Writes one key straight into etcd, bypassing the API server (and its admission, defaulting
    /// and generation bookkeeping: the caller writes a complete stored object).
    pub async fn etcd_put(&self, key: &str, value: &[u8]) {
        reqwest::Client::new()
            .post(self.etcd_url("/v3/kv/put"))
            .json(&json!({"key": B64.encode(key), "value": B64.encode(value)}))
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .expect("etcd put");
    }
}

impl Drop for Plane {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- private control plane {} is being taken down ---",
                self.state.display()
            );
        }
        let _ = Command::new(SCRIPT)
            .arg("down")
            .env("CONTROL_PLANE_DIR", &self.state)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
}
