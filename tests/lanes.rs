//! Lanes between two real processes: this test process runs a cluster node
//! of its own, the peer is `bazaar bench-peer` (a cluster node with a
//! Bazaar service actor of the bench protocol). Every remote message below
//! goes through `remote::send`, `remote::cast` and `remote::call`, as the
//! services' messages do.
//!
//! What is checked: one sender's casts arrive in order and none is lost
//! while the peer lives; a frozen peer makes casts fail as `Overloaded`
//! and `send` wait, with the sender's memory bounded, and nothing accepted
//! is lost once it thaws; a peer that dies ends every waiting call at once
//! as unreachable instead of at its timeout.

use std::net::SocketAddr;
use std::path::Path;
use std::time::{Duration, Instant};

use bazaar::bench::peer::{free_port, node_config};
use bazaar::bench::peer_process::{freeze, PeerProcess};
use bazaar::bench::protocol::{BenchProtocol, BenchRequest, Payload, BENCH_GROUP, DRIVER_NODE};
use bazaar_cluster::remote::{self, CallError, ServiceMsg};
use bazaar_cluster::{directory, ClusterNode, Cookie};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use ractor::ActorRef;

/// One cluster node per process: the tests take turns.
static SERIAL: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const JOIN_TIMEOUT: Duration = Duration::from_secs(20);
const CALL_TIMEOUT: Duration = Duration::from_secs(10);

/// Starts `bazaar bench-peer`; it is killed when dropped, so a failing
/// test leaves nothing behind.
async fn spawn_peer(cookie: &str) -> PeerProcess {
    PeerProcess::spawn_exe(Path::new(env!("CARGO_BIN_EXE_bazaar")), cookie, &[])
        .await
        .expect("start bazaar bench-peer")
}

fn signal(peer: &PeerProcess, signal: Signal) {
    kill(Pid::from_raw(peer.hello.pid as i32), signal).expect("signal the peer");
}

