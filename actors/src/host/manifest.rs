//! Which services exist and how each is placed: the manifest, in code.

use bazaar_cluster::placement::{Manifest, Role};

use crate::auth::supervisor::auth_supervisor;
use crate::catalog::supervisor::catalog_supervisor;
use crate::context::ServiceContext;
use crate::search::supervisor::search_supervisor;
use crate::supervision::SupervisorSpec;

/// The catalog service.
pub const CATALOG: &str = "catalog";
/// The search service.
pub const SEARCH: &str = "search";
/// The auth service.
pub const AUTH: &str = "auth";

/// The services of a Bazaar cluster and their placement, in start order
/// (search follows the catalog's feed, so the catalog starts first).
pub fn manifest() -> Manifest {
    Manifest::new()
        .replicated(CATALOG)
        .replicated(SEARCH)
        .replicated(AUTH)
}

/// The supervisor spec of `service` in `role` on this node.
pub fn supervisor_for(service: &str, _role: &Role, ctx: &ServiceContext) -> Option<SupervisorSpec> {
    match service {
        CATALOG => Some(catalog_supervisor(ctx)),
        SEARCH => Some(search_supervisor(ctx)),
        AUTH => Some(auth_supervisor(ctx)),
        _ => None,
    }
}
