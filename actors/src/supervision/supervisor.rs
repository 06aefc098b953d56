//! The [`Supervisor`] actor: starts its children in order, restarts them per
//! its [`Strategy`] when they exit, and fails upward once its restart budget
//! is spent.
//!
//! Invariants:
//! - `children[i].cell` is `Some` exactly while the supervisor owns a live
//!   incarnation of child `i`; it is cleared before the supervisor stops a
//!   child itself, so an exit event from a cell not held in a slot is stale
//!   (caused by the supervisor) and ignored.
//! - Children start in index order and stop in reverse index order.
//! - Every restart decision (one per exit, one per retry) is charged to the
//!   [`RestartLog`] before any child is touched.
//!
//! Alongside its own counters, the supervisor counts child failures and
//! restarts in `bazaar_actor_failures_total{supervisor,child}` and
//! `bazaar_actor_restarts_total{supervisor,child}`. Mailbox depths are not
//! exported: ractor 0.16.5 does not expose the length of a mailbox.

use std::collections::HashSet;
use std::ops::Range;
use std::time::Instant;

use ractor::{
    Actor, ActorCell, ActorId, ActorProcessingErr, ActorRef, RpcReplyPort, SpawnErr,
    SupervisionEvent,
};
use tracing::{debug, error, info, warn};

use super::budget::{Intensity, RestartLog};
use super::child::{stop_child, ChildSlot, ChildStatus};
use super::error::SupervisionError;
use super::report::{self, ChildSnapshot, TreeReport};
use super::spec::{ChildKind, Strategy, SupervisorSpec};

/// Counter of child failures (an exit with an error, or a failed start).
const FAILURES: &str = "bazaar_actor_failures_total";
/// Counter of child restarts that succeeded.
const RESTARTS: &str = "bazaar_actor_restarts_total";

/// Adds one to the counter `name` of `child` under `supervisor`.
fn count(name: &'static str, supervisor: &str, child: &str) {
    metrics::counter!(name, "supervisor" => supervisor.to_string(), "child" => child.to_string())
        .increment(1);
}

/// OTP-style supervisor actor; spawn it with [`spawn_supervisor`](super::spawn_supervisor)
#[derive(Debug, Clone, Copy, Default)]
pub struct Supervisor;

/// Requests a [`Supervisor`] answers
pub enum SupervisorMsg {
    /// Replies with this supervisor's subtree, counters included
    GetTree(RpcReplyPort<TreeReport>),
    /// Replies with the current cell of the named child, `None` if unknown or restarting
    GetChild(String, RpcReplyPort<Option<ActorCell>>),
    /// Retries a restart whose start failed (sent by the supervisor to itself)
    RestartPending(PendingRestart),
}

impl ractor::Message for SupervisorMsg {}

/// A restart still to finish; only a supervisor can create one
#[derive(Debug)]
pub struct PendingRestart {
    /// The child whose start failed, charged to the budget on retry
    child: usize,
    /// The children (in start order) still to start
    remaining: Range<usize>,
}

/// A supervisor's children, their counters and its restart history
pub struct SupervisorState {
    name: String,
    strategy: Strategy,
    log: RestartLog,
    /// In start order
    children: Vec<ChildSlot>,
}

/// How a child left, as told by its supervision event
enum Exit {
    Failed(String),
    Terminated(Option<String>),
}

impl Actor for Supervisor {
    type Msg = SupervisorMsg;
    type State = SupervisorState;
    type Arguments = SupervisorSpec;

    async fn pre_start(
        &self,
        myself: ActorRef<SupervisorMsg>,
        spec: SupervisorSpec,
    ) -> Result<SupervisorState, ActorProcessingErr> {
        let mut state = SupervisorState::new(spec)?;
        for index in 0..state.children.len() {
            if let Err(source) = state.start_child(&myself, index).await {
                let child = state.children[index].spec.name.clone();
                error!(
                    supervisor = %state.name,
                    child = %child,
                    error = %source,
                    "child failed to start, supervisor not started"
                );
                state
                    .stop_children(0..index, "supervisor failed to start")
                    .await;
                return Err(SupervisionError::ChildStartFailed { child, source }.into());
            }
        }
        info!(
            supervisor = %state.name,
            strategy = %state.strategy,
            children = state.children.len(),
            "supervisor started"
        );
        Ok(state)
    }

