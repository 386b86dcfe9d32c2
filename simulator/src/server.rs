//! The router and the gateway-like middleware: request IDs, statistics and authentication.

use crate::api::{self, RequestId, apigw_error, modelarts_error};
use crate::auth::{AuthRequest, Identity};
use crate::control;
use crate::state::{RequestRecord, SimState};
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::Response;
use axum::routing::get;
use modelarts_operator::credentials::redact_id;
use modelarts_operator::signer::sha256_hex;
use std::sync::Arc;

/// Largest request body read for signature verification.
const MAX_BODY: usize = 1 << 20;

/// All routes: ModelArts under `/v2` (authenticated), the control API under `/_sim`.
pub fn router(state: Arc<SimState>) -> Router {
    let v2 = Router::new()
        .route("/v2/{project_id}/pools", get(api::list_pools))
        .route("/v2/{project_id}/pools/{pool_name}", get(api::show_pool))
        .route(
            "/v2/{project_id}/pools/{pool_name}/nodes",
            get(api::list_pool_nodes),
        )
        .route(
            "/v2/{project_id}/pools/{pool_name}/nodepools",
            get(api::list_node_pools),
        )
        .route(
            "/v2/{project_id}/pools/{pool_name}/nodepools/{nodepool_name}",
            get(api::show_node_pool),
        )
        .route(
            "/v2/{project_id}/pools/{pool_name}/nodepools/{nodepool_name}/nodes",
            get(api::list_nodepool_nodes),
        )
        // route_layer: unknown routes get 404 APIGW.0101 without authenticating first.
        .route_layer(middleware::from_fn_with_state(state.clone(), authenticate));
    v2.merge(control::router())
        .merge(crate::identity::router())
        .fallback(api::unknown_route)
        .method_not_allowed_fallback(api::unknown_route)
        .layer(middleware::from_fn_with_state(state.clone(), envelope))
        .with_state(state)
}

/// True for ListNodePoolNodes and ListPoolNodes paths.
fn is_node_list(path: &str) -> bool {
    let segs: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    matches!(
        segs.as_slice(),
        ["", "v2", _, "pools", _, "nodes"] | ["", "v2", _, "pools", _, "nodepools", _, "nodes"]
    )
}

/// Gives every request an ID (header `X-Request-Id` on every answer) and records API calls.
async fn envelope(State(st): State<Arc<SimState>>, mut req: Request, next: Next) -> Response {
    let rid = RequestId::random();
    let at_ms = u64::try_from(st.uptime().as_millis()).unwrap_or(u64::MAX);
    let method = req.method().to_string();
    let path = req.uri().path().to_string();
    let query = req.uri().query().unwrap_or("").to_string();
    req.extensions_mut().insert(rid.clone());
    let mut resp = next.run(req).await;
    if let Ok(v) = HeaderValue::from_str(&rid.0) {
        resp.headers_mut().insert("x-request-id", v);
    }
    if st.close_connections() {
        resp.headers_mut()
            .insert(axum::http::header::CONNECTION, HeaderValue::from_static("close"));
    }
    if !path.starts_with("/_sim/") {
        let status = resp.status().as_u16();
        tracing::info!(%method, %path, %query, status, request_id = %rid.0, "request");
        let node_list = is_node_list(&path);
        let limit = url::form_urlencoded::parse(query.as_bytes())
            .find(|(k, _)| k == "limit")
            .map(|(_, v)| v.into_owned());
        let rec = RequestRecord {
            method,
            path,
            query,
            status,
            request_id: rid.0,
            at_ms,
        };
        st.record(rec, node_list, limit);
    }
    resp
}

/// Verifies AK/SK or token like APIG, then checks `X-Project-Id` against the path.
async fn authenticate(State(st): State<Arc<SimState>>, req: Request, next: Next) -> Response {
    if !st.auth_enabled() {
        return next.run(req).await;
    }
    let rid = req
        .extensions()
        .get::<RequestId>()
        .cloned()
        .unwrap_or_else(RequestId::random);
    let (parts, body) = req.into_parts();
    let bytes = match axum::body::to_bytes(body, MAX_BODY).await {
        Ok(b) => b,
        Err(_) => return modelarts_error(StatusCode::BAD_REQUEST, "ModelArts.50004000", "Bad request."),
    };
    let body_sha256 = sha256_hex(&bytes);
    let auth_req = AuthRequest {
        method: parts.method.as_str(),
        path: parts.uri.path(),
        raw_query: parts.uri.query().unwrap_or(""),
        headers: &parts.headers,
        body_sha256: &body_sha256,
    };
    match st.authenticate(&auth_req) {
        Ok(Identity::AccessKey(ak)) => tracing::debug!(access_key = %redact_id(&ak), "authenticated"),
        Ok(Identity::Token) => tracing::debug!("authenticated with a token"),
        Err(f) => {
            tracing::warn!(reason = f.message(), request_id = %rid.0, "authentication failed");
            return apigw_error(StatusCode::UNAUTHORIZED, "APIGW.0301", f.message(), &rid);
        }
    }
    let path_project = parts.uri.path().split('/').nth(2).unwrap_or("");
    if let Some(sent) = parts.headers.get("x-project-id") {
        let sent = sent.to_str().unwrap_or("<non-ascii>");
        if sent != path_project {
            let msg = format!("X-Project-Id {sent} does not match the project {path_project} in the URL.");
            return modelarts_error(StatusCode::FORBIDDEN, "ModelArts.0210", &msg);
        }
    }
    next.run(Request::from_parts(parts, Body::from(bytes))).await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_list_paths() {
        assert!(is_node_list("/v2/p/pools/pool/nodepools/np/nodes"));
        assert!(is_node_list("/v2/p/pools/pool/nodes"));
        assert!(!is_node_list("/v2/p/pools/pool/nodepools/np"));
        assert!(!is_node_list("/v2/p/pools/pool/other/np/nodes"));
    }
}
