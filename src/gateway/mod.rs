//! The HTTP gateway every node serves, so that the cluster looks like one
//! shop from any node. Handlers are thin: they check input, call a service
//! client (or, for product and search reads, read the snapshot the local
//! service published), and map the outcome to a status.
//!
//! | route | |
//! |---|---|
//! | `GET /`, `GET /dashboard.js`, `POST /api/admin/kill` | [`dashboard`] |
//! | `GET /healthz`, `GET /readyz`, `GET /api/cluster` | [`cluster`] |
//! | `GET /metrics` | [`metrics`] |
//! | `GET /api/products`, `GET /api/products/{id}`, `GET /api/search` | [`shop`] |
//! | `POST /api/signup`, `POST /api/login` | [`account`] |
//! | `PUT /api/admin/products/{id}`, `POST /api/admin/crash` | [`admin`] |
//! | `POST /api/admin/voters` | [`voters`] |
//! | `GET /api/cart`, `POST /api/cart/items`, `DELETE /api/cart/items/{product_id}` | [`cart`] |
//! | `POST /api/checkout`, `GET /api/orders`, `GET /api/admin/orders`, `PUT /api/admin/payment` | [`checkout`] |
//!
//! Limits: request bodies up to [`MAX_BODY_BYTES`]; every request ends
//! within its route's deadline and at most [`REQUEST_TIMEOUT`] (503
//! after); per-client rate limit (429), in-flight limit (503) and
//! header-read timeout (see [`limits`], [`serve`]); every error is JSON
//! `{"error": "..."}` with its status.

pub mod account;
pub mod admin;
pub mod cart;
pub mod checkout;
pub mod cluster;
pub mod dashboard;
pub mod error;
pub mod events;
pub mod limits;
pub mod metrics;
pub mod serve;
pub mod shop;
pub mod trace;
pub mod voters;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::extract::DefaultBodyLimit;
use axum::routing::{delete, get, post, put};
use axum::{middleware, Router};
use bazaar_actors::auth::model::TokenKey;
use bazaar_actors::auth::throttle::LoginThrottle;
use bazaar_actors::cart::CartClient;
use bazaar_actors::checkout::CheckoutClient;
use bazaar_actors::context::Snapshots;
use bazaar_actors::host::HostStatus;
use bazaar_actors::{auth::AuthClient, catalog::CatalogClient, search::SearchClient};
use bazaar_cluster::{MembershipView, Voters};
use limits::{within, ACCOUNT_TIMEOUT, CHECKOUT_TIMEOUT, READ_TIMEOUT};
use tokio::sync::watch;

pub use cluster::{CheckoutReport, ClusterReport, MemberReport};
pub use error::ApiError;

/// Largest request body accepted, in bytes.
pub const MAX_BODY_BYTES: usize = 64 * 1024;
/// Longest any request may take before the gateway answers 503: a
/// backstop above every per-route deadline in [`limits`].
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);

/// What the handlers share.
#[derive(Clone)]
pub struct GatewayState {
    view: watch::Receiver<MembershipView>,
    host: watch::Receiver<HostStatus>,
    /// Checkout's voter set as this node reads it: readiness needs a
    /// majority of it reachable, and `/api/cluster` shows it.
    voters: Voters,
    /// Latched: the node has seen a quorum once.
    joined: Arc<AtomicBool>,
    token_key: TokenKey,
    catalog: CatalogClient,
    search: SearchClient,
    /// The snapshots this node's catalog and search publish: product and
    /// search reads answer from them while the service runs here, and
    /// call `catalog` / `search` otherwise (see [`shop`]).
    snapshots: Snapshots,
    auth: AuthClient,
    cart: CartClient,
    checkout: CheckoutClient,
    /// Rendered at `GET /metrics`; `None` serves 404.
    metrics: Option<metrics_exporter_prometheus::PrometheusHandle>,
    /// `POST /api/admin/kill` is enabled (nodes started by `bazaar up`).
    kill_switch: bool,
    /// The per-client rate limit.
    rate: limits::RateConfig,
    /// Failed logins per account and address (see [`account`]).
    logins: Arc<parking_lot::Mutex<LoginThrottle>>,
    /// This node's recent events, served in `/api/cluster`.
    events: events::RecentEvents,
}

