//! The cart on a cluster of real `bazaar node` processes.
//!
//! What it holds the cart to (see `actors/src/cart/mod.rs`):
//! - a cart changed through any gateway reads the same through every
//!   gateway; bad input gets a JSON 4xx; a change retried with the same
//!   `Idempotency-Key` is applied once;
//! - an acknowledged cart survives the SIGKILL of the node owning its
//!   shard: the other gateways serve it complete within a few seconds,
//!   changes keep working, and the owner that comes back serves it too;
//! - a node whose view does not reach a majority of the voters refuses
//!   every cart request at once (503 with `Retry-After` in under
//!   [`REFUSAL_BUDGET`]), even while it still has a membership quorum of
//!   `--expect`, and serves again once the voters are back.
//!
//! Timings are printed (`cargo test --test cart -- --nocapture`).

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{Options, TestCluster, DEMO_PASSWORD};

/// Time a fresh cluster gets to be up and ready everywhere.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Time the survivors get to serve a dead owner's carts.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(8);
/// Time a node gets to declare frozen peers down.
const DOWN_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a refusal without a majority may take, HTTP round trip included.
const REFUSAL_BUDGET: Duration = Duration::from_millis(100);

/// Starts a 3-node cluster and waits until every node is up and ready.
fn ready_cluster() -> TestCluster {
    let cluster = TestCluster::start(3);
    let took = cluster.expect_within(
        Instant::now(),
        READY_TIMEOUT,
        "n1, n2, n3 all up and /readyz 200",
        |c| c.all_up(&[1, 2, 3]) && c.all_ready(&[1, 2, 3]),
    );
    println!("cluster up and ready in {took:?}");
    cluster
}

/// `(product_id, quantity)` pairs of a cart answer, in product order.
fn items(cart: &Value) -> Vec<(u64, u64)> {
    cart["items"]
        .as_array()
        .unwrap_or_else(|| panic!("a cart without items: {cart}"))
        .iter()
        .map(|item| {
            let id = item["product_id"].as_u64().expect("product_id");
            let quantity = item["quantity"].as_u64().expect("quantity");
            (id, quantity)
        })
        .collect()
}

/// The cart answer of a change or read that must succeed.
fn ok(what: &str, answer: Option<(u16, Value)>) -> Value {
    match answer {
        Some((200, cart)) => cart,
        Some((status, body)) => panic!("{what}: {status} {body}"),
        None => panic!("{what}: no answer"),
    }
}

/// The owner of `user`'s cart shard as node `i` reports it.
fn cart_owner(cluster: &TestCluster, i: usize, user: &str) -> Option<String> {
    let shard = bazaar_actors::cart::shard_of(user);
    let view = cluster.view(i)?;
    view["cart_shards"]
        .as_array()?
        .iter()
        .find(|s| s["shard"].as_u64() == Some(u64::from(shard)))
        .and_then(|s| s["owner"].as_str())
        .map(str::to_string)
}

/// Whether node `observer` reports every node of `members` down.
fn sees_down(cluster: &TestCluster, observer: usize, members: &[usize]) -> bool {
    members
        .iter()
        .all(|&m| cluster.state_of(observer, m).as_deref() == Some("down"))
}

/// Sends a cart request to node `i` that must be refused at once: asserts
/// a 503 with `Retry-After` within [`REFUSAL_BUDGET`]; returns the time.
fn refused_at_once(cluster: &TestCluster, i: usize, token: &str, change: bool) -> Duration {
    let client = reqwest::blocking::Client::builder()
        .timeout(FAILOVER_TIMEOUT)
        .pool_max_idle_per_host(0)
        .build()
        .expect("http client");
    let url = format!("http://{}/api/cart", cluster.http_addr(i));
    let request = if change {
        client
            .post(format!("{url}/items"))
            .json(&json!({ "product_id": 1, "quantity": 1 }))
    } else {
        client.get(url)
    };
    let started = Instant::now();
    let response = request
        .bearer_auth(token)
        .send()
        .unwrap_or_else(|e| panic!("n{i}: no answer: {e}"));
    let took = started.elapsed();
    let status = response.status().as_u16();
    let retry_after = response.headers().get("retry-after").cloned();
    let body = response.text().unwrap_or_default();
    assert_eq!(status, 503, "n{i} served a cart without a majority: {body}");
    assert!(retry_after.is_some(), "n{i}: a 503 without Retry-After");
    assert!(
        took < REFUSAL_BUDGET,
        "n{i}: the refusal took {took:?}: {body}"
    );
    took
}

