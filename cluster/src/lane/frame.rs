//! The lane's wire format: a handshake, then a stream of length-prefixed
//! entries. Pure functions, so that every byte a peer sends is parsed here
//! and nowhere else.
//!
//! ```text
//! handshake (dialer → acceptor)   "BZLANE1\n" ‖ token (32 bytes)
//! handshake (acceptor → dialer)   0x01
//! entry                           body length (u32 LE) ‖ body
//! body   cast                     0x01 ‖ [trace] ‖ pid (u64) ‖ payload
//!        call                     0x02 ‖ [trace] ‖ pid (u64) ‖ call id (u64) ‖ timeout ms (u32) ‖ payload
//!        reply                    0x03 ‖ call id (u64) ‖ status (u8) ‖ payload
//! trace  (kind | 0x80 only)       trace id (u128) ‖ span id (u64)
//! ```
//!
//! Integers are little-endian. A cast or call sent inside a trace sets the
//! kind's high bit and carries the sender's [`TraceContext`]; bit 0x40
//! says the trace is not sampled.
//!
//! A payload is a frame of [`crate::codec`] (protocol tag + value); the lane
//! never looks inside it. Invariants: parsing never panics and never
//! allocates; a body longer than [`MAX_BODY`] or of an unknown kind is an
//! error, after which the connection is closed.

use crate::codec::MAX_MESSAGE_BYTES;
use crate::trace::TraceContext;

/// First bytes a dialer sends.
pub const MAGIC: &[u8; 8] = b"BZLANE1\n";
/// Length of a lane token.
pub const TOKEN_LEN: usize = 32;
/// What the acceptor answers to a good token.
pub const ACCEPTED: u8 = 0x01;
/// Largest entry body: one codec frame plus the longest header.
pub const MAX_BODY: usize = MAX_MESSAGE_BYTES + 64;
/// Bytes of the length prefix.
pub const LEN_BYTES: usize = 4;

const CAST: u8 = 0x01;
const CALL: u8 = 0x02;
const REPLY: u8 = 0x03;
const TRACED: u8 = 0x80;
const UNSAMPLED: u8 = 0x40;

/// How a call ended on the callee's side.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// The payload is the encoded reply.
    Ok,
    /// The callee dropped the call without replying (it failed or stopped).
    Dropped,
    /// No actor of a lane-served protocol has that pid on the callee's node.
    NoActor,
}

impl Status {
    fn byte(self) -> u8 {
        match self {
            Self::Ok => 0,
            Self::Dropped => 1,
            Self::NoActor => 2,
        }
    }

    fn from_byte(byte: u8) -> Option<Self> {
        match byte {
            0 => Some(Self::Ok),
            1 => Some(Self::Dropped),
            2 => Some(Self::NoActor),
            _ => None,
        }
    }
}

/// One parsed entry, borrowing its payload from the read buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry<'a> {
    /// A request without a reply.
    Cast {
        /// The target's pid on the receiving node.
        pid: u64,
        /// The sender's trace, if it sent inside one.
        trace: Option<TraceContext>,
        /// The encoded request.
        payload: &'a [u8],
    },
    /// A request whose reply comes back on the same connection.
    Call {
        /// The target's pid on the receiving node.
        pid: u64,
        /// The sender's trace, if it sent inside one.
        trace: Option<TraceContext>,
        /// The caller's id for the reply.
        id: u64,
        /// How long the caller waits, in milliseconds.
        timeout_ms: u32,
        /// The encoded request.
        payload: &'a [u8],
    },
    /// The answer to a call.
    Reply {
        /// The call's id.
        id: u64,
        /// How the call ended.
        status: Status,
        /// The encoded reply (empty unless `status` is `Ok`).
        payload: &'a [u8],
    },
}

/// Why bytes are not a lane entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The length prefix is larger than [`MAX_BODY`].
    #[error("entry of {0} bytes exceeds the limit of {MAX_BODY} bytes")]
    TooLarge(usize),
    /// The body is shorter than its kind's header.
    #[error("truncated entry of kind {kind:#04x}: {len} bytes")]
    Truncated {
        /// The kind byte (0 for an empty body).
        kind: u8,
        /// The body's length.
        len: usize,
    },
    /// The kind byte is unknown.
    #[error("unknown entry kind {0:#04x}")]
    UnknownKind(u8),
    /// The reply status byte is unknown.
    #[error("unknown reply status {0:#04x}")]
    UnknownStatus(u8),
}

/// The body length announced by a length prefix, if within the limit.
pub fn body_len(prefix: [u8; LEN_BYTES]) -> Result<usize, FrameError> {
    let len = u32::from_le_bytes(prefix) as usize;
    if len > MAX_BODY {
        return Err(FrameError::TooLarge(len));
    }
    Ok(len)
}

