//! The catalog: 10,000 products, replicated on every node.
//!
//! ```text
//! catalog (one_for_one)
//! ├── catalog-store        ReplicaStore<Catalog>: admin updates, replication,
//! │                        publishes a snapshot after every change
//! ├── catalog-worker-1     product reads for callers, from the shared state
//! └── catalog-worker-N
//! ```
//!
//! Every node holds the same seeded products; updates carry a version and
//! replicas converge on the highest (see [`model`]). This node's gateway
//! reads products from an immutable [`snapshot`] the store publishes after
//! each change, without an actor call. Everything else (a gateway whose
//! node runs no catalog, other services) calls the pool of workers, which
//! share the store's state; a worker forwards updates to its node's store.
//! Changes are announced to local subscribers (search) through
//! [`CATALOG_FEED_GROUP`].

pub mod client;
pub mod model;
pub mod protocol;
pub mod snapshot;
pub mod store;
pub mod supervisor;
mod worker;

pub use client::CatalogClient;
pub use protocol::{CATALOG_FEED_GROUP, CATALOG_GROUP, CATALOG_STORE_GROUP};
