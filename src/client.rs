//! The ModelArts HTTP client: one node pool's nodes, every page, signed and retried.

use crate::{
    credentials::Credentials,
    endpoint,
    error::{ApiError, Error, Result},
    signer,
    tls::{self, Trust, TrustedClient},
    wire::{Node, NodeList},
    wire_pool::{NodePool, NodePoolList},
};
use governor::DefaultDirectRateLimiter;
use rand::Rng;
use serde::de::DeserializeOwned;
use std::{collections::HashSet, sync::Arc, time::Duration};
use tokio::time::Instant;
use url::Url;

/// Largest page body accepted; a node is ~1–2 KiB, so this is far above 500 nodes.
const MAX_BODY_BYTES: usize = 64 << 20;

/// Tunables of the client; the defaults suit a controller polling every minute.
#[derive(Debug, Clone)]
pub struct ClientOptions {
    /// TCP + TLS connect timeout.
    pub connect_timeout: Duration,
    /// Timeout of one whole request, body included.
    pub request_timeout: Duration,
    /// Attempts per page, the first included.
    pub max_attempts: u32,
    /// Time after which no further retry of a page is started.
    pub retry_budget: Duration,
    /// Longest `Retry-After` waited for inside a listing; a longer one ends the listing
    /// at once with the hint, so the caller requeues instead of holding a worker.
    pub max_retry_after: Duration,
    /// First backoff step; doubled per retry, with full jitter.
    pub backoff_base: Duration,
    /// Largest single backoff step (a `Retry-After` may ask for more, within the budget).
    pub backoff_max: Duration,
    /// Pages after which listing stops with an error instead of looping forever.
    pub max_pages: usize,
    /// Which certificate authorities to trust (public roots by default).
    pub trust: Trust,
}

impl Default for ClientOptions {
    fn default() -> Self {
        ClientOptions {
            connect_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(30),
            max_attempts: 4,
            retry_budget: Duration::from_secs(60),
            max_retry_after: Duration::from_secs(10),
            backoff_base: Duration::from_millis(500),
            backoff_max: Duration::from_secs(15),
            max_pages: 1000,
            trust: Trust::default(),
        }
    }
}

/// Which node pool to read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodePoolRef {
    /// IAM project ID of the region.
    pub project_id: String,
    /// Resource pool ID (its `metadata.name`).
    pub pool_name: String,
    /// Node pool name.
    pub nodepool_name: String,
}

impl NodePoolRef {
    /// `/v2/{project_id}/pools/{pool}/nodepools/{nodepool}`, segments escaped.
    pub fn nodepool_path(&self) -> String {
        format!(
            "/v2/{}/pools/{}/nodepools/{}",
            signer::escape(&self.project_id),
            signer::escape(&self.pool_name),
            signer::escape(&self.nodepool_name)
        )
    }

    /// `/v2/{project_id}/pools/{pool}/nodepools/{nodepool}/nodes`, segments escaped.
    pub fn nodes_path(&self) -> String {
        format!("{}/nodes", self.nodepool_path())
    }
}

/// Progress after each page.
#[derive(Debug, Clone, Copy)]
pub struct PageProgress {
    /// 1-based page number.
    pub page: usize,
    /// Nodes received so far.
    pub nodes: usize,
    /// `remainingItemCount`, when the server sent it.
    pub remaining: Option<i64>,
}

/// What a complete listing cost.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListStats {
    /// Pages fetched.
    pub pages: usize,
    /// Nodes received.
    pub nodes: usize,
    /// Retries made across all pages.
    pub retries: u32,
}

/// What every page request of one listing shares.
#[derive(Clone, Copy)]
struct Target<'a> {
    endpoint: &'a Url,
    creds: &'a Credentials,
    pool: &'a NodePoolRef,
    page_size: u32,
}

/// A ModelArts client, shared by every sync (one connection pool).
#[derive(Clone)]
pub struct ModelArtsClient {
    http: Arc<TrustedClient>,
    options: ClientOptions,
    limiter: Option<Arc<DefaultDirectRateLimiter>>,
}

impl ModelArtsClient {
    /// A client with the given options.
    pub fn new(options: ClientOptions) -> Result<Self> {
        let (connect, request) = (options.connect_timeout, options.request_timeout);
        // No `.no_proxy()`: HTTPS_PROXY/HTTP_PROXY/ALL_PROXY and NO_PROXY apply, read
        // from the environment whenever the client is (re)built.
        let base = move || {
            reqwest::Client::builder()
                .connect_timeout(connect)
                .timeout(request)
                .user_agent(concat!("modelarts-operator/", env!("CARGO_PKG_VERSION")))
                .redirect(reqwest::redirect::Policy::none())
        };
        let http = Arc::new(TrustedClient::new(options.trust.clone(), base)?);
        Ok(ModelArtsClient {
            http,
            options,
            limiter: None,
        })
    }

