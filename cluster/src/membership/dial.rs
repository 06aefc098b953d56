//! Dialing a peer: a TCP connect with a timeout, handed to the NodeServer
//! as an outgoing session; the result goes back to the membership actor.

use std::net::SocketAddr;

use ractor::ActorRef;
use ractor_cluster::{NetworkStream, NodeServerMessage};

use super::{MembershipMsg, CONNECT_TIMEOUT};

/// Dials `target` in a task and hands the connection to the NodeServer.
pub(super) fn spawn_dial(
    server: ActorRef<NodeServerMessage>,
    membership: ActorRef<MembershipMsg>,
    target: String,
) {
    tokio::spawn(async move {
        let result = dial(&server, &target).await;
        let _ = membership.cast(MembershipMsg::DialFinished { target, result });
    });
}

async fn dial(server: &ActorRef<NodeServerMessage>, target: &str) -> Result<SocketAddr, String> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(target))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|err| err.to_string())?;
    stream.set_nodelay(true).map_err(|err| err.to_string())?;
    let peer_addr = stream.peer_addr().map_err(|err| err.to_string())?;
    let local_addr = stream.local_addr().map_err(|err| err.to_string())?;
    server
        .cast(NodeServerMessage::ConnectionOpened {
            stream: Box::new(NetworkStream::Raw {
                stream,
                peer_addr,
                local_addr,
            }),
            is_server: false,
        })
        .map_err(|err| err.to_string())?;
    Ok(peer_addr)
}
