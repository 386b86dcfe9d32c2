//! The ModelArts v2 routes: pools, node pools and the node lists.

use crate::data::nodepool_name_problem;
use crate::faults::{FaultContext, FaultKind, Fired};
use crate::paging::{ContinueToken, PagingError, page_bounds, parse_limit};
use crate::state::SimState;
use crate::world::{NodePoolRt, PoolRt, StateError};
use axum::extract::{Extension, Path, RawQuery, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use modelarts_operator::wire::{ListMetadata, Node, NodeList, NodePhase};
use serde_json::{Value, json};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::sync::Arc;

/// The `X-Request-Id` of the request being handled (32 lower-hex chars).
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl RequestId {
    /// A fresh random ID.
    pub fn random() -> Self {
        RequestId(format!("{:032x}", rand::random::<u128>()))
    }
}

type Shared = State<Arc<SimState>>;

/// A body with `Content-Type: application/json`.
pub fn json_body(status: StatusCode, body: Vec<u8>) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, HeaderValue::from_static("application/json"))],
        body,
    )
        .into_response()
}

/// A ModelArts error: `{"error_code","error_msg"}`.
pub fn modelarts_error(status: StatusCode, code: &str, msg: &str) -> Response {
    json_body(
        status,
        json!({"error_code": code, "error_msg": msg})
            .to_string()
            .into_bytes(),
    )
}

/// An API-gateway error, which also carries the request ID in the body.
pub fn apigw_error(status: StatusCode, code: &str, msg: &str, rid: &RequestId) -> Response {
    let body = json!({"error_code": code, "error_msg": msg, "request_id": rid.0});
    json_body(status, body.to_string().into_bytes())
}

fn bad_request(msg: &str) -> Response {
    modelarts_error(StatusCode::BAD_REQUEST, "ModelArts.50004000", msg)
}

fn not_found(e: StateError) -> Response {
    modelarts_error(StatusCode::NOT_FOUND, "ModelArts.50015001", &e.to_string())
}

/// `404 APIGW.0101` for anything that is not a known route and method.
pub async fn unknown_route(Extension(rid): Extension<RequestId>) -> Response {
    let msg = "The API does not exist or has not been published in the environment";
    apigw_error(StatusCode::NOT_FOUND, "APIGW.0101", msg, &rid)
}

/// The answer a reply fault replaces the real one with (`None`: serve, maybe corrupted).
fn fault_reply(kind: &FaultKind, rid: &RequestId) -> Option<Response> {
    let (status, retry_after, resp) = match *kind {
        FaultKind::Throttle { retry_after } => {
            let msg = "The throttling threshold has been reached: policy user over ratelimit,limit:100,time:1 minute";
            (
                429,
                retry_after,
                apigw_error(StatusCode::TOO_MANY_REQUESTS, "APIGW.0308", msg, rid),
            )
        }
        FaultKind::ServerError { status, retry_after } => {
            let code = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let resp = match status {
                502 => apigw_error(code, "APIGW.0201", "Backend unavailable", rid),
                503 => apigw_error(
                    code,
                    "APIGW.0613",
                    "The IAM service is currently unavailable",
                    rid,
                ),
                504 => apigw_error(code, "APIGW.0201", "Backend timeout", rid),
                _ => modelarts_error(code, "ModelArts.0010", "Internal error."),
            };
            (status, retry_after, resp)
        }
        FaultKind::MalformedJson => {
            let garbage =
                br#"{"kind":"NodeList","apiVersion":"v2","items":[{"metadata":{"name":"node-1"}},,]"#;
            (200, None, json_body(StatusCode::OK, garbage.to_vec()))
        }
        _ => return None,
    };
    let mut resp = resp;
    if let (Some(secs), true) = (retry_after, status >= 400) {
        resp.headers_mut()
            .insert(header::RETRY_AFTER, HeaderValue::from(secs));
    }
    Some(resp)
}

/// Serializes `value`, applying the `truncatedJson` fault when it fired.
fn serve(value: &impl serde::Serialize, fired: &Fired) -> Response {
    let mut body = serde_json::to_vec(value).unwrap_or_default();
    if fired.reply == Some(FaultKind::TruncatedJson) {
        body.truncate(body.len() / 2);
    }
    json_body(StatusCode::OK, body)
}

