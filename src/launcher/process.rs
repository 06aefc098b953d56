//! Child node processes of `bazaar up`: start one, learn when it exits,
//! stop it politely.
//!
//! Each child runs in a task that owns its `Child`: it reports the exit on
//! a channel, or, when asked to stop, sends SIGTERM and escalates to
//! SIGKILL after [`STOP_GRACE`]. Children get `PR_SET_PDEATHSIG`, so even a
//! SIGKILLed launcher leaves no node behind.

use std::fs::OpenOptions;
use std::path::Path;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use anyhow::Context;
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::process::Command;
use tokio::sync::{mpsc, oneshot};

use super::plan::NodePlan;
use crate::config;

/// Time a node gets between SIGTERM and SIGKILL.
const STOP_GRACE: Duration = Duration::from_secs(5);

/// A child process exited.
#[derive(Debug)]
pub struct Exited {
    /// Index of the node in the plan.
    pub index: usize,
    /// Which start of that node it was.
    pub generation: u64,
    /// How it ended, if it could be waited for.
    pub status: Option<ExitStatus>,
}

/// A running child node.
#[derive(Debug)]
pub struct NodeProcess {
    /// Its process id.
    pub pid: u32,
    /// Which start of the node this is (1 for the first).
    pub generation: u64,
    stop: Option<oneshot::Sender<()>>,
}

impl NodeProcess {
    /// Starts `bazaar node` for `plan`, logging to `data_dir/node.log`.
    pub fn spawn(
        plans: &[NodePlan],
        index: usize,
        generation: u64,
        secrets: &super::Secrets,
        exits: mpsc::UnboundedSender<Exited>,
    ) -> anyhow::Result<Self> {
        let plan = &plans[index];
        std::fs::create_dir_all(&plan.data_dir)
            .with_context(|| format!("cannot create {}", plan.data_dir.display()))?;
        let log = open_log(&plan.data_dir.join(config::LOG_FILE))?;
        let exe = std::env::current_exe().context("cannot find the bazaar executable")?;
        let mut command = Command::new(exe);
        command
            .args(plan.node_args(plans))
            .env(config::COOKIE_ENV, &secrets.cookie)
            .env(config::ADMIN_PASSWORD_ENV, &secrets.admin_password)
            .env(config::LAUNCHED_BY_UP_ENV, "1")
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            .kill_on_drop(true);
        // SAFETY: the closure runs in the forked child before exec and only
        // calls prctl, which is async-signal-safe.
        unsafe {
            command.pre_exec(|| {
                nix::sys::prctl::set_pdeathsig(Signal::SIGKILL).map_err(std::io::Error::from)
            });
        }
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start node {}", plan.name))?;
        let pid = child.id().context("child exited at once")?;
        let (stop_tx, stop_rx) = oneshot::channel::<()>();
        tokio::spawn(async move {
            let status = tokio::select! {
                status = child.wait() => status.ok(),
                _ = stop_rx => {
                    let _ = kill(Pid::from_raw(pid as i32), Signal::SIGTERM);
                    match tokio::time::timeout(STOP_GRACE, child.wait()).await {
                        Ok(status) => status.ok(),
                        Err(_) => {
                            let _ = child.kill().await;
                            child.wait().await.ok()
                        }
                    }
                }
            };
            let _ = exits.send(Exited {
                index,
                generation,
                status,
            });
        });
        Ok(Self {
            pid,
            generation,
            stop: Some(stop_tx),
        })
    }

    /// Asks the node to stop (SIGTERM, then SIGKILL); its exit is reported
    /// on the exit channel.
    pub fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

fn open_log(path: &Path) -> anyhow::Result<std::fs::File> {
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .with_context(|| format!("cannot open log {}", path.display()))
}

/// Describes an exit status the way a shell user reads it.
pub fn describe(status: Option<ExitStatus>) -> String {
    use std::os::unix::process::ExitStatusExt;
    match status {
        Some(status) => match (status.code(), status.signal()) {
            (Some(code), _) => format!("exit code {code}"),
            (None, Some(signal)) => Signal::try_from(signal)
                .map(|signal| format!("signal {}", signal.as_str()))
                .unwrap_or_else(|_| format!("signal {signal}")),
            (None, None) => "unknown status".to_string(),
        },
        None => "unknown status".to_string(),
    }
}
