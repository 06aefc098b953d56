//! Lanes: the fast path for service messages between nodes.
//!
//! ractor_cluster moves every remote message through three actor hops per
//! side and one frame each, and queues without bound. A lane is a TCP
//! connection of this project's own from one node to one peer, opened with
//! a one-time token from the peer's [door](door) (so only a cluster member
//! can open one), that carries [`ServiceMsg`](crate::remote::ServiceMsg)
//! casts and calls as compact entries ([`frame`]), many per write, and
//! brings call replies back on the same connection. The remote functions
//! in [`crate::remote`] pick it for every remote target, so callers do not
//! change: a local target is still reached by moving the message.
//!
//! ```text
//! node A                                          node B
//! remote::cast/call ─▶ Outbound(B) ══ lane ══▶ inbound reader ─▶ actor
//!        ◀─ reply ──── reader     ◀══ lane ═══ replier ◀── reply port
//! ```
//!
//! Semantics:
//! - **at most once**: an entry is written once and never resent;
//! - **order**: everything this node sends to one peer goes through one
//!   buffer and one connection and is delivered by one reader, so the
//!   casts and calls of one sender to one actor arrive in the order sent
//!   (as with a direct ractor cast);
//! - **loss on peer death**: when the peer's process dies, its session
//!   ends (or the socket fails), the lane closes, entries not yet written
//!   are dropped, and every call waiting for a reply fails at once with
//!   "unreachable" — outcome unknown, it may have been applied;
//! - **backpressure**: a lane buffers at most [`BUFFER_LIMIT`] bytes; past
//!   that `remote::cast` fails with `Overloaded` and `remote::send` and
//!   calls wait (calls until their timeout). A frozen peer stops reading,
//!   TCP stops the writer, and the buffer stays bounded;
//! - **timeouts**: a call's timeout travels with it; the callee stops
//!   waiting for its actor at that point, and the caller reports `Timeout`
//!   (outcome unknown).

mod deliver;
pub mod door;
pub mod frame;
mod inbound;
mod outbound;
mod reader;
mod socket;

use std::cell::RefCell;
use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Weak};

use parking_lot::RwLock;
use ractor::{Actor, ActorId, ActorRef};
use tokio::net::TcpListener;
use tokio::sync::watch;

pub use deliver::register;
pub use outbound::{Answer, CallFailure, Outbound, PushError, BUFFER_LIMIT};
pub use reader::{set_busy_poll, DEFAULT_BUSY_POLL};

use crate::remote::ServiceMsg;
use door::{Door, DoorArgs, DoorProtocol, Tokens};

/// The lanes of this process, while a node runs.
static HUB: RwLock<Option<Arc<Hub>>> = RwLock::new(None);

#[derive(Default)]
struct Hub {
    outbound: RwLock<HashMap<u64, Arc<Outbound>>>,
}

impl Hub {
    fn outbound(self: &Arc<Self>, peer: u64) -> Arc<Outbound> {
        if let Some(lane) = self.outbound.read().get(&peer) {
            if !lane.is_closed() {
                return lane.clone();
            }
        }
        let mut lanes = self.outbound.write();
        if let Some(lane) = lanes.get(&peer) {
            if !lane.is_closed() {
                return lane.clone();
            }
        }
        let hub: Weak<Self> = Arc::downgrade(self);
        let lane = Outbound::open(peer, move || {
            if let Some(hub) = hub.upgrade() {
                let mut lanes = hub.outbound.write();
                if lanes.get(&peer).is_some_and(|lane| lane.is_closed()) {
                    lanes.remove(&peer);
                }
            }
        });
        lanes.insert(peer, lane.clone());
        lane
    }
}

/// The lane to the node of the remote actor `id`, opened if needed; `None`
/// for a local actor or while this process runs no lanes.
pub fn to(id: ActorId) -> Option<Arc<Outbound>> {
    if id.is_local() {
        return None;
    }
    let peer = id.node();
    // Senders usually talk to one peer many times in a row: remember the
    // last lane per thread, valid until it closes (every lane closes when
    // its hub shuts down, so a stale one is never used).
    let cached = LAST_LANE.with(|last| match &*last.borrow() {
        Some((cached_peer, lane)) if *cached_peer == peer && !lane.is_closed() => {
            Some(lane.clone())
        }
        _ => None,
    });
    if cached.is_some() {
        return cached;
    }
    let hub = HUB.read().clone()?;
    let lane = hub.outbound(peer);
    LAST_LANE.with(|last| *last.borrow_mut() = Some((peer, lane.clone())));
    Some(lane)
}

thread_local! {
    /// The lane this thread used last, with its peer.
    static LAST_LANE: RefCell<Option<(u64, Arc<Outbound>)>> = const { RefCell::new(None) };
}

/// This process's lane listener and door, owned by the cluster node.
pub struct Lanes {
    hub: Arc<Hub>,
    door: ActorRef<ServiceMsg<DoorProtocol>>,
    stop: watch::Sender<bool>,
    addr: SocketAddr,
}

impl Lanes {
    /// Binds a lane listener on `listen` (any free port), starts the door
    /// that hands out tickets for `host`, and routes remote service
    /// messages of this process through lanes.
    pub async fn start(listen: IpAddr, host: &str, node: &str) -> Result<Self, String> {
        let listener = TcpListener::bind((listen, 0))
            .await
            .map_err(|err| format!("cannot bind the lane listener on {listen}: {err}"))?;
        let addr = listener
            .local_addr()
            .map_err(|err| format!("lane listener address: {err}"))?;
        let tokens = Arc::new(Tokens::default());
        let (stop, stop_rx) = watch::channel(false);
        tokio::spawn(inbound::serve(listener, tokens.clone(), stop_rx));
        let args = DoorArgs {
            node: node.to_string(),
            host: host.to_string(),
            port: addr.port(),
            tokens,
        };
        let (door, _) = Actor::spawn(None, Door, args)
            .await
            .map_err(|err| format!("cannot start the lane door: {err}"))?;
        let hub = Arc::new(Hub::default());
        *HUB.write() = Some(hub.clone());
        tracing::info!(%addr, "lanes listening");
        Ok(Self {
            hub,
            door,
            stop,
            addr,
        })
    }

    /// The lane listener's address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Closes every lane and the listener; remote messages go back to the
    /// ractor_cluster session path.
    pub async fn shutdown(self) {
        {
            let mut current = HUB.write();
            if current
                .as_ref()
                .is_some_and(|hub| Arc::ptr_eq(hub, &self.hub))
            {
                *current = None;
            }
        }
        let lanes: Vec<_> = self.hub.outbound.write().drain().map(|(_, l)| l).collect();
        for lane in lanes {
            lane.close("this node is stopping");
        }
        self.stop.send_replace(true);
        let _ = self.door.stop_and_wait(None, None).await;
    }
}
