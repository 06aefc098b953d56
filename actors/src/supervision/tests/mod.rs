//! Supervision tests with real ractor actors (no mocks): a small `Echo`
//! worker that can be told to crash, supervisors built from specs, and
//! polling with a deadline instead of fixed sleeps. This file holds the
//! shared helpers; the tests are grouped by topic in its submodules.

mod budget;
mod escalation;
mod restarts;
mod tree;

use std::future::Future;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ractor::rpc::CallResult;
use ractor::{Actor, ActorCell, ActorProcessingErr, ActorRef, RpcReplyPort, SupervisionEvent};

use super::*;

const DEADLINE: Duration = Duration::from_secs(5);
const RPC_TIMEOUT: Duration = Duration::from_millis(500);

/// Lifecycle lines ("start a", "stop b") shared by all children of a test
type Journal = Arc<Mutex<Vec<String>>>;

struct Echo;

struct EchoState {
    name: String,
    journal: Journal,
}

enum EchoMsg {
    Ping(RpcReplyPort<String>),
    Crash,
    Fail,
}

impl ractor::Message for EchoMsg {}

impl Actor for Echo {
    type Msg = EchoMsg;
    type State = EchoState;
    type Arguments = (String, Journal);

    async fn pre_start(
        &self,
        _myself: ActorRef<EchoMsg>,
        (name, journal): (String, Journal),
    ) -> Result<EchoState, ActorProcessingErr> {
        journal.lock().unwrap().push(format!("start {name}"));
        Ok(EchoState { name, journal })
    }

    async fn handle(
        &self,
        _myself: ActorRef<EchoMsg>,
        message: EchoMsg,
        state: &mut EchoState,
    ) -> Result<(), ActorProcessingErr> {
        match message {
            EchoMsg::Ping(reply) => {
                let _ = reply.send(state.name.clone());
                Ok(())
            }
            EchoMsg::Crash => panic!("{} crashed on purpose", state.name),
            EchoMsg::Fail => Err(format!("{} failed on purpose", state.name).into()),
        }
    }

    async fn post_stop(
        &self,
        _myself: ActorRef<EchoMsg>,
        state: &mut EchoState,
    ) -> Result<(), ActorProcessingErr> {
        state
            .journal
            .lock()
            .unwrap()
            .push(format!("stop {}", state.name));
        Ok(())
    }
}

fn echo(name: &str, journal: &Journal) -> ChildSpec {
    let (name, journal) = (name.to_string(), journal.clone());
    ChildSpec::worker(name.clone(), move |sup| {
        let args = (name.clone(), journal.clone());
        async move {
            let (actor, _) = Actor::spawn_linked(None, Echo, args, sup).await?;
            Ok(actor.get_cell())
        }
    })
}

fn journal() -> Journal {
    Arc::new(Mutex::new(Vec::new()))
}

fn entries(journal: &Journal) -> Vec<String> {
    journal.lock().unwrap().clone()
}

fn spec(name: &str, strategy: Strategy, children: Vec<ChildSpec>) -> SupervisorSpec {
    SupervisorSpec {
        children,
        ..SupervisorSpec::new(name, strategy)
    }
}

/// Polls `check` every 10 ms until it yields a value or `DEADLINE` passes
async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + DEADLINE;
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn tree(sup: &ActorRef<SupervisorMsg>) -> TreeReport {
    tree_of(sup, RPC_TIMEOUT)
        .await
        .expect("supervisor answers GetTree")
}

async fn child(sup: &ActorRef<SupervisorMsg>, name: &str) -> ActorCell {
    child_of(sup, name, RPC_TIMEOUT)
        .await
        .expect("child is running")
}

async fn ping(cell: &ActorCell) -> Option<String> {
    let echo = ActorRef::<EchoMsg>::from(cell.clone());
    match echo.call(EchoMsg::Ping, Some(RPC_TIMEOUT)).await {
        Ok(CallResult::Success(name)) => Some(name),
        _ => None,
    }
}

fn crash(cell: &ActorCell) {
    ActorRef::<EchoMsg>::from(cell.clone())
        .send_message(EchoMsg::Crash)
        .unwrap();
}

/// Waits until child `name` of `sup` runs as an actor other than `old`
async fn restarted(sup: &ActorRef<SupervisorMsg>, name: &str, old: &ActorCell) -> ActorCell {
    eventually(&format!("{name} to restart"), || async {
        child_of(sup, name, RPC_TIMEOUT)
            .await
            .filter(|cell| cell.get_id() != old.get_id())
    })
    .await
}

fn node<'a>(tree: &'a TreeReport, name: &str) -> &'a TreeReport {
    tree.find(name)
        .unwrap_or_else(|| panic!("{name} in tree {tree:?}"))
}

/// A plain actor standing in for a parent: it records its children's exits
struct Probe;

impl Actor for Probe {
    type Msg = ();
    type State = Arc<Mutex<Vec<String>>>;
    type Arguments = Arc<Mutex<Vec<String>>>;

    async fn pre_start(
        &self,
        _myself: ActorRef<()>,
        seen: Self::Arguments,
    ) -> Result<Self::State, ActorProcessingErr> {
        Ok(seen)
    }

    async fn handle_supervisor_evt(
        &self,
        _myself: ActorRef<()>,
        event: SupervisionEvent,
        seen: &mut Self::State,
    ) -> Result<(), ActorProcessingErr> {
        match event {
            SupervisionEvent::ActorFailed(_, err) => {
                seen.lock().unwrap().push(format!("failed: {err}"))
            }
            SupervisionEvent::ActorTerminated(..) => seen.lock().unwrap().push("terminated".into()),
            _ => {}
        }
        Ok(())
    }
}
