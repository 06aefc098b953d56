//! `Orderer`: a shopper that keeps buying in a background thread while a
//! test breaks the cluster, and remembers every acknowledged order.
//!
//! Each round: wait until the cart is empty (the owner clears it in the
//! background after an order), add one unit of the product (retrying the
//! same cart key on 503 or no answer), then check out with a fresh key,
//! retrying the SAME key on 503, a timeout or a connection error until a
//! 2xx: an order retried with its key is never placed twice, so a client
//! may always retry. A 409 (empty cart) means the order was lost between
//! two attempts and is a failure; so is any other answer, a cart not
//! cleared within [`CART_CLEAR_WAIT`] after an order, and an order that
//! bought anything but the one unit added.
//!
//! [`Orderer::stop`] ends the loop after the round in progress: a key
//! already sent is retried until it is resolved (or its deadline passes,
//! which is a failure), so that every order the cluster may hold for the
//! user is either acknowledged or reported.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::checkout_http::{add_to_cart_at, cart_items_at, checkout_at, unix_ms};

/// Pause before retrying a request whose outcome is unknown.
pub const RETRY_PAUSE: Duration = Duration::from_millis(20);

/// Budget of a cart read or change of an orderer.
const CART_CALL_TIMEOUT: Duration = Duration::from_secs(2);

/// How long an orderer waits for the previous order's cart to be cleared.
const CART_CLEAR_WAIT: Duration = Duration::from_secs(3);

/// How long an orderer retries one cart change.
const ADD_DEADLINE: Duration = Duration::from_secs(10);

/// What an [`Orderer`] does.
#[derive(Debug, Clone)]
pub struct OrdererConfig {
    /// Label in keys and messages (`A`).
    pub tag: String,
    /// The buyer.
    pub user: String,
    /// The buyer's token.
    pub token: String,
    /// Gateway the checkouts go through.
    pub checkout_at: SocketAddr,
    /// Gateway the cart reads and changes go through.
    pub cart_at: SocketAddr,
    /// The product bought, one unit per order.
    pub product: u64,
    /// Budget of one checkout request.
    pub timeout: Duration,
    /// How long one key is retried before it counts as unresolved.
    pub key_deadline: Duration,
}

/// One acknowledged order.
#[derive(Debug, Clone)]
pub struct Ack {
    /// The idempotency key.
    pub key: String,
    /// The order as the 2xx answer showed it.
    pub order: Value,
    /// `order_id` of the answer.
    pub order_id: String,
    /// `epoch` of the answer.
    pub epoch: u64,
    /// 201 or 200.
    pub status: u16,
    /// When the answer came, ms since the Unix epoch.
    pub at_ms: u64,
    /// When the key was first sent, ms since the Unix epoch.
    pub sent_ms: u64,
    /// Requests sent with this key.
    pub attempts: u32,
}

