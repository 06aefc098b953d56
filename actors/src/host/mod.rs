//! The service host of a node: decides which services run here and keeps
//! them running.
//!
//! ```text
//! ServiceHost (reconciler, one per node)
//! ├── reporter  answers Report for /api/cluster (in pg group bazaar.node)
//! ├── auth      replica on every node   (see crate::auth)
//! ├── cart      shards by user, a backup each (see crate::cart)
//! ├── catalog   replica on every node   (see crate::catalog)
//! ├── checkout  log replica on every node, one owner (see crate::checkout)
//! └── search    replica on every node   (see crate::search)
//! ```
//!
//! Placement is computed, not coordinated: every node applies the same
//! pure function ([`bazaar_cluster::placement::assign`]) to the same
//! [`manifest`] and its membership view, and starts or stops its own
//! service supervisors to match. A service supervisor that exhausts its
//! restart budget fails up to the host, which counts the escalation and
//! starts the service again after a backoff, so one broken service never
//! takes the node down.
//!
//! The reconciler publishes what it runs (a `watch` of [`HostStatus`]); a
//! separate reporter answers [`HostRequest::Report`] (services, roles,
//! supervision trees with restart counters) for `/api/cluster`, locally or
//! from other nodes through [`NODE_GROUP`], so a report never waits behind
//! a service that is starting. The report also carries how many messages
//! each service handled here ([`traffic`]), from which the dashboard shows
//! message rates.

pub mod client;
pub mod manifest;
pub mod protocol;
mod reconciler;
mod reporter;
pub mod traffic;

pub use client::HostClient;
pub use protocol::{HostProtocol, HostReply, HostRequest, NodeReport, ServiceStatus, NODE_GROUP};
pub use reconciler::{start, HostHandle, HostStatus, PlacedService};
