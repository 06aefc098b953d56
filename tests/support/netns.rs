//! `NetnsCluster`: real `bazaar node` processes, each in its own network
//! namespace on a Linux bridge, so that a test can cut the network between
//! them ([`super::firewall`]) while it still reaches every gateway.
//!
//! Per cluster: a bridge `bzb<suffix>` in the root namespace with the host
//! address `10.X.Y.254/24` (`X.Y` and the suffix random per cluster, so
//! that clusters of tests running in parallel do not clash), and per node
//! `n<i>` a namespace `bz<suffix>n<i>` joined to the bridge by a veth pair,
//! with `lo` up and the address `10.X.Y.<i>/24`. Node `n<i>` listens on
//! `10.X.Y.<i>:7071` (cluster) and `:8081` (HTTP), with every other node as
//! a seed, the cluster's cookie and admin password as [`super::TestCluster`]
//! gives them, and its log in its data directory.
//!
//! Invariants:
//! - it needs root and the `ip` and `nft` commands, and panics with a
//!   clear message without them (a partition test never skips silently);
//! - on drop, also when the test panics, every node is resumed, killed and
//!   reaped, then the namespaces (with their veths) and the bridge are
//!   deleted; a panicking test prints the tail of every node's log;
//! - one `NetnsCluster` at a time per test binary (the tests measure
//!   availability on a small machine).

use std::fs;
use std::net::{Ipv4Addr, SocketAddr};
use std::os::unix::fs::MetadataExt;
use std::process::Command;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use rand::distr::{Alphanumeric, SampleString};

use super::checkout_http::{CheckoutView, STATUS_TIMEOUT};
use super::firewall::Firewall;
use super::http::http_get_within;
use super::node::Node;
use super::{print_log_tails, random_cookie, read_lossy, POLL_INTERVAL};

/// Serializes namespace clusters within one test binary.
static LOCK: Mutex<()> = Mutex::new(());

/// Cluster port of every node, on its own address.
const CLUSTER_PORT: u16 = 7071;

/// HTTP port of every node, on its own address.
const HTTP_PORT: u16 = 8081;

/// Last octet of the host's address on the bridge.
const HOST_OCTET: u8 = 254;

/// N nodes in network namespaces; see the module docs.
pub struct NetnsCluster {
    /// Nodes in order: `nodes[0]` is `n1`.
    nodes: Vec<Node>,
    /// The packet filters of the nodes' namespaces.
    firewall: Arc<Firewall>,
    /// The bridge, the namespaces and the veths; deleted on drop, after
    /// the nodes are gone.
    lan: Lan,
    /// `BAZAAR_ADMIN_PASSWORD` of every node.
    admin_password: String,
    /// Holds every node's data directory; removed on drop.
    _dir: tempfile::TempDir,
    /// Released last.
    _guard: MutexGuard<'static, ()>,
}

impl NetnsCluster {
    /// Starts nodes `n1..=n{nodes}` in namespaces with `--voters` the nodes
    /// numbered in `voters` and `--expect expect`; returns without waiting.
    pub fn start(nodes: usize, voters: &[usize], expect: usize) -> Self {
        preflight();
        let guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let lan = Lan::create(nodes);
        let dir = tempfile::Builder::new()
            .prefix("bazaar-netns-")
            .tempdir()
            .expect("create temp dir");
        let cookie = random_cookie();
        let admin_password = Alphanumeric.sample_string(&mut rand::rng(), 24);
        let voters: Vec<String> = voters.iter().map(|i| format!("n{i}")).collect();
        let addrs: Vec<Ipv4Addr> = (1..=nodes).map(|i| lan.addr(i)).collect();
        let mut cluster_nodes = Vec::new();
        for i in 1..=nodes {
            let name = format!("n{i}");
            let data_dir = dir.path().join(&name);
            fs::create_dir_all(&data_dir).expect("create data dir");
            let own = lan.addr(i);
            cluster_nodes.push(Node {
                name,
                cluster_addr: SocketAddr::from((own, CLUSTER_PORT)),
                http_addr: SocketAddr::from((own, HTTP_PORT)),
                data_dir,
                cookie: cookie.clone(),
                admin_password: admin_password.clone(),
                seeds: addrs
                    .iter()
                    .filter(|&&a| a != own)
                    .map(|&a| SocketAddr::from((a, CLUSTER_PORT)))
                    .collect(),
                expect,
                voters: voters.clone(),
                flags: Vec::new(),
                env: Vec::new(),
                netns: Some(lan.namespace(i)),
                child: None,
            });
        }
        let firewall = Arc::new(Firewall::new(
            (1..=nodes).map(|i| lan.namespace(i)).collect(),
            addrs,
        ));
        let mut cluster = Self {
            nodes: cluster_nodes,
            firewall,
            lan,
            admin_password,
            _dir: dir,
            _guard: guard,
        };
        for node in &mut cluster.nodes {
            node.spawn();
        }
        println!(
            "{nodes} nodes in namespaces on {} ({}.0/24), voters {voters:?}, expect {expect}",
            cluster.lan.bridge, cluster.lan.prefix
        );
        cluster
    }

