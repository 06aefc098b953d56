//! Local workloads: the receivers live in this process.
//!
//! - `bazaar`: [`BazaarReceiver`]s found through the directory
//!   (`directory::local_members`), reached with `remote::cast` and
//!   `remote::call` — a local message is moved, never encoded;
//! - `ractor`: [`RawReceiver`]s reached through their `ActorRef`;
//! - `tokio-mpsc`: a task reading an unbounded channel, replies on
//!   oneshot channels.
//!
//! Receivers are started for each measurement and stopped after it; the
//! lookup happens once, before the clock starts.

use std::time::Duration;

use bazaar_cluster::directory;
use bazaar_cluster::remote::{self, ServiceMsg};
use ractor::rpc::CallResult;
use ractor::{Actor, ActorRef};
use tokio::sync::{mpsc, oneshot};

use super::{calls, casts, fan_in, Endpoint, Outcome};
use crate::bench::plan::{Spec, System, Workload, FAN_IN_RECEIVERS};
use crate::bench::protocol::{
    BenchProtocol, BenchRequest, Payload, RawMsg, DRIVER_NODE, LOCAL_BENCH_GROUP,
};
use crate::bench::receivers::{tokio_receiver, Announce, BazaarReceiver, RawReceiver, TokioMsg};

/// A Bazaar service actor, local or remote.
#[derive(Clone)]
pub struct BazaarEndpoint(pub ActorRef<ServiceMsg<BenchProtocol>>);

impl Endpoint for BazaarEndpoint {
    async fn cast(&self, payload: Vec<u8>) -> Result<(), String> {
        remote::send(&self.0, BenchRequest::Payload(Payload(payload)))
            .await
            .map_err(|e| e.to_string())
    }

    async fn call(&self, payload: Vec<u8>, timeout: Duration) -> Result<u64, String> {
        let request = BenchRequest::Payload(Payload(payload));
        remote::call(&self.0, request, timeout)
            .await
            .map_err(|e| e.to_string())
    }

    async fn drain(&self, expected: u64, timeout: Duration) -> Result<u64, String> {
        remote::call(&self.0, BenchRequest::Drain { expected }, timeout)
            .await
            .map_err(|e| e.to_string())
    }
}

/// A plain ractor actor, local or remote (ractor_cluster).
#[derive(Clone)]
pub struct RactorEndpoint(pub ActorRef<RawMsg>);

impl Endpoint for RactorEndpoint {
    async fn cast(&self, payload: Vec<u8>) -> Result<(), String> {
        self.0
            .cast(RawMsg::Cast(payload))
            .map_err(|e| e.to_string())
    }

    async fn call(&self, payload: Vec<u8>, timeout: Duration) -> Result<u64, String> {
        let outcome = self
            .0
            .call(|port| RawMsg::Call(payload, port), Some(timeout))
            .await;
        call_result(outcome, timeout)
    }

    async fn drain(&self, expected: u64, timeout: Duration) -> Result<u64, String> {
        let outcome = self
            .0
            .call(|port| RawMsg::Drain(expected, port), Some(timeout))
            .await;
        call_result(outcome, timeout)
    }
}

fn call_result<E: std::fmt::Display>(
    outcome: Result<CallResult<u64>, E>,
    timeout: Duration,
) -> Result<u64, String> {
    match outcome {
        Ok(CallResult::Success(value)) => Ok(value),
        Ok(CallResult::Timeout) => Err(format!("no reply within {timeout:?}")),
        Ok(CallResult::SenderError) => Err("the actor dropped the call".to_string()),
        Err(err) => Err(err.to_string()),
    }
}

/// A tokio task behind an unbounded channel.
#[derive(Clone)]
pub struct TokioEndpoint(mpsc::UnboundedSender<TokioMsg>);

impl TokioEndpoint {
    /// A channel and its receiving task; the task ends with the last sender.
    pub fn spawn() -> Self {
        let (tx, rx) = mpsc::unbounded_channel();
        tokio::spawn(tokio_receiver(rx));
        Self(tx)
    }

