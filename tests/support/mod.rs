//! `TestCluster`: real `bazaar node` processes on loopback, for integration
//! tests.
//!
//! A cluster of `n` nodes is named `n1..=nN`; every method takes the node's
//! number (`2` is `n2`), so a test reads like the names in the logs. Each
//! node gets two free loopback ports (cluster and HTTP), its own data
//! directory under one temporary directory, every other member as a
//! `--seed`, the expected cluster size, a random cookie through
//! `BAZAAR_COOKIE` and the cluster's random admin password through
//! `BAZAAR_ADMIN_PASSWORD` (the same on every node). Its stdout and stderr
//! are appended to `DATA_DIR/node.log`, so a restarted node keeps the log
//! of its earlier life.
//!
//! Invariants:
//! - every child is resumed (`SIGCONT`), killed (`SIGKILL`) and reaped when
//!   the cluster is dropped, also when the test panics; a panicking test
//!   prints the tail of every node's log;
//! - only one `TestCluster` exists at a time in a test binary (a global
//!   lock), because the tests measure timings on a small machine;
//! - nothing waits with a fixed sleep: conditions are polled against a
//!   deadline ([`TestCluster::wait_until`]).
//!
//! Parts: [`node`] runs one child process, [`view`] types the
//! `GET /api/cluster` answer, [`http`] is a blocking HTTP client with
//! a short timeout, so that a stopped or dead node reads as "unreachable"
//! quickly instead of hanging the test, [`wait`] polls conditions against
//! a deadline, [`shop`] speaks the store's API (products, search,
//! accounts, admin routes), and [`reader`] keeps reading through some
//! gateways in the background while a test breaks the cluster;
//! [`cart_http`] calls the cart routes with a bearer token;
//! [`checkout_http`] speaks checkout, orders and payment settings, and
//! [`orderer`] keeps buying in the background while a test breaks the
//! cluster, and [`order_audit`] checks orders against what was acknowledged.
//! [`up`] runs a whole `bazaar up` instead of single nodes.
//! [`netns`] runs nodes in network namespaces on a bridge, and
//! [`firewall`] cuts the network between them with nftables.

// Each test binary that includes this module uses a subset of it.
#![allow(dead_code, unused_imports)]

mod cart_http;
mod checkout_http;
mod firewall;
mod http;
mod netns;
mod node;
mod order_audit;
mod orderer;
mod reader;
mod shop;
mod up;
mod view;
mod wait;

use std::collections::BTreeSet;
use std::fs::{self, File};
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::process::{Child, ExitStatus};
use std::sync::{Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rand::distr::{Alphanumeric, SampleString};
use serde_json::Value;

pub use checkout_http::{
    add_to_cart_at, cart_items_at, checkout_at, unix_ms, user_request, Call, CheckoutView,
    CHECKOUT_TIMEOUT, STATUS_TIMEOUT,
};
pub use firewall::{Firewall, Flapper};
pub use http::{http_get, http_get_within, http_post, http_put, HTTP_TIMEOUT, WRITE_TIMEOUT};
pub use netns::{checkout_view_at, NetnsCluster};
pub use order_audit::{
    expect_stock, order_key, order_problems, restock, settled_orders, stock_after,
    stocked_products, Product, SETTLE_TIMEOUT,
};
pub use orderer::{max_gap_ms, Ack, OrderLog, Orderer, OrdererConfig};
pub use reader::{BackgroundReader, ReadLog};
pub use shop::DEMO_PASSWORD;
pub use up::UpCluster;
pub use view::{ClusterView, ServiceView, TreeView};

use node::Node;

/// Serializes cluster tests within one test binary.
static LOCK: Mutex<()> = Mutex::new(());

/// Pause between two evaluations of a polled condition.
pub const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Length of the random cookies, in characters (the node needs >= 16 bytes).
const COOKIE_CHARS: usize = 40;

/// Length of the random admin passwords, in characters.
const ADMIN_PASSWORD_CHARS: usize = 24;

/// Lines of each node's log printed when a test panics.
const LOG_TAIL_LINES: usize = 60;

/// How a [`TestCluster`] is set up; `Options::default()` is a plain cluster
/// where every node is a member, started at once.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--expect` for every node; defaults to the number of members (nodes
    /// not in `wrong_cookie`).
    pub expect: Option<usize>,
    /// Nodes given a different cookie. They list the members as seeds, but
    /// no member lists them: they are intruders, not members.
    pub wrong_cookie: Vec<usize>,
    /// Nodes not started by [`TestCluster::start_with`]; start them later
    /// with [`TestCluster::start_node`].
    pub deferred: Vec<usize>,
    /// Extra `bazaar node` flags per node (node number, flags).
    pub node_flags: Vec<(usize, Vec<String>)>,
    /// Extra environment variables of every node.
    pub env: Vec<(String, String)>,
    /// `--voters` (node numbers); defaults to the first min(expect, 5)
    /// members, as `bazaar up` does for its nodes.
    pub voters: Option<Vec<usize>>,
}

