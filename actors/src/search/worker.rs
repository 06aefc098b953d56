//! A search worker: answers queries from the shared index.

use std::sync::Arc;

use bazaar_cluster::directory;
use bazaar_cluster::remote::{self, ServiceMsg};
use parking_lot::RwLock;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::indexer::SearchState;
use super::protocol::{SearchItem, SearchProtocol, SearchReply, SearchRequest, SEARCH_GROUP};

/// Start arguments of a search worker.
pub struct SearchWorkerArgs {
    /// This node's name.
    pub node: String,
    /// The index, shared with the indexer.
    pub state: Arc<RwLock<SearchState>>,
}

/// A search worker.
pub struct SearchWorker;

impl Actor for SearchWorker {
    type Msg = ServiceMsg<SearchProtocol>;
    type State = SearchWorkerArgs;
    type Arguments = SearchWorkerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: SearchWorkerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        directory::join(SEARCH_GROUP, &args.node, &myself);
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let Some((request, reply)) = message.into_parts() else {
            return Ok(());
        };
        let answer = match request {
            SearchRequest::Query { query, limit } => {
                let search = state.state.read();
                SearchReply::Results(search.index.search(&query, limit).map(|hits| {
                    hits.into_iter()
                        .filter_map(|hit| {
                            let product = search.products.get(&hit.id)?.clone();
                            Some(SearchItem {
                                product,
                                score: hit.score,
                            })
                        })
                        .collect()
                }))
            }
            SearchRequest::Crash => {
                tracing::warn!(node = %state.node, "crash injected into a search worker");
                return Err("crash injected into search worker".into());
            }
        };
        remote::answer(reply, answer);
        Ok(())
    }
}
