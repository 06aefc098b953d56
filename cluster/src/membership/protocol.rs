//! The membership protocol: what nodes tell each other about themselves.

use serde::{Deserialize, Serialize};

use crate::codec::WireMessage;
use crate::member::MemberInfo;

/// pg group joined by every node's membership inbox.
pub const MEMBERSHIP_GROUP: &str = "bazaar.membership";

/// A heartbeat, sent to every peer every heartbeat interval.
///
/// It doubles as gossip: `peers` lists the cluster addresses of the members
/// the sender sees up, so a node that knows one seed finds the whole mesh.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Heartbeat {
    /// The sender, as it describes itself.
    pub from: MemberInfo,
    /// Cluster addresses of the members the sender sees up.
    pub peers: Vec<String>,
}

impl WireMessage for Heartbeat {
    const PROTOCOL: &'static str = "bazaar.membership.heartbeat.v1";
}
