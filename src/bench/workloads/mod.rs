//! The measured loops, written once over an [`Endpoint`] so every actor or
//! channel system runs exactly the same code; only `tcp-framed`, which has
//! no actor to address, has its own loops in [`tcp`].
//!
//! - casts: one sender casts until `messages` or the deadline, then drains;
//!   the clock stops when the receiver confirms it counted every cast;
//! - calls: `in_flight` tasks each call in a loop, taking tickets from one
//!   counter, recording each round trip;
//! - fan-in: [`FAN_IN_SENDERS`] tasks cast round-robin to
//!   [`FAN_IN_RECEIVERS`] receivers, then every receiver is drained;
//! - frozen peer: see [`frozen`].
//!
//! Every message owns a fresh `Vec<u8>` payload, as a real message owns
//! its data. Every call and drain has a timeout; a call that fails or times
//! out counts as an error, a drain that times out fails the measurement
//! (its casts count as errors), and neither is ever dropped silently.

pub mod frozen;
pub mod local;
pub mod remote;
pub mod tcp;

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::measure::Latencies;
use super::plan::{Spec, FAN_IN_RECEIVERS, FAN_IN_SENDERS};

/// Longest wait for one call's reply.
pub const CALL_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a receiver to count every cast (remote queues may hold many).
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(60);
/// A call measurement stops after this many errors.
const MAX_CALL_ERRORS: u64 = 100;
/// Sends between two looks at the clock in cast loops.
pub const DEADLINE_CHECK_EVERY: u64 = 64;

/// How the measured loops reach one receiver.
pub trait Endpoint: Clone + Send + Sync + 'static {
    /// Enqueues a cast, waiting while a bounded queue is full; an error
    /// means it was not sent.
    fn cast(&self, payload: Vec<u8>) -> impl Future<Output = Result<(), String>> + Send;
    /// A call; answers the payload length the receiver saw.
    fn call(
        &self,
        payload: Vec<u8>,
        timeout: Duration,
    ) -> impl Future<Output = Result<u64, String>> + Send;
    /// Waits until the receiver counted `expected` casts; answers the count.
    fn drain(
        &self,
        expected: u64,
        timeout: Duration,
    ) -> impl Future<Output = Result<u64, String>> + Send;
}

/// What a measured loop saw.
#[derive(Debug, Default)]
pub struct Outcome {
    /// Casts received or round trips completed.
    pub messages: u64,
    /// Failed calls, or casts never confirmed.
    pub errors: u64,
    /// From the first send until the end.
    pub elapsed: Duration,
    /// For casts: from the first send until the sender had enqueued the last.
    pub enqueued: Option<Duration>,
    /// Round trips of calls.
    pub latencies: Option<Latencies>,
    /// Casts refused as overloaded (`frozen-peer` only).
    pub refused: Option<u64>,
    /// Why the measurement ended early.
    pub failure: Option<String>,
}

impl Outcome {
    /// A measurement that could not run at all.
    pub fn failed(reason: String) -> Self {
        Self {
            failure: Some(reason),
            ..Self::default()
        }
    }
}

/// One sender casts to one receiver, then drains it.
pub async fn casts<E: Endpoint>(endpoint: &E, spec: &Spec) -> Outcome {
    let start = Instant::now();
    let deadline = start + spec.duration;
    let mut sent = 0u64;
    let mut failure = None;
    while sent < spec.messages {
        if sent.is_multiple_of(DEADLINE_CHECK_EVERY) && Instant::now() >= deadline {
            break;
        }
        if let Err(err) = endpoint.cast(vec![0xA5; spec.payload]).await {
            failure = Some(format!("cast failed after {sent} messages: {err}"));
            break;
        }
        sent += 1;
    }
    let enqueued = start.elapsed();
    let mut outcome = drained(endpoint, sent, start).await;
    outcome.enqueued = Some(enqueued);
    outcome.failure = outcome.failure.or(failure);
    outcome
}

/// Drains `sent` casts and builds the outcome of a cast measurement.
async fn drained<E: Endpoint>(endpoint: &E, sent: u64, start: Instant) -> Outcome {
    match endpoint.drain(sent, DRAIN_TIMEOUT).await {
        Ok(received) => Outcome {
            messages: received,
            errors: sent.saturating_sub(received),
            elapsed: start.elapsed(),
            ..Outcome::default()
        },
        Err(err) => Outcome {
            errors: sent,
            elapsed: start.elapsed(),
            failure: Some(format!("drain of {sent} casts failed: {err}")),
            ..Outcome::default()
        },
    }
}

