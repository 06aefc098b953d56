//! The cart's supervisor spec (see the tree in the module doc of `cart`).

use std::sync::Arc;

use super::backup::{CartBackup, CartBackupArgs};
use super::owner::Owner;
use super::store::CartStore;
use super::sync::CartSync;
use super::worker::CartWorker;
use super::CART_SHARDS;
use crate::context::ServiceContext;
use crate::service_actor::WorkerActor;
use crate::spawn::spawn_linked;
use crate::supervision::{ChildSpec, Strategy, SupervisorSpec};

/// Cart workers per read worker of the other services: they mostly wait
/// on a backup, not on the CPU.
const WORKER_FACTOR: usize = 2;

/// The cart service's tree. The store is created here, once, so it
/// outlives restarts of any actor in the tree (not a restart of the whole
/// service: the owners of its shards then push them again).
pub fn cart_supervisor(ctx: &ServiceContext) -> SupervisorSpec {
    let owner = Owner {
        node: ctx.node.clone(),
        store: Arc::new(CartStore::new(CART_SHARDS)),
        view: ctx.view.clone(),
        voters: ctx.voters.clone(),
    };
    let backup = owner.clone();
    let sync = owner.clone();
    let mut spec = SupervisorSpec::new("cart", Strategy::OneForOne)
        .with_child(ChildSpec::worker("cart-backup", move |supervisor| {
            let args = CartBackupArgs {
                node: backup.node.clone(),
                store: backup.store.clone(),
                view: backup.view.clone(),
                voters: backup.voters.clone(),
            };
            spawn_linked(WorkerActor::<CartBackup>::default(), args, supervisor)
        }))
        .with_child(ChildSpec::worker("cart-sync", move |supervisor| {
            spawn_linked(CartSync, sync.clone(), supervisor)
        }));
    for index in 1..=ctx.workers * WORKER_FACTOR {
        let owner = owner.clone();
        spec = spec.with_child(ChildSpec::worker(
            format!("cart-worker-{index}"),
            move |supervisor| {
                spawn_linked(
                    WorkerActor::<CartWorker>::default(),
                    owner.clone(),
                    supervisor,
                )
            },
        ));
    }
    spec
}
