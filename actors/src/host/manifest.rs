//! Which services exist and how each is placed: the manifest, in code.

use bazaar_cluster::placement::{Manifest, Role};

use crate::auth::supervisor::auth_supervisor;
use crate::cart::supervisor::cart_supervisor;
use crate::cart::CART_SHARDS;
use crate::catalog::supervisor::catalog_supervisor;
use crate::checkout::supervisor::checkout_supervisor;
use crate::context::ServiceContext;
use crate::search::supervisor::search_supervisor;
use crate::supervision::SupervisorSpec;

/// The catalog service.
pub const CATALOG: &str = "catalog";
/// The search service.
pub const SEARCH: &str = "search";
/// The auth service.
pub const AUTH: &str = "auth";
/// The cart service: sharded by user, one backup per shard.
pub const CART: &str = "cart";
/// The checkout service: a replica on every node, one of them the owner.
pub const CHECKOUT: &str = "checkout";

/// The services of a Bazaar cluster and their placement, in start order
/// (search follows the catalog's feed, so the catalog starts first).
pub fn manifest() -> Manifest {
    Manifest::new()
        .replicated(CATALOG)
        .replicated(SEARCH)
        .replicated(AUTH)
        .sharded(CART, CART_SHARDS, 1)
        .replicated(CHECKOUT)
}

/// The supervisor spec of `service` in `role` on this node.
pub fn supervisor_for(service: &str, _role: &Role, ctx: &ServiceContext) -> Option<SupervisorSpec> {
    match service {
        CATALOG => Some(catalog_supervisor(ctx)),
        SEARCH => Some(search_supervisor(ctx)),
        AUTH => Some(auth_supervisor(ctx)),
        CART => Some(cart_supervisor(ctx)),
        CHECKOUT => Some(checkout_supervisor(ctx)),
        _ => None,
    }
}
