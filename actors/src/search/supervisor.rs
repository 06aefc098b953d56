//! The search service's supervisor spec: an indexer and a pool of query
//! workers over one shared index. `rest_for_one`: if the indexer fails,
//! the workers restart after it.

use std::sync::Arc;

use parking_lot::RwLock;

use super::indexer::{IndexerArgs, SearchIndexer, SearchState};
use super::worker::{SearchWorker, SearchWorkerArgs};
use crate::context::ServiceContext;
use crate::service_actor::WorkerActor;
use crate::spawn::spawn_linked;
use crate::supervision::{ChildSpec, Strategy, SupervisorSpec};

/// The search service's tree; the index is built here, once.
pub fn search_supervisor(ctx: &ServiceContext) -> SupervisorSpec {
    let state = Arc::new(RwLock::new(SearchState::seeded()));
    let node = ctx.node.clone();
    let indexer_state = state.clone();
    let mut spec = SupervisorSpec::new("search", Strategy::RestForOne).with_child(
        ChildSpec::worker("search-indexer", move |supervisor| {
            let args = IndexerArgs {
                node: node.clone(),
                state: indexer_state.clone(),
            };
            spawn_linked(SearchIndexer, args, supervisor)
        }),
    );
    for index in 1..=ctx.workers {
        let node = ctx.node.clone();
        let state = state.clone();
        spec = spec.with_child(ChildSpec::worker(
            format!("search-worker-{index}"),
            move |supervisor| {
                let args = SearchWorkerArgs {
                    node: node.clone(),
                    state: state.clone(),
                };
                spawn_linked(WorkerActor::<SearchWorker>::default(), args, supervisor)
            },
        ));
    }
    spec
}
