//! The checkout ownership core: one replica's whole protocol as a pure
//! state machine, in the manner of toydb's `raft/node.rs`. No ractor, no
//! tokio, no clock: the shell feeds in [`Event`]s through [`CheckoutNode::step`]
//! and the time through [`CheckoutNode::tick`], and performs the returned
//! [`Action`]s in order (persisting before sending).
//!
//! # Roles
//! - **Owner** of an epoch: appends records, replicates them to every
//!   replica it reaches, and commits an entry once a quorum of *voters*
//!   stores it and it is of the owner's epoch (or precedes such an entry).
//!   It takes orders once its `Promoted` marker is committed (*active*).
//! - **Candidate**: asks every voter for a promise of a new epoch. With a
//!   quorum of promises, it adopts the most up-to-date promiser's log
//!   (highest last epoch, then longest), which holds every committed entry
//!   because any two quorums of the same or of adjacent configurations
//!   intersect, and appends its marker.
//! - **Follower**: stores what the owner of the highest epoch it promised
//!   sends. A node that is not a voter is a *learner*: it follows, answers
//!   reads from its committed log, never campaigns and never counts.
//!
//! # Voters
//! The voter set is the latest `Record::Voters` in the log (see [`quorum`]),
//! else the bootstrap set. Promises, commits and the decision to campaign
//! count voters only, so two disjoint groups can never both decide however
//! many nodes run. A change adds or removes one voter, needs an active
//! owner, and is refused while the previous one is uncommitted. A voter
//! refuses to promise to a candidate that is not a voter in its own log,
//! so a removed voter that comes back cannot win or disrupt the owner.
//!
//! # Invariants (checked by the simulator in `sim`)
//! - at most one owner per epoch;
//! - a committed entry is in every later owner's log at its index;
//! - no two replicas commit different entries at one index;
//! - one idempotency key maps to one order.
//!
//! # Liveness
//! A follower that sees its owner go down (a membership event) fails over
//! at once if it is the preferred voter, else after a grace; an owner that
//! hears no quorum of voters for [`OWNER_SILENCE_MS`] steps down, so
//! one-way loss cannot wedge the cluster. A follower refuses promises
//! while it hears a live owner, unless the candidate saw that owner down.

mod quorum;
mod types;

use std::collections::{BTreeMap, BTreeSet};

pub use quorum::{Configs, QuorumRule};
pub use types::{Action, Event, Message, OrderDraft, Outcome, Proposal, RoleChange};

use super::log::{most_up_to_date, Append, AppendReply, Entry, Persist, PromiseReply, ReplicaLog};
use super::model::{Order, OrderBook, OrderError, Record};
use super::protocol::{CheckoutFailure, VoterChange};

/// How often the shell should call [`CheckoutNode::tick`]; also the owner's
/// heartbeat.
pub const TICK_MS: u64 = 100;
/// Wait without an owner before the preferred voter campaigns, when the
/// owner was not seen going down (start, rejoin): a node coming back
/// follows the current owner instead of taking over.
pub const PROMOTE_GRACE_MS: u64 = 600;
/// Wait without an owner before any voter with a quorum campaigns.
pub const PROMOTE_FALLBACK_MS: u64 = 4_000;
/// An owner not heard from for this long is forgotten; an owner that hears
/// no quorum of voters for this long steps down.
pub const OWNER_SILENCE_MS: u64 = 2_500;
/// A candidacy without a quorum of promises is given up after this long.
pub const CANDIDATE_TIMEOUT_MS: u64 = 400;
/// Most entries in one append.
pub const MAX_APPEND_ENTRIES: usize = 512;

/// Fixed settings of one replica.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeConfig {
    /// This node's name.
    pub node: String,
    /// Voters until the log names others (`--voters`).
    pub bootstrap_voters: BTreeSet<String>,
    /// Who counts; [`QuorumRule::Voters`] outside the simulator's broken-rule test.
    pub rule: QuorumRule,
}

