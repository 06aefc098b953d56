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
//! service are the exception: the service actors bump plain atomics
//! ([`bazaar_actors::host::traffic`]), which each scrape copies into
//! `bazaar_service_messages_handled_total{service}`.

use std::time::{Duration, Instant};

use axum::extract::{MatchedPath, Request, State};
use axum::http::{header, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use bazaar_actors::host::traffic;
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

use super::GatewayState;

/// Bucket bounds of every histogram, in seconds: 1 ms to 10 s.
pub const BUCKETS_SECONDS: &[f64] = &[
    0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];
/// How often histogram samples are drained when nobody scrapes.
const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);
/// Content type of the Prometheus text exposition format.
const CONTENT_TYPE: &str = "text/plain; version=0.0.4";

/// Installs the process-wide Prometheus recorder and starts its upkeep
/// task; call once per process, inside the runtime.
pub fn install() -> anyhow::Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets(BUCKETS_SECONDS)?
        .install_recorder()?;
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
/// format, with the services' message counters brought up to date; 404
/// when no recorder is installed.
pub async fn render(State(state): State<GatewayState>) -> Response {
    let Some(handle) = &state.metrics else {
        return StatusCode::NOT_FOUND.into_response();
    };
    for handled in traffic::all() {
        metrics::counter!("bazaar_service_messages_handled_total", "service" => handled.service())
            .absolute(handled.total());
    }
    ([(header::CONTENT_TYPE, CONTENT_TYPE)], handle.render()).into_response()
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
