//! The checkout replica: one per node, holding the node's copy of the log
//! (durable in the journal) and the orders derived from its committed
//! prefix. Exactly one replica at a time acts as owner; see `log` for the
//! protocol and `owner` for what the owner does.
//!
//! Who tries to become owner: the preferred node of the placement function
//! (the oldest reachable member) once no owner is known — at once when the
//! known owner's node goes down (failover), after a grace period otherwise
//! (start, rejoin), so that a node coming back follows the current owner
//! instead of taking over. Any node tries after a longer wait, in case the
//! preferred one cannot. A node without quorum never tries and never acts.
//!
//! Metrics: `bazaar_checkout_epoch` (the promised epoch, each tick); a
//! replica that saw its owner lost and then became the active owner counts
//! `bazaar_checkout_failovers_total` and records the time between the two in
//! `bazaar_checkout_failover_duration_seconds`.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bazaar_cluster::codec;
use bazaar_cluster::directory;
use bazaar_cluster::member::{cast_on_change, MembershipView};
use bazaar_cluster::membership::table::unix_ms_now;
use bazaar_cluster::placement::{assign, candidates, Manifest};
use bazaar_cluster::remote::ServiceMsg;
use parking_lot::Mutex;
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef};
use tokio::sync::watch;

use super::journal::{Journal, StoredEntry};
use super::log::{Entry, Persist, ReplicaLog};
use super::model::{OrderBook, Record};
use super::protocol::{
    CheckoutFailure, CheckoutProtocol, CheckoutReply, CheckoutRequest, CheckoutStatus,
    PaymentSettings, CHECKOUT_GROUP,
};
use super::publish::StockPublisher;

/// How often a replica checks ownership and the owner replicates.
pub const TICK: Duration = Duration::from_millis(100);
/// Wait without an owner before the preferred node promotes itself, when
/// the owner was not seen going down (start, rejoin).
const PROMOTE_GRACE: Duration = Duration::from_millis(600);
/// Wait without an owner before any node with quorum tries.
const PROMOTE_FALLBACK: Duration = Duration::from_secs(4);
/// An owner not heard from for this long is forgotten.
const OWNER_SILENCE: Duration = Duration::from_millis(2500);
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
    /// Payment settings, shared with the payment worker.
    pub payment: Arc<Mutex<PaymentSettings>>,
    /// Seeded stock of every product.
    pub base_stock: Arc<HashMap<u64, u32>>,
}

/// What this replica is doing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Role {
    /// Following `owner` (if known).
    Follower,
    /// Owner in `epoch`; `active` once its `Promoted` marker committed.
    Owner {
        epoch: u64,
        active: bool,
        /// Last index each follower stored.
        stored: HashMap<String, u64>,
        /// Next index to send each follower.
        next: HashMap<String, u64>,
    },
}

/// Runtime state of a checkout replica.
pub struct CheckoutReplica {
    pub(super) node: String,
    pub(super) journal: Journal,
    pub(super) log: ReplicaLog<Record>,
    pub(super) book: OrderBook,
    pub(super) applied: u64,
    pub(super) role: Role,
    /// The owner followed and its epoch.
    pub(super) owner: Option<(String, u64)>,
    pub(super) owner_heard: Instant,
    /// Since when no owner is known.
    pub(super) ownerless_since: Instant,
    /// The known owner's node went down: fail over without grace.
    pub(super) owner_lost: bool,
    /// When this replica saw the owner it followed lost, until it becomes
    /// the active owner (a failover it measures) or follows another one.
    pub(super) failover_started: Option<Instant>,
    /// When this replica last learned of a new owner (or became one), in
    /// ms since the Unix epoch.
    pub(super) owner_since_ms: u64,
    /// Wall-clock time of the owner's last append, to compare with the
    /// membership's `since_ms`.
    pub(super) owner_heard_ms: u64,
    pub(super) view: watch::Receiver<MembershipView>,
    pub(super) payment: Arc<Mutex<PaymentSettings>>,
    /// Publishes stock levels to the catalog, in commit order.
    pub(super) publisher: StockPublisher,
    ticker: JoinHandle<()>,
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
        let journal = Journal::open(&args.data_dir.join("checkout.redb"))?;
        let promised = journal.promised_epoch()?;
        let commit = journal.commit_index()?;
        let stored = journal.entries_from(1, usize::MAX)?;
        let mut entries = Vec::with_capacity(stored.len());
        for entry in stored {
            entries.push(Entry {
                index: entry.index,
                epoch: entry.epoch,
                record: codec::decode_tagged::<Record>(RECORD_TAG, &entry.record)?,
            });
        }
        let log = ReplicaLog::restore(promised, entries, commit);
        tracing::info!(
            node = %args.node,
            epoch = promised,
            entries = log.last().0,
            commit = log.commit(),
            "checkout journal opened"
        );
        directory::join(CHECKOUT_GROUP, &args.node, &myself);
        let ticker = myself.send_interval(TICK, || ServiceMsg::Cast(CheckoutRequest::Tick));
        // A membership change is checked at once, not at the next tick: a
        // failover starts as soon as the owner's node is seen down.
        cast_on_change(args.view.clone(), myself.clone(), || {
            ServiceMsg::Cast(CheckoutRequest::Tick)
        });
        let now = Instant::now();
        let mut replica = CheckoutReplica {
            node: args.node,
            journal,
            log,
            book: OrderBook::new(args.base_stock.as_ref().clone()),
            applied: 0,
            role: Role::Follower,
            owner: None,
            owner_heard: now,
            ownerless_since: now,
            owner_lost: false,
            failover_started: None,
            owner_since_ms: 0,
            owner_heard_ms: 0,
            view: args.view,
            payment: args.payment,
            publisher: StockPublisher::spawn(),
            ticker,
        };
        replica.apply_committed();
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
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let Some((request, reply)) = message.into_parts() else {
            return Ok(());
        };
        if !matches!(request, CheckoutRequest::Tick) {
            crate::host::traffic::CHECKOUT_HANDLED.count();
        }
        let answer = state.serve(request).await?;
        if let (Some(reply), Some(answer)) = (reply, answer) {
            let _ = reply.send(Ok(answer));
        }
        Ok(())
    }
}

