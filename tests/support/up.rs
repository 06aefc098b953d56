//! `UpCluster`: a real `bazaar up` child process on free loopback ports,
//! for tests that need what only `up` gives (the dashboard's kill switch,
//! the admin password file, respawns).
//!
//! Invariants: it holds the support module's cluster lock while it runs;
//! on drop (also when the test panics) it kills `up` and then every node
//! by its pid file, and a panicking test prints `up`'s output.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::MutexGuard;
use std::time::{Duration, Instant};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use serde_json::{json, Value};

use super::{free_port_range, http_post, read_lossy, LOCK, POLL_INTERVAL};

/// Time `up` gets to print its node table.
const START_TIMEOUT: Duration = Duration::from_secs(30);

/// A running `bazaar up`; see the module docs.
pub struct UpCluster {
    child: Child,
    nodes: usize,
    http_port: u16,
    data_dir: tempfile::TempDir,
    /// Released last, after the processes are gone.
    _guard: MutexGuard<'static, ()>,
}

impl UpCluster {
    /// Starts `bazaar up --nodes N` on free ports with the given respawn
    /// delay (0: never) and waits until it reports the cluster up.
    pub fn start(nodes: usize, respawn_after_secs: u64) -> Self {
        let guard = LOCK.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let http_port = free_port_range(nodes as u16);
        let cluster_port = free_port_range(nodes as u16);
        let data_dir = tempfile::tempdir().expect("temporary data directory");
        let output = std::fs::File::create(data_dir.path().join("up.out")).expect("up output");
        let child = Command::new(env!("CARGO_BIN_EXE_bazaar"))
            .args(["up", "--nodes", &nodes.to_string(), "--data-dir"])
            .arg(data_dir.path())
            .args(["--http-port", &http_port.to_string()])
            .args(["--cluster-port", &cluster_port.to_string()])
            .args(["--respawn-after", &respawn_after_secs.to_string()])
            .stdout(output.try_clone().expect("clone up output"))
            .stderr(output)
            .spawn()
            .expect("spawn bazaar up");
        let up = Self {
            child,
            nodes,
            http_port,
            data_dir,
            _guard: guard,
        };
        let started = Instant::now();
        while !up.output().contains("cluster up") {
            assert!(
                started.elapsed() < START_TIMEOUT,
                "bazaar up did not report the cluster up within {START_TIMEOUT:?}"
            );
            std::thread::sleep(POLL_INTERVAL);
        }
        up
    }

    /// Gateway address of node `i` (`1` is `n1`).
    pub fn http_addr(&self, i: usize) -> SocketAddr {
        assert!((1..=self.nodes).contains(&i), "no node {i}");
        SocketAddr::from(([127, 0, 0, 1], self.http_port + i as u16 - 1))
    }

    /// The data directory given to `up`.
    pub fn data_dir(&self) -> &Path {
        self.data_dir.path()
    }

    /// Everything `up` printed so far.
    pub fn output(&self) -> String {
        read_lossy(&self.data_dir.path().join("up.out"))
    }

    /// Pid of node `i` from its pid file.
    pub fn pid(&self, i: usize) -> Option<u32> {
        let path: PathBuf = self.data_dir.path().join(format!("n{i}")).join("pid");
        std::fs::read_to_string(path).ok()?.trim().parse().ok()
    }

    /// An admin token, from the password `up` generated.
    pub fn admin_token(&self) -> String {
        let password = std::fs::read_to_string(self.data_dir.path().join("admin-password"))
            .expect("up writes the admin password");
        let credentials = json!({ "username": "admin", "password": password.trim() });
        let (status, body) = http_post(self.http_addr(1), "/api/login", &credentials, None)
            .expect("n1 answers POST /api/login");
        assert_eq!(status, 200, "admin login: {body}");
        let body: Value = serde_json::from_str(&body).expect("login answer is JSON");
        body["token"]
            .as_str()
            .expect("login answer has a token")
            .to_string()
    }
}

impl Drop for UpCluster {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for i in 1..=self.nodes {
            if let Some(pid) = self.pid(i) {
                let _ = kill(Pid::from_raw(pid as i32), Signal::SIGKILL);
            }
        }
        if std::thread::panicking() {
            eprintln!("--- bazaar up output ---\n{}", self.output());
        }
    }
}
