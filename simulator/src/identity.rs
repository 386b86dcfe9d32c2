//! Where keyless clients get temporary AK/SK: IAM's OIDC exchange (`id-token/tokens`, then
//! `securitytokens`), a CCE Pod Identity endpoint and the ECS metadata service, on the same port
//! as the ModelArts API. Every credential issued here is accepted by the simulator's ModelArts
//! API until it expires, and refused after.
//!
//! Wire shapes follow the official SDKs (`FederalAccessor`, `PodIdentityAccessor`,
//! `MetadataAccessor` of huaweicloudsdkcore). Configured and counted through `/_sim/identity`.

use crate::data::CredentialSpec;
use crate::state::SimState;
use axum::Json;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use rand::Rng;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// Path of the Pod Identity endpoint (what `HC_CONTAINER_CREDENTIALS_FULL_URI` points at).
pub const POD_IDENTITY_PATH: &str = "/pod-identity/v1/credentials";

/// How the identity endpoints behave; `PUT /_sim/identity` replaces it.
#[derive(Debug, Clone, Deserialize, Serialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields, default)]
pub struct IdentityConfig {
    /// Lifetime of issued temporary credentials, in seconds.
    pub ttl_seconds: u64,
    /// The `X-Idp-Id` the OIDC exchange accepts.
    pub idp_id: String,
    /// The only ID token (JWT) the OIDC exchange accepts; empty: any non-empty one.
    pub id_token: String,
    /// The only Pod Identity `Authorization` value accepted; empty: any non-empty one.
    pub pod_token: String,
    /// Whether the metadata service hands out session tokens (IMDSv2-like); off: 404 on PUT.
    pub metadata_session_tokens: bool,
    /// A fault for every identity endpoint.
    pub fault: Option<IdentityFault>,
}

impl Default for IdentityConfig {
    fn default() -> Self {
        IdentityConfig {
            ttl_seconds: 3600,
            idp_id: "modelarts-sim-idp".into(),
            id_token: String::new(),
            pod_token: String::new(),
            metadata_session_tokens: true,
            fault: None,
        }
    }
}

/// A fault of the identity endpoints.
#[derive(Debug, Clone, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub enum IdentityFault {
    /// 500 on every exchange.
    Unavailable,
    /// 401 on every exchange.
    Unauthorized,
    /// Issue credentials that are already expired.
    Expired,
    /// Answer after this many milliseconds.
    SlowMs(u64),
}

/// Identity bookkeeping: configuration, IAM subject tokens, metadata session tokens, counts.
#[derive(Debug, Default)]
pub struct IdentityState {
    config: IdentityConfig,
    subject_tokens: HashMap<String, jiff::Timestamp>,
    metadata_tokens: HashSet<String>,
    exchanges: BTreeMap<String, u64>,
    refusals: BTreeMap<String, u64>,
    issued_secrets: Vec<String>,
    last_access_key: Option<String>,
}

/// How many issued secrets [`IdentityState::issued_secrets`] keeps (the newest).
const ISSUED_KEPT: usize = 1000;

type Shared = State<Arc<SimState>>;

/// The identity routes, merged into the main router.
pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/v3.0/OS-AUTH/id-token/tokens", post(id_token_exchange))
        .route("/v3.0/OS-CREDENTIAL/securitytokens", post(security_tokens))
        .route(POD_IDENTITY_PATH, post(pod_identity))
        .route("/meta-data/latest/api/token", put(metadata_session_token))
        .route("/openstack/latest/securitykey", get(metadata_securitykey))
        .route("/_sim/identity", get(get_identity).put(put_identity))
}

fn lock(m: &Mutex<IdentityState>) -> std::sync::MutexGuard<'_, IdentityState> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

fn random(prefix: &str, len: usize) -> String {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
    let mut rng = rand::rng();
    let tail: String = (0..len)
        .map(|_| ALPHABET[rng.random_range(0..ALPHABET.len())] as char)
        .collect();
    format!("{prefix}{tail}")
}

fn iam_error(status: StatusCode, code: &str, msg: &str) -> Response {
    (status, Json(json!({"error": {"code": code, "message": msg}}))).into_response()
}

