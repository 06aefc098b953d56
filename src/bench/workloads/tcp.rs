//! The `tcp-framed` baseline: length-prefixed frames over one loopback TCP
//! connection between the two processes — the ceiling any remote actor
//! path on this machine can approach.
//!
//! A request frame is `u32` length (big endian) of what follows, one kind
//! byte, then the body: the payload for a cast or call, a `u64` count for a
//! drain. A reply frame is `u32` length 8 and a `u64`: the payload length
//! for a call, the casts counted for a drain. Both sides buffer (64 KiB);
//! the server flushes whenever it has no more input buffered, the client
//! when it must wait for a reply. Unlike the actor systems, the client
//! writes every payload from one buffer (no allocation per message).
//!
//! One connection per measurement: casts and calls in order on it, so a
//! drain is answered once every earlier cast was read. Every reply is
//! awaited with a timeout; a timeout ends the measurement (the stream is
//! then out of step) and counts every unanswered request as an error.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt, BufReader, BufWriter};
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, Semaphore};

use super::{Outcome, CALL_TIMEOUT, DEADLINE_CHECK_EVERY, DRAIN_TIMEOUT};
use crate::bench::measure::Latencies;
use crate::bench::plan::{Spec, MAX_PAYLOAD};

const KIND_CAST: u8 = 0;
const KIND_CALL: u8 = 1;
const KIND_DRAIN: u8 = 2;
/// Socket buffer size on both sides.
const BUFFER_BYTES: usize = 64 * 1024;
/// Largest request frame the server accepts.
const MAX_FRAME: usize = MAX_PAYLOAD + 1;

/// Serves `tcp-framed` connections until the listener fails.
pub async fn serve(listener: TcpListener) {
    loop {
        match listener.accept().await {
            Ok((stream, from)) => {
                tokio::spawn(async move {
                    if let Err(err) = serve_connection(stream).await {
                        tracing::warn!(from = %from, error = %err, "tcp-framed connection failed");
                    }
                });
            }
            Err(err) => {
                tracing::warn!(error = %err, "tcp-framed listener failed");
                return;
            }
        }
    }
}

async fn serve_connection(stream: TcpStream) -> std::io::Result<()> {
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    let mut reader = BufReader::with_capacity(BUFFER_BYTES, read);
    let mut writer = BufWriter::with_capacity(BUFFER_BYTES, write);
    let mut frame = Vec::new();
    let mut received = 0u64;
    loop {
        let len = match reader.read_u32().await {
            Ok(len) => len as usize,
            Err(err) if err.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Err(err) => return Err(err),
        };
        if len == 0 || len > MAX_FRAME {
            return Err(std::io::Error::other(format!("bad frame length {len}")));
        }
        frame.resize(len, 0);
        reader.read_exact(&mut frame).await?;
        match frame[0] {
            KIND_CAST => received += 1,
            KIND_CALL => write_reply(&mut writer, (len - 1) as u64).await?,
            KIND_DRAIN if len == 9 => {
                let expected = u64::from_be_bytes(frame[1..9].try_into().unwrap_or_default());
                if received < expected {
                    tracing::warn!(received, expected, "tcp-framed drain short of casts");
                }
                write_reply(&mut writer, received).await?;
                received = 0;
            }
            kind => return Err(std::io::Error::other(format!("bad frame kind {kind}"))),
        }
        if reader.buffer().is_empty() {
            writer.flush().await?;
        }
    }
}

async fn write_reply(writer: &mut BufWriter<OwnedWriteHalf>, value: u64) -> std::io::Result<()> {
    writer.write_u32(8).await?;
    writer.write_u64(value).await
}

async fn write_request(
    writer: &mut BufWriter<OwnedWriteHalf>,
    kind: u8,
    body: &[u8],
) -> std::io::Result<()> {
    writer.write_u32(body.len() as u32 + 1).await?;
    writer.write_u8(kind).await?;
    writer.write_all(body).await
}

async fn read_reply(
    reader: &mut BufReader<OwnedReadHalf>,
    timeout: Duration,
) -> Result<u64, String> {
    let read = async {
        let len = reader.read_u32().await?;
        if len != 8 {
            return Err(std::io::Error::other(format!("bad reply length {len}")));
        }
        reader.read_u64().await
    };
    match tokio::time::timeout(timeout, read).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(err)) => Err(err.to_string()),
        Err(_) => Err(format!("no reply within {timeout:?}")),
    }
}

async fn connect(
    addr: SocketAddr,
) -> std::io::Result<(BufReader<OwnedReadHalf>, BufWriter<OwnedWriteHalf>)> {
    let stream = TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (read, write) = stream.into_split();
    Ok((
        BufReader::with_capacity(BUFFER_BYTES, read),
        BufWriter::with_capacity(BUFFER_BYTES, write),
    ))
}

/// Runs one `tcp-framed` measurement against the peer at `addr`.
pub async fn run(spec: &Spec, addr: SocketAddr) -> Outcome {
    let (reader, writer) = match connect(addr).await {
        Ok(halves) => halves,
        Err(err) => return Outcome::failed(format!("cannot connect to {addr}: {err}")),
    };
    let outcome = match spec.in_flight {
        None => casts(spec, reader, writer).await,
        Some(1) => sequential_calls(spec, reader, writer).await,
        Some(k) => pipelined_calls(spec, k, reader, writer).await,
    };
    outcome.unwrap_or_else(Outcome::failed)
}