    async fn handle(
        &self,
        myself: ActorRef<SupervisorMsg>,
        message: SupervisorMsg,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            SupervisorMsg::GetTree(reply) => {
                let (root, children) = state.snapshot(&myself);
                // Child supervisors answer off this mailbox: restarts never wait on a report.
                tokio::spawn(async move {
                    let tree = report::assemble(root, children).await;
                    // The caller may have given up; nothing to do then.
                    let _ = reply.send(tree);
                });
            }
            SupervisorMsg::GetChild(name, reply) => {
                let _ = reply.send(state.child_cell(&name));
            }
            SupervisorMsg::RestartPending(pending) => state.retry(&myself, pending).await?,
        }
        Ok(())
    }

    async fn handle_supervisor_evt(
        &self,
        myself: ActorRef<SupervisorMsg>,
        event: SupervisionEvent,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        let (cell, exit) = match event {
            SupervisionEvent::ActorFailed(cell, err) => (cell, Exit::Failed(err.to_string())),
            SupervisionEvent::ActorTerminated(cell, _, reason) => (cell, Exit::Terminated(reason)),
            _ => return Ok(()),
        };
        state.on_child_exit(&myself, cell.get_id(), exit).await?;
        Ok(())
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<SupervisorMsg>,
        state: &mut SupervisorState,
    ) -> Result<(), ActorProcessingErr> {
        state
            .stop_children(0..state.children.len(), "supervisor stopping")
            .await;
        info!(supervisor = %state.name, "supervisor stopped");
        Ok(())
    }
}

impl SupervisorState {
    fn new(spec: SupervisorSpec) -> Result<Self, SupervisionError> {
        let SupervisorSpec {
            name,
            strategy,
            budget,
            children,
        } = spec;
        let mut seen = HashSet::new();
        if let Some(dup) = children
            .iter()
            .find(|child| !seen.insert(child.name.as_str()))
        {
            return Err(SupervisionError::DuplicateChild {
                child: dup.name.clone(),
            });
        }
        let children = children.into_iter().map(ChildSlot::new).collect();
        Ok(Self {
            name,
            strategy,
            log: RestartLog::new(budget),
            children,
        })
    }

    fn index_of(&self, id: ActorId) -> Option<usize> {
        self.children
            .iter()
            .position(|slot| slot.cell.as_ref().is_some_and(|cell| cell.get_id() == id))
    }

    fn child_cell(&self, name: &str) -> Option<ActorCell> {
        let slot = self.children.iter().find(|slot| slot.spec.name == name)?;
        slot.cell.clone()
    }

    /// Starts one incarnation of child `index` and takes ownership of its cell
    async fn start_child(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        index: usize,
    ) -> Result<(), SpawnErr> {
        let slot = &mut self.children[index];
        debug_assert!(
            slot.cell.is_none(),
            "child {} started twice",
            slot.spec.name
        );
        let cell = slot.spec.start(myself.get_cell()).await?;
        if !is_linked_to(&cell, myself) {
            warn!(
                supervisor = %self.name,
                child = %slot.spec.name,
                "child not spawned linked, linking it"
            );
            cell.link(myself.get_cell());
            if !is_linked_to(&cell, myself) {
                // It exited before we could watch it: any exit event it sent is stale.
                cell.stop(None);
                return Err(SpawnErr::StartupFailed(
                    format!("child {} exited before it was supervised", slot.spec.name).into(),
                ));
            }
        }
        debug!(
            supervisor = %self.name,
            child = %slot.spec.name,
            actor_id = %cell.get_id(),
            "child started"
        );
        slot.cell = Some(cell);
        Ok(())
    }

    async fn on_child_exit(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        id: ActorId,
        exit: Exit,
    ) -> Result<(), SupervisionError> {
        let Some(index) = self.index_of(id) else {
            debug!(
                supervisor = %self.name,
                actor_id = %id,
                "ignoring exit of an actor no longer supervised"
            );
            return Ok(());
        };
        let slot = &mut self.children[index];
        slot.cell = None;
        match exit {
            Exit::Failed(err) => {
                slot.failures += 1;
                count(FAILURES, &self.name, &slot.spec.name);
                warn!(
                    supervisor = %self.name,
                    child = %slot.spec.name,
                    error = %err,
                    "child failed, restarting"
                );
            }
            Exit::Terminated(reason) => {
                let reason = reason.as_deref().unwrap_or("none");
                warn!(
                    supervisor = %self.name,
                    child = %slot.spec.name,
                    reason = %reason,
                    "child exited, restarting"
                );
            }
        }
        self.charge_budget(index).await?;
        let affected = self.strategy.affected(index, self.children.len());
        self.stop_children(affected.clone(), "sibling restarting")
            .await;
        self.start_children(myself, index, affected).await;
        Ok(())
    }