/// Applies the configured fault; `Some` is the answer to send instead of the real one.
async fn fault(state: &SimState, source: &str) -> Option<Response> {
    let fault = lock(state.identity()).config.fault.clone();
    let refuse = |status, code, msg: &str| {
        *lock(state.identity())
            .refusals
            .entry(source.to_string())
            .or_default() += 1;
        Some(iam_error(status, code, msg))
    };
    match fault {
        Some(IdentityFault::Unavailable) => refuse(
            StatusCode::INTERNAL_SERVER_ERROR,
            "IAM.0006",
            "service unavailable",
        ),
        Some(IdentityFault::Unauthorized) => refuse(StatusCode::UNAUTHORIZED, "IAM.0001", "unauthorized"),
        Some(IdentityFault::SlowMs(ms)) => {
            tokio::time::sleep(Duration::from_millis(ms)).await;
            None
        }
        Some(IdentityFault::Expired) | None => None,
    }
}

/// Issues temporary AK/SK + security token for `source`, accepted by the ModelArts API.
fn issue(state: &SimState, source: &str) -> (String, String, String, jiff::Timestamp) {
    let (ttl, expired) = {
        let mut id = lock(state.identity());
        *id.exchanges.entry(source.to_string()).or_default() += 1;
        (
            id.config.ttl_seconds,
            id.config.fault == Some(IdentityFault::Expired),
        )
    };
    let now = jiff::Timestamp::now();
    let expires = if expired {
        now - jiff::SignedDuration::from_secs(1)
    } else {
        now + jiff::SignedDuration::from_secs(i64::try_from(ttl).unwrap_or(i64::MAX / 2))
    };
    let ak = random("TMPAK", 15);
    let sk = random("", 40);
    let token = random("gQpjbi1ub3J0aC00", 96);
    {
        let mut id = lock(state.identity());
        if id.issued_secrets.len() >= ISSUED_KEPT {
            id.issued_secrets.drain(..2);
        }
        id.issued_secrets.push(sk.clone());
        id.last_access_key = Some(ak.clone());
        id.issued_secrets.push(token.clone());
    }
    let mut spec = CredentialSpec::new(&ak, &sk).with_security_token(&token);
    spec.expires_at = Some(expires);
    state.upsert_credential(spec);
    (ak, sk, token, expires)
}

/// `expires_at` as IAM writes it (microseconds, `Z`), which both SDKs parse.
fn iam_time(t: jiff::Timestamp) -> String {
    t.strftime("%Y-%m-%dT%H:%M:%S%.6fZ").to_string()
}

async fn id_token_exchange(State(state): Shared, headers: HeaderMap, body: Bytes) -> Response {
    if let Some(r) = fault(&state, "oidc").await {
        return r;
    }
    let (idp, want_token) = {
        let id = lock(state.identity());
        (id.config.idp_id.clone(), id.config.id_token.clone())
    };
    let sent_idp = headers
        .get("x-idp-id")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if sent_idp != idp {
        return iam_error(StatusCode::NOT_FOUND, "IAM.0004", "identity provider not found");
    }
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let jwt = body["auth"]["id_token"]["id"].as_str().unwrap_or("");
    if jwt.is_empty() || (!want_token.is_empty() && jwt != want_token) {
        return iam_error(StatusCode::UNAUTHORIZED, "IAM.0001", "the id_token is invalid");
    }
    let subject = random("MIIsubject", 64);
    let expires = jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24);
    lock(state.identity())
        .subject_tokens
        .insert(subject.clone(), expires);
    let mut resp = (
        StatusCode::CREATED,
        Json(json!({"token": {"expires_at": iam_time(expires), "methods": ["mapped"], "issued_at": iam_time(jiff::Timestamp::now())}})),
    )
        .into_response();
    if let Ok(v) = subject.parse() {
        resp.headers_mut().insert("x-subject-token", v);
    }
    resp
}

