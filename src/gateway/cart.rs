//! The shopper's cart: read it, add a product, remove one. Every route
//! needs a token; the cart is the token's user's.
//!
//! A change carries a request id: derived from the `Idempotency-Key`
//! header when the client sends one (so a client retrying after a lost
//! answer changes the cart once), else fresh per HTTP request. The cart
//! client retries with that id internally; a 503 means the outcome is
//! unknown and the same request (same key) may be sent again.

use axum::extract::State;
use axum::http::HeaderMap;
use axum::Json;
use bazaar_actors::cart::model::{Cart, CartChange, CartError, RequestId, MAX_QUANTITY};
use bazaar_actors::cart::CartClientError;
use serde::{Deserialize, Serialize};

use super::account::User;
use super::error::{ApiError, ApiJson, ApiPath};
use super::shop::catalog_error;
use super::GatewayState;

/// Header whose value makes a change idempotent across HTTP retries.
pub const IDEMPOTENCY_KEY: &str = "idempotency-key";
/// Longest accepted `Idempotency-Key`, in bytes.
const MAX_KEY_BYTES: usize = 128;

/// A cart as the API shows it.
#[derive(Debug, Serialize, Deserialize)]
pub struct CartView {
    /// The cart's user.
    pub user: String,
    /// Products in id order.
    pub items: Vec<CartItem>,
    /// Changes applied to the cart so far.
    pub version: u64,
}

/// One line of a cart.
#[derive(Debug, Serialize, Deserialize)]
pub struct CartItem {
    /// The product.
    pub product_id: u64,
    /// Units of it.
    pub quantity: u32,
}

impl From<Cart> for CartView {
    fn from(cart: Cart) -> Self {
        Self {
            user: cart.user,
            items: cart
                .items
                .into_iter()
                .map(|(product_id, quantity)| CartItem {
                    product_id,
                    quantity,
                })
                .collect(),
            version: cart.version,
        }
    }
}

/// Body of `POST /api/cart/items`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AddItem {
    /// The product, which must exist.
    pub product_id: u64,
    /// Units to add, 1 to 99.
    pub quantity: u32,
}

fn cart_error(err: CartClientError) -> ApiError {
    match err {
        CartClientError::Rejected(rejected @ CartError::VersionOverflow) => {
            ApiError::new(axum::http::StatusCode::CONFLICT, rejected.to_string())
        }
        CartClientError::Rejected(rejected) => ApiError::unprocessable(rejected.to_string()),
        CartClientError::Unavailable(reason) => ApiError::unavailable(reason),
    }
}

/// The request id of a change: from `Idempotency-Key`, else fresh.
fn request_id(headers: &HeaderMap, user: &str) -> Result<RequestId, ApiError> {
    let Some(key) = headers.get(IDEMPOTENCY_KEY) else {
        return Ok(RequestId::random());
    };
    let key = key
        .to_str()
        .ok()
        .filter(|key| !key.is_empty() && key.len() <= MAX_KEY_BYTES)
        .ok_or_else(|| {
            ApiError::bad_request(format!(
                "idempotency-key must be 1 to {MAX_KEY_BYTES} visible ascii characters"
            ))
        })?;
    Ok(RequestId::from_key(user, key))
}

/// `GET /api/cart`: the user's cart.
pub async fn get_cart(
    State(state): State<GatewayState>,
    User(claims): User,
) -> Result<Json<CartView>, ApiError> {
    let cart = state.cart.get(&claims.sub).await.map_err(cart_error)?;
    Ok(Json(cart.into()))
}

/// `POST /api/cart/items`: adds units of a product; the cart after it.
pub async fn add_item(
    State(state): State<GatewayState>,
    User(claims): User,
    headers: HeaderMap,
    ApiJson(item): ApiJson<AddItem>,
) -> Result<Json<CartView>, ApiError> {
    if !(1..=MAX_QUANTITY).contains(&item.quantity) {
        return Err(ApiError::unprocessable(format!(
            "quantity must be between 1 and {MAX_QUANTITY}"
        )));
    }
    let request_id = request_id(&headers, &claims.sub)?;
    if state
        .catalog
        .product(item.product_id)
        .await
        .map_err(catalog_error)?
        .is_none()
    {
        return Err(ApiError::not_found(format!(
            "no product {}",
            item.product_id
        )));
    }
    let change = CartChange::Add {
        product_id: item.product_id,
        quantity: item.quantity,
    };
    let cart = state
        .cart
        .change(&claims.sub, change, request_id)
        .await
        .map_err(cart_error)?;
    tracing::debug!(user = %claims.sub, product = item.product_id, version = cart.version, "cart item added");
    Ok(Json(cart.into()))
}

/// `DELETE /api/cart/items/{product_id}`: removes a product (a no-op if
/// it is not in the cart); the cart after it.
pub async fn remove_item(
    State(state): State<GatewayState>,
    User(claims): User,
    headers: HeaderMap,
    ApiPath(product_id): ApiPath<u64>,
) -> Result<Json<CartView>, ApiError> {
    let request_id = request_id(&headers, &claims.sub)?;
    let cart = state
        .cart
        .change(&claims.sub, CartChange::Remove { product_id }, request_id)
        .await
        .map_err(cart_error)?;
    Ok(Json(cart.into()))
}