    async fn retry(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        pending: PendingRestart,
    ) -> Result<(), SupervisionError> {
        let PendingRestart { child, remaining } = pending;
        let still_down = self.children[remaining.clone()]
            .iter()
            .any(|slot| slot.cell.is_none());
        if !still_down {
            // Another restart brought them back in the meantime.
            return Ok(());
        }
        self.charge_budget(child).await?;
        self.start_children(myself, child, remaining).await;
        Ok(())
    }

    /// Records one restart caused by child `index`; past the budget, stops
    /// every child and returns the error to fail upward with
    async fn charge_budget(&mut self, index: usize) -> Result<(), SupervisionError> {
        let Intensity::Exhausted(restarts) = self.log.record(Instant::now()) else {
            return Ok(());
        };
        let window = self.log.budget().window;
        let child = self.children[index].spec.name.clone();
        error!(
            supervisor = %self.name,
            child = %child,
            restarts,
            window = ?window,
            "restart budget exhausted, escalating"
        );
        self.stop_children(0..self.children.len(), "supervisor escalating")
            .await;
        Err(SupervisionError::BudgetExhausted {
            restarts,
            window,
            child,
        })
    }

    /// Starts the children of `range` that are down, in order; on a failed
    /// start, schedules a retry of the rest instead of blocking the mailbox
    async fn start_children(
        &mut self,
        myself: &ActorRef<SupervisorMsg>,
        cause: usize,
        range: Range<usize>,
    ) {
        let cause = self.children[cause].spec.name.clone();
        for index in range.clone() {
            if self.children[index].cell.is_some() {
                continue;
            }
            let started = self.start_child(myself, index).await;
            let slot = &mut self.children[index];
            match started {
                Ok(()) => {
                    slot.restarts += 1;
                    count(RESTARTS, &self.name, &slot.spec.name);
                    let actor_id = slot.cell.as_ref().map(ActorCell::get_id);
                    info!(
                        supervisor = %self.name,
                        child = %slot.spec.name,
                        actor_id = ?actor_id,
                        cause = %cause,
                        "child restarted"
                    );
                }
                Err(err) => {
                    slot.failures += 1;
                    count(FAILURES, &self.name, &slot.spec.name);
                    warn!(
                        supervisor = %self.name,
                        child = %slot.spec.name,
                        error = %err,
                        "child failed to restart, retrying"
                    );
                    let pending = PendingRestart {
                        child: index,
                        remaining: index..range.end,
                    };
                    if myself
                        .send_message(SupervisorMsg::RestartPending(pending))
                        .is_err()
                    {
                        debug!(supervisor = %self.name, "supervisor stopping, restart dropped");
                    }
                    return;
                }
            }
        }
    }

    /// Stops the live children of `range`, newest first, forgetting their cells first
    async fn stop_children(&mut self, range: Range<usize>, reason: &str) {
        for index in range.rev() {
            let slot = &mut self.children[index];
            let Some(cell) = slot.cell.take() else {
                continue;
            };
            stop_child(&self.name, &slot.spec.name, cell, reason).await;
        }
    }

    /// This supervisor as a report root, and what it knows of each child
    fn snapshot(&self, myself: &ActorRef<SupervisorMsg>) -> (TreeReport, Vec<ChildSnapshot>) {
        let root = TreeReport {
            name: self.name.clone(),
            actor_id: myself.get_id().to_string(),
            kind: ChildKind::Supervisor.as_str().to_string(),
            strategy: Some(self.strategy.as_str().to_string()),
            restarts: 0,
            failures: 0,
            status: ChildStatus::Running.as_str().to_string(),
            children: Vec::new(),
        };
        let children = self.children.iter().map(ChildSlot::snapshot).collect();
        (root, children)
    }
}

fn is_linked_to(cell: &ActorCell, supervisor: &ActorRef<SupervisorMsg>) -> bool {
    cell.try_get_supervisor()
        .is_some_and(|sup| sup.get_id() == supervisor.get_id())
}
