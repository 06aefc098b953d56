//! Buying: checkout with an idempotency key, orders, payment settings.

use std::time::Duration;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use bazaar_actors::checkout::model::{Order, OrderError, OrderItem};
use bazaar_actors::checkout::protocol::{CheckoutFailure, PaymentSettings};
use serde::{Deserialize, Serialize};

use super::account::{Admin, User};
use super::error::{ApiError, ApiJson};
use super::GatewayState;

/// Header carrying the client's idempotency key.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// How long the client waits for a checkout, in ms (default
/// [`CHECKOUT_BUDGET`]): the owner refuses an order it cannot confirm in
/// that time, and the gateway answers by then whatever happens.
pub const REQUEST_TIMEOUT_MS: &str = "x-request-timeout-ms";
/// A checkout's budget when the client gives none.
pub const CHECKOUT_BUDGET: Duration = Duration::from_secs(5);
/// Shortest and longest budgets a client may ask for.
const BUDGET_RANGE_MS: std::ops::RangeInclusive<u64> = 10..=30_000;
/// Longest simulated payment latency an admin may set, in ms: the owner
/// serves one order at a time, so a slower provider would delay its
/// replication heartbeats.
const MAX_PAYMENT_LATENCY_MS: u64 = 1_000;

/// An order as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct OrderView {
    /// Unique id.
    pub order_id: String,
    /// The buyer.
    pub user: String,
    /// What was bought.
    pub items: Vec<OrderItem>,
    /// Total price.
    pub total_cents: u64,
    /// Always `confirmed`: only confirmed orders exist.
    pub status: String,
    /// Epoch of the owner that confirmed it.
    pub epoch: u64,
    /// The client's idempotency key.
    pub idempotency_key: String,
    /// Payment reference.
    pub payment_id: String,
    /// When it was confirmed, ms since the Unix epoch.
    pub created_ms: u64,
}

impl From<Order> for OrderView {
    fn from(order: Order) -> Self {
        Self {
            order_id: order.order_id,
            user: order.user,
            items: order.items,
            total_cents: order.total_cents,
            status: "confirmed".into(),
            epoch: order.epoch,
            idempotency_key: order.idempotency_key,
            payment_id: order.payment_id,
            created_ms: order.created_ms,
        }
    }
}

/// A list of orders.
#[derive(Debug, Serialize, Deserialize)]
pub struct OrderList {
    /// Oldest first.
    pub items: Vec<OrderView>,
}

pub(super) fn checkout_error(failure: CheckoutFailure) -> ApiError {
    match failure {
        CheckoutFailure::Rejected(OrderError::BadKey) => ApiError::bad_request(failure.to_string()),
        CheckoutFailure::Rejected(rejected) => {
            ApiError::new(StatusCode::CONFLICT, rejected.to_string())
        }
        CheckoutFailure::VoterChangeRefused(_) => {
            ApiError::new(StatusCode::CONFLICT, failure.to_string())
        }
        CheckoutFailure::NotOwner { .. } => {
            ApiError::unavailable("no checkout owner reachable (failover in progress or no quorum)")
        }
        CheckoutFailure::PaymentFailed(_) | CheckoutFailure::Unavailable(_) => {
            ApiError::unavailable(failure.to_string())
        }
        CheckoutFailure::NotPlaced { retry_after_ms, .. } => {
            ApiError::unavailable(failure.to_string())
                .not_placed()
                .retry_after(Duration::from_millis(retry_after_ms))
        }
    }
}

/// `POST /api/checkout` with `Idempotency-Key`: 201 with the new order, 200
/// with the key's existing order.
pub async fn checkout(
    State(state): State<GatewayState>,
    User(claims): User,
    headers: HeaderMap,
) -> Result<impl IntoResponse, ApiError> {
    let key = headers
        .get(IDEMPOTENCY_KEY)
        .ok_or_else(|| ApiError::bad_request("missing Idempotency-Key header"))?
        .to_str()
        .map_err(|_| ApiError::bad_request("Idempotency-Key must be visible ascii"))?;
    let budget = match headers.get(REQUEST_TIMEOUT_MS) {
        None => CHECKOUT_BUDGET,
        Some(value) => value
            .to_str()
            .ok()
            .and_then(|ms| ms.trim().parse::<u64>().ok())
            .filter(|ms| BUDGET_RANGE_MS.contains(ms))
            .map(Duration::from_millis)
            .ok_or_else(|| {
                ApiError::bad_request(format!(
                    "X-Request-Timeout-Ms must be whole ms from {} to {}",
                    BUDGET_RANGE_MS.start(),
                    BUDGET_RANGE_MS.end()
                ))
            })?,
    };
    let (order, created) = state
        .checkout
        .place_order(&claims.sub, key, budget)
        .await
        .map_err(checkout_error)?;
    let status = if created {
        StatusCode::CREATED
    } else {
        StatusCode::OK
    };
    Ok((status, Json(OrderView::from(order))))
}

/// `GET /api/orders`: the user's orders.
pub async fn orders(
    State(state): State<GatewayState>,
    User(claims): User,
) -> Result<Json<OrderList>, ApiError> {
    let orders = state
        .checkout
        .orders(Some(&claims.sub))
        .await
        .map_err(checkout_error)?;
    Ok(Json(OrderList {
        items: orders.into_iter().map(OrderView::from).collect(),
    }))
}

/// `GET /api/admin/orders`: every order, with its epoch.
pub async fn all_orders(
    State(state): State<GatewayState>,
    Admin(_): Admin,
) -> Result<Json<OrderList>, ApiError> {
    let orders = state.checkout.orders(None).await.map_err(checkout_error)?;
    Ok(Json(OrderList {
        items: orders.into_iter().map(OrderView::from).collect(),
    }))
}

/// Body of `PUT /api/admin/payment`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PaymentUpdate {
    /// Probability in [0, 1] that a charge fails.
    pub failure_rate: f64,
    /// Time a charge takes, in ms.
    pub latency_ms: u64,
}

/// Answer of `PUT /api/admin/payment`.
#[derive(Debug, Serialize, Deserialize)]
pub struct PaymentUpdated {
    /// Nodes that took the settings.
    pub updated_nodes: usize,
    /// The failure rate now.
    pub failure_rate: f64,
    /// The latency now.
    pub latency_ms: u64,
}

/// `PUT /api/admin/payment`: the simulated provider's failure rate and latency, on every node.
pub async fn set_payment(
    State(state): State<GatewayState>,
    Admin(_): Admin,
    ApiJson(update): ApiJson<PaymentUpdate>,
) -> Result<Json<PaymentUpdated>, ApiError> {
    if !(0.0..=1.0).contains(&update.failure_rate) {
        return Err(ApiError::unprocessable(
            "failure_rate must be between 0 and 1",
        ));
    }
    if update.latency_ms > MAX_PAYMENT_LATENCY_MS {
        return Err(ApiError::unprocessable(format!(
            "latency_ms must be at most {MAX_PAYMENT_LATENCY_MS}"
        )));
    }
    let settings = PaymentSettings {
        failure_rate: update.failure_rate,
        latency_ms: update.latency_ms,
    };
    let updated_nodes = state.checkout.set_payment(settings).await;
    Ok(Json(PaymentUpdated {
        updated_nodes,
        failure_rate: settings.failure_rate,
        latency_ms: settings.latency_ms,
    }))
}
