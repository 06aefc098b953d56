//! `bazaar bench-peer`: the far side of the remote workloads, a second
//! process started by `bazaar bench` from its own executable.
//!
//! It starts a cluster node (`bench-peer`, cluster listener on a free
//! port, cookie from `BAZAAR_COOKIE`) hosting one Bazaar receiver (pg group
//! [`BENCH_GROUP`]) and one plain ractor_cluster receiver ([`RAW_GROUP`]),
//! and a `tcp-framed` listener on another free port. It then prints one
//! JSON line on stdout, a [`PeerHello`], and serves until stdin closes or
//! says `stop`. Each `mark` line on stdin is answered with one JSON line,
//! the peer's [`ProcessUsage`] (CPU so far, peak RSS since the last mark),
//! after which the peak is reset. Logs go to stderr.
//!
//! Stdin closing when the driver dies is what ends an orphaned peer.

use std::net::SocketAddr;

use anyhow::Context;
use bazaar_cluster::{ClusterNode, Cookie, NodeConfig};
use ractor::Actor;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;

use super::measure::{reset_peak_rss, ProcessUsage};
use super::protocol::{BENCH_GROUP, PEER_NODE, RAW_GROUP};
use super::receivers::{Announce, BazaarReceiver, RawReceiver};
use super::workloads::tcp;
use crate::cli::BenchPeerArgs;
use crate::config;

/// What the peer tells the driver once it is ready.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerHello {
    /// Operating system process id.
    pub pid: u32,
    /// Cluster node name.
    pub node: String,
    /// Address of the cluster listener (`host:port`).
    pub cluster_addr: String,
    /// Address of the `tcp-framed` listener.
    pub tcp_addr: SocketAddr,
}

/// Runs the peer until stdin closes.
pub fn run(args: BenchPeerArgs) -> anyhow::Result<()> {
    super::init_logs();
    let cookie = config::load_cookie(None)?;
    let runtime = args
        .runtime
        .start(crate::runtime::share_of_cores(super::plan::PROCESSES))?;
    runtime.block_on(serve(args.listen, cookie))
}

async fn serve(listen: SocketAddr, cookie: Cookie) -> anyhow::Result<()> {
    let cluster_listen = SocketAddr::new(listen.ip(), free_port(listen)?);
    let node = ClusterNode::start(
        node_config(PEER_NODE, cluster_listen, vec![], cookie)?,
        String::new(),
    )
    .await
    .context("cannot start the peer's cluster node")?;
    let tcp_listen = SocketAddr::new(listen.ip(), 0);
    let tcp_listener = TcpListener::bind(tcp_listen)
        .await
        .with_context(|| format!("cannot listen for tcp-framed on {tcp_listen}"))?;
    let tcp_addr = tcp_listener.local_addr()?;
    let tcp_server = tokio::spawn(tcp::serve(tcp_listener));
    let announce = Announce {
        group: BENCH_GROUP.to_string(),
        node: PEER_NODE.to_string(),
    };
    let (bazaar, _) = Actor::spawn(None, BazaarReceiver, announce)
        .await
        .context("cannot start the bazaar receiver")?;
    let (raw, _) = Actor::spawn(None, RawReceiver, Some(RAW_GROUP.to_string()))
        .await
        .context("cannot start the ractor_cluster receiver")?;

    let hello = PeerHello {
        pid: std::process::id(),
        node: PEER_NODE.to_string(),
        cluster_addr: cluster_listen.to_string(),
        tcp_addr,
    };
    let mut stdout = tokio::io::stdout();
    say(&mut stdout, &serde_json::to_string(&hello)?).await?;
    tracing::info!(cluster = %cluster_listen, tcp = %tcp_addr, "bench peer ready");

    let mut lines = BufReader::new(tokio::io::stdin()).lines();
    while let Some(line) = lines.next_line().await? {
        match line.trim() {
            "mark" => {
                let usage = ProcessUsage::now();
                reset_peak_rss();
                say(&mut stdout, &serde_json::to_string(&usage)?).await?;
            }
            "stop" => break,
            other => tracing::warn!(command = other, "unknown bench peer command"),
        }
    }
    tracing::info!("bench peer stopping");
    tcp_server.abort();
    let _ = bazaar.stop_and_wait(None, None).await;
    let _ = raw.stop_and_wait(None, None).await;
    node.shutdown().await;
    Ok(())
}

async fn say(stdout: &mut tokio::io::Stdout, line: &str) -> anyhow::Result<()> {
    stdout.write_all(line.as_bytes()).await?;
    stdout.write_all(b"\n").await?;
    stdout.flush().await.context("cannot write to stdout")
}

/// A node configuration for one side of the benchmark: two members, and a
/// failure detector that tolerates seconds of silence, because a flood of
/// remote casts queues heartbeats behind it (that delay is what is measured,
/// not a failure).
pub fn node_config(
    name: &str,
    listen: SocketAddr,
    seeds: Vec<String>,
    cookie: Cookie,
) -> anyhow::Result<NodeConfig> {
    let mut config = NodeConfig::new(name, listen, None, String::new(), seeds, cookie, 2)?;
    config.detector.suspect_after = std::time::Duration::from_secs(30);
    config.detector.down_after = std::time::Duration::from_secs(120);
    Ok(config)
}

/// A port on `listen`'s address that is free now: the one `listen` names,
/// or one the kernel picks for port 0.
pub fn free_port(listen: SocketAddr) -> anyhow::Result<u16> {
    if listen.port() != 0 {
        return Ok(listen.port());
    }
    let probe =
        std::net::TcpListener::bind(listen).with_context(|| format!("cannot bind {listen}"))?;
    Ok(probe.local_addr()?.port())
}
