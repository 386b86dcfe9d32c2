//! ModelArts credentials and the headers that authenticate a request.

use crate::{
    error::{Error, Result},
    signer::{self, EMPTY_BODY_SHA256, SigningRequest},
};
use secrecy::{ExposeSecret, SecretString};

/// Environment variable with the access key ID, as the official SDKs read it.
pub const ENV_AK: &str = "HUAWEICLOUD_SDK_AK";
/// Environment variable with the secret access key.
pub const ENV_SK: &str = "HUAWEICLOUD_SDK_SK";
/// Environment variable with the security token of temporary credentials.
pub const ENV_SECURITY_TOKEN: &str = "HUAWEICLOUD_SDK_SECURITY_TOKEN";
/// Environment variable with a project-scoped IAM token (token mode).
pub const ENV_AUTH_TOKEN: &str = "HUAWEICLOUD_SDK_AUTH_TOKEN";

/// How requests are authenticated. `Debug` never shows a secret.
#[derive(Clone)]
pub enum Credentials {
    /// AK/SK signing, optionally temporary (with a security token).
    AkSk {
        /// Access key ID (an identifier, sent in clear in `Authorization`).
        access_key: String,
        /// Secret access key; only ever used as the HMAC key.
        secret_key: SecretString,
        /// `X-Security-Token` of temporary credentials.
        security_token: Option<SecretString>,
    },
    /// A project-scoped IAM token sent as `X-Auth-Token`.
    Token(SecretString),
}

impl std::fmt::Debug for Credentials {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Credentials::AkSk {
                access_key,
                security_token,
                ..
            } => f
                .debug_struct("AkSk")
                .field("access_key", &redact_id(access_key))
                .field("secret_key", &"[REDACTED]")
                .field("security_token", &security_token.as_ref().map(|_| "[REDACTED]"))
                .finish(),
            Credentials::Token(_) => f.write_str("Token([REDACTED])"),
        }
    }
}

/// Shows only the first four characters of an access key ID.
pub fn redact_id(id: &str) -> String {
    let head: String = id.chars().take(4).collect();
    format!("{head}…")
}

impl Credentials {
    /// AK/SK credentials; empty keys are refused with the field named.
    pub fn aksk(access_key: &str, secret_key: &str, security_token: Option<&str>) -> Result<Self> {
        if access_key.trim().is_empty() {
            return Err(Error::Credentials("accessKey is empty".into()));
        }
        if secret_key.is_empty() {
            return Err(Error::Credentials("secretKey is empty".into()));
        }
        Ok(Credentials::AkSk {
            access_key: access_key.trim().to_string(),
            secret_key: SecretString::from(secret_key.to_string()),
            security_token: security_token
                .filter(|t| !t.is_empty())
                .map(|t| SecretString::from(t.to_string())),
        })
    }

    /// Reads `HUAWEICLOUD_SDK_AK`/`_SK` (+ `_SECURITY_TOKEN`), or `HUAWEICLOUD_SDK_AUTH_TOKEN`.
    pub fn from_env() -> Result<Self> {
        Self::from_lookup(|k| std::env::var(k).ok())
    }

