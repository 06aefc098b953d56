//! The membership inbox: the one remotable actor of the membership, joined
//! to [`MEMBERSHIP_GROUP`] so that peers find it through pg.
//!
//! It decodes heartbeats and hands them to the local membership actor;
//! a frame that does not decode is logged and dropped.

use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::protocol::{Heartbeat, MEMBERSHIP_GROUP};
use super::MembershipMsg;
use crate::codec::Wire;

/// Receives heartbeats from peers.
pub struct MembershipInbox;

impl Actor for MembershipInbox {
    type Msg = Wire<Heartbeat>;
    type State = ActorRef<MembershipMsg>;
    type Arguments = ActorRef<MembershipMsg>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        membership: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        ractor::pg::join(MEMBERSHIP_GROUP.to_string(), vec![myself.get_cell()]);
        Ok(membership)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        membership: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match message.into_result() {
            Ok(heartbeat) => {
                // The membership actor outlives its inbox; a failed cast
                // means the node is stopping.
                let _ = membership.cast(MembershipMsg::HeartbeatReceived(heartbeat));
            }
            Err(err) => tracing::warn!(error = %err, "dropping malformed heartbeat"),
        }
        Ok(())
    }
}