/// Starts this process's node seeded with the peer and finds its receiver.
async fn join(
    peer: &PeerProcess,
    cookie: &str,
) -> (ClusterNode, ActorRef<ServiceMsg<BenchProtocol>>) {
    let listen: SocketAddr = "127.0.0.1:0".parse().unwrap();
    let listen = SocketAddr::new(listen.ip(), free_port(listen).unwrap());
    let config = node_config(
        DRIVER_NODE,
        listen,
        vec![peer.hello.cluster_addr.clone()],
        Cookie::new(cookie).unwrap(),
    )
    .unwrap();
    let node = ClusterNode::start(config, String::new()).await.unwrap();
    let deadline = Instant::now() + JOIN_TIMEOUT;
    loop {
        if let Some(receiver) = directory::remote_members::<BenchProtocol>(BENCH_GROUP)
            .into_iter()
            .next()
        {
            return (node, receiver);
        }
        assert!(
            Instant::now() < deadline,
            "the peer's receiver never appeared"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn cookie() -> String {
    format!("lane-test-cookie-{:016x}", rand::random::<u64>())
}

fn rss_mb() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let kb: f64 = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kb| kb.parse().ok())
        .expect("VmRSS in /proc/self/status");
    kb / 1024.0
}

async fn ask(receiver: &ActorRef<ServiceMsg<BenchProtocol>>, request: BenchRequest) -> u64 {
    remote::call(receiver, request, CALL_TIMEOUT)
        .await
        .expect("the peer answers")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_senders_casts_arrive_in_order_and_all_of_them() {
    let _turn = SERIAL.lock().await;
    let cookie = cookie();
    let peer = spawn_peer(&cookie).await;
    let (node, receiver) = join(&peer, &cookie).await;

    const SENDERS: u32 = 4;
    const PER_SENDER: u64 = 25_000;
    let mut tasks = Vec::new();
    for sender in 0..SENDERS {
        let receiver = receiver.clone();
        tasks.push(tokio::spawn(async move {
            for seq in 1..=PER_SENDER {
                let request = BenchRequest::Sequenced { sender, seq };
                // Mix the waiting and the non-waiting form of a cast.
                if seq % 2 == 0 {
                    remote::send(&receiver, request).await.expect("send");
                } else {
                    while let Err(err) = remote::cast(&receiver, request.clone()) {
                        assert!(matches!(err, CallError::Overloaded(_)), "cast: {err}");
                        tokio::task::yield_now().await;
                    }
                }
                if seq % 5_000 == 0 {
                    // A call from the same sender travels in the same order.
                    let len = ask(&receiver, BenchRequest::Payload(Payload(vec![1; 3]))).await;
                    assert_eq!(len, 3);
                }
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let expected = u64::from(SENDERS) * PER_SENDER;
    assert_eq!(
        ask(&receiver, BenchRequest::Drain { expected }).await,
        expected
    );
    assert_eq!(
        ask(&receiver, BenchRequest::Disorder).await,
        0,
        "casts out of order"
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_peer_pushes_back_with_bounded_memory_and_loses_nothing() {
    let _turn = SERIAL.lock().await;
    let cookie = cookie();
    let peer = spawn_peer(&cookie).await;
    let (node, receiver) = join(&peer, &cookie).await;
    assert_eq!(
        ask(&receiver, BenchRequest::Payload(Payload(vec![0; 8]))).await,
        8
    );

    freeze(peer.hello.pid).await.expect("freeze the peer");
    let before = rss_mb();
    let (mut accepted, mut overloaded, mut peak) = (0u64, 0u64, before);
    for i in 0..1_000_000u64 {
        match remote::cast(&receiver, BenchRequest::Payload(Payload(vec![0xA5; 32]))) {
            Ok(()) => accepted += 1,
            Err(CallError::Overloaded(_)) => overloaded += 1,
            Err(err) => panic!("cast to a frozen peer: {err}"),
        }
        if i % 10_000 == 0 {
            peak = peak.max(rss_mb());
            // Let the writer run, as a real sender would between messages.
            tokio::task::yield_now().await;
        }
    }
    peak = peak.max(rss_mb());
    println!(
        "frozen peer: {accepted} casts accepted, {overloaded} refused as overloaded, \
         rss {before:.1} MB -> peak {peak:.1} MB"
    );
    assert!(overloaded > 0, "a frozen peer must push back");
    assert!(
        peak - before < 64.0,
        "sender memory grew by {:.1} MB",
        peak - before
    );
    let waited = tokio::time::timeout(
        Duration::from_millis(300),
        remote::send(&receiver, BenchRequest::Payload(Payload(vec![0xA5; 32]))),
    )
    .await;
    assert!(waited.is_err(), "send must wait while the lane is full");
    let call = remote::call(
        &receiver,
        BenchRequest::Payload(Payload(vec![1])),
        Duration::from_millis(300),
    )
    .await;
    assert!(
        matches!(call, Err(CallError::Timeout(_))),
        "call to a frozen peer: {call:?}"
    );

    signal(&peer, Signal::SIGCONT);
    let received = remote::call(
        &receiver,
        BenchRequest::Drain { expected: accepted },
        Duration::from_secs(60),
    )
    .await
    .expect("drain after the thaw");
    assert_eq!(
        received, accepted,
        "every accepted cast arrives after the thaw"
    );
    node.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn calls_to_a_peer_that_dies_end_at_once_as_unreachable() {
    let _turn = SERIAL.lock().await;
    let cookie = cookie();
    let peer = spawn_peer(&cookie).await;
    let (node, receiver) = join(&peer, &cookie).await;
    assert_eq!(
        ask(&receiver, BenchRequest::Payload(Payload(vec![0; 4]))).await,
        4
    );

    freeze(peer.hello.pid).await.expect("freeze the peer");
    let long = Duration::from_secs(30);
    let calls: Vec<_> = (0..32)
        .map(|_| {
            let receiver = receiver.clone();
            tokio::spawn(async move {
                remote::call(&receiver, BenchRequest::Payload(Payload(vec![2; 16])), long).await
            })
        })
        .collect();
    // Casts queued behind the calls are lost with the peer (at most once).
    for _ in 0..1_000 {
        let _ = remote::cast(&receiver, BenchRequest::Payload(Payload(vec![3; 16])));
    }
    // A short call that times out proves the calls above are in the lane.
    let probe = remote::call(
        &receiver,
        BenchRequest::Payload(Payload(vec![1])),
        Duration::from_millis(200),
    )
    .await;
    assert!(
        matches!(probe, Err(CallError::Timeout(_))),
        "probe: {probe:?}"
    );

    let killed = Instant::now();
    signal(&peer, Signal::SIGKILL);
    for call in calls {
        match call.await.unwrap() {
            Err(CallError::Unreachable(reason)) => {
                println!("call ended {:?} after the kill: {reason}", killed.elapsed())
            }
            other => panic!("a call to a dead peer ended as {other:?}"),
        }
    }
    let ended = killed.elapsed();
    println!("all 32 waiting calls ended {ended:?} after the kill");
    assert!(
        ended < Duration::from_secs(5),
        "calls ended only after {ended:?}"
    );
    // Nothing hangs afterwards: a send to the dead peer's actor returns.
    let after = tokio::time::timeout(
        Duration::from_secs(5),
        remote::send(&receiver, BenchRequest::Payload(Payload(vec![4]))),
    )
    .await;
    assert!(after.is_ok(), "a send after the peer died hung");
    node.shutdown().await;
}
