//! Checkout: orders, inventory and payments, owned by one node at a time.
//!
//! ```text
//! checkout (rest_for_one)
//! ├── checkout-journal     CheckoutReplicaActor: replicated log, orders, inventory
//! └── payments (one_for_one, 100 restarts / 10 s)
//!     └── payment-worker   simulated provider, fails on demand
//! ```
//!
//! A replica runs on every node; one of them is the owner (see [`log`] for
//! the replication protocol and its guarantees, [`replica`] for who becomes
//! owner). The owner confirms an order only once a majority of the
//! expected cluster stores it durably, so an acknowledged order survives
//! the loss of any minority, the owner included; a fencing epoch makes an
//! owner cut off from the majority unable to confirm anything. Checkout is
//! idempotent by (user, `Idempotency-Key`).

pub mod admission;
pub mod client;
pub mod journal;
pub mod log;
pub mod model;
pub mod node;
mod orders;
pub mod payment;
pub mod protocol;
mod publish;
pub mod replica;
pub mod supervisor;

#[cfg(test)]
mod sim;

pub use client::CheckoutClient;
pub use protocol::{CHECKOUT_GROUP, PAYMENT_GROUP};
