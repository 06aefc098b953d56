//! The checkout replica actor: a thin shell around the ownership core
//! ([`super::node`]). It feeds the core the messages of other replicas,
//! the membership (reachable members, oldest first: the singleton
//! placement's preference), its timer and clients' proposals, and performs
//! what the core answers, in order: journal writes (fsync) before any
//! message that follows them, casts to other replicas, replies to waiting
//! clients, and the owner's follow-ups of committed orders. What an order
//! needs before it is proposed (cart, prices, payment) is in `orders`.
//!
//! Metrics: `bazaar_checkout_epoch` (the promised epoch, each tick); a
//! replica that saw its owner go down and then became the active owner
//! counts `bazaar_checkout_failovers_total` and records the time between
//! the two in `bazaar_checkout_failover_duration_seconds`.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Instant;

use bazaar_cluster::codec;
use bazaar_cluster::directory;
use bazaar_cluster::member::{cast_on_change, MembershipView};
use bazaar_cluster::membership::table::unix_ms_now;
use bazaar_cluster::placement::candidates;
use bazaar_cluster::remote::{self, ReplyPort, ServiceMsg};
use bazaar_cluster::Voters;
use parking_lot::Mutex;
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::watch;
use tracing::{Instrument, Span};

use super::admission::Admission;
use super::journal::{Journal, StoredEntry};
use super::log::{Entry, Persist};
use super::model::Record;
use super::node::{
    Action, CheckoutNode, Event, NodeConfig, Outcome, Proposal, QuorumRule, RoleChange, TICK_MS,
};
use super::protocol::{
    CheckoutFailure, CheckoutProtocol, CheckoutReply, CheckoutRequest, CheckoutStatus,
    PaymentSettings, CHECKOUT_GROUP,
};
use super::publish::StockPublisher;

/// Protocol tag of records in the journal.
const RECORD_TAG: &str = "bazaar.checkout.record.v1";

/// Start arguments of a checkout replica.
pub struct ReplicaArgs {
    /// This node's name.
    pub node: String,
    /// Where the journal lives.
    pub data_dir: PathBuf,
    /// This node's membership view.
    pub view: watch::Receiver<MembershipView>,
    /// The voter set: bootstrap from `--voters`, published from the log.
    pub voters: Voters,
    /// Payment settings, shared with the payment worker.
    pub payment: Arc<Mutex<PaymentSettings>>,
    /// Seeded stock of every product.
    pub base_stock: Arc<HashMap<u64, u32>>,
}

/// A client waiting for its proposal to commit.
pub(super) enum Waiting {
    /// `PlaceOrder`: answered once the cart is settled, in the caller's
    /// trace (the span it arrived in).
    Order(OrderWait),
    /// `SetStock`: answered with the catalog version that published it.
    Stock(Option<ReplyPort<CheckoutProtocol>>, u64, u32),
    /// `ChangeVoters`.
    Voters(Option<ReplyPort<CheckoutProtocol>>),
}

/// A client waiting for its order.
pub(super) struct OrderWait {
    pub(super) reply: Option<ReplyPort<CheckoutProtocol>>,
    /// The span the request arrived in.
    pub(super) span: Span,
    /// When the client stops waiting.
    pub(super) deadline: Instant,
    /// When admission control took it (`None`: not counted, such as a
    /// repeated key or a replica that is not the owner).
    pub(super) admitted: Option<Instant>,
}

