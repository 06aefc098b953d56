//! The checker of the partition tests: what the nodes claimed while the
//! network was cut, and whether the orders they hold once it heals match
//! what the shoppers were told.
//!
//! - [`OwnerWatch`] polls every node's `GET /api/cluster` (one thread per
//!   node, so that a cut-off or frozen node does not slow the others) and
//!   records every self-claim of checkout ownership as `epoch -> node`;
//!   two nodes claiming one epoch is a failure.
//! - [`order_checks`] waits until every node's `GET /api/admin/orders`
//!   holds the same list, with every acknowledged order, for a few polls,
//!   then lists what is wrong: an acknowledged order missing, doubled or
//!   changed on some node, an order id acknowledged for two keys, lists
//!   that differ between nodes.

use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{json, Value};

use crate::shoppers::Acked;
use crate::support::{http_post, NetnsCluster, STATUS_TIMEOUT};

/// Pause between two polls of one node's ownership.
const WATCH_INTERVAL: Duration = Duration::from_millis(100);

/// How long the order lists get to agree after a heal.
pub const CONVERGE_TIMEOUT: Duration = Duration::from_secs(20);

/// Lost orders named per node in a problem (the rest are counted).
const SHOWN_LOST: usize = 5;

/// Self-claims of checkout ownership, `epoch -> claimants`.
pub type Claims = BTreeMap<u64, BTreeSet<String>>;

/// Threads recording ownership claims until stopped.
pub struct OwnerWatch {
    stop: Arc<AtomicBool>,
    claims: Arc<Mutex<Claims>>,
    threads: Vec<JoinHandle<()>>,
}

impl OwnerWatch {
    /// Starts watching every node of `cluster`.
    pub fn start(cluster: &NetnsCluster) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let claims = Arc::new(Mutex::new(Claims::new()));
        let threads = cluster
            .all()
            .into_iter()
            .map(|i| {
                let addr = cluster.http_addr(i);
                let (stop, claims) = (stop.clone(), claims.clone());
                thread::spawn(move || watch(addr, &stop, &claims))
            })
            .collect();
        Self {
            stop,
            claims,
            threads,
        }
    }

    /// The claims so far.
    pub fn claims(&self) -> Claims {
        self.claims.lock().expect("claims lock").clone()
    }

    /// Stops watching; the claims seen and one problem per epoch claimed
    /// by two nodes.
    pub fn stop(mut self) -> (Claims, Vec<String>) {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads.drain(..) {
            thread.join().expect("owner watch panicked");
        }
        let claims = self.claims();
        let problems = claims
            .iter()
            .filter(|(_, owners)| owners.len() > 1)
            .map(|(epoch, owners)| format!("epoch {epoch} claimed by {owners:?}"))
            .collect();
        (claims, problems)
    }
}

impl Drop for OwnerWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

fn watch(addr: SocketAddr, stop: &AtomicBool, claims: &Mutex<Claims>) {
    while !stop.load(Ordering::Relaxed) {
        if let Some(view) = crate::support::checkout_view_at(addr) {
            if view.role == "owner" {
                claims
                    .lock()
                    .expect("claims lock")
                    .entry(view.epoch)
                    .or_default()
                    .insert(view.node);
            }
        }
        thread::sleep(WATCH_INTERVAL);
    }
}

/// Logs `user` in at `addr`; the token, `None` unless a 200 with one.
pub fn login_at(addr: SocketAddr, user: &str, password: &str) -> Option<String> {
    let body = json!({ "username": user, "password": password });
    let (status, text) = http_post(addr, "/api/login", &body, None)?;
    let answer: Value = serde_json::from_str(&text).ok()?;
    (status == 200).then(|| answer["token"].as_str().map(str::to_string))?
}

/// Every order node `addr` holds, `None` unless a 200.
pub fn admin_orders_at(addr: SocketAddr, admin: &str) -> Option<Vec<Value>> {
    let call = crate::support::Call {
        token: admin,
        key: None,
        timeout: STATUS_TIMEOUT,
    };
    match crate::support::user_request(addr, Method::GET, "/api/admin/orders", call, None)? {
        (200, list) => list["items"].as_array().cloned(),
        _ => None,
    }
}

