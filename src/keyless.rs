//! Keyless credential sources: where temporary AK/SK come from when no Secret holds a key.
//! The wire shapes are the official SDKs' (`PodIdentityAccessor`, `FederalAccessor` +
//! `IamHelper`, `MetadataAccessor` of huaweicloudsdkcore), so an operator Pod configured for the
//! SDKs (same environment variables) works unchanged.

use crate::credentials::Credentials;
use crate::error::{CredentialsProblem, Error, Result};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// CCE Pod Identity: the credentials endpoint injected by the CCE add-on.
pub const ENV_POD_IDENTITY_URI: &str = "HC_CONTAINER_CREDENTIALS_FULL_URI";
/// CCE Pod Identity: the ServiceAccount token sent as `Authorization` (re-read per exchange).
pub const ENV_POD_IDENTITY_TOKEN_FILE: &str = "HC_CONTAINER_AUTHORIZATION_TOKEN_FILE";
/// OIDC federation: the IAM identity provider ID.
pub const ENV_IDP_ID: &str = "HUAWEICLOUD_SDK_IDP_ID";
/// OIDC federation: the projected ServiceAccount token (the ID token).
pub const ENV_ID_TOKEN_FILE: &str = "HUAWEICLOUD_SDK_ID_TOKEN_FILE";
/// IAM endpoint override (default [`DEFAULT_IAM_ENDPOINT`]).
pub const ENV_IAM_ENDPOINT: &str = "HUAWEICLOUD_SDK_IAM_ENDPOINT";
/// The SDKs' credentials profile file.
pub const ENV_CREDENTIALS_FILE: &str = "HUAWEICLOUD_SDK_CREDENTIALS_FILE";
/// IAM's global endpoint, as the SDKs default to it.
pub const DEFAULT_IAM_ENDPOINT: &str = "https://iam.myhuaweicloud.com";
/// The ECS/BMS metadata service.
pub const DEFAULT_METADATA_ENDPOINT: &str = "http://169.254.169.254";
/// Temporary credentials asked of IAM, as the SDKs ask (6 h).
const DURATION_SECONDS: u64 = 6 * 60 * 60;

/// One place credentials come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Source {
    /// CCE Pod Identity: `POST uri` with `Authorization: <token file>`.
    PodIdentity {
        /// `HC_CONTAINER_CREDENTIALS_FULL_URI`.
        uri: String,
        /// `HC_CONTAINER_AUTHORIZATION_TOKEN_FILE`.
        token_file: PathBuf,
    },
    /// OIDC federation: ID token → unscoped IAM token → temporary AK/SK.
    Oidc {
        /// IAM endpoint.
        iam: String,
        /// `X-Idp-Id`.
        idp_id: String,
        /// File holding the ID token.
        id_token_file: PathBuf,
    },
    /// ECS/BMS metadata: `GET /openstack/latest/securitykey` (with a session token when offered).
    Metadata {
        /// Base URL, `http://169.254.169.254` outside tests.
        base: String,
    },
    /// The SDKs' profile file (`[basic]` or `[global]` with `ak`, `sk`, `security_token`),
    /// re-read whenever it changes, e.g. a mounted Secret.
    File {
        /// Path of the file.
        path: PathBuf,
    },
}

impl Source {
    /// Short name used in metrics, conditions and `spec.credentialSource`.
    pub fn kind(&self) -> &'static str {
        match self {
            Source::PodIdentity { .. } => "PodIdentity",
            Source::Oidc { .. } => "OIDC",
            Source::Metadata { .. } => "Metadata",
            Source::File { .. } => "File",
        }
    }

    /// The sources the SDK environment variables configure, in the SDKs' chain order
    /// (environment/OIDC, profile file, metadata when enabled, Pod Identity).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>, metadata: Option<String>) -> Vec<Source> {
        let get = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let mut out = Vec::new();
        if let (Some(idp_id), Some(file)) = (get(ENV_IDP_ID), get(ENV_ID_TOKEN_FILE)) {
            out.push(Source::Oidc {
                iam: get(ENV_IAM_ENDPOINT).unwrap_or_else(|| DEFAULT_IAM_ENDPOINT.to_string()),
                idp_id,
                id_token_file: file.into(),
            });
        }
        if let Some(path) = get(ENV_CREDENTIALS_FILE) {
            out.push(Source::File { path: path.into() });
        }
        if let Some(base) = metadata {
            out.push(Source::Metadata { base });
        }
        if let (Some(uri), Some(file)) = (get(ENV_POD_IDENTITY_URI), get(ENV_POD_IDENTITY_TOKEN_FILE)) {
            out.push(Source::PodIdentity {
                uri,
                token_file: file.into(),
            });
        }
        out
    }
}

