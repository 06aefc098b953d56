//! Hostile peers against real `bazaar node` processes on real sockets:
//! what a node does with connections that are not, or not yet, members.
//!
//! - 1,000 attempts with a wrong cookie: never a member, each connection
//!   closed by the node within 100 ms, and the gateway's latency stays
//!   where it was;
//! - 10,000 malformed frames (random bytes, huge length prefixes,
//!   oversized frames, garbage protobuf): the node keeps serving, its RSS
//!   grows by less than 16 MB, and a real peer still joins;
//! - 5,000 silent connections: all closed within 10 s, RSS back within
//!   50 MB of where it started;
//! - with mutual TLS, connections stalled in the TLS handshake do not delay
//!   a real peer's join by more than 1 s;
//! - the node listens on its configured addresses only (ractor_cluster's
//!   own listener is retired).
//!
//! RSS comes from `/proc/<pid>/status`. Figures are printed
//! (`cargo test --test hardening -- --nocapture`).

mod support;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use support::{http_get_within, Options, TestCluster};

/// Time a fresh cluster gets to be up and ready.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Budget of one latency probe request.
const PROBE_TIMEOUT: Duration = Duration::from_secs(2);
/// Pause between two latency probes.
const PROBE_INTERVAL: Duration = Duration::from_millis(10);
/// The node's handshake deadline (`ListenerConfig::handshake_timeout`).
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(2);

/// Resident set size of `pid`, in bytes.
fn rss_bytes(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read status");
    let line = status
        .lines()
        .find(|line| line.starts_with("VmRSS:"))
        .expect("VmRSS line");
    let kb: u64 = line
        .split_whitespace()
        .nth(1)
        .and_then(|kb| kb.parse().ok())
        .expect("VmRSS value");
    kb * 1024
}

fn mb(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Starts `options` on `n` nodes and waits until the non-deferred ones are
/// all up and ready.
fn ready_cluster(n: usize, options: Options, started: &[usize]) -> TestCluster {
    let cluster = TestCluster::start_with(n, options);
    cluster.expect_within(Instant::now(), READY_TIMEOUT, "nodes up and ready", |c| {
        c.all_up(started) && started.iter().all(|&i| c.status(i, "/readyz") == Some(200))
    });
    cluster
}

/// Reads a product through node `i` every [`PROBE_INTERVAL`] in a
/// background thread, recording each latency (or a failure).
struct LatencyProbe {
    stop: Arc<AtomicBool>,
    thread: thread::JoinHandle<(Vec<Duration>, usize)>,
}

impl LatencyProbe {
    fn start(http: SocketAddr) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let thread = thread::spawn(move || {
            let mut latencies = Vec::new();
            let mut failures = 0;
            let mut id = 1;
            while !flag.load(Ordering::Relaxed) {
                let started = Instant::now();
                match http_get_within(http, &format!("/api/products/{id}"), PROBE_TIMEOUT) {
                    Some((200, _)) => latencies.push(started.elapsed()),
                    _ => failures += 1,
                }
                id = id % 1000 + 1;
                thread::sleep(PROBE_INTERVAL);
            }
            (latencies, failures)
        });
        Self { stop, thread }
    }

    /// Stops the probe and summarises what it saw.
    fn finish(self) -> LatencySummary {
        self.stop.store(true, Ordering::Relaxed);
        let (mut latencies, failures) = self.thread.join().expect("probe thread");
        latencies.sort();
        let at = |q: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or_default()
        };
        LatencySummary {
            p50: at(0.5),
            p99: at(0.99),
            samples: latencies.len(),
            failures,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct LatencySummary {
    p50: Duration,
    p99: Duration,
    samples: usize,
    failures: usize,
}

/// Baseline latency of node `i` over `window`.
fn baseline_latency(cluster: &TestCluster, i: usize, window: Duration) -> LatencySummary {
    let probe = LatencyProbe::start(cluster.http_addr(i));
    let until = Instant::now() + window;
    while Instant::now() < until {
        thread::sleep(PROBE_INTERVAL);
    }
    probe.finish()
}

/// The latency under attack must stay close to the baseline: p50 within
/// 3x + 5 ms and p99 within 3x + 50 ms, with no failed request.
fn assert_latency_unaffected(what: &str, baseline: LatencySummary, during: LatencySummary) {
    println!("{what}: baseline {baseline:?}, during {during:?}");
    assert!(during.samples >= 20, "{what}: too few probes: {during:?}");
    assert_eq!(during.failures, 0, "{what}: failed reads: {during:?}");
    assert!(
        during.p50 <= baseline.p50 * 3 + Duration::from_millis(5),
        "{what}: p50 went from {:?} to {:?}",
        baseline.p50,
        during.p50
    );
    assert!(
        during.p99 <= baseline.p99 * 3 + Duration::from_millis(50),
        "{what}: p99 went from {:?} to {:?}",
        baseline.p99,
        during.p99
    );
}

/// Listening TCP ports of process `pid` (IPv4 and IPv6), with their address.
fn listening_sockets(pid: u32) -> Vec<String> {
    let mut inodes = BTreeSet::new();
    for entry in std::fs::read_dir(format!("/proc/{pid}/fd")).expect("list fds") {
        let Ok(target) = std::fs::read_link(entry.expect("fd entry").path()) else {
            continue;
        };
        let target = target.display().to_string();
        if let Some(inode) = target
            .strip_prefix("socket:[")
            .and_then(|rest| rest.strip_suffix(']'))
        {
            inodes.insert(inode.to_string());
        }
    }
    let mut found = Vec::new();
    for table in ["tcp", "tcp6"] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for line in text.lines().skip(1) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            // local_address, state 0A = LISTEN, inode
            if fields.len() > 9 && fields[3] == "0A" && inodes.contains(fields[9]) {
                found.push(decode_proc_addr(fields[1]));
            }
        }
    }
    found
}

