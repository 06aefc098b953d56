//! Local cast and call through Bazaar's service path next to a plain
//! ractor actor and a plain tokio task, in the same run.
//!
//! - `bazaar-cast` / `bazaar-send`: `remote::cast` / `remote::send` of a
//!   [`BenchRequest::Payload`] to a local `ServiceMsg<BenchProtocol>`
//!   actor (moved, never encoded); `bazaar-call`: `remote::call`;
//! - `ractor-cast` / `ractor-call`: `ActorRef::cast` / `ractor::call_t!`
//!   of [`RawMsg`] to a plain ractor actor;
//! - `tokio-mpsc` / `tokio-oneshot`: an unbounded tokio channel read by
//!   one task, calls answered on a oneshot channel.
//!
//! The receivers are `bazaar bench`'s own (`bazaar::bench::receivers`):
//! they count casts with the same counter and answer a call with the
//! payload's length. A cast sample is K casts of 32 bytes
//! followed by one drain call answered once the receiver counted all K,
//! so it measures delivery, not enqueueing (K is in the benchmark's id,
//! so runs with and without `CI` are not compared); a call sample is one
//! call.
//! Every call (drains too) carries the same timeout on all three systems.
//! The receivers run on a multi-threaded tokio runtime built here; the
//! sender is the bench thread inside `Runtime::block_on`. With `CI` set,
//! K is smaller and measurements shorter.

mod common;

use std::time::{Duration, Instant};

use bazaar::bench::protocol::{BenchProtocol, BenchRequest, Payload, RawMsg, LOCAL_BENCH_GROUP};
use bazaar::bench::receivers::{tokio_receiver, Announce, BazaarReceiver, RawReceiver, TokioMsg};
use bazaar_cluster::remote::{self, ServiceMsg};
use common::{config, on_ci};
use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use ractor::{Actor, ActorRef};
use tokio::runtime::Runtime;
use tokio::sync::{mpsc, oneshot};

/// Bytes of every payload, the default size of `bazaar bench`.
const PAYLOAD_BYTES: usize = 32;
/// Timeout of every call and drain.
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Casts per sample, before the drain.
fn casts_per_sample() -> u64 {
    if on_ci() {
        1_000
    } else {
        10_000
    }
}

/// Asks the tokio task and waits for its answer, within [`CALL_TIMEOUT`].
async fn tokio_ask(
    inbox: &mpsc::UnboundedSender<TokioMsg>,
    message: impl FnOnce(oneshot::Sender<u64>) -> TokioMsg,
) -> u64 {
    let (tx, rx) = oneshot::channel();
    inbox.send(message(tx)).expect("the tokio counter runs");
    tokio::time::timeout(CALL_TIMEOUT, rx)
        .await
        .expect("the tokio counter answers in time")
        .expect("the tokio counter answers")
}

/// The three receivers, started on `runtime`.
struct Receivers {
    bazaar: ActorRef<ServiceMsg<BenchProtocol>>,
    ractor: ActorRef<RawMsg>,
    tokio: mpsc::UnboundedSender<TokioMsg>,
}

impl Receivers {
    fn start(runtime: &Runtime) -> Self {
        runtime.block_on(async {
            let announce = Announce {
                group: LOCAL_BENCH_GROUP.to_string(),
                node: "criterion".to_string(),
            };
            let (bazaar, _) = Actor::spawn(None, BazaarReceiver, announce)
                .await
                .expect("the bazaar receiver starts");
            let (ractor, _) = Actor::spawn(None, RawReceiver, None)
                .await
                .expect("the ractor receiver starts");
            let (tokio, inbox) = mpsc::unbounded_channel();
            tokio::spawn(tokio_receiver(inbox));
            Self {
                bazaar,
                ractor,
                tokio,
            }
        })
    }

    fn stop(self, runtime: &Runtime) {
        runtime.block_on(async {
            let _ = self.bazaar.stop_and_wait(None, None).await;
            let _ = self.ractor.stop_and_wait(None, None).await;
        });
    }
}

fn payload() -> Vec<u8> {
    vec![7; PAYLOAD_BYTES]
}

/// Runs `sample` `iters` times on `runtime` and answers the total time.
fn timed<F: std::future::Future<Output = ()>>(
    runtime: &Runtime,
    iters: u64,
    mut sample: impl FnMut() -> F,
) -> Duration {
    runtime.block_on(async {
        let start = Instant::now();
        for _ in 0..iters {
            sample().await;
        }
        start.elapsed()
    })
}