/// Runtime state of a checkout replica.
pub struct CheckoutReplica {
    /// This node's name.
    pub(super) node: String,
    /// The ownership core: log, book, role. Everything it decides goes
    /// through [`CheckoutReplica::perform`].
    pub(super) core: CheckoutNode,
    /// The durable copy of the core's log and promise.
    journal: Journal,
    /// Clients waiting on the core, by proposal id.
    pub(super) waiting: HashMap<u64, Waiting>,
    /// The next proposal id.
    next_id: u64,
    /// The core's clock origin: ticks pass ms since then.
    started: Instant,
    /// When this replica saw its owner go down, until it becomes the
    /// active owner (a failover it measures) or follows another one.
    failover_started: Option<Instant>,
    /// When this replica last learned of a new owner (or became it), in
    /// ms since the Unix epoch.
    owner_since_ms: u64,
    /// This node's membership view, fed to the core on every change.
    view: watch::Receiver<MembershipView>,
    /// The reachable members last fed to the core.
    fed_reachable: Vec<String>,
    /// Where the core's voter set is published for carts and readiness.
    voters: Voters,
    /// Payment settings, shared with the payment worker.
    pub(super) payment: Arc<Mutex<PaymentSettings>>,
    /// Publishes stock levels to the catalog, in commit order.
    pub(super) publisher: StockPublisher,
    /// The tick timer; stopped with the actor.
    ticker: JoinHandle<()>,
    /// This actor, to schedule its own flushes.
    myself: ActorRef<ServiceMsg<CheckoutProtocol>>,
    /// Admission control of orders while owner.
    pub(super) admission: Admission,
    /// Orders whose carts the reply to their client settles, between the
    /// reply and the commit follow-up of the same step (which then only
    /// publishes the stock).
    settled_on_reply: HashSet<String>,
    /// Proposals gathered for the next batch, with their clients' ids.
    proposals: Vec<(u64, Proposal)>,
    /// A `Flush` is in the mailbox.
    flush_scheduled: bool,
}

/// The checkout replica actor.
pub struct CheckoutReplicaActor;

impl Actor for CheckoutReplicaActor {
    type Msg = ServiceMsg<CheckoutProtocol>;
    type State = CheckoutReplica;
    type Arguments = ReplicaArgs;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ReplicaArgs,
    ) -> Result<Self::State, ActorProcessingErr> {
        let journal = Journal::open(&args.data_dir.join(super::journal::FILE_NAME))?;
        let promised = journal.promised_epoch()?;
        let commit = journal.commit_index()?;
        let mut entries = Vec::new();
        for entry in journal.entries_from(1, usize::MAX)? {
            entries.push(Entry {
                index: entry.index,
                epoch: entry.epoch,
                record: codec::decode_tagged::<Record>(RECORD_TAG, &entry.record)?,
            });
        }
        let config = NodeConfig {
            node: args.node.clone(),
            bootstrap_voters: args.voters.get(),
            rule: QuorumRule::Voters,
        };
        let base_stock = args.base_stock.as_ref().clone();
        let core = CheckoutNode::restore(config, promised, entries, commit, base_stock, 0);
        tracing::info!(
            node = %args.node,
            epoch = promised,
            entries = core.log().last().0,
            commit = core.log().commit(),
            voters = ?core.voters(),
            "checkout journal opened"
        );
        args.voters.set(core.voters().clone());
        directory::join(CHECKOUT_GROUP, &args.node, &myself);
        let ticker = myself.send_interval(std::time::Duration::from_millis(TICK_MS), || {
            ServiceMsg::Cast(CheckoutRequest::Tick)
        });
        // A membership change reaches the core at once, not at the next
        // tick: a failover starts as soon as the owner is seen down.
        cast_on_change(args.view.clone(), myself.clone(), || {
            ServiceMsg::Cast(CheckoutRequest::Tick)
        });
        let mut replica = CheckoutReplica {
            node: args.node,
            core,
            journal,
            waiting: HashMap::new(),
            next_id: 0,
            started: Instant::now(),
            failover_started: None,
            owner_since_ms: 0,
            view: args.view,
            fed_reachable: Vec::new(),
            voters: args.voters,
            payment: args.payment,
            publisher: StockPublisher::spawn(),
            ticker,
            myself: myself.clone(),
            admission: Admission::new(),
            settled_on_reply: HashSet::new(),
            proposals: Vec::new(),
            flush_scheduled: false,
        };
        replica.feed_membership()?;
        Ok(replica)
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.ticker.abort();
        Ok(())
    }

    async fn handle(
        &self,
        myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let Some((request, reply)) = message.into_parts() else {
            return Ok(());
        };
        // Traffic is what users ask: not the replica's own ticks and
        // steps, its peers' protocol, nor `Status`, which monitoring
        // (`/api/cluster`, `/readyz`) polls whether or not anyone shops.
        if !matches!(
            request,
            CheckoutRequest::Tick
                | CheckoutRequest::Flush
                | CheckoutRequest::Status
                | CheckoutRequest::Peer { .. }
                | CheckoutRequest::Priced { .. }
                | CheckoutRequest::Paid { .. }
        ) {
            crate::host::traffic::CHECKOUT_HANDLED.count();
        }
        state.serve(&myself, request, reply)
    }
}

