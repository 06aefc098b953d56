//! The demo's load: shoppers that buy through every gateway and readers
//! that browse, each counting what succeeded and what failed, with the
//! time of every acknowledged order.
//!
//! A buyer retries an order with the same `Idempotency-Key` on any failure
//! (503, timeout, refused connection), moving to the next gateway, until it
//! is acknowledged: that is what makes "no order lost, none duplicated"
//! checkable afterwards.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;
use serde_json::{json, Value};

/// Timeout of one request of the load.
const REQUEST_TIMEOUT: Duration = Duration::from_millis(1500);
/// Pause between two attempts of the same order.
const RETRY_PAUSE: Duration = Duration::from_millis(20);
/// Pause between two reads of a reader.
const READ_PAUSE: Duration = Duration::from_millis(10);

/// An acknowledged order.
#[derive(Debug, Clone)]
pub struct Ack {
    /// The buyer.
    pub user: String,
    /// Its idempotency key.
    pub key: String,
    /// The order id the shop answered.
    pub order_id: String,
    /// The epoch that confirmed it.
    pub epoch: u64,
    /// When the answer came, since the demo started.
    pub at: Duration,
}

/// What the load saw.
#[derive(Debug, Default)]
pub struct Tally {
    /// Acknowledged orders.
    pub acks: Mutex<Vec<Ack>>,
    /// Order attempts that failed and were retried.
    pub order_retries: AtomicU64,
    /// Reads that succeeded.
    pub reads_ok: AtomicU64,
    /// Reads that failed, through gateways of nodes that stayed up.
    pub reads_failed: AtomicU64,
    /// Reads that failed through the gateway of the node that was killed.
    pub reads_failed_on_killed: AtomicU64,
}

/// The running load; stops when dropped or with [`Load::stop`].
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    /// What it saw so far.
    pub tally: Arc<Tally>,
}

/// Where the load goes and who buys.
pub struct LoadPlan {
    /// Gateway base URLs, one per node.
    pub gateways: Vec<String>,
    /// Buyers: (username, token, product id).
    pub buyers: Vec<(String, String, u64)>,
    /// The gateway of the node to be killed, once known.
    pub killed: Arc<Mutex<Option<String>>>,
    /// When the demo started.
    pub epoch: Instant,
}

impl Load {
    /// Starts one buyer per entry of `plan.buyers` and one reader per gateway.
    pub fn start(plan: LoadPlan) -> anyhow::Result<Self> {
        let client = reqwest::Client::builder()
            .timeout(REQUEST_TIMEOUT)
            .pool_max_idle_per_host(0)
            .build()?;
        let stop = Arc::new(AtomicBool::new(false));
        let tally = Arc::new(Tally::default());
        let plan = Arc::new(plan);
        let mut tasks = Vec::new();
        for (index, buyer) in plan.buyers.iter().cloned().enumerate() {
            let context = (client.clone(), stop.clone(), tally.clone(), plan.clone());
            tasks.push(tokio::spawn(buy(context, index, buyer)));
        }
        for gateway in plan.gateways.clone() {
            let context = (client.clone(), stop.clone(), tally.clone(), plan.clone());
            tasks.push(tokio::spawn(read(context, gateway)));
        }
        Ok(Self { stop, tasks, tally })
    }

    /// Stops every task and waits for them.
    pub async fn stop(mut self) -> Arc<Tally> {
        self.stop.store(true, Ordering::Relaxed);
        for task in self.tasks.drain(..) {
            let _ = task.await;
        }
        self.tally.clone()
    }
}

impl Drop for Load {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

type Context = (reqwest::Client, Arc<AtomicBool>, Arc<Tally>, Arc<LoadPlan>);

async fn send(request: reqwest::RequestBuilder) -> Option<(u16, Value)> {
    let response = request.send().await.ok()?;
    let status = response.status().as_u16();
    let body = response.json::<Value>().await.unwrap_or(Value::Null);
    Some((status, body))
}

/// A buyer: puts one unit in the cart, buys it, again and again.
async fn buy((client, stop, tally, plan): Context, index: usize, buyer: (String, String, u64)) {
    let (user, token, product_id) = buyer;
    let mut gateway = index % plan.gateways.len();
    let mut round = 0u64;
    while !stop.load(Ordering::Relaxed) {
        round += 1;
        let key = format!("demo-{user}-{round}-{}", rand::random::<u32>());
        // The cart: repeat until it holds the unit (the add is idempotent by key).
        let add_key = format!("{key}-add");
        loop {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            let url = format!("{}/api/cart/items", plan.gateways[gateway]);
            let request = client
                .post(url)
                .bearer_auth(&token)
                .header("idempotency-key", &add_key)
                .json(&json!({ "product_id": product_id, "quantity": 1 }));
            match send(request).await {
                Some((200..=299, _)) => break,
                _ => {
                    gateway = (gateway + 1) % plan.gateways.len();
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
        // The order: the same key until acknowledged, whatever happens.
        loop {
            let url = format!("{}/api/checkout", plan.gateways[gateway]);
            let request = client
                .post(url)
                .bearer_auth(&token)
                .header("idempotency-key", &key);
            match send(request).await {
                Some((200..=299, body)) => {
                    tally.acks.lock().push(Ack {
                        user: user.clone(),
                        key: key.clone(),
                        order_id: body["order_id"].as_str().unwrap_or_default().to_string(),
                        epoch: body["epoch"].as_u64().unwrap_or_default(),
                        at: plan.epoch.elapsed(),
                    });
                    break;
                }
                _ => {
                    tally.order_retries.fetch_add(1, Ordering::Relaxed);
                    if stop.load(Ordering::Relaxed) {
                        // An order left unacknowledged is fine: its
                        // outcome is unknown and it is not counted.
                        return;
                    }
                    gateway = (gateway + 1) % plan.gateways.len();
                    tokio::time::sleep(RETRY_PAUSE).await;
                }
            }
        }
    }
}

/// A reader: product views and searches through one gateway.
async fn read((client, stop, tally, plan): Context, gateway: String) {
    let mut n = 0u64;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        let url = if n.is_multiple_of(4) {
            format!("{gateway}/api/search?q=lamp&limit=5")
        } else {
            format!("{gateway}/api/products/{}", 1 + (n * 7919) % 10_000)
        };
        match send(client.get(url)).await {
            Some((200, _)) => {
                tally.reads_ok.fetch_add(1, Ordering::Relaxed);
            }
            _ if plan.killed.lock().as_deref() == Some(gateway.as_str()) => {
                tally.reads_failed_on_killed.fetch_add(1, Ordering::Relaxed);
            }
            _ => {
                tally.reads_failed.fetch_add(1, Ordering::Relaxed);
            }
        }
        tokio::time::sleep(READ_PAUSE).await;
    }
}
