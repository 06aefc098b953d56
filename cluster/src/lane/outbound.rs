//! The dialing side of a lane: one per peer node, carrying this node's
//! casts and calls to it and bringing the replies back.
//!
//! ```text
//! senders ──append──▶ buffer (≤ BUFFER_LIMIT) ──writer task──▶ socket ──▶ peer
//! callers ◀─oneshot── pending calls ◀──reader task── socket ◀── peer
//! ```
//!
//! Invariants:
//! - entries leave in the order they were appended (one buffer, one
//!   writer), so one sender's messages keep their order;
//! - the buffer never holds more than `BUFFER_LIMIT` bytes plus one entry:
//!   past that, `try_push` says `Full` and `push` waits; the socket's own
//!   flow control stops the writer when the peer does not read;
//! - once closed (peer gone, socket error, node stopping), a lane takes
//!   nothing more, drops what it had not written, and every pending call
//!   ends as `Closed` at once; the next message to that peer opens a new
//!   lane.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::sync::{oneshot, watch, Notify};

use super::door::{self, Ticket};
use super::frame::{self, Entry, Status};
use super::reader::EntryReader;
use super::socket;
use crate::codec::CodecError;
use crate::trace::TraceContext;

/// Bytes a lane buffers before senders wait (or get `Full`).
pub const BUFFER_LIMIT: usize = 4 * 1024 * 1024;
/// Longest wait for the peer's door to appear and answer, and for the
/// connection and handshake.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
/// How often the writer checks that the peer's session still stands.
const HEALTH_INTERVAL: Duration = Duration::from_millis(250);

/// Why an entry was not appended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PushError {
    /// The buffer is full: the peer is slower than the senders.
    Full,
    /// The lane is closed.
    Closed(String),
    /// The payload could not be encoded.
    Encode(CodecError),
}

/// Why a call through the lane got no answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CallFailure {
    /// No reply within the timeout.
    Timeout,
    /// The lane closed before the reply came.
    Closed(String),
    /// The request could not be encoded.
    Encode(CodecError),
}

/// The answer to a call: how it ended and the encoded reply.
pub type Answer = (Status, Vec<u8>);

/// One lane to one peer node.
pub struct Outbound {
    peer: u64,
    /// Entries not yet written.
    buffer: Mutex<Vec<u8>>,
    pending: Mutex<HashMap<u64, oneshot::Sender<Answer>>>,
    next_id: AtomicU64,
    wake: Notify,
    room: Notify,
    /// Why the lane closed; set once, while holding `buffer`, so that no
    /// entry is appended after it.
    closed: OnceLock<String>,
    /// Turns true when `closed` is set, for tasks that wait on it.
    closed_tx: watch::Sender<bool>,
}

impl Outbound {
    /// A lane to the node with ractor_cluster id `peer`, connecting in the
    /// background; `on_close` runs once when it closes.
    pub fn open(peer: u64, on_close: impl FnOnce() + Send + 'static) -> Arc<Self> {
        let (closed_tx, _) = watch::channel(false);
        let lane = Arc::new(Self {
            peer,
            buffer: Mutex::new(Vec::new()),
            pending: Mutex::new(HashMap::new()),
            next_id: AtomicU64::new(1),
            wake: Notify::new(),
            room: Notify::new(),
            closed: OnceLock::new(),
            closed_tx,
        });
        let task = lane.clone();
        tokio::spawn(async move {
            if let Err(reason) = task.run().await {
                task.close(&reason);
            }
            on_close();
        });
        lane
    }

    /// True once the lane has closed.
    pub fn is_closed(&self) -> bool {
        self.closed.get().is_some()
    }

    /// Appends an entry if there is room; `write` appends it to the buffer.
    pub fn try_push(
        &self,
        write: &mut dyn FnMut(&mut Vec<u8>) -> Result<(), CodecError>,
    ) -> Result<(), PushError> {
        let was_empty = {
            let mut buffer = self.buffer.lock();
            if let Some(reason) = self.closed.get() {
                return Err(PushError::Closed(reason.clone()));
            }
            if buffer.len() >= BUFFER_LIMIT {
                return Err(PushError::Full);
            }
            let was_empty = buffer.is_empty();
            write(&mut buffer).map_err(PushError::Encode)?;
            was_empty
        };
        if was_empty {
            self.wake.notify_one();
        }
        Ok(())
    }

    /// Appends an entry, waiting for room until `deadline`.
    pub async fn push(
        &self,
        deadline: Option<Instant>,
        write: &mut (dyn FnMut(&mut Vec<u8>) -> Result<(), CodecError> + Send),
    ) -> Result<(), PushError> {
        // The common case, room in the buffer, registers no waiter.
        match self.try_push(write) {
            Err(PushError::Full) => {}
            other => return other,
        }
        loop {
            let room = self.room.notified();
            tokio::pin!(room);
            room.as_mut().enable();
            match self.try_push(write) {
                Err(PushError::Full) => {}
                other => return other,
            }
            match deadline {
                Some(deadline) => {
                    if tokio::time::timeout_at(deadline.into(), room)
                        .await
                        .is_err()
                    {
                        return Err(PushError::Full);
                    }
                }
                None => room.await,
            }
        }
    }

