//! Checking orders against what clients were told: products to buy,
//! the settled order lists of some nodes, what is wrong with them given
//! the acknowledged orders, and the stock every node must serve.

use std::collections::{BTreeMap, BTreeSet};
use std::thread;
use std::time::Instant;

use serde_json::Value;

use super::orderer::Ack;
use super::{TestCluster, POLL_INTERVAL};

/// How long committed orders and published stock may take to show on a node.
pub const SETTLE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(3);

/// A product of the first page of the catalog.
#[derive(Debug, Clone)]
pub struct Product {
    /// Id.
    pub id: u64,
    /// Name.
    pub name: String,
    /// Unit price.
    pub price_cents: u64,
    /// Stock when chosen.
    pub stock: u64,
}

/// The `count` products of the catalog's first 100 with the most stock.
pub fn stocked_products(cluster: &TestCluster, count: usize) -> Vec<Product> {
    let (status, page) = cluster.get_json(1, "/api/products?offset=0&limit=100");
    assert_eq!(status, 200, "product page: {page}");
    let mut products: Vec<Product> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| Product {
            id: p["id"].as_u64().expect("id"),
            name: p["name"].as_str().expect("name").to_string(),
            price_cents: p["price_cents"].as_u64().expect("price_cents"),
            stock: p["stock"].as_u64().expect("stock"),
        })
        .collect();
    products.sort_by_key(|p| std::cmp::Reverse(p.stock));
    products.truncate(count);
    println!(
        "products (id, stock): {:?}",
        products.iter().map(|p| (p.id, p.stock)).collect::<Vec<_>>()
    );
    products
}

/// Waits until every node in `nodes` serves `expected` stock for each
/// product; panics with what they serve otherwise.
pub fn expect_stock(cluster: &TestCluster, nodes: &[usize], expected: &BTreeMap<u64, u64>) {
    let start = Instant::now();
    let seen = |c: &TestCluster| -> Vec<(usize, u64, Option<u64>)> {
        let mut seen = Vec::new();
        for &i in nodes {
            for &id in expected.keys() {
                seen.push((i, id, c.stock(i, id)));
            }
        }
        seen
    };
    let settled = cluster.wait_until(SETTLE_TIMEOUT, |c| {
        seen(c)
            .iter()
            .all(|(_, id, stock)| *stock == Some(expected[id]))
    });
    let Some(took) = settled else {
        panic!(
            "stock (node, product, stock) {:?} after {:?}; expected {expected:?}",
            seen(cluster),
            start.elapsed()
        );
    };
    println!("stock {expected:?} on {nodes:?} after {took:?}");
}

/// `(user, idempotency_key)` of an order.
pub fn order_key(order: &Value) -> (String, String) {
    (
        order["user"].as_str().unwrap_or_default().to_string(),
        order["idempotency_key"]
            .as_str()
            .unwrap_or_default()
            .to_string(),
    )
}

/// Every order as each of `observers` serves it, once they serve the same
/// list, it holds every acknowledged key, and it has not changed for a few
/// polls (the copies lag the owner's commit); the last lists read if that
/// does not happen within [`SETTLE_TIMEOUT`], for the checks to report.
pub fn settled_orders(
    cluster: &TestCluster,
    observers: &[usize],
    admin: &str,
    acks: &[&Ack],
) -> Vec<Value> {
    let wanted: BTreeSet<(String, String)> = acks.iter().map(|a| order_key(&a.order)).collect();
    let start = Instant::now();
    let mut last: Vec<Option<Vec<Value>>> = Vec::new();
    let mut stable = 0;
    while start.elapsed() < SETTLE_TIMEOUT {
        let lists: Vec<Option<Vec<Value>>> = observers
            .iter()
            .map(|&i| cluster.admin_orders(i, admin))
            .collect();
        let agree = lists.iter().all(|l| l.is_some() && *l == lists[0]);
        let complete = lists[0].as_ref().is_some_and(|orders| {
            let held: BTreeSet<_> = orders.iter().map(order_key).collect();
            wanted.is_subset(&held)
        });
        stable = if agree && complete && lists == last {
            stable + 1
        } else {
            0
        };
        last = lists;
        if stable >= 3 {
            let orders = last[0].clone().expect("a list");
            println!(
                "{} orders on {observers:?}, stable after {:?}",
                orders.len(),
                start.elapsed()
            );
            return orders;
        }
        thread::sleep(POLL_INTERVAL);
    }
    println!("order lists did not settle in {SETTLE_TIMEOUT:?} on {observers:?}");
    for (list, i) in last.iter().zip(observers) {
        let keys: Option<Vec<_>> = list
            .as_ref()
            .map(|orders| orders.iter().map(order_key).collect());
        println!("  n{i}: {keys:?}");
    }
    last.into_iter().flatten().next().unwrap_or_default()
}

/// What is wrong with `orders` given the acknowledged `acks` of `users`:
/// an acknowledged key missing, doubled or changed, an order of those
/// users never acknowledged, an order id used twice.
pub fn order_problems(acks: &[&Ack], orders: &[Value], users: &[&str]) -> Vec<String> {
    let mut problems = Vec::new();
    let mut by_key: BTreeMap<(String, String), Vec<&Value>> = BTreeMap::new();
    for order in orders {
        by_key.entry(order_key(order)).or_default().push(order);
    }
    let mut acked = BTreeSet::new();
    for ack in acks {
        let key = order_key(&ack.order);
        acked.insert(key.clone());
        match by_key.get(&key).map(Vec::as_slice) {
            None | Some([]) => problems.push(format!("acknowledged order lost: {}", ack.order)),
            Some([order]) => {
                if **order != ack.order {
                    problems.push(format!("acknowledged {} but listed {order}", ack.order));
                }
            }
            Some(many) => problems.push(format!(
                "acknowledged key {key:?} listed {} times: {many:?}",
                many.len()
            )),
        }
    }
    for (key, listed) in &by_key {
        if users.contains(&key.0.as_str()) && !acked.contains(key) {
            problems.push(format!("order never acknowledged: {listed:?}"));
        }
    }
    let mut ids = BTreeSet::new();
    for order in orders {
        let id = order["order_id"].as_str().unwrap_or_default();
        if !ids.insert(id) {
            problems.push(format!("order id {id} used twice"));
        }
    }
    problems
}

/// Expected stock of each product: its stock before minus what `acks` sold.
pub fn stock_after(products: &[Product], acks: &[&Ack]) -> BTreeMap<u64, u64> {
    let mut stock: BTreeMap<u64, u64> = products.iter().map(|p| (p.id, p.stock)).collect();
    for ack in acks {
        for (id, quantity) in ack.items() {
            let left = stock
                .get_mut(&id)
                .expect("only the chosen products are bought");
            *left = left.checked_sub(quantity).expect("never oversold");
        }
    }
    stock
}

/// Sets the stock of `products` to `stock` through node `i` (checkout's
/// inventory, published to the catalog) and waits until every node
/// serves it; the products with their new stock.
pub fn restock(
    cluster: &TestCluster,
    i: usize,
    admin: &str,
    products: &[Product],
    stock: u64,
) -> Vec<Product> {
    for product in products {
        let patch = serde_json::json!({ "stock": stock });
        let (status, body) = cluster.update_product(i, Some(admin), product.id, &patch);
        assert_eq!(status, 200, "restock of {}: {body}", product.id);
    }
    let expected = products.iter().map(|p| (p.id, stock)).collect();
    expect_stock(cluster, &cluster.all(), &expected);
    products
        .iter()
        .map(|p| Product { stock, ..p.clone() })
        .collect()
}
