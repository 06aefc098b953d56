//! The cart on a cluster of real `bazaar node` processes.
//!
//! What it holds the cart to (see `actors/src/cart/mod.rs`):
//! - a cart changed through any gateway reads the same through every
//!   gateway; bad input gets a JSON 4xx; a change retried with the same
//!   `Idempotency-Key` is applied once;
//! - an acknowledged cart survives the SIGKILL of the node owning its
//!   shard: the other gateways serve it complete within a few seconds,
//!   changes keep working, and the owner that comes back serves it too.
//!
//! Timings are printed (`cargo test --test cart -- --nocapture`).

mod support;

use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{TestCluster, DEMO_PASSWORD};

/// Time a fresh cluster gets to be up and ready everywhere.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Time the survivors get to serve a dead owner's carts.
const FAILOVER_TIMEOUT: Duration = Duration::from_secs(8);

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
