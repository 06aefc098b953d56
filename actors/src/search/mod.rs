//! Search: an inverted index over the catalog, replicated on every node.
//!
//! ```text
//! search (rest_for_one)
//! ├── search-indexer      follows the local catalog feed, updates the index
//! ├── search-worker-1     ranked queries, from the shared index
//! └── search-worker-N
//! ```
//!
//! The index starts from the seeded products (identical on every node),
//! then applies the catalog's changes: those it pulls from the catalog at
//! start, and every change the local catalog announces afterwards. A
//! product version only replaces an older one, so the pull and the feed
//! may arrive in any order.

pub mod client;
mod indexer;
pub mod model;
pub mod protocol;
pub mod supervisor;
mod worker;

pub use client::SearchClient;
pub use protocol::SEARCH_GROUP;
