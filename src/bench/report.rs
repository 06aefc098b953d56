//! The results: one [`Row`] per (workload, in-flight, system, payload),
//! the median of its runs with the spread of the rate, and its rate as a
//! ratio of every other system's rate on the same workload, payload and
//! in-flight count; shown as a table or JSON.
//!
//! Ratios are `rate / baseline rate`: `0.50` means half the baseline's
//! throughput. Latencies, CPU per message are medians of the runs; peak
//! RSS is the largest of the runs.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use serde::Serialize;

use super::measure::{kb_to_mb, Sample, Spread};
use super::plan::{size_label, Settings, Spec};

/// The summary of every run of one measurement.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Row {
    /// Workload name, e.g. `remote-cast`.
    pub workload: &'static str,
    /// System name: `bazaar`, `ractor`, `ractor_cluster`, `tokio-mpsc`, `tcp-framed`.
    pub system: &'static str,
    /// Payload bytes per message.
    pub payload: usize,
    /// Calls in flight; null for casts.
    pub in_flight: Option<usize>,
    /// Median messages (or round trips) per second.
    pub rate: f64,
    /// Slowest run's rate.
    pub rate_min: f64,
    /// Fastest run's rate.
    pub rate_max: f64,
    /// Runs measured.
    pub runs: usize,
    /// Messages (or round trips) completed per run, median.
    pub messages: u64,
    /// Casts only: median rate at which the sender enqueued, msg/s; far
    /// above `rate` when the sender runs ahead into unbounded queues.
    pub enqueue_rate: Option<f64>,
    /// Median round trip, µs; null for casts.
    pub p50_us: Option<f64>,
    /// 99th percentile round trip, µs; null for casts.
    pub p99_us: Option<f64>,
    /// 99.9th percentile round trip, µs; null for casts.
    pub p999_us: Option<f64>,
    /// CPU time per message over both processes (remote) or this one (local), µs.
    pub cpu_us_per_msg: Option<f64>,
    /// Peak RSS of the sending process, MiB.
    pub peak_rss_mb: f64,
    /// Peak RSS of the peer (receiving) process, MiB; null for local workloads.
    pub peer_peak_rss_mb: Option<f64>,
    /// `frozen-peer` only: casts refused as overloaded, median of the runs
    /// (`messages` counts the accepted casts that arrived).
    pub refused: Option<u64>,
    /// Failed calls and casts never confirmed, over every run.
    pub errors: u64,
    /// The last failure message, if any run failed.
    pub failure: Option<String>,
    /// This row's rate divided by each other system's rate, by system name.
    pub ratios: BTreeMap<&'static str, f64>,
}

impl Row {
    /// Summarizes the runs of `spec`.
    pub fn summarize(spec: &Spec, samples: &[Sample]) -> Row {
        let rate = Spread::of(samples.iter().map(Sample::rate)).unwrap_or(Spread {
            median: 0.0,
            min: 0.0,
            max: 0.0,
        });
        let median_of = |values: Vec<f64>| Spread::of(values).map(|spread| spread.median);
        let latencies: Vec<_> = samples.iter().filter_map(|s| s.latencies).collect();
        let latency = |pick: fn(&super::measure::Percentiles) -> f64| {
            median_of(latencies.iter().map(pick).collect())
        };
        let messages = median_of(samples.iter().map(|s| s.messages as f64).collect());
        let peer_rss = samples.iter().filter_map(|s| s.peer_peak_rss_kb).max();
        Row {
            workload: spec.workload.name(),
            system: spec.system.name(),
            payload: spec.payload,
            in_flight: spec.in_flight,
            rate: rate.median,
            rate_min: rate.min,
            rate_max: rate.max,
            runs: samples.len(),
            messages: messages.unwrap_or(0.0).round() as u64,
            enqueue_rate: median_of(samples.iter().filter_map(Sample::enqueue_rate).collect()),
            p50_us: latency(|p| p.p50_us),
            p99_us: latency(|p| p.p99_us),
            p999_us: latency(|p| p.p999_us),
            cpu_us_per_msg: median_of(samples.iter().filter_map(Sample::cpu_us_per_msg).collect()),
            peak_rss_mb: kb_to_mb(samples.iter().map(|s| s.peak_rss_kb).max().unwrap_or(0)),
            peer_peak_rss_mb: peer_rss.map(kb_to_mb),
            refused: median_of(
                samples
                    .iter()
                    .filter_map(|s| s.refused)
                    .map(|n| n as f64)
                    .collect(),
            )
            .map(|n| n.round() as u64),
            errors: samples.iter().map(|s| s.errors).sum(),
            failure: samples.iter().rev().find_map(|s| s.failure.clone()),
            ratios: BTreeMap::new(),
        }
    }

    fn same_measurement(&self, other: &Row) -> bool {
        self.workload == other.workload
            && self.payload == other.payload
            && self.in_flight == other.in_flight
    }

    /// `local-call ×64`, `remote-cast`.
    fn label(&self) -> String {
        match self.in_flight {
            Some(k) => format!("{} ×{k}", self.workload),
            None => self.workload.to_string(),
        }
    }
}

