//! What a `bazaar bench` run measures: workloads, the systems compared in
//! each, payload sizes, and how many messages each measurement sends.
//!
//! A workload belongs to a family, and every system of the family runs it
//! in the same run, so each figure has its baselines next to it:
//!
//! | family | systems |
//! |---|---|
//! | local (`local-cast`, `local-call`, `fan-in`) | `bazaar`, `ractor`, `tokio-mpsc` |
//! | remote (`remote-cast`, `remote-call`) | `bazaar`, `ractor_cluster`, `tcp-framed` |
//! | `frozen-peer` | `bazaar` only (the baselines' queues are unbounded) |
//!
//! Call workloads are measured twice: sequentially (one call in flight)
//! and pipelined (`--in-flight` calls in flight), unless `--in-flight 1`.
//! A measurement stops at `--messages` or after `--duration`, whichever
//! comes first, except `frozen-peer`, which always sends all its messages.
//! Pure: nothing here runs anything.

use std::time::Duration;

use serde::Serialize;

use crate::runtime::{share_of_cores, RuntimeArgs};

/// Default number of calls in flight of the pipelined call variants.
pub const DEFAULT_IN_FLIGHT: usize = 64;
/// Default cap on one measurement, in seconds.
pub const DEFAULT_DURATION_SECS: f64 = 0.5;
/// Default number of runs of every measurement.
pub const DEFAULT_RUNS: usize = 3;
/// Processes of a run (this one and its peer), which share the cores.
pub const PROCESSES: usize = 2;
/// Default payload sizes, in bytes.
pub const DEFAULT_PAYLOADS: [usize; 3] = [32, 1024, 16 * 1024];
/// Default messages of a cast or fan-in measurement.
pub const DEFAULT_CAST_MESSAGES: u64 = 200_000;
/// Default round trips of a sequential call measurement.
pub const DEFAULT_CALL_MESSAGES: u64 = 20_000;
/// Default casts at a frozen peer (fewer when [`CAST_BYTE_BUDGET`] says so).
pub const DEFAULT_FROZEN_PEER_MESSAGES: u64 = 1_000_000;
/// Default round trips of a pipelined call measurement.
pub const DEFAULT_PIPELINED_MESSAGES: u64 = 100_000;
/// Payload bytes one default cast or fan-in measurement may send: casts go
/// to unbounded queues, so the default count shrinks for large payloads.
pub const CAST_BYTE_BUDGET: u64 = 256 * 1024 * 1024;
/// Largest payload accepted, well under the wire codec's message limit.
pub const MAX_PAYLOAD: usize = 4 * 1024 * 1024;
/// Sender tasks of the fan-in workload.
pub const FAN_IN_SENDERS: usize = 8;
/// Receiving actors (or tasks) of the fan-in workload.
pub const FAN_IN_RECEIVERS: usize = 4;

/// What is measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, clap::ValueEnum, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Workload {
    /// One sender casts to one actor in this process.
    LocalCast,
    /// One caller (or `--in-flight` callers) calls one actor in this process.
    LocalCall,
    /// Many senders cast to many actors in this process.
    FanIn,
    /// One sender casts to one actor in the peer process.
    RemoteCast,
    /// One caller (or `--in-flight` callers) calls one actor in the peer process.
    RemoteCall,
    /// One sender casts at the peer process while it is stopped, then resumes it:
    /// casts past the lane's buffer are refused, memory stays bounded, the rest arrive.
    FrozenPeer,
}

impl Workload {
    /// Every workload, in the order a run measures them.
    pub const ALL: [Workload; 6] = [
        Self::LocalCast,
        Self::LocalCall,
        Self::FanIn,
        Self::RemoteCast,
        Self::RemoteCall,
        Self::FrozenPeer,
    ];

    /// The name on the command line and in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::LocalCast => "local-cast",
            Self::LocalCall => "local-call",
            Self::FanIn => "fan-in",
            Self::RemoteCast => "remote-cast",
            Self::RemoteCall => "remote-call",
            Self::FrozenPeer => "frozen-peer",
        }
    }

    /// True if the workload crosses to the peer process.
    pub fn is_remote(self) -> bool {
        matches!(self, Self::RemoteCast | Self::RemoteCall | Self::FrozenPeer)
    }

    /// True for request/response workloads (latencies are recorded).
    pub fn is_call(self) -> bool {
        matches!(self, Self::LocalCall | Self::RemoteCall)
    }

    /// The systems compared in this workload, Bazaar first.
    pub fn systems(self) -> &'static [System] {
        if self == Self::FrozenPeer {
            // ractor_cluster would queue every cast (it grew to ~290 MB for
            // 200k casts of 1 KiB) and tcp-framed has no queue to bound.
            &[System::Bazaar]
        } else if self.is_remote() {
            &[System::Bazaar, System::RactorCluster, System::TcpFramed]
        } else {
            &[System::Bazaar, System::Ractor, System::TokioMpsc]
        }
    }
}

