use proptest::prelude::*;

use super::*;

fn entry(index: u64, epoch: u64, record: u32) -> Entry<u32> {
    Entry {
        index,
        epoch,
        record,
    }
}

fn append(epoch: u64, prev: (u64, u64), entries: Vec<Entry<u32>>, commit: u64) -> Append<u32> {
    Append {
        epoch,
        owner: "n1".into(),
        prev_index: prev.0,
        prev_epoch: prev.1,
        entries,
        commit,
    }
}

#[test]
fn a_promise_fences_lower_epochs() {
    let mut log = ReplicaLog::<u32>::restore(0, vec![], 0);
    assert_eq!(
        log.promise(2),
        (
            PromiseReply::Promised {
                last_index: 0,
                last_epoch: 0
            },
            Persist::Promise(2)
        )
    );
    assert_eq!(log.promise(2).0, PromiseReply::Refused { promised: 2 });
    let (reply, persist) = log.append(&append(1, (0, 0), vec![entry(1, 1, 7)], 1));
    assert_eq!(reply, AppendReply::Stale { promised: 2 });
    assert_eq!(persist, Persist::Nothing);
    assert!(log.entries().is_empty());
}

#[test]
fn appends_check_the_previous_entry_and_replace_a_conflicting_suffix() {
    let mut log = ReplicaLog::restore(1, vec![entry(1, 1, 10), entry(2, 1, 11)], 1);
    // A gap is refused.
    let (reply, _) = log.append(&append(1, (3, 1), vec![entry(4, 1, 13)], 1));
    assert_eq!(reply, AppendReply::Mismatch { last_index: 2 });
    // An owner of epoch 2 rewrites the uncommitted entry 2.
    let (reply, persist) = log.append(&append(
        2,
        (1, 1),
        vec![entry(2, 2, 20), entry(3, 2, 21)],
        3,
    ));
    assert_eq!(reply, AppendReply::Stored { last_index: 3 });
    assert_eq!(
        persist,
        Persist::Replace {
            from: 2,
            entries: vec![entry(2, 2, 20), entry(3, 2, 21)]
        }
    );
    assert_eq!(log.commit(), 3);
    assert_eq!(log.promised(), 2);
    // A repeated append changes nothing.
    let (reply, persist) = log.append(&append(2, (1, 1), vec![entry(2, 2, 20)], 3));
    assert_eq!(reply, AppendReply::Stored { last_index: 2 });
    assert_eq!(persist, Persist::Nothing);
    assert_eq!(log.last(), (3, 2));
}

#[test]
fn commit_needs_a_majority_and_an_entry_of_the_owners_epoch() {
    let log = ReplicaLog::restore(2, vec![entry(1, 1, 1), entry(2, 2, 2), entry(3, 2, 3)], 0);
    assert_eq!(majority_commit(&log, 2, &[3, 0, 0], 3), 0);
    assert_eq!(majority_commit(&log, 2, &[3, 2, 0], 3), 2);
    assert_eq!(majority_commit(&log, 2, &[3, 3, 1], 3), 3);
    // Entry 1 is of epoch 1: counting replicas does not commit it for an
    // owner of epoch 2 (it commits with the first entry of epoch 2).
    assert_eq!(majority_commit(&log, 2, &[3, 1, 1], 3), 0);
    assert_eq!(majority_commit(&log, 2, &[3, 3, 3, 0, 0], 5), 3);
    assert_eq!(majority_commit(&log, 2, &[3, 3, 0, 0, 0], 5), 0);
}

#[test]
fn the_most_up_to_date_log_wins_promotion() {
    let picked = most_up_to_date([("n1", 5, 1), ("n2", 3, 2), ("n3", 4, 2)]);
    assert_eq!(picked, Some("n3"));
    assert_eq!(most_up_to_date([("n1", 2, 2), ("n2", 2, 2)]), Some("n1"));
}

