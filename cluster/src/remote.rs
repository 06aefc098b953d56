//! Location-transparent service messages: one message type per service
//! protocol that works the same whether the target actor is on this node or
//! another.
//!
//! A service declares a [`Protocol`] (a name, a request type and a reply
//! type). Its actors receive [`ServiceMsg<P>`]: a cast, a call with a reply
//! port, or — for bytes from the network that did not decode — `Malformed`.
//! A message to a local actor is moved, never encoded; a message to a remote
//! one is encoded by [`crate::codec`] under the protocol's tag, so a frame
//! of another protocol is refused rather than misread.
//!
//! Semantics, as ractor_cluster gives them: at most once; casts from one
//! sender to one actor keep their order; a call's reply port carries the
//! caller's timeout to the remote side. A [`CallError::Timeout`] or
//! [`CallError::Unreachable`] means *outcome unknown*: the request may or may
//! not have been applied, so only idempotent requests may be retried.

use std::fmt;
use std::future::Future;
use std::time::Duration;

use ractor::message::{BoxedDowncastErr, SerializedMessage};
use ractor::rpc::CallResult;
use ractor::{ActorRef, RpcReplyPort};
use serde::{de::DeserializeOwned, Deserialize, Serialize};

use crate::codec::{self, CodecError};
use crate::lane::{self, frame, frame::Status, CallFailure, Outbound, PushError};
use crate::trace;

/// A service contract: what its actors accept and answer.
pub trait Protocol: Send + Sync + 'static {
    /// Protocol tag on the wire, e.g. `"bazaar.catalog.v1"`.
    const NAME: &'static str;
    /// What callers send.
    type Request: Serialize + DeserializeOwned + Send + fmt::Debug + 'static;
    /// What a call answers.
    type Reply: Serialize + DeserializeOwned + Send + fmt::Debug + 'static;
}

/// What a remote call carries back: the reply, or why the callee could
/// not produce one.
pub type Reply<P> = Result<<P as Protocol>::Reply, RemoteError>;

/// A failure reported by the callee's side of the transport.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, thiserror::Error)]
pub enum RemoteError {
    /// The callee could not decode the request.
    #[error("the callee could not decode the request: {0}")]
    Malformed(String),
    /// The callee refused the request (overloaded, stopping).
    #[error("the callee refused the request: {0}")]
    Refused(String),
}

/// The message type of every service actor.
pub enum ServiceMsg<P: Protocol> {
    /// A request without a reply.
    Cast(P::Request),
    /// A request whose reply goes to the port.
    Call(P::Request, RpcReplyPort<Reply<P>>),
    /// Bytes from the network that did not decode; receivers log and drop.
    Malformed(CodecError),
}

impl<P: Protocol> fmt::Debug for ServiceMsg<P> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Cast(request) => f.debug_tuple("Cast").field(request).finish(),
            Self::Call(request, _) => f.debug_tuple("Call").field(request).finish(),
            Self::Malformed(err) => f.debug_tuple("Malformed").field(err).finish(),
        }
    }
}

/// The port a call's reply goes to.
pub type ReplyPort<P> = RpcReplyPort<Reply<P>>;

impl<P: Protocol> ServiceMsg<P> {
    /// The request and, for a call, its reply port; `None` for a frame that
    /// did not decode, which is logged here and dropped.
    pub fn into_parts(self) -> Option<(P::Request, Option<ReplyPort<P>>)> {
        match self {
            Self::Cast(request) => Some((request, None)),
            Self::Call(request, reply) => Some((request, Some(reply))),
            Self::Malformed(err) => {
                tracing::warn!(protocol = P::NAME, error = %err, "dropping malformed message");
                None
            }
        }
    }
}

/// Sends `reply` to a caller's port; does nothing for a cast (no port) or
/// a caller that stopped waiting.
pub fn answer<T>(port: Option<RpcReplyPort<Result<T, RemoteError>>>, reply: T) {
    if let Some(port) = port {
        let _ = port.send(Ok(reply));
    }
}

const CAST: &str = "cast";
const CALL: &str = "call";

/// The tag of protocol `P`'s replies on the wire.
pub(crate) fn reply_tag<P: Protocol>() -> String {
    format!("{}.reply", P::NAME)
}

impl<P: Protocol> ractor::Message for ServiceMsg<P> {
    fn serializable() -> bool {
        true
    }

    fn serialize(self) -> Result<SerializedMessage, BoxedDowncastErr> {
        match self {
            Self::Cast(request) => Ok(SerializedMessage::Cast {
                variant: CAST.to_string(),
                args: encode_or_log(P::NAME, &request)?,
                metadata: None,
            }),
            Self::Call(request, reply) => {
                let args = encode_or_log(P::NAME, &request)?;
                Ok(SerializedMessage::Call {
                    variant: CALL.to_string(),
                    args,
                    reply: bytes_port_for::<P>(reply),
                    metadata: None,
                })
            }
            Self::Malformed(_) => Err(BoxedDowncastErr),
        }
    }

