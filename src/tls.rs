//! Whom the ModelArts client trusts: the public (webpki) roots by default, the platform
//! store on request, plus a private CA bundle that is re-read when its file changes; and
//! what a refused server certificate means, read off the rustls error inside reqwest's.

use crate::error::{CertificateProblem, Error, Result};
use std::{
    path::{Path, PathBuf},
    sync::Mutex,
    time::SystemTime,
};

/// Built-in roots trusted besides the CA file.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, clap::ValueEnum)]
pub enum Roots {
    /// The public web PKI roots compiled into the operator (webpki-roots).
    #[default]
    Public,
    /// The platform's trust store (e.g. /etc/ssl/certs), read when the client is built.
    Platform,
    /// None: only the CA file (which is then required).
    None,
}

/// The trust settings of the ModelArts client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trust {
    /// PEM bundle of extra CAs, re-read when it changes.
    pub ca_file: Option<PathBuf>,
    /// Built-in roots.
    pub roots: Roots,
    /// The flag naming the CA file, for errors (`--modelarts-ca-file`, `--ca-file`).
    pub ca_flag: &'static str,
}

impl Default for Trust {
    /// The public roots only; errors name `run`'s flag.
    fn default() -> Self {
        Trust {
            ca_file: None,
            roots: Roots::Public,
            ca_flag: "--modelarts-ca-file",
        }
    }
}

/// What identifies one version of the CA file on disk, cheap to compare on every request.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    len: u64,
    modified: Option<SystemTime>,
}

fn stamp(path: &Path) -> Option<Stamp> {
    let meta = std::fs::metadata(path).ok()?;
    Some(Stamp {
        len: meta.len(),
        modified: meta.modified().ok(),
    })
}

/// Parses a CA bundle; an unreadable file or one without certificates is an error naming it.
fn read_bundle(path: &Path, flag: &str) -> Result<(Vec<u8>, Vec<reqwest::Certificate>)> {
    let shown = path.display().to_string();
    let pem = std::fs::read(path).map_err(|source| Error::Io {
        context: format!("reading {flag} {shown}"),
        source,
    })?;
    let certs = reqwest::Certificate::from_pem_bundle(&pem)
        .map_err(|e| Error::invalid(flag, &shown, format!("not a PEM certificate bundle: {e}")))?;
    if certs.is_empty() {
        return Err(Error::invalid(flag, &shown, "holds no PEM CERTIFICATE block"));
    }
    Ok((pem, certs))
}

/// The current client and the CA file version it was built from.
struct Built {
    client: reqwest::Client,
    stamp: Option<Stamp>,
    pem: Vec<u8>,
}

/// A reqwest client that follows its trust settings: when the CA file changes (a
/// mounted Secret or ConfigMap updated in place), the next request gets a client built
/// from the new bundle; no restart. A changed file that cannot be used is logged once
/// and the previous client kept, so a half-written update cannot cut ModelArts off.
pub struct TrustedClient {
    trust: Trust,
    base: Box<dyn Fn() -> reqwest::ClientBuilder + Send + Sync>,
    built: Mutex<Built>,
}

impl TrustedClient {
    /// Builds the first client; errors here (unreadable or empty CA file) are fatal.
    pub fn new(
        trust: Trust,
        base: impl Fn() -> reqwest::ClientBuilder + Send + Sync + 'static,
    ) -> Result<Self> {
        if trust.roots == Roots::None && trust.ca_file.is_none() {
            return Err(Error::invalid(
                "trust roots",
                "none",
                format!("nothing would be trusted; set {} as well", trust.ca_flag),
            ));
        }
        let (stamp, pem, certs) = match &trust.ca_file {
            Some(path) => {
                let stamp = stamp(path);
                let (pem, certs) = read_bundle(path, trust.ca_flag)?;
                (stamp, pem, certs)
            }
            None => (None, Vec::new(), Vec::new()),
        };
        let client = build(&trust, base(), certs)?;
        Ok(TrustedClient {
            trust,
            base: Box::new(base),
            built: Mutex::new(Built { client, stamp, pem }),
        })
    }

    /// The client to use now, rebuilt first if the CA file changed since the last call.
    pub fn current(&self) -> reqwest::Client {
        let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
        let Some(path) = &self.trust.ca_file else {
            return built.client.clone();
        };
        let now = stamp(path);
        if now == built.stamp {
            return built.client.clone();
        }
        built.stamp = now;
        match read_bundle(path, self.trust.ca_flag) {
            Ok((pem, _)) if pem == built.pem => {}
            Ok((pem, certs)) => match build(&self.trust, (self.base)(), certs) {
                Ok(client) => {
                    tracing::info!(file = %path.display(), "CA bundle changed; ModelArts client rebuilt");
                    built.client = client;
                    built.pem = pem;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "CA bundle changed but cannot be used; keeping the previous one")
                }
            },
            Err(e) => {
                tracing::warn!(error = %e, "CA bundle changed but cannot be used; keeping the previous one")
            }
        }
        built.client.clone()
    }
}

fn build(
    trust: &Trust,
    builder: reqwest::ClientBuilder,
    certs: Vec<reqwest::Certificate>,
) -> Result<reqwest::Client> {
    let mut builder = builder
        .tls_built_in_root_certs(trust.roots != Roots::None)
        .tls_built_in_webpki_certs(trust.roots == Roots::Public)
        .tls_built_in_native_certs(trust.roots == Roots::Platform);
    for cert in certs {
        builder = builder.add_root_certificate(cert);
    }
    builder
        .build()
        .map_err(|e| Error::invalid("ModelArts HTTP client", "", chain(&e)))
}

/// The error and its sources, joined with ": ".
fn chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        out.push_str(": ");
        out.push_str(&s.to_string());
        source = s.source();
    }
    out
}

