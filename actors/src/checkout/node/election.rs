//! Elections: a voter without an owner asks for promises of a new epoch,
//! adopts the most up-to-date log among a quorum of promises, and appends
//! its marker; every replica answers promises and fetches.

use std::collections::BTreeMap;

use super::super::log::{most_up_to_date, Entry, PromiseReply};
use super::super::model::Record;
use super::{
    Action, Candidacy, CheckoutNode, Message, Ownership, Role, RoleChange, OWNER_SILENCE_MS,
    PROMOTE_FALLBACK_MS, PROMOTE_GRACE_MS,
};

impl CheckoutNode {
    pub(super) fn on_prepare(&mut self, candidate: String, epoch: u64, owner_down: Option<String>) {
        let promised = self.log.promised();
        let refuse = |node: &mut Self| {
            node.send(
                &candidate,
                Message::Promise {
                    epoch,
                    reply: PromiseReply::Refused { promised },
                },
            )
        };
        if !self.config.rule.votes(self.voters(), &candidate) {
            return refuse(self);
        }
        // A live owner is kept unless the candidate saw it go down.
        let live_owner = match &self.role {
            Role::Owner(_) => Some(self.config.node.clone()),
            Role::Follower => self
                .owner
                .as_ref()
                .filter(|_| self.now_ms - self.owner_heard_ms < OWNER_SILENCE_MS)
                .map(|(owner, _)| owner.clone()),
            Role::Candidate(_) => None,
        };
        if live_owner.is_some_and(|owner| owner != candidate && Some(owner) != owner_down) {
            return refuse(self);
        }
        let (reply, persist) = self.log.promise(epoch);
        self.persist(persist);
        if matches!(reply, PromiseReply::Promised { .. }) {
            self.deposed(epoch);
        }
        self.send(&candidate, Message::Promise { epoch, reply });
    }

    pub(super) fn on_promise(&mut self, voter: String, epoch: u64, reply: PromiseReply) {
        let Role::Candidate(candidacy) = &mut self.role else {
            return;
        };
        if candidacy.epoch != epoch {
            return;
        }
        match reply {
            PromiseReply::Promised {
                last_index,
                last_epoch,
            } => {
                // Every promise is kept: whether it counts depends on the
                // configuration of the log this node will own, which a
                // fetch may still change.
                candidacy.promises.insert(voter, (last_index, last_epoch));
                if candidacy.fetching.is_none() {
                    self.decide_candidacy();
                }
            }
            PromiseReply::Refused { promised } if promised > epoch => {
                let (_, persist) = self.log.promise(promised);
                self.persist(persist);
                self.step_down("a higher epoch exists");
            }
            PromiseReply::Refused { .. } => {}
        }
    }

    pub(super) fn on_fetch(&mut self, candidate: String, epoch: u64, from: u64) {
        let from = from.max(1);
        let entries = (self.log.promised() == epoch).then(|| self.log.entries_from(from).to_vec());
        let prev_epoch = self.log.epoch_of(from - 1).unwrap_or(0);
        self.send(
            &candidate,
            Message::Entries {
                epoch,
                from,
                prev_epoch,
                entries,
            },
        );
    }

    pub(super) fn on_entries(
        &mut self,
        peer: String,
        epoch: u64,
        from: u64,
        prev_epoch: u64,
        entries: Option<Vec<Entry<Record>>>,
    ) {
        let Role::Candidate(candidacy) = &self.role else {
            return;
        };
        if candidacy.epoch != epoch || candidacy.fetching.as_deref() != Some(peer.as_str()) {
            return;
        }
        let Some(entries) = entries else {
            return self.step_down("the most up-to-date promiser moved on");
        };
        if self.log.epoch_of(from - 1) != Some(prev_epoch) || self.log.commit() >= from {
            return self.step_down("the fetched log does not continue the committed prefix");
        }
        let persist = self.log.adopt_from(from, entries);
        self.persist(persist);
        let last = self.log.last();
        let mut unasked = Vec::new();
        if let Role::Candidate(candidacy) = &mut self.role {
            candidacy.fetching = None;
            candidacy.promises.insert(self.config.node.clone(), last);
            unasked = self
                .reachable
                .iter()
                .filter(|node| {
                    self.configs.current().contains(*node)
                        && !candidacy.promises.contains_key(*node)
                })
                .cloned()
                .collect();
        }
        // Voters the adopted log names that were not asked yet.
        for voter in unasked {
            let owner_down = self.owner_lost.clone();
            self.send(&voter, Message::Prepare { epoch, owner_down });
        }
        // The adopted log may name other voters: the promises must be a
        // quorum of those (else wait for more, until the candidacy times out).
        self.decide_candidacy();
    }

