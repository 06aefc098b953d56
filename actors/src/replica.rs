//! A replicated store: one actor per node holding a service's state, with
//! writes broadcast to every other replica and a pull of missed changes
//! whenever a peer replica appears (and periodically, as anti-entropy).
//!
//! The state type says how to apply a local write, how to merge an item
//! from another replica, and which items differ from the seed; merging
//! must be commutative, associative and idempotent (a join), so replicas
//! that saw the same items in any order hold the same state.
//!
//! Guarantees: a write is acknowledged once applied here and sent to every
//! reachable replica (not once they applied it: a replica that misses the
//! cast catches up at its next pull); a replica that starts, or returns
//! after a partition, pulls the changes of a live peer before long
//! ([`SYNC_INTERVAL`]). The state lives in an `Arc` owned by the service's
//! supervisor, so a crash of the store actor loses nothing.

use std::collections::HashSet;
use std::fmt;
use std::marker::PhantomData;
use std::sync::Arc;
use std::time::Duration;

use bazaar_cluster::directory;
use bazaar_cluster::remote::{self, Protocol, ServiceMsg};
use parking_lot::{Mutex, RwLock};
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorId, ActorProcessingErr, ActorRef};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

/// How often a replica looks for peers it has not pulled from yet.
pub const SYNC_INTERVAL: Duration = Duration::from_millis(500);
/// Every this many sync ticks, pull again from one peer (anti-entropy).
const ANTI_ENTROPY_TICKS: u64 = 20;
/// Timeout of one pull.
const PULL_TIMEOUT: Duration = Duration::from_secs(3);

/// State that can be replicated by a [`ReplicaStore`].
pub trait ReplicatedState: Send + Sync + 'static {
    /// Protocol tag of the store's messages.
    const PROTOCOL: &'static str;
    /// A unit of replication (a product version, an account).
    type Item: Clone + Serialize + DeserializeOwned + Send + Sync + fmt::Debug + 'static;
    /// A write requested on this node.
    type Write: Clone + Serialize + DeserializeOwned + Send + fmt::Debug + 'static;
    /// The outcome of a write, returned to the writer.
    type Written: Clone + Serialize + DeserializeOwned + Send + fmt::Debug + 'static;

    /// Applies a local write; returns the outcome and the items it changed.
    fn apply(
        &mut self,
        write: Self::Write,
        origin: &str,
        now_ms: u64,
    ) -> (Self::Written, Vec<Self::Item>);
    /// Merges an item from another replica; true if it changed the state.
    fn merge(&mut self, item: Self::Item) -> bool;
    /// Every item that differs from the seed.
    fn changes(&self) -> Vec<Self::Item>;
}

/// The store's protocol.
pub struct ReplicaProtocol<S>(PhantomData<fn() -> S>);

impl<S: ReplicatedState> Protocol for ReplicaProtocol<S> {
    const NAME: &'static str = S::PROTOCOL;
    type Request = ReplicaRequest<S>;
    type Reply = ReplicaReply<S>;
}

/// Requests to a replica store.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub enum ReplicaRequest<S: ReplicatedState> {
    /// Apply a write made on this node (call: answers `Written`).
    Write(S::Write),
    /// Merge items from another replica (cast).
    Replicate(Vec<S::Item>),
    /// Every item that differs from the seed (call: answers `Changes`).
    Changes,
    /// Look for peers to pull from (cast; sent by the store's own timer).
    Sync,
    /// Fail on purpose, to exercise supervision (cast).
    Crash,
}

impl<S: ReplicatedState> Clone for ReplicaRequest<S> {
    fn clone(&self) -> Self {
        match self {
            Self::Write(write) => Self::Write(write.clone()),
            Self::Replicate(items) => Self::Replicate(items.clone()),
            Self::Changes => Self::Changes,
            Self::Sync => Self::Sync,
            Self::Crash => Self::Crash,
        }
    }
}

impl<S: ReplicatedState> fmt::Debug for ReplicaRequest<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Write(write) => f.debug_tuple("Write").field(write).finish(),
            Self::Replicate(items) => write!(f, "Replicate({} items)", items.len()),
            Self::Changes => f.write_str("Changes"),
            Self::Sync => f.write_str("Sync"),
            Self::Crash => f.write_str("Crash"),
        }
    }
}

/// Replies of a replica store.
#[derive(Serialize, Deserialize)]
#[serde(bound = "")]
pub enum ReplicaReply<S: ReplicatedState> {
    /// Outcome of a write.
    Written(S::Written),
    /// Items that differ from the seed.
    Changes(Vec<S::Item>),
    /// The request needs no answer beyond this.
    Ack,
}

impl<S: ReplicatedState> fmt::Debug for ReplicaReply<S> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Written(written) => f.debug_tuple("Written").field(written).finish(),
            Self::Changes(items) => write!(f, "Changes({} items)", items.len()),
            Self::Ack => f.write_str("Ack"),
        }
    }
}

/// Called with the items that changed here, from local writes or merges.
pub type ChangeListener<S> = Arc<dyn Fn(&[<S as ReplicatedState>::Item]) + Send + Sync>;

