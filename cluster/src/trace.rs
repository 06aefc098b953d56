//! Traces across nodes: one trace id from the gateway request that starts
//! it through every actor hop on every node.
//!
//! A trace is a [`TraceContext`] (128-bit trace id, 64-bit span id, the
//! W3C `traceparent` layout). It lives in `tracing` spans of the target
//! [`TARGET`], whose `trace_id` and `span_id` fields [`TraceLayer`] records
//! into the span, so that:
//! - inside a node, ractor's span propagation runs every actor handler in
//!   the span that was current when its message was sent, so the context
//!   follows local messages by itself;
//! - across nodes, [`current`] reads the context where a remote message is
//!   sent, the lane carries it in the entry, and the receiving node
//!   delivers the message inside a [`remote_span`] of the same trace.
//!
//! Every log line written inside such a span shows the trace id, so
//! `grep <trace id> */node.log` follows one request through the cluster.
//! The layer keeps the spans alive whatever `RUST_LOG` says (it filters
//! the log output, not the propagation).

use std::fmt;
use std::sync::OnceLock;

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Metadata, Span, Subscriber};
use tracing_subscriber::filter::{filter_fn, FilterFn};
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

/// Target of the spans that carry a trace.
pub const TARGET: &str = "bazaar::trace";

/// Where one piece of work sits in its trace.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TraceContext {
    /// The whole trace.
    pub trace_id: u128,
    /// This piece of work.
    pub span_id: u64,
    /// The W3C `sampled` flag: whether the trace is recorded (exported).
    /// It is the caller's to decide, and follows the trace across nodes.
    pub sampled: bool,
}

impl TraceContext {
    /// A new trace, sampled.
    pub fn root() -> Self {
        Self {
            trace_id: rand::random::<u128>().max(1),
            span_id: rand::random::<u64>().max(1),
            sampled: true,
        }
    }

    /// A new piece of work in the same trace.
    pub fn child(self) -> Self {
        Self {
            span_id: rand::random::<u64>().max(1),
            ..self
        }
    }

    /// The W3C `traceparent` header value (version 00).
    pub fn traceparent(self) -> String {
        let flags = u8::from(self.sampled);
        format!(
            "00-{:032x}-{:016x}-{flags:02x}",
            self.trace_id, self.span_id
        )
    }