/// The rustls error somewhere in a chain. `io::Error::source` skips the error it wraps,
/// so wrapped errors are opened with `get_ref`.
fn find_rustls<'a>(mut err: Option<&'a (dyn std::error::Error + 'static)>) -> Option<&'a rustls::Error> {
    while let Some(e) = err {
        if let Some(r) = e.downcast_ref::<rustls::Error>() {
            return Some(r);
        }
        if let Some(io) = e.downcast_ref::<std::io::Error>()
            && let Some(inner) = io.get_ref()
            && let Some(r) = find_rustls(Some(inner as &(dyn std::error::Error + 'static)))
        {
            return Some(r);
        }
        err = e.source();
    }
    None
}

/// The certificate problem behind a failed request, if that is what failed.
pub fn certificate_problem(err: &(dyn std::error::Error + 'static)) -> Option<CertificateProblem> {
    use rustls::CertificateError as C;
    let rustls::Error::InvalidCertificate(c) = find_rustls(Some(err))? else {
        return None;
    };
    Some(match c {
        C::UnknownIssuer => CertificateProblem::Untrusted,
        C::Expired | C::ExpiredContext { .. } | C::NotValidYet | C::NotValidYetContext { .. } => {
            CertificateProblem::Expired
        }
        C::NotValidForName | C::NotValidForNameContext { .. } => CertificateProblem::HostMismatch,
        _ => CertificateProblem::Invalid,
    })
}

/// What to change, for each problem; part of the condition message.
pub fn hint(problem: CertificateProblem, trust: &Trust) -> String {
    match problem {
        CertificateProblem::Untrusted => match (&trust.ca_file, trust.roots) {
            (Some(f), Roots::None) => format!("the CA bundle {} does not hold the issuing CA", f.display()),
            (Some(f), roots) => format!(
                "neither the CA bundle {} nor the {} roots hold the issuing CA",
                f.display(),
                if roots == Roots::Public {
                    "public"
                } else {
                    "platform"
                }
            ),
            (None, _) => format!(
                "trust the issuing CA with {} (a private endpoint, a TLS-inspecting proxy)",
                trust.ca_flag
            ),
        },
        CertificateProblem::Expired => {
            "renew the endpoint's certificate, or check this machine's clock".into()
        }
        CertificateProblem::HostMismatch => {
            "the certificate names other hosts; check the endpoint host against its certificate".into()
        }
        CertificateProblem::Invalid => "the certificate cannot be used".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_certificate_error_through_io_wrappers() {
        let inner = rustls::Error::InvalidCertificate(rustls::CertificateError::Expired);
        let io = std::io::Error::new(std::io::ErrorKind::InvalidData, inner);
        #[derive(Debug)]
        struct Outer(std::io::Error);
        impl std::fmt::Display for Outer {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("outer")
            }
        }
        impl std::error::Error for Outer {
            fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
                Some(&self.0)
            }
        }
        assert_eq!(certificate_problem(&Outer(io)), Some(CertificateProblem::Expired));
        let other = std::io::Error::new(std::io::ErrorKind::ConnectionReset, "reset");
        assert_eq!(certificate_problem(&Outer(other)), None);
    }

    #[test]
    fn maps_each_rustls_certificate_error() {
        use rustls::CertificateError as C;
        for (c, want) in [
            (C::UnknownIssuer, CertificateProblem::Untrusted),
            (C::Expired, CertificateProblem::Expired),
            (C::NotValidYet, CertificateProblem::Expired),
            (C::NotValidForName, CertificateProblem::HostMismatch),
            (C::Revoked, CertificateProblem::Invalid),
            (C::BadSignature, CertificateProblem::Invalid),
        ] {
            let e = rustls::Error::InvalidCertificate(c);
            assert_eq!(certificate_problem(&e), Some(want));
        }
        assert_eq!(certificate_problem(&rustls::Error::HandshakeNotComplete), None);
    }

    #[test]
    fn hints_name_the_flag_or_the_bundle() {
        let h = hint(CertificateProblem::Untrusted, &Trust::default());
        assert!(h.contains("--modelarts-ca-file"), "{h}");
        let with_file = Trust {
            ca_file: Some(PathBuf::from("/etc/ca/bundle.pem")),
            roots: Roots::None,
            ca_flag: "--ca-file",
        };
        let h = hint(CertificateProblem::Untrusted, &with_file);
        assert_eq!(h, "the CA bundle /etc/ca/bundle.pem does not hold the issuing CA");
        let h = hint(
            CertificateProblem::Untrusted,
            &Trust {
                roots: Roots::Platform,
                ..with_file
            },
        );
        assert!(h.contains("bundle.pem") && h.contains("platform roots"), "{h}");
    }

    #[test]
    fn a_bad_ca_file_is_an_error_naming_flag_and_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("ca.pem");
        std::fs::write(&path, "not a certificate\n").unwrap();
        let trust = Trust {
            ca_file: Some(path.clone()),
            roots: Roots::Public,
            ca_flag: "--modelarts-ca-file",
        };
        let e = TrustedClient::new(trust, reqwest::Client::builder)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("--modelarts-ca-file") && e.contains("ca.pem"), "{e}");
        let missing = Trust {
            ca_file: Some(dir.path().join("absent.pem")),
            roots: Roots::Public,
            ca_flag: "--ca-file",
        };
        let e = TrustedClient::new(missing, reqwest::Client::builder)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("--ca-file") && e.contains("absent.pem"), "{e}");
        let none = Trust {
            ca_file: None,
            roots: Roots::None,
            ca_flag: "--ca-file",
        };
        let e = TrustedClient::new(none, reqwest::Client::builder)
            .err()
            .unwrap()
            .to_string();
        assert!(e.contains("--ca-file"), "{e}");
    }
}
