//! `modelarts-simulator`: a ModelArts-compatible HTTP server for demos and tests.
//!
//! A separate crate so that none of it (least of all the unauthenticated control API) is
//! compiled into the operator. It depends on the operator library for what both sides
//! share: the request signer, the ModelArts wire types and the error type.
//!
//! Serves the v2 pool, node-pool and node-list routes from a data file (or the embedded
//! demo data), verifies `SDK-HMAC-SHA256` and `X-Auth-Token` like the API gateway, injects
//! faults on demand and exposes an unauthenticated `/_sim` control API for tests:
//!
//! | Route | Effect |
//! |---|---|
//! | `GET /_sim/health` | `{"status":"ok"}` |
//! | `GET`/`PUT`/`DELETE /_sim/faults` | read / replace (`{"faults":[...]}`) / clear faults |
//! | `GET /_sim/nodes/{project}/{pool}/{nodepool}` | all nodes of a node pool |
//! | `PATCH /_sim/nodes/{project}/{pool}/{nodepool}/{node}` | merge phase/resources/availableResources/labels |
//! | `PUT`/`DELETE /_sim/nodes/{project}/{pool}/{nodepool}/{node}` | add or replace / remove a node |
//! | `PUT`/`DELETE /_sim/nodepools/{project}/{pool}/{nodepool}` | add or replace (spec body) / remove a node pool |
//! | `POST /_sim/credentials`, `DELETE /_sim/credentials/{ak-or-token}` | rotate credentials |
//! | `DELETE /_sim/lockouts`, `PUT /_sim/auth` `{"enabled":bool}` | clear AK locks, toggle auth |
//! | `GET /_sim/stats`, `POST /_sim/stats/reset` | request statistics |
//!
//! It speaks plain http, or HTTPS with a given certificate or one issued by a throwaway
//! CA it writes out ([`tls`]); [`proxy`] is a loopback CONNECT proxy for proxy tests.

mod api;
pub mod auth;
mod control;
pub mod data;
pub mod faults;
pub mod generate;
pub mod identity;
pub mod paging;
pub mod proxy;
mod server;
pub mod state;
pub mod tls;
pub mod validate;
pub mod verify;
pub mod world;

pub use auth::Lockout;
pub use data::{
    CredentialSpec, DEMO_ACCESS_KEY, DEMO_GPU_NODEPOOL, DEMO_LARGE_COUNT, DEMO_LARGE_NODEPOOL, DEMO_NODE,
    DEMO_NODEPOOL, DEMO_NPU_NODEPOOL, DEMO_POOL, DEMO_PROJECT_ID, DEMO_SECRET_KEY, DEMO_TOKEN, GenerateSpec,
    NodePoolSpec, PoolSpec, ProjectSpec, ScalingSpec, SimData,
};
pub use faults::{Fault, FaultKind, FaultSpec};
pub use paging::{ContinueToken, MAX_LIMIT};
pub use proxy::ConnectProxy;
pub use state::{RequestRecord, SimState, Stats};
pub use tls::{ServerCert, TestCa, Validity};
pub use world::{NodePatch, StateError};

use modelarts_operator::error::{Error, Result};
use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// Flags of the `modelarts-simulator` command.
#[derive(Debug, clap::Args)]
pub struct SimulateArgs {
    /// Data file (YAML; JSON if it ends in .json). Default: the embedded demo data.
    #[arg(long, value_name = "FILE", env = "MODELARTS_SIM_DATA")]
    pub data: Option<PathBuf>,
    /// Address to listen on. The control API is unauthenticated: keep it on loopback.
    #[arg(long, default_value = "127.0.0.1")]
    pub bind: IpAddr,
    /// Port to listen on (0 = pick a free one).
    #[arg(long, default_value_t = 18080)]
    pub port: u16,
    /// Accept every request without authentication.
    #[arg(long)]
    pub no_auth: bool,
    /// Add a generated node pool, e.g. `0123.../pool-.../big=20000` (repeatable).
    #[arg(long = "generate", value_name = "PROJECT/POOL/NODEPOOL=COUNT")]
    pub generate: Vec<String>,
    /// Start with a fault, e.g. `throttle:retryAfter=2,times=3` or `serverError:status=503,fromPage=2`
    /// (types: latency, throttle, serverError, malformedJson, truncatedJson, repeatContinue, ignoreLimit).
    #[arg(long = "fault", value_name = "TYPE[:key=value,...]")]
    pub faults: Vec<String>,
    /// Consecutive AK/SK failures that lock an access key (0 = never lock).
    #[arg(long, default_value_t = 5)]
    pub lockout_failures: u32,
    /// How long a locked access key stays locked, in seconds.
    #[arg(long, default_value_t = 300)]
    pub lockout_seconds: u64,
    /// Print the embedded demo data (a starting point for --data) and exit.
    #[arg(long)]
    pub print_default_data: bool,
    /// Serve HTTPS with this certificate chain (PEM, leaf first); needs --tls-key.
    #[arg(
        long,
        value_name = "FILE",
        requires = "tls_key",
        conflicts_with = "tls_generate"
    )]
    pub tls_cert: Option<PathBuf>,
    /// Private key of --tls-cert (PEM).
    #[arg(long, value_name = "FILE", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// Serve HTTPS with a certificate from a throwaway CA generated at start; writes
    /// DIR/ca.pem (trust this, e.g. --modelarts-ca-file), DIR/server.pem and DIR/server-key.pem.
    #[arg(long, value_name = "DIR")]
    pub tls_generate: Option<PathBuf>,
    /// Names the generated certificate is valid for (repeatable; default 127.0.0.1 and localhost).
    #[arg(long = "tls-name", value_name = "NAME", requires = "tls_generate")]
    pub tls_names: Vec<String>,
}

