//! `bazaar-cluster`: the node runtime Bazaar's services run on, built on
//! ractor_cluster. It knows nodes, never services.
//!
//! - [`node`]: start a node (NodeServer + membership) and watch its view;
//! - [`membership`]: mesh from seeds, reconnects, heartbeats, failure
//!   detection, quorum;
//! - [`member`]: the view and its events;
//! - [`codec`]: every byte that crosses the network, under a size limit;
//! - [`config`]: validated node configuration.

pub mod codec;
pub mod config;
pub mod member;
pub mod membership;
pub mod node;

pub use config::{ConfigError, Cookie, NodeConfig};
pub use member::{DownReason, Member, MemberEvent, MemberInfo, MemberState, MembershipView};
pub use node::{ClusterNode, StartError};
