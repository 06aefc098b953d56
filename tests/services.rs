//! The shop as a client sees it, on a cluster of real `bazaar node`
//! processes started through [`support::TestCluster`].
//!
//! What they hold the services to (see `README.md`, "HTTP"):
//! - every gateway serves the same catalog and search results, and answers
//!   bad requests with JSON errors;
//! - an admin update and a sign-up made on one node reach every replica
//!   within a second; admin routes refuse anonymous and user tokens;
//! - reads through the surviving nodes never fail while a node dies, and
//!   the node that comes back catches up with what it missed;
//! - a crashed worker is restarted by its supervisor and counted, and a
//!   crash loop escalates to a restart of the whole service without
//!   touching the other nodes.
//!
//! Timings are printed (`cargo test --test services -- --nocapture`). The
//! tests serialize themselves through the cluster's global lock.

mod support;

use std::time::{Duration, Instant};

use rand::distr::{Alphanumeric, SampleString};
use serde_json::{json, Value};
use support::{BackgroundReader, TestCluster, DEMO_PASSWORD};

/// Time a fresh cluster gets to be up and ready everywhere.
const READY_TIMEOUT: Duration = Duration::from_secs(20);

/// How fast a write made on one node must be visible on every node.
const REPLICATION_TIMEOUT: Duration = Duration::from_secs(1);

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

/// A fresh valid username (`[a-z0-9_]`, at most 32 characters).
fn fresh_username(prefix: &str) -> String {
    let suffix = Alphanumeric.sample_string(&mut rand::rng(), 10);
    format!("{prefix}_{}", suffix.to_lowercase())
}

/// A word of lowercase letters that no seeded product contains.
fn fresh_word() -> String {
    let letters: String = (0..10)
        .map(|_| char::from(rand::random_range(b'a'..=b'z')))
        .collect();
    format!("zq{letters}")
}

/// The `error` message of a JSON error answer; panics if there is none.
fn error_of(body: &Value) -> &str {
    body["error"]
        .as_str()
        .unwrap_or_else(|| panic!("not a JSON error: {body}"))
}

#[test]
fn every_node_serves_the_same_shop() {
    let cluster = ready_cluster();

    for path in [
        "/api/products/42",
        "/api/products?offset=100&limit=5",
        "/api/search?q=lamp&limit=5",
    ] {
        let (status, first) = cluster.get_json(1, path);
        assert_eq!(status, 200, "n1 GET {path}: {first}");
        for i in [2, 3] {
            let (status, body) = cluster.get_json(i, path);
            assert_eq!(status, 200, "n{i} GET {path}: {body}");
            assert_eq!(body, first, "n{i} and n1 differ on GET {path}");
        }
    }

    let (_, product) = cluster.get_json(2, "/api/products/42");
    assert_eq!(product["id"], 42, "{product}");
    for field in ["name", "description", "category", "currency", "updated_by"] {
        assert!(
            product[field].is_string(),
            "product field {field}: {product}"
        );
    }
    for field in ["price_cents", "stock", "version"] {
        assert!(product[field].is_u64(), "product field {field}: {product}");
    }

    let (_, page) = cluster.get_json(3, "/api/products?offset=100&limit=5");
    assert_eq!(page["total"], 10_000, "catalog size: {page}");
    let ids: Vec<u64> = page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(|p| p["id"].as_u64().expect("id"))
        .collect();
    assert_eq!(ids, vec![101, 102, 103, 104, 105], "page at offset 100");

    let (_, results) = cluster.get_json(1, "/api/search?q=lamp&limit=5");
    let hits = results["items"].as_array().expect("items");
    assert!(
        !hits.is_empty() && hits.len() <= 5,
        "1..=5 hits for lamp: {results}"
    );
    let scores: Vec<f64> = hits
        .iter()
        .map(|hit| hit["score"].as_f64().expect("score"))
        .collect();
    assert!(
        scores.windows(2).all(|pair| pair[0] >= pair[1]),
        "hits best first: {scores:?}"
    );
    for hit in hits {
        let text = format!("{} {}", hit["name"], hit["description"]).to_lowercase();
        assert!(text.contains("lamp"), "a hit for lamp mentions it: {hit}");
    }

    for i in cluster.all() {
        for path in ["/api/products/10001", "/api/products/0"] {
            let (status, body) = cluster.get_json(i, path);
            assert_eq!(status, 404, "n{i} GET {path}: {body}");
            error_of(&body);
        }
        for path in [
            "/api/products?limit=0",
            "/api/products?limit=101",
            "/api/search?q=&limit=5",
        ] {
            let (status, body) = cluster.get_json(i, path);
            assert_eq!(status, 400, "n{i} GET {path}: {body}");
            error_of(&body);
        }
    }
}