/// Waits until every node holds the same order list with every key of
/// `acks`, stable over a few polls (or [`CONVERGE_TIMEOUT`] passed), then
/// returns what is wrong with the lists given `acks`.
pub fn order_checks(cluster: &NetnsCluster, admin: &str, acks: &[Acked]) -> Vec<String> {
    let wanted: BTreeSet<&str> = acks.iter().map(|a| a.key.as_str()).collect();
    let start = Instant::now();
    let mut last: Vec<Option<Vec<Value>>> = Vec::new();
    let mut stable = 0;
    let settled = cluster.wait_until(CONVERGE_TIMEOUT, |c| {
        let lists: Vec<Option<Vec<Value>>> = c
            .all()
            .iter()
            .map(|&i| admin_orders_at(c.http_addr(i), admin))
            .collect();
        let agree = lists.iter().all(|l| l.is_some() && *l == lists[0]);
        let complete = lists[0].as_ref().is_some_and(|orders| {
            let held: BTreeSet<&str> = orders.iter().map(key_of).collect();
            wanted.is_subset(&held)
        });
        stable = if agree && complete && lists == last {
            stable + 1
        } else {
            0
        };
        last = lists;
        stable >= 3
    });
    match settled {
        Some(took) => println!(
            "  order lists agree after {took:?}: {} orders on every node",
            last[0].as_ref().map_or(0, Vec::len)
        ),
        None => println!(
            "  order lists did not agree with every ack within {:?}",
            start.elapsed()
        ),
    }
    problems(cluster, acks, &last)
}

/// The idempotency key of a listed order.
fn key_of(order: &Value) -> &str {
    order["idempotency_key"].as_str().unwrap_or_default()
}

/// What is wrong with each node's `lists` given `acks`.
fn problems(cluster: &NetnsCluster, acks: &[Acked], lists: &[Option<Vec<Value>>]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut keys_of_id: BTreeMap<&str, BTreeSet<&str>> = BTreeMap::new();
    for ack in acks {
        keys_of_id
            .entry(&ack.order_id)
            .or_default()
            .insert(&ack.key);
    }
    for (id, keys) in keys_of_id.iter().filter(|(_, keys)| keys.len() > 1) {
        problems.push(format!("order id {id} acknowledged for keys {keys:?}"));
    }
    for (i, list) in cluster.all().into_iter().zip(lists) {
        let Some(orders) = list else {
            problems.push(format!("n{i} serves no order list"));
            continue;
        };
        let mut by_key: BTreeMap<&str, Vec<&Value>> = BTreeMap::new();
        for order in orders {
            by_key.entry(key_of(order)).or_default().push(order);
        }
        let mut lost = Vec::new();
        for ack in acks {
            match by_key.get(ack.key.as_str()).map(Vec::as_slice) {
                None | Some([]) => lost.push(format!(
                    "{} ({} epoch {} via n{})",
                    ack.key, ack.order_id, ack.epoch, ack.node
                )),
                Some([order]) if **order == ack.order => {}
                Some([order]) => problems.push(format!(
                    "n{i}: acknowledged {} but holds {order}",
                    ack.order
                )),
                Some(many) => problems.push(format!(
                    "n{i}: acknowledged key {} held {} times",
                    ack.key,
                    many.len()
                )),
            }
        }
        if !lost.is_empty() {
            let more = lost.len().saturating_sub(SHOWN_LOST);
            lost.truncate(SHOWN_LOST);
            problems.push(format!(
                "n{i}: {} acknowledged orders lost: {}{}",
                lost.len() + more,
                lost.join(", "),
                if more > 0 {
                    format!(" and {more} more")
                } else {
                    String::new()
                }
            ));
        }
        let ids: BTreeSet<&str> = orders
            .iter()
            .map(|o| o["order_id"].as_str().unwrap_or_default())
            .collect();
        if ids.len() != orders.len() {
            problems.push(format!("n{i}: an order id is held twice"));
        }
    }
    let held: Vec<&Vec<Value>> = lists.iter().flatten().collect();
    if held.windows(2).any(|pair| pair[0] != pair[1]) {
        let sizes: Vec<Option<usize>> = lists.iter().map(|l| l.as_ref().map(Vec::len)).collect();
        problems.push(format!(
            "the nodes hold different order lists (sizes {sizes:?})"
        ));
    }
    problems
}
