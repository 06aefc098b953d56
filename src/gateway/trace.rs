//! Every request runs in a trace span: a child of the caller's W3C
//! `traceparent` header when it sends one, else a new trace. The response
//! carries the request's own `traceparent`, so a client can find every log
//! line of its request, on every node, by the trace id.

use axum::extract::Request;
use axum::http::HeaderValue;
use axum::middleware::Next;
use axum::response::Response;
use bazaar_cluster::trace::{self, TraceContext};
use tracing::Instrument;

/// The W3C trace context header.
pub const TRACEPARENT: &str = "traceparent";

/// Runs the rest of the stack inside the request's trace span.
pub async fn traced(request: Request, next: Next) -> Response {
    let parent = request
        .headers()
        .get(TRACEPARENT)
        .and_then(|value| value.to_str().ok())
        .and_then(TraceContext::from_traceparent);
    let (span, context) =
        trace::request_span(request.method().as_str(), request.uri().path(), parent);
    let mut response = next.run(request).instrument(span).await;
    if let Ok(value) = HeaderValue::from_str(&context.traceparent()) {
        response.headers_mut().insert(TRACEPARENT, value);
    }
    response
}
