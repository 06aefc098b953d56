//! Limits that keep one node's gateway answering under too much load:
//! per-client rate limiting, load shedding, and per-route deadlines.
//!
//! Order of the layers, outermost first (see `super::router`): the rate
//! limiter ([`rate_limit`], 429), the concurrency limit ([`shed_load`],
//! 503), the router's global backstop deadline, then each route under its
//! own deadline ([`within`]). A flooding client is refused before it can
//! take an in-flight slot.
//!
//! - **Rate limit.** One token bucket per client IP ([`RATE_PER_SEC`]
//!   tokens a second, up to [`RATE_BURST`]); an empty bucket answers 429
//!   with `Retry-After`. IPv6 clients are keyed by their /64, which is what
//!   one host typically owns. The buckets are a small hand-written map
//!   behind one mutex rather than `governor`: the whole policy is ~40 lines
//!   of pure, unit-tested arithmetic, the critical section is a hash lookup,
//!   and the map's memory bound (below) is ours to state instead of a
//!   crate's. Memory is bounded by [`MAX_TRACKED_CLIENTS`]: when a new
//!   client arrives at the cap, every bucket that has refilled to full is
//!   dropped first (a full bucket is indistinguishable from a new one, so
//!   forgetting it changes nothing), and if the map is still full, the
//!   least recently seen client is dropped. The probes and `/metrics`
//!   ([`EXEMPT_PATHS`]) are never limited, so monitoring keeps working
//!   during a flood. Without `ConnectInfo` (a router served in-process)
//!   there is no key and nothing is limited.
//! - **Concurrency limit.** At most [`MAX_IN_FLIGHT`] requests are handled
//!   at once; beyond that the node answers 503 with `Retry-After` at once
//!   (load shedding, not queueing: a queue only adds latency to requests
//!   whose clients may already have given up). `/healthz` and `/metrics`
//!   are exempt so an overloaded node is not mistaken for a dead one.
//! - **Deadlines.** [`within`] puts a route under a deadline; a late
//!   request answers 503 `timed out: outcome unknown` with `Retry-After`
//!   (a write may still complete after the answer).

use std::collections::HashMap;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::MethodRouter;
use parking_lot::Mutex;
use tokio::sync::Semaphore;

use super::ApiError;

/// Requests handled at once per node before new ones are shed: enough to
/// keep two cores busy with requests that mostly wait on actors, few enough
/// that each in-flight request still gets its share of a 5 s read deadline.
pub const MAX_IN_FLIGHT: usize = 512;

/// Sustained requests per second one client address may make. On one
/// machine every load generator, test and `bazaar demo` shares 127.0.0.1,
/// so the budget leaves room for a load test of a few hundred requests a
/// second per gateway, and still stops a flood long before it saturates a
/// debug-build node.
pub const RATE_PER_SEC: f64 = 1000.0;

/// Requests one client address may make in a burst.
pub const RATE_BURST: f64 = 2000.0;

/// Clients tracked by the rate limiter at most: ~10k buckets of ~50 bytes
/// each is well under a megabyte however many addresses a flood uses.
pub const MAX_TRACKED_CLIENTS: usize = 10_000;

/// Paths never rate limited: probes and metrics must keep working while
/// a client floods the node.
pub const EXEMPT_PATHS: &[&str] = &["/healthz", "/readyz", "/metrics"];

/// Paths never shed: liveness and metrics must not fail just because the
/// node is busy (`/readyz` is shed on purpose: a saturated node is not
/// ready for more).
const SHED_EXEMPT_PATHS: &[&str] = &["/healthz", "/metrics"];

/// Deadline of reads (products, search, cluster): they answer from local
/// replicas in milliseconds, so 5 s means something is wrong.
pub const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Deadline of sign-up and login: argon2 hashing takes tens of
/// milliseconds by design and queues on the blocking pool under load.
pub const ACCOUNT_TIMEOUT: Duration = Duration::from_secs(10);

/// Deadline of checkout: it may wait for a checkout owner to fail over
/// (about 1.5 s to detect a frozen node) and for a quorum write.
pub const CHECKOUT_TIMEOUT: Duration = Duration::from_secs(15);

/// How long the whole request head may take to arrive (against slowloris
/// clients that hold connections open by sending a header a byte at a
/// time): a real client sends its head in one packet.
pub const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(5);

/// Rate-limiter settings; see the module docs.
#[derive(Debug, Clone, Copy)]
pub struct RateConfig {
    /// Tokens added per second.
    pub per_sec: f64,
    /// Most tokens a bucket holds.
    pub burst: f64,
    /// Most clients tracked at once.
    pub max_clients: usize,
}

impl Default for RateConfig {
    fn default() -> Self {
        Self {
            per_sec: RATE_PER_SEC,
            burst: RATE_BURST,
            max_clients: MAX_TRACKED_CLIENTS,
        }
    }
}

/// One client's token bucket.
#[derive(Debug, Clone, Copy)]
struct TokenBucket {
    tokens: f64,
    /// Last refill, which is also when the client was last seen.
    updated: Instant,
}

impl TokenBucket {
    fn full(config: &RateConfig, now: Instant) -> Self {
        Self {
            tokens: config.burst,
            updated: now,
        }
    }

