//! The cart backup actor: answers owners on other nodes. It keeps the
//! copies an owner replicates (`Replicate`) and hands a shard's carts to an
//! owner catching up (`ShardState`). It never calls another actor, so an
//! owner waiting for it cannot be waiting on itself.
//!
//! It keeps copies only from the node that owns the shard in this node's
//! own view, and only while that view reaches a majority of the voters
//! ([`serving::backup_check`]): two nodes that both believe they own a
//! shard, while their views disagree (or a bridge node sees both sides of
//! a partition), cannot both get changes acknowledged through it.

use std::sync::Arc;

use bazaar_cluster::{MembershipView, Voters};
use ractor::ActorProcessingErr;
use tokio::sync::watch;

use super::protocol::{CartProtocol, CartReply, CartRequest, CART_BACKUP_GROUP};
use super::serving;
use super::store::CartStore;
use crate::service_actor::ServiceWorker;

/// Start arguments of the backup actor.
pub struct CartBackupArgs {
    /// This node's name.
    pub node: String,
    /// The carts held here.
    pub store: Arc<CartStore>,
    /// This node's membership view.
    pub view: watch::Receiver<MembershipView>,
    /// The voter set: copies are kept only while the view reaches a
    /// majority of it.
    pub voters: Voters,
}

/// The cart backup actor of a node.
pub struct CartBackup;

impl ServiceWorker for CartBackup {
    type Protocol = CartProtocol;
    type State = CartBackupArgs;
    const GROUP: &'static str = CART_BACKUP_GROUP;

    fn node(state: &CartBackupArgs) -> &str {
        &state.node
    }

    async fn serve(
        state: &mut CartBackupArgs,
        request: CartRequest,
    ) -> Result<CartReply, ActorProcessingErr> {
        Ok(match request {
            CartRequest::Replicate {
                owner,
                shard,
                carts,
            } => {
                let view = state.view.borrow().clone();
                match serving::backup_check(&state.node, shard, &owner, &view, &state.voters) {
                    Ok(()) => {
                        let conflicts = state.store.keep_backup(shard, carts);
                        CartReply::Replicated { conflicts }
                    }
                    Err(reason) => {
                        tracing::debug!(node = %state.node, shard, %owner, %reason, "cart copies refused");
                        CartReply::Unavailable(reason)
                    }
                }
            }
            CartRequest::ShardState { shard } => {
                CartReply::ShardState(state.store.shard_carts(shard))
            }
            CartRequest::Get { .. } | CartRequest::Change { .. } | CartRequest::Crash => {
                CartReply::Unavailable("not a cart worker".to_string())
            }
        })
    }
}
