//! A search worker: answers queries from the shared index.

use std::sync::Arc;

use parking_lot::RwLock;
use ractor::ActorProcessingErr;

use super::indexer::SearchState;
use super::protocol::{SearchItem, SearchProtocol, SearchReply, SearchRequest, SEARCH_GROUP};
use crate::service_actor::ServiceWorker;

/// Start arguments of a search worker.
pub struct SearchWorkerArgs {
    /// This node's name.
    pub node: String,
    /// The index, shared with the indexer.
    pub state: Arc<RwLock<SearchState>>,
}

/// A search worker.
pub struct SearchWorker;

impl ServiceWorker for SearchWorker {
    type Protocol = SearchProtocol;
    type State = SearchWorkerArgs;
    const GROUP: &'static str = SEARCH_GROUP;

    fn node(state: &Self::State) -> &str {
        &state.node
    }

    async fn serve(
        state: &mut Self::State,
        request: SearchRequest,
    ) -> Result<SearchReply, ActorProcessingErr> {
        match request {
            SearchRequest::Query { query, limit } => {
                let search = state.state.read();
                Ok(SearchReply::Results(
                    search.index.search(&query, limit).map(|hits| {
                        hits.into_iter()
                            .filter_map(|hit| {
                                let product = search.products.get(&hit.id)?.clone();
                                Some(SearchItem {
                                    product,
                                    score: hit.score,
                                })
                            })
                            .collect()
                    }),
                ))
            }
            SearchRequest::Crash => {
                tracing::warn!(node = %state.node, "crash injected into a search worker");
                Err("crash injected into search worker".into())
            }
        }
    }
}
