//! What a checkout replica does as owner: promotion, replication and
//! commit, placing orders and setting stock.
//!
//! The owner runs each order to the end inside one message (cart, prices,
//! stock, payment, append, replication to a majority), so orders are
//! serialized: inventory has a single writer and cannot be oversold.
//! Confirmed orders are counted in `bazaar_orders_confirmed_total`.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use bazaar_cluster::directory;
use bazaar_cluster::member::MembershipView;
use bazaar_cluster::membership::table::unix_ms_now;
use bazaar_cluster::remote;
use ractor::ActorProcessingErr;

use super::log::{majority_commit, most_up_to_date, Append, AppendReply, PromiseReply};
use super::model::{validate_key, Order, OrderError, OrderItem, Record};
use super::payment::{Charge, PaymentProtocol};
use super::protocol::{
    CheckoutFailure, CheckoutProtocol, CheckoutReply, CheckoutRequest, CHECKOUT_GROUP,
    PAYMENT_GROUP,
};
use super::replica::{CheckoutReplica, Role};
use crate::cart::model::{CartChange, RequestId};
use crate::cart::CartClient;
use crate::catalog::CatalogClient;

/// Timeout of a promise or append to one peer.
const PEER_TIMEOUT: Duration = Duration::from_millis(400);
/// Timeout of fetching a peer's log when promoting.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// Replication rounds an order gets to reach a majority.
const COMMIT_ROUNDS: usize = 3;
/// Longest an acknowledgement waits for the cart to be settled.
const SETTLE_TIMEOUT: Duration = Duration::from_secs(1);
/// Longest wait for an admin's stock change to reach the catalog.
const PUBLISH_TIMEOUT: Duration = Duration::from_secs(2);
/// Extra time a charge may take beyond the provider's configured latency.
const PAYMENT_SLACK: Duration = Duration::from_secs(2);

type Placed = Result<(Order, bool), CheckoutFailure>;

impl CheckoutReplica {
    /// Reachable peers (not this node) and their checkout replicas.
    fn peers(
        &self,
        view: &MembershipView,
    ) -> Vec<(
        String,
        ractor::ActorRef<bazaar_cluster::remote::ServiceMsg<CheckoutProtocol>>,
    )> {
        view.members
            .values()
            .filter(|member| member.info.name != self.node && member.state.is_reachable())
            .filter_map(|member| {
                directory::members_on::<CheckoutProtocol>(CHECKOUT_GROUP, &member.info.name)
                    .into_iter()
                    .next()
                    .map(|replica| (member.info.name.clone(), replica))
            })
            .collect()
    }

    /// Tries to become owner with a new epoch.
    pub(super) async fn promote(
        &mut self,
        view: &MembershipView,
    ) -> Result<(), ActorProcessingErr> {
        let epoch = self.log.promised() + 1;
        let (own, persist) = self.log.promise(epoch);
        self.persist(persist)?;
        let PromiseReply::Promised {
            last_index,
            last_epoch,
        } = own
        else {
            return Ok(());
        };
        tracing::info!(node = %self.node, epoch, "asking for checkout ownership");
        let mut promises = vec![(self.node.clone(), last_index, last_epoch)];
        let mut asks = tokio::task::JoinSet::new();
        for (name, replica) in self.peers(view) {
            asks.spawn(async move {
                let reply =
                    remote::call(&replica, CheckoutRequest::Prepare { epoch }, PEER_TIMEOUT).await;
                (name, replica, reply)
            });
        }
        let mut replicas = HashMap::new();
        let mut higher = 0;
        while let Some(Ok((name, replica, reply))) = asks.join_next().await {
            match reply {
                Ok(CheckoutReply::Promise(PromiseReply::Promised {
                    last_index,
                    last_epoch,
                })) => {
                    promises.push((name.clone(), last_index, last_epoch));
                    replicas.insert(name, replica);
                }
                Ok(CheckoutReply::Promise(PromiseReply::Refused { promised })) => {
                    higher = higher.max(promised);
                }
                _ => {}
            }
        }
        let majority = view.expected / 2 + 1;
        if promises.len() < majority {
            tracing::warn!(node = %self.node, epoch, promises = promises.len(), majority, "checkout promotion failed");
            if higher > epoch {
                let (_, persist) = self.log.promise(higher);
                self.persist(persist)?;
            }
            self.ownerless_since = Instant::now();
            self.owner_lost = false;
            return Ok(());
        }
        let best = most_up_to_date(promises.iter().map(|(n, i, e)| (n.as_str(), *i, *e)))
            .map(str::to_string)
            .unwrap_or_else(|| self.node.clone());
        if best != self.node {
            let Some(replica) = replicas.get(&best) else {
                return Ok(());
            };
            match remote::call(replica, CheckoutRequest::Fetch { from: 1 }, FETCH_TIMEOUT).await {
                Ok(CheckoutReply::Entries(entries)) => {
                    let persist = self.log.adopt(entries);
                    self.persist(persist)?;
                }
                other => {
                    tracing::warn!(node = %self.node, from = %best, reply = ?other.err(), "cannot fetch the most up-to-date checkout log");
                    return Ok(());
                }
            }
        }
        let (_, persist) = self.log.push(
            epoch,
            Record::Promoted {
                owner: self.node.clone(),
            },
        );
        self.persist(persist)?;
        self.role = Role::Owner {
            epoch,
            active: false,
            stored: HashMap::new(),
            next: HashMap::new(),
        };
        self.owner = Some((self.node.clone(), epoch));
        let committed = self.replicate().await?;
        tracing::info!(node = %self.node, epoch, adopted_from = %best, active = committed, "checkout owner promoted");
        Ok(())
    }

