//! OTP-style supervision for ractor: every service of a node runs under a
//! [`Supervisor`] that restarts its children when they fail and gives up,
//! failing upward, when they fail too often.
//!
//! # Vocabulary
//!
//! - **child**: an actor a supervisor starts, linked to it, from a
//!   [`ChildSpec`]. A child is a **worker** (does the work) or a
//!   **supervisor** (has children of its own), see [`ChildKind`].
//!   Children are *permanent*: any exit the supervisor did not cause
//!   itself, a panic or an `Err` from a handler ("failure") as well as a
//!   plain stop, is followed by a restart.
//! - **strategy** ([`Strategy`]), which children a restart touches:
//!   `one_for_one` restarts only the child that exited; `one_for_all` stops
//!   the others (newest first) and restarts all of them in start order;
//!   `rest_for_one` does the same for the children started after it, for
//!   children that depend on their elder siblings.
//! - **restart budget** ([`RestartBudget`], OTP's intensity and period):
//!   at most `max_restarts` restarts within a sliding `window` (default 3 in
//!   5 s). One more and the supervisor **escalates**: it stops its children
//!   and fails, so that its own parent sees an `ActorFailed` such as
//!   `restart budget exhausted: 4 restarts in 5s for child catalog-store`
//!   and applies *its* strategy and budget to it.
//! - **counters**: per child, `restarts` (times restarted, also as a
//!   sibling) and `failures` (times it crashed or failed to restart). They
//!   live in the parent, so they survive the child's restarts; a
//!   [`TreeReport`] shows them for a whole tree.
//!
//! # An example tree
//!
//! ```text
//! node-root            supervisor, one_for_one, 3 restarts / 5 s
//! ├── catalog          supervisor, rest_for_one
//! │   ├── catalog-store     worker (restarted: workers restart after it)
//! │   └── catalog-workers   worker (depends on the store)
//! └── auth             worker
//! ```
//!
//! If `catalog-store` panics, `catalog` stops `catalog-workers`, restarts
//! the store, then the workers. If the store keeps panicking, `catalog`
//! exhausts its budget and fails; `node-root` restarts `catalog` as a whole
//! (fresh budget, fresh children) and counts one restart for it.
//!
//! # Invariants
//!
//! - Children start in order in `pre_start`; one that fails to start stops
//!   the ones already started and makes the supervisor fail to start.
//! - Children stop in reverse start order, when the supervisor stops and
//!   when it escalates.
//! - Exit events from actors the supervisor stopped itself are ignored: a
//!   child's cell is forgotten before the supervisor stops it.
//! - A restart whose start fails is retried through the supervisor's own
//!   mailbox, charged to the budget each time, so a child that can never
//!   start ends in escalation, not in a busy loop.

mod budget;
mod child;
mod error;
mod report;
mod spec;
mod supervisor;

#[cfg(test)]
mod tests;

use std::time::Duration;

use ractor::concurrency::JoinHandle;
use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorRef, SpawnErr};

pub use budget::{
    Intensity, RestartBudget, RestartLog, DEFAULT_MAX_RESTARTS, DEFAULT_RESTART_WINDOW,
};
pub use child::CHILD_SHUTDOWN_TIMEOUT;
pub use error::SupervisionError;
pub use report::{TreeReport, CHILD_TREE_TIMEOUT};
pub use spec::{ChildKind, ChildSpec, StartFuture, Strategy, SupervisorSpec};
pub use supervisor::{PendingRestart, Supervisor, SupervisorMsg, SupervisorState};

/// Spawns a supervisor for `spec`, linked to `parent` when given
pub async fn spawn_supervisor(
    spec: SupervisorSpec,
    parent: Option<ActorCell>,
) -> Result<(ActorRef<SupervisorMsg>, JoinHandle<()>), SpawnErr> {
    match parent {
        Some(parent) => Supervisor::spawn_linked(None, Supervisor, spec, parent).await,
        None => Supervisor::spawn(None, Supervisor, spec).await,
    }
}

/// Asks a supervisor for its tree, `None` if it does not answer within `timeout`
pub async fn tree_of(sup: &ActorRef<SupervisorMsg>, timeout: Duration) -> Option<TreeReport> {
    match sup.call(SupervisorMsg::GetTree, Some(timeout)).await {
        Ok(CallResult::Success(tree)) => Some(tree),
        _ => None,
    }
}

/// Asks a supervisor for its child `name`'s current cell, `None` if restarting or unknown
pub async fn child_of(
    sup: &ActorRef<SupervisorMsg>,
    name: &str,
    timeout: Duration,
) -> Option<ActorCell> {
    let name = name.to_string();
    match sup
        .call(|reply| SupervisorMsg::GetChild(name, reply), Some(timeout))
        .await
    {
        Ok(CallResult::Success(cell)) => cell,
        _ => None,
    }
}
