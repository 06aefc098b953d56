//! The checkout owner's sequencing core (`checkout::node`) next to its
//! baseline, in the same run, in orders per second:
//!
//! - `core-3-voters/batch-N`: three in-memory replicas, the owner active;
//!   N paid drafts proposed as one batch (key and stock checks, ids,
//!   append), the appends delivered to both followers, their answers back,
//!   and the commit applied to the owner's book. No I/O: what the core
//!   costs per order, without the journal and the network.
//! - `book-only/batch-N`: the same orders applied straight to an order
//!   book (the stock check and the apply), with no log and no replication.
//!
//! Each iteration uses fresh keys (a repeated key would be answered from
//! the book). With `CI` set, a shorter measurement.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::hint::black_box;
use std::time::Duration;

use bazaar_actors::checkout::model::{Order, OrderBook, OrderItem, Record};
use bazaar_actors::checkout::node::{
    Action, CheckoutNode, Event, Message, NodeConfig, OrderDraft, Proposal, QuorumRule,
    PROMOTE_GRACE_MS,
};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};

const NAMES: [&str; 3] = ["n1", "n2", "n3"];
const PRODUCTS: u64 = 1_000;

fn stock() -> HashMap<u64, u32> {
    (1..=PRODUCTS).map(|id| (id, u32::MAX / 2)).collect()
}

fn draft(n: u64) -> OrderDraft {
    let product_id = 1 + n % PRODUCTS;
    OrderDraft {
        user: format!("user{:03}", n % 100),
        key: format!("bench-{n}"),
        items: vec![OrderItem {
            product_id,
            name: format!("product {product_id}"),
            quantity: 1,
            price_cents: 1_999,
        }],
        total_cents: 1_999,
        payment_id: format!("pay-{n:016x}"),
        created_ms: 1_796_000_000_000,
    }
}

/// Three replicas with n1 the active owner.
fn cluster() -> Vec<CheckoutNode> {
    let voters: BTreeSet<String> = NAMES.iter().map(|n| n.to_string()).collect();
    let mut nodes: Vec<CheckoutNode> = NAMES
        .iter()
        .map(|name| {
            let config = NodeConfig {
                node: name.to_string(),
                bootstrap_voters: voters.clone(),
                rule: QuorumRule::Voters,
            };
            CheckoutNode::restore(config, 0, Vec::new(), 0, stock(), 0)
        })
        .collect();
    let reachable: Vec<String> = NAMES.iter().map(|n| n.to_string()).collect();
    for node in &mut nodes {
        node.step(Event::Membership {
            reachable: reachable.clone(),
        });
    }
    let actions = nodes[0].tick(PROMOTE_GRACE_MS);
    deliver(&mut nodes, "n1", actions);
    assert_eq!(nodes[0].owned_epoch().map(|(_, active)| active), Some(true));
    nodes
}

/// Delivers every message the actions send, and those they cause, until
/// none is left; returns the number of replies to clients.
fn deliver(nodes: &mut [CheckoutNode], from: &str, actions: Vec<Action>) -> usize {
    let mut queue: Vec<(String, String, Message)> = Vec::new();
    let mut replies = 0;
    let mut push = |from: &str, actions: Vec<Action>, queue: &mut Vec<_>| {
        for action in actions {
            match action {
                Action::Send { to, message } => queue.push((from.to_string(), to, message)),
                Action::Reply { .. } => replies += 1,
                _ => {}
            }
        }
    };
    push(from, actions, &mut queue);
    while let Some((from, to, message)) = queue.pop() {
        let Some(index) = NAMES.iter().position(|n| *n == to) else {
            continue;
        };
        let actions = nodes[index].step(Event::Receive { from, message });
        push(NAMES[index], actions, &mut queue);
    }
    replies
}

fn sequencing(c: &mut Criterion) {
    let mut group = c.benchmark_group("checkout-sequencing");
    if std::env::var_os("CI").is_some() {
        group
            .measurement_time(Duration::from_secs(1))
            .warm_up_time(Duration::from_millis(300));
    }
    for batch in [1_u64, 16, 128] {
        group.throughput(Throughput::Elements(batch));
        group.bench_with_input(
            BenchmarkId::new("core-3-voters", batch),
            &batch,
            |b, &batch| {
                let mut nodes = cluster();
                let mut next = 0_u64;
                b.iter(|| {
                    let proposals: Vec<(u64, Proposal)> = (0..batch)
                        .map(|i| (next + i, Proposal::Order(draft(next + i))))
                        .collect();
                    next += batch;
                    let actions = nodes[0].step(Event::Propose(proposals));
                    let replies = deliver(&mut nodes, "n1", actions);
                    assert_eq!(replies as u64, batch, "every order confirmed");
                    black_box(replies)
                });
            },
        );
        group.bench_with_input(BenchmarkId::new("book-only", batch), &batch, |b, &batch| {
            let mut book = OrderBook::new(stock());
            let mut next = 0_u64;
            b.iter(|| {
                for n in next..next + batch {
                    let draft = draft(n);
                    let wanted: BTreeMap<u64, u32> = draft
                        .items
                        .iter()
                        .map(|item| (item.product_id, item.quantity))
                        .collect();
                    book.check_stock(&wanted).expect("stock");
                    let order = Order {
                        order_id: format!("o1-{n}"),
                        idempotency_key: draft.key,
                        user: draft.user,
                        items: draft.items,
                        total_cents: draft.total_cents,
                        payment_id: draft.payment_id,
                        epoch: 1,
                        created_ms: draft.created_ms,
                    };
                    book.apply(&Record::Order(order));
                }
                next += batch;
                black_box(book.available(1))
            });
        });
    }
    group.finish();
}

criterion_group!(benches, sequencing);
criterion_main!(benches);
