//! The catalog's contract: requests its workers answer, the feed of
//! changes it announces, and its pg groups.

use bazaar_cluster::remote::Protocol;
use serde::{Deserialize, Serialize};

use super::model::{CatalogError, Product, ProductPatch};

/// Catalog read workers, on every node.
pub const CATALOG_GROUP: &str = "bazaar.catalog";
/// Catalog stores, one per node (replication).
pub const CATALOG_STORE_GROUP: &str = "bazaar.catalog.store";
/// Local subscribers to catalog changes.
pub const CATALOG_FEED_GROUP: &str = "bazaar.catalog.feed";

/// The catalog workers' protocol.
pub struct CatalogProtocol;

impl Protocol for CatalogProtocol {
    const NAME: &'static str = "bazaar.catalog.v1";
    type Request = CatalogRequest;
    type Reply = CatalogReply;
}

/// Requests to a catalog worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CatalogRequest {
    /// One product.
    Get {
        /// Product id.
        id: u64,
    },
    /// A page of products in id order.
    Page {
        /// Products to skip.
        offset: usize,
        /// Products to return (clamped to the model's maximum).
        limit: usize,
    },
    /// Products changed since the seed.
    Changes,
    /// An admin update (not idempotent: each one makes a new version).
    Update {
        /// Product id.
        id: u64,
        /// Fields to change.
        patch: ProductPatch,
    },
    /// Fail on purpose, to exercise supervision.
    Crash,
}

/// Replies of a catalog worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CatalogReply {
    /// The product, if it exists.
    Product(Option<Product>),
    /// A page and the total number of products.
    Page {
        /// The products.
        items: Vec<Product>,
        /// How many products exist.
        total: usize,
    },
    /// A list of products.
    Products(Vec<Product>),
    /// The outcome of an update.
    Updated(Result<Product, CatalogError>),
    /// The request could not be served here (store unavailable).
    Unavailable(String),
}

/// The feed of catalog changes, cast to local subscribers.
pub struct CatalogFeedProtocol;

impl Protocol for CatalogFeedProtocol {
    const NAME: &'static str = "bazaar.catalog.feed.v1";
    type Request = CatalogEvent;
    type Reply = ();
}

/// A change in the catalog.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum CatalogEvent {
    /// These products have new versions.
    ProductsChanged(Vec<Product>),
}
