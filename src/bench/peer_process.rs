//! The driver's handle on the peer process: starts `bazaar bench-peer`
//! from this very executable, reads its [`PeerHello`], asks it for its
//! usage around each measurement, freezes it, and stops it.
//!
//! Invariant: the child never outlives the handle. It is killed when the
//! handle is dropped (also on a panic or an early error), and it exits by
//! itself when its stdin closes, which happens when this process dies.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use nix::sys::signal::{kill, Signal};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};

use super::measure::ProcessUsage;
use super::peer::PeerHello;
use crate::config::COOKIE_ENV;

/// Longest wait for the peer to start and say hello.
const START_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for a frozen process to be seen stopped.
const FREEZE_TIMEOUT: Duration = Duration::from_secs(5);
/// Pause between two looks at a freezing process.
const FREEZE_POLL: Duration = Duration::from_millis(1);
/// Longest wait for the answer to a `mark`.
const MARK_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest wait for the peer to exit after `stop`.
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// A running peer process.
pub struct PeerProcess {
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
    /// What the peer said when it was ready.
    pub hello: PeerHello,
}

impl PeerProcess {
    /// Starts the peer from this very executable with `cookie` in its
    /// environment and runtime `flags`, and waits for its hello.
    pub async fn spawn(cookie: &str, flags: &[String]) -> anyhow::Result<Self> {
        let exe = std::env::current_exe().context("cannot find this executable")?;
        Self::spawn_exe(&exe, cookie, flags).await
    }

    /// Starts `exe bench-peer` (a `bazaar` executable) with the cluster
    /// cookie `cookie` and runtime `flags`, and waits for its hello.
    pub async fn spawn_exe(
        exe: &std::path::Path,
        cookie: &str,
        flags: &[String],
    ) -> anyhow::Result<Self> {
        let mut command = Command::new(exe);
        command
            .args(["bench-peer", "--listen", "127.0.0.1:0"])
            .args(flags)
            .env(COOKIE_ENV, cookie)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {} bench-peer", exe.display()))?;
        let stdin = child.stdin.take().context("the peer has no stdin")?;
        let stdout = child.stdout.take().context("the peer has no stdout")?;
        let mut stdout = BufReader::new(stdout).lines();
        let line = read_line(&mut stdout, START_TIMEOUT)
            .await
            .context("the bench peer did not start")?;
        let hello: PeerHello = serde_json::from_str(&line)
            .with_context(|| format!("the bench peer said {line:?} instead of hello"))?;
        tracing::info!(pid = hello.pid, cluster = %hello.cluster_addr, tcp = %hello.tcp_addr, "bench peer started");
        Ok(Self {
            child,
            stdin,
            stdout,
            hello,
        })
    }

    /// The peer's usage so far; its peak RSS is reset after the answer.
    pub async fn mark(&mut self) -> anyhow::Result<ProcessUsage> {
        self.stdin.write_all(b"mark\n").await?;
        self.stdin.flush().await?;
        let line = read_line(&mut self.stdout, MARK_TIMEOUT)
            .await
            .context("the bench peer did not answer mark")?;
        serde_json::from_str(&line).with_context(|| format!("bad mark answer {line:?}"))
    }

    /// Asks the peer to stop, and kills it if it does not.
    pub async fn stop(mut self) {
        let _ = self.stdin.write_all(b"stop\n").await;
        let _ = self.stdin.flush().await;
        match tokio::time::timeout(STOP_TIMEOUT, self.child.wait()).await {
            Ok(Ok(status)) if status.success() => {}
            Ok(Ok(status)) => tracing::warn!(%status, "bench peer exited badly"),
            Ok(Err(err)) => tracing::warn!(error = %err, "cannot wait for the bench peer"),
            Err(_) => {
                tracing::warn!("bench peer did not stop in time; killing it");
                let _ = self.child.kill().await;
            }
        }
    }
}

/// Stops process `pid` (`SIGSTOP`) and returns once every one of its
/// threads is stopped: `kill` only queues the signal, and a thread busy
/// on a core runs on until it is interrupted, long enough to answer a
/// message that was sent right after the `kill`. Returns the process's
/// `Pid`, for the signal that resumes it.
pub async fn freeze(pid: u32) -> anyhow::Result<Pid> {
    let target = Pid::from_raw(i32::try_from(pid).context("pid out of range")?);
    kill(target, Signal::SIGSTOP).with_context(|| format!("cannot stop process {pid}"))?;
    let deadline = Instant::now() + FREEZE_TIMEOUT;
    while !all_threads_stopped(pid)? {
        if Instant::now() >= deadline {
            bail!("process {pid} not stopped within {FREEZE_TIMEOUT:?}");
        }
        tokio::time::sleep(FREEZE_POLL).await;
    }
    Ok(target)
}

/// True when every thread of `pid` is in the stopped state (`T`).
fn all_threads_stopped(pid: u32) -> anyhow::Result<bool> {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .with_context(|| format!("cannot list the threads of process {pid}"))?;
    for task in tasks {
        let stat = std::fs::read_to_string(task?.path().join("stat"))?;
        // The state follows the command name, which is in parentheses and
        // may itself contain any character.
        let state = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.trim_start().chars().next())
            .with_context(|| format!("unreadable stat of process {pid}: {stat:?}"))?;
        if state != 'T' && state != 't' {
            return Ok(false);
        }
    }
    Ok(true)
}

async fn read_line(
    lines: &mut Lines<BufReader<ChildStdout>>,
    timeout: Duration,
) -> anyhow::Result<String> {
    match tokio::time::timeout(timeout, lines.next_line()).await {
        Ok(Ok(Some(line))) => Ok(line),
        Ok(Ok(None)) => bail!("the bench peer closed its stdout (exited?)"),
        Ok(Err(err)) => Err(err.into()),
        Err(_) => bail!("no answer from the bench peer within {timeout:?}"),
    }
}
