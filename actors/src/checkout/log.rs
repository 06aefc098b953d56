//! The checkout log: a pure, Raft-like replicated log with fencing epochs.
//!
//! One node at a time is the *owner*: it alone appends records, each
//! stamped with its epoch, and a record is committed once a majority of
//! the expected cluster (the owner included) stores it. Every other node is
//! a follower that accepts appends only from the highest epoch it has
//! promised.
//!
//! Becoming owner (promotion) takes a new epoch `e` and a majority of
//! promises: a node that promises `e` refuses anything from a lower epoch
//! from then on, so an old owner cut off from the majority can never
//! commit again. The new owner adopts the most up-to-date log among the
//! promises (highest last epoch, then longest), which contains every
//! committed record because any two majorities intersect, and appends a
//! `Promoted` marker in its own epoch before acknowledging anything (the
//! marker commits the records it inherited, as Raft's no-op does).
//!
//! This module is pure: the actor persists what it returns before replying.

use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// One record of the log.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "R: Serialize + DeserializeOwned")]
pub struct Entry<R> {
    /// Position, from 1.
    pub index: u64,
    /// Epoch of the owner that appended it.
    pub epoch: u64,
    /// The record.
    pub record: R,
}

/// A follower's answer to a promise request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum PromiseReply {
    /// Promised: the follower's last entry, to pick the most up-to-date log.
    Promised {
        /// Index of its last entry.
        last_index: u64,
        /// Epoch of its last entry.
        last_epoch: u64,
    },
    /// Refused: it already promised this epoch or a higher one.
    Refused {
        /// Its promised epoch.
        promised: u64,
    },
}

/// An owner's append: entries after `prev_index`, which must hold
/// `prev_epoch` at the follower.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(bound = "R: Serialize + DeserializeOwned")]
pub struct Append<R> {
    /// The owner's epoch.
    pub epoch: u64,
    /// The owner's name, so followers know whom to forward to.
    pub owner: String,
    /// Index of the entry before `entries` (0 for the start).
    pub prev_index: u64,
    /// Epoch of that entry (0 for the start).
    pub prev_epoch: u64,
    /// Entries to store, contiguous from `prev_index + 1`.
    pub entries: Vec<Entry<R>>,
    /// The owner's commit index.
    pub commit: u64,
}

/// A follower's answer to an append.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum AppendReply {
    /// Stored: the follower's log matches the owner's up to `last_index`.
    Stored {
        /// Index of its last entry.
        last_index: u64,
    },
    /// The entry at `prev_index` is missing or differs: resend from earlier.
    Mismatch {
        /// Index of its last entry, a hint for the resend.
        last_index: u64,
    },
    /// Refused: the follower promised a higher epoch.
    Stale {
        /// Its promised epoch.
        promised: u64,
    },
}

/// What the caller must make durable before answering.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Persist<R> {
    /// Nothing changed.
    Nothing,
    /// The promised epoch rose.
    Promise(u64),
    /// Entries from `from` on were replaced by `entries`.
    Replace {
        /// First index replaced.
        from: u64,
        /// The new entries from `from`.
        entries: Vec<Entry<R>>,
    },
}

/// One node's copy of the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplicaLog<R> {
    promised: u64,
    entries: Vec<Entry<R>>,
    commit: u64,
}

impl<R: Clone + PartialEq> ReplicaLog<R> {
    /// A log restored from storage; `entries` must be contiguous from 1.
    pub fn restore(promised: u64, entries: Vec<Entry<R>>, commit: u64) -> Self {
        debug_assert!(entries
            .iter()
            .enumerate()
            .all(|(i, entry)| entry.index == i as u64 + 1));
        let commit = commit.min(entries.len() as u64);
        Self {
            promised,
            entries,
            commit,
        }
    }

    /// The highest epoch promised.
    pub fn promised(&self) -> u64 {
        self.promised
    }

    /// Index and epoch of the last entry, `(0, 0)` when empty.
    pub fn last(&self) -> (u64, u64) {
        self.entries
            .last()
            .map_or((0, 0), |entry| (entry.index, entry.epoch))
    }

    /// Highest index known committed.
    pub fn commit(&self) -> u64 {
        self.commit
    }

    /// Every entry.
    pub fn entries(&self) -> &[Entry<R>] {
        &self.entries
    }

    /// Entries from `index` on.
    pub fn entries_from(&self, index: u64) -> &[Entry<R>] {
        let start = (index.max(1) - 1) as usize;
        self.entries.get(start..).unwrap_or(&[])
    }

    /// Committed entries.
    pub fn committed(&self) -> &[Entry<R>] {
        &self.entries[..self.commit as usize]
    }

    fn epoch_at(&self, index: u64) -> Option<u64> {
        match index {
            0 => Some(0),
            _ => self
                .entries
                .get(index as usize - 1)
                .map(|entry| entry.epoch),
        }
    }

    /// Answers a promise request for `epoch`.
    pub fn promise(&mut self, epoch: u64) -> (PromiseReply, Persist<R>) {
        if epoch <= self.promised {
            return (
                PromiseReply::Refused {
                    promised: self.promised,
                },
                Persist::Nothing,
            );
        }
        self.promised = epoch;
        let (last_index, last_epoch) = self.last();
        (
            PromiseReply::Promised {
                last_index,
                last_epoch,
            },
            Persist::Promise(epoch),
        )
    }

