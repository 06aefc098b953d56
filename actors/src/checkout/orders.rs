//! What the owner does with orders: placing them (cart, prices, stock,
//! payment, append, replication to a majority), setting stock, and the
//! follow-up of every committed order.
//!
//! The owner runs each order to the end inside one message, so orders are
//! serialized: inventory has a single writer and cannot be oversold.
//! Confirmed orders are counted in `bazaar_orders_confirmed_total`.

use std::collections::BTreeMap;
use std::time::Duration;

use bazaar_cluster::directory;
use bazaar_cluster::membership::table::unix_ms_now;
use bazaar_cluster::remote;
use ractor::ActorProcessingErr;

use super::model::{validate_key, Order, OrderError, OrderItem, Record};
use super::payment::{Charge, PaymentProtocol};
use super::protocol::{CheckoutFailure, PAYMENT_GROUP};
use super::replica::CheckoutReplica;
use crate::cart::model::{CartChange, RequestId};
use crate::cart::CartClient;
use crate::catalog::model::Product;
use crate::catalog::CatalogClient;

/// Longest an acknowledgement waits for the cart to be settled.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for an admin's stock change to reach the catalog.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
/// Extra time a charge may take beyond the provider's configured latency.
const PAYMENT_SLACK: Duration = Duration::from_secs(2);

type Placed = Result<(Order, bool), CheckoutFailure>;

impl CheckoutReplica {
    /// Places the order of `user` under `key`, or returns the one it already has.
    pub(super) async fn place_order(
        &mut self,
        user: &str,
        key: &str,
    ) -> Result<Placed, ActorProcessingErr> {
        let epoch = match self.active_owner() {
            Ok(epoch) => epoch,
            Err(failure) => return Ok(Err(failure)),
        };
        if let Err(err) = validate_key(key) {
            return Ok(Err(err.into()));
        }
        // The key's order, committed (in the book, which the owner keeps at
        // its commit index) or still in the log's uncommitted suffix from an
        // earlier attempt: never a second one.
        debug_assert_eq!(
            self.applied,
            self.log.commit(),
            "the owner's book is at its commit index"
        );
        if let Some(order) = self.book.find(user, key).cloned() {
            let _ = tokio::time::timeout(SETTLE_TIMEOUT, settle_cart(&order)).await;
            return Ok(Ok((order, false)));
        }
        let pending = self
            .log
            .entries_from(self.log.commit() + 1)
            .iter()
            .find_map(|entry| match &entry.record {
                Record::Order(order) if order.user == user && order.idempotency_key == key => {
                    Some((entry.index, order.clone()))
                }
                _ => None,
            });
        if let Some((index, order)) = pending {
            return Ok(if self.commit_through(index).await? {
                let _ = tokio::time::timeout(SETTLE_TIMEOUT, settle_cart(&order)).await;
                Ok((order, false))
            } else {
                Err(CheckoutFailure::Unavailable(
                    "order not yet confirmed by a majority".into(),
                ))
            });
        }
        let cart = match CartClient::new().get(user).await {
            Ok(cart) => cart,
            Err(err) => return Ok(Err(CheckoutFailure::Unavailable(format!("cart: {err}")))),
        };
        let wanted: BTreeMap<u64, u32> = cart.items.clone();
        if let Err(err) = self.check_stock(&wanted) {
            return Ok(Err(err.into()));
        }
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
                    return Ok(Err(CheckoutFailure::Unavailable(format!(
                        "product {product_id} vanished"
                    ))))
                }
                Err(err) => {
                    return Ok(Err(CheckoutFailure::Unavailable(format!("catalog: {err}"))))
                }
            }
        }
        let total_cents = items
            .iter()
            .map(|item| item.price_cents * u64::from(item.quantity))
            .sum();
        let payment_id = match self.charge(user, key, total_cents).await {
            Ok(payment_id) => payment_id,
            Err(failure) => return Ok(Err(failure)),
        };
        let index = self.log.last().0 + 1;
        let order = Order {
            order_id: format!("o{epoch}-{index}"),
            idempotency_key: key.to_string(),
            user: user.to_string(),
            items,
            total_cents,
            payment_id,
            epoch,
            created_ms: unix_ms_now(),
        };
        let (_, persist) = self.log.push(epoch, Record::Order(order.clone()));
        self.persist(persist)?;
        if !self.commit_through(index).await? {
            return Ok(Err(CheckoutFailure::Unavailable(
                "order not confirmed by a majority; retry with the same key".into(),
            )));
        }
        tracing::info!(node = %self.node, order = %order.order_id, user, total_cents, "order confirmed");
        metrics::counter!("bazaar_orders_confirmed_total").increment(1);
        // The buyer sees its cart without the bought items once it has the
        // acknowledgement (the same change from `after_commit` is a no-op).
        let _ = tokio::time::timeout(SETTLE_TIMEOUT, settle_cart(&order)).await;
        Ok(Ok((order, true)))
    }

    /// Stock check against committed orders and orders still in flight.
    fn check_stock(&self, wanted: &BTreeMap<u64, u32>) -> Result<(), OrderError> {
        let mut in_flight: BTreeMap<u64, u32> = wanted.clone();
        for entry in self.log.entries_from(self.log.commit() + 1) {
            if let Record::Order(order) = &entry.record {
                for item in &order.items {
                    *in_flight.entry(item.product_id).or_default() += item.quantity;
                }
            }
        }
        self.book.check_stock(wanted)?;
        self.book.check_stock(&in_flight)
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
            .map(|item| (item.product_id, self.book.available(item.product_id)))
            .collect();
        self.publisher.publish(stock);
        let order = order.clone();
        tokio::spawn(async move { settle_cart(&order).await });
    }

    /// Sets a product's stock (owner only).
    pub(super) async fn set_stock(
        &mut self,
        product_id: u64,
        stock: u32,
    ) -> Result<Result<Option<Product>, CheckoutFailure>, ActorProcessingErr> {
        let epoch = match self.active_owner() {
            Ok(epoch) => epoch,
            Err(failure) => return Ok(Err(failure)),
        };
        let (entry, persist) = self.log.push(epoch, Record::SetStock { product_id, stock });
        self.persist(persist)?;
        if !self.commit_through(entry.index).await? {
            return Ok(Err(CheckoutFailure::Unavailable(
                "stock change not confirmed by a majority".into(),
            )));
        }
        let published = self
            .publisher
            .publish_and_wait(vec![(product_id, stock)], PUBLISH_TIMEOUT)
            .await;
        Ok(Ok(published
            .into_iter()
            .find(|product| product.id == product_id)))
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