/// A messaging system under measurement: Bazaar or one of its baselines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
pub enum System {
    /// `bazaar_cluster::remote::ServiceMsg` to an actor found through the directory.
    #[serde(rename = "bazaar")]
    Bazaar,
    /// A plain ractor actor.
    #[serde(rename = "ractor")]
    Ractor,
    /// A plain ractor_cluster remote actor with a `RactorClusterMessage` type.
    #[serde(rename = "ractor_cluster")]
    RactorCluster,
    /// An unbounded tokio channel between two tasks.
    #[serde(rename = "tokio-mpsc")]
    TokioMpsc,
    /// Length-prefixed frames over one loopback TCP connection.
    #[serde(rename = "tcp-framed")]
    TcpFramed,
}

impl System {
    /// The name in reports.
    pub fn name(self) -> &'static str {
        match self {
            Self::Bazaar => "bazaar",
            Self::Ractor => "ractor",
            Self::RactorCluster => "ractor_cluster",
            Self::TokioMpsc => "tokio-mpsc",
            Self::TcpFramed => "tcp-framed",
        }
    }

    /// True for the systems Bazaar is compared against.
    pub fn is_baseline(self) -> bool {
        self != Self::Bazaar
    }
}

/// One measurement: a workload, on one system, with one payload size.
#[derive(Debug, Clone, PartialEq)]
pub struct Spec {
    /// What is measured.
    pub workload: Workload,
    /// On which system.
    pub system: System,
    /// Bytes of payload per message.
    pub payload: usize,
    /// Calls in flight; `None` for casts.
    pub in_flight: Option<usize>,
    /// Messages (or round trips) to send, at most.
    pub messages: u64,
    /// Longest time spent sending.
    pub duration: Duration,
}

impl Spec {
    /// The same measurement, shortened to warm caches, connections and allocators.
    pub fn warm_up(&self) -> Spec {
        Spec {
            messages: (self.messages / 20).clamp(1, 1_000),
            duration: self.duration.min(Duration::from_millis(100)),
            ..self.clone()
        }
    }
}

/// The systems compared on one workload, payload and in-flight count; a run
/// measures them one after another, so drift hits all of them alike.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    /// One spec per system, Bazaar first.
    pub specs: Vec<Spec>,
}

/// Validated settings of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Workloads, in run order, without duplicates.
    pub workloads: Vec<Workload>,
    /// Payload sizes, in the order given, without duplicates.
    pub payloads: Vec<usize>,
    /// `--messages`, if given: used as is, for every workload.
    pub messages: Option<u64>,
    /// Calls in flight of the pipelined variants.
    pub in_flight: usize,
    /// Cap on one measurement.
    pub duration: Duration,
    /// Runs of every measurement.
    pub runs: usize,
    /// JSON output.
    pub json: bool,
    /// Runtime flags of both processes, as given.
    pub runtime: RuntimeArgs,
}

impl Settings {
    /// Checks the command line and fills in defaults.
    pub fn from_args(args: &crate::cli::BenchArgs) -> anyhow::Result<Self> {
        anyhow::ensure!(args.runs >= 1, "--runs must be at least 1");
        anyhow::ensure!(args.in_flight >= 1, "--in-flight must be at least 1");
        anyhow::ensure!(
            args.duration.is_finite() && args.duration > 0.0,
            "--duration must be a positive number of seconds"
        );
        anyhow::ensure!(args.messages != Some(0), "--messages must be at least 1");
        let mut workloads = if args.workloads.is_empty() {
            Workload::ALL.to_vec()
        } else {
            args.workloads.clone()
        };
        workloads.sort();
        workloads.dedup();
        let mut payloads: Vec<usize> = Vec::new();
        let given = if args.payloads.is_empty() {
            DEFAULT_PAYLOADS.to_vec()
        } else {
            args.payloads.clone()
        };
        for size in given {
            if !payloads.contains(&size) {
                payloads.push(size);
            }
        }
        Ok(Self {
            workloads,
            payloads,
            messages: args.messages,
            in_flight: args.in_flight,
            duration: Duration::from_secs_f64(args.duration),
            runs: args.runs,
            json: args.json,
            runtime: args.runtime.clone(),
        })
    }

