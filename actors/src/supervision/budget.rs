//! Restart intensity: how many restarts a supervisor tolerates within a
//! sliding window before it gives up and fails upward.
//!
//! Pure bookkeeping (no ractor, no tokio): the caller passes the clock in,
//! so the arithmetic is tested synchronously.
//!
//! Invariant: a [`RestartLog`] only holds restarts younger than the budget's
//! window, oldest first, so its length is the current intensity.

use std::collections::VecDeque;
use std::time::{Duration, Instant};

/// Restarts tolerated within [`DEFAULT_RESTART_WINDOW`] by default (OTP's intensity)
pub const DEFAULT_MAX_RESTARTS: usize = 3;

/// Sliding window of the default restart budget (OTP's period)
pub const DEFAULT_RESTART_WINDOW: Duration = Duration::from_secs(5);

/// How many restarts a supervisor may make within a window before escalating
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RestartBudget {
    /// Restarts tolerated within `window`; one more makes the supervisor fail
    pub max_restarts: usize,
    /// Length of the sliding window the restarts are counted in
    pub window: Duration,
}

impl RestartBudget {
    /// A budget of `max_restarts` restarts per `window`
    pub fn new(max_restarts: usize, window: Duration) -> Self {
        Self {
            max_restarts,
            window,
        }
    }
}

impl Default for RestartBudget {
    /// 3 restarts in 5 s, as in DESIGN.md
    fn default() -> Self {
        Self::new(DEFAULT_MAX_RESTARTS, DEFAULT_RESTART_WINDOW)
    }
}

/// Outcome of recording one restart against a budget
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Intensity {
    /// Still within budget; carries the restarts now in the window
    Within(usize),
    /// Budget exceeded; carries the restarts now in the window
    Exhausted(usize),
}

/// The recent restarts of one supervisor, checked against its budget
#[derive(Debug, Clone)]
pub struct RestartLog {
    budget: RestartBudget,
    /// Times of the restarts still inside the window, oldest first
    recent: VecDeque<Instant>,
}

impl RestartLog {
    /// An empty log for `budget`
    pub fn new(budget: RestartBudget) -> Self {
        Self {
            budget,
            recent: VecDeque::with_capacity(budget.max_restarts.saturating_add(1).min(64)),
        }
    }

    /// The budget this log enforces
    pub fn budget(&self) -> RestartBudget {
        self.budget
    }

    /// Records a restart at `now` and says whether the budget still holds
    pub fn record(&mut self, now: Instant) -> Intensity {
        self.recent.push_back(now);
        // The restart just recorded always counts, even with a zero window.
        while self.recent.len() > 1 {
            let Some(&oldest) = self.recent.front() else {
                break;
            };
            if now.saturating_duration_since(oldest) < self.budget.window {
                break;
            }
            self.recent.pop_front();
        }
        let in_window = self.recent.len();
        if in_window > self.budget.max_restarts {
            Intensity::Exhausted(in_window)
        } else {
            Intensity::Within(in_window)
        }
    }
}