/// How a simulator runs.
#[derive(Debug, Clone)]
pub struct SimOptions {
    /// Listen address (default 127.0.0.1).
    pub bind: IpAddr,
    /// Listen port (default 0: ephemeral, as tests want).
    pub port: u16,
    /// Whether requests must authenticate (default true).
    pub auth: bool,
    /// AK lockout policy; `None` never locks (default 5 failures → 5 minutes).
    pub lockout: Option<Lockout>,
    /// Largest accepted `X-Sdk-Date` skew (default 15 minutes).
    pub max_clock_skew: Duration,
    /// Faults active from the start.
    pub faults: Vec<Fault>,
    /// Serve HTTPS with this certificate instead of plain http (default: http).
    pub tls: Option<ServerCert>,
}

impl Default for SimOptions {
    fn default() -> Self {
        SimOptions {
            bind: IpAddr::V4(Ipv4Addr::LOCALHOST),
            port: 0,
            auth: true,
            lockout: Some(Lockout::default()),
            max_clock_skew: Duration::from_secs(15 * 60),
            faults: Vec::new(),
            tls: None,
        }
    }
}

/// Entry point of the in-process simulator.
#[derive(Debug)]
pub struct Simulator;

impl Simulator {
    /// Validates the data, binds the port and starts serving in the background.
    pub async fn start(data: SimData, opts: SimOptions) -> Result<SimHandle> {
        data.validate()?;
        let auth = auth::Authenticator::new(
            data.credentials.clone(),
            data.tokens.clone(),
            opts.lockout,
            opts.max_clock_skew,
        );
        let state = Arc::new(SimState::new(
            world::World::from_data(data),
            auth,
            opts.faults,
            opts.auth,
        ));
        let wanted = SocketAddr::new(opts.bind, opts.port);
        let io = |context: String| move |source| Error::Io { context, source };
        let listener = tokio::net::TcpListener::bind(wanted)
            .await
            .map_err(io(format!("binding {wanted}")))?;
        let addr = listener
            .local_addr()
            .map_err(io(format!("reading the address bound for {wanted}")))?;
        let app = server::router(state.clone());
        let (tx, rx) = oneshot::channel::<()>();
        let stop = async {
            let _ = rx.await;
        };
        let handshakes = Arc::new(tls::Handshakes::default());
        let (task, cert) = match &opts.tls {
            None => (
                tokio::spawn(async move { axum::serve(listener, app).with_graceful_shutdown(stop).await }),
                None,
            ),
            Some(cert) => {
                let (config, swappable) = tls::server_config(cert)?;
                let listener = tls::TlsListener::new(listener, config, handshakes.clone())
                    .map_err(io(format!("reading the address bound for {wanted}")))?;
                (
                    tokio::spawn(
                        async move { axum::serve(listener, app).with_graceful_shutdown(stop).await },
                    ),
                    Some(swappable),
                )
            }
        };
        Ok(SimHandle {
            addr,
            state,
            cert,
            handshakes,
            shutdown: Some(tx),
            task: Some(task),
        })
    }
}

/// A running simulator; dropping it stops the server too.
#[derive(Debug)]
pub struct SimHandle {
    addr: SocketAddr,
    state: Arc<SimState>,
    cert: Option<Arc<tls::SwappableCert>>,
    handshakes: Arc<tls::Handshakes>,
    shutdown: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<std::io::Result<()>>>,
}