impl CheckoutReplica {
    fn serve(
        &mut self,
        myself: &ActorRef<ServiceMsg<CheckoutProtocol>>,
        request: CheckoutRequest,
        reply: Option<ReplyPort<CheckoutProtocol>>,
    ) -> Result<(), ActorProcessingErr> {
        let answer = match request {
            CheckoutRequest::Tick => {
                self.feed_membership()?;
                let actions = self.core.tick(self.now_ms());
                metrics::gauge!("bazaar_checkout_epoch").set(self.core.log().promised() as f64);
                return self.perform(actions);
            }
            CheckoutRequest::Flush => {
                self.flush_scheduled = false;
                let batch = std::mem::take(&mut self.proposals);
                if batch.is_empty() {
                    return Ok(());
                }
                if self.core.is_active_owner() {
                    metrics::histogram!("bazaar_checkout_batch_proposals")
                        .record(batch.len() as f64);
                }
                let actions = self.core.step(Event::Propose(batch));
                return self.perform(actions);
            }
            CheckoutRequest::Peer { from, message } => {
                let actions = self.core.step(Event::Receive { from, message });
                return self.perform(actions);
            }
            CheckoutRequest::PlaceOrder {
                user,
                key,
                budget_ms,
            } => {
                return self.place_order(myself, user, key, budget_ms, reply);
            }
            CheckoutRequest::Priced { id, draft } => return self.priced(myself, id, draft),
            CheckoutRequest::Paid { id, draft } => return self.paid(id, draft),
            CheckoutRequest::SetStock { product_id, stock } => {
                let waiting = Waiting::Stock(reply, product_id, stock);
                return self.propose(Proposal::SetStock { product_id, stock }, waiting);
            }
            CheckoutRequest::ChangeVoters(change) => {
                return self.propose(Proposal::Voters(change), Waiting::Voters(reply));
            }
            CheckoutRequest::Orders { user } => CheckoutReply::Orders(match user {
                Some(user) => self.core.book().orders_of(&user).cloned().collect(),
                None => self.core.book().orders().to_vec(),
            }),
            CheckoutRequest::SetPayment(settings) => {
                *self.payment.lock() = settings;
                tracing::info!(
                    failure_rate = settings.failure_rate,
                    latency_ms = settings.latency_ms,
                    "payment settings changed"
                );
                CheckoutReply::Done(Ok(()))
            }
            CheckoutRequest::Status => CheckoutReply::Status(self.status()),
        };
        remote::answer(reply, answer);
        Ok(())
    }

    /// Hands `proposal` to the core; `waiting` is answered when it commits
    /// or fails.
    pub(super) fn propose(
        &mut self,
        proposal: Proposal,
        waiting: Waiting,
    ) -> Result<(), ActorProcessingErr> {
        let id = self.wait(waiting);
        self.propose_as(id, proposal)
    }

    /// Keeps `waiting` until the proposal `id` (the one returned) is decided.
    pub(super) fn wait(&mut self, waiting: Waiting) -> u64 {
        self.next_id += 1;
        self.waiting.insert(self.next_id, waiting);
        self.next_id
    }

    /// Hands `proposal` to the core for the client waiting under `id`, in
    /// the next batch: every proposal that reaches the mailbox before the
    /// `Flush` this schedules (while the last batch was being written, for
    /// one) goes to the core together.
    pub(super) fn propose_as(
        &mut self,
        id: u64,
        proposal: Proposal,
    ) -> Result<(), ActorProcessingErr> {
        if !self.core.is_active_owner() {
            // Not the active owner: the core answers at once (`NotOwner`).
            let actions = self.core.step(Event::Propose(vec![(id, proposal)]));
            return self.perform(actions);
        }
        self.proposals.push((id, proposal));
        if !self.flush_scheduled {
            self.flush_scheduled = true;
            self.myself
                .cast(ServiceMsg::Cast(CheckoutRequest::Flush))
                .map_err(|err| format!("cannot schedule a flush: {err}"))?;
        }
        Ok(())
    }

    /// Answers the client waiting under `id` with `failure`.
    pub(super) fn fail(
        &mut self,
        id: u64,
        failure: CheckoutFailure,
    ) -> Result<(), ActorProcessingErr> {
        if let Some(waiting) = self.waiting.remove(&id) {
            self.answer(waiting, Err(failure));
        }
        Ok(())
    }

