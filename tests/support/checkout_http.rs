//! Checkout as the tests speak it: user routes with a bearer token and a
//! per-call timeout (an order may wait out a failover; a client of a
//! frozen node must give up quickly), the admin order list and payment
//! settings, and each replica's view of checkout ownership from
//! `GET /api/cluster`.
//!
//! Every call returns `None` when the node is unreachable or late, so that
//! client loops can treat it as "outcome unknown" and retry the same key.
//! Bodies are JSON (panics otherwise).

use std::net::SocketAddr;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use reqwest::Method;
use serde::Deserialize;
use serde_json::{json, Value};

use super::http::http_get_within;
use super::{ClusterView, TestCluster};

/// Default budget of a checkout: more than the gateway's own 8 s deadline.
pub const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(10);

/// Budget of a read of `/api/cluster` or an order list: the node asks every
/// peer for its tree (300 ms each) and its own replica, which may be busy
/// with an order.
pub const STATUS_TIMEOUT: Duration = Duration::from_millis(1500);

/// A replica's view of checkout ownership (`checkout` in `/api/cluster`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
pub struct CheckoutView {
    /// The answering node.
    pub node: String,
    /// `owner`, `follower` or `candidate`.
    pub role: String,
    /// The owner it follows (itself when owner).
    pub owner: Option<String>,
    /// Who takes over if the owner fails.
    pub standby: Option<String>,
    /// Highest epoch promised.
    pub epoch: u64,
    /// Entries in its log.
    pub log_length: u64,
    /// Entries known committed.
    pub commit_index: u64,
    /// Checkout's voters, sorted (the replica's configuration, or the
    /// node's bootstrap set while the replica reports none).
    #[serde(default)]
    pub voters: Vec<String>,
    /// Nodes running checkout that are not voters, sorted.
    #[serde(default)]
    pub learners: Vec<String>,
}

/// Milliseconds since the Unix epoch, now (comparable with `created_ms`
/// and `since_ms`, which the nodes stamp from the same clock).
pub fn unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

fn client() -> &'static reqwest::blocking::Client {
    static CLIENT: OnceLock<reqwest::blocking::Client> = OnceLock::new();
    CLIENT.get_or_init(|| {
        reqwest::blocking::Client::builder()
            .timeout(CHECKOUT_TIMEOUT)
            .connect_timeout(Duration::from_millis(500))
            // A fresh connection per request: a reused one could outlive
            // the node process it was opened to.
            .pool_max_idle_per_host(0)
            .build()
            .expect("http client")
    })
}

/// Who may call: a bearer token and, for changes, an idempotency key.
#[derive(Debug, Clone, Copy)]
pub struct Call<'a> {
    /// Bearer token.
    pub token: &'a str,
    /// `Idempotency-Key`, if any.
    pub key: Option<&'a str>,
    /// Budget of the whole request.
    pub timeout: Duration,
}

/// `method path` on `addr` as `call` says, with an optional JSON body;
/// `(status, JSON body)`, `None` if unreachable or late. Panics if a body
/// is not JSON (every answer of the API is).
pub fn user_request(
    addr: SocketAddr,
    method: Method,
    path: &str,
    call: Call<'_>,
    body: Option<&Value>,
) -> Option<(u16, Value)> {
    let mut request = client()
        .request(method.clone(), format!("http://{addr}{path}"))
        .timeout(call.timeout)
        .bearer_auth(call.token);
    if let Some(body) = body {
        request = request.json(body);
    }
    if let Some(key) = call.key {
        request = request.header("idempotency-key", key);
    }
    let response = request.send().ok()?;
    let status = response.status().as_u16();
    let text = response.text().ok()?;
    let value = serde_json::from_str(&text).unwrap_or_else(|e| {
        panic!("{addr}: {method} {path}: {status} with a non-JSON body ({e}): {text:?}")
    });
    Some((status, value))
}

/// `POST /api/checkout` on `addr` within `timeout`.
pub fn checkout_at(
    addr: SocketAddr,
    token: &str,
    key: Option<&str>,
    timeout: Duration,
) -> Option<(u16, Value)> {
    let call = Call {
        token,
        key,
        timeout,
    };
    user_request(addr, Method::POST, "/api/checkout", call, None)
}

/// `POST /api/cart/items` of `quantity` units of `product_id` on `addr`
/// within `timeout`.
pub fn add_to_cart_at(
    addr: SocketAddr,
    token: &str,
    (product_id, quantity): (u64, u32),
    key: Option<&str>,
    timeout: Duration,
) -> Option<(u16, Value)> {
    let body = json!({ "product_id": product_id, "quantity": quantity });
    let call = Call {
        token,
        key,
        timeout,
    };
    user_request(addr, Method::POST, "/api/cart/items", call, Some(&body))
}

