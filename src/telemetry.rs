//! Structured logs: `tracing` events to stderr, filtered by `RUST_LOG`.
//!
//! The default filter keeps Bazaar at `info` and ractor's own chatter at
//! `warn`.

use tracing_subscriber::EnvFilter;

/// Filter used when `RUST_LOG` is not set.
const DEFAULT_FILTER: &str = "info,ractor=warn,ractor_cluster=warn";

/// Installs the global subscriber; `node` names the process in every line.
pub fn init() {
    let filter =
        EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_target(true)
        .try_init();
}
