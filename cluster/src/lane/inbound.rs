//! The accepting side of lanes: a listener that admits only connections
//! presenting a door token, and per connection a reader that hands entries
//! to local actors and a writer that sends the replies back.
//!
//! ```text
//! socket ──reader──▶ deliver (cast / call) ──▶ local actors
//!                        │ call: reply future
//!                        ▼
//!            replier: FuturesUnordered ──batched──▶ socket
//! ```
//!
//! Bounds, so that a hostile or broken dialer costs a fixed amount:
//! at most [`MAX_HANDSHAKES`] connections without a valid token at once
//! (more are closed at accept), each closed after [`HANDSHAKE_TIMEOUT`];
//! entries larger than [`frame::MAX_BODY`] or of an unknown kind close the
//! connection; at most [`MAX_CALLS_IN_FLIGHT`] unanswered calls per
//! connection — past that the reader stops reading, and TCP pushes back on
//! the dialer. Casts are handed to actors' mailboxes, which ractor does not
//! bound.

use std::collections::hash_map::Entry as Slot;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesUnordered, StreamExt};
use futures_util::FutureExt;
use ractor::{ActorCell, ActorId};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, watch, Semaphore};

use super::deliver::{self, Call, Deliver, Outcome, ReplyFuture};
use super::door::Tokens;
use super::frame::{self, Entry, Status};
use super::reader::EntryReader;
use super::socket;

/// Connections that have not yet presented a token, at most.
pub const MAX_HANDSHAKES: usize = 64;
/// Time a dialer has to present its token.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);
/// Unanswered calls per connection, at most.
pub const MAX_CALLS_IN_FLIGHT: usize = 65_536;
/// Longest timeout a caller may ask for.
const MAX_CALL_TIMEOUT: Duration = Duration::from_secs(300);

/// Replies for the writer: one now, or one when the callee answers.
enum Job {
    Now(u64, Status, Vec<u8>),
    Later(ReplyFuture),
}

/// Accepts lanes on `listener` until `stop` turns true.
pub async fn serve(listener: TcpListener, tokens: Arc<Tokens>, stop: watch::Receiver<bool>) {
    let handshakes = Arc::new(Semaphore::new(MAX_HANDSHAKES));
    let mut until_stop = stop.clone();
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            _ = until_stop.wait_for(|stop| *stop) => return,
        };
        let (stream, from) = match accepted {
            Ok(accepted) => accepted,
            Err(err) => {
                tracing::warn!(error = %err, "lane accept failed");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let Ok(permit) = handshakes.clone().try_acquire_owned() else {
            tracing::warn!(%from, "too many lane handshakes at once, closing");
            continue;
        };
        let tokens = tokens.clone();
        let stop = stop.clone();
        tokio::spawn(async move {
            let admitted = tokio::time::timeout(HANDSHAKE_TIMEOUT, admit(stream, &tokens)).await;
            drop(permit);
            match admitted {
                Ok(Ok(stream)) => connection(stream, from, stop).await,
                Ok(Err(reason)) => tracing::warn!(%from, reason, "lane refused"),
                Err(_) => tracing::warn!(%from, "lane handshake timed out"),
            }
        });
    }
}

async fn admit(mut stream: TcpStream, tokens: &Tokens) -> Result<TcpStream, String> {
    let mut hello = [0u8; frame::MAGIC.len() + frame::TOKEN_LEN];
    stream
        .read_exact(&mut hello)
        .await
        .map_err(|err| format!("short handshake: {err}"))?;
    let (magic, token) = hello.split_at(frame::MAGIC.len());
    if magic != frame::MAGIC {
        return Err("not a lane handshake".to_string());
    }
    let token: [u8; frame::TOKEN_LEN] = token.try_into().map_err(|_| "bad token".to_string())?;
    if !tokens.redeem(&token) {
        return Err("unknown or expired token".to_string());
    }
    stream
        .write_all(&[frame::ACCEPTED])
        .await
        .map_err(|err| format!("cannot answer the handshake: {err}"))?;
    let _ = stream.set_nodelay(true);
    Ok(stream)
}

