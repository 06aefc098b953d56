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
//!   one host typically owns; an IPv4 client reaching a dual-stack `[::]`
//!   listener as `::ffff:a.b.c.d` is keyed by its IPv4 address. A limit
//!   of 0 (`--rate-limit 0`) turns the limiter off, for benchmarks from
//!   one machine. The buckets are a small hand-written map
//!   behind one mutex rather than `governor`: the whole policy is ~40 lines
//!   of pure, unit-tested arithmetic, the critical section is a hash lookup,
//!   and the map's memory bound (below) is ours to state instead of a
//!   crate's. Memory is bounded by [`MAX_TRACKED_CLIENTS`]: when a new
//!   client arrives at the cap, every bucket that has refilled to full is
//!   dropped first (a full bucket is indistinguishable from a new one, so
//!   forgetting it changes nothing), and if the map is still full, the
//!   least recently seen client is dropped. Two ordered indexes (by when a
//!   bucket is full again, by when its client was last seen) make both
//!   steps cost O(log n) per dropped client, not a scan of the map under
//!   the lock. The probes and `/metrics`
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

use std::collections::{BTreeSet, HashMap};
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

    /// When the bucket will hold `burst` tokens again (`per_sec` > 0).
    fn full_at(&self, config: &RateConfig) -> Instant {
        let missing = (config.burst - self.tokens).max(0.0);
        self.updated + Duration::from_secs_f64(missing / config.per_sec)
    }
}

/// Parses `--rate-limit`: requests a second, 0 for no limit.
pub fn parse_rate_limit(value: &str) -> Result<f64, String> {
    let rate: f64 = value
        .parse()
        .map_err(|_| format!("{value:?} is not a number"))?;
    if !(rate.is_finite() && rate >= 0.0) {
        return Err("must be 0 (no limit) or a positive number".into());
    }
    Ok(rate)
}

/// Token buckets per client with a bounded number of clients.
#[derive(Debug)]
pub struct RateLimiter {
    config: RateConfig,
    buckets: Mutex<Buckets>,
}

impl RateLimiter {
    /// An empty limiter.
    pub fn new(config: RateConfig) -> Self {
        Self {
            config,
            buckets: Mutex::new(Buckets::default()),
        }
    }

    /// Admits one request from `client` at `now`, or says how long it
    /// should wait. A limit of 0 requests a second admits everything.
    pub fn check(&self, client: IpAddr, now: Instant) -> Result<(), Duration> {
        if self.config.is_unlimited() {
            return Ok(());
        }
        let key = client_key(client);
        let mut buckets = self.buckets.lock();
        let mut bucket = match buckets.remove(&self.config, key) {
            Some(bucket) => bucket,
            None => {
                if buckets.len() >= self.config.max_clients {
                    buckets.make_room(&self.config, now);
                }
                TokenBucket::full(&self.config, now)
            }
        };
        let verdict = bucket.try_take(&self.config, now);
        buckets.insert(&self.config, key, bucket);
        verdict
    }

    /// Clients tracked now.
    pub fn tracked(&self) -> usize {
        self.buckets.lock().len()
    }
}

impl RateConfig {
    /// A rate of 0 (or less) turns the limiter off.
    pub fn is_unlimited(&self) -> bool {
        self.per_sec <= 0.0
    }
}

/// The buckets, with two ordered indexes so that making room at the cap
/// costs O(log n) per dropped client instead of scanning every bucket.
///
/// Invariant: a client is in `by_client`, `by_full_at` and `by_last_seen`
/// or in none of them.
#[derive(Debug, Default)]
struct Buckets {
    by_client: HashMap<IpAddr, TokenBucket>,
    /// When each bucket will have refilled to full, earliest first.
    by_full_at: BTreeSet<(Instant, IpAddr)>,
    /// When each client was last seen, least recent first.
    by_last_seen: BTreeSet<(Instant, IpAddr)>,
}

impl Buckets {
    fn len(&self) -> usize {
        self.by_client.len()
    }

    fn insert(&mut self, config: &RateConfig, key: IpAddr, bucket: TokenBucket) {
        self.by_full_at.insert((bucket.full_at(config), key));
        self.by_last_seen.insert((bucket.updated, key));
        let previous = self.by_client.insert(key, bucket);
        debug_assert!(previous.is_none(), "a client has one bucket");
    }

    fn remove(&mut self, config: &RateConfig, key: IpAddr) -> Option<TokenBucket> {
        let bucket = self.by_client.remove(&key)?;
        self.by_full_at.remove(&(bucket.full_at(config), key));
        self.by_last_seen.remove(&(bucket.updated, key));
        Some(bucket)
    }

    /// Makes room for one client: drops every full bucket (a full bucket
    /// is the same as a new one, so forgetting it changes nothing), then if
    /// need be the least recently seen client.
    fn make_room(&mut self, config: &RateConfig, now: Instant) {
        while let Some(&(full_at, key)) = self.by_full_at.first() {
            if full_at > now {
                break;
            }
            self.remove(config, key);
        }
        if self.len() < config.max_clients {
            return;
        }
        if let Some(&(_, oldest)) = self.by_last_seen.first() {
            self.remove(config, oldest);
        }
    }
}

/// The rate-limit key of an address: IPv4 as is (also when it arrives as
/// an IPv4-mapped IPv6 address on a dual-stack `[::]` listener), IPv6 by
/// its /64.
fn client_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V4(v4) => IpAddr::V4(v4),
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
mod tests;
