//! The service directory: where the members of a service are, through pg
//! groups, which ractor_cluster keeps in sync across sessions.
//!
//! Every service actor that serves requests joins its service group
//! (`"bazaar.catalog"`) and the same group scoped to its node
//! (`"bazaar.catalog@n2"`). Lookups prefer members on this node (no
//! serialization, no network), then remote ones, each set in random order
//! to spread load. Actor ids change after restarts and reconnects, so
//! callers resolve again for every attempt instead of caching refs; pg
//! drops members whose actor stopped or whose session closed.

use ractor::ActorRef;
use rand::seq::SliceRandom;

use crate::remote::{Protocol, ServiceMsg};

/// The group of a service's members on one node.
pub fn group_on(group: &str, node: &str) -> String {
    format!("{group}@{node}")
}

/// Adds `actor`, running on `node`, to `group` and to the node's scoped
/// group, and makes its protocol reachable through lanes.
pub fn join<P: Protocol>(group: &str, node: &str, actor: &ActorRef<ServiceMsg<P>>) {
    crate::lane::register::<P>();
    ractor::pg::join(group.to_string(), vec![actor.get_cell()]);
    ractor::pg::join(group_on(group, node), vec![actor.get_cell()]);
}

/// Members of a service group.
pub type Members<P> = Vec<ActorRef<ServiceMsg<P>>>;

/// The members of `group` on this node and on other nodes, each shuffled.
fn split<P: Protocol>(group: &str) -> (Members<P>, Members<P>) {
    let (local, remote): (Vec<_>, Vec<_>) = ractor::pg::get_members(&group.to_string())
        .into_iter()
        .partition(|cell| cell.get_id().is_local());
    let mut rng = rand::rng();
    let mut shuffled = |cells: Vec<ractor::ActorCell>| {
        let mut actors: Vec<_> = cells.into_iter().map(ActorRef::from).collect();
        actors.shuffle(&mut rng);
        actors
    };
    (shuffled(local), shuffled(remote))
}

/// Every member of `group`: local ones first, then remote ones, each shuffled.
pub fn members<P: Protocol>(group: &str) -> Members<P> {
    let (mut local, remote) = split(group);
    local.extend(remote);
    local
}

/// Members of `group` on this node, shuffled.
pub fn local_members<P: Protocol>(group: &str) -> Members<P> {
    split(group).0
}

/// Members of `group` on other nodes, shuffled.
pub fn remote_members<P: Protocol>(group: &str) -> Members<P> {
    split(group).1
}

/// Members of `group` on the node named `node`.
pub fn members_on<P: Protocol>(group: &str, node: &str) -> Vec<ActorRef<ServiceMsg<P>>> {
    members(&group_on(group, node))
}
