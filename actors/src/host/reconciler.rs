//! The reconciler: one actor per node that starts and stops the node's
//! service supervisors to match placement, restarts a service that
//! escalated, and reports the node's trees. Escalations are counted in
//! `bazaar_service_escalations_total{service}`.

use std::collections::BTreeMap;
use std::time::Duration;

use bazaar_cluster::member::{cast_on_change, MembershipView};
use bazaar_cluster::placement::{assign, candidates, Manifest, Role};
use bazaar_cluster::remote::{self, ServiceMsg};
use ractor::{Actor, ActorProcessingErr, ActorRef, SupervisionEvent};
use tokio::sync::watch;

use super::manifest::{manifest, supervisor_for};
use super::protocol::{HostProtocol, HostReply, HostRequest};
use super::reporter::{HostReporter, ReporterArgs};
use crate::context::ServiceContext;
use crate::supervision::{spawn_supervisor, SupervisorMsg, SupervisorSpec};

/// First wait before a service that escalated starts again; doubles per
/// escalation up to [`MAX_ESCALATION_BACKOFF`].
const ESCALATION_BACKOFF: Duration = Duration::from_millis(500);
/// Longest wait before restarting a service that escalated.
const MAX_ESCALATION_BACKOFF: Duration = Duration::from_secs(10);

/// A service placed on this node, as the host last left it.
#[derive(Debug, Clone)]
pub struct PlacedService {
    /// Its supervisor, `None` while it waits to be restarted.
    pub supervisor: Option<ActorRef<SupervisorMsg>>,
    /// Its role here.
    pub role: Role,
    /// Times it exhausted its budget and was restarted whole.
    pub escalations: u64,
}

/// Which services are placed here and how they run.
#[derive(Debug, Clone, Default)]
pub struct HostStatus {
    /// Services placed on this node, by name.
    pub services: BTreeMap<String, PlacedService>,
}

impl HostStatus {
    /// True when every service placed here runs (and at least one is placed).
    pub fn all_running(&self) -> bool {
        !self.services.is_empty()
            && self
                .services
                .values()
                .all(|service| service.supervisor.is_some())
    }

    /// Names of placed services that do not run.
    pub fn waiting(&self) -> Vec<&str> {
        self.services
            .iter()
            .filter(|(_, service)| service.supervisor.is_none())
            .map(|(name, _)| name.as_str())
            .collect()
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
    let node = args.ctx.node.clone();
    let (actor, _) = Actor::spawn(Some("bazaar.host".into()), Reconciler, args).await?;
    // The reporter is linked to the reconciler: it stops with it.
    Actor::spawn_linked(
        None,
        HostReporter,
        ReporterArgs {
            node,
            status: status.clone(),
        },
        actor.get_cell(),
    )
    .await?;
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
        cast_on_change(args.view.clone(), myself.clone(), || {
            ServiceMsg::Cast(HostRequest::Reconcile)
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
            // Reports are the reporter's job; the reconciler is not in the
            // node group.
            HostRequest::Report => return Ok(()),
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
        metrics::counter!("bazaar_service_escalations_total", "service" => name.clone())
            .increment(1);
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
            .map(|(name, service)| {
                let placed = PlacedService {
                    supervisor: service.supervisor.clone(),
                    role: service.role.clone(),
                    escalations: service.escalations,
                };
                (name.clone(), placed)
            })
            .collect();
        self.args.status_tx.send_replace(HostStatus { services });
    }
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
