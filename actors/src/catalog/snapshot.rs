//! The catalog as readers see it: one immutable snapshot per version,
//! published by the store after every change it applies, read with an
//! atomic load instead of an actor call.
//!
//! The store ([`super::store`]) stays the only writer: admin updates,
//! versions replicated from peers and stock published by checkout all go
//! through it, into its [`Catalog`], and after each message that changed
//! something it publishes the next snapshot through its
//! [`CatalogPublisher`]. Readers (the gateway of this node) hold a
//! [`CatalogSnapshots`] handle and load the current snapshot from it.
//!
//! Invariants:
//! - **a reader sees a whole version, never a mix**: a snapshot is never
//!   modified once published, and a reader answers from the one snapshot
//!   it loaded (a page and its total, a product and its JSON);
//! - **versions only move forward**: there is one publisher per catalog,
//!   and publications are serialized behind its lock; each snapshot's
//!   [`version`](CatalogSnapshot::version) is its predecessor's plus one,
//!   and each product in it is the catalog's current version of that
//!   product, which itself only moves up (see [`super::model`]). A reader
//!   that loads twice never sees an older product the second time;
//! - **a write is visible when it is acknowledged**: the store publishes
//!   before it answers the write and before it announces the change to
//!   subscribers, so a read on this node after an acknowledged update
//!   sees it.
//!
//! A snapshot is a table of `Arc`s, one per product, in chunks of 128: a
//! new version copies the table of chunks (79 pointers) and the chunks of
//! the changed products, so everything else is shared between versions. Each product carries
//! its JSON, serialized once per product version ([`ProductEntry::json`]),
//! so a product view copies bytes instead of serializing.

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use bytes::Bytes;
use parking_lot::Mutex;

use super::model::{Catalog, Product, MAX_PAGE};

/// One product version and its JSON, as served to shoppers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProductEntry {
    product: Product,
    /// `product` serialized with `serde_json`: the exact body of
    /// `GET /api/products/{id}`.
    json: Bytes,
}

impl ProductEntry {
    /// The entry of `product`, serializing it once.
    pub fn new(product: Product) -> Self {
        let json = serde_json::to_vec(&product).expect("a product always serializes to json");
        Self {
            product,
            json: Bytes::from(json),
        }
    }

    /// The product.
    pub fn product(&self) -> &Product {
        &self.product
    }

    /// The product as JSON (an object, `{"id":…}`).
    pub fn json(&self) -> &Bytes {
        &self.json
    }
}

/// Products per chunk of a snapshot's table: a change copies the table of
/// chunk pointers and the chunks it touches, not every product pointer.
const CHUNK: usize = 128;

/// The catalog at one version: immutable, shared by every reader that
/// loaded it.
#[derive(Debug)]
pub struct CatalogSnapshot {
    /// 1 for the first snapshot of a catalog, +1 per publication.
    version: u64,
    /// Number of products.
    len: usize,
    /// Dense by id like the catalog, in chunks of [`CHUNK`]: product `id`
    /// is entry `(id - 1) % CHUNK` of chunk `(id - 1) / CHUNK`. Chunks no
    /// change touched are shared with the previous version.
    chunks: Vec<Arc<Vec<Arc<ProductEntry>>>>,
}

impl CatalogSnapshot {
    /// The first snapshot of `catalog` (version 1): serializes every product.
    pub fn of(catalog: &Catalog) -> Self {
        let entries: Vec<Arc<ProductEntry>> = catalog
            .all()
            .map(|product| Arc::new(ProductEntry::new(product.clone())))
            .collect();
        Self {
            version: 1,
            len: entries.len(),
            chunks: entries
                .chunks(CHUNK)
                .map(|chunk| Arc::new(chunk.to_vec()))
                .collect(),
        }
    }

