//! The owner path: how a node serves the shards it owns. Shared by the
//! workers (requests) and the sync actor (handover after a membership
//! change).
//!
//! For every request the node recomputes the shard's holders from its
//! current membership view, then, under the shard's owner lock:
//! 1. refuses unless its view reaches a majority of the voters and places
//!    the shard on it ([`serving::owner_check`]): `NoMajority` at once,
//!    before the lock, or `NotOwner` naming the owner it sees, so the
//!    client can follow;
//! 2. if the shard's [`SyncMark`] differs from now (holders, backup actors
//!    or membership changed), syncs it: pulls `ShardState` from every other
//!    reachable node running the cart and merges by version, then pushes
//!    the shard to its backups. Any failure leaves the shard unsynced and
//!    the request `Unavailable`: it is never served from a copy that may be
//!    stale;
//! 3. serves it: a read from the local copy; a change applied locally, then
//!    sent to every backup with [`REPLICATE_TIMEOUT`], and acknowledged only
//!    once each backup confirmed. If a backup does not confirm, the change
//!    stays applied here (the backup may have it too), the shard is marked
//!    unsynced and the answer is `Unavailable`: the client retries with the
//!    same request id, which the cart recognizes. If the backup holds a
//!    newer or conflicting copy, this node adopts it before answering
//!    `Unavailable`, so the retry builds on it.

use std::sync::Arc;
use std::time::Duration;

use bazaar_cluster::directory;
use bazaar_cluster::placement::{Assignments, ShardAssignment};
use bazaar_cluster::remote::{self, ServiceMsg};
use bazaar_cluster::{MembershipView, Voters};
use ractor::ActorRef;
use tokio::sync::watch;

use super::model::{Applied, Cart, CartChange, RequestId};
use super::protocol::{CartProtocol, CartReply, CartRequest, CART_BACKUP_GROUP};
use super::serving::{self, Refusal};
use super::store::{CartStore, SyncMark};
use super::{placement, shard_of};
use crate::host::manifest::CART;

/// Timeout of one `Replicate` call to a backup.
pub const REPLICATE_TIMEOUT: Duration = Duration::from_millis(600);
/// Timeout of one `ShardState` pull.
pub const PULL_TIMEOUT: Duration = Duration::from_millis(600);
/// Most carts sent in one `Replicate` message (frames are size-limited).
const PUSH_BATCH: usize = 1_000;

type CartActor = ActorRef<ServiceMsg<CartProtocol>>;

/// What a request asks of the owner.
enum Op {
    Get,
    Change(CartChange, RequestId),
}

/// The owner path of one node.
#[derive(Clone)]
pub struct Owner {
    /// This node's name.
    pub node: String,
    /// The carts held here.
    pub store: Arc<CartStore>,
    /// This node's membership view: placement is computed from it.
    pub view: watch::Receiver<MembershipView>,
    /// The voter set: shards are served only while the view reaches a
    /// strict majority of it.
    pub voters: Voters,
}

impl Owner {
    /// `user`'s cart, served by the owner of its shard.
    pub async fn get(&self, user: &str) -> CartReply {
        self.serve(user, Op::Get).await
    }

    /// Applies `change` to `user`'s cart and acknowledges it once the
    /// backups have it.
    pub async fn change(&self, user: &str, change: CartChange, request_id: RequestId) -> CartReply {
        self.serve(user, Op::Change(change, request_id)).await
    }

    /// Syncs every shard this node owns whose mark is stale; returns how
    /// many were synced now and how many could not be.
    pub async fn sync_owned(&self) -> (usize, usize) {
        let (view, assignments) = self.placement();
        if !self.voters.reachable_majority(&view) {
            return (0, 0);
        }
        let owned: Vec<u32> = assignments
            .shard_map(CART)
            .into_iter()
            .filter(|holders| holders.owner == self.node)
            .map(|holders| holders.shard)
            .collect();
        let (mut synced, mut failed) = (0, 0);
        for shard in owned {
            match self.with_synced_shard(shard, |_, _| async { Ok(()) }).await {
                Ok(Served::Reply { synced: true, .. }) => synced += 1,
                Ok(_) => {}
                Err(reason) => {
                    tracing::debug!(node = %self.node, shard, %reason, "cart shard not synced");
                    failed += 1;
                }
            }
        }
        (synced, failed)
    }