    /// Sends a call with the encoded request `payload` to `pid` and waits
    /// for its answer until `timeout`.
    pub async fn call(
        &self,
        pid: u64,
        timeout: Duration,
        trace: Option<TraceContext>,
        payload: &[u8],
    ) -> Result<Answer, CallFailure> {
        let deadline = Instant::now() + timeout;
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().insert(id, tx);
        let timeout_ms = timeout.as_millis().clamp(1, u32::MAX as u128) as u32;
        let pushed = self
            .push(Some(deadline), &mut |buf| {
                frame::push_call(buf, pid, id, timeout_ms, trace, |buf| {
                    buf.extend_from_slice(payload);
                    Ok(())
                })
            })
            .await;
        if let Err(err) = pushed {
            self.pending.lock().remove(&id);
            return Err(match err {
                PushError::Full => CallFailure::Timeout,
                PushError::Closed(reason) => CallFailure::Closed(reason),
                PushError::Encode(err) => CallFailure::Encode(err),
            });
        }
        match tokio::time::timeout_at(deadline.into(), rx).await {
            Ok(Ok(answer)) => Ok(answer),
            Ok(Err(_)) => Err(CallFailure::Closed(self.close_reason())),
            Err(_) => {
                self.pending.lock().remove(&id);
                Err(CallFailure::Timeout)
            }
        }
    }

    fn close_reason(&self) -> String {
        self.closed
            .get()
            .cloned()
            .unwrap_or_else(|| "lane closed".to_string())
    }

    /// Closes the lane: unsent entries are dropped, pending calls end.
    pub fn close(&self, reason: &str) {
        let dropped = {
            let mut buffer = self.buffer.lock();
            if self.closed.set(reason.to_string()).is_err() {
                return;
            }
            std::mem::take(&mut *buffer).len()
        };
        let calls = std::mem::take(&mut *self.pending.lock()).len();
        self.closed_tx.send_replace(true);
        self.room.notify_waiters();
        self.wake.notify_one();
        tracing::info!(
            peer = self.peer,
            reason,
            unsent_bytes = dropped,
            pending_calls = calls,
            "lane closed"
        );
    }

    async fn run(self: &Arc<Self>) -> Result<(), String> {
        let ticket = tokio::time::timeout(CONNECT_TIMEOUT, door::ticket_from(self.peer))
            .await
            .map_err(|_| "no lane ticket from the peer in time".to_string())??;
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, handshake(&ticket))
            .await
            .map_err(|_| format!("lane handshake with {} timed out", ticket.addr()))??;
        tracing::debug!(peer = self.peer, addr = %ticket.addr(), "lane open");
        let (reader, writer) =
            socket::split(stream).map_err(|err| format!("cannot set up the lane socket: {err}"))?;
        let replies = self.clone();
        tokio::spawn(async move {
            let reason = match replies.read_replies(reader).await {
                Ok(()) => "the peer closed the lane".to_string(),
                Err(err) => err,
            };
            replies.close(&reason);
        });
        let outcome = self.write_entries(&writer).await;
        socket::shut(&writer);
        outcome
    }

    async fn write_entries(&self, writer: &std::net::TcpStream) -> Result<(), String> {
        let mut closed = self.closed_tx.subscribe();
        let mut health = tokio::time::interval(HEALTH_INTERVAL);
        let mut batch = Vec::new();
        loop {
            {
                let mut buffer = self.buffer.lock();
                if self.is_closed() {
                    return Ok(());
                }
                std::mem::swap(&mut *buffer, &mut batch);
            }
            if batch.is_empty() {
                let woken = tokio::select! {
                    _ = self.wake.notified() => true,
                    _ = health.tick() => {
                        if !door::peer_present(self.peer) {
                            return Err("the peer's session ended".to_string());
                        }
                        false
                    }
                    _ = closed.wait_for(|closed| *closed) => return Ok(()),
                };
                if woken {
                    // Senders woken together append before the write: one
                    // write for them all instead of one each.
                    tokio::task::yield_now().await;
                }
                continue;
            }
            self.room.notify_waiters();
            tokio::select! {
                written = socket::write_all(writer, &batch) => {
                    written.map_err(|err| format!("lane write failed: {err}"))?;
                }
                _ = closed.wait_for(|closed| *closed) => return Ok(()),
            }
            batch.clear();
            if batch.capacity() > 2 * BUFFER_LIMIT {
                batch = Vec::new();
            }
        }
    }

    async fn read_replies(&self, reader: std::net::TcpStream) -> Result<(), String> {
        let mut reader = EntryReader::new(reader);
        while let Some(body) = reader.next().await? {
            match frame::parse(body).map_err(|err| err.to_string())? {
                Entry::Reply {
                    id,
                    status,
                    payload,
                } => {
                    if let Some(caller) = self.pending.lock().remove(&id) {
                        let _ = caller.send((status, payload.to_vec()));
                    }
                }
                other => return Err(format!("unexpected entry from the acceptor: {other:?}")),
            }
        }
        Ok(())
    }
}

async fn handshake(ticket: &Ticket) -> Result<TcpStream, String> {
    let mut stream = TcpStream::connect(ticket.addr())
        .await
        .map_err(|err| format!("cannot connect the lane to {}: {err}", ticket.addr()))?;
    let _ = stream.set_nodelay(true);
    let mut hello = Vec::with_capacity(frame::MAGIC.len() + frame::TOKEN_LEN);
    hello.extend_from_slice(frame::MAGIC);
    hello.extend_from_slice(&ticket.token);
    stream
        .write_all(&hello)
        .await
        .map_err(|err| format!("lane handshake failed: {err}"))?;
    let mut answer = [0u8; 1];
    stream
        .read_exact(&mut answer)
        .await
        .map_err(|err| format!("lane handshake refused: {err}"))?;
    if answer[0] != frame::ACCEPTED {
        return Err("lane handshake refused".to_string());
    }
    Ok(stream)
}
