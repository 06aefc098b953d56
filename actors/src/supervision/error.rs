//! Why a supervisor failed to start or gave up.

use std::time::Duration;

use ractor::SpawnErr;

/// Why a supervisor failed to start or failed upward
#[derive(Debug, thiserror::Error)]
pub enum SupervisionError {
    /// A child could not be started while the supervisor was starting
    #[error("child {child} failed to start: {source}")]
    ChildStartFailed {
        /// Name of the child that failed to start
        child: String,
        /// The spawn error returned by the child's start function
        #[source]
        source: SpawnErr,
    },
    /// Two children of one supervisor share a name
    #[error("duplicate child name {child}")]
    DuplicateChild {
        /// The name used twice
        child: String,
    },
    /// More restarts than the budget allows happened within its window
    #[error("restart budget exhausted: {restarts} restarts in {window:?} for child {child}")]
    BudgetExhausted {
        /// Restarts counted within the window, including the refused one
        restarts: usize,
        /// The budget's window
        window: Duration,
        /// The child whose exit exhausted the budget
        child: String,
    },
}

impl SupervisionError {
    /// Whether starting the same supervisor again may succeed
    pub fn is_retryable(&self) -> bool {
        match self {
            // A child's dependency may come back; the parent's budget bounds the retries.
            Self::ChildStartFailed { .. } | Self::BudgetExhausted { .. } => true,
            // A spec error fails the same way every time.
            Self::DuplicateChild { .. } => false,
        }
    }
}
