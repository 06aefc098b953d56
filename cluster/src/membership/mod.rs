//! Membership: who is in the cluster, who is alive, and keeping the mesh
//! connected — what ractor_cluster alone does not do.
//!
//! ```text
//! Membership (actor)
//! └── MembershipInbox   remotable, in pg group "bazaar.membership"
//! ```
//!
//! The membership actor
//! - follows ractor_cluster's session events (opened, authenticated, ready,
//!   disconnected) through a NodeServer subscription;
//! - dials seeds and every peer it has heard of, with backoff, for as long
//!   as no ready session reaches them ([`dialer`]), so a restarted node
//!   rejoins and a node started before its seeds joins when they come up;
//! - sends a [`Heartbeat`] to every peer's inbox each heartbeat interval and
//!   feeds what arrives into the pure [`MembershipTable`], which decides
//!   up / suspect / down;
//! - stops the session of a peer declared down, so that pg groups and
//!   monitors on this node see the loss (a frozen process keeps its TCP
//!   connection open; only heartbeats reveal it);
//! - stops sessions that do not authenticate within the handshake timeout;
//! - publishes the view (a `watch`) and its changes (a `broadcast`), and
//!   mirrors them in metrics: `bazaar_membership_changes_total{event}`
//!   (`up`, `suspect`, `down`), the gauges `bazaar_members{state}` and
//!   `bazaar_quorum` (0 or 1).
//!
//! A wrong cookie shows on the dialing side only as the peer closing the
//! connection during the handshake; that is logged as a rejected cookie.

mod dial;
pub mod dialer;
mod inbox;
pub mod protocol;
mod report;
mod sessions;
pub mod table;

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use ractor_cluster::node::NodeServerSessionInformation;
use ractor_cluster::{NodeEventSubscription, NodeServerMessage};
use tokio::sync::{broadcast, watch};

pub use dialer::{Dialer, DialerConfig};
pub use inbox::MembershipInbox;
pub use protocol::{Heartbeat, MEMBERSHIP_GROUP};
pub use table::{DetectorConfig, MembershipTable, Moment};

use crate::codec::Wire;
use crate::listener::socket::SocketConfig;
use crate::member::{MemberEvent, MemberInfo, MemberState, MembershipView};
use dial::{spawn_dial, DialContext};
use report::{count_event, log_event, record_view};
use sessions::Sessions;
use tokio_rustls::TlsConnector;

/// How often the membership actor checks timeouts and dials.
const TICK_INTERVAL: Duration = Duration::from_millis(50);
/// Longest wait for a TCP connect to a peer.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// Messages of the membership actor (local only).
#[derive(Debug)]
pub enum MembershipMsg {
    /// A NodeServer session event.
    SessionChanged(SessionChange, NodeServerSessionInformation),
    /// A heartbeat arrived through the inbox.
    HeartbeatReceived(Heartbeat),
    /// Time to check timeouts, dial and send heartbeats.
    Tick,
    /// A dial attempt finished: the peer's socket address, or why it failed.
    DialFinished {
        /// The target as the dialer knows it.
        target: String,
        /// Connected socket address, or the error.
        result: Result<SocketAddr, String>,
    },
    /// Returns the current view.
    GetView(RpcReplyPort<MembershipView>),
}

impl ractor::Message for MembershipMsg {}

/// What happened to a session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SessionChange {
    /// TCP connection handed over.
    Opened,
    /// Cookie challenge passed.
    Authenticated,
    /// State exchange done.
    Ready,
    /// Session ended.
    Disconnected,
}

/// Start arguments of the membership actor.
pub struct MembershipArgs {
    /// This node's self-description.
    pub local: MemberInfo,
    /// Expected cluster size.
    pub expected: usize,
    /// Failure detector timing.
    pub detector: DetectorConfig,
    /// Dialer timing.
    pub dialer: DialerConfig,
    /// Addresses to dial from the start.
    pub seeds: Vec<String>,
    /// This node's listen address, never dialed.
    pub listen: SocketAddr,
    /// The NodeServer whose sessions are followed.
    pub server: ActorRef<NodeServerMessage>,
    /// Mutual TLS for dialed sessions; `None` for plain TCP.
    pub tls: Option<TlsConnector>,
    /// Socket options of dialed connections.
    pub socket: SocketConfig,
    /// Where the view is published.
    pub view_tx: watch::Sender<MembershipView>,
    /// Where changes are published.
    pub events_tx: broadcast::Sender<MemberEvent>,
}

/// The membership actor.
pub struct Membership;

