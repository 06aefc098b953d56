//! The voter set: the nodes whose majority decides, however many nodes run.
//!
//! Membership knows who is reachable; it cannot say which side of a
//! partition may act, because "a majority of whoever is reachable" (or of
//! an expected size smaller than the node count) lets two disjoint groups
//! both believe they are the majority. A fixed, explicit set of voters
//! cannot: two disjoint groups never both hold a strict majority of it.
//!
//! The authoritative copy lives in checkout's replicated log (it is changed
//! one server at a time through that log); this handle is the node's
//! current reading of it, published by the checkout replica and read by
//! whatever else needs a quorum (carts, readiness, the API).
//!
//! Invariant: the set is never empty once a node is configured; an empty
//! set means "not yet known", and no quorum is claimed on it.

use std::collections::BTreeSet;
use std::sync::Arc;

use tokio::sync::watch;

use crate::member::MembershipView;

/// The node's reading of the voter set, shared by every service on it.
#[derive(Debug, Clone)]
pub struct Voters {
    /// The current set; receivers see every change.
    sender: Arc<watch::Sender<BTreeSet<String>>>,
}

impl Voters {
    /// A handle holding `voters` (the bootstrap set from `--voters`).
    pub fn new(voters: impl IntoIterator<Item = String>) -> Self {
        let (sender, _) = watch::channel(voters.into_iter().collect());
        Self {
            sender: Arc::new(sender),
        }
    }

    /// The current voter set.
    pub fn get(&self) -> BTreeSet<String> {
        self.sender.borrow().clone()
    }

    /// Replaces the set (the checkout replica, when its log's configuration changes).
    pub fn set(&self, voters: BTreeSet<String>) {
        self.sender.send_if_modified(|current| {
            if *current == voters {
                return false;
            }
            *current = voters;
            true
        });
    }

    /// A receiver that sees every change.
    pub fn subscribe(&self) -> watch::Receiver<BTreeSet<String>> {
        self.sender.subscribe()
    }

    /// Whether `name` is a voter.
    pub fn contains(&self, name: &str) -> bool {
        self.sender.borrow().contains(name)
    }

    /// True when the members reachable in `view` (this node included) are a
    /// strict majority of the voters.
    pub fn reachable_majority(&self, view: &MembershipView) -> bool {
        let voters = self.sender.borrow();
        let reachable = voters
            .iter()
            .filter(|voter| {
                view.members
                    .get(*voter)
                    .is_some_and(|member| member.state.is_reachable())
            })
            .count();
        is_majority(reachable, voters.len())
    }
}

/// `count` of `voters` is a strict majority (never of an empty set).
pub fn is_majority(count: usize, voters: usize) -> bool {
    voters > 0 && count > voters / 2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_majority_is_strict_and_never_of_nothing() {
        assert!(!is_majority(0, 0));
        assert!(is_majority(1, 1));
        assert!(!is_majority(1, 2));
        assert!(is_majority(2, 3));
        assert!(!is_majority(2, 4));
        assert!(is_majority(3, 5));
    }
}
