//! The catalog: 10,000 products, replicated on every node.
//!
//! ```text
//! catalog (one_for_one)
//! ├── catalog-store        ReplicaStore<Catalog>: admin updates, replication
//! ├── catalog-worker-1     product reads, from the shared state
//! └── catalog-worker-N
//! ```
//!
//! Every node holds the same seeded products; updates carry a version and
//! replicas converge on the highest (see [`model`]). Reads are served by a
//! pool of workers sharing the store's state, so product views scale with
//! cores; a worker forwards updates to its node's store. Changes are
//! announced to local subscribers (search) through [`CATALOG_FEED_GROUP`].

pub mod client;
pub mod model;
pub mod protocol;
pub mod store;
pub mod supervisor;
mod worker;

pub use client::CatalogClient;
pub use protocol::{CATALOG_FEED_GROUP, CATALOG_GROUP, CATALOG_STORE_GROUP};
