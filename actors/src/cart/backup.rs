//! The cart backup actor: answers owners on other nodes. It keeps the
//! copies an owner replicates (`Replicate`) and hands a shard's carts to an
//! owner catching up (`ShardState`). It never calls another actor, so an
//! owner waiting for it cannot be waiting on itself.
//!
//! It refuses copies of a shard that this node owns in its own view (with a
//! quorum): two nodes that both believe they own a shard, while their views
//! disagree, cannot both get changes acknowledged through each other.

use std::sync::Arc;

use bazaar_cluster::MembershipView;
use ractor::ActorProcessingErr;
use tokio::sync::watch;

use super::placement;
use super::protocol::{CartProtocol, CartReply, CartRequest, CART_BACKUP_GROUP};
use super::store::CartStore;
use crate::host::manifest::CART;
use crate::service_actor::ServiceWorker;

/// Start arguments of the backup actor.
pub struct CartBackupArgs {
    /// This node's name.
    pub node: String,
    /// The carts held here.
    pub store: Arc<CartStore>,
    /// This node's membership view.
    pub view: watch::Receiver<MembershipView>,
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
            CartRequest::Replicate { shard, carts } => {
                if owns(state, shard) {
                    tracing::debug!(node = %state.node, shard, "refusing copies of an owned cart shard");
                    CartReply::Unavailable(format!("{} owns cart shard {shard}", state.node))
                } else {
                    let conflicts = state.store.keep_backup(shard, carts);
                    CartReply::Replicated { conflicts }
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

/// Whether this node owns `shard` in its view, with a quorum.
fn owns(state: &CartBackupArgs, shard: u32) -> bool {
    let view = state.view.borrow().clone();
    view.has_quorum()
        && placement(&view)
            .shard_map(CART)
            .iter()
            .any(|holders| holders.shard == shard && holders.owner == state.node)
}