#[test]
fn admin_update_reaches_every_replica_within_a_second() {
    let cluster = ready_cluster();
    let admin = cluster.admin_token(1);
    let user = cluster.login(2, "user001", DEMO_PASSWORD);
    let id = 7;
    let before = cluster.product(1, id).expect("product 7 on n1");
    let old_version = before["version"].as_u64().expect("version");
    let new_price = before["price_cents"].as_u64().expect("price") + 101;

    // Refused updates change nothing.
    let patch = json!({ "price_cents": new_price });
    let (status, body) = cluster.update_product(2, None, id, &patch);
    assert_eq!(status, 401, "update without a token: {body}");
    let (status, body) = cluster.update_product(2, Some("not-a-token"), id, &patch);
    assert_eq!(status, 401, "update with a forged token: {body}");
    let (status, body) = cluster.update_product(2, Some(&user), id, &patch);
    assert_eq!(status, 403, "update with a user token: {body}");
    let (status, body) = cluster.crash(2, &user, "catalog", 2);
    assert_eq!(status, 403, "crash with a user token: {body}");
    let (status, body) = cluster.update_product(2, Some(&admin), id, &json!({ "name": "x" }));
    assert_eq!(status, 422, "update of an unknown field: {body}");
    for i in cluster.all() {
        let product = cluster.product(i, id).expect("product 7");
        assert_eq!(product, before, "n{i}: product 7 after refused updates");
    }

    let sent_at = Instant::now();
    let (status, updated) = cluster.update_product(2, Some(&admin), id, &patch);
    let answered_in = sent_at.elapsed();
    assert_eq!(status, 200, "admin update on n2: {updated}");
    assert_eq!(updated["price_cents"], new_price, "{updated}");
    assert_eq!(updated["version"], old_version + 1, "{updated}");
    let answered_at = Instant::now();
    let everywhere = cluster.expect_within(
        answered_at,
        REPLICATION_TIMEOUT,
        "every gateway serves the new price and version",
        |c| {
            c.all().iter().all(|&i| {
                c.product(i, id).is_some_and(|p| {
                    p["price_cents"] == new_price && p["version"] == old_version + 1
                })
            })
        },
    );
    println!("price update answered in {answered_in:?}, on every gateway {everywhere:?} later");
    for i in cluster.all() {
        let product = cluster.product(i, id).expect("product 7");
        assert_eq!(product, updated, "n{i} serves the product n2 answered");
    }

    let word = fresh_word();
    assert_eq!(
        cluster.search_ids(1, &word, 5),
        Some(vec![]),
        "{word} is found before any product mentions it"
    );
    let description = format!("Now with {word} inside, for everyday use.");
    let (status, body) =
        cluster.update_product(3, Some(&admin), id, &json!({ "description": description }));
    assert_eq!(status, 200, "description update on n3: {body}");
    let everywhere = cluster.expect_within(
        Instant::now(),
        REPLICATION_TIMEOUT,
        "search on every node finds the new description word",
        |c| {
            c.all()
                .iter()
                .all(|&i| c.search_ids(i, &word, 5).is_some_and(|ids| ids == [id]))
        },
    );
    println!("description word searchable on every node {everywhere:?} after the update");
}

