//! A running cluster node: the ractor_cluster NodeServer behind Bazaar's
//! own listener, plus the membership that keeps it meshed and watched.
//!
//! ```text
//! ClusterNode
//! ├── ClusterListener (task)        accept loop, one task per handshake
//! ├── NodeServer (ractor_cluster)   one NodeSession per peer
//! └── Membership                    see `membership`
//!     └── MembershipInbox
//! ```
//!
//! The listener binds only the configured address. ractor_cluster 0.16.5
//! always starts a listener of its own inside the NodeServer; this node
//! starts it on an ephemeral loopback port and retires it at once (unlinked
//! from the NodeServer, so it is not restarted, then killed), so that every
//! inbound connection goes through [`crate::listener`] and its limits. The
//! NodeServer runs in isolated mode: the membership actor decides whom to
//! dial, so there is one dialing policy (with backoff) rather than two.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

use ractor::{Actor, ActorRef};
use ractor_cluster::node::NodeConnectionMode;
use ractor_cluster::{NodeServer, NodeServerMessage, NodeSessionMessage};
use tokio::sync::{broadcast, watch};

use crate::codec::MAX_FRAME_BYTES;
use crate::config::NodeConfig;
use crate::lane::Lanes;
use crate::listener::tls::{ClusterTls, TlsError};
use crate::listener::ClusterListener;
use crate::member::{MemberEvent, MemberInfo, MembershipView};
use crate::membership::table::unix_ms_now;
use crate::membership::{DialerConfig, Membership, MembershipArgs, MembershipMsg};

/// Capacity of the membership event channel; a subscriber that lags
/// further loses the oldest events and is told so by `broadcast`.
const EVENT_CAPACITY: usize = 1024;

/// Longest wait for ractor_cluster's own listener to stop.
const RETIRE_TIMEOUT: Duration = Duration::from_secs(2);

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The cluster listener could not start (address in use, for instance).
    #[error("cannot start the cluster listener on {addr}: {reason}")]
    Listener {
        /// The listen address.
        addr: SocketAddr,
        /// What the operating system or ractor_cluster reported.
        reason: String,
    },
    /// The TLS files could not be used.
    #[error(transparent)]
    Tls(#[from] TlsError),
    /// The membership actor could not start.
    #[error("cannot start membership: {0}")]
    Membership(String),
}

/// Handle on a running node.
pub struct ClusterNode {
    listener: ClusterListener,
    server: ActorRef<NodeServerMessage>,
    membership: ActorRef<MembershipMsg>,
    view_rx: watch::Receiver<MembershipView>,
    events_tx: broadcast::Sender<MemberEvent>,
    local: MemberInfo,
    lanes: Option<Lanes>,
}

