//! The report of a load run: one [`Report`] serialized as JSON for
//! machines, or rendered as tables for people.
//!
//! Latencies are in milliseconds, of successful requests only; errors
//! are counted by label (the HTTP status, or `connect refused`,
//! `connect failed`, `timeout`, `broken connection`, `not started
//! (in-flight cap)`). The timeline is by scheduled second: what was due
//! in that second and how it ended.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::net::IpAddr;

use serde::Serialize;

use super::orders::{CheckoutReport, Counters};
use super::plan::{Flow, Mix, Settings};
use super::schedule::Timing;
use super::stats::{Counts, Route, Stats, REFUSED};

/// The whole report.
#[derive(Debug, Serialize)]
pub struct Report {
    /// Gateway URLs, in the order requests go round-robin over them.
    pub gateways: Vec<String>,
    /// Source addresses the connections were bound to (empty: the system's).
    pub sources: Vec<String>,
    /// Which flows arrived.
    pub mix: Mix,
    /// Shoppers of a closed loop (absent: an open loop at `requested_rate`).
    pub shoppers: Option<usize>,
    /// Flows due per second (of an open loop).
    pub requested_rate: f64,
    /// Flows started per second of dispatch (arrivals not started excluded).
    pub achieved_rate: f64,
    /// Seconds asked.
    pub duration_s: f64,
    /// Budget of one request, seconds.
    pub timeout_s: f64,
    /// Arrivals on the timetable.
    pub arrivals: u64,
    /// Arrivals not sent because the in-flight cap was reached.
    pub not_started: u64,
    /// Latest dispatch after a due time, ms (the generator's own lag).
    pub max_dispatch_lag_ms: f64,
    /// Requests that succeeded.
    pub ok: u64,
    /// Requests that failed, not-started arrivals included.
    pub errors: u64,
    /// Errors by label, all routes.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// Per flow.
    pub flows: Vec<FlowReport>,
    /// Per route.
    pub routes: Vec<RouteReport>,
    /// Per gateway.
    pub by_gateway: Vec<GatewayReport>,
    /// Per scheduled second.
    pub timeline: Vec<SecondReport>,
    /// What checkout did, when the run placed orders.
    pub checkout: Option<CheckoutReport>,
}

/// One flow.
#[derive(Debug, Serialize)]
pub struct FlowReport {
    /// Name.
    pub flow: &'static str,
    /// Weight in the mix.
    pub weight: u32,
    /// Arrivals of it, started or not.
    pub runs: u64,
    /// Arrivals whose every request succeeded.
    pub ok: u64,
    /// Arrivals with a failed request, or not started.
    pub failed: u64,
}

/// One route.
#[derive(Debug, Serialize)]
pub struct RouteReport {
    /// Method and path template.
    pub route: &'static str,
    /// Requests (not-started arrivals of its flow included).
    pub requests: u64,
    /// Successes.
    pub ok: u64,
    /// Failures.
    pub errors: u64,
    /// Failures by label.
    pub errors_by_kind: BTreeMap<String, u64>,
    /// The first answer body or transport error of each label.
    pub error_examples: BTreeMap<String, String>,
    /// Latency percentiles of successes, ms (absent without a success).
    pub p50_ms: Option<f64>,
    /// 90th percentile.
    pub p90_ms: Option<f64>,
    /// 99th percentile.
    pub p99_ms: Option<f64>,
    /// 99.9th percentile.
    pub p999_ms: Option<f64>,
    /// Slowest success.
    pub max_ms: Option<f64>,
}

/// One gateway.
#[derive(Debug, Serialize)]
pub struct GatewayReport {
    /// Its URL.
    pub gateway: String,
    /// Successes.
    pub ok: u64,
    /// Failures.
    pub errors: u64,
    /// Failures by label.
    pub errors_by_kind: BTreeMap<String, u64>,
}

/// One second of the timeline.
#[derive(Debug, Serialize)]
pub struct SecondReport {
    /// Seconds since the first arrival was due.
    pub second: u32,
    /// Arrivals that started.
    pub started: u64,
    /// Requests that succeeded.
    pub ok: u64,
    /// Requests that failed, not-started arrivals included.
    pub errors: u64,
    /// p99 of successes, ms.
    pub p99_ms: Option<f64>,
    /// Slowest success, ms.
    pub max_ms: Option<f64>,
    /// Successes per gateway, in gateway order.
    pub ok_by_gateway: Vec<u64>,
    /// Failures per gateway, in gateway order.
    pub errors_by_gateway: Vec<u64>,
}

