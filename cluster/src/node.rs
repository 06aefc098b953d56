//! A running cluster node: the ractor_cluster NodeServer plus the
//! membership that keeps it meshed and watched.
//!
//! ```text
//! ClusterNode
//! ├── NodeServer (ractor_cluster)   listener + one NodeSession per peer
//! └── Membership                    see `membership`
//!     └── MembershipInbox
//! ```
//!
//! The listener binds only the configured address. The NodeServer runs in
//! isolated mode: the membership actor decides whom to dial, so there is one
//! dialing policy (with backoff) rather than two.

use std::net::SocketAddr;

use ractor::{Actor, ActorRef};
use ractor_cluster::node::NodeConnectionMode;
use ractor_cluster::{NodeServer, NodeServerMessage};
use tokio::sync::{broadcast, watch};

use crate::codec::MAX_FRAME_BYTES;
use crate::config::NodeConfig;
use crate::member::{MemberEvent, MemberInfo, MembershipView};
use crate::membership::table::unix_ms_now;
use crate::membership::{DialerConfig, Membership, MembershipArgs, MembershipMsg};

/// Capacity of the membership event channel; a subscriber that lags
/// further loses the oldest events and is told so by `broadcast`.
const EVENT_CAPACITY: usize = 1024;

/// Why a node could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The cluster listener could not start (address in use, for instance).
    #[error("cannot start the cluster listener on {addr}: {reason}")]
    Listener {
        /// The listen address.
        addr: SocketAddr,
        /// What ractor_cluster reported.
        reason: String,
    },
    /// The membership actor could not start.
    #[error("cannot start membership: {0}")]
    Membership(String),
}

/// Handle on a running node.
pub struct ClusterNode {
    server: ActorRef<NodeServerMessage>,
    membership: ActorRef<MembershipMsg>,
    view_rx: watch::Receiver<MembershipView>,
    events_tx: broadcast::Sender<MemberEvent>,
    local: MemberInfo,
}

impl ClusterNode {
    /// Starts the node: binds the listener, starts membership, begins dialing seeds.
    pub async fn start(config: NodeConfig, http_addr: String) -> Result<Self, StartError> {
        let (advertise_host, advertise_port) = config.advertise_host_port();
        // Bind first so that "address in use" is a clear error rather than a
        // failed actor deep inside ractor_cluster.
        let probe =
            std::net::TcpListener::bind(config.listen).map_err(|err| StartError::Listener {
                addr: config.listen,
                reason: err.to_string(),
            })?;
        let listen_port = probe.local_addr().map(|a| a.port()).unwrap_or(0);
        drop(probe);

        let server = NodeServer::new(
            listen_port,
            config.cookie.expose().to_string(),
            config.name.clone(),
            advertise_host.to_string(),
            None,
            Some(NodeConnectionMode::Isolated),
        )
        .with_listen_addr(config.listen.ip())
        .with_max_inbound_frame_size(MAX_FRAME_BYTES);
        let (server, _) = Actor::spawn(Some("bazaar.node_server".into()), server, ())
            .await
            .map_err(|err| StartError::Listener {
                addr: config.listen,
                reason: err.to_string(),
            })?;
        if advertise_port != listen_port {
            // The name a node announces carries host:port; advertise the
            // address peers must dial, not the one bound here.
            let _ = server.cast(NodeServerMessage::PortChanged {
                port: advertise_port,
            });
        }

        let local = MemberInfo {
            name: config.name.clone(),
            cluster_addr: config.advertise.clone(),
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
        let args = MembershipArgs {
            local: local.clone(),
            expected: config.expected,
            detector: config.detector,
            dialer: DialerConfig::default(),
            seeds: config.seeds.clone(),
            listen: config.listen,
            server: server.clone(),
            view_tx,
            events_tx: events_tx.clone(),
        };
        let (membership, _) = Actor::spawn(Some("bazaar.membership".into()), Membership, args)
            .await
            .map_err(|err| StartError::Membership(err.to_string()))?;
        tracing::info!(
            node = %config.name,
            listen = %config.listen,
            advertise = %config.advertise,
            seeds = ?config.seeds,
            expected = config.expected,
            "cluster node started"
        );
        Ok(Self {
            server,
            membership,
            view_rx,
            events_tx,
            local,
        })
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

    /// Stops membership and the NodeServer, closing every session.
    pub async fn shutdown(self) {
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
