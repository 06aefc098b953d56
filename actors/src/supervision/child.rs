//! One child as its supervisor sees it: how to start it, its live
//! incarnation, and the counters that outlive its restarts.

use std::time::Duration;

use ractor::{ActorCell, ActorRef, ActorStatus, RactorErr};
use tracing::{debug, warn};

use super::report::{ChildSnapshot, TreeReport};
use super::spec::{ChildKind, ChildSpec};
use super::supervisor::SupervisorMsg;

/// How long a supervisor waits for a child to stop gracefully before killing it
pub const CHILD_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(5);

/// One child: how to start it, its current incarnation, its counters
pub(super) struct ChildSlot {
    pub(super) spec: ChildSpec,
    /// The live incarnation; `None` while restarting or stopped by the supervisor
    pub(super) cell: Option<ActorCell>,
    /// Times restarted; kept here, not in the child, so it survives the child's restarts
    pub(super) restarts: u64,
    /// Times it crashed or failed to restart
    pub(super) failures: u64,
}

impl ChildSlot {
    /// A child not started yet, with zeroed counters
    pub(super) fn new(spec: ChildSpec) -> Self {
        Self {
            spec,
            cell: None,
            restarts: 0,
            failures: 0,
        }
    }

    /// Its lifecycle as far as the supervisor knows
    pub(super) fn status(&self) -> ChildStatus {
        match &self.cell {
            None => ChildStatus::Restarting,
            // Exited, its exit event not handled yet.
            Some(cell) if cell.get_status() >= ActorStatus::Stopping => ChildStatus::Stopped,
            Some(_) => ChildStatus::Running,
        }
    }

    /// What the supervisor knows of it, for a tree report
    pub(super) fn snapshot(&self) -> ChildSnapshot {
        let status = self.status();
        let subtree_of = match (&self.cell, self.spec.kind, status) {
            (Some(cell), ChildKind::Supervisor, ChildStatus::Running) => {
                Some(ActorRef::<SupervisorMsg>::from(cell.clone()))
            }
            _ => None,
        };
        let known = TreeReport {
            name: self.spec.name.clone(),
            actor_id: self
                .cell
                .as_ref()
                .map(|cell| cell.get_id().to_string())
                .unwrap_or_default(),
            kind: self.spec.kind.as_str().to_string(),
            strategy: None,
            restarts: self.restarts,
            failures: self.failures,
            status: status.as_str().to_string(),
            children: Vec::new(),
        };
        ChildSnapshot { known, subtree_of }
    }
}

/// A child's lifecycle as its supervisor sees it
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum ChildStatus {
    Running,
    Restarting,
    Stopped,
}

impl ChildStatus {
    /// As shown in a [`TreeReport`]
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Self::Running => "running",
            Self::Restarting => "restarting",
            Self::Stopped => "stopped",
        }
    }
}

/// Stops one child gracefully, killing it if it does not stop in time
pub(super) async fn stop_child(supervisor: &str, child: &str, cell: ActorCell, reason: &str) {
    match cell
        .stop_and_wait(Some(reason.to_string()), Some(CHILD_SHUTDOWN_TIMEOUT))
        .await
    {
        Ok(()) => {
            debug!(supervisor = %supervisor, child = %child, reason = %reason, "child stopped")
        }
        Err(RactorErr::Timeout) => {
            warn!(
                supervisor = %supervisor,
                child = %child,
                timeout = ?CHILD_SHUTDOWN_TIMEOUT,
                "child did not stop in time, killing it"
            );
            let _ = cell.kill_and_wait(Some(CHILD_SHUTDOWN_TIMEOUT)).await;
        }
        // Already gone: it exited on its own and its exit event is now stale.
        Err(_) => debug!(supervisor = %supervisor, child = %child, "child already exited"),
    }
}
