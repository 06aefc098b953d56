//! The search service's contract.

use bazaar_cluster::remote::Protocol;
use serde::{Deserialize, Serialize};

use super::model::SearchError;
use crate::catalog::model::Product;

/// Search workers, on every node.
pub const SEARCH_GROUP: &str = "bazaar.search";

/// The search workers' protocol.
pub struct SearchProtocol;

impl Protocol for SearchProtocol {
    const NAME: &'static str = "bazaar.search.v1";
    type Request = SearchRequest;
    type Reply = SearchReply;
}

/// Requests to a search worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SearchRequest {
    /// Ranked products matching `query`.
    Query {
        /// Free text.
        query: String,
        /// Most results wanted (clamped to the model's maximum).
        limit: usize,
    },
    /// Fail on purpose, to exercise supervision.
    Crash,
}

/// A search result: the product and its score.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SearchItem {
    /// The matching product, as the index last saw it.
    pub product: Product,
    /// Relevance, higher is better.
    pub score: f64,
}

/// Replies of a search worker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum SearchReply {
    /// Results, best first, or why the query was refused.
    Results(Result<Vec<SearchItem>, SearchError>),
}