    fn placement(&self) -> (MembershipView, Assignments) {
        let view = self.view.borrow().clone();
        let assignments = placement(&view);
        (view, assignments)
    }

    /// The holders of `shard` if this node may serve it now (see
    /// [`serving`]), with the view and placement it decided on.
    fn check(&self, shard: u32) -> Result<(ShardAssignment, MembershipView, Assignments), Refusal> {
        let (view, assignments) = self.placement();
        let holders = serving::owner_check(&self.node, shard, &view, &assignments, &self.voters)?;
        Ok((holders, view, assignments))
    }

    async fn serve(&self, user: &str, op: Op) -> CartReply {
        let shard = shard_of(user);
        let outcome = self
            .with_synced_shard(shard, |owner, backups| async move {
                match op {
                    Op::Get => Ok(CartReply::Cart(owner.store.cart(user))),
                    Op::Change(change, request_id) => {
                        let (applied, cart) = match owner.store.apply(user, &change, request_id) {
                            Ok(done) => done,
                            Err(rejected) => return Ok(CartReply::Rejected(rejected)),
                        };
                        if applied == Applied::Duplicate {
                            tracing::debug!(%user, %request_id, "cart change already applied");
                        }
                        // Sent even for a duplicate: the first attempt may
                        // have failed before the backup had it.
                        owner.replicate(shard, vec![cart.clone()], &backups).await?;
                        Ok(CartReply::Cart(cart))
                    }
                }
            })
            .await;
        match outcome {
            Ok(Served::Reply { value, .. }) => value,
            Ok(Served::Refused(Refusal::NotOwner(owner))) => CartReply::NotOwner { owner },
            Ok(Served::Refused(refusal @ Refusal::NoMajority)) => {
                tracing::debug!(node = %self.node, %user, "cart request refused: no majority of the voters");
                CartReply::NoMajority(refusal.reason(&self.node))
            }
            Err(reason) => CartReply::Unavailable(reason),
        }
    }

    /// Runs `then` on `shard` under its owner lock, once the shard is
    /// synced; see the module doc. A failure of `then` leaves the shard
    /// unsynced.
    async fn with_synced_shard<F, Fut, T>(&self, shard: u32, then: F) -> Result<Served<T>, String>
    where
        F: FnOnce(Owner, Vec<CartActor>) -> Fut,
        Fut: std::future::Future<Output = Result<T, String>>,
    {
        // A refusal is answered at once, not after the shard's lock: a
        // node without a majority never waits on anything.
        if let Err(refusal) = self.check(shard) {
            return Ok(Served::Refused(refusal));
        }
        let Some(mut mark) = self.store.owner_lock(shard).await else {
            return Err(format!("no cart shard {shard}"));
        };
        // Checked again under the lock: waiting for it may have taken a
        // while, and the view may have moved meanwhile.
        let (holders, view, assignments) = match self.check(shard) {
            Ok(checked) => checked,
            Err(refusal) => return Ok(Served::Refused(refusal)),
        };
        let backups = resolve_backups(&holders)?;
        let wanted = SyncMark {
            backup_actors: backups.iter().map(|actor| actor.get_id()).collect(),
            members: fingerprint(&view),
            holders,
        };
        let synced = mark.as_ref() != Some(&wanted);
        if synced {
            *mark = None;
            self.sync(shard, &view, &assignments, &backups).await?;
            tracing::debug!(node = %self.node, shard, backups = ?wanted.holders.backups, "cart shard synced");
            *mark = Some(wanted);
        }
        match then(self.clone(), backups).await {
            Ok(value) => Ok(Served::Reply { value, synced }),
            Err(reason) => {
                *mark = None;
                Err(reason)
            }
        }
    }

