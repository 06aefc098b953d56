//! The service host's contract.

use bazaar_cluster::remote::Protocol;
use serde::{Deserialize, Serialize};

use crate::supervision::TreeReport;

/// Every node's service host.
pub const NODE_GROUP: &str = "bazaar.node";

/// The service host's protocol.
pub struct HostProtocol;

impl Protocol for HostProtocol {
    const NAME: &'static str = "bazaar.node.v1";
    type Request = HostRequest;
    type Reply = HostReply;
}

/// Requests to a service host.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum HostRequest {
    /// This node's services and trees (call).
    Report,
    /// Membership changed: compare placement with what runs (cast).
    Reconcile,
    /// A backoff after an escalation ended: start `service` if placed here (cast).
    Restart(String),
}

/// Replies of a service host.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum HostReply {
    /// The node's report.
    Report(Box<NodeReport>),
    /// Done.
    Ack,
}

/// One node's services and their supervision.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct NodeReport {
    /// The node.
    pub node: String,
    /// Services placed here.
    pub services: Vec<ServiceStatus>,
    /// The node's supervision tree: the host and every service below it.
    pub tree: TreeReport,
}

/// A service placed on a node.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ServiceStatus {
    /// Service name.
    pub name: String,
    /// Its role here: `replica`, `owner`, `standby`, `shards`.
    pub role: String,
    /// `running`, or `restarting` after an escalation.
    pub status: String,
    /// Restarts of actors inside the service's tree.
    pub restarts: u64,
    /// Times the service exhausted its restart budget and was restarted whole.
    pub escalations: u64,
    /// Messages the service handled on this node since the node started
    /// (see [`super::traffic`]); rates come from two successive reports.
    #[serde(default)]
    pub handled: u64,
}
