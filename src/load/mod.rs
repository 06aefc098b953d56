//! `bazaar load`: an open-loop HTTP load generator for the shop, in the
//! spirit of Online Boutique's Locust file.
//!
//! ```text
//! schedule (fixed timetable) ──spawn──▶ flow tasks ──HTTP──▶ gateways (round-robin)
//!                                           │
//!                                           └── events ──▶ stats (routes, errors, gateways, timeline)
//! ```
//!
//! - [`plan`]: the flags, checked, and the weighted mix of flows (browse
//!   10, search 5, view cart 3, add to cart 2, checkout 1, logins as the
//!   users need them);
//! - [`schedule`]: arrivals on a fixed timetable at `--rate`, latency from
//!   the scheduled start (no coordinated omission), a cap on arrivals in
//!   flight;
//! - [`shop`]: the virtual users and the requests each flow sends, over
//!   the clients of `http` (one per source address);
//! - [`stats`]: per-route percentiles (hdrhistogram), errors by status and
//!   by transport error, per-gateway counts, a per-second timeline;
//! - [`report`]: the table and the JSON.
//!
//! With `--max-error-rate`, a run whose share of failed requests is above
//! the limit exits non-zero after its report, so the load can gate CI
//! (Locust's `--exit-code-on-error`, with a threshold).
//!
//! A dead gateway's requests fail (connect refused, broken connections,
//! timeouts) and are counted; the load goes on through the other gateways
//! and the timeline shows the errors and the latency spike second by
//! second.
//!
//! Source addresses: each gateway rate-limits per client address (see
//! `gateway::limits`). On one machine every client is 127.0.0.1, so when
//! every gateway is an IPv4 loopback address the load binds its
//! connections to 127.0.0.2, 127.0.0.3, ... (Linux routes all of
//! 127.0.0.0/8 to loopback), enough of them that none sends more than
//! [`plan::RATE_PER_SOURCE`] requests a second to one gateway.

mod http;
pub mod orders;
pub mod plan;
pub mod report;
pub mod schedule;
pub mod shop;
pub mod stats;

use std::io::{IsTerminal, Write};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use tokio::sync::mpsc;

use plan::{LoadArgs, Settings};
use shop::Shop;
use stats::Stats;

/// Events buffered between the flow tasks and the stats.
const EVENT_BUFFER: usize = 65_536;
/// How often the stats close old seconds and the progress bar is redrawn.
const TICK: Duration = Duration::from_millis(250);

/// Runs the load and prints the report (or JSON) on stdout.
pub fn run(args: LoadArgs) -> anyhow::Result<()> {
    crate::bench::init_logs();
    let settings = Settings::from_args(&args)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let report = runtime.block_on(execute(&settings))?;
    let mut stdout = std::io::stdout().lock();
    if settings.json {
        serde_json::to_writer_pretty(&mut stdout, &report)?;
        writeln!(stdout)?;
    } else {
        write!(stdout, "{}", report::render(&report))?;
    }
    stdout.flush()?;
    if let Some(limit) = settings.max_error_rate {
        let rate = report.error_rate();
        if rate > limit {
            anyhow::bail!(
                "{:.2}% of requests failed ({} of {}), above --max-error-rate {}%",
                rate * 100.0,
                report.errors,
                report.ok + report.errors,
                limit * 100.0
            );
        }
    }
    Ok(())
}

/// Prepares the shop, runs the timetable and folds every event into the report.
pub async fn execute(settings: &Settings) -> anyhow::Result<report::Report> {
    let (events, mut received) = mpsc::channel(EVENT_BUFFER);
    let shop = Arc::new(Shop::prepare(settings, events.clone()).await?);
    if settings.mix == plan::Mix::Checkout {
        shop.log_in_everyone().await;
    }
    let pace = match settings.shoppers {
        Some(shoppers) => format!("{shoppers} shoppers (closed loop)"),
        None => format!("{} flows/s", settings.rate),
    };
    eprintln!(
        "load: {pace} of the {:?} mix for {:.1} s over {} gateway(s) from {}, timeout {:.1} s, at most {} in flight",
        settings.mix,
        settings.duration.as_secs_f64(),
        settings.gateways.len(),
        report::sources_label(&settings.sources),
        settings.timeout.as_secs_f64(),
        settings.max_in_flight,
    );
    let metrics_client = reqwest::Client::new();
    let before = orders::Counters::scrape(&metrics_client, &settings.gateways).await;
    let progress = progress_bar(settings.arrivals(), settings.json);
    let driver = tokio::spawn({
        let settings = settings.clone();
        async move {
            match settings.shoppers {
                Some(_) => schedule::drive_closed(&settings, shop, events).await,
                None => schedule::drive(&settings, shop, events).await,
            }
        }
    });
    let mut stats = Stats::new(settings.gateways.len());
    // A flow is at most three requests after waiting for a login.
    let flow_budget = settings.timeout * 4 + Duration::from_secs(1);
    let started = tokio::time::Instant::now();
    let mut tick = tokio::time::interval(TICK);
    loop {
        tokio::select! {
            event = received.recv() => match event {
                Some(event) => stats.record(event),
                None => break,
            },
            _ = tick.tick() => {
                let open_from = started.elapsed().saturating_sub(flow_budget).as_secs();
                stats.close_before(u32::try_from(open_from).unwrap_or(u32::MAX));
                let (ok, errors) = stats.requests();
                progress.set_position(stats.arrivals());
                progress.set_message(format!("{ok} ok, {errors} errors"));
            }
        }
    }
    progress.finish_and_clear();
    let timing = driver.await.context("the load's timetable task failed")?;
    stats.close_all();
    let after = orders::Counters::scrape(&metrics_client, &settings.gateways).await;
    let mut report = report::Report::new(settings, &stats, &timing);
    report.add_checkout(&timing, &before, &after);
    Ok(report)
}

/// A bar on stderr, hidden for JSON output or when stderr is not a terminal.
fn progress_bar(arrivals: u64, json: bool) -> ProgressBar {
    if json || !std::io::stderr().is_terminal() {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(arrivals), ProgressDrawTarget::stderr());
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:30.cyan/blue} {pos}/{len} flows [{elapsed_precise}] {msg}",
    ) {
        bar.set_style(style);
    }
    bar
}