    /// Number of nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    /// All node numbers, `1..=len`.
    pub fn all(&self) -> Vec<usize> {
        (1..=self.len()).collect()
    }

    fn node(&self, i: usize) -> &Node {
        assert!((1..=self.len()).contains(&i), "no node {i}");
        &self.nodes[i - 1]
    }

    /// Name of node `i` (`n{i}`).
    pub fn name(&self, i: usize) -> String {
        self.node(i).name.clone()
    }

    /// The number of the node named `name` (`n2` is 2).
    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.all().into_iter().find(|&i| self.node(i).name == name)
    }

    /// HTTP address of node `i`, reachable from the root namespace.
    pub fn http_addr(&self, i: usize) -> SocketAddr {
        self.node(i).http_addr
    }

    /// The admin password of every node.
    pub fn admin_password(&self) -> &str {
        &self.admin_password
    }

    /// The packet filters, to cut the network (shareable with a thread).
    pub fn firewall(&self) -> &Arc<Firewall> {
        &self.firewall
    }

    /// Freezes node `i` with SIGSTOP.
    pub fn stop(&self, i: usize) {
        self.node(i).signal(Signal::SIGSTOP);
    }

    /// Resumes node `i` with SIGCONT.
    pub fn cont(&self, i: usize) {
        self.node(i).signal(Signal::SIGCONT);
    }

    /// Panics if a node has exited (they must all run for the whole test).
    pub fn assert_running(&mut self) {
        for node in &mut self.nodes {
            let child = node.child.as_mut().expect("every node was started");
            if let Some(status) = child.try_wait().expect("poll node process") {
                panic!("{} exited: {status}", node.name);
            }
        }
    }

    /// Holds the current network for `duration`, checking meanwhile that
    /// every node keeps running.
    pub fn hold(&mut self, duration: Duration) {
        let deadline = Instant::now() + duration;
        while Instant::now() < deadline {
            self.assert_running();
            thread::sleep(POLL_INTERVAL * 5);
        }
    }

    /// Polls `condition` every [`POLL_INTERVAL`] until it holds or `timeout`
    /// has passed; the time it took.
    pub fn wait_until(
        &self,
        timeout: Duration,
        mut condition: impl FnMut(&Self) -> bool,
    ) -> Option<Duration> {
        let start = Instant::now();
        loop {
            if condition(self) {
                return Some(start.elapsed());
            }
            if start.elapsed() >= timeout {
                return None;
            }
            thread::sleep(POLL_INTERVAL);
        }
    }

    /// Checkout ownership as node `i`'s replica sees it; `None` if the node
    /// does not answer in time.
    pub fn checkout_view(&self, i: usize) -> Option<CheckoutView> {
        checkout_view_at(self.http_addr(i))
    }

    /// Everything node `i` has logged.
    pub fn log(&self, i: usize) -> String {
        read_lossy(&self.node(i).log_path())
    }

    /// One line per node with its checkout view, for failure messages.
    pub fn describe(&self) -> String {
        self.all()
            .iter()
            .map(|&i| format!("  n{i}: {:?}\n", self.checkout_view(i)))
            .collect()
    }
}

impl Drop for NetnsCluster {
    fn drop(&mut self) {
        if thread::panicking() {
            eprintln!("cluster at failure:\n{}", self.describe());
            print_log_tails(&self.nodes);
        }
        for node in &mut self.nodes {
            node.kill_and_reap();
        }
        // `lan` is dropped next: namespaces, veths, bridge.
    }
}

/// `checkout` of `GET /api/cluster` at `addr` within [`STATUS_TIMEOUT`].
pub fn checkout_view_at(addr: SocketAddr) -> Option<CheckoutView> {
    let (status, body) = http_get_within(addr, "/api/cluster", STATUS_TIMEOUT)?;
    if status != 200 {
        return None;
    }
    let report: serde_json::Value = serde_json::from_str(&body).ok()?;
    serde_json::from_value(report.get("checkout")?.clone()).ok()
}

