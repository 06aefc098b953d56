//! What the owner does before and after the core: preparing an order
//! (cart, prices, payment) before it is proposed, and the follow-up of
//! every committed order (the buyer's cart, the catalog's stock).
//!
//! An order is prepared inside the replica's message, so orders are
//! prepared one at a time; the core re-checks the key and the stock when
//! the draft is proposed, so a key yields one order and stock is never
//! oversold. Confirmed orders are counted in `bazaar_orders_confirmed_total`.

use std::collections::BTreeMap;
use std::time::Duration;

use bazaar_cluster::directory;
use bazaar_cluster::membership::table::unix_ms_now;
use bazaar_cluster::remote::{self, ReplyPort};
use ractor::ActorProcessingErr;

use super::model::{validate_key, Order, OrderItem};
use super::node::{OrderDraft, Proposal};
use super::payment::{Charge, PaymentProtocol};
use super::protocol::{CheckoutFailure, CheckoutProtocol, CheckoutReply, PAYMENT_GROUP};
use super::replica::{CheckoutReplica, Waiting};
use crate::cart::model::{CartChange, RequestId};
use crate::cart::CartClient;
use crate::catalog::CatalogClient;

/// Longest an acknowledgement waits for the cart to be settled.
pub(super) const SETTLE_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for an admin's stock change to reach the catalog.
pub(super) const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
/// Extra time a charge may take beyond the provider's configured latency.
const PAYMENT_SLACK: Duration = Duration::from_secs(2);

impl CheckoutReplica {
    /// Places the order of `user` under `key`, or answers with the one it
    /// already has; `reply` is answered when the core decides.
    pub(super) async fn place_order(
        &mut self,
        user: String,
        key: String,
        reply: Option<ReplyPort<CheckoutProtocol>>,
    ) -> Result<(), ActorProcessingErr> {
        if !matches!(self.core.owned_epoch(), Some((_, true))) {
            // The core answers `NotOwner` with the owner it follows.
            return self.propose(
                Proposal::Order(empty_draft(user, key)),
                Waiting::Order(reply),
            );
        }
        if let Err(err) = validate_key(&key) {
            let failure = CheckoutFailure::Rejected(err);
            remote::answer(reply, CheckoutReply::Placed(Err(failure)));
            return Ok(());
        }
        // The key's order, committed or in flight: the core answers with it.
        if self.core.find_order(&user, &key).is_some() {
            return self.propose(
                Proposal::Order(empty_draft(user, key)),
                Waiting::Order(reply),
            );
        }
        match self.prepare(&user, &key).await {
            Ok(draft) => self.propose(Proposal::Order(draft), Waiting::Order(reply)),
            Err(failure) => {
                remote::answer(reply, CheckoutReply::Placed(Err(failure)));
                Ok(())
            }
        }
    }

    /// The cart priced and paid, as a draft for the core.
    async fn prepare(&self, user: &str, key: &str) -> Result<OrderDraft, CheckoutFailure> {
        let cart = CartClient::new()
            .get(user)
            .await
            .map_err(|err| CheckoutFailure::Unavailable(format!("cart: {err}")))?;
        let wanted: BTreeMap<u64, u32> = cart.items.clone();
        self.core.check_stock(&wanted)?;
        let catalog = CatalogClient::new();
        let mut items = Vec::with_capacity(wanted.len());
        for (product_id, quantity) in &wanted {
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
        let payment_id = self.charge(user, key, total_cents).await?;
        Ok(OrderDraft {
            user: user.to_string(),
            key: key.to_string(),
            items,
            total_cents,
            payment_id,
            created_ms: unix_ms_now(),
        })
    }

    async fn charge(
        &self,
        user: &str,
        key: &str,
        amount_cents: u64,
    ) -> Result<String, CheckoutFailure> {
        let Some(worker) = directory::members_on::<PaymentProtocol>(PAYMENT_GROUP, &self.node)
            .into_iter()
            .next()
        else {
            return Err(CheckoutFailure::PaymentFailed(
                "payment worker restarting".into(),
            ));
        };
        let latency = Duration::from_millis(self.payment.lock().latency_ms);
        let charge = Charge {
            user: user.to_string(),
            key: key.to_string(),
            amount_cents,
        };
        remote::call(&worker, charge, latency + PAYMENT_SLACK)
            .await
            .map_err(|err| CheckoutFailure::PaymentFailed(err.to_string()))
    }

    /// After an order committed: take what was bought out of the buyer's
    /// cart and publish the new stock, in the background (both repeatable;
    /// the cart changes carry ids derived from the key, so each applies once).
    pub(super) fn after_commit(&self, order: &Order) {
        let stock: Vec<(u64, u32)> = order
            .items
            .iter()
            .map(|item| (item.product_id, self.core.book().available(item.product_id)))
            .collect();
        self.publisher.publish(stock);
        let order = order.clone();
        tokio::spawn(async move { settle_cart(&order).await });
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
