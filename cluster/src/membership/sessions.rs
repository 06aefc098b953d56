//! The transport sessions ractor_cluster holds with peers, as the
//! membership actor tracks them from the NodeServer's events.
//!
//! ractor_cluster may hold several sessions per peer for a moment (both
//! sides dialed at once); it elects one and stops the others. A peer is
//! connected while at least one authenticated session to it remains.

use std::collections::{HashMap, HashSet};
use std::time::{Duration, Instant};

use ractor::{ActorId, ActorRef};
use ractor_cluster::node::NodeServerSessionInformation;
use ractor_cluster::NodeSessionMessage;

/// One transport session.
#[derive(Debug)]
pub struct Session {
    /// The NodeSession actor, stopped to drop the peer.
    pub actor: ActorRef<NodeSessionMessage>,
    /// Peer node name, known once it introduced itself.
    pub name: Option<String>,
    /// Address the peer advertises for dialing.
    pub advertised: Option<String>,
    /// Remote socket address (the dialed address for outgoing sessions).
    pub peer_addr: String,
    /// True when the peer dialed us.
    pub inbound: bool,
    /// When the TCP connection was handed to ractor_cluster.
    pub opened_at: Instant,
    /// Cookie challenge passed.
    pub authenticated: bool,
    /// State exchange (pg) finished.
    pub ready: bool,
}

/// All sessions of this node.
#[derive(Debug, Default)]
pub struct Sessions {
    by_actor: HashMap<ActorId, Session>,
}

/// The node name in a ractor_cluster peer name (`n1@host` gives `n1`).
fn node_name(full: &str) -> String {
    full.split('@').next().unwrap_or(full).to_string()
}

impl Sessions {
    fn entry(&mut self, info: &NodeServerSessionInformation, now: Instant) -> &mut Session {
        let session = self
            .by_actor
            .entry(info.actor.get_id())
            .or_insert_with(|| Session {
                actor: info.actor.clone(),
                name: None,
                advertised: None,
                peer_addr: info.peer_addr.clone(),
                inbound: info.is_server,
                opened_at: now,
                authenticated: false,
                ready: false,
            });
        if let Some(peer) = &info.peer_name {
            session.name = Some(node_name(&peer.name));
            session.advertised = Some(peer.connection_string.clone());
        }
        session
    }

    /// A TCP connection was handed to ractor_cluster.
    pub fn opened(&mut self, info: &NodeServerSessionInformation, now: Instant) {
        self.entry(info, now);
    }

    /// The session passed the cookie challenge.
    pub fn authenticated(&mut self, info: &NodeServerSessionInformation, now: Instant) {
        self.entry(info, now).authenticated = true;
    }

    /// The session finished its state exchange; returns the peer's name.
    pub fn ready(&mut self, info: &NodeServerSessionInformation, now: Instant) -> Option<String> {
        let session = self.entry(info, now);
        session.authenticated = true;
        session.ready = true;
        session.name.clone()
    }

    /// The session ended; returns it.
    pub fn closed(&mut self, info: &NodeServerSessionInformation) -> Option<Session> {
        let mut session = self.by_actor.remove(&info.actor.get_id())?;
        if session.name.is_none() {
            session.name = info.peer_name.as_ref().map(|peer| node_name(&peer.name));
        }
        Some(session)
    }

    /// True while an authenticated session to `name` remains.
    pub fn is_connected(&self, name: &str) -> bool {
        self.by_actor
            .values()
            .any(|session| session.authenticated && session.name.as_deref() == Some(name))
    }

    /// Addresses reached by a ready session: advertised and dialed ones.
    pub fn ready_addrs(&self) -> HashSet<String> {
        let mut addrs = HashSet::new();
        for session in self.by_actor.values().filter(|session| session.ready) {
            if let Some(advertised) = &session.advertised {
                addrs.insert(advertised.clone());
            }
            if !session.inbound {
                addrs.insert(session.peer_addr.clone());
            }
        }
        addrs
    }

    /// Stops every session to `name`; returns how many.
    pub fn stop_peer(&self, name: &str, reason: &str) -> usize {
        let mut stopped = 0;
        for session in self.by_actor.values() {
            if session.name.as_deref() == Some(name) {
                session.actor.stop(Some(reason.to_string()));
                stopped += 1;
            }
        }
        stopped
    }

    /// Stops sessions that did not authenticate within `timeout`.
    pub fn stop_stalled(&self, timeout: Duration, now: Instant) -> usize {
        let mut stopped = 0;
        for session in self.by_actor.values() {
            if !session.authenticated && now.saturating_duration_since(session.opened_at) >= timeout
            {
                tracing::debug!(peer = %session.peer_addr, "stopping session stalled in handshake");
                session.actor.stop(Some("handshake timeout".to_string()));
                stopped += 1;
            }
        }
        stopped
    }
}