/// `(product_id, quantity)` of the items of the token's user's cart on
/// `addr`; `None` unless it answers 200 within `timeout`.
pub fn cart_items_at(addr: SocketAddr, token: &str, timeout: Duration) -> Option<Vec<(u64, u64)>> {
    let call = Call {
        token,
        key: None,
        timeout,
    };
    match user_request(addr, Method::GET, "/api/cart", call, None)? {
        (200, cart) => Some(
            cart["items"]
                .as_array()?
                .iter()
                .map(|item| {
                    let id = item["product_id"].as_u64().expect("product_id");
                    (id, item["quantity"].as_u64().expect("quantity"))
                })
                .collect(),
        ),
        _ => None,
    }
}

impl TestCluster {
    /// `POST /api/checkout` on node `i` within `timeout`.
    pub fn checkout_within(
        &self,
        i: usize,
        token: &str,
        key: Option<&str>,
        timeout: Duration,
    ) -> Option<(u16, Value)> {
        checkout_at(self.http_addr(i), token, key, timeout)
    }

    /// `POST /api/checkout` on node `i` within [`CHECKOUT_TIMEOUT`].
    pub fn checkout(&self, i: usize, token: &str, key: Option<&str>) -> Option<(u16, Value)> {
        self.checkout_within(i, token, key, CHECKOUT_TIMEOUT)
    }

    /// `(product_id, quantity)` of the token's user's cart on node `i`;
    /// `None` unless it answers 200 within [`STATUS_TIMEOUT`].
    pub fn cart_items(&self, i: usize, token: &str) -> Option<Vec<(u64, u64)>> {
        cart_items_at(self.http_addr(i), token, STATUS_TIMEOUT)
    }

    /// The orders of the token's user as node `i` serves them; `None`
    /// unless it answers 200.
    pub fn user_orders(&self, i: usize, token: &str) -> Option<Vec<Value>> {
        let call = Call {
            token,
            key: None,
            timeout: STATUS_TIMEOUT,
        };
        match user_request(self.http_addr(i), Method::GET, "/api/orders", call, None)? {
            (200, list) => list["items"].as_array().cloned(),
            _ => None,
        }
    }

    /// Every order as node `i` serves it (`GET /api/admin/orders`); `None`
    /// unless it answers 200.
    pub fn admin_orders(&self, i: usize, admin_token: &str) -> Option<Vec<Value>> {
        let call = Call {
            token: admin_token,
            key: None,
            timeout: STATUS_TIMEOUT,
        };
        let addr = self.http_addr(i);
        match user_request(addr, Method::GET, "/api/admin/orders", call, None)? {
            (200, list) => list["items"].as_array().cloned(),
            _ => None,
        }
    }

    /// `PUT /api/admin/payment` on node `i`; panics if it does not answer.
    pub fn set_payment(
        &self,
        i: usize,
        admin_token: &str,
        failure_rate: f64,
        latency_ms: u64,
    ) -> (u16, Value) {
        let settings = json!({ "failure_rate": failure_rate, "latency_ms": latency_ms });
        self.put_json(i, "/api/admin/payment", &settings, Some(admin_token))
    }

    /// Stock of product `id` as node `i` serves it.
    pub fn stock(&self, i: usize, id: u64) -> Option<u64> {
        self.product(i, id)?["stock"].as_u64()
    }

    /// `GET /api/cluster` of node `i` within [`STATUS_TIMEOUT`]; `None` if
    /// unreachable, late or not 200.
    pub fn cluster_json(&self, i: usize) -> Option<Value> {
        match http_get_within(self.http_addr(i), "/api/cluster", STATUS_TIMEOUT)? {
            (200, body) => serde_json::from_str(&body).ok(),
            _ => None,
        }
    }

    /// Checkout ownership as node `i`'s replica sees it.
    pub fn checkout_view(&self, i: usize) -> Option<CheckoutView> {
        let report = self.cluster_json(i)?;
        serde_json::from_value(report.get("checkout")?.clone()).ok()
    }

    /// `(owner, epoch)` if every node in `nodes` reports the same known
    /// owner and epoch, and that owner reports itself as `owner`.
    pub fn agreed_owner(&self, nodes: &[usize]) -> Option<(String, u64)> {
        let views: Vec<CheckoutView> = nodes
            .iter()
            .map(|&i| self.checkout_view(i))
            .collect::<Option<_>>()?;
        let first = views.first()?;
        let owner = first.owner.clone()?;
        let agree = views
            .iter()
            .all(|v| v.owner.as_deref() == Some(owner.as_str()) && v.epoch == first.epoch);
        let owner_view = views.iter().find(|v| v.node == owner);
        let confirmed = owner_view.is_none_or(|v| v.role == "owner");
        (agree && confirmed).then_some((owner, first.epoch))
    }

    /// The number of the node named `name` (`n2` is 2).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.all().into_iter().find(|&i| self.name(i) == name)
    }

    /// Restarts of `payment-worker` in `node`'s tree as `observer` reports
    /// it; `None` if not reported.
    pub fn payment_restarts(&self, observer: usize, node: usize) -> Option<u64> {
        let view: ClusterView = serde_json::from_value(self.cluster_json(observer)?).ok()?;
        let tree = view.trees.get(&self.name(node))?;
        Some(tree.find("checkout")?.find("payment-worker")?.restarts)
    }
}