    fn deserialize(message: SerializedMessage) -> Result<Self, BoxedDowncastErr> {
        match message {
            SerializedMessage::Cast { variant, args, .. } if variant == CAST => {
                Ok(match codec::decode_tagged(P::NAME, &args) {
                    Ok(request) => Self::Cast(request),
                    Err(err) => Self::Malformed(err),
                })
            }
            SerializedMessage::Call {
                variant,
                args,
                reply,
                ..
            } if variant == CALL => match codec::decode_tagged(P::NAME, &args) {
                Ok(request) => Ok(Self::Call(request, typed_port_for::<P>(reply))),
                Err(err) => {
                    let refusal: Reply<P> = Err(RemoteError::Malformed(err.to_string()));
                    if let Ok(bytes) = codec::encode_tagged(&reply_tag::<P>(), &refusal) {
                        let _ = reply.send(bytes);
                    }
                    Ok(Self::Malformed(err))
                }
            },
            _ => Ok(Self::Malformed(CodecError::Malformed(
                "unknown message variant".to_string(),
            ))),
        }
    }
}

fn encode_or_log<T: Serialize>(tag: &str, value: &T) -> Result<Vec<u8>, BoxedDowncastErr> {
    codec::encode_tagged(tag, value).map_err(|err| {
        tracing::error!(protocol = tag, error = %err, "cannot encode message for a remote actor");
        BoxedDowncastErr
    })
}

/// The caller's side: a byte port for the transport whose answer is decoded
/// into the caller's typed port.
fn bytes_port_for<P: Protocol>(typed: RpcReplyPort<Reply<P>>) -> RpcReplyPort<Vec<u8>> {
    let (tx, rx) = ractor::concurrency::oneshot::<Vec<u8>>();
    let timeout = typed.get_timeout();
    tokio::spawn(async move {
        let bytes = match timeout {
            Some(timeout) => match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(bytes)) => bytes,
                _ => return,
            },
            None => match rx.await {
                Ok(bytes) => bytes,
                Err(_) => return,
            },
        };
        let reply: Reply<P> = codec::decode_tagged(&reply_tag::<P>(), &bytes)
            .unwrap_or_else(|err| Err(RemoteError::Malformed(err.to_string())));
        let _ = typed.send(reply);
    });
    match timeout {
        Some(timeout) => RpcReplyPort::from((tx, timeout)),
        None => RpcReplyPort::from(tx),
    }
}

/// The callee's side: a typed port for the handler whose answer is encoded
/// onto the transport's byte port.
fn typed_port_for<P: Protocol>(bytes: RpcReplyPort<Vec<u8>>) -> RpcReplyPort<Reply<P>> {
    let (tx, rx) = ractor::concurrency::oneshot::<Reply<P>>();
    let timeout = bytes.get_timeout();
    tokio::spawn(async move {
        let reply = match timeout {
            Some(timeout) => match tokio::time::timeout(timeout, rx).await {
                Ok(Ok(reply)) => reply,
                _ => return,
            },
            None => match rx.await {
                Ok(reply) => reply,
                Err(_) => return,
            },
        };
        match codec::encode_tagged(&reply_tag::<P>(), &reply) {
            Ok(encoded) => {
                let _ = bytes.send(encoded);
            }
            Err(err) => {
                tracing::error!(protocol = P::NAME, error = %err, "cannot encode reply");
                let refusal: Reply<P> = Err(RemoteError::Refused(err.to_string()));
                if let Ok(encoded) = codec::encode_tagged(&reply_tag::<P>(), &refusal) {
                    let _ = bytes.send(encoded);
                }
            }
        }
    });
    match timeout {
        Some(timeout) => RpcReplyPort::from((tx, timeout)),
        None => RpcReplyPort::from(tx),
    }
}

/// Why a call produced no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CallError {
    /// No reply within the timeout: outcome unknown.
    #[error("no reply within {0:?}")]
    Timeout(Duration),
    /// The actor is gone or its node unreachable: outcome unknown unless
    /// the request never left.
    #[error("actor unreachable: {0}")]
    Unreachable(String),
    /// The callee's transport refused the request.
    #[error(transparent)]
    Remote(#[from] RemoteError),
    /// The lane to the callee's node is full: the message was not sent.
    #[error("overloaded: {0}")]
    Overloaded(String),
}

impl CallError {
    /// True if another replica may be tried (for idempotent requests).
    pub fn is_retryable(&self) -> bool {
        match self {
            Self::Timeout(_) | Self::Unreachable(_) => true,
            Self::Remote(RemoteError::Refused(_)) | Self::Overloaded(_) => true,
            Self::Remote(RemoteError::Malformed(_)) => false,
        }
    }
}

