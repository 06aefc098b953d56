//! What the owner does before and after the core: preparing an order
//! (cart, prices, payment) before it is proposed, and the follow-up of
//! every committed order (the buyer's cart, the catalog's stock).
//!
//! Preparation runs in tasks of its own, outside the replica's mailbox, so
//! the core keeps answering its peers and ticking while carts, the catalog
//! and the payment provider are slow or unreachable. It goes in two steps
//! that come back to the replica as messages: `Priced` (cart and prices
//! read; the stock is checked against the core, before any charge) and
//! `Paid` (then proposed). The core checks the key and the stock again when
//! the draft is proposed, so a key yields one order and stock is never
//! oversold. Confirmed orders are counted in `bazaar_orders_confirmed_total`.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use bazaar_cluster::directory;
use bazaar_cluster::membership::table::unix_ms_now;
use bazaar_cluster::remote::{self, ReplyPort, ServiceMsg};
use ractor::{ActorProcessingErr, ActorRef};
use tracing::{Instrument, Span};

use super::model::{validate_key, Order, OrderItem};
use super::node::{OrderDraft, Proposal};
use super::payment::{Charge, PaymentProtocol};
use super::protocol::{
    CheckoutFailure, CheckoutProtocol, CheckoutReply, CheckoutRequest, PAYMENT_GROUP,
};
use super::replica::{CheckoutReplica, OrderWait, Waiting};
use crate::cart::model::{CartChange, RequestId};
use crate::cart::CartClient;
use crate::catalog::CatalogClient;

/// Longest an acknowledgement waits for the cart to be settled.
pub(super) const SETTLE_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for an admin's stock change to reach the catalog.
pub(super) const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
/// Longest a charge may take once the provider's latency is spent.
const PAYMENT_SLACK: Duration = Duration::from_secs(2);

impl CheckoutReplica {
    /// Places the order of `user` under `key`, or answers with the one it
    /// already has; `reply` is answered when the core decides.
    pub(super) fn place_order(
        &mut self,
        myself: &ActorRef<ServiceMsg<CheckoutProtocol>>,
        user: String,
        key: String,
        budget_ms: u64,
        reply: Option<ReplyPort<CheckoutProtocol>>,
    ) -> Result<(), ActorProcessingErr> {
        let mut wait = OrderWait {
            reply,
            span: Span::current(),
            deadline: Instant::now() + Duration::from_millis(budget_ms),
            admitted: None,
        };
        // Not the active owner (the core answers `NotOwner` with the owner
        // it follows), or the key's order committed or in flight (the core
        // answers with it): no preparation.
        let known = self.core.find_order(&user, &key).is_some();
        if known || !self.core.is_active_owner() {
            return self.propose(
                Proposal::Order(empty_draft(user, key)),
                Waiting::Order(wait),
            );
        }
        if let Err(err) = validate_key(&key) {
            let failure = CheckoutFailure::Rejected(err);
            remote::answer(wait.reply, CheckoutReply::Placed(Err(failure)));
            return Ok(());
        }
        if let Err(refused) = self.admission.admit(self.now_ms(), budget_ms) {
            metrics::counter!("bazaar_checkout_refused_total", "reason" => "capacity").increment(1);
            let failure = CheckoutFailure::NotPlaced {
                reason: format!(
                    "checkout is at capacity (an order takes about {} ms to confirm, {budget_ms} ms were left)",
                    refused.expected_ms
                ),
                retry_after_ms: refused.retry_after_ms,
            };
            remote::answer(wait.reply, CheckoutReply::Placed(Err(failure)));
            return Ok(());
        }
        wait.admitted = Some(Instant::now());
        metrics::gauge!("bazaar_checkout_orders_in_flight").set(self.admission.in_flight() as f64);
        let id = self.wait(Waiting::Order(wait));
        let myself = myself.clone();
        // In the caller's trace, as is the `Priced` message it casts back.
        tokio::spawn(
            async move {
                let draft = price(user, key).await;
                let _ = myself.cast(ServiceMsg::Cast(CheckoutRequest::Priced { id, draft }));
            }
            .instrument(Span::current()),
        );
        Ok(())
    }

    /// An order was priced: check the stock, then charge it.
    pub(super) fn priced(
        &mut self,
        myself: &ActorRef<ServiceMsg<CheckoutProtocol>>,
        id: u64,
        draft: Result<OrderDraft, CheckoutFailure>,
    ) -> Result<(), ActorProcessingErr> {
        let mut wanted = BTreeMap::new();
        let checked = draft.and_then(|draft| {
            for item in &draft.items {
                *wanted.entry(item.product_id).or_default() += item.quantity;
            }
            self.core.check_stock(&wanted)?;
            Ok(draft)
        });
        let draft = match checked {
            Ok(draft) => draft,
            Err(failure) => return self.fail(id, failure),
        };
        if let Some(gone) = self.client_gone(id, "charged") {
            return self.fail(id, gone);
        }
        let worker = directory::members_on::<PaymentProtocol>(PAYMENT_GROUP, &self.node)
            .into_iter()
            .next();
        let payment = self.payment.clone();
        let myself = myself.clone();
        tokio::spawn(
            async move {
                super::payment::provider_latency(&payment).await;
                let draft = charge(worker, draft, PAYMENT_SLACK).await;
                let _ = myself.cast(ServiceMsg::Cast(CheckoutRequest::Paid { id, draft }));
            }
            .instrument(Span::current()),
        );
        Ok(())
    }

