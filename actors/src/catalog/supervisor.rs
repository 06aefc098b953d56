//! The catalog's supervisor spec: a store and a pool of read workers over
//! one shared catalog, and the publisher of its snapshots (see the tree in
//! the module doc of `catalog`).

use std::sync::Arc;

use bazaar_cluster::directory;
use bazaar_cluster::remote;
use parking_lot::RwLock;

use super::model::{Catalog, Product};
use super::protocol::{CatalogEvent, CatalogFeedProtocol, CATALOG_FEED_GROUP, CATALOG_STORE_GROUP};
use super::snapshot::CatalogPublisher;
use super::worker::{CatalogWorker, CatalogWorkerArgs};
use crate::context::ServiceContext;
use crate::replica::{ChangeListener, ReplicaArgs, ReplicaStore};
use crate::service_actor::WorkerActor;
use crate::spawn::spawn_linked;
use crate::supervision::{ChildSpec, Strategy, SupervisorSpec};

/// The catalog service's tree. The catalog state and its publisher are
/// created here, once, so they outlive restarts of any actor in the tree;
/// the first snapshot is published into `ctx.snapshots` now.
pub fn catalog_supervisor(ctx: &ServiceContext) -> SupervisorSpec {
    let catalog = Arc::new(RwLock::new(Catalog::seeded()));
    let publisher = ctx.snapshots.catalog.publisher(&catalog.read());
    let on_change = publish_and_announce(catalog.clone(), publisher);
    let node = ctx.node.clone();
    let store_state = catalog.clone();
    let mut spec = SupervisorSpec::new("catalog", Strategy::OneForOne).with_child(
        ChildSpec::worker("catalog-store", move |supervisor| {
            let args = ReplicaArgs {
                node: node.clone(),
                group: CATALOG_STORE_GROUP,
                state: store_state.clone(),
                on_change: on_change.clone(),
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

/// What the store does after each change it applied: publish the next
/// snapshot (before it answers the write, so that a read after an
/// acknowledged update sees it), then announce the change.
fn publish_and_announce(
    catalog: Arc<RwLock<Catalog>>,
    publisher: CatalogPublisher,
) -> ChangeListener<Catalog> {
    Arc::new(move |products: &[Product]| {
        let version = publisher.publish(&catalog.read(), products.iter().map(|p| p.id));
        tracing::debug!(
            version,
            products = products.len(),
            "catalog snapshot published"
        );
        announce_changes(products);
    })
}

/// Tells this node's catalog subscribers which products changed.
fn announce_changes(products: &[Product]) {
    let event = CatalogEvent::ProductsChanged(products.to_vec());
    for subscriber in directory::local_members::<CatalogFeedProtocol>(CATALOG_FEED_GROUP) {
        let _ = remote::cast(&subscriber, event.clone());
    }
}
