//! Request authentication as the API gateway does it: `SDK-HMAC-SHA256` or `X-Auth-Token`,
//! with the 15-minute clock window and the 5-failure AK lockout.

use crate::data::CredentialSpec;
use crate::verify::{self, ParsedAuthorization};
use axum::http::HeaderMap;
use modelarts_operator::signer::{self, SigningRequest};
use secrecy::{ExposeSecret, SecretString};
use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

/// Why authentication failed; each answers 401 APIGW.0301 with its own text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthFailure {
    /// Neither `Authorization` nor `X-Auth-Token` was sent.
    TokenNotFound,
    /// `X-Auth-Token` is not a configured token.
    TokenInvalid,
    /// The access key is unknown.
    AkNotFound,
    /// The signature (or a signed header, or the security token) does not verify.
    SignatureFail,
    /// `X-Sdk-Date` is more than the allowed skew away from now.
    SignatureExpired,
    /// Too many consecutive failures: the AK is locked for a while.
    AkLocked,
    /// Temporary credentials past their expiry.
    CredentialExpired,
}

impl AuthFailure {
    /// The `error_msg`, as the gateway words it.
    pub fn message(self) -> &'static str {
        match self {
            AuthFailure::TokenNotFound => "Incorrect IAM authentication information: x-auth-token not found",
            AuthFailure::TokenInvalid => "Incorrect IAM authentication information: decrypt token fail",
            AuthFailure::AkNotFound => "Incorrect IAM authentication information: ak not found",
            AuthFailure::SignatureFail => {
                "Incorrect IAM authentication information: verify aksk signature fail"
            }
            AuthFailure::SignatureExpired => "Incorrect IAM authentication information: signature expired",
            AuthFailure::AkLocked => "Incorrect IAM authentication information: ak locked",
            AuthFailure::CredentialExpired => {
                "Incorrect IAM authentication information: the security token has expired"
            }
        }
    }
}

/// The parts of a received request that authentication looks at.
#[derive(Debug, Clone, Copy)]
pub struct AuthRequest<'a> {
    /// HTTP method.
    pub method: &'a str,
    /// Path as received (still percent-encoded).
    pub path: &'a str,
    /// Raw query as received, without `?`.
    pub raw_query: &'a str,
    /// All request headers.
    pub headers: &'a HeaderMap,
    /// Lower-hex SHA-256 of the body as received.
    pub body_sha256: &'a str,
}

/// AK lockout policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Lockout {
    /// Consecutive failures that lock an AK.
    pub failures: u32,
    /// How long it stays locked.
    pub duration: Duration,
}

impl Default for Lockout {
    fn default() -> Self {
        Lockout {
            failures: 5,
            duration: Duration::from_secs(300),
        }
    }
}

#[derive(Debug, Default)]
struct LockState {
    failures: u32,
    locked_until: Option<jiff::Timestamp>,
}

/// Who a request authenticated as.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Identity {
    /// Signed with this access key.
    AccessKey(String),
    /// Sent a configured IAM token.
    Token,
}

/// Credentials, tokens and lockout bookkeeping.
#[derive(Debug)]
pub struct Authenticator {
    credentials: BTreeMap<String, CredentialSpec>,
    tokens: Vec<SecretString>,
    locks: HashMap<String, LockState>,
    lockout: Option<Lockout>,
    max_skew: Duration,
}

impl Authenticator {
    /// A verifier for these credentials; `lockout: None` never locks.
    pub fn new(
        creds: Vec<CredentialSpec>,
        tokens: Vec<SecretString>,
        lockout: Option<Lockout>,
        max_skew: Duration,
    ) -> Self {
        let credentials = creds.into_iter().map(|c| (c.access_key.clone(), c)).collect();
        Authenticator {
            credentials,
            tokens,
            locks: HashMap::new(),
            lockout,
            max_skew,
        }
    }

    /// Adds or replaces a credential; replacing clears its lockout.
    pub fn upsert_credential(&mut self, cred: CredentialSpec) {
        self.locks.remove(&cred.access_key);
        self.credentials.insert(cred.access_key.clone(), cred);
    }

