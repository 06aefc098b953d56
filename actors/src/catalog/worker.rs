//! A catalog worker: serves reads from the shared catalog and forwards
//! updates to its node's store. A thin shell over [`super::model`].

use std::sync::Arc;
use std::time::Duration;

use bazaar_cluster::directory;
use bazaar_cluster::remote;
use parking_lot::RwLock;
use ractor::ActorProcessingErr;

use super::model::{Catalog, MAX_PAGE};
use super::protocol::{CatalogProtocol, CatalogReply, CatalogRequest, CATALOG_GROUP};
use super::store::{CatalogStoreProtocol, CatalogWrite};
use super::CATALOG_STORE_GROUP;
use crate::replica::{ReplicaReply, ReplicaRequest};
use crate::service_actor::ServiceWorker;

/// Timeout of a worker's call to its store.
const STORE_TIMEOUT: Duration = Duration::from_secs(1);

/// Start arguments of a catalog worker.
pub struct CatalogWorkerArgs {
    /// This node's name.
    pub node: String,
    /// The catalog, shared with the store.
    pub catalog: Arc<RwLock<Catalog>>,
}

/// A catalog read worker.
pub struct CatalogWorker;

impl ServiceWorker for CatalogWorker {
    type Protocol = CatalogProtocol;
    type State = CatalogWorkerArgs;
    const GROUP: &'static str = CATALOG_GROUP;

    fn node(state: &Self::State) -> &str {
        &state.node
    }

    async fn serve(
        state: &mut Self::State,
        request: CatalogRequest,
    ) -> Result<CatalogReply, ActorProcessingErr> {
        Ok(match request {
            CatalogRequest::Get { id } => {
                CatalogReply::Product(state.catalog.read().get(id).cloned())
            }
            CatalogRequest::Page { offset, limit } => {
                let catalog = state.catalog.read();
                CatalogReply::Page {
                    items: catalog.page(offset, limit.min(MAX_PAGE)),
                    total: catalog.len(),
                }
            }
            CatalogRequest::Changes => CatalogReply::Products(state.catalog.read().changes()),
            CatalogRequest::Update { id, patch } => update_through_store(id, patch).await,
            CatalogRequest::Crash => {
                tracing::warn!(node = %state.node, "crash injected into a catalog worker");
                return Err("crash injected into catalog worker".into());
            }
        })
    }
}

/// Sends an update to this node's store and waits for its outcome.
async fn update_through_store(id: u64, patch: super::model::ProductPatch) -> CatalogReply {
    let Some(store) = directory::local_members::<CatalogStoreProtocol>(CATALOG_STORE_GROUP)
        .into_iter()
        .next()
    else {
        return CatalogReply::Unavailable("catalog store is restarting".to_string());
    };
    let request = ReplicaRequest::Write(CatalogWrite { id, patch });
    match remote::call(&store, request, STORE_TIMEOUT).await {
        Ok(ReplicaReply::Written(outcome)) => CatalogReply::Updated(outcome),
        Ok(other) => CatalogReply::Unavailable(format!("unexpected store reply {other:?}")),
        Err(err) => CatalogReply::Unavailable(format!("catalog store: {err}")),
    }
}
