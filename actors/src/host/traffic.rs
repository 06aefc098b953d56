//! Messages handled per service on this node: one counter per service,
//! bumped by the service's actors for every request they serve, read by
//! the host's reporter for `/api/cluster` and by the gateway for
//! `/metrics`.
//!
//! Invariants:
//! - counting is one relaxed `fetch_add`: no lock, no allocation, and no
//!   ordering with anything else, so it costs next to nothing per message;
//! - a service counts the requests it is sent (calls and casts, from this
//!   node or others, decoded), never its own timer ticks nor the status
//!   requests that monitoring polls (`/api/cluster`, `/readyz`), so an
//!   idle service reads zero messages per second under a dashboard;
//! - a read answered from a service's snapshot on this node (the
//!   gateway's product views and searches, see `catalog::snapshot`) is
//!   counted for that service like a message, one per read, so that a
//!   service's rate still shows the reads it serves without an actor;
//! - counters are process-wide (one node per process) and only grow; a
//!   restarted node starts again from zero, which readers computing rates
//!   treat as a counter reset.

use std::sync::atomic::{AtomicU64, Ordering};

use super::manifest::{AUTH, CART, CATALOG, CHECKOUT, SEARCH};

/// Messages one service handled on this node since the process started.
#[derive(Debug)]
pub struct Handled {
    /// The service, as the manifest names it.
    service: &'static str,
    count: AtomicU64,
}

impl Handled {
    const fn new(service: &'static str) -> Self {
        Self {
            service,
            count: AtomicU64::new(0),
        }
    }

    /// Counts one handled message.
    #[inline]
    pub fn count(&self) {
        self.count.fetch_add(1, Ordering::Relaxed);
    }

    /// The service counted.
    pub fn service(&self) -> &'static str {
        self.service
    }

    /// Messages counted so far.
    pub fn total(&self) -> u64 {
        self.count.load(Ordering::Relaxed)
    }
}

/// The catalog's counter.
pub static CATALOG_HANDLED: Handled = Handled::new(CATALOG);
/// The search service's counter.
pub static SEARCH_HANDLED: Handled = Handled::new(SEARCH);
/// The auth service's counter.
pub static AUTH_HANDLED: Handled = Handled::new(AUTH);
/// The cart service's counter (owners and backups).
pub static CART_HANDLED: Handled = Handled::new(CART);
/// The checkout service's counter (replicas and payment workers).
pub static CHECKOUT_HANDLED: Handled = Handled::new(CHECKOUT);

/// Every counter, in manifest order.
static ALL: [&Handled; 5] = [
    &CATALOG_HANDLED,
    &SEARCH_HANDLED,
    &AUTH_HANDLED,
    &CART_HANDLED,
    &CHECKOUT_HANDLED,
];

/// Every service's counter, in manifest order.
pub fn all() -> &'static [&'static Handled] {
    &ALL
}

/// The counter of `service`, if it is a service of the manifest.
pub fn of_service(service: &str) -> Option<&'static Handled> {
    ALL.iter()
        .copied()
        .find(|handled| handled.service == service)
}

/// The counter of the service a pg group belongs to: `bazaar.cart` and
/// `bazaar.cart.backup` are both the cart's.
pub fn of_group(group: &str) -> Option<&'static Handled> {
    let service = group.strip_prefix("bazaar.")?.split('.').next()?;
    of_service(service)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::cart::protocol::{CART_BACKUP_GROUP, CART_GROUP};
    use crate::catalog::protocol::CATALOG_GROUP;
    use crate::checkout::protocol::PAYMENT_GROUP;

    #[test]
    fn groups_map_to_their_service() {
        assert_eq!(of_group(CATALOG_GROUP).unwrap().service(), CATALOG);
        assert_eq!(of_group(CART_GROUP).unwrap().service(), CART);
        assert_eq!(of_group(CART_BACKUP_GROUP).unwrap().service(), CART);
        assert_eq!(of_group(PAYMENT_GROUP).unwrap().service(), CHECKOUT);
        assert!(of_group("bazaar.node").is_none());
        assert!(of_group("catalog").is_none());
    }

    #[test]
    fn counting_adds_one_per_message() {
        let before = SEARCH_HANDLED.total();
        for _ in 0..3 {
            of_service(SEARCH).unwrap().count();
        }
        assert!(SEARCH_HANDLED.total() >= before + 3);
    }
}
