//! Process metrics in the Prometheus client libraries' standard names
//! (`process_cpu_seconds_total`, `process_resident_memory_bytes`,
//! `process_virtual_memory_bytes`, `process_open_fds`, `process_max_fds`,
//! `process_start_time_seconds`), read from `/proc` at each scrape.
//!
//! They are rendered as exposition text next to the recorder's, because
//! CPU seconds are a fractional counter, which the `metrics` facade cannot
//! hold. Parsing is pure and tested on sample files; a file that cannot be
//! read or parsed leaves its metrics out, and on systems without `/proc`
//! the section is empty.

use std::fmt::Write;

/// What `/proc` says about this process.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ProcessStats {
    cpu_seconds: Option<f64>,
    resident_bytes: Option<u64>,
    virtual_bytes: Option<u64>,
    start_time_seconds: Option<f64>,
    open_fds: Option<u64>,
    max_fds: Option<u64>,
}

/// The process metrics of this process, as Prometheus exposition text.
pub fn render() -> String {
    read().to_text()
}

/// Reads this process's statistics from `/proc`.
fn read() -> ProcessStats {
    let proc = |file: &str| std::fs::read_to_string(format!("/proc/{file}")).ok();
    let mut stats = ProcessStats::default();
    if let Some(stat) = proc("self/stat") {
        let boot_time = proc("stat").as_deref().and_then(boot_time_seconds);
        stats.read_stat(&stat, clock_ticks_per_second(), page_bytes(), boot_time);
    }
    stats.open_fds = std::fs::read_dir("/proc/self/fd")
        .ok()
        .map(|entries| entries.count() as u64);
    stats.max_fds = proc("self/limits").as_deref().and_then(max_open_files);
    stats
}

impl ProcessStats {
    /// Fills the fields that `/proc/self/stat` gives.
    fn read_stat(&mut self, stat: &str, ticks: f64, page: u64, boot_time: Option<f64>) {
        // The command name (field 2) is in parentheses and may hold spaces;
        // the fields after it start at field 3 (`state`).
        let Some((_, after)) = stat.rsplit_once(')') else {
            return;
        };
        let fields: Vec<&str> = after.split_whitespace().collect();
        let field = |n: usize| fields.get(n - 3).and_then(|f| f.parse::<u64>().ok());
        if let (Some(user), Some(system)) = (field(14), field(15)) {
            self.cpu_seconds = Some((user + system) as f64 / ticks);
        }
        self.virtual_bytes = field(23);
        self.resident_bytes = field(24).map(|pages| pages * page);
        self.start_time_seconds = boot_time
            .zip(field(22))
            .map(|(boot, started)| boot + started as f64 / ticks);
    }

    /// The exposition text, with `# HELP` and `# TYPE` for every metric.
    fn to_text(&self) -> String {
        let mut text = String::new();
        let mut metric = |name: &str, kind: &str, help: &str, value: Option<f64>| {
            if let Some(value) = value {
                let _ = writeln!(text, "# HELP {name} {help}");
                let _ = writeln!(text, "# TYPE {name} {kind}");
                let _ = writeln!(text, "{name} {value}");
            }
        };
        let as_f64 = |value: Option<u64>| value.map(|v| v as f64);
        metric(
            "process_cpu_seconds_total",
            "counter",
            "Total user and system CPU time spent in seconds.",
            self.cpu_seconds,
        );
        metric(
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
            as_f64(self.resident_bytes),
        );
        metric(
            "process_virtual_memory_bytes",
            "gauge",
            "Virtual memory size in bytes.",
            as_f64(self.virtual_bytes),
        );
        metric(
            "process_start_time_seconds",
            "gauge",
            "Start time of the process since unix epoch in seconds.",
            self.start_time_seconds,
        );
        metric(
            "process_open_fds",
            "gauge",
            "Number of open file descriptors.",
            as_f64(self.open_fds),
        );
        metric(
            "process_max_fds",
            "gauge",
            "Maximum number of open file descriptors.",
            as_f64(self.max_fds),
        );
        text
    }
}

/// `btime` of `/proc/stat`: when the machine booted, in Unix seconds.
fn boot_time_seconds(stat: &str) -> Option<f64> {
    stat.lines()
        .find_map(|line| line.strip_prefix("btime "))
        .and_then(|value| value.trim().parse().ok())
}

/// The soft limit of `Max open files` in `/proc/self/limits`.
fn max_open_files(limits: &str) -> Option<u64> {
    let line = limits
        .lines()
        .find(|line| line.starts_with("Max open files"))?;
    line["Max open files".len()..]
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// Clock ticks a second, the unit of CPU times in `/proc`.
fn clock_ticks_per_second() -> f64 {
    // SAFETY: sysconf reads a configuration value; it has no preconditions.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 {
        ticks as f64
    } else {
        100.0
    }
}

/// Bytes in a memory page, the unit of `rss` in `/proc/self/stat`.
fn page_bytes() -> u64 {
    // SAFETY: as above.
    let bytes = unsafe { libc::sysconf(libc::_SC_PAGESIZE) };
    u64::try_from(bytes).ok().filter(|&b| b > 0).unwrap_or(4096)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A `/proc/self/stat` line whose command name holds `) (`.
    const STAT: &str = "4242 (bazaar ) (x) S 1 4242 4242 0 -1 4194560 2513 0 0 0 \
        250 50 0 0 20 0 9 0 1000 123456789 2048 18446744073709551615 1 1 0 0 0 0 0 \
        4096 17642 0 0 0 17 1 0 0 0 0 0";

    #[test]
    fn stat_gives_cpu_memory_and_start_time() {
        let mut stats = ProcessStats::default();
        stats.read_stat(STAT, 100.0, 4096, Some(1_700_000_000.0));
        assert_eq!(stats.cpu_seconds, Some(3.0));
        assert_eq!(stats.virtual_bytes, Some(123_456_789));
        assert_eq!(stats.resident_bytes, Some(2048 * 4096));
        assert_eq!(stats.start_time_seconds, Some(1_700_000_010.0));
    }

    #[test]
    fn limits_and_boot_time_are_found() {
        let limits =
            "Limit                     Soft Limit           Hard Limit           Units     \n\
            Max cpu time              unlimited            unlimited            seconds   \n\
            Max open files            1024                 524288               files     \n";
        assert_eq!(max_open_files(limits), Some(1024));
        assert_eq!(
            boot_time_seconds("cpu  1 2 3\nbtime 1700000000\n"),
            Some(1.7e9)
        );
        assert_eq!(boot_time_seconds("cpu 1"), None);
    }

    #[test]
    fn this_process_reports_every_metric_on_linux() {
        let text = render();
        if cfg!(target_os = "linux") {
            for name in [
                "process_cpu_seconds_total",
                "process_resident_memory_bytes",
                "process_open_fds",
                "process_max_fds",
                "process_start_time_seconds",
            ] {
                assert!(
                    text.contains(&format!("# HELP {name} ")),
                    "{name} in\n{text}"
                );
                assert!(text.contains(&format!("\n{name} ")), "{name} in\n{text}");
            }
        }
    }
}