    /// The HTTP client with the operator's trust settings (CA bundle, proxies), for the
    /// identity endpoints that issue temporary credentials.
    pub fn http(&self) -> reqwest::Client {
        self.http.current()
    }

    /// Makes every HTTP attempt wait for a token of this shared limiter first.
    pub fn with_rate_limiter(mut self, limiter: Arc<DefaultDirectRateLimiter>) -> Self {
        self.limiter = Some(limiter);
        self
    }

    /// Lists every node of a node pool, handing each page to `on_page` as it arrives,
    /// so the caller can aggregate without holding the whole pool.
    pub async fn list_nodes(
        &self,
        endpoint: &Url,
        creds: &Credentials,
        pool: &NodePoolRef,
        page_size: u32,
        mut on_page: impl FnMut(PageProgress, &[Node]),
    ) -> Result<ListStats> {
        let target = Target {
            endpoint,
            creds,
            pool,
            page_size,
        };
        let mut stats = ListStats::default();
        let mut token: Option<String> = None;
        let mut seen: HashSet<String> = HashSet::new();
        loop {
            if stats.pages >= self.options.max_pages {
                return Err(Error::InvalidResponse(format!(
                    "pagination did not end after {} pages ({} nodes); refusing to continue",
                    stats.pages, stats.nodes
                )));
            }
            let (list, retries) = self.get_page(&target, token.as_deref()).await?;
            stats.pages += 1;
            stats.retries += retries;
            stats.nodes += list.items.len();
            let next = list.metadata.next_token().map(str::to_owned);
            on_page(
                PageProgress {
                    page: stats.pages,
                    nodes: stats.nodes,
                    remaining: list.metadata.remaining_item_count,
                },
                &list.items,
            );
            drop(list);
            match next {
                None => return Ok(stats),
                Some(t) => {
                    if !seen.insert(t.clone()) {
                        return Err(Error::InvalidResponse(format!(
                            "page {} repeated an earlier continue token; refusing to loop",
                            stats.pages
                        )));
                    }
                    token = Some(t);
                }
            }
        }
    }

    /// `ShowNodePool`: the node-pool object (desired count, ceiling, its own counts).
    pub async fn show_node_pool(
        &self,
        endpoint: &Url,
        creds: &Credentials,
        pool: &NodePoolRef,
    ) -> Result<NodePool> {
        let get = Get {
            endpoint,
            creds,
            project_id: &pool.project_id,
            path: pool.nodepool_path(),
            params: vec![],
            what: "node pool",
        };
        Ok(self.get_retrying(&get).await?.0)
    }

    /// `ListNodePools`: every node pool of a resource pool (no paging in the API).
    pub async fn list_node_pools(
        &self,
        endpoint: &Url,
        creds: &Credentials,
        project_id: &str,
        pool_name: &str,
    ) -> Result<Vec<NodePool>> {
        let get = Get {
            endpoint,
            creds,
            project_id,
            path: format!(
                "/v2/{}/pools/{}/nodepools",
                signer::escape(project_id),
                signer::escape(pool_name)
            ),
            params: vec![],
            what: "node-pool list",
        };
        Ok(self.get_retrying::<NodePoolList>(&get).await?.0.items)
    }

    /// One page, with retries on throttling, unavailability and network errors.
    async fn get_page(&self, target: &Target<'_>, token: Option<&str>) -> Result<(NodeList, u32)> {
        let mut params = vec![("limit", target.page_size.to_string())];
        if let Some(t) = token {
            params.push(("continue", t.to_string()));
        }
        let get = Get {
            endpoint: target.endpoint,
            creds: target.creds,
            project_id: &target.pool.project_id,
            path: target.pool.nodes_path(),
            params,
            what: "node list",
        };
        self.get_retrying(&get).await
    }

