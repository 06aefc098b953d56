//! The demo's report: a timeline as it happens, and the numbers at the end
//! (a table, or JSON).

use std::time::{Duration, Instant};

use serde::Serialize;

/// Prints timeline lines, `[+  3.012s] what happened`, unless quiet.
pub struct Timeline {
    start: Instant,
    quiet: bool,
}

impl Timeline {
    /// A timeline from now; `quiet` for JSON output.
    pub fn new(start: Instant, quiet: bool) -> Self {
        Self { start, quiet }
    }

    /// Prints one line stamped with the time since the start.
    pub fn say(&self, message: impl std::fmt::Display) {
        if !self.quiet {
            println!("[+{:>7.3}s] {message}", self.start.elapsed().as_secs_f64());
        }
    }
}

/// Milliseconds of a duration, for the report.
pub fn ms(duration: Duration) -> u64 {
    duration.as_millis() as u64
}

/// What the demo measured.
#[derive(Debug, Clone, Serialize)]
pub struct DemoReport {
    /// Nodes in the cluster.
    pub nodes: usize,
    /// The node killed: the checkout owner at the time.
    pub killed: String,
    /// The owner's epoch before the kill.
    pub old_epoch: u64,
    /// The owner after failover.
    pub new_owner: Option<String>,
    /// Its epoch.
    pub new_epoch: Option<u64>,
    /// Kill → a survivor reports the killed node down.
    pub detect_ms: Option<u64>,
    /// Kill → a survivor reports the new owner.
    pub failover_ms: Option<u64>,
    /// Kill → the first order acknowledged after it.
    pub first_ack_after_kill_ms: Option<u64>,
    /// Longest time without any acknowledged order during the run.
    pub max_ack_gap_ms: u64,
    /// Kill → the restarted node is ready and follows the new owner.
    pub rejoin_ms: Option<u64>,
    /// Orders acknowledged before the kill.
    pub orders_before: usize,
    /// Orders acknowledged after it.
    pub orders_after: usize,
    /// Order attempts that failed and were retried with the same key.
    pub order_retries: u64,
    /// Product views and searches served.
    pub reads_ok: u64,
    /// Reads that failed through gateways of nodes that stayed up.
    pub reads_failed: u64,
    /// Reads that failed through the killed node's gateway (expected).
    pub reads_failed_on_killed_node: u64,
    /// Acknowledged orders missing from the shop's orders.
    pub lost_orders: usize,
    /// Acknowledged keys present more than once.
    pub duplicate_orders: usize,
    /// No order lost or duplicated, failover happened, the node came back.
    pub all_clear: bool,
}

fn or_dash(value: Option<u64>, unit: &str) -> String {
    value.map_or("-".to_string(), |value| format!("{value} {unit}"))
}

impl DemoReport {
    /// The summary table.
    pub fn render(&self) -> String {
        let rows = [
            (
                "killed (checkout owner)",
                format!("{} (epoch {})", self.killed, self.old_epoch),
            ),
            (
                "new owner",
                format!(
                    "{} (epoch {})",
                    self.new_owner.as_deref().unwrap_or("-"),
                    self.new_epoch.map_or("-".into(), |e| e.to_string())
                ),
            ),
            ("time to detect", or_dash(self.detect_ms, "ms")),
            ("time to fail over", or_dash(self.failover_ms, "ms")),
            (
                "first order after the kill",
                or_dash(self.first_ack_after_kill_ms, "ms"),
            ),
            (
                "longest gap between orders",
                format!("{} ms", self.max_ack_gap_ms),
            ),
            ("time to rejoin", or_dash(self.rejoin_ms, "ms")),
            (
                "orders acknowledged",
                format!(
                    "{} before, {} after the kill",
                    self.orders_before, self.orders_after
                ),
            ),
            ("order attempts retried", self.order_retries.to_string()),
            ("reads served", self.reads_ok.to_string()),
            (
                "reads failed",
                format!(
                    "{} (plus {} through the killed node)",
                    self.reads_failed, self.reads_failed_on_killed_node
                ),
            ),
            (
                "orders lost / duplicated",
                format!("{} / {}", self.lost_orders, self.duplicate_orders),
            ),
        ];
        let mut out = String::new();
        for (label, value) in rows {
            out.push_str(&format!("  {label:<28} {value}\n"));
        }
        out.push_str(if self.all_clear {
            "  all clear: every acknowledged order is in the shop exactly once\n"
        } else {
            "  NOT CLEAR: see the numbers above\n"
        });
        out
    }
}
