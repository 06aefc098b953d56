//! What a node knows about the members of its cluster: the types of the
//! membership view that the rest of the process reads.
//!
//! A view is a snapshot; changes arrive as [`MemberEvent`]s. Names are the
//! identity of a node across restarts; the incarnation tells two lives of
//! the same name apart.

use std::collections::BTreeMap;

use ractor::ActorRef;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// How a node describes itself to its peers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MemberInfo {
    /// Node name, unique in the cluster (`n1`).
    pub name: String,
    /// Address peers dial for the cluster transport (`127.0.0.1:7071`).
    pub cluster_addr: String,
    /// Address of the node's HTTP gateway (`127.0.0.1:8081`).
    pub http_addr: String,
    /// Operating system process id.
    pub pid: u32,
    /// Start time of this life of the node, in ms since the Unix epoch;
    /// a restarted node has a higher incarnation.
    pub incarnation: u64,
}

/// Liveness of a member as this node sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MemberState {
    /// Session ready and heartbeats arriving.
    Up,
    /// Heartbeats late; still connected.
    Suspect,
    /// Session closed or heartbeats missing past the timeout.
    Down,
}

impl MemberState {
    /// True for `up` and `suspect`: suspicion is not a verdict, a suspected
    /// member still counts towards the quorum until it is declared down.
    pub fn is_reachable(self) -> bool {
        matches!(self, Self::Up | Self::Suspect)
    }

    /// Lowercase name, as shown in the API and logs.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Up => "up",
            Self::Suspect => "suspect",
            Self::Down => "down",
        }
    }
}

/// One member in the view.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Member {
    /// What the member said about itself.
    pub info: MemberInfo,
    /// Current state.
    pub state: MemberState,
    /// When the state last changed, in ms since the Unix epoch.
    pub since_ms: u64,
}

/// A snapshot of the membership as one node sees it, itself included.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipView {
    /// The node holding this view.
    pub local: String,
    /// Expected cluster size, the basis of the quorum.
    pub expected: usize,
    /// Members by name.
    pub members: BTreeMap<String, Member>,
}

impl MembershipView {
    /// Members currently up, this node included.
    pub fn up_count(&self) -> usize {
        self.members
            .values()
            .filter(|member| member.state == MemberState::Up)
            .count()
    }

    /// Members not down (up or suspect), this node included.
    pub fn reachable_count(&self) -> usize {
        self.members
            .values()
            .filter(|member| member.state.is_reachable())
            .count()
    }

    /// True when this node reaches a strict majority of the expected size.
    pub fn has_quorum(&self) -> bool {
        has_quorum(self.reachable_count(), self.expected)
    }

    /// Members other than this node.
    pub fn peers(&self) -> impl Iterator<Item = &Member> {
        self.members
            .values()
            .filter(move |member| member.info.name != self.local)
    }
}

/// Majority rule: `up` members out of `expected` form a quorum.
pub fn has_quorum(up: usize, expected: usize) -> bool {
    up > expected / 2
}

/// Casts `message()` to `actor` every time `view` changes, until the view's
/// sender is gone or the actor stopped: how an actor reacts to membership
/// at once instead of at its next tick.
pub fn cast_on_change<M: ractor::Message>(
    mut view: watch::Receiver<MembershipView>,
    actor: ActorRef<M>,
    message: impl Fn() -> M + Send + 'static,
) -> JoinHandle<()> {
    tokio::spawn(async move {
        while view.changed().await.is_ok() {
            if actor.cast(message()).is_err() {
                return;
            }
        }
    })
}

/// A change in the membership, published to subscribers in the process.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberEvent {
    /// A member became up (first join, rejoin, or a new incarnation).
    MemberUp(MemberInfo),
    /// A member's heartbeats are late.
    MemberSuspected(MemberInfo),
    /// A member was declared down.
    MemberDown {
        /// The member.
        info: MemberInfo,
        /// Why: `session closed` or `heartbeat timeout`.
        reason: DownReason,
    },
    /// This node gained or lost the quorum.
    QuorumChanged(bool),
}

/// Why a member was declared down.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DownReason {
    /// The transport session closed (process died, connection reset).
    SessionClosed,
    /// No heartbeat within the failure timeout (frozen or cut off).
    HeartbeatTimeout,
}

impl DownReason {
    /// Lowercase description for logs and the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::SessionClosed => "session closed",
            Self::HeartbeatTimeout => "heartbeat timeout",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quorum_is_a_strict_majority() {
        assert!(!has_quorum(1, 3));
        assert!(has_quorum(2, 3));
        assert!(has_quorum(1, 1));
        assert!(!has_quorum(2, 4));
        assert!(has_quorum(3, 4));
        assert!(has_quorum(3, 5));
    }
}