impl SimHandle {
    /// Base URL, e.g. `http://127.0.0.1:18080` or `https://127.0.0.1:18443`.
    pub fn endpoint(&self) -> String {
        let scheme = if self.cert.is_some() { "https" } else { "http" };
        format!("{scheme}://{}", self.addr)
    }

    /// TLS handshakes so far (zero for a plain http simulator).
    pub fn handshakes(&self) -> &tls::Handshakes {
        &self.handshakes
    }

    /// Serves `cert` from the next handshake on, and closes every connection after its
    /// next answer so that clients holding one reconnect and meet the new certificate.
    pub fn set_certificate(&self, cert: &ServerCert) -> Result<()> {
        let Some(swappable) = &self.cert else {
            return Err(Error::invalid(
                "simulator TLS",
                "http",
                "this simulator serves plain http",
            ));
        };
        swappable.set(cert)?;
        self.state.set_close_connections(true);
        Ok(())
    }

    /// The bound socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Direct access to data, faults, credentials and statistics.
    pub fn state(&self) -> &Arc<SimState> {
        &self.state
    }

    /// Stops accepting, lets in-flight requests finish (at most 5 s) and returns.
    pub async fn shutdown(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            match tokio::time::timeout(Duration::from_secs(5), task).await {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) => tracing::warn!(error = %e, "simulator server ended with an error"),
                Ok(Err(e)) => tracing::warn!(error = %e, "simulator server task failed"),
                Err(_) => {
                    tracing::warn!("simulator did not drain within 5s; aborting");
                    abort.abort();
                }
            }
        }
    }
}

impl Drop for SimHandle {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
    }
}

/// Runs the simulator until SIGINT/SIGTERM.
pub async fn run(args: SimulateArgs) -> Result<()> {
    init_tracing();
    if args.print_default_data {
        print!("{}", SimData::embedded_default_text());
        return Ok(());
    }
    let mut data = match &args.data {
        Some(path) => SimData::from_file(path)?,
        None => SimData::embedded_default(),
    };
    for g in &args.generate {
        data = data.apply_generate_flag(g)?;
    }
    let faults = args
        .faults
        .iter()
        .map(|f| Fault::parse_flag(f))
        .collect::<Result<Vec<_>>>()?;
    if !args.bind.is_loopback() {
        tracing::warn!(bind = %args.bind, "not loopback: the unauthenticated /_sim control API is reachable");
    }
    let lockout = (args.lockout_failures > 0).then(|| Lockout {
        failures: args.lockout_failures,
        duration: Duration::from_secs(args.lockout_seconds),
    });
    let tls = match (&args.tls_cert, &args.tls_key, &args.tls_generate) {
        (Some(cert), Some(key), _) => Some(ServerCert::from_files(cert, key)?),
        (_, _, Some(dir)) => Some(generate_tls(dir, &args.tls_names)?),
        _ => None,
    };
    let opts = SimOptions {
        bind: args.bind,
        port: args.port,
        auth: !args.no_auth,
        lockout,
        faults,
        tls,
        ..Default::default()
    };
    let handle = Simulator::start(data, opts).await?;
    announce(&handle.endpoint()).map_err(|source| Error::Io {
        context: "writing to stdout".into(),
        source,
    })?;
    modelarts_operator::signal::terminated().await;
    tracing::info!("shutting down");
    handle.shutdown().await;
    Ok(())
}

/// A throwaway CA and a server certificate from it, written to `dir` as PEM files.
fn generate_tls(dir: &std::path::Path, names: &[String]) -> Result<ServerCert> {
    let names = if names.is_empty() {
        vec!["127.0.0.1".to_string(), "localhost".to_string()]
    } else {
        names.to_vec()
    };
    let ca = TestCa::generate("modelarts-simulator throwaway CA")?;
    let cert = ca.issue(&names, Validity::Current)?;
    let write = |name: &str, text: &str| {
        let path = dir.join(name);
        std::fs::write(&path, text).map_err(|source| Error::Io {
            context: format!("writing {}", path.display()),
            source,
        })
    };
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        context: format!("creating {}", dir.display()),
        source,
    })?;
    write("ca.pem", &ca.pem())?;
    write("server.pem", &cert.cert_pem)?;
    write("server-key.pem", &cert.key_pem)?;
    Ok(cert)
}

/// The single stdout line scripts parse.
fn announce(endpoint: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    writeln!(out, "simulator listening on {endpoint}")?;
    out.flush()
}

fn init_tracing() {
    modelarts_operator::telemetry::init(modelarts_operator::telemetry::LogFormat::Text);
}
