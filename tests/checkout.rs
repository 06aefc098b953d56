//! Checkout on a cluster of real `bazaar node` processes.
//!
//! What it holds checkout to (see `DESIGN.md`, "Guarantees", and
//! `actors/src/checkout/`):
//! - a purchase through any gateway is confirmed once per idempotency key,
//!   totals what the cart held at catalog prices, shows on every node and
//!   lowers the catalog's stock by what was sold;
//! - an acknowledged order is never lost and never duplicated through the
//!   SIGKILL of the checkout owner, and the survivors take orders again
//!   within a second of seeing it die, in a higher epoch;
//! - a frozen owner confirms nothing once the survivors moved to a new
//!   epoch, and after it resumes one owner remains;
//! - a failing payment provider is restarted by its supervisor and never
//!   yields an order.
//!
//! Timings are printed (`cargo test --test checkout -- --nocapture`).

mod support;

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{
    expect_stock, max_gap_ms, order_problems, restock, settled_orders, stock_after,
    stocked_products, unix_ms, Ack, OrderLog, Orderer, OrdererConfig, Product, TestCluster,
    DEMO_PASSWORD, SETTLE_TIMEOUT,
};

/// Time a fresh cluster gets to be up and ready everywhere.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Longest the survivors may take, after they see the owner die, to
/// acknowledge an order again.
const MAX_FAILOVER_GAP_MS: u64 = 1000;
/// Stock given to the products the background clients buy.
const RESTOCK: u64 = 5000;

/// Starts a 3-node cluster and waits until every node is up and ready
/// (readiness includes a known checkout owner).
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

/// The checkout owner's number and epoch, once every node agrees on them.
fn owner(cluster: &TestCluster) -> (usize, u64) {
    let mut agreed = None;
    cluster.expect_within(
        Instant::now(),
        READY_TIMEOUT,
        "one checkout owner everywhere",
        |c| {
            agreed = c.agreed_owner(&[1, 2, 3]);
            agreed.is_some()
        },
    );
    let (name, epoch) = agreed.expect("an owner");
    let i = cluster.index_of(&name).expect("the owner is a node");
    println!("checkout owner {name} in epoch {epoch}");
    (i, epoch)
}

/// The nodes other than the checkout `owner`, an admin token from the
/// first of them, and two products restocked through it to [`RESTOCK`]:
/// plenty, so that clients buy as fast as the cluster confirms.
fn survivors_with_stock(cluster: &TestCluster, owner: usize) -> (Vec<usize>, String, Vec<Product>) {
    let survivors: Vec<usize> = (1..=3).filter(|&i| i != owner).collect();
    let admin = cluster.admin_token(survivors[0]);
    let products = restock(
        cluster,
        survivors[0],
        &admin,
        &stocked_products(cluster, 2),
        RESTOCK,
    );
    (survivors, admin, products)
}

/// Prints what an orderer saw and returns its failures.
fn report(log: &OrderLog) -> Vec<String> {
    let epochs: BTreeMap<u64, usize> = log.acks.iter().fold(BTreeMap::new(), |mut m, a| {
        *m.entry(a.epoch).or_default() += 1;
        m
    });
    let retried = log.acks.iter().filter(|a| a.attempts > 1).count();
    let reused = log.acks.iter().filter(|a| a.status == 200).count();
    println!(
        "client {}: {} orders acknowledged (per epoch {epochs:?}), {} checkout requests \
         {:?}, {retried} needed retries, {reused} answered 200 (existing order), \
         max gap between acks {} ms",
        log.tag,
        log.acks.len(),
        log.checkout_requests,
        log.outcomes,
        log.max_gap_ms()
    );
    log.failures.clone()
}

/// Keeps every node's log of a failing test (the cluster's directory is
/// removed on drop) and fails with `failures`; does nothing if there are none.
fn fail_on(cluster: &TestCluster, test: &str, failures: &[String]) {
    if failures.is_empty() {
        return;
    }
    let mut kept = Vec::new();
    for i in cluster.all() {
        let path = std::env::temp_dir().join(format!("bazaar-{test}-{}-n{i}.log", unix_ms()));
        if std::fs::write(&path, cluster.log(i)).is_ok() {
            kept.push(path.display().to_string());
        }
    }
    panic!(
        "{} problems:\n{}\nnode logs kept in {kept:?}",
        failures.len(),
        failures.join("\n")
    );
}

