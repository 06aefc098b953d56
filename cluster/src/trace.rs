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
}

impl TraceContext {
    /// A new trace.
    pub fn root() -> Self {
        Self {
            trace_id: rand::random::<u128>().max(1),
            span_id: rand::random::<u64>().max(1),
        }
    }

    /// A new piece of work in the same trace.
    pub fn child(self) -> Self {
        Self {
            trace_id: self.trace_id,
            span_id: rand::random::<u64>().max(1),
        }
    }

    /// The W3C `traceparent` header value.
    pub fn traceparent(self) -> String {
        format!("00-{:032x}-{:016x}-01", self.trace_id, self.span_id)
    }

    /// Parses a W3C `traceparent` (version 00); `None` if malformed or
    /// all-zero.
    pub fn from_traceparent(value: &str) -> Option<Self> {
        let mut parts = value.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        if parts.next().is_some() || version != "00" || flags.len() != 2 {
            return None;
        }
        if trace.len() != 32 || span.len() != 16 {
            return None;
        }
        let trace_id = u128::from_str_radix(trace, 16).ok()?;
        let span_id = u64::from_str_radix(span, 16).ok()?;
        (trace_id != 0 && span_id != 0).then_some(Self { trace_id, span_id })
    }

    fn trace_hex(self) -> String {
        format!("{:032x}", self.trace_id)
    }

    fn span_hex(self) -> String {
        format!("{:016x}", self.span_id)
    }
}

/// An exporter of spans to a tracing backend, if the process installed one
/// (the `otlp` feature of the `bazaar` binary): it gives the spans their
/// parents from other processes and names the current span in its own ids.
#[derive(Debug, Clone, Copy)]
pub struct Exporter {
    /// Makes `span` a child of `parent`, which lives in another process
    /// (or only in a client's `traceparent`).
    pub set_parent: fn(&Span, TraceContext),
    /// The current span in the exporter's ids.
    pub current: fn() -> Option<TraceContext>,
}

static EXPORTER: OnceLock<Exporter> = OnceLock::new();

/// Installs the process's exporter; only the first call counts.
pub fn install_exporter(exporter: Exporter) {
    let _ = EXPORTER.set(exporter);
}

/// The span of one HTTP request: a child of `parent` (from the client's
/// `traceparent`) or a new trace. Returns the span and its context.
pub fn request_span(
    method: &str,
    path: &str,
    parent: Option<TraceContext>,
) -> (Span, TraceContext) {
    let context = parent.map_or_else(TraceContext::root, TraceContext::child);
    let span = tracing::info_span!(
        target: TARGET,
        parent: None,
        "http",
        trace_id = %context.trace_hex(),
        span_id = %context.span_hex(),
        %method,
        %path,
    );
    if let Some(exporter) = EXPORTER.get() {
        (exporter.set_parent)(&span, parent.unwrap_or(context));
    }
    (span, context)
}

/// The span a message from another node is delivered in: a child of the
/// sender's context, a root in this process.
pub fn remote_span(protocol: &'static str, sender: TraceContext) -> Span {
    let context = sender.child();
    let span = tracing::info_span!(
        target: TARGET,
        parent: None,
        "remote",
        trace_id = %context.trace_hex(),
        span_id = %context.span_hex(),
        parent_id = %sender.span_hex(),
        protocol,
    );
    if let Some(exporter) = EXPORTER.get() {
        (exporter.set_parent)(&span, sender);
    }
    span
}

/// The trace the current span belongs to, if any (in the exporter's ids
/// when one is installed, so that the receiving side's spans link to the
/// sender's exported span).
pub fn current() -> Option<TraceContext> {
    if let Some(exporter) = EXPORTER.get() {
        return (exporter.current)();
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
            span.extensions_mut()
                .insert(TraceContext { trace_id, span_id });
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
}

impl Visit for Fields {
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        // Only the two ids are read; other fields (method, path, …) are
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

    #[test]
    fn traceparent_round_trips_and_rejects_garbage() {
        let context = TraceContext::root();
        assert_eq!(
            TraceContext::from_traceparent(&context.traceparent()),
            Some(context)
        );
        for bad in [
            "",
            "00-0-0-01",
            "01-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01",
            "00-00000000000000000000000000000000-b7ad6b7169203331-01",
            "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01-extra",
            "00-0af7651916cd43dd8448eb211c80319g-b7ad6b7169203331-01",
        ] {
            assert_eq!(TraceContext::from_traceparent(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn the_context_is_found_from_nested_spans_and_not_outside() {
        let subscriber = Registry::default().with(TraceLayer.with_filter(filter()));
        tracing::subscriber::with_default(subscriber, || {
            assert_eq!(current(), None);
            let parent = TraceContext::root();
            let (span, context) = request_span("GET", "/x", Some(parent));
            assert_eq!(context.trace_id, parent.trace_id);
            assert_ne!(context.span_id, parent.span_id);
            let _in_request = span.enter();
            assert_eq!(current(), Some(context));
            let inner = tracing::info_span!("inner");
            let _in_inner = inner.enter();
            assert_eq!(current(), Some(context));
            let remote = remote_span("p", context);
            let _in_remote = remote.enter();
            let found = current().unwrap();
            assert_eq!(found.trace_id, context.trace_id);
            assert_ne!(found.span_id, context.span_id);
        });
    }
}
