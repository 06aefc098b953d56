//! A cart worker: a thin shell over the owner path ([`super::owner`]).
//! Workers of a node share its store; the shard's owner lock orders them.

use ractor::ActorProcessingErr;

use super::owner::Owner;
use super::protocol::{CartProtocol, CartReply, CartRequest, CART_GROUP};
use crate::service_actor::ServiceWorker;

/// A cart worker.
pub struct CartWorker;

impl ServiceWorker for CartWorker {
    type Protocol = CartProtocol;
    type State = Owner;
    const GROUP: &'static str = CART_GROUP;

    fn node(owner: &Owner) -> &str {
        &owner.node
    }

    async fn serve(
        owner: &mut Owner,
        request: CartRequest,
    ) -> Result<CartReply, ActorProcessingErr> {
        Ok(match request {
            CartRequest::Get { user } => owner.get(&user).await,
            CartRequest::Change {
                user,
                change,
                request_id,
            } => owner.change(&user, change, request_id).await,
            CartRequest::Crash => {
                tracing::warn!(node = %owner.node, "crash injected into a cart worker");
                return Err("crash injected into cart worker".into());
            }
            CartRequest::Replicate { .. } | CartRequest::ShardState { .. } => {
                CartReply::Unavailable("not a cart backup".to_string())
            }
        })
    }
}
