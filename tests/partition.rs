//! Real network partitions: every node in its own network namespace on a
//! bridge ([`support::NetnsCluster`]), the network cut by nftables rules
//! inside the namespaces ([`support::Firewall`]), shoppers buying through
//! every gateway meanwhile, and a checker over every acknowledged order.
//!
//! What it holds checkout to (`DESIGN.md`, "Guarantees"), through any
//! partition and with any number of nodes beyond the voters:
//! - an acknowledged order is on every node exactly once after a heal, as
//!   it was acknowledged, and no order id is acknowledged for two keys;
//! - every node holds the same order list after a heal;
//! - at most one node ever claims ownership of a checkout epoch;
//! - an acknowledged cart change survives a partition (see `carts.rs`).
//!
//! The nemeses (each held [`NEMESIS_DURATION`], then healed and checked):
//! a split in halves, the checkout owner isolated, one-way loss (the owner
//! hears nobody but is heard), a bridge node seeing both sides, and a
//! random split flapping every second; plus a freeze sequence on 4 nodes.
//! Shapes: 3 voters; 3 voters + 2 learners; 5 voters. `--expect` is the
//! number of voters, so a node beyond them is what an operator adds to
//! serve more traffic.
//!
//! Availability (orders acknowledged during each nemesis) is printed:
//! `cargo test --test partition -- --nocapture --test-threads 1`. Needs
//! root, `ip` (iproute2) and `nft` (nftables); panics without them.

mod support;

#[path = "partition/carts.rs"]
mod carts;
#[path = "partition/checker.rs"]
mod checker;
#[path = "partition/shoppers.rs"]
mod shoppers;

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use serde_json::json;

use checker::{login_at, order_checks, OwnerWatch};
use shoppers::{Acked, Shopper, Shoppers};
use support::{http_put, unix_ms, Flapper, NetnsCluster, DEMO_PASSWORD};

/// Time a fresh cluster gets to be ready with one checkout owner.
const READY_TIMEOUT: Duration = Duration::from_secs(40);
/// How long each nemesis cuts the network.
const NEMESIS_DURATION: Duration = Duration::from_secs(8);
/// How long the cluster gets to acknowledge an order before a nemesis
/// (after a start or a heal).
const ORDER_TIMEOUT: Duration = Duration::from_secs(30);
/// Products the shoppers buy (restocked first), one per gateway in turn.
const PRODUCTS: [u64; 3] = [1, 2, 3];
/// Stock given to those products.
const RESTOCK: u64 = 100_000;

/// A way to cut the network.
#[derive(Debug, Clone, Copy)]
enum Nemesis {
    /// The first half of the nodes loses the second half.
    SplitHalves,
    /// The checkout owner loses every other node.
    IsolateOwner,
    /// The owner hears nobody, but every node hears the owner.
    OneWayOwner,
    /// One node (not the owner) sees both sides; the sides do not see
    /// each other.
    BridgeNode,
    /// A random split in halves, toggled on and off every second.
    Flapping,
}

const ALL_NEMESES: [Nemesis; 5] = [
    Nemesis::SplitHalves,
    Nemesis::IsolateOwner,
    Nemesis::OneWayOwner,
    Nemesis::BridgeNode,
    Nemesis::Flapping,
];

/// One nemesis as the availability table prints it.
struct Phase {
    name: String,
    before: usize,
    during: Vec<(usize, usize)>,
    after_heal: Option<Duration>,
    outcomes: String,
}

#[test]
fn three_voters() {
    run_nemeses(3, &[1, 2, 3], &ALL_NEMESES);
}

#[test]
fn three_voters_and_two_learners() {
    run_nemeses(5, &[1, 2, 3], &ALL_NEMESES);
}

#[test]
fn five_voters() {
    let nemeses = [
        Nemesis::SplitHalves,
        Nemesis::IsolateOwner,
        Nemesis::BridgeNode,
    ];
    run_nemeses(5, &[1, 2, 3, 4, 5], &nemeses);
}

/// The freeze sequence of issue 12 on 4 nodes, voters n1..n3: freeze n1
/// and n2; once n3 or n4 acknowledges an order (they must not), freeze
/// them instead and resume n1 and n2 for a few seconds of orders; resume
/// all and check.
#[test]
fn frozen_halves_with_a_learner() {
    let mut cluster = NetnsCluster::start(4, &[1, 2, 3], 3);
    ready(&cluster);
    let (admin, shoppers) = setup(&cluster);
    let watch = OwnerWatch::start(&cluster);
    let shop = Shoppers::start(&shoppers, "freeze");
    wait_for_order(&cluster, &shop, "before the freeze");

    cluster.stop(1);
    cluster.stop(2);
    let acked = shop.acked();
    let took = cluster.wait_until(ORDER_TIMEOUT, |c| {
        let owner = [3, 4]
            .iter()
            .any(|&i| c.checkout_view(i).is_some_and(|v| v.role == "owner"));
        owner && shop.acked() > acked
    });
    match took {
        Some(took) => println!("n1, n2 frozen: n3/n4 own checkout and acked in {took:?}"),
        None => println!("n1, n2 frozen: n3/n4 acked nothing in {ORDER_TIMEOUT:?}"),
    }
    cluster.stop(3);
    cluster.stop(4);
    cluster.cont(1);
    cluster.cont(2);
    let acked = shop.acked();
    cluster.hold(Duration::from_secs(6));
    println!(
        "n3, n4 frozen, n1, n2 resumed: {} orders acked",
        shop.acked() - acked
    );
    cluster.cont(3);
    cluster.cont(4);
    let log = shop.stop();
    println!(
        "{} orders acked in all, outcomes {:?}",
        log.acks.len(),
        log.outcomes
    );
    let mut problems = order_checks(&cluster, &admin, &log.acks);
    let (claims, claim_problems) = watch.stop();
    println!("ownership claims (epoch -> nodes): {claims:?}");
    problems.extend(claim_problems);
    fail_on(&cluster, "freeze", &problems);
}

