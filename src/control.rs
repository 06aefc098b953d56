//! `bazaar status` and `bazaar kill`: looking at and breaking a running
//! cluster from the outside.

use std::path::Path;
use std::time::Duration;

use anyhow::{bail, Context};
use nix::sys::signal::{kill as send_signal, Signal};
use nix::unistd::Pid;

use crate::cli::{KillArgs, StatusArgs};
use crate::config;
use crate::gateway::ClusterReport;

/// Timeout of one status request.
const STATUS_TIMEOUT: Duration = Duration::from_secs(3);

/// Prints the cluster as the node at `--at` sees it.
pub fn status(args: StatusArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let url = format!("{}/api/cluster", args.at.trim_end_matches('/'));
    let body = runtime.block_on(async {
        let client = reqwest::Client::builder().timeout(STATUS_TIMEOUT).build()?;
        let response = client
            .get(&url)
            .send()
            .await
            .with_context(|| format!("cannot reach {url}"))?;
        if !response.status().is_success() {
            bail!("{url} answered {}", response.status());
        }
        Ok::<_, anyhow::Error>(response.text().await?)
    })?;
    let report: ClusterReport =
        serde_json::from_str(&body).with_context(|| format!("unexpected answer from {url}"))?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", render_status(&report, now_ms()));
    }
    Ok(())
}

/// The status table.
pub fn render_status(report: &ClusterReport, now_ms: u64) -> String {
    let mut out = format!(
        "{:<8} {:<8} {:<22} {:<22} {:>8}  {}\n",
        "NODE", "STATE", "CLUSTER", "HTTP", "PID", "SINCE"
    );
    for member in &report.members {
        let ago = now_ms.saturating_sub(member.since_ms) as f64 / 1000.0;
        out.push_str(&format!(
            "{:<8} {:<8} {:<22} {:<22} {:>8}  {ago:.1}s ago\n",
            member.name, member.state, member.cluster_addr, member.http_addr, member.pid
        ));
    }
    let reachable = report
        .members
        .iter()
        .filter(|member| member.state != "down")
        .count();
    out.push_str(&format!(
        "seen by {}: {reachable} of {} expected reachable, quorum {}\n",
        report.node,
        report.expected,
        if report.quorum { "yes" } else { "no" }
    ));
    if let Some(checkout) = &report.checkout {
        let status = &checkout.status;
        out.push_str(&format!(
            "checkout: owner {}, standby {}, epoch {}, {} of {} journal entries committed\n",
            status.owner.as_deref().unwrap_or("none"),
            status.standby.as_deref().unwrap_or("none"),
            status.epoch,
            status.commit_index,
            status.log_length
        ));
        out.push_str(&format!(
            "checkout voters: {} (majority {}); learners: {}\n",
            list_or_none(&status.voters),
            status.voters.len() / 2 + 1,
            list_or_none(&checkout.learners)
        ));
    }
    for (node, services) in &report.services {
        let line: Vec<String> = services
            .iter()
            .map(|service| {
                let mut text = format!("{} {}", service.name, service.status);
                if service.restarts > 0 || service.escalations > 0 {
                    text.push_str(&format!(
                        " ({} restarts, {} escalations)",
                        service.restarts, service.escalations
                    ));
                }
                text
            })
            .collect();
        out.push_str(&format!("{node}: {}\n", line.join(", ")));
    }
    out
}

/// `a, b, c`, or `none`.
fn list_or_none(names: &[String]) -> String {
    if names.is_empty() {
        "none".to_string()
    } else {
        names.join(", ")
    }
}

fn now_ms() -> u64 {
    bazaar_cluster::membership::table::unix_ms_now()
}

/// SIGKILLs the node `args.node` of the cluster in `args.data_dir`.
pub fn kill(args: KillArgs) -> anyhow::Result<()> {
    let pid_path = args.data_dir.join(&args.node).join(config::PID_FILE);
    let pid = read_pid(&pid_path).with_context(|| {
        format!(
            "no running node {} under {} (is the data dir the one given to bazaar up?)",
            args.node,
            args.data_dir.display()
        )
    })?;
    if !is_bazaar_node(pid, &args.node) {
        bail!(
            "process {pid} from {} is not node {}: stale pid file",
            pid_path.display(),
            args.node
        );
    }
    send_signal(Pid::from_raw(pid as i32), Signal::SIGKILL)
        .with_context(|| format!("cannot kill node {} (pid {pid})", args.node))?;
    println!("killed {} (pid {pid}) with SIGKILL", args.node);
    Ok(())
}

fn read_pid(path: &Path) -> anyhow::Result<u32> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?;
    text.trim()
        .parse()
        .with_context(|| format!("{} does not hold a pid", path.display()))
}

/// True if `pid` runs `bazaar node --name <name>` (guards against pid reuse).
fn is_bazaar_node(pid: u32, name: &str) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let args: Vec<&[u8]> = cmdline.split(|byte| *byte == 0).collect();
    args.iter().any(|arg| *arg == b"node")
        && args
            .windows(2)
            .any(|pair| pair[0] == b"--name" && pair[1] == name.as_bytes())
}