impl Report {
    /// The report of a finished run.
    pub fn new(settings: &Settings, stats: &Stats, timing: &Timing) -> Self {
        let (ok, errors) = stats.requests();
        let not_started: u64 = stats.timeline.iter().map(|s| s.not_started).sum();
        let started: u64 = stats.timeline.iter().map(|s| s.started).sum();
        let period = 1.0 / settings.rate;
        let span = timing.dispatch_span.as_secs_f64() + period;
        let mut errors_by_kind = BTreeMap::new();
        for (counts, _) in &stats.routes {
            for (failure, n) in &counts.errors {
                *errors_by_kind.entry(failure.label()).or_default() += n;
            }
        }
        Self {
            gateways: settings.gateways.clone(),
            sources: settings.sources.iter().map(IpAddr::to_string).collect(),
            mix: settings.mix,
            shoppers: settings.shoppers,
            requested_rate: settings.rate,
            achieved_rate: round(started as f64 / span),
            duration_s: settings.duration.as_secs_f64(),
            timeout_s: settings.timeout.as_secs_f64(),
            arrivals: stats.arrivals(),
            not_started,
            max_dispatch_lag_ms: round(timing.max_dispatch_lag.as_secs_f64() * 1e3),
            ok,
            errors,
            errors_by_kind,
            flows: Flow::ALL
                .iter()
                .zip(&stats.flows)
                .map(|(flow, counts)| FlowReport {
                    flow: flow.name(),
                    weight: settings.mix.weight(*flow),
                    runs: counts.ok + counts.error_total(),
                    ok: counts.ok,
                    failed: counts.error_total(),
                })
                .collect(),
            routes: Route::ALL
                .iter()
                .zip(&stats.routes)
                .map(|(route, (counts, latencies))| {
                    let at = |q: f64| {
                        (!latencies.is_empty()).then(|| ms(latencies.value_at_quantile(q)))
                    };
                    RouteReport {
                        route: route.name(),
                        requests: counts.ok + counts.error_total(),
                        ok: counts.ok,
                        errors: counts.error_total(),
                        errors_by_kind: labels(counts),
                        error_examples: stats
                            .examples
                            .iter()
                            .filter(|((of, _), _)| of == route)
                            .map(|((_, failure), detail)| (failure.label(), detail.clone()))
                            .collect(),
                        p50_ms: at(0.5),
                        p90_ms: at(0.9),
                        p99_ms: at(0.99),
                        p999_ms: at(0.999),
                        max_ms: (!latencies.is_empty()).then(|| ms(latencies.max())),
                    }
                })
                .collect(),
            by_gateway: settings
                .gateways
                .iter()
                .zip(&stats.gateways)
                .map(|(gateway, counts)| GatewayReport {
                    gateway: gateway.clone(),
                    ok: counts.ok,
                    errors: counts.error_total(),
                    errors_by_kind: labels(counts),
                })
                .collect(),
            timeline: stats
                .timeline
                .iter()
                .zip(0..)
                .map(|(slot, second)| SecondReport {
                    second,
                    started: slot.started,
                    ok: slot.ok,
                    errors: slot.errors,
                    p99_ms: slot.p99_us.map(ms),
                    max_ms: slot.max_us.map(ms),
                    ok_by_gateway: slot.gateways.iter().map(|g| g.0).collect(),
                    errors_by_gateway: slot.gateways.iter().map(|g| g.1).collect(),
                })
                .collect(),
            checkout: None,
        }
    }

    /// Adds what checkout did, from the checkout route's counts and the
    /// nodes' counters read `before` and `after` the run.
    pub fn add_checkout(&mut self, timing: &Timing, before: &Counters, after: &Counters) {
        let Some(route) = self
            .routes
            .iter()
            .find(|route| route.route == Route::Checkout.name())
        else {
            return;
        };
        if route.requests == 0 {
            return;
        }
        let refused = route.errors_by_kind.get(REFUSED).copied().unwrap_or(0);
        let seconds = timing.dispatch_span.as_secs_f64().max(1e-3);
        self.checkout = Some(CheckoutReport::new(
            route.ok,
            refused,
            seconds,
            (route.p50_ms, route.p99_ms, route.p999_ms),
            before,
            after,
        ));
    }
}

fn labels(counts: &Counts) -> BTreeMap<String, u64> {
    counts
        .errors
        .iter()
        .map(|(failure, n)| (failure.label(), *n))
        .collect()
}

fn ms(us: u64) -> f64 {
    round(us as f64 / 1e3)
}

fn round(value: f64) -> f64 {
    (value * 100.0).round() / 100.0
}

impl Report {
    /// Share of requests that failed (0 to 1), not-started arrivals
    /// included; 0 when nothing was sent.
    pub fn error_rate(&self) -> f64 {
        let total = self.ok + self.errors;
        if total == 0 {
            return 0.0;
        }
        self.errors as f64 / total as f64
    }
}