#[test]
fn a_cart_reads_the_same_through_every_gateway() {
    let cluster = ready_cluster();
    let token = cluster.login(1, "user002", DEMO_PASSWORD);

    let cart = ok("add on n1", cluster.add_to_cart(1, &token, 42, 2, None));
    assert_eq!(items(&cart), [(42, 2)]);
    assert_eq!(cart["user"], "user002");
    ok("add on n2", cluster.add_to_cart(2, &token, 7, 1, None));
    ok("add on n3", cluster.add_to_cart(3, &token, 42, 1, None));
    let cart = ok("remove on n1", cluster.remove_from_cart(1, &token, 7));
    assert_eq!(items(&cart), [(42, 3)]);
    assert_eq!(cart["version"], 4);
    for i in 1..=3 {
        let read = ok(&format!("get on n{i}"), cluster.cart(i, &token));
        assert_eq!(read, cart, "n{i} serves another cart");
    }

    // A retry with the same key is applied once, through any node.
    let first = ok(
        "keyed add",
        cluster.add_to_cart(2, &token, 9, 1, Some("add-9")),
    );
    let retry = ok(
        "keyed retry",
        cluster.add_to_cart(3, &token, 9, 1, Some("add-9")),
    );
    assert_eq!(retry, first, "a retried change was applied twice");
    assert_eq!(items(&retry), [(9, 1), (42, 3)]);

    // Bad input: JSON errors, the cart untouched.
    let bad = [
        (json!({ "product_id": 1, "quantity": 0 }), 422),
        (json!({ "product_id": 1, "quantity": 100 }), 422),
        (
            json!({ "product_id": 1, "quantity": 1, "coupon": "x" }),
            422,
        ),
        (json!({ "product_id": 999_999, "quantity": 1 }), 404),
    ];
    for (body, expected) in bad {
        let (status, answer) = cluster
            .cart_request(
                1,
                reqwest::Method::POST,
                "/api/cart/items",
                &token,
                Some(&body),
                None,
            )
            .expect("n1 answers");
        assert_eq!(status, expected, "POST {body}: {answer}");
        assert!(answer["error"].is_string(), "not a JSON error: {answer}");
    }
    let (status, _) = cluster
        .cart_request(
            1,
            reqwest::Method::GET,
            "/api/cart",
            "not-a-token",
            None,
            None,
        )
        .expect("n1 answers");
    assert_eq!(status, 401);
    let read = ok("get after bad input", cluster.cart(1, &token));
    assert_eq!(read, retry, "bad input changed the cart");
}

