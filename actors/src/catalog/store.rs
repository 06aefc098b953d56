//! The catalog as replicated state: local admin updates make a new
//! version, versions from other replicas merge by (version, origin).

use serde::{Deserialize, Serialize};

use super::model::{Catalog, CatalogError, Product, ProductPatch};
use crate::replica::{ReplicaProtocol, ReplicatedState};

/// An admin update requested on this node.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CatalogWrite {
    /// Product id.
    pub id: u64,
    /// Fields to change.
    pub patch: ProductPatch,
}

/// The catalog store's protocol.
pub type CatalogStoreProtocol = ReplicaProtocol<Catalog>;

impl ReplicatedState for Catalog {
    const PROTOCOL: &'static str = "bazaar.catalog.store.v1";
    type Item = Product;
    type Write = CatalogWrite;
    type Written = Result<Product, CatalogError>;

    fn apply(
        &mut self,
        write: CatalogWrite,
        origin: &str,
        _now_ms: u64,
    ) -> (Self::Written, Vec<Product>) {
        match self.apply_patch(write.id, &write.patch, origin) {
            Ok(product) => (Ok(product.clone()), vec![product]),
            Err(err) => (Err(err), Vec::new()),
        }
    }

    fn merge(&mut self, item: Product) -> bool {
        Catalog::merge(self, item)
    }

    fn changes(&self) -> Vec<Product> {
        Catalog::changes(self)
    }
}
