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
            return Err(Error::credentials_invalid("accessKey is empty"));
        }
        if secret_key.is_empty() {
            return Err(Error::credentials_invalid("secretKey is empty"));
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
            (Some(_), Some(_), Some(_)) => Err(Error::credentials_invalid(format!(
                "both AK/SK ({ENV_AK}, {ENV_SK}) and a token ({ENV_AUTH_TOKEN}) are set; set only one"
            ))),
            (Some(ak), Some(sk), None) => Self::aksk(&ak, &sk, get(ENV_SECURITY_TOKEN).as_deref()),
            (None, None, Some(t)) => Ok(Credentials::Token(SecretString::from(t))),
            (Some(_), None, _) => Err(Error::credentials_invalid(format!(
                "{ENV_AK} is set but {ENV_SK} is not"
            ))),
            (None, Some(_), _) => Err(Error::credentials_invalid(format!(
                "{ENV_SK} is set but {ENV_AK} is not"
            ))),
            (None, None, None) => Err(Error::credentials_missing(format!(
                "no credentials: set {ENV_AK} and {ENV_SK} (optionally {ENV_SECURITY_TOKEN}), or {ENV_AUTH_TOKEN}"
            ))),
        }
    }

    /// AK/SK from a Secret's data (`accessKey`, `secretKey`, optional `securityToken`);
    /// `secret` is `namespace/name`, used only in messages, which never carry a value.
    pub fn from_secret_data(
        secret: &str,
        data: &std::collections::BTreeMap<String, k8s_openapi::ByteString>,
    ) -> Result<Self> {
        let text = |key: &str| -> Result<Option<String>> {
            data.get(key)
                .map(|v| {
                    std::str::from_utf8(&v.0)
                        .map(|s| s.trim().to_string())
                        .map_err(|_| {
                            Error::credentials_invalid(format!("key {key} of Secret {secret} is not UTF-8"))
                        })
                })
                .transpose()
        };
        let missing = |key: &str| Error::credentials_missing(format!("Secret {secret} has no key {key}"));
        let ak = text("accessKey")?.ok_or_else(|| missing("accessKey"))?;
        let sk = text("secretKey")?.ok_or_else(|| missing("secretKey"))?;
        let token = text("securityToken")?;
        Self::aksk(&ak, &sk, token.as_deref()).map_err(|e| match e {
            Error::Credentials { problem, message } => Error::Credentials {
                problem,
                message: format!("Secret {secret}: {message}"),
            },
            other => other,
        })
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
    fn secret_data_problems_name_the_secret_and_key_never_a_value() {
        use crate::error::CredentialsProblem;
        use k8s_openapi::ByteString;
        let data = |pairs: &[(&str, &[u8])]| {
            pairs
                .iter()
                .map(|(k, v)| (k.to_string(), ByteString(v.to_vec())))
                .collect::<std::collections::BTreeMap<_, _>>()
        };
        let problem = |e: Error| match e {
            Error::Credentials { problem, message } => (problem, message),
            other => panic!("{other}"),
        };
        let ok = Credentials::from_secret_data(
            "ml/ma",
            &data(&[("accessKey", b" AK1 \n"), ("secretKey", b"sk-value")]),
        );
        assert!(matches!(ok, Ok(Credentials::AkSk { ref access_key, .. }) if access_key == "AK1"));
        let (p, m) =
            problem(Credentials::from_secret_data("ml/ma", &data(&[("accessKey", b"AK1")])).unwrap_err());
        assert_eq!(
            (p, m.as_str()),
            (CredentialsProblem::Missing, "Secret ml/ma has no key secretKey")
        );
        let (p, m) = problem(
            Credentials::from_secret_data(
                "ml/ma",
                &data(&[("accessKey", b"AK1"), ("secretKey", &[0xff, 0xfe])]),
            )
            .unwrap_err(),
        );
        assert_eq!(
            (p, m.as_str()),
            (
                CredentialsProblem::Invalid,
                "key secretKey of Secret ml/ma is not UTF-8"
            )
        );
        let (p, m) = problem(
            Credentials::from_secret_data(
                "ml/ma",
                &data(&[("accessKey", b"  "), ("secretKey", b"sk-value")]),
            )
            .unwrap_err(),
        );
        assert_eq!(
            (p, m.as_str()),
            (CredentialsProblem::Invalid, "Secret ml/ma: accessKey is empty")
        );
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
