//! A search worker: answers queries from the current snapshot of the
//! index, for callers that cannot read it directly (other nodes).

use ractor::ActorProcessingErr;

use super::protocol::{SearchItem, SearchProtocol, SearchReply, SearchRequest, SEARCH_GROUP};
use super::snapshot::SearchSnapshots;
use crate::service_actor::ServiceWorker;

/// Start arguments of a search worker.
pub struct SearchWorkerArgs {
    /// This node's name.
    pub node: String,
    /// The index as the indexer publishes it.
    pub snapshots: SearchSnapshots,
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
                // The spec publishes before it starts any worker.
                let Some(snapshot) = state.snapshots.load() else {
                    return Err("search snapshot not published".into());
                };
                Ok(SearchReply::Results(
                    snapshot.state().search(&query, limit).map(|matches| {
                        matches
                            .into_iter()
                            .map(|found| SearchItem {
                                product: found.entry.product().clone(),
                                score: found.score,
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