impl Options {
    /// Sets `--expect` for every node.
    pub fn expect(mut self, expect: usize) -> Self {
        self.expect = Some(expect);
        self
    }

    /// Gives node `i` a wrong cookie (and makes it an intruder).
    pub fn wrong_cookie(mut self, i: usize) -> Self {
        self.wrong_cookie.push(i);
        self
    }

    /// Leaves node `i` stopped until [`TestCluster::start_node`].
    pub fn deferred(mut self, i: usize) -> Self {
        self.deferred.push(i);
        self
    }

    /// Gives node `i` extra `bazaar node` flags.
    pub fn flags(mut self, i: usize, flags: Vec<String>) -> Self {
        self.node_flags.push((i, flags));
        self
    }

    /// Makes nodes `voters` checkout's voters.
    pub fn voters(mut self, voters: &[usize]) -> Self {
        self.voters = Some(voters.to_vec());
        self
    }

    /// Sets an environment variable for every node.
    pub fn env(mut self, key: &str, value: &str) -> Self {
        self.env.push((key.to_string(), value.to_string()));
        self
    }
}

/// N real `bazaar node` processes; see the module docs.
pub struct TestCluster {
    /// Nodes in order: `nodes[0]` is `n1`.
    nodes: Vec<Node>,
    /// `BAZAAR_ADMIN_PASSWORD` of every node, fresh per cluster.
    admin_password: String,
    /// Holds every node's data directory; removed on drop.
    _dir: tempfile::TempDir,
    /// Released last, after every child has been reaped.
    _guard: MutexGuard<'static, ()>,
}

impl TestCluster {
    /// Starts `n` member nodes with default options.
    pub fn start(n: usize) -> Self {
        Self::start_with(n, Options::default())
    }

    /// Creates nodes `n1..=nN` as `options` say and starts all that are not
    /// deferred. Returns without waiting for anything.
    pub fn start_with(n: usize, options: Options) -> Self {
        assert!(n >= 1, "a cluster has at least one node");
        for &i in options.wrong_cookie.iter().chain(&options.deferred) {
            assert!((1..=n).contains(&i), "node {i} is not in 1..={n}");
        }
        let guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let dir = tempfile::Builder::new()
            .prefix("bazaar-cluster-")
            .tempdir()
            .expect("create temp dir");
        let cookie = random_cookie();
        let wrong_cookie = random_cookie();
        let admin_password = Alphanumeric.sample_string(&mut rand::rng(), ADMIN_PASSWORD_CHARS);
        let is_member = |i: usize| !options.wrong_cookie.contains(&i);
        let member_count = (1..=n).filter(|&i| is_member(i)).count();
        let expect = options.expect.unwrap_or(member_count.max(1));
        let ports = free_ports(2 * n);
        let voters: Vec<String> = match &options.voters {
            Some(voters) => voters.iter().map(|i| format!("n{i}")).collect(),
            None => (1..=n)
                .filter(|&i| is_member(i))
                .take(expect.min(5))
                .map(|i| format!("n{i}"))
                .collect(),
        };

        let mut nodes: Vec<Node> = (1..=n)
            .map(|i| {
                let name = format!("n{i}");
                let data_dir = dir.path().join(&name);
                fs::create_dir_all(&data_dir).expect("create data dir");
                Node {
                    name,
                    cluster_addr: ports[2 * (i - 1)],
                    http_addr: ports[2 * (i - 1) + 1],
                    data_dir,
                    cookie: if is_member(i) {
                        cookie.clone()
                    } else {
                        wrong_cookie.clone()
                    },
                    admin_password: admin_password.clone(),
                    seeds: Vec::new(),
                    expect,
                    voters: voters.clone(),
                    flags: options
                        .node_flags
                        .iter()
                        .filter(|(node, _)| *node == i)
                        .flat_map(|(_, flags)| flags.clone())
                        .collect(),
                    env: options.env.clone(),
                    netns: None,
                    child: None,
                }
            })
            .collect();
        let member_addrs: Vec<SocketAddr> = (1..=n)
            .filter(|&i| is_member(i))
            .map(|i| nodes[i - 1].cluster_addr)
            .collect();
        for node in &mut nodes {
            let own = node.cluster_addr;
            node.seeds = member_addrs.iter().copied().filter(|&a| a != own).collect();
        }

        let mut cluster = Self {
            nodes,
            admin_password,
            _dir: dir,
            _guard: guard,
        };
        for i in 1..=n {
            if !options.deferred.contains(&i) {
                cluster.start_node(i);
            }
        }
        cluster
    }

