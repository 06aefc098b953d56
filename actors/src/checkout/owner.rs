//! What a checkout replica does as owner: promotion, replication and
//! commit (placing orders is in `orders`).

use std::collections::HashMap;
use std::time::{Duration, Instant};

use bazaar_cluster::directory;
use bazaar_cluster::member::MembershipView;
use bazaar_cluster::membership::table::unix_ms_now;
use bazaar_cluster::remote;
use ractor::ActorProcessingErr;

use super::log::{majority_commit, most_up_to_date, Append, AppendReply, PromiseReply};
use super::model::Record;
use super::protocol::{
    CheckoutFailure, CheckoutProtocol, CheckoutReply, CheckoutRequest, CHECKOUT_GROUP,
};
use super::replica::{CheckoutReplica, Role};

/// Timeout of a promise or append to one peer.
const PEER_TIMEOUT: Duration = Duration::from_millis(400);
/// Timeout of fetching a peer's log when promoting.
const FETCH_TIMEOUT: Duration = Duration::from_secs(3);
/// Replication rounds an order gets to reach a majority.
const COMMIT_ROUNDS: usize = 3;

impl CheckoutReplica {
    /// Reachable peers (not this node) and their checkout replicas.
    fn peers(
        &self,
        view: &MembershipView,
    ) -> Vec<(
        String,
        ractor::ActorRef<bazaar_cluster::remote::ServiceMsg<CheckoutProtocol>>,
    )> {
        view.members
            .values()
            .filter(|member| member.info.name != self.node && member.state.is_reachable())
            .filter_map(|member| {
                directory::members_on::<CheckoutProtocol>(CHECKOUT_GROUP, &member.info.name)
                    .into_iter()
                    .next()
                    .map(|replica| (member.info.name.clone(), replica))
            })
            .collect()
    }

    /// Tries to become owner with a new epoch.
    pub(super) async fn promote(
        &mut self,
        view: &MembershipView,
    ) -> Result<(), ActorProcessingErr> {
        let epoch = self.log.promised() + 1;
        let (own, persist) = self.log.promise(epoch);
        self.persist(persist)?;
        let PromiseReply::Promised {
            last_index,
            last_epoch,
        } = own
        else {
            return Ok(());
        };
        tracing::info!(node = %self.node, epoch, "asking for checkout ownership");
        let mut promises = vec![(self.node.clone(), last_index, last_epoch)];
        let mut asks = tokio::task::JoinSet::new();
        for (name, replica) in self.peers(view) {
            asks.spawn(async move {
                let reply =
                    remote::call(&replica, CheckoutRequest::Prepare { epoch }, PEER_TIMEOUT).await;
                (name, replica, reply)
            });
        }
        let mut replicas = HashMap::new();
        let mut higher = 0;
        while let Some(Ok((name, replica, reply))) = asks.join_next().await {
            match reply {
                Ok(CheckoutReply::Promise(PromiseReply::Promised {
                    last_index,
                    last_epoch,
                })) => {
                    promises.push((name.clone(), last_index, last_epoch));
                    replicas.insert(name, replica);
                }
                Ok(CheckoutReply::Promise(PromiseReply::Refused { promised })) => {
                    higher = higher.max(promised);
                }
                _ => {}
            }
        }
        let majority = view.expected / 2 + 1;
        if promises.len() < majority {
            tracing::warn!(node = %self.node, epoch, promises = promises.len(), majority, "checkout promotion failed");
            if higher > epoch {
                let (_, persist) = self.log.promise(higher);
                self.persist(persist)?;
            }
            self.ownerless_since = Instant::now();
            self.owner_lost = false;
            return Ok(());
        }
        let best = most_up_to_date(promises.iter().map(|(n, i, e)| (n.as_str(), *i, *e)))
            .map(str::to_string)
            .unwrap_or_else(|| self.node.clone());
        if best != self.node {
            let Some(replica) = replicas.get(&best) else {
                return Ok(());
            };
            match remote::call(replica, CheckoutRequest::Fetch { from: 1 }, FETCH_TIMEOUT).await {
                Ok(CheckoutReply::Entries(entries)) => {
                    let persist = self.log.adopt(entries);
                    self.persist(persist)?;
                }
                other => {
                    tracing::warn!(node = %self.node, from = %best, reply = ?other.err(), "cannot fetch the most up-to-date checkout log");
                    return Ok(());
                }
            }
        }
        let (_, persist) = self.log.push(
            epoch,
            Record::Promoted {
                owner: self.node.clone(),
            },
        );
        self.persist(persist)?;
        self.role = Role::Owner {
            epoch,
            active: false,
            stored: HashMap::new(),
            next: HashMap::new(),
        };
        self.owner = Some((self.node.clone(), epoch));
        let committed = self.replicate().await?;
        tracing::info!(node = %self.node, epoch, adopted_from = %best, active = committed, "checkout owner promoted");
        Ok(())
    }

