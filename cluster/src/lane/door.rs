//! The lane door: how a node learns where to open a lane to a peer and
//! proves it may.
//!
//! Every node runs one door actor in the pg group [`DOOR_GROUP`]. A node
//! that wants a lane to a peer calls the peer's door over the ractor_cluster
//! session (which the cookie, or TLS, already authenticated) and gets a
//! [`Ticket`]: the lane listener's address and a fresh random token. The
//! token is good for one connection within [`TOKEN_TTL`]; at most
//! [`MAX_TOKENS`] are outstanding, oldest dropped first. So only a member of
//! the cluster can open a lane, without a second secret.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use rand::RngCore;
use serde::{Deserialize, Serialize};

use super::frame::TOKEN_LEN;
use crate::directory;
use crate::remote::{self, Protocol, ServiceMsg};

/// The pg group of lane doors.
pub const DOOR_GROUP: &str = "bazaar.lane";
/// How long a token stays good.
pub const TOKEN_TTL: Duration = Duration::from_secs(10);
/// Most tokens outstanding at once.
const MAX_TOKENS: usize = 1024;
/// How long a dialer waits for the door's answer.
const TICKET_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between two looks for the peer's door.
const DOOR_POLL: Duration = Duration::from_millis(20);

/// The door's protocol.
pub struct DoorProtocol;

impl Protocol for DoorProtocol {
    const NAME: &'static str = "bazaar.lane.door.v1";
    type Request = DoorRequest;
    type Reply = Ticket;
}

/// What a door is asked.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum DoorRequest {
    /// A ticket for one lane.
    Open,
}

/// Where and how to open one lane.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ticket {
    /// The lane listener's host.
    pub host: String,
    /// The lane listener's port.
    pub port: u16,
    /// The one-time token to present.
    pub token: Vec<u8>,
}

impl Ticket {
    /// `host:port` of the listener.
    pub fn addr(&self) -> String {
        format!("{}:{}", self.host, self.port)
    }
}

/// Tokens handed out and not yet used.
#[derive(Default)]
pub struct Tokens(Mutex<HashMap<[u8; TOKEN_LEN], Instant>>);

impl Tokens {
    /// A fresh token, remembered until used or expired.
    pub fn issue(&self) -> [u8; TOKEN_LEN] {
        let mut token = [0u8; TOKEN_LEN];
        rand::rng().fill_bytes(&mut token);
        let mut tokens = self.0.lock();
        let now = Instant::now();
        tokens.retain(|_, issued| now.duration_since(*issued) < TOKEN_TTL);
        if tokens.len() >= MAX_TOKENS {
            if let Some(oldest) = tokens.iter().min_by_key(|(_, at)| **at).map(|(t, _)| *t) {
                tokens.remove(&oldest);
            }
        }
        tokens.insert(token, now);
        token
    }

    /// True (once) if `token` was issued and has not expired.
    pub fn redeem(&self, token: &[u8; TOKEN_LEN]) -> bool {
        match self.0.lock().remove(token) {
            Some(issued) => issued.elapsed() < TOKEN_TTL,
            None => false,
        }
    }
}

/// What a door needs: where its listener is and its token table.
pub struct DoorArgs {
    /// This node's name, for the node-scoped group.
    pub node: String,
    /// The host peers dial.
    pub host: String,
    /// The lane listener's port.
    pub port: u16,
    /// Shared with the listener.
    pub tokens: Arc<Tokens>,
}

/// The door actor.
pub struct Door;

impl Actor for Door {
    type Msg = ServiceMsg<DoorProtocol>;
    type State = DoorArgs;
    type Arguments = DoorArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: DoorArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        directory::join(DOOR_GROUP, &args.node, &myself);
        Ok(args)
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        if let Some((DoorRequest::Open, port)) = message.into_parts() {
            let ticket = Ticket {
                host: state.host.clone(),
                port: state.port,
                token: state.tokens.issue().to_vec(),
            };
            remote::answer(port, ticket);
        }
        Ok(())
    }
}

/// The door of the peer with ractor_cluster node id `peer`, if its session
/// is up and the door has been seen through pg.
fn door_of(peer: u64) -> Option<ActorRef<ServiceMsg<DoorProtocol>>> {
    directory::remote_members::<DoorProtocol>(DOOR_GROUP)
        .into_iter()
        .find(|door| door.get_id().node() == peer)
}

/// True while the peer's door is visible, that is while its session stands.
pub fn peer_present(peer: u64) -> bool {
    door_of(peer).is_some()
}

/// Asks the peer's door for a ticket, waiting for the door to appear.
pub async fn ticket_from(peer: u64) -> Result<Ticket, String> {
    let door = loop {
        if let Some(door) = door_of(peer) {
            break door;
        }
        tokio::time::sleep(DOOR_POLL).await;
    };
    let ticket = remote::call_via_session(&door, DoorRequest::Open, TICKET_TIMEOUT)
        .await
        .map_err(|err| format!("the peer's lane door did not answer: {err}"))?;
    if ticket.token.len() != TOKEN_LEN {
        return Err(format!(
            "lane ticket with a {}-byte token",
            ticket.token.len()
        ));
    }
    Ok(ticket)
}