async fn connection(stream: TcpStream, from: SocketAddr, mut stop: watch::Receiver<bool>) {
    tracing::debug!(%from, "lane accepted");
    let (reader, writer) = match socket::split(stream) {
        Ok(halves) => halves,
        Err(err) => {
            tracing::warn!(%from, error = %err, "cannot set up the lane socket");
            return;
        }
    };
    let mut reader = EntryReader::new(reader);
    let (jobs_tx, jobs_rx) = mpsc::channel(1024);
    let replier = tokio::spawn(reply(writer, jobs_rx));
    let outcome = tokio::select! {
        outcome = read(&mut reader, jobs_tx) => outcome,
        _ = stop.wait_for(|stop| *stop) => Ok(()),
    };
    match outcome {
        Ok(()) => tracing::debug!(%from, "lane ended"),
        Err(reason) => tracing::warn!(%from, reason, "lane closed"),
    }
    replier.abort();
    socket::shut(reader.stream());
}

/// A local actor and how to deliver to it.
struct Target {
    cell: ActorCell,
    deliver: Deliver,
}

async fn read(reader: &mut EntryReader, jobs: mpsc::Sender<Job>) -> Result<(), String> {
    let mut targets: HashMap<u64, Target> = HashMap::new();
    while let Some(body) = reader.next().await? {
        let job = match frame::parse(body).map_err(|err| err.to_string())? {
            Entry::Cast {
                pid,
                trace,
                payload,
            } => {
                if let Some(target) = target(&mut targets, pid) {
                    if let Outcome::Gone = (target.deliver)(&target.cell, payload, None, trace) {
                        targets.remove(&pid);
                    }
                }
                None
            }
            Entry::Call {
                pid,
                trace,
                id,
                timeout_ms,
                payload,
            } => {
                let timeout = Duration::from_millis(timeout_ms.into()).min(MAX_CALL_TIMEOUT);
                let outcome = match target(&mut targets, pid) {
                    Some(target) => {
                        let call = Call { id, timeout };
                        (target.deliver)(&target.cell, payload, Some(call), trace)
                    }
                    None => Outcome::Gone,
                };
                match outcome {
                    Outcome::Pending(future) => Some(Job::Later(future)),
                    Outcome::Answer(status, bytes) => Some(Job::Now(id, status, bytes)),
                    Outcome::Gone | Outcome::Done => {
                        targets.remove(&pid);
                        Some(Job::Now(id, Status::NoActor, Vec::new()))
                    }
                }
            }
            Entry::Reply { .. } => return Err("a reply from the dialing side".to_string()),
        };
        if let Some(job) = job {
            if jobs.send(job).await.is_err() {
                return Err("the reply writer stopped".to_string());
            }
        }
    }
    Ok(())
}

/// The local actor with `pid`, if it speaks a lane-served protocol.
fn target(targets: &mut HashMap<u64, Target>, pid: u64) -> Option<&mut Target> {
    match targets.entry(pid) {
        Slot::Occupied(known) => Some(known.into_mut()),
        Slot::Vacant(new) => {
            let cell = ractor::registry::where_is_pid(ActorId::Local(pid))?;
            let deliver = deliver::lookup(&cell)?;
            Some(new.insert(Target { cell, deliver }))
        }
    }
}

async fn reply(writer: std::net::TcpStream, mut jobs: mpsc::Receiver<Job>) {
    let mut waiting = FuturesUnordered::new();
    let mut batch = Vec::new();
    let mut open = true;
    while open || !waiting.is_empty() {
        tokio::select! {
            Some((id, answer)) = waiting.next(), if !waiting.is_empty() => {
                push_answer(&mut batch, id, answer);
            }
            job = jobs.recv(), if open && waiting.len() < MAX_CALLS_IN_FLIGHT => match job {
                Some(Job::Now(id, status, bytes)) => frame::push_reply(&mut batch, id, status, &bytes),
                Some(Job::Later(future)) => waiting.push(future),
                None => open = false,
            },
        }
        // Gather what else is ready before paying for a write; the yield
        // lets callees that are answering right now finish first.
        tokio::task::yield_now().await;
        while let Some(Some((id, answer))) = waiting.next().now_or_never() {
            push_answer(&mut batch, id, answer);
        }
        while waiting.len() < MAX_CALLS_IN_FLIGHT {
            match jobs.try_recv() {
                Ok(Job::Now(id, status, bytes)) => {
                    frame::push_reply(&mut batch, id, status, &bytes)
                }
                Ok(Job::Later(future)) => waiting.push(future),
                Err(_) => break,
            }
        }
        if !batch.is_empty() {
            if let Err(err) = socket::write_all(&writer, &batch).await {
                tracing::debug!(error = %err, "lane reply write failed");
                return;
            }
            batch.clear();
        }
    }
}

fn push_answer(batch: &mut Vec<u8>, id: u64, answer: Option<(Status, Vec<u8>)>) {
    if let Some((status, bytes)) = answer {
        frame::push_reply(batch, id, status, &bytes);
    }
}
