//! Who counts: the voter configuration a log carries, and the quorum rule.
//!
//! The configuration in effect is the latest `Record::Voters` in the
//! node's log, committed or not (Raft's rule for single-server changes),
//! else the bootstrap set. Since every change adds or removes exactly one
//! voter, any majority of the old set and any majority of the new one
//! intersect, so no two owners can be elected or commit through disjoint
//! quorums across a change.

use std::collections::BTreeSet;

use super::super::log::Entry;
use super::super::model::Record;

/// Who votes, and how many make a quorum.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum QuorumRule {
    /// A strict majority of the voter set in the log. The rule.
    Voters,
    /// Every reachable node votes, and a quorum is a majority of an
    /// expected size: the rule checkout had before voters existed, unsafe
    /// as soon as more nodes run than expected. Kept only so that the
    /// simulator can show it catches the loss this causes.
    AnyOfExpected(usize),
}

/// The voter sets a log holds, by index, so that a truncation can restore
/// the one before it without scanning the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Configs {
    /// The set in force before any `Voters` record.
    bootstrap: BTreeSet<String>,
    /// Every `Voters` record of the log: (index, set), by index.
    changes: Vec<(u64, BTreeSet<String>)>,
}

impl Configs {
    /// The configurations of `entries` over `bootstrap`.
    pub fn new(bootstrap: BTreeSet<String>, entries: &[Entry<Record>]) -> Self {
        let mut configs = Self {
            bootstrap,
            changes: Vec::new(),
        };
        configs.appended(entries);
        configs
    }

    /// Notes `Voters` records among newly appended `entries`.
    pub fn appended(&mut self, entries: &[Entry<Record>]) {
        for entry in entries {
            if let Record::Voters(voters) = &entry.record {
                self.changes
                    .push((entry.index, voters.iter().cloned().collect()));
            }
        }
    }

    /// Forgets records from index `from` on (a replaced suffix).
    pub fn truncated(&mut self, from: u64) {
        self.changes.retain(|(index, _)| *index < from);
    }

    /// The voter set in effect.
    pub fn current(&self) -> &BTreeSet<String> {
        self.changes
            .last()
            .map_or(&self.bootstrap, |(_, voters)| voters)
    }

    /// Index of the latest change, 0 if none.
    pub fn latest_change(&self) -> u64 {
        self.changes.last().map_or(0, |(index, _)| *index)
    }
}

impl QuorumRule {
    /// Whether `node` votes under `voters`.
    pub fn votes(&self, voters: &BTreeSet<String>, node: &str) -> bool {
        match self {
            Self::Voters => voters.contains(node),
            Self::AnyOfExpected(_) => true,
        }
    }

    /// Whether `nodes` (distinct) form a quorum under `voters`.
    pub fn is_quorum<'a>(
        &self,
        voters: &BTreeSet<String>,
        nodes: impl IntoIterator<Item = &'a String>,
    ) -> bool {
        match self {
            Self::Voters => {
                let count = nodes
                    .into_iter()
                    .filter(|node| voters.contains(*node))
                    .count();
                bazaar_cluster::voters::is_majority(count, voters.len())
            }
            Self::AnyOfExpected(expected) => nodes.into_iter().count() > expected / 2,
        }
    }

    /// The highest index that a quorum stores, given each node's highest
    /// stored index.
    pub fn quorum_index<'a>(
        &self,
        voters: &BTreeSet<String>,
        stored: impl IntoIterator<Item = (&'a String, u64)>,
    ) -> u64 {
        let (mut indexes, needed): (Vec<u64>, usize) = match self {
            Self::Voters => (
                stored
                    .into_iter()
                    .filter(|(node, _)| voters.contains(*node))
                    .map(|(_, index)| index)
                    .collect(),
                voters.len() / 2 + 1,
            ),
            Self::AnyOfExpected(expected) => (
                stored.into_iter().map(|(_, index)| index).collect(),
                expected / 2 + 1,
            ),
        };
        indexes.sort_unstable_by(|a, b| b.cmp(a));
        indexes.get(needed - 1).copied().unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn set(names: &[&str]) -> BTreeSet<String> {
        names.iter().map(|name| name.to_string()).collect()
    }

    #[test]
    fn only_voters_count_and_a_majority_is_strict() {
        let voters = set(&["n1", "n2", "n3"]);
        let rule = QuorumRule::Voters;
        assert!(!rule.is_quorum(&voters, &set(&["n1", "n4", "n5"])));
        assert!(rule.is_quorum(&voters, &set(&["n1", "n3"])));
        let stored = [("n1", 9), ("n2", 4), ("n4", 12), ("n5", 12)];
        let stored: Vec<(String, u64)> = stored.iter().map(|(n, i)| (n.to_string(), *i)).collect();
        assert_eq!(
            rule.quorum_index(&voters, stored.iter().map(|(n, i)| (n, *i))),
            4
        );
    }

    #[test]
    fn the_latest_change_is_in_effect_until_truncated() {
        let entry = |index, voters: &[&str]| Entry {
            index,
            epoch: 1,
            record: Record::Voters(voters.iter().map(|v| v.to_string()).collect()),
        };
        let mut configs = Configs::new(set(&["n1", "n2", "n3"]), &[entry(2, &["n1", "n2"])]);
        assert_eq!(configs.current(), &set(&["n1", "n2"]));
        configs.appended(&[entry(5, &["n1", "n2", "n4"])]);
        assert_eq!(configs.latest_change(), 5);
        configs.truncated(5);
        assert_eq!(configs.current(), &set(&["n1", "n2"]));
        configs.truncated(1);
        assert_eq!(configs.current(), &set(&["n1", "n2", "n3"]));
    }
}
