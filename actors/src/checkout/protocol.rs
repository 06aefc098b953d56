//! The checkout service's contract: what clients ask, and what replicas
//! tell each other to keep the log replicated.

use bazaar_cluster::remote::Protocol;
use serde::{Deserialize, Serialize};

use super::model::{Order, OrderError};
use super::node::{Message, OrderDraft};
use crate::catalog::model::Product;

/// Checkout replicas, one per node.
pub const CHECKOUT_GROUP: &str = "bazaar.checkout";
/// Payment workers, one per node.
pub const PAYMENT_GROUP: &str = "bazaar.checkout.payment";

/// The checkout replicas' protocol.
pub struct CheckoutProtocol;

impl Protocol for CheckoutProtocol {
    const NAME: &'static str = "bazaar.checkout.v1";
    type Request = CheckoutRequest;
    type Reply = CheckoutReply;
}

/// Requests to a checkout replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CheckoutRequest {
    /// Buy the user's cart (owner only; idempotent by key).
    PlaceOrder {
        /// The buyer.
        user: String,
        /// The client's idempotency key.
        key: String,
        /// Time the client still waits for the answer, in ms: the owner
        /// refuses an order it cannot confirm within it, and drops one
        /// whose client has gone before it is charged or proposed.
        budget_ms: u64,
    },
    /// Committed orders, of one user or all.
    Orders {
        /// `None` for every order.
        user: Option<String>,
    },
    /// Set a product's stock (owner only).
    SetStock {
        /// Product id.
        product_id: u64,
        /// New stock.
        stock: u32,
    },
    /// Tune the simulated payment provider of this node.
    SetPayment(PaymentSettings),
    /// The replica's view of ownership.
    Status,
    /// Add or remove one voter (owner only): committed through the log,
    /// refused while the previous change is uncommitted.
    ChangeVoters(VoterChange),
    /// A message of the ownership protocol from another replica (a cast).
    Peer {
        /// The sender's node.
        from: String,
        /// The message.
        message: Message,
    },
    /// The replica's own: an order it is preparing was priced (cart and
    /// catalog read); next come the stock check and the payment.
    Priced {
        /// The waiting client's proposal id.
        id: u64,
        /// The draft without a payment, or why it cannot be placed.
        draft: Result<OrderDraft, CheckoutFailure>,
    },
    /// The replica's own: an order it is preparing was paid; next it is proposed.
    Paid {
        /// The waiting client's proposal id.
        id: u64,
        /// The paid draft, or why not.
        draft: Result<OrderDraft, CheckoutFailure>,
    },
    /// Time to check ownership and replicate (the replica's own timer).
    Tick,
    /// The replica's own: hand the proposals gathered since the last flush
    /// to the core as one batch (group commit).
    Flush,
}

/// One change of checkout's voter set: a single server at a time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum VoterChange {
    /// Make this node a voter.
    Add(String),
    /// Make this voter a learner.
    Remove(String),
}

/// The simulated payment provider's behaviour.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct PaymentSettings {
    /// Probability in [0, 1] that a charge fails (the worker panics).
    pub failure_rate: f64,
    /// Time a charge takes, in ms.
    pub latency_ms: u64,
}

impl Default for PaymentSettings {
    fn default() -> Self {
        Self {
            failure_rate: 0.0,
            latency_ms: 5,
        }
    }
}

/// Why checkout refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum CheckoutFailure {
    /// This replica is not the owner; the owner it knows, if any.
    #[error("not the checkout owner")]
    NotOwner {
        /// The owner, if known.
        owner: Option<String>,
    },
    /// The order cannot be placed.
    #[error(transparent)]
    Rejected(#[from] OrderError),
    /// The payment failed; retry with the same key.
    #[error("payment failed: {0}")]
    PaymentFailed(String),
    /// Not replicated to a majority (outcome unknown); retry with the same key.
    #[error("checkout unavailable: {0}")]
    Unavailable(String),
    /// Known outcome: no order was placed (the owner is at capacity, or
    /// the client's deadline passed before the order was proposed); retry
    /// after `retry_after_ms`.
    #[error("no order was placed: {reason}; retry in {retry_after_ms} ms")]
    NotPlaced {
        /// Why.
        reason: String,
        /// When a retry may succeed.
        retry_after_ms: u64,
    },
    /// A voter change that cannot be made (the previous one is not
    /// committed yet, the node is already a voter, the last voter, ...).
    #[error("voter change refused: {0}")]
    VoterChangeRefused(String),
}

/// A replica's view of ownership.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CheckoutStatus {
    /// The replica's node.
    pub node: String,
    /// `owner`, `candidate`, `follower` (a voter) or `learner`.
    pub role: String,
    /// The owner it follows (itself when owner).
    pub owner: Option<String>,
    /// The node that takes over if the owner fails.
    pub standby: Option<String>,
    /// The highest epoch it promised.
    pub epoch: u64,
    /// Entries in its log.
    pub log_length: u64,
    /// Entries known committed.
    pub commit_index: u64,
    /// When this replica learned of its owner (or became it), ms since the
    /// Unix epoch.
    #[serde(default)]
    pub since_ms: u64,
    /// The voter set in this replica's log (its latest configuration,
    /// committed or not); every other checkout node is a learner.
    #[serde(default)]
    pub voters: Vec<String>,
}

/// Replies of a checkout replica.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CheckoutReply {
    /// The order, and whether this call created it (false: the key's order).
    Placed(Result<(Order, bool), CheckoutFailure>),
    /// Committed orders.
    Orders(Vec<Order>),
    /// Done, or why not.
    Done(Result<(), CheckoutFailure>),
    /// Answer to `SetStock`: the level is committed, and the catalog
    /// version that published it (`None` if the catalog did not take it
    /// in time; it is published again with the product's next change).
    StockSet(Result<Option<Product>, CheckoutFailure>),
    /// The replica's status.
    Status(CheckoutStatus),
    /// Answer to `ChangeVoters`: the voter set once the change committed.
    Voters(Result<Vec<String>, CheckoutFailure>),
}