    /// Tells the core which members it reaches, oldest first, if that changed.
    fn feed_membership(&mut self) -> Result<(), ActorProcessingErr> {
        let mut members = candidates(&self.view.borrow());
        members.sort_by(|a, b| (a.incarnation, &a.name).cmp(&(b.incarnation, &b.name)));
        let reachable: Vec<String> = members.into_iter().map(|member| member.name).collect();
        if reachable == self.fed_reachable {
            return Ok(());
        }
        self.fed_reachable = reachable.clone();
        let actions = self.core.step(Event::Membership { reachable });
        self.perform(actions)
    }

    /// Performs the core's actions in order; a journal error fails the
    /// actor (its supervisor restarts it from the journal).
    fn perform(&mut self, actions: Vec<Action>) -> Result<(), ActorProcessingErr> {
        for action in actions {
            match action {
                Action::Persist(persist) => self.persist(persist)?,
                Action::Send { to, message } => {
                    let replica = directory::members_on::<CheckoutProtocol>(CHECKOUT_GROUP, &to)
                        .into_iter()
                        .next();
                    if let Some(replica) = replica {
                        let from = self.node.clone();
                        let _ = remote::cast(&replica, CheckoutRequest::Peer { from, message });
                    }
                }
                Action::Reply { id, outcome } => {
                    if let Some(waiting) = self.waiting.remove(&id) {
                        self.answer(waiting, outcome);
                    }
                }
                Action::Committed(entries) => self.committed(&entries),
                Action::RoleChanged(change) => self.role_changed(change),
            }
        }
        self.settled_on_reply.clear();
        self.voters.set(self.core.voters().clone());
        Ok(())
    }

    fn persist(&mut self, persist: Persist<Record>) -> Result<(), ActorProcessingErr> {
        match persist {
            Persist::Nothing => {}
            Persist::Promise(epoch) => {
                tokio::task::block_in_place(|| self.journal.set_promised_epoch(epoch))?;
            }
            Persist::Replace { from, entries } => {
                let mut stored = Vec::with_capacity(entries.len());
                for entry in entries {
                    stored.push(StoredEntry {
                        index: entry.index,
                        epoch: entry.epoch,
                        record: codec::encode_tagged(RECORD_TAG, &entry.record)?,
                    });
                }
                let promised = self.core.log().promised();
                tokio::task::block_in_place(|| {
                    self.journal.set_promised_epoch(promised)?;
                    self.journal.replace_from(from, &stored)
                })?;
            }
        }
        Ok(())
    }

    /// Records the commit hint; the owner follows up every committed order
    /// (cart, stock), whoever appended it.
    fn committed(&mut self, entries: &[Entry<Record>]) {
        let Some(last) = entries.last() else { return };
        let journal = &self.journal;
        // A lagging commit hint only delays a restarted node's view of
        // orders; it is not needed for safety.
        if let Err(err) = tokio::task::block_in_place(|| journal.set_commit_index(last.index)) {
            tracing::warn!(error = %err, "cannot record the commit index");
        }
        if self.core.owned_epoch().is_none() {
            return;
        }
        for entry in entries {
            if let Record::Order(order) = &entry.record {
                let settled = self.settled_on_reply.remove(&order.order_id);
                self.after_commit(order, !settled);
            }
        }
    }

    fn role_changed(&mut self, change: RoleChange) {
        match &change {
            RoleChange::Candidate { epoch } => {
                tracing::info!(node = %self.node, epoch, "asking for checkout ownership");
            }
            RoleChange::Owner { epoch } => {
                tracing::info!(node = %self.node, epoch, "checkout owner promoted");
            }
            RoleChange::Active { epoch } => {
                self.owner_since_ms = unix_ms_now();
                tracing::info!(node = %self.node, epoch, "checkout owner active");
                if let Some(started) = self.failover_started.take() {
                    metrics::counter!("bazaar_checkout_failovers_total").increment(1);
                    metrics::histogram!("bazaar_checkout_failover_duration_seconds")
                        .record(started.elapsed().as_secs_f64());
                }
            }
            RoleChange::Following { owner, epoch } => {
                self.owner_since_ms = unix_ms_now();
                self.failover_started = None;
                tracing::info!(node = %self.node, %owner, epoch, "following checkout owner");
            }
            RoleChange::Ownerless { why, failover } => {
                if *failover {
                    self.failover_started.get_or_insert_with(Instant::now);
                }
                tracing::warn!(node = %self.node, reason = why, "no checkout owner");
            }
        }
    }