impl CheckoutReplica {
    async fn serve(
        &mut self,
        request: CheckoutRequest,
    ) -> Result<Option<CheckoutReply>, ActorProcessingErr> {
        let answer = match request {
            CheckoutRequest::Tick => {
                self.tick().await?;
                return Ok(None);
            }
            CheckoutRequest::PlaceOrder { user, key } => {
                CheckoutReply::Placed(self.place_order(&user, &key).await?)
            }
            CheckoutRequest::SetStock { product_id, stock } => {
                CheckoutReply::StockSet(self.set_stock(product_id, stock).await?)
            }
            CheckoutRequest::Orders { user } => CheckoutReply::Orders(match user {
                Some(user) => self.book.orders_of(&user).cloned().collect(),
                None => self.book.orders().to_vec(),
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
            CheckoutRequest::ChangeVoters(_) => CheckoutReply::Voters(Err(
                CheckoutFailure::Unavailable("voter changes are not implemented yet".into()),
            )),
            CheckoutRequest::Prepare { epoch } => {
                let (reply, persist) = self.log.promise(epoch);
                self.persist(persist)?;
                if matches!(reply, super::log::PromiseReply::Promised { .. }) {
                    self.deposed(epoch);
                }
                CheckoutReply::Promise(reply)
            }
            CheckoutRequest::Fetch { from } => {
                CheckoutReply::Entries(self.log.entries_from(from).to_vec())
            }
            CheckoutRequest::Append(append) => {
                let (reply, persist) = self.log.append(&append);
                self.persist(persist)?;
                if !matches!(reply, super::log::AppendReply::Stale { .. }) {
                    if append.owner != self.node {
                        self.deposed(append.epoch);
                    }
                    self.follow(append.owner.clone(), append.epoch);
                    self.apply_committed();
                }
                CheckoutReply::Appended(reply)
            }
        };
        Ok(Some(answer))
    }

    /// Records that `owner` leads in `epoch`.
    fn follow(&mut self, owner: String, epoch: u64) {
        if self.owner.as_ref() != Some(&(owner.clone(), epoch)) {
            tracing::info!(node = %self.node, %owner, epoch, "following checkout owner");
            self.owner_since_ms = unix_ms_now();
        }
        self.failover_started = None;
        self.owner = Some((owner, epoch));
        self.owner_heard = Instant::now();
        self.owner_heard_ms = unix_ms_now();
        self.owner_lost = false;
    }

    /// A higher epoch exists: stop acting as owner.
    pub(super) fn deposed(&mut self, epoch: u64) {
        if let Role::Owner { epoch: mine, .. } = self.role {
            if epoch > mine {
                tracing::warn!(node = %self.node, epoch = mine, newer = epoch, "checkout owner deposed by a newer epoch");
                self.role = Role::Follower;
                self.owner = None;
                self.ownerless_since = Instant::now();
            }
        }
    }

    /// Makes `persist` durable; an error fails the actor (its supervisor
    /// restarts it from the journal).
    pub(super) fn persist(&mut self, persist: Persist<Record>) -> Result<(), ActorProcessingErr> {
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
                tokio::task::block_in_place(|| {
                    self.journal.set_promised_epoch(self.log.promised())?;
                    self.journal.replace_from(from, &stored)
                })?;
            }
        }
        Ok(())
    }