    /// One signed GET, retried on throttling, unavailability and network errors; returns
    /// the parsed body and the retries it took.
    async fn get_retrying<T: DeserializeOwned>(&self, get: &Get<'_>) -> Result<(T, u32)> {
        let started = Instant::now();
        let mut attempt: u32 = 0;
        loop {
            attempt += 1;
            let err = match self.attempt(get).await {
                Ok(v) => return Ok((v, attempt - 1)),
                Err(e) => e,
            };
            if !is_retryable(&err) || attempt >= self.options.max_attempts {
                return Err(err);
            }
            let wait = backoff(&self.options, attempt, err.retry_after());
            let too_long = err
                .retry_after()
                .is_some_and(|ra| ra > self.options.max_retry_after);
            if too_long || started.elapsed() + wait > self.options.retry_budget {
                return Err(err);
            }
            tracing::debug!(attempt, wait_ms = wait.as_millis() as u64, error = %err, "retrying ModelArts request");
            tokio::time::sleep(wait).await;
        }
    }

    async fn attempt<T: DeserializeOwned>(&self, get: &Get<'_>) -> Result<T> {
        if let Some(l) = &self.limiter {
            l.until_ready().await;
        }
        let params: Vec<(&str, &str)> = get.params.iter().map(|(k, v)| (*k, v.as_str())).collect();
        let query = signer::canonical_query(&params);
        let origin = get.endpoint.origin().ascii_serialization();
        let url = if query.is_empty() {
            format!("{origin}{}", get.path)
        } else {
            format!("{origin}{}?{query}", get.path)
        };
        let host = endpoint::host_header(get.endpoint);
        let mut req = self.http.current().get(&url);
        for (name, value) in get.creds.auth_headers(
            "GET",
            &host,
            &get.path,
            &query,
            get.project_id,
            jiff::Timestamp::now(),
        ) {
            req = req.header(name, value);
        }
        let trust = &self.options.trust;
        let resp = req.send().await.map_err(|e| transport(&origin, &e, trust))?;
        let status = resp.status().as_u16();
        let request_id = header(&resp, "x-request-id");
        let retry_after = header(&resp, "retry-after").and_then(|v| parse_retry_after(&v));
        let body = read_capped(resp, &origin, trust).await?;
        if !(200..300).contains(&status) {
            return Err(Error::Api(api_error(status, &body, request_id, retry_after)));
        }
        serde_json::from_slice::<T>(&body).map_err(|e| {
            let id = request_id
                .map(|id| format!(", request id {id}"))
                .unwrap_or_default();
            Error::InvalidResponse(format!("{} is not valid JSON ({e}{id})", get.what))
        })
    }
}

/// One GET: where, as whom, and what it reads (for error messages).
struct Get<'a> {
    endpoint: &'a Url,
    creds: &'a Credentials,
    project_id: &'a str,
    path: String,
    params: Vec<(&'static str, String)>,
    what: &'static str,
}

fn header(resp: &reqwest::Response, name: &str) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

