//! The simulated payment provider: one worker per node, whose failure
//! rate and latency are set at run time. A failed charge makes the worker
//! fail (as a crashed connection to a real provider would), so its
//! supervisor restarts it and the restart shows in the tree; the order
//! that asked for it is not confirmed.
//!
//! The provider's latency is spent by the caller before it asks the
//! worker ([`provider_latency`]), not inside the worker: a real provider
//! serves many charges at once, and a worker that slept per charge would
//! cap a node at `1000 / latency_ms` charges a second.

use std::sync::Arc;
use std::time::Duration;

use bazaar_cluster::remote::Protocol;
use parking_lot::Mutex;
use ractor::ActorProcessingErr;
use rand::Rng;
use serde::{Deserialize, Serialize};

use super::protocol::{PaymentSettings, PAYMENT_GROUP};
use crate::service_actor::ServiceWorker;

/// The payment worker's protocol.
pub struct PaymentProtocol;

impl Protocol for PaymentProtocol {
    const NAME: &'static str = "bazaar.checkout.payment.v1";
    type Request = Charge;
    type Reply = String;
}

/// A charge of `amount_cents` for the order with idempotency `key`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// The buyer.
    pub user: String,
    /// The order's idempotency key.
    pub key: String,
    /// Amount to charge.
    pub amount_cents: u64,
}

/// Start arguments of a payment worker.
pub struct PaymentArgs {
    /// This node's name.
    pub node: String,
    /// Current settings, shared with the checkout replica that changes them.
    pub settings: Arc<Mutex<PaymentSettings>>,
}

/// The simulated payment provider.
pub struct PaymentWorker;

impl ServiceWorker for PaymentWorker {
    type Protocol = PaymentProtocol;
    type State = PaymentArgs;
    const GROUP: &'static str = PAYMENT_GROUP;

    fn node(state: &Self::State) -> &str {
        &state.node
    }

    async fn serve(state: &mut Self::State, charge: Charge) -> Result<String, ActorProcessingErr> {
        let settings = *state.settings.lock();
        if rand::rng().random_bool(settings.failure_rate.clamp(0.0, 1.0)) {
            tracing::warn!(user = %charge.user, key = %charge.key, "simulated payment failure");
            return Err(format!("payment provider failed for key {}", charge.key).into());
        }
        Ok(format!("pay-{:016x}", rand::rng().random::<u64>()))
    }
}

/// Waits as long as the provider takes to answer one charge, concurrently
/// with every other charge.
pub async fn provider_latency(settings: &Mutex<PaymentSettings>) {
    let latency = Duration::from_millis(settings.lock().latency_ms);
    tokio::time::sleep(latency).await;
}