    /// Parses a W3C `traceparent`; `None` if it is invalid. Version 00 is
    /// exactly four fields; a later version may append fields after a
    /// `-`, which are ignored (only the first four are read); version ff
    /// is invalid. Ids are lowercase hex and not all zero.
    pub fn from_traceparent(value: &str) -> Option<Self> {
        let value = value.trim_matches([' ', '\t']);
        let head = value.get(..VERSION_00_LEN)?;
        let rest = &value[VERSION_00_LEN..];
        let fields: Vec<&str> = head.split('-').collect();
        let [version, trace, span, flags] = fields[..] else {
            return None;
        };
        let hex = [(version, 2), (trace, 32), (span, 16), (flags, 2)];
        if !hex.iter().all(|(text, len)| is_lower_hex(text, *len)) {
            return None;
        }
        let version = u8::from_str_radix(version, 16).ok()?;
        let future_tail = version > 0 && rest.starts_with('-');
        if version == 0xff || !(rest.is_empty() || future_tail) {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let span_id = u64::from_str_radix(span, 16).ok()?;
        let flags = u8::from_str_radix(flags, 16).ok()?;
        (trace_id != 0 && span_id != 0).then_some(Self {
            trace_id,
            span_id,
            sampled: flags & SAMPLED_FLAG != 0,
        })
    }

    fn trace_hex(self) -> String {
        format!("{:032x}", self.trace_id)
    }

    fn span_hex(self) -> String {
        format!("{:016x}", self.span_id)
    }
}

/// Length of a version-00 `traceparent`: `00-` ‖ 32 ‖ `-` ‖ 16 ‖ `-` ‖ 2.
const VERSION_00_LEN: usize = 55;
/// The `sampled` bit of the trace flags.
const SAMPLED_FLAG: u8 = 0x01;

/// Whether `text` is exactly `len` lowercase hex digits.
fn is_lower_hex(text: &str, len: usize) -> bool {
    text.len() == len
        && text
            .bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// An exporter of spans to a tracing backend, if the process installed one
/// (the `otlp` feature of the `bazaar` binary): it gives the spans their
/// parents from other processes and names the current span in its own ids.
#[derive(Debug, Clone, Copy)]
pub struct Exporter {
    /// Makes `span` a child of `parent`, which lives in another process
    /// (or only in a client's `traceparent`), with the caller's W3C
    /// `tracestate` if it sent one.
    pub set_parent: fn(&Span, TraceContext, Option<&str>),
    /// The current span in the exporter's ids.
    pub current: fn() -> Option<TraceContext>,
}

static EXPORTER: OnceLock<Exporter> = OnceLock::new();

/// Installs the process's exporter; only the first call counts.
pub fn install_exporter(exporter: Exporter) {
    let _ = EXPORTER.set(exporter);
}

/// What the gateway knows of an HTTP request when its span starts.
#[derive(Debug, Clone, Copy)]
pub struct HttpRequest<'a> {
    /// The method, e.g. `GET`.
    pub method: &'a str,
    /// The matched route template (`/api/products/{id}`); `None` when no
    /// route matched.
    pub route: Option<&'a str>,
    /// The raw path.
    pub path: &'a str,
    /// The caller's `traceparent`, if valid.
    pub parent: Option<TraceContext>,
    /// The caller's `tracestate`, passed on to the exporter.
    pub tracestate: Option<&'a str>,
}

/// The server span of one HTTP request, named as OpenTelemetry's HTTP
/// conventions say (`GET /api/products/{id}`, or just the method when no
/// route matched): a child of the caller's `traceparent` or a new trace.
/// Returns the span and its context; record the answer with
/// [`record_status`].
pub fn request_span(request: HttpRequest<'_>) -> (Span, TraceContext) {
    let context = request
        .parent
        .map_or_else(TraceContext::root, TraceContext::child);
    let name = match request.route {
        Some(route) => format!("{} {route}", request.method),
        None => request.method.to_string(),
    };
    let span = tracing::info_span!(
        target: TARGET,
        parent: None,
        "http",
        otel.name = name.as_str(),
        otel.kind = "server",
        trace_id = %context.trace_hex(),
        span_id = %context.span_hex(),
        sampled = context.sampled,
        http.request.method = request.method,
        http.route = request.route,
        url.path = request.path,
        http.response.status_code = tracing::field::Empty,
        otel.status_code = tracing::field::Empty,
    );
    if let Some(exporter) = EXPORTER.get() {
        let parent = request.parent.unwrap_or(context);
        (exporter.set_parent)(&span, parent, request.tracestate);
    }
    (span, context)
}

/// Records the response status on a [`request_span`]; a 5xx marks the
/// span as an error (a 4xx is the client's, not the server's).
pub fn record_status(span: &Span, status: u16) {
    span.record("http.response.status_code", status);
    if status >= 500 {
        span.record("otel.status_code", "ERROR");
    }
}

/// How a message from another node is delivered: a call waits for its
/// answer, a cast does not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// A request with a reply: an RPC server span.
    Call,
    /// A one-way message: a consumer span.
    Cast,
}

impl Delivery {
    /// The OpenTelemetry span kind.
    fn span_kind(self) -> &'static str {
        match self {
            Self::Call => "server",
            Self::Cast => "consumer",
        }
    }
}

/// The span a message from another node is delivered in, named after its
/// protocol: a child of the sender's context, a root in this process.
pub fn remote_span(protocol: &'static str, delivery: Delivery, sender: TraceContext) -> Span {
    let context = sender.child();
    let span = tracing::info_span!(
        target: TARGET,
        parent: None,
        "remote",
        otel.name = protocol,
        otel.kind = delivery.span_kind(),
        trace_id = %context.trace_hex(),
        span_id = %context.span_hex(),
        sampled = context.sampled,
        parent_id = %sender.span_hex(),
        rpc.system = "bazaar",
        rpc.service = protocol,
    );
    if let Some(exporter) = EXPORTER.get() {
        (exporter.set_parent)(&span, sender, None);
    }
    span
}

/// The trace the current span belongs to, if any (in the exporter's ids
/// when one is installed and records the span, so that the receiving
/// side's spans link to the sender's exported span).
pub fn current() -> Option<TraceContext> {
    if let Some(found) = EXPORTER.get().and_then(|exporter| (exporter.current)()) {
        return Some(found);
    }
    let span = Span::current();
    span.id()?;
    span.with_subscriber(|(id, dispatch)| {
        let registry = dispatch.downcast_ref::<Registry>()?;
        let data = registry.span(id)?;
        data.scope()
            .find_map(|span| span.extensions().get::<TraceContext>().copied())
    })
    .flatten()
}

/// Records the context of every trace span; install it with [`filter`].
pub struct TraceLayer;

impl<S> Layer<S> for TraceLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        let (Some(trace_id), Some(span_id)) = (fields.trace_id, fields.span_id) else {
            return;
        };
        if let Some(span) = ctx.span(id) {
            span.extensions_mut().insert(TraceContext {
                trace_id,
                span_id,
                sampled: fields.sampled.unwrap_or(true),
            });
        }
    }
}

/// The spans [`TraceLayer`] looks at: those of [`TARGET`].
pub fn filter() -> FilterFn<fn(&Metadata<'_>) -> bool> {
    filter_fn(is_trace_span)
}

