//! The search index as readers see it: one immutable snapshot per version,
//! published by the indexer after every batch of catalog changes, queried
//! with an atomic load instead of an actor call.
//!
//! The indexer ([`super::indexer`]) stays the only writer: it follows the
//! catalog's feed and applies product versions through its
//! [`SearchPublisher`], which publishes the next snapshot whenever a batch
//! changed the index. Readers (this node's gateway and search workers)
//! hold a [`SearchSnapshots`] handle and query the snapshot they load.
//!
//! Invariants:
//! - **a reader sees a whole version, never a mix**: a published snapshot
//!   is never modified, and a query runs against the one snapshot it
//!   loaded (the index and the products it returns come from it);
//! - **versions only move forward**: one publisher per handle; each
//!   snapshot's [`version`](SearchSnapshot::version) is its predecessor's
//!   plus one, and a product version only replaces an older one
//!   ([`SearchState::upsert`]).
//!
//! An index is too big to copy per change (tens of thousands of posting
//! lists), so the publisher keeps two and alternates, as the left-right
//! pattern does: it applies a batch to the spare copy (the version before
//! the current one, first brought up to date with the batch that made the
//! current one), publishes it, and keeps the copy it replaced as the next
//! spare. A change costs applying it twice, not a copy. The spare can only
//! be written once no reader holds it; a reader that still does (queries
//! take microseconds, batches come far apart) costs one copy instead.

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwapOption;

use super::model::{SearchError, SearchIndex};
use crate::catalog::model::{seed_products, Product};
use crate::catalog::snapshot::ProductEntry;

/// The index and the products it was built from.
#[derive(Debug, Clone)]
pub struct SearchState {
    /// The inverted index.
    index: SearchIndex,
    /// Indexed products by id, as returned in results, with their JSON.
    products: HashMap<u64, Arc<ProductEntry>>,
}

impl SearchState {
    /// The index of the seeded catalog.
    pub fn seeded() -> Self {
        Self::of(seed_products())
    }

    /// The index of `products`.
    pub fn of(products: Vec<Product>) -> Self {
        let index = SearchIndex::build(products.iter());
        Self {
            index,
            products: products
                .into_iter()
                .map(|product| (product.id, Arc::new(ProductEntry::new(product))))
                .collect(),
        }
    }

    /// Whether `product` is newer than the version indexed (or not indexed).
    pub fn is_newer(&self, product: &Product) -> bool {
        self.products.get(&product.id).is_none_or(|current| {
            let current = current.product();
            (product.version, &product.updated_by) > (current.version, &current.updated_by)
        })
    }

    /// Indexes `entry` unless a newer version of it is already indexed.
    pub fn upsert(&mut self, entry: Arc<ProductEntry>) -> bool {
        let newer = self.is_newer(entry.product());
        if newer {
            self.index.upsert(entry.product());
            self.products.insert(entry.product().id, entry);
        }
        newer
    }

    /// Ranked products matching `query`, best first, at most
    /// `min(limit, MAX_RESULTS)` (see [`SearchIndex::search`]).
    pub fn search(&self, query: &str, limit: usize) -> Result<Vec<SearchMatch<'_>>, SearchError> {
        Ok(self
            .index
            .search(query, limit)?
            .into_iter()
            .filter_map(|hit| {
                let entry = self.products.get(&hit.id)?;
                Some(SearchMatch {
                    entry,
                    score: hit.score,
                })
            })
            .collect())
    }

    /// Number of indexed products.
    pub fn len(&self) -> usize {
        self.products.len()
    }

    /// True when no product is indexed.
    pub fn is_empty(&self) -> bool {
        self.products.is_empty()
    }
}

/// One ranked product of a query.
#[derive(Debug, Clone, Copy)]
pub struct SearchMatch<'a> {
    /// The product as the index saw it, with its JSON.
    pub entry: &'a Arc<ProductEntry>,
    /// Relevance, higher is better.
    pub score: f64,
}

