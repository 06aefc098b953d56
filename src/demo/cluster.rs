//! The cluster the demo runs against: one it starts with `bazaar up` (and
//! stops afterwards), or one already started by `bazaar up` in a data dir,
//! found through the `nodes.json` that `up` keeps there.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;

use crate::config;
use crate::launcher::nodes_file;

/// Seconds before `bazaar up` restarts the killed node, in a demo cluster.
pub const DEMO_RESPAWN_SECS: u64 = 2;

/// A local cluster of `bazaar up`.
pub struct DemoCluster {
    /// The `bazaar up` process, when the demo started it.
    up: Option<Child>,
    /// Its data directory.
    pub data_dir: PathBuf,
    /// Gateway base URLs, `http://127.0.0.1:P`, node i at index i - 1.
    pub gateways: Vec<String>,
}

impl DemoCluster {
    /// Starts `bazaar up` with `nodes` nodes; its output goes to `DIR/up.log`.
    pub fn start(
        nodes: usize,
        data_dir: &Path,
        http_port: u16,
        cluster_port: u16,
    ) -> anyhow::Result<Self> {
        std::fs::create_dir_all(data_dir)?;
        let log = std::fs::File::create(data_dir.join("up.log"))?;
        let exe = std::env::current_exe().context("cannot find the bazaar executable")?;
        let up = Command::new(exe)
            .arg("up")
            .args(["--nodes", &nodes.to_string()])
            .arg("--data-dir")
            .arg(data_dir)
            .args(["--http-port", &http_port.to_string()])
            .args(["--cluster-port", &cluster_port.to_string()])
            .args(["--respawn-after", &DEMO_RESPAWN_SECS.to_string()])
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .spawn()
            .context("cannot start bazaar up")?;
        Ok(Self {
            up: Some(up),
            data_dir: data_dir.to_path_buf(),
            gateways: gateways(nodes, http_port),
        })
    }

    /// A cluster already started by `bazaar up --data-dir DIR`, at the
    /// addresses `up` recorded in `DIR/nodes.json`.
    pub fn attach(data_dir: &Path) -> anyhow::Result<Self> {
        let nodes = nodes_file::read(data_dir)?;
        Ok(Self {
            up: None,
            data_dir: data_dir.to_path_buf(),
            gateways: nodes
                .iter()
                .map(|node| format!("http://{}", node.http))
                .collect(),
        })
    }

    /// The `bazaar up` process exited (start failure, port taken).
    pub fn up_exited(&mut self) -> Option<String> {
        let up = self.up.as_mut()?;
        let status = up.try_wait().ok()??;
        let log = std::fs::read_to_string(self.data_dir.join("up.log")).unwrap_or_default();
        Some(format!("bazaar up exited ({status}):\n{log}"))
    }

    /// The admin password `bazaar up` generated.
    pub fn admin_password(&self) -> anyhow::Result<String> {
        let path = self.data_dir.join(config::ADMIN_PASSWORD_FILE);
        Ok(std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .trim()
            .to_string())
    }

    /// SIGKILLs node `name`; returns its pid.
    pub fn kill(&self, name: &str) -> anyhow::Result<u32> {
        let path = self.data_dir.join(name).join(config::PID_FILE);
        let pid: u32 = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?
            .trim()
            .parse()
            .context("bad pid file")?;
        kill(Pid::from_raw(pid as i32), Signal::SIGKILL)
            .with_context(|| format!("cannot kill {name}"))?;
        Ok(pid)
    }

    /// Stops the cluster the demo started (SIGTERM to `bazaar up`).
    pub fn stop(&mut self) {
        if let Some(mut up) = self.up.take() {
            let _ = kill(Pid::from_raw(up.id() as i32), Signal::SIGTERM);
            for _ in 0..100 {
                if matches!(up.try_wait(), Ok(Some(_))) {
                    return;
                }
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = up.kill();
            let _ = up.wait();
        }
    }
}

impl Drop for DemoCluster {
    fn drop(&mut self) {
        self.stop();
    }
}

fn gateways(nodes: usize, http_port: u16) -> Vec<String> {
    (0..nodes)
        .map(|index| format!("http://127.0.0.1:{}", http_port as usize + index))
        .collect()
}

/// The `host:port` of a gateway URL, as the launcher's poller takes it.
pub fn addr(gateway: &str) -> String {
    gateway.trim_start_matches("http://").to_string()
}