    fn status(&self) -> CheckoutStatus {
        let voter = self.core.is_voter();
        let (role, owner) = match self.core.owned_epoch() {
            Some((_, true)) => ("owner", Some(self.node.clone())),
            Some((_, false)) => ("candidate", None),
            None if self.core.candidate_epoch().is_some() => ("candidate", None),
            None => (
                if voter { "follower" } else { "learner" },
                self.core.owner().map(|(owner, _)| owner.to_string()),
            ),
        };
        let standby = self.core.standby(owner.as_deref()).map(str::to_string);
        CheckoutStatus {
            node: self.node.clone(),
            role: role.to_string(),
            owner,
            standby,
            epoch: self.core.log().promised(),
            log_length: self.core.log().last().0,
            commit_index: self.core.log().commit(),
            since_ms: self.owner_since_ms,
            voters: self.core.voters().iter().cloned().collect(),
        }
    }

    /// Ms since the replica started: the core's and admission's clock.
    pub(super) fn now_ms(&self) -> u64 {
        self.started.elapsed().as_millis() as u64
    }

    /// An order admission control took is finished, `confirmed` or not.
    fn finished(&mut self, wait: &OrderWait, confirmed: bool) {
        if let Some(admitted) = wait.admitted {
            let took_ms = admitted.elapsed().as_millis() as u64;
            let now_ms = self.now_ms();
            self.admission.finished(now_ms, took_ms, confirmed);
            metrics::gauge!("bazaar_checkout_orders_in_flight")
                .set(self.admission.in_flight() as f64);
        }
    }

    /// Answers a waiting client with what its proposal gave.
    fn answer(&mut self, waiting: Waiting, outcome: Result<Outcome, CheckoutFailure>) {
        match (waiting, outcome) {
            (Waiting::Order(wait), Ok(Outcome::Order { order, created })) => {
                self.finished(&wait, true);
                if created {
                    self.settled_on_reply.insert(order.order_id.clone());
                }
                let OrderWait { reply, span, .. } = wait;
                if created {
                    span.in_scope(|| {
                        tracing::info!(node = %self.node, order = %order.order_id, user = %order.user, total_cents = order.total_cents, "order confirmed");
                    });
                    metrics::counter!("bazaar_orders_confirmed_total").increment(1);
                }
                // The buyer sees its cart without the bought items once it
                // has the acknowledgement (`after_commit` repeats it, a no-op).
                let settled = async move {
                    let _ = tokio::time::timeout(
                        super::orders::SETTLE_TIMEOUT,
                        super::orders::settle_cart(&order),
                    )
                    .await;
                    remote::answer(reply, CheckoutReply::Placed(Ok((order, created))));
                };
                tokio::spawn(settled.instrument(span));
            }
            (Waiting::Order(wait), outcome) => {
                self.finished(&wait, false);
                let reply = wait.reply;
                remote::answer(reply, CheckoutReply::Placed(Err(failure(outcome))));
            }
            (Waiting::Stock(reply, product_id, stock), Ok(Outcome::Stock)) => {
                let publisher = self.publisher.clone();
                tokio::spawn(async move {
                    let published = publisher
                        .publish_and_wait(vec![(product_id, stock)], super::orders::PUBLISH_TIMEOUT)
                        .await;
                    let product = published
                        .into_iter()
                        .find(|product| product.id == product_id);
                    remote::answer(reply, CheckoutReply::StockSet(Ok(product)));
                });
            }
            (Waiting::Stock(reply, ..), outcome) => {
                remote::answer(reply, CheckoutReply::StockSet(Err(failure(outcome))));
            }
            (Waiting::Voters(reply), Ok(Outcome::Voters(voters))) => {
                tracing::info!(node = %self.node, ?voters, "checkout voters changed");
                remote::answer(reply, CheckoutReply::Voters(Ok(voters)));
            }
            (Waiting::Voters(reply), outcome) => {
                remote::answer(reply, CheckoutReply::Voters(Err(failure(outcome))));
            }
        }
    }
}

/// The failure of an outcome that is not what its request expects.
fn failure(outcome: Result<Outcome, CheckoutFailure>) -> CheckoutFailure {
    match outcome {
        Err(failure) => failure,
        Ok(other) => CheckoutFailure::Unavailable(format!("unexpected outcome {other:?}")),
    }
}