    /// One replication round to every reachable follower; raises the commit
    /// index. Returns true when everything in the log is committed.
    pub(super) async fn replicate(&mut self) -> Result<bool, ActorProcessingErr> {
        let view = self.view.borrow().clone();
        let Role::Owner {
            epoch, ref next, ..
        } = self.role
        else {
            return Ok(false);
        };
        let last = self.log.last().0;
        let mut sends = tokio::task::JoinSet::new();
        for (name, replica) in self.peers(&view) {
            // A follower not heard from yet gets the last entry (the new
            // owner's marker at first), so one round commits it when the
            // logs agree.
            let from = next.get(&name).copied().unwrap_or(last).clamp(1, last + 1);
            let prev_index = from - 1;
            let prev_epoch = match prev_index {
                0 => 0,
                index => self.log.entries()[index as usize - 1].epoch,
            };
            let append = Append {
                epoch,
                owner: self.node.clone(),
                prev_index,
                prev_epoch,
                entries: self.log.entries_from(from).to_vec(),
                commit: self.log.commit(),
            };
            sends.spawn(async move {
                let reply =
                    remote::call(&replica, CheckoutRequest::Append(append), PEER_TIMEOUT).await;
                (name, from, reply)
            });
        }
        let mut newer = None;
        let mut replies = Vec::new();
        while let Some(Ok(sent)) = sends.join_next().await {
            replies.push(sent);
        }
        let Role::Owner {
            ref mut stored,
            ref mut next,
            ref mut active,
            ..
        } = self.role
        else {
            return Ok(false);
        };
        for (name, from, reply) in replies {
            match reply {
                Ok(CheckoutReply::Appended(AppendReply::Stored { last_index })) => {
                    stored.insert(name.clone(), last_index);
                    next.insert(name, last_index + 1);
                }
                Ok(CheckoutReply::Appended(AppendReply::Mismatch { last_index })) => {
                    next.insert(name, (from.saturating_sub(1)).min(last_index + 1).max(1));
                }
                Ok(CheckoutReply::Appended(AppendReply::Stale { promised })) => {
                    newer = Some(promised)
                }
                _ => {}
            }
        }
        let mut indexes: Vec<u64> = stored
            .iter()
            .filter(|(name, _)| {
                view.members
                    .get(*name)
                    .is_some_and(|m| m.state.is_reachable())
            })
            .map(|(_, index)| *index)
            .collect();
        indexes.push(last);
        let commit = majority_commit(&self.log, epoch, &indexes, view.expected);
        self.log.commit_to(commit);
        if commit >= last && !*active {
            *active = true;
            self.owner_since_ms = unix_ms_now();
            tracing::info!(node = %self.node, epoch, "checkout owner active");
            if let Some(started) = self.failover_started.take() {
                metrics::counter!("bazaar_checkout_failovers_total").increment(1);
                metrics::histogram!("bazaar_checkout_failover_duration_seconds")
                    .record(started.elapsed().as_secs_f64());
            }
        }
        self.apply_committed();
        if let Some(promised) = newer {
            self.deposed(promised);
            return Ok(false);
        }
        Ok(self.log.commit() >= last)
    }

    /// Replicates until `index` is committed, a few rounds at most.
    async fn commit_through(&mut self, index: u64) -> Result<bool, ActorProcessingErr> {
        for _ in 0..COMMIT_ROUNDS {
            self.replicate().await?;
            if self.log.commit() >= index {
                return Ok(true);
            }
            if !matches!(self.role, Role::Owner { .. }) {
                return Ok(false);
            }
        }
        Ok(false)
    }

    fn active_owner(&self) -> Result<u64, CheckoutFailure> {
        match (&self.role, self.view.borrow().has_quorum()) {
            (
                Role::Owner {
                    epoch,
                    active: true,
                    ..
                },
                true,
            ) => Ok(*epoch),
            _ => Err(CheckoutFailure::NotOwner {
                owner: self
                    .owner
                    .as_ref()
                    .map(|(owner, _)| owner.clone())
                    .filter(|owner| owner != &self.node),
            }),
        }
    }

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
        // The key's order, committed or still in the log from an earlier
        // attempt: never a second one.
        let existing = self
            .log
            .entries()
            .iter()
            .find_map(|entry| match &entry.record {
                Record::Order(order) if order.user == user && order.idempotency_key == key => {
                    Some((entry.index, order.clone()))
                }
                _ => None,
            });
        if let Some((index, order)) = existing {
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
    ) -> Result<Result<(), CheckoutFailure>, ActorProcessingErr> {
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
        self.publisher
            .publish_and_wait(vec![(product_id, stock)], PUBLISH_TIMEOUT)
            .await;
        Ok(Ok(()))
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
