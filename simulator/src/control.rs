//! The `/_sim` control API: a test hook without authentication, on the same loopback port.
//!
//! Never expose it beyond loopback: anyone who reaches it can add credentials.

use crate::data::{CredentialSpec, NodePoolSpec, ScalingSpec};
use crate::faults::FaultSpec;
use crate::state::SimState;
use crate::world::{NodePatch, StateError};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post, put};
use axum::{Json, routing::patch as patch_route};
use modelarts_operator::wire::Node;
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::json;
use std::sync::Arc;

type Shared = State<Arc<SimState>>;
type NodePath = Path<(String, String, String, String)>;
type NodePoolPath = Path<(String, String, String)>;

/// The control routes, to be merged into the main router.
pub fn router() -> Router<Arc<SimState>> {
    Router::new()
        .route("/_sim/health", get(|| async { Json(json!({"status": "ok"})) }))
        .route(
            "/_sim/faults",
            get(get_faults).put(put_faults).delete(delete_faults),
        )
        .route("/_sim/nodes/{project}/{pool}/{nodepool}", get(get_nodes))
        .route(
            "/_sim/nodes/{project}/{pool}/{nodepool}/{node}",
            patch_route(patch_node).put(put_node).delete(delete_node),
        )
        .route(
            "/_sim/nodepools/{project}/{pool}/{nodepool}",
            put(put_node_pool).delete(delete_node_pool),
        )
        .route(
            "/_sim/nodepools/{project}/{pool}/{nodepool}/scaling",
            put(put_scaling),
        )
        .route("/_sim/credentials", post(post_credential))
        .route("/_sim/credentials/{id}", delete(delete_credential))
        .route("/_sim/lockouts", delete(delete_lockouts))
        .route("/_sim/auth", put(put_auth))
        .route("/_sim/stats", get(get_stats))
        .route("/_sim/stats/reset", post(reset_stats))
}

fn error(status: StatusCode, msg: impl Into<String>) -> Response {
    (status, Json(json!({"error": msg.into()}))).into_response()
}

fn state_error(e: StateError) -> Response {
    let status = match e {
        StateError::Invalid { .. } => StatusCode::BAD_REQUEST,
        _ => StatusCode::NOT_FOUND,
    };
    error(status, e.to_string())
}

/// Parses a JSON body, answering 400 with serde's message (which names the field).
fn parse<T: DeserializeOwned>(body: &Bytes, what: &str) -> Result<T, Box<Response>> {
    serde_json::from_slice(body)
        .map_err(|e| Box::new(error(StatusCode::BAD_REQUEST, format!("invalid {what}: {e}"))))
}

async fn get_faults(State(st): Shared) -> Response {
    Json(FaultSpec { faults: st.faults() }).into_response()
}

async fn put_faults(State(st): Shared, body: Bytes) -> Response {
    match parse::<FaultSpec>(&body, "fault spec") {
        Ok(spec) => {
            st.set_faults(spec.faults);
            Json(FaultSpec { faults: st.faults() }).into_response()
        }
        Err(resp) => *resp,
    }
}

async fn delete_faults(State(st): Shared) -> StatusCode {
    st.clear_faults();
    StatusCode::NO_CONTENT
}

async fn get_nodes(State(st): Shared, Path((p, pool, np)): NodePoolPath) -> Response {
    match st.nodes(&p, &pool, &np) {
        Ok(nodes) => Json(nodes).into_response(),
        Err(e) => state_error(e),
    }
}

async fn patch_node(State(st): Shared, Path((p, pool, np, node)): NodePath, body: Bytes) -> Response {
    let patch = match parse::<NodePatch>(&body, "node patch") {
        Ok(patch) => patch,
        Err(resp) => return *resp,
    };
    match st.patch_node((&p, &pool, &np), &node, patch) {
        Ok(n) => Json(n).into_response(),
        Err(e) => state_error(e),
    }
}

async fn put_node(State(st): Shared, Path((p, pool, np, node)): NodePath, body: Bytes) -> Response {
    let mut n = match parse::<Node>(&body, "node") {
        Ok(n) => n,
        Err(resp) => return *resp,
    };
    if n.metadata.name.is_empty() {
        n.metadata.name = node.clone();
    }
    if n.metadata.name != node {
        let msg = format!(
            "metadata.name {:?} differs from the path's node {node:?}",
            n.metadata.name
        );
        return error(StatusCode::BAD_REQUEST, msg);
    }
    match st.put_node((&p, &pool, &np), n) {
        Ok(true) => StatusCode::CREATED.into_response(),
        Ok(false) => StatusCode::OK.into_response(),
        Err(e) => state_error(e),
    }
}

