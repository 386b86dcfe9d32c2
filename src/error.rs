//! The crate-wide error type.

use std::time::Duration;

/// Everything that can go wrong, from bad input to a failed cloud call.
///
/// Messages name the field and the value at fault, and never carry a secret: credentials
/// are only ever held as `secrecy::SecretString`, which cannot be formatted.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A flag, spec field or file held a value that cannot be used.
    #[error("invalid {field} {value:?}: {reason}")]
    InvalidInput {
        /// The flag or field, e.g. `spec.endpoint`.
        field: String,
        /// The offending value (never a secret).
        value: String,
        /// Why it was refused.
        reason: String,
    },

    /// Credentials could not be found, read or used.
    #[error("credentials: {message}")]
    Credentials {
        /// What kind of problem, for the condition reason.
        problem: CredentialsProblem,
        /// What is wrong, naming the Secret and key (never a value).
        message: String,
    },

    /// ModelArts (or its API gateway) answered with an error status.
    #[error(transparent)]
    Api(#[from] ApiError),

    /// The request never got an HTTP answer (connect, TLS, timeout, reset).
    #[error("request to {endpoint} failed: {reason}")]
    Transport {
        /// Scheme and host, without path or query.
        endpoint: String,
        /// What failed, e.g. `timed out after 30s`.
        reason: String,
    },

    /// The TLS handshake failed on the server's certificate; retrying cannot help until
    /// the certificate or the operator's trust settings change.
    #[error("certificate of {endpoint} rejected: {problem}: {detail}")]
    Certificate {
        /// Scheme, host and port, without path or query.
        endpoint: String,
        /// What is wrong with it, for the condition reason.
        problem: CertificateProblem,
        /// The TLS library's words, plus a hint on what to change.
        detail: String,
    },

    /// A 2xx answer that is not a usable node list, or a paging protocol violation.
    #[error("invalid response from ModelArts: {0}")]
    InvalidResponse(String),

    /// A Kubernetes API call failed.
    #[error("kubernetes: {0}")]
    Kube(#[from] kube::Error),

    /// The status patch was refused; the resource is retried after `retry_in`.
    #[error("writing status: {source}")]
    StatusWrite {
        /// What the API server said.
        #[source]
        source: kube::Error,
        /// The per-resource backoff already decided.
        retry_in: Duration,
    },

    /// Leader election could not read or write its Lease.
    #[error("leader election: {0}")]
    Lease(#[from] kube_lease_manager::LeaseManagerError),

    /// Local I/O (data files, sockets).
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl Error {
    /// Shorthand for [`Error::InvalidInput`].
    pub fn invalid(field: impl Into<String>, value: impl Into<String>, reason: impl Into<String>) -> Self {
        Error::InvalidInput {
            field: field.into(),
            value: value.into(),
            reason: reason.into(),
        }
    }

    /// Credentials that do not exist (no Secret, no key, no default allowed).
    pub fn credentials_missing(message: impl Into<String>) -> Self {
        Error::Credentials {
            problem: CredentialsProblem::Missing,
            message: message.into(),
        }
    }

    /// Credentials that exist but cannot be used (empty, not UTF-8, conflicting).
    pub fn credentials_invalid(message: impl Into<String>) -> Self {
        Error::Credentials {
            problem: CredentialsProblem::Invalid,
            message: message.into(),
        }
    }

    /// A short, stable label for metrics (`api_4xx`, `transport`, ...).
    pub fn metric_label(&self) -> &'static str {
        match self {
            Error::InvalidInput { .. } => "invalid_input",
            Error::Credentials { .. } => "credentials",
            Error::Api(e) if e.status == 429 => "throttled",
            Error::Api(e) if e.status >= 500 => "api_5xx",
            Error::Api(_) => "api_4xx",
            Error::Transport { .. } => "transport",
            Error::Certificate { .. } => "certificate",
            Error::InvalidResponse(_) => "invalid_response",
            Error::Kube(_) => "kube",
            Error::StatusWrite { .. } => "status_write_failed",
            Error::Io { .. } => "io",
            Error::Lease(_) => "lease",
        }
    }

    /// How long the server asked us to wait, when it did.
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Error::Api(e) => e.retry_after,
            _ => None,
        }
    }
}

/// Why credentials could not be had; each maps to its own condition reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CredentialsProblem {
    /// Nothing to use: the Secret or a key is missing, or defaults are not allowed.
    Missing,
    /// Present but unusable: empty, not UTF-8, or conflicting settings.
    Invalid,
    /// The operator's identity may not read the Secret (RBAC).
    Forbidden,
    /// No keyless source (Pod Identity, OIDC, metadata, file) gave credentials.
    ExchangeFailed,
}

/// Why a server certificate was refused; each maps to its own condition reason.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CertificateProblem {
    /// Not issued by a CA the operator trusts (private CA not configured, wrong bundle,
    /// self-signed, or a TLS-inspecting proxy's CA missing).
    Untrusted,
    /// Outside its validity period: expired, or not yet valid.
    Expired,
    /// Valid, but not for the host name (or IP address) of the endpoint.
    HostMismatch,
    /// Anything else: revoked, bad signature, malformed, wrong key usage.
    Invalid,
}

impl std::fmt::Display for CertificateProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            CertificateProblem::Untrusted => "issued by an untrusted certificate authority",
            CertificateProblem::Expired => "expired or not yet valid",
            CertificateProblem::HostMismatch => "not valid for this host name",
            CertificateProblem::Invalid => "invalid",
        })
    }
}

/// An error answer from ModelArts or the API gateway in front of it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    /// HTTP status code.
    pub status: u16,
    /// `ModelArts.50004000`, `APIGW.0301`, ... when the body had one.
    pub code: Option<String>,
    /// The body's `error_msg` (or `message`), when it had one.
    pub message: Option<String>,
    /// `X-Request-Id` header, or the body's `request_id`.
    pub request_id: Option<String>,
    /// `Retry-After`, when sent with a 429 or 503.
    pub retry_after: Option<Duration>,
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match (&self.code, &self.message) {
            (Some(c), Some(m)) => write!(f, "{c}: {m}")?,
            (Some(c), None) => write!(f, "{c}")?,
            (None, Some(m)) => write!(f, "HTTP {}: {m}", self.status)?,
            (None, None) => write!(f, "HTTP {}", self.status)?,
        }
        match &self.request_id {
            Some(id) => write!(f, " (HTTP {}, request id {id})", self.status),
            None => write!(f, " (HTTP {})", self.status),
        }
    }
}

impl std::error::Error for ApiError {}

impl ApiError {
    /// True for answers worth retrying: throttling and gateway/backend unavailability.
    pub fn is_retryable(&self) -> bool {
        matches!(self.status, 429 | 502 | 503 | 504)
    }
}

/// Result alias used across the crate.
pub type Result<T, E = Error> = std::result::Result<T, E>;