/// Prints the acknowledgements of `log` around `at_ms` (one before, two after).
fn print_around(log: &OrderLog, at_ms: u64) {
    let first_after = log
        .acks
        .iter()
        .position(|a| a.at_ms > at_ms)
        .unwrap_or(log.acks.len());
    for ack in &log.acks[first_after.saturating_sub(1)..(first_after + 2).min(log.acks.len())] {
        println!(
            "  {}: {} {} epoch {} items {:?}, sent {:+} ms, answered {:+} ms, {} attempts",
            ack.key,
            ack.status,
            ack.order_id,
            ack.epoch,
            ack.items(),
            ack.sent_ms as i64 - at_ms as i64,
            ack.at_ms as i64 - at_ms as i64,
            ack.attempts
        );
    }
}

/// A buyer of one unit of `product` per order as `user`, checking out
/// through `checkout_node` and changing its cart through `cart_node`; 2 s
/// per checkout request, 15 s per key.
fn buyer(
    cluster: &TestCluster,
    tag: &str,
    user: &str,
    (checkout_node, cart_node): (usize, usize),
    product: u64,
) -> OrdererConfig {
    OrdererConfig {
        tag: tag.to_string(),
        user: user.to_string(),
        token: cluster.login(cart_node, user, DEMO_PASSWORD),
        checkout_at: cluster.http_addr(checkout_node),
        cart_at: cluster.http_addr(cart_node),
        product,
        timeout: Duration::from_secs(2),
        key_deadline: Duration::from_secs(15),
    }
}

#[test]
fn a_purchase_end_to_end() {
    let cluster = ready_cluster();
    owner(&cluster);
    let user = "user001";
    let token = cluster.login(1, user, DEMO_PASSWORD);
    let admin = cluster.admin_token(2);
    let products = stocked_products(&cluster, 2);
    let quantities = [2u64, 3];
    let before: BTreeMap<u64, u64> = products.iter().map(|p| (p.id, p.stock)).collect();
    expect_stock(&cluster, &[1, 2, 3], &before);

    for (product, quantity) in products.iter().zip(quantities) {
        let (status, cart) = cluster
            .add_to_cart(1, &token, product.id, quantity as u32, None)
            .expect("n1 answers a cart change");
        assert_eq!(status, 200, "add {} x{quantity}: {cart}", product.id);
    }

    let sent_ms = unix_ms();
    let started = Instant::now();
    let (status, order) = cluster
        .checkout(1, &token, Some("buy-1"))
        .expect("n1 answers a checkout");
    let confirmed = Instant::now();
    println!("checkout answered {status} in {:?}", started.elapsed());
    assert_eq!(status, 201, "a new order: {order}");
    let total: u64 = products
        .iter()
        .zip(quantities)
        .map(|(p, q)| p.price_cents * q)
        .sum();
    assert_eq!(order["total_cents"], total, "total of {order}");
    assert_eq!(order["status"], "confirmed", "{order}");
    assert_eq!(order["user"], user, "{order}");
    assert_eq!(order["idempotency_key"], "buy-1", "{order}");
    assert!(order["epoch"].as_u64().is_some_and(|e| e >= 1), "{order}");
    assert!(
        order["payment_id"].as_str().is_some_and(|p| !p.is_empty()),
        "a payment reference: {order}"
    );
    assert!(
        order["order_id"].as_str().is_some_and(|id| !id.is_empty()),
        "{order}"
    );
    let created = order["created_ms"].as_u64().expect("created_ms");
    assert!(
        (sent_ms.saturating_sub(1000)..=unix_ms() + 1000).contains(&created),
        "created_ms {created} while the request ran from {sent_ms}"
    );
    let items: Vec<(u64, String, u64, u64)> = order["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|item| {
            (
                item["product_id"].as_u64().expect("product_id"),
                item["name"].as_str().expect("name").to_string(),
                item["quantity"].as_u64().expect("quantity"),
                item["price_cents"].as_u64().expect("price_cents"),
            )
        })
        .collect();
    let mut expected: Vec<(u64, String, u64, u64)> = products
        .iter()
        .zip(quantities)
        .map(|(p, q)| (p.id, p.name.clone(), q, p.price_cents))
        .collect();
    expected.sort();
    let mut sorted = items.clone();
    sorted.sort();
    assert_eq!(sorted, expected, "items of {order}");

    // The same key again, through any gateway: the same order, not a new one.
    for i in [1, 3] {
        let (status, again) = cluster
            .checkout(i, &token, Some("buy-1"))
            .expect("a checkout answer");
        assert_eq!(status, 200, "n{i}: the key's order again: {again}");
        assert_eq!(again, order, "n{i}: a retried key gave another order");
    }
    let (status, body) = cluster.checkout(1, &token, None).expect("n1 answers");
    assert_eq!(status, 400, "checkout without a key: {body}");
    assert!(body["error"].is_string(), "a JSON error: {body}");

    // The owner empties the cart in the background; then there is nothing to buy.
    let took = cluster.expect_within(
        Instant::now(),
        SETTLE_TIMEOUT,
        "the cart emptied after the order",
        |c| c.cart_items(1, &token) == Some(Vec::new()),
    );
    println!("cart empty {took:?} after the order");
    let (status, body) = cluster
        .checkout(2, &token, Some("buy-2"))
        .expect("n2 answers");
    assert_eq!(status, 409, "checkout of an empty cart: {body}");
    assert!(body["error"].is_string(), "a JSON error: {body}");

    // The order shows on every node, to the user and to the admin.
    for i in [1, 2, 3] {
        let took = cluster.expect_within(
            confirmed,
            2 * SETTLE_TIMEOUT,
            &format!("n{i} lists the order"),
            |c| {
                c.user_orders(i, &token)
                    .is_some_and(|orders| !orders.is_empty())
            },
        );
        let orders = cluster.user_orders(i, &token).expect("orders");
        assert_eq!(
            orders,
            std::slice::from_ref(&order),
            "n{i}: the user's orders"
        );
        let all = settled_orders(&cluster, &[i], &admin, &[]);
        let mine: Vec<&Value> = all.iter().filter(|o| o["user"] == user).collect();
        assert_eq!(mine, [&order], "n{i}: the admin's list");
        println!("n{i} lists the order {took:?} after it was confirmed");
    }
    let sold: BTreeMap<u64, u64> = products
        .iter()
        .zip(quantities)
        .map(|(p, q)| (p.id, p.stock - q))
        .collect();
    expect_stock(&cluster, &[1, 2, 3], &sold);
}