impl ClusterNode {
    /// Starts the node: binds the listener, starts membership, begins dialing seeds.
    pub async fn start(config: NodeConfig, http_addr: String) -> Result<Self, StartError> {
        let listener_error = |reason: String| StartError::Listener {
            addr: config.listen,
            reason,
        };
        let tls = config.tls.as_ref().map(ClusterTls::load).transpose()?;
        // Bind first so that "address in use" is a clear error rather than a
        // failed actor deep inside ractor_cluster.
        let socket =
            ClusterListener::bind(config.listen).map_err(|err| listener_error(err.to_string()))?;
        let bound = socket
            .local_addr()
            .map_err(|err| listener_error(err.to_string()))?;
        let (advertise_host, advertise_port) = config.advertise_host_port();
        let (advertise, advertise_port) = if advertise_port == 0 {
            (format!("{advertise_host}:{}", bound.port()), bound.port())
        } else {
            (config.advertise.clone(), advertise_port)
        };

        let server = NodeServer::new(
            0,
            config.cookie.expose().to_string(),
            config.name.clone(),
            advertise_host.to_string(),
            None,
            Some(NodeConnectionMode::Isolated),
        )
        .with_listen_addr(loopback_like(config.listen.ip()))
        .with_max_inbound_frame_size(MAX_FRAME_BYTES);
        let (server, _) = Actor::spawn(Some("bazaar.node_server".into()), server, ())
            .await
            .map_err(|err| listener_error(err.to_string()))?;
        let retired = retire_builtin_listener(&server).await;
        if retired != 1 {
            tracing::warn!(
                retired,
                "expected to retire exactly one ractor_cluster listener"
            );
        }
        // The name a node announces carries host:port; advertise the address
        // peers must dial (the retired listener announced its own port).
        server
            .cast(NodeServerMessage::PortChanged {
                port: advertise_port,
            })
            .map_err(|err| listener_error(err.to_string()))?;
        let listener = ClusterListener::spawn(
            socket,
            server.clone(),
            tls.as_ref().map(|tls| tls.acceptor.clone()),
            config.listener,
        )
        .map_err(|err| listener_error(err.to_string()))?;

        let local = MemberInfo {
            name: config.name.clone(),
            cluster_addr: advertise.clone(),
            http_addr,
            pid: std::process::id(),
            incarnation: unix_ms_now(),
        };
        let (view_tx, view_rx) = watch::channel(MembershipView {
            local: config.name.clone(),
            expected: config.expected,
            members: Default::default(),
        });
        let (events_tx, _) = broadcast::channel(EVENT_CAPACITY);
        let dialer = DialerConfig {
            handshake_timeout: config.listener.handshake_timeout,
            ..DialerConfig::default()
        };
        let args = MembershipArgs {
            local: local.clone(),
            expected: config.expected,
            detector: config.detector,
            dialer,
            seeds: config.seeds.clone(),
            listen: bound,
            server: server.clone(),
            tls: tls.map(|tls| tls.connector),
            socket: config.listener.socket,
            view_tx,
            events_tx: events_tx.clone(),
        };
        let (membership, _) = Actor::spawn(Some("bazaar.membership".into()), Membership, args)
            .await
            .map_err(|err| StartError::Membership(err.to_string()))?;
        // Lanes are plain TCP: with TLS between nodes, service messages stay
        // on the (encrypted) ractor_cluster sessions.
        let lanes = match config.tls {
            Some(_) => None,
            None => Some(
                Lanes::start(bound.ip(), advertise_host, &config.name)
                    .await
                    .map_err(listener_error)?,
            ),
        };
        tracing::info!(
            node = %config.name,
            listen = %bound,
            advertise = %advertise,
            seeds = ?config.seeds,
            expected = config.expected,
            tls = config.tls.is_some(),
            "cluster node started"
        );
        Ok(Self {
            listener,
            server,
            membership,
            view_rx,
            events_tx,
            local,
            lanes,
        })
    }

    /// The address the cluster listener is bound to.
    pub fn listen_addr(&self) -> SocketAddr {
        self.listener.local_addr()
    }

    /// This node's self-description.
    pub fn local(&self) -> &MemberInfo {
        &self.local
    }

    /// The current membership view.
    pub fn view(&self) -> MembershipView {
        self.view_rx.borrow().clone()
    }

    /// A receiver that sees every new view.
    pub fn watch(&self) -> watch::Receiver<MembershipView> {
        self.view_rx.clone()
    }

    /// Membership changes from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<MemberEvent> {
        self.events_tx.subscribe()
    }

    /// Stops accepting, then stops membership and the NodeServer, closing
    /// every session.
    pub async fn shutdown(self) {
        if let Some(lanes) = self.lanes {
            lanes.shutdown().await;
        }
        drop(self.listener);
        let _ = self
            .membership
            .stop_and_wait(Some("shutdown".into()), None)
            .await;
        let _ = self
            .server
            .stop_and_wait(Some("shutdown".into()), None)
            .await;
    }
}

/// The loopback address of `ip`'s family: where ractor_cluster's own
/// listener lives for the moment before it is retired.
fn loopback_like(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(_) => IpAddr::V6(Ipv6Addr::LOCALHOST),
    }
}

/// Unlinks ractor_cluster's own listener from the NodeServer (which would
/// otherwise start it again) and kills it, closing its socket. Returns how
/// many listeners were retired.
async fn retire_builtin_listener(server: &ActorRef<NodeServerMessage>) -> usize {
    let server_cell = server.get_cell();
    let mut retired = 0;
    for child in server_cell.get_children() {
        // The NodeServer supervises its listener and its sessions only.
        if child.is_message_type_of::<NodeSessionMessage>() != Some(false) {
            continue;
        }
        child.unlink(server_cell.clone());
        if let Err(error) = child.kill_and_wait(Some(RETIRE_TIMEOUT)).await {
            tracing::warn!(%error, "ractor_cluster listener did not stop in time");
        }
        retired += 1;
    }
    retired
}
