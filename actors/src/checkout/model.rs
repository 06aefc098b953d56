//! Orders and inventory: the records of the checkout log and the state
//! derived from its committed prefix. Pure.
//!
//! Invariants:
//! - an order is identified by (user, idempotency key): applying the same
//!   log twice, or a log holding one key once, never yields two orders;
//! - stock starts at the seeded catalog stock, is set by `SetStock`, and
//!   falls by the quantity of every order; it never goes below zero,
//!   because the owner checks it before appending an order.

use std::collections::{BTreeMap, HashMap};

use serde::{Deserialize, Serialize};

/// Longest idempotency key accepted, in bytes.
pub const MAX_KEY_BYTES: usize = 128;

/// A record of the checkout log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Record {
    /// A node became owner; commits the records it inherited.
    Promoted {
        /// The new owner.
        owner: String,
    },
    /// A confirmed, paid order.
    Order(Order),
    /// An admin set a product's stock.
    SetStock {
        /// Product id.
        product_id: u64,
        /// New stock.
        stock: u32,
    },
    /// The voter set from this entry on (in effect once appended, as in
    /// Raft's single-server membership change).
    Voters(Vec<String>),
}

/// One line of an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderItem {
    /// Product id.
    pub product_id: u64,
    /// Product name at the time of the order.
    pub name: String,
    /// Quantity.
    pub quantity: u32,
    /// Unit price at the time of the order.
    pub price_cents: u64,
}

/// A confirmed order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Unique id, `o{epoch}-{index}`.
    pub order_id: String,
    /// The client's idempotency key.
    pub idempotency_key: String,
    /// The buyer.
    pub user: String,
    /// What was bought.
    pub items: Vec<OrderItem>,
    /// Sum of quantity times unit price.
    pub total_cents: u64,
    /// The payment provider's reference.
    pub payment_id: String,
    /// Epoch of the owner that confirmed it.
    pub epoch: u64,
    /// When it was confirmed, ms since the Unix epoch.
    pub created_ms: u64,
}

/// Why an order cannot be placed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum OrderError {
    /// Nothing to buy.
    #[error("the cart is empty")]
    EmptyCart,
    /// Not enough stock for a product.
    #[error("not enough stock for product {product_id}: {available} available")]
    InsufficientStock {
        /// Product id.
        product_id: u64,
        /// What is left.
        available: u32,
    },
    /// The idempotency key is empty or too long.
    #[error("idempotency key must be 1 to 128 bytes")]
    BadKey,
}

/// Checks an idempotency key.
pub fn validate_key(key: &str) -> Result<(), OrderError> {
    if key.is_empty() || key.len() > MAX_KEY_BYTES {
        return Err(OrderError::BadKey);
    }
    Ok(())
}

/// Orders and stock, derived from committed records.
#[derive(Debug, Clone, Default)]
pub struct OrderBook {
    orders: Vec<Order>,
    by_key: HashMap<(String, String), usize>,
    stock: HashMap<u64, u32>,
    base_stock: HashMap<u64, u32>,
}

impl OrderBook {
    /// An empty book over the seeded stock of each product.
    pub fn new(base_stock: HashMap<u64, u32>) -> Self {
        Self {
            base_stock,
            ..Self::default()
        }
    }

    /// Applies one committed record.
    pub fn apply(&mut self, record: &Record) {
        match record {
            Record::Promoted { .. } | Record::Voters(_) => {}
            Record::SetStock { product_id, stock } => {
                self.stock.insert(*product_id, *stock);
            }
            Record::Order(order) => {
                let key = (order.user.clone(), order.idempotency_key.clone());
                if self.by_key.contains_key(&key) {
                    debug_assert!(false, "a key is in the log once");
                    return;
                }
                for item in &order.items {
                    let left = self
                        .available(item.product_id)
                        .saturating_sub(item.quantity);
                    self.stock.insert(item.product_id, left);
                }
                self.by_key.insert(key, self.orders.len());
                self.orders.push(order.clone());
            }
        }
    }

    /// The order placed by `user` under `key`, if any.
    pub fn find(&self, user: &str, key: &str) -> Option<&Order> {
        self.by_key
            .get(&(user.to_string(), key.to_string()))
            .map(|index| &self.orders[*index])
    }

    /// Stock left for a product.
    pub fn available(&self, product_id: u64) -> u32 {
        self.stock
            .get(&product_id)
            .or_else(|| self.base_stock.get(&product_id))
            .copied()
            .unwrap_or(0)
    }

    /// Checks that `wanted` (product id to quantity) can be sold.
    pub fn check_stock(&self, wanted: &BTreeMap<u64, u32>) -> Result<(), OrderError> {
        if wanted.is_empty() {
            return Err(OrderError::EmptyCart);
        }
        for (product_id, quantity) in wanted {
            let available = self.available(*product_id);
            if *quantity > available {
                return Err(OrderError::InsufficientStock {
                    product_id: *product_id,
                    available,
                });
            }
        }
        Ok(())
    }

    /// Every order, oldest first.
    pub fn orders(&self) -> &[Order] {
        &self.orders
    }

    /// Orders of `user`, oldest first.
    pub fn orders_of<'a>(&'a self, user: &'a str) -> impl Iterator<Item = &'a Order> + 'a {
        self.orders.iter().filter(move |order| order.user == user)
    }
}

#[cfg(test)]
mod tests;
