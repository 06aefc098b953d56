//! Replication: the owner appends proposals, sends every replica what it
//! lacks, commits what a quorum of voters stores and answers the clients
//! waiting for it; followers store what the owner of their epoch sends.

use std::collections::BTreeMap;

use super::super::log::{Append, AppendReply, Persist};
use super::super::model::{Order, Record};
use super::super::protocol::{CheckoutFailure, VoterChange};
use super::{
    Action, CheckoutNode, Message, OrderDraft, Outcome, Ownership, Proposal, Role, RoleChange,
    MAX_APPEND_ENTRIES,
};

impl CheckoutNode {
    pub(super) fn on_append(&mut self, owner: String, append: Append<Record>) {
        let epoch = append.epoch;
        let (reply, persist) = self.log.append(&append);
        self.persist(persist);
        if !matches!(reply, AppendReply::Stale { .. }) {
            self.deposed(epoch);
            self.follow(owner.clone(), epoch);
            self.apply_committed();
        }
        self.send(&owner, Message::Appended { epoch, reply });
    }

    pub(super) fn on_appended(&mut self, peer: String, epoch: u64, reply: AppendReply) {
        let now = self.now_ms;
        let Role::Owner(owner) = &mut self.role else {
            return;
        };
        if owner.epoch != epoch {
            return;
        }
        match reply {
            AppendReply::Stored { last_index } => {
                owner.heard_ms.insert(peer.clone(), now);
                let matched = owner.matched.entry(peer.clone()).or_default();
                *matched = (*matched).max(last_index);
                let matched = *matched;
                let next = owner.next.entry(peer).or_default();
                *next = (*next).max(matched + 1);
                self.advance_commit();
            }
            AppendReply::Mismatch { last_index } => {
                owner.heard_ms.insert(peer.clone(), now);
                let floor = owner.matched.get(&peer).copied().unwrap_or(0) + 1;
                let next = owner.next.entry(peer.clone()).or_insert(last_index + 1);
                *next = next.saturating_sub(1).min(last_index + 1).max(floor);
                self.send_append(&peer);
            }
            AppendReply::Stale { promised } => {
                if promised > epoch {
                    let (_, persist) = self.log.promise(promised);
                    self.persist(persist);
                    self.step_down("a higher epoch exists");
                }
            }
        }
    }

    /// Appends a batch of proposals: one `Persist` for all of them, then
    /// one append to every replica.
    pub(super) fn propose(&mut self, proposals: Vec<(u64, Proposal)>) {
        let Some(epoch) = self
            .owned_epoch()
            .filter(|(_, active)| *active)
            .map(|(e, _)| e)
        else {
            let owner = self
                .owner()
                .map(|(owner, _)| owner.to_string())
                .filter(|owner| *owner != self.config.node);
            for (id, _) in proposals {
                let failure = CheckoutFailure::NotOwner {
                    owner: owner.clone(),
                };
                self.reply(id, Err(failure));
            }
            return;
        };
        let mut appended = Vec::new();
        for (id, proposal) in proposals {
            let record = match proposal {
                Proposal::Order(draft) => match self.order_record(id, epoch, draft) {
                    Some(record) => record,
                    None => continue,
                },
                Proposal::SetStock { product_id, stock } => Record::SetStock { product_id, stock },
                Proposal::Voters(change) => match self.voters_record(&change) {
                    Ok(record) => record,
                    Err(why) => {
                        self.reply(id, Err(CheckoutFailure::VoterChangeRefused(why)));
                        continue;
                    }
                },
            };
            let changes_voters = matches!(record, Record::Voters(_));
            let (entry, _) = self.log.push(epoch, record);
            self.waiting
                .entry(entry.index)
                .or_default()
                .push((id, true));
            appended.push(entry);
            // The configuration in effect changes with the entry: persisting
            // it at once lets the next voter change in the batch see it.
            if changes_voters {
                self.persist_appended(std::mem::take(&mut appended));
            }
        }
        self.persist_appended(appended);
        self.broadcast_appends(false);
        self.advance_commit();
    }

    fn persist_appended(&mut self, appended: Vec<super::super::log::Entry<Record>>) {
        if let Some(first) = appended.first().map(|entry| entry.index) {
            self.persist(Persist::Replace {
                from: first,
                entries: appended,
            });
        }
    }

    /// The record of a new order, or `None` when `id` was answered or
    /// attached to the key's order already in flight.
    pub(super) fn order_record(
        &mut self,
        id: u64,
        epoch: u64,
        draft: OrderDraft,
    ) -> Option<Record> {
        if let Some(order) = self.book.find(&draft.user, &draft.key) {
            let outcome = Outcome::Order {
                order: order.clone(),
                created: false,
            };
            self.reply(id, Ok(outcome));
            return None;
        }
        if let Some((index, _)) = self.pending_order(&draft.user, &draft.key) {
            self.waiting.entry(index).or_default().push((id, false));
            return None;
        }
        let mut wanted = BTreeMap::new();
        for item in &draft.items {
            *wanted.entry(item.product_id).or_default() += item.quantity;
        }
        if let Err(err) = self.check_stock(&wanted) {
            self.reply(id, Err(err.into()));
            return None;
        }
        let index = self.log.last().0 + 1;
        Some(Record::Order(Order {
            order_id: format!("o{epoch}-{index}"),
            idempotency_key: draft.key,
            user: draft.user,
            items: draft.items,
            total_cents: draft.total_cents,
            payment_id: draft.payment_id,
            epoch,
            created_ms: draft.created_ms,
        }))
    }