impl Source {
    /// Identity endpoints carry credentials: https only, unless `allow_http` (the `http_flag`
    /// named in the error) lets tests use loopback fakes. The metadata service is plain http by
    /// design and a file has no endpoint.
    pub fn check_endpoint(&self, allow_http: bool, http_flag: &str) -> Result<()> {
        let (field, url) = match self {
            Source::PodIdentity { uri, .. } => (ENV_POD_IDENTITY_URI, uri),
            Source::Oidc { iam, .. } => (ENV_IAM_ENDPOINT, iam),
            Source::Metadata { .. } | Source::File { .. } => return Ok(()),
        };
        if url.starts_with("https://") || (allow_http && url.starts_with("http://")) {
            Ok(())
        } else {
            Err(Error::invalid(
                field,
                url.as_str(),
                format!("must be https:// (or http:// with {http_flag})"),
            ))
        }
    }
}

/// Credentials with the moment they stop working (`None`: never, e.g. a permanent file key).
#[derive(Debug, Clone)]
pub struct Issued {
    /// The credentials to sign with.
    pub credentials: Credentials,
    /// When they expire.
    pub expires_at: Option<jiff::Timestamp>,
}

fn failed(source: &Source, why: impl std::fmt::Display) -> Error {
    Error::Credentials {
        problem: CredentialsProblem::ExchangeFailed,
        message: format!("{}: {why}", source.kind()),
    }
}

/// A file's content, trimmed; the error names the file, never the content.
fn read_token(source: &Source, path: &Path) -> Result<String> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| failed(source, format!("reading {}: {e}", path.display())))?;
    let text = text.trim().to_string();
    if text.is_empty() {
        return Err(failed(source, format!("{} is empty", path.display())));
    }
    Ok(text)
}

/// Parses `{"credential": {...}}` / `{"credentials": {...}}` in any of the SDKs' key spellings.
pub fn parse_temporary(body: &str) -> std::result::Result<Issued, String> {
    let v: Value = serde_json::from_str(body).map_err(|e| format!("answer is not JSON: {e}"))?;
    let c = if v.get("credential").is_some() {
        &v["credential"]
    } else if v.get("credentials").is_some() {
        &v["credentials"]
    } else {
        &v
    };
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| c.get(*n).and_then(Value::as_str))
            .map(str::to_string)
    };
    let ak = field(&["access", "accessKeyId", "access_key_id"]).ok_or("answer has no access key")?;
    let sk = field(&["secret", "secretAccessKey", "secret_access_key"]).ok_or("answer has no secret key")?;
    let token =
        field(&["securitytoken", "securityToken", "security_token"]).ok_or("answer has no security token")?;
    let expires = field(&["expires_at", "expiration"]).ok_or("answer has no expiry")?;
    let expires_at = parse_expiry(&expires)?;
    let credentials = Credentials::aksk(&ak, &sk, Some(&token)).map_err(|e| e.to_string())?;
    Ok(Issued {
        credentials,
        expires_at: Some(expires_at),
    })
}

/// An expiry as the SDKs accept it: RFC 3339 with or without a fraction
/// (`2026-11-28T10:00:00Z`, `2026-11-28T10:00:00.000000Z`).
pub fn parse_expiry(s: &str) -> std::result::Result<jiff::Timestamp, String> {
    s.trim()
        .parse::<jiff::Timestamp>()
        .map_err(|e| format!("expiry {s:?} is not an RFC 3339 time: {e}"))
}

/// Parses the SDK profile format: `[basic]`/`[global]` sections with `ak`, `sk`,
/// `security_token`; the first section with both keys wins.
pub fn parse_profile(text: &str) -> std::result::Result<Credentials, String> {
    let mut section = String::new();
    let (mut ak, mut sk, mut token) = (None, None, None);
    for line in text.lines().map(str::trim) {
        if line.is_empty() || line.starts_with('#') || line.starts_with(';') {
            continue;
        }
        if let Some(name) = line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
            if ak.is_some() && sk.is_some() {
                break;
            }
            section = name.trim().to_string();
            (ak, sk, token) = (None, None, None);
            continue;
        }
        if section != "basic" && section != "global" {
            continue;
        }
        if let Some((k, v)) = line.split_once('=') {
            let v = Some(v.trim().to_string());
            match k.trim() {
                "ak" => ak = v,
                "sk" => sk = v,
                "security_token" => token = v,
                _ => {}
            }
        }
    }
    match (ak, sk) {
        (Some(ak), Some(sk)) => Credentials::aksk(&ak, &sk, token.as_deref()).map_err(|e| e.to_string()),
        _ => Err("no [basic] or [global] section with ak and sk".into()),
    }
}