/// The search index at one version: immutable once published.
#[derive(Debug)]
pub struct SearchSnapshot {
    /// 1 for the first snapshot, +1 per publication.
    version: u64,
    state: SearchState,
}

impl SearchSnapshot {
    /// The version of this snapshot (see the module doc).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The index and products of this version.
    pub fn state(&self) -> &SearchState {
        &self.state
    }
}

/// The handle on this node's current search snapshot: cheap to clone,
/// given by the node to the search service (which publishes and queries)
/// and to the gateway (which queries). Empty until search first runs here.
#[derive(Debug, Clone, Default)]
pub struct SearchSnapshots {
    current: Arc<ArcSwapOption<SearchSnapshot>>,
}

impl SearchSnapshots {
    /// The current snapshot; `None` if search never published here.
    pub fn load(&self) -> Option<Arc<SearchSnapshot>> {
        self.current.load_full()
    }
}

/// The writing side of a [`SearchSnapshots`]: the indexer applies catalog
/// changes through it. One publisher per handle.
#[derive(Debug)]
pub struct SearchPublisher {
    snapshots: SearchSnapshots,
    /// The snapshot published last (also in `snapshots`).
    current: Arc<SearchSnapshot>,
    /// The snapshot before `current`, to be written next; `None` before the
    /// first change.
    spare: Option<Arc<SearchSnapshot>>,
    /// What `current` applied on top of `spare`, in order.
    behind: Vec<Arc<ProductEntry>>,
    /// Times a change copied the index (the first change, and each time a
    /// reader still held the spare).
    copies: u64,
}

impl SearchPublisher {
    /// Publishes `state` into `snapshots` now (as version 1, or as the next
    /// version if the handle already holds one) and returns its publisher.
    pub fn new(snapshots: SearchSnapshots, state: SearchState) -> Self {
        let version = snapshots.load().map_or(1, |current| current.version + 1);
        let current = Arc::new(SearchSnapshot { version, state });
        snapshots.current.store(Some(current.clone()));
        Self {
            snapshots,
            current,
            spare: None,
            behind: Vec::new(),
            copies: 0,
        }
    }

    /// Indexes the product versions that are newer than the indexed ones
    /// and publishes the result as the next snapshot, if any was; returns
    /// how many were.
    pub fn apply(&mut self, products: Vec<Product>) -> usize {
        let fresh: Vec<Product> = products
            .into_iter()
            .filter(|product| self.current.state.is_newer(product))
            .collect();
        if fresh.is_empty() {
            return 0;
        }
        let mut state = self.writable();
        let applied: Vec<Arc<ProductEntry>> = fresh
            .into_iter()
            .map(|product| Arc::new(ProductEntry::new(product)))
            .filter(|entry| state.upsert(entry.clone()))
            .collect();
        let next = Arc::new(SearchSnapshot {
            version: self.current.version + 1,
            state,
        });
        self.snapshots.current.store(Some(next.clone()));
        self.spare = Some(std::mem::replace(&mut self.current, next));
        let count = applied.len();
        self.behind = applied;
        count
    }

    /// The version published last.
    pub fn version(&self) -> u64 {
        self.current.version
    }

    /// Times a change had to copy the index instead of reusing the spare.
    pub fn copies(&self) -> u64 {
        self.copies
    }

    /// A state equal to the current one that no reader can see: the spare
    /// brought up to date, or a copy of the current one while a reader
    /// still holds the spare.
    fn writable(&mut self) -> SearchState {
        let behind = std::mem::take(&mut self.behind);
        match self.spare.take().map(Arc::try_unwrap) {
            Some(Ok(spare)) => {
                let mut state = spare.state;
                for entry in behind {
                    state.upsert(entry);
                }
                state
            }
            Some(Err(_)) => {
                tracing::debug!(
                    version = self.current.version,
                    "search spare still read, copying the index"
                );
                self.copies += 1;
                self.current.state.clone()
            }
            None => {
                self.copies += 1;
                self.current.state.clone()
            }
        }
    }
}

#[cfg(test)]
mod tests;