impl GatewayState {
    /// State over this node's membership view, service host and voter
    /// set; spawns the task that latches `joined`.
    pub fn new(
        view: watch::Receiver<MembershipView>,
        host: watch::Receiver<HostStatus>,
        voters: Voters,
        token_key: TokenKey,
    ) -> Self {
        let joined = Arc::new(AtomicBool::new(view.borrow().has_quorum()));
        let mut changes = view.clone();
        let latch = joined.clone();
        tokio::spawn(async move {
            while !latch.load(Ordering::Relaxed) {
                if changes.borrow_and_update().has_quorum() {
                    latch.store(true, Ordering::Relaxed);
                    tracing::info!("node joined its cluster");
                    break;
                }
                if changes.changed().await.is_err() {
                    break;
                }
            }
        });
        Self {
            cart: CartClient::with_view(view.clone()),
            events: events::spawn_recorder(view.clone(), CheckoutClient::new()),
            view,
            host,
            voters,
            joined,
            token_key,
            catalog: CatalogClient::new(),
            search: SearchClient::new(),
            snapshots: Snapshots::default(),
            auth: AuthClient::new(),
            checkout: CheckoutClient::new(),
            metrics: None,
            kill_switch: false,
            rate: limits::RateConfig::default(),
            logins: Arc::default(),
        }
    }

    /// Reads products and search results from the snapshots that this
    /// node's services publish into `snapshots` (the handles the node gave
    /// them), instead of calling the services.
    pub fn with_snapshots(mut self, snapshots: Snapshots) -> Self {
        self.snapshots = snapshots;
        self
    }

    /// Limits each client address to `per_sec` requests a second, with
    /// bursts of twice that.
    pub fn with_rate_limit(mut self, per_sec: f64) -> Self {
        self.rate.per_sec = per_sec;
        self.rate.burst = 2.0 * per_sec;
        self
    }
}

/// The gateway's routes and limits.
pub fn router(state: GatewayState) -> Router {
    let rate_limiter = Arc::new(limits::RateLimiter::new(state.rate));
    Router::new()
        .route("/healthz", get(cluster::healthz))
        .route("/readyz", get(cluster::readyz))
        .route("/api/cluster", within(READ_TIMEOUT, get(cluster::cluster)))
        .route("/metrics", get(metrics::render))
        .route("/api/products", within(READ_TIMEOUT, get(shop::products)))
        .route(
            "/api/products/{id}",
            within(READ_TIMEOUT, get(shop::product)),
        )
        .route("/api/search", within(READ_TIMEOUT, get(shop::search)))
        .route(
            "/api/signup",
            within(ACCOUNT_TIMEOUT, post(account::sign_up)),
        )
        .route("/api/login", within(ACCOUNT_TIMEOUT, post(account::login)))
        .route("/api/admin/products/{id}", put(admin::update_product))
        .route("/api/admin/crash", post(admin::crash))
        .route(
            "/api/admin/voters",
            within(CHECKOUT_TIMEOUT, post(voters::change_voters)),
        )
        .route("/api/admin/kill", post(dashboard::kill_node))
        .route("/", get(dashboard::index))
        .route("/dashboard.js", get(dashboard::script))
        .route("/api/cart", get(cart::get_cart))
        .route("/api/cart/items", post(cart::add_item))
        .route("/api/cart/items/{product_id}", delete(cart::remove_item))
        .route(
            "/api/checkout",
            within(CHECKOUT_TIMEOUT, post(checkout::checkout)),
        )
        .route("/api/orders", get(checkout::orders))
        .route("/api/admin/orders", get(checkout::all_orders))
        .route("/api/admin/payment", put(checkout::set_payment))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .layer(middleware::from_fn_with_state(
            REQUEST_TIMEOUT,
            limits::timeout,
        ))
        .layer(middleware::from_fn_with_state(
            limits::in_flight_permits(),
            limits::shed_load,
        ))
        .layer(middleware::from_fn_with_state(
            rate_limiter,
            limits::rate_limit,
        ))
        .layer(middleware::from_fn(metrics::track))
        .layer(middleware::from_fn(trace::traced))
        .with_state(state)
}
