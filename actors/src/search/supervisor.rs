//! The search service's supervisor spec: an indexer and a pool of query
//! workers over one published index. `rest_for_one`: if the indexer fails,
//! the workers restart after it.

use std::sync::Arc;

use parking_lot::Mutex;

use super::indexer::{IndexerArgs, SearchIndexer};
use super::snapshot::{SearchPublisher, SearchState};
use super::worker::{SearchWorker, SearchWorkerArgs};
use crate::context::ServiceContext;
use crate::service_actor::WorkerActor;
use crate::spawn::spawn_linked;
use crate::supervision::{ChildSpec, Strategy, SupervisorSpec};

/// The search service's tree; the index is built and published into
/// `ctx.snapshots` here, once, so it outlives restarts of any actor.
pub fn search_supervisor(ctx: &ServiceContext) -> SupervisorSpec {
    let snapshots = ctx.snapshots.search.clone();
    let publisher = SearchPublisher::new(snapshots.clone(), SearchState::seeded());
    let publisher = Arc::new(Mutex::new(publisher));
    let node = ctx.node.clone();
    let mut spec = SupervisorSpec::new("search", Strategy::RestForOne).with_child(
        ChildSpec::worker("search-indexer", move |supervisor| {
            let args = IndexerArgs {
                node: node.clone(),
                publisher: publisher.clone(),
            };
            spawn_linked(SearchIndexer, args, supervisor)
        }),
    );
    for index in 1..=ctx.workers {
        let node = ctx.node.clone();
        let snapshots = snapshots.clone();
        spec = spec.with_child(ChildSpec::worker(
            format!("search-worker-{index}"),
            move |supervisor| {
                let args = SearchWorkerArgs {
                    node: node.clone(),
                    snapshots: snapshots.clone(),
                };
                spawn_linked(WorkerActor::<SearchWorker>::default(), args, supervisor)
            },
        ));
    }
    spec
}
