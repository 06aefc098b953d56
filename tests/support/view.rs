//! The shape of `GET /api/cluster`, typed for assertions: the answering
//! node, its quorum, and every member it knows (itself included).
//!
//! Written apart from the gateway's own types on purpose: the tests check
//! the JSON a client sees, not a round trip through the server's structs.

use std::collections::BTreeSet;

use serde::Deserialize;

/// One member as a node reports it in `GET /api/cluster`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct MemberView {
    /// Node name (`n1`).
    pub name: String,
    /// Cluster transport address.
    pub cluster_addr: String,
    /// HTTP gateway address.
    pub http_addr: String,
    /// Process id of the member.
    pub pid: u32,
    /// Start time of this life of the member, ms since the Unix epoch.
    pub incarnation: u64,
    /// `up`, `suspect` or `down`.
    pub state: String,
    /// When the state last changed, ms since the Unix epoch.
    pub since_ms: u64,
}

/// The whole `GET /api/cluster` answer of one node.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ClusterView {
    /// The node that answered.
    pub node: String,
    /// Whether it sees a majority of the expected cluster.
    pub quorum: bool,
    /// Every member it knows, itself included.
    pub members: Vec<MemberView>,
}

impl ClusterView {
    /// The member named `name`, if listed.
    pub fn member(&self, name: &str) -> Option<&MemberView> {
        self.members.iter().find(|m| m.name == name)
    }

    /// Names of the members listed as `up`.
    pub fn up_names(&self) -> BTreeSet<String> {
        self.members
            .iter()
            .filter(|m| m.state == "up")
            .map(|m| m.name.clone())
            .collect()
    }
}