/// `0100007F:1F90` as `127.0.0.1:8080`; IPv6 addresses stay hex.
fn decode_proc_addr(field: &str) -> String {
    let (ip, port) = field.split_once(':').expect("addr:port");
    let port = u16::from_str_radix(port, 16).expect("hex port");
    if ip.len() == 8 {
        let raw = u32::from_str_radix(ip, 16).expect("hex ip");
        let ip = std::net::Ipv4Addr::from(raw.to_le_bytes());
        format!("{ip}:{port}")
    } else {
        format!("[{ip}]:{port}")
    }
}

#[test]
fn a_node_listens_on_its_configured_addresses_only() {
    let cluster = ready_cluster(1, Options::default(), &[1]);
    let pid = cluster.pid(1).expect("n1 runs");
    let view = cluster.view(1).expect("n1 view").to_string();
    let log = cluster.log(1);
    let expected = [cluster.cluster_addr(1), cluster.http_addr(1)];
    let sockets = listening_sockets(pid);
    println!("n1 listens on {sockets:?}");
    for socket in &sockets {
        assert!(
            socket.starts_with("127.0.0.1:"),
            "n1 listens on {socket}, beyond its configured host"
        );
        // Another listener is fine only if the node names it (its data
        // lanes, for instance); ractor_cluster's own listener must be gone.
        let known = expected.iter().any(|addr| addr.to_string() == *socket)
            || view.contains(socket.as_str())
            || log.contains(&format!("listening addr={socket}"));
        assert!(
            known,
            "n1 listens on {socket}, which it does not name: {sockets:?}"
        );
    }
    for addr in expected {
        assert!(
            sockets.contains(&addr.to_string()),
            "n1 does not listen on {addr}: {sockets:?}"
        );
    }
}