    /// An order was paid: propose it.
    pub(super) fn paid(
        &mut self,
        id: u64,
        draft: Result<OrderDraft, CheckoutFailure>,
    ) -> Result<(), ActorProcessingErr> {
        match draft {
            Ok(draft) => {
                if let Some(gone) = self.client_gone(id, "proposed") {
                    // A real provider would be told to void the charge here.
                    tracing::info!(user = %draft.user, key = %draft.key, payment = %draft.payment_id, "charge voided: the client's deadline passed");
                    return self.fail(id, gone);
                }
                self.propose_as(id, Proposal::Order(draft))
            }
            Err(failure) => self.fail(id, failure),
        }
    }

    /// The failure for the order waiting under `id` if its client's
    /// deadline has passed before it was `stage` (no order is placed).
    fn client_gone(&self, id: u64, stage: &str) -> Option<CheckoutFailure> {
        let Some(Waiting::Order(wait)) = self.waiting.get(&id) else {
            return None;
        };
        if Instant::now() < wait.deadline {
            return None;
        }
        metrics::counter!("bazaar_checkout_refused_total", "reason" => "deadline").increment(1);
        Some(CheckoutFailure::NotPlaced {
            reason: format!("the client's deadline passed before the order was {stage}"),
            retry_after_ms: 0,
        })
    }

    /// After an order committed: take what was bought out of the buyer's
    /// cart (unless `settle` is false: the reply to its client does it)
    /// and publish the new stock, in the background (both repeatable; the
    /// cart changes carry ids derived from the key, so each applies once).
    pub(super) fn after_commit(&self, order: &Order, settle: bool) {
        let stock: Vec<(u64, u32)> = order
            .items
            .iter()
            .map(|item| (item.product_id, self.core.book().available(item.product_id)))
            .collect();
        self.publisher.publish(stock);
        if settle {
            let order = order.clone();
            tokio::spawn(async move { settle_cart(&order).await });
        }
    }
}

/// A draft that only names the key: the core answers it with the key's
/// order, or `NotOwner`; it never appends one (an empty order has no items
/// and fails the stock check).
fn empty_draft(user: String, key: String) -> OrderDraft {
    OrderDraft {
        user,
        key,
        items: Vec::new(),
        total_cents: 0,
        payment_id: String::new(),
        created_ms: 0,
    }
}

/// Reads `user`'s cart and prices it: a draft without a payment.
async fn price(user: String, key: String) -> Result<OrderDraft, CheckoutFailure> {
    let cart = CartClient::new()
        .get(&user)
        .await
        .map_err(|err| CheckoutFailure::Unavailable(format!("cart: {err}")))?;
    let catalog = CatalogClient::new();
    let mut items = Vec::with_capacity(cart.items.len());
    for (product_id, quantity) in &cart.items {
        match catalog.product(*product_id).await {
            Ok(Some(product)) => items.push(OrderItem {
                product_id: *product_id,
                name: product.name,
                quantity: *quantity,
                price_cents: product.price_cents,
            }),
            Ok(None) => {
                return Err(CheckoutFailure::Unavailable(format!(
                    "product {product_id} vanished"
                )))
            }
            Err(err) => return Err(CheckoutFailure::Unavailable(format!("catalog: {err}"))),
        }
    }
    let total_cents = items
        .iter()
        .map(|item| item.price_cents * u64::from(item.quantity))
        .sum();
    Ok(OrderDraft {
        user,
        key,
        items,
        total_cents,
        payment_id: String::new(),
        created_ms: unix_ms_now(),
    })
}

/// Charges a priced draft through this node's payment worker.
async fn charge(
    worker: Option<ActorRef<ServiceMsg<PaymentProtocol>>>,
    mut draft: OrderDraft,
    timeout: Duration,
) -> Result<OrderDraft, CheckoutFailure> {
    let Some(worker) = worker else {
        return Err(CheckoutFailure::PaymentFailed(
            "payment worker restarting".into(),
        ));
    };
    let charge = Charge {
        user: draft.user.clone(),
        key: draft.key.clone(),
        amount_cents: draft.total_cents,
    };
    draft.payment_id = remote::call(&worker, charge, timeout)
        .await
        .map_err(|err| CheckoutFailure::PaymentFailed(err.to_string()))?;
    Ok(draft)
}

/// Takes an order's items out of its buyer's cart (idempotent per order
/// and product). Subtracting rather than clearing keeps what the buyer
/// added since.
pub(super) async fn settle_cart(order: &Order) {
    let carts = CartClient::new();
    for item in &order.items {
        let change = CartChange::Subtract {
            product_id: item.product_id,
            quantity: item.quantity,
        };
        let request_id = RequestId::from_key(
            "checkout.bought",
            &format!("{}/{}", order.idempotency_key, item.product_id),
        );
        if let Err(err) = carts.change(&order.user, change, request_id).await {
            tracing::warn!(user = %order.user, order = %order.order_id, error = %err, "cannot take bought items out of the cart");
        }
    }
}
