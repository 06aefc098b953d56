//! The receiving ends, one per system, all thin shells over
//! [`Counter`]: count casts, answer calls with the payload's length, answer
//! a drain once its count is reached.
//!
//! The same actors serve local workloads (spawned by the driver) and remote
//! ones (spawned by the peer and found through pg).

use bazaar_cluster::directory;
use bazaar_cluster::remote::{self, ReplyPort, ServiceMsg};
use ractor::{Actor, ActorProcessingErr, ActorRef, RpcReplyPort};
use tokio::sync::{mpsc, oneshot};

use super::protocol::{BenchProtocol, BenchRequest, Counter, RawMsg};

/// Where a Bazaar receiver announces itself.
#[derive(Debug, Clone)]
pub struct Announce {
    /// Service group, e.g. [`super::protocol::BENCH_GROUP`].
    pub group: String,
    /// This node's name, for the node-scoped group.
    pub node: String,
}

/// A Bazaar service actor of [`BenchProtocol`].
pub struct BazaarReceiver;

impl Actor for BazaarReceiver {
    type Msg = ServiceMsg<BenchProtocol>;
    type State = Counter<ReplyPort<BenchProtocol>>;
    type Arguments = Announce;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        announce: Announce,
    ) -> Result<Self::State, ActorProcessingErr> {
        directory::join(&announce.group, &announce.node, &myself);
        Ok(Counter::default())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        counter: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let Some((request, port)) = message.into_parts() else {
            return Ok(());
        };
        let done = match (request, port) {
            (BenchRequest::Payload(_), None) => counter.count(),
            (BenchRequest::Payload(payload), port @ Some(_)) => {
                remote::answer(port, payload.0.len() as u64);
                None
            }
            (BenchRequest::Drain { expected }, Some(port)) => counter.drain(expected, port),
            (BenchRequest::Drain { .. }, None) => None,
            (BenchRequest::Sequenced { sender, seq }, _) => counter.sequenced(sender, seq),
            (BenchRequest::Disorder, port) => {
                remote::answer(port, counter.disorder());
                None
            }
        };
        if let Some((port, count)) = done {
            remote::answer(Some(port), count);
        }
        Ok(())
    }
}

/// A plain ractor actor of [`RawMsg`], optionally in a pg group.
pub struct RawReceiver;

impl Actor for RawReceiver {
    type Msg = RawMsg;
    type State = Counter<RpcReplyPort<u64>>;
    /// The pg group to join, for a remote receiver.
    type Arguments = Option<String>;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        group: Option<String>,
    ) -> Result<Self::State, ActorProcessingErr> {
        if let Some(group) = group {
            ractor::pg::join(group, vec![myself.get_cell()]);
        }
        Ok(Counter::default())
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        counter: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let done = match message {
            RawMsg::Cast(_) => counter.count(),
            RawMsg::Call(bytes, port) => {
                let _ = port.send(bytes.len() as u64);
                None
            }
            RawMsg::Drain(expected, port) => counter.drain(expected, port),
        };
        if let Some((port, count)) = done {
            let _ = port.send(count);
        }
        Ok(())
    }
}

/// The tokio-mpsc baseline's message: [`RawMsg`] with oneshot reply channels.
#[derive(Debug)]
pub enum TokioMsg {
    /// Bytes to count.
    Cast(Vec<u8>),
    /// Bytes to acknowledge with their length.
    Call(Vec<u8>, oneshot::Sender<u64>),
    /// Answer once this many casts arrived since the last drain.
    Drain(u64, oneshot::Sender<u64>),
}

/// The tokio-mpsc baseline's receiving task; ends when every sender is gone.
pub async fn tokio_receiver(mut inbox: mpsc::UnboundedReceiver<TokioMsg>) {
    let mut counter = Counter::default();
    while let Some(message) = inbox.recv().await {
        let done = match message {
            TokioMsg::Cast(payload) => {
                // Freed here, on the receiving side, as an actor frees its message.
                drop(payload);
                counter.count()
            }
            TokioMsg::Call(bytes, reply) => {
                let _ = reply.send(bytes.len() as u64);
                None
            }
            TokioMsg::Drain(expected, reply) => counter.drain(expected, reply),
        };
        if let Some((reply, count)) = done {
            let _ = reply.send(count);
        }
    }
}
