//! Whom to dial and when: a pure schedule of connection attempts with
//! exponential backoff.
//!
//! Targets are seed addresses and the addresses peers advertise. A target
//! is dialed while no ready session reaches it; after a failed attempt the
//! wait doubles up to a cap, and it resets once a session is up. An attempt
//! that connected at TCP level but did not become a ready session within
//! the handshake timeout counts as failed.

use std::collections::{BTreeMap, HashSet};
use std::time::{Duration, Instant};

/// Backoff and timeout settings of the dialer.
#[derive(Debug, Clone, Copy)]
pub struct DialerConfig {
    /// First wait after a failure.
    pub min_backoff: Duration,
    /// Longest wait between attempts.
    pub max_backoff: Duration,
    /// Time for a dialed connection to become a ready session.
    pub handshake_timeout: Duration,
}

impl Default for DialerConfig {
    fn default() -> Self {
        Self {
            min_backoff: Duration::from_millis(100),
            max_backoff: Duration::from_secs(1),
            handshake_timeout: Duration::from_secs(2),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum DialState {
    Idle { next_at: Instant },
    Dialing { since: Instant },
    Connected,
}

#[derive(Debug)]
struct Target {
    state: DialState,
    backoff: Duration,
}

/// The dial schedule of one node.
#[derive(Debug)]
pub struct Dialer {
    config: DialerConfig,
    targets: BTreeMap<String, Target>,
}

impl Dialer {
    /// An empty schedule.
    pub fn new(config: DialerConfig) -> Self {
        Self {
            config,
            targets: BTreeMap::new(),
        }
    }

    /// Adds a target to dial from now on; known targets are left alone.
    pub fn add(&mut self, addr: &str, now: Instant) {
        self.targets.entry(addr.to_string()).or_insert(Target {
            state: DialState::Idle { next_at: now },
            backoff: self.config.min_backoff,
        });
    }

    /// Updates which targets have a ready session.
    pub fn set_connected(&mut self, connected: &HashSet<String>, now: Instant) {
        for (addr, target) in &mut self.targets {
            let is_connected = connected.contains(addr);
            match (target.state, is_connected) {
                (_, true) => {
                    target.state = DialState::Connected;
                    target.backoff = self.config.min_backoff;
                }
                (DialState::Connected, false) => {
                    target.state = DialState::Idle { next_at: now };
                }
                _ => {}
            }
        }
    }

    /// Targets to dial now; they are marked as being dialed.
    pub fn due(&mut self, now: Instant) -> Vec<String> {
        let mut due = Vec::new();
        for (addr, target) in &mut self.targets {
            match target.state {
                DialState::Idle { next_at } if next_at <= now => {
                    target.state = DialState::Dialing { since: now };
                    due.push(addr.clone());
                }
                DialState::Dialing { since }
                    if now.saturating_duration_since(since) >= self.config.handshake_timeout =>
                {
                    Self::back_off(&self.config, target, now);
                }
                _ => {}
            }
        }
        due
    }

    /// An attempt to `addr` failed to connect.
    pub fn failed(&mut self, addr: &str, now: Instant) {
        if let Some(target) = self.targets.get_mut(addr) {
            if matches!(target.state, DialState::Dialing { .. }) {
                Self::back_off(&self.config, target, now);
            }
        }
    }

    fn back_off(config: &DialerConfig, target: &mut Target, now: Instant) {
        target.state = DialState::Idle {
            next_at: now + target.backoff,
        };
        target.backoff = (target.backoff * 2).min(config.max_backoff);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ms(start: Instant, ms: u64) -> Instant {
        start + Duration::from_millis(ms)
    }

    #[test]
    fn failures_back_off_exponentially_up_to_the_cap() {
        let start = Instant::now();
        let mut dialer = Dialer::new(DialerConfig::default());
        dialer.add("a:1", start);
        assert_eq!(dialer.due(start), vec!["a:1".to_string()]);
        assert!(dialer.due(start).is_empty(), "already dialing");
        let mut now = start;
        let mut waits = Vec::new();
        for _ in 0..6 {
            dialer.failed("a:1", now);
            let mut t = now;
            while dialer.due(t).is_empty() {
                t += Duration::from_millis(10);
            }
            waits.push((t - now).as_millis());
            now = t;
        }
        assert_eq!(waits, vec![100, 200, 400, 800, 1000, 1000]);
    }

    #[test]
    fn a_connected_target_is_not_dialed_and_resets_its_backoff() {
        let start = Instant::now();
        let mut dialer = Dialer::new(DialerConfig::default());
        dialer.add("a:1", start);
        dialer.due(start);
        dialer.failed("a:1", start);
        dialer.due(ms(start, 100));
        dialer.failed("a:1", ms(start, 100));
        let connected: HashSet<String> = ["a:1".to_string()].into();
        dialer.set_connected(&connected, ms(start, 150));
        assert!(dialer.due(ms(start, 10_000)).is_empty());
        dialer.set_connected(&HashSet::new(), ms(start, 10_000));
        assert_eq!(dialer.due(ms(start, 10_000)), vec!["a:1".to_string()]);
        dialer.failed("a:1", ms(start, 10_000));
        assert!(dialer.due(ms(start, 10_099)).is_empty());
        assert_eq!(dialer.due(ms(start, 10_100)).len(), 1);
    }

    #[test]
    fn a_stalled_handshake_counts_as_a_failure() {
        let start = Instant::now();
        let mut dialer = Dialer::new(DialerConfig::default());
        dialer.add("a:1", start);
        dialer.due(start);
        assert!(dialer.due(ms(start, 1999)).is_empty());
        assert!(dialer.due(ms(start, 2000)).is_empty(), "backing off");
        assert_eq!(dialer.due(ms(start, 2100)).len(), 1);
    }
}
