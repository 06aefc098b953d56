//! Cart domain model: one shopper's cart, the changes it accepts, and how
//! two copies of it are reconciled. Pure: no ractor, no tokio.
//!
//! A [`Cart`] maps product ids to quantities and carries a `version`, bumped
//! by every applied change, and the ids of the last [`RECENT_REQUESTS`]
//! changes applied to it. Those ids make a change idempotent: a client that
//! lost an answer retries with the same [`RequestId`], and a cart that
//! already applied it answers as if it applied it now, without applying it
//! twice, on whichever node holds the cart by then (the ids are replicated
//! with the cart).
//!
//! Invariants, checked by [`Cart::validate`] and kept by [`Cart::apply`]:
//! - the user name is 1 to [`MAX_USER_BYTES`] bytes;
//! - every quantity is in `1..=MAX_QUANTITY`; a product at zero is absent;
//! - at most [`MAX_ITEMS`] distinct products;
//! - at most [`RECENT_REQUESTS`] remembered request ids, oldest first;
//! - `version` counts applied changes: it only goes up, and two copies of a
//!   cart with the same version and the same lineage are equal.
//!
//! Copies are reconciled in two ways:
//! - [`Cart::merge`] (catch-up, handover): keep the copy that comes first in
//!   [`precedence`], a total order on `(version, items, recent)`, so nodes
//!   that saw the same copies in any order agree;
//! - [`backup_decision`] (a backup receiving the owner's copy): take it only
//!   if it is newer; an equal version with other content, or a newer version
//!   held here, is a conflict the owner must hear about, never silently
//!   overwritten.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::fmt;

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

#[cfg(test)]
mod tests;

/// Most units of one product in a cart, and most units one change adds.
pub const MAX_QUANTITY: u32 = 99;
/// Most distinct products in a cart.
pub const MAX_ITEMS: usize = 50;
/// Longest user name a cart accepts, in bytes (names are 3 to 32 chars).
pub const MAX_USER_BYTES: usize = 64;
/// Request ids a cart remembers: a retry older than that many later changes
/// to the same cart is applied again.
pub const RECENT_REQUESTS: usize = 32;

/// The identity of one requested change, the same for all its retries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RequestId(pub u128);

impl RequestId {
    /// A fresh random id: for a request whose retries all come from here.
    pub fn random() -> Self {
        Self(rand::random())
    }

    /// A stable id derived from a client's idempotency `key`, scoped to
    /// `scope` (the user) so two users' keys never collide.
    pub fn from_key(scope: &str, key: &str) -> Self {
        let digest = Sha256::new()
            .chain_update((scope.len() as u64).to_be_bytes())
            .chain_update(scope.as_bytes())
            .chain_update(key.as_bytes())
            .finalize();
        let mut bytes = [0u8; 16];
        bytes.copy_from_slice(&digest[..16]);
        Self(u128::from_be_bytes(bytes))
    }
}

impl fmt::Display for RequestId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:032x}", self.0)
    }
}

/// A change a shopper asks for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum CartChange {
    /// Add `quantity` units of a product.
    Add {
        /// The product.
        product_id: u64,
        /// Units to add, `1..=MAX_QUANTITY`.
        quantity: u32,
    },
    /// Take a product out of the cart (a no-op if it is not there).
    Remove {
        /// The product.
        product_id: u64,
    },
    /// Take `quantity` units of a product out, removing it at zero: what
    /// checkout does with what was bought. Unlike `Clear`, it commutes with
    /// adds made meanwhile, so a late one never drops newer items.
    Subtract {
        /// The product.
        product_id: u64,
        /// Units to take out.
        quantity: u32,
    },
    /// Empty the cart.
    Clear,
}

/// Why a change was refused. Retrying the same change does not help.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CartError {
    /// An add of zero units or more than [`MAX_QUANTITY`].
    #[error("quantity must be between 1 and {max}, got {quantity}")]
    InvalidQuantity {
        /// The quantity asked for.
        quantity: u32,
        /// The limit.
        max: u32,
    },
    /// The product would exceed [`MAX_QUANTITY`] units.
    #[error("at most {max} units of product {product_id} fit in a cart")]
    QuantityTooHigh {
        /// The product.
        product_id: u64,
        /// The limit.
        max: u32,
    },
    /// The cart already holds [`MAX_ITEMS`] distinct products.
    #[error("a cart holds at most {max} distinct products")]
    TooManyItems {
        /// The limit.
        max: usize,
    },
    /// The cart cannot take another version.
    #[error("the cart cannot take another change")]
    VersionOverflow,
    /// A copy from another node breaks the cart invariants.
    #[error("invalid cart: {0}")]
    Invalid(String),
}

impl CartError {
    /// Whether retrying the same request may succeed: never, these are all
    /// about the request or the cart itself.
    pub fn is_retryable(&self) -> bool {
        false
    }
}

/// What [`Cart::apply`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The change was applied: a new version.
    Changed,
    /// This request id was applied before; nothing changed.
    Duplicate,
}

/// One shopper's cart.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Cart {
    /// The owner of the cart (a username).
    pub user: String,
    /// Quantity by product id, each in `1..=MAX_QUANTITY`.
    pub items: BTreeMap<u64, u32>,
    /// Applied changes so far; 0 for a cart never changed.
    pub version: u64,
    /// Ids of the last applied changes, oldest first.
    pub recent: Vec<RequestId>,
}