    /// Applies newly committed records to the order book.
    ///
    /// The owner also carries out what follows from each newly committed
    /// order (clearing the cart, publishing stock), whoever appended it:
    /// an order inherited through a failover gets the same follow-up as
    /// one placed here.
    pub(super) fn apply_committed(&mut self) {
        let commit = self.log.commit();
        if commit <= self.applied {
            return;
        }
        let mut committed_orders = Vec::new();
        for entry in &self.log.entries()[self.applied as usize..commit as usize] {
            self.book.apply(&entry.record);
            if let Record::Order(order) = &entry.record {
                committed_orders.push(order.clone());
            }
        }
        self.applied = commit;
        if matches!(self.role, Role::Owner { .. }) {
            for order in &committed_orders {
                self.after_commit(order);
            }
        }
        let journal = &self.journal;
        // A lagging commit hint only delays a restarted node's view of
        // orders; it is not needed for safety.
        if let Err(err) = tokio::task::block_in_place(|| journal.set_commit_index(commit)) {
            tracing::warn!(error = %err, "cannot record the commit index");
        }
    }

    /// The preferred owner and standby among reachable members.
    pub(super) fn preference(view: &MembershipView) -> (Option<String>, Option<String>) {
        let manifest = Manifest::new().singleton("checkout");
        let assignments = assign(&manifest, &candidates(view));
        (
            assignments.owner("checkout").map(str::to_string),
            assignments.standby("checkout").map(str::to_string),
        )
    }

    fn status(&self) -> CheckoutStatus {
        let view = self.view.borrow().clone();
        let (preferred, standby) = Self::preference(&view);
        let (role, owner) = match &self.role {
            Role::Owner { active: true, .. } => ("owner", Some(self.node.clone())),
            Role::Owner { .. } => ("candidate", None),
            Role::Follower => (
                "follower",
                self.owner.as_ref().map(|(owner, _)| owner.clone()),
            ),
        };
        let standby = match owner.as_deref() {
            Some(owner) if standby.as_deref() == Some(owner) => preferred,
            _ => standby,
        };
        CheckoutStatus {
            node: self.node.clone(),
            role: role.to_string(),
            owner,
            standby,
            epoch: self.log.promised(),
            log_length: self.log.last().0,
            commit_index: self.log.commit(),
            since_ms: self.owner_since_ms,
            voters: Vec::new(),
        }
    }

    /// Periodic work: follow or elect an owner; as owner, replicate.
    async fn tick(&mut self) -> Result<(), ActorProcessingErr> {
        metrics::gauge!("bazaar_checkout_epoch").set(self.log.promised() as f64);
        let view = self.view.borrow().clone();
        if let Role::Owner { .. } = self.role {
            if !view.has_quorum() {
                tracing::warn!(node = %self.node, "checkout owner lost quorum, stepping down");
                self.role = Role::Follower;
                self.owner = None;
                self.ownerless_since = Instant::now();
                return Ok(());
            }
            return self.replicate().await.map(|_| ());
        }
        if let Some((owner, _)) = &self.owner {
            // Down only counts if it was decided after the owner's last
            // append: a node resuming from a freeze marks everyone down,
            // then hears the owner before its view catches up.
            let member = view.members.get(owner);
            let reachable = member.is_some_and(|member| member.state.is_reachable());
            let down_after_heard =
                member.is_some_and(|member| !reachable && member.since_ms >= self.owner_heard_ms);
            let silent = self.owner_heard.elapsed() >= OWNER_SILENCE;
            if down_after_heard || silent {
                tracing::warn!(node = %self.node, %owner, reachable, "checkout owner lost");
                self.owner_lost = down_after_heard;
                self.failover_started.get_or_insert_with(Instant::now);
                self.owner = None;
                self.ownerless_since = Instant::now();
            }
        }
        if self.owner.is_some() || !view.has_quorum() {
            return Ok(());
        }
        let (preferred, _) = Self::preference(&view);
        let waited = self.ownerless_since.elapsed();
        let preferred_here = preferred.as_deref() == Some(self.node.as_str());
        let due = (preferred_here && (self.owner_lost || waited >= PROMOTE_GRACE))
            || waited >= PROMOTE_FALLBACK;
        if due {
            self.promote(&view).await?;
        }
        Ok(())
    }
}
