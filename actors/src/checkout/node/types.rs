//! What goes in and out of the ownership core: the messages replicas send
//! each other, the events the shell feeds in, and the actions it performs.

use serde::{Deserialize, Serialize};

use super::super::log::{Append, AppendReply, Entry, Persist, PromiseReply};
use super::super::model::{Order, OrderItem, Record};
use super::super::protocol::{CheckoutFailure, VoterChange};

/// A message between two checkout replicas. Every one is a one-way cast:
/// an answer is a message of its own, so a lost or late one only delays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Message {
    /// A candidate asks for a promise of `epoch`.
    Prepare {
        /// The epoch it wants.
        epoch: u64,
        /// The owner the candidate saw go down: a follower that still
        /// follows that owner promises anyway (failover without waiting).
        owner_down: Option<String>,
    },
    /// The answer to `Prepare`.
    Promise {
        /// The epoch asked for.
        epoch: u64,
        /// Promised (with the last entry) or refused.
        reply: PromiseReply,
    },
    /// A candidate that won fetches the most up-to-date promiser's entries.
    Fetch {
        /// The candidate's epoch: answered only while still promised.
        epoch: u64,
        /// First index wanted (the candidate's commit index + 1).
        from: u64,
    },
    /// The answer to `Fetch`.
    Entries {
        /// The epoch asked for.
        epoch: u64,
        /// `from` of the fetch.
        from: u64,
        /// Epoch of the entry before `from`, to check the prefix matches.
        prev_epoch: u64,
        /// The entries from `from` on; `None` if a higher epoch was promised.
        entries: Option<Vec<Entry<Record>>>,
    },
    /// The owner replicates (also its heartbeat).
    Append(Append<Record>),
    /// The answer to `Append`.
    Appended {
        /// The epoch of the append.
        epoch: u64,
        /// Stored, mismatch or stale.
        reply: AppendReply,
    },
}

/// What a client asks the owner to append.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Proposal {
    /// A prepared, paid order (the owner gives it its id and epoch).
    Order(OrderDraft),
    /// An admin's stock level.
    SetStock {
        /// Product id.
        product_id: u64,
        /// New stock.
        stock: u32,
    },
    /// One voter more or less.
    Voters(VoterChange),
}

/// An order as prepared outside the core: priced and paid, without an id.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderDraft {
    /// The buyer.
    pub user: String,
    /// The client's idempotency key.
    pub key: String,
    /// What is bought, at what price.
    pub items: Vec<OrderItem>,
    /// Sum of quantity times unit price.
    pub total_cents: u64,
    /// The payment provider's reference.
    pub payment_id: String,
    /// When it was prepared, ms since the Unix epoch.
    pub created_ms: u64,
}

/// An event for the core.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    /// A message from another replica.
    Receive {
        /// The sender's node.
        from: String,
        /// The message.
        message: Message,
    },
    /// Clients' requests for the owner, each answered by a `Reply` with
    /// its id (the shell's id for the waiting client). The owner appends
    /// them as one batch: one journal write and one message per replica.
    Propose(Vec<(u64, Proposal)>),
    /// The members this node reaches, itself included, in placement
    /// preference order (the first voter is the one to take over).
    Membership {
        /// Reachable members, preferred first.
        reachable: Vec<String>,
    },
}

/// What a committed proposal gave.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The order, and whether this proposal created it (false: the key's
    /// existing order).
    Order {
        /// The order.
        order: Order,
        /// Created by this proposal.
        created: bool,
    },
    /// The stock level is committed.
    Stock,
    /// The voter set once the change committed.
    Voters(Vec<String>),
}

/// What the shell must do, in order: everything persisted before any
/// later `Send`, so nothing is promised or acknowledged that a crash forgets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    /// Make this durable (fsync) before performing the actions after it.
    Persist(Persist<Record>),
    /// Send a message to another replica (best effort).
    Send {
        /// The receiver's node.
        to: String,
        /// The message.
        message: Message,
    },
    /// Answer the client waiting under `id`.
    Reply {
        /// The id given with `Propose`.
        id: u64,
        /// The outcome, or why not (`Unavailable`: outcome unknown).
        outcome: Result<Outcome, CheckoutFailure>,
    },
    /// These entries were committed and applied to the book, in order.
    Committed(Vec<Entry<Record>>),
    /// The node's role changed.
    RoleChanged(RoleChange),
}

/// A change of role, for logs, metrics and the shell's follow-ups.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RoleChange {
    /// Asking for promises of `epoch`.
    Candidate {
        /// The epoch asked for.
        epoch: u64,
    },
    /// Owner of `epoch`, its marker appended but not yet committed.
    Owner {
        /// The epoch owned.
        epoch: u64,
    },
    /// Owner of `epoch` with its marker committed: takes orders.
    Active {
        /// The epoch owned.
        epoch: u64,
    },
    /// Following `owner` in `epoch`.
    Following {
        /// The owner.
        owner: String,
        /// Its epoch.
        epoch: u64,
    },
    /// Neither owner nor following anyone; `why` for the log.
    Ownerless {
        /// Why.
        why: &'static str,
        /// The owner followed until now was seen going down: a failover
        /// starts (the shell measures it until the next `Active`).
        failover: bool,
    },
}
