//! One inbound handshake, from accept to a passed cookie challenge, in its
//! own task under one deadline.
//!
//! The steps: tune the socket, wait for the peer's first byte (in
//! ractor_cluster's protocol the dialing side speaks first, so a silent
//! connection never costs more than this task), run the TLS handshake if
//! configured, hand the stream to the NodeServer, then follow the session
//! through the NodeServer's events until it authenticates or closes. At the
//! deadline the connection is dropped, or its session stopped.
//!
//! Sessions are matched to handshakes by the peer's socket address, which
//! ractor_cluster reports as `peer_addr` and which is unique among open
//! inbound connections.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use ractor::ActorRef;
use ractor_cluster::node::NodeServerSessionInformation;
use ractor_cluster::{NetworkStream, NodeEventSubscription, NodeServerMessage, NodeSessionMessage};
use tokio::net::TcpStream;
use tokio::sync::{mpsc, OwnedSemaphorePermit};
use tokio::time::Instant;
use tokio_rustls::TlsAcceptor;

use super::ListenerConfig;

/// Id of the listener's NodeServer event subscription.
pub(super) const HANDSHAKE_SUBSCRIPTION: &str = "bazaar.listener";

/// What every handshake task shares.
pub(super) struct Context {
    pub(super) server: ActorRef<NodeServerMessage>,
    pub(super) tls: Option<TlsAcceptor>,
    pub(super) config: ListenerConfig,
    pub(super) handshakes: Arc<Handshakes>,
}

/// How far a handed-over session got, as the NodeServer reports it.
#[derive(Debug)]
enum Progress {
    Opened(ActorRef<NodeSessionMessage>),
    Authenticated,
    Closed,
}

/// Handshakes waiting for their session's events, by peer address.
#[derive(Default)]
pub(super) struct Handshakes {
    waiting: Mutex<HashMap<String, mpsc::UnboundedSender<Progress>>>,
}

impl Handshakes {
    fn register(&self, peer: &str) -> mpsc::UnboundedReceiver<Progress> {
        let (tx, rx) = mpsc::unbounded_channel();
        self.lock().insert(peer.to_string(), tx);
        rx
    }

    fn forget(&self, peer: &str) {
        self.lock().remove(peer);
    }

    fn report(&self, info: &NodeServerSessionInformation, progress: Progress) {
        if !info.is_server {
            return;
        }
        if let Some(tx) = self.lock().get(&info.peer_addr) {
            let _ = tx.send(progress);
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, mpsc::UnboundedSender<Progress>>> {
        // A panic while holding this lock cannot leave the map inconsistent.
        self.waiting
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// The NodeServer subscription feeding this registry.
    pub(super) fn subscription(self: &Arc<Self>) -> impl NodeEventSubscription {
        SessionProgress(self.clone())
    }
}

struct SessionProgress(Arc<Handshakes>);

impl NodeEventSubscription for SessionProgress {
    fn node_session_opened(&self, ses: NodeServerSessionInformation) {
        let actor = ses.actor.clone();
        self.0.report(&ses, Progress::Opened(actor));
    }
    fn node_session_authenticated(&self, ses: NodeServerSessionInformation) {
        self.0.report(&ses, Progress::Authenticated);
    }
    fn node_session_disconnected(&self, ses: NodeServerSessionInformation) {
        self.0.report(&ses, Progress::Closed);
    }
}

/// How a handshake ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Outcome {
    Authenticated,
    Timeout,
    Closed,
    TlsFailed,
    Error,
}

impl Outcome {
    fn as_str(self) -> &'static str {
        match self {
            Self::Authenticated => "authenticated",
            Self::Timeout => "timeout",
            Self::Closed => "closed",
            Self::TlsFailed => "tls_failed",
            Self::Error => "error",
        }
    }
}

/// Keeps `bazaar_cluster_handshakes` equal to the tasks alive.
struct InFlight;

impl InFlight {
    fn enter() -> Self {
        metrics::gauge!("bazaar_cluster_handshakes").increment(1.0);
        Self
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        metrics::gauge!("bazaar_cluster_handshakes").decrement(1.0);
    }
}

/// Runs one handshake; the slot is held until it ends.
pub(super) async fn run(
    stream: TcpStream,
    peer: SocketAddr,
    slot: OwnedSemaphorePermit,
    context: Arc<Context>,
) {
    let _slot = slot;
    let _in_flight = InFlight::enter();
    let deadline = Instant::now() + context.config.handshake_timeout;
    let outcome = handshake(stream, peer, deadline, &context).await;
    metrics::counter!("bazaar_cluster_connections_total", "outcome" => outcome.as_str())
        .increment(1);
    match outcome {
        Outcome::Authenticated => tracing::debug!(%peer, "inbound cluster session authenticated"),
        Outcome::Timeout => tracing::info!(%peer, "cluster handshake timed out, connection closed"),
        other => tracing::debug!(%peer, outcome = other.as_str(), "cluster handshake ended"),
    }
}

async fn handshake(
    stream: TcpStream,
    peer: SocketAddr,
    deadline: Instant,
    context: &Context,
) -> Outcome {
    if let Err(error) = super::socket::tune(&stream, &context.config.socket) {
        tracing::debug!(%peer, %error, "cannot set cluster socket options");
        return Outcome::Error;
    }
    let Ok(local_addr) = stream.local_addr() else {
        return Outcome::Error;
    };
    let mut first = [0u8; 1];
    match tokio::time::timeout_at(deadline, stream.peek(&mut first)).await {
        Err(_) => return Outcome::Timeout,
        Ok(Ok(0)) => return Outcome::Closed,
        Ok(Ok(_)) => {}
        Ok(Err(_)) => return Outcome::Closed,
    }
    let stream = match &context.tls {
        None => NetworkStream::Raw {
            peer_addr: peer,
            local_addr,
            stream,
        },
        Some(acceptor) => match tokio::time::timeout_at(deadline, acceptor.accept(stream)).await {
            Err(_) => return Outcome::Timeout,
            Ok(Err(error)) => {
                tracing::info!(%peer, %error, "cluster tls handshake failed");
                return Outcome::TlsFailed;
            }
            Ok(Ok(stream)) => NetworkStream::TlsServer {
                peer_addr: peer,
                local_addr,
                stream,
            },
        },
    };

    let key = peer.to_string();
    let mut progress = context.handshakes.register(&key);
    let handed = context.server.cast(NodeServerMessage::ConnectionOpened {
        stream: Box::new(stream),
        is_server: true,
    });
    if handed.is_err() {
        context.handshakes.forget(&key);
        return Outcome::Error;
    }
    let mut session = None;
    let outcome = loop {
        tokio::select! {
            event = progress.recv() => match event {
                Some(Progress::Opened(actor)) => session = Some(actor),
                Some(Progress::Authenticated) => break Outcome::Authenticated,
                Some(Progress::Closed) | None => break Outcome::Closed,
            },
            _ = tokio::time::sleep_until(deadline) => {
                // A session the NodeServer has not opened yet is left to
                // the membership actor, which stops stalled sessions too.
                if let Some(actor) = &session {
                    actor.stop(Some("handshake timeout".to_string()));
                }
                break Outcome::Timeout;
            }
        }
    };
    context.handshakes.forget(&key);
    outcome
}