/// What the replica is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Role {
    Follower,
    Candidate(Candidacy),
    Owner(Ownership),
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Candidacy {
    epoch: u64,
    since_ms: u64,
    /// Promises of voters (this node's included): last index and epoch.
    promises: BTreeMap<String, (u64, u64)>,
    /// The promiser whose log is being fetched, once a quorum promised.
    fetching: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Ownership {
    epoch: u64,
    /// The marker committed: takes proposals.
    active: bool,
    /// Highest index each replica is known to store.
    matched: BTreeMap<String, u64>,
    /// Next index to send each replica.
    next: BTreeMap<String, u64>,
    /// When each replica last answered an append.
    heard_ms: BTreeMap<String, u64>,
    since_ms: u64,
}

/// One replica's ownership state machine; see the module doc.
#[derive(Debug, Clone)]
pub struct CheckoutNode {
    config: NodeConfig,
    /// The replicated log (its durable state is persisted by the shell).
    log: ReplicaLog<Record>,
    /// The voter sets in the log.
    configs: Configs,
    /// Orders and stock from the committed prefix.
    book: OrderBook,
    /// Entries applied to `book`.
    applied: u64,
    role: Role,
    /// The owner followed and its epoch.
    owner: Option<(String, u64)>,
    /// When the followed owner was last heard.
    owner_heard_ms: u64,
    /// Since when no owner is known.
    ownerless_since_ms: u64,
    /// The owner was seen going down: the preferred voter takes over at once.
    owner_lost: Option<String>,
    /// Reachable members, preferred first (from the last membership event).
    reachable: Vec<String>,
    /// Clients waiting for an index to commit: (id, whether they created it).
    waiting: BTreeMap<u64, Vec<(u64, bool)>>,
    /// The time of the last tick.
    now_ms: u64,
    /// Actions of the current step.
    actions: Vec<Action>,
}

impl CheckoutNode {
    /// A replica restored from its durable state: the promised epoch, its
    /// log (contiguous from 1) and a commit hint that may lag.
    pub fn restore(
        config: NodeConfig,
        promised: u64,
        entries: Vec<Entry<Record>>,
        commit: u64,
        base_stock: std::collections::HashMap<u64, u32>,
        now_ms: u64,
    ) -> Self {
        let configs = Configs::new(config.bootstrap_voters.clone(), &entries);
        let reachable = vec![config.node.clone()];
        let mut node = Self {
            log: ReplicaLog::restore(promised, entries, commit),
            configs,
            book: OrderBook::new(base_stock),
            applied: 0,
            role: Role::Follower,
            owner: None,
            owner_heard_ms: now_ms,
            ownerless_since_ms: now_ms,
            owner_lost: None,
            reachable,
            waiting: BTreeMap::new(),
            now_ms,
            actions: Vec::new(),
            config,
        };
        node.apply_committed();
        node.actions.clear();
        node
    }

    /// Feeds one event in; returns what to do.
    pub fn step(&mut self, event: Event) -> Vec<Action> {
        match event {
            Event::Receive { from, message } => self.receive(from, message),
            Event::Propose { id, proposal } => self.propose(id, proposal),
            Event::Membership { reachable } => self.membership(reachable),
        }
        std::mem::take(&mut self.actions)
    }

    /// Advances the time to `now_ms`: heartbeats, timeouts, campaigns.
    pub fn tick(&mut self, now_ms: u64) -> Vec<Action> {
        self.now_ms = self.now_ms.max(now_ms);
        match &self.role {
            Role::Owner(owner) => {
                let heard = self.voters_heard_within(owner, OWNER_SILENCE_MS);
                if self.now_ms - owner.since_ms >= OWNER_SILENCE_MS && !heard {
                    self.step_down("owner heard no quorum of voters");
                } else {
                    self.broadcast_appends(true);
                }
            }
            Role::Candidate(candidacy) => {
                if self.now_ms - candidacy.since_ms >= CANDIDATE_TIMEOUT_MS {
                    self.step_down("no quorum of promises in time");
                }
            }
            Role::Follower => {
                if self.owner.is_some() && self.now_ms - self.owner_heard_ms >= OWNER_SILENCE_MS {
                    self.lose_owner(None, "owner silent");
                }
                self.maybe_campaign();
            }
        }
        std::mem::take(&mut self.actions)
    }

    // ---- queries --------------------------------------------------------

    /// The node's name.
    pub fn name(&self) -> &str {
        &self.config.node
    }

    /// The log.
    pub fn log(&self) -> &ReplicaLog<Record> {
        &self.log
    }

    /// Orders and stock of the committed prefix.
    pub fn book(&self) -> &OrderBook {
        &self.book
    }

    /// The voter set in effect.
    pub fn voters(&self) -> &BTreeSet<String> {
        self.configs.current()
    }

    /// Whether this node votes.
    pub fn is_voter(&self) -> bool {
        self.config.rule.votes(self.voters(), &self.config.node)
    }

    /// The epoch this node owns, and whether it is active.
    pub fn owned_epoch(&self) -> Option<(u64, bool)> {
        match &self.role {
            Role::Owner(owner) => Some((owner.epoch, owner.active)),
            _ => None,
        }
    }

    /// The epoch of this node's current candidacy.
    pub fn candidate_epoch(&self) -> Option<u64> {
        match &self.role {
            Role::Candidate(candidacy) => Some(candidacy.epoch),
            _ => None,
        }
    }

    /// The owner this node follows (itself when owner), with its epoch.
    pub fn owner(&self) -> Option<(&str, u64)> {
        match &self.role {
            Role::Owner(owner) => Some((&self.config.node, owner.epoch)),
            _ => self
                .owner
                .as_ref()
                .map(|(owner, epoch)| (owner.as_str(), *epoch)),
        }
    }

    /// The key's order: committed (`true`) or still in the uncommitted suffix.
    pub fn find_order(&self, user: &str, key: &str) -> Option<(Order, bool)> {
        if let Some(order) = self.book.find(user, key) {
            return Some((order.clone(), true));
        }
        self.pending_order(user, key)
            .map(|(_, order)| (order.clone(), false))
    }

    fn pending_order(&self, user: &str, key: &str) -> Option<(u64, &Order)> {
        self.log
            .entries_from(self.log.commit() + 1)
            .iter()
            .find_map(|entry| match &entry.record {
                Record::Order(order) if order.user == user && order.idempotency_key == key => {
                    Some((entry.index, order))
                }
                _ => None,
            })
    }

    /// Stock check against committed orders and orders still in flight.
    pub fn check_stock(&self, wanted: &BTreeMap<u64, u32>) -> Result<(), OrderError> {
        let mut in_flight = wanted.clone();
        for entry in self.log.entries_from(self.log.commit() + 1) {
            if let Record::Order(order) = &entry.record {
                for item in &order.items {
                    *in_flight.entry(item.product_id).or_default() += item.quantity;
                }
            }
        }
        self.book.check_stock(wanted)?;
        self.book.check_stock(&in_flight)
    }

    /// The preferred voter among the reachable members, if any.
    pub fn preferred(&self) -> Option<&str> {
        self.reachable
            .iter()
            .find(|node| self.config.rule.votes(self.voters(), node))
            .map(String::as_str)
    }

    /// The voter that would take over from `owner`: the first other
    /// reachable voter in preference order.
    pub fn standby(&self, owner: Option<&str>) -> Option<&str> {
        self.reachable
            .iter()
            .filter(|node| Some(node.as_str()) != owner)
            .find(|node| self.config.rule.votes(self.voters(), node))
            .map(String::as_str)
    }

    // ---- events ---------------------------------------------------------

    fn receive(&mut self, from: String, message: Message) {
        match message {
            Message::Prepare { epoch, owner_down } => self.on_prepare(from, epoch, owner_down),
            Message::Promise { epoch, reply } => self.on_promise(from, epoch, reply),
            Message::Fetch { epoch, from: index } => self.on_fetch(from, epoch, index),
            Message::Entries {
                epoch,
                from: index,
                prev_epoch,
                entries,
            } => self.on_entries(from, epoch, index, prev_epoch, entries),
            Message::Append(append) => self.on_append(from, append),
            Message::Appended { epoch, reply } => self.on_appended(from, epoch, reply),
        }
    }

    fn membership(&mut self, reachable: Vec<String>) {
        self.reachable = reachable;
        match &self.role {
            Role::Owner(_) | Role::Candidate(_) => {
                if !self.reaches_quorum() {
                    self.step_down("no quorum of voters reachable");
                }
            }
            Role::Follower => {
                if let Some((owner, _)) = &self.owner {
                    if !self.reachable.contains(owner) {
                        let owner = owner.clone();
                        self.lose_owner(Some(owner), "owner down");
                    }
                }
                self.maybe_campaign();
            }
        }
    }

    fn on_prepare(&mut self, candidate: String, epoch: u64, owner_down: Option<String>) {
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

    fn on_promise(&mut self, voter: String, epoch: u64, reply: PromiseReply) {
        let Role::Candidate(candidacy) = &mut self.role else {
            return;
        };
        if candidacy.epoch != epoch || candidacy.fetching.is_some() {
            return;
        }
        match reply {
            PromiseReply::Promised {
                last_index,
                last_epoch,
            } => {
                if self.config.rule.votes(self.configs.current(), &voter) {
                    candidacy.promises.insert(voter, (last_index, last_epoch));
                }
                self.decide_candidacy();
            }
            PromiseReply::Refused { promised } if promised > epoch => {
                let (_, persist) = self.log.promise(promised);
                self.persist(persist);
                self.step_down("a higher epoch exists");
            }
            PromiseReply::Refused { .. } => {}
        }
    }

    fn on_fetch(&mut self, candidate: String, epoch: u64, from: u64) {
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

    fn on_entries(
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
        self.become_owner(epoch);
    }

    fn on_append(&mut self, owner: String, append: Append<Record>) {
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

    fn on_appended(&mut self, peer: String, epoch: u64, reply: AppendReply) {
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

    fn propose(&mut self, id: u64, proposal: Proposal) {
        let Some(epoch) = self
            .owned_epoch()
            .filter(|(_, active)| *active)
            .map(|(e, _)| e)
        else {
            let owner = self
                .owner()
                .map(|(owner, _)| owner.to_string())
                .filter(|owner| *owner != self.config.node);
            return self.reply(id, Err(CheckoutFailure::NotOwner { owner }));
        };
        let record = match proposal {
            Proposal::Order(draft) => match self.order_record(id, epoch, draft) {
                Some(record) => record,
                None => return,
            },
            Proposal::SetStock { product_id, stock } => Record::SetStock { product_id, stock },
            Proposal::Voters(change) => match self.voters_record(&change) {
                Ok(record) => record,
                Err(why) => return self.reply(id, Err(CheckoutFailure::VoterChangeRefused(why))),
            },
        };
        let (entry, persist) = self.log.push(epoch, record);
        self.persist(persist);
        self.waiting
            .entry(entry.index)
            .or_default()
            .push((id, true));
        self.broadcast_appends(false);
        self.advance_commit();
    }

    /// The record of a new order, or `None` when `id` was answered or
    /// attached to the key's order already in flight.
    fn order_record(&mut self, id: u64, epoch: u64, draft: OrderDraft) -> Option<Record> {
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
    fn voters_record(&self, change: &VoterChange) -> Result<Record, String> {
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

    // ---- elections -------------------------------------------------------

    fn reaches_quorum(&self) -> bool {
        self.config.rule.is_quorum(self.voters(), &self.reachable)
    }

    /// Starts a candidacy if this voter should; see the module doc.
    fn maybe_campaign(&mut self) {
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

    fn campaign(&mut self) {
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
    fn decide_candidacy(&mut self) {
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

    fn become_owner(&mut self, epoch: u64) {
        let (_, persist) = self.log.push(
            epoch,
            Record::Promoted {
                owner: self.config.node.clone(),
            },
        );
        self.persist(persist);
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

    // ---- replication -----------------------------------------------------

    /// Sends every reachable replica what it lacks; on a heartbeat, resends
    /// what is unacknowledged.
    fn broadcast_appends(&mut self, heartbeat: bool) {
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

    fn send_append(&mut self, peer: &str) {
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
        self.send(peer, Message::Append(append));
    }

    /// Raises the commit index to what a quorum of voters stores.
    fn advance_commit(&mut self) {
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
    fn apply_committed(&mut self) {
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

    // ---- bookkeeping -----------------------------------------------------

    fn voters_heard_within(&self, owner: &Ownership, window_ms: u64) -> bool {
        let me = &self.config.node;
        let heard = owner
            .heard_ms
            .iter()
            .filter(|(_, at)| self.now_ms - **at < window_ms)
            .map(|(node, _)| node)
            .chain(std::iter::once(me));
        self.config.rule.is_quorum(self.voters(), heard)
    }

    fn follow(&mut self, owner: String, epoch: u64) {
        if self.owner.as_ref() != Some(&(owner.clone(), epoch)) {
            self.actions
                .push(Action::RoleChanged(RoleChange::Following {
                    owner: owner.clone(),
                    epoch,
                }));
        }
        self.owner = Some((owner, epoch));
        self.owner_heard_ms = self.now_ms;
        self.owner_lost = None;
    }

    fn lose_owner(&mut self, down: Option<String>, why: &'static str) {
        self.owner = None;
        self.owner_lost = down;
        self.ownerless_since_ms = self.now_ms;
        self.actions
            .push(Action::RoleChanged(RoleChange::Ownerless { why }));
    }

    /// A higher epoch than the one this node owns or campaigns for exists.
    fn deposed(&mut self, epoch: u64) {
        let mine = match &self.role {
            Role::Owner(owner) => owner.epoch,
            Role::Candidate(candidacy) => candidacy.epoch,
            Role::Follower => return,
        };
        if epoch > mine {
            self.step_down("deposed by a newer epoch");
        }
    }

    /// Back to follower without an owner; waiting clients learn that the
    /// outcome is unknown.
    fn step_down(&mut self, why: &'static str) {
        if matches!(self.role, Role::Follower) {
            return;
        }
        self.role = Role::Follower;
        self.owner = None;
        self.owner_lost = None;
        self.ownerless_since_ms = self.now_ms;
        for (_, clients) in std::mem::take(&mut self.waiting) {
            for (id, _) in clients {
                self.reply(
                    id,
                    Err(CheckoutFailure::Unavailable(format!(
                        "{why}; outcome unknown, retry with the same key"
                    ))),
                );
            }
        }
        self.actions
            .push(Action::RoleChanged(RoleChange::Ownerless { why }));
    }

    fn persist(&mut self, persist: Persist<Record>) {
        match &persist {
            Persist::Nothing => return,
            Persist::Promise(_) => {}
            Persist::Replace { from, entries } => {
                self.configs.truncated(*from);
                self.configs.appended(entries);
                if *from <= self.applied {
                    debug_assert!(false, "a committed entry was replaced");
                }
            }
        }
        self.actions.push(Action::Persist(persist));
    }

    fn send(&mut self, to: &str, message: Message) {
        self.actions.push(Action::Send {
            to: to.to_string(),
            message,
        });
    }

    fn reply(&mut self, id: u64, outcome: Result<Outcome, CheckoutFailure>) {
        self.actions.push(Action::Reply { id, outcome });
    }
}

#[cfg(test)]
mod tests;