    async fn ask(
        &self,
        message: TokioMsg,
        rx: oneshot::Receiver<u64>,
        timeout: Duration,
    ) -> Result<u64, String> {
        self.0
            .send(message)
            .map_err(|_| "the receiver task is gone".to_string())?;
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(_)) => Err("the receiver dropped the call".to_string()),
            Err(_) => Err(format!("no reply within {timeout:?}")),
        }
    }
}

impl Endpoint for TokioEndpoint {
    async fn cast(&self, payload: Vec<u8>) -> Result<(), String> {
        self.0
            .send(TokioMsg::Cast(payload))
            .map_err(|_| "the receiver task is gone".to_string())
    }

    async fn call(&self, payload: Vec<u8>, timeout: Duration) -> Result<u64, String> {
        let (tx, rx) = oneshot::channel();
        self.ask(TokioMsg::Call(payload, tx), rx, timeout).await
    }

    async fn drain(&self, expected: u64, timeout: Duration) -> Result<u64, String> {
        let (tx, rx) = oneshot::channel();
        self.ask(TokioMsg::Drain(expected, tx), rx, timeout).await
    }
}

/// Runs one local measurement.
pub async fn run(spec: &Spec) -> Outcome {
    let receivers = match spec.workload {
        Workload::FanIn => FAN_IN_RECEIVERS,
        _ => 1,
    };
    match spec.system {
        System::TokioMpsc => {
            let endpoints: Vec<_> = (0..receivers).map(|_| TokioEndpoint::spawn()).collect();
            drive(spec, &endpoints).await
        }
        System::Ractor => {
            let mut actors = Vec::with_capacity(receivers);
            for _ in 0..receivers {
                match Actor::spawn(None, RawReceiver, None).await {
                    Ok((actor, _)) => actors.push(actor),
                    Err(err) => return Outcome::failed(format!("cannot spawn a receiver: {err}")),
                }
            }
            let endpoints: Vec<_> = actors.iter().cloned().map(RactorEndpoint).collect();
            let outcome = drive(spec, &endpoints).await;
            for actor in actors {
                let _ = actor.stop_and_wait(None, None).await;
            }
            outcome
        }
        System::Bazaar => run_bazaar(spec, receivers).await,
        System::RactorCluster | System::TcpFramed => {
            Outcome::failed(format!("{} is not a local system", spec.system.name()))
        }
    }
}

/// Starts `receivers` Bazaar receivers in the local group, resolves them
/// through the directory and measures.
async fn run_bazaar(spec: &Spec, receivers: usize) -> Outcome {
    let announce = Announce {
        group: LOCAL_BENCH_GROUP.to_string(),
        node: DRIVER_NODE.to_string(),
    };
    let mut actors = Vec::with_capacity(receivers);
    for _ in 0..receivers {
        match Actor::spawn(None, BazaarReceiver, announce.clone()).await {
            Ok((actor, _)) => actors.push(actor),
            Err(err) => return Outcome::failed(format!("cannot spawn a receiver: {err}")),
        }
    }
    let endpoints: Vec<_> = directory::local_members::<BenchProtocol>(LOCAL_BENCH_GROUP)
        .into_iter()
        .map(BazaarEndpoint)
        .collect();
    let outcome = if endpoints.len() == receivers {
        drive(spec, &endpoints).await
    } else {
        Outcome::failed(format!(
            "the directory lists {} of {receivers} receivers",
            endpoints.len()
        ))
    };
    for actor in actors {
        // Stopping the actor also takes it out of its pg groups.
        let _ = actor.stop_and_wait(None, None).await;
    }
    outcome
}

/// Runs the workload's loop over `endpoints` (one, or one per fan-in receiver).
pub async fn drive<E: Endpoint>(spec: &Spec, endpoints: &[E]) -> Outcome {
    match spec.workload {
        Workload::FanIn => fan_in(endpoints, spec).await,
        workload if workload.is_call() => calls(&endpoints[0], spec).await,
        _ => casts(&endpoints[0], spec).await,
    }
}
