//! `bazaar bench`: message throughput of Bazaar's service messages, local
//! and across two processes, measured in the same run as the baselines
//! they are built on, so every figure comes with its ratios.
//!
//! ```text
//! bazaar bench (driver)                         bazaar bench-peer (child)
//! ├── local receivers per measurement           ├── cluster node "bench-peer"
//! │   (bazaar, ractor, tokio-mpsc)              │   ├── BazaarReceiver   pg "bazaar.bench"
//! ├── cluster node "bench-driver" ── session ──▶│   └── RawReceiver      pg "bench.raw"
//! └── tcp-framed client ────── loopback TCP ───▶└── tcp-framed server
//!                    stdin: mark | stop  ◀──▶  stdout: hello, usage (JSON lines)
//! ```
//!
//! What is compared (see [`plan`]): local workloads run Bazaar's
//! `ServiceMsg` path next to a plain ractor actor and a tokio channel;
//! remote workloads run it next to a plain ractor_cluster actor over the
//! same kind of session and next to length-prefixed frames on a TCP
//! connection. Every system runs the same loops ([`workloads`]) against
//! receivers that do the same work ([`receivers`]).
//!
//! How it is measured, and what it promises:
//! - the systems of one (workload, payload, in-flight) are measured one
//!   after another in every run, after one warm-up each, so slow drift
//!   of the machine hits them alike; `--runs` repeats give median and
//!   min/max;
//! - a cast measurement stops when the receiver confirms it counted every
//!   cast, not when the sender finished enqueueing: raw ractor_cluster
//!   casts go to unbounded queues (no backpressure), so its sender can run
//!   far ahead, and its peak RSS shows how far; Bazaar's lanes are bounded
//!   and make the sender wait. By default a remote cast measurement sends
//!   at most 256 MiB of payload;
//! - CPU is user + system time of this process and, for remote workloads,
//!   of the peer, per message; peak RSS is reset before each measurement
//!   on both sides ([`measure`]);
//! - every call and drain has a timeout; failures are counted and shown,
//!   never dropped.
//!
//! Both cluster nodes run a lenient failure detector (see
//! [`peer::node_config`]): a flood of casts delays heartbeats behind it,
//! and that must not end the session mid-measurement.

pub mod measure;
pub mod peer;
pub mod peer_process;
pub mod plan;
pub mod protocol;
pub mod receivers;
pub mod report;
mod workloads;

use std::io::{IsTerminal, Write};

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tracing_subscriber::EnvFilter;

use crate::cli::BenchArgs;
use measure::{cpu_time, load_average, peak_rss_kb, reset_peak_rss, Sample};
use plan::{size_label, Group, Settings, Spec};
use report::{Machine, Row};
use workloads::remote::RemoteSide;
use workloads::{local, Outcome};

/// Log filter of both bench processes when `RUST_LOG` is not set: the
/// progress bar and the table own the terminal, and the two nodes'
/// membership chatter (a peer leaving at the end) is not a result.
const DEFAULT_LOG_FILTER: &str = "warn,bazaar_cluster::membership=error,ractor_cluster=error";

/// Runs the benchmark and prints the table (or JSON) on stdout.
pub fn run(args: BenchArgs) -> anyhow::Result<()> {
    init_logs();
    let settings = Settings::from_args(&args)?;
    let runtime = settings.runtime.start(settings.workers())?;
    let load_before = load_average();
    let rows = runtime.block_on(execute(&settings))?;
    let machine = Machine {
        cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        load_before,
        load_after: load_average(),
    };
    let mut stdout = std::io::stdout().lock();
    if settings.json {
        let json = report::to_json(&rows, &settings, &machine);
        serde_json::to_writer_pretty(&mut stdout, &json)?;
        writeln!(stdout)?;
    } else {
        write!(
            stdout,
            "{}",
            report::render_table(&rows, &settings, &machine)
        )?;
    }
    stdout.flush()?;
    Ok(())
}

/// Logs to stderr, `warn` unless `RUST_LOG` says otherwise.
pub(crate) fn init_logs() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_LOG_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(true)
        .try_init();
}

