//! `bazaar-actors`: Bazaar's services (catalog, search, auth, cart,
//! checkout) as supervised ractor actor trees. It knows services, never
//! HTTP; it reaches other nodes only through `bazaar-cluster`.
//!
//! Each service lives in its own folder with the same files:
//! `protocol.rs` (the remotable contract), `client.rs` (typed client with
//! timeouts and retries), `supervisor.rs` (its tree and restart policy) and
//! `model.rs` (pure domain logic).

pub mod auth;
pub mod cart;
pub mod catalog;
pub mod checkout;
pub mod context;
pub mod host;
pub mod replica;
pub mod search;
pub mod service_actor;
mod spawn;
pub mod supervision;

/// The cluster runtime the services run on.
pub use bazaar_cluster as cluster;
