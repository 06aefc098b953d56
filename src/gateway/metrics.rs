//! Prometheus metrics: the process-wide recorder, `GET /metrics`, and the
//! middleware that counts and times every gateway request.
//!
//! Requests are labelled with the matched route template
//! (`/api/products/{id}`), never the raw path, so the label set stays
//! bounded; a request that matches no route is labelled `unmatched`.
//! Histograms are exported as Prometheus histograms over [`BUCKETS_SECONDS`].
//!
//! The other crates record through the `metrics` facade where things
//! happen (service calls, membership, supervision, checkout); recording
//! before [`install`] or without it is a no-op. Messages handled per
//! service are the exception: the service actors, and the gateway for each
//! read it answers from a service's snapshot, bump plain atomics
//! ([`bazaar_actors::host::traffic`]), which each scrape copies into
//! `bazaar_service_messages_handled_total{service}`. A snapshot read is
//! not a call: `bazaar_service_calls_total` counts only what went through
//! a service client (see [`super::shop`]).
//!
//! Conventions (Prometheus's): every metric has a `# HELP` line (see
//! [`DESCRIPTIONS`]; a metric recorded anywhere must be described there),
//! a service is always the label `service="catalog"`, the standard
//! `process_*` metrics come from `/proc` ([`crate::telemetry::process`]),
//! and `bazaar_build_info{version}` is 1.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bazaar_actors::host::traffic;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use super::GatewayState;
use crate::telemetry::process;

/// Bucket bounds of every histogram of durations, in seconds: 1 ms to 10 s.
pub const BUCKETS_SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// Bucket bounds of `bazaar_checkout_batch_proposals`, in proposals.
pub const BUCKETS_BATCH: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0];
/// How often histogram samples are drained when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);
/// Content type of the Prometheus text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// The kind of a metric, for its description.
#[derive(Debug, Clone, Copy)]
enum Kind {
    Counter,
    Gauge,
    Histogram,
}

/// Every metric Bazaar records, with its `# HELP` text.
const DESCRIPTIONS: &[(&str, Kind, &str)] = &[
    ("bazaar_build_info", Kind::Gauge, "Always 1, labelled with the version of the running bazaar binary"),
    ("bazaar_http_requests_total", Kind::Counter, "HTTP requests answered by the gateway, by route template, method and status"),
    ("bazaar_http_request_duration_seconds", Kind::Histogram, "Time the gateway took to answer HTTP requests, by route template, method and status"),
    ("bazaar_service_calls_total", Kind::Counter, "Calls this node made to a service, by service and outcome (reads answered from this node's snapshot of a service are not calls)"),
    ("bazaar_service_call_duration_seconds", Kind::Histogram, "Time calls this node made to a service took, retries included, by service"),
    ("bazaar_service_messages_handled_total", Kind::Counter, "Requests the services of this node handled, by service: messages to their actors and reads answered from their snapshots (monitoring and internal protocol messages excluded)"),
    ("bazaar_service_escalations_total", Kind::Counter, "Times a service's supervision tree gave up on this node and was restarted whole, by service"),
    ("bazaar_members", Kind::Gauge, "Cluster members as this node sees them, by state"),
    ("bazaar_quorum", Kind::Gauge, "1 if this node sees a majority of the expected members up, else 0"),
    ("bazaar_membership_changes_total", Kind::Counter, "Membership changes this node saw, by event"),
    ("bazaar_actor_failures_total", Kind::Counter, "Supervised actors that exited with an error or failed to start, by supervisor and child"),
    ("bazaar_actor_restarts_total", Kind::Counter, "Supervised actors restarted successfully, by supervisor and child"),
    ("bazaar_cluster_handshakes", Kind::Gauge, "Inbound cluster connections in their handshake"),
    ("bazaar_cluster_connections_total", Kind::Counter, "Inbound cluster connections, by outcome"),
    ("bazaar_checkout_epoch", Kind::Gauge, "Highest checkout ownership epoch this node's replica promised"),
    ("bazaar_checkout_failovers_total", Kind::Counter, "Checkout ownerships this node took over after losing the owner"),
    ("bazaar_checkout_failover_duration_seconds", Kind::Histogram, "Time from losing the checkout owner to this node owning checkout"),
    ("bazaar_orders_confirmed_total", Kind::Counter, "Orders this node confirmed as checkout owner"),
    ("bazaar_checkout_journal_syncs_total", Kind::Counter, "Durable checkout journal transactions on this node, one fsync each"),
    ("bazaar_checkout_batch_proposals", Kind::Histogram, "Proposals the checkout owner appended per batch: one journal write and one append per replica each"),
    ("bazaar_checkout_refused_total", Kind::Counter, "Orders the checkout owner refused without placing them, by reason (capacity, deadline)"),
    ("bazaar_checkout_orders_in_flight", Kind::Gauge, "Orders the checkout owner admitted and has not answered yet"),
];

/// Installs the process-wide Prometheus recorder, describes every metric,
/// and starts the recorder's upkeep task; call once per process, inside
/// the runtime.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets(BUCKETS_SECONDS)?
        .set_buckets_for_metric(
            Matcher::Full("bazaar_checkout_batch_proposals".into()),
            BUCKETS_BATCH,
        )?
        .install_recorder()?;
    for &(name, kind, help) in DESCRIPTIONS {
        match kind {
            Kind::Counter => metrics::describe_counter!(name, help),
            Kind::Gauge => metrics::describe_gauge!(name, help),
            Kind::Histogram => metrics::describe_histogram!(name, help),
        }
    }
    metrics::gauge!("bazaar_build_info", "version" => env!("CARGO_PKG_VERSION")).set(1.0);
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut interval = tokio::time::interval(UPKEEP_INTERVAL);
        loop {
            interval.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

impl GatewayState {
    /// Serves `handle` at `GET /metrics`.
    pub fn with_metrics(mut self, handle: PrometheusHandle) -> Self {
        self.metrics = Some(handle);
        self
    }
}

/// `GET /metrics`: every metric of this process in the Prometheus text
/// format, with the services' message counters brought up to date and the
/// process metrics read now; 404 when no recorder is installed.
pub async fn render(State(state): State<GatewayState>) -> Response {
    let Some(handle) = &state.metrics else {
        return StatusCode::NOT_FOUND.into_response();
    };
    for handled in traffic::all() {
        metrics::counter!("bazaar_service_messages_handled_total", "service" => handled.service())
            .absolute(handled.total());
    }
    let mut text = handle.render();
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    text.push_str(&process::render());
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], text).into_response()
}

/// Middleware: `bazaar_http_requests_total{route,method,status}` and
/// `bazaar_http_request_duration_seconds{route,method,status}`.
pub async fn track(request: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map_or_else(|| "unmatched".to_string(), |path| path.as_str().to_string());
    let method = method_label(request.method()).to_string();
    let response = next.run(request).await;
    let labels = [
        ("route", route),
        ("method", method),
        ("status", response.status().as_u16().to_string()),
    ];
    metrics::counter!("bazaar_http_requests_total", &labels).increment(1);
    metrics::histogram!("bazaar_http_request_duration_seconds", &labels)
        .record(started.elapsed().as_secs_f64());
    response
}

/// The method as a label; extension methods are `other`, so that clients
/// cannot grow the label set.
fn method_label(method: &Method) -> &'static str {
    match *method {
        Method::GET => "GET",
        Method::HEAD => "HEAD",
        Method::POST => "POST",
        Method::PUT => "PUT",
        Method::DELETE => "DELETE",
        Method::PATCH => "PATCH",
        Method::OPTIONS => "OPTIONS",
        _ => "other",
    }
}
