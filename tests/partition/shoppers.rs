//! Shoppers for the partition tests: one thread per (user, gateway) that
//! keeps buying while a nemesis cuts the network, and remembers every
//! order it was told about.
//!
//! Each round adds one unit of a product to the cart, then checks out with
//! a fresh `Idempotency-Key`. A 503, a timeout or a connection error leaves
//! the outcome unknown: the same key is retried, at most [`KEY_ATTEMPTS`]
//! times, then abandoned (the cluster may still hold an order for it; the
//! checker allows orders nobody was told about, never the reverse). Every
//! 201 or 200 is recorded as an [`Acked`] with the gateway asked.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::Duration;

use serde_json::Value;

use crate::support::{add_to_cart_at, checkout_at, unix_ms};

/// Budget of one checkout or cart request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);

/// Requests sent with one key before it is abandoned.
pub const KEY_ATTEMPTS: u32 = 4;

/// Pause after a failed request, before the next one.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// One order a shopper was told about (201 or 200).
#[derive(Debug, Clone)]
pub struct Acked {
    /// The idempotency key.
    pub key: String,
    /// `order_id` of the answer.
    pub order_id: String,
    /// `epoch` of the answer.
    pub epoch: u64,
    /// The gateway asked (node number).
    pub node: usize,
    /// The order as the answer showed it.
    pub order: Value,
    /// When the answer came, ms since the Unix epoch.
    pub at_ms: u64,
}

/// Who shops where.
#[derive(Debug, Clone)]
pub struct Shopper {
    /// Label in keys (`s3`).
    pub tag: String,
    /// Bearer token of the shopper's user.
    pub token: String,
    /// Node number of the gateway.
    pub node: usize,
    /// Its HTTP address.
    pub addr: SocketAddr,
    /// The product bought, one unit per round.
    pub product: u64,
}

/// What the shoppers of one phase saw.
#[derive(Debug, Default)]
pub struct ShopLog {
    /// Every acknowledged order.
    pub acks: Vec<Acked>,
    /// Outcomes of checkout requests (`"201"`, `"503"`, `"no answer"`).
    pub outcomes: BTreeMap<String, u64>,
    /// Keys abandoned with their outcome unknown.
    pub abandoned: u64,
}

/// Shopper threads running until [`Shoppers::stop`] (or drop).
pub struct Shoppers {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    threads: Vec<JoinHandle<ShopLog>>,
}

impl Shoppers {
    /// Starts one thread per shopper; `phase` makes the keys unique.
    pub fn start(shoppers: &[Shopper], phase: &str) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let threads = shoppers
            .iter()
            .map(|shopper| {
                let (shopper, stop, acked) = (shopper.clone(), stop.clone(), acked.clone());
                let prefix = format!("{phase}-{}", shopper.tag);
                thread::spawn(move || shop(&shopper, &prefix, &stop, &acked))
            })
            .collect();
        Self {
            stop,
            acked,
            threads,
        }
    }

    /// Orders acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Stops after the requests in flight and returns what all saw.
    pub fn stop(mut self) -> ShopLog {
        self.stop.store(true, Ordering::Relaxed);
        let mut log = ShopLog::default();
        for thread in self.threads.drain(..) {
            let one = thread.join().expect("shopper panicked");
            log.acks.extend(one.acks);
            log.abandoned += one.abandoned;
            for (outcome, count) in one.outcomes {
                *log.outcomes.entry(outcome).or_default() += count;
            }
        }
        log.acks.sort_by_key(|ack| ack.at_ms);
        log
    }
}

impl Drop for Shoppers {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn shop(shopper: &Shopper, prefix: &str, stop: &AtomicBool, acked: &AtomicU64) -> ShopLog {
    let mut log = ShopLog::default();
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let add_key = format!("{prefix}-add-{round}");
        let added = add_to_cart_at(
            shopper.addr,
            &shopper.token,
            (shopper.product, 1),
            Some(&add_key),
            REQUEST_TIMEOUT,
        );
        if !matches!(added, Some((200, _))) {
            thread::sleep(RETRY_PAUSE);
            continue;
        }
        let key = format!("{prefix}-order-{round}");
        if let Some(ack) = checkout(shopper, &key, stop, &mut log) {
            acked.fetch_add(1, Ordering::Relaxed);
            log.acks.push(ack);
        }
    }
    log
}

/// Checks out under `key`, retrying it while the outcome is unknown;
/// `None` if no 2xx came.
fn checkout(shopper: &Shopper, key: &str, stop: &AtomicBool, log: &mut ShopLog) -> Option<Acked> {
    for attempt in 1..=KEY_ATTEMPTS {
        let answer = checkout_at(shopper.addr, &shopper.token, Some(key), REQUEST_TIMEOUT);
        let outcome = answer
            .as_ref()
            .map_or("no answer".to_string(), |(status, _)| status.to_string());
        *log.outcomes.entry(outcome).or_default() += 1;
        match answer {
            Some((200 | 201, order)) => {
                return Some(Acked {
                    key: key.to_string(),
                    order_id: order["order_id"].as_str().unwrap_or_default().to_string(),
                    epoch: order["epoch"].as_u64().unwrap_or(0),
                    node: shopper.node,
                    order,
                    at_ms: unix_ms(),
                });
            }
            Some((503, _)) | None if attempt < KEY_ATTEMPTS && !stop.load(Ordering::Relaxed) => {
                thread::sleep(RETRY_PAUSE);
            }
            Some((503, _)) | None => {
                log.abandoned += 1;
                return None;
            }
            // A 409 (empty cart, no stock) or another refusal: no order.
            Some(_) => return None,
        }
    }
    None
}
