//! The catalog's supervisor spec: a store and a pool of read workers over
//! one shared catalog (see the tree in the module doc of `catalog`).

use std::sync::Arc;

use bazaar_cluster::directory;
use bazaar_cluster::remote;
use parking_lot::RwLock;

use super::model::{Catalog, Product};
use super::protocol::{CatalogEvent, CatalogFeedProtocol, CATALOG_FEED_GROUP, CATALOG_STORE_GROUP};
use super::worker::{CatalogWorker, CatalogWorkerArgs};
use crate::context::ServiceContext;
use crate::replica::{ReplicaArgs, ReplicaStore};
use crate::service_actor::WorkerActor;
use crate::spawn::spawn_linked;
use crate::supervision::{ChildSpec, Strategy, SupervisorSpec};

/// The catalog service's tree. The catalog state is created here, once,
/// so it outlives restarts of any actor in the tree.
pub fn catalog_supervisor(ctx: &ServiceContext) -> SupervisorSpec {
    let catalog = Arc::new(RwLock::new(Catalog::seeded()));
    let node = ctx.node.clone();
    let store_state = catalog.clone();
    let mut spec = SupervisorSpec::new("catalog", Strategy::OneForOne).with_child(
        ChildSpec::worker("catalog-store", move |supervisor| {
            let args = ReplicaArgs {
                node: node.clone(),
                group: CATALOG_STORE_GROUP,
                state: store_state.clone(),
                on_change: Arc::new(announce_changes),
            };
            spawn_linked(ReplicaStore::<Catalog>::default(), args, supervisor)
        }),
    );
    for index in 1..=ctx.workers {
        let node = ctx.node.clone();
        let catalog = catalog.clone();
        spec = spec.with_child(ChildSpec::worker(
            format!("catalog-worker-{index}"),
            move |supervisor| {
                let args = CatalogWorkerArgs {
                    node: node.clone(),
                    catalog: catalog.clone(),
                };
                spawn_linked(WorkerActor::<CatalogWorker>::default(), args, supervisor)
            },
        ));
    }
    spec
}

/// Tells this node's catalog subscribers which products changed.
fn announce_changes(products: &[Product]) {
    let event = CatalogEvent::ProductsChanged(products.to_vec());
    for subscriber in directory::local_members::<CatalogFeedProtocol>(CATALOG_FEED_GROUP) {
        let _ = remote::cast(&subscriber, event.clone());
    }
}
