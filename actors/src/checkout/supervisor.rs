//! The checkout service's supervisor spec (the tree is in the module doc
//! of `checkout`).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use super::payment::{PaymentArgs, PaymentWorker};
use super::protocol::PaymentSettings;
use super::replica::{CheckoutReplicaActor, ReplicaArgs};
use crate::catalog::model::seed_products;
use crate::context::ServiceContext;
use crate::service_actor::WorkerActor;
use crate::spawn::spawn_linked;
use crate::supervision::{ChildSpec, RestartBudget, Strategy, SupervisorSpec};

/// Payment failures are expected (they are simulated on demand): their
/// supervisor tolerates many before giving up.
const PAYMENT_BUDGET: RestartBudget = RestartBudget {
    max_restarts: 100,
    window: Duration::from_secs(10),
};

/// The checkout service's tree.
pub fn checkout_supervisor(ctx: &ServiceContext) -> SupervisorSpec {
    let payment = Arc::new(Mutex::new(PaymentSettings::default()));
    let base_stock: Arc<HashMap<u64, u32>> = Arc::new(
        seed_products()
            .into_iter()
            .map(|product| (product.id, product.stock))
            .collect(),
    );
    let replica_ctx = ctx.clone();
    let replica_payment = payment.clone();
    let journal = ChildSpec::worker("checkout-journal", move |supervisor| {
        let args = ReplicaArgs {
            node: replica_ctx.node.clone(),
            data_dir: replica_ctx.data_dir.clone(),
            view: replica_ctx.view.clone(),
            voters: replica_ctx.voters.clone(),
            payment: replica_payment.clone(),
            base_stock: base_stock.clone(),
        };
        spawn_linked(CheckoutReplicaActor, args, supervisor)
    });
    let node = ctx.node.clone();
    let payments = SupervisorSpec::new("payments", Strategy::OneForOne)
        .with_budget(PAYMENT_BUDGET)
        .with_child(ChildSpec::worker("payment-worker", move |supervisor| {
            let args = PaymentArgs {
                node: node.clone(),
                settings: payment.clone(),
            };
            spawn_linked(WorkerActor::<PaymentWorker>::default(), args, supervisor)
        }));
    SupervisorSpec::new("checkout", Strategy::RestForOne)
        .with_child(journal)
        .with_child(ChildSpec::nested(payments))
}