    /// Number of nodes, started or not.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// All node numbers, `1..=len`.
    pub fn all(&self) -> Vec<usize> {
        (1..=self.len()).collect()
    }

    /// The node numbered `i` (1-based).
    fn node(&self, i: usize) -> &Node {
        assert!((1..=self.len()).contains(&i), "no node {i}");
        &self.nodes[i - 1]
    }

    /// The node numbered `i`, mutably.
    fn node_mut(&mut self, i: usize) -> &mut Node {
        assert!((1..=self.len()).contains(&i), "no node {i}");
        &mut self.nodes[i - 1]
    }

    /// Name of node `i` (`n{i}`).
    pub fn name(&self, i: usize) -> String {
        self.node(i).name.clone()
    }

    /// Cluster address of node `i`.
    pub fn cluster_addr(&self, i: usize) -> SocketAddr {
        self.node(i).cluster_addr
    }

    /// HTTP address of node `i`.
    pub fn http_addr(&self, i: usize) -> SocketAddr {
        self.node(i).http_addr
    }

    /// Data directory of node `i`.
    pub fn data_dir(&self, i: usize) -> &Path {
        &self.node(i).data_dir
    }

    /// Process id of node `i` while it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.node(i).child.as_ref().map(Child::id)
    }

    /// Starts node `i` (deferred, or killed earlier).
    pub fn start_node(&mut self, i: usize) {
        self.node_mut(i).spawn();
    }

    /// SIGKILLs node `i` and reaps it; returns once the process is gone.
    pub fn kill(&mut self, i: usize) {
        let node = self.node_mut(i);
        assert!(node.child.is_some(), "{} is not running", node.name);
        node.kill_and_reap();
    }

    /// Freezes node `i` with SIGSTOP.
    pub fn stop(&self, i: usize) {
        self.node(i).signal(Signal::SIGSTOP);
    }

    /// Resumes node `i` with SIGCONT.
    pub fn cont(&self, i: usize) {
        self.node(i).signal(Signal::SIGCONT);
    }

    /// Kills node `i` if it runs, then starts it again with the same name,
    /// ports, data directory and cookie.
    pub fn restart(&mut self, i: usize) {
        self.node_mut(i).kill_and_reap();
        self.start_node(i);
    }

    /// Sends SIGTERM to node `i` and waits up to `timeout` for it to exit.
    /// Returns its exit status, or `None` if it is still running (it is then
    /// left to the drop).
    pub fn terminate(&mut self, i: usize, timeout: Duration) -> Option<ExitStatus> {
        self.node(i).signal(Signal::SIGTERM);
        let deadline = Instant::now() + timeout;
        let node = self.node_mut(i);
        let child = node.child.as_mut().expect("signalled node has a child");
        loop {
            if let Some(status) = child.try_wait().expect("wait for node") {
                node.child = None;
                return Some(status);
            }
            if Instant::now() >= deadline {
                return None;
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Everything node `i` has logged so far, over all its lives.
    pub fn log(&self, i: usize) -> String {
        read_lossy(&self.node(i).log_path())
    }

    /// Status code of `GET path` on node `i`, `None` if unreachable.
    pub fn status(&self, i: usize, path: &str) -> Option<u16> {
        http_get(self.http_addr(i), path).map(|(status, _)| status)
    }

    /// Raw `GET /api/cluster` of node `i`; `None` if unreachable or not 200.
    /// Panics if a 200 answer is not JSON.
    pub fn view(&self, i: usize) -> Option<Value> {
        let (status, body) = http_get(self.http_addr(i), "/api/cluster")?;
        if status != 200 {
            return None;
        }
        let value = serde_json::from_str(&body)
            .unwrap_or_else(|e| panic!("n{i}: /api/cluster is not JSON ({e}): {body}"));
        Some(value)
    }

    /// Typed `GET /api/cluster` of node `i`; `None` if unreachable. Panics
    /// if the answer does not have the documented shape.
    pub fn cluster_view(&self, i: usize) -> Option<ClusterView> {
        let value = self.view(i)?;
        let view = serde_json::from_value(value.clone())
            .unwrap_or_else(|e| panic!("n{i}: unexpected /api/cluster shape ({e}): {value}"));
        Some(view)
    }

    /// State of node `member` as node `observer` reports it; `None` if the
    /// observer is unreachable or does not list the member.
    pub fn state_of(&self, observer: usize, member: usize) -> Option<String> {
        let name = self.name(member);
        let view = self.cluster_view(observer)?;
        view.member(&name).map(|m| m.state.clone())
    }

    /// Whether every observer reports `member` in `state`.
    pub fn all_report(&self, observers: &[usize], member: usize, state: &str) -> bool {
        observers
            .iter()
            .all(|&o| self.state_of(o, member).as_deref() == Some(state))
    }

    /// Whether every node in `nodes` answers, has a quorum, and lists
    /// exactly the nodes in `nodes` as `up`.
    pub fn all_up(&self, nodes: &[usize]) -> bool {
        let expected: BTreeSet<String> = nodes.iter().map(|&i| self.name(i)).collect();
        nodes.iter().all(|&o| {
            self.cluster_view(o)
                .is_some_and(|view| view.quorum && view.up_names() == expected)
        })
    }

    /// One line per node: its process and its view, for failure messages.
    pub fn describe(&self) -> String {
        let mut out = String::new();
        for i in self.all() {
            let process = match self.pid(i) {
                Some(pid) => format!("pid {pid}"),
                None => "not running".to_string(),
            };
            let view = match http_get(self.http_addr(i), "/api/cluster") {
                Some((status, body)) => format!("{status} {body}"),
                None => "unreachable".to_string(),
            };
            out.push_str(&format!("  n{i} ({process}): {view}\n"));
        }
        out
    }
}

impl Drop for TestCluster {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("cluster at failure:\n{}", self.describe());
            print_log_tails(&self.nodes);
        }
        for node in &mut self.nodes {
            node.kill_and_reap();
        }
    }
}

