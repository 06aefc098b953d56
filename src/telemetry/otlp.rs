//! The optional OTLP exporter (cargo feature `otlp`): when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` is set, every trace span (the gateway's
//! `http` spans and the `remote` spans a node delivers messages in) is
//! exported over OTLP/HTTP (protobuf) in batches, with its parent from the
//! caller's `traceparent` or from the node that sent the message, so a
//! backend shows one trace across nodes. A caller's unsampled trace is not
//! exported. The standard `OTEL_*` variables configure the exporter
//! (endpoint, headers, batch delay) and the resource: `service.name`
//! defaults to `bazaar` and `service.instance.id` to the node's name, and
//! `OTEL_RESOURCE_ATTRIBUTES`, then `OTEL_SERVICE_NAME`, override them.

use bazaar_cluster::trace::{self, Exporter, TraceContext};
use opentelemetry::trace::{
    SpanContext, SpanId, TraceContextExt, TraceFlags, TraceId, TraceState, TracerProvider,
};
use opentelemetry::KeyValue;
use opentelemetry_sdk::resource::{EnvResourceDetector, TelemetryResourceDetector};
use opentelemetry_sdk::trace::SdkTracerProvider;
use opentelemetry_sdk::Resource;
use tracing::{Span, Subscriber};
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

/// The environment variable that turns the exporter on.
pub const ENDPOINT_ENV: &str = "OTEL_EXPORTER_OTLP_ENDPOINT";

/// Flushes and stops the exporter when dropped.
pub struct Guard(SdkTracerProvider);

impl Drop for Guard {
    fn drop(&mut self) {
        if let Err(err) = self.0.shutdown() {
            eprintln!("otlp exporter did not shut down cleanly: {err}");
        }
    }
}

/// Resource attribute naming the node.
const SERVICE_INSTANCE_ID: &str = "service.instance.id";
/// Default `service.name`.
const SERVICE_NAME: &str = "bazaar";

/// The exporting layer of node `node`, if `OTEL_EXPORTER_OTLP_ENDPOINT`
/// is set.
pub fn layer<S>(node: &str) -> Option<(impl Layer<S>, Guard)>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    std::env::var_os(ENDPOINT_ENV)?;
    let exporter = match opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .build()
    {
        Ok(exporter) => exporter,
        Err(err) => {
            eprintln!("cannot start the otlp exporter: {err}");
            return None;
        }
    };
    let provider = SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(resource(node))
        .build();
    let tracer = provider.tracer("bazaar");
    trace::install_exporter(Exporter {
        set_parent,
        current,
    });
    let layer = tracing_opentelemetry::layer()
        .with_tracer(tracer)
        .with_filter(trace::filter());
    Some((layer, Guard(provider)))
}

/// The node's resource: later sources win, so the operator's variables
/// override Bazaar's defaults.
fn resource(node: &str) -> Resource {
    let mut builder = Resource::builder_empty()
        .with_detector(Box::new(TelemetryResourceDetector))
        .with_attributes([
            KeyValue::new("service.name", SERVICE_NAME),
            KeyValue::new(SERVICE_INSTANCE_ID, node.to_string()),
        ])
        .with_detector(Box::new(EnvResourceDetector::new()));
    if let Some(service) = std::env::var("OTEL_SERVICE_NAME")
        .ok()
        .filter(|name| !name.is_empty())
    {
        builder = builder.with_service_name(service);
    }
    builder.build()
}

fn set_parent(span: &Span, parent: TraceContext, tracestate: Option<&str>) {
    let flags = match parent.sampled {
        true => TraceFlags::SAMPLED,
        false => TraceFlags::default(),
    };
    let state = tracestate
        .and_then(|state| state.parse::<TraceState>().ok())
        .unwrap_or_default();
    let context = SpanContext::new(
        TraceId::from_bytes(parent.trace_id.to_be_bytes()),
        SpanId::from_bytes(parent.span_id.to_be_bytes()),
        flags,
        true,
        state,
    );
    let _ = span.set_parent(opentelemetry::Context::new().with_remote_span_context(context));
}

fn current() -> Option<TraceContext> {
    let context = Span::current().context();
    let span = context.span();
    let span_context = span.span_context();
    span_context.is_valid().then(|| TraceContext {
        trace_id: u128::from_be_bytes(span_context.trace_id().to_bytes()),
        span_id: u64::from_be_bytes(span_context.span_id().to_bytes()),
        sampled: span_context.is_sampled(),
    })
}
