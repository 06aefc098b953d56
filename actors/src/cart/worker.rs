//! A cart worker: a thin shell over the owner path ([`super::owner`]).
//! Workers of a node share its store; the shard's owner lock orders them.

use bazaar_cluster::directory;
use bazaar_cluster::remote::{self, ServiceMsg};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::owner::Owner;
use super::protocol::{CartProtocol, CartReply, CartRequest, CART_GROUP};

/// A cart worker.
pub struct CartWorker;

impl Actor for CartWorker {
    type Msg = ServiceMsg<CartProtocol>;
    type State = Owner;
    type Arguments = Owner;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        owner: Owner,
    ) -> Result<Self::State, ActorProcessingErr> {
        directory::join(CART_GROUP, &owner.node, &myself);
        Ok(owner)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        owner: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let Some((request, reply)) = message.into_parts() else {
            return Ok(());
        };
        let answer = match request {
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
        };
        remote::answer(reply, answer);
        Ok(())
    }
}
