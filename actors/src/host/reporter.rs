//! The host's reporter: answers `Report` for `/api/cluster` from the
//! status the reconciler publishes, so a report never waits behind a
//! service that is starting.

use std::time::Duration;

use bazaar_cluster::directory;
use bazaar_cluster::placement::Role;
use bazaar_cluster::remote::{self, ServiceMsg};
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::watch;

use super::protocol::{
    HostProtocol, HostReply, HostRequest, NodeReport, ServiceStatus, NODE_GROUP,
};
use super::reconciler::HostStatus;
use super::traffic;
use crate::supervision::{tree_of, TreeReport};

/// Timeout for a service supervisor's tree.
const TREE_TIMEOUT: Duration = Duration::from_millis(150);

/// Start arguments of the reporter.
pub struct ReporterArgs {
    /// This node's name.
    pub node: String,
    /// What the reconciler publishes.
    pub status: watch::Receiver<HostStatus>,
}

/// Answers reports for this node's host.
pub struct HostReporter;

impl Actor for HostReporter {
    type Msg = ServiceMsg<HostProtocol>;
    type State = ReporterArgs;
    type Arguments = ReporterArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ReporterArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        directory::join(NODE_GROUP, &args.node, &myself);
        Ok(args)
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let Some((request, reply)) = message.into_parts() else {
            return Ok(());
        };
        let answer = match request {
            HostRequest::Report => {
                let status = state.status.borrow().clone();
                HostReply::Report(Box::new(report(&state.node, &myself, status).await))
            }
            // Placement work belongs to the reconciler.
            HostRequest::Reconcile | HostRequest::Restart(_) => HostReply::Ack,
        };
        remote::answer(reply, answer);
        Ok(())
    }
}

/// The node's services and trees; supervisors are asked all at once, so one
/// slow tree costs one timeout.
async fn report(
    node: &str,
    reporter: &ActorRef<ServiceMsg<HostProtocol>>,
    status: HostStatus,
) -> NodeReport {
    let mut asks = tokio::task::JoinSet::new();
    for (name, service) in &status.services {
        if let Some(supervisor) = service.supervisor.clone() {
            let name = name.clone();
            asks.spawn(async move { (name, tree_of(&supervisor, TREE_TIMEOUT).await) });
        }
    }
    let mut trees = std::collections::BTreeMap::new();
    while let Some(Ok((name, tree))) = asks.join_next().await {
        if let Some(tree) = tree {
            trees.insert(name, tree);
        }
    }
    let mut services = Vec::new();
    let mut children = Vec::new();
    for (name, service) in status.services {
        let running = service.supervisor.is_some();
        let mut tree = trees.remove(&name).unwrap_or_else(|| TreeReport {
            name: name.clone(),
            actor_id: String::new(),
            kind: "supervisor".into(),
            strategy: None,
            restarts: 0,
            failures: 0,
            status: if running { "starting" } else { "restarting" }.into(),
            children: Vec::new(),
        });
        // The host is the service supervisor's parent: its counters are the
        // host's restarts of the whole service.
        tree.restarts = service.escalations;
        tree.failures = service.escalations;
        let handled = traffic::of_service(&name).map_or(0, traffic::Handled::total);
        services.push(ServiceStatus {
            name,
            role: role_name(&service.role).into(),
            status: if running { "running" } else { "restarting" }.into(),
            restarts: restarts_below(&tree),
            escalations: service.escalations,
            handled,
        });
        children.push(tree);
    }
    NodeReport {
        node: node.to_string(),
        services,
        tree: TreeReport {
            name: format!("host@{node}"),
            actor_id: reporter.get_id().to_string(),
            kind: "supervisor".into(),
            strategy: Some("placement".into()),
            restarts: 0,
            failures: 0,
            status: "running".into(),
            children,
        },
    }
}

/// Restarts of every actor below `tree` (not of `tree` itself).
fn restarts_below(tree: &TreeReport) -> u64 {
    tree.children
        .iter()
        .map(|child| child.restarts + restarts_below(child))
        .sum()
}

fn role_name(role: &Role) -> &'static str {
    match role {
        Role::Replica => "replica",
        Role::Owner => "owner",
        Role::Standby => "standby",
        Role::Shards { .. } => "shards",
    }
}
