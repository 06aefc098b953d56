//! The shape of `GET /api/cluster`, typed for assertions: the answering
//! node, its quorum, every member it knows (itself included), and the
//! services and supervision trees of every node that answered it.
//!
//! Written apart from the gateway's own types on purpose: the tests check
//! the JSON a client sees, not a round trip through the server's structs.

use std::collections::{BTreeMap, BTreeSet};

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
    /// Per node that answered in time: the services placed there.
    #[serde(default)]
    pub services: BTreeMap<String, Vec<ServiceView>>,
    /// Per node that answered in time: its supervision tree.
    #[serde(default)]
    pub trees: BTreeMap<String, TreeView>,
}

/// A service placed on a node, in `services`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct ServiceView {
    /// `catalog`, `search` or `auth`.
    pub name: String,
    /// `replica` for the replicated services.
    pub role: String,
    /// `running`, or `restarting` after an escalation.
    pub status: String,
    /// Restarts of actors inside the service's tree.
    pub restarts: u64,
    /// Times the service was restarted whole after exhausting its budget.
    pub escalations: u64,
    /// Messages the service handled on that node since it started.
    pub handled: u64,
}

/// One node of a supervision tree, in `trees`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct TreeView {
    /// Name given by the parent: `host@n1`, `catalog`, `catalog-worker-1`.
    pub name: String,
    /// Actor id of the current incarnation, empty while restarting.
    pub actor_id: String,
    /// `supervisor` or `worker`.
    pub kind: String,
    /// Restart strategy of a supervisor.
    pub strategy: Option<String>,
    /// Times the parent restarted this node.
    pub restarts: u64,
    /// Times this node failed.
    pub failures: u64,
    /// `running`, `restarting` or `stopped`.
    pub status: String,
    /// Children in start order.
    pub children: Vec<TreeView>,
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

    /// Service `service` as placed on `node`, if `node` answered.
    pub fn service(&self, node: &str, service: &str) -> Option<&ServiceView> {
        self.services.get(node)?.iter().find(|s| s.name == service)
    }

    /// `(name, restarts)` of every `{service}-worker-*` child of the
    /// supervisor of `service` in `node`'s tree; empty if not reported.
    pub fn workers(&self, node: &str, service: &str) -> Vec<(String, u64)> {
        let prefix = format!("{service}-worker-");
        let Some(supervisor) = self.trees.get(node).and_then(|tree| tree.find(service)) else {
            return Vec::new();
        };
        supervisor
            .children
            .iter()
            .filter(|child| child.name.starts_with(&prefix))
            .map(|child| (child.name.clone(), child.restarts))
            .collect()
    }
}

impl TreeView {
    /// The first node named `name` in this subtree, depth first.
    pub fn find(&self, name: &str) -> Option<&TreeView> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|child| child.find(name))
    }
}
