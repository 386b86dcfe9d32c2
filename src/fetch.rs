//! Fetching one node pool: every page listed and folded into a summary as it arrives,
//! then the node-pool object beside it. Shared by `inspect` and the controller (one
//! sync's read side). A sync costs `ceil(nodes / pageSize)` requests plus one.

use crate::{
    client::{ListStats, ModelArtsClient, NodePoolRef, PageProgress},
    credentials::Credentials,
    reason,
    status::{NodePoolRead, Observed},
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

/// The nodes (a failure here fails the sync) and then the node-pool object (a failure
/// there only leaves the node-pool view unknown: the node data is still good).
pub async fn fetch_observed(
    client: &ModelArtsClient,
    endpoint: &Url,
    creds: &Credentials,
    pool: &NodePoolRef,
    page_size: u32,
    max_nodes: usize,
    progress: impl FnMut(PageProgress),
) -> crate::Result<(Observed, ListStats)> {
    let (nodes, stats) = fetch_summary(client, endpoint, creds, pool, page_size, max_nodes, progress).await?;
    let node_pool = match client.show_node_pool(endpoint, creds, pool).await {
        Ok(np) => NodePoolRead::Read(Box::new(np)),
        Err(e) => {
            tracing::warn!(error = %e, "reading the node pool failed");
            NodePoolRead::Failed {
                reason: reason::for_error(&e).to_string(),
                message: e.to_string(),
            }
        }
    };
    Ok((Observed { nodes, node_pool }, stats))
}