#[test]
fn reads_survive_the_loss_of_a_node() {
    let mut cluster = ready_cluster();
    let admin = cluster.admin_token(1);
    let id = 4242;
    let before = cluster.product(1, id).expect("product 4242");
    let new_stock = before["stock"].as_u64().expect("stock") + 17;

    let reader = BackgroundReader::start(vec![
        ("n1".to_string(), cluster.http_addr(1)),
        ("n2".to_string(), cluster.http_addr(2)),
    ]);
    let rounds_after = |c: &TestCluster, more: u64, what: &str| {
        let target = reader.rounds() + more;
        c.expect_within(Instant::now(), Duration::from_secs(10), what, |_| {
            reader.rounds() >= target
        });
    };
    rounds_after(&cluster, 20, "20 rounds of reads before the kill");

    let killed_at = Instant::now();
    cluster.kill(3);
    let detected = cluster.expect_within(killed_at, Duration::from_secs(2), "n3 down", |c| {
        c.all_report(&[1, 2], 3, "down")
    });
    println!("n3 killed; n1 and n2 report it down after {detected:?}");

    let (status, updated) =
        cluster.update_product(1, Some(&admin), id, &json!({ "stock": new_stock }));
    assert_eq!(
        status, 200,
        "admin update on n1 while n3 is down: {updated}"
    );
    let new_version = updated["version"].as_u64().expect("version");
    let username = fresh_username("while_down");
    let (status, body) = cluster.sign_up(2, &username, "secret-123");
    assert_eq!(status, 201, "sign-up on n2 while n3 is down: {body}");
    rounds_after(&cluster, 20, "20 rounds of reads while n3 is down");

    let restarted_at = Instant::now();
    cluster.restart(3);
    let ready_after = cluster.expect_within(restarted_at, READY_TIMEOUT, "n3 ready again", |c| {
        c.ready(3) && c.all_up(&[1, 2, 3])
    });
    let ready_at = Instant::now();
    // Readiness does not wait for the catch-up: note what n3 serves first.
    let first_seen = cluster.product(3, id).map(|p| p["version"].clone());
    let caught_up = cluster.expect_within(
        ready_at,
        Duration::from_secs(3),
        "n3 serves the update and logs the new user in",
        |c| {
            let product = c.product(3, id);
            let updated =
                product.is_some_and(|p| p["version"] == new_version && p["stock"] == new_stock);
            updated
                && c.try_login(3, &username, "secret-123")
                    .is_some_and(|(status, _)| status == 200)
        },
    );
    rounds_after(&cluster, 20, "20 rounds of reads after n3 caught up");
    let log = reader.stop();
    println!(
        "n3 ready {ready_after:?} after its restart, caught up {caught_up:?} after readiness \
         (version {new_version}; at readiness it served {first_seen:?}); reads through n1/n2: \
         {} requests, {} failed, latency p50 {:?} p99 {:?} max {:?}",
        log.requests,
        log.failures.len(),
        log.latency_quantile(0.5),
        log.latency_quantile(0.99),
        log.latency_quantile(1.0),
    );
    assert!(
        log.failures.is_empty(),
        "{} of {} reads through n1/n2 failed:\n{}",
        log.failures.len(),
        log.requests,
        log.failures.join("\n")
    );
}

#[test]
fn sign_up_reaches_every_replica() {
    let cluster = ready_cluster();
    let username = fresh_username("shopper");
    let password = "open-sesame";

    let (status, body) = cluster.sign_up(1, &username, password);
    assert_eq!(status, 201, "sign-up on n1: {body}");
    assert_eq!(body["username"], username.as_str(), "{body}");
    assert_eq!(body["role"], "user", "{body}");
    assert!(
        body["token"].as_str().is_some_and(|t| !t.is_empty()),
        "{body}"
    );

    let signed_up_at = Instant::now();
    let everywhere = cluster.expect_within(
        signed_up_at,
        Duration::from_secs(2),
        "the new user logs in on n2 and n3",
        |c| {
            [2, 3].iter().all(|&i| {
                c.try_login(i, &username, password)
                    .is_some_and(|(status, _)| status == 200)
            })
        },
    );
    println!("new user logs in on n2 and n3 {everywhere:?} after signing up on n1");

    for i in cluster.all() {
        let (status, body) = cluster.sign_up(i, &username, "another-password");
        assert_eq!(status, 409, "n{i}: duplicate sign-up: {body}");
        error_of(&body);
        let (status, body) = cluster
            .try_login(i, &username, "wrong-password")
            .expect("login answer");
        assert_eq!(status, 401, "n{i}: wrong password: {body}");
        error_of(&body);
    }
    let (status, body) = cluster
        .try_login(2, &fresh_username("nobody"), password)
        .expect("login answer");
    assert_eq!(status, 401, "unknown user: {body}");
    let (status, body) = cluster.sign_up(3, "ab", password);
    assert_eq!(status, 422, "two-letter username: {body}");
    let (status, body) = cluster.sign_up(3, "Not_Lowercase", password);
    assert_eq!(status, 422, "username with capitals: {body}");
    let (status, body) = cluster.sign_up(3, &fresh_username("short"), "12345");
    assert_eq!(status, 422, "five-character password: {body}");
    let token = cluster.login(3, &username, password);
    assert!(!token.is_empty(), "token of the new user from n3");
}