async fn casts(
    spec: &Spec,
    mut reader: BufReader<OwnedReadHalf>,
    mut writer: BufWriter<OwnedWriteHalf>,
) -> Result<Outcome, String> {
    let payload = vec![0xA5; spec.payload];
    let start = Instant::now();
    let deadline = start + spec.duration;
    let mut sent = 0u64;
    while sent < spec.messages {
        if sent.is_multiple_of(DEADLINE_CHECK_EVERY) && Instant::now() >= deadline {
            break;
        }
        write_request(&mut writer, KIND_CAST, &payload)
            .await
            .map_err(|e| e.to_string())?;
        sent += 1;
    }
    write_request(&mut writer, KIND_DRAIN, &sent.to_be_bytes())
        .await
        .map_err(|e| e.to_string())?;
    writer.flush().await.map_err(|e| e.to_string())?;
    let enqueued = start.elapsed();
    let (received, failure) = match read_reply(&mut reader, DRAIN_TIMEOUT).await {
        Ok(received) => (received, None),
        Err(err) => (0, Some(format!("drain of {sent} casts failed: {err}"))),
    };
    Ok(Outcome {
        messages: received,
        errors: sent.saturating_sub(received),
        elapsed: start.elapsed(),
        enqueued: Some(enqueued),
        latencies: None,
        refused: None,
        failure,
    })
}

async fn sequential_calls(
    spec: &Spec,
    mut reader: BufReader<OwnedReadHalf>,
    mut writer: BufWriter<OwnedWriteHalf>,
) -> Result<Outcome, String> {
    let payload = vec![0x5A; spec.payload];
    let mut latencies = Latencies::new();
    let start = Instant::now();
    let deadline = start + spec.duration;
    let (mut errors, mut failure) = (0, None);
    for _ in 0..spec.messages {
        if Instant::now() >= deadline {
            break;
        }
        let sent_at = Instant::now();
        write_request(&mut writer, KIND_CALL, &payload)
            .await
            .map_err(|e| e.to_string())?;
        writer.flush().await.map_err(|e| e.to_string())?;
        match read_reply(&mut reader, CALL_TIMEOUT).await {
            Ok(len) if len == spec.payload as u64 => latencies.record(sent_at.elapsed()),
            Ok(len) => return Err(format!("reply says {len} bytes, sent {}", spec.payload)),
            Err(err) => {
                errors += 1;
                failure = Some(format!("call failed: {err}"));
                break;
            }
        }
    }
    Ok(Outcome {
        messages: latencies.len(),
        errors,
        elapsed: start.elapsed(),
        enqueued: None,
        latencies: Some(latencies),
        refused: None,
        failure,
    })
}

/// Keeps up to `in_flight` calls outstanding on the one connection: a
/// writer task sends while it holds a permit (flushing before it waits for
/// one), this task reads the replies in order and frees permits.
async fn pipelined_calls(
    spec: &Spec,
    in_flight: usize,
    mut reader: BufReader<OwnedReadHalf>,
    mut writer: BufWriter<OwnedWriteHalf>,
) -> Result<Outcome, String> {
    let permits = Arc::new(Semaphore::new(in_flight));
    let (sent_tx, mut sent_rx) = mpsc::unbounded_channel::<Instant>();
    let start = Instant::now();
    let deadline = start + spec.duration;
    let (messages, payload_len) = (spec.messages, spec.payload);
    let writer_permits = permits.clone();
    let writer_task = tokio::spawn(async move {
        let payload = vec![0x5A; payload_len];
        for _ in 0..messages {
            if Instant::now() >= deadline {
                break;
            }
            let permit = match writer_permits.try_acquire() {
                Ok(permit) => permit,
                Err(_) => {
                    writer.flush().await?;
                    match writer_permits.acquire().await {
                        Ok(permit) => permit,
                        Err(_) => break, // closed: the reader gave up
                    }
                }
            };
            permit.forget();
            let _ = sent_tx.send(Instant::now());
            write_request(&mut writer, KIND_CALL, &payload).await?;
        }
        writer.flush().await
    });
    let mut latencies = Latencies::new();
    let mut outstanding: VecDeque<Instant> = VecDeque::new();
    let (mut failure, mut errors) = (None, 0u64);
    while let Some(sent_at) = sent_rx.recv().await {
        outstanding.push_back(sent_at);
        while let Ok(more) = sent_rx.try_recv() {
            outstanding.push_back(more);
        }
        while let Some(sent_at) = outstanding.pop_front() {
            match read_reply(&mut reader, CALL_TIMEOUT).await {
                Ok(len) if len == payload_len as u64 => latencies.record(sent_at.elapsed()),
                Ok(len) => failure = Some(format!("reply says {len} bytes, sent {payload_len}")),
                Err(err) => failure = Some(format!("call failed: {err}")),
            }
            if failure.is_some() {
                errors += 1;
                break;
            }
            permits.add_permits(1);
        }
        if failure.is_some() {
            permits.close();
            break;
        }
    }
    match writer_task.await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => failure = failure.or(Some(format!("write failed: {err}"))),
        Err(err) => failure = failure.or(Some(format!("writer task failed: {err}"))),
    }
    // Requests sent but never answered.
    errors += outstanding.len() as u64 + sent_rx.len() as u64;
    Ok(Outcome {
        messages: latencies.len(),
        errors,
        elapsed: start.elapsed(),
        enqueued: None,
        latencies: Some(latencies),
        refused: None,
        failure,
    })
}