/// Runtime state of the membership actor.
pub struct MembershipState {
    table: MembershipTable,
    dialer: Dialer,
    sessions: Sessions,
    /// Dial targets and the socket address they last resolved to.
    resolved: HashMap<String, String>,
    /// Node names behind dialed socket addresses, learned from handshakes,
    /// so that a seed given as `localhost:7071` is known to be reached by a
    /// session from a peer advertising `127.0.0.1:7071`.
    names_by_addr: HashMap<String, String>,
    own_addrs: HashSet<String>,
    last_heartbeat_sent: Option<Instant>,
    handshake_timeout: Duration,
    server: ActorRef<NodeServerMessage>,
    dial: DialContext,
    view_tx: watch::Sender<MembershipView>,
    events_tx: broadcast::Sender<MemberEvent>,
    _ticker: JoinHandle<()>,
}

/// Forwards NodeServer events to the membership actor.
struct SessionEvents(ActorRef<MembershipMsg>);

impl SessionEvents {
    fn forward(&self, change: SessionChange, info: NodeServerSessionInformation) {
        let _ = self.0.cast(MembershipMsg::SessionChanged(change, info));
    }
}

impl NodeEventSubscription for SessionEvents {
    fn node_session_opened(&self, ses: NodeServerSessionInformation) {
        self.forward(SessionChange::Opened, ses);
    }
    fn node_session_disconnected(&self, ses: NodeServerSessionInformation) {
        self.forward(SessionChange::Disconnected, ses);
    }
    fn node_session_authenticated(&self, ses: NodeServerSessionInformation) {
        self.forward(SessionChange::Authenticated, ses);
    }
    fn node_session_ready(&self, ses: NodeServerSessionInformation) {
        self.forward(SessionChange::Ready, ses);
    }
}

impl Actor for Membership {
    type Msg = MembershipMsg;
    type State = MembershipState;
    type Arguments = MembershipArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: MembershipArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        args.server.cast(NodeServerMessage::SubscribeToEvents {
            id: "bazaar.membership".to_string(),
            subscription: Box::new(SessionEvents(myself.clone())),
        })?;
        Actor::spawn_linked(None, MembershipInbox, myself.clone(), myself.get_cell()).await?;

        let now = Moment::now();
        let own_addrs: HashSet<String> =
            [args.local.cluster_addr.clone(), args.listen.to_string()].into();
        let mut dialer = Dialer::new(args.dialer);
        for seed in args.seeds.iter().filter(|seed| !own_addrs.contains(*seed)) {
            dialer.add(seed, now.instant);
        }
        let table = MembershipTable::new(args.local, args.expected, args.detector, now);
        let view = table.view();
        record_view(&view);
        args.view_tx.send_replace(view);
        let ticker = myself.send_interval(TICK_INTERVAL, || MembershipMsg::Tick);
        Ok(MembershipState {
            table,
            dialer,
            sessions: Sessions::default(),
            resolved: HashMap::new(),
            names_by_addr: HashMap::new(),
            own_addrs,
            last_heartbeat_sent: None,
            handshake_timeout: args.dialer.handshake_timeout,
            dial: DialContext {
                server: args.server.clone(),
                tls: args.tls,
                socket: args.socket,
                handshake_timeout: args.dialer.handshake_timeout,
                listen: args.listen,
            },
            server: args.server,
            view_tx: args.view_tx,
            events_tx: args.events_tx,
            _ticker: ticker,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state._ticker.abort();
        let _ = state.server.cast(NodeServerMessage::UnsubscribeToEvents(
            "bazaar.membership".to_string(),
        ));
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let now = Moment::now();
        let events = match message {
            MembershipMsg::SessionChanged(change, info) => state.on_session(change, &info, now),
            MembershipMsg::HeartbeatReceived(heartbeat) => state.on_heartbeat(heartbeat, now),
            MembershipMsg::Tick => state.on_tick(&myself, now),
            MembershipMsg::DialFinished { target, result } => {
                match result {
                    Ok(addr) => {
                        state.resolved.insert(target, addr.to_string());
                    }
                    Err(error) => {
                        tracing::debug!(peer = %target, %error, "dial failed");
                        state.dialer.failed(&target, now.instant);
                    }
                }
                Vec::new()
            }
            MembershipMsg::GetView(reply) => {
                let _ = reply.send(state.table.view());
                Vec::new()
            }
        };
        state.publish(events);
        Ok(())
    }
}

impl MembershipState {
    fn on_session(
        &mut self,
        change: SessionChange,
        info: &NodeServerSessionInformation,
        now: Moment,
    ) -> Vec<MemberEvent> {
        match change {
            SessionChange::Opened => {
                self.sessions.opened(info, now.instant);
                Vec::new()
            }
            SessionChange::Authenticated => {
                self.sessions.authenticated(info, now.instant);
                Vec::new()
            }
            SessionChange::Ready => match self.sessions.ready(info, now.instant) {
                Some(name) => {
                    tracing::debug!(peer = %name, addr = %info.peer_addr, "session ready");
                    if !info.is_server {
                        self.names_by_addr
                            .insert(info.peer_addr.clone(), name.clone());
                    }
                    self.table.session_ready(&name, now)
                }
                None => Vec::new(),
            },
            SessionChange::Disconnected => {
                let Some(session) = self.sessions.closed(info) else {
                    return Vec::new();
                };
                if !session.authenticated {
                    self.on_failed_handshake(&session);
                    return Vec::new();
                }
                match session.name {
                    Some(name) if !self.sessions.is_connected(&name) => {
                        self.table.session_closed(&name, now)
                    }
                    _ => Vec::new(),
                }
            }
        }
    }