/// Parses one entry body (without its length prefix).
pub fn parse(body: &[u8]) -> Result<Entry<'_>, FrameError> {
    let Some((&kind, rest)) = body.split_first() else {
        return Err(FrameError::Truncated { kind: 0, len: 0 });
    };
    let truncated = || FrameError::Truncated {
        kind,
        len: body.len(),
    };
    let (trace, rest) = match kind & TRACED {
        0 => (None, rest),
        _ => {
            let (trace_id, rest) = rest.split_first_chunk::<16>().ok_or_else(truncated)?;
            let (span_id, rest) = take_u64(rest).ok_or_else(truncated)?;
            let trace_id = u128::from_le_bytes(*trace_id);
            let sampled = kind & UNSAMPLED == 0;
            let trace = TraceContext {
                trace_id,
                span_id,
                sampled,
            };
            (Some(trace), rest)
        }
    };
    match kind & !(TRACED | UNSAMPLED) {
        CAST => {
            let (pid, payload) = take_u64(rest).ok_or_else(truncated)?;
            Ok(Entry::Cast {
                pid,
                trace,
                payload,
            })
        }
        CALL => {
            let (pid, rest) = take_u64(rest).ok_or_else(truncated)?;
            let (id, rest) = take_u64(rest).ok_or_else(truncated)?;
            let (timeout, payload) = rest.split_first_chunk::<4>().ok_or_else(truncated)?;
            Ok(Entry::Call {
                pid,
                trace,
                id,
                timeout_ms: u32::from_le_bytes(*timeout),
                payload,
            })
        }
        REPLY if trace.is_none() => {
            let (id, rest) = take_u64(rest).ok_or_else(truncated)?;
            let (&status, payload) = rest.split_first().ok_or_else(truncated)?;
            let status = Status::from_byte(status).ok_or(FrameError::UnknownStatus(status))?;
            Ok(Entry::Reply {
                id,
                status,
                payload,
            })
        }
        _ => Err(FrameError::UnknownKind(kind)),
    }
}

fn take_u64(bytes: &[u8]) -> Option<(u64, &[u8])> {
    let (head, rest) = bytes.split_first_chunk::<8>()?;
    Some((u64::from_le_bytes(*head), rest))
}

/// Appends a cast entry whose payload `write` appends; returns what `write`
/// returned. On error nothing is left in `buf`.
pub fn push_cast<E>(
    buf: &mut Vec<u8>,
    pid: u64,
    trace: Option<TraceContext>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    let start = begin(buf, CAST, trace);
    buf.extend_from_slice(&pid.to_le_bytes());
    finish(buf, start, write)
}

/// Appends a call entry whose payload `write` appends.
pub fn push_call<E>(
    buf: &mut Vec<u8>,
    pid: u64,
    id: u64,
    timeout_ms: u32,
    trace: Option<TraceContext>,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    let start = begin(buf, CALL, trace);
    buf.extend_from_slice(&pid.to_le_bytes());
    buf.extend_from_slice(&id.to_le_bytes());
    buf.extend_from_slice(&timeout_ms.to_le_bytes());
    finish(buf, start, write)
}

/// Appends a reply entry.
pub fn push_reply(buf: &mut Vec<u8>, id: u64, status: Status, payload: &[u8]) {
    let start = begin(buf, REPLY, None);
    buf.extend_from_slice(&id.to_le_bytes());
    buf.push(status.byte());
    let _ = finish::<()>(buf, start, |buf| {
        buf.extend_from_slice(payload);
        Ok(())
    });
}

fn begin(buf: &mut Vec<u8>, kind: u8, trace: Option<TraceContext>) -> usize {
    let start = buf.len();
    buf.extend_from_slice(&[0; LEN_BYTES]);
    match trace {
        None => buf.push(kind),
        Some(trace) => {
            let unsampled = if trace.sampled { 0 } else { UNSAMPLED };
            buf.push(kind | TRACED | unsampled);
            buf.extend_from_slice(&trace.trace_id.to_le_bytes());
            buf.extend_from_slice(&trace.span_id.to_le_bytes());
        }
    }
    start
}

fn finish<E>(
    buf: &mut Vec<u8>,
    start: usize,
    write: impl FnOnce(&mut Vec<u8>) -> Result<(), E>,
) -> Result<(), E> {
    if let Err(err) = write(buf) {
        buf.truncate(start);
        return Err(err);
    }
    // Payloads are limited by the codec, so the body always fits in a u32.
    let len = (buf.len() - start - LEN_BYTES) as u32;
    buf[start..start + LEN_BYTES].copy_from_slice(&len.to_le_bytes());
    Ok(())
}

#[cfg(test)]
mod tests;