/// `in_flight` callers share the tickets `0..messages`.
pub async fn calls<E: Endpoint>(endpoint: &E, spec: &Spec) -> Outcome {
    let in_flight = spec.in_flight.unwrap_or(1).max(1);
    let tickets = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let start = Instant::now();
    let deadline = start + spec.duration;
    let mut callers = Vec::with_capacity(in_flight);
    for _ in 0..in_flight {
        let endpoint = endpoint.clone();
        let tickets = tickets.clone();
        let errors = errors.clone();
        let (limit, payload) = (spec.messages, spec.payload);
        callers.push(tokio::spawn(async move {
            let mut latencies = Latencies::new();
            let mut last_error = None;
            while tickets.fetch_add(1, Ordering::Relaxed) < limit
                && errors.load(Ordering::Relaxed) < MAX_CALL_ERRORS
                && Instant::now() < deadline
            {
                let sent_at = Instant::now();
                match endpoint.call(vec![0x5A; payload], CALL_TIMEOUT).await {
                    Ok(len) if len == payload as u64 => latencies.record(sent_at.elapsed()),
                    Ok(len) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        last_error = Some(format!("reply says {len} bytes, sent {payload}"));
                    }
                    Err(err) => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        last_error = Some(err);
                    }
                }
            }
            (latencies, last_error)
        }));
    }
    let mut latencies = Latencies::new();
    let mut failure = None;
    for caller in callers {
        match caller.await {
            Ok((part, last_error)) => {
                latencies.merge(&part);
                failure = failure.or(last_error);
            }
            Err(err) => failure = Some(format!("caller task failed: {err}")),
        }
    }
    let errors = errors.load(Ordering::Relaxed);
    if errors > 0 {
        tracing::warn!(system = spec.system.name(), errors, failure = ?failure, "calls failed");
    }
    Outcome {
        messages: latencies.len(),
        errors,
        elapsed: start.elapsed(),
        enqueued: None,
        latencies: Some(latencies),
        refused: None,
        failure: failure.map(|last| format!("{errors} calls failed, last: {last}")),
    }
}

/// [`FAN_IN_SENDERS`] senders cast round-robin to every receiver in
/// `endpoints`, then every receiver is drained.
pub async fn fan_in<E: Endpoint>(endpoints: &[E], spec: &Spec) -> Outcome {
    debug_assert_eq!(endpoints.len(), FAN_IN_RECEIVERS);
    let start = Instant::now();
    let deadline = start + spec.duration;
    let senders = FAN_IN_SENDERS as u64;
    let mut tasks = Vec::with_capacity(FAN_IN_SENDERS);
    for sender in 0..senders {
        let endpoints = endpoints.to_vec();
        let quota = spec.messages / senders + u64::from(sender < spec.messages % senders);
        let payload = spec.payload;
        tasks.push(tokio::spawn(async move {
            let mut sent = vec![0u64; endpoints.len()];
            let mut failure = None;
            for i in 0..quota {
                if i.is_multiple_of(DEADLINE_CHECK_EVERY) && Instant::now() >= deadline {
                    break;
                }
                let target = (sender + i) as usize % endpoints.len();
                if let Err(err) = endpoints[target].cast(vec![0xA5; payload]).await {
                    failure = Some(err);
                    break;
                }
                sent[target] += 1;
            }
            (sent, failure)
        }));
    }
    let mut sent = vec![0u64; endpoints.len()];
    let mut failure = None;
    for task in tasks {
        match task.await {
            Ok((part, err)) => {
                sent.iter_mut().zip(part).for_each(|(total, n)| *total += n);
                failure = failure.or(err);
            }
            Err(err) => failure = Some(format!("sender task failed: {err}")),
        }
    }
    let mut outcome = Outcome {
        enqueued: Some(start.elapsed()),
        ..Outcome::default()
    };
    for (endpoint, &expected) in endpoints.iter().zip(&sent) {
        let part = drained(endpoint, expected, start).await;
        outcome.messages += part.messages;
        outcome.errors += part.errors;
        outcome.failure = outcome.failure.or(part.failure);
    }
    outcome.elapsed = start.elapsed();
    outcome.failure = outcome.failure.or(failure);
    outcome
}
