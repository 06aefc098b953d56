//! The membership table: a pure state machine from transport and heartbeat
//! observations to member states.
//!
//! It knows nothing of actors or sockets. The membership actor feeds it
//! what it sees (a heartbeat arrived, a session became ready, the last
//! session to a peer closed, time passed) and carries out what it returns:
//! events to publish and sessions to stop.
//!
//! Rules:
//! - a peer is `up` only while a ready session to it exists *and* a
//!   heartbeat of its current incarnation arrived over it;
//! - `suspect` after [`DetectorConfig::suspect_after`] without a heartbeat,
//!   `down` after [`DetectorConfig::down_after`]; a `down` for a missed
//!   heartbeat asks the caller to stop the session, so that pg groups and
//!   monitors see the loss;
//! - the close of the last session is `down` at once;
//! - an older incarnation never overrides a newer one;
//! - this node is always `up` in its own table.

use std::collections::{BTreeMap, HashMap};
use std::time::{Duration, Instant};

use crate::member::{
    has_quorum, DownReason, Member, MemberEvent, MemberInfo, MemberState, MembershipView,
};

/// Timing of the failure detector.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DetectorConfig {
    /// How often every node sends a heartbeat to every peer.
    pub heartbeat_interval: Duration,
    /// Silence after which a peer is suspected.
    pub suspect_after: Duration,
    /// Silence after which a peer is declared down and its session stopped.
    pub down_after: Duration,
}

impl Default for DetectorConfig {
    fn default() -> Self {
        Self {
            heartbeat_interval: Duration::from_millis(200),
            suspect_after: Duration::from_millis(600),
            down_after: Duration::from_millis(1500),
        }
    }
}

/// A point in time, monotonic for timeouts and wall-clock for display.
#[derive(Debug, Clone, Copy)]
pub struct Moment {
    /// Monotonic time, for timeouts.
    pub instant: Instant,
    /// Wall-clock time in ms since the Unix epoch, for `since_ms`.
    pub unix_ms: u64,
}

impl Moment {
    /// The current time.
    pub fn now() -> Self {
        Self {
            instant: Instant::now(),
            unix_ms: unix_ms_now(),
        }
    }
}

/// Wall-clock milliseconds since the Unix epoch.
pub fn unix_ms_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| elapsed.as_millis() as u64)
        .unwrap_or(0)
}

#[derive(Debug)]
struct Peer {
    member: Member,
    /// Last heartbeat over the current session; `None` after a disconnect.
    last_heard: Option<Instant>,
}

/// A change of a peer's state.
#[derive(Debug, Clone, Copy)]
enum Transition {
    Up,
    Suspect,
    Down(DownReason),
}

impl Peer {
    /// Applies `transition` now and returns the event announcing it.
    fn enter(&mut self, transition: Transition, at: Moment) -> MemberEvent {
        self.member.since_ms = at.unix_ms;
        let info = self.member.info.clone();
        match transition {
            Transition::Up => {
                self.member.state = MemberState::Up;
                MemberEvent::MemberUp(info)
            }
            Transition::Suspect => {
                self.member.state = MemberState::Suspect;
                MemberEvent::MemberSuspected(info)
            }
            Transition::Down(reason) => {
                self.member.state = MemberState::Down;
                MemberEvent::MemberDown { info, reason }
            }
        }
    }
}

/// The membership table of one node.
#[derive(Debug)]
pub struct MembershipTable {
    local: Member,
    expected: usize,
    config: DetectorConfig,
    peers: BTreeMap<String, Peer>,
    /// Peers with a ready session, and since when.
    connected: HashMap<String, Instant>,
}

impl MembershipTable {
    /// A table holding only this node.
    pub fn new(local: MemberInfo, expected: usize, config: DetectorConfig, at: Moment) -> Self {
        debug_assert!(expected >= 1, "expected cluster size must be at least 1");
        Self {
            local: Member {
                info: local,
                state: MemberState::Up,
                since_ms: at.unix_ms,
            },
            expected,
            config,
            peers: BTreeMap::new(),
            connected: HashMap::new(),
        }
    }

    /// The detector timing in use.
    pub fn config(&self) -> DetectorConfig {
        self.config
    }

    /// This node's own description.
    pub fn local(&self) -> &MemberInfo {
        &self.local.info
    }

    /// A snapshot of the view.
    pub fn view(&self) -> MembershipView {
        let mut members = BTreeMap::new();
        members.insert(self.local.info.name.clone(), self.local.clone());
        for (name, peer) in &self.peers {
            members.insert(name.clone(), peer.member.clone());
        }
        MembershipView {
            local: self.local.info.name.clone(),
            expected: self.expected,
            members,
        }
    }

