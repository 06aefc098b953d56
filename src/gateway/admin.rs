//! Admin routes: product updates and crash injection.

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::Json;
use bazaar_actors::catalog::model::{Product, ProductPatch};
use bazaar_actors::host::manifest::{AUTH, CART, CATALOG, SEARCH};
use serde::{Deserialize, Serialize};

use super::account::Admin;
use super::error::{ApiError, ApiJson, ApiPath};
use super::shop::catalog_error;
use super::GatewayState;

/// Body of `PUT /api/admin/products/{id}`: any of the fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProductUpdate {
    /// New price in cents.
    pub price_cents: Option<u64>,
    /// New stock.
    pub stock: Option<u32>,
    /// New description.
    pub description: Option<String>,
}

/// `PUT /api/admin/products/{id}`: the updated product with its new version.
pub async fn update_product(
    State(state): State<GatewayState>,
    Admin(admin): Admin,
    ApiPath(id): ApiPath<u64>,
    ApiJson(update): ApiJson<ProductUpdate>,
) -> Result<Json<Product>, ApiError> {
    // Stock belongs to checkout's inventory (the single writer); checkout
    // publishes it to the catalog once the change is committed, and answers
    // with the catalog version that did (which a replica read right after
    // might not have merged yet).
    let mut published = None;
    if let Some(stock) = update.stock {
        if state
            .catalog
            .product(id)
            .await
            .map_err(catalog_error)?
            .is_none()
        {
            return Err(ApiError::not_found(format!("no product {id}")));
        }
        published = state
            .checkout
            .set_stock(id, stock)
            .await
            .map_err(super::checkout::checkout_error)?;
    }
    let patch = ProductPatch {
        price_cents: update.price_cents,
        stock: None,
        description: update.description,
    };
    let product = if !patch.is_empty() {
        Some(
            state
                .catalog
                .update(id, patch)
                .await
                .map_err(catalog_error)?,
        )
    } else if published.is_some() {
        published
    } else {
        state.catalog.product(id).await.map_err(catalog_error)?
    }
    .ok_or_else(|| ApiError::not_found(format!("no product {id}")))?;
    tracing::info!(admin = %admin.sub, product = id, version = product.version, "product updated");
    Ok(Json(product))
}

/// Body of `POST /api/admin/crash`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CrashRequest {
    /// `catalog`, `search` or `auth`.
    pub service: String,
    /// Node whose actor should fail.
    pub node: String,
}

/// Answer of a crash injection.
#[derive(Debug, Serialize, Deserialize)]
pub struct CrashResponse {
    /// The service.
    pub service: String,
    /// The node.
    pub node: String,
    /// What was done.
    pub crashed: String,
}

/// `POST /api/admin/crash`: makes one worker of a service on a node panic,
/// so its supervisor restarts it (202).
pub async fn crash(
    State(state): State<GatewayState>,
    Admin(admin): Admin,
    ApiJson(request): ApiJson<CrashRequest>,
) -> Result<impl IntoResponse, ApiError> {
    let outcome = match request.service.as_str() {
        CATALOG => state
            .catalog
            .crash(&request.node)
            .await
            .map_err(|e| e.to_string()),
        SEARCH => state
            .search
            .crash(&request.node)
            .await
            .map_err(|e| e.to_string()),
        AUTH => state
            .auth
            .crash(&request.node)
            .await
            .map_err(|e| e.to_string()),
        CART => state
            .cart
            .crash(&request.node)
            .await
            .map_err(|e| e.to_string()),
        other => {
            return Err(ApiError::unprocessable(format!(
                "unknown service {other:?}: use catalog, search, auth or cart"
            )))
        }
    };
    outcome.map_err(|reason| {
        ApiError::not_found(format!(
            "no {} worker on node {}: {reason}",
            request.service, request.node
        ))
    })?;
    tracing::warn!(admin = %admin.sub, service = %request.service, node = %request.node, "crash injected");
    Ok((
        StatusCode::ACCEPTED,
        Json(CrashResponse {
            crashed: format!("one {} worker", request.service),
            service: request.service,
            node: request.node,
        }),
    ))
}