    pub(super) fn reaches_quorum(&self) -> bool {
        self.config.rule.is_quorum(self.voters(), &self.reachable)
    }

    /// Starts a candidacy if this voter should; see the module doc.
    pub(super) fn maybe_campaign(&mut self) {
        if self.owner.is_some() || !self.is_voter() || !self.reaches_quorum() {
            return;
        }
        let waited = self.now_ms - self.ownerless_since_ms;
        let preferred_here = self.preferred() == Some(self.config.node.as_str());
        let due = (preferred_here && (self.owner_lost.is_some() || waited >= PROMOTE_GRACE_MS))
            || waited >= PROMOTE_FALLBACK_MS;
        if due {
            self.campaign();
        }
    }

    pub(super) fn campaign(&mut self) {
        let epoch = self.log.promised() + 1;
        let (reply, persist) = self.log.promise(epoch);
        self.persist(persist);
        let PromiseReply::Promised {
            last_index,
            last_epoch,
        } = reply
        else {
            return;
        };
        let me = self.config.node.clone();
        self.role = Role::Candidate(Candidacy {
            epoch,
            since_ms: self.now_ms,
            promises: BTreeMap::from([(me.clone(), (last_index, last_epoch))]),
            fetching: None,
        });
        self.actions
            .push(Action::RoleChanged(RoleChange::Candidate { epoch }));
        let owner_down = self.owner_lost.clone();
        let voters: Vec<String> = self
            .reachable
            .iter()
            .filter(|node| **node != me && self.config.rule.votes(self.voters(), node))
            .cloned()
            .collect();
        for voter in voters {
            let owner_down = owner_down.clone();
            self.send(&voter, Message::Prepare { epoch, owner_down });
        }
        self.decide_candidacy();
    }

    /// With a quorum of promises: become owner, or fetch the better log first.
    ///
    /// The quorum is counted in the configuration of this node's log, and
    /// again after adopting a better log: a log that is behind may name
    /// voters that a committed change has since replaced, and a quorum of
    /// those need not meet the quorum that committed it. A quorum of the
    /// adopted log's configuration does: it holds that configuration's
    /// successor if one was ever used, so the best log would have held it.
    pub(super) fn decide_candidacy(&mut self) {
        let Role::Candidate(candidacy) = &self.role else {
            return;
        };
        let voters = self.configs.current();
        if !self
            .config
            .rule
            .is_quorum(voters, candidacy.promises.keys())
        {
            return;
        }
        let epoch = candidacy.epoch;
        let best = most_up_to_date(
            candidacy
                .promises
                .iter()
                .map(|(node, (index, epoch))| (node.as_str(), *index, *epoch)),
        )
        .map(str::to_string);
        let me = self.config.node.clone();
        let best_log = best
            .as_ref()
            .and_then(|best| candidacy.promises.get(best).copied());
        let mine = self.log.last();
        match best {
            Some(best) if best != me && best_log != Some(mine) => {
                if let Role::Candidate(candidacy) = &mut self.role {
                    candidacy.fetching = Some(best.clone());
                }
                let from = self.log.commit() + 1;
                self.send(&best, Message::Fetch { epoch, from });
            }
            _ => self.become_owner(epoch),
        }
    }

    pub(super) fn become_owner(&mut self, epoch: u64) {
        let (_, persist) = self.log.push(
            epoch,
            Record::Promoted {
                owner: self.config.node.clone(),
            },
        );
        self.persist(persist);
        // The first owner writes the bootstrap voters into the log, so the
        // journal, not a flag, holds the configuration from then on.
        if self.configs.latest_change() == 0 {
            let voters = self.config.bootstrap_voters.iter().cloned().collect();
            let (_, persist) = self.log.push(epoch, Record::Voters(voters));
            self.persist(persist);
        }
        self.role = Role::Owner(Ownership {
            epoch,
            active: false,
            matched: BTreeMap::new(),
            next: BTreeMap::new(),
            heard_ms: BTreeMap::new(),
            since_ms: self.now_ms,
        });
        self.owner = None;
        self.owner_lost = None;
        self.actions
            .push(Action::RoleChanged(RoleChange::Owner { epoch }));
        self.broadcast_appends(false);
        self.advance_commit();
    }
}
