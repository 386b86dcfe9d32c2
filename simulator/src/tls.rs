//! HTTPS for the simulator: a throwaway CA that issues server certificates (valid,
//! expired, or for another host name), a rustls config whose certificate can be swapped
//! while serving, and a listener that hands finished handshakes to `axum::serve`.

use modelarts_operator::error::{Error, Result};
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, pem::PemObject};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;
use tokio_rustls::rustls::{
    self, ServerConfig,
    server::{ClientHello, ResolvesServerCert},
    sign::CertifiedKey,
};

/// Longest TLS handshake waited for; a client that stalls is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

fn tls_error(what: &str, e: impl std::fmt::Display) -> Error {
    Error::invalid("simulator TLS", what, e.to_string())
}

/// Which certificate a [`TestCa`] issues.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Validity {
    /// Valid now (from 1975 to 4096, rcgen's defaults).
    Current,
    /// Expired: valid only during the year 2000.
    Expired,
}

/// A throwaway certificate authority for tests and demos; never for production.
pub struct TestCa {
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl std::fmt::Debug for TestCa {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestCa").finish_non_exhaustive()
    }
}

impl TestCa {
    /// A new CA whose certificate names `common_name`.
    pub fn generate(common_name: &str) -> Result<Self> {
        let mut params =
            CertificateParams::new(Vec::<String>::new()).map_err(|e| tls_error(common_name, e))?;
        params.distinguished_name.push(DnType::CommonName, common_name);
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let key = KeyPair::generate().map_err(|e| tls_error(common_name, e))?;
        let issuer = CertifiedIssuer::self_signed(params, key).map_err(|e| tls_error(common_name, e))?;
        Ok(TestCa { issuer })
    }

    /// The CA certificate, PEM: what a client must trust.
    pub fn pem(&self) -> String {
        self.issuer.pem()
    }

    /// A server certificate for `names` (DNS names or IP addresses).
    pub fn issue(&self, names: &[String], validity: Validity) -> Result<ServerCert> {
        let what = names.join(",");
        let mut params = CertificateParams::new(names.to_vec()).map_err(|e| tls_error(&what, e))?;
        params.distinguished_name.push(
            DnType::CommonName,
            names.first().map_or("simulator", String::as_str),
        );
        if validity == Validity::Expired {
            params.not_before = rcgen::date_time_ymd(2000, 1, 1);
            params.not_after = rcgen::date_time_ymd(2001, 1, 1);
        }
        let key = KeyPair::generate().map_err(|e| tls_error(&what, e))?;
        let cert = params
            .signed_by(&key, &self.issuer)
            .map_err(|e| tls_error(&what, e))?;
        Ok(ServerCert {
            cert_pem: cert.pem(),
            key_pem: key.serialize_pem(),
        })
    }
}

/// A server certificate and its private key, both PEM. Debug leaves the key out.
#[derive(Clone)]
pub struct ServerCert {
    /// The certificate chain, leaf first.
    pub cert_pem: String,
    /// The private key (PKCS#8, PKCS#1 or SEC1).
    pub key_pem: String,
}

impl std::fmt::Debug for ServerCert {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServerCert")
            .field("key_pem", &"<redacted>")
            .finish_non_exhaustive()
    }
}

impl ServerCert {
    /// Reads a certificate chain and a key from PEM files.
    pub fn from_files(cert: &std::path::Path, key: &std::path::Path) -> Result<Self> {
        let read = |p: &std::path::Path| {
            std::fs::read_to_string(p).map_err(|source| Error::Io {
                context: format!("reading {}", p.display()),
                source,
            })
        };
        Ok(ServerCert {
            cert_pem: read(cert)?,
            key_pem: read(key)?,
        })
    }

    fn certified_key(&self) -> Result<CertifiedKey> {
        let chain = CertificateDer::pem_slice_iter(self.cert_pem.as_bytes())
            .collect::<std::result::Result<Vec<_>, _>>()
            .map_err(|e| tls_error("certificate PEM", e))?;
        if chain.is_empty() {
            return Err(tls_error("certificate PEM", "no CERTIFICATE block"));
        }
        let key =
            PrivateKeyDer::from_pem_slice(self.key_pem.as_bytes()).map_err(|e| tls_error("key PEM", e))?;
        let provider = rustls::crypto::ring::default_provider();
        CertifiedKey::from_der(chain, key, &provider).map_err(|e| tls_error("certificate and key", e))
    }
}