#[test]
fn carts_across_a_split() {
    carts::run();
}

/// Runs `nemeses` one after the other on `nodes` nodes with `voters`,
/// checking the orders after each heal; fails at the end with every
/// problem, so that one run shows which nemeses lose orders.
fn run_nemeses(nodes: usize, voters: &[usize], nemeses: &[Nemesis]) {
    let started = Instant::now();
    let mut cluster = NetnsCluster::start(nodes, voters, voters.len());
    ready(&cluster);
    let (admin, shoppers) = setup(&cluster);
    let watch = OwnerWatch::start(&cluster);
    let mut acks: Vec<Acked> = Vec::new();
    let mut phases = Vec::new();
    let mut problems: Vec<String> = Vec::new();
    let mut seen = BTreeSet::new();
    for (round, &nemesis) in nemeses.iter().enumerate() {
        let name = format!("{nemesis:?}");
        println!("--- {name}");
        let shop = Shoppers::start(&shoppers, &format!("p{round}"));
        let after_heal = wait_for_order(&cluster, &shop, &name);
        let owner = current_owner(&cluster, &watch);
        let from_ms = unix_ms();
        let flapper = cut(&cluster, nemesis, owner);
        cluster.hold(NEMESIS_DURATION);
        match flapper {
            Some(flapper) => println!("  flapped {} times", flapper.stop()),
            None => cluster.firewall().heal(),
        }
        let to_ms = unix_ms();
        let log = shop.stop();
        let during = |node: usize| {
            log.acks
                .iter()
                .filter(|a| a.node == node && (from_ms..=to_ms).contains(&a.at_ms))
                .count()
        };
        phases.push(Phase {
            name: name.clone(),
            before: log.acks.iter().filter(|a| a.at_ms < from_ms).count(),
            during: cluster.all().iter().map(|&i| (i, during(i))).collect(),
            after_heal,
            outcomes: format!("{:?}, {} keys abandoned", log.outcomes, log.abandoned),
        });
        acks.extend(log.acks);
        for problem in order_checks(&cluster, &admin, &acks) {
            // A loss stays lost: report each problem after the first
            // nemesis that shows it.
            if seen.insert(problem.clone()) {
                let problem = format!("after {name}: {problem}");
                println!("  {problem}");
                problems.push(problem);
            }
        }
    }
    let (claims, claim_problems) = watch.stop();
    println!("ownership claims (epoch -> nodes): {claims:?}");
    problems.extend(claim_problems);
    print_availability(&cluster, voters, &phases);
    println!(
        "{} orders acknowledged, run took {:?}",
        acks.len(),
        started.elapsed()
    );
    let name = format!("{nodes}-nodes-{}-voters", voters.len());
    fail_on(&cluster, &name, &problems);
}

/// Cuts the network as `nemesis` says; the flapper if it flaps.
fn cut(cluster: &NetnsCluster, nemesis: Nemesis, owner: usize) -> Option<Flapper> {
    let firewall = cluster.firewall();
    let all = cluster.all();
    let others: Vec<usize> = all.iter().copied().filter(|&i| i != owner).collect();
    match nemesis {
        Nemesis::SplitHalves => {
            let (left, right) = all.split_at(all.len() / 2);
            println!("  split {left:?} | {right:?} (owner n{owner})");
            firewall.split(&[left, right]);
        }
        Nemesis::IsolateOwner => {
            println!("  isolate the owner n{owner}");
            firewall.isolate(owner);
        }
        Nemesis::OneWayOwner => {
            println!("  n{owner} (owner) hears nobody, {others:?} hear it");
            firewall.one_way(&others, &[owner]);
        }
        Nemesis::BridgeNode => {
            let middle = others[0];
            let rest = &others[1..];
            let (left_rest, right) = rest.split_at(rest.len() / 2);
            let left: Vec<usize> = std::iter::once(owner)
                .chain(left_rest.iter().copied())
                .collect();
            println!("  {left:?} | n{middle} | {right:?} (owner n{owner})");
            firewall.bridge(&left, middle, right);
        }
        Nemesis::Flapping => {
            println!("  a random split in halves, on and off every second");
            return Some(Flapper::start(firewall.clone()));
        }
    }
    None
}

