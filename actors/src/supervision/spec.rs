//! The declarative half of supervision: what a supervisor runs
//! ([`SupervisorSpec`], [`ChildSpec`]) and how it reacts to a failure
//! ([`Strategy`], [`RestartBudget`]).
//!
//! Invariant: a [`ChildSpec`]'s start function spawns the child linked to the
//! cell it is given, so the supervisor receives the child's exit events.

use std::fmt;
use std::future::Future;
use std::ops::Range;
use std::pin::Pin;
use std::sync::Arc;

use ractor::{ActorCell, SpawnErr};

use super::budget::RestartBudget;

/// Which children a supervisor restarts when one of them exits
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Strategy {
    /// Restart only the child that exited
    #[default]
    OneForOne,
    /// Stop every other child and restart them all, in start order
    OneForAll,
    /// Stop the children started after the one that exited, then restart it and them
    RestForOne,
}

impl Strategy {
    /// The OTP name of the strategy: `one_for_one`, `one_for_all` or `rest_for_one`
    pub fn as_str(self) -> &'static str {
        match self {
            Self::OneForOne => "one_for_one",
            Self::OneForAll => "one_for_all",
            Self::RestForOne => "rest_for_one",
        }
    }

    /// Indices (in start order) of the children restarted when child `failed` of `len` exits
    pub fn affected(self, failed: usize, len: usize) -> Range<usize> {
        debug_assert!(failed < len, "failed child {failed} out of {len}");
        match self {
            Self::OneForOne => failed..failed + 1,
            Self::OneForAll => 0..len,
            Self::RestForOne => failed..len,
        }
    }
}

impl fmt::Display for Strategy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Whether a child does work or supervises other actors
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ChildKind {
    /// A leaf actor doing the service's work
    Worker,
    /// A nested [`Supervisor`](super::Supervisor) with children of its own
    Supervisor,
}

impl ChildKind {
    /// `worker` or `supervisor`, as shown in a [`TreeReport`](super::TreeReport)
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Worker => "worker",
            Self::Supervisor => "supervisor",
        }
    }
}

impl fmt::Display for ChildKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The future a start function returns: the started child's cell
pub type StartFuture = Pin<Box<dyn Future<Output = Result<ActorCell, SpawnErr>> + Send>>;

/// Spawns a child linked to the supervisor cell it is given
type StartFn = Arc<dyn Fn(ActorCell) -> StartFuture + Send + Sync>;

/// How to start (and restart) one child of a supervisor
#[derive(Clone)]
pub struct ChildSpec {
    /// Name of the child within its supervisor (unique among its siblings)
    pub name: String,
    /// Worker or nested supervisor; a supervisor's subtree is included in reports
    pub kind: ChildKind,
    /// Called at every (re)start; shared because a spec outlives many incarnations
    start: StartFn,
}

impl ChildSpec {
    /// A worker child; `start` must spawn it linked to the given supervisor cell
    pub fn worker<F, Fut>(name: impl Into<String>, start: F) -> Self
    where
        F: Fn(ActorCell) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ActorCell, SpawnErr>> + Send + 'static,
    {
        Self::new(name.into(), ChildKind::Worker, start)
    }

    /// A child that is itself a [`Supervisor`](super::Supervisor); `start` must spawn it linked
    pub fn supervisor<F, Fut>(name: impl Into<String>, start: F) -> Self
    where
        F: Fn(ActorCell) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ActorCell, SpawnErr>> + Send + 'static,
    {
        Self::new(name.into(), ChildKind::Supervisor, start)
    }

    /// A nested [`Supervisor`](super::Supervisor) started from `spec`, named after it
    pub fn nested(spec: SupervisorSpec) -> Self {
        let name = spec.name.clone();
        Self::supervisor(name, move |parent| {
            let spec = spec.clone();
            async move {
                let (sup, _handle) = super::spawn_supervisor(spec, Some(parent)).await?;
                Ok(sup.get_cell())
            }
        })
    }

    fn new<F, Fut>(name: String, kind: ChildKind, start: F) -> Self
    where
        F: Fn(ActorCell) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<ActorCell, SpawnErr>> + Send + 'static,
    {
        let start: StartFn = Arc::new(move |parent| Box::pin(start(parent)) as StartFuture);
        Self { name, kind, start }
    }

    /// Starts one incarnation of the child, linked to `supervisor`
    pub(crate) fn start(&self, supervisor: ActorCell) -> StartFuture {
        (self.start)(supervisor)
    }
}

impl fmt::Debug for ChildSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ChildSpec")
            .field("name", &self.name)
            .field("kind", &self.kind)
            .finish_non_exhaustive()
    }
}

/// Everything a [`Supervisor`](super::Supervisor) needs to run: its children and its policy
#[derive(Debug, Clone)]
pub struct SupervisorSpec {
    /// Name shown in logs and reports
    pub name: String,
    /// Which children to restart when one exits
    pub strategy: Strategy,
    /// Restarts tolerated per window before failing upward
    pub budget: RestartBudget,
    /// Children in start order (stopped in reverse order)
    pub children: Vec<ChildSpec>,
}

impl SupervisorSpec {
    /// A spec with no children and the default budget
    pub fn new(name: impl Into<String>, strategy: Strategy) -> Self {
        Self {
            name: name.into(),
            strategy,
            budget: RestartBudget::default(),
            children: Vec::new(),
        }
    }

    /// Replaces the restart budget
    pub fn with_budget(mut self, budget: RestartBudget) -> Self {
        self.budget = budget;
        self
    }

    /// Appends a child, started after the ones already added
    pub fn with_child(mut self, child: ChildSpec) -> Self {
        self.children.push(child);
        self
    }
}