/// A ractor_cluster node of this test process with the wrong cookie,
/// dialing `target` again and again; each attempt's time from TCP connect
/// to the session's end.
fn wrong_cookie_attempts(target: SocketAddr, attempts: usize) -> (Vec<Duration>, usize) {
    use ractor::Actor;
    use ractor_cluster::node::{NodeConnectionMode, NodeServerSessionInformation};
    use ractor_cluster::{NetworkStream, NodeEventSubscription, NodeServer, NodeServerMessage};
    use tokio::sync::mpsc;

    enum Seen {
        Closed,
        Authenticated,
    }
    struct Events(mpsc::UnboundedSender<Seen>);
    impl NodeEventSubscription for Events {
        fn node_session_opened(&self, _: NodeServerSessionInformation) {}
        fn node_session_disconnected(&self, _: NodeServerSessionInformation) {
            let _ = self.0.send(Seen::Closed);
        }
        fn node_session_authenticated(&self, _: NodeServerSessionInformation) {
            let _ = self.0.send(Seen::Authenticated);
        }
        fn node_session_ready(&self, _: NodeServerSessionInformation) {
            let _ = self.0.send(Seen::Authenticated);
        }
    }

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async move {
        let server = NodeServer::new(
            0,
            support::random_cookie(),
            "intruder".to_string(),
            "127.0.0.1".to_string(),
            None,
            Some(NodeConnectionMode::Isolated),
        )
        .with_listen_addr("127.0.0.1".parse().unwrap());
        let (server, handle) = Actor::spawn(None, server, ()).await.expect("intruder node");
        let (tx, mut rx) = mpsc::unbounded_channel();
        server
            .cast(NodeServerMessage::SubscribeToEvents {
                id: "test".into(),
                subscription: Box::new(Events(tx)),
            })
            .expect("subscribe");
        let mut took = Vec::with_capacity(attempts);
        let mut authenticated = 0;
        for _ in 0..attempts {
            let started = Instant::now();
            let stream = tokio::net::TcpStream::connect(target)
                .await
                .expect("connect");
            let peer_addr = stream.peer_addr().unwrap();
            let local_addr = stream.local_addr().unwrap();
            server
                .cast(NodeServerMessage::ConnectionOpened {
                    stream: Box::new(NetworkStream::Raw {
                        peer_addr,
                        local_addr,
                        stream,
                    }),
                    is_server: false,
                })
                .expect("hand over");
            loop {
                match tokio::time::timeout(Duration::from_secs(5), rx.recv()).await {
                    Ok(Some(Seen::Closed)) => break,
                    Ok(Some(Seen::Authenticated)) => authenticated += 1,
                    Ok(None) | Err(_) => panic!("wrong-cookie session still open after 5 s"),
                }
            }
            took.push(started.elapsed());
        }
        server.stop(None);
        let _ = handle.await;
        (took, authenticated)
    })
}

#[test]
fn wrong_cookie_never_joins_and_is_closed_at_once() {
    const ATTEMPTS: usize = 1_000;
    let cluster = ready_cluster(2, Options::default(), &[1, 2]);
    let baseline = baseline_latency(&cluster, 1, Duration::from_secs(2));

    let probe = LatencyProbe::start(cluster.http_addr(1));
    let started = Instant::now();
    let (mut took, authenticated) = wrong_cookie_attempts(cluster.cluster_addr(1), ATTEMPTS);
    let elapsed = started.elapsed();
    let during = probe.finish();

    took.sort();
    let slowest = *took.last().unwrap();
    println!(
        "{ATTEMPTS} wrong-cookie attempts in {elapsed:?}: connect to close p50 {:?}, p99 {:?}, max {slowest:?}",
        took[took.len() / 2],
        took[took.len() * 99 / 100],
    );
    assert_eq!(authenticated, 0, "a wrong cookie authenticated");
    assert!(
        slowest <= Duration::from_millis(100),
        "a wrong-cookie connection stayed open {slowest:?}"
    );
    let view = cluster.cluster_view(1).expect("n1 view");
    let names: BTreeSet<String> = view.members.iter().map(|m| m.name.clone()).collect();
    assert_eq!(
        names,
        BTreeSet::from(["n1".to_string(), "n2".to_string()]),
        "members after the attempts"
    );
    assert!(cluster.all_up(&[1, 2]), "the members stay up");
    assert_latency_unaffected("wrong cookie", baseline, during);
}

/// One malformed frame: what a hostile or broken peer might send first.
fn malformed_frame(index: usize, rng: &mut impl rand::Rng) -> Vec<u8> {
    // Truncated frames hold a connection until the handshake deadline, so
    // they are a small share.
    let kind = if index % 200 == 199 { 4 } else { index % 4 };
    match kind {
        // random bytes
        0 => {
            let len = rng.random_range(1..512);
            (0..len).map(|_| rng.random()).collect()
        }
        // a huge length prefix, then a little data
        1 => {
            let prefix: u64 = [u64::MAX, 1 << 63, 1 << 40, 1 << 32][index / 4 % 4];
            let mut bytes = prefix.to_be_bytes().to_vec();
            bytes.extend((0..64).map(|_| rng.random::<u8>()));
            bytes
        }
        // an oversized frame: just over the node's frame limit, with 64 KiB of it
        2 => {
            let limit = bazaar_cluster::codec::MAX_FRAME_BYTES;
            let mut bytes = (limit + 1).to_be_bytes().to_vec();
            bytes.extend(std::iter::repeat_n(0xAB, 64 * 1024));
            bytes
        }
        // a plausible length with garbage protobuf inside
        3 => {
            let len = rng.random_range(1..2048usize);
            let mut bytes = (len as u64).to_be_bytes().to_vec();
            bytes.extend((0..len).map(|_| rng.random::<u8>()));
            bytes
        }
        // a truncated frame: the prefix promises more than ever comes
        _ => {
            let mut bytes = 4096u64.to_be_bytes().to_vec();
            bytes.extend((0..16).map(|_| rng.random::<u8>()));
            bytes
        }
    }
}

