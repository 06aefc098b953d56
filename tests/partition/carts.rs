//! The cart check of the partition tests: 4 nodes (voters n1..n3) split
//! 2|2, sixteen users adding items through gateways on both sides in turn,
//! so that both sides are asked to change the same carts. Every change
//! answered 200 is recorded; after the heal, every one must show in the
//! user's cart through every gateway. Each change adds one unit of a
//! product the user never added before, so presence is enough.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use crate::checker::login_at;
use crate::shoppers::REQUEST_TIMEOUT;
use crate::support::{add_to_cart_at, cart_items_at, NetnsCluster, DEMO_PASSWORD, STATUS_TIMEOUT};
use crate::{fail_on, ready, NEMESIS_DURATION};

/// Users per side of the split.
const USERS_PER_SIDE: usize = 8;
/// Changes per user at most (a cart holds at most 50 distinct products).
const MAX_CHANGES: u64 = 40;
/// First product id of the users' ranges; user `u` adds
/// `FIRST_PRODUCT + 100 * u + k` in its change `k`.
const FIRST_PRODUCT: u64 = 1000;
/// How long the carts get to show every acknowledged change after the heal.
const CART_TIMEOUT: Duration = Duration::from_secs(20);
/// Pause after a change that was not acknowledged.
const RETRY_PAUSE: Duration = Duration::from_millis(100);

/// A user adding items until stopped, through `gateways` in turn; the
/// product ids acknowledged.
fn add_items(
    user: usize,
    token: String,
    gateways: Vec<SocketAddr>,
    stop: Arc<AtomicBool>,
) -> JoinHandle<Vec<u64>> {
    thread::spawn(move || {
        let mut acked = Vec::new();
        for k in 0..MAX_CHANGES {
            if stop.load(Ordering::Relaxed) {
                break;
            }
            let product = FIRST_PRODUCT + 100 * user as u64 + k;
            let addr = gateways[k as usize % gateways.len()];
            let key = format!("cart-u{user}-{k}");
            match add_to_cart_at(addr, &token, (product, 1), Some(&key), REQUEST_TIMEOUT) {
                Some((200, _)) => acked.push(product),
                _ => thread::sleep(RETRY_PAUSE),
            }
        }
        acked
    })
}

/// The check; see the module docs.
pub fn run() {
    let mut cluster = NetnsCluster::start(4, &[1, 2, 3], 3);
    ready(&cluster);
    let sides: [&[usize]; 2] = [&[1, 2], &[3, 4]];
    let mut users = Vec::new();
    for (s, side) in sides.iter().enumerate() {
        for k in 0..USERS_PER_SIDE {
            let user = s * USERS_PER_SIDE + k;
            let name = format!("user{:03}", 11 + user);
            let gateway = cluster.http_addr(side[k % side.len()]);
            let token = login_at(gateway, &name, DEMO_PASSWORD)
                .unwrap_or_else(|| panic!("login of {name}"));
            // One gateway on each side, so both sides see every cart.
            let gateways: Vec<SocketAddr> = sides
                .iter()
                .map(|other| cluster.http_addr(other[k % other.len()]))
                .collect();
            users.push((user, name, token, gateways));
        }
    }
    cluster.firewall().split(&sides);
    println!("split {:?} | {:?}", sides[0], sides[1]);
    let stop = Arc::new(AtomicBool::new(false));
    let threads: Vec<_> = users
        .iter()
        .map(|(user, _, token, gateways)| {
            add_items(*user, token.clone(), gateways.clone(), stop.clone())
        })
        .collect();
    cluster.hold(NEMESIS_DURATION);
    stop.store(true, Ordering::Relaxed);
    let acked: Vec<Vec<u64>> = threads
        .into_iter()
        .map(|t| t.join().expect("cart user panicked"))
        .collect();
    cluster.firewall().heal();
    for (s, side) in sides.iter().enumerate() {
        // Change k of a user went through side k % 2.
        let count = acked
            .iter()
            .flatten()
            .filter(|product| ((*product - FIRST_PRODUCT) % 100) as usize % sides.len() == s)
            .count();
        println!("side {side:?}: {count} cart changes acknowledged during the split");
    }

    let missing = |c: &NetnsCluster| -> BTreeMap<String, Vec<u64>> {
        let mut missing = BTreeMap::new();
        for ((_, name, token, _), products) in users.iter().zip(&acked) {
            for i in c.all() {
                let cart = cart_items_at(c.http_addr(i), token, STATUS_TIMEOUT);
                let absent: Vec<u64> = match &cart {
                    Some(items) => products
                        .iter()
                        .copied()
                        .filter(|p| !items.iter().any(|(id, q)| id == p && *q >= 1))
                        .collect(),
                    None => products.clone(),
                };
                if !absent.is_empty() {
                    let what = if cart.is_some() { "missing" } else { "no cart" };
                    missing.insert(format!("{name} via n{i} ({what})"), absent);
                }
            }
        }
        missing
    };
    let start = Instant::now();
    let mut last = BTreeMap::new();
    let settled = cluster.wait_until(CART_TIMEOUT, |c| {
        last = missing(c);
        last.is_empty()
    });
    let problems: Vec<String> = match settled {
        Some(took) => {
            println!("every acknowledged cart change visible everywhere after {took:?}");
            Vec::new()
        }
        None => {
            println!(
                "carts still miss changes {:?} after the heal",
                start.elapsed()
            );
            last.iter()
                .map(|(who, products)| {
                    format!("acknowledged cart changes lost for {who}: {products:?}")
                })
                .collect()
        }
    };
    cluster.assert_running();
    fail_on(&cluster, "carts", &problems);
}