#[test]
fn a_cart_survives_the_kill_of_its_owner() {
    let mut cluster = ready_cluster();
    let user = "user001";
    let token = cluster.login(1, user, DEMO_PASSWORD);

    // Every node must agree on the owner before the test relies on it.
    let mut owner = None;
    cluster.expect_within(
        Instant::now(),
        READY_TIMEOUT,
        "one cart owner everywhere",
        |c| {
            let seen: Vec<Option<String>> = (1..=3).map(|i| cart_owner(c, i, user)).collect();
            owner = seen[0].clone();
            owner.is_some() && seen.iter().all(|o| *o == owner)
        },
    );
    let owner_name = owner.expect("an owner");
    let dead: usize = owner_name[1..].parse().expect("node names are n<i>");
    let survivors: Vec<usize> = (1..=3).filter(|&i| i != dead).collect();
    println!("{user}'s cart is owned by {owner_name}");

    for (product, quantity) in [(11, 1), (12, 2), (13, 3)] {
        ok(
            "add before the kill",
            cluster.add_to_cart(dead, &token, product, quantity, None),
        );
    }
    let before = ok("get before the kill", cluster.cart(survivors[0], &token));
    assert_eq!(items(&before), [(11, 1), (12, 2), (13, 3)]);

    cluster.kill(dead);
    let killed = Instant::now();
    for &i in &survivors {
        let took = cluster.expect_within(
            killed,
            FAILOVER_TIMEOUT,
            "survivor serves the cart",
            |c| matches!(c.cart(i, &token), Some((200, cart)) if cart == before),
        );
        println!("n{i} serves the complete cart {took:?} after the kill");
    }
    let after = ok(
        "add after the kill",
        cluster.add_to_cart(survivors[0], &token, 14, 4, None),
    );
    assert_eq!(after["version"], 4);
    let read = ok("get after the kill", cluster.cart(survivors[1], &token));
    assert_eq!(read, after);

    cluster.start_node(dead);
    let restarted = Instant::now();
    cluster.expect_within(restarted, READY_TIMEOUT, "the owner back and ready", |c| {
        c.all_up(&[1, 2, 3]) && c.all_ready(&[1, 2, 3])
    });
    let took = cluster.expect_within(
        restarted,
        FAILOVER_TIMEOUT,
        "the same cart everywhere",
        |c| (1..=3).all(|i| matches!(c.cart(i, &token), Some((200, cart)) if cart == after)),
    );
    println!("every node serves the cart {took:?} after the restart");
    assert_eq!(
        cart_owner(&cluster, dead, user).as_deref(),
        Some(owner_name.as_str())
    );
    let last = ok(
        "add after the restart",
        cluster.add_to_cart(dead, &token, 15, 5, None),
    );
    assert_eq!(last["version"], 5);
    assert_eq!(items(&last).len(), 5);
}

#[test]
fn a_cart_survives_a_frozen_owner() {
    let cluster = ready_cluster();
    let user = "user003";
    let token = cluster.login(1, user, DEMO_PASSWORD);
    let mut owner = None;
    cluster.expect_within(
        Instant::now(),
        READY_TIMEOUT,
        "one cart owner everywhere",
        |c| {
            let seen: Vec<Option<String>> = (1..=3).map(|i| cart_owner(c, i, user)).collect();
            owner = seen[0].clone();
            owner.is_some() && seen.iter().all(|o| *o == owner)
        },
    );
    let frozen: usize = owner.expect("an owner")[1..].parse().expect("n<i>");
    let survivors: Vec<usize> = (1..=3).filter(|&i| i != frozen).collect();
    let before = ok(
        "add before the freeze",
        cluster.add_to_cart(frozen, &token, 21, 2, None),
    );

    cluster.stop(frozen);
    let stopped = Instant::now();
    // A change through a survivor waits out failure detection, then lands.
    let after = ok(
        "add while frozen",
        cluster.add_to_cart(survivors[0], &token, 22, 1, None),
    );
    println!("a change landed {:?} after the freeze", stopped.elapsed());
    assert_eq!(items(&after), [(21, 2), (22, 1)]);
    assert_eq!(after["version"], before["version"].as_u64().unwrap() + 1);
    let read = ok("get while frozen", cluster.cart(survivors[1], &token));
    assert_eq!(read, after);

    cluster.cont(frozen);
    let resumed = Instant::now();
    // Never a stale answer: the resumed owner syncs before serving again.
    let took = cluster.expect_within(resumed, READY_TIMEOUT, "the same cart everywhere", |c| {
        let answers: Vec<Option<(u16, Value)>> = (1..=3).map(|i| c.cart(i, &token)).collect();
        for answer in answers.iter().flatten() {
            assert!(
                answer.0 != 200 || answer.1 == after,
                "a stale cart: {}",
                answer.1
            );
        }
        c.all_up(&[1, 2, 3])
            && answers
                .iter()
                .all(|answer| matches!(answer, Some((200, cart)) if *cart == after))
    });
    println!("every node serves the cart {took:?} after the resume");
    let last = ok(
        "add after the resume",
        cluster.add_to_cart(frozen, &token, 23, 1, None),
    );
    assert_eq!(items(&last), [(21, 2), (22, 1), (23, 1)]);
}

