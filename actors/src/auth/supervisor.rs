//! The auth service's supervisor spec: an account store and a pool of
//! workers over the shared accounts.

use std::sync::Arc;

use parking_lot::RwLock;

use super::model::Accounts;
use super::worker::{AuthWorker, AuthWorkerArgs};
use super::AUTH_STORE_GROUP;
use crate::context::ServiceContext;
use crate::replica::{ReplicaArgs, ReplicaStore};
use crate::service_actor::WorkerActor;
use crate::spawn::spawn_linked;
use crate::supervision::{ChildSpec, Strategy, SupervisorSpec};

/// The auth service's tree; the accounts are created here, once.
pub fn auth_supervisor(ctx: &ServiceContext) -> SupervisorSpec {
    let accounts = Arc::new(RwLock::new(Accounts::demo(
        ctx.demo_password_hash.clone(),
        ctx.admin_password_hash.clone(),
    )));
    let node = ctx.node.clone();
    let store_state = accounts.clone();
    let mut spec = SupervisorSpec::new("auth", Strategy::OneForOne).with_child(ChildSpec::worker(
        "auth-store",
        move |supervisor| {
            let args = ReplicaArgs {
                node: node.clone(),
                group: AUTH_STORE_GROUP,
                state: store_state.clone(),
                on_change: Arc::new(|_: &[_]| {}),
            };
            spawn_linked(ReplicaStore::<Accounts>::default(), args, supervisor)
        },
    ));
    for index in 1..=ctx.workers {
        let ctx = ctx.clone();
        let accounts = accounts.clone();
        spec = spec.with_child(ChildSpec::worker(
            format!("auth-worker-{index}"),
            move |supervisor| {
                let args = AuthWorkerArgs {
                    node: ctx.node.clone(),
                    accounts: accounts.clone(),
                    token_key: ctx.token_key.clone(),
                    decoy_hash: ctx.demo_password_hash.clone(),
                };
                spawn_linked(WorkerActor::<AuthWorker>::default(), args, supervisor)
            },
        ));
    }
    spec
}