fn is_trace_span(metadata: &Metadata<'_>) -> bool {
    metadata.is_span() && metadata.target() == TARGET
}

#[derive(Default)]
struct Fields {
    trace_id: Option<u128>,
    span_id: Option<u64>,
    sampled: Option<bool>,
}

impl Visit for Fields {
    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "sampled" {
            self.sampled = Some(value);
        }
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // Only the ids are read (and `sampled`, a bool); other fields are
        // not formatted at all.
        match field.name() {
            "trace_id" => self.trace_id = u128::from_str_radix(&format!("{value:?}"), 16).ok(),
            "span_id" => self.span_id = u64::from_str_radix(&format!("{value:?}"), 16).ok(),
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use tracing_subscriber::layer::SubscriberExt;

    use super::*;

    const TRACE: &str = "0af7651916cd43dd8448eb211c80319c";
    const SPAN: &str = "b7ad6b7169203331";

    fn parsed(value: &str) -> Option<TraceContext> {
        TraceContext::from_traceparent(value)
    }

    #[test]
    fn traceparent_round_trips_with_its_sampled_flag() {
        for sampled in [true, false] {
            let context = TraceContext {
                sampled,
                ..TraceContext::root()
            };
            assert_eq!(parsed(&context.traceparent()), Some(context));
            assert_eq!(context.child().sampled, sampled);
        }
        let unsampled = parsed(&format!("00-{TRACE}-{SPAN}-00")).unwrap();
        assert!(!unsampled.sampled);
        assert!(unsampled.traceparent().ends_with("-00"));
        // Flags other than `sampled` are read but not passed on.
        let other_flags = parsed(&format!("00-{TRACE}-{SPAN}-09")).unwrap();
        assert!(other_flags.sampled);
        assert!(other_flags.traceparent().ends_with("-01"));
    }

    #[test]
    fn future_versions_are_read_by_their_first_four_fields() {
        let expected = TraceContext {
            trace_id: u128::from_str_radix(TRACE, 16).unwrap(),
            span_id: u64::from_str_radix(SPAN, 16).unwrap(),
            sampled: true,
        };
        for future in [
            format!("01-{TRACE}-{SPAN}-01"),
            format!("cc-{TRACE}-{SPAN}-01-what-the-future-will-be-like"),
            format!("fe-{TRACE}-{SPAN}-01-"),
        ] {
            assert_eq!(parsed(&future), Some(expected), "{future}");
        }
    }

    #[test]
    fn invalid_traceparents_are_rejected() {
        for bad in [
            String::new(),
            "00-0-0-01".to_string(),
            // Version ff is invalid; version 00 has exactly four fields.
            format!("ff-{TRACE}-{SPAN}-01"),
            format!("00-{TRACE}-{SPAN}-01-extra"),
            // A future version's extra fields follow a dash.
            format!("01-{TRACE}-{SPAN}-01x"),
            // All-zero ids, uppercase or non-hex digits, wrong lengths.
            format!("00-{}-{SPAN}-01", "0".repeat(32)),
            format!("00-{TRACE}-{}-01", "0".repeat(16)),
            format!("00-{}-{SPAN}-01", TRACE.to_uppercase()),
            format!("00-{TRACE}-{SPAN}-0G"),
            format!("00-{}g-{SPAN}-01", &TRACE[..31]),
            format!("00-{TRACE}-{SPAN}1-01"),
            format!("0-{TRACE}-{SPAN}-01"),
        ] {
            assert_eq!(parsed(&bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_context_is_found_from_nested_spans_and_not_outside() {
        let subscriber = Registry::default().with(TraceLayer.with_filter(filter()));
        tracing::subscriber::with_default(subscriber, || {
            assert_eq!(current(), None);
            let parent = TraceContext::root();
            let (span, context) = request_span(HttpRequest {
                method: "GET",
                route: Some("/x"),
                path: "/x",
                parent: Some(parent),
                tracestate: None,
            });
            assert_eq!(context.trace_id, parent.trace_id);
            assert_ne!(context.span_id, parent.span_id);
            let _in_request = span.enter();
            assert_eq!(current(), Some(context));
            let inner = tracing::info_span!("inner");
            let _in_inner = inner.enter();
            assert_eq!(current(), Some(context));
            let remote = remote_span("p", Delivery::Call, context);
            let _in_remote = remote.enter();
            let found = current().unwrap();
            assert_eq!(found.trace_id, context.trace_id);
            assert_ne!(found.span_id, context.span_id);
            drop(_in_remote);
            let unsampled = TraceContext {
                sampled: false,
                ..parent
            };
            let remote = remote_span("p", Delivery::Cast, unsampled);
            let _in_unsampled = remote.enter();
            assert_eq!(current().map(|found| found.sampled), Some(false));
        });
    }
}