async fn read_capped(mut resp: reqwest::Response, origin: &str, trust: &Trust) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await.map_err(|e| transport(origin, &e, trust))? {
        if body.len() + chunk.len() > MAX_BODY_BYTES {
            return Err(Error::InvalidResponse(format!(
                "response body larger than {MAX_BODY_BYTES} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// A transport error without the URL (it may carry a continue token) and with the cause
/// chain; a refused server certificate becomes [`Error::Certificate`].
fn transport(origin: &str, e: &reqwest::Error, trust: &Trust) -> Error {
    if let Some(problem) = tls::certificate_problem(e) {
        let hint = tls::hint(problem, trust);
        let words = innermost(e).unwrap_or_else(|| e.to_string());
        return Error::Certificate {
            endpoint: origin.to_string(),
            problem,
            detail: format!("{hint} ({words})"),
        };
    }
    let mut reason = if e.is_timeout() {
        "timed out".to_string()
    } else if e.is_connect() {
        "could not connect".to_string()
    } else if e.is_body() || e.is_decode() {
        "response body was cut off".to_string()
    } else {
        "request failed".to_string()
    };
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        reason.push_str(": ");
        reason.push_str(&s.to_string());
        source = s.source();
    }
    Error::Transport {
        endpoint: origin.to_string(),
        reason,
    }
}

/// Why a request got no answer, in words (timeouts and connection failures, with the innermost cause).
pub fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    innermost(e).unwrap_or_else(|| e.to_string())
}

/// The last error of the chain: for TLS failures, the rustls words.
fn innermost(e: &reqwest::Error) -> Option<String> {
    let mut last = None;
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        last = Some(s.to_string());
        source = s.source();
    }
    last
}

fn is_retryable(e: &Error) -> bool {
    match e {
        Error::Api(api) => api.is_retryable(),
        Error::Transport { .. } => true,
        _ => false,
    }
}

/// Full-jitter exponential backoff; a server's `Retry-After` wins when it asks for more.
pub fn backoff(options: &ClientOptions, attempt: u32, retry_after: Option<Duration>) -> Duration {
    let exp = options
        .backoff_base
        .saturating_mul(1u32 << attempt.saturating_sub(1).min(16));
    let cap = exp.min(options.backoff_max);
    let jittered = Duration::from_millis(rand::rng().random_range(0..=cap.as_millis() as u64));
    match retry_after {
        Some(ra) => ra.max(jittered),
        None => jittered,
    }
}

/// `Retry-After` as delta-seconds or an HTTP date.
pub fn parse_retry_after(v: &str) -> Option<Duration> {
    let v = v.trim();
    if let Ok(secs) = v.parse::<u64>() {
        return Some(Duration::from_secs(secs));
    }
    let when = jiff::fmt::rfc2822::parse(v).ok()?.timestamp();
    let delta = when.duration_since(jiff::Timestamp::now());
    Some(Duration::try_from(delta).unwrap_or(Duration::ZERO))
}

/// Builds an [`ApiError`] from an error body the way the official Go SDK reads it:
/// `error_code`/`error_msg`, then `code`/`message`, then one level of nesting.
pub fn api_error(
    status: u16,
    body: &[u8],
    request_id: Option<String>,
    retry_after: Option<Duration>,
) -> ApiError {
    let json: Option<serde_json::Value> = serde_json::from_slice(body).ok();
    let pick = |v: &serde_json::Value, keys: &[&str]| -> Option<String> {
        keys.iter()
            .find_map(|k| v.get(*k).and_then(|x| x.as_str()).map(str::to_owned))
    };
    let find = |keys: &[&str]| -> Option<String> {
        let v = json.as_ref()?;
        pick(v, keys).or_else(|| v.as_object()?.values().find_map(|inner| pick(inner, keys)))
    };
    let code = find(&["error_code", "code"]);
    let mut message = find(&["error_msg", "message"]);
    if code.is_none() && message.is_none() && !body.is_empty() {
        let text = String::from_utf8_lossy(body);
        message =
            Some(text.chars().take(200).collect::<String>().trim().to_string()).filter(|s| !s.is_empty());
    }
    ApiError {
        status,
        code,
        message,
        request_id: request_id.or_else(|| find(&["request_id"])),
        retry_after,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_modelarts_and_apigw_error_bodies() {
        let e = api_error(
            400,
            br#"{"error_code":"ModelArts.50004000","error_msg":"Bad request. invalid nodepool name"}"#,
            Some("abc123".into()),
            None,
        );
        assert_eq!(
            e.to_string(),
            "ModelArts.50004000: Bad request. invalid nodepool name (HTTP 400, request id abc123)"
        );
        let e = api_error(
            401,
            br#"{"error_msg":"Incorrect IAM authentication information: verify aksk signature fail","error_code":"APIGW.0301","request_id":"f00d"}"#,
            None,
            None,
        );
        assert_eq!(e.code.as_deref(), Some("APIGW.0301"));
        assert_eq!(e.request_id.as_deref(), Some("f00d"));
        let e = api_error(500, br#"{"error":{"code":"X.1","message":"nested"}}"#, None, None);
        assert_eq!(
            (e.code.as_deref(), e.message.as_deref()),
            (Some("X.1"), Some("nested"))
        );
        let e = api_error(502, b"<html>Bad Gateway</html>", None, None);
        assert_eq!(e.to_string(), "HTTP 502: <html>Bad Gateway</html> (HTTP 502)");
        assert!(e.is_retryable());
    }

    #[test]
    fn retry_after_forms() {
        assert_eq!(parse_retry_after("7"), Some(Duration::from_secs(7)));
        assert_eq!(
            parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT"),
            Some(Duration::ZERO)
        );
        assert_eq!(parse_retry_after("soon"), None);
    }

    #[test]
    fn backoff_grows_is_capped_and_honours_retry_after() {
        let o = ClientOptions {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_secs(1),
            ..Default::default()
        };
        for attempt in 1..20 {
            let cap =
                Duration::from_millis(100 * (1u64 << (attempt - 1).min(16))).min(Duration::from_secs(1));
            assert!(backoff(&o, attempt, None) <= cap);
        }
        assert!(backoff(&o, 1, Some(Duration::from_secs(5))) >= Duration::from_secs(5));
    }

    #[test]
    fn path_segments_are_escaped() {
        let p = NodePoolRef {
            project_id: "p 1".into(),
            pool_name: "pool/x".into(),
            nodepool_name: "np".into(),
        };
        assert_eq!(p.nodes_path(), "/v2/p%201/pools/pool%2Fx/nodepools/np/nodes");
    }
}
