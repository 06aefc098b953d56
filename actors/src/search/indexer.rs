//! The search indexer: keeps the node's index current from the catalog.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bazaar_cluster::directory;
use bazaar_cluster::remote::ServiceMsg;
use parking_lot::RwLock;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::model::SearchIndex;
use crate::catalog::model::{seed_products, Product};
use crate::catalog::protocol::{CatalogEvent, CatalogFeedProtocol, CATALOG_FEED_GROUP};
use crate::catalog::CatalogClient;

/// Wait between two attempts to pull the catalog's changes at start.
const PULL_RETRY: Duration = Duration::from_millis(200);

/// The index and the products it was built from.
pub struct SearchState {
    /// The inverted index.
    pub index: SearchIndex,
    /// Indexed products by id, as returned in results.
    pub products: HashMap<u64, Product>,
}

impl SearchState {
    /// The index of the seeded catalog.
    pub fn seeded() -> Self {
        let products = seed_products();
        let index = SearchIndex::build(products.iter());
        Self {
            index,
            products: products
                .into_iter()
                .map(|product| (product.id, product))
                .collect(),
        }
    }

    /// Indexes `product` unless a newer version of it is already indexed.
    pub fn upsert(&mut self, product: Product) -> bool {
        let newer = self.products.get(&product.id).is_none_or(|current| {
            (product.version, &product.updated_by) > (current.version, &current.updated_by)
        });
        if newer {
            self.index.upsert(&product);
            self.products.insert(product.id, product);
        }
        newer
    }
}

/// Start arguments of the indexer.
pub struct IndexerArgs {
    /// This node's name.
    pub node: String,
    /// The index, shared with the workers.
    pub state: Arc<RwLock<SearchState>>,
}

/// Follows the catalog feed.
pub struct SearchIndexer;

impl Actor for SearchIndexer {
    type Msg = ServiceMsg<CatalogFeedProtocol>;
    type State = IndexerArgs;
    type Arguments = IndexerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: IndexerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        directory::join(CATALOG_FEED_GROUP, &args.node, &myself);
        // Changes made before this indexer existed: pull them once from the
        // catalog, in the background, until it answers.
        tokio::spawn(async move {
            let catalog = CatalogClient::new();
            loop {
                match catalog.changes().await {
                    Ok(changes) => {
                        let event = CatalogEvent::ProductsChanged(changes);
                        let _ = myself.cast(ServiceMsg::Cast(event));
                        return;
                    }
                    Err(err) => {
                        tracing::debug!(error = %err, "search waiting for the catalog");
                        if myself.get_status() != ractor::ActorStatus::Running {
                            return;
                        }
                        tokio::time::sleep(PULL_RETRY).await;
                    }
                }
            }
        });
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            ServiceMsg::Cast(CatalogEvent::ProductsChanged(products))
            | ServiceMsg::Call(CatalogEvent::ProductsChanged(products), _) => {
                let mut search = state.state.write();
                let updated = products
                    .into_iter()
                    .filter(|product| search.upsert(product.clone()))
                    .count();
                tracing::debug!(updated, "search index updated");
            }
            ServiceMsg::Malformed(err) => {
                tracing::warn!(error = %err, "search indexer dropping malformed message");
            }
        }
        Ok(())
    }
}
