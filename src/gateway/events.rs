//! The node's recent events, as `/api/cluster` serves them to the
//! dashboard: membership changes (joined, up, suspect, down), restarts
//! (a new incarnation of a member) and checkout owner changes, as this
//! node saw them. A bounded ring: the last [`MAX_EVENTS`], oldest dropped,
//! so a reload of the page keeps its timeline and memory stays flat.
//!
//! A task records them: it wakes on every change of the membership view
//! and polls checkout's status every [`CHECKOUT_POLL_INTERVAL`].

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use bazaar_actors::checkout::CheckoutClient;
use bazaar_cluster::membership::table::unix_ms_now;
use bazaar_cluster::MembershipView;
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// Events kept per node.
pub const MAX_EVENTS: usize = 200;
/// How often checkout's owner is checked for a change.
const CHECKOUT_POLL_INTERVAL: Duration = Duration::from_secs(1);

/// One event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Event {
    /// When this node saw it, ms since the Unix epoch.
    pub at_ms: u64,
    /// What happened, e.g. `n3 down (was up)`.
    pub text: String,
}

/// The ring of recent events; clones share it.
#[derive(Debug, Clone, Default)]
pub struct RecentEvents(Arc<Mutex<VecDeque<Event>>>);

impl RecentEvents {
    /// Records `text` now, dropping the oldest event at the cap.
    pub fn push(&self, text: String) {
        let mut events = self.0.lock();
        if events.len() == MAX_EVENTS {
            events.pop_front();
        }
        events.push_back(Event {
            at_ms: unix_ms_now(),
            text,
        });
    }

    /// The events, oldest first.
    pub fn snapshot(&self) -> Vec<Event> {
        self.0.lock().iter().cloned().collect()
    }
}

/// What changed between two views of the membership, as event texts.
pub fn membership_changes(before: &MembershipView, after: &MembershipView) -> Vec<String> {
    let mut changes = Vec::new();
    for (name, member) in &after.members {
        let state = member.state.as_str();
        match before.members.get(name) {
            None => changes.push(format!("{name} joined ({state})")),
            Some(old) if old.info.incarnation != member.info.incarnation => {
                changes.push(format!("{name} restarted (pid {})", member.info.pid));
            }
            Some(old) if old.state != member.state => {
                changes.push(format!("{name} {state} (was {})", old.state.as_str()));
            }
            Some(_) => {}
        }
    }
    changes
}

/// Starts the task that records this node's events.
pub fn spawn_recorder(
    mut view: watch::Receiver<MembershipView>,
    checkout: CheckoutClient,
) -> RecentEvents {
    let events = RecentEvents::default();
    let recorded = events.clone();
    tokio::spawn(async move {
        let mut seen = view.borrow_and_update().clone();
        recorded.push(format!("{} started", seen.local));
        let mut owner: Option<(String, u64)> = None;
        let mut poll = tokio::time::interval(CHECKOUT_POLL_INTERVAL);
        loop {
            tokio::select! {
                changed = view.changed() => {
                    if changed.is_err() {
                        break;
                    }
                    let now = view.borrow_and_update().clone();
                    for text in membership_changes(&seen, &now) {
                        recorded.push(text);
                    }
                    seen = now;
                }
                _ = poll.tick() => {
                    let Ok(status) = checkout.status().await else { continue };
                    let Some(current) = status.owner.map(|name| (name, status.epoch)) else {
                        continue;
                    };
                    if owner.as_ref() != Some(&current) {
                        let was = owner.as_ref().map_or(String::new(), |(name, _)| format!(", was {name}"));
                        recorded.push(format!("checkout owner {} (epoch {}){was}", current.0, current.1));
                        owner = Some(current);
                    }
                }
            }
        }
    });
    events
}

#[cfg(test)]
mod tests {
    use bazaar_cluster::{Member, MemberInfo, MemberState};

    use super::*;

    fn view(members: &[(&str, MemberState, u64)]) -> MembershipView {
        let members = members
            .iter()
            .map(|&(name, state, incarnation)| {
                let info = MemberInfo {
                    name: name.to_string(),
                    cluster_addr: String::new(),
                    http_addr: String::new(),
                    pid: 7,
                    incarnation,
                };
                let member = Member {
                    info,
                    state,
                    since_ms: 0,
                };
                (name.to_string(), member)
            })
            .collect();
        MembershipView {
            local: "n1".into(),
            expected: 3,
            members,
        }
    }

    #[test]
    fn changes_name_joins_state_changes_and_restarts() {
        use MemberState::{Down, Up};
        let before = view(&[("n1", Up, 1), ("n2", Up, 1), ("n3", Up, 1)]);
        let after = view(&[("n1", Up, 1), ("n2", Down, 1), ("n3", Up, 2), ("n4", Up, 1)]);
        assert_eq!(
            membership_changes(&before, &after),
            ["n2 down (was up)", "n3 restarted (pid 7)", "n4 joined (up)"]
        );
        assert!(membership_changes(&after, &after).is_empty());
    }

    #[test]
    fn the_ring_keeps_the_last_events() {
        let events = RecentEvents::default();
        for i in 0..MAX_EVENTS + 10 {
            events.push(format!("event {i}"));
        }
        let kept = events.snapshot();
        assert_eq!(kept.len(), MAX_EVENTS);
        assert_eq!(kept[0].text, "event 10");
    }
}
