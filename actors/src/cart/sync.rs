//! The cart sync actor: hands shards over as soon as membership changes,
//! without waiting for a request. On every change of this node's view, and
//! every [`SYNC_INTERVAL`] (to retry failed handovers and to notice a
//! backup actor that restarted), it syncs each owned shard whose mark is
//! stale: a promoted backup pushes its shards to their new backups, and a
//! node that regained shards pulls them before serving.

use std::time::Duration;

use bazaar_cluster::member::cast_on_change;
use ractor::concurrency::JoinHandle;
use ractor::{Actor, ActorProcessingErr, ActorRef};

use super::owner::Owner;

/// How often the sync actor checks every owned shard.
pub const SYNC_INTERVAL: Duration = Duration::from_secs(1);

/// The sync actor's messages (local only).
#[derive(Debug)]
pub enum CartSyncMsg {
    /// Check the owned shards now.
    Tick,
}

impl ractor::Message for CartSyncMsg {}

/// Runtime state of the sync actor.
pub struct CartSyncState {
    owner: Owner,
    ticker: JoinHandle<()>,
    watcher: tokio::task::JoinHandle<()>,
    /// Shards that failed to sync at the last tick, for change-only logs.
    failing: usize,
}

/// The cart sync actor of a node.
pub struct CartSync;

impl Actor for CartSync {
    type Msg = CartSyncMsg;
    type State = CartSyncState;
    type Arguments = Owner;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        owner: Owner,
    ) -> Result<Self::State, ActorProcessingErr> {
        let ticker = myself.send_interval(SYNC_INTERVAL, || CartSyncMsg::Tick);
        let watcher = cast_on_change(owner.view.clone(), myself.clone(), || CartSyncMsg::Tick);
        myself.cast(CartSyncMsg::Tick)?;
        Ok(CartSyncState {
            owner,
            ticker,
            watcher,
            failing: 0,
        })
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<Self::Msg>,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        state.ticker.abort();
        state.watcher.abort();
        Ok(())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        CartSyncMsg::Tick: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let (synced, failed) = state.owner.sync_owned().await;
        if synced > 0 {
            tracing::info!(node = %state.owner.node, shards = synced, "cart shards handed over");
        }
        if failed != state.failing {
            if failed > 0 {
                tracing::warn!(node = %state.owner.node, shards = failed, "cart shards not synced yet, retrying");
            } else {
                tracing::info!(node = %state.owner.node, "every owned cart shard is synced");
            }
            state.failing = failed;
        }
        Ok(())
    }
}
