//! Dialing a peer: a TCP connect with a timeout, the cluster socket
//! options, the TLS handshake when mutual TLS is on (under the handshake
//! timeout), then the stream is handed to the NodeServer as an outgoing
//! session; the result goes back to the membership actor.

use std::net::SocketAddr;
use std::time::Duration;

use ractor::ActorRef;
use ractor_cluster::{NetworkStream, NodeServerMessage};
use tokio_rustls::TlsConnector;

use super::{MembershipMsg, CONNECT_TIMEOUT};
use crate::listener::socket::{self, SocketConfig};
use crate::listener::tls::server_name;

/// What every dial needs.
#[derive(Clone)]
pub(super) struct DialContext {
    /// Receives the connected stream.
    pub(super) server: ActorRef<NodeServerMessage>,
    /// Mutual TLS, when on.
    pub(super) tls: Option<TlsConnector>,
    /// Socket options of cluster connections.
    pub(super) socket: SocketConfig,
    /// Longest TLS handshake.
    pub(super) handshake_timeout: Duration,
}

/// Dials `target` in a task and hands the connection to the NodeServer.
pub(super) fn spawn_dial(
    context: DialContext,
    membership: ActorRef<MembershipMsg>,
    target: String,
) {
    tokio::spawn(async move {
        let result = dial(&context, &target).await;
        let _ = membership.cast(MembershipMsg::DialFinished { target, result });
    });
}

async fn dial(context: &DialContext, target: &str) -> Result<SocketAddr, String> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(target))
        .await
        .map_err(|_| "connect timed out".to_string())?
        .map_err(|err| err.to_string())?;
    socket::tune(&stream, &context.socket).map_err(|err| err.to_string())?;
    let peer_addr = stream.peer_addr().map_err(|err| err.to_string())?;
    let local_addr = stream.local_addr().map_err(|err| err.to_string())?;
    let stream = match &context.tls {
        None => NetworkStream::Raw {
            stream,
            peer_addr,
            local_addr,
        },
        Some(connector) => {
            let name = server_name(target)?;
            let stream =
                tokio::time::timeout(context.handshake_timeout, connector.connect(name, stream))
                    .await
                    .map_err(|_| "tls handshake timed out".to_string())?
                    .map_err(|err| format!("tls handshake failed: {err}"))?;
            NetworkStream::TlsClient {
                stream,
                peer_addr,
                local_addr,
            }
        }
    };
    context
        .server
        .cast(NodeServerMessage::ConnectionOpened {
            stream: Box::new(stream),
            is_server: false,
        })
        .map_err(|err| err.to_string())?;
    Ok(peer_addr)
}