/// Fills in every row's ratios to the baselines measured next to it.
pub fn add_ratios(rows: &mut [Row]) {
    let baselines: Vec<(usize, &'static str, f64)> = rows
        .iter()
        .enumerate()
        .filter(|(_, row)| row.system != "bazaar")
        .map(|(i, row)| (i, row.system, row.rate))
        .collect();
    for i in 0..rows.len() {
        let mut ratios = BTreeMap::new();
        for &(j, system, rate) in &baselines {
            if i != j && rows[i].same_measurement(&rows[j]) && rate > 0.0 {
                ratios.insert(system, rows[i].rate / rate);
            }
        }
        rows[i].ratios = ratios;
    }
}

/// What the machine was like during the run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Machine {
    /// CPUs available to this process.
    pub cpus: usize,
    /// 1-minute load average at the start of the run.
    pub load_before: Option<f64>,
    /// 1-minute load average at the end of the run.
    pub load_after: Option<f64>,
}

/// The JSON document: `{"results": [...], "settings": {...}, "machine": {...}}`.
pub fn to_json(rows: &[Row], settings: &Settings, machine: &Machine) -> serde_json::Value {
    serde_json::json!({
        "results": rows,
        "settings": {
            "workloads": settings.workloads.iter().map(|w| w.name()).collect::<Vec<_>>(),
            "payloads": settings.payloads,
            "messages": settings.messages,
            "in_flight": settings.in_flight,
            "duration_secs": settings.duration.as_secs_f64(),
            "runs": settings.runs,
            "workers_per_process": settings.workers(),
            "busy_poll_us": settings.runtime.busy_poll_us,
        },
        "machine": machine,
    })
}

const HEADERS: [&str; 12] = [
    "WORKLOAD",
    "SYSTEM",
    "PAYLOAD",
    "RATE/s",
    "MIN–MAX",
    "P50 µs",
    "P99 µs",
    "P99.9 µs",
    "CPU µs/msg",
    "RSS MB",
    "PEER MB",
    "VS BASELINES",
];

/// The table: one line per row, a blank line between measurements.
pub fn render_table(rows: &[Row], settings: &Settings, machine: &Machine) -> String {
    let cells: Vec<[String; 12]> = rows.iter().map(cells).collect();
    let mut widths = HEADERS.map(|h| h.chars().count());
    for line in &cells {
        for (width, cell) in widths.iter_mut().zip(line) {
            *width = (*width).max(cell.chars().count());
        }
    }
    let load = |load: Option<f64>| load.map_or("?".to_string(), |l| format!("{l:.2}"));
    let mut out = String::new();
    let _ = writeln!(
        out,
        "bazaar bench: {} run(s) per measurement, at most {:.1}s of sending each; {} cpus, {} worker(s) per process, lanes busy-poll {} µs; load {} before, {} after",
        settings.runs,
        settings.duration.as_secs_f64(),
        machine.cpus,
        settings.workers(),
        settings.runtime.busy_poll_us,
        load(machine.load_before),
        load(machine.load_after),
    );
    let _ = writeln!(
        out,
        "rate: casts/s until the receiver had all, round trips/s for calls; ratios: rate / baseline rate"
    );
    write_line(&mut out, &HEADERS.map(String::from), &widths);
    for (i, line) in cells.iter().enumerate() {
        if i > 0 && !rows[i].same_measurement(&rows[i - 1]) {
            out.push('\n');
        }
        write_line(&mut out, line, &widths);
    }
    let failures: Vec<&Row> = rows
        .iter()
        .filter(|row| row.errors > 0 || row.failure.is_some())
        .collect();
    for row in failures {
        let _ = writeln!(
            out,
            "! {} {} {}: {} errors; {}",
            row.label(),
            row.system,
            size_label(row.payload),
            row.errors,
            row.failure.as_deref().unwrap_or("no message")
        );
    }
    out
}

fn write_line(out: &mut String, cells: &[String; 12], widths: &[usize; 12]) {
    let mut line = String::new();
    for (i, (cell, width)) in cells.iter().zip(widths).enumerate() {
        let pad = width.saturating_sub(cell.chars().count());
        // Text columns left-aligned, numbers right-aligned.
        if i < 2 || i == 11 {
            line.push_str(cell);
            line.push_str(&" ".repeat(pad));
        } else {
            line.push_str(&" ".repeat(pad));
            line.push_str(cell);
        }
        line.push_str("  ");
    }
    out.push_str(line.trim_end());
    out.push('\n');
}

fn cells(row: &Row) -> [String; 12] {
    let opt = |value: Option<f64>, digits: usize| match value {
        Some(value) => format!("{value:.digits$}"),
        None => "-".to_string(),
    };
    let ratios = match row.refused {
        Some(refused) if row.errors == 0 => format!(
            "{refused} refused as overloaded; all {} accepted arrived after the resume",
            row.messages
        ),
        Some(refused) => format!(
            "{refused} refused as overloaded; {} accepted arrived, {} did not",
            row.messages, row.errors
        ),
        None => row
            .ratios
            .iter()
            .map(|(system, ratio)| format!("{ratio:.2}× {system}"))
            .collect::<Vec<_>>()
            .join(", "),
    };
    [
        row.label(),
        row.system.to_string(),
        size_label(row.payload),
        format!("{:.0}", row.rate),
        format!("{:.0}–{:.0}", row.rate_min, row.rate_max),
        opt(row.p50_us, 1),
        opt(row.p99_us, 1),
        opt(row.p999_us, 1),
        opt(row.cpu_us_per_msg, 2),
        format!("{:.1}", row.peak_rss_mb),
        opt(row.peer_peak_rss_mb, 1),
        ratios,
    ]
}

#[cfg(test)]
mod tests;
