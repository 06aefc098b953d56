//! The service host of a node: decides which services run here and keeps
//! them running.
//!
//! ```text
//! ServiceHost (reconciler, one per node)
//! ├── catalog   replica on every node   (see crate::catalog)
//! ├── search    replica on every node   (see crate::search)
//! ├── cart      shards by user, a backup each (see crate::cart)
//! └── auth      replica on every node   (see crate::auth)
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
//! The host is also the node's reporter: it answers [`HostRequest::Report`]
//! (services, roles, supervision trees with restart counters) for
//! `/api/cluster`, locally or from other nodes through [`NODE_GROUP`].

pub mod client;
pub mod manifest;
pub mod protocol;
mod reconciler;

pub use client::HostClient;
pub use protocol::{HostProtocol, HostReply, HostRequest, NodeReport, ServiceStatus, NODE_GROUP};
pub use reconciler::{start, HostHandle, HostStatus};