/// When each of `observers` first reported `member` down, ms since the
/// Unix epoch (its `since_ms`); waits up to `timeout` from `start`.
fn reported_down(
    cluster: &TestCluster,
    observers: &[usize],
    member: usize,
    start: Instant,
    timeout: Duration,
) -> Vec<(usize, u64, Duration)> {
    let name = cluster.name(member);
    let mut seen: BTreeMap<usize, (u64, Duration)> = BTreeMap::new();
    cluster.expect_within(start, timeout, &format!("{name} reported down"), |c| {
        for &i in observers {
            if seen.contains_key(&i) {
                continue;
            }
            let Some(view) = c.cluster_json(i) else {
                continue;
            };
            let down = view["members"].as_array().and_then(|members| {
                members
                    .iter()
                    .find(|m| m["name"] == name.as_str() && m["state"] == "down")
            });
            if let Some(member) = down {
                let since = member["since_ms"].as_u64().unwrap_or_else(unix_ms);
                seen.insert(i, (since, start.elapsed()));
            }
        }
        seen.len() == observers.len()
    });
    seen.into_iter().map(|(i, (ms, at))| (i, ms, at)).collect()
}

#[test]
fn owner_kill_loses_and_duplicates_nothing() {
    let mut cluster = ready_cluster();
    let (dead, old_epoch) = owner(&cluster);
    let (survivors, admin, products) = survivors_with_stock(&cluster, dead);
    let users = ["user011", "user012"];
    let clients: Vec<Orderer> = (0..2)
        .map(|k| {
            let gateway = survivors[k];
            let tag = ["A", "B"][k];
            Orderer::start(buyer(
                &cluster,
                tag,
                users[k],
                (gateway, gateway),
                products[k].id,
            ))
        })
        .collect();

    let started = Instant::now();
    cluster.expect_within(
        started,
        Duration::from_secs(10),
        "both clients ordering for 1.5 s",
        |_| {
            started.elapsed() >= Duration::from_millis(1500)
                && clients.iter().all(|c| c.acked() >= 3)
        },
    );
    let before_kill: Vec<u64> = clients.iter().map(Orderer::acked).collect();
    let kill_ms = unix_ms();
    let killed = Instant::now();
    cluster.kill(dead);
    println!("killed owner n{dead} (epoch {old_epoch}) after {before_kill:?} orders");
    let downs = reported_down(&cluster, &survivors, dead, killed, Duration::from_secs(5));
    let detected_ms = downs.iter().map(|(_, ms, _)| *ms).max().expect("survivors");
    for (i, ms, polled) in &downs {
        println!(
            "n{i} reports n{dead} down since {} ms after the kill (seen by polling after {polled:?})",
            *ms as i64 - kill_ms as i64
        );
    }
    cluster.wait_until_since(killed, Duration::from_secs(3), |_| false);
    let logs: Vec<OrderLog> = clients.into_iter().map(Orderer::stop).collect();
    println!("clients stopped {:?} after the kill", killed.elapsed());

    let mut failures: Vec<String> = logs.iter().flat_map(report).collect();
    println!("orders acknowledged around the kill (times from the kill):");
    for log in &logs {
        print_around(log, kill_ms);
    }
    let acks: Vec<&Ack> = logs.iter().flat_map(|log| &log.acks).collect();
    let mut agreed = None;
    cluster.expect_within(
        Instant::now(),
        Duration::from_secs(5),
        "one owner among the survivors",
        |c| {
            agreed = c.agreed_owner(&survivors);
            agreed.is_some()
        },
    );
    let (new_owner, new_epoch) = agreed.expect("an owner");
    println!("new owner {new_owner} in epoch {new_epoch}");
    assert_ne!(
        new_owner,
        cluster.name(dead),
        "the dead node is still the owner"
    );
    assert!(new_epoch > old_epoch, "epoch {new_epoch} after {old_epoch}");

    let orders = settled_orders(&cluster, &survivors, &admin, &acks);
    failures.extend(order_problems(&acks, &orders, &users));
    for order in &orders {
        let epoch = order["epoch"].as_u64().unwrap_or(0);
        let created = order["created_ms"].as_u64().unwrap_or(0);
        if created > kill_ms && epoch <= old_epoch {
            failures.push(format!(
                "confirmed after the kill in the dead owner's epoch: {order}"
            ));
        }
    }

    // Timings: detection, first order of the new owner, pauses.
    let after: Vec<&&Ack> = acks.iter().filter(|a| a.epoch > old_epoch).collect();
    let first_after = after.iter().map(|a| a.at_ms).min();
    let gap_all = max_gap_ms(acks.iter().map(|a| a.at_ms));
    println!(
        "kill -> detection (survivors report down): {} ms",
        detected_ms as i64 - kill_ms as i64
    );
    match first_after {
        Some(first) => println!(
            "detection -> first acknowledged order in a new epoch: {} ms (kill -> it: {} ms); \
             {} orders after the kill; max gap between consecutive acks: {gap_all} ms",
            first as i64 - detected_ms as i64,
            first - kill_ms,
            after.len()
        ),
        None => failures.push("no order acknowledged in a new epoch after the kill".into()),
    }
    if let Some(first) = first_after {
        if first.saturating_sub(detected_ms) >= MAX_FAILOVER_GAP_MS {
            failures.push(format!(
                "first order after the kill {} ms after detection (limit {MAX_FAILOVER_GAP_MS} ms)",
                first - detected_ms
            ));
        }
    }
    fail_on(&cluster, "owner_kill", &failures);

    expect_stock(&cluster, &survivors, &stock_after(&products, &acks));
}