    /// Worker threads of each of the two processes.
    pub fn workers(&self) -> usize {
        self.runtime.workers_or(share_of_cores(PROCESSES))
    }

    /// Runtime flags of the peer process: the same settings as this one's.
    pub fn peer_flags(&self) -> Vec<String> {
        self.runtime.child_flags(PROCESSES)
    }

    /// Messages of one measurement with `payload` bytes and `in_flight`
    /// calls in flight (`None` for casts).
    pub fn messages_for(&self, payload: usize, in_flight: Option<usize>) -> u64 {
        if let Some(messages) = self.messages {
            return messages;
        }
        match in_flight {
            Some(1) => DEFAULT_CALL_MESSAGES,
            Some(_) => DEFAULT_PIPELINED_MESSAGES,
            None => {
                let budget = CAST_BYTE_BUDGET / payload.max(1) as u64;
                DEFAULT_CAST_MESSAGES.min(budget).max(1)
            }
        }
    }

    /// Casts of one frozen-peer measurement with `payload` bytes.
    pub fn frozen_peer_messages(&self, payload: usize) -> u64 {
        self.messages.unwrap_or_else(|| {
            let budget = CAST_BYTE_BUDGET / payload.max(1) as u64;
            DEFAULT_FROZEN_PEER_MESSAGES.min(budget).max(1)
        })
    }

    /// Every group of measurements, in run order.
    pub fn groups(&self) -> Vec<Group> {
        let mut groups = Vec::new();
        for &workload in &self.workloads {
            let variants: Vec<Option<usize>> = match (workload.is_call(), self.in_flight) {
                (false, _) => vec![None],
                (true, 1) => vec![Some(1)],
                (true, k) => vec![Some(1), Some(k)],
            };
            for &payload in &self.payloads {
                for &in_flight in &variants {
                    let messages = match workload {
                        Workload::FrozenPeer => self.frozen_peer_messages(payload),
                        _ => self.messages_for(payload, in_flight),
                    };
                    let specs = workload
                        .systems()
                        .iter()
                        .map(|&system| Spec {
                            workload,
                            system,
                            payload,
                            in_flight,
                            messages,
                            duration: self.duration,
                        })
                        .collect();
                    groups.push(Group { specs });
                }
            }
        }
        groups
    }
}

/// Parses a payload size: `32`, `1k` / `1KiB`, `16k`, `1m` (powers of 1024).
pub fn parse_size(text: &str) -> Result<usize, String> {
    let lower = text.trim().to_ascii_lowercase();
    let lower = lower.strip_suffix("ib").unwrap_or(&lower);
    let lower = lower.strip_suffix('b').unwrap_or(lower);
    let (digits, unit) = match lower.char_indices().find(|(_, c)| !c.is_ascii_digit()) {
        Some((at, _)) => lower.split_at(at),
        None => (lower, ""),
    };
    let multiplier: usize = match unit {
        "" => 1,
        "k" => 1024,
        "m" => 1024 * 1024,
        _ => {
            return Err(format!(
                "invalid size {text:?}: use a number with k or m, e.g. 1k"
            ))
        }
    };
    let number: usize = digits
        .parse()
        .map_err(|_| format!("invalid size {text:?}: use a number with k or m, e.g. 1k"))?;
    let size = number
        .checked_mul(multiplier)
        .filter(|size| (1..=MAX_PAYLOAD).contains(size))
        .ok_or_else(|| format!("size {text:?} must be between 1 byte and 4m"))?;
    Ok(size)
}

/// A payload size as a short label: `32`, `1k`, `16k`.
pub fn size_label(size: usize) -> String {
    if size >= 1024 * 1024 && size.is_multiple_of(1024 * 1024) {
        format!("{}m", size / (1024 * 1024))
    } else if size >= 1024 && size.is_multiple_of(1024) {
        format!("{}k", size / 1024)
    } else {
        size.to_string()
    }
}

#[cfg(test)]
mod tests;
