//! The carts one node holds, shared by every actor of its cart tree and
//! created by the supervisor spec, so actor restarts lose nothing.
//!
//! Carts are kept per shard. Next to each shard's carts sits the shard's
//! *owner lock*: the owner path (requests and handover) holds it from the
//! first look at the shard to the backup's answer, so changes to one shard
//! are applied and replicated one at a time, in version order. The lock
//! guards the shard's [`SyncMark`]: the holders, backup actors and
//! membership under which this node last caught the shard up and pushed it
//! to its backups; when any of them differs, the shard must be synced again
//! before it is served (see [`super::owner`]).
//!
//! Copies from the network are checked ([`Cart::validate`], right shard)
//! and dropped if broken. Nothing is ever deleted: a cleared cart is an
//! empty cart with a higher version, so a stale copy anywhere can only
//! lose a merge, never resurrect items.

use std::collections::BTreeMap;

use bazaar_cluster::placement::ShardAssignment;
use parking_lot::RwLock;
use ractor::ActorId;
use tokio::sync::{Mutex, MutexGuard};

use super::model::{
    backup_decision, Applied, BackupDecision, Cart, CartChange, CartError, RequestId,
};
use super::shard_of;

/// What an owner synced a shard under; see the module doc.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyncMark {
    /// Owner and backups of the shard in this node's view.
    pub holders: ShardAssignment,
    /// The backup actors the shard was pushed to (new ids after a restart).
    pub backup_actors: Vec<ActorId>,
    /// Every reachable member as `(name, incarnation, since_ms)`: any
    /// membership change, even one that leaves the holders as they were,
    /// means someone else may have owned the shard meanwhile.
    pub members: Vec<(String, u64, u64)>,
}

struct Shard {
    carts: RwLock<BTreeMap<String, Cart>>,
    owner: Mutex<Option<SyncMark>>,
}

/// The carts of every shard held on this node.
pub struct CartStore {
    shards: Vec<Shard>,
}

impl CartStore {
    /// An empty store of `shards` shards.
    pub fn new(shards: u32) -> Self {
        Self {
            shards: (0..shards)
                .map(|_| Shard {
                    carts: RwLock::new(BTreeMap::new()),
                    owner: Mutex::new(None),
                })
                .collect(),
        }
    }

    fn shard(&self, shard: u32) -> Option<&Shard> {
        self.shards.get(shard as usize)
    }

    /// Takes the owner lock of `shard` (see the module doc); `None` for a
    /// shard number out of range.
    pub async fn owner_lock(&self, shard: u32) -> Option<MutexGuard<'_, Option<SyncMark>>> {
        Some(self.shard(shard)?.owner.lock().await)
    }

    /// The cart of `user` (empty if never changed here).
    pub fn cart(&self, user: &str) -> Cart {
        self.shard(shard_of(user))
            .and_then(|shard| shard.carts.read().get(user).cloned())
            .unwrap_or_else(|| Cart::new(user))
    }

    /// Every cart of `shard` held here.
    pub fn shard_carts(&self, shard: u32) -> Vec<Cart> {
        self.shard(shard)
            .map(|shard| shard.carts.read().values().cloned().collect())
            .unwrap_or_default()
    }

    /// Applies a change to `user`'s cart (once per request id); returns what
    /// happened and the cart after it.
    pub fn apply(
        &self,
        user: &str,
        change: &CartChange,
        request_id: RequestId,
    ) -> Result<(Applied, Cart), CartError> {
        let shard = self
            .shard(shard_of(user))
            .ok_or_else(|| CartError::Invalid("no shard for this user".to_string()))?;
        let mut carts = shard.carts.write();
        let mut cart = carts.get(user).cloned().unwrap_or_else(|| Cart::new(user));
        let applied = cart.apply(change, request_id)?;
        carts.insert(user.to_string(), cart.clone());
        Ok((applied, cart))
    }

    /// Merges copies of `shard`'s carts by precedence; returns how many
    /// changed here.
    pub fn merge(&self, shard: u32, copies: Vec<Cart>) -> usize {
        let Some(held) = self.shard(shard) else {
            return 0;
        };
        let mut carts = held.carts.write();
        let mut changed = 0;
        for copy in valid(shard, copies) {
            match carts.get_mut(&copy.user) {
                Some(cart) => changed += usize::from(cart.merge(copy)),
                None => {
                    carts.insert(copy.user.clone(), copy);
                    changed += 1;
                }
            }
        }
        changed
    }

    /// The backup side of replication: keeps every copy newer than the one
    /// held, and returns the held copies that conflict with the owner's.
    pub fn keep_backup(&self, shard: u32, copies: Vec<Cart>) -> Vec<Cart> {
        let Some(held) = self.shard(shard) else {
            return Vec::new();
        };
        let mut carts = held.carts.write();
        let mut conflicts = Vec::new();
        for copy in valid(shard, copies) {
            match backup_decision(carts.get(&copy.user), &copy) {
                BackupDecision::Apply => {
                    carts.insert(copy.user.clone(), copy);
                }
                BackupDecision::AlreadyHeld => {}
                BackupDecision::Conflict => conflicts.extend(carts.get(&copy.user).cloned()),
            }
        }
        conflicts
    }

    /// Replaces this node's copies by a backup's conflicting ones: the
    /// backup saw changes this owner did not, which must not be lost.
    pub fn adopt(&self, shard: u32, copies: Vec<Cart>) {
        let Some(held) = self.shard(shard) else {
            return;
        };
        let mut carts = held.carts.write();
        for copy in valid(shard, copies) {
            carts.insert(copy.user.clone(), copy);
        }
    }

    /// Number of carts held, over all shards.
    pub fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|shard| shard.carts.read().len())
            .sum()
    }

    /// True when no cart is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The copies that belong to `shard` and keep the cart invariants.
fn valid(shard: u32, copies: Vec<Cart>) -> impl Iterator<Item = Cart> {
    copies.into_iter().filter(move |copy| {
        let ok = shard_of(&copy.user) == shard && copy.validate().is_ok();
        if !ok {
            tracing::warn!(shard, user = %copy.user, "dropping an invalid cart copy");
        }
        ok
    })
}
