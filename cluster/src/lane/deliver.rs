//! Handing lane entries to local actors without knowing their types.
//!
//! Every protocol whose actors join the directory registers a delivery
//! function here, keyed by the `TypeId` of its message type
//! (`ServiceMsg<P>`). An entry names its target by pid; the target's cell
//! tells its message type, and that picks the function that decodes the
//! payload as that protocol's request. So an entry can only ever reach an
//! actor as the protocol that actor speaks: a pid of another kind of actor
//! is answered `NoActor`, and a payload of another protocol decodes as an
//! error (refused for a call, logged for a cast).

use std::any::TypeId;
use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{LazyLock, RwLock};
use std::time::Duration;

use ractor::{ActorCell, ActorRef, RpcReplyPort};

use super::frame::Status;
use crate::codec;
use crate::remote::{reply_tag, Protocol, RemoteError, Reply, ServiceMsg};
use crate::trace::{self, TraceContext};

/// A call's id and its answer once the callee replied: `None` if the
/// caller's timeout passed first (the caller stopped waiting, so nothing is
/// sent).
pub type ReplyFuture = Pin<Box<dyn Future<Output = (u64, Option<(Status, Vec<u8>)>)> + Send>>;

/// A call: its id on the lane and how long its caller waits.
#[derive(Debug, Clone, Copy)]
pub struct Call {
    /// The caller's id for the reply.
    pub id: u64,
    /// The caller's timeout.
    pub timeout: Duration,
}

/// What became of one entry.
pub enum Outcome {
    /// A cast was enqueued, or dropped after logging (undecodable).
    Done,
    /// A call was enqueued; its answer comes from the future.
    Pending(ReplyFuture),
    /// A call is answered at once (its request did not decode).
    Answer(Status, Vec<u8>),
    /// The actor has stopped.
    Gone,
}

/// Delivers `payload` to `cell`, as a call with a timeout or as a cast,
/// inside the sender's trace if it had one.
pub type Deliver = fn(&ActorCell, &[u8], Option<Call>, Option<TraceContext>) -> Outcome;

static REGISTRY: LazyLock<RwLock<HashMap<TypeId, Deliver>>> = LazyLock::new(Default::default);

/// Makes actors of protocol `P` reachable through lanes.
pub fn register<P: Protocol>() {
    let key = TypeId::of::<ServiceMsg<P>>();
    if REGISTRY
        .read()
        .map(|r| r.contains_key(&key))
        .unwrap_or(false)
    {
        return;
    }
    if let Ok(mut registry) = REGISTRY.write() {
        registry.insert(key, deliver::<P>);
    }
}

/// The delivery function for actors like `cell`, if its protocol registered.
pub fn lookup(cell: &ActorCell) -> Option<Deliver> {
    REGISTRY.read().ok()?.get(&cell.get_type_id()).copied()
}

fn deliver<P: Protocol>(
    cell: &ActorCell,
    payload: &[u8],
    call: Option<Call>,
    trace: Option<TraceContext>,
) -> Outcome {
    // ractor runs the handler in the span current when the message is sent.
    let delivery = match call {
        Some(_) => trace::Delivery::Call,
        None => trace::Delivery::Cast,
    };
    let span = trace.map(|trace| trace::remote_span(P::NAME, delivery, trace));
    let _in_trace = span.as_ref().map(|span| span.enter());
    if span.is_some() {
        tracing::debug!(target: trace::TARGET, kind = if call.is_some() { "call" } else { "cast" }, "remote message");
    }
    let actor: ActorRef<ServiceMsg<P>> = cell.clone().into();
    let request = match codec::decode_tagged::<P::Request>(P::NAME, payload) {
        Ok(request) => request,
        Err(err) => {
            tracing::warn!(protocol = P::NAME, error = %err, "dropping undecodable lane entry");
            return match call {
                None => Outcome::Done,
                Some(_) => refusal::<P>(RemoteError::Malformed(err.to_string())),
            };
        }
    };
    let Some(Call { id, timeout }) = call else {
        return match actor.cast(ServiceMsg::Cast(request)) {
            Ok(()) => Outcome::Done,
            Err(_) => Outcome::Gone,
        };
    };
    let (tx, rx) = ractor::concurrency::oneshot::<Reply<P>>();
    let port = RpcReplyPort::from((tx, timeout));
    if actor.cast(ServiceMsg::Call(request, port)).is_err() {
        return Outcome::Gone;
    }
    Outcome::Pending(Box::pin(async move {
        let answer = match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(reply)) => Some(encode_reply::<P>(&reply)),
            Ok(Err(_)) => Some((Status::Dropped, Vec::new())),
            Err(_) => None,
        };
        (id, answer)
    }))
}

fn refusal<P: Protocol>(error: RemoteError) -> Outcome {
    let (status, bytes) = encode_reply::<P>(&Err(error));
    Outcome::Answer(status, bytes)
}

fn encode_reply<P: Protocol>(reply: &Reply<P>) -> (Status, Vec<u8>) {
    match codec::encode_tagged(&reply_tag::<P>(), reply) {
        Ok(bytes) => (Status::Ok, bytes),
        Err(err) => {
            tracing::error!(protocol = P::NAME, error = %err, "cannot encode reply");
            let refusal: Reply<P> = Err(RemoteError::Refused(err.to_string()));
            match codec::encode_tagged(&reply_tag::<P>(), &refusal) {
                Ok(bytes) => (Status::Ok, bytes),
                Err(_) => (Status::Dropped, Vec::new()),
            }
        }
    }
}