    /// Adds a token (no-op if already accepted).
    pub fn add_token(&mut self, token: SecretString) {
        if !self
            .tokens
            .iter()
            .any(|t| t.expose_secret() == token.expose_secret())
        {
            self.tokens.push(token);
        }
    }

    /// Removes the credential with this AK, or else the token with this value.
    pub fn remove(&mut self, ak_or_token: &str) -> bool {
        if self.credentials.remove(ak_or_token).is_some() {
            self.locks.remove(ak_or_token);
            return true;
        }
        let before = self.tokens.len();
        self.tokens.retain(|t| t.expose_secret() != ak_or_token);
        before != self.tokens.len()
    }

    /// Forgets every failure count and lock.
    pub fn clear_lockouts(&mut self) {
        self.locks.clear();
    }

    /// Authenticates one request at time `now`, updating the lockout counters.
    pub fn check(&mut self, req: &AuthRequest<'_>, now: jiff::Timestamp) -> Result<Identity, AuthFailure> {
        if let Some(auth) = header(req.headers, "authorization") {
            let parsed = verify::parse_authorization(auth).ok_or(AuthFailure::SignatureFail)?;
            let cred = self
                .credentials
                .get(&parsed.access)
                .ok_or(AuthFailure::AkNotFound)?;
            let lock = self.locks.entry(parsed.access.clone()).or_default();
            if lock.locked_until.is_some_and(|until| now < until) {
                return Err(AuthFailure::AkLocked);
            }
            if cred.expires_at.is_some_and(|at| now >= at) {
                return Err(AuthFailure::CredentialExpired);
            }
            match verify_signature(cred, &parsed, req, now, self.max_skew) {
                Ok(()) => {
                    *lock = LockState::default();
                    Ok(Identity::AccessKey(parsed.access))
                }
                Err(e) => {
                    if let Some(policy) = self.lockout.filter(|p| p.failures > 0) {
                        lock.failures = if lock.locked_until.is_some() {
                            1
                        } else {
                            lock.failures + 1
                        };
                        lock.locked_until = None;
                        if lock.failures >= policy.failures {
                            lock.locked_until = now.checked_add(policy.duration).ok();
                        }
                    }
                    Err(e)
                }
            }
        } else if let Some(token) = header(req.headers, "x-auth-token") {
            let ok = self
                .tokens
                .iter()
                .any(|t| verify::secrets_equal(t.expose_secret(), token));
            if ok {
                Ok(Identity::Token)
            } else {
                Err(AuthFailure::TokenInvalid)
            }
        } else {
            Err(AuthFailure::TokenNotFound)
        }
    }
}

fn header<'h>(headers: &'h HeaderMap, name: &str) -> Option<&'h str> {
    headers.get(name).and_then(|v| v.to_str().ok())
}

