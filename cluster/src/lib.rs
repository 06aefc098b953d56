//! `bazaar-cluster`: the node runtime Bazaar's services run on, built on
//! ractor_cluster. It knows nodes, never services.
//!
//! - [`node`]: start a node (NodeServer + membership) and watch its view;
//! - [`listener`]: the accept loop in front of ractor_cluster: handshake
//!   limits and deadline, socket options, mutual TLS;
//! - [`membership`]: mesh from seeds, reconnects, heartbeats, failure
//!   detection, quorum;
//! - [`member`]: the view and its events;
//! - [`remote`]: location-transparent service messages and calls;
//! - [`lane`]: the fast path for remote service messages, batched on a
//!   connection of its own per peer, bounded;
//! - [`trace`]: one trace id through every hop on every node;
//! - [`directory`]: service members through pg groups, local first;
//! - [`client`]: typed service clients with timeouts and retries;
//! - [`placement`]: which node runs which service, a pure function of the
//!   manifest and the live members;
//! - [`codec`]: every byte that crosses the network, under a size limit;
//! - [`config`]: validated node configuration;
//! - [`voters`]: the voter set whose majority decides, however many nodes run.

pub mod client;
pub mod codec;
pub mod config;
pub mod directory;
pub mod lane;
pub mod listener;
pub mod member;
pub mod membership;
pub mod node;
pub mod placement;
pub mod remote;
pub mod trace;
pub mod voters;

pub use config::{ConfigError, Cookie, NodeConfig};
pub use member::{DownReason, Member, MemberEvent, MemberInfo, MemberState, MembershipView};
pub use node::{ClusterNode, StartError};
pub use voters::Voters;
