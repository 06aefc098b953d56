//! One `bazaar node` child process: its fixed identity (name, ports, data
//! directory, cookie, admin password, seeds) and, while it runs, its
//! process. Output goes to `DATA_DIR/node.log` in append mode, so a restart
//! keeps the earlier log.

use std::fs::OpenOptions;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};

use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

/// One node of the cluster: its fixed identity and, while it runs, its
/// process.
pub(super) struct Node {
    /// `n1`, `n2`, ...
    pub(super) name: String,
    /// `--listen`; kept across restarts.
    pub(super) cluster_addr: SocketAddr,
    /// `--http`; kept across restarts.
    pub(super) http_addr: SocketAddr,
    /// `--data-dir`; kept across restarts.
    pub(super) data_dir: PathBuf,
    /// Value of `BAZAAR_COOKIE`.
    pub(super) cookie: String,
    /// Value of `BAZAAR_ADMIN_PASSWORD`; the same on every node.
    pub(super) admin_password: String,
    /// `--seed` values.
    pub(super) seeds: Vec<SocketAddr>,
    /// `--expect`.
    pub(super) expect: usize,
    /// `--voters`, the same on every node.
    pub(super) voters: Vec<String>,
    /// Extra flags, after the others.
    pub(super) flags: Vec<String>,
    /// Extra environment variables, set after the others.
    pub(super) env: Vec<(String, String)>,
    /// Network namespace to run in (through `ip netns exec`), if any.
    pub(super) netns: Option<String>,
    /// The running process, `None` before the first start and after a kill.
    pub(super) child: Option<Child>,
}

impl Node {
    /// Path of the appended stdout + stderr of every life of the node.
    pub(super) fn log_path(&self) -> PathBuf {
        self.data_dir.join("node.log")
    }

    /// Starts the process; panics if it is already running.
    pub(super) fn spawn(&mut self) {
        assert!(self.child.is_none(), "{} is already running", self.name);
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(self.log_path())
            .expect("open node log");
        let log_err = log.try_clone().expect("clone node log handle");
        // `ip netns exec` execs the node in place, so the child is the node.
        let mut command = match &self.netns {
            Some(namespace) => {
                let mut command = Command::new("ip");
                command.args(["netns", "exec", namespace]);
                command.arg(env!("CARGO_BIN_EXE_bazaar"));
                command
            }
            None => Command::new(env!("CARGO_BIN_EXE_bazaar")),
        };
        command
            .arg("node")
            .args(["--name", &self.name])
            .args(["--listen", &self.cluster_addr.to_string()])
            .args(["--http", &self.http_addr.to_string()])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .args(["--expect", &self.expect.to_string()])
            .args(["--voters", &self.voters.join(",")]);
        for seed in &self.seeds {
            command.args(["--seed", &seed.to_string()]);
        }
        command.args(&self.flags);
        let child = command
            .env("BAZAAR_COOKIE", &self.cookie)
            .env("BAZAAR_ADMIN_PASSWORD", &self.admin_password)
            .env("RUST_LOG", "info")
            .envs(self.env.iter().map(|(key, value)| (key, value)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log_err))
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {}: {e}", self.name));
        self.child = Some(child);
    }

    /// Sends `signal` to the running process; panics if it is not running.
    pub(super) fn signal(&self, signal: Signal) {
        let child = self
            .child
            .as_ref()
            .unwrap_or_else(|| panic!("{} is not running", self.name));
        kill(pid_of(child), signal).unwrap_or_else(|e| panic!("{signal} {}: {e}", self.name));
    }

    /// Resumes, kills and reaps the process if there is one.
    pub(super) fn kill_and_reap(&mut self) {
        let Some(mut child) = self.child.take() else {
            return;
        };
        if let Ok(None) = child.try_wait() {
            let _ = kill(pid_of(&child), Signal::SIGCONT);
            let _ = child.kill();
        }
        let _ = child.wait();
    }
}

/// The `nix` pid of a child process.
pub(super) fn pid_of(child: &Child) -> Pid {
    Pid::from_raw(i32::try_from(child.id()).expect("pid fits in i32"))
}
