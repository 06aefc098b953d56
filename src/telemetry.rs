//! Structured logs: `tracing` events to stderr, filtered by `RUST_LOG`, and
//! the trace layer that carries one trace id through every node a request
//! touches (see [`bazaar_cluster::trace`]).
//!
//! The default filter keeps Bazaar at `info` and ractor's own chatter at
//! `warn`. `RUST_LOG` filters only what is printed: trace contexts are
//! recorded whatever it says. Each line inside a request shows its trace,
//! e.g. `http{otel.name="POST /api/checkout" … trace_id=4bf92f35…}:remote{…}`.
//! Built with `--features otlp`, the trace spans are also exported over
//! OTLP/HTTP when `OTEL_EXPORTER_OTLP_ENDPOINT` is set (see [`otlp`]).

use bazaar_cluster::trace::{self, TraceLayer};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer};

/// Filter used when `RUST_LOG` is not set.
const DEFAULT_FILTER: &str = "info,ractor=warn,ractor_cluster=warn";

#[cfg(feature = "otlp")]
pub mod otlp;
pub mod process;

/// What must live as long as the process logs: with the `otlp` feature,
/// the exporter, flushed when this is dropped.
pub struct Telemetry {
    #[cfg(feature = "otlp")]
    _otlp: Option<otlp::Guard>,
}

/// Installs the global subscriber of node `node`; keep the result until
/// the process ends.
#[must_use = "dropping it stops the trace exporter"]
pub fn init(node: &str) -> Telemetry {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let logs = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true)
        .with_filter(filter);
    let registry = tracing_subscriber::registry()
        .with(logs)
        .with(TraceLayer.with_filter(trace::filter()));
    #[cfg(feature = "otlp")]
    {
        let (layer, guard) = match otlp::layer(node) {
            Some((layer, guard)) => (Some(layer), Some(guard)),
            None => (None, None),
        };
        let _ = registry.with(layer).try_init();
        Telemetry { _otlp: guard }
    }
    #[cfg(not(feature = "otlp"))]
    {
        let _ = node;
        let _ = registry.try_init();
        Telemetry {}
    }
}