async fn execute(settings: &Settings) -> anyhow::Result<Vec<Row>> {
    let groups = settings.groups();
    let total: usize = groups.iter().map(|g| g.specs.len() * settings.runs).sum();
    let progress = progress_bar(total as u64, settings.json);
    let mut remote = None;
    let mut rows = Vec::new();
    let outcome = measure_groups(settings, &groups, &mut remote, &progress, &mut rows).await;
    if let Some(remote) = remote {
        progress.set_message("stopping the bench peer");
        remote.shutdown().await;
    }
    progress.finish_and_clear();
    outcome?;
    report::add_ratios(&mut rows);
    Ok(rows)
}

async fn measure_groups(
    settings: &Settings,
    groups: &[Group],
    remote: &mut Option<RemoteSide>,
    progress: &ProgressBar,
    rows: &mut Vec<Row>,
) -> anyhow::Result<()> {
    for group in groups {
        if group.specs.iter().any(|spec| spec.workload.is_remote()) && remote.is_none() {
            progress.set_message("starting the bench peer");
            *remote = Some(RemoteSide::start(&settings.peer_flags()).await?);
        }
        for spec in &group.specs {
            progress.set_message(format!("{} (warm-up)", describe(spec)));
            measure(&spec.warm_up(), remote.as_mut()).await?;
        }
        let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); group.specs.len()];
        for run in 0..settings.runs {
            for (spec, samples) in group.specs.iter().zip(&mut samples) {
                progress.set_message(format!(
                    "{} run {}/{}",
                    describe(spec),
                    run + 1,
                    settings.runs
                ));
                samples.push(measure(spec, remote.as_mut()).await?);
                progress.inc(1);
            }
        }
        for (spec, samples) in group.specs.iter().zip(&samples) {
            let row = Row::summarize(spec, samples);
            tracing::info!(
                workload = row.workload,
                system = row.system,
                payload = row.payload,
                rate = row.rate,
                errors = row.errors,
                "measured"
            );
            rows.push(row);
        }
    }
    Ok(())
}

/// One run of one measurement, with the CPU and memory of both processes.
async fn measure(spec: &Spec, remote: Option<&mut RemoteSide>) -> anyhow::Result<Sample> {
    let mut remote = match spec.workload.is_remote() {
        true => Some(remote.context("a remote workload needs the bench peer")?),
        false => None,
    };
    if let Some(remote) = remote.as_deref_mut() {
        remote.refresh_if_flooded().await?;
    }
    reset_peak_rss();
    let cpu_before = cpu_time();
    let peer_before = match remote.as_deref_mut() {
        Some(remote) => Some(remote.peer.mark().await?),
        None => None,
    };
    let outcome: Outcome = match remote.as_deref_mut() {
        Some(remote) => remote.run(spec).await,
        None => local::run(spec).await,
    };
    let cpu = cpu_time().saturating_sub(cpu_before);
    let peak_rss_kb = peak_rss_kb().unwrap_or(0);
    let peer_after = match remote {
        Some(remote) => Some(remote.peer.mark().await?),
        None => None,
    };
    let peer_cpu_us = match (peer_before, peer_after) {
        (Some(before), Some(after)) => after.cpu_us.saturating_sub(before.cpu_us),
        _ => 0,
    };
    if let Some(failure) = &outcome.failure {
        tracing::warn!(measurement = %describe(spec), failure = %failure, "measurement failed");
    }
    Ok(Sample {
        messages: outcome.messages,
        errors: outcome.errors,
        elapsed: outcome.elapsed,
        enqueued: outcome.enqueued,
        latencies: outcome
            .latencies
            .and_then(|latencies| latencies.percentiles()),
        cpu: cpu + std::time::Duration::from_micros(peer_cpu_us),
        peak_rss_kb,
        peer_peak_rss_kb: peer_after.map(|usage| usage.peak_rss_kb),
        refused: outcome.refused,
        failure: outcome.failure,
    })
}

/// `remote-call ×64 bazaar 1k`.
fn describe(spec: &Spec) -> String {
    let in_flight = spec.in_flight.map(|k| format!(" ×{k}")).unwrap_or_default();
    format!(
        "{}{in_flight} {} {}",
        spec.workload.name(),
        spec.system.name(),
        size_label(spec.payload)
    )
}

/// A bar on stderr, hidden for JSON output or when stderr is not a terminal.
fn progress_bar(total: u64, json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    if let Ok(style) =
        ProgressStyle::with_template("{bar:30.cyan/blue} {pos}/{len} [{elapsed_precise}] {msg}")
    {
        bar.set_style(style);
    }
    bar
}
