//! Remote workloads: the receivers live in the peer process, reached over
//! the real cluster transport (a ractor_cluster session on loopback
//! between two Bazaar cluster nodes) or, for `tcp-framed`, a plain TCP
//! connection.
//!
//! - `bazaar`: the peer's [`BazaarReceiver`](crate::bench::receivers::BazaarReceiver),
//!   found through `directory::remote_members`, reached with `remote::send`
//!   and `remote::call`, which carry it on the lane to the peer (see
//!   `bazaar_cluster::lane`);
//! - `ractor_cluster`: the peer's plain receiver, found through its pg group,
//!   reached through its `ActorRef<RawMsg>`;
//! - `tcp-framed`: see [`super::tcp`].
//!
//! The lookup happens once, when the session is up; both receivers live as
//! long as the peer. After a cast flood over the session, the next
//! measurement gets a fresh session (see [`RemoteSide::refresh_if_flooded`]).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use bazaar_cluster::remote::ServiceMsg;
use bazaar_cluster::{directory, ClusterNode, Cookie};
use ractor::ActorRef;

use super::local::{drive, BazaarEndpoint, RactorEndpoint};
use super::{frozen, tcp, Outcome};
use crate::bench::peer::{free_port, node_config};
use crate::bench::peer_process::PeerProcess;
use crate::bench::plan::{Spec, System, Workload};
use crate::bench::protocol::{BenchProtocol, RawMsg, BENCH_GROUP, DRIVER_NODE, RAW_GROUP};
use crate::config;

/// Longest wait for the session to the peer and its pg groups.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(20);
/// Pause between two looks at pg while waiting.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// The peer process, this process's cluster node, and the peer's receivers.
pub struct RemoteSide {
    /// The peer process.
    pub peer: PeerProcess,
    cookie: Cookie,
    /// `None` only while it is being replaced.
    session: Option<Session>,
    /// True once a cast flood went through the current session.
    flooded: bool,
}

/// This process's cluster node and what it found on the peer.
struct Session {
    node: ClusterNode,
    bazaar: ActorRef<ServiceMsg<BenchProtocol>>,
    raw: ActorRef<RawMsg>,
}

impl RemoteSide {
    /// Starts the peer with a fresh random cookie, joins it, and waits until
    /// both of its receivers are visible through pg.
    pub async fn start(peer_flags: &[String]) -> anyhow::Result<Self> {
        let secret = config::generate_cookie();
        let cookie = Cookie::new(&secret)?;
        let peer = PeerProcess::spawn(&secret, peer_flags).await?;
        let session = match Session::open(&peer.hello.cluster_addr, &cookie).await {
            Ok(session) => session,
            Err(err) => {
                peer.stop().await;
                return Err(err);
            }
        };
        Ok(Self {
            peer,
            cookie,
            session: Some(session),
            flooded: false,
        })
    }

    /// Replaces the session after a cast flood, so that memory ractor_cluster
    /// keeps after one (its writer's batch buffer never shrinks) is not
    /// charged to the next measurement.
    pub async fn refresh_if_flooded(&mut self) -> anyhow::Result<()> {
        if !self.flooded {
            return Ok(());
        }
        let started = Instant::now();
        // One NodeServer per process: the old node must be gone first.
        if let Some(old) = self.session.take() {
            old.close().await;
        }
        self.session = Some(Session::open(&self.peer.hello.cluster_addr, &self.cookie).await?);
        self.flooded = false;
        tracing::debug!(took = ?started.elapsed(), "fresh session to the bench peer");
        Ok(())
    }

    /// Runs one remote measurement.
    pub async fn run(&mut self, spec: &Spec) -> Outcome {
        let uses_session = matches!(spec.system, System::Bazaar | System::RactorCluster);
        self.flooded |= uses_session && spec.in_flight.is_none();
        let Some(session) = &self.session else {
            return Outcome::failed("no session to the bench peer".to_string());
        };
        match spec.system {
            System::Bazaar if spec.workload == Workload::FrozenPeer => {
                frozen::run(spec, &session.bazaar, self.peer.hello.pid).await
            }
            System::Bazaar => drive(spec, &[BazaarEndpoint(session.bazaar.clone())]).await,
            System::RactorCluster => drive(spec, &[RactorEndpoint(session.raw.clone())]).await,
            System::TcpFramed => tcp::run(spec, self.peer.hello.tcp_addr).await,
            System::Ractor | System::TokioMpsc => {
                Outcome::failed(format!("{} is not a remote system", spec.system.name()))
            }
        }
    }

    /// Leaves the cluster and stops the peer.
    pub async fn shutdown(self) {
        if let Some(session) = self.session {
            session.close().await;
        }
        self.peer.stop().await;
    }
}

impl Session {
    /// Starts a cluster node seeded with the peer and waits for the peer's
    /// receivers to show up through pg.
    async fn open(peer_addr: &str, cookie: &Cookie) -> anyhow::Result<Self> {
        let listen: SocketAddr = ([127, 0, 0, 1], 0).into();
        let listen = SocketAddr::new(listen.ip(), free_port(listen)?);
        let seeds = vec![peer_addr.to_string()];
        let node_config = node_config(DRIVER_NODE, listen, seeds, cookie.clone())?;
        let node = ClusterNode::start(node_config, String::new())
            .await
            .context("cannot start the driver's cluster node")?;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        loop {
            let bazaar = directory::remote_members::<BenchProtocol>(BENCH_GROUP)
                .into_iter()
                .next();
            let raw = ractor::pg::get_members(&RAW_GROUP.to_string())
                .into_iter()
                .find(|cell| !cell.get_id().is_local())
                .map(ActorRef::<RawMsg>::from);
            if let (Some(bazaar), Some(raw)) = (bazaar, raw) {
                tracing::info!(bazaar = %bazaar.get_id(), raw = %raw.get_id(), "bench peer joined");
                return Ok(Self { node, bazaar, raw });
            }
            if Instant::now() >= deadline {
                node.shutdown().await;
                bail!("the bench peer's receivers did not appear within {CONNECT_TIMEOUT:?}");
            }
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }

    /// Stops the node, closing the session; waits until pg forgot the
    /// peer's receivers, so the next session cannot find stale ones.
    async fn close(self) {
        self.node.shutdown().await;
        let deadline = Instant::now() + CONNECT_TIMEOUT;
        while Instant::now() < deadline
            && (!directory::remote_members::<BenchProtocol>(BENCH_GROUP).is_empty()
                || ractor::pg::get_members(&RAW_GROUP.to_string())
                    .iter()
                    .any(|cell| !cell.get_id().is_local()))
        {
            tokio::time::sleep(POLL_INTERVAL).await;
        }
    }
}
