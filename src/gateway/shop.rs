//! What shoppers browse: products and search.
//!
//! While the catalog (search) runs on this node, its reads are answered
//! from the snapshot it publishes ([`bazaar_actors::catalog::snapshot`],
//! [`bazaar_actors::search::snapshot`]), without an actor call: one
//! atomic load, then bytes copied from the products' pre-serialized JSON.
//! Each request loads one snapshot and answers wholly from it. Otherwise
//! (the service is not placed here, or is being restarted whole after an
//! escalation) the request calls a replica through the service's client,
//! as every read did before, with the same statuses and bodies: a 503 if
//! no replica answers.
//!
//! Accounting: a read answered from a snapshot is counted as a message
//! handled by its service on this node
//! (`bazaar_service_messages_handled_total{service}`, the dashboard's
//! message rates), but it is not a call:
//! `bazaar_service_calls_total{service}` counts only the reads that went
//! to a replica (and every update), so a rising catalog or search call
//! rate on a node means its reads are being forwarded.

use std::io::Write as _;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, HeaderValue};
use axum::response::{IntoResponse, Response};
use axum::Json;
use bazaar_actors::catalog::client::CatalogClientError;
use bazaar_actors::catalog::model::{Product, MAX_PAGE};
use bazaar_actors::catalog::snapshot::{CatalogSnapshot, ProductEntry};
use bazaar_actors::host::manifest::{CATALOG, SEARCH};
use bazaar_actors::host::traffic::{CATALOG_HANDLED, SEARCH_HANDLED};
use bazaar_actors::search::client::SearchClientError;
use bazaar_actors::search::model::DEFAULT_RESULTS;
use bazaar_actors::search::snapshot::{SearchMatch, SearchSnapshot};
use bytes::Bytes;
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

impl GatewayState {
    /// Whether `service` runs on this node (placed here, not waiting to be
    /// restarted), so that its snapshot is current.
    fn runs_here(&self, service: &str) -> bool {
        self.host
            .borrow()
            .services
            .get(service)
            .is_some_and(|placed| placed.supervisor.is_some())
    }

    /// This node's current catalog snapshot, while the catalog runs here.
    fn local_catalog(&self) -> Option<Arc<CatalogSnapshot>> {
        if !self.runs_here(CATALOG) {
            return None;
        }
        self.snapshots.catalog.load()
    }

    /// This node's current search snapshot, while search runs here.
    fn local_search(&self) -> Option<Arc<SearchSnapshot>> {
        if !self.runs_here(SEARCH) {
            return None;
        }
        self.snapshots.search.load()
    }
}

/// `GET /api/products?offset=&limit=`.
pub async fn products(
    State(state): State<GatewayState>,
    ApiQuery(query): ApiQuery<PageQuery>,
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_PAGE);
    if limit == 0 || limit > MAX_PAGE {
        return Err(ApiError::bad_request(format!(
            "limit must be between 1 and {MAX_PAGE}"
        )));
    }
    if let Some(snapshot) = state.local_catalog() {
        CATALOG_HANDLED.count();
        let items = snapshot.page(query.offset, limit);
        return Ok(json_response(page_json(items, snapshot.len())));
    }
    let (items, total) = state
        .catalog
        .page(query.offset, limit)
        .await
        .map_err(catalog_error)?;
    Ok(Json(ProductPage { items, total }).into_response())
}

/// `GET /api/products/{id}`.
pub async fn product(
    State(state): State<GatewayState>,
    ApiPath(id): ApiPath<u64>,
) -> Result<Response, ApiError> {
    let not_found = || ApiError::not_found(format!("no product {id}"));
    if let Some(snapshot) = state.local_catalog() {
        CATALOG_HANDLED.count();
        let entry = snapshot.get(id).ok_or_else(not_found)?;
        return Ok(json_response(entry.json().clone()));
    }
    match state.catalog.product(id).await.map_err(catalog_error)? {
        Some(product) => Ok(Json(product).into_response()),
        None => Err(not_found()),
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
) -> Result<Response, ApiError> {
    let limit = query.limit.unwrap_or(DEFAULT_RESULTS);
    if let Some(snapshot) = state.local_search() {
        SEARCH_HANDLED.count();
        let found = snapshot
            .state()
            .search(&query.q, limit)
            .map_err(|rejected| ApiError::bad_request(rejected.to_string()))?;
        return Ok(json_response(search_json(&found)));
    }
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
    })
    .into_response())
}

