//! What one measurement records, and the process meters it reads.
//!
//! - CPU time: user + system time of the whole process (every thread) from
//!   `getrusage(RUSAGE_SELF)`, read before and after a measurement.
//! - Peak RSS: `VmHWM` from `/proc/self/status`. Before each measurement
//!   the high-water mark is reset (`5` to `/proc/self/clear_refs`) after
//!   returning freed heap to the system (`malloc_trim`), so a figure is the
//!   peak of that measurement, not of the process's life. Where the reset
//!   is refused, it is the peak of the life so far.
//! - Latency: an HDR histogram of nanoseconds (3 significant digits),
//!   reported in microseconds.

use std::time::Duration;

use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Highest latency the histogram tracks, in nanoseconds (larger values are clamped).
const MAX_LATENCY_NS: u64 = 120_000_000_000;

/// User + system CPU time this process has used so far.
pub fn cpu_time() -> Duration {
    use nix::sys::resource::{getrusage, UsageWho};
    use nix::sys::time::TimeValLike;
    match getrusage(UsageWho::RUSAGE_SELF) {
        Ok(usage) => {
            let micros =
                usage.user_time().num_microseconds() + usage.system_time().num_microseconds();
            Duration::from_micros(micros.max(0) as u64)
        }
        Err(err) => {
            tracing::warn!(error = %err, "getrusage failed");
            Duration::ZERO
        }
    }
}

/// Peak resident set size of this process, in KiB, since start or the last reset.
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    parse_vm_hwm(&status)
}

/// Returns freed heap to the system and resets the peak RSS to the current
/// RSS; false if the kernel refused the reset.
pub fn reset_peak_rss() -> bool {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks glibc's own heap; it has no
    // preconditions and is safe to call from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
    std::fs::write("/proc/self/clear_refs", "5").is_ok()
}

/// The `VmHWM` line of a `/proc/<pid>/status` text, in KiB.
pub fn parse_vm_hwm(status: &str) -> Option<u64> {
    let line = status.lines().find(|line| line.starts_with("VmHWM:"))?;
    let mut fields = line["VmHWM:".len()..].split_whitespace();
    let value: u64 = fields.next()?.parse().ok()?;
    match fields.next() {
        Some("kB") | None => Some(value),
        Some(_) => None,
    }
}

/// What a process reports about itself: the peer sends one per `mark`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ProcessUsage {
    /// User + system CPU time so far, in microseconds.
    pub cpu_us: u64,
    /// Peak RSS since the last reset, in KiB (0 if unknown).
    pub peak_rss_kb: u64,
}

impl ProcessUsage {
    /// This process, now.
    pub fn now() -> Self {
        Self {
            cpu_us: cpu_time().as_micros() as u64,
            peak_rss_kb: peak_rss_kb().unwrap_or(0),
        }
    }
}

/// Round-trip latencies of one measurement.
#[derive(Debug, Clone)]
pub struct Latencies(Histogram<u64>);

impl Default for Latencies {
    fn default() -> Self {
        Self::new()
    }
}

impl Latencies {
    /// An empty record.
    pub fn new() -> Self {
        Self(
            Histogram::new_with_bounds(1, MAX_LATENCY_NS, 3)
                .expect("constant histogram bounds are valid"),
        )
    }

    /// Records one round trip.
    pub fn record(&mut self, latency: Duration) {
        let nanos = (latency.as_nanos() as u64).clamp(1, MAX_LATENCY_NS);
        self.0.saturating_record(nanos);
    }

    /// Adds every value of `other`.
    pub fn merge(&mut self, other: &Latencies) {
        // Same bounds on both sides: adding cannot fail.
        let _ = self.0.add(&other.0);
    }

    /// Round trips recorded.
    pub fn len(&self) -> u64 {
        self.0.len()
    }

    /// True if nothing was recorded.
    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }

    /// p50, p99 and p99.9, or `None` if nothing was recorded.
    pub fn percentiles(&self) -> Option<Percentiles> {
        if self.is_empty() {
            return None;
        }
        let at = |quantile: f64| self.0.value_at_quantile(quantile) as f64 / 1_000.0;
        Some(Percentiles {
            p50_us: at(0.50),
            p99_us: at(0.99),
            p999_us: at(0.999),
        })
    }
}

/// Latency percentiles, in microseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Percentiles {
    /// Median.
    pub p50_us: f64,
    /// 99th percentile.
    pub p99_us: f64,
    /// 99.9th percentile.
    pub p999_us: f64,
}

/// One run of one measurement.
#[derive(Debug, Clone, PartialEq)]
pub struct Sample {
    /// Messages received (casts) or round trips completed (calls).
    pub messages: u64,
    /// Calls that failed or timed out, and casts that never arrived.
    pub errors: u64,
    /// From the first send until the receiver had everything.
    pub elapsed: Duration,
    /// For casts: from the first send until the sender had enqueued the last.
    pub enqueued: Option<Duration>,
    /// Latency percentiles of calls.
    pub latencies: Option<Percentiles>,
    /// CPU time of this process (and of the peer, for remote workloads).
    pub cpu: Duration,
    /// Peak RSS of this process, in KiB.
    pub peak_rss_kb: u64,
    /// Peak RSS of the peer, in KiB, for remote workloads.
    pub peer_peak_rss_kb: Option<u64>,
    /// Casts refused as overloaded (`frozen-peer` only).
    pub refused: Option<u64>,
    /// Why the measurement ended early, if it did.
    pub failure: Option<String>,
}