/// Fires faults for a non-list route and serves `value` unless one replaces it.
async fn serve_other(st: &SimState, rid: &RequestId, value: Result<Value, StateError>) -> Response {
    let fired = st.fire_faults(FaultContext {
        node_list: false,
        page: 1,
    });
    if !fired.delay.is_zero() {
        tokio::time::sleep(fired.delay).await;
    }
    if let Some(resp) = fired.reply.as_ref().and_then(|k| fault_reply(k, rid)) {
        return resp;
    }
    match value {
        Ok(v) => serve(&v, &fired),
        Err(e) => not_found(e),
    }
}

fn query_param(raw: Option<&str>, key: &str) -> Option<String> {
    url::form_urlencoded::parse(raw.unwrap_or("").as_bytes())
        .find(|(k, _)| k == key)
        .map(|(_, v)| v.into_owned())
}

/// One page of `nodes` as a `NodeList`, honouring the list-modifying faults.
pub fn node_list_page(
    nodes: &[Node],
    generation: u64,
    token: Option<(&str, ContinueToken)>,
    limit: usize,
    fired: &Fired,
) -> NodeList {
    let list = |items: Vec<Node>, metadata| NodeList {
        api_version: Some("v2".into()),
        kind: Some("NodeList".into()),
        metadata,
        items,
    };
    if fired.ignore_limit {
        return list(nodes.to_vec(), ListMetadata::default());
    }
    let (offset, page) = token.map_or((0, 1), |(_, t)| (t.offset, t.page));
    let b = page_bounds(nodes.len(), offset, limit);
    let next = b.next.map(|o| {
        ContinueToken {
            offset: o,
            page: page + 1,
            generation,
        }
        .encode()
    });
    let next = match (fired.repeat_continue, token) {
        (true, Some((raw, _))) => Some(raw.to_string()),
        _ => next,
    };
    let metadata = match next {
        Some(c) => ListMetadata {
            continue_token: Some(c),
            remaining_item_count: Some(b.remaining as i64),
        },
        None => ListMetadata::default(),
    };
    list(nodes[b.start..b.end].to_vec(), metadata)
}

/// Parses `limit` and `continue`; `zero_is_default` for ListPoolNodes (documented 0–500).
fn paging_params(
    raw: Option<&str>,
    zero_is_default: bool,
) -> Result<(usize, Option<(String, ContinueToken)>), PagingError> {
    let limit = query_param(raw, "limit").filter(|l| !(zero_is_default && l.trim() == "0"));
    let limit = parse_limit(limit.as_deref())?;
    let token = match query_param(raw, "continue").filter(|t| !t.is_empty()) {
        Some(t) => {
            let decoded = ContinueToken::decode(&t)?;
            Some((t, decoded))
        }
        None => None,
    };
    Ok((limit, token))
}

async fn list_nodes_common(
    st: &SimState,
    rid: &RequestId,
    raw: Option<&str>,
    zero_is_default: bool,
    // Borrowed for one node pool; owned only when a pool-wide list must be concatenated.
    lookup: impl for<'w> Fn(&'w crate::world::World) -> Result<(Cow<'w, [Node]>, u64), StateError>,
) -> Response {
    let (limit, token) = match paging_params(raw, zero_is_default) {
        Ok(p) => p,
        Err(e) => return bad_request(e.message()),
    };
    // Existence is checked before faults fire, so a 404 never eats a fault's `times`.
    if let Err(e) = st.with_world(|w| lookup(w).map(|_| ())) {
        return not_found(e);
    }
    let page = token.as_ref().map_or(1, |(_, t)| t.page);
    let fired = st.fire_faults(FaultContext {
        node_list: true,
        page,
    });
    if !fired.delay.is_zero() {
        tokio::time::sleep(fired.delay).await;
    }
    if let Some(resp) = fired.reply.as_ref().and_then(|k| fault_reply(k, rid)) {
        return resp;
    }
    let token_ref = token.as_ref().map(|(raw, t)| (raw.as_str(), *t));
    let list =
        st.with_world(|w| lookup(w).map(|(nodes, g)| node_list_page(&nodes, g, token_ref, limit, &fired)));
    match list {
        Ok(list) => serve(&list, &fired),
        Err(e) => not_found(e),
    }
}

