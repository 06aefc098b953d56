//! `SearchClient`: ranked product search, retried on another replica.

use std::time::Duration;

use bazaar_cluster::client::{ClientError, Idempotency, ServiceClient};

use super::model::SearchError;
use super::protocol::{SearchItem, SearchProtocol, SearchReply, SearchRequest, SEARCH_GROUP};

/// Timeout of one search call.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts per query.
const ATTEMPTS: usize = 3;

/// Why a search failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SearchClientError {
    /// The query was refused (empty, too long, too many terms).
    #[error(transparent)]
    Rejected(#[from] SearchError),
    /// No replica answered.
    #[error("search unavailable: {0}")]
    Unavailable(String),
}

impl From<ClientError> for SearchClientError {
    fn from(err: ClientError) -> Self {
        Self::Unavailable(err.to_string())
    }
}

/// A client of the search service.
#[derive(Debug, Clone)]
pub struct SearchClient {
    inner: ServiceClient<SearchProtocol>,
}

impl Default for SearchClient {
    fn default() -> Self {
        Self::new()
    }
}

impl SearchClient {
    /// A client with the default timeout and retries.
    pub fn new() -> Self {
        Self {
            inner: ServiceClient::new(SEARCH_GROUP, CALL_TIMEOUT, ATTEMPTS),
        }
    }

    /// Products matching `query`, best first.
    pub async fn search(
        &self,
        query: &str,
        limit: usize,
    ) -> Result<Vec<SearchItem>, SearchClientError> {
        let request = SearchRequest::Query {
            query: query.to_string(),
            limit,
        };
        match self.inner.call(request, Idempotency::Idempotent).await? {
            SearchReply::Results(results) => Ok(results?),
        }
    }

    /// Makes one search worker on `node` fail.
    pub async fn crash(&self, node: &str) -> Result<(), SearchClientError> {
        self.inner
            .deliver_on(node, SearchRequest::Crash)
            .await
            .map_err(Into::into)
    }
}