    fn on_failed_handshake(&mut self, session: &sessions::Session) {
        if session.inbound {
            tracing::debug!(peer = %session.peer_addr, "inbound session closed before authentication");
            return;
        }
        // A peer names itself in its cookie challenge. Refused before that,
        // the session lost ractor_cluster's election against another one
        // (both sides dialed at once); refused after, with no other session
        // to that peer, the cookie did not match.
        let Some(name) = &session.name else {
            tracing::debug!(peer = %session.peer_addr, "peer refused the session before the challenge");
            return;
        };
        if self.sessions.is_connected(name) {
            tracing::debug!(peer = %name, addr = %session.peer_addr, "duplicate session closed during handshake");
            self.names_by_addr
                .insert(session.peer_addr.clone(), name.clone());
            return;
        }
        tracing::error!(
            peer = %name,
            addr = %session.peer_addr,
            "cookie rejected: the peer closed the connection during the handshake, check that every node uses the same cluster cookie"
        );
    }

    fn on_heartbeat(&mut self, heartbeat: Heartbeat, now: Moment) -> Vec<MemberEvent> {
        for addr in std::iter::once(&heartbeat.from.cluster_addr).chain(&heartbeat.peers) {
            if !self.own_addrs.contains(addr) {
                self.dialer.add(addr, now.instant);
            }
        }
        self.table.heartbeat(heartbeat.from, now)
    }

    fn on_tick(&mut self, myself: &ActorRef<MembershipMsg>, now: Moment) -> Vec<MemberEvent> {
        let (events, to_stop) = self.table.tick(now);
        for name in to_stop {
            let stopped = self.sessions.stop_peer(&name, "heartbeat timeout");
            tracing::debug!(peer = %name, sessions = stopped, "stopped sessions of a silent peer");
        }
        self.sessions
            .stop_stalled(self.handshake_timeout, now.instant);

        let mut reached = self.sessions.ready_addrs();
        for (target, addr) in &self.resolved {
            let by_name = self
                .names_by_addr
                .get(addr)
                .is_some_and(|name| self.sessions.is_connected(name));
            if by_name || reached.contains(addr) {
                reached.insert(target.clone());
            }
        }
        self.dialer.set_connected(&reached, now.instant);
        for target in self.dialer.due(now.instant) {
            spawn_dial(self.dial.clone(), myself.clone(), target);
        }

        let interval = self.table.config().heartbeat_interval;
        let heartbeat_due = self
            .last_heartbeat_sent
            .is_none_or(|sent| now.instant.saturating_duration_since(sent) >= interval);
        if heartbeat_due {
            self.last_heartbeat_sent = Some(now.instant);
            self.send_heartbeats();
        }
        events
    }

    fn send_heartbeats(&self) {
        let view = self.table.view();
        let heartbeat = Heartbeat {
            from: self.table.local().clone(),
            peers: view
                .peers()
                .filter(|member| member.state == MemberState::Up)
                .map(|member| member.info.cluster_addr.clone())
                .collect(),
        };
        for cell in ractor::pg::get_members(&MEMBERSHIP_GROUP.to_string()) {
            if cell.get_id().is_local() {
                continue;
            }
            let inbox: ActorRef<Wire<Heartbeat>> = cell.into();
            // A send to a peer whose session just closed fails; the session
            // events report that loss.
            let _ = inbox.cast(Wire::Value(heartbeat.clone()));
        }
    }

    fn publish(&mut self, events: Vec<MemberEvent>) {
        if events.is_empty() {
            return;
        }
        for event in events {
            log_event(&event);
            count_event(&event);
            // No subscriber is not an error.
            let _ = self.events_tx.send(event);
        }
        let view = self.table.view();
        record_view(&view);
        self.view_tx.send_replace(view);
    }
}
