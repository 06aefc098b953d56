//! The cart's contract: what its actors answer, between nodes too, and
//! its pg groups.
//!
//! Two groups share one protocol. Shoppers' requests (`Get`, `Change`) go
//! to the workers of the shard's owner node ([`CART_GROUP`]); owners talk
//! to the backup actor of other nodes ([`CART_BACKUP_GROUP`]) with
//! `Replicate` and `ShardState`. A backup actor never calls another node,
//! so an owner waiting for a backup can never wait on itself.

use bazaar_cluster::remote::Protocol;
use serde::{Deserialize, Serialize};

use super::model::{Cart, CartChange, CartError, RequestId};

/// Cart workers: the owner path, on every node that runs the cart.
pub const CART_GROUP: &str = "bazaar.cart";
/// Cart backup actors: copies from owners, shard handover.
pub const CART_BACKUP_GROUP: &str = "bazaar.cart.backup";

/// The cart's protocol.
pub struct CartProtocol;

impl Protocol for CartProtocol {
    const NAME: &'static str = "bazaar.cart.v1";
    type Request = CartRequest;
    type Reply = CartReply;
}

/// Requests to the cart's actors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CartRequest {
    /// A user's cart, from its shard's owner (worker; idempotent).
    Get {
        /// The user.
        user: String,
    },
    /// Apply a change on the shard's owner; answered once the backup has
    /// it (worker; idempotent by `request_id`).
    Change {
        /// The user.
        user: String,
        /// What to change.
        change: CartChange,
        /// The same for every retry of this change.
        request_id: RequestId,
    },
    /// Keep these copies of the shard's carts if they are newer (backup;
    /// answers `Replicated`, or `Unavailable` when the backup does not see
    /// `owner` as the shard's owner).
    Replicate {
        /// The node sending the copies, as the shard's owner.
        owner: String,
        /// The shard of every cart sent.
        shard: u32,
        /// The owner's copies.
        carts: Vec<Cart>,
    },
    /// Every cart of a shard held here, for an owner catching up (backup;
    /// answers `ShardState`).
    ShardState {
        /// The shard.
        shard: u32,
    },
    /// Fail on purpose, to exercise supervision (worker).
    Crash,
}

/// Replies of the cart's actors.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CartReply {
    /// The cart after the request (empty, version 0, if never changed).
    Cart(Cart),
    /// The change breaks a cart rule.
    Rejected(CartError),
    /// This node does not own the user's shard; `owner` is who does in its
    /// view, if anyone.
    NotOwner {
        /// The owner as this node sees it.
        owner: Option<String>,
    },
    /// The backup kept every copy but `conflicts`: copies it holds that are
    /// as new or newer and differ (the owner must adopt them, not ack).
    Replicated {
        /// The backup's own copies where it refused the owner's.
        conflicts: Vec<Cart>,
    },
    /// The carts of a shard held here.
    ShardState(Vec<Cart>),
    /// Not served now (backup unreachable or refusing, handover running);
    /// the request may be retried with the same request id.
    Unavailable(String),
    /// Not served: this node's view does not reach a strict majority of the
    /// voters, so it serves no cart at all until it does. Another node on
    /// the same side of a partition would answer the same.
    NoMajority(String),
}
