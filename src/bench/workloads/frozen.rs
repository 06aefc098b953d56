//! `frozen-peer`: what the sender's memory does while its peer reads
//! nothing.
//!
//! The peer process is stopped (`SIGSTOP`), and one sender fires every
//! cast of the measurement at it with `remote::cast`, which refuses a cast
//! as `Overloaded` once the lane's buffer is full instead of queueing it.
//! Then the peer is resumed (`SIGCONT`, also when the measurement fails)
//! and drained: every accepted cast must arrive.
//!
//! In the row: `RSS MB` is the sender's peak while the peer was stopped
//! and after; `refused` the casts refused; `messages` the accepted casts
//! that arrived, and `errors` accepted casts that did not.

use std::time::Instant;

use bazaar_cluster::remote::{self, CallError, ServiceMsg};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use ractor::ActorRef;

use super::local::BazaarEndpoint;
use super::{drained, Outcome, DEADLINE_CHECK_EVERY};
use crate::bench::peer_process::freeze;
use crate::bench::plan::Spec;
use crate::bench::protocol::{BenchProtocol, BenchRequest, Payload};

/// The peer, stopped until this is dropped.
struct Frozen(Pid);

impl Frozen {
    async fn stop(pid: u32) -> Result<Self, String> {
        freeze(pid)
            .await
            .map(Self)
            .map_err(|err| format!("cannot freeze the peer: {err:#}"))
    }
}

impl Drop for Frozen {
    fn drop(&mut self) {
        if let Err(err) = kill(self.0, Signal::SIGCONT) {
            tracing::error!(pid = %self.0, error = %err, "cannot resume the bench peer");
        }
    }
}

/// Casts `spec.messages` casts at the stopped peer, resumes it, drains it.
pub async fn run(
    spec: &Spec,
    receiver: &ActorRef<ServiceMsg<BenchProtocol>>,
    peer_pid: u32,
) -> Outcome {
    let frozen = match Frozen::stop(peer_pid).await {
        Ok(frozen) => frozen,
        Err(reason) => return Outcome::failed(reason),
    };
    let start = Instant::now();
    let (mut accepted, mut refused) = (0u64, 0u64);
    let mut failure = None;
    for i in 0..spec.messages {
        let cast = BenchRequest::Payload(Payload(vec![0xA5; spec.payload]));
        match remote::cast(receiver, cast) {
            Ok(()) => accepted += 1,
            Err(CallError::Overloaded(_)) => refused += 1,
            Err(err) => {
                failure = Some(format!("cast {i} to the frozen peer failed: {err}"));
                break;
            }
        }
        if i.is_multiple_of(DEADLINE_CHECK_EVERY) {
            // The lane's writer runs between sends, as for a real sender.
            tokio::task::yield_now().await;
        }
    }
    let enqueued = start.elapsed();
    drop(frozen);
    let mut outcome = drained(&BazaarEndpoint(receiver.clone()), accepted, start).await;
    outcome.enqueued = Some(enqueued);
    outcome.refused = Some(refused);
    outcome.failure = outcome.failure.or(failure);
    outcome
}
