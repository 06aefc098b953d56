//! The search indexer: keeps the node's index current from the catalog,
//! publishing a snapshot after each batch of changes (see
//! [`super::snapshot`]).

use std::sync::Arc;
use std::time::Duration;

use bazaar_cluster::directory;
use bazaar_cluster::remote::ServiceMsg;
use parking_lot::Mutex;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::snapshot::SearchPublisher;
use crate::catalog::protocol::{CatalogEvent, CatalogFeedProtocol, CATALOG_FEED_GROUP};
use crate::catalog::CatalogClient;

/// Wait between two attempts to pull the catalog's changes at start.
const PULL_RETRY: Duration = Duration::from_millis(200);

/// Start arguments of the indexer.
pub struct IndexerArgs {
    /// This node's name.
    pub node: String,
    /// Publishes the index; owned by the supervisor spec, so that it
    /// outlives restarts of the indexer.
    pub publisher: Arc<Mutex<SearchPublisher>>,
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
                let received = products.len();
                let mut publisher = state.publisher.lock();
                let updated = publisher.apply(products);
                if updated > 0 {
                    tracing::debug!(
                        received,
                        updated,
                        version = publisher.version(),
                        "search snapshot published"
                    );
                }
            }
            ServiceMsg::Malformed(err) => {
                tracing::warn!(error = %err, "search indexer dropping malformed message");
            }
        }
        Ok(())
    }
}