    fn refill(&mut self, config: &RateConfig, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * config.per_sec).min(config.burst);
        self.updated = now;
    }

    /// Takes a token, or says how long until one is there.
    fn try_take(&mut self, config: &RateConfig, now: Instant) -> Result<(), Duration> {
        self.refill(config, now);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            return Ok(());
        }
        Err(Duration::from_secs_f64(
            (1.0 - self.tokens) / config.per_sec,
        ))
    }

    fn is_full_at(&self, config: &RateConfig, now: Instant) -> bool {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens + elapsed * config.per_sec >= config.burst
    }
}

/// Token buckets per client with a bounded number of clients.
#[derive(Debug)]
pub struct RateLimiter {
    config: RateConfig,
    buckets: Mutex<HashMap<IpAddr, TokenBucket>>,
}

impl RateLimiter {
    /// An empty limiter.
    pub fn new(config: RateConfig) -> Self {
        Self {
            config,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Admits one request from `client` at `now`, or says how long it
    /// should wait.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        let key = client_key(client);
        let mut buckets = self.buckets.lock();
        if !buckets.contains_key(&key) && buckets.len() >= self.config.max_clients {
            self.evict(&mut buckets, now);
        }
        buckets
            .entry(key)
            .or_insert_with(|| TokenBucket::full(&self.config, now))
            .try_take(&self.config, now)
    }

    /// Clients tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().len()
    }

    /// Makes room for one client: drops full buckets, then if need be the
    /// least recently seen client.
    fn evict(&self, buckets: &mut HashMap<IpAddr, TokenBucket>, now: Instant) {
        buckets.retain(|_, bucket| !bucket.is_full_at(&self.config, now));
        if buckets.len() < self.config.max_clients {
            return;
        }
        let oldest = buckets
            .iter()
            .min_by_key(|(_, bucket)| bucket.updated)
            .map(|(key, _)| *key);
        if let Some(oldest) = oldest {
            buckets.remove(&oldest);
        }
    }
}

/// The rate-limit key of an address: IPv4 as is, IPv6 by its /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => {
            let prefix = u128::from(v6) & !((1u128 << 64) - 1);
            IpAddr::V6(Ipv6Addr::from(prefix))
        }
    }
}

/// The state of [`shed_load`]: [`MAX_IN_FLIGHT`] permits.
pub fn in_flight_permits() -> Arc<Semaphore> {
    Arc::new(Semaphore::new(MAX_IN_FLIGHT))
}

/// Puts `route` under `deadline`.
pub fn within<S: Clone + Send + Sync + 'static>(
    deadline: Duration,
    route: MethodRouter<S>,
) -> MethodRouter<S> {
    route.layer(middleware::from_fn_with_state(deadline, timeout))
}

/// Middleware: answers 503 `timed out: outcome unknown` when the request
/// takes longer than the deadline in its state.
pub async fn timeout(State(deadline): State<Duration>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_owned();
    match tokio::time::timeout(deadline, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(%path, deadline_ms = deadline.as_millis() as u64, "request timed out");
            ApiError::unavailable("timed out: outcome unknown").into_response()
        }
    }
}

/// Middleware: 503 with `Retry-After` when [`MAX_IN_FLIGHT`] requests are
/// already being handled.
pub async fn shed_load(
    State(in_flight): State<Arc<Semaphore>>,
    request: Request,
    next: Next,
) -> Response {
    if SHED_EXEMPT_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let Ok(_permit) = in_flight.try_acquire() else {
        return ApiError::unavailable("overloaded, retry later").into_response();
    };
    next.run(request).await
}

/// Middleware: 429 with `Retry-After` when the client's bucket is empty.
pub async fn rate_limit(
    State(rate): State<Arc<RateLimiter>>,
    request: Request,
    next: Next,
) -> Response {
    if EXEMPT_PATHS.contains(&request.uri().path()) {
        return next.run(request).await;
    }
    let Some(ConnectInfo(client)) = request.extensions().get::<ConnectInfo<SocketAddr>>() else {
        return next.run(request).await;
    };
    match rate.check(client.ip(), Instant::now()) {
        Ok(()) => next.run(request).await,
        Err(wait) => too_many_requests(wait),
    }
}

/// 429 with `Retry-After` in whole seconds, at least 1.
fn too_many_requests(wait: Duration) -> Response {
    let seconds = wait.as_secs_f64().ceil().max(1.0) as u64;
    let mut response =
        ApiError::new(StatusCode::TOO_MANY_REQUESTS, "too many requests").into_response();
    response
        .headers_mut()
        .insert(header::RETRY_AFTER, HeaderValue::from(seconds));
    response
}

#[cfg(test)]
mod tests {
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
    fn ipv6_clients_share_a_bucket_per_64() {
        let a: IpAddr = "2001:db8:1:2::1".parse().unwrap();
        let b: IpAddr = "2001:db8:1:2:ffff::9".parse().unwrap();
        let c: IpAddr = "2001:db8:1:3::1".parse().unwrap();
        assert_eq!(client_key(a), client_key(b));
        assert_ne!(client_key(a), client_key(c));
    }
}