/// Calls `actor` with `request`, waiting at most `timeout`: through a
/// lane when the actor is on another node and lanes run, else directly.
pub async fn call<P: Protocol>(
    actor: &ActorRef<ServiceMsg<P>>,
    request: P::Request,
    timeout: Duration,
) -> Result<P::Reply, CallError> {
    let id = actor.get_id();
    let Some(lane) = lane::to(id) else {
        return call_via_session(actor, request, timeout).await;
    };
    let payload = codec::encode_tagged(P::NAME, &request).map_err(unencodable)?;
    let answer = lane
        .call(id.pid(), timeout, trace::current(), &payload)
        .await;
    match answer {
        Ok((Status::Ok, bytes)) => {
            match codec::decode_tagged::<Reply<P>>(&reply_tag::<P>(), &bytes) {
                Ok(Ok(reply)) => Ok(reply),
                Ok(Err(err)) => Err(CallError::Remote(err)),
                Err(err) => Err(CallError::Remote(RemoteError::Malformed(err.to_string()))),
            }
        }
        Ok((Status::Dropped, _)) => Err(CallError::Unreachable(
            "the actor dropped the call without replying".to_string(),
        )),
        Ok((Status::NoActor, _)) => {
            Err(CallError::Unreachable(format!("no actor {id} on its node")))
        }
        Err(CallFailure::Timeout) => Err(CallError::Timeout(timeout)),
        Err(CallFailure::Closed(reason)) => Err(CallError::Unreachable(reason)),
        Err(CallFailure::Encode(err)) => Err(unencodable(err)),
    }
}

/// Calls `actor` through ractor itself: moved to a local actor, or over
/// the ractor_cluster session to a remote one.
pub(crate) async fn call_via_session<P: Protocol>(
    actor: &ActorRef<ServiceMsg<P>>,
    request: P::Request,
    timeout: Duration,
) -> Result<P::Reply, CallError> {
    let outcome = actor
        .call(|reply| ServiceMsg::Call(request, reply), Some(timeout))
        .await;
    match outcome {
        Ok(CallResult::Success(Ok(reply))) => Ok(reply),
        Ok(CallResult::Success(Err(err))) => Err(CallError::Remote(err)),
        Ok(CallResult::Timeout) => Err(CallError::Timeout(timeout)),
        Ok(CallResult::SenderError) => Err(CallError::Unreachable(
            "the actor dropped the call without replying".to_string(),
        )),
        Err(err) => Err(CallError::Unreachable(err.to_string())),
    }
}

/// Casts `request` to `actor` without waiting; an error means it was not
/// sent (`Overloaded` when the lane to its node is full).
pub fn cast<P: Protocol>(
    actor: &ActorRef<ServiceMsg<P>>,
    request: P::Request,
) -> Result<(), CallError> {
    let id = actor.get_id();
    match lane::to(id) {
        Some(lane) => push_cast::<P>(&lane, id.pid(), &request).map_err(push_error),
        None => actor
            .cast(ServiceMsg::Cast(request))
            .map_err(|err| CallError::Unreachable(err.to_string())),
    }
}

/// Casts `request` to `actor`, waiting while the lane to its node is full:
/// the backpressured form of [`cast`].
pub fn send<P: Protocol>(
    actor: &ActorRef<ServiceMsg<P>>,
    request: P::Request,
) -> impl Future<Output = Result<(), CallError>> + Send + 'static {
    // Decided before the future exists, so that the common cases (a local
    // actor, a lane with room) cost what `cast` costs.
    let id = actor.get_id();
    let outcome = match lane::to(id) {
        None => Err(cast(actor, request)),
        Some(lane) => match push_cast::<P>(&lane, id.pid(), &request) {
            Err(PushError::Full) => codec::encode_tagged(P::NAME, &request)
                .map(|payload| (lane, payload, trace::current()))
                .map_err(|err| Err(unencodable(err))),
            other => Err(other.map_err(push_error)),
        },
    };
    async move {
        let (lane, payload, trace) = match outcome {
            Ok(waiting) => waiting,
            Err(done) => return done,
        };
        Box::pin(async move {
            lane.push(None, &mut |buf| {
                frame::push_cast(buf, id.pid(), trace, |buf| {
                    buf.extend_from_slice(&payload);
                    Ok(())
                })
            })
            .await
            .map_err(push_error)
        })
        .await
    }
}

fn push_cast<P: Protocol>(
    lane: &Outbound,
    pid: u64,
    request: &P::Request,
) -> Result<(), PushError> {
    let trace = trace::current();
    lane.try_push(&mut |buf| {
        frame::push_cast(buf, pid, trace, |buf| {
            codec::encode_tagged_into(P::NAME, request, buf)
        })
    })
}

fn push_error(err: PushError) -> CallError {
    match err {
        PushError::Full => {
            CallError::Overloaded("the lane to the actor's node is full".to_string())
        }
        PushError::Closed(reason) => CallError::Unreachable(reason),
        PushError::Encode(err) => unencodable(err),
    }
}

/// A request that could not be encoded was refused before it was sent.
fn unencodable(err: CodecError) -> CallError {
    CallError::Remote(RemoteError::Refused(err.to_string()))
}

#[cfg(test)]
mod tests;