/// Waits until every node is ready and agrees on one checkout owner.
fn ready(cluster: &NetnsCluster) -> usize {
    let mut owner = None;
    let took = cluster.wait_until(READY_TIMEOUT, |c| {
        owner = agreed_owner(c);
        owner.is_some()
    });
    let Some(took) = took else {
        panic!(
            "no agreed checkout owner in {READY_TIMEOUT:?}:\n{}",
            cluster.describe()
        );
    };
    let owner = owner.expect("an owner");
    println!("cluster ready in {took:?}, checkout owner n{owner}");
    owner
}

/// The owner every node names, if they agree and it says it is owner.
fn agreed_owner(cluster: &NetnsCluster) -> Option<usize> {
    let mut owners = cluster.all().into_iter().map(|i| {
        let view = cluster.checkout_view(i)?;
        let owner = view.owner?;
        let i_am = view.node == owner;
        (!i_am || view.role == "owner").then_some(owner)
    });
    let first = owners.next()??;
    owners
        .all(|o| o.as_deref() == Some(first.as_str()))
        .then(|| cluster.index_of(&first))?
}

/// The owner all agree on, or the latest to claim it, or n1.
fn current_owner(cluster: &NetnsCluster, watch: &OwnerWatch) -> usize {
    if let Some(owner) = agreed_owner(cluster) {
        return owner;
    }
    let latest = watch.claims().into_iter().next_back();
    latest
        .and_then(|(_, nodes)| cluster.index_of(nodes.first()?))
        .unwrap_or(1)
}

/// An admin token and one shopper per gateway, each its own demo user,
/// after restocking the products they buy.
fn setup(cluster: &NetnsCluster) -> (String, Vec<Shopper>) {
    let admin = login_at(cluster.http_addr(1), "admin", cluster.admin_password())
        .expect("admin login on n1");
    for id in PRODUCTS {
        let patch = json!({ "stock": RESTOCK });
        let path = format!("/api/admin/products/{id}");
        let answer = http_put(cluster.http_addr(1), &path, &patch, Some(&admin));
        assert!(
            matches!(answer, Some((200, _))),
            "restock of {id}: {answer:?}"
        );
    }
    let shoppers = cluster
        .all()
        .into_iter()
        .map(|i| {
            let user = format!("user{i:03}");
            Shopper {
                tag: format!("s{i}"),
                token: login_at(cluster.http_addr(i), &user, DEMO_PASSWORD)
                    .unwrap_or_else(|| panic!("login of {user} on n{i}")),
                node: i,
                addr: cluster.http_addr(i),
                product: PRODUCTS[i % PRODUCTS.len()],
            }
        })
        .collect();
    (admin, shoppers)
}

/// Waits until `shop` has an acknowledged order; how long it took, `None`
/// (printed) if none came in [`ORDER_TIMEOUT`].
fn wait_for_order(cluster: &NetnsCluster, shop: &Shoppers, what: &str) -> Option<Duration> {
    let took = cluster.wait_until(ORDER_TIMEOUT, |_| shop.acked() > 0);
    match took {
        Some(took) => println!("  first order {what} after {took:?}"),
        None => println!(
            "  no order {what} in {ORDER_TIMEOUT:?}:\n{}",
            cluster.describe()
        ),
    }
    took
}

/// Prints, per nemesis, the orders acknowledged before it and during it
/// through each gateway.
fn print_availability(cluster: &NetnsCluster, voters: &[usize], phases: &[Phase]) {
    println!(
        "availability, {} nodes, voters {voters:?} (orders acknowledged; \"during\" per gateway):",
        cluster.len()
    );
    for phase in phases {
        let total: usize = phase.during.iter().map(|(_, n)| n).sum();
        let per_node: Vec<String> = phase
            .during
            .iter()
            .map(|(i, n)| format!("n{i}:{n}"))
            .collect();
        println!(
            "  {:<13} first order after {:>8}, before {:>3}, during {:>3} ({}); requests {}",
            phase.name,
            phase
                .after_heal
                .map_or("never".to_string(), |d| format!("{:.1}s", d.as_secs_f64())),
            phase.before,
            total,
            per_node.join(" "),
            phase.outcomes
        );
    }
}

/// Keeps every node's log (the cluster's directory goes on drop) and
/// fails with `problems`; does nothing if there are none.
fn fail_on(cluster: &NetnsCluster, test: &str, problems: &[String]) {
    if problems.is_empty() {
        println!("{test}: no problem");
        return;
    }
    let mut kept = Vec::new();
    for i in cluster.all() {
        let path =
            std::env::temp_dir().join(format!("bazaar-partition-{test}-{}-n{i}.log", unix_ms()));
        if std::fs::write(&path, cluster.log(i)).is_ok() {
            kept.push(path.display().to_string());
        }
    }
    panic!(
        "{} problems:\n{}\nnode logs kept in {kept:?}",
        problems.len(),
        problems.join("\n")
    );
}
