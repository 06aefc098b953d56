//! Dialing a peer: the target (`HOST:PORT`, an IP or a DNS name) is
//! resolved afresh on every attempt, and each address it resolves to,
//! except this node's own listen address, gets a TCP connect with a
//! timeout, the cluster socket options and the TLS handshake when mutual
//! TLS is on (under the handshake timeout); every stream that gets that
//! far is handed to the NodeServer as an outgoing session. The first
//! address that connected (or why none did) goes back to the membership
//! actor, which backs off the target on failure.
//!
//! Resolving on every attempt is what lets one DNS name stand for a
//! changing set of nodes: a Kubernetes headless Service lists the
//! addresses of its pods, and a pod rescheduled with a new address is
//! found on the next redial. TLS verifies the name as given (the seed's
//! host name), so node certificates must carry the seed names too.

use std::net::SocketAddr;
use std::time::Duration;

use futures_util::future::join_all;
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
    /// This node's listen address: never dialed, though a seed name (a
    /// headless Service) resolves to it too.
    pub(super) listen: SocketAddr,
}

/// Dials `target` in a task and hands the connections to the NodeServer.
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

/// The addresses `target` resolves to now, in the resolver's order,
/// without duplicates and without `own`.
pub(super) async fn resolve(target: &str, own: SocketAddr) -> Result<Vec<SocketAddr>, String> {
    let resolved = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::lookup_host(target))
        .await
        .map_err(|_| "name resolution timed out".to_string())?
        .map_err(|err| format!("cannot resolve: {err}"))?;
    let mut addrs: Vec<SocketAddr> = Vec::new();
    for addr in resolved {
        if addr != own && !addrs.contains(&addr) {
            addrs.push(addr);
        }
    }
    if addrs.is_empty() {
        return Err("resolves to no address but this node's own".to_string());
    }
    Ok(addrs)
}

/// Dials every address of `target` at once; the first one connected.
async fn dial(context: &DialContext, target: &str) -> Result<SocketAddr, String> {
    let addrs = resolve(target, context.listen).await?;
    let attempts = addrs.iter().map(|&addr| dial_addr(context, target, addr));
    let mut errors = Vec::new();
    let mut connected = None;
    for (addr, result) in addrs.iter().zip(join_all(attempts).await) {
        match result {
            Ok(peer_addr) => {
                connected.get_or_insert(peer_addr);
            }
            Err(error) => errors.push(format!("{addr}: {error}")),
        }
    }
    if !errors.is_empty() && connected.is_some() {
        tracing::debug!(peer = %target, errors = %errors.join("; "), "some addresses of a dial target failed");
    }
    connected.ok_or_else(|| errors.join("; "))
}

/// Connects to one address of `target` and hands the stream over.
async fn dial_addr(
    context: &DialContext,
    target: &str,
    addr: SocketAddr,
) -> Result<SocketAddr, String> {
    let stream = tokio::time::timeout(CONNECT_TIMEOUT, tokio::net::TcpStream::connect(addr))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn own() -> SocketAddr {
        "127.0.0.1:1".parse().unwrap()
    }

    #[tokio::test]
    async fn a_name_resolves_to_its_addresses_on_every_call() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = format!("localhost:{port}");
        for _ in 0..2 {
            let addrs = resolve(&target, own()).await.expect("localhost resolves");
            let v4: SocketAddr = ([127, 0, 0, 1], port).into();
            assert!(addrs.contains(&v4), "{addrs:?}");
            assert!(addrs.iter().all(|addr| addr.port() == port), "{addrs:?}");
        }
    }

    #[tokio::test]
    async fn an_ip_target_resolves_to_itself() {
        let addrs = resolve("10.1.2.3:7071", own()).await.unwrap();
        assert_eq!(addrs, vec!["10.1.2.3:7071".parse::<SocketAddr>().unwrap()]);
    }

    #[tokio::test]
    async fn this_nodes_own_address_is_left_out() {
        let error = resolve("127.0.0.1:1", own()).await.unwrap_err();
        assert!(error.contains("own"), "{error}");
    }

    #[tokio::test]
    async fn a_name_that_does_not_resolve_is_an_error() {
        // `.invalid` never resolves (RFC 6761); without a DNS server the
        // lookup may also time out, an error all the same.
        assert!(resolve("no-such-host.invalid:7071", own()).await.is_err());
    }

    #[tokio::test]
    async fn a_target_without_a_port_is_an_error() {
        assert!(resolve("localhost", own()).await.is_err());
    }
}