/// A cluster of three logs driven by random promotions, proposals and
/// partial deliveries: what an owner acknowledged (committed) is never
/// lost or changed by a later owner.
#[derive(Debug, Clone)]
enum Step {
    Promote { node: usize, reach: [bool; 3] },
    Propose { value: u32, reach: [bool; 3] },
}

fn step() -> impl Strategy<Value = Step> {
    let reach = [any::<bool>(), any::<bool>(), any::<bool>()];
    prop_oneof![
        (0usize..3, reach).prop_map(|(node, reach)| Step::Promote { node, reach }),
        (any::<u32>(), reach).prop_map(|(value, reach)| Step::Propose { value, reach }),
    ]
}

struct Sim {
    logs: Vec<ReplicaLog<u32>>,
    /// Nodes that believe they own the log, with their epoch.
    owners: Vec<(usize, u64)>,
    acked: Vec<Entry<u32>>,
}

impl Sim {
    fn promote(&mut self, node: usize, reach: [bool; 3]) {
        let epoch = self.logs[node].promised() + 1;
        let mut promised = Vec::new();
        for (peer, reachable) in reach.iter().enumerate() {
            if peer != node && !reachable {
                continue;
            }
            if let (
                PromiseReply::Promised {
                    last_index,
                    last_epoch,
                },
                _,
            ) = self.logs[peer].promise(epoch)
            {
                promised.push((peer, last_index, last_epoch));
            }
        }
        if promised.len() < 2 || !promised.iter().any(|(peer, _, _)| *peer == node) {
            return;
        }
        let names: Vec<(String, u64, u64)> = promised
            .iter()
            .map(|(peer, index, epoch)| (peer.to_string(), *index, *epoch))
            .collect();
        let best: usize = most_up_to_date(names.iter().map(|(n, i, e)| (n.as_str(), *i, *e)))
            .unwrap()
            .parse()
            .unwrap();
        let adopted = self.logs[best].entries().to_vec();
        self.logs[node].adopt(adopted);
        for acked in &self.acked {
            assert_eq!(
                self.logs[node].entries().get(acked.index as usize - 1),
                Some(acked),
                "new owner {node} lost acknowledged entry {acked:?}"
            );
        }
        self.logs[node].push(epoch, 0);
        self.owners.retain(|(owner, _)| *owner != node);
        self.owners.push((node, epoch));
    }

    fn propose(&mut self, value: u32, reach: [bool; 3]) {
        let Some(&(owner, epoch)) = self.owners.last() else {
            return;
        };
        if self.logs[owner].promised() != epoch {
            return;
        }
        self.logs[owner].push(epoch, value);
        let all = self.logs[owner].entries().to_vec();
        let mut stored = vec![self.logs[owner].last().0];
        for peer in (0..3).filter(|peer| *peer != owner && reach[*peer]) {
            let request = Append {
                epoch,
                owner: owner.to_string(),
                prev_index: 0,
                prev_epoch: 0,
                entries: all.clone(),
                commit: self.logs[owner].commit(),
            };
            if let (AppendReply::Stored { last_index }, _) = self.logs[peer].append(&request) {
                stored.push(last_index);
            }
        }
        let commit = majority_commit(&self.logs[owner], epoch, &stored, 3);
        self.logs[owner].commit_to(commit);
        for index in self.acked.len() as u64 + 1..=commit {
            self.acked
                .push(self.logs[owner].entries()[index as usize - 1].clone());
        }
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(500))]
    #[test]
    fn acknowledged_entries_survive_every_later_owner(steps in prop::collection::vec(step(), 1..60)) {
        let mut sim = Sim {
            logs: vec![ReplicaLog::restore(0, vec![], 0); 3],
            owners: Vec::new(),
            acked: Vec::new(),
        };
        for step in steps {
            match step {
                Step::Promote { node, reach } => sim.promote(node, reach),
                Step::Propose { value, reach } => sim.propose(value, reach),
            }
        }
        // Committed prefixes never disagree between nodes.
        for log in &sim.logs {
            for (held, acked) in log.committed().iter().zip(&sim.acked) {
                prop_assert_eq!(held, acked);
            }
        }
    }
}