/// A 200 with a JSON body, as `Json` answers it.
fn json_response(body: Bytes) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// The JSON of a [`ProductPage`], from the products' own JSON: the same
/// bytes `serde_json` writes for it.
fn page_json<'a>(items: impl Iterator<Item = &'a Arc<ProductEntry>>, total: usize) -> Bytes {
    // Room for a typical product (about 250 bytes) per item.
    let (at_least, at_most) = items.size_hint();
    let mut body = Vec::with_capacity(32 + 320 * at_most.unwrap_or(at_least));
    body.extend_from_slice(b"{\"items\":[");
    for (index, entry) in items.enumerate() {
        if index > 0 {
            body.push(b',');
        }
        body.extend_from_slice(entry.json());
    }
    // Writing into a Vec cannot fail.
    let _ = write!(body, "],\"total\":{total}}}");
    Bytes::from(body)
}

/// The JSON of [`SearchResults`], from the products' own JSON: each
/// product's object with its `score` appended, the same bytes
/// `serde_json` writes for the flattened [`SearchResult`].
fn search_json(found: &[SearchMatch<'_>]) -> Bytes {
    let length: usize = found.iter().map(|m| m.entry.json().len() + 32).sum();
    let mut body = Vec::with_capacity(length + 16);
    body.extend_from_slice(b"{\"items\":[");
    for (index, item) in found.iter().enumerate() {
        if index > 0 {
            body.push(b',');
        }
        let object = item.entry.json();
        // A product is a non-empty object: `{"id":…}`; reopen it.
        body.extend_from_slice(object.strip_suffix(b"}").unwrap_or(object));
        body.extend_from_slice(b",\"score\":");
        // Writing a number into a Vec cannot fail; serde_json writes it so
        // that the bytes are its own (`null` if not finite).
        let _ = serde_json::to_writer(&mut body, &item.score);
        body.push(b'}');
    }
    body.extend_from_slice(b"]}");
    Bytes::from(body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bazaar_actors::catalog::model::seed_products;
    use bazaar_actors::search::snapshot::SearchState;

    fn entries(count: usize) -> Vec<Arc<ProductEntry>> {
        seed_products()
            .into_iter()
            .take(count)
            .map(|product| Arc::new(ProductEntry::new(product)))
            .collect()
    }

    #[test]
    fn a_page_is_the_json_serde_writes() {
        for count in [0, 1, 20] {
            let items = entries(count);
            let expected = serde_json::to_vec(&ProductPage {
                items: items.iter().map(|e| e.product().clone()).collect(),
                total: 10_000,
            })
            .unwrap();
            assert_eq!(
                page_json(items.iter(), 10_000).as_ref(),
                expected.as_slice()
            );
        }
    }

    #[test]
    fn search_results_are_the_json_serde_writes() {
        let state = SearchState::of(seed_products().into_iter().take(500).collect());
        for query in ["lamp", "oak lamp", "zzzz"] {
            let found = state.search(query, 20).unwrap();
            let expected = serde_json::to_vec(&SearchResults {
                items: found
                    .iter()
                    .map(|m| SearchResult {
                        product: m.entry.product().clone(),
                        score: m.score,
                    })
                    .collect(),
            })
            .unwrap();
            assert_eq!(search_json(&found).as_ref(), expected.as_slice(), "{query}");
        }
        // Scores of every shape, including ones JSON cannot hold.
        let items = entries(1);
        for score in [
            0.0,
            1.0,
            2.5,
            1e-7,
            0.1 + 0.2,
            3.0e21,
            f64::NAN,
            f64::INFINITY,
        ] {
            let found = [SearchMatch {
                entry: &items[0],
                score,
            }];
            let expected = serde_json::to_vec(&SearchResults {
                items: vec![SearchResult {
                    product: items[0].product().clone(),
                    score,
                }],
            })
            .unwrap();
            assert_eq!(search_json(&found).as_ref(), expected.as_slice(), "{score}");
        }
    }
}