    /// The next version: this snapshot with the products `changed` (ids)
    /// as they are now in `catalog`. Unknown ids are skipped.
    pub fn next(&self, catalog: &Catalog, changed: impl IntoIterator<Item = u64>) -> Self {
        let mut chunks = self.chunks.clone();
        for id in changed {
            let (Some(product), Some(slot)) = (catalog.get(id), index_of(id)) else {
                continue;
            };
            let Some(chunk) = chunks.get_mut(slot / CHUNK) else {
                continue;
            };
            if chunk
                .get(slot % CHUNK)
                .is_some_and(|entry| entry.product() != product)
            {
                // Copies the chunk on its first change in this version.
                Arc::make_mut(chunk)[slot % CHUNK] = Arc::new(ProductEntry::new(product.clone()));
            }
        }
        Self {
            version: self.version + 1,
            len: self.len,
            chunks,
        }
    }

    /// The version of this snapshot (see the module doc).
    pub fn version(&self) -> u64 {
        self.version
    }

    /// The product with this id.
    pub fn get(&self, id: u64) -> Option<&Arc<ProductEntry>> {
        self.entry(index_of(id)?)
    }

    fn entry(&self, slot: usize) -> Option<&Arc<ProductEntry>> {
        self.chunks.get(slot / CHUNK)?.get(slot % CHUNK)
    }

    /// Up to `limit` (at most [`MAX_PAGE`]) products in id order, skipping
    /// `offset`: the same products as [`Catalog::page`].
    pub fn page(
        &self,
        offset: usize,
        limit: usize,
    ) -> impl Iterator<Item = &Arc<ProductEntry>> + '_ {
        let start = offset.min(self.len);
        let end = start.saturating_add(limit.min(MAX_PAGE)).min(self.len);
        (start..end).filter_map(|slot| self.entry(slot))
    }

    /// Number of products.
    pub fn len(&self) -> usize {
        self.len
    }

    /// True when the snapshot holds no product.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

/// The slot of product `id` in a dense table.
fn index_of(id: u64) -> Option<usize> {
    usize::try_from(id.checked_sub(1)?).ok()
}

/// The handle on this node's current catalog snapshot: cheap to clone,
/// given by the node to the catalog service (which publishes) and to the
/// gateway (which reads). Empty until the catalog first runs here.
#[derive(Debug, Clone, Default)]
pub struct CatalogSnapshots {
    shared: Arc<Shared>,
}

#[derive(Debug, Default)]
struct Shared {
    current: ArcSwapOption<CatalogSnapshot>,
    /// Held while publishing (load, derive, store), so that publications
    /// are serialized and versions only move forward. Readers never take it.
    publishing: Mutex<()>,
}

impl CatalogSnapshots {
    /// The current snapshot; `None` if no catalog ever published here.
    pub fn load(&self) -> Option<Arc<CatalogSnapshot>> {
        self.shared.current.load_full()
    }

    /// The publisher of the catalog `catalog` into this handle; publishes
    /// its snapshot now (the first one, or the next version if the handle
    /// already holds one).
    pub fn publisher(&self, catalog: &Catalog) -> CatalogPublisher {
        let publisher = CatalogPublisher {
            snapshots: self.clone(),
        };
        let ids = (1..).take(catalog.len());
        let version = publisher.publish(catalog, ids);
        tracing::debug!(version, "catalog snapshot published");
        publisher
    }
}

/// The writing side of a [`CatalogSnapshots`]: the catalog store
/// publishes through it after every change it applies.
#[derive(Debug, Clone)]
pub struct CatalogPublisher {
    snapshots: CatalogSnapshots,
}

impl CatalogPublisher {
    /// Publishes the next snapshot: the current one with the products
    /// `changed` (ids) as they are now in `catalog`. Returns its version.
    pub fn publish(&self, catalog: &Catalog, changed: impl IntoIterator<Item = u64>) -> u64 {
        let shared = &self.snapshots.shared;
        let _serial = shared.publishing.lock();
        let next = match shared.current.load_full() {
            Some(current) => current.next(catalog, changed),
            None => CatalogSnapshot::of(catalog),
        };
        let version = next.version();
        shared.current.store(Some(Arc::new(next)));
        version
    }

    /// The handle this publisher publishes to.
    pub fn snapshots(&self) -> &CatalogSnapshots {
        &self.snapshots
    }
}

#[cfg(test)]
mod tests;