    /// Like [`Credentials::from_env`] with an injectable lookup, for tests.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let ak = get(ENV_AK).filter(|v| !v.is_empty());
        let sk = get(ENV_SK).filter(|v| !v.is_empty());
        let token = get(ENV_AUTH_TOKEN).filter(|v| !v.is_empty());
        match (ak, sk, token) {
            (Some(_), Some(_), Some(_)) => Err(Error::Credentials(format!(
                "both AK/SK ({ENV_AK}, {ENV_SK}) and a token ({ENV_AUTH_TOKEN}) are set; set only one"
            ))),
            (Some(ak), Some(sk), None) => Self::aksk(&ak, &sk, get(ENV_SECURITY_TOKEN).as_deref()),
            (None, None, Some(t)) => Ok(Credentials::Token(SecretString::from(t))),
            (Some(_), None, _) => Err(Error::Credentials(format!("{ENV_AK} is set but {ENV_SK} is not"))),
            (None, Some(_), _) => Err(Error::Credentials(format!("{ENV_SK} is set but {ENV_AK} is not"))),
            (None, None, None) => Err(Error::Credentials(format!(
                "no credentials: set {ENV_AK} and {ENV_SK} (optionally {ENV_SECURITY_TOKEN}), or {ENV_AUTH_TOKEN}"
            ))),
        }
    }

    /// The headers that authenticate a bodiless request: `X-Sdk-Date`, `X-Project-Id`,
    /// `X-Security-Token` and `Authorization` for AK/SK, or `X-Auth-Token` for a token.
    ///
    /// `host` is the `Host` header as sent (with the port when it is not the default);
    /// `query` must be the canonical query string that is also sent on the wire.
    pub fn auth_headers(
        &self,
        method: &str,
        host: &str,
        path: &str,
        query: &str,
        project_id: &str,
        now: jiff::Timestamp,
    ) -> Vec<(&'static str, String)> {
        match self {
            Credentials::Token(t) => vec![("X-Auth-Token", t.expose_secret().to_string())],
            Credentials::AkSk {
                access_key,
                secret_key,
                security_token,
            } => {
                let date = now.strftime(signer::DATE_FORMAT).to_string();
                let mut signed: Vec<(&str, &str)> = vec![
                    ("host", host),
                    ("x-project-id", project_id),
                    ("x-sdk-date", &date),
                ];
                if let Some(tok) = security_token {
                    signed.push(("x-security-token", tok.expose_secret()));
                }
                let req = SigningRequest {
                    method,
                    path,
                    query,
                    headers: &signed,
                    body_sha256: EMPTY_BODY_SHA256,
                };
                let auth = signer::authorization(access_key, secret_key.expose_secret(), &date, &req);
                let mut out = vec![
                    ("X-Project-Id", project_id.to_string()),
                    ("X-Sdk-Date", date.clone()),
                ];
                if let Some(tok) = security_token {
                    out.push(("X-Security-Token", tok.expose_secret().to_string()));
                }
                out.push(("Authorization", auth));
                out
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let m: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        move |k| m.get(k).cloned()
    }

    #[test]
    fn debug_never_shows_secrets() {
        let c = Credentials::aksk("HPUAEXAMPLEAK0000001", "super-secret-sk", Some("tok-secret")).unwrap();
        let dbg = format!("{c:?}");
        assert!(
            !dbg.contains("super-secret-sk") && !dbg.contains("tok-secret") && !dbg.contains("EXAMPLEAK"),
            "{dbg}"
        );
        let t = Credentials::Token(SecretString::from("iam-token-value".to_string()));
        assert!(!format!("{t:?}").contains("iam-token-value"));
    }

    #[test]
    fn env_lookup_names_the_missing_variable() {
        let e = Credentials::from_lookup(env(&[(ENV_AK, "ak")]))
            .unwrap_err()
            .to_string();
        assert!(e.contains(ENV_SK), "{e}");
        let e = Credentials::from_lookup(env(&[])).unwrap_err().to_string();
        assert!(e.contains(ENV_AK) && e.contains(ENV_AUTH_TOKEN), "{e}");
        assert!(matches!(
            Credentials::from_lookup(env(&[(ENV_AUTH_TOKEN, "t")])).unwrap(),
            Credentials::Token(_)
        ));
    }

    #[test]
    fn aksk_headers_match_the_published_vector() {
        let c = Credentials::aksk(
            "HPUAEXAMPLEAK0000001",
            "exampleSecretKey0000000000000000000000000",
            Some("tok-EXAMPLE"),
        )
        .unwrap();
        let now: jiff::Timestamp = "2024-01-02T03:04:05Z".parse().unwrap();
        let q = signer::canonical_query(&[("limit", "50"), ("continue", "eyJ2IjoxfQ==")]);
        let h = c.auth_headers(
            "GET",
            "modelarts.cn-north-4.myhuaweicloud.com",
            "/v2/0123456789abcdef0123456789abcdef/pools/pool-demo-0001/nodepools/np-a/nodes",
            &q,
            "0123456789abcdef0123456789abcdef",
            now,
        );
        let get = |n: &str| h.iter().find(|(k, _)| *k == n).map(|(_, v)| v.as_str());
        assert_eq!(get("X-Sdk-Date"), Some("20240102T030405Z"));
        assert_eq!(get("X-Security-Token"), Some("tok-EXAMPLE"));
        assert!(get("Authorization").unwrap().ends_with(
            "SignedHeaders=host;x-project-id;x-sdk-date;x-security-token, \
             Signature=1e78444886e7cc51fc6c6b1fa37046c25a0242cc4eb9c6b923cc5d1fc7c577ef"
        ));
    }
}