/// Start arguments of a replica store.
pub struct ReplicaArgs<S: ReplicatedState> {
    /// This node's name.
    pub node: String,
    /// The pg group of this service's stores.
    pub group: &'static str,
    /// The state, shared with the service's readers.
    pub state: Arc<RwLock<S>>,
    /// Told about every change.
    pub on_change: ChangeListener<S>,
}

/// The store actor.
pub struct ReplicaStore<S>(PhantomData<fn() -> S>);

impl<S> Default for ReplicaStore<S> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

/// Runtime state of a store.
pub struct ReplicaStoreState<S: ReplicatedState> {
    args: ReplicaArgs<S>,
    /// Peers pulled from since they (re)appeared.
    synced: Arc<Mutex<HashSet<ActorId>>>,
    ticks: u64,
    ticker: JoinHandle<()>,
}

type Msg<S> = ServiceMsg<ReplicaProtocol<S>>;

impl<S: ReplicatedState> Actor for ReplicaStore<S> {
    type Msg = Msg<S>;
    type State = ReplicaStoreState<S>;
    type Arguments = ReplicaArgs<S>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        args: ReplicaArgs<S>,
    ) -> Result<Self::State, ActorProcessingErr> {
        directory::join(args.group, &args.node, &myself);
        let ticker = myself.send_interval(SYNC_INTERVAL, || ServiceMsg::Cast(ReplicaRequest::Sync));
        myself.cast(ServiceMsg::Cast(ReplicaRequest::Sync))?;
        Ok(ReplicaStoreState {
            args,
            synced: Arc::default(),
            ticks: 0,
            ticker,
        })
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
        let answer = match request {
            ReplicaRequest::Write(write) => {
                let now_ms = bazaar_cluster::membership::table::unix_ms_now();
                let (written, changed) =
                    state
                        .args
                        .state
                        .write()
                        .apply(write, &state.args.node, now_ms);
                if !changed.is_empty() {
                    (state.args.on_change)(&changed);
                    broadcast::<S>(state.args.group, changed);
                }
                ReplicaReply::Written(written)
            }
            ReplicaRequest::Replicate(items) => {
                let changed: Vec<S::Item> = {
                    let mut guard = state.args.state.write();
                    items
                        .into_iter()
                        .filter(|item| guard.merge(item.clone()))
                        .collect()
                };
                if !changed.is_empty() {
                    tracing::debug!(store = S::PROTOCOL, items = changed.len(), "merged changes");
                    (state.args.on_change)(&changed);
                }
                ReplicaReply::Ack
            }
            ReplicaRequest::Changes => ReplicaReply::Changes(state.args.state.read().changes()),
            ReplicaRequest::Sync => {
                state.ticks += 1;
                let anti_entropy = state.ticks % ANTI_ENTROPY_TICKS == 0;
                pull_from_new_peers(&myself, state.args.group, &state.synced, anti_entropy);
                ReplicaReply::Ack
            }
            ReplicaRequest::Crash => {
                return Err(format!("crash injected into {}", S::PROTOCOL).into());
            }
        };
        remote::answer(reply, answer);
        Ok(())
    }
}

/// Casts changed items to every remote replica.
fn broadcast<S: ReplicatedState>(group: &str, items: Vec<S::Item>) {
    for peer in directory::remote_members::<ReplicaProtocol<S>>(group) {
        // A peer whose session just closed misses this cast; it pulls the
        // change when it comes back.
        let _ = remote::cast(&peer, ReplicaRequest::Replicate(items.clone()));
    }
}

/// Pulls changes from every peer not pulled from since it appeared (and,
/// for anti-entropy, from one random peer again), each in its own task so
/// the store keeps serving.
fn pull_from_new_peers<S: ReplicatedState>(
    myself: &ActorRef<Msg<S>>,
    group: &str,
    synced: &Arc<Mutex<HashSet<ActorId>>>,
    anti_entropy: bool,
) {
    let peers = directory::remote_members::<ReplicaProtocol<S>>(group);
    let mut targets = Vec::new();
    {
        let mut synced = synced.lock();
        synced.retain(|id| peers.iter().any(|peer| peer.get_id() == *id));
        for peer in &peers {
            if synced.insert(peer.get_id()) {
                targets.push(peer.clone());
            }
        }
        if anti_entropy && targets.is_empty() {
            targets.extend(peers.first().cloned());
        }
    }
    for peer in targets {
        let myself = myself.clone();
        let synced = synced.clone();
        tokio::spawn(async move {
            match remote::call(&peer, ReplicaRequest::Changes, PULL_TIMEOUT).await {
                Ok(ReplicaReply::Changes(items)) => {
                    let _ = myself.cast(ServiceMsg::Cast(ReplicaRequest::Replicate(items)));
                }
                Ok(other) => {
                    tracing::warn!(store = S::PROTOCOL, reply = ?other, "unexpected reply to a pull");
                }
                Err(error) => {
                    tracing::debug!(store = S::PROTOCOL, %error, "pull failed, will retry");
                    synced.lock().remove(&peer.get_id());
                }
            }
        });
    }
}