/// `GET /v2/{project_id}/pools/{pool_name}/nodepools/{nodepool_name}/nodes` (ListNodePoolNodes).
pub async fn list_nodepool_nodes(
    State(st): Shared,
    Extension(rid): Extension<RequestId>,
    Path((project, pool, np)): Path<(String, String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    if nodepool_name_problem(&np).is_some() {
        return bad_request("Bad request. invalid nodepool name");
    }
    list_nodes_common(&st, &rid, raw.as_deref(), false, |w| {
        w.node_pool(&project, &pool, &np)
            .map(|n| (Cow::Borrowed(n.nodes.as_slice()), n.generation))
    })
    .await
}

/// `GET /v2/{project_id}/pools/{pool_name}/nodes` (ListPoolNodes): every node pool, concatenated.
pub async fn list_pool_nodes(
    State(st): Shared,
    Extension(rid): Extension<RequestId>,
    Path((project, pool)): Path<(String, String)>,
    RawQuery(raw): RawQuery,
) -> Response {
    list_nodes_common(&st, &rid, raw.as_deref(), true, |w| {
        w.pool(&project, &pool).map(|p| {
            let nodes: Vec<Node> = p
                .node_pools
                .iter()
                .flat_map(|n| n.nodes.iter().cloned())
                .collect();
            (Cow::Owned(nodes), p.node_pools.iter().map(|n| n.generation).sum())
        })
    })
    .await
}

fn bucket(phase: &NodePhase) -> &'static str {
    match phase {
        NodePhase::Available => "available",
        NodePhase::Creating | NodePhase::Checking => "creating",
        NodePhase::Deleting => "deleting",
        _ => "abnormal",
    }
}

/// The node-pool object: desired shape from its scaling settings, its own buckets
/// counted from the nodes (plus `creationFailed`), as objects or as OTC-style arrays.
fn node_pool_json(np: &NodePoolRt) -> Value {
    let flavor = np.flavor.clone().unwrap_or_default();
    let sc = &np.scaling;
    let listed = np.nodes.len() as u64;
    let desired = sc.desired.map_or(listed, u64::from);
    let max_count = sc.max_count.map_or(desired.max(listed), u64::from);
    let mut counts: BTreeMap<&str, u64> = BTreeMap::new();
    for n in &np.nodes {
        *counts.entry(bucket(&n.status.phase)).or_insert(0) += 1;
    }
    if sc.creation_failed > 0 {
        counts.insert("creationFailed", u64::from(sc.creation_failed));
    }
    let mut buckets = serde_json::Map::new();
    for (name, count) in counts {
        let entry = json!({"flavor": flavor, "count": count});
        let value = if sc.status_as_arrays {
            json!([entry])
        } else {
            entry
        };
        buckets.insert(name.to_string(), value);
    }
    let azs: Vec<Value> = sc
        .azs
        .iter()
        .map(|(az, count)| json!({"az": az, "count": count}))
        .collect();
    let mut resources =
        json!({"flavor": flavor, "count": desired, "maxCount": max_count, "nodePool": np.name});
    if !azs.is_empty() {
        resources["azs"] = json!(azs);
    }
    json!({
        "apiVersion": "v2", "kind": "NodePool",
        "metadata": {"name": np.name},
        "spec": {"resources": resources},
        "status": {"resources": buckets},
    })
}

fn pool_json(project: &str, p: &PoolRt) -> Value {
    let resources: Vec<Value> = p
        .node_pools
        .iter()
        .map(|np| json!({"flavor": np.flavor, "count": np.nodes.len(), "maxCount": np.nodes.len(), "nodePool": np.name}))
        .collect();
    let mut status = serde_json::Map::new();
    for np in &p.node_pools {
        for (phase, n) in np.phase_counts() {
            let entry = json!({"flavor": np.flavor, "count": n, "nodePool": np.name});
            let list = status
                .entry(bucket(&NodePhase::parse(&phase)))
                .or_insert_with(|| json!([]));
            if let Some(a) = list.as_array_mut() {
                a.push(entry);
            }
        }
    }
    json!({
        "apiVersion": "v2", "kind": "Pool",
        "metadata": {"name": p.name, "labels": {
            "os.modelarts/name": p.display_name,
            "os.modelarts/workspace.id": "0",
            "os.modelarts/tenant.project.id": project,
        }},
        "spec": {"type": "Dedicate", "scope": ["Train", "Infer"], "resources": resources},
        "status": {"phase": "Running", "resources": status},
    })
}

