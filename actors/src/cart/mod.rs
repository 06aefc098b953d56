//! The cart: every shopper's cart, sharded by user over the live nodes,
//! each shard with one backup on another node.
//!
//! ```text
//! cart (one_for_one)
//! ├── cart-backup        keeps owners' copies, hands shards over (never calls out)
//! ├── cart-sync          on membership change: syncs the shards owned here
//! ├── cart-worker-1      Get / Change for shards owned here (owner.rs)
//! └── cart-worker-N
//! ```
//!
//! A user's cart lives in shard [`shard_of`]`(user)` of [`CART_SHARDS`].
//! Every node computes the shard's owner and backup from its own
//! membership view with the cluster's placement function (rendezvous
//! hashing over the reachable members, [`placement`]), on every request,
//! so ownership follows membership without restarting anything. The
//! [`CartClient`] sends a request to the owner it sees; an owner that
//! disagrees answers `NotOwner` with its own idea, and the client follows.
//!
//! Guarantees (`owner.rs` says how):
//! - a change is acknowledged only after the shard's backup applied it
//!   (alone only when no other node is placed, a cluster of one); so an
//!   acknowledged change survives the loss of any one node: when the owner
//!   dies, the backup becomes the owner (the next in rendezvous order) and
//!   pushes the shard to its own new backup;
//! - a node serves a shard it just gained (or whose membership changed)
//!   only after pulling the shard from every other reachable node running
//!   the cart and merging by version: a restarted node never serves an
//!   empty or stale cart, and a promoted backup keeps what it had;
//! - a change is applied at most once per request id, wherever its retries
//!   land (the ids of the cart's last [`model::RECENT_REQUESTS`] changes
//!   travel with it), so "unavailable, retry" is safe;
//! - carts are served (changes, and reads, which must not be stale) only by
//!   a node whose view reaches a strict majority of the voters
//!   ([`ServiceContext::voters`](crate::context::ServiceContext), the fixed
//!   set checkout keeps in its log), and a backup keeps copies only while
//!   its own view reaches that majority too (`serving.rs` states the rule).
//!   Two disjoint sides of a partition can never both reach it, however
//!   many nodes run: at most one side acknowledges changes, the other
//!   refuses them all. A "majority of `--expect`" could not promise that:
//!   with more nodes than expected, both halves of a split had one;
//! - a node without that majority refuses at once (`NoMajority`, before
//!   any lock or call), and the [`CartClient`] does not retry a refusal
//!   from its own node, so the gateway answers 503 with `Retry-After` in
//!   well under 100 ms instead of after its retry deadline;
//! - a backup keeps copies only from the node that owns the shard in the
//!   backup's own view: of two nodes that both believe they own a shard
//!   (their views disagree), at most one gets changes acknowledged through
//!   a given backup. This also covers a bridge node that sees both sides
//!   of a partition when, as with three nodes, both sides must use it as
//!   their backup.
//!
//! Not guaranteed: while two nodes' views disagree (an asymmetric cut, a
//! bridge, or the milliseconds after a change), two nodes that each reach a
//! majority of the voters may both believe they own a shard. The backup
//! check stops them only when they replicate to the same backup; with
//! more nodes, two such owners with different backups may both acknowledge
//! a change, and after the views converge the merge keeps the copy that
//! wins by version (last writer wins): one of those changes is lost. A
//! clean partition (every node on one side or the other) cannot cause
//! this. A node frozen past failure detection and then resumed may
//! answer a read from its old copy in the moment before it notices that
//! its peers declared it down (its writes are refused by the backup).
//! A node that runs no cart (a view-only node) cannot ask its own workers
//! whether its side has a majority, so its client retries a refusal until
//! its deadline. Losing the owner and the backup of a shard at once loses
//! its carts: they are kept in memory only.

pub mod client;
pub mod model;
pub mod protocol;
pub mod store;
pub mod supervisor;

mod backup;
mod owner;
mod serving;
mod sync;
mod worker;

#[cfg(test)]
mod tests;

use bazaar_cluster::placement::{assign, candidates, Assignments, ShardAssignment};
use bazaar_cluster::MembershipView;

pub use client::{CartClient, CartClientError};
pub use protocol::{CART_BACKUP_GROUP, CART_GROUP};

use crate::host::manifest::{manifest, CART};

/// Number of cart shards.
pub const CART_SHARDS: u32 = 64;

/// The shard of `user`'s cart.
pub fn shard_of(user: &str) -> u32 {
    Assignments::shard_of(user, CART_SHARDS)
}

/// Placement of every service as `view` sees it: the reachable members,
/// exactly as the service host places services.
pub fn placement(view: &MembershipView) -> Assignments {
    assign(&manifest(), &candidates(view))
}

/// Owner and backups of every cart shard, as `view` sees them.
pub fn shard_map(view: &MembershipView) -> Vec<ShardAssignment> {
    placement(view).shard_map(CART)
}

/// The node that owns `user`'s cart in `view`, if any.
pub fn owner_of(view: &MembershipView, user: &str) -> Option<String> {
    let shard = shard_of(user);
    shard_map(view)
        .into_iter()
        .find(|holders| holders.shard == shard)
        .map(|holders| holders.owner)
}