fn casts(c: &mut Criterion) {
    let runtime = Runtime::new().expect("a tokio runtime");
    let receivers = Receivers::start(&runtime);
    let k = casts_per_sample();
    let mut group = c.benchmark_group("local-cast");
    group.throughput(Throughput::Elements(k));

    let bazaar = &receivers.bazaar;
    let drain_bazaar = || async move {
        let drain = BenchRequest::Drain { expected: k };
        let counted = remote::call(bazaar, drain, CALL_TIMEOUT).await;
        assert_eq!(counted, Ok(k), "the bazaar counter got every cast");
    };
    group.bench_function(BenchmarkId::new("bazaar-cast", k), |b| {
        b.iter_custom(|iters| {
            timed(&runtime, iters, || async {
                for _ in 0..k {
                    let request = BenchRequest::Payload(Payload(payload()));
                    remote::cast(bazaar, request).expect("a local cast");
                }
                drain_bazaar().await;
            })
        })
    });
    group.bench_function(BenchmarkId::new("bazaar-send", k), |b| {
        b.iter_custom(|iters| {
            timed(&runtime, iters, || async {
                for _ in 0..k {
                    let request = BenchRequest::Payload(Payload(payload()));
                    remote::send(bazaar, request).await.expect("a local send");
                }
                drain_bazaar().await;
            })
        })
    });

    let ractor = &receivers.ractor;
    group.bench_function(BenchmarkId::new("ractor-cast", k), |b| {
        b.iter_custom(|iters| {
            timed(&runtime, iters, || async {
                for _ in 0..k {
                    ractor.cast(RawMsg::Cast(payload())).expect("a local cast");
                }
                let timeout_ms = CALL_TIMEOUT.as_millis() as u64;
                let counted = ractor::call_t!(ractor, RawMsg::Drain, timeout_ms, k);
                assert_eq!(counted.ok(), Some(k), "the ractor counter got every cast");
            })
        })
    });

    let tokio = &receivers.tokio;
    group.bench_function(BenchmarkId::new("tokio-mpsc", k), |b| {
        b.iter_custom(|iters| {
            timed(&runtime, iters, || async {
                for _ in 0..k {
                    tokio
                        .send(TokioMsg::Cast(payload()))
                        .expect("the task runs");
                }
                let counted = tokio_ask(tokio, |reply| TokioMsg::Drain(k, reply)).await;
                assert_eq!(counted, k, "the tokio counter got every cast");
            })
        })
    });

    group.finish();
    receivers.stop(&runtime);
}

fn calls(c: &mut Criterion) {
    let runtime = Runtime::new().expect("a tokio runtime");
    let receivers = Receivers::start(&runtime);
    let expected = PAYLOAD_BYTES as u64;
    let mut group = c.benchmark_group("local-call");
    group.throughput(Throughput::Elements(1));

    let bazaar = &receivers.bazaar;
    group.bench_function("bazaar-call", |b| {
        b.iter_custom(|iters| {
            timed(&runtime, iters, || async {
                let request = BenchRequest::Payload(Payload(payload()));
                let answer = remote::call(bazaar, request, CALL_TIMEOUT).await;
                assert_eq!(answer, Ok(expected));
            })
        })
    });

    let ractor = &receivers.ractor;
    group.bench_function("ractor-call", |b| {
        b.iter_custom(|iters| {
            timed(&runtime, iters, || async {
                let timeout_ms = CALL_TIMEOUT.as_millis() as u64;
                let answer = ractor::call_t!(ractor, RawMsg::Call, timeout_ms, payload());
                assert_eq!(answer.ok(), Some(expected));
            })
        })
    });

    let tokio = &receivers.tokio;
    group.bench_function("tokio-oneshot", |b| {
        b.iter_custom(|iters| {
            timed(&runtime, iters, || async {
                let answer = tokio_ask(tokio, |reply| TokioMsg::Call(payload(), reply)).await;
                assert_eq!(answer, expected);
            })
        })
    });

    group.finish();
    receivers.stop(&runtime);
}

criterion_group! {
    name = benches;
    config = config();
    targets = casts, calls
}
criterion_main!(benches);
