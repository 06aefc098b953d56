//! The cluster listener: Bazaar's own accept loop in front of
//! ractor_cluster, which would otherwise accept every connection, keep a
//! silent one open forever and run TLS handshakes inline, one at a time.
//!
//! ```text
//! accept loop (task)                 binds only the configured address
//! ├── handshake task per connection  socket options, first byte, TLS,
//! │                                  then hand-over to the NodeServer and
//! │                                  wait for the cookie challenge
//! └── ...
//! ```
//!
//! Invariants:
//! - at most [`ListenerConfig::max_handshakes`] connections are between
//!   accept and authentication at once; a connection beyond that is closed
//!   at once, before any byte is read;
//! - a connection that has not passed the cookie challenge
//!   [`ListenerConfig::handshake_timeout`] after it was accepted is closed,
//!   whether it is silent, stuck in TLS or stuck in the challenge;
//! - every handshake runs in its own task, so a slow peer delays nobody;
//! - every accepted socket has TCP keepalive and `TCP_USER_TIMEOUT` set,
//!   so a peer that vanishes without a FIN is dropped by the kernel too.
//!
//! Counted in metrics: `bazaar_cluster_connections_total{outcome}`
//! (`authenticated`, `over_capacity`, `timeout`, `closed`, `tls_failed`,
//! `error`) and the gauge `bazaar_cluster_handshakes`.

mod handshake;
pub mod socket;
pub mod tls;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use ractor::ActorRef;
use ractor_cluster::NodeServerMessage;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinHandle;
use tokio_rustls::TlsAcceptor;

use handshake::{Handshakes, HANDSHAKE_SUBSCRIPTION};

/// Pause after a failed `accept` (out of file descriptors, for instance),
/// so that the loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(50);

/// Backlog of the listening socket.
const LISTEN_BACKLOG: i32 = 1024;

/// Limits of the cluster listener.
#[derive(Debug, Clone, Copy)]
pub struct ListenerConfig {
    /// Connections allowed between accept and authentication at once.
    /// Before authentication a peer can still send ractor_cluster frames of
    /// up to `codec::MAX_FRAME_BYTES` (about 8 MiB), so this also bounds
    /// what unauthenticated peers can make a node hold: about 64 × 8 MiB.
    pub max_handshakes: usize,
    /// Time from accept to a passed cookie challenge (TLS included).
    pub handshake_timeout: Duration,
    /// Keepalive and user-timeout settings of every cluster socket.
    pub socket: socket::SocketConfig,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        Self {
            max_handshakes: 64,
            handshake_timeout: Duration::from_secs(2),
            socket: socket::SocketConfig::default(),
        }
    }
}

/// A running accept loop; dropping it stops accepting (handshakes in
/// flight finish or time out on their own).
pub struct ClusterListener {
    local_addr: SocketAddr,
    task: JoinHandle<()>,
}

impl ClusterListener {
    /// Binds `addr` (that address only), so that a taken port is reported
    /// before anything else starts.
    pub fn bind(addr: SocketAddr) -> std::io::Result<std::net::TcpListener> {
        use socket2::{Domain, Protocol, Socket, Type};
        let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
        socket.set_reuse_address(true)?;
        socket.bind(&addr.into())?;
        socket.listen(LISTEN_BACKLOG)?;
        socket.set_nonblocking(true)?;
        Ok(socket.into())
    }

    /// Starts accepting on `listener` and handing connections to `server`,
    /// TLS-wrapped when `tls` is set.
    pub fn spawn(
        listener: std::net::TcpListener,
        server: ActorRef<NodeServerMessage>,
        tls: Option<TlsAcceptor>,
        config: ListenerConfig,
    ) -> std::io::Result<Self> {
        let listener = TcpListener::from_std(listener)?;
        let local_addr = listener.local_addr()?;
        let handshakes = Arc::new(Handshakes::default());
        server
            .cast(NodeServerMessage::SubscribeToEvents {
                id: HANDSHAKE_SUBSCRIPTION.to_string(),
                subscription: Box::new(handshakes.subscription()),
            })
            .map_err(|err| std::io::Error::other(err.to_string()))?;
        let context = Arc::new(handshake::Context {
            server,
            tls,
            config,
            handshakes,
        });
        let task = tokio::spawn(accept_loop(listener, context));
        Ok(Self { local_addr, task })
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }
}

impl Drop for ClusterListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn accept_loop(listener: TcpListener, context: Arc<handshake::Context>) {
    let slots = Arc::new(Semaphore::new(context.config.max_handshakes));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(accepted) => accepted,
            Err(error) => {
                tracing::warn!(%error, "cannot accept a cluster connection");
                metrics::counter!("bazaar_cluster_connections_total", "outcome" => "error")
                    .increment(1);
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        let Ok(slot) = slots.clone().try_acquire_owned() else {
            tracing::debug!(%peer, "too many cluster handshakes in flight, connection closed");
            metrics::counter!("bazaar_cluster_connections_total", "outcome" => "over_capacity")
                .increment(1);
            drop(stream);
            continue;
        };
        tokio::spawn(handshake::run(stream, peer, slot, context.clone()));
    }
}
