//! Password guessing as a guesser meets it, on one real `bazaar node`
//! (`--expect 1`): eight connections from 127.0.0.1 post wrong passwords
//! for `user001`. After a few failures they get 429 with `Retry-After`
//! and few guesses are ever hashed; meanwhile the right password from
//! 127.0.0.2 still logs in, product views from 127.0.0.3 answer 200, the
//! metrics count failures and refusals, and the log warns with the user
//! and address.

mod support;

use std::net::{IpAddr, Ipv4Addr};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use reqwest::blocking::Client;
use serde_json::json;
use support::{Options, TestCluster, DEMO_PASSWORD};

/// Time a fresh single-node cluster gets to be up and ready.
const READY_TIMEOUT: Duration = Duration::from_secs(20);
/// Budget of one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Time the guessers get to be throttled.
const THROTTLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Connections guessing at once.
const GUESSERS: usize = 8;
/// Guesses that may reach the password check while the test runs: the
/// free attempts (5) and a few backoff steps; unthrottled, a node hashes
/// about 80 a second.
const MAX_HASHED_GUESSES: usize = 15;
/// Product views made while guessing goes on.
const PRODUCT_VIEWS: usize = 20;

fn client_from(source: Ipv4Addr) -> Client {
    Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .local_address(IpAddr::V4(source))
        .build()
        .expect("http client")
}

/// What the guessers have been answered.
#[derive(Default)]
struct Answers {
    unauthorized: AtomicUsize,
    throttled: AtomicUsize,
    /// 429s without a numeric `Retry-After`.
    throttled_without_retry_after: AtomicUsize,
    other: AtomicUsize,
}

#[test]
fn guessing_is_throttled_per_address_while_the_owner_and_shoppers_get_through() {
    let cluster = TestCluster::start_with(1, Options::default().expect(1));
    cluster.expect_within(Instant::now(), READY_TIMEOUT, "n1 ready", |c| {
        c.all_ready(&[1])
    });
    let base = format!("http://{}", cluster.http_addr(1));

    let stop = Arc::new(AtomicBool::new(false));
    let answers = Arc::new(Answers::default());
    let guessers: Vec<_> = (0..GUESSERS)
        .map(|_| {
            let (stop, answers, url) = (stop.clone(), answers.clone(), format!("{base}/api/login"));
            thread::spawn(move || {
                let client = client_from(Ipv4Addr::LOCALHOST);
                let guess = json!({ "username": "user001", "password": "not-the-password" });
                while !stop.load(Ordering::Relaxed) {
                    let Ok(response) = client.post(&url).json(&guess).send() else {
                        answers.other.fetch_add(1, Ordering::Relaxed);
                        continue;
                    };
                    let retry_after = response
                        .headers()
                        .get("retry-after")
                        .and_then(|value| value.to_str().ok()?.parse::<u64>().ok());
                    let counter = match (response.status().as_u16(), retry_after) {
                        (401, _) => &answers.unauthorized,
                        (429, Some(secs)) if secs >= 1 => &answers.throttled,
                        (429, _) => &answers.throttled_without_retry_after,
                        _ => &answers.other,
                    };
                    counter.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();

    let took = cluster.expect_within(Instant::now(), THROTTLE_TIMEOUT, "guessers get 429", |_| {
        answers.throttled.load(Ordering::Relaxed) > 0
    });
    println!("guessers throttled after {took:?}");

    // The owner, from another address, while the guessing goes on.
    let owner = client_from(Ipv4Addr::new(127, 0, 0, 2));
    let started = Instant::now();
    let response = owner
        .post(format!("{base}/api/login"))
        .json(&json!({ "username": "user001", "password": DEMO_PASSWORD }))
        .send()
        .expect("owner's login answered");
    assert_eq!(response.status(), 200, "the owner's login from 127.0.0.2");
    println!("owner logged in in {:?}", started.elapsed());

    // Shoppers, from a third address.
    let shopper = client_from(Ipv4Addr::new(127, 0, 0, 3));
    let mut slowest = Duration::ZERO;
    for id in 1..=PRODUCT_VIEWS {
        let started = Instant::now();
        let response = shopper
            .get(format!("{base}/api/products/{id}"))
            .send()
            .expect("product view answered");
        assert_eq!(response.status(), 200, "product {id} during the guessing");
        slowest = slowest.max(started.elapsed());
    }
    println!("{PRODUCT_VIEWS} product views during the guessing, slowest {slowest:?}");

    stop.store(true, Ordering::Relaxed);
    for guesser in guessers {
        guesser.join().expect("guesser thread");
    }
    let hashed = answers.unauthorized.load(Ordering::Relaxed);
    let throttled = answers.throttled.load(Ordering::Relaxed);
    println!("guesses: {hashed} answered 401, {throttled} answered 429");
    assert_eq!(
        answers
            .throttled_without_retry_after
            .load(Ordering::Relaxed),
        0
    );
    assert_eq!(answers.other.load(Ordering::Relaxed), 0, "only 401 and 429");
    assert!(hashed >= 1, "some guesses were checked");
    assert!(
        hashed <= MAX_HASHED_GUESSES,
        "{hashed} guesses reached the password check (at most {MAX_HASHED_GUESSES})"
    );

    let metrics = owner
        .get(format!("{base}/metrics"))
        .send()
        .and_then(|response| response.text())
        .expect("metrics");
    let value = |prefix: &str| -> f64 {
        metrics
            .lines()
            .filter(|line| line.starts_with(prefix))
            .filter_map(|line| line.rsplit(' ').next()?.parse::<f64>().ok())
            .sum()
    };
    assert_eq!(
        value("bazaar_login_failures_total"),
        hashed as f64,
        "{metrics}"
    );
    assert!(
        value("bazaar_login_throttled_total{scope=\"account_address\"}") >= throttled as f64,
        "{metrics}"
    );

    let log = cluster.log(1);
    assert!(
        log.lines()
            .any(|line| line.contains("repeated login failures")
                && line.contains("user001")
                && line.contains("127.0.0.1")),
        "no warning with the user and address in the log"
    );
}