/// Serves whatever certificate was set last, so tests can expire or misname it mid-run.
#[derive(Debug)]
pub struct SwappableCert(RwLock<Arc<CertifiedKey>>);

impl ResolvesServerCert for SwappableCert {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        Some(self.0.read().unwrap_or_else(|p| p.into_inner()).clone())
    }
}

impl SwappableCert {
    /// Replaces the certificate for new handshakes.
    pub fn set(&self, cert: &ServerCert) -> Result<()> {
        let key = Arc::new(cert.certified_key()?);
        *self.0.write().unwrap_or_else(|p| p.into_inner()) = key;
        Ok(())
    }
}

/// The rustls server config (HTTP/1.1 only, as the router) and its swappable certificate.
pub fn server_config(cert: &ServerCert) -> Result<(Arc<ServerConfig>, Arc<SwappableCert>)> {
    let swappable = Arc::new(SwappableCert(RwLock::new(Arc::new(cert.certified_key()?))));
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error("protocol versions", e))?
        .with_no_client_auth()
        .with_cert_resolver(swappable.clone());
    config.alpn_protocols = vec![b"http/1.1".to_vec()];
    // No resumption: a resumed session skips the certificate, so a swapped-in expired or
    // misnamed one would go unseen by clients that connected before.
    config.session_storage = Arc::new(rustls::server::NoServerSessionStorage {});
    config.send_tls13_tickets = 0;
    Ok((Arc::new(config), swappable))
}

/// TLS handshakes seen by a simulator, so tests can tell a refused certificate was
/// tried once and not hammered.
#[derive(Debug, Default)]
pub struct Handshakes {
    ok: AtomicU64,
    failed: AtomicU64,
}

impl Handshakes {
    /// Handshakes that completed.
    pub fn ok(&self) -> u64 {
        self.ok.load(Ordering::Relaxed)
    }

    /// Handshakes that failed (the client refused the certificate, or gave up).
    pub fn failed(&self) -> u64 {
        self.failed.load(Ordering::Relaxed)
    }
}

/// A listener that accepts TCP, runs each handshake in its own task (so a stalled or
/// refused client blocks nobody) and yields only finished TLS streams.
pub struct TlsListener {
    addr: SocketAddr,
    rx: mpsc::Receiver<(tokio_rustls::server::TlsStream<TcpStream>, SocketAddr)>,
    task: JoinHandle<()>,
}

impl TlsListener {
    /// Wraps a bound listener.
    pub fn new(
        listener: TcpListener,
        config: Arc<ServerConfig>,
        seen: Arc<Handshakes>,
    ) -> std::io::Result<Self> {
        let addr = listener.local_addr()?;
        let (tx, rx) = mpsc::channel(64);
        let acceptor = TlsAcceptor::from(config);
        let task = tokio::spawn(async move {
            loop {
                let (tcp, peer) = match listener.accept().await {
                    Ok(c) => c,
                    Err(e) => {
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let acceptor = acceptor.clone();
                let tx = tx.clone();
                let seen = seen.clone();
                tokio::spawn(async move {
                    match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(tcp)).await {
                        Ok(Ok(tls)) => {
                            seen.ok.fetch_add(1, Ordering::Relaxed);
                            let _ = tx.send((tls, peer)).await;
                        }
                        Ok(Err(e)) => {
                            seen.failed.fetch_add(1, Ordering::Relaxed);
                            tracing::info!(%peer, error = %e, "TLS handshake failed");
                        }
                        Err(_) => {
                            seen.failed.fetch_add(1, Ordering::Relaxed);
                            tracing::info!(%peer, "TLS handshake timed out");
                        }
                    }
                });
            }
        });
        Ok(TlsListener { addr, rx, task })
    }
}

impl Drop for TlsListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl axum::serve::Listener for TlsListener {
    type Io = tokio_rustls::server::TlsStream<TcpStream>;
    type Addr = SocketAddr;

    async fn accept(&mut self) -> (Self::Io, Self::Addr) {
        match self.rx.recv().await {
            Some(conn) => conn,
            // The accept task never ends on its own; if it did, serve nothing more.
            None => std::future::pending().await,
        }
    }

    fn local_addr(&self) -> std::io::Result<Self::Addr> {
        Ok(self.addr)
    }
}