/// Sends `frame` on a fresh connection and waits (up to `limit`) for the
/// node to close it; returns whether it did.
fn send_and_wait_close(target: SocketAddr, frame: &[u8], limit: Duration) -> bool {
    let Ok(mut stream) = TcpStream::connect_timeout(&target, Duration::from_secs(2)) else {
        return false;
    };
    // The node may close before everything is written; that is fine.
    let _ = stream.write_all(frame);
    stream
        .set_read_timeout(Some(limit))
        .expect("set read timeout");
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => return true,
            Ok(_) => continue,
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => return true,
            Err(_) => return false,
        }
    }
}

#[test]
fn malformed_frames_do_not_hurt_the_node() {
    const FRAMES: usize = 10_000;
    const SENDERS: usize = 16;
    let options = Options::default().expect(1).deferred(2);
    let mut cluster = ready_cluster(2, options, &[1]);
    let pid = cluster.pid(1).expect("n1 runs");
    let target = cluster.cluster_addr(1);
    let rss_start = rss_bytes(pid);

    let probe = LatencyProbe::start(cluster.http_addr(1));
    let next = Arc::new(AtomicUsize::new(0));
    let not_closed = Arc::new(AtomicUsize::new(0));
    let peak = Arc::new(Mutex::new(rss_start));
    let started = Instant::now();
    let senders: Vec<_> = (0..SENDERS)
        .map(|_| {
            let (next, not_closed) = (next.clone(), not_closed.clone());
            thread::spawn(move || {
                let mut rng = rand::rng();
                loop {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= FRAMES {
                        break;
                    }
                    let frame = malformed_frame(index, &mut rng);
                    let limit = HANDSHAKE_TIMEOUT + Duration::from_secs(3);
                    if !send_and_wait_close(target, &frame, limit) {
                        not_closed.fetch_add(1, Ordering::Relaxed);
                    }
                }
            })
        })
        .collect();
    while senders.iter().any(|sender| !sender.is_finished()) {
        let rss = rss_bytes(pid);
        let mut peak = peak.lock().unwrap();
        *peak = (*peak).max(rss);
        drop(peak);
        thread::sleep(Duration::from_millis(100));
    }
    for sender in senders {
        sender.join().expect("sender thread");
    }
    let elapsed = started.elapsed();
    let during = probe.finish();
    let rss_end = rss_bytes(pid);
    let peak = *peak.lock().unwrap();
    println!(
        "{FRAMES} malformed frames in {elapsed:?}; rss start {:.1} MB, peak {:.1} MB, end {:.1} MB; reads {during:?}",
        mb(rss_start),
        mb(peak),
        mb(rss_end)
    );
    assert_eq!(
        not_closed.load(Ordering::Relaxed),
        0,
        "connections the node did not close"
    );
    assert_eq!(during.failures, 0, "n1 failed reads during the flood");
    assert!(
        rss_end.saturating_sub(rss_start) < 16 * 1024 * 1024,
        "rss grew by {:.1} MB",
        mb(rss_end.saturating_sub(rss_start))
    );

    let join_started = Instant::now();
    cluster.start_node(2);
    let took = cluster.expect_within(join_started, READY_TIMEOUT, "n2 joins n1", |c| {
        c.all_up(&[1, 2])
    });
    println!("a real peer joined {took:?} after it was started");
}

/// Raises this process's open-file limit to at least `wanted` (within the
/// hard limit).
fn raise_fd_limit(wanted: u64) -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit");
    if soft < wanted {
        setrlimit(Resource::RLIMIT_NOFILE, wanted.min(hard), hard).expect("setrlimit");
    }
    getrlimit(Resource::RLIMIT_NOFILE).expect("getrlimit").0
}

