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

mod election;
mod quorum;
mod replication;
mod types;

use std::collections::{BTreeMap, BTreeSet};

pub use quorum::{Configs, QuorumRule};
pub use types::{Action, Event, Message, OrderDraft, Outcome, Proposal, RoleChange};

use super::log::{Entry, Persist, ReplicaLog};
use super::model::{Order, OrderBook, OrderError, Record};
use super::protocol::CheckoutFailure;

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
            Event::Propose(proposals) => self.propose(proposals),
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

    /// Whether this node is the owner of its epoch with its marker
    /// committed, so it takes proposals.
    pub fn is_active_owner(&self) -> bool {
        matches!(self.owned_epoch(), Some((_, true)))
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

    pub(super) fn pending_order(&self, user: &str, key: &str) -> Option<(u64, &Order)> {
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

    // ---- bookkeeping -----------------------------------------------------

    pub(super) fn follow(&mut self, owner: String, epoch: u64) {
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

    pub(super) fn lose_owner(&mut self, down: Option<String>, why: &'static str) {
        self.owner = None;
        let failover = down.is_some();
        self.owner_lost = down;
        self.ownerless_since_ms = self.now_ms;
        self.actions
            .push(Action::RoleChanged(RoleChange::Ownerless { why, failover }));
    }

    /// A higher epoch than the one this node owns or campaigns for exists.
    pub(super) fn deposed(&mut self, epoch: u64) {
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
    pub(super) fn step_down(&mut self, why: &'static str) {
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
            .push(Action::RoleChanged(RoleChange::Ownerless {
                why,
                failover: false,
            }));
    }

    pub(super) fn persist(&mut self, persist: Persist<Record>) {
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

    pub(super) fn send(&mut self, to: &str, message: Message) {
        self.actions.push(Action::Send {
            to: to.to_string(),
            message,
        });
    }

    pub(super) fn reply(&mut self, id: u64, outcome: Result<Outcome, CheckoutFailure>) {
        self.actions.push(Action::Reply { id, outcome });
    }
}

#[cfg(test)]
mod tests;
