//! Search: an inverted index over the catalog, replicated on every node.
//!
//! ```text
//! search (rest_for_one)
//! ├── search-indexer      follows the local catalog feed, publishes the index
//! ├── search-worker-1     ranked queries for callers, from the published index
//! └── search-worker-N
//! ```
//!
//! The index starts from the seeded products (identical on every node),
//! then applies the catalog's changes: those it pulls from the catalog at
//! start, and every change the local catalog announces afterwards. A
//! product version only replaces an older one, so the pull and the feed
//! may arrive in any order. After each batch that changed it, the indexer
//! publishes an immutable [`snapshot`] of the index: this node's gateway
//! queries it directly, without an actor call; the workers answer from it
//! for everyone else.

pub mod client;
mod indexer;
pub mod model;
pub mod protocol;
pub mod snapshot;
pub mod supervisor;
mod worker;

pub use client::SearchClient;
pub use protocol::SEARCH_GROUP;