#[test]
fn silent_connections_are_all_closed() {
    const CONNECTIONS: usize = 5_000;
    const CONNECTING_AT_ONCE: usize = 256;
    let limit = raise_fd_limit(CONNECTIONS as u64 + 1_000);
    assert!(
        limit >= CONNECTIONS as u64 + 200,
        "open-file limit {limit} too low"
    );
    let cluster = ready_cluster(1, Options::default(), &[1]);
    let pid = cluster.pid(1).expect("n1 runs");
    let target = cluster.cluster_addr(1);
    let rss_start = rss_bytes(pid);
    let probe = LatencyProbe::start(cluster.http_addr(1));

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let peak = Arc::new(Mutex::new(rss_start));
    let watcher_peak = peak.clone();
    let watching = Arc::new(AtomicBool::new(true));
    let watcher_flag = watching.clone();
    let watcher = thread::spawn(move || {
        while watcher_flag.load(Ordering::Relaxed) {
            let rss = rss_bytes(pid);
            let mut peak = watcher_peak.lock().unwrap();
            *peak = (*peak).max(rss);
            drop(peak);
            thread::sleep(Duration::from_millis(50));
        }
    });
    let started = Instant::now();
    let (held_longest, not_closed) = runtime.block_on(async move {
        let gate = Arc::new(tokio::sync::Semaphore::new(CONNECTING_AT_ONCE));
        let mut tasks = tokio::task::JoinSet::new();
        for _ in 0..CONNECTIONS {
            let connecting = gate.clone().acquire_owned().await.expect("gate");
            tasks.spawn(async move {
                use tokio::io::AsyncReadExt;
                let mut stream = tokio::net::TcpStream::connect(target).await.ok()?;
                let opened = Instant::now();
                drop(connecting);
                let mut buf = [0u8; 64];
                let closed = tokio::time::timeout(Duration::from_secs(10), async {
                    loop {
                        match stream.read(&mut buf).await {
                            Ok(0) | Err(_) => break,
                            Ok(_) => continue,
                        }
                    }
                })
                .await;
                closed.ok().map(|_| opened.elapsed())
            });
        }
        let mut longest = Duration::ZERO;
        let mut not_closed = 0;
        while let Some(result) = tasks.join_next().await {
            match result.expect("connection task") {
                Some(held) => longest = longest.max(held),
                None => not_closed += 1,
            }
        }
        (longest, not_closed)
    });
    let all_closed_after = started.elapsed();
    let rss_closed = rss_bytes(pid);
    let settle_started = Instant::now();
    let back = cluster.wait_until(Duration::from_secs(10), |_| {
        rss_bytes(pid) < rss_start + 50 * 1024 * 1024
    });
    watching.store(false, Ordering::Relaxed);
    watcher.join().expect("rss watcher");
    let during = probe.finish();
    let peak = *peak.lock().unwrap();
    println!(
        "{CONNECTIONS} silent connections: all closed {all_closed_after:?} after the first, longest held {held_longest:?}; \
         rss start {:.1} MB, peak {:.1} MB, when all closed {:.1} MB, settled in {:?}; reads {during:?}",
        mb(rss_start),
        mb(peak),
        mb(rss_closed),
        back.map(|_| settle_started.elapsed())
    );
    assert_eq!(not_closed, 0, "silent connections still open after 10 s");
    assert!(held_longest <= Duration::from_secs(10));
    assert!(
        back.is_some(),
        "rss {:.1} MB not back within 50 MB of {:.1} MB",
        mb(rss_bytes(pid)),
        mb(rss_start)
    );
    assert_eq!(during.failures, 0, "n1 failed reads during the flood");
}

/// Keeps `count` connections to each target stalled in the TLS handshake
/// (a TLS record header that promises a ClientHello that never comes),
/// reopening each one the node closes. Returns the number of closes seen.
struct TlsStaller {
    stop: Arc<AtomicBool>,
    closes: Arc<AtomicUsize>,
    threads: Vec<thread::JoinHandle<()>>,
}

impl TlsStaller {
    fn start(targets: &[SocketAddr], count: usize) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let closes = Arc::new(AtomicUsize::new(0));
        let mut threads = Vec::new();
        for &target in targets {
            for _ in 0..count {
                let (stop, closes) = (stop.clone(), closes.clone());
                threads.push(thread::spawn(move || {
                    while !stop.load(Ordering::Relaxed) {
                        let Ok(mut stream) =
                            TcpStream::connect_timeout(&target, Duration::from_secs(1))
                        else {
                            continue;
                        };
                        // handshake record, TLS 1.0 framing, 512 bytes promised
                        let _ = stream.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01]);
                        let _ = stream.set_read_timeout(Some(Duration::from_millis(100)));
                        let mut buf = [0u8; 256];
                        while !stop.load(Ordering::Relaxed) {
                            match stream.read(&mut buf) {
                                Ok(0) => {
                                    closes.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                                Ok(_) => {}
                                Err(err)
                                    if matches!(
                                        err.kind(),
                                        std::io::ErrorKind::WouldBlock
                                            | std::io::ErrorKind::TimedOut
                                    ) => {}
                                Err(_) => {
                                    closes.fetch_add(1, Ordering::Relaxed);
                                    break;
                                }
                            }
                        }
                    }
                }));
            }
        }
        Self {
            stop,
            closes,
            threads,
        }
    }

    fn finish(self) -> usize {
        self.stop.store(true, Ordering::Relaxed);
        for thread in self.threads {
            thread.join().expect("staller thread");
        }
        self.closes.load(Ordering::Relaxed)
    }
}

