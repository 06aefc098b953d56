//! What every service needs to know about the node it runs on.

use std::path::PathBuf;

use bazaar_cluster::{MembershipView, Voters};
use tokio::sync::watch;

use crate::auth::model::TokenKey;
use crate::catalog::snapshot::CatalogSnapshots;
use crate::search::snapshot::SearchSnapshots;

/// Node-wide settings handed to every service supervisor.
#[derive(Clone)]
pub struct ServiceContext {
    /// This node's name.
    pub node: String,
    /// Read workers per replicated service.
    pub workers: usize,
    /// Signs and verifies login tokens; derived from the cluster cookie.
    pub token_key: TokenKey,
    /// Argon2 hash shared by the demo users.
    pub demo_password_hash: String,
    /// Argon2 hash of the admin password, if one was configured.
    pub admin_password_hash: Option<String>,
    /// The node's data directory.
    pub data_dir: PathBuf,
    /// The node's membership view.
    pub view: watch::Receiver<MembershipView>,
    /// The voter set: checkout publishes it from its log, carts and
    /// readiness count a majority of it.
    pub voters: Voters,
    /// Where the read services publish their snapshots; the node hands
    /// the same handles to its gateway, which reads them directly.
    pub snapshots: Snapshots,
}

/// The snapshot handles of a node's read services (catalog, search): made
/// by the node, filled by the services running on it, read by its gateway.
#[derive(Debug, Clone, Default)]
pub struct Snapshots {
    /// Products, published by the catalog store.
    pub catalog: CatalogSnapshots,
    /// The search index, published by the search indexer.
    pub search: SearchSnapshots,
}

impl std::fmt::Debug for ServiceContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ServiceContext")
            .field("node", &self.node)
            .field("workers", &self.workers)
            .field("data_dir", &self.data_dir)
            .finish_non_exhaustive()
    }
}

impl ServiceContext {
    /// Default number of read workers: one per core, at least two.
    pub fn default_workers() -> usize {
        std::thread::available_parallelism()
            .map(|cores| cores.get())
            .unwrap_or(2)
            .max(2)
    }
}