/// Recomputes the signature over exactly the headers the client listed as signed.
pub fn verify_signature(
    cred: &CredentialSpec,
    parsed: &ParsedAuthorization,
    req: &AuthRequest<'_>,
    now: jiff::Timestamp,
    max_skew: Duration,
) -> Result<(), AuthFailure> {
    if !parsed.signed_headers.iter().any(|h| h == "x-sdk-date") {
        return Err(AuthFailure::SignatureFail);
    }
    let date = header(req.headers, "x-sdk-date").ok_or(AuthFailure::SignatureFail)?;
    let sent_at = jiff::civil::DateTime::strptime(signer::DATE_FORMAT, date)
        .ok()
        .and_then(|dt| dt.to_zoned(jiff::tz::TimeZone::UTC).ok())
        .map(|z| z.timestamp())
        .ok_or(AuthFailure::SignatureFail)?;
    let skew = now.as_second().abs_diff(sent_at.as_second());
    if skew > max_skew.as_secs() {
        return Err(AuthFailure::SignatureExpired);
    }
    let sent_token = header(req.headers, "x-security-token");
    let token_signed = parsed.signed_headers.iter().any(|h| h == "x-security-token");
    match (&cred.security_token, sent_token) {
        (Some(want), Some(got)) if token_signed && verify::secrets_equal(want.expose_secret(), got) => {}
        (None, None) => {}
        _ => return Err(AuthFailure::SignatureFail),
    }
    let mut signed: Vec<(&str, &str)> = Vec::new();
    for name in &parsed.signed_headers {
        let mut values = req.headers.get_all(name.as_str()).iter().peekable();
        if values.peek().is_none() {
            return Err(AuthFailure::SignatureFail);
        }
        for v in values {
            signed.push((name.as_str(), v.to_str().map_err(|_| AuthFailure::SignatureFail)?));
        }
    }
    let body_sha256 = match header(req.headers, "x-sdk-content-sha256") {
        Some("UNSIGNED-PAYLOAD") => "UNSIGNED-PAYLOAD",
        _ => req.body_sha256,
    };
    let query = verify::canonicalize_raw_query(req.raw_query);
    let sreq = SigningRequest {
        method: req.method,
        path: req.path,
        query: &query,
        headers: &signed,
        body_sha256,
    };
    let string_to_sign = signer::string_to_sign(date, &signer::canonical_request(&sreq));
    if verify::signature_matches(
        cred.secret_key.expose_secret(),
        &string_to_sign,
        &parsed.signature,
    ) {
        Ok(())
    } else {
        Err(AuthFailure::SignatureFail)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::{HeaderName, HeaderValue};
    use modelarts_operator::credentials::Credentials;
    use modelarts_operator::signer::EMPTY_BODY_SHA256;

    const AK: &str = "DEMOACCESSKEY0000001";
    const SK: &str = "demo-secret-key-not-for-production-0000000";
    const HOST: &str = "127.0.0.1:18080";
    const PATH: &str = "/v2/0123456789abcdef0123456789abcdef/pools/pool-x/nodepools/np/nodes";
    const PROJECT: &str = "0123456789abcdef0123456789abcdef";

    fn now() -> jiff::Timestamp {
        "2024-05-06T07:08:09Z".parse().unwrap()
    }

    fn auth(lockout: Option<Lockout>, sts: Option<&str>) -> Authenticator {
        let mut c = CredentialSpec::new(AK, SK);
        if let Some(t) = sts {
            c = c.with_security_token(t);
        }
        let tokens = vec![SecretString::from("tok-1".to_string())];
        Authenticator::new(vec![c], tokens, lockout, Duration::from_secs(900))
    }

    /// Headers exactly as the crate's own client would send them.
    fn signed_headers(creds: &Credentials, query: &str, at: jiff::Timestamp) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert("host", HeaderValue::from_static(HOST));
        for (k, v) in creds.auth_headers("GET", HOST, PATH, query, PROJECT, at) {
            h.insert(
                HeaderName::from_bytes(k.as_bytes()).unwrap(),
                HeaderValue::from_str(&v).unwrap(),
            );
        }
        h
    }

    fn req<'a>(h: &'a HeaderMap, raw_query: &'a str) -> AuthRequest<'a> {
        AuthRequest {
            method: "GET",
            path: PATH,
            raw_query,
            headers: h,
            body_sha256: EMPTY_BODY_SHA256,
        }
    }

    #[test]
    fn accepts_the_crate_client_signature_and_rejects_tampering() {
        let creds = Credentials::aksk(AK, SK, None).unwrap();
        let q = signer::canonical_query(&[("limit", "50"), ("continue", "eyJ2IjoxfQ==")]);
        let h = signed_headers(&creds, &q, now());
        let mut a = auth(None, None);
        assert_eq!(a.check(&req(&h, &q), now()), Ok(Identity::AccessKey(AK.into())));
        // The server re-canonicalizes: an unsorted, unescaped query still verifies.
        assert!(a.check(&req(&h, "limit=50&continue=eyJ2IjoxfQ=="), now()).is_ok());
        assert_eq!(
            a.check(&req(&h, "limit=51&continue=eyJ2IjoxfQ%3D%3D"), now()),
            Err(AuthFailure::SignatureFail)
        );
        let mut other_host = h.clone();
        other_host.insert("host", HeaderValue::from_static("127.0.0.1:9"));
        assert_eq!(
            a.check(&req(&other_host, &q), now()),
            Err(AuthFailure::SignatureFail)
        );
        let wrong = Credentials::aksk(AK, "not-the-secret", None).unwrap();
        assert_eq!(
            a.check(&req(&signed_headers(&wrong, &q, now()), &q), now()),
            Err(AuthFailure::SignatureFail)
        );
        let stranger = Credentials::aksk("UNKNOWNAK", SK, None).unwrap();
        assert_eq!(
            a.check(&req(&signed_headers(&stranger, &q, now()), &q), now()),
            Err(AuthFailure::AkNotFound)
        );
    }

    #[test]
    fn clock_window_is_fifteen_minutes() {
        let creds = Credentials::aksk(AK, SK, None).unwrap();
        let mut a = auth(None, None);
        let at = |mins: i64| now().checked_add(jiff::SignedDuration::from_mins(mins)).unwrap();
        assert!(
            a.check(&req(&signed_headers(&creds, "", at(-14)), ""), now())
                .is_ok()
        );
        assert_eq!(
            a.check(&req(&signed_headers(&creds, "", at(16)), ""), now()),
            Err(AuthFailure::SignatureExpired)
        );
    }

    #[test]
    fn temporary_credentials_need_the_matching_signed_token() {
        let q = "";
        let mut a = auth(None, Some("sts-1"));
        let good = Credentials::aksk(AK, SK, Some("sts-1")).unwrap();
        assert!(a.check(&req(&signed_headers(&good, q, now()), q), now()).is_ok());
        let bad = Credentials::aksk(AK, SK, Some("sts-2")).unwrap();
        assert_eq!(
            a.check(&req(&signed_headers(&bad, q, now()), q), now()),
            Err(AuthFailure::SignatureFail)
        );
        let none = Credentials::aksk(AK, SK, None).unwrap();
        assert_eq!(
            a.check(&req(&signed_headers(&none, q, now()), q), now()),
            Err(AuthFailure::SignatureFail)
        );
    }

    #[test]
    fn tokens_and_missing_auth() {
        let mut a = auth(None, None);
        let mut h = HeaderMap::new();
        assert_eq!(a.check(&req(&h, ""), now()), Err(AuthFailure::TokenNotFound));
        h.insert("x-auth-token", HeaderValue::from_static("tok-2"));
        assert_eq!(a.check(&req(&h, ""), now()), Err(AuthFailure::TokenInvalid));
        h.insert("x-auth-token", HeaderValue::from_static("tok-1"));
        assert_eq!(a.check(&req(&h, ""), now()), Ok(Identity::Token));
        assert!(a.remove("tok-1"));
        assert_eq!(a.check(&req(&h, ""), now()), Err(AuthFailure::TokenInvalid));
    }

    #[test]
    fn five_failures_lock_the_ak_for_five_minutes() {
        let mut a = auth(Some(Lockout::default()), None);
        let good = Credentials::aksk(AK, SK, None).unwrap();
        let bad = Credentials::aksk(AK, "wrong", None).unwrap();
        for _ in 0..5 {
            assert_eq!(
                a.check(&req(&signed_headers(&bad, "", now()), ""), now()),
                Err(AuthFailure::SignatureFail)
            );
        }
        assert_eq!(
            a.check(&req(&signed_headers(&good, "", now()), ""), now()),
            Err(AuthFailure::AkLocked)
        );
        let later = now().checked_add(jiff::SignedDuration::from_secs(301)).unwrap();
        assert!(
            a.check(&req(&signed_headers(&good, "", later), ""), later)
                .is_ok()
        );
        a.upsert_credential(CredentialSpec::new(AK, SK));
        assert!(
            a.check(&req(&signed_headers(&good, "", later), ""), later)
                .is_ok()
        );
    }
}
