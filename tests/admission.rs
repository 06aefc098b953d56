//! Checkout's admission control on a cluster of real `bazaar node`
//! processes: an order that cannot be confirmed within the client's
//! budget (`X-Request-Timeout-Ms`) is refused at once with 503,
//! `Retry-After` and `"order_placed": false`; and an order whose client
//! gave up before it was proposed is never placed. In both cases a retry
//! with the same key creates the order (201), which proves the first try
//! placed nothing.

mod support;

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{add_to_cart_at, stocked_products, TestCluster, DEMO_PASSWORD};

const READY_TIMEOUT: Duration = Duration::from_secs(20);
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// `POST /api/checkout` with `budget_ms` in `X-Request-Timeout-Ms` (none
/// if `None`): status, `Retry-After`, JSON body.
fn checkout(
    addr: SocketAddr,
    token: &str,
    key: &str,
    budget_ms: Option<u64>,
) -> (u16, Option<String>, Value) {
    let mut request = reqwest::blocking::Client::new()
        .post(format!("http://{addr}/api/checkout"))
        .timeout(REQUEST_TIMEOUT)
        .bearer_auth(token)
        .header("idempotency-key", key);
    if let Some(budget_ms) = budget_ms {
        request = request.header("x-request-timeout-ms", budget_ms.to_string());
    }
    let response = request.send().expect("checkout answered");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap_or_default().to_string());
    let body: Value = response.json().expect("a JSON body");
    (status, retry_after, body)
}

/// `bazaar_checkout_refused_total{reason="deadline"}` of the node at `addr`.
fn refused_for_deadline(addr: SocketAddr) -> Option<f64> {
    let text = reqwest::blocking::get(format!("http://{addr}/metrics"))
        .ok()?
        .text()
        .ok()?;
    text.lines()
        .filter(|line| line.starts_with("bazaar_checkout_refused_total{"))
        .filter(|line| line.contains(r#"reason="deadline""#))
        .find_map(|line| line.rsplit_once(' ')?.1.parse().ok())
}

/// The owner's gateway, once every node agrees on the owner.
fn owner_gateway(cluster: &TestCluster) -> usize {
    let mut agreed = None;
    cluster.expect_within(Instant::now(), READY_TIMEOUT, "one checkout owner", |c| {
        agreed = c.agreed_owner(&[1, 2, 3]);
        agreed.is_some()
    });
    let (name, _) = agreed.expect("an owner");
    cluster.index_of(&name).expect("the owner is a node")
}

fn ready_cluster() -> TestCluster {
    let cluster = TestCluster::start(3);
    cluster.expect_within(Instant::now(), READY_TIMEOUT, "n1..n3 ready", |c| {
        c.all_up(&[1, 2, 3]) && c.all_ready(&[1, 2, 3])
    });
    cluster
}

/// Places one order of `product` for the token's user: add, then checkout.
fn buy(addr: SocketAddr, token: &str, product: u64, key: &str) -> (u16, Option<String>, Value) {
    let added = add_to_cart_at(addr, token, (product, 1), None, REQUEST_TIMEOUT);
    assert!(
        matches!(added, Some((200 | 201, _))),
        "add to cart: {added:?}"
    );
    checkout(addr, token, key, None)
}

#[test]
fn an_order_that_cannot_be_confirmed_in_its_budget_is_refused_and_placed_on_retry() {
    let cluster = ready_cluster();
    let owner = owner_gateway(&cluster);
    let addr = cluster.http_addr(owner);
    let admin = cluster.admin_token(owner);
    let product = stocked_products(&cluster, 1)[0].id;
    let token = cluster.login(owner, "user041", DEMO_PASSWORD);

    // A provider that takes 150 ms: every order takes at least that long.
    let (status, body) = cluster.set_payment(owner, &admin, 0.0, 150);
    assert_eq!(status, 200, "payment settings: {body}");
    for n in 0..3 {
        let (status, _, body) = buy(addr, &token, product, &format!("adm-warm-{n}"));
        assert_eq!(status, 201, "a warm-up order: {body}");
    }

    // 100 ms is less than an order takes: refused at once, nothing placed.
    let added = add_to_cart_at(addr, &token, (product, 1), None, REQUEST_TIMEOUT);
    assert!(matches!(added, Some((200 | 201, _))), "add: {added:?}");
    let started = Instant::now();
    let (status, retry_after, body) = checkout(addr, &token, "adm-short", Some(100));
    let took = started.elapsed();
    assert_eq!(status, 503, "a checkout with a 100 ms budget: {body}");
    assert_eq!(body["order_placed"], false, "the body says so: {body}");
    assert!(
        retry_after
            .as_deref()
            .is_some_and(|s| s.parse::<u64>().is_ok_and(|s| s >= 1)),
        "Retry-After in seconds: {retry_after:?}"
    );
    assert!(
        took < Duration::from_millis(150),
        "refused before any work: took {took:?}"
    );
    let (status, _, body) = checkout(addr, &token, "adm-short", None);
    assert_eq!(status, 201, "the retry creates the order: {body}");

    // A malformed budget is the client's error.
    let (status, _, body) = checkout(addr, &token, "adm-bad", Some(0));
    assert_eq!(status, 400, "a budget of 0 ms: {body}");
}

#[test]
fn an_order_whose_client_is_gone_before_it_is_proposed_is_never_placed() {
    let cluster = ready_cluster();
    let owner = owner_gateway(&cluster);
    let addr = cluster.http_addr(owner);
    let admin = cluster.admin_token(owner);
    let product = stocked_products(&cluster, 1)[0].id;
    let token = cluster.login(owner, "user042", DEMO_PASSWORD);

    // Fast orders first, so the owner expects a new one to be quick.
    for n in 0..3 {
        let (status, _, body) = buy(addr, &token, product, &format!("gone-warm-{n}"));
        assert_eq!(status, 201, "a warm-up order: {body}");
    }
    // Then the provider slows to 1 s: an order admitted with a 600 ms
    // budget is paid after its client has gone. (A busy machine can make
    // even the warm-up orders slow enough that the owner refuses at once,
    // with "order_placed": false; then the next key is tried.)
    let (status, body) = cluster.set_payment(owner, &admin, 0.0, 1_000);
    assert_eq!(status, 200, "payment settings: {body}");
    let added = add_to_cart_at(addr, &token, (product, 1), None, REQUEST_TIMEOUT);
    assert!(matches!(added, Some((200 | 201, _))), "add: {added:?}");
    let mut gone = None;
    for attempt in 0..5 {
        let key = format!("gone-{attempt}");
        let (status, _, body) = checkout(addr, &token, &key, Some(600));
        assert_eq!(status, 503, "no answer within 600 ms: {body}");
        if body["order_placed"] != false {
            gone = Some(key);
            break;
        }
    }
    let gone = gone.expect("one of 5 checkouts admitted");

    // The owner drops it once paid; it never shows in the orders.
    cluster.expect_within(
        Instant::now(),
        Duration::from_secs(10),
        "the owner counts an order dropped for its deadline",
        |c| refused_for_deadline(c.http_addr(owner)).is_some_and(|n| n >= 1.0),
    );
    let orders = cluster.user_orders(owner, &token).expect("orders");
    assert!(
        !orders.iter().any(|o| o["idempotency_key"] == gone.as_str()),
        "the order of a client that was gone was placed: {orders:?}"
    );
    let (status, body) = cluster.set_payment(owner, &admin, 0.0, 5);
    assert_eq!(status, 200, "payment settings: {body}");
    let (status, _, body) = checkout(addr, &token, &gone, None);
    assert_eq!(status, 201, "the retry creates the order: {body}");
}