/// `(restarts, escalations, status)` of the catalog on `node` as
/// `observer` reports it.
fn catalog_service(c: &TestCluster, observer: usize, node: usize) -> Option<(u64, u64, String)> {
    let view = c.cluster_view(observer)?;
    let service = view.service(&c.name(node), "catalog")?;
    Some((
        service.restarts,
        service.escalations,
        service.status.clone(),
    ))
}

/// `(name, restarts)` of the catalog workers of `node` as `observer`
/// reports them; empty if it does not answer.
fn catalog_workers(c: &TestCluster, observer: usize, node: usize) -> Vec<(String, u64)> {
    c.cluster_view(observer)
        .map(|view| view.workers(&c.name(node), "catalog"))
        .unwrap_or_default()
}

#[test]
fn a_crashed_worker_is_restarted_and_counted() {
    let cluster = ready_cluster();
    let admin = cluster.admin_token(1);
    for node in cluster.all() {
        assert_eq!(
            catalog_service(&cluster, 1, node),
            Some((0, 0, "running".to_string())),
            "catalog on n{node} before any crash"
        );
        let workers = catalog_workers(&cluster, 1, node);
        assert!(
            !workers.is_empty() && workers.iter().all(|(_, restarts)| *restarts == 0),
            "catalog workers of n{node} before any crash: {workers:?}"
        );
    }

    let crashed_at = Instant::now();
    let (status, body) = cluster.crash(1, &admin, "catalog", 2);
    assert_eq!(status, 202, "crash of a catalog worker on n2: {body}");
    println!("crash answered in {:?}", crashed_at.elapsed());

    let counted = |observer: usize| {
        move |c: &TestCluster| {
            let service = catalog_service(c, observer, 2);
            let workers = catalog_workers(c, observer, 2);
            let restarted: Vec<_> = workers.iter().filter(|(_, r)| *r > 0).collect();
            service.is_some_and(|(restarts, _, status)| restarts >= 1 && status == "running")
                && restarted.len() == 1
                && restarted[0].1 == 1
        }
    };
    for observer in cluster.all() {
        let took = cluster.expect_within(
            crashed_at,
            Duration::from_secs(2),
            &format!("n{observer} reports one catalog worker of n2 restarted once"),
            counted(observer),
        );
        println!(
            "n{observer} reports the restart {took:?} after the crash: {:?} {:?}",
            catalog_service(&cluster, observer, 2),
            catalog_workers(&cluster, observer, 2)
        );
    }
    for node in [1, 3] {
        assert_eq!(
            catalog_service(&cluster, node, node),
            Some((0, 0, "running".to_string())),
            "catalog on n{node} untouched by a crash on n2"
        );
    }
    for id in [1, 500, 9_999] {
        let product = cluster.product(2, id);
        assert!(
            product.is_some_and(|p| p["id"] == id),
            "n2 serves product {id}"
        );
    }
    assert!(cluster.ready(2), "n2 still ready after the crash");
}