/// Asks `source` for credentials once (no caching here: see `credential_cache`).
pub async fn exchange(source: &Source, http: &reqwest::Client) -> Result<Issued> {
    let timeout = Duration::from_secs(5);
    let answer = |status: reqwest::StatusCode, body: &str| -> Result<Issued> {
        if !status.is_success() {
            return Err(failed(source, format!("HTTP {}", status.as_u16())));
        }
        parse_temporary(body).map_err(|e| failed(source, e))
    };
    let send = |req: reqwest::RequestBuilder| async move {
        let resp = req.timeout(timeout).send().await.map_err(|e| {
            failed(
                source,
                format!("request failed: {}", crate::client::transport_reason(&e)),
            )
        })?;
        let status = resp.status();
        let headers = resp.headers().clone();
        let body = resp.text().await.unwrap_or_default();
        Ok::<_, Error>((status, headers, body))
    };
    match source {
        Source::PodIdentity { uri, token_file } => {
            let token = read_token(source, token_file)?;
            let (status, _, body) =
                send(http.post(uri).header("Authorization", token).json(&json!({}))).await?;
            answer(status, &body)
        }
        Source::Oidc {
            iam,
            idp_id,
            id_token_file,
        } => {
            let jwt = read_token(source, id_token_file)?;
            let iam = iam.trim_end_matches('/');
            let (status, headers, _) = send(
                http.post(format!("{iam}/v3.0/OS-AUTH/id-token/tokens"))
                    .header("X-Idp-Id", idp_id)
                    .json(&json!({"auth": {"id_token": {"id": jwt}}})),
            )
            .await?;
            if !status.is_success() {
                return Err(failed(
                    source,
                    format!("id-token exchange: HTTP {}", status.as_u16()),
                ));
            }
            let subject = headers
                .get("x-subject-token")
                .and_then(|v| v.to_str().ok())
                .ok_or_else(|| failed(source, "id-token exchange answered without X-Subject-Token"))?
                .to_string();
            let body = json!({"auth": {"identity": {"methods": ["token"],
                "token": {"id": subject, "duration_seconds": DURATION_SECONDS}}}});
            let (status, _, body) = send(
                http.post(format!("{iam}/v3.0/OS-CREDENTIAL/securitytokens"))
                    .json(&body),
            )
            .await?;
            answer(status, &body)
        }
        Source::Metadata { base } => {
            let base = base.trim_end_matches('/');
            let (status, _, token) = send(
                http.put(format!("{base}/meta-data/latest/api/token"))
                    .header("X-Metadata-Token-Ttl-Seconds", "21600"),
            )
            .await?;
            // 404/405/503: a metadata service without session tokens; go on without one.
            let mut req = http.get(format!("{base}/openstack/latest/securitykey"));
            if status.is_success() && !token.trim().is_empty() {
                req = req.header("X-Metadata-Token", token.trim());
            } else if !matches!(status.as_u16(), 404 | 405 | 503) {
                return Err(failed(source, format!("session token: HTTP {}", status.as_u16())));
            }
            let (status, _, body) = send(req).await?;
            answer(status, &body)
        }
        Source::File { path } => {
            let text = std::fs::read_to_string(path)
                .map_err(|e| failed(source, format!("reading {}: {e}", path.display())))?;
            let credentials =
                parse_profile(&text).map_err(|e| failed(source, format!("{}: {e}", path.display())))?;
            Ok(Issued {
                credentials,
                expires_at: None,
            })
        }
    }
}