/// `GET /v2/{project_id}/pools` (ListPools); an unknown project has no pools.
pub async fn list_pools(
    State(st): Shared,
    Extension(rid): Extension<RequestId>,
    Path(project): Path<String>,
) -> Response {
    let items: Vec<Value> = st.with_world(|w| {
        w.pools(&project)
            .unwrap_or_default()
            .iter()
            .map(|p| pool_json(&project, p))
            .collect()
    });
    serve_other(
        &st,
        &rid,
        Ok(json!({"apiVersion": "v2", "kind": "PoolList", "items": items})),
    )
    .await
}

/// `GET /v2/{project_id}/pools/{pool_name}` (ShowPool).
pub async fn show_pool(
    State(st): Shared,
    Extension(rid): Extension<RequestId>,
    Path((project, pool)): Path<(String, String)>,
) -> Response {
    let v = st.with_world(|w| w.pool(&project, &pool).map(|p| pool_json(&project, p)));
    serve_other(&st, &rid, v).await
}

/// `GET /v2/{project_id}/pools/{pool_name}/nodepools` (ListNodePools).
pub async fn list_node_pools(
    State(st): Shared,
    Extension(rid): Extension<RequestId>,
    Path((project, pool)): Path<(String, String)>,
) -> Response {
    let v = st.with_world(|w| {
        w.pool(&project, &pool).map(|p| {
            let items: Vec<Value> = p.node_pools.iter().map(node_pool_json).collect();
            json!({"apiVersion": "v2", "kind": "NodePoolList", "items": items})
        })
    });
    serve_other(&st, &rid, v).await
}

/// `GET /v2/{project_id}/pools/{pool_name}/nodepools/{nodepool_name}` (ShowNodePool).
pub async fn show_node_pool(
    State(st): Shared,
    Extension(rid): Extension<RequestId>,
    Path((project, pool, np)): Path<(String, String, String)>,
) -> Response {
    if nodepool_name_problem(&np).is_some() {
        return bad_request("Bad request. invalid nodepool name");
    }
    let v = st.with_world(|w| w.node_pool(&project, &pool, &np).map(node_pool_json));
    serve_other(&st, &rid, v).await
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::GenerateSpec;
    use crate::generate::generate_nodes;

    #[test]
    fn pages_walk_the_whole_list_and_the_last_has_empty_metadata() {
        let nodes = generate_nodes("np", &GenerateSpec::new(1203));
        let none = Fired::default();
        let mut seen = Vec::new();
        let mut token: Option<(String, ContinueToken)> = None;
        for _ in 0..10 {
            let t = token.as_ref().map(|(r, t)| (r.as_str(), *t));
            let page = node_list_page(&nodes, 3, t, 500, &none);
            seen.extend(page.items.iter().map(|n| n.metadata.name.clone()));
            match page.metadata.next_token() {
                Some(next) => {
                    assert_eq!(
                        page.metadata.remaining_item_count,
                        Some((1203 - seen.len()) as i64)
                    );
                    token = Some((next.to_string(), ContinueToken::decode(next).unwrap()));
                }
                None => {
                    assert_eq!(page.metadata, ListMetadata::default());
                    break;
                }
            }
        }
        assert_eq!(seen.len(), 1203);
        assert_eq!(
            seen,
            nodes.iter().map(|n| n.metadata.name.clone()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn modifiers_repeat_the_token_or_ignore_the_limit() {
        let nodes = generate_nodes("np", &GenerateSpec::new(30));
        let first = node_list_page(&nodes, 1, None, 10, &Fired::default());
        let raw = first.metadata.next_token().unwrap().to_string();
        let tok = ContinueToken::decode(&raw).unwrap();
        let repeat = Fired {
            repeat_continue: true,
            ..Default::default()
        };
        let second = node_list_page(&nodes, 1, Some((&raw, tok)), 10, &repeat);
        assert_eq!(second.metadata.next_token(), Some(raw.as_str()));
        assert_eq!(second.items[0].metadata.name, nodes[10].metadata.name);
        let all = node_list_page(
            &nodes,
            1,
            Some((&raw, tok)),
            10,
            &Fired {
                ignore_limit: true,
                ..Default::default()
            },
        );
        assert_eq!((all.items.len(), all.metadata), (30, ListMetadata::default()));
    }
}
