//! One sync of one node pool: every page listed and folded into a summary, plus the
//! mapping from failures to condition reasons. Shared by `inspect` and the controller.

use crate::{
    client::{ListStats, ModelArtsClient, NodePoolRef, PageProgress},
    credentials::Credentials,
    error::Error,
    summary::{PoolSummary, Summarizer},
};
use url::Url;

/// Lists all pages and summarizes them as they arrive.
pub async fn fetch_summary(
    client: &ModelArtsClient,
    endpoint: &Url,
    creds: &Credentials,
    pool: &NodePoolRef,
    page_size: u32,
    max_nodes: usize,
    mut progress: impl FnMut(PageProgress),
) -> crate::Result<(PoolSummary, ListStats)> {
    let mut summarizer = Summarizer::new(max_nodes);
    let stats = client
        .list_nodes(endpoint, creds, pool, page_size, |p, nodes| {
            summarizer.add_page(nodes);
            progress(p);
        })
        .await?;
    Ok((summarizer.finish(), stats))
}

/// The `Synced` condition reason for a failure.
pub fn reason(err: &Error) -> &'static str {
    match err {
        Error::Credentials(_) => "CredentialsNotFound",
        Error::InvalidInput { .. } => "InvalidSpec",
        Error::Api(e) => match e.status {
            401 => "AuthenticationFailed",
            403 => "Forbidden",
            404 => "NodePoolNotFound",
            400 if e
                .message
                .as_deref()
                .is_some_and(|m| m.contains("nodepool") || m.contains("pool")) =>
            {
                "NodePoolNotFound"
            }
            400 => "BadRequest",
            429 => "Throttled",
            _ => "ModelArtsUnavailable",
        },
        Error::Transport { .. } => "ModelArtsUnavailable",
        Error::InvalidResponse(_) => "InvalidResponse",
        Error::Kube(_) | Error::Io { .. } => "InternalError",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ApiError;

    fn api(status: u16, msg: &str) -> Error {
        Error::Api(ApiError {
            status,
            code: None,
            message: Some(msg.into()),
            request_id: None,
            retry_after: None,
        })
    }

    #[test]
    fn reasons_follow_the_documented_codes() {
        assert_eq!(
            reason(&api(401, "verify aksk signature fail")),
            "AuthenticationFailed"
        );
        assert_eq!(reason(&api(403, "no")), "Forbidden");
        assert_eq!(reason(&api(404, "Pool x not found.")), "NodePoolNotFound");
        assert_eq!(
            reason(&api(400, "Bad request. invalid nodepool name")),
            "NodePoolNotFound"
        );
        assert_eq!(reason(&api(429, "throttled")), "Throttled");
        assert_eq!(reason(&api(503, "down")), "ModelArtsUnavailable");
        assert_eq!(reason(&Error::InvalidResponse("x".into())), "InvalidResponse");
        assert_eq!(reason(&Error::Credentials("x".into())), "CredentialsNotFound");
    }
}