    /// One replication round to every reachable follower; raises the commit
    /// index. Returns true when everything in the log is committed.
    pub(super) async fn replicate(&mut self) -> Result<bool, ActorProcessingErr> {
        let view = self.view.borrow().clone();
        let Role::Owner {
            epoch, ref next, ..
        } = self.role
        else {
            return Ok(false);
        };
        let last = self.log.last().0;
        let mut sends = tokio::task::JoinSet::new();
        for (name, replica) in self.peers(&view) {
            // A follower not heard from yet gets the last entry (the new
            // owner's marker at first), so one round commits it when the
            // logs agree.
            let from = next.get(&name).copied().unwrap_or(last).clamp(1, last + 1);
            let prev_index = from - 1;
            let prev_epoch = match prev_index {
                0 => 0,
                index => self.log.entries()[index as usize - 1].epoch,
            };
            let append = Append {
                epoch,
                owner: self.node.clone(),
                prev_index,
                prev_epoch,
                entries: self.log.entries_from(from).to_vec(),
                commit: self.log.commit(),
            };
            sends.spawn(async move {
                let reply =
                    remote::call(&replica, CheckoutRequest::Append(append), PEER_TIMEOUT).await;
                (name, from, reply)
            });
        }
        let mut newer = None;
        let mut replies = Vec::new();
        while let Some(Ok(sent)) = sends.join_next().await {
            replies.push(sent);
        }
        let Role::Owner {
            ref mut stored,
            ref mut next,
            ref mut active,
            ..
        } = self.role
        else {
            return Ok(false);
        };
        for (name, from, reply) in replies {
            match reply {
                Ok(CheckoutReply::Appended(AppendReply::Stored { last_index })) => {
                    stored.insert(name.clone(), last_index);
                    next.insert(name, last_index + 1);
                }
                Ok(CheckoutReply::Appended(AppendReply::Mismatch { last_index })) => {
                    next.insert(name, (from.saturating_sub(1)).min(last_index + 1).max(1));
                }
                Ok(CheckoutReply::Appended(AppendReply::Stale { promised })) => {
                    newer = Some(promised)
                }
                _ => {}
            }
        }
        let mut indexes: Vec<u64> = stored
            .iter()
            .filter(|(name, _)| {
                view.members
                    .get(*name)
                    .is_some_and(|m| m.state.is_reachable())
            })
            .map(|(_, index)| *index)
            .collect();
        indexes.push(last);
        let commit = majority_commit(&self.log, epoch, &indexes, view.expected);
        self.log.commit_to(commit);
        if commit >= last && !*active {
            *active = true;
            self.owner_since_ms = unix_ms_now();
            tracing::info!(node = %self.node, epoch, "checkout owner active");
            if let Some(started) = self.failover_started.take() {
                metrics::counter!("bazaar_checkout_failovers_total").increment(1);
                metrics::histogram!("bazaar_checkout_failover_duration_seconds")
                    .record(started.elapsed().as_secs_f64());
            }
        }
        self.apply_committed();
        if let Some(promised) = newer {
            self.deposed(promised);
            return Ok(false);
        }
        Ok(self.log.commit() >= last)
    }

    /// Replicates until `index` is committed, a few rounds at most.
    pub(super) async fn commit_through(&mut self, index: u64) -> Result<bool, ActorProcessingErr> {
        for _ in 0..COMMIT_ROUNDS {
            self.replicate().await?;
            if self.log.commit() >= index {
                return Ok(true);
            }
            if !matches!(self.role, Role::Owner { .. }) {
                return Ok(false);
            }
        }
        Ok(false)
    }

    pub(super) fn active_owner(&self) -> Result<u64, CheckoutFailure> {
        match (&self.role, self.view.borrow().has_quorum()) {
            (
                Role::Owner {
                    epoch,
                    active: true,
                    ..
                },
                true,
            ) => Ok(*epoch),
            _ => Err(CheckoutFailure::NotOwner {
                owner: self
                    .owner
                    .as_ref()
                    .map(|(owner, _)| owner.clone())
                    .filter(|owner| owner != &self.node),
            }),
        }
    }
}
