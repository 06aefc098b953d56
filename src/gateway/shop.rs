//! What shoppers browse: products and search.

use axum::extract::State;
use axum::Json;
use bazaar_actors::catalog::client::CatalogClientError;
use bazaar_actors::catalog::model::{Product, MAX_PAGE};
use bazaar_actors::search::client::SearchClientError;
use bazaar_actors::search::model::DEFAULT_RESULTS;
use serde::{Deserialize, Serialize};

use super::error::{ApiError, ApiPath, ApiQuery};
use super::GatewayState;

/// Products per page when `limit` is not given.
const DEFAULT_PAGE: usize = 20;

/// Query of `GET /api/products`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PageQuery {
    /// Products to skip.
    #[serde(default)]
    pub offset: usize,
    /// Products wanted (at most 100).
    pub limit: Option<usize>,
}

/// A page of products.
#[derive(Debug, Serialize, Deserialize)]
pub struct ProductPage {
    /// The products, in id order.
    pub items: Vec<Product>,
    /// How many products exist.
    pub total: usize,
}

pub(super) fn catalog_error(err: CatalogClientError) -> ApiError {
    use bazaar_actors::catalog::model::CatalogError;
    match err {
        CatalogClientError::Rejected(CatalogError::NotFound(id)) => {
            ApiError::not_found(format!("no product {id}"))
        }
        CatalogClientError::Rejected(rejected) => ApiError::unprocessable(rejected.to_string()),
        CatalogClientError::Unavailable(reason) => ApiError::unavailable(reason),
    }
}

/// `GET /api/products?offset=&limit=`.
pub async fn products(
    State(state): State<GatewayState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Json<ProductPage>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    let (items, total) = state
        .catalog
        .page(query.offset, limit)
        .await
        .map_err(catalog_error)?;
    Ok(Json(ProductPage { items, total }))
}

/// `GET /api/products/{id}`.
pub async fn product(
    State(state): State<GatewayState>,
    ApiPath(id): ApiPath<u64>,
) -> Result<Json<Product>, ApiError> {
    match state.catalog.product(id).await.map_err(catalog_error)? {
        Some(product) => Ok(Json(product)),
        None => Err(ApiError::not_found(format!("no product {id}"))),
    }
}

/// Query of `GET /api/search`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SearchQuery {
    /// Free text.
    pub q: String,
    /// Results wanted (at most 100).
    pub limit: Option<usize>,
}

/// A search result: the product and its score.
#[derive(Debug, Serialize, Deserialize)]
pub struct SearchResult {
    /// The product.
    #[serde(flatten)]
    pub product: Product,
    /// Relevance, higher is better.
    pub score: f64,
}

/// Search results.
#[derive(Debug, Serialize, Deserialize)]
pub struct SearchResults {
    /// Best first.
    pub items: Vec<SearchResult>,
}

/// `GET /api/search?q=&limit=`.
pub async fn search(
    State(state): State<GatewayState>,
    ApiQuery(query): ApiQuery<SearchQuery>,
) -> Result<Json<SearchResults>, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_RESULTS);
    let items = state
        .search
        .search(&query.q, limit)
        .await
        .map_err(|err| match err {
            SearchClientError::Rejected(rejected) => ApiError::bad_request(rejected.to_string()),
            SearchClientError::Unavailable(reason) => ApiError::unavailable(reason),
        })?;
    Ok(Json(SearchResults {
        items: items
            .into_iter()
            .map(|item| SearchResult {
                product: item.product,
                score: item.score,
            })
            .collect(),
    }))
}