impl Cart {
    /// The empty cart of `user`, version 0.
    pub fn new(user: impl Into<String>) -> Self {
        Self {
            user: user.into(),
            items: BTreeMap::new(),
            version: 0,
            recent: Vec::new(),
        }
    }

    /// True when the cart holds no product.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Units of every product together.
    pub fn total_quantity(&self) -> u64 {
        self.items
            .values()
            .map(|&quantity| u64::from(quantity))
            .sum()
    }

    /// Whether the change with this id was applied recently.
    pub fn has_applied(&self, request_id: RequestId) -> bool {
        self.recent.contains(&request_id)
    }

    /// Applies `change` once per `request_id`: validates it first, then
    /// changes the items, bumps the version and remembers the id. A request
    /// id seen recently changes nothing and answers [`Applied::Duplicate`].
    pub fn apply(
        &mut self,
        change: &CartChange,
        request_id: RequestId,
    ) -> Result<Applied, CartError> {
        if self.has_applied(request_id) {
            return Ok(Applied::Duplicate);
        }
        let version = self
            .version
            .checked_add(1)
            .ok_or(CartError::VersionOverflow)?;
        match *change {
            CartChange::Add {
                product_id,
                quantity,
            } => {
                if !(1..=MAX_QUANTITY).contains(&quantity) {
                    return Err(CartError::InvalidQuantity {
                        quantity,
                        max: MAX_QUANTITY,
                    });
                }
                let held = self.items.get(&product_id).copied();
                if held.is_none() && self.items.len() >= MAX_ITEMS {
                    return Err(CartError::TooManyItems { max: MAX_ITEMS });
                }
                let total = held.unwrap_or(0).saturating_add(quantity);
                if total > MAX_QUANTITY {
                    return Err(CartError::QuantityTooHigh {
                        product_id,
                        max: MAX_QUANTITY,
                    });
                }
                self.items.insert(product_id, total);
            }
            CartChange::Remove { product_id } => {
                self.items.remove(&product_id);
            }
            CartChange::Subtract {
                product_id,
                quantity,
            } => {
                let left = self
                    .items
                    .get(&product_id)
                    .copied()
                    .unwrap_or(0)
                    .saturating_sub(quantity);
                if left == 0 {
                    self.items.remove(&product_id);
                } else {
                    self.items.insert(product_id, left);
                }
            }
            CartChange::Clear => self.items.clear(),
        }
        self.version = version;
        self.recent.push(request_id);
        if self.recent.len() > RECENT_REQUESTS {
            let excess = self.recent.len() - RECENT_REQUESTS;
            self.recent.drain(..excess);
        }
        debug_assert!(self.validate().is_ok(), "apply broke a cart invariant");
        Ok(Applied::Changed)
    }

    /// Checks the invariants of the module doc (for copies from the network).
    pub fn validate(&self) -> Result<(), CartError> {
        if self.user.is_empty() || self.user.len() > MAX_USER_BYTES {
            return Err(CartError::Invalid("user name out of bounds".to_string()));
        }
        if self.items.len() > MAX_ITEMS {
            return Err(CartError::Invalid(format!("more than {MAX_ITEMS} items")));
        }
        if let Some((id, quantity)) = self
            .items
            .iter()
            .find(|(_, quantity)| !(1..=MAX_QUANTITY).contains(*quantity))
        {
            return Err(CartError::Invalid(format!(
                "product {id} has quantity {quantity}"
            )));
        }
        if self.recent.len() > RECENT_REQUESTS {
            return Err(CartError::Invalid(format!(
                "more than {RECENT_REQUESTS} request ids"
            )));
        }
        Ok(())
    }

    /// Merges another copy of this cart: keeps whichever comes first in
    /// [`precedence`]. Returns true if this copy changed. A copy of another
    /// user's cart is ignored.
    pub fn merge(&mut self, other: Cart) -> bool {
        if other.user != self.user || precedence(&other, self) != Ordering::Greater {
            return false;
        }
        *self = other;
        true
    }
}

/// The total order copies of one cart are merged by: version first, then
/// the content, so that any two nodes pick the same copy.
pub fn precedence(a: &Cart, b: &Cart) -> Ordering {
    (a.version, &a.items, &a.recent).cmp(&(b.version, &b.items, &b.recent))
}

/// What a backup does with the owner's copy of a cart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BackupDecision {
    /// Newer than the copy held (or none held): keep it.
    Apply,
    /// Exactly the copy held: nothing to do, and confirmed.
    AlreadyHeld,
    /// The copy held is as new or newer and differs: refuse, and tell the
    /// owner what is held.
    Conflict,
}

/// The backup rule: take `incoming` only if it is strictly newer than `held`.
pub fn backup_decision(held: Option<&Cart>, incoming: &Cart) -> BackupDecision {
    match held {
        None => BackupDecision::Apply,
        Some(held) if incoming.version > held.version => BackupDecision::Apply,
        Some(held) if held == incoming => BackupDecision::AlreadyHeld,
        Some(_) => BackupDecision::Conflict,
    }
}