#[test]
fn a_node_cut_off_from_the_voters_refuses_carts_at_once() {
    let cluster = ready_cluster();
    let token = cluster.login(3, "user004", DEMO_PASSWORD);
    ok(
        "add before the cut",
        cluster.add_to_cart(3, &token, 5, 1, None),
    );

    cluster.stop(1);
    cluster.stop(2);
    let stopped = Instant::now();
    let took = cluster.expect_within(stopped, DOWN_TIMEOUT, "n3 sees n1 and n2 down", |c| {
        sees_down(c, 3, &[1, 2])
    });
    println!("n3 sees n1 and n2 down {took:?} after the freeze");
    let slowest = (0..5)
        .map(|attempt| refused_at_once(&cluster, 3, &token, attempt % 2 == 0))
        .max()
        .expect("attempts");
    println!("n3 refuses cart requests in at most {slowest:?}");

    cluster.cont(1);
    cluster.cont(2);
    let resumed = Instant::now();
    cluster.expect_within(resumed, READY_TIMEOUT, "n1, n2, n3 up again", |c| {
        c.all_up(&[1, 2, 3])
    });
    // Keyed: a 503 while the shards are handed back leaves the outcome
    // unknown, and the retry must apply the change once.
    let mut cart = None;
    let took = cluster.expect_within(resumed, FAILOVER_TIMEOUT, "n3 serves carts again", |c| {
        cart = match c.add_to_cart(3, &token, 6, 1, Some("after-the-cut")) {
            Some((200, cart)) => Some(cart),
            _ => None,
        };
        cart.is_some()
    });
    println!("n3 serves a change {took:?} after the resume");
    let cart = cart.expect("a cart");
    assert_eq!(
        items(&cart),
        [(5, 1), (6, 1)],
        "a refused change was applied"
    );
    assert_eq!(cart["version"], 2);
}

#[test]
fn a_node_seeing_a_minority_of_the_voters_refuses_carts_at_once() {
    // More nodes than --expect: n3 and n4 keep a membership quorum (2 of
    // 3) without n1 and n2, but only one voter of three.
    let cluster = TestCluster::start_with(4, Options::default().expect(3).voters(&[1, 2, 3]));
    let all = [1, 2, 3, 4];
    cluster.expect_within(Instant::now(), READY_TIMEOUT, "4 nodes up and ready", |c| {
        c.all_up(&all) && c.all_ready(&all)
    });
    let tokens: Vec<String> = (11..17)
        .map(|u| cluster.login(4, &format!("user{u:03}"), DEMO_PASSWORD))
        .collect();

    cluster.stop(1);
    cluster.stop(2);
    let stopped = Instant::now();
    let took = cluster.expect_within(stopped, DOWN_TIMEOUT, "n3, n4 see n1 and n2 down", |c| {
        sees_down(c, 3, &[1, 2]) && sees_down(c, 4, &[1, 2])
    });
    println!("n3 and n4 see n1 and n2 down {took:?} after the freeze");
    let view = cluster.cluster_view(4).expect("n4 answers");
    assert!(
        view.quorum,
        "n4 lost its membership quorum: the test shows nothing"
    );

    let mut slowest = Duration::ZERO;
    for token in &tokens {
        for i in [3, 4] {
            slowest = slowest.max(refused_at_once(&cluster, i, token, true));
        }
    }
    println!("n3 and n4 refuse cart changes in at most {slowest:?}");

    cluster.cont(1);
    cluster.cont(2);
    let resumed = Instant::now();
    cluster.expect_within(resumed, READY_TIMEOUT, "4 nodes up again", |c| {
        c.all_up(&all)
    });
    let took = cluster.expect_within(resumed, FAILOVER_TIMEOUT, "n4 serves carts again", |c| {
        matches!(
            c.add_to_cart(4, &tokens[0], 8, 1, Some("after")),
            Some((200, _))
        )
    });
    println!("n4 serves a change {took:?} after the resume");
}