    /// The record of a single-server voter change, or why it is refused.
    pub(super) fn voters_record(&self, change: &VoterChange) -> Result<Record, String> {
        if self.configs.latest_change() > self.log.commit() {
            return Err("the previous voter change is not committed yet".into());
        }
        let mut voters = self.voters().clone();
        match change {
            VoterChange::Add(node) => {
                if !self.reachable.contains(node) {
                    return Err(format!("{node} is not a reachable member"));
                }
                if !voters.insert(node.clone()) {
                    return Err(format!("{node} is already a voter"));
                }
            }
            VoterChange::Remove(node) => {
                if !voters.remove(node) {
                    return Err(format!("{node} is not a voter"));
                }
                if voters.is_empty() {
                    return Err("the last voter cannot be removed".into());
                }
            }
        }
        Ok(Record::Voters(voters.into_iter().collect()))
    }

    /// Sends every reachable replica what it lacks; on a heartbeat, resends
    /// what is unacknowledged.
    pub(super) fn broadcast_appends(&mut self, heartbeat: bool) {
        let me = &self.config.node;
        let peers: Vec<String> = self
            .reachable
            .iter()
            .filter(|n| *n != me)
            .cloned()
            .collect();
        for peer in peers {
            if heartbeat {
                if let Role::Owner(owner) = &mut self.role {
                    if let Some(matched) = owner.matched.get(&peer) {
                        owner.next.insert(peer.clone(), matched + 1);
                    }
                }
            }
            self.send_append(&peer);
        }
    }

    pub(super) fn send_append(&mut self, peer: &str) {
        let Role::Owner(owner) = &self.role else {
            return;
        };
        let last = self.log.last().0;
        // A replica not heard from yet gets the last entry first, so one
        // round commits it when the logs agree.
        let from = owner
            .next
            .get(peer)
            .copied()
            .unwrap_or(last)
            .clamp(1, last + 1);
        let prev_index = from - 1;
        let append = Append {
            epoch: owner.epoch,
            owner: self.config.node.clone(),
            prev_index,
            prev_epoch: self.log.epoch_of(prev_index).unwrap_or(0),
            entries: self
                .log
                .entries_from(from)
                .iter()
                .take(MAX_APPEND_ENTRIES)
                .cloned()
                .collect(),
            commit: self.log.commit(),
        };
        // Pipelined: a replica whose log is known to match gets only what
        // follows this append next time, without waiting for its answer. A
        // lost append is sent again by the next heartbeat (which rewinds
        // `next` to what the replica acknowledged) or after a mismatch.
        let sent = append.entries.len() as u64;
        if let Role::Owner(owner) = &mut self.role {
            if owner.matched.contains_key(peer) {
                owner.next.insert(peer.to_string(), from + sent);
            }
        }
        self.send(peer, Message::Append(append));
    }

    /// Raises the commit index to what a quorum of voters stores.
    pub(super) fn advance_commit(&mut self) {
        let Role::Owner(owner) = &self.role else {
            return;
        };
        let epoch = owner.epoch;
        let me = self.config.node.clone();
        let last = self.log.last().0;
        let stored = owner
            .matched
            .iter()
            .map(|(node, index)| (node, *index))
            .chain(std::iter::once((&me, last)));
        let index = self
            .config
            .rule
            .quorum_index(self.configs.current(), stored);
        if index > self.log.commit() && self.log.epoch_of(index) == Some(epoch) {
            self.log.commit_to(index);
            self.apply_committed();
        }
        let committed_all = self.log.commit() >= last;
        if let Role::Owner(owner) = &mut self.role {
            if !owner.active && committed_all {
                owner.active = true;
                self.actions
                    .push(Action::RoleChanged(RoleChange::Active { epoch }));
            }
        }
        // An owner the committed configuration no longer names steps down.
        if self.configs.latest_change() <= self.log.commit()
            && !self.config.rule.votes(self.voters(), &me)
        {
            self.step_down("no longer a voter");
        }
    }

    /// Applies newly committed entries to the book and answers the clients
    /// waiting for them.
    pub(super) fn apply_committed(&mut self) {
        let commit = self.log.commit();
        if commit <= self.applied {
            return;
        }
        let entries = self.log.entries()[self.applied as usize..commit as usize].to_vec();
        for entry in &entries {
            self.book.apply(&entry.record);
        }
        self.applied = commit;
        let done: Vec<u64> = self.waiting.range(..=commit).map(|(i, _)| *i).collect();
        for index in done {
            let record = entries
                .iter()
                .find(|entry| entry.index == index)
                .map(|entry| entry.record.clone())
                .or_else(|| {
                    self.log
                        .entries()
                        .get(index as usize - 1)
                        .map(|e| e.record.clone())
                });
            for (id, created) in self.waiting.remove(&index).unwrap_or_default() {
                let outcome = match &record {
                    Some(Record::Order(order)) => Ok(Outcome::Order {
                        order: order.clone(),
                        created,
                    }),
                    Some(Record::SetStock { .. }) => Ok(Outcome::Stock),
                    Some(Record::Voters(voters)) => Ok(Outcome::Voters(voters.clone())),
                    _ => Err(CheckoutFailure::Unavailable("entry replaced".into())),
                };
                self.reply(id, outcome);
            }
        }
        self.actions.push(Action::Committed(entries));
    }

    pub(super) fn voters_heard_within(&self, owner: &Ownership, window_ms: u64) -> bool {
        let me = &self.config.node;
        let heard = owner
            .heard_ms
            .iter()
            .filter(|(_, at)| self.now_ms - **at < window_ms)
            .map(|(node, _)| node)
            .chain(std::iter::once(me));
        self.config.rule.is_quorum(self.voters(), heard)
    }
}