/// How the sources read in a sentence.
pub fn sources_label(sources: &[IpAddr]) -> String {
    match sources {
        [] => "the system's source address".to_string(),
        [one] => format!("source address {one}"),
        [first, .., last] => format!("{} source addresses ({first} to {last})", sources.len()),
    }
}

fn cell(value: Option<f64>) -> String {
    value.map_or_else(|| "-".to_string(), |v| format!("{v:.2}"))
}

fn kinds(errors: &BTreeMap<String, u64>) -> String {
    let parts: Vec<String> = errors.iter().map(|(k, n)| format!("{k}: {n}")).collect();
    parts.join(", ")
}

/// The report as tables.
pub fn render(report: &Report) -> String {
    let mut out = String::new();
    match report.shoppers {
        Some(shoppers) => {
            let _ = writeln!(
                out,
                "{shoppers} shoppers (closed loop) ran {:.1} flows/s over {:.1} s ({} flows)",
                report.achieved_rate, report.duration_s, report.arrivals,
            );
        }
        None => {
            let _ = writeln!(
                out,
                "requested {} flows/s, achieved {:.1}/s over {:.1} s ({} arrivals, {} not started, dispatch lag at most {:.1} ms)",
                report.requested_rate,
                report.achieved_rate,
                report.duration_s,
                report.arrivals,
                report.not_started,
                report.max_dispatch_lag_ms
            );
        }
    }
    let _ = writeln!(out, "{} requests ok, {} failed\n", report.ok, report.errors);
    let _ = writeln!(
        out,
        "{:<24} {:>8} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "route", "requests", "ok", "errors", "p50 ms", "p90 ms", "p99 ms", "p99.9 ms", "max ms"
    );
    for route in &report.routes {
        let _ = writeln!(
            out,
            "{:<24} {:>8} {:>8} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}",
            route.route,
            route.requests,
            route.ok,
            route.errors,
            cell(route.p50_ms),
            cell(route.p90_ms),
            cell(route.p99_ms),
            cell(route.p999_ms),
            cell(route.max_ms)
        );
    }
    if let Some(checkout) = &report.checkout {
        let _ = writeln!(
            out,
            "\ncheckout: {} confirmed ({:.1} orders/s), {} refused with no order placed; p50 {} ms, p99 {} ms, p99.9 {} ms; {} journal fsyncs per order, {} orders per batch ({} nodes read)",
            checkout.confirmed,
            checkout.orders_per_s,
            checkout.refused,
            cell(checkout.p50_ms),
            cell(checkout.p99_ms),
            cell(checkout.p999_ms),
            cell(checkout.fsyncs_per_order),
            cell(checkout.mean_batch),
            checkout.nodes_scraped,
        );
    }
    let _ = writeln!(
        out,
        "\n{:<12} {:>6} {:>8} {:>8} {:>7}",
        "flow", "weight", "runs", "ok", "failed"
    );
    for flow in &report.flows {
        let _ = writeln!(
            out,
            "{:<12} {:>6} {:>8} {:>8} {:>7}",
            flow.flow, flow.weight, flow.runs, flow.ok, flow.failed
        );
    }
    let _ = writeln!(
        out,
        "\n{:<26} {:>8} {:>7}  errors by kind",
        "gateway", "ok", "errors"
    );
    for gateway in &report.by_gateway {
        let _ = writeln!(
            out,
            "{:<26} {:>8} {:>7}  {}",
            gateway.gateway,
            gateway.ok,
            gateway.errors,
            kinds(&gateway.errors_by_kind)
        );
    }
    if !report.errors_by_kind.is_empty() {
        let _ = writeln!(out, "\nerrors: {}", kinds(&report.errors_by_kind));
        for route in &report.routes {
            for (kind, example) in &route.error_examples {
                let _ = writeln!(out, "  {} {kind}: {example}", route.route);
            }
        }
    }
    let _ = writeln!(
        out,
        "\ntimeline (by scheduled second)\n{:>4} {:>8} {:>8} {:>7} {:>8} {:>9}  errors by gateway",
        "s", "started", "ok", "errors", "p99 ms", "max ms"
    );
    for second in &report.timeline {
        let by_gateway: Vec<String> = second
            .errors_by_gateway
            .iter()
            .map(u64::to_string)
            .collect();
        let _ = writeln!(
            out,
            "{:>4} {:>8} {:>8} {:>7} {:>8} {:>9}  {}",
            second.second,
            second.started,
            second.ok,
            second.errors,
            cell(second.p99_ms),
            cell(second.max_ms),
            by_gateway.join("/")
        );
    }
    out
}
