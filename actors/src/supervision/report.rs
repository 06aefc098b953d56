//! The observable snapshot of a supervision tree ([`TreeReport`]), as shown
//! by `bazaar status` and the dashboard, and how a supervisor assembles it.
//!
//! A supervisor knows its children's counters (they live in it, so they
//! survive the children's restarts) but not its grandchildren's: for each
//! child supervisor it asks for the subtree with a short timeout, all
//! children at once, off its own mailbox so a slow subtree never blocks
//! restarts.

use std::time::Duration;

use ractor::ActorRef;
use serde::{Deserialize, Serialize};

use super::supervisor::SupervisorMsg;

/// How long a supervisor waits for a child supervisor's subtree
pub const CHILD_TREE_TIMEOUT: Duration = Duration::from_millis(200);

/// Snapshot of one node of a supervision tree and its subtree
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TreeReport {
    /// Name of the node (the child name given by its parent)
    pub name: String,
    /// Actor id of the current incarnation, empty while restarting
    pub actor_id: String,
    /// `supervisor` or `worker`
    pub kind: String,
    /// Restart strategy, for supervisors only
    pub strategy: Option<String>,
    /// Times this node was restarted by its parent (0 for a root)
    pub restarts: u64,
    /// Times this node failed: crashed, returned an error or failed to restart
    pub failures: u64,
    /// `running`, `restarting` or `stopped`
    pub status: String,
    /// Children in start order (empty for workers and unreachable supervisors)
    pub children: Vec<TreeReport>,
}

impl TreeReport {
    /// The first node named `name` in this subtree, depth first
    pub fn find(&self, name: &str) -> Option<&TreeReport> {
        if self.name == name {
            return Some(self);
        }
        self.children.iter().find_map(|child| child.find(name))
    }
}

/// What a supervisor knows about one child, plus how to ask it for more
pub(crate) struct ChildSnapshot {
    /// The child as seen by its parent: counters, status, id, no children
    pub(crate) known: TreeReport,
    /// Set for running child supervisors, which report their own subtree
    pub(crate) subtree_of: Option<ActorRef<SupervisorMsg>>,
}

/// Completes `root` with its children, asking child supervisors for their subtrees
pub(crate) async fn assemble(mut root: TreeReport, children: Vec<ChildSnapshot>) -> TreeReport {
    let pending: Vec<_> = children
        .into_iter()
        .map(|child| tokio::spawn(complete(child)))
        .collect();
    for (index, task) in pending.into_iter().enumerate() {
        match task.await {
            Ok(child) => root.children.push(child),
            Err(err) => {
                tracing::warn!(
                    supervisor = %root.name,
                    index,
                    error = %err,
                    "tree report task failed"
                );
            }
        }
    }
    root
}

/// One child's report: its subtree if it answers in time, else what the parent knows
async fn complete(child: ChildSnapshot) -> TreeReport {
    let ChildSnapshot { known, subtree_of } = child;
    let Some(sup) = subtree_of else {
        return known;
    };
    let Some(mut subtree) = super::tree_of(&sup, CHILD_TREE_TIMEOUT).await else {
        tracing::debug!(child = %known.name, "child supervisor did not report its tree in time");
        return known;
    };
    // The parent is the authority on the child's name, counters and status.
    subtree.name = known.name;
    subtree.kind = known.kind;
    subtree.restarts = known.restarts;
    subtree.failures = known.failures;
    subtree.status = known.status;
    subtree
}
