//! Starting a child actor for a supervisor's [`ChildSpec`].
//!
//! [`ChildSpec`]: crate::supervision::ChildSpec

use ractor::{Actor, ActorCell, SpawnErr};

/// Spawns `actor` linked to `supervisor` and returns its cell: the shape
/// every child start function has.
pub async fn spawn_linked<A: Actor>(
    actor: A,
    args: A::Arguments,
    supervisor: ActorCell,
) -> Result<ActorCell, SpawnErr> {
    let (actor_ref, _) = Actor::spawn_linked(None, actor, args, supervisor).await?;
    Ok(actor_ref.get_cell())
}
