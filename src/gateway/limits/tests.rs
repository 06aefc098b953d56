//! Unit tests of the gateway's limits: token buckets, the client cap and
//! its eviction order, client keys, deadlines and load shedding.

use super::*;

fn config(max_clients: usize) -> RateConfig {
    RateConfig {
        per_sec: 10.0,
        burst: 20.0,
        max_clients,
    }
}

fn ip(last: u8) -> IpAddr {
    IpAddr::from([10, 0, 0, last])
}

#[test]
fn a_burst_is_admitted_then_refused_until_refilled() {
    let limiter = RateLimiter::new(config(10));
    let start = Instant::now();
    for _ in 0..20 {
        assert!(limiter.check(ip(1), start).is_ok());
    }
    let wait = limiter.check(ip(1), start).unwrap_err();
    assert!(wait <= Duration::from_millis(100), "{wait:?}");
    // Another client is not affected.
    assert!(limiter.check(ip(2), start).is_ok());
    // 100 ms later one token is back, and only one.
    let later = start + Duration::from_millis(100);
    assert!(limiter.check(ip(1), later).is_ok());
    assert!(limiter.check(ip(1), later).is_err());
}

#[test]
fn refill_stops_at_the_burst() {
    let limiter = RateLimiter::new(config(10));
    let start = Instant::now();
    assert!(limiter.check(ip(1), start).is_ok());
    let much_later = start + Duration::from_secs(3600);
    for _ in 0..20 {
        assert!(limiter.check(ip(1), much_later).is_ok());
    }
    assert!(limiter.check(ip(1), much_later).is_err());
}

#[test]
fn memory_is_bounded_and_idle_clients_go_first() {
    let limiter = RateLimiter::new(config(3));
    let start = Instant::now();
    // Client 1 drains its bucket; clients 2 and 3 make one request.
    for _ in 0..20 {
        limiter.check(ip(1), start).unwrap();
    }
    limiter.check(ip(2), start).unwrap();
    limiter.check(ip(3), start).unwrap();
    // 1 s later 2 and 3 are full again (idle), 1 is not.
    let later = start + Duration::from_secs(1);
    limiter.check(ip(4), later).unwrap();
    assert_eq!(limiter.tracked(), 2, "full buckets are dropped first");
    // Client 1 is still remembered as having spent its burst.
    for _ in 0..10 {
        limiter.check(ip(1), later).unwrap();
    }
    assert!(limiter.check(ip(1), later).is_err());
}

#[test]
fn at_the_cap_with_no_idle_client_the_least_recent_goes() {
    let limiter = RateLimiter::new(config(2));
    let start = Instant::now();
    for _ in 0..20 {
        limiter.check(ip(1), start).unwrap();
    }
    let later = start + Duration::from_millis(10);
    for _ in 0..20 {
        limiter.check(ip(2), later).unwrap();
    }
    limiter.check(ip(3), later).unwrap();
    assert_eq!(limiter.tracked(), 2);
    // Client 1 was forgotten: it starts with a full bucket again.
    assert!(limiter.check(ip(2), later).is_err());
    limiter.check(ip(1), later).unwrap();
}

/// Sends `GET path` through `router` in-process.
async fn get(router: axum::Router, path: &str) -> Response {
    use tower_service::Service;
    let request = Request::get(path).body(axum::body::Body::empty()).unwrap();
    router.clone().call(request).await.unwrap()
}

async fn error_of(response: Response) -> String {
    let body = axum::body::to_bytes(response.into_body(), 4096)
        .await
        .unwrap();
    let body: super::super::error::ErrorBody = serde_json::from_slice(&body).unwrap();
    body.error
}

#[tokio::test]
async fn a_late_route_answers_503_json_with_retry_after() {
    let slow = axum::routing::get(|| async {
        tokio::time::sleep(Duration::from_secs(5)).await;
        "done"
    });
    let router = axum::Router::new().route("/slow", within(Duration::from_millis(20), slow));
    let response = get(router, "/slow").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(error_of(response).await, "timed out: outcome unknown");
}

#[tokio::test]
async fn a_saturated_node_sheds_load_but_not_liveness() {
    let router = axum::Router::new()
        .route("/api/products", axum::routing::get(|| async { "products" }))
        .route("/healthz", axum::routing::get(|| async { "ok" }))
        .layer(middleware::from_fn_with_state(
            Arc::new(Semaphore::new(0)),
            shed_load,
        ));
    let response = get(router.clone(), "/api/products").await;
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(response.headers().contains_key(header::RETRY_AFTER));
    assert_eq!(error_of(response).await, "overloaded, retry later");
    assert_eq!(get(router, "/healthz").await.status(), StatusCode::OK);
}

#[test]
fn ipv4_clients_of_a_dual_stack_listener_are_keyed_by_their_ipv4() {
    let mapped_a: IpAddr = "::ffff:10.0.0.1".parse().unwrap();
    let mapped_b: IpAddr = "::ffff:10.0.0.2".parse().unwrap();
    assert_eq!(client_key(mapped_a), ip(1));
    assert_ne!(client_key(mapped_a), client_key(mapped_b));
    let limiter = RateLimiter::new(config(10));
    let start = Instant::now();
    for _ in 0..20 {
        limiter.check(mapped_a, start).unwrap();
    }
    assert!(limiter.check(mapped_a, start).is_err());
    assert!(
        limiter.check(ip(1), start).is_err(),
        "one client, one bucket"
    );
    assert!(limiter.check(mapped_b, start).is_ok(), "another client");
}

#[test]
fn a_rate_of_zero_admits_everything_and_tracks_nobody() {
    let limiter = RateLimiter::new(RateConfig {
        per_sec: 0.0,
        burst: 0.0,
        max_clients: 10,
    });
    let start = Instant::now();
    for _ in 0..10_000 {
        assert!(limiter.check(ip(1), start).is_ok());
    }
    assert_eq!(limiter.tracked(), 0);
    assert_eq!(parse_rate_limit("0"), Ok(0.0));
    assert_eq!(parse_rate_limit("2500"), Ok(2500.0));
    assert!(parse_rate_limit("-1").is_err());
    assert!(parse_rate_limit("inf").is_err());
    assert!(parse_rate_limit("lots").is_err());
}

#[test]
fn a_flood_of_new_addresses_at_the_cap_keeps_a_drained_client() {
    let limiter = RateLimiter::new(config(1000));
    let start = Instant::now();
    for _ in 0..20 {
        limiter.check(ip(1), start).unwrap();
    }
    // 9,000 one-request clients, one every 200 µs: each is full again
    // 100 ms later and goes first when room is needed; client 1 stays
    // drained for 2 s and is still remembered.
    for n in 0..9_000u32 {
        let at = start + Duration::from_micros(200 * u64::from(n));
        let client = IpAddr::from((0x0b00_0000 + n).to_be_bytes());
        limiter.check(client, at).unwrap();
        assert!(limiter.tracked() <= 1000);
    }
    let at = start + Duration::from_millis(1900);
    assert!(limiter.check(ip(1), at).is_ok());
    // 1.9 s refilled 19 tokens, one just taken: 18 left, not the burst.
    for _ in 0..18 {
        limiter.check(ip(1), at).unwrap();
    }
    assert!(limiter.check(ip(1), at).is_err());
}

#[test]
fn ipv6_clients_share_a_bucket_per_64() {
    let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
    let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
    let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
    assert_eq!(client_key(a), client_key(b));
    assert_ne!(client_key(a), client_key(c));
}
