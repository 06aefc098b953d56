//! The shape every simple service actor shares: join the service's pg
//! group (and its node-scoped group) at start, serve each request, answer
//! calls. A worker only says what it serves ([`ServiceWorker`]);
//! [`WorkerActor`] is the ractor actor around it.
//!
//! A frame that does not decode is logged and dropped; an `Err` from
//! `serve` fails the actor, so its supervisor restarts it (crash injection
//! uses that). Every request served is counted for its service
//! ([`crate::host::traffic`], found from the group once, at start).

use std::future::Future;
use std::marker::PhantomData;

use bazaar_cluster::directory;
use bazaar_cluster::remote::{self, Protocol, ServiceMsg};
use ractor::{Actor, ActorProcessingErr, ActorRef};

use crate::host::traffic::{self, Handled};

/// A service actor's behaviour.
pub trait ServiceWorker: Send + Sync + 'static {
    /// The protocol it serves.
    type Protocol: Protocol;
    /// Its state, given at start.
    type State: Send + Sync + 'static;
    /// The pg group it joins.
    const GROUP: &'static str;

    /// The node it runs on, for the node-scoped group.
    fn node(state: &Self::State) -> &str;

    /// Serves one request; the reply goes to the caller of a call.
    fn serve(
        state: &mut Self::State,
        request: <Self::Protocol as Protocol>::Request,
    ) -> impl Future<Output = Result<<Self::Protocol as Protocol>::Reply, ActorProcessingErr>> + Send;
}

/// The actor running a [`ServiceWorker`].
pub struct WorkerActor<W>(PhantomData<fn() -> W>);

impl<W> Default for WorkerActor<W> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

/// A running worker: its state and its service's message counter.
pub struct WorkerState<W: ServiceWorker> {
    worker: W::State,
    /// `None` for a group outside the manifest's services.
    handled: Option<&'static Handled>,
}

impl<W: ServiceWorker> Actor for WorkerActor<W> {
    type Msg = ServiceMsg<W::Protocol>;
    type State = WorkerState<W>;
    type Arguments = W::State;

    async fn pre_start(
        &self,
        myself: ActorRef<Self::Msg>,
        worker: W::State,
    ) -> Result<Self::State, ActorProcessingErr> {
        directory::join(W::GROUP, W::node(&worker), &myself);
        Ok(WorkerState {
            worker,
            handled: traffic::of_group(W::GROUP),
        })
    }

    async fn handle(
        &self,
        _myself: ActorRef<Self::Msg>,
        message: Self::Msg,
        state: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        let Some((request, reply)) = message.into_parts() else {
            return Ok(());
        };
        if let Some(handled) = state.handled {
            handled.count();
        }
        let answer = W::serve(&mut state.worker, request).await?;
        remote::answer(reply, answer);
        Ok(())
    }
}