/// Panics unless the test runs as root with `ip` and `nft` installed.
fn preflight() {
    assert!(
        // `/proc/self` belongs to the process's effective user.
        fs::metadata("/proc/self").is_ok_and(|meta| meta.uid() == 0),
        "partition tests need root (network namespaces and nftables); run them as root"
    );
    for (tool, package) in [("ip", "iproute2"), ("nft", "nftables")] {
        let found = Command::new(tool)
            .arg("-V")
            .output()
            .is_ok_and(|out| out.status.success());
        assert!(
            found,
            "partition tests need the `{tool}` command: install Debian's {package}"
        );
    }
}

/// The bridge and the namespaces of one cluster; deleted on drop.
struct Lan {
    /// Bridge name, `bzb<suffix>`.
    bridge: String,
    /// Random per cluster; in every namespace and veth name.
    suffix: String,
    /// `10.X.Y`, the subnet's first three octets.
    prefix: String,
    /// Octets `[10, X, Y]`.
    octets: [u8; 3],
    /// Namespaces created so far (deleted on drop).
    namespaces: Vec<String>,
}

impl Lan {
    /// Creates the bridge and `nodes` namespaces joined to it.
    fn create(nodes: usize) -> Self {
        assert!(nodes < usize::from(HOST_OCTET), "too many nodes");
        let suffix = Alphanumeric
            .sample_string(&mut rand::rng(), 6)
            .to_lowercase();
        let octets = free_subnet();
        let mut lan = Self {
            bridge: format!("bzb{suffix}"),
            prefix: format!("{}.{}.{}", octets[0], octets[1], octets[2]),
            suffix,
            octets,
            namespaces: Vec::new(),
        };
        let host = format!("{}.{HOST_OCTET}/24", lan.prefix);
        run("ip", &["link", "add", &lan.bridge, "type", "bridge"]);
        run("ip", &["addr", "add", &host, "dev", &lan.bridge]);
        run("ip", &["link", "set", &lan.bridge, "up"]);
        for i in 1..=nodes {
            let namespace = lan.namespace(i);
            let veth = format!("bz{}v{i}", lan.suffix);
            let addr = format!("{}/24", lan.addr(i));
            run("ip", &["netns", "add", &namespace]);
            lan.namespaces.push(namespace.clone());
            run(
                "ip",
                &[
                    "link", "add", &veth, "type", "veth", "peer", "name", "eth0", "netns",
                    &namespace,
                ],
            );
            run("ip", &["link", "set", &veth, "master", &lan.bridge, "up"]);
            let inside = |args: &[&str]| {
                let mut all = vec!["netns", "exec", &namespace, "ip"];
                all.extend_from_slice(args);
                run("ip", &all);
            };
            inside(&["link", "set", "lo", "up"]);
            inside(&["addr", "add", &addr, "dev", "eth0"]);
            inside(&["link", "set", "eth0", "up"]);
        }
        lan
    }

    /// Namespace of node `i`.
    fn namespace(&self, i: usize) -> String {
        format!("bz{}n{i}", self.suffix)
    }

    /// Address of node `i`.
    fn addr(&self, i: usize) -> Ipv4Addr {
        let [a, b, c] = self.octets;
        Ipv4Addr::new(a, b, c, u8::try_from(i).expect("node number fits an octet"))
    }
}

impl Drop for Lan {
    fn drop(&mut self) {
        // Deleting a namespace deletes its end of the veth, and with it
        // the end on the bridge.
        for namespace in &self.namespaces {
            quiet("ip", &["netns", "delete", namespace]);
        }
        quiet("ip", &["link", "delete", &self.bridge]);
    }
}

/// A random `10.X.Y` subnet no interface of the root namespace uses.
fn free_subnet() -> [u8; 3] {
    let used = Command::new("ip")
        .args(["-4", "-o", "addr", "show"])
        .output()
        .map(|out| String::from_utf8_lossy(&out.stdout).into_owned())
        .unwrap_or_default();
    for _ in 0..100 {
        let octets = [
            10,
            rand::random_range(100..=250),
            rand::random_range(1..=250),
        ];
        let prefix = format!(" {}.{}.{}.", octets[0], octets[1], octets[2]);
        if !used.contains(&prefix) {
            return octets;
        }
    }
    panic!("no free 10.X.Y.0/24 subnet for a test bridge");
}

/// Runs `program args`; panics with its stderr if it fails.
fn run(program: &str, args: &[&str]) {
    let output = Command::new(program)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("spawn {program} {args:?}: {e}"));
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Runs `program args` for cleanup, ignoring failures.
fn quiet(program: &str, args: &[&str]) {
    let _ = Command::new(program).args(args).output();
}
