//! Every request runs in a server span named after its route
//! (`GET /api/products/{id}`): a child of the caller's W3C `traceparent`
//! header when it sends a valid one, else a new trace. The caller's
//! `sampled` flag is kept, and its `tracestate` is passed on to the
//! exporter and echoed. The response carries the request's own
//! `traceparent`, so a client can find every log line of its request, on
//! every node, by the trace id.

use axum::extract::{MatchedPath, Request};
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use bazaar_cluster::trace::{self, HttpRequest, TraceContext};
use tracing::{Instrument, Span};

/// The W3C trace context header.
pub const TRACEPARENT: &str = "traceparent";
/// The W3C header of vendor-specific trace data, passed on untouched.
pub const TRACESTATE: &str = "tracestate";
/// Longest `tracestate` passed on: 32 members of up to 256 bytes would be
/// more, but the W3C spec lets a vendor cut at 512.
const MAX_TRACESTATE_BYTES: usize = 512;

/// Runs the rest of the stack inside the request's trace span.
pub async fn traced(request: Request, next: Next) -> Response {
    let (span, context, tracestate) = start(&request);
    let mut response = next.run(request).instrument(span.clone()).await;
    trace::record_status(&span, response.status().as_u16());
    let headers = response.headers_mut();
    if let Ok(value) = HeaderValue::from_str(&context.traceparent()) {
        headers.insert(TRACEPARENT, value);
    }
    if let Some(value) = tracestate.and_then(|state| HeaderValue::from_str(&state).ok()) {
        headers.insert(TRACESTATE, value);
    }
    response
}

/// The request's span, its context, and the `tracestate` to pass on.
fn start(request: &Request) -> (Span, TraceContext, Option<String>) {
    let header = |name| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
    };
    let parent = header(TRACEPARENT).and_then(TraceContext::from_traceparent);
    // Without a valid parent the trace is new: the caller's state is not its.
    let tracestate = header(TRACESTATE)
        .filter(|state| parent.is_some() && state.len() <= MAX_TRACESTATE_BYTES)
        .map(str::to_string);
    let route = request
        .extensions()
        .get::<MatchedPath>()
        .map(MatchedPath::as_str);
    let (span, context) = trace::request_span(HttpRequest {
        method: request.method().as_str(),
        route,
        path: request.uri().path(),
        parent,
        tracestate: tracestate.as_deref(),
    });
    (span, context, tracestate)
}
