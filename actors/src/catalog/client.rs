//! `CatalogClient`: how the gateway and other services talk to the
//! catalog. Reads are retried on another replica; updates are not.

use std::time::Duration;

use bazaar_cluster::client::{ClientError, Idempotency, ServiceClient};

use super::model::{CatalogError, Product, ProductPatch};
use super::protocol::{CatalogProtocol, CatalogReply, CatalogRequest, CATALOG_GROUP};

/// Timeout of one catalog call.
const CALL_TIMEOUT: Duration = Duration::from_secs(2);
/// Attempts for reads.
const READ_ATTEMPTS: usize = 3;

/// Why a catalog request failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CatalogClientError {
    /// The catalog refused the request.
    #[error(transparent)]
    Rejected(#[from] CatalogError),
    /// No replica answered; for an update, its outcome is unknown.
    #[error("catalog unavailable: {0}")]
    Unavailable(String),
}

impl From<ClientError> for CatalogClientError {
    fn from(err: ClientError) -> Self {
        Self::Unavailable(err.to_string())
    }
}

/// A client of the catalog service.
#[derive(Debug, Clone)]
pub struct CatalogClient {
    inner: ServiceClient<CatalogProtocol>,
}

impl Default for CatalogClient {
    fn default() -> Self {
        Self::new()
    }
}

impl CatalogClient {
    /// A client with the default timeout and retries.
    pub fn new() -> Self {
        Self {
            inner: ServiceClient::new(CATALOG_GROUP, CALL_TIMEOUT, READ_ATTEMPTS),
        }
    }

    async fn read(&self, request: CatalogRequest) -> Result<CatalogReply, CatalogClientError> {
        Ok(self.inner.call(request, Idempotency::Idempotent).await?)
    }

    /// One product, or `None` if no product has this id.
    pub async fn product(&self, id: u64) -> Result<Option<Product>, CatalogClientError> {
        match self.read(CatalogRequest::Get { id }).await? {
            CatalogReply::Product(product) => Ok(product),
            other => Err(unexpected(other)),
        }
    }

    /// A page of products and the total count.
    pub async fn page(
        &self,
        offset: usize,
        limit: usize,
    ) -> Result<(Vec<Product>, usize), CatalogClientError> {
        match self.read(CatalogRequest::Page { offset, limit }).await? {
            CatalogReply::Page { items, total } => Ok((items, total)),
            other => Err(unexpected(other)),
        }
    }

    /// Products changed since the seed.
    pub async fn changes(&self) -> Result<Vec<Product>, CatalogClientError> {
        match self.read(CatalogRequest::Changes).await? {
            CatalogReply::Products(items) => Ok(items),
            other => Err(unexpected(other)),
        }
    }

    /// Applies an admin update; the new version reaches every replica.
    pub async fn update(
        &self,
        id: u64,
        patch: ProductPatch,
    ) -> Result<Product, CatalogClientError> {
        let reply = self
            .inner
            .call(
                CatalogRequest::Update { id, patch },
                Idempotency::NotIdempotent,
            )
            .await?;
        match reply {
            CatalogReply::Updated(outcome) => Ok(outcome?),
            other => Err(unexpected(other)),
        }
    }

    /// Makes one catalog worker on `node` fail.
    pub async fn crash(&self, node: &str) -> Result<(), CatalogClientError> {
        self.inner
            .deliver_on(node, CatalogRequest::Crash)
            .await
            .map_err(Into::into)
    }
}

fn unexpected(reply: CatalogReply) -> CatalogClientError {
    match reply {
        CatalogReply::Unavailable(reason) => CatalogClientError::Unavailable(reason),
        other => CatalogClientError::Unavailable(format!("unexpected reply {other:?}")),
    }
}