/// A random alphanumeric cookie.
pub fn random_cookie() -> String {
    Alphanumeric.sample_string(&mut rand::rng(), COOKIE_CHARS)
}

/// Ports tests pick from: below Linux's default ephemeral range
/// (32768–60999), so an outgoing connection of any process cannot take
/// one between the pick and the node's bind (which made a node fail with
/// "address already in use" once).
const TEST_PORTS: std::ops::Range<u16> = 20_000..32_700;

/// Ports this test process has handed out: tests of one binary run in
/// parallel, and a port released by one test's probe is free again until
/// its nodes bind it, so another test must not be given it meanwhile.
static HANDED_OUT: Mutex<BTreeSet<u16>> = Mutex::new(BTreeSet::new());

/// Whether `ports` are all bindable and none was handed out before; if
/// so, they are handed out now.
fn take_ports(ports: std::ops::Range<u16>) -> bool {
    let mut handed_out = HANDED_OUT.lock().unwrap_or_else(|p| p.into_inner());
    let free = ports
        .clone()
        .all(|port| !handed_out.contains(&port) && TcpListener::bind(("127.0.0.1", port)).is_ok());
    if free {
        handed_out.extend(ports);
    }
    free
}

/// `count` distinct free loopback addresses from [`TEST_PORTS`], never
/// handed out before by this process.
fn free_ports(count: usize) -> Vec<SocketAddr> {
    let mut ports: Vec<u16> = Vec::with_capacity(count);
    for _ in 0..count * 200 {
        if ports.len() == count {
            break;
        }
        let port = rand::random_range(TEST_PORTS);
        if take_ports(port..port + 1) {
            ports.push(port);
        }
    }
    assert_eq!(
        ports.len(),
        count,
        "no {count} free ports in {TEST_PORTS:?}"
    );
    ports
        .into_iter()
        .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
        .collect()
}

/// A base port with `count` consecutive free loopback ports from it, for
/// commands that number their ports from one base (`bazaar up`, `demo`).
pub fn free_port_range(count: u16) -> u16 {
    for _ in 0..200 {
        let base: u16 = rand::random_range(TEST_PORTS.start..TEST_PORTS.end - count);
        if take_ports(base..base + count) {
            return base;
        }
    }
    panic!("no range of {count} free ports");
}

/// A file's content, empty if it does not exist, invalid UTF-8 replaced.
/// Prints the last lines of every node's log to stderr.
fn print_log_tails(nodes: &[Node]) {
    for node in nodes {
        let log = read_lossy(&node.log_path());
        let lines: Vec<&str> = log.lines().collect();
        let tail = &lines[lines.len().saturating_sub(LOG_TAIL_LINES)..];
        eprintln!("----- {} log (last {} lines) -----", node.name, tail.len());
        for line in tail {
            eprintln!("{line}");
        }
    }
}

fn read_lossy(path: &Path) -> String {
    let mut bytes = Vec::new();
    if let Ok(mut file) = File::open(path) {
        let _ = file.read_to_end(&mut bytes);
    }
    String::from_utf8_lossy(&bytes).into_owned()
}
