//! `BackgroundReader`: a shopper that keeps reading through some gateways
//! while a test breaks the cluster, and remembers every failure.
//!
//! Each round reads one random product and runs one search through every
//! gateway it was given, then pauses [`READ_PAUSE`]; every request has
//! [`READ_TIMEOUT`]. A request fails if it gets no answer in time or an
//! answer other than 200. The pause paces the load; nothing waits on it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use super::http::http_get_within;

/// Budget of one background read: the helper's 500 ms plus headroom for a
/// debug build on a busy 2-core machine.
pub const READ_TIMEOUT: Duration = Duration::from_millis(800);

/// Pause between two rounds of reads.
pub const READ_PAUSE: Duration = Duration::from_millis(10);

/// Words searched, some in the catalog and some not.
const WORDS: [&str; 6] = ["lamp", "oak", "wool", "kettle", "backpack", "ceramic"];

/// What a [`BackgroundReader`] saw.
#[derive(Debug, Default)]
pub struct ReadLog {
    /// Requests sent.
    pub requests: u64,
    /// Each failed request: gateway, path, and what came back.
    pub failures: Vec<String>,
    /// Latency of every request, in the order sent.
    pub latencies: Vec<Duration>,
}

impl ReadLog {
    /// The latency below which a fraction `q` (0..=1) of requests fell.
    pub fn latency_quantile(&self, q: f64) -> Duration {
        let mut sorted = self.latencies.clone();
        sorted.sort();
        let Some(last) = sorted.len().checked_sub(1) else {
            return Duration::ZERO;
        };
        sorted[(last as f64 * q.clamp(0.0, 1.0)).round() as usize]
    }
}

/// A thread reading through gateways until [`BackgroundReader::stop`], or
/// until it is dropped (a test that panics leaves no reader behind).
pub struct BackgroundReader {
    /// Set to end the reads after the current round.
    stop: Arc<AtomicBool>,
    /// Rounds completed, for tests that wait for some reads to happen.
    rounds: Arc<AtomicU64>,
    /// The reading thread; taken by [`BackgroundReader::stop`].
    thread: Option<JoinHandle<ReadLog>>,
}

impl BackgroundReader {
    /// Starts reading through `gateways`, given as `(name, http address)`.
    pub fn start(gateways: Vec<(String, SocketAddr)>) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let rounds = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, rounds) = (stop.clone(), rounds.clone());
            thread::spawn(move || read_until(&gateways, &stop, &rounds))
        };
        Self {
            stop,
            rounds,
            thread: Some(thread),
        }
    }

    /// Rounds completed so far.
    pub fn rounds(&self) -> u64 {
        self.rounds.load(Ordering::Relaxed)
    }

    /// Stops after the current round and returns everything seen.
    pub fn stop(mut self) -> ReadLog {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self
            .thread
            .take()
            .expect("reader thread runs until stopped");
        thread.join().expect("background reader panicked")
    }
}

impl Drop for BackgroundReader {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn read_until(gateways: &[(String, SocketAddr)], stop: &AtomicBool, rounds: &AtomicU64) -> ReadLog {
    let mut log = ReadLog::default();
    while !stop.load(Ordering::Relaxed) {
        for (name, addr) in gateways {
            let id: u64 = rand::random_range(1..=10_000);
            let word = WORDS[rand::random_range(0..WORDS.len())];
            for path in [
                format!("/api/products/{id}"),
                format!("/api/search?q={word}&limit=5"),
            ] {
                let sent_at = Instant::now();
                let answer = http_get_within(*addr, &path, READ_TIMEOUT);
                let latency = sent_at.elapsed();
                log.requests += 1;
                log.latencies.push(latency);
                match answer {
                    Some((200, _)) => {}
                    Some((status, body)) => log.failures.push(format!(
                        "{name} GET {path}: {status} after {latency:?}: {body}"
                    )),
                    None => log
                        .failures
                        .push(format!("{name} GET {path}: no answer after {latency:?}")),
                }
            }
        }
        rounds.fetch_add(1, Ordering::Relaxed);
        thread::sleep(READ_PAUSE);
    }
    log
}