/// The modification time of a file source, so a changed file is re-read.
pub fn file_stamp(source: &Source) -> Option<SystemTime> {
    match source {
        Source::File { path } => std::fs::metadata(path).and_then(|m| m.modified()).ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    #[test]
    fn both_sdk_answer_shapes_parse_with_either_expiry_format() {
        let iam = r#"{"credential":{"access":"TMPAK1","secret":"s1","securitytoken":"t1","expires_at":"2026-11-28T10:00:00.000000Z"}}"#;
        let pod = r#"{"assumedAgency":{},"credentials":{"accessKeyId":"TMPAK2","secretAccessKey":"s2","securityToken":"t2","expiration":"2026-11-28T10:00:00Z"}}"#;
        for (body, ak) in [(iam, "TMPAK1"), (pod, "TMPAK2")] {
            let issued = parse_temporary(body).expect("parses");
            // `date -ud 2026-11-28T10:00:00Z +%s`
            assert_eq!(issued.expires_at.map(|t| t.as_second()), Some(1_795_860_000));
            let dbg = format!("{:?}", issued.credentials);
            assert!(
                dbg.contains(&ak[..4]) && !dbg.contains("s1") && !dbg.contains("t2"),
                "{dbg}"
            );
        }
    }

    #[test]
    fn incomplete_answers_name_what_is_missing_and_never_echo_values() {
        let e = parse_temporary(
            r#"{"credential":{"access":"A","secret":"sekrit","expires_at":"2026-11-28T10:00:00Z"}}"#,
        )
        .expect_err("no token");
        assert!(e.contains("security token") && !e.contains("sekrit"), "{e}");
        let e = parse_temporary(
            r#"{"credential":{"access":"A","secret":"s","securitytoken":"t","expires_at":"soon"}}"#,
        )
        .expect_err("bad expiry");
        assert!(e.contains("\"soon\""), "{e}");
        assert!(parse_temporary("<html>").is_err());
    }

    #[test]
    fn profile_file_reads_basic_or_global() {
        let c = parse_profile(
            "# comment\n[other]\nak = X\n[basic]\nak = AKBASIC\nsk = sk1\nsecurity_token = tok\n",
        )
        .expect("basic");
        assert!(format!("{c:?}").contains("AKBA"));
        assert!(matches!(
            c,
            Credentials::AkSk {
                security_token: Some(_),
                ..
            }
        ));
        assert!(parse_profile("[global]\nak=G\nsk=s\n").is_ok());
        let e = parse_profile("[basic]\nak = only\n").expect_err("no sk");
        assert!(e.contains("ak and sk"), "{e}");
    }

    #[test]
    fn environment_configures_sources_in_the_sdk_chain_order() {
        let env: HashMap<&str, &str> = [
            (ENV_POD_IDENTITY_URI, "https://pod-identity.local/v1/credentials"),
            (ENV_POD_IDENTITY_TOKEN_FILE, "/var/run/secrets/pod-identity/token"),
            (ENV_IDP_ID, "cce-oidc"),
            (ENV_ID_TOKEN_FILE, "/var/run/secrets/oidc/token"),
            (ENV_CREDENTIALS_FILE, "/etc/huaweicloud/credentials"),
        ]
        .into();
        let got = Source::from_lookup(
            |k| env.get(k).map(|v| v.to_string()),
            Some("http://md.local".into()),
        );
        let kinds: Vec<_> = got.iter().map(Source::kind).collect();
        assert_eq!(kinds, ["OIDC", "File", "Metadata", "PodIdentity"]);
        assert!(matches!(&got[0], Source::Oidc { iam, .. } if iam == DEFAULT_IAM_ENDPOINT));
        // Half a pair configures nothing; metadata only when enabled.
        let half: HashMap<&str, &str> = [(ENV_IDP_ID, "x"), (ENV_POD_IDENTITY_URI, "https://p")].into();
        assert!(Source::from_lookup(|k| half.get(k).map(|v| v.to_string()), None).is_empty());
    }

    #[test]
    fn identity_endpoints_must_be_https_unless_http_is_allowed() {
        let pod = Source::PodIdentity {
            uri: "http://127.0.0.1:8080/pod-identity".into(),
            token_file: "/t".into(),
        };
        let e = pod
            .check_endpoint(false, "--allow-http")
            .expect_err("http refused")
            .to_string();
        assert!(
            e.contains(ENV_POD_IDENTITY_URI)
                && e.contains("http://127.0.0.1:8080")
                && e.contains("--allow-http"),
            "{e}"
        );
        assert!(pod.check_endpoint(true, "--allow-http").is_ok());
        let md = Source::Metadata {
            base: DEFAULT_METADATA_ENDPOINT.into(),
        };
        assert!(
            md.check_endpoint(false, "--allow-http").is_ok(),
            "metadata is http by design"
        );
    }
}