/// How long the owner stays frozen.
const FREEZE: Duration = Duration::from_secs(10);

#[test]
fn a_frozen_owner_confirms_nothing_and_one_owner_remains() {
    let cluster = ready_cluster();
    let (frozen, old_epoch) = owner(&cluster);
    let frozen_name = cluster.name(frozen);
    let (survivors, admin, products) = survivors_with_stock(&cluster, frozen);
    let users = ["user021", "user022"];
    // S orders through a survivor; F checks out through the frozen node
    // (its cart through the other survivor, so that it is stuck at checkout).
    // Short timeouts: a request to the frozen node hangs.
    let timeout = Duration::from_secs(1);
    let s = Orderer::start(OrdererConfig {
        timeout,
        key_deadline: Duration::from_secs(20),
        ..buyer(
            &cluster,
            "S",
            users[0],
            (survivors[0], survivors[0]),
            products[0].id,
        )
    });
    let f = Orderer::start(OrdererConfig {
        timeout,
        key_deadline: FREEZE + Duration::from_secs(20),
        ..buyer(
            &cluster,
            "F",
            users[1],
            (frozen, survivors[1]),
            products[1].id,
        )
    });
    cluster.expect_within(
        Instant::now(),
        Duration::from_secs(10),
        "both clients ordering",
        |_| s.acked() >= 2 && f.acked() >= 1,
    );

    let freeze_ms = unix_ms();
    let frozen_at = Instant::now();
    cluster.stop(frozen);
    println!("froze owner {frozen_name} (epoch {old_epoch})");
    let mut promoted = None;
    let took = cluster.expect_within(
        frozen_at,
        Duration::from_millis(3500),
        "a new owner among the survivors",
        |c| {
            promoted = c
                .agreed_owner(&survivors)
                .filter(|(o, e)| *o != frozen_name && *e > old_epoch);
            promoted.is_some()
        },
    );
    let (new_owner, new_epoch) = promoted.expect("a new owner");
    println!("survivors follow {new_owner} in epoch {new_epoch} {took:?} after the freeze");

    // While frozen: never two survivors acting as owner at once.
    let mut owners_seen = BTreeSet::new();
    cluster.wait_until_since(frozen_at, FREEZE, |c| {
        let views: Vec<_> = survivors
            .iter()
            .filter_map(|&i| c.checkout_view(i))
            .collect();
        let acting: Vec<_> = views.iter().filter(|v| v.role == "owner").collect();
        assert!(
            acting.len() <= 1,
            "two owners while n{frozen} is frozen: {views:?}"
        );
        owners_seen.extend(acting.iter().map(|v| (v.node.clone(), v.epoch)));
        false
    });
    let s_during = s.acked();
    let cont_ms = unix_ms();
    let resumed = Instant::now();
    cluster.cont(frozen);
    println!(
        "resumed {frozen_name} after {:?}; owners reported while frozen: {owners_seen:?}",
        frozen_at.elapsed()
    );

    let mut agreed = None;
    let took = cluster.expect_within(
        resumed,
        Duration::from_secs(5),
        "one owner and epoch on all three nodes",
        |c| {
            agreed = c.agreed_owner(&[1, 2, 3]);
            agreed.is_some()
        },
    );
    let (final_owner, final_epoch) = agreed.expect("an owner");
    println!("all nodes follow {final_owner} in epoch {final_epoch} {took:?} after the resume");
    assert!(
        final_epoch >= new_epoch,
        "epoch went back: {final_epoch} < {new_epoch}"
    );
    // Both clients order once more after the resume, F through the resumed node.
    let (s_now, f_now) = (s.acked(), f.acked());
    cluster.expect_within(
        Instant::now(),
        Duration::from_secs(10),
        "orders after the resume",
        |_| s.acked() > s_now && f.acked() > f_now,
    );
    let logs = [s.stop(), f.stop()];

    let mut failures: Vec<String> = logs.iter().flat_map(report).collect();
    println!("orders acknowledged around the freeze (times from the freeze):");
    for log in &logs {
        print_around(log, freeze_ms);
    }
    let acks: Vec<&Ack> = logs.iter().flat_map(|log| &log.acks).collect();
    let acked_while_frozen = logs[0]
        .acks
        .iter()
        .filter(|a| a.at_ms > freeze_ms && a.at_ms < cont_ms)
        .count();
    println!("S: {acked_while_frozen} orders acknowledged while the owner was frozen ({s_during} in all by the resume)");
    if acked_while_frozen == 0 {
        failures.push("no order acknowledged through a survivor while the owner was frozen".into());
    }
    for ack in &logs[1].acks {
        println!(
            "F: {} -> {} epoch {} at {:+} ms from the freeze after {} attempts",
            ack.key,
            ack.order_id,
            ack.epoch,
            ack.at_ms as i64 - freeze_ms as i64,
            ack.attempts
        );
        if ack.at_ms > freeze_ms + 100 && ack.at_ms < cont_ms {
            failures.push(format!(
                "the frozen node answered 2xx while frozen: {}",
                ack.order
            ));
        }
    }
    let orders = settled_orders(&cluster, &[1, 2, 3], &admin, &acks);
    failures.extend(order_problems(&acks, &orders, &users));
    for order in &orders {
        let epoch = order["epoch"].as_u64().unwrap_or(0);
        let created = order["created_ms"].as_u64().unwrap_or(0);
        if epoch == old_epoch && created > freeze_ms + 50 {
            failures.push(format!(
                "confirmed by the frozen owner's epoch after the freeze: {order}"
            ));
        }
    }
    fail_on(&cluster, "frozen_owner", &failures);
    expect_stock(&cluster, &[1, 2, 3], &stock_after(&products, &acks));
}

