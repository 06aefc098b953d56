//! The reconciler: one actor per node that starts and stops the node's
//! service supervisors to match placement, restarts a service that
//! escalated, and reports the node's trees.

use std::collections::BTreeMap;
use std::time::Duration;

use bazaar_cluster::directory;
use bazaar_cluster::member::MembershipView;
use bazaar_cluster::placement::{assign, candidates, Manifest, Role};
use bazaar_cluster::remote::{self, ServiceMsg};
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::watch;

use super::manifest::{manifest, supervisor_for};
use super::protocol::{
    HostProtocol, HostReply, HostRequest, NodeReport, ServiceStatus, NODE_GROUP,
};
use crate::context::ServiceContext;
use crate::supervision::{spawn_supervisor, tree_of, SupervisorMsg, SupervisorSpec, TreeReport};

/// First wait before a service that escalated starts again; doubles per
/// escalation up to [`MAX_ESCALATION_BACKOFF`].
const ESCALATION_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait before restarting a service that escalated.
const MAX_ESCALATION_BACKOFF: Duration = Duration::from_secs(10);
/// Timeout for a service supervisor's tree.
const TREE_TIMEOUT: Duration = Duration::from_millis(150);

/// Which services are placed here and whether all of them run.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HostStatus {
    /// Services placed on this node, by name, with `true` when running.
    pub services: BTreeMap<String, bool>,
}

impl HostStatus {
    /// True when every service placed here runs (and at least one is placed).
    pub fn all_running(&self) -> bool {
        !self.services.is_empty() && self.services.values().all(|running| *running)
    }
}

/// Handle on a node's service host.
#[derive(Debug, Clone)]
pub struct HostHandle {
    /// The reconciler actor.
    pub actor: ActorRef<ServiceMsg<HostProtocol>>,
    /// Placement and running state, for readiness.
    pub status: watch::Receiver<HostStatus>,
}

/// Starts the service host of this node.
pub async fn start(
    ctx: ServiceContext,
    view: watch::Receiver<MembershipView>,
) -> Result<HostHandle, ractor::SpawnErr> {
    let (status_tx, status) = watch::channel(HostStatus::default());
    let args = ReconcilerArgs {
        ctx,
        manifest: manifest(),
        view,
        status_tx,
    };
    let (actor, _) = Actor::spawn(Some("bazaar.host".into()), Reconciler, args).await?;
    Ok(HostHandle { actor, status })
}

struct ReconcilerArgs {
    ctx: ServiceContext,
    manifest: Manifest,
    view: watch::Receiver<MembershipView>,
    status_tx: watch::Sender<HostStatus>,
}

struct RunningService {
    supervisor: Option<ActorRef<SupervisorMsg>>,
    role: Role,
    escalations: u64,
}

struct ReconcilerState {
    args: ReconcilerArgs,
    services: BTreeMap<String, RunningService>,
    /// Each service's spec, built once: the spec owns the service's state
    /// (catalog, accounts, carts), so a service restarted whole after an
    /// escalation comes back with its data instead of the seed.
    specs: BTreeMap<String, SupervisorSpec>,
}

struct Reconciler;

impl Actor for Reconciler {
    type Msg = ServiceMsg<HostProtocol>;
    type State = ReconcilerState;
    type Arguments = ReconcilerArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ReconcilerArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        directory::join(NODE_GROUP, &args.ctx.node, &myself);
        let mut changes = args.view.clone();
        let notify = myself.clone();
        tokio::spawn(async move {
            while changes.changed().await.is_ok() {
                if notify
                    .cast(ServiceMsg::Cast(HostRequest::Reconcile))
                    .is_err()
                {
                    return;
                }
            }
        });
        myself.cast(ServiceMsg::Cast(HostRequest::Reconcile))?;
        Ok(ReconcilerState {
            args,
            services: BTreeMap::new(),
            specs: BTreeMap::new(),
        })
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
            HostRequest::Reconcile | HostRequest::Restart(_) => {
                state.reconcile(&myself).await;
                HostReply::Ack
            }
            HostRequest::Report => HostReply::Report(Box::new(state.report(&myself).await)),
        };
        remote::answer(reply, answer);
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<Self::Msg>,
        event: SupervisionEvent,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, reason) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, err.to_string()),
            SupervisionEvent::ActorTerminated(cell, _, reason) => {
                (cell, reason.unwrap_or_else(|| "stopped".into()))
            }
            _ => return Ok(()),
        };
        let Some((name, service)) = state.services.iter_mut().find(|(_, service)| {
            service
                .supervisor
                .as_ref()
                .is_some_and(|sup| sup.get_id() == cell.get_id())
        }) else {
            return Ok(());
        };
        service.supervisor = None;
        service.escalations += 1;
        let backoff = ESCALATION_BACKOFF
            .saturating_mul(1 << (service.escalations - 1).min(8))
            .min(MAX_ESCALATION_BACKOFF);
        tracing::error!(
            node = %state.args.ctx.node,
            service = %name,
            escalations = service.escalations,
            backoff_ms = backoff.as_millis() as u64,
            %reason,
            "service escalated past its restart budget, restarting it whole"
        );
        let restart = HostRequest::Restart(name.clone());
        myself.send_after(backoff, move || ServiceMsg::Cast(restart));
        state.publish_status();
        Ok(())
    }
}