    /// Catches `shard` up from every other node running the cart, then
    /// pushes it to the backups.
    async fn sync(
        &self,
        shard: u32,
        view: &MembershipView,
        assignments: &Assignments,
        backups: &[CartActor],
    ) -> Result<(), String> {
        let mut pulls = tokio::task::JoinSet::new();
        for member in view.members.values() {
            let name = &member.info.name;
            if !member.state.is_reachable() || *name == self.node {
                continue;
            }
            let runs_cart = assignments.roles_on(name).iter().any(|(s, _)| s == CART);
            match directory::members_on::<CartProtocol>(CART_BACKUP_GROUP, name)
                .into_iter()
                .next()
            {
                Some(actor) => {
                    let name = name.clone();
                    pulls.spawn(async move {
                        let pulled =
                            remote::call(&actor, CartRequest::ShardState { shard }, PULL_TIMEOUT)
                                .await;
                        (name, pulled)
                    });
                }
                None if runs_cart => {
                    return Err(format!("the cart on {name} is not reachable yet"))
                }
                // Not placed there: it holds no carts.
                None => {}
            }
        }
        let mut merged = 0;
        while let Some(joined) = pulls.join_next().await {
            let (name, pulled) = joined.map_err(|err| format!("pull task failed: {err}"))?;
            match pulled {
                Ok(CartReply::ShardState(carts)) => merged += self.store.merge(shard, carts),
                Ok(other) => return Err(format!("{name} answered a pull with {other:?}")),
                Err(err) => return Err(format!("cannot pull shard {shard} from {name}: {err}")),
            }
        }
        let carts = self.store.shard_carts(shard);
        if !carts.is_empty() {
            for batch in carts.chunks(PUSH_BATCH) {
                self.replicate(shard, batch.to_vec(), backups).await?;
            }
        }
        if merged > 0 {
            tracing::info!(node = %self.node, shard, merged, "cart shard caught up from its peers");
        }
        Ok(())
    }

    /// Sends copies to every backup and waits for each to confirm; adopts
    /// a backup's conflicting copies (see the module doc).
    async fn replicate(
        &self,
        shard: u32,
        carts: Vec<Cart>,
        backups: &[CartActor],
    ) -> Result<(), String> {
        for backup in backups {
            let request = CartRequest::Replicate {
                owner: self.node.clone(),
                shard,
                carts: carts.clone(),
            };
            match remote::call(backup, request, REPLICATE_TIMEOUT).await {
                Ok(CartReply::Replicated { conflicts }) if conflicts.is_empty() => {}
                Ok(CartReply::Replicated { conflicts }) => {
                    tracing::warn!(
                        node = %self.node,
                        shard,
                        carts = conflicts.len(),
                        "cart backup holds newer copies, adopting them"
                    );
                    self.store.adopt(shard, conflicts);
                    return Err("the cart changed elsewhere, retry".to_string());
                }
                Ok(CartReply::Unavailable(reason)) => {
                    return Err(format!("cart backup refused: {reason}"))
                }
                Ok(other) => return Err(format!("unexpected backup reply {other:?}")),
                Err(err) => return Err(format!("cart backup did not confirm: {err}")),
            }
        }
        Ok(())
    }
}

/// The outcome of [`Owner::with_synced_shard`].
enum Served<T> {
    /// Served here; `synced` if the shard had to be synced first.
    Reply { value: T, synced: bool },
    /// Not served here: no majority, or another node owns the shard (as
    /// this node sees it).
    Refused(Refusal),
}

/// The backup actor of each backup node of `holders`.
fn resolve_backups(holders: &ShardAssignment) -> Result<Vec<CartActor>, String> {
    holders
        .backups
        .iter()
        .map(|name| {
            directory::members_on::<CartProtocol>(CART_BACKUP_GROUP, name)
                .into_iter()
                .next()
                .ok_or_else(|| format!("no cart backup on {name} yet"))
        })
        .collect()
}

/// The reachable members, as a [`SyncMark`] records them.
fn fingerprint(view: &MembershipView) -> Vec<(String, u64, u64)> {
    view.members
        .values()
        .filter(|member| member.state.is_reachable())
        .map(|member| {
            (
                member.info.name.clone(),
                member.info.incarnation,
                member.since_ms,
            )
        })
        .collect()
}
