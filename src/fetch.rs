//! Fetching one node pool: every page listed and folded into a summary as it arrives.
//! Shared by `inspect` and the controller (one sync's read side).

use crate::{
    client::{ListStats, ModelArtsClient, NodePoolRef, PageProgress},
    credentials::Credentials,
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