impl Ack {
    /// `(product_id, quantity)` of the order's items.
    pub fn items(&self) -> Vec<(u64, u64)> {
        self.order["items"]
            .as_array()
            .map(|items| {
                items
                    .iter()
                    .map(|item| {
                        let id = item["product_id"].as_u64().unwrap_or(0);
                        (id, item["quantity"].as_u64().unwrap_or(0))
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
}

/// What an [`Orderer`] saw.
#[derive(Debug, Default)]
pub struct OrderLog {
    /// The orderer's label.
    pub tag: String,
    /// Every acknowledged order, in order.
    pub acks: Vec<Ack>,
    /// Every broken expectation.
    pub failures: Vec<String>,
    /// Checkout requests sent.
    pub checkout_requests: u64,
    /// Outcomes of checkout requests: `"201"`, `"503"`, `"no answer"`…
    pub outcomes: BTreeMap<String, u64>,
    /// A key sent but never resolved, if any: the cluster may hold an
    /// order for it.
    pub unresolved: Option<String>,
}

impl OrderLog {
    /// The largest pause between two consecutive acknowledgements.
    pub fn max_gap_ms(&self) -> u64 {
        max_gap_ms(self.acks.iter().map(|ack| ack.at_ms))
    }
}

/// The largest difference between consecutive values of `times` once sorted.
pub fn max_gap_ms(times: impl IntoIterator<Item = u64>) -> u64 {
    let mut times: Vec<u64> = times.into_iter().collect();
    times.sort_unstable();
    times
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap_or(0)
}

/// A thread buying until [`Orderer::stop`], or until dropped.
pub struct Orderer {
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicU64>,
    thread: Option<JoinHandle<OrderLog>>,
}

impl Orderer {
    /// Starts buying as `config` says.
    pub fn start(config: OrdererConfig) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let acked = Arc::new(AtomicU64::new(0));
        let thread = {
            let (stop, acked) = (stop.clone(), acked.clone());
            thread::spawn(move || order_until(&config, &stop, &acked))
        };
        Self {
            stop,
            acked,
            thread: Some(thread),
        }
    }

    /// Orders acknowledged so far.
    pub fn acked(&self) -> u64 {
        self.acked.load(Ordering::Relaxed)
    }

    /// Stops after the round in progress and returns everything seen.
    pub fn stop(mut self) -> OrderLog {
        self.stop.store(true, Ordering::Relaxed);
        let thread = self.thread.take().expect("orderer runs until stopped");
        thread.join().expect("orderer panicked")
    }
}

impl Drop for Orderer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn order_until(config: &OrdererConfig, stop: &AtomicBool, acked: &AtomicU64) -> OrderLog {
    let mut log = OrderLog {
        tag: config.tag.clone(),
        ..OrderLog::default()
    };
    let mut round = 0;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        wait_for_empty_cart(config, &mut log);
        if !add_one(config, round, &mut log) {
            break;
        }
        match buy(config, round, &mut log) {
            Some(ack) => {
                acked.fetch_add(1, Ordering::Relaxed);
                log.acks.push(ack);
            }
            None if log.unresolved.is_some() => break,
            None => {}
        }
    }
    log
}

/// Waits until the cart is empty: the owner clears it after every order.
/// A cart still holding what an acknowledged order bought is a failure
/// (the next order would buy it again).
fn wait_for_empty_cart(config: &OrdererConfig, log: &mut OrderLog) {
    let deadline = Instant::now() + CART_CLEAR_WAIT;
    let mut last = None;
    while Instant::now() < deadline {
        last = cart_items_at(config.cart_at, &config.token, CART_CALL_TIMEOUT);
        if last.as_ref().is_some_and(Vec::is_empty) {
            return;
        }
        thread::sleep(RETRY_PAUSE);
    }
    let previous = log.acks.last().map_or("no order yet".to_string(), |ack| {
        format!(
            "{} acknowledged {} as {} (epoch {}) after {} attempts, {} ms ago",
            ack.key,
            ack.status,
            ack.order_id,
            ack.epoch,
            ack.attempts,
            unix_ms() - ack.at_ms
        )
    });
    log.failures.push(format!(
        "{}: cart not cleared after an order: {last:?} {CART_CLEAR_WAIT:?} after {previous}",
        config.tag
    ));
}

/// Adds one unit; false (and a failure) if it cannot.
fn add_one(config: &OrdererConfig, round: u32, log: &mut OrderLog) -> bool {
    let key = format!("{}-add-{round}", config.tag);
    let deadline = Instant::now() + ADD_DEADLINE;
    loop {
        let answer = add_to_cart_at(
            config.cart_at,
            &config.token,
            (config.product, 1),
            Some(&key),
            CART_CALL_TIMEOUT,
        );
        match answer {
            Some((200, _)) => return true,
            Some((503, _)) | None if Instant::now() < deadline => thread::sleep(RETRY_PAUSE),
            other => {
                log.failures
                    .push(format!("{} add {key}: {other:?}", config.tag));
                return false;
            }
        }
    }
}

/// Checks out under a fresh key until a 2xx; `None` after a failure.
fn buy(config: &OrdererConfig, round: u32, log: &mut OrderLog) -> Option<Ack> {
    let key = format!("{}-order-{round}", config.tag);
    let sent_ms = unix_ms();
    let deadline = Instant::now() + config.key_deadline;
    let mut attempts = 0;
    loop {
        attempts += 1;
        log.checkout_requests += 1;
        let answer = checkout_at(
            config.checkout_at,
            &config.token,
            Some(&key),
            config.timeout,
        );
        let outcome = answer
            .as_ref()
            .map_or("no answer".to_string(), |(status, _)| status.to_string());
        *log.outcomes.entry(outcome).or_default() += 1;
        match answer {
            Some((status @ (200 | 201), order)) => {
                let ack = Ack {
                    key: key.clone(),
                    order_id: order["order_id"].as_str().unwrap_or_default().to_string(),
                    epoch: order["epoch"].as_u64().unwrap_or(0),
                    order,
                    status,
                    at_ms: unix_ms(),
                    sent_ms,
                    attempts,
                };
                if ack.items() != [(config.product, 1)] {
                    log.failures.push(format!(
                        "{} {key}: the cart held one unit of {}, the order bought {:?}",
                        config.tag,
                        config.product,
                        ack.items()
                    ));
                }
                if ack.order["idempotency_key"] != key.as_str() || ack.order_id.is_empty() {
                    log.failures.push(format!(
                        "{} {key}: a 2xx for another order: {}",
                        config.tag, ack.order
                    ));
                }
                return Some(ack);
            }
            Some((503, _)) | None => {
                if Instant::now() >= deadline {
                    log.failures.push(format!(
                        "{} {key}: unresolved after {attempts} attempts in {:?}",
                        config.tag, config.key_deadline
                    ));
                    log.unresolved = Some(key);
                    return None;
                }
                thread::sleep(RETRY_PAUSE);
            }
            Some((status, body)) => {
                log.failures.push(format!(
                    "{} {key}: {status} on attempt {attempts}: {body}",
                    config.tag
                ));
                return None;
            }
        }
    }
}