#[test]
fn payment_failures_are_supervised_and_never_confirm_unpaid_orders() {
    let cluster = ready_cluster();
    let (owner_node, epoch) = owner(&cluster);
    let admin = cluster.admin_token(1);
    let before = cluster.payment_restarts(1, owner_node);
    assert_eq!(
        before,
        Some(0),
        "payment-worker restarts of n{owner_node} before any failure"
    );
    let (status, body) = cluster.set_payment(1, &admin, 0.5, 5);
    assert_eq!(status, 200, "payment settings: {body}");
    assert_eq!(
        body["updated_nodes"], 3,
        "every node took the settings: {body}"
    );

    let products = stocked_products(&cluster, 1);
    let user = "user031";
    let gateway = if owner_node == 1 { 2 } else { 1 };
    let client = Orderer::start(OrdererConfig {
        timeout: Duration::from_secs(5),
        key_deadline: Duration::from_secs(20),
        ..buyer(&cluster, "P", user, (gateway, gateway), products[0].id)
    });
    let took = cluster.expect_within(
        Instant::now(),
        Duration::from_secs(60),
        "10 orders with a failing provider",
        |_| client.acked() >= 10,
    );
    let log = client.stop();
    println!("{} orders in {took:?}", log.acks.len());
    let mut failures = report(&log);
    let unavailable = log.outcomes.get("503").copied().unwrap_or(0);

    let mut restarts = None;
    cluster.expect_within(
        Instant::now(),
        SETTLE_TIMEOUT,
        "payment-worker restarts reported",
        |c| {
            restarts = c.payment_restarts(gateway, owner_node);
            restarts.is_some_and(|r| r > 0)
        },
    );
    println!("payment-worker of n{owner_node} restarted {restarts:?} times; {unavailable} checkouts answered 503");
    let agreed = cluster.agreed_owner(&[1, 2, 3]);
    assert_eq!(
        agreed,
        Some((cluster.name(owner_node), epoch)),
        "payment failures moved the owner"
    );

    let acks: Vec<&Ack> = log.acks.iter().collect();
    let orders = settled_orders(&cluster, &[1, 2, 3], &admin, &acks);
    failures.extend(order_problems(&acks, &orders, &[user]));
    let mine: Vec<&Value> = orders.iter().filter(|o| o["user"] == user).collect();
    let payments: BTreeSet<&str> = mine
        .iter()
        .filter_map(|o| o["payment_id"].as_str())
        .filter(|p| !p.is_empty())
        .collect();
    if payments.len() != mine.len() {
        failures.push(format!("orders without a distinct payment_id: {mine:?}"));
    }
    if mine.len() != log.acks.len() {
        failures.push(format!(
            "{} orders of {user} for {} acknowledged keys",
            mine.len(),
            log.acks.len()
        ));
    }
    let token = cluster.login(gateway, user, DEMO_PASSWORD);
    let listed = cluster.user_orders(gateway, &token).map(|o| o.len());
    if listed != Some(log.acks.len()) {
        failures.push(format!(
            "GET /api/orders lists {listed:?} orders for {} acknowledged",
            log.acks.len()
        ));
    }

    let (status, body) = cluster.set_payment(1, &admin, 0.0, 5);
    assert_eq!(status, 200, "payment reset: {body}");
    fail_on(&cluster, "payment_failures", &failures);
    expect_stock(&cluster, &[1, 2, 3], &stock_after(&products, &acks));
}