impl Sample {
    /// Messages per second.
    pub fn rate(&self) -> f64 {
        let secs = self.elapsed.as_secs_f64();
        if secs <= 0.0 {
            return 0.0;
        }
        self.messages as f64 / secs
    }

    /// For casts: messages per second the sender enqueued; far above
    /// [`Sample::rate`], it shows the sender running ahead of the receiver.
    pub fn enqueue_rate(&self) -> Option<f64> {
        let secs = self.enqueued?.as_secs_f64();
        (secs > 0.0).then(|| (self.messages + self.errors) as f64 / secs)
    }

    /// CPU microseconds per message, over both processes for remote workloads.
    pub fn cpu_us_per_msg(&self) -> Option<f64> {
        if self.messages == 0 {
            return None;
        }
        Some(self.cpu.as_secs_f64() * 1e6 / self.messages as f64)
    }
}

/// The median, smallest and largest of a set of runs.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    /// Median (mean of the two middle values for an even count).
    pub median: f64,
    /// Smallest value.
    pub min: f64,
    /// Largest value.
    pub max: f64,
}

impl Spread {
    /// The spread of `values`, or `None` if there are none.
    pub fn of(values: impl IntoIterator<Item = f64>) -> Option<Self> {
        let mut values: Vec<f64> = values.into_iter().filter(|v| v.is_finite()).collect();
        if values.is_empty() {
            return None;
        }
        values.sort_by(f64::total_cmp);
        let mid = values.len() / 2;
        let median = if values.len().is_multiple_of(2) {
            (values[mid - 1] + values[mid]) / 2.0
        } else {
            values[mid]
        };
        Some(Self {
            median,
            min: values[0],
            max: values[values.len() - 1],
        })
    }
}

/// The 1-minute load average, to show how busy the machine was.
pub fn load_average() -> Option<f64> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

/// KiB to MiB.
pub fn kb_to_mb(kb: u64) -> f64 {
    kb as f64 / 1024.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vm_hwm_is_read_from_status() {
        let status = "Name:\tbazaar\nVmPeak:\t  20000 kB\nVmHWM:\t    5120 kB\nVmRSS:\t 4000 kB\n";
        assert_eq!(parse_vm_hwm(status), Some(5120));
        assert_eq!(parse_vm_hwm("VmRSS:\t1 kB\n"), None);
        assert_eq!(parse_vm_hwm("VmHWM:\tlots kB\n"), None);
    }

    #[test]
    fn this_process_has_cpu_time_and_rss() {
        let spin = std::time::Instant::now();
        while spin.elapsed() < Duration::from_millis(5) {}
        assert!(cpu_time() > Duration::ZERO);
        assert!(peak_rss_kb().unwrap() > 0);
        let usage = ProcessUsage::now();
        let json = serde_json::to_string(&usage).unwrap();
        assert_eq!(serde_json::from_str::<ProcessUsage>(&json).unwrap(), usage);
    }

    #[test]
    fn percentiles_are_in_microseconds() {
        let mut latencies = Latencies::new();
        assert_eq!(latencies.percentiles(), None);
        for micros in 1..=1000u64 {
            latencies.record(Duration::from_micros(micros));
        }
        let mut other = Latencies::new();
        other.record(Duration::from_secs(1_000));
        latencies.merge(&other);
        assert_eq!(latencies.len(), 1001);
        let p = latencies.percentiles().unwrap();
        // Three significant digits: values are exact to within 0.5%.
        let near = |value: f64, expected: f64| (value - expected).abs() <= expected * 0.005;
        assert!(near(p.p50_us, 500.0), "{p:?}");
        assert!(near(p.p99_us, 990.0), "{p:?}");
        assert!(near(p.p999_us, 1_000.0), "{p:?}");
    }

    #[test]
    fn spread_takes_the_median_and_extremes() {
        let spread = Spread::of([3.0, 1.0, 2.0]).unwrap();
        assert_eq!((spread.median, spread.min, spread.max), (2.0, 1.0, 3.0));
        assert_eq!(Spread::of([4.0, 1.0]).unwrap().median, 2.5);
        assert_eq!(Spread::of(Vec::<f64>::new()), None);
        assert_eq!(Spread::of([f64::NAN]), None);
    }

    #[test]
    fn rate_and_cpu_per_message() {
        let sample = Sample {
            messages: 1_000,
            errors: 0,
            elapsed: Duration::from_millis(500),
            enqueued: Some(Duration::from_millis(100)),
            latencies: None,
            cpu: Duration::from_millis(2),
            peak_rss_kb: 2048,
            peer_peak_rss_kb: None,
            refused: None,
            failure: None,
        };
        assert_eq!(sample.rate(), 2_000.0);
        assert_eq!(sample.enqueue_rate(), Some(10_000.0));
        assert_eq!(sample.cpu_us_per_msg(), Some(2.0));
        assert_eq!(kb_to_mb(sample.peak_rss_kb), 2.0);
        let empty = Sample {
            messages: 0,
            elapsed: Duration::ZERO,
            ..sample
        };
        assert_eq!(empty.rate(), 0.0);
        assert_eq!(empty.cpu_us_per_msg(), None);
    }
}
