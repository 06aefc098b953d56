//! Polling with a deadline, the only way the tests wait: a condition is
//! evaluated every [`POLL_INTERVAL`] until it holds or time runs out, and
//! the time it took is returned so tests can print it.

use std::thread;
use std::time::{Duration, Instant};

use super::{TestCluster, POLL_INTERVAL};

impl TestCluster {
    /// Polls `condition` every [`POLL_INTERVAL`] until it holds or
    /// `timeout` has passed since now; returns the time it took.
    pub fn wait_until(
        &self,
        timeout: Duration,
        condition: impl FnMut(&Self) -> bool,
    ) -> Option<Duration> {
        self.wait_until_since(Instant::now(), timeout, condition)
    }

    /// Like [`Self::wait_until`], but measures from `start` (e.g. the moment
    /// a node was killed) and gives up at `start + timeout`.
    pub fn wait_until_since(
        &self,
        start: Instant,
        timeout: Duration,
        mut condition: impl FnMut(&Self) -> bool,
    ) -> Option<Duration> {
        let deadline = start + timeout;
        loop {
            if condition(self) {
                return Some(start.elapsed());
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Like [`Self::wait_until_since`], but panics with `what` and a dump
    /// of every node's view when the condition does not hold in time.
    pub fn expect_within(
        &self,
        start: Instant,
        timeout: Duration,
        what: &str,
        condition: impl FnMut(&Self) -> bool,
    ) -> Duration {
        self.wait_until_since(start, timeout, condition)
            .unwrap_or_else(|| panic!("timed out after {timeout:?}: {what}\n{}", self.describe()))
    }
}