impl ReconcilerState {
    /// Starts what placement puts here and is not running; stops what no
    /// longer belongs here.
    async fn reconcile(&mut self, myself: &ActorRef<ServiceMsg<HostProtocol>>) {
        let view = self.args.view.borrow().clone();
        let placed: BTreeMap<String, Role> = assign(&self.args.manifest, &candidates(&view))
            .roles_on(&self.args.ctx.node)
            .into_iter()
            .collect();

        let leaving: Vec<String> = self
            .services
            .keys()
            .filter(|name| !placed.contains_key(*name))
            .cloned()
            .collect();
        for name in leaving {
            if let Some(service) = self.services.remove(&name) {
                if let Some(supervisor) = service.supervisor {
                    tracing::info!(service = %name, "service no longer placed here, stopping it");
                    supervisor.stop(Some("placement moved".into()));
                }
            }
        }

        for (name, role) in placed {
            if let Some(service) = self.services.get_mut(&name) {
                if service.supervisor.is_some() && same_role(&service.role, &role) {
                    // Only the shard lists may have moved: the service
                    // reads them from the view itself, nothing to restart.
                    service.role = role;
                    continue;
                }
            }
            if let Some(old) = self.services.get_mut(&name) {
                if let Some(supervisor) = old.supervisor.take() {
                    supervisor.stop(Some("role changed".into()));
                }
            }
            if !self.specs.contains_key(&name) {
                match supervisor_for(&name, &role, &self.args.ctx) {
                    Some(spec) => {
                        self.specs.insert(name.clone(), spec);
                    }
                    None => {
                        tracing::error!(service = %name, "no supervisor for a placed service");
                        continue;
                    }
                }
            }
            let spec = self.specs[&name].clone();
            let escalations = self.services.get(&name).map_or(0, |s| s.escalations);
            let supervisor = match spawn_supervisor(spec, Some(myself.get_cell())).await {
                Ok((supervisor, _)) => {
                    tracing::info!(service = %name, role = ?role, "service started");
                    Some(supervisor)
                }
                Err(err) => {
                    tracing::error!(service = %name, error = %err, "service failed to start, retrying");
                    let restart = HostRequest::Restart(name.clone());
                    myself.send_after(ESCALATION_BACKOFF, move || ServiceMsg::Cast(restart));
                    None
                }
            };
            self.services.insert(
                name,
                RunningService {
                    supervisor,
                    role,
                    escalations,
                },
            );
        }
        self.publish_status();
    }

    fn publish_status(&self) {
        let services = self
            .services
            .iter()
            .map(|(name, service)| (name.clone(), service.supervisor.is_some()))
            .collect();
        self.args.status_tx.send_replace(HostStatus { services });
    }

    async fn report(&self, myself: &ActorRef<ServiceMsg<HostProtocol>>) -> NodeReport {
        // Ask every service supervisor at once; one slow tree costs one
        // timeout, not one per service.
        let mut asks = tokio::task::JoinSet::new();
        for (name, service) in &self.services {
            if let Some(supervisor) = service.supervisor.clone() {
                let name = name.clone();
                asks.spawn(async move { (name, tree_of(&supervisor, TREE_TIMEOUT).await) });
            }
        }
        let mut trees = BTreeMap::new();
        while let Some(Ok((name, tree))) = asks.join_next().await {
            if let Some(tree) = tree {
                trees.insert(name, tree);
            }
        }

        let mut services = Vec::new();
        let mut children = Vec::new();
        for (name, service) in &self.services {
            let mut tree = trees.remove(name).unwrap_or_else(|| TreeReport {
                name: name.clone(),
                actor_id: String::new(),
                kind: "supervisor".into(),
                strategy: None,
                restarts: 0,
                failures: 0,
                status: "restarting".into(),
                children: Vec::new(),
            });
            // The host is this supervisor's parent: its counters are the
            // host's restarts of the whole service.
            tree.restarts = service.escalations;
            tree.failures = service.escalations;
            services.push(ServiceStatus {
                name: name.clone(),
                role: role_name(&service.role).into(),
                status: if service.supervisor.is_some() {
                    "running".into()
                } else {
                    "restarting".into()
                },
                restarts: restarts_below(&tree),
                escalations: service.escalations,
            });
            children.push(tree);
        }
        NodeReport {
            node: self.args.ctx.node.clone(),
            services,
            tree: TreeReport {
                name: format!("host@{}", self.args.ctx.node),
                actor_id: myself.get_id().to_string(),
                kind: "supervisor".into(),
                strategy: Some("placement".into()),
                restarts: 0,
                failures: 0,
                status: "running".into(),
                children,
            },
        }
    }
}

/// Restarts of every actor below `tree` (not of `tree` itself).
fn restarts_below(tree: &TreeReport) -> u64 {
    tree.children
        .iter()
        .map(|child| child.restarts + restarts_below(child))
        .sum()
}

/// Whether a service running in role `running` can stay as it is in role
/// `placed`: the same role, or shards of a sharded service either way (a
/// sharded service follows its shard lists from the view).
fn same_role(running: &Role, placed: &Role) -> bool {
    match (running, placed) {
        (Role::Shards { .. }, Role::Shards { .. }) => true,
        _ => running == placed,
    }
}

fn role_name(role: &Role) -> &'static str {
    match role {
        Role::Replica => "replica",
        Role::Owner => "owner",
        Role::Standby => "standby",
        Role::Shards { .. } => "shards",
    }
}