async fn security_tokens(State(state): Shared, body: Bytes) -> Response {
    let body: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let token = body["auth"]["identity"]["token"]["id"].as_str().unwrap_or("");
    let known = lock(state.identity())
        .subject_tokens
        .get(token)
        .is_some_and(|exp| jiff::Timestamp::now() < *exp);
    if !known {
        return iam_error(StatusCode::UNAUTHORIZED, "IAM.0001", "the token is invalid");
    }
    let (ak, sk, tok, exp) = issue(&state, "oidc");
    (
        StatusCode::CREATED,
        Json(json!({"credential": {"access": ak, "secret": sk, "securitytoken": tok, "expires_at": iam_time(exp)}})),
    )
        .into_response()
}

async fn pod_identity(State(state): Shared, headers: HeaderMap) -> Response {
    if let Some(r) = fault(&state, "podIdentity").await {
        return r;
    }
    let want = lock(state.identity()).config.pod_token.clone();
    let sent = headers
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if sent.is_empty() || (!want.is_empty() && sent.trim() != want) {
        *lock(state.identity())
            .refusals
            .entry("podIdentity".into())
            .or_default() += 1;
        return iam_error(
            StatusCode::UNAUTHORIZED,
            "CCE.01400001",
            "invalid service account token",
        );
    }
    let (ak, sk, tok, exp) = issue(&state, "podIdentity");
    Json(json!({
        "assumedAgency": {"urn": "iam::0123456789abcdef:agency:modelarts-reader", "id": "0a1b2c"},
        "audience": "sts.huaweicloud.com",
        "credentials": {"accessKeyId": ak, "secretAccessKey": sk, "securityToken": tok, "expiration": iam_time(exp)},
        "podIdentityAssociationId": "pia-sim",
        "subject": {"namespace": "modelarts-system", "serviceAccount": "modelarts-operator"}
    }))
    .into_response()
}

async fn metadata_session_token(State(state): Shared) -> Response {
    if !lock(state.identity()).config.metadata_session_tokens {
        return StatusCode::NOT_FOUND.into_response();
    }
    let token = random("mdtok", 32);
    lock(state.identity()).metadata_tokens.insert(token.clone());
    token.into_response()
}

async fn metadata_securitykey(State(state): Shared, headers: HeaderMap) -> Response {
    if let Some(r) = fault(&state, "metadata").await {
        return r;
    }
    let (needs, known) = {
        let id = lock(state.identity());
        let sent = headers
            .get("x-metadata-token")
            .and_then(|v| v.to_str().ok())
            .unwrap_or("");
        (
            id.config.metadata_session_tokens,
            id.metadata_tokens.contains(sent),
        )
    };
    if needs && !known {
        return (StatusCode::UNAUTHORIZED, "missing or invalid X-Metadata-Token").into_response();
    }
    let (ak, sk, tok, exp) = issue(&state, "metadata");
    Json(json!({"credential": {"access": ak, "secret": sk, "securitytoken": tok, "expires_at": iam_time(exp)}}))
        .into_response()
}

async fn get_identity(State(state): Shared) -> Response {
    let id = lock(state.identity());
    Json(json!({"config": id.config, "exchanges": id.exchanges, "refusals": id.refusals})).into_response()
}

async fn put_identity(State(state): Shared, body: Bytes) -> Response {
    match serde_json::from_slice::<IdentityConfig>(&body) {
        Ok(c) => {
            lock(state.identity()).config = c;
            StatusCode::NO_CONTENT.into_response()
        }
        Err(e) => (
            StatusCode::BAD_REQUEST,
            Json(json!({"error": format!("identity config: {e}")})),
        )
            .into_response(),
    }
}

impl IdentityState {
    /// Replaces the configuration (tests in-process).
    pub fn set_config(&mut self, config: IdentityConfig) {
        self.config = config;
    }

    /// The secret keys and security tokens issued so far (newest 1,000), for tests that
    /// check no secret leaks into logs, events, status or metrics.
    pub fn issued_secrets(&self) -> Vec<String> {
        self.issued_secrets.clone()
    }

    /// The access key issued last (to revoke it in a test).
    pub fn last_access_key(&self) -> Option<String> {
        self.last_access_key.clone()
    }

    /// Credentials issued per source (`oidc`, `podIdentity`, `metadata`).
    pub fn exchanges(&self) -> BTreeMap<String, u64> {
        self.exchanges.clone()
    }
}