async fn delete_node(State(st): Shared, Path((p, pool, np, node)): NodePath) -> Response {
    match st.delete_node((&p, &pool, &np), &node) {
        Ok(_) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => state_error(e),
    }
}

async fn put_node_pool(State(st): Shared, Path((p, pool, np)): NodePoolPath, body: Bytes) -> Response {
    let body = if body.is_empty() {
        Bytes::from_static(b"{}")
    } else {
        body
    };
    let mut obj = match parse::<serde_json::Map<String, serde_json::Value>>(&body, "node pool") {
        Ok(o) => o,
        Err(resp) => return *resp,
    };
    obj.insert("name".into(), np.into());
    let spec: NodePoolSpec = match serde_json::from_value(obj.into()) {
        Ok(s) => s,
        Err(e) => return error(StatusCode::BAD_REQUEST, format!("invalid node pool: {e}")),
    };
    match st.put_node_pool(&p, &pool, spec) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => state_error(e),
    }
}

/// Replaces the node pool's own view: `{desired, maxCount, azs, creationFailed, statusAsArrays}`.
async fn put_scaling(State(st): Shared, Path((p, pool, np)): NodePoolPath, body: Bytes) -> Response {
    let scaling = match parse::<ScalingSpec>(&body, "scaling") {
        Ok(s) => s,
        Err(resp) => return *resp,
    };
    match st.set_scaling(&p, &pool, &np, scaling) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => state_error(e),
    }
}

async fn delete_node_pool(State(st): Shared, Path((p, pool, np)): NodePoolPath) -> Response {
    match st.delete_node_pool(&p, &pool, &np) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => state_error(e),
    }
}

/// `{accessKey, secretKey[, securityToken]}` or `{token}`. No `Debug`: it holds secrets.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase", deny_unknown_fields)]
struct CredentialBody {
    access_key: Option<String>,
    secret_key: Option<String>,
    security_token: Option<String>,
    token: Option<String>,
}

async fn post_credential(State(st): Shared, body: Bytes) -> Response {
    // serde's message could quote a secret value, so the error stays generic.
    let usage = "expected {\"accessKey\",\"secretKey\"[,\"securityToken\"]} or {\"token\"}";
    let Ok(b) = serde_json::from_slice::<CredentialBody>(&body) else {
        return error(StatusCode::BAD_REQUEST, usage);
    };
    match (b.access_key, b.secret_key, b.token) {
        (Some(ak), Some(sk), None) if !ak.trim().is_empty() && !sk.is_empty() => {
            let mut cred = CredentialSpec::new(ak.trim(), &sk);
            if let Some(t) = b.security_token.filter(|t| !t.is_empty()) {
                cred = cred.with_security_token(&t);
            }
            st.upsert_credential(cred);
            StatusCode::NO_CONTENT.into_response()
        }
        (None, None, Some(t)) if !t.is_empty() && b.security_token.is_none() => {
            st.add_token(&t);
            StatusCode::NO_CONTENT.into_response()
        }
        _ => error(StatusCode::BAD_REQUEST, usage),
    }
}

async fn delete_credential(State(st): Shared, Path(id): Path<String>) -> Response {
    if st.remove_credential(&id) {
        StatusCode::NO_CONTENT.into_response()
    } else {
        // Do not echo the value: it may be a token.
        error(StatusCode::NOT_FOUND, "no such access key or token")
    }
}

async fn delete_lockouts(State(st): Shared) -> StatusCode {
    st.clear_lockouts();
    StatusCode::NO_CONTENT
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct AuthBody {
    enabled: bool,
}

async fn put_auth(State(st): Shared, body: Bytes) -> Response {
    match parse::<AuthBody>(&body, "auth setting") {
        Ok(b) => {
            st.set_auth_enabled(b.enabled);
            Json(json!({"enabled": b.enabled})).into_response()
        }
        Err(resp) => *resp,
    }
}

async fn get_stats(State(st): Shared) -> Response {
    Json(st.stats()).into_response()
}

async fn reset_stats(State(st): Shared) -> StatusCode {
    st.reset_stats();
    StatusCode::NO_CONTENT
}