    /// Applies an owner's append (Raft's consistency check; a conflicting
    /// suffix is replaced, never a committed prefix).
    pub fn append(&mut self, append: &Append<R>) -> (AppendReply, Persist<R>) {
        if append.epoch < self.promised {
            return (
                AppendReply::Stale {
                    promised: self.promised,
                },
                Persist::Nothing,
            );
        }
        let promise = append.epoch > self.promised;
        self.promised = append.epoch;
        if self.epoch_at(append.prev_index) != Some(append.prev_epoch) {
            let persist = if promise {
                Persist::Promise(append.epoch)
            } else {
                Persist::Nothing
            };
            let last_index = self.last().0;
            return (AppendReply::Mismatch { last_index }, persist);
        }
        // Skip entries already held; replace from the first that differs.
        let mut first_new = None;
        for (offset, entry) in append.entries.iter().enumerate() {
            debug_assert_eq!(entry.index, append.prev_index + 1 + offset as u64);
            match self.entries.get(entry.index as usize - 1) {
                Some(held) if held == entry => continue,
                _ => {
                    first_new = Some(offset);
                    break;
                }
            }
        }
        let persist = match first_new {
            Some(offset) => {
                let from = append.prev_index + 1 + offset as u64;
                debug_assert!(from > self.commit, "a committed entry cannot conflict");
                self.entries.truncate(from as usize - 1);
                let new: Vec<Entry<R>> = append.entries[offset..].to_vec();
                self.entries.extend(new.iter().cloned());
                Persist::Replace { from, entries: new }
            }
            None if promise => Persist::Promise(append.epoch),
            None => Persist::Nothing,
        };
        let last_index = append.prev_index + append.entries.len() as u64;
        self.commit = self.commit.max(append.commit.min(last_index));
        (AppendReply::Stored { last_index }, persist)
    }

    /// As owner in epoch `epoch`: appends `record` locally.
    pub fn push(&mut self, epoch: u64, record: R) -> (Entry<R>, Persist<R>) {
        debug_assert_eq!(
            epoch, self.promised,
            "only the owner of the promised epoch appends"
        );
        let entry = Entry {
            index: self.last().0 + 1,
            epoch,
            record,
        };
        self.entries.push(entry.clone());
        let persist = Persist::Replace {
            from: entry.index,
            entries: vec![entry.clone()],
        };
        (entry, persist)
    }

    /// As a new owner: adopts a more up-to-date log received from a peer.
    pub fn adopt(&mut self, entries: Vec<Entry<R>>) -> Persist<R> {
        let differs_at = self
            .entries
            .iter()
            .zip(&entries)
            .position(|(held, offered)| held != offered)
            .unwrap_or(self.entries.len().min(entries.len()));
        let from = differs_at as u64 + 1;
        self.entries.truncate(differs_at);
        let new: Vec<Entry<R>> = entries[differs_at.min(entries.len())..].to_vec();
        self.entries.extend(new.iter().cloned());
        self.commit = self.commit.min(self.entries.len() as u64);
        Persist::Replace { from, entries: new }
    }

    /// As a new owner: replaces its entries from `from` on with a more
    /// up-to-date peer's (the prefix before `from` is committed, so equal).
    pub fn adopt_from(&mut self, from: u64, entries: Vec<Entry<R>>) -> Persist<R> {
        let from = from.max(1);
        let keep = (from - 1).min(self.entries.len() as u64) as usize;
        let differs_at = self.entries[keep..]
            .iter()
            .zip(&entries)
            .position(|(held, offered)| held != offered)
            .unwrap_or((self.entries.len() - keep).min(entries.len()));
        let first = keep + differs_at;
        if first == self.entries.len() && differs_at == entries.len() {
            return Persist::Nothing;
        }
        self.entries.truncate(first);
        let new: Vec<Entry<R>> = entries[differs_at..].to_vec();
        self.entries.extend(new.iter().cloned());
        self.commit = self.commit.min(self.entries.len() as u64);
        Persist::Replace {
            from: first as u64 + 1,
            entries: new,
        }
    }

    /// The epoch of the entry at `index` (0 for index 0), if held.
    pub fn epoch_of(&self, index: u64) -> Option<u64> {
        self.epoch_at(index)
    }

    /// As owner: raises the commit index to `index` (a majority stores it
    /// and it is of the owner's epoch, or precedes such an entry).
    pub fn commit_to(&mut self, index: u64) {
        self.commit = self.commit.max(index.min(self.last().0));
    }
}

/// Of the promises gathered (with the node's own), the one whose log is
/// most up to date: highest last epoch, then longest.
pub fn most_up_to_date<'a>(
    promises: impl IntoIterator<Item = (&'a str, u64, u64)>,
) -> Option<&'a str> {
    promises
        .into_iter()
        .max_by_key(|(name, last_index, last_epoch)| {
            (*last_epoch, *last_index, std::cmp::Reverse(*name))
        })
        .map(|(name, _, _)| name)
}

/// The commit index an owner may claim: the highest index stored by a
/// majority of `expected` nodes (`stored` holds every node's last stored
/// index, the owner's included) whose entry is of the owner's `epoch`.
pub fn majority_commit<R>(log: &ReplicaLog<R>, epoch: u64, stored: &[u64], expected: usize) -> u64 {
    let majority = expected / 2 + 1;
    let mut sorted = stored.to_vec();
    sorted.sort_unstable_by(|a, b| b.cmp(a));
    let Some(&candidate) = sorted.get(majority - 1) else {
        return log.commit;
    };
    match log.entries.get(candidate.max(1) as usize - 1) {
        Some(entry) if candidate > 0 && entry.epoch == epoch => candidate.max(log.commit),
        _ => log.commit,
    }
}

#[cfg(test)]
mod tests;