    /// Every peer ever heard of, with the address to dial it at.
    pub fn known_peers(&self) -> impl Iterator<Item = &MemberInfo> {
        self.peers.values().map(|peer| &peer.member.info)
    }

    /// True if this node sees a quorum.
    pub fn has_quorum(&self) -> bool {
        let reachable = 1 + self
            .peers
            .values()
            .filter(|peer| peer.member.state.is_reachable())
            .count();
        has_quorum(reachable, self.expected)
    }

    /// A heartbeat from `info` arrived over a session.
    pub fn heartbeat(&mut self, info: MemberInfo, at: Moment) -> Vec<MemberEvent> {
        if info.name == self.local.info.name {
            return Vec::new();
        }
        let quorum_before = self.has_quorum();
        let connected = self.connected.contains_key(&info.name);
        let mut events = Vec::new();
        match self.peers.get_mut(&info.name) {
            None => {
                let state = if connected {
                    MemberState::Up
                } else {
                    MemberState::Down
                };
                if state == MemberState::Up {
                    events.push(MemberEvent::MemberUp(info.clone()));
                }
                self.peers.insert(
                    info.name.clone(),
                    Peer {
                        member: Member {
                            info,
                            state,
                            since_ms: at.unix_ms,
                        },
                        last_heard: Some(at.instant),
                    },
                );
            }
            Some(peer) => {
                if info.incarnation < peer.member.info.incarnation {
                    return Vec::new();
                }
                let new_life = info.incarnation > peer.member.info.incarnation;
                peer.member.info = info;
                peer.last_heard = Some(at.instant);
                if connected && (peer.member.state != MemberState::Up || new_life) {
                    events.push(peer.enter(Transition::Up, at));
                }
            }
        }
        self.push_quorum_change(quorum_before, &mut events);
        events
    }

    /// A session to `name` finished its handshake and state exchange.
    pub fn session_ready(&mut self, name: &str, at: Moment) -> Vec<MemberEvent> {
        if name == self.local.info.name {
            return Vec::new();
        }
        let quorum_before = self.has_quorum();
        self.connected.entry(name.to_string()).or_insert(at.instant);
        let mut events = Vec::new();
        if let Some(peer) = self.peers.get_mut(name) {
            if peer.last_heard.is_some() && peer.member.state != MemberState::Up {
                events.push(peer.enter(Transition::Up, at));
            }
        }
        self.push_quorum_change(quorum_before, &mut events);
        events
    }

    /// The last authenticated session to `name` closed.
    pub fn session_closed(&mut self, name: &str, at: Moment) -> Vec<MemberEvent> {
        let quorum_before = self.has_quorum();
        self.connected.remove(name);
        let mut events = Vec::new();
        if let Some(peer) = self.peers.get_mut(name) {
            peer.last_heard = None;
            if peer.member.state != MemberState::Down {
                events.push(peer.enter(Transition::Down(DownReason::SessionClosed), at));
            }
        }
        self.push_quorum_change(quorum_before, &mut events);
        events
    }

    /// Time passed: apply the detector's timeouts. Returns the events and
    /// the peers whose sessions must be stopped.
    pub fn tick(&mut self, at: Moment) -> (Vec<MemberEvent>, Vec<String>) {
        let quorum_before = self.has_quorum();
        let mut events = Vec::new();
        let mut to_disconnect = Vec::new();
        for (name, connected_at) in &self.connected {
            let peer = self.peers.get_mut(name);
            let last_heard = peer
                .as_ref()
                .and_then(|peer| peer.last_heard)
                .unwrap_or(*connected_at);
            let silence = at.instant.saturating_duration_since(last_heard);
            if silence >= self.config.down_after {
                to_disconnect.push(name.clone());
                if let Some(peer) = peer {
                    peer.last_heard = None;
                    if peer.member.state != MemberState::Down {
                        let down = Transition::Down(DownReason::HeartbeatTimeout);
                        events.push(peer.enter(down, at));
                    }
                }
            } else if silence >= self.config.suspect_after {
                if let Some(peer) = peer.filter(|peer| peer.member.state == MemberState::Up) {
                    events.push(peer.enter(Transition::Suspect, at));
                }
            }
        }
        for name in &to_disconnect {
            self.connected.remove(name);
        }
        self.push_quorum_change(quorum_before, &mut events);
        (events, to_disconnect)
    }

    fn push_quorum_change(&self, before: bool, events: &mut Vec<MemberEvent>) {
        let after = self.has_quorum();
        if before != after {
            events.push(MemberEvent::QuorumChanged(after));
        }
    }
}

#[cfg(test)]
mod tests;