#[test]
fn a_stalled_tls_handshake_does_not_delay_a_join() {
    let certs = tempfile::tempdir().expect("temp dir");
    let names: Vec<String> = (1..=3).map(|i| format!("n{i}")).collect();
    let files = bazaar::launcher::tls::generate(certs.path(), &names).expect("certificates");
    let mut options = Options::default().deferred(3);
    for (i, files) in files.iter().enumerate() {
        options = options.flags(i + 1, bazaar::launcher::tls::node_flags(files));
    }

    // Baseline: two TLS nodes form a cluster, nothing in the way.
    let started = Instant::now();
    let mut cluster = TestCluster::start_with(3, options);
    let baseline = cluster.expect_within(started, READY_TIMEOUT, "n1 and n2 up over tls", |c| {
        c.all_up(&[1, 2])
    });
    assert!(
        cluster.log(1).contains("tls=true") || cluster.log(1).contains("\"tls\":true"),
        "n1 does not report tls:\n{}",
        cluster.log(1)
    );

    // Now n3 joins while both members have stalled TLS handshakes open.
    let staller = TlsStaller::start(&[cluster.cluster_addr(1), cluster.cluster_addr(2)], 8);
    let started = Instant::now();
    cluster.start_node(3);
    let joined = cluster.expect_within(started, READY_TIMEOUT, "n3 joins over tls", |c| {
        c.all_up(&[1, 2, 3])
    });
    // Hold the stalls past one handshake deadline to see them closed.
    let hold_until = started + HANDSHAKE_TIMEOUT + Duration::from_secs(1);
    cluster.wait_until(Duration::from_secs(10), |_| Instant::now() >= hold_until);
    let closes = staller.finish();
    println!(
        "tls: 2 nodes formed in {baseline:?}; with 16 stalled handshakes n3 joined in {joined:?}; the nodes closed {closes} stalled connections"
    );
    assert!(closes >= 16, "stalled handshakes were not closed: {closes}");
    assert!(
        joined <= baseline + Duration::from_secs(1),
        "join took {joined:?} with stalled handshakes, {baseline:?} without"
    );
}

#[test]
fn a_node_with_a_certificate_from_another_ca_never_joins() {
    let certs = tempfile::tempdir().expect("temp dir");
    let members = ["n1".to_string(), "n2".to_string()];
    let files = bazaar::launcher::tls::generate(&certs.path().join("cluster"), &members)
        .expect("certificates");
    let stranger = bazaar::launcher::tls::generate(&certs.path().join("other"), &["n3".into()])
        .expect("other certificates");
    let options = Options::default()
        .expect(2)
        .flags(1, bazaar::launcher::tls::node_flags(&files[0]))
        .flags(2, bazaar::launcher::tls::node_flags(&files[1]))
        .flags(3, bazaar::launcher::tls::node_flags(&stranger[0]));
    let cluster = TestCluster::start_with(3, options);
    cluster.expect_within(
        Instant::now(),
        READY_TIMEOUT,
        "n1 and n2 up over tls",
        |c| c.all_up(&[1, 2]),
    );
    // n3 has the cookie and dials both members; its certificate is the
    // only thing wrong. Give it several dial rounds.
    let joined = cluster.wait_until(Duration::from_secs(5), |c| {
        [1, 2].iter().any(|&i| c.state_of(i, 3).is_some())
            || c.cluster_view(3)
                .is_some_and(|view| view.members.iter().any(|m| m.name != "n3"))
    });
    assert!(joined.is_none(), "n3 got in with a foreign certificate");
    assert!(cluster.all_up(&[1, 2]), "the members stay up");
    let log = cluster.log(1);
    assert!(
        log.contains("cluster tls handshake failed"),
        "n1 does not log the refused handshake"
    );
}