#[test]
fn a_crash_loop_escalates_and_is_visible() {
    let cluster = ready_cluster();
    let admin = cluster.admin_token(1);
    let id = 777;
    let (status, updated) = cluster.update_product(1, Some(&admin), id, &json!({ "stock": 3 }));
    assert_eq!(status, 200, "update before the crash loop: {updated}");
    let version = updated["version"].as_u64().expect("version");
    cluster.expect_within(
        Instant::now(),
        REPLICATION_TIMEOUT,
        "n3 has the update",
        |c| c.product(3, id).is_some_and(|p| p["version"] == version),
    );

    let first_crash_at = Instant::now();
    let mut answers = Vec::new();
    for _ in 0..5 {
        let sent_at = Instant::now();
        let (status, body) = cluster.crash(1, &admin, "catalog", 3);
        answers.push((status, sent_at.elapsed()));
        // A crash sent while the escalated service is down finds no worker.
        assert!(
            status == 202 || (status == 404 && error_of(&body).contains("no catalog worker")),
            "crash of catalog on n3: {status} {body}"
        );
    }
    println!("crash answers (status, time): {answers:?}");
    let accepted = answers.iter().filter(|(status, _)| *status == 202).count();
    assert!(
        accepted >= 4,
        "at least 4 of 5 crashes accepted: {answers:?}"
    );

    // Meanwhile every gateway keeps serving the product; note any answer
    // older than the update every replica had before the loop.
    let mut read_failures = Vec::new();
    let mut stale_reads = Vec::new();
    let mut reads = 0;
    let mut serve_everywhere = |c: &TestCluster| {
        for i in c.all() {
            reads += 1;
            let at = first_crash_at.elapsed();
            match c.try_get_json(i, &format!("/api/products/{id}")) {
                Some((200, product)) if product["version"] == version => {}
                Some((200, product)) => stale_reads.push(format!(
                    "n{i} at {at:?}: version {} updated_by {}",
                    product["version"], product["updated_by"]
                )),
                answer => read_failures.push(format!("n{i} at {at:?}: {answer:?}")),
            }
        }
    };
    let escalated = cluster.expect_within(
        first_crash_at,
        Duration::from_secs(5),
        "n1 reports an escalation of the catalog on n3",
        |c| {
            serve_everywhere(c);
            catalog_service(c, 1, 3).is_some_and(|(_, escalations, _)| escalations >= 1)
        },
    );
    println!(
        "escalation reported {escalated:?} after the first crash: {:?}",
        catalog_service(&cluster, 1, 3)
    );
    let recovered = cluster.expect_within(
        first_crash_at,
        Duration::from_secs(10),
        "the catalog on n3 runs again and n3 serves the updated product",
        |c| {
            serve_everywhere(c);
            catalog_service(c, 1, 3).is_some_and(|(_, _, status)| status == "running")
                && c.ready(3)
                && c.product(3, id).is_some_and(|p| p["version"] == version)
        },
    );
    println!(
        "catalog on n3 running again {recovered:?} after the first crash: {:?}, \
         {reads} reads during the loop, {} failed, {} stale: {stale_reads:?}",
        catalog_service(&cluster, 3, 3),
        read_failures.len(),
        stale_reads.len()
    );
    let view = cluster.cluster_view(2).expect("view of n2");
    let tree = view.trees.get("n3").expect("tree of n3");
    let catalog = tree.find("catalog").expect("catalog in the tree of n3");
    assert!(
        catalog.restarts >= 1,
        "catalog supervisor restarted: {catalog:?}"
    );
    assert_eq!(catalog.status, "running", "{catalog:?}");
    for node in [1, 2] {
        for observer in cluster.all() {
            assert_eq!(
                catalog_service(&cluster, observer, node),
                Some((0, 0, "running".to_string())),
                "catalog on n{node}, as n{observer} reports it, untouched by the loop on n3"
            );
        }
    }
    assert!(
        read_failures.is_empty(),
        "reads failed during the crash loop:\n{}",
        read_failures.join("\n")
    );
    let stale_elsewhere: Vec<_> = stale_reads
        .iter()
        .filter(|r| !r.starts_with("n3"))
        .collect();
    assert!(
        stale_elsewhere.is_empty(),
        "n1 or n2 served a version older than {version} during the loop on n3: {stale_elsewhere:?}"
    );
}
